"""The storage engine after kill -9, a failing disk, and a corrupt file.

* kill -9 of tarnd while it ingests and while it writes a layer file (the
  fault-injection shim slows the fsync of layer files, and the test kills
  while a temporary layer file exists): after each restart tarnd opens the
  layers its catalog lists, drops the half-written file, ingests again
  from disk_consistent_lsn, and at the end every page still equals
  PostgreSQL's;
* a layer write that fails (a full disk) is retried, and nothing is lost;
* with slow layer writes, ingest waits at layer_memory_limit instead of
  holding more WAL in memory, while commits go on;
* a flipped byte in a layer file is detected by its CRC and reported,
  never served: in a value, the page read fails with the file and offset;
  in a header, the timeline stops with the reason at start-up.
"""
import collections
import random
import struct
import threading
import time

import pgwal
import walstate
from conftest import BUILD, wait_until
from pg import lsn, lsn_str
from pgcompare import list_relations
from tarnpages import PageReader, compare_files, compare_images

SHIM = BUILD / "tests" / "faultinject" / "faultinject.so"

COMPUTE_SETTINGS = {
    "wal_consistency_checking": "'all'",
    "autovacuum": "off",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'4GB'",
}


def start_engine(make_tarnd, compute_factory, tmp_path, sets):
    control = tmp_path / "faults"
    control.write_text("")
    env = {"LD_PRELOAD": str(SHIM), "TARN_FAULT_FILE": str(control),
           "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1"}
    settings = {"trust_consistency_images": "on", "log_level": "info",
                "wal_reconnect_max": "300ms"}
    settings.update(sets)
    t = make_tarnd(settings, env=env)
    c = compute_factory(name="crash", settings=COMPUTE_SETTINGS).initdb()
    tenant, tl = t.adopt(c, name="main")
    return t, c, tenant, tl["timeline_id"], lsn(tl["start_lsn"]), control


def ingested(t, tenant, tl):
    d = t.timeline(tenant, tl)
    assert d["storage"]["ingest"] != "failed", d["storage"]
    return lsn(d["last_record_lsn"])


def wait_caught_up(t, c, tenant, tl, timeout=120):
    target = lsn(c.psql("SELECT pg_current_wal_flush_lsn()"))
    wait_until(lambda: ingested(t, tenant, tl) >= target, timeout=timeout,
               why=f"ingest to reach {lsn_str(target)}")


def temp_layer_files(t, tenant, tl):
    d = t.data_dir / "tenants" / tenant / "timelines" / tl / "layers"
    return [p for p in d.iterdir() if p.name.endswith("___temp")] \
        if d.exists() else []


def verify_everything(t, c, tenant, tl, start):
    """Stop the compute; every logged image and every relation file must
    equal tarn's pages at the end of its WAL."""
    relations, _ = list_relations(c)
    c.psql("CHECKPOINT")
    c.stop("fast")
    final = max(r.end for r in pgwal.iter_records(c.pg_wal, start))
    wait_until(lambda: ingested(t, tenant, tl) >= final, timeout=120)
    state = walstate.WalState()
    for rec in pgwal.iter_records(c.pg_wal, start):
        state.apply(rec)
    snap = state.snapshot(final)
    reader = PageReader(t, tenant, tl)
    ams = {r["rnode"]: r["am"] for r in relations}
    rep, mismatches = collections.Counter(), []
    compare_images(reader, snap, final, ams, rep, mismatches)
    frep, _, fmis, _ = compare_files(reader, relations, c.datadir, final,
                                     snap)
    reader.close()
    print(f"images {dict(rep)}; files {dict(frep)}")
    assert not mismatches, mismatches[:5]
    assert not fmis, fmis[:5]
    assert rep["compared"] > 1000 and frep["pages"] > 1000
    return final


def test_kill9_during_ingest_and_layer_writes(make_tarnd, compute_factory,
                                              tmp_path):
    t, c, tenant, tl, start, control = start_engine(
        make_tarnd, compute_factory, tmp_path,
        {"checkpoint_distance": "2MB", "image_creation_threshold": "2"})
    c.pgbench("-i", "-s", "1", "-q")
    rng = random.Random(11)
    during_write = 0
    for rnd in range(6):
        load = c.pgbench("-c", "2", "-j", "2", "-T", "3", background=True)
        if rnd % 2 == 0:
            # During a layer write: slow layer fsyncs, kill while a
            # temporary layer file exists.
            control.write_text("layer_fsync_delay_ms=400\n")
            try:
                wait_until(lambda: temp_layer_files(t, tenant, tl),
                           timeout=30, why="a layer write")
                during_write += 1
            except AssertionError:
                pass
        else:
            time.sleep(rng.uniform(0.2, 1.5))
        t.kill9()
        leftovers = {p.name for p in temp_layer_files(t, tenant, tl)}
        control.write_text("")
        t.start()
        # pgbench's in-flight commits wait for the synchronous standby,
        # so it ends only once tarnd is back.
        load.wait(timeout=120)
        # The compute reconnects; a commit must go through again.
        wait_until(lambda: t.timeline(tenant, tl)["compute"]["state"]
                   == "streaming", timeout=30)
        c.psql("CREATE TABLE IF NOT EXISTS crash_marks (r int); "
               f"INSERT INTO crash_marks VALUES ({rnd})")
        wait_caught_up(t, c, tenant, tl)
        # The files the killed process left are gone (the new process
        # may be writing its own).
        now = {p.name for p in temp_layer_files(t, tenant, tl)}
        assert not leftovers & now, leftovers & now
        log = t.log_text()
    assert during_write >= 2, "never caught a layer write in progress"
    assert "not in the layer map" in log     # a half-written file dropped
    assert c.psql("SELECT count(*) FROM crash_marks") == "6"
    verify_everything(t, c, tenant, tl, start)


def test_layer_write_failure_is_retried(make_tarnd, compute_factory,
                                        tmp_path):
    t, c, tenant, tl, start, control = start_engine(
        make_tarnd, compute_factory, tmp_path,
        {"checkpoint_distance": "2MB"})
    control.write_text("layer_write=ENOSPC\n")
    c.pgbench("-i", "-s", "1", "-q")
    wait_until(lambda: "writing the layer" in t.log_text(), timeout=30)
    d = t.timeline(tenant, tl)
    assert d["storage"]["frozen_layers"] >= 1, d["storage"]
    before = lsn(d["disk_consistent_lsn"])
    metrics = t.get("/metrics").body
    assert "tarn_layer_flushes_total{result=\"failed\"} 0" not in metrics
    control.write_text("")
    wait_until(lambda: lsn(t.timeline(tenant, tl)["disk_consistent_lsn"])
               > before and t.timeline(tenant, tl)["storage"]
               ["frozen_layers"] == 0, timeout=60)
    wait_caught_up(t, c, tenant, tl)
    verify_everything(t, c, tenant, tl, start)


def test_layer_memory_limit_bounds_ingest(make_tarnd, compute_factory,
                                          tmp_path):
    """Two timelines load at once with slow layer writes: ingest waits at
    layer_memory_limit, which bounds both together, while commits go on
    (each compute's commits wait for tarnd, its synchronous standby)."""
    limit = 4 << 20
    t, c, tenant, tl, start, control = start_engine(
        make_tarnd, compute_factory, tmp_path,
        {"layer_memory_limit": "4MB", "checkpoint_distance": "1GB"})
    c2 = compute_factory(name="crash2", settings=COMPUTE_SETTINGS).initdb()
    _, tl2 = t.adopt(c2, tenant, name="second")
    assert t.metric("tarn_layer_memory_limit_bytes") == limit
    control.write_text("layer_fsync_delay_ms=200\n")
    peak, states, stop = [0.0], set(), threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], t.metric("tarn_layer_memory_bytes"))
            for x in (tl, tl2["timeline_id"]):
                states.add(t.timeline(tenant, x)["storage"]["ingest"])
            time.sleep(0.02)

    th = threading.Thread(target=sample)
    th.start()
    try:
        load = c2.pgbench("-i", "-s", "2", "-q", background=True)
        c.pgbench("-i", "-s", "2", "-q")
        out, _ = load.communicate(timeout=300)
        assert load.returncode == 0, out
        wait_caught_up(t, c, tenant, tl, timeout=300)
        wait_caught_up(t, c2, tenant, tl2["timeline_id"], timeout=300)
    finally:
        stop.set()
        th.join()
    control.write_text("")
    waits = t.metric("tarn_ingest_memory_waits_total")
    print(f"peak layer memory {peak[0] / 2**20:.1f} MiB, {waits:.0f} waits")
    assert waits > 0
    assert "waiting for layer memory" in states, states
    # Ingest checks the limit before each 128 KiB of WAL it reads, and memory
    # grows by whole arena chunks: a few MiB over at most.
    assert 0 < peak[0] <= limit + (4 << 20), peak[0]
    for x in (tl, tl2["timeline_id"]):
        d = t.timeline(tenant, x)["storage"]
        # Frozen at half the limit at most, not at checkpoint_distance.
        assert d["delta_layers"] >= 5, d
    verify_everything(t, c, tenant, tl, start)
    verify_everything(t, c2, tenant, tl2["timeline_id"],
                      lsn(tl2["start_lsn"]))


def test_backlog_is_ingested_between_polls(make_tarnd, compute_factory,
                                           tmp_path):
    """After kill -9 tarnd ingests again the WAL that no layer file holds
    (here over 64 MiB of it), in slices between which the reactor polls
    for I/O: the admin API answers while that backlog is being ingested,
    not once all of it is.  (The slices used to run back to back in one
    pass of the event loop, so the first request after the restart waited
    for the whole backlog, and so would the compute's commits.)"""
    t, c, tenant, tl, start, _ = start_engine(
        make_tarnd, compute_factory, tmp_path,
        {"checkpoint_distance": "4GB", "layer_memory_limit": "4GB"})
    c.psql("CREATE TABLE big AS SELECT g, repeat('x', 300) AS pad "
           "FROM generate_series(1, 25000) g")
    wait_caught_up(t, c, tenant, tl)
    backlog = lsn(c.psql("SELECT pg_current_wal_flush_lsn()")) - start
    assert backlog > 64 << 20, backlog
    assert t.timeline(tenant, tl)["storage"]["delta_layers"] == 0
    t.kill9()
    t.start()  # returns once GET /v1/status has been answered
    lag = t.metric("tarn_ingest_lag_bytes")
    print(f"{backlog / 2**20:.0f} MiB to ingest again; "
          f"{lag / 2**20:.1f} MiB still to go at the first requests")
    assert lag > 0
    wait_caught_up(t, c, tenant, tl)
    assert t.metric("tarn_ingest_lag_bytes") == 0
    verify_everything(t, c, tenant, tl, start)


# ---- corruption ---------------------------------------------------------
HDR_INDEX_OFF, HDR_INDEX_BLOCKS = 136, 144
ENTRY, PER_BLOCK = 40, (8192 - 8) // 40


def layer_entries(path):
    """(key bytes, lsn, blob offset, blob length) of every index entry of a
    tarn layer file (docs/storage-format.md)."""
    data = path.read_bytes()
    index_off, = struct.unpack_from("<Q", data, HDR_INDEX_OFF)
    nblocks, = struct.unpack_from("<I", data, HDR_INDEX_BLOCKS)
    out = []
    for b in range(nblocks):
        blk = data[index_off + b * 8192:index_off + (b + 1) * 8192]
        n, = struct.unpack_from("<I", blk, 0)
        for i in range(n):
            e = blk[4 + i * ENTRY:4 + (i + 1) * ENTRY]
            lsn_, off, ln = struct.unpack_from("<QQI", e, 20)
            out.append((e[:18], lsn_, off, ln))
    return out


def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x10]))


def test_corrupt_layer_detected_never_served(make_tarnd, tmp_path):
    t = make_tarnd({"log_level": "info"})
    tenant = t.create_tenant()["id"]
    tl = t.create_timeline(tenant, name="main")["timeline_id"]
    reader = PageReader(t, tenant, tl)
    # pg_class of database postgres (5), read before the damage.
    n = reader.rel_size(1663, 5, 1259, 0)["nblocks"]
    good = [reader.page(1663, 5, 1259, 0, b)[1] for b in range(n)]
    reader.close()
    t.stop()
    layers = t.data_dir / "tenants" / tenant / "timelines" / tl / "layers"
    (image,) = [p for p in layers.iterdir()]
    want = bytes([0]) + struct.pack(">IIIBI", 1663, 5, 1259, 0, 3)
    victim = next(e for e in layer_entries(image) if e[0] == want)
    flip(image, victim[2] + victim[3] // 2)
    t.start()
    reader = PageReader(t, tenant, tl)
    for b in range(n):
        status, body = reader.page(1663, 5, 1259, 0, b)
        if b == 3:
            assert status == 500, (status, body)
            assert b"fails its CRC32C check" in body and \
                image.name.encode() in body, body
        else:
            assert status == 200 and body == good[b], b
    metrics = t.get("/metrics").body
    assert "tarn_getpage_errors_total 1" in metrics
    reader.close()
    # A damaged header: the timeline stops at start-up, with the reason.
    t.stop()
    flip(image, 100)
    t.start()
    d = t.timeline(tenant, tl)
    assert d["storage"]["ingest"] == "failed"
    assert "header fails its CRC32C check" in d["storage"]["error"]
    r = t.get(f"/v1/tenant/{tenant}/timeline/{tl}/getpage?spc=1663&db=5"
              f"&rel=1259&fork=main&blk=0")
    assert r.status == 409 and "CRC32C" in r.msg, r
    assert "cannot open its layers" in t.log_text()
    # The rest of tarnd works: another timeline is fine.
    other = t.create_timeline(tenant, name="other")["timeline_id"]
    r = t.get(f"/v1/tenant/{tenant}/timeline/{other}/getpage?spc=1663&db=5"
              f"&rel=1259&fork=main&blk=0")
    assert r.status == 200 and len(r.raw) == 8192
