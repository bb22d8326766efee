#!/usr/bin/env python3
"""Benchmark: how fast tarnd takes in WAL, against pg_receivewal.

The compute first writes about 1 GB of WAL with a bulk COPY and no
standby, starting on a fresh segment.  Then each standby in turn streams
that same WAL from its first byte: tarnd (a fresh timeline attached with
start_lsn at that segment) and pg_receivewal --synchronous (its directory
seeded with the segment before, so that it starts at the same one).
Reports MB/s from the start of streaming until the standby's flush
position covers the end, medians over rounds; for tarnd also the rate at
which that WAL is ingested into layers (until ingest is idle with no
frozen layer left), and its peak RSS (VmHWM) over all of it.

  tests/bench/wal_ingest.py [--gb 1] [--rounds 3] [--set KEY=VALUE ...]

--set passes a tarnd setting (tarnd.conf key), e.g. --set
layer_memory_limit=64MB.  Ingest into layers runs during catch-up, so
most of tarnd's peak RSS is its in-memory layers (layer_memory_limit, all
timelines together) and the index of the layer file being written.
Image layer creation reads through a small ring of the page cache, so it
does not fill the cache.
"""
import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchlib import (Compute, Receivewal, lsn, lsn_str, machine, median,
                      peak_rss_kb, start_tarnd, wait_until)
from pg import PG_USER, seg_name

SEG = 16 << 20


def rw_flushed(c, end):
    for line in c.psql("SELECT flush_lsn FROM pg_stat_replication WHERE "
                       "application_name = 'pg_receivewal'").splitlines():
        if line and lsn(line) >= end:
            return True
    return False


def ingested(t, tenant, tl):
    st = t.timeline(tenant, tl)["storage"]
    return (st["ingest"] == "idle" and st["ingest_lag_bytes"] == 0
            and st["frozen_layers"] == 0)


def setting(text):
    key, eq, value = text.partition("=")
    if not key or not eq:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], type=setting,
                    metavar="KEY=VALUE", help="a tarnd setting")
    a = ap.parse_args()

    c = Compute(name="ingest").initdb()
    c.settings["synchronous_standby_names"] = "''"
    c.settings["wal_keep_size"] = f"'{int(a.gb * 1300) + 512}MB'"
    c.settings["max_wal_size"] = "'8GB'"
    c.write_settings()
    c.start()
    work = Path(tempfile.mkdtemp(prefix="tarn-bench-ingest-"))
    t = None
    try:
        c.psql("CREATE TABLE bulk (id bigint, pad text)")
        datafile = c.base / "rows.csv"
        rows = int(a.gb * 1e9 / 130)  # ~130 bytes of WAL per row
        with open(datafile, "w") as f:
            pad = "x" * 96
            f.writelines(f"{i},{pad}\n" for i in range(rows))
        if os.geteuid() == 0:
            shutil.chown(datafile, PG_USER)
        c.psql("SELECT pg_switch_wal()")
        c.psql("SELECT pg_switch_wal()")  # the next segment starts clean
        start = lsn(c.current_lsn())
        start -= start % SEG
        t0 = time.time()
        c.psql(f"COPY bulk FROM '{datafile}' WITH (FORMAT csv)",
               timeout=3600)
        gen_s = time.time() - t0
        end = lsn(c.current_lsn())
        mb = (end - start) / 1e6
        print(f"wal_ingest: {machine()}")
        print(f"the compute wrote {mb:.0f} MB of WAL (COPY) in {gen_s:.1f} s"
              f" = {mb / gen_s:.0f} MB/s with no standby")
        res = {"tarnd": [], "pg_receivewal": []}
        rss = []
        ingest = {}
        for r in range(a.rounds):
            order = ["tarnd", "pg_receivewal"]
            for who in order if r % 2 == 0 else order[::-1]:
                # The run before left gigabytes to write back: let the
                # disk settle so that no setup pays for another's writes.
                os.sync()
                time.sleep(2)
                t0 = time.time()
                if who == "tarnd":
                    t = start_tarnd(dict(a.set))
                    tenant = t.create_tenant()["id"]
                    tl = t.create_timeline(tenant, bootstrap="none")["timeline_id"]
                    t0 = time.time()
                    rr = t.attach(tenant, tl, c.conninfo(),
                                  start_lsn=lsn_str(start))
                    assert rr.status == 200, rr
                    wait_until(lambda: lsn(t.timeline(tenant, tl)[
                        "wal_flush_lsn"]) >= end, 3600)
                    secs = time.time() - t0
                    # Ingest into layers trails the WAL: the peak RSS
                    # counts all of it, and the layer work after it.
                    wait_until(lambda: ingested(t, tenant, tl), 3600)
                    ingest[r] = mb / (time.time() - t0)
                    time.sleep(3)
                    rss.append(peak_rss_kb(t.proc.pid) / 1024)
                    t.stop()
                    shutil.rmtree(t.dir, ignore_errors=True)
                    t = None
                else:
                    d = work / f"rw{r}"
                    d.mkdir()
                    prev = seg_name(start // SEG - 1)
                    shutil.copyfile(c.pg_wal / prev, d / prev)
                    t0 = time.time()
                    peer = Receivewal(c, d)
                    wait_until(lambda: rw_flushed(c, end), 3600)
                    secs = time.time() - t0
                    peer.stop()
                    shutil.rmtree(d, ignore_errors=True)
                res[who].append(mb / secs)
                extra = (f"; ingested into layers at {ingest[r]:.1f} MB/s, "
                         f"peak RSS {rss[-1]:.1f} MiB"
                         if who == "tarnd" else "")
                print(f"  round {r + 1} {who:13s} {mb / secs:8.1f} MB/s "
                      f"({secs:.2f} s){extra}", flush=True)
        mt, mr = median(res["tarnd"]), median(res["pg_receivewal"])
        print(f"median: tarnd {mt:.1f} MB/s, pg_receivewal --synchronous "
              f"{mr:.1f} MB/s, ratio {mt / mr:.3f}; tarnd ingests into "
              f"layers at {median(list(ingest.values())):.1f} MB/s; tarnd "
              f"peak RSS {max(rss):.1f} MiB (largest of the rounds)")
    finally:
        if t is not None:
            t.stop()
        c.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
