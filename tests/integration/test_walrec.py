"""The WAL record decoder against PostgreSQL 15's own reader: real WAL from
a standalone compute, decoded by tests/tools/walinspect (walscan +
walrec_decode + walrec_restore_image) and by pg_waldump --bkp-details,
compared record by record and block by block.

Per record: LSN, prev, rmgr, xid, total length and main-record length
(pg_waldump's "len (rec/tot)", rec = tot minus the stored image bytes).
Per block reference: relation, fork, block, whether an image is there,
its hole, its compression and whether it is only for WAL verification.
walinspect itself restores every image and fails unless it decompresses
and its hole is exactly [pd_lower, pd_upper) of the restored page.

No tarnd is needed: the compute runs without a synchronous standby.
"""
import re
import subprocess

import pytest

from conftest import BUILD, wait_until
from pg import PG_BIN, Compute, lsn, lsn_str, seg_name

WALINSPECT = BUILD / "tests" / "tools" / "walinspect"
PAGE = 8192
SEG = 16 << 20
FORKS = {"main": 0, "fsm": 1, "vm": 2, "init": 3}
STANDALONE = {"synchronous_standby_names": "''", "max_wal_senders": "0",
              "wal_level": "replica"}

# pg_waldump -b: a record line, then one tab-indented line per block.
REC_RE = re.compile(
    r"^rmgr: (\S+)\s+len \(rec/tot\):\s*(\d+)/\s*(\d+), tx:\s*(\d+), "
    r"lsn: ([0-9A-F]+/[0-9A-F]+), prev ([0-9A-F]+/[0-9A-F]+), desc: (.*)$")
BLK_RE = re.compile(
    r"^\tblkref #(\d+): rel (\d+)/(\d+)/(\d+) fork (\w+) blk (\d+)(.*)$")
FPW_RE = re.compile(
    r"^ \(FPW( for WAL verification)?\); hole: offset: (\d+), length: (\d+)"
    r"(?:, compression saved: \d+, method: (\w+))?$")


def waldump(c, start, end):
    """pg_waldump -b's records in [start, end) of the compute's pg_wal, as
    dicts in walinspect's terms.  The segments are named: without them
    pg_waldump takes the segment size from whichever file readdir gives
    first, maybe one created ahead of use and still all zeros."""
    p = subprocess.run([str(PG_BIN / "pg_waldump"), "-b", "-p",
                        str(c.pg_wal), "-s", lsn_str(start), "-e",
                        lsn_str(end), seg_name(start // SEG),
                        seg_name((end - 1) // SEG)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    recs = []
    for line in p.stdout.splitlines():
        m = REC_RE.match(line)
        if m:
            recs.append({"lsn": lsn(m[5]), "prev": lsn(m[6]), "rmgr": m[1],
                         "xid": int(m[4]), "tot": int(m[3]),
                         "rec": int(m[2]), "desc": m[7], "blocks": {}})
            continue
        m = BLK_RE.match(line)
        if not m:
            continue  # a description that ran over a line
        b = {"rel": (int(m[2]), int(m[3]), int(m[4])), "fork": FORKS[m[5]],
             "blk": int(m[6]), "fpw": False}
        if m[7]:
            f = FPW_RE.match(m[7])
            assert f, f"unexpected block detail: {line!r}"
            b.update(fpw=True, apply=f[1] is None, hole_off=int(f[2]),
                     hole_len=int(f[3]), method=f[4] or "none")
        recs[-1]["blocks"][int(m[1])] = b
    return recs


def kv(text):
    return dict(f.split("=", 1) for f in text.split())


def walinspect(c, start, end):
    """walinspect's records in [start, end): (records, raw block fields by
    record), after checking its summary line."""
    p = subprocess.run([str(WALINSPECT), str(c.pg_wal), lsn_str(start),
                        lsn_str(end)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, f"walinspect failed: {p.stderr}"
    recs, summary = [], None
    for line in p.stdout.splitlines():
        if line.startswith("lsn="):
            f = kv(line)
            recs.append({"lsn": lsn(f["lsn"]), "prev": lsn(f["prev"]),
                         "rmgr": f["rmgr"], "xid": int(f["xid"]),
                         "tot": int(f["tot"]), "rec": int(f["rec"]),
                         "f": f, "blocks": {}})
        elif line.startswith("  blk#"):
            head, rest = line.strip().split(" ", 1)
            f = kv(rest)
            spc, db, rel = (int(x) for x in f["rel"].split("/"))
            b = {"rel": (spc, db, rel), "fork": int(f["fork"]),
                 "blk": int(f["blk"]), "fpw": f["fpw"] == "1", "f": f}
            if b["fpw"]:
                b.update(apply=f["apply"] == "1",
                         hole_off=int(f["hole_off"]),
                         hole_len=int(f["hole_len"]), method=f["method"])
            recs[-1]["blocks"][int(head[4:])] = b
        elif line.startswith("end "):
            summary = kv(line[4:])
        else:
            raise AssertionError(f"unexpected walinspect line {line!r}")
    assert summary is not None, "walinspect printed no summary"
    assert int(summary["records"]) == len(recs)
    return recs


class Stats(dict):
    def __getattr__(self, k):
        return self.get(k, 0)

    def add(self, k, n=1):
        self[k] = self.get(k, 0) + n


def compare(c, start, end):
    """Both readers over [start, end); they must agree on every record and
    block.  Returns counts of what was seen, and walinspect's records."""
    ours = walinspect(c, start, end)
    theirs = waldump(c, start, end)
    assert ours, f"no records in {lsn_str(start)}..{lsn_str(end)}"
    assert len(ours) == len(theirs), (
        f"walinspect has {len(ours)} records, pg_waldump {len(theirs)}; "
        f"last: {ours[-1]['f']} / {theirs[-1]}")
    s = Stats()
    keys = ("lsn", "prev", "rmgr", "xid", "tot", "rec")
    bkeys = ("rel", "fork", "blk", "fpw", "apply", "hole_off", "hole_len",
             "method")
    for a, b in zip(ours, theirs):
        where = f"record at {lsn_str(b['lsn'])} ({b['rmgr']} {b['desc']})"
        for k in keys:
            assert a[k] == b[k], f"{where}: {k} {a[k]} != {b[k]}"
        assert sorted(a["blocks"]) == sorted(b["blocks"]), \
            f"{where}: block ids {sorted(a['blocks'])} != " \
            f"{sorted(b['blocks'])}"
        s.add("records")
        off = a["lsn"] % PAGE
        if off + a["tot"] > PAGE:
            s.add("span")
            assert a["f"]["span"] == "1", where
        if PAGE - off < 24:
            s.add("hdr_split")
            assert a["f"]["hdr_split"] == "1", where
        ids = sorted(a["blocks"])
        if ids and ids != list(range(len(ids))):
            s.add("gaps")
        for i in ids:
            x, y = a["blocks"][i], b["blocks"][i]
            for k in bkeys:
                assert x.get(k) == y.get(k), \
                    f"{where}, block {i}: {k} {x.get(k)} != {y.get(k)}"
            s.add("blocks")
            if x["fpw"]:
                s.add("images")
                s.add("img_" + x["method"])
                s.add("apply" if x["apply"] else "verify")
                if x["hole_len"]:
                    s.add("holes")
                assert x["f"]["page"] in ("ok", "new"), \
                    f"{where}, block {i}: restored page header {x['f']}"
        # wal_consistency_checking: every block of the record has an image.
        if int(a["f"]["info"], 16) & 0x02:
            s.add("checked")
            assert all(x["fpw"] for x in a["blocks"].values()), where
    return s, ours


def insert_lsn(c):
    return lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))


def flushed_end(c, at_least):
    """The flush LSN, once it has reached @at_least: bytes before it are
    in pg_wal, whole or not."""
    wait_until(lambda: lsn(c.current_lsn()) >= at_least, 10,
               "WAL was not flushed")
    return lsn(c.current_lsn())


def index_images(recs, relfilenode):
    """{block: (page CRC, method)} of the XLOG FPI records a btree build
    wrote for @relfilenode."""
    out = {}
    for r in recs:
        if r["rmgr"] != "XLOG":
            continue
        for b in r["blocks"].values():
            if b["rel"][2] == relfilenode and b["fpw"]:
                out[b["blk"]] = (b["f"]["page_crc"], b["method"])
    return out


def build_index(c):
    """CREATE INDEX on the static table img, then drop it: returns the
    LSN range and the index's relfilenode.  The build logs every page as
    a full-page image with pd_lsn 0, so the same data gives the same
    pages whatever the compression."""
    start = insert_lsn(c)
    c.psql("CREATE INDEX img_b ON img (b)")
    node = int(c.psql("SELECT pg_relation_filenode('img_b')"))
    c.psql("DROP INDEX img_b")
    return start, flushed_end(c, insert_lsn(c)), node


def set_conf(c, name, value):
    """ALTER SYSTEM and reload; wait until new sessions see @value."""
    if value is None:
        c.psql(f"ALTER SYSTEM RESET {name}")
    else:
        c.psql(f"ALTER SYSTEM SET {name} = '{value}'")
    c.psql("SELECT pg_reload_conf()")
    want = value if value is not None else c.psql(
        f"SELECT boot_val FROM pg_settings WHERE name = '{name}'")
    wait_until(lambda: c.psql(f"SHOW {name}") == want, 10,
               f"{name} did not become {want}")


@pytest.fixture(scope="module")
def pg():
    if not WALINSPECT.exists():
        pytest.fail(f"{WALINSPECT} is not built")
    c = Compute(name="walrec", settings=STANDALONE)
    try:
        c.initdb().start()
        c.init_start = insert_lsn(c)
        c.pgbench("-i", "-s", "1", "-q")
        c.init_end = flushed_end(c, insert_lsn(c))
        # The reference build of an index on static data, uncompressed.
        c.psql("CREATE TABLE img AS SELECT i, 'k' || "
               "lpad((i * 7919 % 20000)::text, 8, '0') || repeat('x', 40) "
               "AS b FROM generate_series(1, 20000) i")
        start, end, node = build_index(c)
        c.ref_index = {blk: crc for blk, (crc, m) in
                       index_images(walinspect(c, start, end), node).items()}
        assert len(c.ref_index) > 50, c.ref_index
        yield c
    finally:
        c.cleanup()


def test_plain(pg):
    """wal_compression off: pgbench -i, a pgbench run and a commit record
    with 3000 subtransactions, several pages long."""
    s1, _ = compare(pg, pg.init_start, pg.init_end)
    assert s1.records > 2000 and s1.blocks > 2000, s1
    start = insert_lsn(pg)
    pg.psql("CHECKPOINT")
    pg.pgbench("-c", "2", "-j", "2", "-t", "400")
    pg.psql("CREATE TABLE subx (i int)")
    pg.psql("DO $$ BEGIN FOR i IN 1..3000 LOOP BEGIN "
            "INSERT INTO subx VALUES (i); EXCEPTION WHEN others THEN NULL; "
            "END; END LOOP; END $$")
    end = flushed_end(pg, insert_lsn(pg))
    s2, recs = compare(pg, start, end)
    print("plain: pgbench -i", dict(s1), "run", dict(s2))
    assert s2.records > 5000, s2
    assert s2.blocks > 3000 and s2.images > 500 and s2.holes > 100, s2
    assert s2.img_none == s2.images and s2.verify == 0, s2
    # 3000 subtransaction xids of 4 bytes: the record covers 2 or 3 pages.
    big = [r for r in recs if r["rmgr"] == "Transaction"
           and r["tot"] > 12000]
    assert big, "no commit record with the 3000 subtransactions"
    assert s1.span + s2.span > 100, (s1, s2)
    # A record header split over a page boundary: hundreds of pages of
    # small records make this as good as certain.
    assert s1.hdr_split + s2.hdr_split > 0, (s1, s2)


@pytest.mark.parametrize("method", ["pglz", "lz4", "zstd"])
def test_compression(pg, method):
    """Compressed full-page images: each decompresses, and its hole is
    the page's free space."""
    set_conf(pg, "wal_compression", method)
    try:
        start = insert_lsn(pg)
        pg.psql("CHECKPOINT")
        pg.pgbench("-c", "2", "-j", "2", "-t", "300")
        _, _, node = build_index(pg)
        end = flushed_end(pg, insert_lsn(pg))
    finally:
        set_conf(pg, "wal_compression", None)
    s, recs = compare(pg, start, end)
    print(method, dict(s))
    assert s.records > 2000 and s.blocks > 2000, s
    assert s["img_" + method] > 300, s
    assert s.holes > 100, s
    # The index build's pages, decompressed, are byte for byte those of
    # the uncompressed reference build.
    built = index_images(recs, node)
    print(method, "index pages", len(built))
    assert {m for _, m in built.values()} == {method}
    assert {b: crc for b, (crc, _) in built.items()} == pg.ref_index


def test_consistency_checking(pg):
    """wal_consistency_checking = all: every block of a checked record
    carries an image, most only for verification (apply bit clear)."""
    set_conf(pg, "wal_consistency_checking", "all")
    try:
        start = insert_lsn(pg)
        pg.psql("CHECKPOINT")
        pg.pgbench("-c", "2", "-j", "2", "-t", "100")
        end = flushed_end(pg, insert_lsn(pg))
    finally:
        set_conf(pg, "wal_consistency_checking", None)
    s, _ = compare(pg, start, end)
    print("consistency", dict(s))
    assert s.records > 500 and s.blocks > 500, s
    assert s.checked > 500, s
    assert s.verify > 500 and s.apply > 50, s


def test_block_id_gap(pg):
    """A btree on wide keys, filled in key order: splits of the rightmost
    internal page log blocks 0, 1 and 3 (no right sibling)."""
    start = insert_lsn(pg)
    pg.psql("CREATE TABLE wide (k text)")
    pg.psql("CREATE INDEX wide_k ON wide (k)")
    # 800-byte keys that do not compress: a few per page, so internal
    # pages split after a few dozen leaves.
    pg.psql("INSERT INTO wide SELECT lpad(i::text, 6, '0') || "
            "(SELECT string_agg(md5(i::text || '.' || j::text), '') "
            "FROM generate_series(1, 25) j) FROM generate_series(1, 600) i")
    end = flushed_end(pg, insert_lsn(pg))
    s, recs = compare(pg, start, end)
    print("gap", dict(s))
    gapped = [r for r in recs if r["rmgr"] == "Btree"
              and sorted(r["blocks"]) == [0, 1, 3]]
    print("gap: btree records with blocks 0, 1, 3:", len(gapped))
    assert s.records > 500 and s.blocks > 500, s
    assert gapped, "no btree split with block ids 0, 1, 3"
    # XLOG_BTREE_SPLIT_R (0x40): the new item went right, as keys rise.
    assert all(int(r["f"]["info"], 16) & 0xF0 == 0x40 for r in gapped)
    assert s.gaps >= len(gapped), s


def test_origin_and_toplevel_xid(compute_factory):
    """wal_level = logical: the first record of a subtransaction names its
    top-level xid; a replication origin session stamps its records with
    the origin id."""
    c = compute_factory(name="walrec-logical",
                        settings=dict(STANDALONE, wal_level="logical"))
    c.initdb().start()
    c.psql("CREATE TABLE o (i int)")
    origin = int(c.psql("SELECT pg_replication_origin_create('tarn_test')"))
    assert origin > 0
    start = insert_lsn(c)
    # Logical-level WAL of an ordinary workload too (images that keep
    # their block data, the extra tuple data).
    c.pgbench("-i", "-s", "1", "-q")
    c.psql("CHECKPOINT")
    c.pgbench("-c", "2", "-j", "2", "-t", "200")
    script = (
        "SELECT pg_replication_origin_session_setup('tarn_test');\n"
        "BEGIN;\n"
        "INSERT INTO o VALUES (1);\n"
        "SELECT 'top=' || pg_current_xact_id();\n"
        "SAVEPOINT s1;\n"
        "INSERT INTO o VALUES (2);\n"
        "SAVEPOINT s2;\n"
        "INSERT INTO o VALUES (3);\n"
        "COMMIT;\n")
    p = subprocess.run([str(PG_BIN / "psql"), "-X", "-At", "-v",
                        "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                        str(c.port), "-U", "postgres", "-d", "postgres"],
                       input=script, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    top = int(re.search(r"top=(\d+)", p.stdout)[1])
    end = flushed_end(c, insert_lsn(c))
    s, recs = compare(c, start, end)
    print("logical", dict(s))
    assert s.records > 3000 and s.images > 100, s
    fields = [r["f"] for r in recs]
    # Two subtransactions, each names the top-level xid once.
    sub = [f for f in fields if f["toplevel_xid"] == str(top)]
    assert len(sub) == 2, fields
    subxids = sorted(int(f["xid"]) for f in sub)
    assert top not in subxids and len(set(subxids)) == 2
    # The inserts and the commit carry the origin.
    heap = [f for f in fields if f["rmgr"] == "Heap"
            and int(f["xid"]) in [top] + subxids]
    assert len(heap) == 3 and all(f["origin"] == str(origin) for f in heap)
    commits = [r for r in recs if r["rmgr"] == "Transaction"
               and r["xid"] == top]
    assert len(commits) == 1
    assert commits[0]["f"]["origin"] == str(origin)
    # pg_waldump shows the same subtransactions and origin in the commit.
    dump = {r["lsn"]: r for r in waldump(c, start, end)}
    desc = dump[commits[0]["lsn"]]["desc"]
    assert f"origin: node {origin}," in desc, desc
    assert "subxacts: " + " ".join(str(x) for x in subxids) in desc, desc
    # Records outside the session have neither.
    others = [f for f in fields if int(f["xid"]) not in [top] + subxids]
    assert all(f["toplevel_xid"] == "0" for f in others)
