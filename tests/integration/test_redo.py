"""Native redo proven against PostgreSQL: the consistency oracle.

A PostgreSQL 15 compute runs with wal_consistency_checking = all, so every
record carries an image of each page it touches as the page is after the
change.  tarnd runs with trust_consistency_images = off: those images are
only checked here, never stored, and every page is rebuilt by tarn's own
redo from the import's images and the WAL records.  The workload is
pgbench plus sql/heap_workload.sql (every Heap and Heap2 record type that
changes a page), sql/btree_workload.sql (every B-tree record type) and
sql/hash_workload.sql (every Hash record type that changes a page),
sql/gin_workload.sql, sql/brin_workload.sql and sql/generic_workload.sql
(every GIN, BRIN and Generic record type), sql/gist_workload.sql and
sql/spgist_workload.sql (every GiST and SP-GiST record type PostgreSQL
writes at wal_level replica); the test checks those all occur.

At the final LSN and at intermediate LSNs, every block whose last change
logged an image reads back through get_page equal to that image under the
mask of its record's resource manager (reference 5.3).  Blocks of
resource managers whose redo is not written yet (the other index
AMs, for now) must be refused with 501 naming the record, never
served wrong; they are counted, and the test fails on any other answer.
"""
import collections
import time
from pathlib import Path

import pytest

import pgmask
import pgwal
import walstate
from conftest import Tarnd, assert_clean_exit
from pg import Compute, lsn_str
from pgcompare import insert_lsn, list_relations, psql_file
from tarnpages import (PageReader, adopt_new_compute, redocheck,
                       stop_and_ingest)

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "sql" / "heap_workload.sql"
BTREE_WORKLOAD = HERE / "sql" / "btree_workload.sql"
HASH_WORKLOAD = HERE / "sql" / "hash_workload.sql"
GIN_WORKLOAD = HERE / "sql" / "gin_workload.sql"
BRIN_WORKLOAD = HERE / "sql" / "brin_workload.sql"
GENERIC_WORKLOAD = HERE / "sql" / "generic_workload.sql"
GIST_WORKLOAD = HERE / "sql" / "gist_workload.sql"
SPGIST_WORKLOAD = HERE / "sql" / "spgist_workload.sql"
N_LSNS = 10
# Resource managers whose redo tarn implements (XLOG: images only).
NATIVE = {"XLOG", "Heap", "Heap2", "Sequence", "Btree", "Hash", "Gin",
          "BRIN", "Generic", "Gist", "SPGist"}

BTREE_TYPES = ("INSERT_LEAF", "INSERT_UPPER", "INSERT_META", "SPLIT_L",
               "SPLIT_R", "INSERT_POST", "DEDUP", "DELETE", "UNLINK_PAGE",
               "UNLINK_PAGE_META", "NEWROOT", "MARK_PAGE_HALFDEAD", "VACUUM",
               "REUSE_PAGE", "META_CLEANUP")

HASH_TYPES = ("INIT_META_PAGE", "INIT_BITMAP_PAGE", "INSERT", "ADD_OVFL_PAGE",
              "SPLIT_ALLOCATE_PAGE", "SPLIT_PAGE", "SPLIT_COMPLETE",
              "MOVE_PAGE_CONTENTS", "SQUEEZE_PAGE", "DELETE", "SPLIT_CLEANUP",
              "UPDATE_META_PAGE", "VACUUM_ONE_PAGE")

GIN_TYPES = (None, "CREATE_PTREE", "INSERT", "SPLIT", "VACUUM_PAGE",
             "DELETE_PAGE", "UPDATE_META_PAGE", "INSERT_LISTPAGE",
             "DELETE_LISTPAGE", "VACUUM_DATA_LEAF_PAGE")
BRIN_TYPES = ("CREATE_INDEX", "INSERT", "UPDATE", "SAMEPAGE_UPDATE",
              "REVMAP_EXTEND", "DESUMMARIZE")
GENERIC_TYPES = ("GENERIC",)
# GiST record types by info >> 4 (None: unused codes).  ASSIGN_LSN is
# only written at wal_level minimal, so the workload cannot make it.
GIST_NAMES = ("PAGE_UPDATE", "DELETE", "PAGE_REUSE", "PAGE_SPLIT", None,
              None, "PAGE_DELETE", "ASSIGN_LSN")
GIST_TYPES = ("PAGE_UPDATE", "DELETE", "PAGE_REUSE", "PAGE_SPLIT",
              "PAGE_DELETE")
SPGIST_NAMES = (None, "ADD_LEAF", "MOVE_LEAFS", "ADD_NODE", "SPLIT_TUPLE",
                "PICKSPLIT", "VACUUM_LEAF", "VACUUM_ROOT", "VACUUM_REDIRECT")


def _present(names):
    return tuple(n for n in names if n is not None)


# The index workloads whose every record type is checked, and where
# right after the last record of each type the pages are compared too: rmgr id -> (rmgr name, opmask, names by
# (info & opmask) >> 4, types that must occur).
TYPED = {
    pgwal.RM_HASH_ID: ("Hash", 0xF0, HASH_TYPES, HASH_TYPES),
    pgwal.RM_GIN_ID: ("Gin", 0xF0, GIN_TYPES, _present(GIN_TYPES)),
    pgwal.RM_BRIN_ID: ("BRIN", 0x70, BRIN_TYPES, BRIN_TYPES),
    pgwal.RM_GENERIC_ID: ("Generic", 0xF0, GENERIC_TYPES, GENERIC_TYPES),
    pgwal.RM_GIST_ID: ("Gist", 0xF0, GIST_NAMES, GIST_TYPES),
    pgwal.RM_SPGIST_ID: ("SPGist", 0xF0, SPGIST_NAMES,
                         _present(SPGIST_NAMES)),
}

COMPUTE_SETTINGS = {
    "wal_consistency_checking": "'all'",
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'4GB'",
}
# redo_inline_max 4: most reads rebuild their page on the worker pool.
TARND_SETTINGS = {"checkpoint_distance": "8MB", "log_level": "info",
                  "redo_inline_max": "4"}


GIN_VARIANTS = ("entry leaf insert", "entry internal insert",
                "data leaf insert", "data internal insert",
                "segment DELETE", "segment INSERT", "segment REPLACE",
                "segment ADDITEMS", "split finishing a child split")


def gin_segment_actions(data):
    """The action types of a ginxlogRecompressDataLeaf."""
    n, at = int.from_bytes(data[0:2], "little"), 2
    for _ in range(n):
        action = data[at + 1]
        at += 2
        if action in (2, 3):            # INSERT, REPLACE: a segment
            nbytes = int.from_bytes(data[at + 6:at + 8], "little")
            at += 8 + nbytes + (nbytes & 1)
        elif action == 4:               # ADDITEMS: u16 count, TIDs
            at += 2 + 6 * int.from_bytes(data[at:at + 2], "little")
        yield action


def gin_variants(run):
    v = collections.Counter()
    names = {1: "DELETE", 2: "INSERT", 3: "REPLACE", 4: "ADDITEMS"}
    for rec in pgwal.iter_records(run.compute.pg_wal, run.start, run.final):
        if rec.rmid != pgwal.RM_GIN_ID:
            continue
        op = rec.rectype
        leafdata = None
        if op == 0x20:                  # INSERT
            flags = int.from_bytes(rec.main_data[0:2], "little")
            kind = "data" if flags & 1 else "entry"
            level = "leaf" if flags & 2 else "internal"
            v[f"{kind} {level} insert"] += 1
            b = rec.block(0)
            if flags & 3 == 3 and b is not None and b.data_len:
                leafdata = b.data
        elif op == 0x90:                # VACUUM_DATA_LEAF_PAGE
            b = rec.block(0)
            if b is not None and b.data_len:
                leafdata = b.data
        elif op == 0x30 and rec.block(3) is not None:
            v["split finishing a child split"] += 1
        if leafdata is not None:
            for a in gin_segment_actions(leafdata):
                v[f"segment {names.get(a, a)}"] += 1
    return v


class Run:
    pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redo")
    t = Tarnd(tmp, sets=TARND_SETTINGS).start()
    c = Compute(name="redo", settings=COMPUTE_SETTINGS)
    try:
        r = Run()
        r.tarnd, r.compute = t, c
        r.tenant, r.tl, r.start = adopt_new_compute(t, c)
        c.pgbench("-i", "-s", "1", "-q")
        c.pgbench("-c", "2", "-j", "2", "-t", "200")
        psql_file(c, WORKLOAD)
        psql_file(c, BTREE_WORKLOAD)
        psql_file(c, HASH_WORKLOAD)
        psql_file(c, GIN_WORKLOAD)
        psql_file(c, BRIN_WORKLOAD)
        psql_file(c, GENERIC_WORKLOAD)
        psql_file(c, GIST_WORKLOAD)
        psql_file(c, SPGIST_WORKLOAD)
        mid = insert_lsn(c)
        r.relations, _ = list_relations(c)
        c.psql("CHECKPOINT")
        r.final = stop_and_ingest(t, c, r.tenant, r.tl, mid)
        r.reader = PageReader(t, r.tenant, r.tl)
        yield r
        r.reader.close()
    finally:
        c.cleanup()
        assert_clean_exit(t)


def test_timeline_does_not_trust_images(run):
    d = run.tarnd.timeline(run.tenant, run.tl)
    assert d["storage"]["trust_consistency_images"] is False, d["storage"]
    assert d["storage"]["ingest"] == "idle", d["storage"]


def test_redo_equals_logged_images(run):
    ends = []
    typed_ends = collections.defaultdict(lambda: collections.defaultdict(list))
    for rec in pgwal.iter_records(run.compute.pg_wal, run.start, run.final):
        ends.append(rec.end)
        if rec.rmid in TYPED:
            _, opmask, names, _ = TYPED[rec.rmid]
            op = (rec.rectype & opmask) >> 4
            name = names[op] if op < len(names) else None
            if name is not None:
                typed_ends[rec.rmid][name].append(rec.end)
    step = len(ends) // N_LSNS
    targets = [ends[step * (i + 1)] for i in range(N_LSNS - 1)]
    targets.append(run.final)
    # The index workloads are a small part of the WAL: also compare right
    # after the last record of each of their types, so the pages each type
    # changes are checked through tarnd's reads as that record left them
    # (redocheck, below, checks every record of every type).
    for rmid, (rmgr, _, _, want) in TYPED.items():
        hs = collections.Counter(
            {t: len(e) for t, e in typed_ends[rmid].items()})
        print(f"\n{rmgr} records:", dict(hs))
        assert set(want) <= set(hs), set(want) - set(hs)
        for e in typed_ends[rmid].values():
            targets.append(e[-1])
    targets = sorted(set(targets))
    snaps = walstate.build_snapshots(
        pgwal.iter_records(run.compute.pg_wal, run.start), targets)
    ams = {rel["rnode"]: rel["am"] for rel in run.relations}
    rep, refused = collections.Counter(), collections.Counter()
    mismatches = []
    t0 = time.time()
    for at in targets:
        for key, e in snaps[at].blocks.items():
            spc, db, rel, fork, blk = key
            if not e.exact or not e.supported:
                continue
            rmgr = pgwal.rmgr_name(e.rmid)
            status, body = run.reader.page(spc, db, rel, fork, blk, at)
            if status == 501 and rmgr not in NATIVE:
                assert b"is not implemented yet" in body, body
                refused[rmgr] += 1
                continue
            if status != 200:
                mismatches.append((lsn_str(at), key, rmgr,
                                   f"HTTP {status}: {body[:300]!r}"))
                continue
            want = e.page()
            try:
                mask = pgmask.mask_for_rmgr(e.rmid, ams.get(key[:3]))
                a, b = mask(body, blk), mask(want, blk)
            except pgmask.MaskError:
                a, b = body, want
            rep["compared"] += 1
            rep[f"rmgr_{rmgr}"] += 1
            if a != b:
                mismatches.append((lsn_str(at), key, rmgr, f"{e!r}: "
                                   + pgmask.diff_report(a, b)))
    print(f"\n{len(targets)} LSNs in {time.time() - t0:.1f}s: {dict(rep)}; "
          f"refused (redo not written yet) {dict(refused)}; "
          f"{len(mismatches)} mismatches")
    print("mismatches by rmgr:",
          dict(collections.Counter(m[2] for m in mismatches)))
    for m in mismatches[:10]:
        print("MISMATCH", m)
    assert not mismatches
    assert rep["rmgr_Heap"] > 1000 and rep["rmgr_Heap2"] > 100, rep
    assert rep["rmgr_Sequence"] >= 1, rep
    assert rep["rmgr_Btree"] > 1000, rep
    # sql/btree_workload.sql makes every B-tree record type.
    bt, variants = collections.Counter(), collections.Counter()
    for rec in pgwal.iter_records(run.compute.pg_wal, run.start, run.final):
        if rec.rmid != pgwal.RM_BTREE_ID:
            continue
        name = BTREE_TYPES[rec.rectype >> 4]
        bt[name] += 1
        md = rec.main_data
        if name.startswith("SPLIT") and int.from_bytes(md[8:10], "little"):
            variants["split of a posting list"] += 1
        if name.startswith("UNLINK") and rec.block(3) is not None:
            variants["unlink of a parent"] += 1
        if name == "VACUUM" and int.from_bytes(md[2:4], "little"):
            variants["vacuum shrinking posting lists"] += 1
        if name == "DELETE" and int.from_bytes(md[6:8], "little"):
            variants["delete shrinking posting lists"] += 1
    print("Btree records:", dict(bt), dict(variants))
    assert set(bt) == set(BTREE_TYPES), set(BTREE_TYPES) - set(bt)
    # sql/gin_workload.sql makes every kind of GIN insert and every leaf
    # segment action (ginRedoRecompress).
    gv = gin_variants(run)
    print("Gin variants:", dict(gv))
    assert set(gv) == set(GIN_VARIANTS), set(GIN_VARIANTS) - set(gv)
    # sql/hash_workload.sql made every Hash record type (checked above).
    assert rep["rmgr_Hash"] > 100, rep
    # The GIN, BRIN, Generic, GiST and SP-GiST workloads made every type
    # (checked above).
    assert rep["rmgr_Gin"] > 100, rep
    assert rep["rmgr_BRIN"] > 100, rep
    assert rep["rmgr_Generic"] > 100, rep
    assert rep["rmgr_Gist"] > 100, rep
    assert rep["rmgr_SPGist"] > 100, rep
    # The pages came from tarn's redo, not from stored images.
    metrics = run.tarnd.get("/metrics").body
    applied = [line for line in metrics.splitlines()
               if line.startswith('tarn_redo_total{kind="pg_record"}')]
    print(applied)
    assert applied and int(applied[0].split()[-1]) > 10000, applied
    # ... many of them on the worker pool (redo_inline_max = 4).
    off = [line for line in metrics.splitlines()
           if line.startswith("tarn_getpage_offloaded_total ")]
    print(off)
    assert off and int(off[0].split()[-1]) > 100, off



def test_redo_of_every_record_equals_its_image(run):
    """The C oracle (tests/tools/redocheck): every record of the workload,
    replayed in WAL order with tarn's redo_apply, leaves each page it
    touches equal to the image PostgreSQL logged for it, under the
    record's rm_mask: PostgreSQL's own consistency check, block by block,
    where the test above samples LSNs through tarnd's read path."""
    rep, out, rc = redocheck(run.compute.pg_wal, run.start, run.final)
    print("\n" + out)
    rm = rep["rmgrs"]
    bad = {n: s for n, s in rm.items() if s["mismatches"] or s["errors"]
           or (n in NATIVE and s["unsupported"])}
    assert rc == 0 and not bad, bad
    assert rm["Heap"]["checked"] > 10000 and rm["Heap2"]["checked"] > 1000, rm
    assert rm["Btree"]["checked"] > 10000 and rm["Hash"]["checked"] > 1000, rm
    assert rm["Sequence"]["checked"] >= 1, rm
    # The comparison can fail: with only pd_lsn and pd_checksum masked,
    # the hint bits PostgreSQL sets without WAL make pages differ.
    loose, _, rc = redocheck(run.compute.pg_wal, run.start, run.final,
                             "--minimal-mask", "--show", "0")
    assert rc == 1 and loose["rmgrs"]["Heap"]["mismatches"] > 0, loose
