#!/usr/bin/env python3
"""Benchmark: tarn's native redo, straight into redo_apply().

A compute (no standby) runs pgbench -i, a CHECKPOINT, then a timed
pgbench run and a B-tree insert workload (random keys into an indexed
table).  build/tests/bench/redo then reads that WAL from the compute's
pg_wal and reports records applied per second per core for heap and
B-tree records on pages already in memory, and the p50/p99 time to
rebuild a page from an image plus 1, 10 and 100 heap records
(docs/testing.md).  Neon's walredo costs about 32 us for a 2-record redo;
the target is >= 1,000,000 simple records/s per core and a 10-delta
reconstruction under 20 us.

  tests/bench/redo.py [--scale 5] [--seconds 20] [--rounds 5]
"""
import argparse
import os
import subprocess

from benchlib import ROOT, Compute, lsn, lsn_str, machine

SEG = 16 << 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    build = os.environ.get("TARN_BUILD", str(ROOT / "build"))
    print(f"redo: {machine()}", flush=True)
    c = Compute(name="redo-bench").initdb()
    c.settings.update({"synchronous_standby_names": "''",
                       "max_wal_size": "'8GB'", "checkpoint_timeout": "'1h'",
                       "autovacuum": "off", "shared_buffers": "'256MB'"})
    c.write_settings()
    try:
        c.start()
        c.pgbench("-i", "-s", str(a.scale), "-q", timeout=3600)
        c.psql("CHECKPOINT")
        c.psql("SELECT pg_switch_wal()")
        start = lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))
        start -= start % SEG
        c.pgbench("-c", "4", "-j", "2", "-T", str(a.seconds), "-n",
                  timeout=3600)
        c.psql("CREATE TABLE b (k int PRIMARY KEY, v int)")
        c.psql("INSERT INTO b SELECT (g::bigint * 7919 % 300007)::int, g "
               "FROM generate_series(1, 300000) g")
        end = lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))
        c.stop()
        print(f"{(end - start) / 1e6:.0f} MB of WAL from pgbench -s "
              f"{a.scale} -T {a.seconds} and 300,000 B-tree inserts",
              flush=True)
        p = subprocess.run([os.path.join(build, "tests", "bench", "redo"),
                            str(c.pg_wal), lsn_str(start), lsn_str(end),
                            str(a.rounds)], capture_output=True, text=True)
        print(p.stdout + p.stderr, end="")
        if p.returncode != 0:
            raise SystemExit(p.returncode)
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
