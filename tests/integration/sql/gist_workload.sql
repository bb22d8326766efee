-- Every GiST record type that changes a page, for the native redo oracle
-- (test_redo.py).  Comments name the records made.  Every record carries
-- page images in the oracle, so the tables stay small: the tsvector index
-- has leaf keys of ~100 lexeme hashes (~20 to a page) and 1000-byte
-- signatures above them (~8 to a page), so a few hundred rows make a
-- three-level tree.  (ASSIGN_LSN is only written at wal_level minimal.)
--
-- PAGE_UPDATE for each insert and downlink update; PAGE_SPLIT as pages
-- fill: the root while it is the only leaf, then leaves (F_FOLLOW_RIGHT
-- until the parent's PAGE_UPDATE clears it), inner pages, the root again.
CREATE TABLE gist_t (id int, t tsvector);
CREATE INDEX gist_t_idx ON gist_t USING gist (t tsvector_ops (siglen = 1000));
CREATE FUNCTION gist_doc(n int) RETURNS tsvector LANGUAGE sql AS
  $$ SELECT to_tsvector('simple', 'common ' || string_agg('w' || (n * 31 + i * 7) % 997, ' '))
     FROM generate_series(1, 100) i $$;
INSERT INTO gist_t SELECT g, gist_doc(g) FROM generate_series(1, 300) g;
-- DELETE: an index scan marks deleted rows dead in the index
-- (F_HAS_GARBAGE); inserts into full leaves remove them instead of
-- splitting.
DELETE FROM gist_t WHERE id <= 220;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(id) FROM gist_t WHERE t @@ 'common';
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO gist_t SELECT g, gist_doc(g) FROM generate_series(301, 380) g;
-- PAGE_DELETE: VACUUM removes the dead tuples (PAGE_UPDATE), then the
-- leaves left empty and their downlinks.
DELETE FROM gist_t WHERE id <= 300;
VACUUM gist_t;
-- PAGE_REUSE: once no transaction can see them, the next VACUUM puts the
-- deleted pages in the free space map and the next splits reuse them.
CREATE TABLE gist_x (k int);
INSERT INTO gist_x VALUES (1);
INSERT INTO gist_x VALUES (2);
VACUUM gist_t;
INSERT INTO gist_t SELECT g, gist_doc(g) FROM generate_series(400, 520) g;
-- Points, boxes and ranges: other tuple shapes through the same records.
CREATE TABLE gist_p (p point, b box, r int4range);
CREATE INDEX gist_p_p ON gist_p USING gist (p);
CREATE INDEX gist_p_b ON gist_p USING gist (b);
CREATE INDEX gist_p_r ON gist_p USING gist (r);
INSERT INTO gist_p SELECT point(g % 37, g / 37), box(point(g, g), point(g + g % 7, g + 3)),
    int4range(g, g + g % 17)
  FROM generate_series(1, 60) g;
DELETE FROM gist_p WHERE p[0] < 10;
VACUUM gist_p;
