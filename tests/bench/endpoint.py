#!/usr/bin/env python3
"""Benchmark: the time from `tarn endpoint start` to the first successful
query, at pgbench scales 1 and 50 (issue: "report the time from `tarn
endpoint start` to the first successful query, at scales 1 and 50").

Per scale, a fresh tarnd and a tarn directory: `tarn tenant create`,
`tarn branch create main` (initdb), `tarn endpoint start main`, pgbench -i
at the scale with tarnd as the synchronous standby, CHECKPOINT, and
`tarn endpoint stop main`, which deletes the compute's data directory.
tarnd then writes its layers out (PUT .../checkpoint with images), the
steady state of a branch nobody is using.

Then --rounds rounds of:
- tarn: `tarn endpoint start main` (the basebackup over the page service,
  untarred; PostgreSQL 15 started as a primary; tarnd's WAL receiver
  attached), then `psql -c 'SELECT count(*) FROM pgbench_branches'`
  until it succeeds: the wall time from launching the CLI to the query's
  answer, and the CLI's own split (basebackup MB and seconds, ready
  seconds).  Then `tarn endpoint stop main` (the data directory goes).
- floor: the same compute's data directory kept (`stop --keep`) and
  started again with `pg_ctl start -w`, then the same query: a restart of
  a PostgreSQL whose data is already on local disk, which any start from
  remote storage has to add its fetch to.

  tests/bench/endpoint.py [--scales 1,50] [--rounds 3]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from benchlib import (PG_BIN, lsn, machine, median, start_tarnd,
                      wait_until)
from conftest import TARN
from pg import PG_USER, as_user, ensure_user

START = re.compile(r"started endpoint main on port (\d+) at (\S+) "
                   r"\(basebackup ([\d.]+) MB in ([\d.]+)s; ready in "
                   r"([\d.]+)s\)")
QUERY = "SELECT count(*) FROM pgbench_branches"


class Cli:
    def __init__(self, t, tarn_dir):
        self.env = dict(os.environ, TARN_HTTP=t.url, TARN_DIR=tarn_dir,
                        TARN_PG_BIN=str(PG_BIN))

    def __call__(self, *args):
        p = subprocess.run([str(TARN), *args], capture_output=True,
                           text=True, env=self.env, timeout=1800)
        if p.returncode != 0:
            raise SystemExit(f"tarn {' '.join(args)}: {p.stderr}")
        return p.stdout


def user_args():
    return ["--user", PG_USER] if os.geteuid() == 0 else []


def psql(port, sql, check=True):
    p = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-At", "-h",
                        "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "-c", sql], capture_output=True, text=True,
                       timeout=600)
    if check and p.returncode != 0:
        raise SystemExit(f"psql {sql!r}: {p.stderr}")
    return p


def first_query(port, query=QUERY, deadline=120):
    """Ask until the answer comes; the answer."""
    end = time.monotonic() + deadline
    while True:
        p = psql(port, query, check=False)
        if p.returncode == 0:
            return p.stdout.strip()
        if time.monotonic() > end:
            raise SystemExit(f"no answer from port {port}: {p.stderr}")
        time.sleep(0.01)


def endpoint_info(cli):
    for e in json.loads(cli("--json", "endpoint", "list")):
        if e["branch"] == "main":
            return e
    raise SystemExit("tarn endpoint list does not show main")


def start_main(cli, query=QUERY):
    t0 = time.monotonic()
    out = cli("endpoint", "start", "main", *user_args())
    m = START.search(out)
    if not m:
        raise SystemExit(f"unexpected output of endpoint start: {out}")
    port = int(m.group(1))
    answer = first_query(port, query)
    return (time.monotonic() - t0, float(m.group(3)), float(m.group(4)),
            float(m.group(5)), port, answer)


def one_scale(scale, rounds):
    t = start_tarnd()
    tarn_dir = tempfile.mkdtemp(prefix="tarn-bench-ep-", dir="/tmp")
    os.chmod(tarn_dir, 0o755)
    cli = Cli(t, tarn_dir)
    runs, floor = [], []
    try:
        cli("tenant", "create", "--name", "default")
        cli("branch", "create", "main")
        port = start_main(cli, "SELECT 1")[4]
        p = subprocess.run([str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p",
                            str(port), "-U", "postgres", "-i", "-s",
                            str(scale), "-q", "postgres"],
                           capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"pgbench -i: {p.stderr}")
        psql(port, "CHECKPOINT")
        end = lsn(psql(port, "SELECT pg_current_wal_insert_lsn()").stdout)
        want = psql(port, QUERY).stdout.strip()
        ep = endpoint_info(cli)
        tenant, tl = ep["tenant_id"], ep["timeline_id"]
        cli("endpoint", "stop", "main")
        wait_until(lambda: lsn(t.timeline(tenant, tl)["last_record_lsn"])
                   >= end, 600, "ingest to reach the end")
        r = t.put(f"/v1/tenant/{tenant}/timeline/{tl}/checkpoint",
                  {"images": True})
        assert r.status == 200, r
        for _ in range(rounds):
            total, mb, bb_s, ready_s, port, answer = start_main(cli)
            if answer != want:
                raise SystemExit(f"scale {scale}: the endpoint answered "
                                 f"{answer}, the compute had {want}")
            runs.append((total, mb, bb_s, ready_s))
            # The floor: the same data directory, restarted in place.
            pgdata = endpoint_info(cli)["pgdata"]
            cli("endpoint", "stop", "main", "--keep")
            t0 = time.monotonic()
            subprocess.run(as_user([str(PG_BIN / "pg_ctl"), "start", "-w",
                                    "-s", "-D", pgdata, "-l",
                                    os.path.join(pgdata, "floor.log")]),
                           check=True, capture_output=True, timeout=600)
            first_query(port)
            floor.append(time.monotonic() - t0)
            subprocess.run(as_user([str(PG_BIN / "pg_ctl"), "stop", "-w",
                                    "-s", "-m", "fast", "-D", pgdata]),
                           check=True, capture_output=True, timeout=600)
            shutil.rmtree(pgdata, ignore_errors=True)
    finally:
        t.stop()
        shutil.rmtree(tarn_dir, ignore_errors=True)
    return runs, floor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1,50")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    ensure_user()
    print(f"machine: {machine()}")
    rows = []
    for scale in [int(s) for s in a.scales.split(",")]:
        runs, floor = one_scale(scale, a.rounds)
        rows.append((scale, runs, floor))
        tot = [r[0] for r in runs]
        print(f"scale {scale}: start to first query "
              + ", ".join(f"{x:.2f}" for x in tot) + " s", flush=True)
    print(f"\n{'scale':>5} {'start->query s':>15} {'basebackup MB':>14} "
          f"{'fetch s':>8} {'ready s':>8} {'floor s':>8}")
    for scale, runs, floor in rows:
        print(f"{scale:>5} {median([r[0] for r in runs]):>15.2f} "
              f"{median([r[1] for r in runs]):>14.1f} "
              f"{median([r[2] for r in runs]):>8.2f} "
              f"{median([r[3] for r in runs]):>8.2f} "
              f"{median(floor):>8.2f}")
    print(f"(medians of {a.rounds} rounds; start->query: from launching "
          "`tarn endpoint start` to the first query's answer; fetch: the "
          "basebackup received and untarred; ready: PostgreSQL started and "
          "tarnd attached; floor: pg_ctl start of the same data directory "
          "kept on local disk, to the same query)")
    print(f"reproduce: tests/bench/endpoint.py --scales {a.scales} "
          f"--rounds {a.rounds}")


if __name__ == "__main__":
    main()
