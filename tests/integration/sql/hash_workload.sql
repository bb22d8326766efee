-- Every Hash index record type that changes a page, for the native redo
-- oracle (test_redo.py).  Comments name the records made.  Every record
-- carries page images in the oracle, so the table stays small; fillfactor
-- 10 makes the index split buckets after ~40 tuples per bucket.
--
-- INIT_META_PAGE and INIT_BITMAP_PAGE: the index is built on a table of
-- a few rows (INSERT each).  The VACUUM first makes the planner's size
-- estimate small, so the index starts with 2 buckets, not 64.
CREATE TABLE hh (k int, id int);
INSERT INTO hh SELECT g, g FROM generate_series(701, 710) g;
VACUUM hh;
CREATE INDEX hh_k ON hh USING hash (k) WITH (fillfactor = 10);
-- INSERT; SPLIT_ALLOCATE_PAGE, SPLIT_PAGE and SPLIT_COMPLETE as the
-- tuple count passes the fill factor; ADD_OVFL_PAGE when the duplicates
-- of key 1 and key 2 outgrow their bucket's page (and when a split fills
-- the new bucket's page).
INSERT INTO hh SELECT g, g FROM generate_series(3, 400) g;
INSERT INTO hh SELECT 1, g FROM generate_series(1, 1300) g;
INSERT INTO hh SELECT 2, g FROM generate_series(1, 450) g;
INSERT INTO hh SELECT g, g FROM generate_series(401, 700) g;
-- VACUUM_ONE_PAGE: an index scan marks the dead rows of key 2 dead in
-- the index (LH_PAGE_HAS_DEAD_TUPLES); an insert into the full primary
-- page of that bucket removes them instead of adding an overflow page.
DELETE FROM hh WHERE k = 2;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM hh WHERE k = 2;
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO hh VALUES (2, 0);
-- VACUUM: DELETE of half the duplicates of key 1 on each page of its
-- chain, then the squeeze moves tuples to earlier pages
-- (MOVE_PAGE_CONTENTS) and frees overflow pages (SQUEEZE_PAGE);
-- SPLIT_CLEANUP of buckets split since; UPDATE_META_PAGE at the end.
DELETE FROM hh WHERE k = 1 AND id % 2 = 0;
DELETE FROM hh WHERE k > 2 AND k % 5 = 0;
VACUUM hh;
