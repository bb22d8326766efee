"""Native redo against PostgreSQL 15's own regression suite.

The suite (src/test/regress of the Debian source package, with regress.so
built by scripts/pg-regress-setup) runs with pg_regress --use-existing
against a compute with wal_consistency_checking = all (and zstd WAL
compression, which keeps its WAL to a few GB), followed by tarnd with
trust_consistency_images off.  The suite's own result does not matter
here (some expected outputs assume a fresh cluster); it is the most varied
WAL PostgreSQL's developers have.

Two checks:
  1. tests/tools/redocheck (the C oracle) replays every record of the run
     with tarn's redo and compares every page each record changes with the
     image PostgreSQL logged for it, under the record's rm_mask: PostgreSQL's
     own consistency check, for every block of every record.  Mismatches
     and redo errors must be 0, and resource managers tarn has redo for
     must have no record without it.  Counts per resource manager are
     printed.
  2. tarnd's read path at the final LSN: every page whose last change
     redocheck checked equal reads back from tarnd (layers, page cache,
     redo) equal to redocheck's page under the same mask; a page of a
     resource manager without redo must be refused with 501.

scripts/test runs it (TARN_REGRESS=1; scripts/test --no-regress skips it).
TARN_REGRESS_SCHEDULE picks the schedule file (default parallel_schedule,
the whole suite).
"""
import collections
import os
import subprocess
import time
from pathlib import Path

import pytest

import pgmask
import pgwal
from conftest import Tarnd, assert_clean_exit
from pg import PG_BIN, Compute
from pgcompare import insert_lsn, list_relations
from tarnpages import (PageReader, adopt_new_compute, read_dump, redocheck,
                       stop_and_ingest)

REGRESS = Path(os.environ.get("TARN_PG_REGRESS", "/var/tmp/tarn-pg15-regress"))
PG_REGRESS = Path("/usr/lib/postgresql/15/lib/pgxs/src/test/regress/"
                  "pg_regress")
NATIVE = {"XLOG", "Heap", "Heap2", "Sequence", "Btree", "Hash", "Gin", "BRIN",
          "Generic", "Gist", "SPGist"}

pytestmark = pytest.mark.skipif(
    os.environ.get("TARN_REGRESS") != "1",
    reason="the regression-suite oracle runs with TARN_REGRESS=1, as "
           "scripts/test sets it after scripts/pg-regress-setup")

COMPUTE_SETTINGS = {
    "wal_consistency_checking": "'all'",
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'8GB'",
    # Every segment of the run stays for redocheck.
    "wal_keep_size": "'64GB'",
    "wal_compression": "zstd",
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
        # Relations that still exist (redocheck's pages include dropped
        # ones, which tarnd rightly answers 404).
        r.live = {rel["rnode"] for rel in list_relations(c)[0]}
        r.final = stop_and_ingest(t, c, r.tenant, r.tl, mid, timeout=900)
        r.reader = PageReader(t, r.tenant, r.tl)
        r.dump = tmp / "redocheck.pages"
        yield r
        r.reader.close()
    finally:
        c.cleanup()
        assert_clean_exit(t)


def test_redo_of_every_record_equals_its_image(run):
    rep, out, rc = redocheck(run.compute.pg_wal, run.start, run.final,
                             "--dump", str(run.dump))
    print(f"\n{run.summary.strip()}; "
          f"{(run.final - run.start) / 1e6:.0f} MB of WAL\n{out}")
    rm = rep["rmgrs"]
    bad = {n: s for n, s in rm.items() if s["mismatches"] or s["errors"]
           or (n in NATIVE and s["unsupported"])}
    assert rc == 0 and not bad, bad
    assert rm["Heap"]["checked"] > 100000, rm
    assert rm["Btree"]["checked"] > 100000, rm
    assert rm["Heap2"]["checked"] > 10000, rm
    assert rm["Hash"]["checked"] > 10000, rm
    assert rm["Sequence"]["checked"] > 100, rm
    run.checked = True


def test_tarnd_serves_the_same_pages(run):
    assert getattr(run, "checked", False), "redocheck did not run"
    d = run.tarnd.timeline(run.tenant, run.tl)
    assert d["storage"]["ingest"] == "idle", d["storage"]
    rep, refused = collections.Counter(), collections.Counter()
    mismatches, gone = [], 0
    t0 = time.time()
    for key, rmid, _, want in read_dump(run.dump):
        spc, db, rel, fork, blk = key
        rmgr = pgwal.rmgr_name(rmid)
        if key[:3] not in run.live:
            gone += 1     # dropped, temporary, or in another tablespace
            continue
        status, body = run.reader.page(spc, db, rel, fork, blk, run.final)
        if status == 501 and rmgr not in NATIVE:
            assert b"is not implemented yet" in body, body
            refused[rmgr] += 1
            continue
        if status != 200:
            mismatches.append((key, rmgr, f"HTTP {status}: {body[:300]!r}"))
            continue
        try:
            mask = pgmask.mask_for_rmgr(rmid)
            a, b = mask(body, blk), mask(want, blk)
        except pgmask.MaskError:
            a, b = body, want
        rep[f"rmgr_{rmgr}"] += 1
        if a != b:
            mismatches.append((key, rmgr, pgmask.diff_report(a, b)))
    print(f"\n{sum(rep.values())} pages read from tarnd at "
          f"{d['last_record_lsn']} in {time.time() - t0:.0f} s: {dict(rep)}; "
          f"refused (redo not written yet) {dict(refused)}; {gone} pages "
          f"of relations gone by the end; {len(mismatches)} mismatches")
    for m in mismatches[:10]:
        print("MISMATCH", m)
    assert not mismatches
    assert rep["rmgr_Heap"] > 1000 and rep["rmgr_Btree"] > 1000, rep
