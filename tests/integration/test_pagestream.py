"""The page service on page_listen: PostgreSQL v3 startup and auth, the
query commands, and every pagestream request in v2 and v3 against the
layouts of docs/protocols.md, with good and bad input; LSN rules and WAL
waits; pipelining and fairness; pages equal to the compute's own files;
and bad bytes that must not hurt tarnd or its other clients.

One tarnd and one compute (imported, attached) serve the whole module.
"""
import random
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import Tarnd, assert_clean_exit, wait_until
from pagewire import (BLCKSZ, DBSIZE, EXISTS, GETPAGE, LSN_MAX, NBLOCKS,
                      R_DBSIZE, R_ERROR, R_EXISTS, R_GETPAGE, R_NBLOCKS,
                      R_SLRU, SLRU, PgConn, ServerError, msg, parse_error,
                      scram_verifier, startup_packet)
from pg import PG_BIN, Compute, lsn
from pgcompare import FIRST_NORMAL_OID, list_relations
from tarnpages import adopt_new_compute, compare_files

WAIT_LSN_TIMEOUT = 10


class Env:
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pagestream")
    # redo_inline_max 2: a page with a longer history is rebuilt on the
    # worker pool, so the pipelining tests see answers that come back
    # from workers among inline ones, and must still be in order.
    t = Tarnd(tmp, sets={"wait_lsn_timeout": f"{WAIT_LSN_TIMEOUT}s",
                         "redo_inline_max": "2",
                         "log_level": "info"}).start()
    c = Compute(name="pagestream", settings={"autovacuum": "off"})
    try:
        e = Env()
        e.t, e.c = t, c
        e.tenant, e.tl, e.start = adopt_new_compute(t, c)
        c.psql("CREATE TABLE t (id int PRIMARY KEY, v text); "
               "INSERT INTO t SELECT g, repeat('x', 100) "
               "FROM generate_series(1, 5000) g")
        c.psql("CHECKPOINT")
        _, db, rel = c.psql("SELECT pg_relation_filepath('t')").split("/")
        e.db, e.rel = int(db), int(rel)
        e.main = (1663, e.db, e.rel, 0)
        e.nblocks = int(c.psql("SELECT pg_relation_size('t') / 8192"))
        e.lsn = lsn(c.current_lsn())
        wait_until(lambda: e.last() >= e.lsn, 60, "ingest to catch up")
        yield e
    finally:
        c.cleanup()
        assert_clean_exit(t)


def last_record(e):
    return lsn(e.t.timeline(e.tenant, e.tl)["last_record_lsn"])


Env.last = last_record


def stream(e, version=3, timeout=30):
    conn = PgConn(e.t.page_port, timeout=timeout)
    conn.startup()
    return conn.pagestream(version, e.tenant, e.tl)


def read_until_close(conn, timeout=5):
    """Every message until the server closes (or @timeout passes)."""
    conn.sock.settimeout(timeout)
    out = []
    try:
        while True:
            out.append(conn.recv())
    except (EOFError, ConnectionResetError, socket.timeout):
        pass
    return out


def fatal_of(msgs):
    errs = [parse_error(b) for t, b in msgs if t == b"E"]
    assert errs, f"no ErrorResponse in {msgs!r}"
    assert errs[-1]["S"] == "FATAL", errs
    return errs[-1]


def metric(t, name):
    body = t.get("/metrics").body
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---- startup, auth, queries ------------------------------------------------


def test_startup_trust_and_encryption_requests(env):
    conn = PgConn(env.t.page_port)
    assert conn.ssl_request() == b"N"
    assert conn.gss_request() == b"N"
    msgs = conn.startup(application_name="test")
    types = [t for t, _ in msgs]
    assert types[-1] == b"Z" and msgs[-1][1] == b"I"
    assert b"K" in types
    assert conn.params["server_version"].startswith("15")
    assert conn.params["client_encoding"] == "UTF8"
    # set is a no-op; an unknown command is an error and the session goes on.
    out = conn.query("SET datestyle TO iso")
    assert out == [(b"C", b"SELECT 1\0"), (b"Z", b"I")]
    out = conn.query("SELECT 1")
    assert [t for t, _ in out] == [b"E", b"Z"]
    assert "unsupported command" in parse_error(out[0][1])["M"]
    assert conn.query("") == [(b"I", b""), (b"Z", b"I")]
    # pagestream: arguments and the timeline are checked at the command.
    for bad in ("pagestream_v3", f"pagestream_v3 {env.tenant}",
                f"pagestream_v3 {env.tenant} xyz",
                f"PAGESTREAM_V2 {env.tenant} {'0' * 32}",
                f"pagestream_v3 {'1' * 32} {env.tl}"):
        out = conn.query(bad)
        assert [t for t, _ in out] == [b"E", b"Z"], (bad, out)
        assert parse_error(out[0][1])["C"] == "XX000"
    out = conn.query(f"  PageStream_V3 {env.tenant.upper()} {env.tl}  ")
    assert out[-1] == (b"W", b"\0\0\0")
    conn.close()


def test_cancel_request_closes(env):
    conn = PgConn(env.t.page_port)
    conn.send(struct.pack(">IIII", 16, 80877102, 1, 2))
    assert read_until_close(conn) == []


def test_unsupported_protocol_version(env):
    conn = PgConn(env.t.page_port)
    body = struct.pack(">I", 2 << 16) + b"user\0x\0\0"
    conn.send(struct.pack(">I", len(body) + 4) + body)
    assert fatal_of(read_until_close(conn))["C"] == "0A000"


def test_extended_protocol_subset(env):
    conn = PgConn(env.t.page_port)
    conn.startup()
    conn.send(msg(b"P", b"\0set x\0\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0")
              + msg(b"D", b"S\0") + msg(b"E", b"\0\0\0\0\0")
              + msg(b"C", b"S\0") + msg(b"S"))
    types = [t for t, _ in conn.until_ready()]
    assert types == [b"1", b"2", b"t", b"n", b"C", b"3", b"Z"]
    # An error skips to Sync, which answers ReadyForQuery.
    conn.send(msg(b"P", b"\0nonsense here\0\0\0") + msg(b"E", b"\0\0\0\0\0")
              + msg(b"B", b"\0\0\0\0\0\0\0\0") + msg(b"S"))
    types = [t for t, _ in conn.until_ready()]
    assert types == [b"1", b"E", b"Z"]
    # Execute of a pagestream command enters CopyBoth.
    conn.send(msg(b"P", f"\0pagestream_v3 {env.tenant} {env.tl}\0\0\0"
                  .encode()) + msg(b"E", b"\0\0\0\0\0"))
    assert conn.recv()[0] == b"1"
    assert conn.recv() == (b"W", b"\0\0\0")
    conn.version = 3
    tag, _, body = conn.call(EXISTS, lsn=LSN_MAX, nms=env.lsn, rel=env.main)
    assert tag == R_EXISTS and body[-1] == 1
    # Copy messages outside a copy are a protocol violation.
    c2 = PgConn(env.t.page_port)
    c2.startup()
    c2.send(msg(b"d", b"x"))
    assert fatal_of(read_until_close(c2))["C"] == "08P01"


def test_scram_auth(make_tarnd):
    t = make_tarnd(sets={"page_auth": "s3cret pass"})
    conn = PgConn(t.page_port)
    conn.startup(user="anyone", password="s3cret pass")
    assert conn.query("set a")[-1] == (b"Z", b"I")
    conn = PgConn(t.page_port)
    with pytest.raises(ServerError) as ei:
        conn.startup(user="anyone", password="wrong")
    assert ei.value.sqlstate == "28P01" and ei.value.severity == "FATAL"
    assert "password authentication failed" in ei.value.message
    # libpq (psql) logs in through SCRAM and is refused with a bad password.
    for pw, ok in (("s3cret pass", True), ("nope", False)):
        p = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-At", "-c", "set a",
             f"host=127.0.0.1 port={t.page_port} user=u dbname=x"],
            env={"PGPASSWORD": pw, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=30)
        assert (p.returncode == 0) == ok, p.stderr
        if not ok:
            assert "password authentication failed" in p.stderr
    assert metric(t, 'tarn_page_auth_total{result="failed"}') == 2


def test_scram_verifier_setting(make_tarnd):
    t = make_tarnd(sets={"page_auth": scram_verifier("hunter2")})
    PgConn(t.page_port).startup(password="hunter2")
    with pytest.raises(ServerError):
        PgConn(t.page_port).startup(password="hunter3")
    # Trust is gone: no password at all fails too.
    with pytest.raises(ServerError):
        PgConn(t.page_port).startup(password="")


def logs_in(t, password):
    try:
        PgConn(t.page_port).startup(password=password)
        return True
    except ServerError:
        return False


def test_sighup_changes_page_auth(make_tarnd, tmp_path):
    conf = tmp_path / "tarnd.conf"
    conf.write_text("page_auth = alpha-pw-1\n")
    t = make_tarnd(config=conf)
    assert logs_in(t, "alpha-pw-1") and not logs_in(t, "beta-pw-2")
    conf.write_text(f"page_auth = {scram_verifier('beta-pw-2')}\n")
    t.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: logs_in(t, "beta-pw-2"), why=t.log_text)
    assert not logs_in(t, "alpha-pw-1")
    # A bad value is refused and the running one kept.
    conf.write_text("page_auth = SCRAM-SHA-256$1:x$y:z\n")
    t.proc.send_signal(signal.SIGHUP)
    t.wait_log("page_auth: bad salt")
    assert logs_in(t, "beta-pw-2")
    conf.write_text("")
    t.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: logs_in(t, None), why=t.log_text)
    assert "alpha-pw-1" not in t.log_text()  # secrets are never logged


def test_bad_page_auth_and_port_in_use(make_tarnd, env):
    t = make_tarnd(sets={"page_auth": "SCRAM-SHA-256$x"}, start=False)
    t.start(wait=False)
    assert t.proc.wait(30) != 0
    assert "page_auth" in t.log_text()
    t2 = make_tarnd(sets={"page_listen": f"127.0.0.1:{env.t.page_port}"},
                    start=False, sub="b")
    t2.start(wait=False)
    assert t2.proc.wait(30) != 0
    assert "cannot listen on" in t2.log_text()
    assert "page_listen" in t2.log_text()


# ---- pagestream requests ---------------------------------------------------


def reltag(rel):
    return struct.pack(">IIIB", *rel)


def test_requests_v3(env):
    s = stream(env, 3)
    nms, main = env.lsn, env.main
    fsm = main[:3] + (1,)
    missing = (1663, env.db, 999999, 0)

    def call(tag, reqid, **kw):
        t, hdr, body = s.call(tag, reqid=reqid, lsn=LSN_MAX, nms=nms, **kw)
        assert hdr == (reqid, LSN_MAX, nms), "v3 echoes the header"
        return t, body

    assert call(EXISTS, 1, rel=main) == (R_EXISTS, reltag(main) + b"\1")
    assert call(EXISTS, 2, rel=missing) == (R_EXISTS, reltag(missing) + b"\0")
    other_db = (1663, 4242, 1259, 0)
    assert call(EXISTS, 3, rel=other_db) == (R_EXISTS,
                                              reltag(other_db) + b"\0")
    assert call(NBLOCKS, 4, rel=main) == (
        R_NBLOCKS, reltag(main) + struct.pack(">I", env.nblocks))
    tag, body = call(NBLOCKS, 5, rel=missing[:3] + (2,))
    assert (tag, body) == (R_NBLOCKS, reltag(missing[:3] + (2,))
                           + b"\0\0\0\0"), "a missing VM fork has 0 blocks"
    tag, body = call(NBLOCKS, 6, rel=missing)
    assert tag == R_ERROR and body.endswith(b"\0") and b"Not found" in body
    tag, body = call(GETPAGE, 7, rel=main, blk=0)
    assert tag == R_GETPAGE and len(body) == 17 + BLCKSZ
    assert body[:17] == reltag(main) + struct.pack(">I", 0)
    assert body[17:] != bytes(BLCKSZ)
    tag, body = call(GETPAGE, 8, rel=main, blk=env.nblocks + 100)
    assert tag == R_GETPAGE and body[17:] == bytes(BLCKSZ), \
        "a block past the end is a zero page"
    tag, body = call(GETPAGE, 9, rel=missing, blk=0)
    assert tag == R_ERROR and body.endswith(b"\0")
    tag, body = call(GETPAGE, 10, rel=main[:3] + (7,), blk=0)
    assert tag == R_ERROR and b"fork" in body
    tag, body = call(EXISTS, 11, rel=(1663, env.db, 0, 0))
    assert tag == R_ERROR
    tag, body = call(DBSIZE, 12, db=env.db)
    assert tag == R_DBSIZE and len(body) == 12
    assert body[:4] == struct.pack(">I", env.db)
    size = struct.unpack(">q", body[4:])[0]
    assert size % BLCKSZ == 0 and size >= env.nblocks * BLCKSZ
    assert size <= int(env.c.psql(f"SELECT pg_database_size({env.db})"))
    assert call(DBSIZE, 13, db=4242) == (R_DBSIZE, struct.pack(">Iq", 4242,
                                                               0))
    tag, body = call(SLRU, 14, kind=0, segno=0)
    assert tag == R_SLRU and body[:5] == struct.pack(">BI", 0, 0)
    n = struct.unpack(">I", body[5:9])[0]
    assert 1 <= n <= 32 and len(body) == 9 + n * BLCKSZ
    assert body[9:9 + BLCKSZ] != bytes(BLCKSZ), "initdb's commits"
    tag, body = call(SLRU, 15, kind=3, segno=0)
    assert tag == R_ERROR and b"invalid SLRU kind" in body
    tag, body = call(SLRU, 16, kind=0, segno=0xABCD)
    assert tag == R_ERROR
    assert call(NBLOCKS, 17, rel=fsm)[0] == R_NBLOCKS
    assert metric(env.t, "tarn_page_request_errors_total") >= 6


def test_requests_v2(env):
    s = stream(env, 2)
    nms, main = env.lsn, env.main

    def call(tag, **kw):
        t, hdr, body = s.call(tag, lsn=LSN_MAX, nms=nms, **kw)
        assert hdr is None
        return t, body

    assert call(EXISTS, rel=main) == (R_EXISTS, b"\1")
    assert call(EXISTS, rel=(1663, env.db, 999999, 0)) == (R_EXISTS, b"\0")
    assert call(NBLOCKS, rel=main) == (R_NBLOCKS,
                                       struct.pack(">I", env.nblocks))
    tag, body = call(GETPAGE, rel=main, blk=1)
    assert tag == R_GETPAGE and len(body) == BLCKSZ
    s3 = stream(env, 3)
    assert s3.call(GETPAGE, lsn=LSN_MAX, nms=nms, rel=main,
                   blk=1)[2][17:] == body, "v2 and v3 serve the same page"
    tag, body = call(DBSIZE, db=env.db)
    assert tag == R_DBSIZE and len(body) == 8
    tag, body = call(SLRU, kind=0, segno=0)
    n = struct.unpack(">I", body[:4])[0]
    assert tag == R_SLRU and len(body) == 4 + n * BLCKSZ
    tag, body = call(NBLOCKS, rel=(1663, env.db, 999999, 0))
    assert tag == R_ERROR and body.endswith(b"\0") and b"\0" not in body[:-1]
    assert call(EXISTS, rel=main) == (R_EXISTS, b"\1"), "the stream goes on"


def test_lsn_rules(env):
    s = stream(env, 3)
    main = env.main
    start = env.start

    def call(lsn_, nms, **kw):
        return s.call(EXISTS, reqid=1, lsn=lsn_, nms=nms, rel=main, **kw)

    tag, hdr, body = call(0, 0)
    assert tag == R_ERROR and b"invalid LSN(0)" in body
    assert hdr == (1, 0, 0)
    tag, _, body = call(env.lsn, env.lsn + 8)
    assert tag == R_ERROR and b"not_modified_since" in body
    tag, _, body = call(start - 8, start - 8)
    assert tag == R_ERROR and b"before the start" in body
    # At the import LSN the table did not exist yet; now it does.
    assert call(start, start)[2][-1] == 0
    assert call(env.lsn, env.lsn)[2][-1] == 1
    assert call(LSN_MAX, 0)[2][-1] == 1
    # A request_lsn past last_record_lsn reads the latest (never waits).
    assert call(env.last() + (1 << 30), env.lsn)[2][-1] == 1


def test_wait_for_wal_times_out(env):
    s = stream(env, 3)
    far = env.last() + (1 << 32)
    t0 = time.monotonic()
    tag, hdr, body = s.call(EXISTS, reqid=5, lsn=far, nms=far, rel=env.main)
    took = time.monotonic() - t0
    assert tag == R_ERROR and b"LSN timeout" in body and hdr == (5, far, far)
    assert WAIT_LSN_TIMEOUT - 0.5 <= took < WAIT_LSN_TIMEOUT + 5, took
    assert call_ok(s, env)


def call_ok(s, env):
    tag, _, body = s.call(EXISTS, lsn=LSN_MAX, nms=env.lsn, rel=env.main)
    return tag == R_EXISTS and body[-1] == 1


def test_wait_for_wal_wakes_on_ingest(env):
    s = stream(env, 3)
    other = stream(env, 3)
    target = env.last() + 65536
    s.send_request(EXISTS, reqid=9, lsn=LSN_MAX, nms=target, rel=env.main)
    # Pipelined behind the waiting request: answered after it, in order.
    s.send_request(NBLOCKS, reqid=10, lsn=LSN_MAX, nms=0, rel=env.main)
    s.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        s.recv()
    s.sock.settimeout(30)
    # Another connection is not held up by the waiting one.
    assert call_ok(other, env)
    t0 = time.monotonic()
    env.c.psql("INSERT INTO t SELECT g, repeat('y', 200) "
               "FROM generate_series(100001, 102000) g")
    tag, hdr, body = s.recv_response()
    assert tag == R_EXISTS and hdr[0] == 9 and body[-1] == 1, body
    assert time.monotonic() - t0 < WAIT_LSN_TIMEOUT
    tag, hdr, _ = s.recv_response()
    assert tag == R_NBLOCKS and hdr[0] == 10
    env.lsn = lsn(env.c.current_lsn())
    env.nblocks = int(env.c.psql("SELECT pg_relation_size('t') / 8192"))
    wait_until(lambda: env.last() >= env.lsn, 30, "ingest")


# ---- pipelining, fairness, backpressure --------------------------------------


def test_pipelining_1000_in_order(env):
    s = stream(env, 3)
    n = 1000
    reqs = bytearray()
    for i in range(n):
        if i == 500:    # an error in the middle keeps its place
            reqs += s.request_bytes(GETPAGE, reqid=i, nms=env.lsn,
                                    rel=(1663, env.db, 999999, 0), blk=0)
        else:
            reqs += s.request_bytes(GETPAGE, reqid=i, nms=env.lsn,
                                    rel=env.main, blk=i % env.nblocks)
    t0 = time.monotonic()
    s.send(bytes(reqs))
    for i in range(n):
        tag, hdr, body = s.recv_response()
        assert hdr[0] == i
        if i == 500:
            assert tag == R_ERROR
        else:
            assert tag == R_GETPAGE
            assert struct.unpack(">I", body[13:17])[0] == i % env.nblocks
    took = time.monotonic() - t0
    print(f"1000 pipelined GetPage: {took * 1000:.0f} ms, "
          f"{n / took:.0f} requests/s")


def test_slow_reader_does_not_block_others(env):
    slow = stream(env, 3)
    n = 5000        # ~41 MB of answers; the client reads none for a while
    reqs = b"".join(slow.request_bytes(GETPAGE, reqid=i, nms=env.lsn,
                                       rel=env.main, blk=i % env.nblocks)
                    for i in range(n))
    rss0 = metric(env.t, "tarn_process_resident_memory_bytes")
    sender = threading.Thread(target=slow.send, args=(reqs,))
    sender.start()
    time.sleep(0.5)
    fast = stream(env, 3)
    for _ in range(20):
        t0 = time.monotonic()
        assert call_ok(fast, env)
        assert time.monotonic() - t0 < 1.0
    rss1 = metric(env.t, "tarn_process_resident_memory_bytes")
    assert rss1 - rss0 < 32 << 20, "tarnd buffered the slow reader's answers"
    for i in range(n):
        tag, hdr, _ = slow.recv_response()
        assert tag == R_GETPAGE and hdr[0] == i
    sender.join()


def test_pipelined_flood_shares_the_reactor(env):
    """100,000 pipelined Nblocks requests (small answers, so backpressure
    does not pause them) on one connection are processed 64 per wakeup,
    and another connection is answered meanwhile."""
    flood = stream(env, 3)
    n = 100000
    one = flood.request_bytes(NBLOCKS, reqid=1, nms=env.lsn, rel=env.main)
    want = n * (5 + 42)
    got = [0]
    yields0 = metric(env.t, "tarn_page_yields_total")

    def reader():
        while got[0] < want:
            c = flood.sock.recv(1 << 20)
            assert c
            got[0] += len(c)

    fast = stream(env, 3)
    rd = threading.Thread(target=reader)
    rd.start()
    sender = threading.Thread(target=flood.send, args=(one * n,))
    sender.start()
    lat = []
    while got[0] < want and len(lat) < 10000:
        t0 = time.monotonic()
        assert call_ok(fast, env)
        lat.append(time.monotonic() - t0)
    sender.join()
    rd.join()
    assert got[0] == want
    yields = metric(env.t, "tarn_page_yields_total") - yields0
    print(f"flood of {n}: {yields:.0f} yields; {len(lat)} other requests "
          f"meanwhile, slowest {max(lat) * 1000:.1f} ms")
    assert yields >= n / 64 / 4
    assert max(lat) < 2.0


def test_many_connections_interleaved(env):
    conns = [stream(env, 3 if i % 2 else 2) for i in range(8)]
    for c in conns:
        for i in range(50):
            c.send_request(GETPAGE, reqid=i, nms=env.lsn, rel=env.main,
                           blk=i % env.nblocks)
    for c in conns:
        for i in range(50):
            tag, hdr, body = c.recv_response()
            assert tag == R_GETPAGE
            if c.version == 3:
                assert hdr[0] == i


# ---- pages equal the compute's own -----------------------------------------


class WireReader:
    """tarnpages' reader interface, over pagestream v3 at the latest LSN
    (not_modified_since = the compute's LSN after its CHECKPOINT)."""

    def __init__(self, conn, nms):
        self.s, self.nms = conn, nms

    def page(self, spc, db, rel, fork, blk, at=None):
        tag, _, body = self.s.call(GETPAGE, lsn=LSN_MAX, nms=self.nms,
                                   rel=(spc, db, rel, fork), blk=blk)
        if tag != R_GETPAGE:
            return 500, body
        return 200, body[17:]

    def rel_size(self, spc, db, rel, fork, at=None):
        tag, _, body = self.s.call(EXISTS, lsn=LSN_MAX, nms=self.nms,
                                   rel=(spc, db, rel, fork))
        assert tag == R_EXISTS, body
        if not body[-1]:
            return {"exists": False, "nblocks": 0}
        tag, _, body = self.s.call(NBLOCKS, lsn=LSN_MAX, nms=self.nms,
                                   rel=(spc, db, rel, fork))
        assert tag == R_NBLOCKS, body
        return {"exists": True, "nblocks": struct.unpack(">I", body[-4:])[0]}


def test_pages_equal_compute_files(env):
    c = env.c
    c.psql("CREATE INDEX t_v ON t (v); UPDATE t SET v = 'z' WHERE id % 7 = 0;"
           " DELETE FROM t WHERE id % 11 = 0")
    c.psql("VACUUM t")
    c.psql("CHECKPOINT")
    nms = lsn(c.current_lsn())
    rels, _ = list_relations(c)
    rels = [r for r in rels if r["db"] == "postgres"
            and r["am"] in ("heap", "btree")
            and r["rnode"][2] >= FIRST_NORMAL_OID]
    assert len(rels) >= 4
    reader = WireReader(stream(env, 3, timeout=120), nms)
    rep, per_am, mismatches, notes = compare_files(reader, rels, c.datadir,
                                                   None, {})
    assert rep["pages"] >= env.nblocks
    assert not mismatches, mismatches[:5]
    print(f"pages compared over pagestream: {dict(rep)} {dict(per_am)}")
    off = [line for line in env.t.get("/metrics").body.splitlines()
           if line.startswith("tarn_getpage_offloaded_total ")]
    assert off and int(off[0].split()[-1]) > 0, off


# ---- bad input ---------------------------------------------------------------


def raw(env, data, startup=True):
    """A connection that sends @data (after a trust startup when
    @startup) and returns what the server answers until it closes."""
    conn = PgConn(env.t.page_port)
    if startup:
        conn.startup()
    try:
        conn.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return read_until_close(conn)


def test_bad_input_keeps_serving(env):
    keep = stream(env, 3)       # open through all of it
    partial = stream(env, 3)    # sends half a request and stalls
    partial.send(partial.request_bytes(EXISTS, rel=env.main)[:20])
    rng = random.Random(6)
    big = struct.pack(">I", 0x7FFFFFFF)
    cases = [
        (b"\x00\x00\x00\x03", False, "08P01"),           # length < 8
        (big + b"\x00\x03\x00\x00", False, "08P01"),     # oversized startup
        (b"\xff\xff\xff\xff", False, "08P01"),
        (struct.pack(">II", 8, 1234), False, "0A000"),   # bad startup code
        (b"Q" + big, True, "08P01"),                     # oversized message
        (b"Q\x00\x00\x00\x02", True, "08P01"),           # length < 4
        (msg(b"Z", b"I"), True, "08P01"),                # unknown type
        (msg(b"Q", b"no terminator"), True, "08P01"),
    ]
    for data, startup, code in cases:
        got = raw(env, data, startup)
        assert fatal_of(got)["C"] == code, (data, got)
    # In the stream: unknown tags, short requests, other messages.
    for payload in (b"\x2a" + bytes(40), b"\x02" + bytes(10), b"",
                    b"\x63" + bytes(41)):
        s = stream(env, 3)
        s.send(msg(b"d", payload))
        err = fatal_of(read_until_close(s))
        assert err["C"] == "08P01", err
    err_tag = stream(env, 3)
    err_tag.send(msg(b"d", b"\x07" + bytes(24)))
    assert "invalid tag 7" in fatal_of(read_until_close(err_tag))["M"]
    for m in (msg(b"Q", b"set x\0"), msg(b"c"), msg(b"f", b"x\0")):
        s = stream(env, 2)
        s.send(m)
        assert fatal_of(read_until_close(s))["C"] == "08P01"
    # Truncated messages, then the client leaves.
    for cut in (1, 3, 7, 12):
        conn = PgConn(env.t.page_port)
        conn.send(startup_packet()[:cut])
        conn.close()
    # Random bytes, before and after startup.
    for i in range(40):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
        raw(env, data, startup=bool(i % 2))
    # A stream fed random CopyData payloads: errors or answers, never a
    # crash, and the connection ends cleanly or goes on.
    for i in range(20):
        s = stream(env, 3)
        blob = b"".join(msg(b"d", bytes([rng.randint(0, 5)])
                            + bytes(rng.getrandbits(8)
                                    for _ in range(rng.randint(0, 60))))
                        for _ in range(10))
        s.send(blob)
        read_until_close(s, timeout=1)
    # tarnd is up, the open stream still works, concurrently with a new one.
    assert env.t.proc.poll() is None
    assert call_ok(keep, env)
    fresh = stream(env, 2)
    tag, _, body = fresh.call(EXISTS, lsn=LSN_MAX, nms=env.lsn, rel=env.main)
    assert (tag, body) == (R_EXISTS, b"\1")
    # The stalled partial request completes when its rest arrives.
    partial.send(partial.request_bytes(EXISTS, rel=env.main)[20:])
    assert partial.recv_response()[0] == R_EXISTS
    assert env.t.get("/v1/status").status == 200
    assert metric(env.t, "tarn_page_fatal_errors_total") >= len(cases)


def test_metrics_and_shutdown(env):
    assert metric(env.t, 'tarn_page_requests_total{type="getpage"}') >= 1000
    assert metric(env.t, "tarn_page_connections_open") >= 0
    assert metric(env.t, 'tarn_page_lsn_waits_total{result="timeout"}') >= 1


def test_shutdown_ends_streams(make_tarnd):
    t = make_tarnd()
    conn = PgConn(t.page_port)
    conn.startup()
    t0 = time.monotonic()
    assert t.stop() == 0
    assert time.monotonic() - t0 < 10
    err = fatal_of(read_until_close(conn))
    assert err["C"] == "57P01"
