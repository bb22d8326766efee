#!/usr/bin/env python3
"""Benchmark: basebackup from tarn's page service against pg_basebackup
from the compute, for the same database in the same run.

A fresh tarnd imports a compute's data directory and follows it; pgbench
-i at --scale loads it; tarnd ingests to the end and writes image layers
(PUT .../checkpoint), the steady state of a timeline.  Then, --rounds
times each, alternating:

- tarn: `basebackup <tenant> <timeline>` (latest, plain tar) over the page
  port, received by psql (libpq), the CopyOut to a pipe that is counted;
- PostgreSQL: `pg_basebackup -D - -Ft -X fetch -c fast` from the compute,
  the tar to a pipe that is counted.

Both archives can start a PostgreSQL 15 (full relation data plus the WAL
it needs).  Reports MB/s (archive bytes / wall seconds, median of rounds)
and the ratio tarn / PostgreSQL (issue target >= 1.0), plus tarnd's peak
RSS before and after, which must not grow with the database.

  tests/bench/basebackup.py [--scale 10] [--rounds 5]
"""
import argparse
import subprocess
import time

from benchlib import (PG_BIN, Compute, lsn, machine, median, peak_rss_kb,
                      start_tarnd, wait_until)


def counted(cmd):
    """Run @cmd, count its stdout bytes: (bytes, seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        n += len(b)
    err = p.stderr.read()
    if p.wait() != 0:
        raise SystemExit(f"{cmd[0]} failed: {err.decode()}")
    return n, time.monotonic() - t0


def tarn_backup(t, tenant, tl):
    # psql writes a CopyOut to stdout (libpq, like pg_basebackup).
    return counted([str(PG_BIN / "psql"), "-X", "-q", "-h", "127.0.0.1",
                    "-p", str(t.page_port), "-U", "bench", "-d", "bench",
                    "-c", f"basebackup {tenant} {tl}"])


def pg_backup(c):
    return counted([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                    str(c.port), "-U", "postgres", "-D", "-", "-Ft", "-X",
                    "fetch", "-c", "fast"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()

    t = start_tarnd()
    c = Compute(name="bench-bb", settings={"autovacuum": "off"})
    try:
        c.initdb()
        tenant, tl = t.adopt(c)
        tl = tl["timeline_id"]
        c.pgbench("-i", "-s", str(a.scale), "-q")
        c.psql("CHECKPOINT")
        end = lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))
        wait_until(lambda: lsn(t.timeline(tenant, tl)["last_record_lsn"])
                   >= end, 600, "ingest to reach the end")
        r = t.put(f"/v1/tenant/{tenant}/timeline/{tl}/checkpoint",
                  {"images": True})
        assert r.status == 200, r
        rss0 = peak_rss_kb(t.proc.pid)
        tarn, pg = [], []
        for _ in range(a.rounds):
            tarn.append(tarn_backup(t, tenant, tl))
            pg.append(pg_backup(c))
        rss1 = peak_rss_kb(t.proc.pid)
    finally:
        c.cleanup()
        t.stop()

    def rate(runs):
        return median([n / s / 1e6 for n, s in runs])

    tr, pr = rate(tarn), rate(pg)
    print(f"machine: {machine()}")
    print(f"pgbench scale {a.scale}, {a.rounds} rounds each, medians")
    print(f"tarn basebackup: {tarn[0][0] / 1e6:.1f} MB, {tr:.1f} MB/s "
          f"({median([s for _, s in tarn]):.2f} s)")
    print(f"pg_basebackup:   {pg[0][0] / 1e6:.1f} MB, {pr:.1f} MB/s "
          f"({median([s for _, s in pg]):.2f} s)")
    print(f"ratio tarn/pg (MB/s): {tr / pr:.2f} (target >= 1.0)")
    print(f"tarnd peak RSS: {rss0 / 1024:.0f} MiB before the backups, "
          f"{rss1 / 1024:.0f} MiB after")


if __name__ == "__main__":
    main()
