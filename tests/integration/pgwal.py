"""A PostgreSQL 15 WAL reader for the tests (pure Python, standard library).

It reads segment files from a directory and yields decoded records:

    for rec in iter_records(wal_dir, start_lsn, end_lsn):
        rec.lsn, rec.end, rec.rmid, rec.info, rec.blocks, rec.main_data ...

Format: docs in shared/reference/pg15-wal-and-redo.md sections 1.x; the
behaviour follows PostgreSQL 15's xlogreader (page checks, records and
record headers split across pages, XLOG_SWITCH, end of WAL at a zero or
invalid length, OVERWRITE_CONTRECORD).  It is a test oracle, written for
clarity first and for speed second: segments are read whole, records that
sit inside one page are sliced directly, and headers are parsed with
struct.unpack_from.

Also here: parsers for the main data of the records the oracle needs
(Storage CREATE/TRUNCATE, Transaction COMMIT/ABORT and their _PREPARED
forms, Database CREATE/DROP, XLOG CHECKPOINT).
"""
import importlib.util
import os
import struct
from pathlib import Path

BLCKSZ = 8192
XLOG_BLCKSZ = 8192
DEFAULT_SEG_SIZE = 16 << 20
XLOG_PAGE_MAGIC = 0xD110

SIZE_OF_SHORT_PHD = 24
SIZE_OF_LONG_PHD = 40
SIZE_OF_XLOG_RECORD = 24

XLP_FIRST_IS_CONTRECORD = 0x0001
XLP_LONG_HEADER = 0x0002
XLP_BKP_REMOVABLE = 0x0004
XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008
XLP_ALL_FLAGS = 0x000F

XLR_INFO_MASK = 0x0F
XLR_SPECIAL_REL_UPDATE = 0x01
XLR_CHECK_CONSISTENCY = 0x02
XLR_MAX_BLOCK_ID = 32
XLR_BLOCK_ID_DATA_SHORT = 255
XLR_BLOCK_ID_DATA_LONG = 254
XLR_BLOCK_ID_ORIGIN = 253
XLR_BLOCK_ID_TOPLEVEL_XID = 252
XLOG_RECORD_MAX_SIZE = 1020 * 1024 * 1024

BKPBLOCK_FORK_MASK = 0x0F
BKPBLOCK_HAS_IMAGE = 0x10
BKPBLOCK_HAS_DATA = 0x20
BKPBLOCK_WILL_INIT = 0x40
BKPBLOCK_SAME_REL = 0x80

BKPIMAGE_HAS_HOLE = 0x01
BKPIMAGE_APPLY = 0x02
BKPIMAGE_COMPRESS_PGLZ = 0x04
BKPIMAGE_COMPRESS_LZ4 = 0x08
BKPIMAGE_COMPRESS_ZSTD = 0x10
BKPIMAGE_COMPRESSED = (BKPIMAGE_COMPRESS_PGLZ | BKPIMAGE_COMPRESS_LZ4
                       | BKPIMAGE_COMPRESS_ZSTD)

MAIN_FORKNUM, FSM_FORKNUM, VISIBILITYMAP_FORKNUM, INIT_FORKNUM = 0, 1, 2, 3
FORK_NAMES = {0: "main", 1: "fsm", 2: "vm", 3: "init"}

# Resource managers (rmgrlist.h order).
RM_XLOG_ID, RM_XACT_ID, RM_SMGR_ID, RM_CLOG_ID, RM_DBASE_ID = 0, 1, 2, 3, 4
RM_TBLSPC_ID, RM_MULTIXACT_ID, RM_RELMAP_ID, RM_STANDBY_ID = 5, 6, 7, 8
RM_HEAP2_ID, RM_HEAP_ID, RM_BTREE_ID, RM_HASH_ID, RM_GIN_ID = 9, 10, 11, 12, 13
RM_GIST_ID, RM_SEQ_ID, RM_SPGIST_ID, RM_BRIN_ID, RM_COMMIT_TS_ID = (
    14, 15, 16, 17, 18)
RM_REPLORIGIN_ID, RM_GENERIC_ID, RM_LOGICALMSG_ID = 19, 20, 21
RM_MAX_BUILTIN_ID = 21
RMGR_NAMES = ["XLOG", "Transaction", "Storage", "CLOG", "Database",
              "Tablespace", "MultiXact", "RelMap", "Standby", "Heap2", "Heap",
              "Btree", "Hash", "Gin", "Gist", "Sequence", "SPGist", "BRIN",
              "CommitTs", "ReplicationOrigin", "Generic", "LogicalMessage"]

# XLOG record types (info & 0xF0).
XLOG_CHECKPOINT_SHUTDOWN = 0x00
XLOG_CHECKPOINT_ONLINE = 0x10
XLOG_NOOP = 0x20
XLOG_NEXTOID = 0x30
XLOG_SWITCH = 0x40
XLOG_BACKUP_END = 0x50
XLOG_PARAMETER_CHANGE = 0x60
XLOG_RESTORE_POINT = 0x70
XLOG_FPW_CHANGE = 0x80
XLOG_END_OF_RECOVERY = 0x90
XLOG_FPI_FOR_HINT = 0xA0
XLOG_FPI = 0xB0
XLOG_OVERWRITE_CONTRECORD = 0xD0

# Storage, Transaction and Database record types.
XLOG_SMGR_CREATE = 0x10
XLOG_SMGR_TRUNCATE = 0x20
SMGR_TRUNCATE_HEAP = 0x1
SMGR_TRUNCATE_VM = 0x2
SMGR_TRUNCATE_FSM = 0x4

XLOG_XACT_COMMIT = 0x00
XLOG_XACT_PREPARE = 0x10
XLOG_XACT_ABORT = 0x20
XLOG_XACT_COMMIT_PREPARED = 0x30
XLOG_XACT_ABORT_PREPARED = 0x40
XLOG_XACT_ASSIGNMENT = 0x50
XLOG_XACT_INVALIDATIONS = 0x60
XLOG_XACT_OPMASK = 0x70
XLOG_XACT_HAS_INFO = 0x80

XACT_XINFO_HAS_DBINFO = 1 << 0
XACT_XINFO_HAS_SUBXACTS = 1 << 1
XACT_XINFO_HAS_RELFILENODES = 1 << 2
XACT_XINFO_HAS_INVALS = 1 << 3
XACT_XINFO_HAS_TWOPHASE = 1 << 4
XACT_XINFO_HAS_ORIGIN = 1 << 5
XACT_XINFO_HAS_AE_LOCKS = 1 << 6
XACT_XINFO_HAS_GID = 1 << 7
XACT_XINFO_HAS_DROPPED_STATS = 1 << 8

XLOG_DBASE_CREATE_FILE_COPY = 0x00
XLOG_DBASE_CREATE_WAL_LOG = 0x10
XLOG_DBASE_DROP = 0x20

_u16 = struct.Struct("<H").unpack_from
_u32 = struct.Struct("<I").unpack_from
_page_hdr = struct.Struct("<HHIQI").unpack_from      # magic info tli addr rem
_long_hdr = struct.Struct("<QII").unpack_from         # sysid segsz blcksz
_rec_hdr = struct.Struct("<IIQBBHI").unpack_from      # 24-byte XLogRecord
_blk_hdr = struct.Struct("<BBH").unpack_from          # id fork_flags len
_img_hdr = struct.Struct("<HHB").unpack_from          # len hole_off info
_rnode_blk = struct.Struct("<IIII").unpack_from       # spc db rel blkno


def maxalign(n):
    return (n + 7) & ~7


def lsn_str(v):
    return f"{v >> 32:X}/{v & 0xFFFFFFFF:08X}"


def parse_lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def rmgr_name(rmid):
    if rmid <= RM_MAX_BUILTIN_ID:
        return RMGR_NAMES[rmid]
    return f"custom{rmid}"


class WalError(Exception):
    """The WAL is not what this reader understands (not end-of-WAL)."""


class UnsupportedImage(Exception):
    """A block image compressed with a method whose module is missing."""


# ---------------------------------------------------------------------------
# Compression.
# ---------------------------------------------------------------------------
def pglz_decompress(src, rawsize):
    """PostgreSQL's pglz format (src/common/pg_lzcompress.c), decoded from
    the description of the format: a control byte announces 8 items, LSB
    first; a 0 bit is one literal byte, a 1 bit a back-reference tag of 2 or
    3 bytes.  Returns exactly @rawsize bytes or raises ValueError."""
    out = bytearray()
    sp = 0
    slen = len(src)
    while sp < slen and len(out) < rawsize:
        ctrl = src[sp]
        sp += 1
        for _ in range(8):
            if sp >= slen or len(out) >= rawsize:
                break
            if ctrl & 1:
                if sp + 2 > slen:
                    raise ValueError("pglz: truncated tag")
                b0, b1 = src[sp], src[sp + 1]
                sp += 2
                length = (b0 & 0x0F) + 3
                off = ((b0 & 0xF0) << 4) | b1
                if length == 18:
                    if sp >= slen:
                        raise ValueError("pglz: truncated length")
                    length += src[sp]
                    sp += 1
                if off == 0 or off > len(out):
                    raise ValueError("pglz: bad offset")
                length = min(length, rawsize - len(out))
                start = len(out) - off
                if off >= length:
                    out += out[start:start + length]
                else:
                    # Overlapping copy: the pattern of @off bytes repeats.
                    pat = bytes(out[start:])
                    reps = length // off + 1
                    out += (pat * reps)[:length]
            else:
                out.append(src[sp])
                sp += 1
            ctrl >>= 1
    if len(out) != rawsize:
        raise ValueError(f"pglz: got {len(out)} bytes, wanted {rawsize}")
    return bytes(out)


def _lz4_decompress(src, rawsize):
    try:
        import lz4.block
    except ImportError:
        raise UnsupportedImage("lz4 image, and python lz4 is not installed")
    return lz4.block.decompress(src, uncompressed_size=rawsize)


def _zstd_decompress(src, rawsize):
    try:
        import zstandard
    except ImportError:
        raise UnsupportedImage("zstd image, and python zstandard is not "
                               "installed")
    return zstandard.ZstdDecompressor().decompress(src,
                                                   max_output_size=rawsize)


def restore_image(raw, hole_offset, hole_length, bimg_info):
    """The 8192-byte page from a stored block image: decompressed if needed,
    with the hole filled with zeros.  pd_lsn is left as stored (the WAL
    image carries the page's LSN from before the record)."""
    if bimg_info & BKPIMAGE_COMPRESSED:
        want = BLCKSZ - hole_length
        if bimg_info & BKPIMAGE_COMPRESS_PGLZ:
            data = pglz_decompress(raw, want)
        elif bimg_info & BKPIMAGE_COMPRESS_LZ4:
            data = _lz4_decompress(raw, want)
        else:
            data = _zstd_decompress(raw, want)
        if len(data) != want:
            raise WalError("decompressed image has the wrong size")
    else:
        data = raw
    if hole_length == 0:
        return bytes(data)
    return b"".join((data[:hole_offset], bytes(hole_length),
                     data[hole_offset:]))


def image_supported(bimg_info):
    """Whether restore_image can decode an image with these bits here."""
    if bimg_info & BKPIMAGE_COMPRESS_LZ4:
        return _have_module("lz4")
    if bimg_info & BKPIMAGE_COMPRESS_ZSTD:
        return _have_module("zstandard")
    return True


_MODULES = {}


def _have_module(name):
    if name not in _MODULES:
        _MODULES[name] = importlib.util.find_spec(name) is not None
    return _MODULES[name]


# ---------------------------------------------------------------------------
# CRC-32C, optional (pure Python is slow: a few MB/s).
# ---------------------------------------------------------------------------
def _make_crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = None


def crc32c(data, crc=0xFFFFFFFF):
    """Running CRC-32C without the final XOR (PostgreSQL's COMP_CRC32C)."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        _CRC_TABLE = _make_crc_table()
    t = _CRC_TABLE
    for b in bytes(data):
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def record_crc(raw):
    """The CRC PostgreSQL stores in xl_crc for the assembled record."""
    c = crc32c(memoryview(raw)[SIZE_OF_XLOG_RECORD:])
    c = crc32c(memoryview(raw)[:20], c)
    return c ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Decoded records.
# ---------------------------------------------------------------------------
class BlockRef:
    """One block reference of a record."""
    __slots__ = ("id", "spc", "db", "rel", "fork", "blkno", "flags",
                 "has_image", "apply_image", "hole_offset", "hole_length",
                 "bimg_info", "bimg_len", "raw_image", "data_len", "data")

    @property
    def will_init(self):
        return bool(self.flags & BKPBLOCK_WILL_INIT)

    @property
    def has_data(self):
        return bool(self.flags & BKPBLOCK_HAS_DATA)

    @property
    def rnode(self):
        return (self.spc, self.db, self.rel)

    @property
    def key(self):
        """(spc, db, rel, fork, blkno): the block's identity."""
        return (self.spc, self.db, self.rel, self.fork, self.blkno)

    @property
    def compressed(self):
        return bool(self.has_image and self.bimg_info & BKPIMAGE_COMPRESSED)

    @property
    def image_supported(self):
        return self.has_image and image_supported(self.bimg_info)

    @property
    def image(self):
        """The restored 8192-byte page (hole zero-filled, pd_lsn as in the
        WAL), or None without an image.  Raises UnsupportedImage for
        lz4/zstd images when the module is missing."""
        if not self.has_image:
            return None
        return restore_image(self.raw_image, self.hole_offset,
                             self.hole_length, self.bimg_info)

    def __repr__(self):
        img = ""
        if self.has_image:
            img = (f" img(apply={int(self.apply_image)} len={self.bimg_len}"
                   f" hole={self.hole_offset}+{self.hole_length}"
                   f" info={self.bimg_info:#x})")
        return (f"<blk#{self.id} {self.spc}/{self.db}/{self.rel}"
                f" {FORK_NAMES.get(self.fork, self.fork)} {self.blkno}"
                f" flags={self.flags:#x} data={self.data_len}{img}>")


class Record:
    """One decoded WAL record.

    lsn: start (ReadRecPtr); end: EndRecPtr (start + MAXALIGN(total) with
    page headers counted; for XLOG_SWITCH the start of the next segment);
    tot_len, xid, prev, info, rmid, crc; blocks: the block refs in id order;
    main_data: bytes; origin, toplevel_xid: None unless present.
    """
    __slots__ = ("lsn", "end", "tot_len", "xid", "prev", "info", "rmid",
                 "crc", "blocks", "main_data", "origin", "toplevel_xid",
                 "raw")

    @property
    def rmgr(self):
        return rmgr_name(self.rmid)

    @property
    def rectype(self):
        """info & 0xF0: the rmgr's record type bits (flags included)."""
        return self.info & 0xF0

    @property
    def fpi_len(self):
        return sum(b.bimg_len for b in self.blocks if b.has_image)

    @property
    def check_consistency(self):
        return bool(self.info & XLR_CHECK_CONSISTENCY)

    def block(self, block_id):
        for b in self.blocks:
            if b.id == block_id:
                return b
        return None

    def __repr__(self):
        return (f"<{self.rmgr} info={self.info:#04x} lsn={lsn_str(self.lsn)}"
                f" end={lsn_str(self.end)} len={self.tot_len} xid={self.xid}"
                f" blocks={self.blocks} main={len(self.main_data)}>")


def decode_record(raw, lsn=0, keep_raw=False):
    """Decode the assembled bytes of one record (header included, page
    headers and padding left out).  Raises WalError if it is malformed."""
    tot_len, xid, prev, info, rmid, _pad, crc = _rec_hdr(raw, 0)
    rec = Record()
    rec.lsn = lsn
    rec.end = 0
    rec.tot_len = tot_len
    rec.xid = xid
    rec.prev = prev
    rec.info = info
    rec.rmid = rmid
    rec.crc = crc
    rec.origin = None
    rec.toplevel_xid = None
    rec.raw = raw if keep_raw else None
    blocks = []
    p = SIZE_OF_XLOG_RECORD
    remaining = tot_len - SIZE_OF_XLOG_RECORD
    datatotal = 0
    main_len = 0
    max_block_id = -1
    prev_rel = None
    while remaining > datatotal:
        bid = raw[p]
        p += 1
        remaining -= 1
        if bid == XLR_BLOCK_ID_DATA_SHORT:
            main_len = raw[p]
            p += 1
            remaining -= 1
            datatotal += main_len
            break
        if bid == XLR_BLOCK_ID_DATA_LONG:
            main_len = _u32(raw, p)[0]
            p += 4
            remaining -= 4
            datatotal += main_len
            break
        if bid == XLR_BLOCK_ID_ORIGIN:
            rec.origin = _u16(raw, p)[0]
            p += 2
            remaining -= 2
            continue
        if bid == XLR_BLOCK_ID_TOPLEVEL_XID:
            rec.toplevel_xid = _u32(raw, p)[0]
            p += 4
            remaining -= 4
            continue
        if bid > XLR_MAX_BLOCK_ID or bid <= max_block_id:
            raise WalError(f"invalid block id {bid} at {lsn_str(lsn)}")
        max_block_id = bid
        fork_flags, data_len = raw[p], _u16(raw, p + 1)[0]
        p += 3
        remaining -= 3
        b = BlockRef()
        b.id = bid
        b.fork = fork_flags & BKPBLOCK_FORK_MASK
        b.flags = fork_flags
        b.data_len = data_len
        has_data = bool(fork_flags & BKPBLOCK_HAS_DATA)
        if has_data != (data_len > 0):
            raise WalError(f"HAS_DATA/data length mismatch at {lsn_str(lsn)}")
        datatotal += data_len
        if fork_flags & BKPBLOCK_HAS_IMAGE:
            b.has_image = True
            bimg_len, hole_off, bimg_info = _img_hdr(raw, p)
            p += 5
            remaining -= 5
            b.bimg_len = bimg_len
            b.hole_offset = hole_off
            b.bimg_info = bimg_info
            b.apply_image = bool(bimg_info & BKPIMAGE_APPLY)
            if bimg_info & BKPIMAGE_COMPRESSED:
                if bimg_info & BKPIMAGE_HAS_HOLE:
                    b.hole_length = _u16(raw, p)[0]
                    p += 2
                    remaining -= 2
                else:
                    b.hole_length = 0
                if bimg_len == BLCKSZ:
                    raise WalError(f"compressed image of {BLCKSZ} bytes at "
                                   f"{lsn_str(lsn)}")
            else:
                b.hole_length = BLCKSZ - bimg_len
            if bimg_info & BKPIMAGE_HAS_HOLE:
                if hole_off == 0 or b.hole_length == 0 or bimg_len == BLCKSZ:
                    raise WalError(f"bad image hole at {lsn_str(lsn)}")
            elif hole_off != 0 or b.hole_length != 0:
                raise WalError(f"image hole without HAS_HOLE at "
                               f"{lsn_str(lsn)}")
            datatotal += bimg_len
        else:
            b.has_image = False
            b.apply_image = False
            b.bimg_len = 0
            b.hole_offset = 0
            b.hole_length = 0
            b.bimg_info = 0
        if fork_flags & BKPBLOCK_SAME_REL:
            if prev_rel is None:
                raise WalError(f"SAME_REL on the first block at "
                               f"{lsn_str(lsn)}")
            b.spc, b.db, b.rel = prev_rel
            b.blkno = _u32(raw, p)[0]
            p += 4
            remaining -= 4
        else:
            b.spc, b.db, b.rel, b.blkno = _rnode_blk(raw, p)
            p += 16
            remaining -= 16
            prev_rel = (b.spc, b.db, b.rel)
        blocks.append(b)
    if remaining != datatotal:
        raise WalError(f"record lengths disagree at {lsn_str(lsn)}: "
                       f"{remaining} left, {datatotal} announced")
    for b in blocks:
        if b.has_image:
            b.raw_image = raw[p:p + b.bimg_len]
            p += b.bimg_len
        else:
            b.raw_image = None
        if b.data_len:
            b.data = raw[p:p + b.data_len]
            p += b.data_len
        else:
            b.data = b""
    rec.main_data = raw[p:p + main_len] if main_len else b""
    rec.blocks = blocks
    return rec


# ---------------------------------------------------------------------------
# Reading segments.
# ---------------------------------------------------------------------------
def seg_file_name(segno, seg_size=DEFAULT_SEG_SIZE, tli=1):
    per = 0x100000000 // seg_size
    return f"{tli:08X}{segno // per:08X}{segno % per:08X}"


def list_segments(wal_dir, seg_size=DEFAULT_SEG_SIZE):
    """{segno: path} of the segment files in @wal_dir (plain or .partial;
    a plain file wins).  The timeline is ignored: it takes the highest TLI
    for a segment number."""
    per = 0x100000000 // seg_size
    found = {}
    for name in os.listdir(wal_dir):
        base = name[:-8] if name.endswith(".partial") else name
        if len(base) != 24:
            continue
        try:
            tli = int(base[:8], 16)
            segno = int(base[8:16], 16) * per + int(base[16:], 16)
        except ValueError:
            continue
        rank = (tli, not name.endswith(".partial"))
        if segno not in found or rank > found[segno][0]:
            found[segno] = (rank, Path(wal_dir) / name)
    return {k: v[1] for k, v in found.items()}


class _EndOfWal(Exception):
    pass


class _Overwritten(Exception):
    def __init__(self, page):
        self.page = page


class WalReader:
    """Sequential reader over a directory of segments.

    After iteration, .end_reason says why it stopped and .end_lsn where
    (the EndRecPtr of the last record yielded).
    """

    def __init__(self, wal_dir, seg_size=DEFAULT_SEG_SIZE, check_crc=False,
                 keep_raw=False, sysid=None):
        self.wal_dir = Path(wal_dir)
        self.seg_size = seg_size
        self.check_crc = check_crc
        self.keep_raw = keep_raw
        self.sysid = sysid
        self.segments = list_segments(wal_dir, seg_size)
        self._cache = {}
        self.end_reason = None
        self.end_lsn = None
        self.overwritten = []   # starts of records cut off by a crash
        self.count = 0

    # -- pages ---------------------------------------------------------------
    def _segment(self, segno):
        buf = self._cache.get(segno)
        if buf is None:
            path = self.segments.get(segno)
            if path is None:
                name = seg_file_name(segno, self.seg_size)
                raise _EndOfWal(f"no segment {name}")
            with open(path, "rb") as f:
                buf = f.read()      # a short file is usable up to its end
            # Keep at most the two newest segments.
            if len(self._cache) >= 2:
                del self._cache[min(self._cache)]
            self._cache[segno] = buf
        return buf

    def _page_header(self, pageptr):
        """Validate the page header at @pageptr; returns (buf, offset of the
        page in buf, header size, xlp_info, xlp_rem_len)."""
        segno, off = divmod(pageptr, self.seg_size)
        buf = self._segment(segno)
        if off + SIZE_OF_SHORT_PHD > len(buf):
            raise _EndOfWal(f"segment ends before page {lsn_str(pageptr)}")
        magic, info, tli, addr, rem = _page_hdr(buf, off)
        if magic != XLOG_PAGE_MAGIC:
            raise _EndOfWal(f"invalid magic number {magic:04X} at page "
                            f"{lsn_str(pageptr)}")
        if info & ~XLP_ALL_FLAGS:
            raise _EndOfWal(f"invalid info bits {info:04X} at page "
                            f"{lsn_str(pageptr)}")
        if addr != pageptr:
            raise _EndOfWal(f"unexpected pageaddr {lsn_str(addr)} at page "
                            f"{lsn_str(pageptr)}")
        hdr = SIZE_OF_SHORT_PHD
        if off == 0:
            if not info & XLP_LONG_HEADER:
                raise _EndOfWal(f"no long header at {lsn_str(pageptr)}")
            sysid, segsz, blcksz = _long_hdr(buf, off + 24)
            if segsz != self.seg_size or blcksz != XLOG_BLCKSZ:
                raise WalError(f"segment size {segsz}/{blcksz} in "
                               f"{lsn_str(pageptr)}, expected "
                               f"{self.seg_size}/{XLOG_BLCKSZ}")
            if self.sysid is None:
                self.sysid = sysid
            elif sysid != self.sysid:
                raise _EndOfWal(f"system id {sysid} at {lsn_str(pageptr)}")
            hdr = SIZE_OF_LONG_PHD
        elif info & XLP_LONG_HEADER:
            hdr = SIZE_OF_LONG_PHD
        if off + XLOG_BLCKSZ > len(buf):
            raise _EndOfWal(f"segment ends inside page {lsn_str(pageptr)}")
        return buf, off, hdr, info, rem

    # -- records -------------------------------------------------------------
    def _read_record(self, pos, expect_prev):
        """Assemble and decode the record starting at @pos (not at a page
        boundary).  Returns the Record (with .end set)."""
        segno, off = divmod(pos, self.seg_size)
        buf = self._segment(segno)
        page_end = (off | (XLOG_BLCKSZ - 1)) + 1
        avail = page_end - off
        if off + 4 > len(buf):
            raise _EndOfWal(f"segment ends at {lsn_str(pos)}")
        tot_len = _u32(buf, off)[0]
        if tot_len == 0:
            raise _EndOfWal(f"invalid record length at {lsn_str(pos)}: "
                            f"wanted 24, got 0")
        if tot_len < SIZE_OF_XLOG_RECORD:
            raise _EndOfWal(f"invalid record length at {lsn_str(pos)}: "
                            f"wanted 24, got {tot_len}")
        if tot_len > XLOG_RECORD_MAX_SIZE:
            raise _EndOfWal(f"record length {tot_len} at {lsn_str(pos)} "
                            f"too long")
        if tot_len <= avail:
            if off + tot_len > len(buf):
                raise _EndOfWal(f"segment ends inside the record at "
                                f"{lsn_str(pos)}")
            raw = buf[off:off + tot_len]
            end = pos + maxalign(tot_len)
        else:
            chunks = [buf[off:page_end]]
            got = avail
            pageptr = pos + avail
            if avail >= SIZE_OF_XLOG_RECORD:
                self._check_header(chunks[0], pos, expect_prev)
            while True:
                pbuf, poff, hdr, info, rem = self._page_header(pageptr)
                if info & XLP_FIRST_IS_OVERWRITE_CONTRECORD and \
                        not info & XLP_FIRST_IS_CONTRECORD:
                    raise _Overwritten(pageptr)
                if not info & XLP_FIRST_IS_CONTRECORD:
                    raise _EndOfWal(f"there is no contrecord flag at "
                                    f"{lsn_str(pageptr)}")
                if rem == 0 or rem != tot_len - got:
                    raise _EndOfWal(f"invalid contrecord length {rem} "
                                    f"(expected {tot_len - got}) at "
                                    f"{lsn_str(pageptr)}")
                n = min(tot_len - got, XLOG_BLCKSZ - hdr)
                chunks.append(pbuf[poff + hdr:poff + hdr + n])
                got += n
                if got == tot_len:
                    end = pageptr + hdr + maxalign(n)
                    break
                pageptr += XLOG_BLCKSZ
            raw = b"".join(chunks)
        self._check_header(raw, pos, expect_prev)
        if self.check_crc:
            want = _u32(raw, 20)[0]
            if record_crc(raw) != want:
                raise _EndOfWal(f"incorrect resource manager data checksum "
                                f"in record at {lsn_str(pos)}")
        try:
            rec = decode_record(raw, pos, self.keep_raw)
        except (WalError, IndexError, struct.error) as e:
            raise _EndOfWal(f"undecodable record at {lsn_str(pos)}: {e}")
        if rec.rmid == RM_XLOG_ID and rec.info & 0xF0 == XLOG_SWITCH:
            end = end + self.seg_size - 1
            end -= end % self.seg_size
        rec.end = end
        return rec

    def _check_header(self, head, pos, expect_prev):
        tot_len, xid, prev, info, rmid, _pad, _crc = _rec_hdr(head, 0)
        if rmid > RM_MAX_BUILTIN_ID and rmid < 128:
            raise _EndOfWal(f"invalid resource manager ID {rmid} at "
                            f"{lsn_str(pos)}")
        if expect_prev is not None and prev != expect_prev:
            raise _EndOfWal(f"record with incorrect prev-link "
                            f"{lsn_str(prev)} at {lsn_str(pos)}")

    def _skip_to_first_record(self, start):
        """The first record start at or after @start, like
        XLogFindNextRecord: skip a continuation at the page start, then
        read forward."""
        pageptr = start - start % XLOG_BLCKSZ
        while True:
            _buf, _off, hdr, info, rem = self._page_header(pageptr)
            if info & XLP_FIRST_IS_CONTRECORD:
                if rem >= XLOG_BLCKSZ - hdr:
                    # The continuation covers the whole page; try the next.
                    pageptr += XLOG_BLCKSZ
                    continue
                pos = pageptr + hdr + maxalign(rem)
            else:
                pos = pageptr + hdr
            break
        if pos % XLOG_BLCKSZ == 0:
            _b, _o, hdr, _i, _r = self._page_header(pos)
            pos += hdr
        return pos

    def records(self, start_lsn, end_lsn=None):
        """Yield records from the first one starting at or after
        @start_lsn; stop before a record whose bytes reach past @end_lsn
        (as pg_waldump -e does), or at the end of valid WAL.

        @start_lsn need not be a record start: as XLogFindNextRecord does,
        the reader skips the continuation at the start of its page and reads
        forward from there."""
        pos = self._skip_to_first_record(start_lsn)
        prev = None
        first = True
        while True:
            try:
                if pos % XLOG_BLCKSZ == 0:
                    _b, _o, hdr, info, _r = self._page_header(pos)
                    if info & XLP_FIRST_IS_CONTRECORD:
                        raise _EndOfWal(f"contrecord is requested by "
                                        f"{lsn_str(pos)}")
                    pos += hdr
                if end_lsn is not None and pos >= end_lsn:
                    self.end_reason = "end_lsn"
                    break
                rec = self._read_record(pos, None if first else prev)
            except _EndOfWal as e:
                self.end_reason = str(e)
                break
            except _Overwritten as o:
                # The record at @pos was cut off by a crash; the page that
                # should have continued it starts a new record instead
                # (XLOG_OVERWRITE_CONTRECORD).
                self.overwritten.append(pos)
                pos = o.page
                continue
            if end_lsn is not None and \
                    self._unpadded_end(rec) > end_lsn:
                self.end_reason = "end_lsn"
                break
            first = False
            prev = rec.lsn
            pos = rec.end
            if rec.lsn < start_lsn:
                continue         # still looking for the first record
            self.end_lsn = rec.end
            self.count += 1
            yield rec

    def _unpadded_end(self, rec):
        """Position just past the record's last byte (page headers
        counted, no alignment padding)."""
        pos, left = rec.lsn, rec.tot_len
        while True:
            page_end = (pos | (XLOG_BLCKSZ - 1)) + 1
            n = min(left, page_end - pos)
            left -= n
            pos += n
            if left == 0:
                return pos
            hdr = SIZE_OF_LONG_PHD if pos % self.seg_size == 0 \
                else SIZE_OF_SHORT_PHD
            pos += hdr


def iter_records(wal_dir, start_lsn, end_lsn=None, seg_size=DEFAULT_SEG_SIZE,
                 check_crc=False, keep_raw=False):
    """Decoded records of @wal_dir from the first record at or after
    @start_lsn (a record start, or e.g. a segment start, whose leading
    continuation is skipped) up to @end_lsn (exclusive, like pg_waldump -e;
    None: to the end of valid WAL)."""
    return WalReader(wal_dir, seg_size, check_crc=check_crc,
                     keep_raw=keep_raw).records(start_lsn, end_lsn)


def first_lsn(wal_dir, seg_size=DEFAULT_SEG_SIZE):
    """The start LSN of the oldest segment file in @wal_dir."""
    segs = list_segments(wal_dir, seg_size)
    if not segs:
        raise FileNotFoundError(f"no WAL segments in {wal_dir}")
    return min(segs) * seg_size


# ---------------------------------------------------------------------------
# Main-data parsers.
# ---------------------------------------------------------------------------
def parse_smgr_create(data):
    """Storage CREATE: {'rnode': (spc, db, rel), 'fork': n}."""
    spc, db, rel, fork = struct.unpack_from("<IIIi", data, 0)
    return {"rnode": (spc, db, rel), "fork": fork}


def parse_smgr_truncate(data):
    """Storage TRUNCATE: {'blkno', 'rnode', 'flags'} (flags: HEAP 1, VM 2,
    FSM 4)."""
    blkno, spc, db, rel, flags = struct.unpack_from("<IIIIi", data, 0)
    return {"blkno": blkno, "rnode": (spc, db, rel), "flags": flags}


def parse_xact(info, data):
    """COMMIT / ABORT / COMMIT_PREPARED / ABORT_PREPARED main data, in
    xl_xact_parsed order.  Returns a dict: type, xact_time, xinfo,
    db_id/ts_id, subxacts, rels [(spc, db, rel)], dropped_stats
    [(kind, dboid, objoid)], ninvals, twophase_xid, gid, origin_lsn,
    origin_time.  PREPARE and the other types give {'type': ...} only."""
    kind = info & XLOG_XACT_OPMASK
    names = {XLOG_XACT_COMMIT: "COMMIT", XLOG_XACT_PREPARE: "PREPARE",
             XLOG_XACT_ABORT: "ABORT",
             XLOG_XACT_COMMIT_PREPARED: "COMMIT_PREPARED",
             XLOG_XACT_ABORT_PREPARED: "ABORT_PREPARED",
             XLOG_XACT_ASSIGNMENT: "ASSIGNMENT",
             XLOG_XACT_INVALIDATIONS: "INVALIDATIONS"}
    out = {"type": names.get(kind, f"UNKNOWN{kind:#x}")}
    if kind not in (XLOG_XACT_COMMIT, XLOG_XACT_ABORT,
                    XLOG_XACT_COMMIT_PREPARED, XLOG_XACT_ABORT_PREPARED):
        return out
    p = 0
    out["xact_time"] = struct.unpack_from("<q", data, p)[0]
    p += 8
    xinfo = 0
    if info & XLOG_XACT_HAS_INFO:
        xinfo = _u32(data, p)[0]
        p += 4
    out["xinfo"] = xinfo
    out.update(db_id=None, ts_id=None, subxacts=[], rels=[],
               dropped_stats=[], ninvals=0, twophase_xid=None, gid=None,
               origin_lsn=None, origin_time=None)
    if xinfo & XACT_XINFO_HAS_DBINFO:
        out["db_id"], out["ts_id"] = struct.unpack_from("<II", data, p)
        p += 8
    if xinfo & XACT_XINFO_HAS_SUBXACTS:
        n = struct.unpack_from("<i", data, p)[0]
        p += 4
        out["subxacts"] = list(struct.unpack_from(f"<{n}I", data, p))
        p += 4 * n
    if xinfo & XACT_XINFO_HAS_RELFILENODES:
        n = struct.unpack_from("<i", data, p)[0]
        p += 4
        flat = struct.unpack_from(f"<{3 * n}I", data, p)
        out["rels"] = [tuple(flat[i:i + 3]) for i in range(0, 3 * n, 3)]
        p += 12 * n
    if xinfo & XACT_XINFO_HAS_DROPPED_STATS:
        n = struct.unpack_from("<i", data, p)[0]
        p += 4
        out["dropped_stats"] = [struct.unpack_from("<iII", data, p + 12 * i)
                                for i in range(n)]
        p += 12 * n
    if xinfo & XACT_XINFO_HAS_INVALS:
        n = struct.unpack_from("<i", data, p)[0]
        p += 4
        out["ninvals"] = n
        p += 16 * n
    if xinfo & XACT_XINFO_HAS_TWOPHASE:
        out["twophase_xid"] = _u32(data, p)[0]
        p += 4
        if xinfo & XACT_XINFO_HAS_GID:
            z = data.index(b"\0", p)
            out["gid"] = bytes(data[p:z]).decode("utf-8", "replace")
            p = z + 1
    if xinfo & XACT_XINFO_HAS_ORIGIN:
        out["origin_lsn"], out["origin_time"] = struct.unpack_from(
            "<Qq", data, p)
        p += 16
    return out


def parse_dbase(info, data):
    """Database records: CREATE_FILE_COPY {db_id, tablespace_id, src_db_id,
    src_tablespace_id}, CREATE_WAL_LOG {db_id, tablespace_id}, DROP {db_id,
    tablespace_ids}."""
    kind = info & 0xF0
    if kind == XLOG_DBASE_CREATE_FILE_COPY:
        db, ts, sdb, sts = struct.unpack_from("<IIII", data, 0)
        return {"type": "CREATE_FILE_COPY", "db_id": db, "tablespace_id": ts,
                "src_db_id": sdb, "src_tablespace_id": sts}
    if kind == XLOG_DBASE_CREATE_WAL_LOG:
        db, ts = struct.unpack_from("<II", data, 0)
        return {"type": "CREATE_WAL_LOG", "db_id": db, "tablespace_id": ts}
    if kind == XLOG_DBASE_DROP:
        db, n = struct.unpack_from("<Ii", data, 0)
        ts = list(struct.unpack_from(f"<{n}I", data, 8))
        return {"type": "DROP", "db_id": db, "tablespace_ids": ts}
    return {"type": f"UNKNOWN{kind:#x}"}


def parse_checkpoint(data):
    """XLOG CHECKPOINT_SHUTDOWN / CHECKPOINT_ONLINE main data (CheckPoint,
    88 bytes on x86-64)."""
    (redo, tli, prev_tli, fpw) = struct.unpack_from("<QII?", data, 0)
    (next_xid, next_oid, next_multi, next_multi_off, oldest_xid,
     oldest_xid_db, oldest_multi, oldest_multi_db) = struct.unpack_from(
        "<QIIIIIII", data, 24)
    (time_, oldest_cts, newest_cts, oldest_active) = struct.unpack_from(
        "<qIII", data, 64)
    return {"redo": redo, "tli": tli, "prev_tli": prev_tli,
            "full_page_writes": fpw, "next_xid": next_xid,
            "next_oid": next_oid, "next_multi": next_multi,
            "next_multi_offset": next_multi_off, "oldest_xid": oldest_xid,
            "oldest_xid_db": oldest_xid_db, "oldest_multi": oldest_multi,
            "oldest_multi_db": oldest_multi_db, "time": time_,
            "oldest_commit_ts_xid": oldest_cts,
            "newest_commit_ts_xid": newest_cts,
            "oldest_active_xid": oldest_active}


def describe(rec):
    """A short one-line summary (for test failure messages)."""
    return repr(rec)
