#!/usr/bin/env python3
"""Benchmark: GetPage over the wire, like Neon's pagebench
(get-page-latest-lsn): requests/s and latency p50/p99/p99.9 with 1, 8 and
64 pipelined connections, and the single-client latency at depth 1, on a
pgbench scale-50 database.

Setup (done once, then reused from --dir): a compute runs pgbench -i -s
SCALE and VACUUM ANALYZE and stops cleanly; a tarnd imports that data
directory (image layers at the import LSN); the compute then runs
pgbench for --pgbench-seconds attached to tarnd, so that the latest
versions of the pages it touched come from delta layers, CHECKPOINTs,
and stops.  tarnd ingests to the end and writes everything out
(PUT .../checkpoint: delta layers, then image layers where it can), so
the reads come from layer files and tarnd's page cache, not from the
in-memory layer.  The relations read are pgbench's tables and indexes,
with their sizes at the latest LSN from tarnd (rel_size).

Measurement: a fresh tarnd on that data directory (no compute attached),
a pre-warm pass that reads every block once (so the layer files are in
the OS cache and tarnd's page cache holds what fits), then
build/tests/bench/getpage (tests/bench/getpage.c) per case: N
connections in pagestream_v3, each keeping DEPTH GetPage requests
outstanding for uniformly random blocks of those relations, request_lsn
u64 max and not_modified_since = last_record_lsn ("latest"), --warmup
seconds, then --seconds measured.  Cases run in turn within a round,
--rounds rounds; the table shows medians over rounds.  Each case also
shows tarnd's CPU (cores busy: utime+stime of tarnd over the wall time),
the load generator's, tarnd's CPU time per response (warm-up included)
and its inverse, the requests/s tarnd would serve on a core of its own
(tarnd serves pagestream on its one reactor thread), and tarnd's page
cache hit ratio during the case.  On a shared machine, where tarnd gets
only its share of a core, CPU per request is the steadier figure.

The peer, measured in the same rounds with the same client: getpage -E,
an echo server inside the load generator that answers each GetPage at
once with a zero page (1 connection at depth 1, and 8 connections at
--depth): the floor that loopback TCP and this machine's load leave for
any page server.

  tests/bench/getpage.py [--scale 50] [--rounds 3] [--seconds 10]
      [--warmup 2] [--depth 16] [--threads 1] [--page-cache 128MB]
      [--dir /tmp/tarn-bench-getpage-s50] [--fresh]
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchlib import (ROOT, Compute, Tarnd, lsn, machine, median,
                      wait_until)

TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers",
          "pgbench_history", "pgbench_accounts_pkey",
          "pgbench_branches_pkey", "pgbench_tellers_pkey"]


def bench_bin():
    build = os.environ.get("TARN_BUILD", str(ROOT / "build"))
    return os.path.join(build, "tests", "bench", "getpage")


def tarnd_sets(a):
    return {"log_level": "warn", "page_cache_size": a.page_cache}


def setup(a, d):
    """Build the database in @d; return its meta (also in d/meta.json)."""
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    c = Compute(name="getpage")
    c.initdb()
    c.settings.update({"synchronous_standby_names": "''",
                       "max_wal_size": "'8GB'", "wal_keep_size": "'16GB'",
                       "autovacuum": "off", "shared_buffers": "'256MB'"})
    c.write_settings()
    t = None
    try:
        c.start()
        print(f"setup: pgbench -i -s {a.scale}", flush=True)
        c.pgbench("-i", "-s", str(a.scale), "-q", timeout=3600)
        c.psql("VACUUM ANALYZE")
        db = int(c.psql("SELECT oid FROM pg_database "
                        "WHERE datname = 'postgres'"))
        names = ", ".join(f"'{n}'" for n in TABLES)
        rels = [(n, int(f)) for n, f in (
            line.split("|") for line in c.psql(
                f"SELECT relname, pg_relation_filenode(oid) FROM pg_class "
                f"WHERE relname IN ({names}) ORDER BY relname").splitlines())]
        c.stop()
        t = Tarnd(d, sets=tarnd_sets(a)).start()
        tenant, tl = t.adopt(c)
        tlid, start = tl["timeline_id"], tl["start_lsn"]
        print(f"setup: pgbench -T {a.pgbench_seconds} attached to tarnd",
              flush=True)
        c.pgbench("-c", "4", "-j", "2", "-T", str(a.pgbench_seconds), "-n",
                  timeout=3600)
        c.psql("CHECKPOINT")
        end = lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))
        c.stop()
        wait_until(lambda: lsn(t.timeline(tenant, tlid)["last_record_lsn"])
                   >= end - 40, 3600, "tarnd to ingest everything")
        r = t.put(f"/v1/tenant/{tenant}/timeline/{tlid}/checkpoint", {})
        assert r.status == 200, r
        ck = r.json
        d_ = t.timeline(tenant, tlid)
        latest = d_["last_record_lsn"]
        sized = []
        for name, rel in rels:
            r = t.get(f"/v1/tenant/{tenant}/timeline/{tlid}/rel_size?"
                      f"spc=1663&db={db}&rel={rel}&fork=main")
            assert r.status == 200, r
            sized.append({"name": name, "spc": 1663, "db": db, "rel": rel,
                          "nblocks": r.json["nblocks"]})
        meta = {"scale": a.scale, "tenant": tenant, "timeline": tlid,
                "start_lsn": start, "latest": latest,
                "storage": d_["storage"], "checkpoint": ck, "rels": sized}
        (d / "meta.json").write_text(json.dumps(meta, indent=1))
        return meta
    finally:
        if t is not None:
            t.stop()
        c.cleanup()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cache_counts(t):
    """(hits, misses) of tarnd's page cache for materialized pages."""
    text = t.get("/metrics").body
    out = []
    for what in ("hits", "misses"):
        m = re.search(rf'^tarn_page_cache_{what}_total{{kind="page"}} (\S+)',
                      text, re.M)
        out.append(float(m.group(1)) if m else 0.0)
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def gen_args(a, t, meta, conns, depth, extra=()):
    args = [bench_bin(), "-c", conns, "-d", depth, "-j", min(a.threads, conns),
            *extra, f"127.0.0.1:{t.page_port}", meta["tenant"],
            meta["timeline"], meta["latest"]]
    args += [f"{r['spc']}/{r['db']}/{r['rel']}:{r['nblocks']}"
             for r in meta["rels"]]
    return [str(x) for x in args]


def sweep(a, t, meta):
    """Read every block once (getpage -S): the layer files are then in
    the OS cache, and tarnd's page cache holds what fits."""
    t0 = time.monotonic()
    p = subprocess.run(gen_args(a, t, meta, 8, 16, ["-S", "-t", 3600, "-w",
                                                    0]),
                       capture_output=True, text=True, timeout=3700)
    if p.returncode != 0:
        raise SystemExit(f"getpage -S failed: {p.stderr}{p.stdout}")
    n = json.loads(p.stdout)["responses"]
    s = time.monotonic() - t0
    print(f"pre-warm: every block once, {n} requests in {s:.1f} s "
          f"({n / s:.0f}/s)", flush=True)


def run_case(a, t, meta, conns, depth, echo=False):
    args = gen_args(a, t, meta, conns, depth,
                    ["-t", a.seconds, "-w", a.warmup] + (["-E"] if echo
                                                         else []))
    h0, m0 = cache_counts(t)
    c0, w0 = cpu_seconds(t.proc.pid), time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True,
                       timeout=a.seconds + a.warmup + 120)
    c1, w1 = cpu_seconds(t.proc.pid), time.monotonic()
    h1, m1 = cache_counts(t)
    if p.returncode != 0:
        raise SystemExit(f"getpage failed ({p.returncode}): {p.stderr}"
                         f"{p.stdout}")
    res = json.loads(p.stdout)
    if echo:  # the client's CPU includes the echo threads
        res.update(tarnd_cores=float("nan"), client_cores=float("nan"),
                   tarnd_us=float("nan"), client_us=float("nan"),
                   hit=float("nan"))
        return res
    res["tarnd_cores"] = (c1 - c0) / (w1 - w0)
    res["client_cores"] = res["client_cpu_s"] / (w1 - w0)
    res["tarnd_us"] = (c1 - c0) * 1e6 / max(res["responses"], 1)
    res["client_us"] = res["client_cpu_s"] * 1e6 / max(res["responses"], 1)
    lookups = (h1 - h0) + (m1 - m0)
    res["hit"] = (h1 - h0) / lookups if lookups else float("nan")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--pgbench-seconds", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--conns", default="1,8,64",
                    help="connection counts of the pipelined cases")
    ap.add_argument("--page-cache", default="128MB")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--fresh", action="store_true",
                    help="rebuild the database even if --dir has one")
    a = ap.parse_args()
    d = Path(a.dir or f"/tmp/tarn-bench-getpage-s{a.scale}")
    print(f"getpage: {machine()}", flush=True)
    meta = None
    if not a.fresh and (d / "meta.json").exists():
        meta = json.loads((d / "meta.json").read_text())
        if meta["scale"] != a.scale:
            meta = None
        else:
            print(f"reusing {d}", flush=True)
    if meta is None:
        meta = setup(a, d)
    blocks = sum(r["nblocks"] for r in meta["rels"])
    st = meta["storage"]
    print(f"pgbench scale {meta['scale']}: "
          + ", ".join(f"{r['name']} {r['nblocks']}" for r in meta["rels"])
          + f" blocks ({blocks * 8192 / 2**20:.0f} MiB); history "
          f"{meta['start_lsn']} to {meta['latest']}; "
          f"{st['delta_layers']} delta and {st['image_layers']} image "
          f"layers, {st['layer_bytes'] / 1e6:.0f} MB; page cache "
          f"{a.page_cache}", flush=True)

    cases = [(1, 1, False)] + [(int(n), a.depth, False)
                               for n in a.conns.split(",")]
    cases += [(1, 1, True), (8, a.depth, True)]
    t = Tarnd(d, sets=tarnd_sets(a)).start()
    res = {}
    try:
        sweep(a, t, meta)
        loads = [loadavg()]
        for rnd in range(a.rounds):
            for conns, depth, echo in cases:
                r = run_case(a, t, meta, conns, depth, echo)
                res.setdefault((conns, depth, echo), []).append(r)
                print(f"  round {rnd + 1} {'echo' if echo else 'tarn'} "
                      f"{conns:3d}x{depth:<3d} "
                      f"{r['rps']:8.0f} req/s p50 {r['p50_us']:7.1f} "
                      f"p99 {r['p99_us']:8.1f} p99.9 {r['p999_us']:8.1f} us"
                      + ("" if echo else
                         f" tarnd {r['tarnd_cores']:.2f} cores "
                         f"{r['tarnd_us']:.1f} us/req"), flush=True)
            loads.append(loadavg())
    finally:
        t.stop()

    print(f"\n{'server':6s} {'conns x depth':>14s} {'req/s':>8s} "
          f"{'MiB/s':>7s} "
          f"{'mean us':>8s} {'p50 us':>8s} {'p99 us':>8s} {'p99.9 us':>9s} "
          f"{'tarnd':>6s} {'client':>6s} {'us/req':>6s} {'req/s/core':>10s} "
          f"{'cache':>6s}")
    for (conns, depth, echo), xs in res.items():
        def m(k):
            return median([x[k] for x in xs])
        print(f"{'echo' if echo else 'tarnd':6s} "
              f"{conns:>8d} x {depth:<3d} {m('rps'):8.0f} {m('mib_s'):7.0f} "
              f"{m('mean_us'):8.1f} {m('p50_us'):8.1f} {m('p99_us'):8.1f} "
              f"{m('p999_us'):9.1f} "
              + (f"{'-':>6s} {'-':>6s} {'-':>6s} {'-':>10s} {'-':>6s}"
                 if echo else
                 f"{m('tarnd_cores'):6.2f} {m('client_cores'):6.2f} "
                 f"{m('tarnd_us'):6.1f} {1e6 / m('tarnd_us'):10.0f} "
                 f"{m('hit'):6.0%}"))
    print(f"(medians of {a.rounds} rounds of {a.seconds:g} s after "
          f"{a.warmup:g} s warm-up; tarnd and client: cores busy; us/req: "
          f"tarnd's CPU time per response; req/s/core: 1 s / us/req, what "
          f"tarnd would serve with a core to itself; cache: tarnd's page "
          f"cache hit ratio; echo: the peer, getpage -E, a server that "
          f"answers at once with a zero page; load average before and "
          f"after each round: "
          f"{' | '.join(loads)})")
    argv = [a for a in sys.argv[1:] if a != "--fresh"]
    print("reproduce: tests/bench/getpage.py " + " ".join(
        shlex.quote(x) for x in argv))


if __name__ == "__main__":
    main()
