-- A deterministic mixed DDL/DML workload for PostgreSQL 15, used by the
-- WAL oracle tests (tests/integration/test_oracle.py).
--
-- Run it against the "postgres" database with
--     psql -X -v ON_ERROR_STOP=1 -f mixed_workload.sql
-- It connects to the databases it creates with \connect (same host, port and
-- user), so CREATE DATABASE / DROP DATABASE run outside transaction blocks.
-- The server needs max_prepared_transactions > 0 (two-phase commit).
--
-- Everything is computed from generate_series(), so every run writes the
-- same rows.  The row counts are kept small on purpose: with
-- wal_consistency_checking = all every heap or index record carries an image
-- of each page it touches, so a row costs several KB of WAL.
--
-- Coverage: CREATE TABLE / INDEX (btree, GIN on text[] and tsvector, GiST on
-- point and int4range, hash, BRIN, SP-GiST), a serial column and an explicit
-- sequence, HOT and non-HOT UPDATE, DELETE, VACUUM with tail truncation,
-- VACUUM FREEZE, TRUNCATE, DROP TABLE, a rolled-back transaction, savepoints
-- (a rolled-back subtransaction that created a table), two-phase commit
-- (COMMIT PREPARED and ROLLBACK PREPARED), CREATE DATABASE with both
-- strategies, writes inside those databases and DROP DATABASE.

\set ON_ERROR_STOP 1

-- -------------------------------------------------------------------------
-- The main table: bulk load without indexes, then build every index kind.
-- -------------------------------------------------------------------------
CREATE SEQUENCE mw_seq;

CREATE TABLE mw_items (
    id      serial,
    k       integer NOT NULL,
    grp     integer NOT NULL,
    payload text    NOT NULL,
    tags    text[]  NOT NULL,
    doc     tsvector NOT NULL,
    pos     point   NOT NULL,
    span    int4range NOT NULL,
    note    text,
    touched integer NOT NULL DEFAULT 0
) WITH (fillfactor = 80);

INSERT INTO mw_items (k, grp, payload, tags, doc, pos, span)
SELECT (i * 7919) % 100003,
       i % 50,
       repeat(md5(i::text), 4),
       ARRAY['t' || (i % 13), 'g' || (i % 7), 'h' || (i % 101)],
       to_tsvector('simple', 'word' || (i % 101) || ' term' || (i % 37)
                             || ' w' || (i % 997)),
       point(i % 211, (i * 37) % 223),
       int4range(i % 5000, i % 5000 + 1 + i % 40)
FROM generate_series(1, 5000) AS i;

ALTER TABLE mw_items ADD PRIMARY KEY (id);
CREATE INDEX mw_items_k ON mw_items (k);
CREATE INDEX mw_items_tags ON mw_items USING gin (tags);
CREATE INDEX mw_items_doc ON mw_items USING gin (doc);
CREATE INDEX mw_items_pos ON mw_items USING gist (pos);
CREATE INDEX mw_items_span ON mw_items USING gist (span);
CREATE INDEX mw_items_k_hash ON mw_items USING hash (k);
CREATE INDEX mw_items_id_brin ON mw_items USING brin (id)
    WITH (pages_per_range = 4);
CREATE INDEX mw_items_pos_spg ON mw_items USING spgist (pos);

-- Inserts with every index in place: keys of k land all over the btree, so
-- leaf pages split in the middle, and the primary key splits at the right.
INSERT INTO mw_items (k, grp, payload, tags, doc, pos, span)
SELECT (i * 7919) % 100003,
       i % 50,
       repeat(md5(i::text), 3),
       ARRAY['t' || (i % 13), 'n' || (i % 5)],
       to_tsvector('simple', 'word' || (i % 101) || ' late' || (i % 11)),
       point(i % 197, (i * 41) % 229),
       int4range(i % 5000, i % 5000 + 1 + i % 30)
FROM generate_series(5001, 6500) AS i;

-- A btree on a narrow column that needs many leaf pages, so it splits
-- repeatedly (leaf and internal levels) while rows arrive.
CREATE TABLE mw_keys (v integer NOT NULL, w integer NOT NULL);
CREATE INDEX mw_keys_v ON mw_keys (v);
CREATE INDEX mw_keys_vw ON mw_keys (w, v);
INSERT INTO mw_keys SELECT (i * 104729) % 65521, i % 97
FROM generate_series(1, 4000) AS i;

-- -------------------------------------------------------------------------
-- Updates and deletes.
-- -------------------------------------------------------------------------
-- HOT: no indexed column changes and fillfactor 80 leaves room on the page.
UPDATE mw_items SET note = 'hot ' || id, touched = touched + 1
WHERE id % 10 = 0;
-- Not HOT: an indexed column changes.
UPDATE mw_items SET k = k + 100003 WHERE id % 17 = 0;
-- Not HOT: the new version is too wide for its page.
UPDATE mw_items SET payload = repeat(payload, 3) WHERE id % 97 = 1;

DELETE FROM mw_items WHERE id % 9 = 0;
DELETE FROM mw_keys WHERE v % 5 = 0;

-- -------------------------------------------------------------------------
-- Sequences: nextval many times (Sequence/LOG every 32 values).
-- -------------------------------------------------------------------------
SELECT count(nextval('mw_seq')) FROM generate_series(1, 700);
SELECT setval('mw_seq', 5000);
SELECT count(nextval('mw_seq')) FROM generate_series(1, 45);

-- -------------------------------------------------------------------------
-- VACUUM, a VACUUM that truncates the tail of a table, and VACUUM FREEZE.
-- -------------------------------------------------------------------------
VACUUM mw_items;

CREATE TABLE mw_shrink (id integer PRIMARY KEY, pad text NOT NULL);
INSERT INTO mw_shrink SELECT i, repeat('s', 200)
FROM generate_series(1, 3000) AS i;
VACUUM mw_shrink;                      -- sets the visibility map
DELETE FROM mw_shrink WHERE id > 1000;
VACUUM mw_shrink;                      -- Storage/TRUNCATE of heap and VM

VACUUM FREEZE mw_keys;
VACUUM (FREEZE, INDEX_CLEANUP on) mw_items;

-- -------------------------------------------------------------------------
-- TRUNCATE (new relfilenodes; the old ones go at commit) and DROP TABLE.
-- -------------------------------------------------------------------------
CREATE TABLE mw_trunc AS
SELECT i AS id, md5(i::text) AS h FROM generate_series(1, 2000) AS i;
CREATE INDEX mw_trunc_h ON mw_trunc (h);
TRUNCATE mw_trunc;
INSERT INTO mw_trunc SELECT i, md5((i * 3)::text)
FROM generate_series(1, 300) AS i;

CREATE TABLE mw_drop (id integer PRIMARY KEY, v text);
INSERT INTO mw_drop SELECT i, repeat('d', i % 100)
FROM generate_series(1, 1500) AS i;
DROP TABLE mw_drop;

-- -------------------------------------------------------------------------
-- A rolled-back transaction (its new table's files go at abort).
-- -------------------------------------------------------------------------
BEGIN;
CREATE TABLE mw_rolled_back (id integer PRIMARY KEY, v text);
INSERT INTO mw_rolled_back SELECT i, 'rb' || i
FROM generate_series(1, 500) AS i;
UPDATE mw_items SET touched = touched + 100 WHERE id % 50 = 3;
ROLLBACK;

-- -------------------------------------------------------------------------
-- Savepoints: a committed transaction with subtransactions, one rolled back.
-- -------------------------------------------------------------------------
BEGIN;
INSERT INTO mw_keys SELECT 70000 + i, i FROM generate_series(1, 200) AS i;
SAVEPOINT sp_a;
CREATE TABLE mw_sp_gone (id integer);
INSERT INTO mw_sp_gone SELECT generate_series(1, 300);
UPDATE mw_items SET touched = touched + 1000 WHERE id % 50 = 7;
ROLLBACK TO SAVEPOINT sp_a;
SAVEPOINT sp_b;
UPDATE mw_items SET touched = touched + 10 WHERE id % 50 = 11;
CREATE TABLE mw_sp_kept (id integer PRIMARY KEY);
INSERT INTO mw_sp_kept SELECT generate_series(1, 300);
RELEASE SAVEPOINT sp_b;
SAVEPOINT sp_c;
INSERT INTO mw_keys SELECT 80000 + i, i FROM generate_series(1, 50) AS i;
COMMIT;

-- -------------------------------------------------------------------------
-- Multixacts: rows locked by a transaction and by its own subtransaction
-- (a share lock, then an update or a stronger lock in a savepoint).
-- -------------------------------------------------------------------------
CREATE TABLE mw_locks (id integer PRIMARY KEY, v integer);
INSERT INTO mw_locks SELECT i, i FROM generate_series(1, 100) AS i;
BEGIN;
SELECT count(*) FROM (SELECT * FROM mw_locks WHERE id <= 50 FOR SHARE) s;
SAVEPOINT mx_1;
UPDATE mw_locks SET v = v + 1 WHERE id <= 50;
RELEASE SAVEPOINT mx_1;
COMMIT;
BEGIN;
SELECT count(*) FROM (SELECT * FROM mw_locks WHERE id > 50 FOR KEY SHARE) s;
SAVEPOINT mx_2;
SELECT count(*) FROM (SELECT * FROM mw_locks WHERE id > 50 FOR UPDATE) s;
ROLLBACK TO SAVEPOINT mx_2;
COMMIT;

-- -------------------------------------------------------------------------
-- Two-phase commit: COMMIT PREPARED (with a table drop) and ROLLBACK
-- PREPARED (of a transaction that created a table).
-- -------------------------------------------------------------------------
CREATE TABLE mw_2pc_victim (id integer);
INSERT INTO mw_2pc_victim SELECT generate_series(1, 400);

BEGIN;
INSERT INTO mw_keys SELECT 90000 + i, i FROM generate_series(1, 100) AS i;
DROP TABLE mw_2pc_victim;
PREPARE TRANSACTION 'mw_p1';
COMMIT PREPARED 'mw_p1';

BEGIN;
CREATE TABLE mw_2pc_gone (id integer PRIMARY KEY, v text);
INSERT INTO mw_2pc_gone SELECT i, 'p' || i FROM generate_series(1, 400) AS i;
UPDATE mw_items SET touched = touched + 7 WHERE id % 50 = 13;
PREPARE TRANSACTION 'mw_p2';
ROLLBACK PREPARED 'mw_p2';

-- -------------------------------------------------------------------------
-- New databases with both strategies, writes inside them, and a drop.
-- -------------------------------------------------------------------------
CREATE DATABASE mw_db_wal TEMPLATE template1 STRATEGY WAL_LOG;
CREATE DATABASE mw_db_copy TEMPLATE template1 STRATEGY FILE_COPY;
CREATE DATABASE mw_db_doomed TEMPLATE template1 STRATEGY WAL_LOG;

\connect mw_db_wal
CREATE TABLE w_t (id serial PRIMARY KEY, v text NOT NULL, arr int[]);
INSERT INTO w_t (v, arr) SELECT repeat('w', 50 + i % 50), ARRAY[i, i % 7]
FROM generate_series(1, 1500) AS i;
CREATE INDEX w_t_arr ON w_t USING gin (arr);
UPDATE w_t SET v = v || '!' WHERE id % 4 = 0;
DELETE FROM w_t WHERE id % 11 = 0;
VACUUM w_t;

\connect mw_db_copy
CREATE TABLE c_t (id serial PRIMARY KEY, v text NOT NULL, r int4range);
INSERT INTO c_t (v, r) SELECT md5(i::text), int4range(i, i + 10)
FROM generate_series(1, 1500) AS i;
CREATE INDEX c_t_r ON c_t USING gist (r);
UPDATE c_t SET v = upper(v) WHERE id % 3 = 0;
DELETE FROM c_t WHERE id % 13 = 0;

\connect mw_db_doomed
CREATE TABLE d_t (id integer PRIMARY KEY, v text);
INSERT INTO d_t SELECT i, md5(i::text) FROM generate_series(1, 800) AS i;

\connect postgres
DROP DATABASE mw_db_doomed;

-- -------------------------------------------------------------------------
-- More work on the main table after the checkpoints CREATE DATABASE forced,
-- so the first touch of each page carries a real full-page write.
-- -------------------------------------------------------------------------
UPDATE mw_items SET touched = touched + 1 WHERE id % 7 = 2;
UPDATE mw_items SET k = k + 1 WHERE id % 29 = 5;
INSERT INTO mw_items (k, grp, payload, tags, doc, pos, span)
SELECT (i * 7919) % 100003, i % 50, md5(i::text),
       ARRAY['z' || (i % 3)],
       to_tsvector('simple', 'final' || (i % 19)),
       point(i % 50, i % 60), int4range(i, i + 5)
FROM generate_series(6501, 6800) AS i;
DELETE FROM mw_items WHERE id % 23 = 4;
SELECT count(nextval('mw_seq')) FROM generate_series(1, 100);
VACUUM mw_items;
