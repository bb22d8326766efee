-- Every heap, heap2 and sequence record type that changes a page, for the
-- native redo oracle (test_redo.py).  Comments name the records made.
CREATE TABLE h (id int PRIMARY KEY, v int, pad text) WITH (fillfactor = 70);
-- INSERT, then MULTI_INSERT through COPY (a new page each: INIT_PAGE).
INSERT INTO h SELECT g, g, repeat('x', 40) FROM generate_series(1, 2000) g;
COPY h FROM PROGRAM 'seq 2001 4000 | sed "s/.*/&,&,copied/"' WITH (FORMAT csv);
-- HOT_UPDATE (v is not indexed, fillfactor leaves room), UPDATE that
-- changes the key, UPDATE that makes the tuple grow onto another page.
UPDATE h SET v = v + 1 WHERE id % 7 = 0;
UPDATE h SET id = id + 100000 WHERE id % 97 = 0;
UPDATE h SET pad = repeat('y', 600) WHERE id % 53 = 0;
-- Prefix and suffix compression of the new tuple (same page, long pad).
CREATE TABLE w (id int, a text, b text, c text);
INSERT INTO w SELECT g, repeat('a', 200), repeat('b', 10), repeat('c', 200)
  FROM generate_series(1, 60) g;
UPDATE w SET b = 'changed' WHERE id % 3 = 0;
-- DELETE, then PRUNE on the next access and VACUUM (the VACUUM and
-- FREEZE_PAGE and VISIBLE records), then a VACUUM FREEZE.
DELETE FROM h WHERE id % 5 = 0;
SELECT count(*) FROM h WHERE v > 0;
VACUUM h;
VACUUM (FREEZE) w;
-- Row locks: LOCK (FOR UPDATE), and a multixact from two sharers, then
-- LOCK_UPDATED through an update of a locked, updated row chain.
BEGIN; SELECT id FROM h WHERE id BETWEEN 1 AND 30 FOR UPDATE; COMMIT;
BEGIN; SELECT id FROM h WHERE id BETWEEN 31 AND 60 FOR SHARE;
  SAVEPOINT s; UPDATE h SET v = -v WHERE id BETWEEN 31 AND 40; RELEASE s;
COMMIT;
BEGIN; SELECT id FROM h WHERE id BETWEEN 61 AND 70 FOR KEY SHARE;
  UPDATE h SET v = 0 WHERE id BETWEEN 61 AND 70; COMMIT;
-- Speculative insertion: INSERT ... ON CONFLICT (CONFIRM, and a super
-- delete when it conflicts).
INSERT INTO h VALUES (1, 1, 'dup') ON CONFLICT (id) DO NOTHING;
INSERT INTO h VALUES (500000, 1, 'new') ON CONFLICT (id) DO UPDATE SET v = 2;
INSERT INTO h VALUES (500000, 1, 'new') ON CONFLICT (id) DO UPDATE SET v = 3;
-- Row movement between partitions: DELETE with the partition-move flag.
CREATE TABLE p (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (100) TO (200);
INSERT INTO p SELECT g, 'row' FROM generate_series(0, 99) g;
UPDATE p SET k = k + 100 WHERE k < 20;
-- TOAST: out-of-line values and their deletion.
CREATE TABLE t (id int, big text);
ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO t SELECT g, repeat(md5(g::text), 200) FROM generate_series(1, 20) g;
DELETE FROM t WHERE id % 2 = 0;
-- INPLACE updates of pg_class by VACUUM and ANALYZE.
ANALYZE h;
VACUUM t;
-- Sequence LOG records: nextval logs 32 values ahead, setval, ALTER, and
-- a serial column.
CREATE SEQUENCE sq;
SELECT nextval('sq') FROM generate_series(1, 100);
SELECT setval('sq', 1000);
ALTER SEQUENCE sq INCREMENT BY 5;
SELECT nextval('sq');
CREATE TABLE withserial (id serial, v text);
INSERT INTO withserial (v) SELECT 'x' FROM generate_series(1, 50);
