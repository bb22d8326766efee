"""Branches and endpoints, driven through the `tarn` CLI as a user would.

One tarnd serves the module, with a small checkpoint_distance so that layer
files are written and WAL is removed while the tests run.  Tenant
"default" gets its root branch "main" from `tarn branch create main`
(initdb), and `tarn endpoint start main` starts the compute everything else
branches from.  Every compute in this file is started and stopped with the
CLI: a basebackup from the page service, PostgreSQL 15 as an unprivileged
user, tarnd's WAL receiver attached.

What the comparisons use: `pg_dump` of every database.  One thing in a dump
legitimately differs between a compute and a compute started from tarn at
the same LSN: sequences.  PostgreSQL WAL-logs a sequence 32 values ahead of
what it has handed out (log_cnt), and tarn, which only has the WAL, rebuilds
the page as logged, just as PostgreSQL's own crash recovery does.  So the
dumps are compared with their `setval` lines taken out, and each sequence's
value is checked separately: the restored one is at least the original and
at most 32 ahead.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import TARN, Tarnd, assert_clean_exit, free_port, wait_until
from pg import PG_BIN, PG_USER, as_user, ensure_user, lsn, lsn_str

SETVAL = re.compile(r"^SELECT pg_catalog\.setval\('([^']+)', (\d+), "
                    r"(true|false)\);$")
LOG_AHEAD = 32   # SEQ_LOG_VALS in PostgreSQL's sequence.c


class Endpoint:
    def __init__(self, branch, port, lsn_text, url):
        self.branch, self.port, self.lsn, self.url = (branch, port,
                                                      lsn(lsn_text), url)

    def psql(self, sql, db="postgres", check=True):
        p = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-At", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "postgres", "-d", db,
                            "-c", sql], capture_output=True, text=True,
                           timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"psql {sql!r} on {self.branch}: "
                                 f"{p.stderr}")
        return p.stdout.strip()

    def pgbench(self, *args):
        p = subprocess.run([str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "postgres", *args,
                            "postgres"], capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    def insert_lsn(self):
        """The end of the last record inserted: a record boundary (the
        write position, pg_current_wal_lsn(), can be inside a record)."""
        return lsn(self.psql("SELECT pg_current_wal_insert_lsn()"))

    def databases(self):
        return self.psql("SELECT datname FROM pg_database WHERE NOT "
                         "datistemplate ORDER BY 1").split("\n")

    def dump(self):
        """{db: (dump without setval lines, {sequence: (value, called)})}
        for every database."""
        out = {}
        for db in self.databases():
            p = subprocess.run([str(PG_BIN / "pg_dump"), "-h", "127.0.0.1",
                                "-p", str(self.port), "-U", "postgres",
                                "--no-sync", db], capture_output=True,
                               text=True, timeout=120)
            assert p.returncode == 0, p.stderr
            lines, seqs = [], {}
            for line in p.stdout.splitlines():
                m = SETVAL.match(line)
                if m:
                    seqs[m.group(1)] = (int(m.group(2)), m.group(3))
                elif not line.startswith(("\\restrict", "\\unrestrict")):
                    # (a random key per run)
                    lines.append(line)
            out[db] = ("\n".join(lines), seqs)
        return out

    def replication(self):
        return self.psql("SELECT application_name, state, sync_state FROM "
                         "pg_stat_replication")


def assert_same_dump(got, want, what):
    assert got.keys() == want.keys(), what
    for db in want:
        assert got[db][0] == want[db][0], f"{what}: pg_dump of {db} differs"
        assert got[db][1].keys() == want[db][1].keys(), what
        for seq, (v, called) in want[db][1].items():
            g, gcalled = got[db][1][seq]
            # As after a crash: logged up to 32 ahead, never behind.
            assert v <= g <= v + LOG_AHEAD, (what, seq, v, g)
            assert gcalled == called or g > v, (what, seq)


class Env:
    def __init__(self, t, tarn_dir):
        self.t = t
        self.tarn_dir = tarn_dir
        self.eps = {}

    def tarn(self, *args, check=True, env=None):
        e = dict(os.environ, TARN_HTTP=self.t.url, TARN_DIR=self.tarn_dir,
                 TARN_PG_BIN=str(PG_BIN))
        e.update(env or {})
        p = subprocess.run([str(TARN), *args], capture_output=True,
                           text=True, env=e, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"tarn {' '.join(args)} failed "
                                 f"({p.returncode}): {p.stderr}")
        return p

    def user_args(self):
        return ["--user", PG_USER] if os.geteuid() == 0 else []

    def start(self, branch, *args):
        p = self.tarn("endpoint", "start", branch, *self.user_args(), *args)
        m = re.fullmatch(r"started endpoint (\S+) on port (\d+) at "
                         r"(\d+/[0-9A-F]+) \(basebackup [\d.]+ MB in "
                         r"[\d.]+s; ready in [\d.]+s\)\n"
                         r"connect: psql '(postgresql://postgres@127\.0\.0\.1"
                         r":\d+/postgres)'\n", p.stdout)
        assert m, p.stdout
        assert m.group(1) == branch and m.group(4).endswith(
            f":{m.group(2)}/postgres")
        ep = Endpoint(branch, int(m.group(2)), m.group(3), m.group(4))
        self.eps[branch] = ep
        self.check_followed(ep)
        return ep

    def check_followed(self, ep):
        """tarnd follows the new compute as its synchronous standby: it
        reaches streaming/sync, a commit (of an xid, changing no data)
        returns, and tarnd ingests it on the branch.  (Right after start-up
        the compute may not enforce synchronous_standby_names yet, its
        checkpointer publishes it, so a commit alone proves nothing.)"""
        wait_until(lambda: ep.replication() == "tarn|streaming|sync", 30,
                   "tarn to stream as the synchronous standby")
        p = subprocess.run([str(PG_BIN / "psql"), "-X", "-At", "-h",
                            "127.0.0.1", "-p", str(ep.port), "-U",
                            "postgres", "-c", "SELECT txid_current()"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert ep.replication() == "tarn|streaming|sync"
        self.wait_ingested(ep.branch, ep.insert_lsn())

    def stop(self, branch, *args):
        p = self.tarn("endpoint", "stop", branch, *args)
        self.eps.pop(branch, None)
        return p

    def branch(self, name, *args):
        p = self.tarn("branch", "create", name, *args)
        m = re.fullmatch(rf"created branch {name} \(([0-9a-f]{{32}})\) at "
                         r"(\d+/[0-9A-F]+)\n", p.stdout)
        assert m, p.stdout
        return m.group(1), lsn(m.group(2))

    def detail(self, name):
        for tl in json.loads(self.tarn("--json", "branch", "list").stdout):
            if tl["name"] == name:
                return tl
        raise AssertionError(f"no branch {name}")

    def wait_ingested(self, name, at):
        wait_until(lambda: lsn(self.detail(name)["last_record_lsn"]) >= at,
                   60, f"{name}: ingest to reach {lsn_str(at)}")

    def listing(self):
        return {e["branch"]: e
                for e in json.loads(self.tarn("--json", "endpoint",
                                              "list").stdout)}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    ensure_user()
    t = Tarnd(tmp_path_factory.mktemp("endpoints"),
              sets={"log_level": "info", "checkpoint_distance": "8MB"})
    t.start()
    # Outside pytest's private tmp: the compute's user must reach it.
    tarn_dir = tempfile.mkdtemp(prefix="tarn-endpoints-", dir="/tmp")
    os.chmod(tarn_dir, 0o755)
    e = Env(t, tarn_dir)
    try:
        e.tarn("tenant", "create", "--name", "default")
        e.tarn("branch", "create", "main")
        main = e.start("main")
        main.pgbench("-i", "-s", "1", "-q")
        main.psql("CREATE DATABASE shop")
        main.psql("CREATE TABLE orders (id serial PRIMARY KEY, qty int, "
                  "note text); INSERT INTO orders (qty, note) SELECT g % 7, "
                  "md5(g::text) FROM generate_series(1, 5000) g; "
                  "CREATE INDEX orders_qty ON orders (qty)", db="shop")
        yield e
    finally:
        stop_everything(e)
        shutil.rmtree(tarn_dir, ignore_errors=True)
        assert_clean_exit(t)


def stop_everything(e):
    """Every endpoint of the module, also when tarnd is gone."""
    if e.t.proc.poll() is None:
        for branch in e.listing():
            e.tarn("endpoint", "stop", branch, check=False)
    for root, _, files in os.walk(os.path.join(e.tarn_dir, "endpoints")):
        if "endpoint.json" in files:
            with open(os.path.join(root, "endpoint.json")) as f:
                pgdata = json.load(f)["pgdata"]
            if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
                subprocess.run(as_user([str(PG_BIN / "pg_ctl"), "stop", "-D",
                                        pgdata, "-m", "immediate"]),
                               capture_output=True, check=False)


def time_now(ep):
    """The compute's clock (it stamps the commit records), RFC 3339."""
    return ep.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")


# ---- the tests -----------------------------------------------------------

def test_round_trip(env):
    """pgbench on main; stop the endpoint (its data directory goes), start
    it again from tarn: every database is the same, and pgbench runs on
    with tarnd following the new WAL as the synchronous standby."""
    main = env.eps["main"]
    main.pgbench("-t", "300", "-c", "2", "-n")
    main.psql("INSERT INTO orders (qty, note) VALUES (1, 'before stop')",
              db="shop")
    assert main.replication() == "tarn|streaming|sync"
    before = main.dump()
    pgdata = env.listing()["main"]["pgdata"]
    assert os.path.isdir(pgdata)
    p = env.stop("main")
    assert p.stdout == (f"stopped endpoint main (port {main.port}); removed "
                        f"{pgdata}\n")
    assert not os.path.exists(pgdata)
    assert "main" not in env.listing()
    detail = env.detail("main")
    assert detail["compute"] is None or \
        detail["compute"]["state"] == "detached"

    again = env.start("main")
    # It starts where the branch's WAL ends: the old compute's shutdown
    # checkpoint is the last record tarn has.
    assert again.lsn == lsn(detail["wal_flush_lsn"])
    assert_same_dump(again.dump(), before, "after the round trip")
    assert again.psql("SELECT note FROM orders ORDER BY id DESC LIMIT 1",
                      db="shop") == "before stop"
    again.pgbench("-t", "300", "-c", "2", "-n")
    assert again.replication() == "tarn|streaming|sync"
    end = again.insert_lsn()
    env.wait_ingested("main", end)
    assert lsn(env.detail("main")["wal_flush_lsn"]) >= end


def test_point_in_time(env):
    """5 moments of a workload on main, each with its pg_dump, LSN and
    time.  A branch at each LSN, and one at each time, started as an
    endpoint, dumps the same as main did at that moment."""
    main = env.eps["main"]
    moments = []
    for i in range(5):
        main.pgbench("-t", "60", "-c", "2", "-n")
        main.psql(f"INSERT INTO orders (qty, note) SELECT {i}, 'm{i}-' || g "
                  "FROM generate_series(1, 200) g; "
                  f"UPDATE orders SET qty = qty + 1 WHERE id % 5 = {i}",
                  db="shop")
        if i == 2:
            main.psql(f"CREATE TABLE t{i} AS SELECT * FROM orders; "
                      "DROP INDEX orders_qty", db="shop")
        if i == 3:
            main.psql("CREATE DATABASE late")
            main.psql("VACUUM pgbench_accounts")
        # Nothing else that a dump shows is written until the next moment.
        at = main.insert_lsn()
        dump = main.dump()
        when = time_now(main)
        moments.append((at, when, dump))
        time.sleep(0.05)   # the next commit is stamped later than @when
    env.wait_ingested("main", moments[-1][0])
    # With the small checkpoint_distance, main's WAL below the first moment
    # is gone by now (layers hold it): those branches' archives carry page
    # headers and zeros below the branch point, and tarnd follows their
    # computes from the branch point on.
    assert lsn(env.detail("main")["wal_start_lsn"]) > moments[0][0]

    for i, (at, when, dump) in enumerate(moments):
        _, blsn = env.branch(f"pit-lsn-{i}", "--parent", "main", "--lsn",
                             lsn_str(at))
        assert blsn == at
        _, tlsn = env.branch(f"pit-at-{i}", "--parent", "main", "--at", when)
        # The last commit at or before the time: the moment's last commit,
        # or a background one (autovacuum's) just after it; never one of
        # the workload's before or after.
        assert (i == 0 or tlsn > moments[i - 1][0]) and \
            (i == 4 or tlsn < moments[i + 1][0]), (i, lsn_str(tlsn))
        for name in (f"pit-lsn-{i}", f"pit-at-{i}"):
            ep = env.start(name)
            assert_same_dump(ep.dump(), dump, f"{name} ({lsn_str(at)})")
            env.stop(name)
            env.tarn("branch", "delete", name)


def test_isolation(env):
    """Writes on a branch are invisible on its parent and its siblings,
    and the reverse; a branch of a branch sees its parent's writes up to
    its branch point; a written branch restarts from its own WAL."""
    main = env.eps["main"]
    main.psql("CREATE TABLE marks (who text)")
    env.wait_ingested("main", main.insert_lsn())
    env.branch("iso-a", "--parent", "main")
    env.branch("iso-b", "--parent", "main")
    a, b = env.start("iso-a"), env.start("iso-b")
    for ep in (main, a, b):
        ep.psql(f"INSERT INTO marks VALUES ('{ep.branch}')")

    def seen(ep):
        return ep.psql("SELECT string_agg(who, ',' ORDER BY who) FROM marks")
    assert seen(main) == "main"
    assert seen(a) == "iso-a"
    assert seen(b) == "iso-b"

    # A branch of a branch, at iso-a's latest.
    a.psql("INSERT INTO marks VALUES ('iso-a before c')")
    env.wait_ingested("iso-a", a.insert_lsn())
    env.branch("iso-c", "--parent", "iso-a")
    c = env.start("iso-c")
    a.psql("INSERT INTO marks VALUES ('iso-a after c')")
    c.psql("INSERT INTO marks VALUES ('iso-c')")
    assert seen(c) == "iso-a,iso-a before c,iso-c"
    assert seen(a) == "iso-a,iso-a after c,iso-a before c"
    assert seen(main) == "main" and seen(b) == "iso-b"
    c.pgbench("-t", "100", "-n")
    assert c.replication() == "tarn|streaming|sync"

    # Written, stopped, started again: from the branch's own latest LSN.
    a_end = a.insert_lsn()
    env.stop("iso-a")
    a2 = env.start("iso-a")
    assert a2.lsn >= a_end
    assert seen(a2) == "iso-a,iso-a after c,iso-a before c"
    a2.psql("INSERT INTO marks VALUES ('iso-a again')")
    env.stop("iso-c")
    c2 = env.start("iso-c")
    assert seen(c2) == "iso-a,iso-a before c,iso-c"
    for name in ("iso-c", "iso-a", "iso-b"):
        env.stop(name)
        env.tarn("branch", "delete", name)


def test_delete_with_running_endpoint_is_refused(env):
    env.branch("busy", "--parent", "main")
    ep = env.start("busy")
    p = env.tarn("branch", "delete", "busy", check=False)
    assert p.returncode == 1
    line = p.stderr.strip()
    assert "\n" not in line
    assert "failed (409)" in line and "compute is attached" in line, line
    assert f"port='{ep.port}'" in line, line
    assert ep.psql("SELECT 1") == "1"   # still up
    env.stop("busy")
    p = env.tarn("branch", "delete", "busy")
    assert p.stdout.startswith("deleted branch busy")


def test_list_and_keep(env, tmp_path):
    env.branch("listed", "--parent", "main")
    port = free_port()
    pgdata = tempfile.mkdtemp(prefix="tarn-ep-pgdata-", dir="/tmp")
    os.chmod(pgdata, 0o755)
    try:
        ep = env.start("listed", "--port", str(port), "--pgdata", pgdata)
        assert ep.port == port
        main = env.eps["main"]
        text = env.tarn("endpoint", "list").stdout.splitlines()
        assert text[0].split() == ["BRANCH", "PORT", "STATE", "START", "LSN",
                                   "LAST", "LSN", "CONNECT"]
        rows = {line.split()[0]: line.split() for line in text[1:]}
        assert rows["listed"][:3] == ["listed", str(port), "running"]
        assert rows["listed"][3] == lsn_str(ep.lsn)
        assert rows["listed"][5] == ep.url
        assert rows["main"][:3] == ["main", str(main.port), "running"]
        j = env.listing()["listed"]
        assert j["pgdata"] == pgdata and j["port"] == port
        assert j["state"] == "running" and j["lsn"] == lsn_str(ep.lsn)

        p = env.stop("listed", "--keep")
        assert p.stdout == (f"stopped endpoint listed (port {port}); kept "
                            f"{pgdata}\n")
        assert os.path.exists(os.path.join(pgdata, "PG_VERSION"))
        assert env.listing()["listed"]["state"] == "stopped"
        rows = {line.split()[0]: line.split()
                for line in env.tarn("endpoint", "list").stdout.splitlines()}
        assert rows["listed"][2] == "stopped"
        # The kept directory is not empty: it is not reused.
        p = env.tarn("endpoint", "start", "listed", "--pgdata", pgdata,
                     *env.user_args(), check=False)
        assert p.returncode == 1
        assert p.stderr == f"tarn: data directory {pgdata} is not empty\n"
        env.stop("listed")
        assert not os.path.exists(pgdata)
        assert "listed" not in env.listing()
        env.tarn("branch", "delete", "listed")
    finally:
        shutil.rmtree(pgdata, ignore_errors=True)


def test_bad_input_is_one_line(env, tmp_path):
    main = env.eps["main"]
    full = tempfile.mkdtemp(prefix="tarn-ep-full-", dir="/tmp")
    open(os.path.join(full, "x"), "w").close()
    try:
        env.branch("bad", "--parent", "main")
        cases = [
            (["endpoint", "start", "nope"],
             "tarn: no branch named 'nope' (see `tarn branch list`)"),
            (["endpoint", "start", "bad", "--port", str(main.port)],
             f"tarn: port {main.port} is in use"),
            (["endpoint", "start", "bad", "--port", "http"],
             "tarn: --port http: not a port number"),
            (["endpoint", "start", "bad", "--pgdata", full],
             f"tarn: data directory {full} is not empty"),
            (["endpoint", "start", "main"],
             f"tarn: branch 'main' already has a running endpoint on port "
             f"{main.port} (stop it with `tarn endpoint stop main`)"),
            (["endpoint", "stop", "bad"],
             "tarn: branch 'bad' has no endpoint (see `tarn endpoint list`)"),
            (["endpoint", "start"],
             "tarn: usage: tarn endpoint start BRANCH [--port N] "
             "[--pgdata DIR] [--user USER]"),
            (["branch", "create", "x", "--parent", "main", "--lsn", "FF/0"],
             "beyond the ancestor's last_record_lsn"),
            (["branch", "create", "x", "--parent", "main", "--at",
              "2001-01-01T00:00:00Z"], "has no commit records at or before"),
            (["branch", "create", "x", "--parent", "nope"],
             "tarn: no branch named 'nope'"),
        ]
        for args, want in cases:
            if args[:2] == ["endpoint", "start"] and len(args) > 2:
                args = args + env.user_args()
            p = env.tarn(*args, check=False)
            assert p.returncode == 1, (args, p.stdout, p.stderr)
            assert p.stdout == "", args
            assert len(p.stderr.splitlines()) == 1, (args, p.stderr)
            assert want in p.stderr, (args, p.stderr)
        # Nothing was left behind.
        assert "bad" not in env.listing()
        assert os.listdir(full) == ["x"]
        if os.geteuid() == 0:
            p = env.tarn("endpoint", "start", "bad", "--user", "root",
                         check=False)
            assert p.stderr == ("tarn: --user root is root; PostgreSQL "
                                "refuses to run as root\n")
        env.tarn("branch", "delete", "bad")
    finally:
        shutil.rmtree(full, ignore_errors=True)
