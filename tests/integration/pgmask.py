"""PostgreSQL 15's page mask functions, byte for byte, for the WAL oracle.

wal_consistency_checking compares a replayed page with the image the primary
logged after each rmgr's mask function has blanked what may legitimately
differ (hint bits, LSNs, free space...).  These are the same functions,
written from PG 15's src/backend/access/common/bufmask.c and each access
method's *_mask (heapam.c, nbtxlog.c, hash_xlog.c, ginxlog.c, gistxlog.c,
sequence.c, spgxlog.c, brin_xlog.c, generic_xlog.c).

Every mask takes (page: bytes-like of 8192 bytes, blkno: int) and returns a
new bytes object.  Where PostgreSQL would elog(ERROR) (an invalid
pd_lower/pd_upper/pd_special, e.g. an all-zero page given to heap_mask),
MaskError is raised.

    mask_for_rmgr(rmid, am=None) -> mask function for a record's rmgr
    mask_for_am(amname)          -> mask function for a page of that AM
    minimal_mask(page, blkno)    -> only pd_lsn and pd_checksum
    diff_report(a, b)            -> short description of the differences
"""
import struct

BLCKSZ = 8192
SIZE_OF_PAGE_HEADER = 24
MASK_MARKER = 0

# pd_flags
PD_HAS_FREE_LINES = 0x0001
PD_PAGE_FULL = 0x0002
PD_ALL_VISIBLE = 0x0004

# line pointer flags
LP_UNUSED, LP_NORMAL, LP_REDIRECT, LP_DEAD = 0, 1, 2, 3

# heap tuple header
HEAP_XMIN_COMMITTED = 0x0100
HEAP_XMIN_INVALID = 0x0200
HEAP_XMIN_FROZEN = HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID
HEAP_XMAX_COMMITTED = 0x0400
HEAP_XMAX_INVALID = 0x0800
HEAP_XACT_MASK = 0xFFF0
SPEC_TOKEN_OFFSET_NUMBER = 0xFFFE

# btree
BTP_LEAF = 1 << 0
BTP_SPLIT_END = 1 << 5
BTP_HAS_GARBAGE = 1 << 6
# hash
LH_OVERFLOW_PAGE = 1 << 0
LH_BUCKET_PAGE = 1 << 1
LH_BITMAP_PAGE = 1 << 2
LH_META_PAGE = 1 << 3
LH_PAGE_HAS_DEAD_TUPLES = 1 << 7
LH_PAGE_TYPE = LH_OVERFLOW_PAGE | LH_BUCKET_PAGE | LH_BITMAP_PAGE | \
    LH_META_PAGE
LH_UNUSED_PAGE = 0
# gin
GIN_DELETED = 1 << 2
# gist
F_LEAF = 1 << 0
F_FOLLOW_RIGHT = 1 << 3
F_HAS_GARBAGE = 1 << 4
# brin
BRIN_PAGETYPE_META = 0xF091
BRIN_PAGETYPE_REVMAP = 0xF092
BRIN_PAGETYPE_REGULAR = 0xF093
BRIN_EVACUATE_PAGE = 1 << 0

_H = struct.Struct("<H")
_I = struct.Struct("<I")
_hdr = struct.Struct("<IIHHHHHHI")   # lsn hi, lsn lo, cksum, flags, lower,
#                                      upper, special, version, prune_xid


class MaskError(ValueError):
    """PostgreSQL would have raised an error masking this page."""


def maxalign(n):
    return (n + 7) & ~7


def page_header(page):
    """dict of the page header fields."""
    (hi, lo, cksum, flags, lower, upper, special, version,
     prune) = _hdr.unpack_from(page, 0)
    return {"lsn": (hi << 32) | lo, "checksum": cksum, "flags": flags,
            "lower": lower, "upper": upper, "special": special,
            "pagesize_version": version, "prune_xid": prune}


def is_new_page(page):
    """PageIsNew: pd_upper == 0 (an all-zero page, never initialized)."""
    return _H.unpack_from(page, 14)[0] == 0


def _max_offset(page):
    lower = _H.unpack_from(page, 12)[0]
    if lower <= SIZE_OF_PAGE_HEADER:
        return 0
    return (lower - SIZE_OF_PAGE_HEADER) // 4


def _special(page, size):
    """Offset of the special space (PageGetSpecialPointer), checked so an
    opaque struct of @size bytes fits in the page."""
    special = _H.unpack_from(page, 16)[0]
    if special + size > BLCKSZ:
        raise MaskError(f"special space at {special} cannot hold {size} "
                        f"bytes")
    return special


# ---------------------------------------------------------------------------
# bufmask.c
# ---------------------------------------------------------------------------
def mask_page_lsn_and_checksum(page):
    page[0:8] = bytes(8)     # pd_lsn
    page[8:10] = bytes(2)    # pd_checksum


def mask_page_hint_bits(page):
    page[20:24] = bytes(4)   # pd_prune_xid
    flags = _H.unpack_from(page, 10)[0]
    flags &= ~(PD_PAGE_FULL | PD_HAS_FREE_LINES | PD_ALL_VISIBLE)
    _H.pack_into(page, 10, flags)


def mask_unused_space(page):
    lower, upper, special = struct.unpack_from("<HHH", page, 12)
    if lower > upper or special < upper or lower < SIZE_OF_PAGE_HEADER \
            or special > BLCKSZ:
        raise MaskError(f"invalid page pd_lower {lower} pd_upper {upper} "
                        f"pd_special {special}")
    page[lower:upper] = bytes(upper - lower)


def mask_lp_flags(page):
    maxoff = _max_offset(page)
    if maxoff == 0:
        return
    end = SIZE_OF_PAGE_HEADER + 4 * maxoff
    if end > BLCKSZ:
        raise MaskError(f"line pointer array ends past the page ({end})")
    lps = memoryview(page)[SIZE_OF_PAGE_HEADER:end].cast("I")
    clear = ~(3 << 15) & 0xFFFFFFFF
    for i in range(maxoff):
        w = lps[i]
        if w & (3 << 15):          # ItemIdIsUsed
            lps[i] = w & clear
    lps.release()


def mask_page_content(page):
    page[SIZE_OF_PAGE_HEADER:BLCKSZ] = bytes(BLCKSZ - SIZE_OF_PAGE_HEADER)
    page[12:14] = bytes(2)   # pd_lower
    page[14:16] = bytes(2)   # pd_upper


# ---------------------------------------------------------------------------
# Access methods.
# ---------------------------------------------------------------------------
def _start(page):
    if len(page) != BLCKSZ:
        raise MaskError(f"page of {len(page)} bytes")
    return bytearray(page)


def minimal_mask(page, blkno=0):
    """pd_lsn and pd_checksum only (for XLOG FPI images, which PostgreSQL
    never compares)."""
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    return bytes(p)


def heap_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_page_hint_bits(p)
    mask_unused_space(p)
    maxoff = _max_offset(p)
    for off in range(1, maxoff + 1):
        w = _I.unpack_from(p, SIZE_OF_PAGE_HEADER + 4 * (off - 1))[0]
        lp_off = w & 0x7FFF
        lp_flags = (w >> 15) & 3
        lp_len = w >> 17
        if lp_flags == LP_NORMAL:
            if lp_off + 24 > BLCKSZ:
                raise MaskError(f"item {off} at {lp_off} runs off the page")
            infomask = _H.unpack_from(p, lp_off + 20)[0]
            if (infomask & HEAP_XMIN_FROZEN) != HEAP_XMIN_FROZEN:
                infomask &= ~HEAP_XACT_MASK & 0xFFFF
            else:
                infomask &= ~(HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED) & 0xFFFF
            _H.pack_into(p, lp_off + 20, infomask)
            p[lp_off + 8:lp_off + 12] = bytes(4)        # t_cid
            if _H.unpack_from(p, lp_off + 16)[0] == SPEC_TOKEN_OFFSET_NUMBER:
                struct.pack_into("<HHH", p, lp_off + 12, (blkno >> 16) &
                                 0xFFFF, blkno & 0xFFFF, off)
        if lp_len != 0:
            padlen = maxalign(lp_len) - lp_len
            if padlen > 0:
                a = lp_off + lp_len
                b = min(a + padlen, BLCKSZ)
                if a < b:
                    p[a:b] = bytes(b - a)
    return bytes(p)


def btree_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_page_hint_bits(p)
    mask_unused_space(p)
    sp = _special(p, 16)
    flags = _H.unpack_from(p, sp + 12)[0]
    if flags & BTP_LEAF:
        mask_lp_flags(p)
    flags &= ~(BTP_HAS_GARBAGE | BTP_SPLIT_END) & 0xFFFF
    _H.pack_into(p, sp + 12, flags)
    _H.pack_into(p, sp + 14, 0)          # btpo_cycleid
    return bytes(p)


def hash_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_page_hint_bits(p)
    mask_unused_space(p)
    sp = _special(p, 16)
    pagetype = _H.unpack_from(p, sp + 12)[0] & LH_PAGE_TYPE
    if pagetype == LH_UNUSED_PAGE:
        mask_page_content(p)
    elif pagetype in (LH_BUCKET_PAGE, LH_OVERFLOW_PAGE):
        mask_lp_flags(p)
    flags = _H.unpack_from(p, sp + 12)[0]
    _H.pack_into(p, sp + 12, flags & ~LH_PAGE_HAS_DEAD_TUPLES & 0xFFFF)
    return bytes(p)


def gin_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    sp = _special(p, 8)
    mask_page_hint_bits(p)
    if _H.unpack_from(p, sp + 6)[0] & GIN_DELETED:
        mask_page_content(p)
    elif _H.unpack_from(p, 12)[0] > SIZE_OF_PAGE_HEADER:
        mask_unused_space(p)
    return bytes(p)


def gist_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_page_hint_bits(p)
    mask_unused_space(p)
    sp = _special(p, 16)
    p[sp:sp + 8] = bytes(8)                      # NSN
    flags = _H.unpack_from(p, sp + 12)[0] | F_FOLLOW_RIGHT
    _H.pack_into(p, sp + 12, flags)
    if flags & F_LEAF:
        mask_lp_flags(p)
    flags = _H.unpack_from(p, sp + 12)[0] & ~F_HAS_GARBAGE & 0xFFFF
    _H.pack_into(p, sp + 12, flags)
    return bytes(p)


def seq_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_unused_space(p)
    return bytes(p)


def spg_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_page_hint_bits(p)
    if _H.unpack_from(p, 12)[0] >= SIZE_OF_PAGE_HEADER:
        mask_unused_space(p)
    return bytes(p)


def brin_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_page_hint_bits(p)
    sp = _special(p, 8)
    pagetype = _H.unpack_from(p, sp + 6)[0]
    if pagetype == BRIN_PAGETYPE_REGULAR or (
            pagetype == BRIN_PAGETYPE_META and
            _H.unpack_from(p, 12)[0] > SIZE_OF_PAGE_HEADER):
        mask_unused_space(p)
    flags = _H.unpack_from(p, sp + 4)[0] & ~BRIN_EVACUATE_PAGE & 0xFFFF
    _H.pack_into(p, sp + 4, flags)
    return bytes(p)


def generic_mask(page, blkno):
    p = _start(page)
    mask_page_lsn_and_checksum(p)
    mask_unused_space(p)
    return bytes(p)


# ---------------------------------------------------------------------------
# Choosing a mask.
# ---------------------------------------------------------------------------
RMGR_MASKS = {
    9: heap_mask,       # Heap2
    10: heap_mask,      # Heap
    11: btree_mask,
    12: hash_mask,
    13: gin_mask,
    14: gist_mask,
    15: seq_mask,
    16: spg_mask,
    17: brin_mask,
    20: generic_mask,
}

AM_MASKS = {
    "heap": heap_mask,
    "heap2": heap_mask,
    "toast": heap_mask,
    "btree": btree_mask,
    "hash": hash_mask,
    "gin": gin_mask,
    "gist": gist_mask,
    "spgist": spg_mask,
    "brin": brin_mask,
    "sequence": seq_mask,
    "seq": seq_mask,
    "generic": generic_mask,
    "bloom": generic_mask,
    "minimal": minimal_mask,
    "xlog": minimal_mask,
}


def mask_for_rmgr(rmid, am=None):
    """The mask PostgreSQL applies for a record of rmgr @rmid (the rmgr's
    rm_mask: chosen by the record, not by the kind of page).  XLOG (FPI)
    and the other rmgrs without a mask get minimal_mask, unless @am names
    the page's access method, in which case XLOG images get that AM's mask
    (useful when comparing an FPI-only page with a relation file page)."""
    fn = RMGR_MASKS.get(rmid)
    if fn is not None:
        return fn
    if am is not None:
        return mask_for_am(am)
    return minimal_mask


def mask_for_am(amname):
    """The mask for a page read from a relation of access method @amname
    ("heap", "btree", "hash", "gin", "gist", "spgist", "brin", "sequence",
    "generic"/"bloom", "minimal").  Visibility-map pages are masked by the
    rmgr that logs them (Heap2, i.e. "heap")."""
    try:
        return AM_MASKS[amname.lower()]
    except KeyError:
        raise KeyError(f"no mask for access method {amname!r}")


# ---------------------------------------------------------------------------
# Reporting.
# ---------------------------------------------------------------------------
_HDR_FIELDS = [(0, 8, "pd_lsn"), (8, 10, "pd_checksum"), (10, 12, "pd_flags"),
               (12, 14, "pd_lower"), (14, 16, "pd_upper"),
               (16, 18, "pd_special"), (18, 20, "pd_pagesize_version"),
               (20, 24, "pd_prune_xid")]


def page_area(page, off):
    """Which part of @page byte @off is in: header field, line pointer,
    free space, tuple data (with the item number) or special space."""
    if off < SIZE_OF_PAGE_HEADER:
        for a, b, name in _HDR_FIELDS:
            if a <= off < b:
                return f"header {name}"
    lower, upper, special = struct.unpack_from("<HHH", page, 12)
    sane = (SIZE_OF_PAGE_HEADER <= lower <= upper <= special <= BLCKSZ)
    if not sane:
        return "page body (invalid header)"
    if off < lower:
        n = (off - SIZE_OF_PAGE_HEADER) // 4 + 1
        return f"line pointer {n}"
    if off < upper:
        return "free space"
    if off >= special:
        return f"special space +{off - special}"
    for i in range(_max_offset(page)):
        w = _I.unpack_from(page, SIZE_OF_PAGE_HEADER + 4 * i)[0]
        lp_off, lp_len = w & 0x7FFF, w >> 17
        if lp_len and lp_off <= off < lp_off + maxalign(lp_len):
            return f"tuple data, item {i + 1} +{off - lp_off}"
    return "tuple data (no item)"


def diff_report(a, b, limit=4):
    """A short description of how pages @a and @b differ ('' if equal):
    the number of differing bytes, then up to @limit differing runs with
    offset, page area (judged from @a) and the bytes of each side."""
    if len(a) != len(b):
        return f"lengths differ: {len(a)} vs {len(b)}"
    if a == b:
        return ""
    runs = []
    ndiff = 0
    i = 0
    n = len(a)
    # Compare 64-byte chunks first so equal stretches are skipped quickly.
    while i < n:
        if a[i:i + 64] == b[i:i + 64]:
            i += 64
            continue
        end = min(i + 64, n)
        j = i
        while j < end:
            if a[j] != b[j]:
                k = j
                while k < n and a[k] != b[k]:
                    k += 1
                ndiff += k - j
                runs.append((j, k))
                j = k
            else:
                j += 1
        i = end if j <= end else j
    parts = [f"{ndiff} bytes differ in {len(runs)} runs"]
    for s, e in runs[:limit]:
        e2 = min(e, s + 16)
        more = "..." if e > e2 else ""
        parts.append(f"@{s:#06x}+{e - s} [{page_area(a, s)}]: "
                     f"{bytes(a[s:e2]).hex()}{more} vs "
                     f"{bytes(b[s:e2]).hex()}{more}")
    if len(runs) > limit:
        parts.append(f"... {len(runs) - limit} more runs")
    return "; ".join(parts)
