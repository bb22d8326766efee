#!/usr/bin/env python3
"""Benchmark: commit throughput with tarnd as the synchronous standby.

pgbench (scale 10, 8 clients, T seconds) on one compute under three setups,
interleaved and repeated so that all three see the same machine:
  A  tarnd attached, synchronous_standby_names = 'tarn'
  B  pg_receivewal --synchronous, synchronous_standby_names = 'pg_receivewal'
  C  no standby, synchronous_standby_names = ''
Reports the TPS of every run, the medians, and A/B and A/C.
Each line also shows the WAL the run wrote per transaction: a run starts
right after a checkpoint, so its full-page images are a roughly fixed amount
of WAL, and a slower run carries more of it per transaction.  It shows
too the CPU the whole machine spent per transaction (all processes and the
kernel, from /proc/stat) and how busy the machine was: when it is nearly
busy under every setup, commits per second follow CPU per commit, and the
last line puts B's CPU per transaction over A's next to A/B.

  tests/bench/wal_commit.py [--seconds 60] [--rounds 3] [--scale 10]
                            [--warmup 15] [--variant NAME=PATH ...]
                            [--standby-cpu N]

--variant adds a setup like A with another tarnd binary (NAME is one
letter other than A, B and C), interleaved with the others, and prints its
median and its ratio to B.  That is how a change to the commit path is
judged here: the rounds swing by 20-40% on a small VM, so two binaries are
compared in the same run, against the same pg_receivewal, and not across
runs.

--standby-cpu N gives the standby (every thread of tarnd, or
pg_receivewal) CPU N to itself, and the compute and pgbench the other
CPUs.  By default all of them share every CPU, so on a small machine a
standby's CPU is taken from the compute, and commits per second follow
the CPU the whole machine spends per commit.  With the standby on its own
CPU, as it would be on its own host, the figure shows the commit path
itself.  It is a second view, not the target's: the target is measured
without it.
"""
import argparse
import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from benchlib import (Compute, Receivewal, lsn, machine, median,
                      start_tarnd, wait_until)


def set_sync(c, name):
    c.psql(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
    c.psql("SELECT pg_reload_conf()")


def reset(c):
    """The same starting point for every run: no standby, a checkpoint."""
    set_sync(c, "")
    c.psql("CHECKPOINT")


def cpu_ticks():
    """(busy, total) clock ticks of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


def pin_standby(pid, cpu):
    """Put every thread of process @pid on CPU @cpu alone."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except ProcessLookupError:
            pass  # a thread that has just exited


def tps(out):
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=15, metavar="SECONDS",
                    help="uncounted pgbench with no standby before round 1")
    ap.add_argument("--variant", action="append", default=[],
                    metavar="NAME=PATH",
                    help="another tarnd binary to run as setup NAME")
    ap.add_argument("--standby-cpu", type=int, metavar="N",
                    help="run the standby alone on CPU N, and the compute "
                    "and pgbench on the others")
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if a.standby_cpu is not None:
        if a.standby_cpu not in cpus or len(cpus) < 2:
            ap.error(f"--standby-cpu {a.standby_cpu}: want one of the "
                     f"CPUs {cpus}, and at least two of them")
        # Set before the compute starts: it and pgbench inherit this.
        os.sched_setaffinity(0, set(cpus) - {a.standby_cpu})
    variants = {}
    for v in a.variant:
        name, _, path = v.partition("=")
        if (len(name) != 1 or not name.isalpha() or name in "ABC"
                or name in variants or not Path(path).is_file()):
            ap.error(f"--variant {v}: want NAME=PATH, NAME one letter other "
                     "than A, B and C, PATH an existing tarnd binary")
        variants[name] = Path(path)

    c = Compute(name="bench").initdb()
    c.settings["synchronous_standby_names"] = "''"
    c.settings["max_wal_size"] = "'4GB'"
    c.settings["wal_keep_size"] = "'0'"
    c.write_settings()
    c.start()
    tarnds = {"A": start_tarnd()}
    for name, path in variants.items():
        tarnds[name] = start_tarnd(binary=path)
    tenants = {k: t.create_tenant()["id"] for k, t in tarnds.items()}
    work = Path(tempfile.mkdtemp(prefix="tarn-bench-rw-"))
    order = ["A", *variants, "B", "C"]
    results = {k: [] for k in order}
    cpu = {k: [] for k in order}
    try:
        c.pgbench("-i", "-s", str(a.scale), "-q")
        reset(c)
        print(f"wal_commit: {machine()}")
        print(f"pgbench -c {a.clients} -j 2 -T {a.seconds}, scale {a.scale}, "
              f"{a.rounds} round(s), setups interleaved")
        if a.standby_cpu is not None:
            print(f"standby alone on CPU {a.standby_cpu}; compute and "
                  f"pgbench on {sorted(set(cpus) - {a.standby_cpu})}")
        # The first run after pgbench -i starts cold (caches, a fresh
        # table) and was the slowest of its setup's rounds; it would always
        # be A's, so it is not counted at all.
        if a.warmup > 0:
            c.pgbench("-c", str(a.clients), "-j", "2", "-T", str(a.warmup),
                      "-n")
            reset(c)
            print(f"warm-up: {a.warmup} s with no standby, not counted")
        for name, path in variants.items():
            print(f"variant {name}: {path}")
        for r in range(a.rounds):
            k = r % len(order)
            for setup in order[k:] + order[:k]:
                peer = None
                tl = None
                t = tarnds.get(setup)
                if t is not None:
                    tenant = tenants[setup]
                    tl = t.create_timeline(tenant, bootstrap="none")["timeline_id"]
                    set_sync(c, "tarn")
                    assert t.attach(tenant, tl, c.conninfo()).status == 200
                    c.wait_streaming()
                    if a.standby_cpu is not None:
                        pin_standby(t.proc.pid, a.standby_cpu)
                elif setup == "B":
                    set_sync(c, "pg_receivewal")
                    peer = Receivewal(c, work / f"rw{r}")
                    if a.standby_cpu is not None:
                        pin_standby(peer.proc.pid, a.standby_cpu)
                    wait_until(lambda: "pg_receivewal" in c.psql(
                        "SELECT application_name FROM pg_stat_replication"),
                        30)
                else:
                    set_sync(c, "")
                lsn0 = lsn(c.psql("SELECT pg_current_wal_lsn()"))
                busy0, all0 = cpu_ticks()
                out = c.pgbench("-c", str(a.clients), "-j", "2", "-T",
                                str(a.seconds), "-n")
                busy1, all1 = cpu_ticks()
                wal = lsn(c.psql("SELECT pg_current_wal_lsn()")) - lsn0
                n = int(re.search(r"actually processed: (\d+)", out).group(1))
                results[setup].append(tps(out))
                n = max(n, 1)
                us = (busy1 - busy0) * 1e6 / os.sysconf("SC_CLK_TCK") / n
                cpu[setup].append(us)
                print(f"  round {r + 1} {setup}: {tps(out):9.1f} tps, "
                      f"{wal / n:6.0f} WAL bytes and "
                      f"{us:4.0f} us of CPU per transaction, "
                      f"machine {100 * (busy1 - busy0) / max(1, all1 - all0):.0f}%"
                      " busy", flush=True)
                if t is not None:
                    t.delete(f"/v1/tenant/{tenant}/timeline/{tl}/compute")
                    t.delete(f"/v1/tenant/{tenant}/timeline/{tl}")
                if peer:
                    peer.stop()
                    shutil.rmtree(peer.dir, ignore_errors=True)
                reset(c)
        ma, mb, mc = (median(results[k]) for k in "ABC")
        print(f"median tps: A (tarnd) {ma:.1f}, B (pg_receivewal "
              f"--synchronous) {mb:.1f}, C (no standby) {mc:.1f}")
        for k in order:
            print(f"  {k}: runs from {min(results[k]):.1f} to "
                  f"{max(results[k]):.1f} tps")
        for name in variants:
            mv = median(results[name])
            print(f"{name}: median {mv:.1f} tps, {name}/B = {mv / mb:.3f}, "
                  f"{name}/A = {mv / ma:.3f}")
        print("CPU of the whole machine per transaction (median): "
              + ", ".join(f"{k} {median(cpu[k]):.0f} us" for k in order))
        print(f"A/B = {ma / mb:.3f}   A/C = {ma / mc:.3f}   "
              f"B's CPU per transaction / A's = "
              f"{median(cpu['B']) / median(cpu['A']):.3f}")
        print("reproduce: TARN_BUILD=<build dir> tests/bench/wal_commit.py "
              + " ".join(shlex.quote(x) for x in sys.argv[1:]))
    finally:
        for t in tarnds.values():
            t.stop()
            shutil.rmtree(t.dir, ignore_errors=True)
        c.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
