#!/usr/bin/env python3
"""Benchmark: the time to create 100 branches, and the disk space they add.

Setup: a tarnd imports a freshly initdb'd compute and follows it; the
compute runs pgbench -i -s --scale, then --branches commits of a few
thousand rows each, and the LSN after each commit is kept (pg_current_
wal_insert_lsn(): record boundaries, spread over the WAL).  The compute
CHECKPOINTs and stops, tarnd ingests to the end and writes its layers
(PUT .../checkpoint {"images": false}), so that a branch point never
lies in the in-memory layer (a branch there would freeze and write it:
repo_timeline_add).

Then --rounds rounds, each creating --branches branches of that
timeline, one at each kept LSN (distinct LSNs), in two ways that
alternate:

- api: POST /v1/tenant/{t}/timeline {"ancestor_timeline_id",
  "ancestor_start_lsn", "name"} on one keep-alive HTTP connection;
- cli: `tarn branch create NAME --lsn X/Y`, one process per branch (what
  an operator types; includes starting the process and connecting);
- floor: not a branch, the file system work one creation does (as strace
  shows it: an LMDB commit with its two syncs, two mkdirs each followed
  by an fsync of the parent), done by Python in a scratch directory on
  the same file system: what a creation cannot beat on this disk.

For each round: the wall time of all creations, p50/p99 of one creation,
and the disk space added: tarnd's data directory before and after
(allocated blocks, st_blocks, of every file and directory, the LMDB
catalog included) and the catalog's data.mdb alone (its file size).
Medians over rounds per way.  The branches stay: round k adds to k-1
rounds' worth, so the catalog grows as it would in use.

  tests/bench/branch.py [--rounds 3] [--branches 100] [--scale 5]
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import time

from benchlib import Compute, lsn, machine, median, start_tarnd, wait_until
from conftest import TARN


def allocated(path):
    """(allocated bytes, directories, files) of a tree."""
    alloc, ndirs, nfiles = os.lstat(path).st_blocks * 512, 1, 0
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            alloc += os.lstat(os.path.join(root, n)).st_blocks * 512
        ndirs += len(dirs)
        nfiles += len(files)
    return alloc, ndirs, nfiles


def catalog_size(t):
    p = t.data_dir / "catalog" / "data.mdb"
    return p.stat().st_size if p.exists() else 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[int(p * (len(xs) - 1) + 0.5)]


def fs_floor(directory, n):
    """The file system work one branch creation does (strace of tarnd):
    an LMDB commit (a page write and fdatasync, then the meta page written
    and synced) and two mkdirs (the timeline and its layers/), each
    followed by an fsync of its parent.  Times @n of them in @directory
    (the data directory's file system); returns the per-branch times."""
    probe = os.path.join(directory, "fs-probe")
    os.makedirs(probe, exist_ok=True)
    fd = os.open(os.path.join(probe, "db"), os.O_CREAT | os.O_RDWR, 0o600)
    page = b"\0" * 4096
    lat = []

    os.pwrite(fd, b"\0" * (4096 * 66), 0)  # LMDB's file is already there
    os.fsync(fd)

    def mkdir_synced(path):
        os.mkdir(path, 0o700)
        dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    for i in range(n):
        s = time.monotonic()
        os.pwrite(fd, page, 4096 * (2 + i % 64))
        os.fdatasync(fd)
        os.pwrite(fd, page[:128], 0)
        os.fdatasync(fd)
        mkdir_synced(os.path.join(probe, f"t{i}"))
        mkdir_synced(os.path.join(probe, f"t{i}", "layers"))
        lat.append(time.monotonic() - s)
    os.close(fd)
    shutil.rmtree(probe)
    return lat


def create_api(t, tenant, root, lsns, tag):
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=60)
    lat = []
    t0 = time.monotonic()
    for i, at in enumerate(lsns):
        body = json.dumps({"ancestor_timeline_id": root,
                           "ancestor_start_lsn": at,
                           "name": f"{tag}-{i}"})
        s = time.monotonic()
        conn.request("POST", f"/v1/tenant/{tenant}/timeline", body=body,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        lat.append(time.monotonic() - s)
        if r.status != 201:
            raise SystemExit(f"branch creation failed: {r.status} {data!r}")
    wall = time.monotonic() - t0
    conn.close()
    return wall, lat


def create_cli(t, tenant, lsns, tag):
    env = dict(os.environ, TARN_HTTP=t.url)
    lat = []
    t0 = time.monotonic()
    for i, at in enumerate(lsns):
        s = time.monotonic()
        p = subprocess.run([str(TARN), "--tenant", tenant, "branch", "create",
                            f"{tag}-{i}", "--lsn", at],
                           capture_output=True, text=True, env=env)
        lat.append(time.monotonic() - s)
        if p.returncode != 0:
            raise SystemExit(f"tarn branch create failed: {p.stderr}")
    return time.monotonic() - t0, lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--branches", type=int, default=100)
    ap.add_argument("--scale", type=int, default=5)
    a = ap.parse_args()
    print(f"branch: {machine()}", flush=True)

    t = start_tarnd()
    c = Compute(name="bench-branch", settings={"autovacuum": "off"})
    try:
        c.initdb()
        tenant, tl = t.adopt(c, t.create_tenant(name="default")["id"],
                             name="main")
        root = tl["timeline_id"]
        c.pgbench("-i", "-s", str(a.scale), "-q")
        c.psql("CREATE TABLE bench_branch (x int, pad text)")
        script = "".join(
            "INSERT INTO bench_branch SELECT g, repeat('x', 40) "
            "FROM generate_series(1, 2000) g;\n"
            "SELECT pg_current_wal_insert_lsn();\n"
            for _ in range(a.branches))
        lsns = c.psql(script).split()
        assert len(set(lsns)) == a.branches, lsns
        c.psql("CHECKPOINT")
        end = lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))
        c.stop()
        wait_until(lambda: lsn(t.timeline(tenant, root)["last_record_lsn"])
                   >= end - 40, 600, "tarnd to ingest everything")
        r = t.put(f"/v1/tenant/{tenant}/timeline/{root}/checkpoint",
                  {"images": False})
        assert r.status == 200, r
        d = t.timeline(tenant, root)
        print(f"timeline {root}: {d['start_lsn']} to "
              f"{d['last_record_lsn']}; branch points {lsns[0]} to "
              f"{lsns[-1]}; data directory "
              f"{allocated(t.data_dir)[0] / 2**20:.1f} MiB, catalog "
              f"{catalog_size(t) / 2**10:.0f} KiB", flush=True)

        res = {"api": [], "cli": [], "floor": []}
        print(f"{'round':>5s} {'way':>5s} {'total s':>8s} {'p50 ms':>7s} "
              f"{'p99 ms':>7s} {'+disk KiB':>10s} {'+catalog KiB':>13s} "
              f"{'+dirs':>6s} {'+files':>6s} {'load avg':>16s}")
        for rnd in range(a.rounds):
            for way in ("api", "cli", "floor"):
                tag = f"r{rnd}{way}"
                (d0, n0, f0), c0 = allocated(t.data_dir), catalog_size(t)
                t0 = time.monotonic()
                if way == "api":
                    wall, lat = create_api(t, tenant, root, lsns, tag)
                elif way == "cli":
                    wall, lat = create_cli(t, tenant, lsns, tag)
                else:
                    lat = fs_floor(t.dir, a.branches)
                    wall = time.monotonic() - t0
                (d1, n1, f1), c1 = allocated(t.data_dir), catalog_size(t)
                with open("/proc/loadavg") as f:
                    load = " ".join(f.read().split()[:3])
                x = {"wall": wall, "p50": statistics.median(lat),
                     "p99": pct(lat, 0.99), "disk": d1 - d0,
                     "cat": c1 - c0, "dirs": n1 - n0, "files": f1 - f0}
                res[way].append(x)
                print(f"{rnd + 1:5d} {way:>5s} {wall:8.2f} "
                      f"{x['p50'] * 1e3:7.2f} {x['p99'] * 1e3:7.2f} "
                      f"{x['disk'] / 1024:10.0f} {x['cat'] / 1024:13.0f} "
                      f"{x['dirs']:6d} {x['files']:6d} {load:>16s}",
                      flush=True)
        total = (len(res["api"]) + len(res["cli"])) * a.branches
        dall, call = allocated(t.data_dir)[0], catalog_size(t)
        ntl = len(t.get(f"/v1/tenant/{tenant}").json["timelines"])
    finally:
        c.cleanup()
        t.stop()
        shutil.rmtree(t.dir, ignore_errors=True)

    print(f"\nmedians of {a.rounds} rounds, {a.branches} branches each:")
    for way, xs in res.items():
        def m(k):
            return median([x[k] for x in xs])
        if way == "floor":
            print(f"  floor: {m('wall'):.2f} s for the file system work of "
                  f"{a.branches} branches ({m('p50') * 1e3:.2f} ms p50, "
                  f"{m('p99') * 1e3:.2f} ms p99 each)")
            continue
        print(f"  {way}: {m('wall'):.2f} s for {a.branches} branches "
              f"({m('p50') * 1e3:.2f} ms p50, {m('p99') * 1e3:.2f} ms p99 "
              f"each); +{m('disk') / 1024:.0f} KiB on disk "
              f"({m('disk') / a.branches:.0f} bytes per branch), catalog "
              f"+{m('cat') / 1024:.0f} KiB")
    print(f"after {total} branches ({ntl} timelines): data directory "
          f"{dall / 2**20:.1f} MiB, catalog {call / 2**20:.2f} MiB")
    print(f"reproduce: tests/bench/branch.py --rounds {a.rounds} "
          f"--branches {a.branches} --scale {a.scale}")


if __name__ == "__main__":
    main()
