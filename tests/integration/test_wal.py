"""The WAL service against a real PostgreSQL 15: tarnd follows the compute
as its synchronous standby, and keeps exactly the compute's WAL."""
import time

from conftest import wait_until
from pg import lsn, lsn_str, read_wal, waldump

SEG = 16 << 20


def setup_follow(tarnd, compute_factory, **compute_kw):
    c = compute_factory(**compute_kw).initdb().start()
    t = tarnd.create_tenant()["id"]
    tl = tarnd.create_timeline(t, name="main", bootstrap="none")["timeline_id"]
    r = tarnd.attach(t, tl, c.conninfo())
    assert r.status == 200, r
    return c, t, tl


def wait_flushed(tarnd, t, tl, target, timeout=60):
    wait_until(lambda: lsn(tarnd.timeline(t, tl)["wal_flush_lsn"]) >= target,
               timeout, lambda: f"tarn's flush never reached "
                                f"{lsn_str(target)}: "
                                f"{tarnd.timeline(t, tl)}")


def assert_same_wal(tarnd, c, t, tl, end=None):
    """tarn's WAL bytes equal the compute's from its start up to @end (or
    tarn's flush), and pg_waldump lists the same records."""
    d = tarnd.timeline(t, tl)
    start = lsn(d["wal_start_lsn"])
    end = end if end is not None else lsn(d["wal_flush_lsn"])
    assert end > start
    ours = read_wal(tarnd.wal_dir(t, tl), start, end)
    theirs = read_wal(c.pg_wal, start, end)
    assert ours == theirs, "WAL bytes differ"
    return start, end


def test_follow_pgbench(tarnd, compute_factory):
    c, t, tl = setup_follow(tarnd, compute_factory)
    d = tarnd.timeline(t, tl)
    assert d["state"] == "active"
    assert d["compute"]["state"] == "streaming"
    assert d["system_id"] == c.psql(
        "SELECT system_identifier FROM pg_control_system()")
    assert lsn(d["wal_start_lsn"]) % SEG == 0
    assert "password" not in d["compute"]["conninfo"]

    c.pgbench("-i", "-s", "2", "-q")
    c.pgbench("-c", "4", "-j", "2", "-T", "8")

    rows = c.replication()
    assert len(rows) == 1, rows
    assert rows[0]["state"] == "streaming"
    assert rows[0]["sync_state"] == "sync"

    target = lsn(c.current_lsn())
    wait_flushed(tarnd, t, tl, target)
    d = tarnd.timeline(t, tl)
    # The compute's view of tarn agrees with tarn's own.
    wait_until(lambda: lsn(c.replication()[0]["flush_lsn"])
               >= lsn(d["wal_flush_lsn"]))
    start, end = assert_same_wal(tarnd, c, t, tl)
    assert end - start > 8 << 20  # pgbench made real WAL
    ours, err1 = waldump(tarnd.wal_dir(t, tl), start, end)
    theirs, err2 = waldump(c.pg_wal, start, end)
    assert len(ours) > 10000
    assert ours == theirs
    # Complete segments have their final names; only the newest is partial.
    names = sorted(p.name for p in tarnd.wal_dir(t, tl).iterdir())
    partial = [n for n in names if n.endswith(".partial")]
    final = [n for n in names if len(n) == 24]
    assert len(final) >= 1
    assert len(partial) in (1, 2)  # the current one, maybe a spare
    assert min(partial) > max(final)
    assert len(final) + len(partial) == len(names)
    # The segment tarn is writing is the first partial one.
    assert min(partial).removesuffix(".partial") == \
        f"{1:08X}{(end // SEG) >> 8:08X}{(end // SEG) & 0xFF:08X}"

    text = tarnd.get("/metrics").body
    assert f'tarn_wal_received_bytes_total{{timeline="{tl}"}}' in text
    assert "tarn_wal_fsync_duration_seconds_count" in text


def test_attach_validation(tarnd, compute_factory):
    t = tarnd.create_tenant()["id"]
    tl = tarnd.create_timeline(t, name="main", bootstrap="none")["timeline_id"]
    base = f"/v1/tenant/{t}/timeline/{tl}/compute"
    r = tarnd.post(base, {})
    assert r.status == 400 and "'conninfo' is required" in r.msg
    r = tarnd.post(base, {"conninfo": 5})
    assert r.status == 400 and "must be a connection string" in r.msg
    r = tarnd.post(base, {"conninfo": "host=x", "start_lsn": "bad"})
    assert r.status == 400 and "invalid LSN" in r.msg
    r = tarnd.post(base, {"conninfo": "host='unterminated"})
    assert r.status == 400 and "invalid conninfo" in r.msg
    r = tarnd.post(base, {"conninfo": "x" * 2000})
    assert r.status == 400
    r = tarnd.post(f"/v1/tenant/{t}/timeline/{'0' * 32}/compute",
                   {"conninfo": "host=127.0.0.1"})
    assert r.status == 404
    # Nothing listens there: 503 with libpq's reason, and nothing kept.
    from conftest import free_port
    r = tarnd.attach(t, tl, f"host=127.0.0.1 port={free_port()} "
                            "user=postgres connect_timeout=2")
    assert r.status == 503, r
    assert "refused" in r.msg or "connect" in r.msg
    d = tarnd.timeline(t, tl)
    assert d["compute"] is None and d["system_id"] is None
    assert tarnd.delete(base).status == 404

    c = compute_factory().initdb().start()
    assert tarnd.attach(t, tl, c.conninfo()).status == 200
    r = tarnd.attach(t, tl, c.conninfo())
    assert r.status == 409 and "already attached" in r.msg
    # A timeline that follows a compute cannot be deleted, nor its tenant.
    r = tarnd.delete(f"/v1/tenant/{t}/timeline/{tl}")
    assert r.status == 409 and "detach it first" in r.msg
    r = tarnd.delete(f"/v1/tenant/{t}")
    assert r.status == 409 and "detach it" in r.msg
    c.psql("CREATE TABLE a(x int); INSERT INTO a VALUES (1)")
    r = tarnd.delete(base)
    assert r.status == 200 and r.json["compute"] is None
    # With WAL, a start_lsn makes no sense: it resumes.
    r = tarnd.attach(t, tl, c.conninfo(), start_lsn="0/1000000")
    assert r.status == 400 and "resumes there" in r.msg
    # Deleting it now removes its WAL files too.
    wal = tarnd.wal_dir(t, tl)
    assert wal.exists()
    assert tarnd.delete(f"/v1/tenant/{t}/timeline/{tl}").status == 200
    wait_until(lambda: not wal.exists(), 10, "WAL files were not removed")


def test_start_lsn_and_other_initdb_refused(tarnd, compute_factory):
    a = compute_factory(name="a").initdb().start()
    b = compute_factory(name="b").initdb().start()
    t = tarnd.create_tenant()["id"]
    tl = tarnd.create_timeline(t, name="main", bootstrap="none")["timeline_id"]
    r = tarnd.attach(t, tl, a.conninfo(), start_lsn="FF/0")
    assert r.status == 409 and "beyond the compute's end of WAL" in r.msg
    assert tarnd.timeline(t, tl)["system_id"] is None
    here = lsn(a.current_lsn())
    r = tarnd.attach(t, tl, a.conninfo(), start_lsn=lsn_str(here))
    assert r.status == 200, r
    assert lsn(r.json["wal_start_lsn"]) == here - here % SEG
    a.psql("CREATE TABLE t AS SELECT generate_series(1, 1000) x")
    assert tarnd.delete(f"/v1/tenant/{t}/timeline/{tl}/compute").status \
        == 200
    r = tarnd.attach(t, tl, b.conninfo())
    assert r.status == 409, r
    assert "system identifier" in r.msg and "another initdb" in r.msg
    # The refusal changed nothing; the right compute still resumes.
    r = tarnd.attach(t, tl, a.conninfo())
    assert r.status == 200, r
    a.psql("INSERT INTO t VALUES (0)")
    wait_flushed(tarnd, t, tl, lsn(a.current_lsn()))
    assert_same_wal(tarnd, a, t, tl)


def test_diverged_compute_refused(tarnd, compute_factory):
    """A copy of the compute that went its own way shares the system
    identifier but not the WAL: refused."""
    import shutil
    import subprocess
    from pg import as_user
    a = compute_factory(name="a").initdb().start()
    t = tarnd.create_tenant()["id"]
    tl = tarnd.create_timeline(t, name="main", bootstrap="none")["timeline_id"]
    assert tarnd.attach(t, tl, a.conninfo()).status == 200
    a.psql("CREATE TABLE t(x int)")
    # Clone a's data directory while it is cleanly stopped.
    a.stop()
    b = compute_factory(name="b")
    subprocess.run(as_user(["cp", "-a", str(a.datadir), str(b.datadir)]),
                   check=True)
    b.write_settings()
    a.start()
    # a moves on with tarn; b moves on alone, differently.
    a.psql("INSERT INTO t SELECT generate_series(1, 20000)")
    wait_flushed(tarnd, t, tl, lsn(a.current_lsn()))
    b.settings["synchronous_standby_names"] = "''"
    b.write_settings()
    b.start()
    b.psql("CREATE TABLE other AS SELECT repeat('b', 100) FROM "
           "generate_series(1, 50000)")
    assert lsn(b.current_lsn()) > lsn(tarnd.timeline(t, tl)["wal_flush_lsn"])
    assert tarnd.delete(f"/v1/tenant/{t}/timeline/{tl}/compute").status \
        == 200
    r = tarnd.attach(t, tl, b.conninfo())
    assert r.status == 409, r
    assert "diverged" in r.msg
    r = tarnd.attach(t, tl, a.conninfo())
    assert r.status == 200, r
    shutil.rmtree(b.base, ignore_errors=True)


def test_compute_restart_rejoins_without_gaps(tarnd, compute_factory):
    c, t, tl = setup_follow(tarnd, compute_factory)
    c.pgbench("-i", "-s", "1", "-q")
    for mode in ("fast", "immediate"):
        c.restart(mode)
        c.wait_streaming()
        c.pgbench("-c", "2", "-T", "3")
    d = tarnd.timeline(t, tl)
    assert d["compute"]["reconnects"] >= 2
    wait_flushed(tarnd, t, tl, lsn(c.current_lsn()))
    start, end = assert_same_wal(tarnd, c, t, tl)
    ours, _ = waldump(tarnd.wal_dir(t, tl), start, end)
    theirs, _ = waldump(c.pg_wal, start, end)
    assert ours == theirs


def test_tarnd_restart_reattaches(tarnd, compute_factory):
    c, t, tl = setup_follow(tarnd, compute_factory)
    c.psql("CREATE TABLE t AS SELECT generate_series(1, 5000) x")
    before = lsn(tarnd.timeline(t, tl)["wal_flush_lsn"])
    tarnd.restart()
    assert "WAL recovered" in tarnd.log_text()
    c.wait_streaming()
    d = tarnd.timeline(t, tl)
    assert lsn(d["wal_flush_lsn"]) >= before
    assert d["compute"]["state"] == "streaming"
    c.psql("INSERT INTO t VALUES (1)")
    wait_flushed(tarnd, t, tl, lsn(c.current_lsn()))
    assert_same_wal(tarnd, c, t, tl)


def test_kill9_rounds_during_pgbench(tarnd, compute_factory):
    """10 times: read the flush position the compute has seen
    acknowledged, kill -9 tarnd, restart it.  Its WAL must reach at least
    that position, byte for byte equal to the compute's."""
    import random
    rnd = random.Random()
    c, t, tl = setup_follow(tarnd, compute_factory)
    c.pgbench("-i", "-s", "2", "-q")
    bench = c.pgbench("-c", "4", "-j", "2", "-T", "300", background=True)
    try:
        for rnd_no in range(10):
            time.sleep(rnd.uniform(0.3, 1.5))
            acked = lsn(c.replication()[0]["flush_lsn"])
            tarnd.kill9()
            tarnd.start()
            d = tarnd.timeline(t, tl)
            # Recovery alone (before any new WAL) already covers it.
            assert lsn(d["wal_flush_lsn"]) >= acked, (rnd_no, d)
            assert read_wal(tarnd.wal_dir(t, tl), acked - 4096, acked) == \
                read_wal(c.pg_wal, acked - 4096, acked)
            c.wait_streaming()
    finally:
        # SIGTERM, not SIGINT: a shell that starts the tests in the
        # background makes its children ignore SIGINT.
        bench.terminate()
        bench.wait(60)
    wait_flushed(tarnd, t, tl, lsn(c.current_lsn()))
    start, end = assert_same_wal(tarnd, c, t, tl)
    ours, why = waldump(tarnd.wal_dir(t, tl), start, end)
    theirs, _ = waldump(c.pg_wal, start, end)
    assert ours == theirs, (why, sorted(p.name for p in
                                        tarnd.wal_dir(t, tl).iterdir()))
    assert tarnd.log_text().count("WAL recovered") >= 10


def test_receiver_timeout(make_tarnd, compute_factory):
    """A compute that goes silent without closing the connection is
    dropped and reconnected; an idle but healthy one is not."""
    import os
    import signal
    t = make_tarnd({"wal_status_interval": "200ms",
                    "wal_receiver_timeout": "2s"})
    c, tenant, tl = setup_follow(t, compute_factory)
    time.sleep(6)  # idle: the ping at half the timeout keeps it alive
    d = t.timeline(tenant, tl)
    assert d["compute"]["reconnects"] == 0, d
    assert "wal_receiver_timeout" not in t.log_text()
    pid = int(c.psql("SELECT pid FROM pg_stat_replication WHERE "
                     "application_name = 'tarn'"))
    os.kill(pid, signal.SIGSTOP)  # the walsender freezes, socket open
    try:
        wait_until(lambda: t.timeline(tenant, tl)["compute"]["reconnects"]
                   >= 1, 20, lambda: t.log_text()[-2000:])
        assert "(wal_receiver_timeout)" in t.log_text()
    finally:
        # Thawed, the old walsender finds its socket closed and exits;
        # until then PostgreSQL may keep it as the synchronous standby.
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: str(pid) not in c.psql(
        "SELECT pid FROM pg_stat_replication"), 30)
    c.wait_streaming()
    c.psql("CREATE TABLE after_freeze(x int)")
    wait_flushed(t, tenant, tl, lsn(c.current_lsn()))
    assert_same_wal(t, c, tenant, tl)


def test_wal_only_timeline_image_passes_back_off(make_tarnd, compute_factory):
    """On a timeline made with bootstrap "none", pages older than its WAL
    cannot be rebuilt, so automatic image passes write nothing: they skip
    those pages' partitions, or fail on them.  Each such pass doubles the
    wait before the next (from 1 s here: 2, 4, 8 s), so tarnd does not
    redo the same useless work at every interval while the compute runs;
    the delta layers stay and the WAL keeps flowing."""
    t = make_tarnd({"log_level": "info", "checkpoint_distance": "1MB",
                    "image_creation_threshold": "1",
                    "image_creation_interval": "1s"})
    # Not a synchronous standby: pgbench -i runs before the attach, so
    # that the timeline's WAL starts in the middle of its history.
    c = compute_factory(settings={"synchronous_standby_names": "''"}) \
        .initdb().start()
    c.pgbench("-i", "-s", "2", "-q")
    tenant = t.create_tenant()["id"]
    tl = t.create_timeline(tenant, bootstrap="none")["timeline_id"]
    assert t.attach(tenant, tl, c.conninfo()).status == 200
    c.wait_streaming()

    def passes():
        return (t.metric("tarn_image_passes_total", result="ok")
                + t.metric("tarn_image_passes_total", result="failed"))

    def notes():
        return [x for x in t.log_text().splitlines()
                if "image layers at" in x and "in a row wrote nothing" in x]
    bench = c.pgbench("-c", "2", "-j", "2", "-T", "30", "-n",
                      background=True)
    try:
        wait_until(lambda: notes(), 30, lambda: t.log_text()[-3000:])
        p0, t0 = passes(), time.monotonic()
        time.sleep(12)
        ran, elapsed = passes() - p0, time.monotonic() - t0
    finally:
        bench.kill()
        bench.wait()
    assert t.metric("tarn_image_partitions_skipped_total") \
        + t.metric("tarn_image_passes_total", result="failed") >= 1
    # At the plain interval a new delta layer every few hundred ms would
    # have started a pass every second: 12 or so.  Backing off: the
    # passes after waits of 2 and 4 s, perhaps the one after 8.
    assert 1 <= ran <= 4, (ran, elapsed, notes())
    lines = notes()
    assert "the next automatic pass waits 2 s (1 in a row wrote nothing)" \
        in lines[0], lines
    assert any("waits 4 s (2 in a row wrote nothing)" in x for x in lines), \
        lines
    assert t.metric("tarn_image_pass_seconds_total") > 0
    # The WAL service did not care.
    target = lsn(c.current_lsn())
    wait_flushed(t, tenant, tl, target)
    assert_same_wal(t, c, tenant, tl)
