/*
 * pgmask.c - PostgreSQL 15's wal_consistency_checking masks (see pgmask.h).
 *
 * Each mask exists because redo cannot reproduce some bytes exactly: hint
 * bits and pd_prune_xid are set without WAL, LP_DEAD marks on index leaves
 * are set by readers, the hole between pd_lower and pd_upper is whatever
 * the primary left there, and GiST's NSN and follow-right flag are set
 * after the record was written.  A mask that PostgreSQL would refuse
 * (elog(ERROR) on a page whose header is out of order) reports false.
 */
#include "tests/tools/pgmask.h"

#include <string.h>

#include "server/core/types.h"
#include "storage/pg/pgdefs.h"

#define PD_HAS_FREE_LINES 0x0001
#define PD_PAGE_FULL      0x0002
#define PD_ALL_VISIBLE    0x0004

#define LP_NORMAL 1

#define HEAP_XMIN_COMMITTED      0x0100
#define HEAP_XMIN_INVALID        0x0200
#define HEAP_XMIN_FROZEN         (HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID)
#define HEAP_XMAX_COMMITTED      0x0400
#define HEAP_XMAX_INVALID        0x0800
#define HEAP_XACT_MASK           0xFFF0
#define SPEC_TOKEN_OFFSET_NUMBER 0xFFFE

#define BTP_LEAF        (1u << 0)
#define BTP_SPLIT_END   (1u << 5)
#define BTP_HAS_GARBAGE (1u << 6)

#define LH_OVERFLOW_PAGE        (1u << 0)
#define LH_BUCKET_PAGE          (1u << 1)
#define LH_BITMAP_PAGE          (1u << 2)
#define LH_META_PAGE            (1u << 3)
#define LH_PAGE_HAS_DEAD_TUPLES (1u << 7)
#define LH_PAGE_TYPE \
    (LH_OVERFLOW_PAGE | LH_BUCKET_PAGE | LH_BITMAP_PAGE | LH_META_PAGE)

#define GIN_DELETED (1u << 2)

#define F_LEAF         (1u << 0)
#define F_FOLLOW_RIGHT (1u << 3)
#define F_HAS_GARBAGE  (1u << 4)

#define BRIN_PAGETYPE_META    0xF091
#define BRIN_PAGETYPE_REGULAR 0xF093
#define BRIN_EVACUATE_PAGE    (1u << 0)

#define MAXALIGN(n) (((n) + 7u) & ~7u)

static uint16_t
lower_of(const uint8_t *p)
{
    return tarn_get_u16(p + PG_PD_LOWER);
}

/* Items on the page (PageGetMaxOffsetNumber). */
static unsigned
max_offset(const uint8_t *p)
{
    uint16_t lower = lower_of(p);

    return lower <= PG_PAGE_HEADER_SIZE ? 0
                                        : (lower - PG_PAGE_HEADER_SIZE) / 4u;
}

/* The special space, if an opaque struct of @p size bytes fits in it. */
static bool
special_of(const uint8_t *p, unsigned size, unsigned *off)
{
    unsigned sp = tarn_get_u16(p + PG_PD_SPECIAL);

    if (sp + size > PG_BLCKSZ)
        return false;
    *off = sp;
    return true;
}

/* ---- bufmask.c ------------------------------------------------------------
 */

static void
mask_lsn_and_checksum(uint8_t *p)
{
    memset(p + PG_PD_LSN, 0, 8);
    memset(p + PG_PD_CHECKSUM, 0, 2);
}

static void
mask_hint_bits(uint8_t *p)
{
    uint16_t flags = tarn_get_u16(p + PG_PD_FLAGS);

    memset(p + PG_PD_PRUNE_XID, 0, 4);
    flags &= (uint16_t) ~(PD_PAGE_FULL | PD_HAS_FREE_LINES | PD_ALL_VISIBLE);
    tarn_put_u16(p + PG_PD_FLAGS, flags);
}

static bool
mask_unused_space(uint8_t *p)
{
    unsigned lower = lower_of(p), upper = tarn_get_u16(p + PG_PD_UPPER);
    unsigned special = tarn_get_u16(p + PG_PD_SPECIAL);

    if (lower > upper || special < upper || lower < PG_PAGE_HEADER_SIZE
        || special > PG_BLCKSZ)
        return false;
    memset(p + lower, 0, upper - lower);
    return true;
}

static bool
mask_lp_flags(uint8_t *p)
{
    unsigned n = max_offset(p);

    if (PG_PAGE_HEADER_SIZE + 4 * n > PG_BLCKSZ)
        return false;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *lp = p + PG_PAGE_HEADER_SIZE + 4 * i;
        uint32_t w = tarn_get_u32(lp);
        if (w & (3u << 15)) /* ItemIdIsUsed: mark it unused */
            tarn_put_u32(lp, w & ~(3u << 15));
    }
    return true;
}

static void
mask_page_content(uint8_t *p)
{
    memset(p + PG_PAGE_HEADER_SIZE, 0, PG_BLCKSZ - PG_PAGE_HEADER_SIZE);
    memset(p + PG_PD_LOWER, 0, 4); /* pd_lower, pd_upper */
}

/* ---- access methods -------------------------------------------------------
 */

static bool
heap_mask(uint8_t *p, uint32_t blkno)
{
    unsigned n;

    mask_lsn_and_checksum(p);
    mask_hint_bits(p);
    if (!mask_unused_space(p))
        return false;
    n = max_offset(p);
    for (unsigned off = 1; off <= n; off++) {
        uint32_t w = tarn_get_u32(p + PG_PAGE_HEADER_SIZE + 4 * (off - 1));
        unsigned lp_off = w & 0x7FFF, lp_flags = (w >> 15) & 3,
                 lp_len = w >> 17;
        if (lp_flags == LP_NORMAL) {
            uint8_t *t = p + lp_off;
            uint16_t infomask;
            if (lp_off + 24 > PG_BLCKSZ)
                return false;
            infomask = tarn_get_u16(t + 20);
            /* Commit hint bits are set without WAL; a frozen xmin is
             * logged, so only the xmax hints go then. */
            if ((infomask & HEAP_XMIN_FROZEN) != HEAP_XMIN_FROZEN)
                infomask &= (uint16_t)~HEAP_XACT_MASK;
            else
                infomask &=
                    (uint16_t) ~(HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED);
            tarn_put_u16(t + 20, infomask);
            memset(t + 8, 0, 4); /* t_cid: not logged */
            /* A speculative insertion's token is in t_ctid; redo puts the
             * tuple's own TID there. */
            if (tarn_get_u16(t + 16) == SPEC_TOKEN_OFFSET_NUMBER) {
                tarn_put_u16(t + 12, (uint16_t)(blkno >> 16));
                tarn_put_u16(t + 14, (uint16_t)blkno);
                tarn_put_u16(t + 16, (uint16_t)off);
            }
        }
        if (lp_len != 0) { /* the alignment padding after the item */
            unsigned a = lp_off + lp_len, b = lp_off + MAXALIGN(lp_len);
            if (b > PG_BLCKSZ)
                b = PG_BLCKSZ;
            if (a < b)
                memset(p + a, 0, b - a);
        }
    }
    return true;
}

static bool
btree_mask(uint8_t *p)
{
    unsigned sp;
    uint16_t flags;

    mask_lsn_and_checksum(p);
    mask_hint_bits(p);
    if (!mask_unused_space(p) || !special_of(p, 16, &sp))
        return false;
    flags = tarn_get_u16(p + sp + 12);
    if ((flags & BTP_LEAF) && !mask_lp_flags(p))
        return false;
    tarn_put_u16(p + sp + 12,
                 flags & (uint16_t) ~(BTP_HAS_GARBAGE | BTP_SPLIT_END));
    tarn_put_u16(p + sp + 14, 0); /* btpo_cycleid */
    return true;
}

static bool
hash_mask(uint8_t *p)
{
    unsigned sp, type;

    mask_lsn_and_checksum(p);
    mask_hint_bits(p);
    if (!mask_unused_space(p) || !special_of(p, 16, &sp))
        return false;
    type = tarn_get_u16(p + sp + 12) & LH_PAGE_TYPE;
    if (type == 0) /* LH_UNUSED_PAGE */
        mask_page_content(p);
    else if ((type == LH_BUCKET_PAGE || type == LH_OVERFLOW_PAGE)
             && !mask_lp_flags(p))
        return false;
    tarn_put_u16(p + sp + 12, tarn_get_u16(p + sp + 12)
                                  & (uint16_t)~LH_PAGE_HAS_DEAD_TUPLES);
    return true;
}

static bool
gin_mask(uint8_t *p)
{
    unsigned sp;

    mask_lsn_and_checksum(p);
    if (!special_of(p, 8, &sp))
        return false;
    mask_hint_bits(p);
    if (tarn_get_u16(p + sp + 6) & GIN_DELETED)
        mask_page_content(p);
    else if (lower_of(p) > PG_PAGE_HEADER_SIZE)
        return mask_unused_space(p);
    return true;
}

static bool
gist_mask(uint8_t *p)
{
    unsigned sp;
    uint16_t flags;

    mask_lsn_and_checksum(p);
    mask_hint_bits(p);
    if (!mask_unused_space(p) || !special_of(p, 16, &sp))
        return false;
    memset(p + sp, 0, 8); /* the NSN */
    flags = tarn_get_u16(p + sp + 12) | F_FOLLOW_RIGHT;
    if ((flags & F_LEAF) && !mask_lp_flags(p))
        return false;
    tarn_put_u16(p + sp + 12, flags & (uint16_t)~F_HAS_GARBAGE);
    return true;
}

static bool
seq_mask(uint8_t *p)
{
    mask_lsn_and_checksum(p);
    return mask_unused_space(p);
}

static bool
spg_mask(uint8_t *p)
{
    mask_lsn_and_checksum(p);
    mask_hint_bits(p);
    if (lower_of(p) >= PG_PAGE_HEADER_SIZE)
        return mask_unused_space(p);
    return true;
}

static bool
brin_mask(uint8_t *p)
{
    unsigned sp, type;

    mask_lsn_and_checksum(p);
    mask_hint_bits(p);
    if (!special_of(p, 8, &sp))
        return false;
    type = tarn_get_u16(p + sp + 6);
    if ((type == BRIN_PAGETYPE_REGULAR
         || (type == BRIN_PAGETYPE_META && lower_of(p) > PG_PAGE_HEADER_SIZE))
        && !mask_unused_space(p))
        return false;
    tarn_put_u16(p + sp + 4,
                 tarn_get_u16(p + sp + 4) & (uint16_t)~BRIN_EVACUATE_PAGE);
    return true;
}

static bool
generic_mask(uint8_t *p)
{
    mask_lsn_and_checksum(p);
    return mask_unused_space(p);
}

bool
pgmask_rmgr_has_mask(uint8_t rmid)
{
    switch (rmid) {
    case PG_RM_HEAP:
    case PG_RM_HEAP2:
    case PG_RM_BTREE:
    case PG_RM_HASH:
    case PG_RM_GIN:
    case PG_RM_GIST:
    case PG_RM_SEQ:
    case PG_RM_SPGIST:
    case PG_RM_BRIN:
    case PG_RM_GENERIC:
        return true;
    default:
        return false;
    }
}

bool
pgmask_page(uint8_t rmid, uint8_t *page, uint32_t blkno)
{
    switch (rmid) {
    case PG_RM_HEAP:
    case PG_RM_HEAP2:
        return heap_mask(page, blkno);
    case PG_RM_BTREE:
        return btree_mask(page);
    case PG_RM_HASH:
        return hash_mask(page);
    case PG_RM_GIN:
        return gin_mask(page);
    case PG_RM_GIST:
        return gist_mask(page);
    case PG_RM_SEQ:
        return seq_mask(page);
    case PG_RM_SPGIST:
        return spg_mask(page);
    case PG_RM_BRIN:
        return brin_mask(page);
    case PG_RM_GENERIC:
        return generic_mask(page);
    default:
        mask_lsn_and_checksum(page);
        return true;
    }
}
