"""basebackup on the page service: a tar stream that a stock PostgreSQL 15
starts from as a primary at exactly the LSN asked for.

One tarnd and one compute (imported, attached) serve the module.  The
compute runs pgbench and DDL (a second database, an index, an unlogged
table, a dropped table); at two moments the test records pg_dump of every
database, table checksums and the WAL insert position.  Base backups at
those LSNs (one intermediate, one latest) are untarred into empty data
directories and started: no recovery, pg_controldata shows tarn's
shutdown checkpoint at the LSN, the data and pg_dump equal the compute's
at that moment, and the new primary takes writes.  Bad input gets an
ErrorResponse and the connection and tarnd go on serving.
"""
import gzip
import io
import os
import pwd
import re
import subprocess
import tarfile

import pytest

from conftest import Tarnd, assert_clean_exit, wait_until
from pagewire import PgConn, msg, parse_error
from pg import PG_BIN, PG_USER, Compute, lsn, lsn_str

DBS = ("postgres", "shop")
UNLOGGED = "scratch"


class Env:
    pass


def last_record(e):
    return lsn(e.t.timeline(e.tenant, e.tl)["last_record_lsn"])


def pg_dump(c, db):
    p = subprocess.run([str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-p",
                        str(c.port), "-U", "postgres", "--no-sync",
                        f"--exclude-table-data={UNLOGGED}", db],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    # \restrict and \unrestrict carry a random key per run.
    return "\n".join(line for line in p.stdout.splitlines()
                     if not line.startswith(("\\restrict",
                                             "\\unrestrict")))


def state(c):
    """What the compute holds now: pg_dump of every database and a few
    checksums."""
    s = {db: pg_dump(c, db) for db in DBS}
    s["counts"] = c.psql(
        "SELECT (SELECT count(*) FROM pgbench_accounts), "
        "(SELECT sum(abalance) FROM pgbench_accounts), "
        "(SELECT count(*) FROM pgbench_history), "
        "(SELECT sum(delta) FROM pgbench_history), "
        "(SELECT md5(string_agg(bid || ':' || bbalance, ',' ORDER BY bid)) "
        "FROM pgbench_branches)")
    s["orders"] = c.psql("SELECT count(*), sum(qty), md5(string_agg(note, "
                         "',' ORDER BY id)) FROM orders", db="shop")
    return s


def insert_lsn(c):
    """The end of the last record inserted: a record boundary."""
    return lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))


def moment(e, name):
    """Record the compute's state and the LSN it is at, once tarnd has
    ingested that far."""
    at = insert_lsn(e.c)
    s = state(e.c)  # reads may prune pages (WAL), but change no data
    wait_until(lambda: last_record(e) >= at, 60, f"ingest to reach {name}")
    s["lsn"] = at
    e.moments[name] = s


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("basebackup")
    t = Tarnd(tmp, sets={"log_level": "info"}).start()
    c = Compute(name="bbsrc", settings={"autovacuum": "off"})
    from tarnpages import adopt_new_compute
    try:
        e = Env()
        e.t, e.c, e.moments = t, c, {}
        e.tenant, e.tl, e.start = adopt_new_compute(t, c)
        c.pgbench("-i", "-s", "1", "-q")
        c.pgbench("-t", "300", "-c", "2", "-n")
        c.psql("CREATE DATABASE shop")
        c.psql("CREATE TABLE orders (id int PRIMARY KEY, qty int, note text); "
               "INSERT INTO orders SELECT g, g % 7, md5(g::text) "
               "FROM generate_series(1, 20000) g; "
               "CREATE INDEX orders_qty ON orders (qty); "
               "CREATE TABLE gone (x int); INSERT INTO gone VALUES (1); "
               f"CREATE UNLOGGED TABLE {UNLOGGED} (x int PRIMARY KEY); "
               f"INSERT INTO {UNLOGGED} SELECT generate_series(1, 1000); "
               "CREATE VIEW big_orders AS SELECT * FROM orders "
               "WHERE qty > 5", db="shop")
        moment(e, "middle")
        c.pgbench("-t", "300", "-c", "2", "-n")
        c.psql("DROP TABLE gone; ALTER TABLE orders ADD COLUMN extra int "
               "DEFAULT 3; UPDATE orders SET qty = qty + 1 WHERE id % 10 = 0;"
               " DELETE FROM orders WHERE id > 19000", db="shop")
        c.psql("VACUUM orders", db="shop")
        c.psql("CREATE TABLE notes (t text); INSERT INTO notes "
               "SELECT repeat('n', 3000) FROM generate_series(1, 50)")
        moment(e, "end")
        yield e
    finally:
        c.cleanup()
        assert_clean_exit(t)


# ---- a client for basebackup ---------------------------------------------

def connect(e):
    conn = PgConn(e.t.page_port, timeout=120)
    conn.startup()
    return conn


def fetch(conn, command):
    """Run a basebackup command: (archive bytes, the messages after the
    copy) or raises ServerError-like AssertionError with the message."""
    conn.send(msg(b"Q", command.encode() + b"\0"))
    t, body = conn.recv()
    if t == b"E":
        err = parse_error(body)
        assert conn.recv()[0] == b"Z"
        return None, err
    assert t == b"H", (t, body)
    assert body == b"\0\0\0", body     # binary, no columns
    data = bytearray()
    while True:
        t, body = conn.recv()
        if t != b"d":
            break
        data += body
    if t == b"E":
        err = parse_error(body)
        assert conn.recv()[0] == b"Z"
        return bytes(data), err
    assert t == b"c", t                              # CopyDone
    t, body = conn.recv()
    assert (t, body) == (b"C", b"SELECT 1\0"), (t, body)
    assert conn.recv() == (b"Z", b"I")
    return bytes(data), None


def backup(e, where="", gzip_=False):
    conn = connect(e)
    try:
        cmd = f"basebackup {e.tenant} {e.tl} {where}"
        if gzip_:
            cmd += " --gzip"
        data, err = fetch(conn, cmd)
        assert err is None, err
        # The connection goes on serving.
        assert conn.query("set x = 1")[-1][0] == b"Z"
        return data
    finally:
        conn.close()


def untar(data, datadir):
    """Into an empty directory owned by the compute user, mode 0700."""
    datadir.mkdir(mode=0o700)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        tf.extractall(datadir)
    os.chmod(datadir, 0o700)
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_USER)
        for root, dirs, files in os.walk(datadir):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for f in files:
                os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)


def controldata(datadir):
    p = subprocess.run([str(PG_BIN / "pg_controldata"), str(datadir)],
                       capture_output=True, text=True, check=True)
    return dict(line.split(":", 1) for line in p.stdout.splitlines()
                if ":" in line)


def started_from(data, name):
    """A stock PostgreSQL 15 on the archive: returns the Compute, running."""
    c = Compute(name=name, settings={"synchronous_standby_names": "''",
                                     "autovacuum": "off"})
    untar(data, c.datadir)
    c.write_settings()
    return c


def expected_checkpoint(at):
    """Where tarn writes its checkpoint record for LSN @at."""
    off = at % 8192
    if off == 0:
        return at + (40 if at % (16 << 20) == 0 else 24)
    return at


def check_restored(e, name, data, at=None):
    """@at: the LSN asked for (None: latest, at or after the moment)."""
    snap = e.moments[name]
    c = started_from(data, f"bb-{name}")
    try:
        cd = controldata(c.datadir)
        assert cd["Database cluster state"].strip() == "shut down"
        ck = lsn(cd["Latest checkpoint location"].strip())
        if at is None:
            assert ck >= snap["lsn"]
        else:
            assert ck == expected_checkpoint(at), (lsn_str(ck), lsn_str(at))
        assert lsn(cd["Latest checkpoint's REDO location"].strip()) == ck
        assert cd["Database system identifier"].strip() == \
            controldata(e.c.datadir)["Database system identifier"].strip()
        c.start()
        log = c.log.read_text()
        assert "database system was shut down at" in log, log
        for bad in ("redo starts", "not properly shut down", "invalid record",
                    "PANIC", "FATAL"):
            assert bad not in log, log
        assert c.psql("SELECT pg_is_in_recovery()") == "f"
        # It continues the WAL right after tarn's checkpoint record.
        assert lsn(c.psql("SELECT pg_current_wal_insert_lsn()")) > ck
        got = state(c)
        assert got["counts"] == snap["counts"]
        assert got["orders"] == snap["orders"]
        for db in DBS:
            assert got[db] == snap[db], f"pg_dump of {db} differs"
        # The unlogged table is there, empty, as after a clean start.
        assert c.psql(f"SELECT count(*) FROM {UNLOGGED}", db="shop") == "0"
        # A primary that takes writes.
        c.psql("CREATE TABLE after_restore (x int); INSERT INTO "
               "after_restore SELECT generate_series(1, 1000)")
        c.psql(f"INSERT INTO {UNLOGGED} VALUES (1)", db="shop")
        c.pgbench("-t", "100", "-c", "2", "-n")
        c.psql("CHECKPOINT")
        assert c.psql("SELECT count(*) FROM after_restore") == "1000"
        c.stop()
    finally:
        c.cleanup()


# ---- tests ---------------------------------------------------------------

def test_intermediate_lsn_starts_with_that_state(env):
    at = env.moments["middle"]["lsn"]
    assert at < last_record(env)
    data = backup(env, lsn_str(at))
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    # pg_control is the last file but the WAL segment.
    assert names[-2] == "global/pg_control", names[-5:]
    assert names[-1].startswith("pg_wal/0000000100000000"), names[-1]
    check_restored(env, "middle", data, at)


def test_latest_with_gzip(env):
    end = env.moments["end"]["lsn"]
    assert last_record(env) == end or last_record(env) > end
    data = backup(env, "latest", gzip_=True)
    assert data[:2] == b"\x1f\x8b"
    check_restored(env, "end", gzip.decompress(data))


def test_plain_and_gzip_hold_the_same_files(env):
    at = env.moments["middle"]["lsn"]
    plain = backup(env, lsn_str(at))
    packed = gzip.decompress(backup(env, lsn_str(at), gzip_=True))

    def files(data):
        out = {}
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            for m in tf.getmembers():
                out[m.name] = (m.type, m.mode,
                               tf.extractfile(m).read() if m.isfile()
                               else None)
        return out
    a, b = files(plain), files(packed)
    assert a.keys() == b.keys()
    for name in a:
        if name == "global/pg_control" or name.startswith("pg_wal/0"):
            continue     # they carry the time of the checkpoint
        assert a[name] == b[name], name
    assert a["base"][:2] == (tarfile.DIRTYPE, 0o755)
    assert a["PG_VERSION"] == (tarfile.REGTYPE, 0o600, b"15\n")
    assert len(a["global/pg_control"][2]) == 8192
    # The WAL segment is whole, and its bytes before the LSN are the
    # timeline's real WAL (the compute's own segment).
    seg = [n for n in a if n.startswith("pg_wal/0")][-1]
    wal = a[seg][2]
    assert len(wal) == 16 << 20
    off = at % (16 << 20)
    with open(env.c.pg_wal / os.path.basename(seg), "rb") as f:
        assert f.read(off) == wal[:off]


def test_psql_receives_the_archive(env, tmp_path):
    out = tmp_path / "out.tar"
    with open(out, "wb") as f:
        p = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-h",
                            "127.0.0.1", "-p", str(env.t.page_port), "-U",
                            "x", "-d", "x", "-c",
                            f"basebackup {env.tenant} {env.tl}"],
                           stdout=f, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, p.stderr
    with tarfile.open(out) as tf:
        names = tf.getnames()
    assert "global/pg_control" in names and "PG_VERSION" in names


BAD = [
    ("{t} {tl} {past}", "past the last record"),
    ("{t} {tl} {inside}", "not a record boundary"),
    ("{t} {tl} 0/10", "before the start of the timeline"),
    ("{t} {other}", "not found"),
    ("{t} {tl} latest --zip", "unknown flag --zip"),
    ("{t} {tl} --gzip --gzip", "given twice"),
    ("{t} {tl} latest latest", "unexpected argument"),
    ("{t} {tl} nonsense", "LSN"),
    ("{t}", "takes <tenant_id> <timeline_id>"),
    ("{t} zz", "timeline id: invalid id"),
]


@pytest.mark.parametrize("args,want", BAD)
def test_bad_input_is_an_error_and_serving_goes_on(env, args, want):
    last = last_record(env)
    text = args.format(t=env.tenant, tl=env.tl,
                       past=lsn_str(last + (64 << 20)),
                       inside=lsn_str(env.moments["middle"]["lsn"] + 8),
                       other="ab" * 16)
    conn = connect(env)
    try:
        data, err = fetch(conn, "basebackup " + text)
        assert data is None, "no CopyOutResponse before an error"
        assert err["S"] == "ERROR" and want in err["M"], err
        # Same connection, next command: still served.
        data, err = fetch(conn, f"basebackup {env.tenant} {env.tl} "
                                f"{lsn_str(env.start)}")
        assert err is None, err
        assert tarfile.open(fileobj=io.BytesIO(data)).getmember(
            "global/pg_control").size == 8192
    finally:
        conn.close()
    assert env.t.get("/v1/status").status == 200


def test_client_gone_mid_stream(env):
    conn = connect(env)
    conn.send(msg(b"Q", f"basebackup {env.tenant} {env.tl}".encode()
                  + b"\0"))
    assert conn.recv()[0] == b"H"
    conn.recv()
    conn.close()
    # tarnd serves on.
    data = backup(env, lsn_str(env.start))
    assert data.endswith(b"\0" * 1024)
    m = re.search(r'tarn_page_basebackups_total\{result="started"\} (\d+)',
                  env.t.get("/metrics").body)
    assert m and int(m.group(1)) >= 2


def test_branch_at_the_intermediate_lsn(env):
    """A branch has no WAL of its own: its backup reads the ancestor's."""
    at = env.moments["middle"]["lsn"]
    r = env.t.post(f"/v1/tenant/{env.tenant}/timeline",
                   {"ancestor_timeline_id": env.tl,
                    "ancestor_start_lsn": lsn_str(at)})
    assert r.status == 201, r
    branch = r.json["timeline_id"]
    conn = connect(env)
    try:
        data, err = fetch(conn, f"basebackup {env.tenant} {branch} latest")
    finally:
        conn.close()
    assert err is None, err
    check_restored(env, "middle", data, at)
