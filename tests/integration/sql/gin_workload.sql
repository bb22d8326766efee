-- Every GIN record type, for the native redo oracle (test_redo.py).
-- Comments name the records made.  Every record carries page images in
-- the oracle, so most rows are loaded and deleted with
-- wal_consistency_checking off (their records are still replayed by tarn,
-- only not compared), and the records of interest are made with it on.
--
-- The indexes are built on loaded rows (the build logs page images only):
-- posting trees for key 0 of arr and for the word 'common' of tsv.
SET wal_consistency_checking = '';
CREATE TABLE gn (id int, arr int[], tsv tsvector, js jsonb);
INSERT INTO gn
SELECT g, ARRAY[0, g % 300, 1000 + g % 3],
       to_tsvector('simple', 'w' || (g % 400) || ' common'),
       jsonb_build_object('k', g % 200)
FROM generate_series(1, 12000) g;
CREATE INDEX gn_arr ON gn USING gin (arr);
CREATE INDEX gn_tsv ON gn USING gin (tsv) WITH (fastupdate = off);
CREATE INDEX gn_js ON gn USING gin (js jsonb_path_ops);
RESET wal_consistency_checking;
-- fastupdate off (gn_tsv): INSERT of new words into entry leaves, which
-- split (SPLIT, then the downlink INSERT into the internal entry page),
-- and INSERT into the posting tree of 'common' (segment actions).
-- fastupdate on (gn_arr, gn_js): UPDATE_META_PAGE for each row added to
-- the pending list, INSERT_LISTPAGE when its tail page is full.
INSERT INTO gn
SELECT g, ARRAY[0, g % 300, 7],
       to_tsvector('simple', 'n' || g || ' common'),
       jsonb_build_object('k', g % 200, 'n', g)
FROM generate_series(12001, 12150) g;
-- Many more pending rows (unchecked), with keys 0 and 5 in each.
SET wal_consistency_checking = '';
INSERT INTO gn
SELECT g, ARRAY[0, 5, g % 300],
       to_tsvector('simple', 'w' || (g % 400) || ' common'),
       jsonb_build_object('k', g % 200)
FROM generate_series(12151, 27000) g;
RESET wal_consistency_checking;
-- The pending list cleanup: DELETE_LISTPAGE, entry INSERTs, CREATE_PTREE
-- for key 5 (15,000 TIDs at once), then leaf INSERTs and SPLITs of the
-- posting trees, and INSERTs of downlinks into internal data pages.
SELECT gin_clean_pending_list('gn_arr') > 0;
SELECT gin_clean_pending_list('gn_js') > 0;
-- VACUUM: VACUUM_PAGE for entry pages whose posting lists lose TIDs,
-- VACUUM_DATA_LEAF_PAGE for posting tree leaves that do, DELETE_PAGE for
-- the leaves the contiguous delete empties.
SET wal_consistency_checking = '';
DELETE FROM gn WHERE id BETWEEN 2000 AND 20000;
DELETE FROM gn WHERE id % 7 = 0;
RESET wal_consistency_checking;
VACUUM gn;
-- fastupdate off on gn_arr too: INSERT straight into the posting trees
-- after the VACUUM.
ALTER INDEX gn_arr SET (fastupdate = off);
INSERT INTO gn
SELECT g, ARRAY[0, 5, g % 300], NULL, NULL
FROM generate_series(27001, 27100) g;
-- Long keys (390 bytes) put ~20 tuples on an entry page: the inserts of
-- the even keys between the odd ones built in split the leaves, whose
-- downlinks then split the internal pages (a SPLIT that finishes the
-- split of its child, block 3).
SET wal_consistency_checking = '';
CREATE TABLE gl (k text[]);
INSERT INTO gl SELECT ARRAY['k' || lpad(i::text, 5, '0')
                            || repeat(md5(i::text), 12)]
FROM generate_series(1, 800, 2) i;
CREATE INDEX gl_k ON gl USING gin (k) WITH (fastupdate = off);
RESET wal_consistency_checking;
INSERT INTO gl SELECT ARRAY['k' || lpad(i::text, 5, '0')
                            || repeat(md5(i::text), 12)]
FROM generate_series(2, 800, 2) i;
