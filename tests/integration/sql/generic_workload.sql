-- The Generic record (generic_xlog.c's only type), for the native redo
-- oracle (test_redo.py), through the bloom index access method: the build
-- logs whole pages, inserts and VACUUM log page deltas.  Heap rows are
-- loaded and deleted with wal_consistency_checking off (tarn replays their
-- records, they are only not compared).
CREATE EXTENSION IF NOT EXISTS bloom;
SET wal_consistency_checking = '';
CREATE TABLE bl (a int, b int, c text);
INSERT INTO bl SELECT g, g % 17, md5(g::text) FROM generate_series(1, 30000) g;
RESET wal_consistency_checking;
CREATE INDEX bl_abc ON bl USING bloom (a, b, c) WITH (length = 80);
INSERT INTO bl SELECT g, g % 13, md5(g::text) FROM generate_series(30001, 30600) g;
SET wal_consistency_checking = '';
DELETE FROM bl WHERE a % 3 = 0;
RESET wal_consistency_checking;
VACUUM bl;
SET wal_consistency_checking = '';
DELETE FROM bl WHERE a > 29000;
RESET wal_consistency_checking;
VACUUM bl;
INSERT INTO bl SELECT g, 1, 'x' FROM generate_series(1, 300) g;
