"""The storage engine proven exact against PostgreSQL itself.

A PostgreSQL 15 compute runs with wal_consistency_checking = all, so every
record of a page rmgr carries an image of each page it touches, as the
page is after the change.  Its data directory is imported into tarnd
(image layers at the shutdown checkpoint), it is started and attached, and
tarnd ingests its WAL with consistency-image mode off, so every page is
rebuilt by tarn's own redo and the logged images only judge it (this is
the consistency oracle on the mixed DDL and DML workload; consistency-image
mode itself is exercised by test_storage_crash.py), with a small
checkpoint_distance so that delta layers, image layers and WAL removal all
happen during the run.  The workload is pgbench plus
sql/mixed_workload.sql (DDL and DML, HOT, VACUUM, TRUNCATE, DROP, both
CREATE DATABASE strategies, sequences, GIN, GiST, hash, BRIN, SP-GiST and
two-phase commit).

Then:
* at the final LSN and at 20 intermediate LSNs, every block for which the
  WAL holds an image reads back through get_page equal to that image,
  under the mask of its record's resource manager (reference 5.3), and
  every relation fork created during the run has the size the WAL gives;
* after a CHECKPOINT on the compute, every block of every relation file
  equals tarn's page at that LSN under the relation's mask, the visibility
  map in full; the only differences allowed are the three changes
  PostgreSQL makes without WAL, each recognised by where the bytes differ;
* a branch at an intermediate LSN reads its parent's pages below the
  branch point, and a branch of that branch too;
* the LSN by timestamp, database sizes, and a restart (which re-ingests
  from disk_consistent_lsn) give consistent answers;
* tests/tools/redocheck replays every record of the run with tarn's redo
  and finds every block equal to its logged image.
"""
import collections
import random
import time
from pathlib import Path

import pytest

import pgmask
import pgwal
import walstate
from conftest import Tarnd, assert_clean_exit, wait_until
from pg import Compute, lsn, lsn_str
from pgcompare import insert_lsn, list_relations, psql_file
from tarnpages import PageReader, compare_files, compare_images, redocheck

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "sql" / "mixed_workload.sql"

COMPUTE_SETTINGS = {
    "wal_consistency_checking": "'all'",
    "max_prepared_transactions": "10",
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'4GB'",
}

TARND_SETTINGS = {
    "trust_consistency_images": "off",
    "checkpoint_distance": "16MB",
    "image_creation_threshold": "3",
    "log_level": "info",
}

N_INTERMEDIATE = 20


class Run:
    """What the workload left: tarnd with the timeline, the stopped
    compute's data directory, and the facts gathered on the way."""


def wait_ingested(t, tenant, tl, target, timeout=180):
    def caught():
        d = t.timeline(tenant, tl)
        assert d["storage"]["ingest"] != "failed", d["storage"]
        return lsn(d["last_record_lsn"]) >= target
    wait_until(caught, timeout=timeout,
               why=f"ingest to reach {lsn_str(target)}")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("storage")
    t = Tarnd(tmp, sets=TARND_SETTINGS).start()
    c = Compute(name="storage", settings=COMPUTE_SETTINGS)
    try:
        r = Run()
        r.tarnd, r.compute = t, c
        c.initdb()
        r.tenant, main = t.adopt(c, name="main")
        r.tl = main["timeline_id"]
        r.start = lsn(main["start_lsn"])
        r.marks = {"start": r.start}
        now = ("SELECT to_char(now() AT TIME ZONE 'UTC', "
               "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        r.times = {"before": c.psql(now)}
        c.pgbench("-i", "-s", "2", "-q")
        r.marks["pgbench_init"] = insert_lsn(c)
        time.sleep(0.05)
        r.times["after_init"] = c.psql(now)
        time.sleep(0.05)
        c.pgbench("-c", "2", "-j", "2", "-t", "300")
        r.marks["pgbench_run"] = insert_lsn(c)
        psql_file(c, WORKLOAD)
        r.marks["mixed"] = insert_lsn(c)
        r.relations, r.databases = list_relations(c)
        r.db_oids = {db: int(c.psql(f"SELECT oid FROM pg_database WHERE "
                                    f"datname = '{db}'"))
                     for db in r.databases}
        r.db_sizes = {db: int(c.psql(f"SELECT pg_database_size('{db}')"))
                      for db in r.databases}
        c.psql("CHECKPOINT")
        c.stop("fast")
        # The shutdown checkpoint is the last record.
        end = pgwal.WalReader(c.pg_wal)
        r.final = max(rec.end for rec in end.records(r.marks["mixed"]))
        wait_ingested(t, r.tenant, r.tl, r.final)
        r.detail = t.timeline(r.tenant, r.tl)
        r.reader = PageReader(t, r.tenant, r.tl)
        yield r
        r.reader.close()
    finally:
        c.cleanup()
        assert_clean_exit(t)


@pytest.fixture(scope="module")
def snapshots(run):
    """The oracle at the final LSN and at N_INTERMEDIATE record ends spread
    over the run."""
    ends = [rec.end for rec in pgwal.iter_records(run.compute.pg_wal,
                                                  run.start, run.final)]
    step = len(ends) // (N_INTERMEDIATE + 1)
    targets = [ends[step * (i + 1)] for i in range(N_INTERMEDIATE)]
    targets.append(run.final)
    snaps = walstate.build_snapshots(
        pgwal.iter_records(run.compute.pg_wal, run.start), targets)
    return targets, snaps


def am_by_rnode(run):
    return {rel["rnode"]: rel["am"] for rel in run.relations}


def test_engine_did_its_work(run):
    """The run exercised what it is meant to: several delta layers and
    image layers were written and WAL below them was removed."""
    s = run.detail["storage"]
    print(f"\nstorage {s}, detail {run.detail}")
    assert s["ingest"] == "idle" and s["error"] == ""
    assert s["delta_layers"] >= 3, s
    assert s["image_layers"] >= 2, s
    assert lsn(run.detail["disk_consistent_lsn"]) > run.start
    assert lsn(run.detail["wal_start_lsn"]) > run.start
    metrics = run.tarnd.get("/metrics").body
    assert "tarn_layer_flushes_total{result=\"ok\"}" in metrics
    assert "tarn_page_cache_hit_ratio{kind=\"page\"}" in metrics


def test_pages_equal_logged_images(run, snapshots):
    targets, snaps = snapshots
    ams = am_by_rnode(run)
    rep = collections.Counter()
    mismatches = []
    t0 = time.time()
    for at in targets:
        compare_images(run.reader, snaps[at], at, ams, rep, mismatches)
    took = time.time() - t0
    print(f"\n{len(targets)} LSNs, {rep['compared']} pages compared, "
          f"{rep['sizes']} sizes, {len(mismatches)} mismatches in "
          f"{took:.1f}s ({run.reader.requests} requests); {dict(rep)}")
    for m in mismatches[:10]:
        print("MISMATCH", m)
    assert not mismatches
    assert rep["compared"] > 20000
    assert rep["rmgr_Heap"] > 0 and rep["rmgr_Btree"] > 0
    assert rep["rmgr_Gin"] > 0 and rep["rmgr_Gist"] > 0


def test_relation_files_equal_tarn_pages(run, snapshots):
    """Every block of every relation file of the stopped compute (after
    CHECKPOINT) against tarn's page at the final LSN."""
    _, snaps = snapshots
    rep, per_am, mismatches, notes = compare_files(
        run.reader, run.relations, run.compute.datadir, run.final,
        snaps[run.final])
    print(f"\n{rep['pages']} pages of {len(run.relations)} relations; "
          f"{dict(rep)}; per AM {dict(per_am)}; {len(mismatches)} "
          f"mismatches; notes {sorted(notes)}")
    for m in mismatches[:10]:
        print("MISMATCH", m)
    assert not mismatches
    assert rep["pages"] > 4000
    for am in ("heap", "btree", "gin", "gist", "hash", "brin", "spgist",
               "sequence", "vm"):
        assert per_am[am] > 0, (am, per_am)


SLRU_DIRS = ("pg_xact", "pg_multixact/members", "pg_multixact/offsets")


def test_slru_files_equal_tarn_pages(run):
    """pg_xact and pg_multixact of the stopped compute, page for page,
    byte for byte: tarn's CLOG and multixact values are applied natively."""
    counts = collections.Counter()
    base = f"/v1/tenant/{run.tenant}/timeline/{run.tl}/slru_page"
    for kind in SLRU_DIRS:
        d = run.compute.datadir / kind
        for f in sorted(d.iterdir()):
            segno = int(f.name, 16)
            data = f.read_bytes()
            for blk in range(len(data) // 8192):
                r = run.tarnd.get(f"{base}?kind={kind}&segno={segno}"
                                  f"&blk={blk}&lsn={lsn_str(run.final)}")
                assert r.status == 200, (kind, segno, blk, r)
                want = data[blk * 8192:(blk + 1) * 8192]
                assert r.raw == want, (kind, segno, blk,
                                       pgmask.diff_report(r.raw, want))
                counts[kind] += 1
                counts[kind + " nonzero"] += want != bytes(8192)
    print(f"\nSLRU pages equal: {dict(counts)}")
    assert counts["pg_xact nonzero"] >= 1
    assert counts["pg_multixact/members nonzero"] >= 1
    assert counts["pg_multixact/offsets nonzero"] >= 1


def test_database_sizes(run):
    """db_size sums the relation forks tarn knows; PostgreSQL's
    pg_database_size also counts files such as PG_VERSION and the FSM
    pages extended without WAL, so it may be a little larger."""
    for db, oid in run.db_oids.items():
        got = run.reader.db_size(1663, oid, run.final)["bytes"]
        pg = run.db_sizes[db]
        assert 0 < got <= pg, (db, got, pg)
        assert got > pg * 0.8, (db, got, pg)


def test_lsn_by_timestamp(run):
    base = f"/v1/tenant/{run.tenant}/timeline/{run.tl}/get_lsn_by_timestamp"

    def ask(ts):
        r = run.tarnd.get(base + "?timestamp=" + ts)
        assert r.status == 200, r
        return r.json["kind"], lsn(r.json["lsn"])

    kind, at = ask("2000-01-01T00:00:00Z")
    assert kind == "past" and at == run.start
    kind, at = ask("2100-01-01T00:00:00Z")
    assert kind == "future"
    kind, at = ask(run.times["after_init"])
    assert kind == "present"
    assert run.marks["start"] < at <= run.marks["pgbench_init"] + 64 * 1024


def test_branch_reads_parent_below_branch_point(run):
    t = run.tarnd
    point = run.marks["pgbench_init"]
    # A branch point inside the history: the last record end at or below
    # the mark (any LSN works for reads; use a record end to be tidy).
    point = max(rec.end for rec in
                pgwal.iter_records(run.compute.pg_wal, run.start, point))
    br = t.create_timeline(run.tenant, name="at-init",
                           ancestor_timeline_id=run.tl,
                           ancestor_start_lsn=lsn_str(point))
    assert br["ancestor_lsn"] == lsn_str(point)
    assert br["last_record_lsn"] == lsn_str(point)
    child = PageReader(t, run.tenant, br["timeline_id"])
    accounts = next(r for r in run.relations
                    if r["name"] == "pgbench_accounts")
    spc, db, rel = accounts["rnode"]
    n_parent = run.reader.rel_size(spc, db, rel, 0, point)["nblocks"]
    assert child.rel_size(spc, db, rel, 0)["nblocks"] == n_parent > 100
    blocks = random.Random(7).sample(range(n_parent), 40) + [0, n_parent - 1]
    for blk in blocks:
        s1, mine = child.page(spc, db, rel, 0, blk)
        s2, parent = run.reader.page(spc, db, rel, 0, blk, point)
        assert s1 == s2 == 200
        assert mine == parent, blk
    # Above the branch point the branch has no history of its own.
    s, body = child.page(spc, db, rel, 0, 0, point + 8)
    assert s == 400 and b"past the last record" in body, body
    # A branch of the branch reads through both.
    grand = t.create_timeline(run.tenant, name="at-init-2",
                              ancestor_timeline_id=br["timeline_id"])
    g = PageReader(t, run.tenant, grand["timeline_id"])
    for blk in blocks[:10]:
        assert g.page(spc, db, rel, 0, blk)[1] == \
            run.reader.page(spc, db, rel, 0, blk, point)[1]
    # The parent is untouched: its latest page differs where the run
    # changed it.
    changed = sum(run.reader.page(spc, db, rel, 0, b)[1] !=
                  child.page(spc, db, rel, 0, b)[1] for b in blocks)
    assert changed > 0
    for r in (g, child):
        r.close()
    for tl in (grand, br):
        d = t.delete(f"/v1/tenant/{run.tenant}/timeline/{tl['timeline_id']}")
        assert d.status == 200, d


def test_restart_reingests(run):
    """A restart opens the layers the catalog lists and ingests again from
    disk_consistent_lsn; pages read the same as before."""
    t = run.tarnd
    accounts = next(r for r in run.relations
                    if r["name"] == "pgbench_accounts")
    spc, db, rel = accounts["rnode"]
    before = [run.reader.page(spc, db, rel, 0, b)[1] for b in range(0, 60, 3)]
    run.reader.close()
    t.restart()
    wait_ingested(t, run.tenant, run.tl, run.final)
    d = t.timeline(run.tenant, run.tl)
    assert d["last_record_lsn"] == lsn_str(run.final)
    after = [run.reader.page(spc, db, rel, 0, b)[1] for b in range(0, 60, 3)]
    assert after == before


def test_checkpoint_route(run):
    """PUT .../checkpoint: with {"images": false} it only writes out what
    is ingested; by default it then writes image layers for every key
    range.  Pages read the same before and after."""
    t, base = run.tarnd, f"/v1/tenant/{run.tenant}/timeline/{run.tl}"
    sample = []
    for rel in run.relations:
        spc, db, relno = rel["rnode"]
        n = run.reader.rel_size(spc, db, relno, 0)["nblocks"]
        sample += [(spc, db, relno, 0, b) for b in range(min(n, 4))]
    before = [run.reader.page(*s, at=run.final) for s in sample]
    assert all(st == 200 for st, _ in before)

    r = t.put(base + "/checkpoint", {"images": False}, timeout=120)
    assert r.status == 200, r
    assert r.json["image_layers_created"] == 0, r.json
    assert lsn(r.json["disk_consistent_lsn"]) == run.final, r.json
    images = t.timeline(run.tenant, run.tl)["storage"]["image_layers"]

    r = t.put(base + "/checkpoint", timeout=300)
    assert r.status == 200, r
    print(f"\ncheckpoint: {r.json}")
    assert lsn(r.json["disk_consistent_lsn"]) == run.final, r.json
    assert r.json["partitions_skipped"] == 0, r.json
    d = t.timeline(run.tenant, run.tl)
    assert d["storage"]["image_layers"] >= \
        images + r.json["image_layers_created"], d["storage"]
    # Image layers at the final LSN now tile the whole key space (some
    # may come from the threshold pass that the first flush started).
    layers = (t.data_dir / "tenants" / run.tenant / "timelines" / run.tl
              / "layers")
    at = f"{run.final:016X}"
    tiles = sorted(tuple(p.name.split("__")[0].split("-"))
                   for p in layers.iterdir()
                   if p.name.endswith("__" + at))
    assert tiles, sorted(p.name for p in layers.iterdir())
    assert tiles[0][0] == "0" * 36 and tiles[-1][1] == "F" * 36, tiles
    for a, b in zip(tiles, tiles[1:]):
        assert a[1] == b[0], (a, b)
    after = [run.reader.page(*s, at=run.final) for s in sample]
    assert len(sample) > 100
    assert after == before


def test_redo_of_every_record_equals_its_image(run):
    """The C oracle over the whole run: every block of every record of
    pgbench and the mixed workload, replayed by tarn's redo in WAL order,
    equals the image PostgreSQL logged for it (every resource manager)."""
    rep, out, rc = redocheck(run.compute.pg_wal, run.start, run.final)
    print("\n" + out)
    rm = rep["rmgrs"]
    bad = {n: s for n, s in rm.items()
           if s["mismatches"] or s["errors"] or s["unsupported"]}
    assert rc == 0 and not bad, bad
    for name in ("Heap", "Heap2", "Btree", "Hash", "Gin", "Gist", "SPGist",
                 "BRIN", "Sequence"):
        assert rm.get(name, {}).get("checked", 0) > 0, (name, rm)
