"""Shared by the tests that compare pages with PostgreSQL's own: running
SQL files, listing every relation of a compute with its access method and
file, reading relation forks from files, and the three page changes that
PostgreSQL makes without WAL (so no page server can reproduce them), each
recognised by exactly where the bytes differ.
"""
import struct
import subprocess
from pathlib import Path

import pgmask
import pgwal
from pg import PG_BIN, lsn

RELATIONS_SQL = """
SELECT c.relname, c.relkind,
       CASE WHEN c.relkind = 'S' THEN 'sequence'
            ELSE coalesce(a.amname, 'heap') END,
       pg_relation_filepath(c.oid)
FROM pg_class c LEFT JOIN pg_am a ON a.oid = c.relam
WHERE c.relkind IN ('r', 'i', 'S', 't', 'm') AND c.relpersistence = 'p'
ORDER BY 4
"""


def psql_file(c, path, db="postgres", timeout=300):
    p = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-v",
                        "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                        str(c.port), "-U", "postgres", "-d", db, "-f",
                        str(path)],
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"psql -f {path}: {p.stderr}"
    return p.stdout


def insert_lsn(c):
    return lsn(c.psql("SELECT pg_current_wal_insert_lsn()"))


def list_relations(c):
    """Every permanent relation with storage, in every database that takes
    connections: dicts with db, name, kind, am, path, rnode."""
    rels = {}
    dbs = c.psql("SELECT datname FROM pg_database WHERE datallowconn "
                 "ORDER BY 1").split()
    for db in dbs:
        for line in c.psql(RELATIONS_SQL, db=db).splitlines():
            name, kind, am, path = line.split("|")
            parts = path.split("/")
            if parts[0] == "global":
                rnode = (1664, 0, int(parts[1]))
            elif parts[0] == "base":
                rnode = (1663, int(parts[1]), int(parts[2]))
            else:
                continue          # no other tablespaces in these tests
            rels.setdefault(path, {"db": db, "name": name, "kind": kind,
                                   "am": am, "path": path, "rnode": rnode})
    return list(rels.values()), dbs


def fork_file_blocks(datadir, path, fork):
    """The blocks of one relation fork, from its segment files."""
    suffix = {0: "", 1: "_fsm", 2: "_vm", 3: "_init"}[fork]
    base = Path(datadir) / (path + suffix)
    if not base.exists():
        return None
    data = bytearray(base.read_bytes())
    n = 1
    while (Path(f"{base}.{n}")).exists():
        data += Path(f"{base}.{n}").read_bytes()
        n += 1
    return [bytes(data[i:i + pgwal.BLCKSZ])
            for i in range(0, len(data), pgwal.BLCKSZ)]


FIRST_NORMAL_OID = 16384
SEQ_DATA = 24     # t_hoff of a sequence tuple (no nulls, no oid)


def sequence_log_ahead(file_page, expected):
    """True if two sequence pages differ only in last_value / log_cnt of
    the tuple, the file showing fewer values consumed than the WAL image:
    nextval() logs the state 32 fetches ahead, then writes the real one."""
    lp = struct.unpack_from("<I", file_page, 24)[0]
    off = (lp & 0x7FFF) + SEQ_DATA
    a, b = bytearray(file_page), bytearray(expected)
    a[off:off + 16] = bytes(16)
    b[off:off + 16] = bytes(16)
    if a != b:
        return False
    last_f, cnt_f = struct.unpack_from("<qq", file_page, off)
    last_w, cnt_w = struct.unpack_from("<qq", expected, off)
    return cnt_w == 0 and last_f <= last_w


SPGIST_LUP_CACHE = (28, 28 + 8 * 8)   # after the header and magicNumber


def spgist_meta_cache_only(a, b):
    """SpGistUpdateMetaPage() stores the backend's cache of last-used
    pages (8 x {blkno, freeSpace}) in the meta page without WAL: true if
    the pages differ only there."""
    lo, hi = SPGIST_LUP_CACHE
    return a[:lo] == b[:lo] and a[hi:] == b[hi:]


def vm_bits_cut_as_hole(e, file_page, expected):
    """RelationCopyStorageUsingBuffer (CREATE DATABASE ... WAL_LOG) logs
    every page with log_newpage_buffer(page_std = true), VM pages too: a
    VM page has pd_lower 24 and pd_upper 8192, so the whole bitmap is the
    "hole" and the XLOG FPI restores it as zeros, while the primary's copy
    keeps its bits.  True if that explains the difference."""
    if e.rmid != pgwal.RM_XLOG_ID or e.hole_offset != 24 or \
            e.hole_offset + e.hole_length != pgwal.BLCKSZ:
        return False
    a = pgmask.minimal_mask(file_page)
    b = pgmask.minimal_mask(expected)
    return a[:24] == b[:24] and b[24:] == bytes(pgwal.BLCKSZ - 24)
