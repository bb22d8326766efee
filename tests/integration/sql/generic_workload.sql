-- The Generic record (generic_xlog.c's only type), for the native redo
-- oracle (test_redo.py), through the bloom index access method: the build
-- logs whole pages, inserts and VACUUM log page deltas.
CREATE EXTENSION IF NOT EXISTS bloom;
CREATE TABLE bl (a int, b int, c text);
INSERT INTO bl SELECT g, g % 17, md5(g::text) FROM generate_series(1, 30000) g;
CREATE INDEX bl_abc ON bl USING bloom (a, b, c) WITH (length = 80);
INSERT INTO bl SELECT g, g % 13, md5(g::text) FROM generate_series(30001, 31500) g;
DELETE FROM bl WHERE a % 3 = 0;
VACUUM bl;
DELETE FROM bl WHERE a > 29000;
VACUUM bl;
INSERT INTO bl SELECT g, 1, 'x' FROM generate_series(1, 500) g;
