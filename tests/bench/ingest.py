#!/usr/bin/env python3
"""Benchmark: WAL ingested into layer files, next to the rate at which the
compute produced it.

For each workload (pgbench: -i plus a timed TPC-B run; bulk: one COPY of
about --gb of WAL):

1. live: a fresh tarnd imports the compute's freshly initialised data
   directory and follows the compute as an asynchronous standby while the
   workload runs (so tarnd never slows the compute down).  Reports the
   compute's WAL rate, tarnd's largest ingest lag sampled every 0.5 s
   (compute insert LSN minus tarnd's last_record_lsn), and how long tarnd
   needed after the workload ended to catch up.  "Keeps up" means the lag
   stays bounded and the catch-up is short.
2. catch-up rounds: a fresh tarnd imports the same initial data directory
   and is attached once the compute has produced all of the WAL, so it
   ingests as fast as it can.  Reports MB/s until last_record_lsn reaches
   the end (ingested), and until a PUT .../checkpoint {"images": false}
   sent then has returned (every value in an fsynced layer file committed
   to the catalog: disk_consistent_lsn at the end).  Medians over rounds.

  tests/bench/ingest.py [--scale 10] [--seconds 30] [--gb 1] [--rounds 3]
                        [--workloads pgbench,bulk]
"""
import argparse
import os
import shutil
import subprocess
import threading
import time

from benchlib import (Compute, lsn, lsn_str, machine, median, peak_rss_kb,
                      start_tarnd, wait_until)
from pg import PG_USER, as_user

TARND_SETS = {"log_level": "warn"}


def insert_lsn(c):
    return lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))


def copy_tree(src, dst):
    subprocess.run(as_user(["cp", "-a", str(src), str(dst)]), check=True)


def new_engine(base_copy):
    t = start_tarnd(TARND_SETS)
    tenant = t.create_tenant()["id"]
    tl = t.create_timeline(tenant, import_pgdata=str(base_copy))
    return t, tenant, tl["timeline_id"], lsn(tl["start_lsn"])


def storage(t, tenant, tl):
    d = t.timeline(tenant, tl)
    if d["storage"]["ingest"] == "failed":
        raise SystemExit("ingest failed: " + str(d["storage"]))
    return lsn(d["last_record_lsn"]), lsn(d["disk_consistent_lsn"])


def run_workload(kind, c, a):
    """Run the workload on compute @p c; return its seconds."""
    t0 = time.time()
    if kind == "pgbench":
        c.pgbench("-i", "-s", str(a.scale), "-q", timeout=3600)
        c.pgbench("-c", "4", "-j", "2", "-T", str(a.seconds), "-n",
                  timeout=3600)
    else:
        c.psql(f"COPY bulk FROM '{c.base / 'rows.csv'}' WITH (FORMAT csv)",
               timeout=3600)
    return time.time() - t0


def prepare(kind, a):
    """A compute with a clean initial data directory saved aside."""
    c = Compute(name=f"ingest-{kind}").initdb()
    c.settings.update({"synchronous_standby_names": "''",
                       "wal_keep_size": "'16GB'", "max_wal_size": "'8GB'",
                       "autovacuum": "off", "shared_buffers": "'256MB'"})
    c.write_settings()
    if kind == "bulk":
        c.start()
        c.psql("CREATE TABLE bulk (id bigint, pad text)")
        c.stop()
        rows = int(a.gb * 1e9 / 130)  # about 130 bytes of WAL per row
        datafile = c.base / "rows.csv"
        with open(datafile, "w") as f:
            pad = "x" * 96
            f.writelines(f"{i},{pad}\n" for i in range(rows))
        if os.geteuid() == 0:
            shutil.chown(datafile, PG_USER)
    base = c.base / "initial"
    copy_tree(c.datadir, base)
    return c, base


def live(kind, c, base, a):
    t, tenant, tl, start = new_engine(base)
    try:
        c.start()
        r = t.attach(tenant, tl, c.conninfo())
        assert r.status == 200, r
        lag = [0]
        stop = threading.Event()

        def sample():
            while not stop.wait(0.5):
                try:
                    ingested, _ = storage(t, tenant, tl)
                    lag[0] = max(lag[0], insert_lsn(c) - ingested)
                except (AssertionError, OSError):
                    pass
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        secs = run_workload(kind, c, a)
        end = insert_lsn(c)
        t_end = time.time()
        wait_until(lambda: storage(t, tenant, tl)[0] >= end - 40, 3600)
        tail = time.time() - t_end
        stop.set()
        th.join()
        mb = (end - start) / 1e6
        print(f"  live: the compute wrote {mb:.0f} MB of WAL in {secs:.1f} s"
              f" = {mb / secs:.1f} MB/s; tarnd's largest ingest lag "
              f"{lag[0] / 1e6:.1f} MB; caught up {tail:.2f} s after the "
              f"workload ended", flush=True)
        return start, end, mb / secs
    finally:
        t.stop()
        shutil.rmtree(t.dir, ignore_errors=True)


def catch_up(c, base, start, end):
    t, tenant, tl, s0 = new_engine(base)
    assert s0 == start, (lsn_str(s0), lsn_str(start))
    try:
        t0 = time.time()
        r = t.attach(tenant, tl, c.conninfo())
        assert r.status == 200, r
        wait_until(lambda: storage(t, tenant, tl)[0] >= end - 40, 3600)
        t_ing = time.time() - t0
        r = t.put(f"/v1/tenant/{tenant}/timeline/{tl}/checkpoint",
                  {"images": False}, timeout=3600)
        assert r.status == 200, r
        assert lsn(r.json["disk_consistent_lsn"]) >= end - 40, r.json
        t_disk = time.time() - t0
        d = t.timeline(tenant, tl)["storage"]
        rss = peak_rss_kb(t.proc.pid) / 1024
        return t_ing, t_disk, d, rss
    finally:
        t.stop()
        shutil.rmtree(t.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="pgbench,bulk")
    a = ap.parse_args()
    print(f"ingest: {machine()}")
    for kind in a.workloads.split(","):
        c, base = prepare(kind, a)
        try:
            print(f"{kind}:", flush=True)
            start, end, gen = live(kind, c, base, a)
            mb = (end - start) / 1e6
            ing, disk = [], []
            for r in range(a.rounds):
                t_ing, t_disk, d, rss = catch_up(c, base, start, end)
                ing.append(mb / t_ing)
                disk.append(mb / t_disk)
                print(f"  round {r + 1}: ingested {mb / t_ing:.1f} MB/s, "
                      f"in fsynced layers {mb / t_disk:.1f} MB/s "
                      f"({t_disk:.2f} s; {d['delta_layers']} delta and "
                      f"{d['image_layers']} image layers, "
                      f"{d['layer_bytes'] / 1e6:.0f} MB; peak RSS "
                      f"{rss:.0f} MiB)", flush=True)
            print(f"  median {kind}: ingest {median(ing):.1f} MB/s, into "
                  f"fsynced layers {median(disk):.1f} MB/s; the compute "
                  f"produced it at {gen:.1f} MB/s (ratio "
                  f"{median(disk) / gen:.2f})", flush=True)
        finally:
            c.cleanup()


if __name__ == "__main__":
    main()
