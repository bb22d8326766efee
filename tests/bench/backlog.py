#!/usr/bin/env python3
"""Benchmark: how responsive tarnd stays while it ingests a backlog.

After kill -9, tarnd ingests again all the WAL above its last layer file.
This loads about --mb of WAL with checkpoint_distance and
layer_memory_limit so high that no layer file is written, then, --rounds
times: kills tarnd, starts it again, and from the moment it is started
sends GET /v1/status back to back (a new connection each) until ingest has
caught up.  Reports how long the catch-up took, how many requests were
answered during it, and the median and the longest request latency, with
the medians over the rounds.  The longest latency is the longest time the
reactor was away from its sockets: replication input and page requests
waited as long.

  tests/bench/backlog.py [--mb 256] [--rounds 3] [--binary PATH]
"""
import argparse
import shutil
import time

from benchlib import Compute, lsn, machine, median, start_tarnd, wait_until


def ingested(t, tenant, tl):
    return lsn(t.timeline(tenant, tl)["last_record_lsn"])


def one_round(t):
    """Kill, restart, and time requests until ingest has caught up."""
    t.kill9()
    t0 = time.monotonic()
    t.start(wait=False)
    lat, first = [], None
    while True:
        s = time.monotonic()
        try:
            ok = t.get("/v1/status", timeout=60).status == 200
        except OSError:
            ok = False  # not listening yet
        e = time.monotonic()
        if not ok:
            time.sleep(0.001)
            continue
        if first is None:
            first = e - t0
        lat.append(e - s)
        if len(lat) % 10 == 0 and t.metric("tarn_ingest_lag_bytes") == 0:
            break
    return time.monotonic() - t0, first, lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", default=None,
                    help="the tarnd binary (default: TARN_BUILD's)")
    a = ap.parse_args()

    t = start_tarnd({"checkpoint_distance": "4GB",
                     "layer_memory_limit": "4GB"}, binary=a.binary)
    c = Compute(name="backlog").initdb()
    c.settings["max_wal_size"] = "'4GB'"
    c.write_settings()
    try:
        tenant, tl = t.adopt(c, name="main")
        start = lsn(tl["start_lsn"])
        rows = a.mb * 1024 * 1024 // 420
        c.psql("CREATE TABLE big AS SELECT g, repeat('x', 300) AS pad "
               f"FROM generate_series(1, {rows}) g")
        end = lsn(c.psql("SELECT pg_current_wal_flush_lsn()"))
        wait_until(lambda: ingested(t, tenant, tl["timeline_id"]) >= end,
                   timeout=600)
        d = t.timeline(tenant, tl["timeline_id"])["storage"]
        assert d["delta_layers"] == 0, d
        print(f"backlog: {machine()}")
        print(f"{(end - start) / 2**20:.0f} MiB of WAL above the last layer "
              f"file; tarnd {t.binary}")
        took, firsts, p50s, worst = [], [], [], []
        for i in range(a.rounds):
            total, first, lat = one_round(t)
            lat.sort()
            took.append(total)
            firsts.append(first)
            p50s.append(median(lat))
            worst.append(lat[-1])
            print(f"  round {i + 1}: caught up in {total * 1000:.0f} ms; "
                  f"first answer after {first * 1000:.0f} ms; "
                  f"{len(lat)} requests, median {median(lat) * 1000:.2f} ms, "
                  f"longest {lat[-1] * 1000:.1f} ms", flush=True)
        print(f"median: caught up in {median(took) * 1000:.0f} ms, first "
              f"answer after {median(firsts) * 1000:.0f} ms, request median "
              f"{median(p50s) * 1000:.2f} ms, longest "
              f"{median(worst) * 1000:.1f} ms")
    finally:
        t.stop()
        shutil.rmtree(t.dir, ignore_errors=True)
        c.cleanup()


if __name__ == "__main__":
    main()
