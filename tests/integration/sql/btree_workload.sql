-- Every B-tree record type, for the native redo oracle (test_redo.py).
-- Comments name the records made.  Autovacuum is off in the oracle, and
-- every record carries page images there, so the tables stay small.
--
-- INSERT_LEAF into a new index; rising keys split the rightmost leaf
-- (SPLIT_R); the first split makes a NEWROOT and an INSERT_UPPER into it,
-- and the wide text index grows a third level (another NEWROOT).
CREATE TABLE bt (k int, v text);
CREATE INDEX bt_k ON bt (k);
CREATE INDEX bt_v ON bt (v);
INSERT INTO bt SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 4000) g;
-- Falling keys split the leftmost leaf with the new item on the left
-- (SPLIT_L); random text keys split pages in the middle.
INSERT INTO bt SELECT -g, repeat(md5((-g)::text), 3)
  FROM generate_series(1, 1500) g;
-- Duplicates: DEDUP when a leaf full of equal keys would split, then
-- INSERT_POST when a heap TID lands inside an existing posting list
-- (rows reusing heap space freed by a DELETE and VACUUM).
CREATE TABLE dup (k int, pad text);
CREATE INDEX dup_k ON dup (k);
INSERT INTO dup SELECT g % 10, 'p' FROM generate_series(1, 6000) g;
DELETE FROM dup WHERE ctid IN (SELECT ctid FROM dup WHERE k = 3 LIMIT 300);
VACUUM dup;
INSERT INTO dup SELECT 3, 'q' FROM generate_series(1, 300) g;
INSERT INTO dup SELECT g % 10, 'r' FROM generate_series(1, 1000) g;
-- VACUUM on posting lists: some TIDs of a list go (the updates of a
-- VACUUM record), whole items go (its deletions).
DELETE FROM dup WHERE ctid IN
  (SELECT ctid FROM dup WHERE k = 5 ORDER BY random() LIMIT 200);
DELETE FROM dup WHERE k = 7;
VACUUM dup;
-- Posting list splits that split the page (SPLIT_* with a posting
-- offset): two interleaved keys fill whole leaves with posting lists of
-- key 0; deleting key 1 frees heap slots between key 0's TIDs, so new
-- key 0 rows get TIDs in the middle of full posting lists.
CREATE TABLE dup2 (k int, pad text);
CREATE INDEX dup2_k ON dup2 (k);
INSERT INTO dup2 SELECT g % 2, 'p' FROM generate_series(1, 10000) g;
DELETE FROM dup2 WHERE k = 1;
VACUUM dup2;
INSERT INTO dup2 SELECT 0, 'q' FROM generate_series(1, 3000) g;
-- Simple deletion (DELETE): index scans mark items LP_DEAD after the
-- rows die, then inserts into the page delete them instead of splitting.
CREATE TABLE sd (k int PRIMARY KEY, v int);
CREATE INDEX sd_v ON sd (v);
INSERT INTO sd SELECT g, g % 50 FROM generate_series(1, 2000) g;
DELETE FROM sd WHERE k % 3 <> 0;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM sd WHERE k > 0;
SELECT count(*) FROM sd WHERE v >= 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO sd SELECT g, g % 50 FROM generate_series(1, 2000) g
  WHERE g % 3 <> 0;
-- Bottom-up deletion of versions from non-HOT updates (DELETE records).
UPDATE sd SET v = v + 1 WHERE k % 3 = 0;
UPDATE sd SET v = v + 1 WHERE k % 3 = 0;
-- Page deletion: empty whole leaves, VACUUM marks them half-dead
-- (MARK_PAGE_HALFDEAD) and unlinks them (UNLINK_PAGE), twice.
DELETE FROM bt WHERE k BETWEEN 200 AND 1800;
VACUUM bt;
DELETE FROM bt WHERE k BETWEEN 1801 AND 3990 OR k BETWEEN -1490 AND -10;
VACUUM bt;
-- META_CLEANUP: a VACUUM that finds nothing to delete still records the
-- deleted pages count in the metapage; a fresh index's first VACUUM too.
CREATE TABLE mc (k int);
CREATE INDEX mc_k ON mc (k);
INSERT INTO mc SELECT g FROM generate_series(1, 1000) g;
VACUUM mc;
VACUUM bt;
-- Reusing deleted pages (REUSE_PAGE) once they are safe to recycle.
INSERT INTO bt SELECT g, repeat(md5(g::text), 3)
  FROM generate_series(200, 3990) g;
-- The fast root: a two-leaf index loses its left leaf, so the right leaf
-- is alone on its level and becomes the fast root (UNLINK_PAGE_META);
-- when that leaf splits, the downlink goes into the true root and the
-- metapage's fast root moves up with it (INSERT_META).
CREATE TABLE fr (k int);
CREATE INDEX fr_k ON fr (k);
INSERT INTO fr SELECT g FROM generate_series(1, 500) g;
DELETE FROM fr WHERE k <= 400;
VACUUM fr;
INSERT INTO fr SELECT g FROM generate_series(501, 2000) g;
-- A three-level index of long keys (upper-level splits, suffix
-- truncation), then whole subtrees of it emptied: the leaf's parent is
-- unlinked first (UNLINK_PAGE with the half-dead leaf as block 3).
CREATE TABLE wide (a text, b int);
CREATE INDEX wide_ab ON wide (a, b);
INSERT INTO wide SELECT repeat(chr(65 + g % 26), 300) || g, g
  FROM generate_series(1, 4000) g;
DELETE FROM wide WHERE b % 26 < 8;
VACUUM wide;
VACUUM wide;
