#!/usr/bin/env python3
"""Benchmark: get_page straight into the storage engine, for random blocks
of pgbench_accounts in a pgbench scale-50 database, at the latest LSN and
at an old LSN, with a cold and a warm cache.

Setup: a compute runs pgbench -i -s SCALE and stops cleanly; a tarnd
imports that data directory (image layers at the import LSN: the "old"
LSN); the compute then runs pgbench for --seconds attached to tarnd with
wal_consistency_checking = all and trust_consistency_images = on, so
that the accounts it touches get newer versions in delta layers (and
image layers where the delta stacks grow): the "latest" LSN.  tarnd and
the compute stop.  Then build/tests/bench/getpage_engine opens tarnd's data
directory in a fresh process per measurement and calls repo_get_page()
(docs/testing.md).

The peer is the compute's own relation file: pread() of the same random
8 KiB blocks, which is what PostgreSQL does on a shared-buffers miss.

cold: distinct random blocks, each read once, after POSIX_FADV_DONTNEED on
the files involved and with tarn's page cache empty.  warm: random reads
over a set of blocks read once before timing.  Medians over --rounds.

With --native-redo the compute runs without wal_consistency_checking and
tarnd without trust_consistency_images: the pages pgbench changed are
rebuilt by tarn's own redo from the import's images and heap records.

  tests/bench/getpage_engine.py [--scale 50] [--seconds 60] [--rounds 3]
      [--cold 2000] [--warm 50000] [--warm-set 5000] [--native-redo]
"""
import argparse
import os
import shutil
import subprocess

from benchlib import (ROOT, Compute, lsn, machine, median, start_tarnd,
                      wait_until)


def bench_bin():
    build = os.environ.get("TARN_BUILD", str(ROOT / "build"))
    return os.path.join(build, "tests", "bench", "getpage_engine")


def run(args):
    p = subprocess.run([bench_bin(), *map(str, args)], capture_output=True,
                       text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"getpage_engine {' '.join(map(str, args))}: "
                         f"{p.stderr}")
    calls, p50, p99 = p.stdout.split()
    return float(calls), int(p50), int(p99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=50000)
    ap.add_argument("--warm-set", type=int, default=5000)
    ap.add_argument("--native-redo", action="store_true")
    a = ap.parse_args()
    print(f"getpage_engine: {machine()}", flush=True)

    c = Compute(name="getpage").initdb()
    c.settings.update({"synchronous_standby_names": "''",
                       "max_wal_size": "'8GB'", "wal_keep_size": "'16GB'",
                       "autovacuum": "off", "shared_buffers": "'256MB'"})
    c.write_settings()
    t = None
    try:
        c.start()
        c.pgbench("-i", "-s", str(a.scale), "-q", timeout=3600)
        c.psql("VACUUM ANALYZE")
        db = int(c.psql("SELECT oid FROM pg_database "
                        "WHERE datname = 'postgres'"))
        rel = int(c.psql("SELECT pg_relation_filenode('pgbench_accounts')"))
        relpath = c.datadir / c.psql(
            "SELECT pg_relation_filepath('pgbench_accounts')")
        c.stop()
        t = start_tarnd({"checkpoint_timeout": "2s",
                         "trust_consistency_images":
                         "off" if a.native_redo else "on"})
        if not a.native_redo:
            c.settings["wal_consistency_checking"] = "'all'"
            c.write_settings()
        tenant, tl = t.adopt(c)
        tlid, old = tl["timeline_id"], tl["start_lsn"]
        c.pgbench("-c", "4", "-j", "2", "-T", str(a.seconds), "-n",
                  timeout=3600)
        end = lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))
        c.stop()

        def caught_up():
            d = t.timeline(tenant, tlid)
            return lsn(d["disk_consistent_lsn"]) >= end - 40
        wait_until(caught_up, 3600, why="tarnd to flush everything")
        d = t.timeline(tenant, tlid)
        latest = d["last_record_lsn"]
        print(f"pgbench scale {a.scale}: pgbench_accounts "
              f"{relpath.stat().st_size // 8192} blocks; history from {old}"
              f" to {latest} ({(lsn(latest) - lsn(old)) / 1e6:.0f} MB of "
              f"WAL); {d['storage']['delta_layers']} delta and "
              f"{d['storage']['image_layers']} image layers, "
              f"{d['storage']['layer_bytes'] / 1e6:.0f} MB", flush=True)
        t.stop()

        cases = [("tarn", "latest"), ("tarn", old), ("file", None)]
        res = {}
        for r in range(a.rounds):
            for who, at in cases:
                for mode in ("cold", "warm"):
                    count = a.cold if mode == "cold" else a.warm
                    if who == "tarn":
                        args = ["tarn", t.data_dir, tenant, tlid,
                                f"1663/{db}/{rel}", at, mode, count,
                                a.warm_set]
                        name = f"tarn @{'latest' if at == 'latest' else 'old'}"
                    else:
                        args = ["file", relpath, mode, count, a.warm_set]
                        name = "pread of the relation file"
                    res.setdefault((name, mode), []).append(run(args))
        print(f"{'':30s} {'mode':5s} {'calls/s':>10s} {'p50 us':>8s} "
              f"{'p99 us':>8s}")
        for (name, mode), xs in res.items():
            print(f"{name:30s} {mode:5s} "
                  f"{median([x[0] for x in xs]):10.0f} "
                  f"{median([x[1] for x in xs]):8.0f} "
                  f"{median([x[2] for x in xs]):8.0f}")
        print(f"(medians of {a.rounds} rounds; latest = {latest}, "
              f"old = {old})")
    finally:
        if t is not None:
            t.stop()
            shutil.rmtree(t.dir, ignore_errors=True)
        c.cleanup()


if __name__ == "__main__":
    main()
