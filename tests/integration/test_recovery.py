"""Native redo proven against PostgreSQL's own recovery.

The consistency oracle (test_redo.py) compares pages under PostgreSQL's
masks, which hide hint bits, the visibility map and the SLRUs.  This one
sees them: a pg_basebackup of the compute is taken early in the workload
(pgbench and sql/heap_, btree_, hash_, gin_, brin_, generic_, gist_ and
spgist_workload.sql), and at the end PostgreSQL itself recovers a copy of
it to an LSN near the end (recovery_target_lsn, recovery_target_action =
shutdown, WAL from the compute's pg_wal).  tarnd follows the same compute
with trust_consistency_images off, so its pages come from its own redo.
Every relation file of the relations whose redo tarn has (heap tables with
their visibility maps, TOAST, sequences, B-tree, hash, GIN, BRIN, bloom,
GiST and SP-GiST indexes; catalogs included) must equal tarn's page at that
LSN under the relation's mask with the visibility map in full, and pg_xact
and pg_multixact must be equal byte for byte.
"""
import collections
import shutil
import subprocess
from pathlib import Path

import pytest

import pgwal
import walstate
from conftest import Tarnd, assert_clean_exit, free_port
from pg import PG_BIN, Compute, as_user, lsn_str
from pgcompare import insert_lsn, list_relations, psql_file
from tarnpages import (PageReader, adopt_new_compute, compare_files,
                       stop_and_ingest)

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "sql" / "heap_workload.sql"
BTREE_WORKLOAD = HERE / "sql" / "btree_workload.sql"
HASH_WORKLOAD = HERE / "sql" / "hash_workload.sql"
INDEX_WORKLOADS = [HERE / "sql" / f"{am}_workload.sql"
                   for am in ("gin", "brin", "generic", "gist", "spgist")]
NATIVE_AMS = ("heap", "sequence", "btree", "hash", "gin", "brin", "bloom",
              "gist", "spgist")
COMPUTE_SETTINGS = {
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'4GB'",
}
TARND_SETTINGS = {"checkpoint_distance": "8MB", "log_level": "info"}


class Run:
    pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recovery")
    t = Tarnd(tmp, sets=TARND_SETTINGS).start()
    c = Compute(name="recovery", settings=COMPUTE_SETTINGS)
    try:
        r = Run()
        r.tarnd, r.compute = t, c
        r.tenant, r.tl, r.start = adopt_new_compute(t, c)
        c.pgbench("-i", "-s", "1", "-q")
        r.backup = c.base / "backup"
        subprocess.run(as_user([str(PG_BIN / "pg_basebackup"), "-h",
                                "127.0.0.1", "-p", str(c.port), "-U",
                                "postgres", "-D", str(r.backup), "-X",
                                "stream", "-c", "fast", "--no-sync"]),
                       check=True, capture_output=True, timeout=300)
        c.pgbench("-c", "2", "-j", "2", "-t", "300")
        psql_file(c, WORKLOAD)
        psql_file(c, BTREE_WORKLOAD)
        psql_file(c, HASH_WORKLOAD)
        for w in INDEX_WORKLOADS:
            psql_file(c, w)
        # A checkpoint record between the backup and the target: without
        # one, PostgreSQL's recovery skips the restartpoint at shutdown
        # and leaves its changes in shared buffers, not in the files.
        c.psql("CHECKPOINT")
        c.psql("UPDATE h SET v = v + 1 WHERE id < 50")
        mid = insert_lsn(c)
        r.mid = mid
        r.relations, _ = list_relations(c)
        r.final = stop_and_ingest(t, c, r.tenant, r.tl, mid)
        r.reader = PageReader(t, r.tenant, r.tl)
        yield r
        r.reader.close()
    finally:
        c.cleanup()
        assert_clean_exit(t)


def recover(run, target):
    """PostgreSQL's own recovery of a copy of the base backup, stopping
    after the record that starts at @target; returns its data directory."""
    c = run.compute
    d = c.base / "recovered"
    subprocess.run(as_user(["cp", "-a", str(run.backup), str(d)]),
                   check=True, timeout=300)
    conf = "\n".join([
        f"port = {free_port()}", "listen_addresses = ''",
        f"unix_socket_directories = '{c.base}'",
        "synchronous_standby_names = ''",
        f"restore_command = 'cp {c.pg_wal}/%f \"%p\"'",
        f"recovery_target_lsn = '{lsn_str(target)}'",
        "recovery_target_action = 'shutdown'", ""])
    subprocess.run(as_user(["tee", "-a", str(d / "postgresql.auto.conf")]),
                   input=conf.encode(), check=True, capture_output=True)
    subprocess.run(as_user(["touch", str(d / "recovery.signal")]),
                   check=True)
    log = c.base / "recovery.log"
    p = subprocess.run(as_user([str(PG_BIN / "postgres"), "-D", str(d)]),
                       capture_output=True, text=True, timeout=600)
    log.write_text(p.stderr)
    assert "recovery stopping after WAL location (LSN)" in p.stderr, \
        p.stderr[-3000:]
    return d


def test_recovery_equals_tarn(run):
    c = run.compute
    # Stop after the last record before the workload's end mark (the
    # UPDATE after the CHECKPOINT).
    target = [rec for rec in pgwal.iter_records(c.pg_wal, run.start,
                                                run.final)
              if rec.end <= run.mid][-1]
    d = recover(run, target.lsn)
    at = target.end
    snap = walstate.build_snapshots(
        pgwal.iter_records(c.pg_wal, run.start), [at])[at]
    native = [rel for rel in run.relations
              if rel["am"] in NATIVE_AMS]
    rep, per_am, mismatches, notes = compare_files(run.reader, native, d, at,
                                                   snap)
    print(f"\nrecovered to {lsn_str(at)}: {rep['pages']} pages of "
          f"{len(native)} relations; per AM {dict(per_am)}; {dict(rep)}; "
          f"{len(mismatches)} mismatches; notes {sorted(notes)}")
    for m in mismatches[:10]:
        print("MISMATCH", m)
    assert not mismatches
    assert per_am["heap"] > 500 and per_am["vm"] > 0, per_am
    assert per_am["btree"] > 500 and per_am["hash"] > 10, per_am
    assert per_am["gin"] > 50 and per_am["brin"] > 5, per_am
    assert per_am["bloom"] > 50, per_am
    assert per_am["gist"] > 10 and per_am["spgist"] > 10, per_am
    # pg_xact and pg_multixact in full.
    base = f"/v1/tenant/{run.tenant}/timeline/{run.tl}/slru_page"
    slru = collections.Counter()
    for kind in ("pg_xact", "pg_multixact/members", "pg_multixact/offsets"):
        for f in sorted((d / kind).iterdir()):
            data = f.read_bytes()
            for blk in range(len(data) // 8192):
                r = run.tarnd.get(f"{base}?kind={kind}&segno="
                                  f"{int(f.name, 16)}&blk={blk}"
                                  f"&lsn={lsn_str(at)}")
                assert r.status == 200, (kind, f.name, blk, r)
                assert r.raw == data[blk * 8192:(blk + 1) * 8192], \
                    (kind, f.name, blk)
                slru[kind] += 1
    print(f"SLRU pages equal: {dict(slru)}")
    assert slru["pg_xact"] >= 1
    shutil.rmtree(d, ignore_errors=True)
