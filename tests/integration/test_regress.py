"""Native redo against PostgreSQL 15's own regression suite.

The suite (src/test/regress of the Debian source package, with regress.so
built by scripts/pg-regress-setup) runs with pg_regress --use-existing
against a compute with wal_consistency_checking = all, followed by tarnd
with trust_consistency_images off.  Its result does not matter here (some
of its expected outputs assume a fresh cluster); it is the most varied
WAL PostgreSQL's developers have.

At the final LSN, every block whose last change logged an image must read
back from tarn equal to that image under its resource manager's mask when
tarn has redo for that resource manager; for the others tarn must answer
501 naming the record.  Any other answer fails the test.  Counts per
resource manager are printed.

The whole suite makes about 8 GB of WAL under wal_consistency_checking,
more than the Python oracle reads in CI's time budget, so the test runs
only with TARN_REGRESS=1 (a C oracle is planned).  TARN_REGRESS_SCHEDULE
picks the schedule file (default parallel_schedule, the whole suite).
"""
import collections
import os
import subprocess
import time
from pathlib import Path

import pytest

import pgmask
import pgwal
import walstate
from conftest import Tarnd, assert_clean_exit
from pg import PG_BIN, Compute
from pgcompare import insert_lsn, list_relations
from tarnpages import PageReader, adopt_new_compute, stop_and_ingest

REGRESS = Path(os.environ.get("TARN_PG_REGRESS", "/var/tmp/tarn-pg15-regress"))
PG_REGRESS = Path("/usr/lib/postgresql/15/lib/pgxs/src/test/regress/"
                  "pg_regress")
NATIVE = {"XLOG", "Heap", "Heap2", "Sequence", "Btree", "Hash", "Gist",
          "SPGist"}

pytestmark = pytest.mark.skipif(
    os.environ.get("TARN_REGRESS") != "1",
    reason="the regression-suite oracle runs with TARN_REGRESS=1 (8 GB of "
           "WAL; see the module docstring)")

COMPUTE_SETTINGS = {
    "wal_consistency_checking": "'all'",
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'8GB'",
    "max_connections": "60",
    "max_prepared_transactions": "10",
    "synchronous_standby_names": "''",
}


class Run:
    pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    assert (REGRESS / "regress.so").exists(), \
        f"no regression suite in {REGRESS}: run scripts/pg-regress-setup"
    tmp = tmp_path_factory.mktemp("regress")
    t = Tarnd(tmp, sets={"checkpoint_distance": "64MB",
                         "log_level": "info"}).start()
    c = Compute(name="regress", settings=COMPUTE_SETTINGS)
    try:
        r = Run()
        r.tarnd, r.compute = t, c
        r.tenant, r.tl, r.start = adopt_new_compute(t, c)
        # pg_regress --use-existing expects the database to exist.
        c.psql("CREATE DATABASE regression TEMPLATE template0")
        c.psql("ALTER DATABASE regression SET lc_messages TO 'C'; "
               "ALTER DATABASE regression SET bytea_output TO 'hex'; "
               "ALTER DATABASE regression SET timezone_abbreviations "
               "TO 'Default'")
        out = c.base / "regress-out"
        out.mkdir()
        os.chmod(out, 0o777)
        schedule = os.environ.get("TARN_REGRESS_SCHEDULE",
                                  "parallel_schedule")
        t0 = time.time()
        p = subprocess.run(
            [str(PG_REGRESS), "--use-existing", "--host=127.0.0.1",
             f"--port={c.port}", "--user=postgres",
             f"--inputdir={REGRESS}", f"--outputdir={out}",
             f"--bindir={PG_BIN}", f"--dlpath={REGRESS}",
             f"--schedule={REGRESS / schedule}", "--max-connections=8"],
            capture_output=True, text=True, timeout=3600)
        lines = p.stdout.splitlines()
        r.summary = next((x for x in reversed(lines)
                          if "tests passed" in x or "tests failed" in x), "")
        print(f"\npg_regress ({time.time() - t0:.0f} s): {r.summary.strip()}")
        mid = insert_lsn(c)
        r.relations, _ = list_relations(c)
        r.final = stop_and_ingest(t, c, r.tenant, r.tl, mid, timeout=900)
        r.reader = PageReader(t, r.tenant, r.tl)
        yield r
        r.reader.close()
    finally:
        c.cleanup()
        assert_clean_exit(t)


def test_regression_suite_pages(run):
    d = run.tarnd.timeline(run.tenant, run.tl)
    assert d["storage"]["ingest"] == "idle", d["storage"]
    t0 = time.time()
    snap = walstate.build_snapshots(
        pgwal.iter_records(run.compute.pg_wal, run.start), [run.final])
    snap = snap[run.final]
    ams = {rel["rnode"]: rel["am"] for rel in run.relations}
    rep, refused = collections.Counter(), collections.Counter()
    mismatches = []
    for key, e in snap.blocks.items():
        spc, db, rel, fork, blk = key
        if not e.exact or not e.supported:
            continue
        rmgr = pgwal.rmgr_name(e.rmid)
        status, body = run.reader.page(spc, db, rel, fork, blk, run.final)
        if status == 501 and rmgr not in NATIVE:
            assert b"is not implemented yet" in body, body
            refused[rmgr] += 1
            continue
        if status != 200:
            mismatches.append((key, rmgr, f"HTTP {status}: {body[:300]!r}"))
            continue
        try:
            mask = pgmask.mask_for_rmgr(e.rmid, ams.get(key[:3]))
            a, b = mask(body, blk), mask(e.page(), blk)
        except pgmask.MaskError:
            a, b = body, e.page()
        rep["compared"] += 1
        rep[f"rmgr_{rmgr}"] += 1
        if a != b:
            mismatches.append((key, rmgr, f"{e!r}: "
                               + pgmask.diff_report(a, b)))
    print(f"\nregression suite at {d['last_record_lsn']} "
          f"({(run.final - run.start) / 1e6:.0f} MB of WAL) in "
          f"{time.time() - t0:.0f} s: {dict(rep)}; refused (redo not "
          f"written yet) {dict(refused)}; {len(mismatches)} mismatches")
    for m in mismatches[:10]:
        print("MISMATCH", m)
    assert not mismatches
    assert rep["rmgr_Heap"] > 1000 and rep["rmgr_Heap2"] > 100, rep
