-- Every SP-GiST record type, for the native redo oracle (test_redo.py).
-- Comments name the records made.  Every record carries page images in
-- the oracle, so the tables stay small; long text keys make leaf pages
-- fill after a few dozen rows.
--
-- VACUUM_ROOT: a small index whose root is still a leaf.
CREATE TABLE spg_r (p point);
CREATE INDEX spg_r_p ON spg_r USING spgist (p);
INSERT INTO spg_r SELECT point(g, g) FROM generate_series(1, 50) g;
DELETE FROM spg_r WHERE p[0] < 20;
VACUUM spg_r;
-- ADD_LEAF for each insert; PICKSPLIT when a leaf page fills (the root
-- first); MOVE_LEAFS when a chain outgrows its page, leaving a redirect.
CREATE TABLE spg_q (id int, p point);
CREATE INDEX spg_q_p ON spg_q USING spgist (p);
CREATE INDEX spg_q_k ON spg_q USING spgist (p kd_point_ops);
INSERT INTO spg_q SELECT g, point((g * 7919) % 1000, (g * 104729) % 1000)
  FROM generate_series(1, 300) g;
-- Text: ADD_NODE when a new first byte reaches an inner tuple,
-- SPLIT_TUPLE when a key leaves an inner tuple's prefix.
CREATE TABLE spg_t (id int, t text);
CREATE INDEX spg_t_t ON spg_t USING spgist (t);
INSERT INTO spg_t SELECT g, 'common-prefix-' || lpad(g::text, 5, '0') || repeat('x', 200)
  FROM generate_series(1, 150) g;
INSERT INTO spg_t SELECT g, 'common-prefix-' || chr(65 + g % 26) || g
  FROM generate_series(1, 40) g;
INSERT INTO spg_t SELECT g, 'comm' || chr(97 + g % 26) || g FROM generate_series(1, 40) g;
INSERT INTO spg_t SELECT g, chr(48 + g % 40) || 'q' || g FROM generate_series(1, 80) g;
CREATE TABLE spg_i (id int, a inet);
CREATE INDEX spg_i_a ON spg_i USING spgist (a);
INSERT INTO spg_i SELECT g, ('10.' || g % 7 || '.' || g % 251 || '.' || g % 13)::inet
  FROM generate_series(1, 120) g;
-- VACUUM_LEAF (dead tuples, chains) and VACUUM_REDIRECT (the redirects of
-- committed moves become placeholders, trailing ones go).
DELETE FROM spg_q WHERE id % 3 = 0;
DELETE FROM spg_t WHERE id % 2 = 0;
DELETE FROM spg_i WHERE id % 2 = 0;
VACUUM spg_q;
VACUUM spg_t;
VACUUM spg_i;
