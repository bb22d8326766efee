"""Self-tests of the WAL oracle (pgwal, pgmask, walstate) against a real
PostgreSQL 15, with no tarnd.

One compute runs pgbench and sql/mixed_workload.sql with
wal_consistency_checking = all (part of it with wal_compression = pglz),
then stops.  The tests then check:
* pgwal decodes the same records as pg_waldump (LSNs, lengths, xids,
  prev links, block refs and full-page writes), restores every image, and
  its CRC check works;
* walstate's expected page of every block, masked with its record's rmgr
  mask, equals PostgreSQL's own page in the relation file masked with the
  relation's AM mask (what redo guarantees);
* walstate's snapshots at intermediate LSNs honour drops and truncations.
"""
import collections
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

import pgmask
import pgwal
import walstate
from pg import PG_BIN, Compute, lsn
from pgcompare import (FIRST_NORMAL_OID, fork_file_blocks, insert_lsn,
                       list_relations, psql_file, sequence_log_ahead,
                       spgist_meta_cache_only, vm_bits_cut_as_hole)

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "sql" / "mixed_workload.sql"

SETTINGS = {
    "synchronous_standby_names": "''",
    "wal_consistency_checking": "'all'",
    "max_prepared_transactions": "10",
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'4GB'",
}

class Run:
    """What the workload left behind: a stopped compute and its facts."""


@pytest.fixture(scope="module")
def run():
    c = Compute(name="oracle", settings=SETTINGS)
    try:
        t0 = time.time()
        c.initdb().start()
        r = Run()
        r.compute = c
        r.marks = {"start": insert_lsn(c)}
        c.pgbench("-i", "-s", "1", "-q")
        r.marks["pgbench_init"] = insert_lsn(c)
        c.psql("SELECT pg_switch_wal()")      # an XLOG SWITCH to decode
        # The pgbench run logs pglz-compressed images.
        c.psql("ALTER SYSTEM SET wal_compression = 'pglz'")
        c.psql("SELECT pg_reload_conf()")
        time.sleep(0.3)
        c.pgbench("-c", "2", "-j", "2", "-t", "300")
        c.psql("ALTER SYSTEM SET wal_compression = 'off'")
        c.psql("SELECT pg_reload_conf()")
        time.sleep(0.3)
        r.marks["pgbench_run"] = insert_lsn(c)
        psql_file(c, WORKLOAD)
        r.marks["mixed"] = insert_lsn(c)
        r.relations, r.databases = list_relations(c)
        c.psql("CHECKPOINT")
        c.stop("fast")
        r.workload_seconds = time.time() - t0
        r.wal_dir = c.pg_wal
        r.datadir = c.datadir
        r.first = pgwal.first_lsn(r.wal_dir)
        yield r
    finally:
        c.cleanup()


# ---------------------------------------------------------------------------
# (a) the decoder against pg_waldump
# ---------------------------------------------------------------------------
_LINE = re.compile(r"^rmgr: (\S+)\s+len \(rec/tot\):\s*(\d+)/\s*(\d+), "
                   r"tx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+), "
                   r"prev ([0-9A-F]+/[0-9A-F]+), desc: (.*)$")
_BLK = re.compile(r", blkref #(\d+): rel (\d+)/(\d+)/(\d+)(?: fork (\w+))? "
                  r"blk (\d+)( FPW(?: for WAL verification)?)?")
_FORKS = {"main": 0, "fsm": 1, "vm": 2, "init": 3}


def waldump_records(wal_dir, start):
    """pg_waldump's records from @start to the end of WAL, as tuples
    comparable with ours, plus its closing error message."""
    p = subprocess.run([str(PG_BIN / "pg_waldump"), "-p", str(wal_dir),
                        "-s", pgwal.lsn_str(start)],
                       capture_output=True, text=True, timeout=300)
    out = []
    for line in p.stdout.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        rmgr, rec_len, tot_len, xid, at, prev, desc = m.groups()
        blocks = []
        for b in _BLK.finditer(desc):
            bid, spc, db, rel, fork, blk, fpw = b.groups()
            kind = 0 if not fpw else (1 if fpw == " FPW" else 2)
            blocks.append((int(bid), int(spc), int(db), int(rel),
                           _FORKS[fork or "main"], int(blk), kind))
        out.append((lsn(at), rmgr, int(tot_len), int(rec_len), int(xid),
                    lsn(prev), tuple(blocks)))
    return out, p.stderr


def our_tuple(rec):
    blocks = tuple((b.id, b.spc, b.db, b.rel, b.fork, b.blkno,
                    0 if not b.has_image else (1 if b.apply_image else 2))
                   for b in rec.blocks)
    return (rec.lsn, rec.rmgr, rec.tot_len, rec.tot_len - rec.fpi_len,
            rec.xid, rec.prev, blocks)


def test_decoder_matches_waldump(run):
    t0 = time.time()
    reader = pgwal.WalReader(run.wal_dir)
    ours = []
    images = collections.Counter()
    hole_checked = 0
    no_image_after_start = 0
    for rec in reader.records(run.first):
        ours.append(our_tuple(rec))
        assert rec.end > rec.lsn
        if rec.lsn >= run.marks["start"]:
            # wal_consistency_checking = all: every block ref has an image
            no_image_after_start += sum(1 for b in rec.blocks
                                        if not b.has_image)
        for b in rec.blocks:
            if not b.has_image:
                continue
            kind = "pglz" if b.bimg_info & pgwal.BKPIMAGE_COMPRESS_PGLZ \
                else "plain"
            images[kind] += 1
            img = b.image
            assert len(img) == pgwal.BLCKSZ
            if b.bimg_info & pgwal.BKPIMAGE_HAS_HOLE:
                # The hole is [pd_lower, pd_upper) of a standard page.
                lower, upper = struct.unpack_from("<HH", img, 12)
                assert (lower, upper) == (b.hole_offset, b.hole_offset +
                                          b.hole_length), rec
                assert img[lower:upper] == bytes(upper - lower)
                hole_checked += 1
    ours_s = time.time() - t0
    theirs, err = waldump_records(run.wal_dir, run.first)
    n = min(len(ours), len(theirs))
    diffs = [(a, b) for a, b in zip(ours[:n], theirs[:n]) if a != b]
    by_rmgr = collections.Counter(t[1] for t in ours)
    fpw = collections.Counter(b[6] for t in ours for b in t[6])
    print(f"\n{len(ours)} records in {ours_s:.1f}s "
          f"({(reader.end_lsn - run.first) / 1e6:.0f} MB of WAL), "
          f"pg_waldump {len(theirs)}; per rmgr {dict(by_rmgr)}; "
          f"block refs {sum(fpw.values())}: no image {fpw[0]}, FPW "
          f"{fpw[1]}, verification {fpw[2]}; images {dict(images)}, "
          f"hole checked {hole_checked}; end: {reader.end_reason}")
    assert not diffs, f"{len(diffs)} records differ, first: {diffs[:3]}"
    assert len(ours) == len(theirs), (len(ours), len(theirs), err)
    # Both stop at the same place for the same reason.
    assert "invalid record length" in err and \
        "invalid record length" in reader.end_reason, (err,
                                                       reader.end_reason)
    assert pgwal.lsn_str(reader.end_lsn) in err
    assert len(ours) > 50000
    assert no_image_after_start == 0
    assert images["pglz"] > 100
    assert fpw[1] > 1000 and fpw[2] > 10000
    # The end bound works like pg_waldump -e.
    mid = run.marks["pgbench_run"]
    upto = [r for r in pgwal.iter_records(run.wal_dir, run.first, mid)]
    assert upto and upto[-1].end <= mid + 8
    assert [our_tuple(r) for r in upto] == ours[:len(upto)]
    # Starting anywhere finds the next record, even when it is not the
    # first one of its page, or when a record spans the page start.
    tried = 0
    for i in range(len(ours) // 2, len(ours) // 2 + 400, 7):
        target = ours[i][0]
        first = next(pgwal.iter_records(run.wal_dir, target - 1))
        assert first.lsn == target, (i, pgwal.lsn_str(target))
        tried += target % pgwal.XLOG_BLCKSZ > 64
    assert tried > 10


def test_crc(run, tmp_path):
    """The optional CRC check accepts real records and stops at a damaged
    one."""
    end = run.first + (6 << 20)
    reader = pgwal.WalReader(run.wal_dir, check_crc=True)
    recs = list(reader.records(run.first, end))
    assert len(recs) > 1000, reader.end_reason
    assert reader.end_reason == "end_lsn"
    # Damage one byte in the payload of a record in a copy of the segment
    # (a record that sits inside one page, so only the CRC can notice).
    victim = next(r for r in recs[len(recs) // 2:]
                  if r.tot_len > 64 and
                  r.lsn % pgwal.XLOG_BLCKSZ + r.tot_len < pgwal.XLOG_BLCKSZ)
    seg = tmp_path / "wal"
    seg.mkdir()
    name = pgwal.seg_file_name(run.first // pgwal.DEFAULT_SEG_SIZE)
    shutil.copyfile(run.wal_dir / name, seg / name)
    off = victim.lsn % pgwal.DEFAULT_SEG_SIZE + 24
    with open(seg / name, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x40]))
    reader = pgwal.WalReader(seg, check_crc=True)
    got = list(reader.records(run.first))
    assert got[-1].lsn < victim.lsn <= got[-1].end
    assert "checksum" in reader.end_reason, reader.end_reason


def test_overwrite_contrecord(run, tmp_path):
    """A record cut off by a crash, whose next page was rewritten to start
    with a new record (XLP_FIRST_IS_OVERWRITE_CONTRECORD): the reader drops
    the torn record and goes on with the new one.  Made by editing a copy
    of a real segment."""
    seg_size = pgwal.DEFAULT_SEG_SIZE
    segno = run.first // seg_size
    recs = list(pgwal.iter_records(run.wal_dir, run.first,
                                   (segno + 1) * seg_size, keep_raw=True))
    idx = next(i for i in range(1, len(recs))
               if recs[i].lsn // pgwal.XLOG_BLCKSZ !=
               (recs[i].end - 1) // pgwal.XLOG_BLCKSZ and
               recs[i].lsn % pgwal.XLOG_BLCKSZ != 0 and
               recs[i].lsn // seg_size == segno)
    torn, before = recs[idx], recs[idx - 1]
    small = next(r for r in recs if r.tot_len < 100 and not r.blocks and
                 r.lsn % pgwal.XLOG_BLCKSZ + r.tot_len < pgwal.XLOG_BLCKSZ)
    new_rec = bytearray(small.raw)
    struct.pack_into("<Q", new_rec, 8, before.lsn)          # xl_prev
    page = (torn.lsn // pgwal.XLOG_BLCKSZ + 1) * pgwal.XLOG_BLCKSZ
    name = pgwal.seg_file_name(segno)
    d = tmp_path / "wal"
    d.mkdir()
    data = bytearray((run.wal_dir / name).read_bytes())
    off = page % seg_size
    data[off:off + 2 * pgwal.XLOG_BLCKSZ] = bytes(2 * pgwal.XLOG_BLCKSZ)
    struct.pack_into("<HHIQI", data, off, pgwal.XLOG_PAGE_MAGIC,
                     pgwal.XLP_FIRST_IS_OVERWRITE_CONTRECORD, 1, page, 0)
    data[off + 24:off + 24 + len(new_rec)] = new_rec
    (d / name).write_bytes(bytes(data))
    reader = pgwal.WalReader(d)
    got = list(reader.records(run.first))
    assert [r.lsn for r in got[:-1]] == [r.lsn for r in recs[:idx]]
    assert got[-1].lsn == page + 24 and got[-1].prev == before.lsn
    assert got[-1].rmid == small.rmid and got[-1].info == small.info
    assert reader.overwritten == [torn.lsn]
    assert "invalid record length" in reader.end_reason


def test_pglz_roundtrip_edge_cases():
    # Literals only: control byte 0 announces 8 literal bytes.
    assert pgwal.pglz_decompress(b"\x00abcdefgh", 8) == b"abcdefgh"
    # A literal then an overlapping match: off 1, len 3+15+extra.
    src = bytes([0b10, ord("x"), 0x0F, 0x01, 5])
    assert pgwal.pglz_decompress(src, 24) == b"x" * 24
    with pytest.raises(ValueError):
        pgwal.pglz_decompress(bytes([0b1, 0x00, 0x05]), 10)


def _page(lower, upper, special, flags=0, prune=0):
    p = bytearray(pgwal.BLCKSZ)
    struct.pack_into("<IIHHHHHHI", p, 0, 1, 2, 0xABCD, flags, lower, upper,
                     special, pgwal.BLCKSZ | 4, prune)
    return p


def _lp(p, n, off, flags, length):
    struct.pack_into("<I", p, 24 + 4 * (n - 1),
                     off | (flags << 15) | (length << 17))


def test_mask_semantics():
    """Hand-made pages: what each mask blanks and what it keeps."""
    # Heap: three items on block 7.
    p = _page(24 + 12, 8000, 8192, flags=0x7, prune=99)
    p[36:8000] = b"\xEE" * (8000 - 36)              # free space
    _lp(p, 1, 8000, 1, 30)                         # normal, not frozen
    _lp(p, 2, 8040, 1, 24)                         # normal, frozen
    _lp(p, 3, 8080, 1, 28)                         # speculative insert
    for off, infomask in ((8000, 0x0902), (8040, 0x0F02), (8080, 0x0902)):
        struct.pack_into("<IIIHHHHHB", p, off, 100, 0, 5, 0, 7, 1, 3,
                         infomask, 24)
    p[8030:8032] = b"\x55\x55"                      # padding of item 1
    struct.pack_into("<H", p, 8080 + 16, 0xFFFE)    # speculative token
    m = pgmask.heap_mask(bytes(p), 7)
    h = pgmask.page_header(m)
    assert (h["lsn"], h["checksum"], h["flags"], h["prune_xid"]) == \
        (0, 0, 0, 0)
    assert m[36:8000] == bytes(8000 - 36)
    assert struct.unpack_from("<H", m, 8000 + 20)[0] == 0x0002
    assert struct.unpack_from("<H", m, 8040 + 20)[0] == 0x0302
    assert struct.unpack_from("<I", m, 8000 + 8)[0] == 0      # t_cid
    assert m[8030:8032] == b"\0\0"
    assert struct.unpack_from("<HHH", m, 8080 + 12) == (0, 7, 3)
    assert m[8000:8008] == p[8000:8008]            # xmin/xmax kept
    with pytest.raises(pgmask.MaskError):
        pgmask.heap_mask(bytes(pgwal.BLCKSZ), 0)   # a new page
    # Btree: lp flags are masked on leaves only.
    for leaf in (True, False):
        p = _page(28, 8100, 8176)
        _lp(p, 1, 8100, 3, 16)                     # LP_DEAD
        struct.pack_into("<IIIHH", p, 8176, 1, 2, 0, (1 if leaf else 0)
                         | 0x20 | 0x40 | 0x80, 77)
        m = pgmask.btree_mask(bytes(p), 1)
        w = struct.unpack_from("<I", m, 24)[0]
        assert (w >> 15) & 3 == (0 if leaf else 3)
        assert struct.unpack_from("<HH", m, 8176 + 12) == \
            ((1 if leaf else 0) | 0x80, 0)
    # GiST: NSN zeroed, FOLLOW_RIGHT forced on, HAS_GARBAGE off.
    p = _page(24, 8176, 8176)
    struct.pack_into("<IIIHH", p, 8176, 5, 6, 9, 0x10 | 0x1, 0xFF81)
    m = pgmask.gist_mask(bytes(p), 0)
    assert struct.unpack_from("<IIIHH", m, 8176) == (0, 0, 9, 0x9, 0xFF81)
    # GIN masks a deleted page whole, and tolerates a new page.
    p = _page(40, 8184, 8184)
    p[24:40] = b"\x11" * 16
    struct.pack_into("<IHH", p, 8184, 3, 0, 0x4)
    m = pgmask.gin_mask(bytes(p), 2)
    assert m[12:16] == bytes(4) and m[24:] == bytes(pgwal.BLCKSZ - 24)
    assert pgmask.gin_mask(bytes(pgwal.BLCKSZ), 0) == bytes(pgwal.BLCKSZ)
    # Sequence and generic pages keep hint bits; minimal masks LSN only.
    p = _page(28, 8000, 8184, flags=0x4, prune=5)
    for fn in (pgmask.seq_mask, pgmask.generic_mask):
        h = pgmask.page_header(fn(bytes(p), 0))
        assert (h["flags"], h["prune_xid"], h["lsn"]) == (0x4, 5, 0)
    assert pgmask.minimal_mask(bytes(p))[10:] == bytes(p)[10:]
    # The mask goes by rmgr; XLOG images take the AM's mask when asked.
    assert pgmask.mask_for_rmgr(9) is pgmask.heap_mask
    assert pgmask.mask_for_rmgr(0) is pgmask.minimal_mask
    assert pgmask.mask_for_rmgr(0, "btree") is pgmask.btree_mask
    r = pgmask.diff_report(bytes(p), bytes(_page(28, 8000, 8184)))
    assert "pd_flags" in r and "pd_prune_xid" in r, r


# ---------------------------------------------------------------------------
# (b) walstate's pages against PostgreSQL's relation files
# ---------------------------------------------------------------------------
def compare(run, snap):
    """Compare every block of every relation with the oracle; returns a
    report dict."""
    rep = collections.Counter()
    per_am = collections.Counter()
    mismatches = []
    notes = []
    seen_rnodes = set()
    for rel in run.relations:
        rnode = rel["rnode"]
        seen_rnodes.add(rnode)
        am = rel["am"]
        for fork in (0, 2):
            pages = fork_file_blocks(run.datadir, rel["path"], fork)
            if pages is None:
                continue
            wal_size = snap.size(*rnode, fork)
            if wal_size is not None:
                if wal_size > len(pages):
                    mismatches.append((rel["name"], fork, None,
                                       f"WAL size {wal_size} > file size "
                                       f"{len(pages)}"))
                rep["forks_sized"] += 1
                if wal_size == len(pages):
                    rep["forks_size_equal"] += 1
            for blkno, page in enumerate(pages):
                e = snap.get(rnode + (fork, blkno))
                tag = "vm" if fork == 2 else am
                if e is None:
                    if wal_size is not None and blkno >= wal_size:
                        rep["beyond_wal_size"] += 1
                    else:
                        rep["no_image"] += 1
                    if pgmask.is_new_page(page):
                        rep["no_image_new_page"] += 1
                    elif rnode[2] >= FIRST_NORMAL_OID:
                        # Created during the run, so every change to it was
                        # logged with an image (catalogs from initdb may
                        # have pages that never were).
                        mismatches.append((rel["name"], fork, blkno,
                                           "no image in the WAL"))
                    continue
                if not e.exact:
                    rep["inexact"] += 1
                    if rnode[2] >= FIRST_NORMAL_OID:
                        mismatches.append((rel["name"], fork, blkno,
                                           f"inexact: {e!r}"))
                    continue
                exp = e.page()
                if fork == 2:
                    # What PostgreSQL compares (heap_mask: the bitmap is
                    # masked away), and the bitmap itself.
                    rep["vm_compared"] += 1
                    if pgmask.heap_mask(page, blkno) == \
                            pgmask.heap_mask(exp, blkno):
                        rep["vm_equal_heap_mask"] += 1
                    else:
                        mismatches.append((rel["name"], fork, blkno,
                                           "VM header: " + pgmask.diff_report(
                                               pgmask.heap_mask(page, blkno),
                                               pgmask.heap_mask(exp, blkno))))
                    if pgmask.minimal_mask(page) == \
                            pgmask.minimal_mask(exp):
                        rep["vm_equal_unmasked"] += 1
                    elif vm_bits_cut_as_hole(e, page, exp):
                        rep["vm_bits_lost_in_wal_log_copy"] += 1
                        notes.append("VM pages copied by CREATE DATABASE "
                                     "STRATEGY WAL_LOG are logged as "
                                     "standard pages: the bitmap is the "
                                     "hole, redo restores them empty")
                    else:
                        why = pgmask.diff_report(pgmask.minimal_mask(page),
                                                 pgmask.minimal_mask(exp))
                        mismatches.append((rel["name"], fork, blkno,
                                           f"VM bits {rnode} {e!r}: {why}"))
                    continue
                try:
                    mine = pgmask.mask_for_am(am)(page, blkno)
                    want = pgmask.mask_for_rmgr(e.rmid, am)(exp, blkno)
                except pgmask.MaskError as err:
                    if page == exp or (pgmask.is_new_page(page) and
                                       pgmask.is_new_page(exp)):
                        per_am[tag] += 1
                        rep["compared"] += 1
                        continue
                    mismatches.append((rel["name"], fork, blkno,
                                       f"mask error {err}"))
                    continue
                rep["compared"] += 1
                per_am[tag] += 1
                if e.rmid == 0:
                    rep["compared_fpi"] += 1
                if e.source:
                    rep["compared_cloned"] += 1
                if mine == want:
                    continue
                if am == "sequence" and sequence_log_ahead(page, exp):
                    rep["sequence_log_ahead"] += 1
                    notes.append(f"{rel['name']}: sequence page is behind "
                                 f"the WAL's logged-ahead value")
                    continue
                if am == "spgist" and blkno == 0 and \
                        spgist_meta_cache_only(mine, want):
                    rep["spgist_meta_cache"] += 1
                    notes.append("SP-GiST meta page: lastUsedPages is "
                                 "written without WAL")
                    continue
                mismatches.append((rel["name"], fork, blkno,
                                   f"{e!r}: " + pgmask.diff_report(mine,
                                                                   want)))
    # Every live relation the oracle knows is in the catalogs (dropped
    # ones are gone).  template0 cannot be queried: skip db 4.
    db_oids = {r["rnode"][1] for r in run.relations}
    unknown = [r for r in snap.relations
               if r[1] in db_oids and r not in seen_rnodes
               and any(k[:3] == r for k in snap.blocks)]
    return rep, per_am, mismatches, notes, unknown


def test_pages_match_relation_files(run):
    t0 = time.time()
    state = walstate.WalState()
    reader = pgwal.WalReader(run.wal_dir)
    for rec in reader.records(run.first):
        state.apply(rec)
    snap = state.snapshot()
    t1 = time.time()
    rep, per_am, mismatches, notes, unknown = compare(run, snap)
    t2 = time.time()
    print(f"\nworkload {run.workload_seconds:.1f}s; oracle over "
          f"{state.stats['records']} records in {t1 - t0:.1f}s "
          f"({len(snap.blocks)} blocks with images); compare {t2 - t1:.1f}s"
          f"\nstats {state.stats}\nreport {dict(rep)}\nper AM "
          f"{dict(per_am)}\nnotes {sorted(set(notes))}")
    for m in mismatches[:20]:
        print("MISMATCH", m)
    assert not unknown, f"relations the oracle keeps but the catalogs " \
                        f"lack: {unknown[:10]}"
    assert not mismatches, f"{len(mismatches)} mismatches: {mismatches[:5]}"
    assert rep["compared"] > 3000
    for am in ("heap", "btree", "gin", "gist", "hash", "brin", "spgist",
               "sequence"):
        assert per_am[am] > 0, (am, per_am)
    assert rep["vm_compared"] > 10
    assert rep["compared_cloned"] > 10     # pages copied by FILE_COPY
    assert state.stats["vm_clears"] > 0
    assert state.stats["vm_truncate_edits"] > 0


# ---------------------------------------------------------------------------
# (c) snapshots at many LSNs
# ---------------------------------------------------------------------------
def test_snapshots_follow_drops_and_truncates(run):
    """Snapshots taken in one pass agree with the records: a relation
    listed in a commit/abort is there before it and gone after; a
    truncated fork loses its tail blocks at the truncate record."""
    events = []
    for rec in pgwal.iter_records(run.wal_dir, run.marks["pgbench_run"]):
        if rec.rmid == pgwal.RM_XACT_ID:
            x = pgwal.parse_xact(rec.info, rec.main_data)
            if x.get("rels"):
                events.append(("drop", rec, x))
        elif rec.rmid == pgwal.RM_SMGR_ID and \
                rec.info & 0xF0 == pgwal.XLOG_SMGR_TRUNCATE:
            events.append(("truncate", rec,
                           pgwal.parse_smgr_truncate(rec.main_data)))
        elif rec.rmid == pgwal.RM_DBASE_ID:
            events.append(("db", rec, pgwal.parse_dbase(rec.info,
                                                       rec.main_data)))
    kinds = collections.Counter((e[0], e[2].get("type")) for e in events)
    print(f"\nevents {dict(kinds)}")
    assert kinds[("drop", "COMMIT")] > 0 and kinds[("drop", "ABORT")] > 0
    assert kinds[("drop", "COMMIT_PREPARED")] > 0
    assert kinds[("drop", "ABORT_PREPARED")] > 0
    assert kinds[("truncate", None)] > 0
    assert kinds[("db", "CREATE_WAL_LOG")] >= 2
    assert kinds[("db", "CREATE_FILE_COPY")] >= 1
    assert kinds[("db", "DROP")] == 1
    targets = set(run.marks.values())
    for _, rec, _ in events:
        targets.add(rec.lsn)     # just before the record (its end > lsn)
        targets.add(rec.end)     # just after it
    t0 = time.time()
    snaps = walstate.build_snapshots(
        pgwal.iter_records(run.wal_dir, run.first), targets)
    print(f"{len(snaps)} snapshots in {time.time() - t0:.1f}s")
    for s in snaps.values():
        assert all(e.end <= s.lsn for e in s.blocks.values())
    checked = collections.Counter()
    for kind, rec, x in events:
        before, after = snaps[rec.lsn], snaps[rec.end]
        if kind == "drop":
            for rnode in x["rels"]:
                assert rnode not in after.relations, (rec, rnode)
                assert not after.blocks_of(*rnode), (rec, rnode)
                if before.blocks_of(*rnode):
                    checked["dropped_with_blocks"] += 1
        elif kind == "truncate":
            rnode, n = x["rnode"], x["blkno"]
            assert all(b < n for b in after.blocks_of(*rnode))
            assert after.size(*rnode) <= n
            if any(b >= n for b in before.blocks_of(*rnode)):
                checked["truncated_blocks"] += 1
            vm_before = before.size(*rnode, 2)
            if vm_before:
                checked["vm_truncated"] += 1
        elif x["type"] == "DROP":
            gone = [r for r in after.relations if r[1] == x["db_id"]]
            assert not gone
            assert any(r[1] == x["db_id"] for r in before.relations)
            checked["db_dropped"] += 1
        elif x["type"] == "CREATE_FILE_COPY":
            src = {r[2] for r in before.relations
                   if r[:2] == (x["src_tablespace_id"], x["src_db_id"])}
            dst = {r[2] for r in after.relations
                   if r[:2] == (x["tablespace_id"], x["db_id"])}
            assert src and src == dst
            checked["db_cloned"] += 1
    print(f"checked {dict(checked)}")
    assert checked["dropped_with_blocks"] > 5
    assert checked["truncated_blocks"] > 0
    assert checked["db_dropped"] == 1 and checked["db_cloned"] >= 1
    final = snaps[max(targets)]
    assert final.lsn == max(targets)
