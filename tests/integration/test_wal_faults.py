"""Failure semantics of the WAL service, with an LD_PRELOAD shim that makes
WAL I/O fail on demand (tests/faultinject): a failed fdatasync stops the
timeline and nothing past the last good flush is ever acknowledged; a full
disk stalls acknowledgement, which resumes once writes succeed."""
import re
import subprocess
import time

import pytest

from conftest import BUILD, wait_until
from pg import PG_BIN, lsn, read_wal

SHIM = BUILD / "tests" / "faultinject" / "faultinject.so"


@pytest.fixture
def faulty(make_tarnd, compute_factory, tmp_path):
    control = tmp_path / "faults"
    control.write_text("")
    env = {"LD_PRELOAD": str(SHIM), "TARN_FAULT_FILE": str(control),
           "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}
    t = make_tarnd({"wal_reconnect_max": "500ms"}, env=env)
    c = compute_factory().initdb().start()
    tenant = t.create_tenant()["id"]
    tl = t.create_timeline(tenant, name="main", bootstrap="none")["timeline_id"]
    r = t.attach(tenant, tl, c.conninfo())
    assert r.status == 200, r
    c.psql("CREATE TABLE t(x int)")
    return t, c, tenant, tl, control


def insert_in_background(c, value):
    return subprocess.Popen([str(PG_BIN / "psql"), "-X", "-h", "127.0.0.1",
                             "-p", str(c.port), "-U", "postgres", "-c",
                             f"INSERT INTO t VALUES ({value})"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_fdatasync_eio_acknowledges_nothing_more(faulty):
    t, c, tenant, tl, control = faulty
    good = lsn(t.timeline(tenant, tl)["wal_flush_lsn"])
    control.write_text("fdatasync=EIO\n")
    ins = insert_in_background(c, 1)
    wait_until(lambda: t.timeline(tenant, tl)["compute"]["state"] == "broken",
               10, lambda: str(t.timeline(tenant, tl)))
    d = t.timeline(tenant, tl)
    assert "fdatasync" in d["compute"]["error"]
    assert "nothing past" in d["compute"]["error"]
    assert lsn(d["wal_flush_lsn"]) == good
    # Not retried and acknowledged later: the commit stays blocked.
    control.write_text("")
    time.sleep(2)
    assert ins.poll() is None, "the commit returned without a durable ack"
    assert lsn(t.timeline(tenant, tl)["wal_flush_lsn"]) == good
    assert all(lsn(r["flush_lsn"]) <= good for r in c.replication()
               if r["flush_lsn"])
    # A second attach is refused while broken.
    r = t.attach(tenant, tl, c.conninfo())
    assert r.status == 409 and "stopped" in r.msg
    # A restart re-reads the WAL from disk and carries on.
    t.kill9()
    t.start()
    assert ins.wait(30) == 0, ins.stderr.read()
    c.psql("INSERT INTO t VALUES (2)")
    end = lsn(t.timeline(tenant, tl)["wal_flush_lsn"])
    assert end > good
    start = lsn(t.timeline(tenant, tl)["wal_start_lsn"])
    assert read_wal(t.wal_dir(tenant, tl), start, end) == \
        read_wal(c.pg_wal, start, end)


def test_enospc_stalls_then_recovers(faulty):
    t, c, tenant, tl, control = faulty
    good = lsn(t.timeline(tenant, tl)["wal_flush_lsn"])
    control.write_text("write=ENOSPC\n")
    ins = insert_in_background(c, 1)
    wait_until(lambda: (t.timeline(tenant, tl)["compute"] or {}).get(
        "stalled"), 10, lambda: str(t.timeline(tenant, tl)))
    d = t.timeline(tenant, tl)
    assert "disk full" in d["compute"]["error"]
    time.sleep(1.5)
    assert ins.poll() is None, "a commit was acknowledged during the stall"
    assert lsn(t.timeline(tenant, tl)["wal_flush_lsn"]) == good
    assert all(lsn(r["flush_lsn"]) <= good for r in c.replication()
               if r["flush_lsn"])
    # The write itself or the background creation of the next segment
    # (if one was under way) may be the first to meet the full disk;
    # either way the error the API shows is the one in the log.
    assert d["compute"]["error"] in t.log_text()
    # Refused WAL does not reset the receiver's backoff (100 ms, doubling
    # up to wal_reconnect_max, 500 ms here): a few reconnects in those
    # 1.5 s, not one every 100 ms.  And the stall is an ERROR once.
    again = t.timeline(tenant, tl)["compute"]["reconnects"]
    assert again - d["compute"]["reconnects"] <= 7, (d, again)
    errors = [line for line in t.log_text().splitlines()
              if re.search(r"\bERROR\b.*disk full", line)]
    assert len(errors) == 1, errors
    # Each of those reconnects met the same full disk: a WARN the 1st,
    # 2nd, 4th... time in a row, DEBUG in between.
    rows = [int(m.group(1) or 1) for m in (
        re.search(r"\bWARN\b.*disk full.*reconnecting in \d+ ms"
                  r"(?: \(failed (\d+) times in a row\))?$", line)
        for line in t.log_text().splitlines()) if m]
    assert rows == [2 ** i for i in range(len(rows))], rows
    assert rows, t.log_text()[-3000:]
    # Space comes back: the stall ends by itself.
    control.write_text("")
    assert ins.wait(30) == 0, ins.stderr.read()
    wait_until(lambda: not t.timeline(tenant, tl)["compute"]["stalled"], 10)
    assert t.timeline(tenant, tl)["compute"]["state"] == "streaming"
    assert "WAL writes succeed again" in t.log_text()
    end = lsn(t.timeline(tenant, tl)["wal_flush_lsn"])
    assert end > good
    start = lsn(t.timeline(tenant, tl)["wal_start_lsn"])
    assert read_wal(t.wal_dir(tenant, tl), start, end) == \
        read_wal(c.pg_wal, start, end)


def test_full_disk_for_the_next_segment_stalls_only_at_its_end(faulty):
    """A new segment is created (zero-filled) in the background, one ahead
    of the stream.  A full disk met there does not stop acknowledgement
    while the current segment has room; it stalls once the stream needs the
    segment, and both recover when space comes back."""
    t, c, tenant, tl, control = faulty
    # The segment after the current one exists already; move the stream
    # into it, so that tarnd creates the one after that under the fault.
    wait_until(lambda: len([p for p in t.wal_dir(tenant, tl).iterdir()
                            if p.name != "waltmp"]) >= 2, 10)
    control.write_text("segment_write=ENOSPC\n")
    c.psql("SELECT pg_switch_wal()")
    c.psql("INSERT INTO t VALUES (1)")
    wait_until(lambda: "disk full creating the next WAL segment"
               in t.log_text(), 10, t.log_text)
    # Commits are still acknowledged (psql returns only once tarnd has
    # flushed them: synchronous_standby_names = 'tarn').
    c.psql("INSERT INTO t VALUES (2)")
    d = t.timeline(tenant, tl)
    assert not d["compute"]["stalled"], d
    assert d["compute"]["state"] == "streaming", d
    assert "disk full creating the next WAL segment" in \
        d["compute"]["warning"], d
    # The stream reaches the end of the segment: now it waits for the next
    # one, which cannot be created, and nothing past it is acknowledged.
    c.psql("SELECT pg_switch_wal()")
    ins = insert_in_background(c, 3)
    wait_until(lambda: (t.timeline(tenant, tl)["compute"] or {}).get(
        "stalled"), 10, lambda: str(t.timeline(tenant, tl)))
    d = t.timeline(tenant, tl)
    assert "disk full creating a WAL segment" in d["compute"]["error"], d
    time.sleep(1.5)
    assert ins.poll() is None, "a commit was acknowledged during the stall"
    # Space comes back: the segment is created and the stall ends.
    control.write_text("")
    assert ins.wait(30) == 0, ins.stderr.read()
    wait_until(lambda: not t.timeline(tenant, tl)["compute"]["stalled"], 10)
    assert "disk space is back" in t.log_text()
    assert t.timeline(tenant, tl)["compute"]["warning"] == ""
    c.psql("INSERT INTO t VALUES (4)")
    end = lsn(t.timeline(tenant, tl)["wal_flush_lsn"])
    start = lsn(t.timeline(tenant, tl)["wal_start_lsn"])
    assert read_wal(t.wal_dir(tenant, tl), start, end) == \
        read_wal(c.pg_wal, start, end)
