-- Every BRIN record type, for the native redo oracle (test_redo.py).
-- Comments name the records made.  Every record carries page images in
-- the oracle, so the table stays small: one heap page per range
-- (pages_per_range = 1) gives many summary tuples on few pages.
--
-- CREATE_INDEX (the metapage), REVMAP_EXTEND (the first revmap page) and
-- INSERT (one summary tuple per heap page, INIT_PAGE on each new regular
-- page) as the indexes are built.
-- The rows are loaded with wal_consistency_checking off (tarn replays
-- their records, they are only not compared).
SET wal_consistency_checking = '';
CREATE TABLE br (id int, t text) WITH (fillfactor = 60);
INSERT INTO br SELECT g, md5(g::text) FROM generate_series(1, 15000) g;
RESET wal_consistency_checking;
CREATE INDEX br_id ON br USING brin (id) WITH (pages_per_range = 1);
CREATE INDEX br_t ON br USING brin (t) WITH (pages_per_range = 1);
CREATE INDEX br_multi ON br USING brin (id int4_minmax_multi_ops, t)
    WITH (pages_per_range = 1);
-- SAMEPAGE_UPDATE: values outside a range's summary widen it in place.
UPDATE br SET id = -id WHERE id % 97 = 0;
-- UPDATE: longer text bounds no longer fit the full regular page, so the
-- summary tuple moves to another page.
UPDATE br SET t = repeat(chr(122 - id % 20), 60 + id % 40) WHERE id % 89 = 0;
-- INSERT and SAMEPAGE_UPDATE/UPDATE: new pages at the end are summarized
-- (a placeholder tuple is inserted, then replaced by the summary).
SET wal_consistency_checking = '';
INSERT INTO br SELECT g, md5(g::text) FROM generate_series(15001, 17000) g;
RESET wal_consistency_checking;
SELECT brin_summarize_new_values('br_id');
SELECT brin_summarize_new_values('br_t');
SELECT brin_summarize_new_values('br_multi');
-- DESUMMARIZE: ranges lose their summaries; then VACUUM summarizes them
-- again.
SELECT brin_desummarize_range('br_id', b) FROM generate_series(3, 40, 3) b;
SELECT brin_desummarize_range('br_t', b) FROM generate_series(5, 40, 5) b;
SELECT brin_summarize_range('br_id', 9);
VACUUM br;
