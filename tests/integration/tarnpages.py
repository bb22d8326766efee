"""A fast reader of tarnd's pages for the tests (one kept-alive HTTP
connection to the admin API's getpage, rel_size and db_size routes; bulk
comparisons read tens of thousands of pages), and the two comparisons that
prove tarn's pages exact: against the images PostgreSQL logged
(wal_consistency_checking) and against PostgreSQL's relation files.
"""
import collections
import http.client
import json
import struct
import subprocess

import pgmask
import pgwal
from conftest import BUILD, wait_until
from pg import lsn, lsn_str
from pgcompare import (FIRST_NORMAL_OID, fork_file_blocks, sequence_log_ahead,
                       spgist_meta_cache_only, vm_bits_cut_as_hole)


REDOCHECK = BUILD / "tests" / "tools" / "redocheck"
DUMP_HDR = struct.Struct("<IIIBIBQ")


def redocheck(waldir, start, end, *args, timeout=3600):
    """Run tests/tools/redocheck (the C oracle: every record replayed with
    tarn's redo, every logged image checked) over @waldir's WAL in
    [@start, @end).  Returns (summary dict from its --json line, its
    stdout, its exit status); fails the test on a usage or WAL error."""
    p = subprocess.run([str(REDOCHECK), "--json", *args, str(waldir),
                        lsn_str(start), lsn_str(end)], capture_output=True,
                       text=True, timeout=timeout)
    lines = p.stdout.strip().splitlines()
    assert p.returncode in (0, 1) and lines and lines[-1].startswith("{"), \
        f"redocheck failed ({p.returncode}): {p.stderr}{p.stdout[-2000:]}"
    return json.loads(lines[-1]), p.stdout, p.returncode


def read_dump(path):
    """The pages redocheck --dump wrote: yields ((spc, db, rel, fork, blk),
    rmid, lsn, page)."""
    with open(path, "rb") as f:
        while True:
            hdr = f.read(DUMP_HDR.size)
            if not hdr:
                return
            spc, db, rel, fork, blk, rmid, at = DUMP_HDR.unpack(hdr)
            page = f.read(pgmask.BLCKSZ)
            assert len(page) == pgmask.BLCKSZ, "truncated redocheck dump"
            yield (spc, db, rel, fork, blk), rmid, at, page


def adopt_new_compute(t, c):
    """Run initdb for compute @c, import its data directory into timeline
    "main" of a new tenant of tarnd @t, start the compute and attach it.
    Returns (tenant, timeline id, the timeline's start LSN)."""
    c.initdb()
    tenant, tl = t.adopt(c, name="main")
    return tenant, tl["timeline_id"], lsn(tl["start_lsn"])


def stop_and_ingest(t, c, tenant, tl, mark, timeout=180):
    """Stop compute @c cleanly and wait until tarnd has ingested its WAL to
    the end (the shutdown checkpoint); @mark is an LSN before that end.
    Returns the end LSN."""
    c.stop("fast")
    final = max(rec.end for rec in pgwal.iter_records(c.pg_wal, mark))
    wait_until(lambda: lsn(t.timeline(tenant, tl)["last_record_lsn"])
               >= final, timeout=timeout, why="ingest to reach the end")
    return final


class PageReader:
    def __init__(self, tarnd, tenant, timeline):
        self.t = tarnd
        self.base = f"/v1/tenant/{tenant}/timeline/{timeline}"
        self.conn = None
        self.requests = 0

    def _get(self, path):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.t.port, timeout=60)
            try:
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                self.requests += 1
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, body
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    @staticmethod
    def _lsn(at):
        return "" if at is None else "&lsn=" + (
            at if isinstance(at, str) else lsn_str(at))

    def page(self, spc, db, rel, fork, blk, at=None):
        """(status, bytes): the page, or the error body."""
        return self._get(f"{self.base}/getpage?spc={spc}&db={db}&rel={rel}"
                         f"&fork={fork}&blk={blk}{self._lsn(at)}")

    def rel_size(self, spc, db, rel, fork, at=None):
        """{"exists", "nblocks", "lsn"} or raises with the error."""
        status, body = self._get(f"{self.base}/rel_size?spc={spc}&db={db}"
                                 f"&rel={rel}&fork={fork}{self._lsn(at)}")
        assert status == 200, (status, body)
        return json.loads(body)

    def db_size(self, spc, db, at=None):
        status, body = self._get(f"{self.base}/db_size?spc={spc}&db={db}"
                                 f"{self._lsn(at)}")
        assert status == 200, (status, body)
        return json.loads(body)


def compare_images(reader, snap, at, ams, rep, mismatches):
    """Every exact block of @snap (walstate) read from tarn at @at, under
    the mask of the record that logged its image; and the size of every
    relation fork created after initdb.  Counts go to @rep, differences to
    @mismatches."""
    for key, e in snap.blocks.items():
        spc, db, rel, fork, blk = key
        if not e.exact or not e.supported:
            rep["not_exact"] += 1
            continue
        status, body = reader.page(spc, db, rel, fork, blk, at)
        if status != 200:
            mismatches.append((lsn_str(at), key, f"HTTP {status}: {body}"))
            continue
        want = e.page()
        am = ams.get(key[:3])
        try:
            mask = pgmask.mask_for_rmgr(e.rmid, am)
            a, b = mask(body, blk), mask(want, blk)
        except pgmask.MaskError:
            a, b = body, want
        rep["compared"] += 1
        rep[f"rmgr_{pgwal.rmgr_name(e.rmid)}"] += 1
        if a != b:
            mismatches.append((lsn_str(at), key, f"{e!r}: "
                               + pgmask.diff_report(a, b)))
    for rnode_fork, n in snap.sizes.items():
        if rnode_fork[2] < FIRST_NORMAL_OID:
            continue    # a catalog from initdb: the WAL knows part of it
        got = reader.rel_size(*rnode_fork, at)
        rep["sizes"] += 1
        if not got["exists"] or got["nblocks"] != n:
            mismatches.append((lsn_str(at), rnode_fork,
                               f"size {got}, WAL says {n}"))


def compare_files(reader, relations, datadir, at, snap):
    """Every block of every relation file of a stopped compute against
    tarn's page at @at, under the relation's mask (the visibility map in
    full).  The three changes PostgreSQL makes without WAL are recognised
    and counted, not hidden: sequences logged ahead, the SP-GiST meta
    page's cache, VM bits lost by CREATE DATABASE WAL_LOG copies (@snap,
    the walstate snapshot at @at, says which image a VM page came from).
    Returns (counts, per-AM counts, mismatches, notes)."""
    rep = collections.Counter()
    per_am = collections.Counter()
    mismatches, notes = [], set()
    for rel in relations:
        spc, db, relno = rel["rnode"]
        am = rel["am"]
        for fork in (0, 2, 3):
            pages = fork_file_blocks(datadir, rel["path"], fork)
            if pages is None:
                continue
            size = reader.rel_size(spc, db, relno, fork, at)
            if not size["exists"]:
                mismatches.append((rel["name"], fork, None,
                                   "tarn has no such relation fork"))
                continue
            if size["nblocks"] > len(pages):
                mismatches.append((rel["name"], fork, None,
                                   f"tarn has {size['nblocks']} blocks, "
                                   f"the file {len(pages)}"))
            for blk, page in enumerate(pages):
                status, mine = reader.page(spc, db, relno, fork, blk,
                                               at)
                if status != 200:
                    mismatches.append((rel["name"], fork, blk,
                                       f"HTTP {status}: {mine}"))
                    continue
                rep["pages"] += 1
                if blk >= size["nblocks"]:
                    rep["past_wal_size"] += 1
                    # Extended without WAL: PostgreSQL never wrote it.
                    if not pgmask.is_new_page(page):
                        mismatches.append((rel["name"], fork, blk,
                                           "past tarn's size, not new"))
                    continue
                if fork == 2:
                    per_am["vm"] += 1
                    a, b = pgmask.minimal_mask(page), pgmask.minimal_mask(mine)
                    if a == b:
                        continue
                    e = snap.get((spc, db, relno, fork, blk))
                    if e is not None and vm_bits_cut_as_hole(e, page, mine):
                        rep["vm_bits_lost_in_wal_log_copy"] += 1
                        notes.add("VM pages copied by CREATE DATABASE "
                                  "WAL_LOG lose their bits (the bitmap is "
                                  "the image's hole), in PostgreSQL's own "
                                  "redo too")
                        continue
                    mismatches.append((rel["name"], fork, blk, "VM: "
                                       + pgmask.diff_report(a, b)))
                    continue
                per_am[am] += 1
                try:
                    a = pgmask.mask_for_am(am)(page, blk)
                    b = pgmask.mask_for_am(am)(mine, blk)
                except pgmask.MaskError:
                    a, b = page, mine
                if a == b:
                    continue
                if am == "sequence" and sequence_log_ahead(page, mine):
                    rep["sequence_log_ahead"] += 1
                    notes.add("sequence pages: nextval() logs 32 values "
                              "ahead and writes the page without WAL")
                    continue
                if am == "spgist" and blk == 0 and \
                        spgist_meta_cache_only(a, b):
                    rep["spgist_meta_cache"] += 1
                    notes.add("SP-GiST meta page: its cache of last-used "
                              "pages is written without WAL")
                    continue
                mismatches.append((rel["name"], fork, blk,
                                   pgmask.diff_report(a, b)))
    return rep, per_am, mismatches, notes
