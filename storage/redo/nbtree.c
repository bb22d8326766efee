/*
 * nbtree.c - redo of the B-tree resource manager, as PostgreSQL 15's
 * btree_redo() changes each page.
 *
 * Each record is applied to one block (rmgr.h), so every record type is
 * split by block id:
 *
 *   INSERT_*      0 the page inserted into; 1 the child whose split the
 *                 downlink completes (UPPER, META); 2 the metapage (META)
 *   SPLIT_L/R     0 the left (original) page, rebuilt from its old items;
 *                 1 the new right page (will_init, from the record's copy
 *                 of its tuple area); 2 the page right of the new one
 *                 (its left link); 3 the child whose split completes
 *   DEDUP         0 the leaf, rebuilt with the record's merge intervals
 *   VACUUM/DELETE 0 the leaf: posting lists shrunk, then items removed
 *   HALFDEAD      0 the leaf (will_init); 1 the parent losing a downlink
 *   UNLINK        0 the target (will_init); 1 its left and 2 its right
 *                 sibling; 3 the half-dead leaf (will_init); 4 metapage
 *   NEWROOT       0 the root (will_init); 1 the left child; 2 metapage
 *   META_CLEANUP  0 the metapage
 *
 * A page PostgreSQL rebuilds on a scratch page (split, dedup) is rebuilt
 * the same way here: a zeroed page with the old special space, items
 * added in order, so the padding bytes and free space match.  REUSE_PAGE
 * changes no page.  Every check PostgreSQL makes with elog(PANIC) or
 * elog(ERROR) (which is fatal in redo), and every place where a damaged
 * record or page would make it read or write out of bounds, becomes
 * TARN_ECORRUPT naming the record type.
 */
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

/* Record types (info & 0xF0). */
#define BT_INSERT_LEAF  0x00
#define BT_INSERT_UPPER 0x10
#define BT_INSERT_META  0x20
#define BT_SPLIT_L      0x30
#define BT_SPLIT_R      0x40
#define BT_INSERT_POST  0x50
#define BT_DEDUP        0x60
#define BT_DELETE       0x70
#define BT_UNLINK       0x80
#define BT_UNLINK_META  0x90
#define BT_NEWROOT      0xA0
#define BT_HALFDEAD     0xB0
#define BT_VACUUM       0xC0
#define BT_REUSE_PAGE   0xD0
#define BT_META_CLEANUP 0xE0

/* BTPageOpaqueData: the 16-byte special space. */
#define BT_OPAQUE_SIZE 16
#define BT_SPECIAL     (PG_BLCKSZ - BT_OPAQUE_SIZE)
enum { O_PREV = 0, O_NEXT = 4, O_LEVEL = 8, O_FLAGS = 12, O_CYCLE = 14 };
#define P_NONE 0u

#define BTP_LEAF             0x0001
#define BTP_ROOT             0x0002
#define BTP_DELETED          0x0004
#define BTP_META             0x0008
#define BTP_HALF_DEAD        0x0010
#define BTP_HAS_GARBAGE      0x0040
#define BTP_INCOMPLETE_SPLIT 0x0080
#define BTP_HAS_FULLXID      0x0100

/* BTMetaPageData, at the page contents (byte 24). */
#define BTREE_MAGIC 0x053162
enum {
    M_MAGIC = 0,
    M_VERSION = 4,
    M_ROOT = 8,
    M_LEVEL = 12,
    M_FASTROOT = 16,
    M_FASTLEVEL = 20,
    M_DELPAGES = 24,
    M_HEAPTUPLES = 32,
    M_ALLEQUAL = 40,
    M_SIZE = 48
};
#define XL_META_SIZE 25 /* xl_btree_metadata up to allequalimage */

/* IndexTupleData: ItemPointerData t_tid (bi_hi, bi_lo, ip_posid), t_info. */
#define IT_HDR           8
#define IT_INFO          6
#define INDEX_SIZE_MASK  0x1FFF
#define INDEX_ALT_TID    0x2000
#define BT_OFFSET_MASK   0x0FFF
#define BT_IS_POSTING    0x2000
#define TID_SIZE         6
#define MAX_INDEX_TUPLES ((PG_BLCKSZ - PG_PAGE_HEADER_SIZE) / (IT_HDR + 4))
/* BTMaxItemSize(): the dedup redo's posting list limit. */
#define BT_MAX_ITEM_SIZE                                   \
    ((PG_BLCKSZ - pg_maxalign(PG_PAGE_HEADER_SIZE + 3 * 4) \
      - pg_maxalign(BT_OPAQUE_SIZE))                       \
         / 3                                               \
     & ~(size_t)7)

static const char *const bt_names[16] = {
    "INSERT_LEAF", "INSERT_UPPER",     "INSERT_META",  "SPLIT_L",
    "SPLIT_R",     "INSERT_POST",      "DEDUP",        "DELETE",
    "UNLINK_PAGE", "UNLINK_PAGE_META", "NEWROOT",      "MARK_PAGE_HALFDEAD",
    "VACUUM",      "REUSE_PAGE",       "META_CLEANUP", "unknown"};

/* ---- index tuples ----------------------------------------------------------
 */

static unsigned
it_size(const uint8_t *t)
{
    return tarn_get_u16(t + IT_INFO) & INDEX_SIZE_MASK;
}

static uint32_t
it_blk(const uint8_t *t)
{
    return (uint32_t)tarn_get_u16(t) << 16 | tarn_get_u16(t + 2);
}

static void
it_set_blk(uint8_t *t, uint32_t blk)
{
    tarn_put_u16(t, (uint16_t)(blk >> 16));
    tarn_put_u16(t + 2, (uint16_t)blk);
}

static uint16_t
it_posid(const uint8_t *t)
{
    return tarn_get_u16(t + 4);
}

static bool
it_is_posting(const uint8_t *t)
{
    return (tarn_get_u16(t + IT_INFO) & INDEX_ALT_TID)
           && (it_posid(t) & BT_IS_POSTING);
}

static unsigned
it_npost(const uint8_t *t)
{
    return it_posid(t) & BT_OFFSET_MASK;
}

/* A posting list tuple whose list lies inside its IndexTupleSize. */
static bool
posting_ok(const uint8_t *t)
{
    uint32_t off = it_blk(t);

    return it_is_posting(t) && off >= IT_HDR && it_npost(t) >= 1
           && off + (size_t)it_npost(t) * TID_SIZE <= it_size(t);
}

/* BTreeTupleSetPosting(). */
static void
it_set_posting(uint8_t *t, unsigned nhtids, uint32_t keysize)
{
    tarn_put_u16(t + IT_INFO, tarn_get_u16(t + IT_INFO) | INDEX_ALT_TID);
    tarn_put_u16(t + 4, (uint16_t)(nhtids | BT_IS_POSTING));
    it_set_blk(t, keysize);
}

/*
 * The item at @p off whatever its line pointer flags (leaf items may be
 * LP_DEAD), as long as it has storage inside the page and holds a whole
 * index tuple of IndexTupleSize no larger than the line pointer's length.
 */
static uint8_t *
bt_item(uint8_t *page, unsigned off, unsigned *len)
{
    uint32_t lp;
    unsigned o, l;

    if (!pg_page_header_ok(page) || off == 0 || off > pg_page_max_offset(page))
        return NULL;
    lp = pg_lp_get(page, off);
    o = pg_lp_off(lp);
    l = pg_lp_len(lp);
    if (l < IT_HDR || o < pg_page_lower(page) || o + pg_maxalign(l) > PG_BLCKSZ
        || it_size(page + o) > l || it_size(page + o) < IT_HDR)
        return NULL;
    *len = l;
    return page + o;
}

/* ---- pages ------------------------------------------------------------------
 */

static uint8_t *
opaque(uint8_t *page)
{
    return page + BT_SPECIAL;
}

static uint16_t
bt_flags(const uint8_t *page)
{
    return tarn_get_u16(page + BT_SPECIAL + O_FLAGS);
}

static void
bt_set_flags(uint8_t *page, uint16_t f)
{
    tarn_put_u16(page + BT_SPECIAL + O_FLAGS, f);
}

/* The page must be a B-tree page PostgreSQL can work on. */
static tarn_rc
need_bt_page(const redo_ctx *c, const char *type)
{
    return redo_need_index_page(c, type, BT_SPECIAL, "a B-tree page");
}

/* _bt_pageinit() and the opaque fields every redo that rebuilds a page
 * sets. */
static void
bt_init(uint8_t *page, uint32_t prev, uint32_t next, uint32_t level,
        uint16_t flags)
{
    uint8_t *o = opaque(page);

    pg_page_init(page, BT_OPAQUE_SIZE);
    tarn_put_u32(o + O_PREV, prev);
    tarn_put_u32(o + O_NEXT, next);
    tarn_put_u32(o + O_LEVEL, level);
    tarn_put_u16(o + O_FLAGS, flags);
    tarn_put_u16(o + O_CYCLE, 0);
}

/* PageGetTempPageCopySpecial(). */
static void
temp_copy_special(uint8_t *tmp, const uint8_t *page)
{
    pg_page_init(tmp, BT_OPAQUE_SIZE);
    memcpy(tmp + BT_SPECIAL, page + BT_SPECIAL, BT_OPAQUE_SIZE);
}

static tarn_rc
add(const redo_ctx *c, const char *type, uint8_t *page, const uint8_t *item,
    size_t size, unsigned off, const char *what)
{
    if (pg_page_add_item(page, item, size, off, 0) == 0)
        return redo_fail(c, type, "failed to add %s (%zu bytes) at offset %u",
                         what, size, off);
    return TARN_OK;
}

/* The data of block @p id of the record. */
static const walrec_block *
blk(const redo_ctx *c, unsigned id)
{
    return id <= PG_XLR_MAX_BLOCK_ID && c->r->blocks[id].in_use
               ? &c->r->blocks[id]
               : NULL;
}

/*
 * _bt_restore_page(): a fresh page gets back the tuple area @p from..+len
 * of the page as it was logged, items highest offset first, each added
 * with its aligned size.
 */
static tarn_rc
restore_page(const redo_ctx *c, const char *type, uint8_t *page,
             const uint8_t *from, size_t len)
{
    size_t pos[MAX_INDEX_TUPLES], sz[MAX_INDEX_TUPLES], at = 0;
    unsigned n = 0;
    tarn_rc rc;

    while (at < len) {
        size_t s;
        if (len - at < IT_HDR || n == MAX_INDEX_TUPLES)
            return redo_fail(c, type, "tuple data cut short at byte %zu of %zu",
                             at, len);
        s = pg_maxalign(it_size(from + at));
        if (s < IT_HDR || s > len - at)
            return redo_fail(c, type,
                             "tuple of %zu bytes at byte %zu of %zu of data", s,
                             at, len);
        pos[n] = at;
        sz[n++] = s;
        at += s;
    }
    for (unsigned i = n; i-- > 0;)
        if ((rc = add(c, type, page, from + pos[i], sz[i], n - i, "item"))
            != TARN_OK)
            return rc;
    return TARN_OK;
}

/* _bt_restore_meta(): the metapage from the block's xl_btree_metadata. */
static tarn_rc
restore_meta(const redo_ctx *c, const char *type)
{
    const uint8_t *d = c->b->data;
    uint8_t *m = c->page + PG_PAGE_HEADER_SIZE;

    if (c->b->data_len < XL_META_SIZE)
        return redo_fail(c, type, "metapage data of %u bytes", c->b->data_len);
    bt_init(c->page, 0, 0, 0, BTP_META);
    tarn_put_u32(m + M_MAGIC, BTREE_MAGIC);
    tarn_put_u32(m + M_VERSION, tarn_get_u32(d));
    tarn_put_u32(m + M_ROOT, tarn_get_u32(d + 4));
    tarn_put_u32(m + M_LEVEL, tarn_get_u32(d + 8));
    tarn_put_u32(m + M_FASTROOT, tarn_get_u32(d + 12));
    tarn_put_u32(m + M_FASTLEVEL, tarn_get_u32(d + 16));
    tarn_put_u32(m + M_DELPAGES, tarn_get_u32(d + 20));
    tarn_put_u64(m + M_HEAPTUPLES, 0xBFF0000000000000ull); /* -1.0 */
    m[M_ALLEQUAL] = d[24];
    tarn_put_u16(c->page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + M_SIZE);
    return TARN_OK;
}

/* _bt_clear_incomplete_split(). */
static tarn_rc
clear_incomplete_split(const redo_ctx *c, const char *type)
{
    tarn_rc rc;

    if ((rc = need_bt_page(c, type)) != TARN_OK)
        return rc;
    bt_set_flags(c->page, bt_flags(c->page) & ~BTP_INCOMPLETE_SPLIT);
    return TARN_OK;
}

/*
 * _bt_swap_posting() done in place: @p newitem's heap TID goes into the
 * posting list @p post at @p postingoff, the list's last TID is lost to
 * @p newitem.  Both are private copies.
 */
static tarn_rc
swap_posting(const redo_ctx *c, const char *type, uint8_t *newitem,
             uint8_t *post, unsigned postingoff)
{
    unsigned n;
    uint8_t *list, maxtid[TID_SIZE];

    if (!posting_ok(post))
        return redo_fail(c, type, "the item to split is not a posting list");
    n = it_npost(post);
    if (postingoff == 0 || postingoff >= n)
        return redo_fail(c, type,
                         "posting list tuple with %u items cannot be split "
                         "at offset %u",
                         n, postingoff);
    list = post + it_blk(post);
    memcpy(maxtid, list + (n - 1) * TID_SIZE, TID_SIZE);
    memmove(list + (postingoff + 1) * TID_SIZE, list + postingoff * TID_SIZE,
            (size_t)(n - postingoff - 1) * TID_SIZE);
    memcpy(list + postingoff * TID_SIZE, newitem, TID_SIZE);
    memcpy(newitem, maxtid, TID_SIZE);
    return TARN_OK;
}

/* ---- INSERT_* -------------------------------------------------------------
 */

static tarn_rc
bt_insert(redo_ctx *c, const char *type, uint8_t op)
{
    static _Thread_local uint8_t newitem[PG_BLCKSZ];
    const uint8_t *d = c->b->data;
    size_t len = c->b->data_len;
    unsigned offnum, postingoff, plen;
    uint8_t *post;
    tarn_rc rc;

    if (c->block_id == 1 && op != BT_INSERT_LEAF && op != BT_INSERT_POST)
        return clear_incomplete_split(c, type);
    if (c->block_id == 2 && op == BT_INSERT_META)
        return restore_meta(c, type);
    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    offnum = tarn_get_u16(c->r->main_data);
    if (op != BT_INSERT_POST) {
        if (len == 0)
            return redo_fail(c, type, "no tuple in the record");
        if (pg_page_add_item(c->page, d, len, offnum, 0) == 0)
            return redo_fail(c, type, "failed to add new item at offset %u",
                             offnum);
        return TARN_OK;
    }
    /* A posting list split: the record has the original new item. */
    if (len < 2 + IT_HDR || len - 2 > PG_BLCKSZ)
        return redo_fail(c, type, "posting split data of %zu bytes", len);
    postingoff = tarn_get_u16(d);
    len -= 2;
    memcpy(newitem, d + 2, len);
    if ((post = bt_item(c->page, offnum - 1, &plen)) == NULL)
        return redo_fail(c, type, "no posting list at offset %u", offnum - 1);
    if ((rc = swap_posting(c, type, newitem, post, postingoff)) != TARN_OK)
        return rc;
    if (pg_page_add_item(c->page, newitem, len, offnum, 0) == 0)
        return redo_fail(c, type,
                         "failed to add posting split new item at offset %u",
                         offnum);
    return TARN_OK;
}

/* ---- SPLIT_L / SPLIT_R ------------------------------------------------------
 */

static tarn_rc
split_left(redo_ctx *c, const char *type, bool onleft, uint32_t level,
           unsigned firstright, unsigned newitemoff, unsigned postingoff)
{
    static _Thread_local uint8_t tmp[PG_BLCKSZ], newitem[PG_BLCKSZ],
        nposting[PG_BLCKSZ];
    const uint8_t *d = c->b->data, *hikey;
    size_t len = c->b->data_len, newitemsz = 0, hikeysz;
    unsigned replaceoff = 0, leftoff, off, first;
    const walrec_block *right = blk(c, 1);
    tarn_rc rc;

    if ((rc = need_bt_page(c, type)) != TARN_OK)
        return rc;
    if (right == NULL)
        return redo_fail(c, type, "no right page in the record");
    if (onleft || postingoff != 0) {
        if (len < IT_HDR || it_size(d) < IT_HDR
            || pg_maxalign(it_size(d)) > len)
            return redo_fail(c, type, "new item cut short in %zu bytes", len);
        newitemsz = pg_maxalign(it_size(d));
        memcpy(newitem, d, newitemsz);
        d += newitemsz;
        len -= newitemsz;
        if (postingoff != 0) {
            uint8_t *post;
            unsigned plen;
            replaceoff = newitemoff - 1;
            if ((post = bt_item(c->page, replaceoff, &plen)) == NULL)
                return redo_fail(c, type, "no posting list at offset %u",
                                 replaceoff);
            memcpy(nposting, post, pg_maxalign(it_size(post)));
            if ((rc = swap_posting(c, type, newitem, nposting, postingoff))
                != TARN_OK)
                return rc;
        }
    }
    if (len < IT_HDR || it_size(d) < IT_HDR || pg_maxalign(it_size(d)) > len)
        return redo_fail(c, type, "left high key cut short in %zu bytes", len);
    hikey = d;
    hikeysz = pg_maxalign(it_size(d));

    /* The left page is rebuilt in item order on an empty page. */
    temp_copy_special(tmp, c->page);
    if ((rc = add(c, type, tmp, hikey, hikeysz, 1, "high key")) != TARN_OK)
        return rc;
    leftoff = 2;
    first = tarn_get_u32(opaque(c->page) + O_NEXT) == P_NONE ? 1 : 2;
    for (off = first; off < firstright; off++) {
        const uint8_t *item;
        unsigned ilen;
        if (off == replaceoff) {
            if ((rc =
                     add(c, type, tmp, nposting, pg_maxalign(it_size(nposting)),
                         leftoff++, "new posting list"))
                != TARN_OK)
                return rc;
            continue;
        }
        if (onleft && off == newitemoff) {
            if ((rc = add(c, type, tmp, newitem, newitemsz, leftoff++,
                          "new item"))
                != TARN_OK)
                return rc;
        }
        if ((item = bt_item(c->page, off, &ilen)) == NULL)
            return redo_fail(c, type, "no item at offset %u of the left page",
                             off);
        if ((rc = add(c, type, tmp, item, ilen, leftoff++, "old item"))
            != TARN_OK)
            return rc;
    }
    if (onleft && off == newitemoff)
        if ((rc = add(c, type, tmp, newitem, newitemsz, leftoff++, "new item"))
            != TARN_OK)
            return rc;
    memcpy(c->page, tmp, PG_BLCKSZ);
    bt_set_flags(c->page, BTP_INCOMPLETE_SPLIT | (level == 0 ? BTP_LEAF : 0));
    tarn_put_u32(opaque(c->page) + O_NEXT, right->blkno);
    tarn_put_u16(opaque(c->page) + O_CYCLE, 0);
    return TARN_OK;
}

static tarn_rc
bt_split(redo_ctx *c, const char *type, bool onleft)
{
    const uint8_t *md = c->r->main_data;
    const walrec_block *left = blk(c, 0), *right = blk(c, 1), *sib = blk(c, 2);
    uint32_t level;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 10)) != TARN_OK)
        return rc;
    level = tarn_get_u32(md);
    if (left == NULL || right == NULL)
        return redo_fail(c, type, "the record lacks the left or right page");
    switch (c->block_id) {
    case 0:
        return split_left(c, type, onleft, level, tarn_get_u16(md + 4),
                          tarn_get_u16(md + 6), tarn_get_u16(md + 8));
    case 1:
        bt_init(c->page, left->blkno, sib ? sib->blkno : P_NONE, level,
                level == 0 ? BTP_LEAF : 0);
        return restore_page(c, type, c->page, c->b->data, c->b->data_len);
    case 2:
        if ((rc = need_bt_page(c, type)) != TARN_OK)
            return rc;
        tarn_put_u32(opaque(c->page) + O_PREV, right->blkno);
        return TARN_OK;
    case 3:
        if (level != 0)
            return clear_incomplete_split(c, type);
        break;
    }
    return redo_no_part(c, type);
}

/* ---- DEDUP
 * ------------------------------------------------------------------- */

typedef struct dedup_state {
    const uint8_t *base;
    unsigned baseoff, basetupsize, nhtids, nitems, nintervals;
    uint8_t htids[PG_BLCKSZ];
} dedup_state;

/* _bt_dedup_start_pending(). */
static tarn_rc
dedup_start(const redo_ctx *c, const char *type, dedup_state *s,
            const uint8_t *t, unsigned off)
{
    if (it_is_posting(t)) {
        if (!posting_ok(t))
            return redo_fail(c, type, "malformed posting list at offset %u",
                             off);
        s->nhtids = it_npost(t);
        memcpy(s->htids, t + it_blk(t), (size_t)s->nhtids * TID_SIZE);
        s->basetupsize = it_blk(t);
    } else {
        memcpy(s->htids, t, TID_SIZE);
        s->nhtids = 1;
        s->basetupsize = it_size(t);
    }
    s->nitems = 1;
    s->base = t;
    s->baseoff = off;
    return TARN_OK;
}

/* _bt_dedup_save_htid(); failing to save is an error in redo. */
static tarn_rc
dedup_save(const redo_ctx *c, const char *type, dedup_state *s,
           const uint8_t *t, unsigned off)
{
    const uint8_t *htids = t;
    unsigned n = 1;

    if (it_is_posting(t)) {
        if (!posting_ok(t))
            return redo_fail(c, type, "malformed posting list at offset %u",
                             off);
        n = it_npost(t);
        htids = t + it_blk(t);
    }
    if (pg_maxalign(s->basetupsize + (size_t)(s->nhtids + n) * TID_SIZE)
        > BT_MAX_ITEM_SIZE)
        return redo_fail(c, type,
                         "deduplication failed to add heap tid to pending "
                         "posting list (offset %u)",
                         off);
    memcpy(s->htids + (size_t)s->nhtids * TID_SIZE, htids,
           (size_t)n * TID_SIZE);
    s->nhtids += n;
    s->nitems++;
    return TARN_OK;
}

/* _bt_dedup_finish_pending() with _bt_form_posting(). */
static tarn_rc
dedup_finish(const redo_ctx *c, const char *type, dedup_state *s,
             uint8_t *newpage, const uint8_t *intervals, unsigned nintervals)
{
    static _Thread_local uint8_t final[PG_BLCKSZ];
    unsigned off = pg_page_max_offset(newpage) + 1;
    size_t keysize, newsize;
    tarn_rc rc;

    if (s->nitems == 1) {
        rc = add(c, type, newpage, s->base, it_size(s->base), off, "tuple");
    } else {
        if (s->nintervals >= nintervals
            || tarn_get_u16(intervals + (size_t)s->nintervals * 4) != s->baseoff
            || tarn_get_u16(intervals + (size_t)s->nintervals * 4 + 2)
                   != s->nitems)
            return redo_fail(c, type,
                             "posting list of %u items at offset %u is not "
                             "interval %u of the record",
                             s->nitems, s->baseoff, s->nintervals);
        keysize = it_is_posting(s->base) ? it_blk(s->base) : it_size(s->base);
        newsize = pg_maxalign(keysize + (size_t)s->nhtids * TID_SIZE);
        memset(final, 0, newsize);
        memcpy(final, s->base, keysize);
        tarn_put_u16(final + IT_INFO, (uint16_t)((tarn_get_u16(final + IT_INFO)
                                                  & ~INDEX_SIZE_MASK)
                                                 | newsize));
        it_set_posting(final, s->nhtids, (uint32_t)keysize);
        memcpy(final + keysize, s->htids, (size_t)s->nhtids * TID_SIZE);
        rc = add(c, type, newpage, final, newsize, off, "posting list");
        s->nintervals++;
    }
    s->nhtids = s->nitems = 0;
    return rc;
}

static tarn_rc
bt_dedup(redo_ctx *c, const char *type)
{
    static _Thread_local uint8_t tmp[PG_BLCKSZ];
    static _Thread_local dedup_state s;
    const uint8_t *intervals = c->b->data;
    unsigned nintervals, minoff, maxoff;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 2)) != TARN_OK
        || (rc = need_bt_page(c, type)) != TARN_OK)
        return rc;
    nintervals = tarn_get_u16(c->r->main_data);
    if ((size_t)nintervals * 4 > c->b->data_len)
        return redo_fail(c, type, "%u intervals in %u bytes of data",
                         nintervals, c->b->data_len);
    minoff = tarn_get_u32(opaque(c->page) + O_NEXT) == P_NONE ? 1 : 2;
    maxoff = pg_page_max_offset(c->page);
    if (minoff > maxoff)
        return redo_fail(c, type, "no items to deduplicate");
    temp_copy_special(tmp, c->page);
    if (minoff == 2) {
        const uint8_t *hk;
        unsigned hlen;
        if ((hk = bt_item(c->page, 1, &hlen)) == NULL)
            return redo_fail(c, type, "no high key");
        if ((rc = add(c, type, tmp, hk, hlen, 1, "high key")) != TARN_OK)
            return rc;
    }
    s.nintervals = s.nhtids = s.nitems = 0;
    for (unsigned off = minoff; off <= maxoff; off++) {
        const uint8_t *t;
        unsigned tlen;
        if ((t = bt_item(c->page, off, &tlen)) == NULL)
            return redo_fail(c, type, "no item at offset %u", off);
        if (off == minoff) {
            rc = dedup_start(c, type, &s, t, off);
        } else if (s.nintervals < nintervals
                   && s.baseoff
                          == tarn_get_u16(intervals + (size_t)s.nintervals * 4)
                   && s.nitems < tarn_get_u16(intervals
                                              + (size_t)s.nintervals * 4 + 2)) {
            rc = dedup_save(c, type, &s, t, off);
        } else {
            if ((rc = dedup_finish(c, type, &s, tmp, intervals, nintervals))
                == TARN_OK)
                rc = dedup_start(c, type, &s, t, off);
        }
        if (rc != TARN_OK)
            return rc;
    }
    if ((rc = dedup_finish(c, type, &s, tmp, intervals, nintervals)) != TARN_OK)
        return rc;
    if (s.nintervals != nintervals)
        return redo_fail(c, type, "%u posting lists formed, the record has %u",
                         s.nintervals, nintervals);
    bt_set_flags(tmp, bt_flags(tmp) & ~BTP_HAS_GARBAGE);
    memcpy(c->page, tmp, PG_BLCKSZ);
    return TARN_OK;
}

/* ---- VACUUM / DELETE
 * --------------------------------------------------------- */

/* btree_xlog_updates() with _bt_update_posting(). */
static tarn_rc
apply_updates(const redo_ctx *c, const char *type, const uint8_t *offs,
              unsigned nupdated, const uint8_t *u, const uint8_t *end)
{
    static _Thread_local uint8_t itup[PG_BLCKSZ];

    for (unsigned i = 0; i < nupdated; i++) {
        unsigned off = tarn_get_u16(offs + 2 * i), ndel, n, nhtids, len;
        unsigned ui = 0, d = 0;
        uint8_t *orig, *htids;
        const uint8_t *list;
        uint32_t keysize;
        size_t newsize;

        if (end - u < 2 || (size_t)(end - u - 2) < 2 * (size_t)tarn_get_u16(u))
            return redo_fail(c, type, "update %u of %u cut short", i + 1,
                             nupdated);
        ndel = tarn_get_u16(u);
        if ((orig = bt_item(c->page, off, &len)) == NULL || !posting_ok(orig))
            return redo_fail(c, type, "no posting list at offset %u", off);
        n = it_npost(orig);
        if (ndel == 0 || ndel >= n)
            return redo_fail(c, type,
                             "%u of %u heap TIDs deleted from the posting "
                             "list at offset %u",
                             ndel, n, off);
        nhtids = n - ndel;
        keysize = it_blk(orig);
        newsize = nhtids > 1 ? pg_maxalign(keysize + (size_t)nhtids * TID_SIZE)
                             : keysize;
        memset(itup, 0, pg_maxalign(newsize));
        memcpy(itup, orig, keysize);
        tarn_put_u16(itup + IT_INFO, (uint16_t)((tarn_get_u16(itup + IT_INFO)
                                                 & ~INDEX_SIZE_MASK)
                                                | newsize));
        if (nhtids > 1) {
            it_set_posting(itup, nhtids, keysize);
            htids = itup + keysize;
        } else {
            tarn_put_u16(itup + IT_INFO,
                         tarn_get_u16(itup + IT_INFO) & ~INDEX_ALT_TID);
            htids = itup;
        }
        list = orig + keysize;
        for (unsigned k = 0; k < n; k++) {
            if (d < ndel && tarn_get_u16(u + 2 + 2 * d) == k) {
                d++;
                continue;
            }
            if (ui == nhtids)
                break;
            memcpy(htids + (size_t)ui++ * TID_SIZE, list + (size_t)k * TID_SIZE,
                   TID_SIZE);
        }
        if (d != ndel || ui != nhtids)
            return redo_fail(c, type,
                             "deleted TID offsets of the posting list at "
                             "offset %u are not in order",
                             off);
        if (!pg_page_index_overwrite(c->page, off, itup, pg_maxalign(newsize)))
            return redo_fail(c, type,
                             "failed to update partially dead item at "
                             "offset %u",
                             off);
        u += 2 + 2 * (size_t)ndel;
    }
    return TARN_OK;
}

static tarn_rc
bt_vacuum_delete(redo_ctx *c, const char *type, unsigned hdr)
{
    static _Thread_local uint16_t offs[PG_BLCKSZ / 2];
    const uint8_t *d = c->b->data;
    unsigned ndeleted, nupdated;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, hdr + 4)) != TARN_OK
        || (rc = need_bt_page(c, type)) != TARN_OK)
        return rc;
    ndeleted = tarn_get_u16(c->r->main_data + hdr);
    nupdated = tarn_get_u16(c->r->main_data + hdr + 2);
    if (2 * ((size_t)ndeleted + nupdated) > c->b->data_len)
        return redo_fail(c, type,
                         "%u deleted and %u updated offsets in %u "
                         "bytes of data",
                         ndeleted, nupdated, c->b->data_len);
    if (nupdated > 0
        && (rc = apply_updates(c, type, d + 2 * (size_t)ndeleted, nupdated,
                               d + 2 * ((size_t)ndeleted + nupdated),
                               d + c->b->data_len))
               != TARN_OK)
        return rc;
    if (ndeleted > 0) {
        for (unsigned i = 0; i < ndeleted; i++)
            offs[i] = tarn_get_u16(d + 2 * i);
        if (!pg_page_index_multi_delete(c->page, offs, ndeleted))
            return redo_fail(c, type,
                             "incorrect index offsets supplied (%u to delete "
                             "from %u items)",
                             ndeleted, pg_page_max_offset(c->page));
    }
    bt_set_flags(c->page, bt_flags(c->page) & ~BTP_HAS_GARBAGE);
    return TARN_OK;
}

/* ---- page deletion
 * ------------------------------------------------------------ */

/* A half-dead leaf with its dummy high key pointing at @p topparent. */
static tarn_rc
halfdead_leaf(const redo_ctx *c, const char *type, uint32_t prev, uint32_t next,
              uint32_t topparent)
{
    uint8_t trunc[IT_HDR] = {0};

    bt_init(c->page, prev, next, 0, BTP_HALF_DEAD | BTP_LEAF);
    it_set_blk(trunc, topparent);
    tarn_put_u16(trunc + IT_INFO, IT_HDR | INDEX_ALT_TID);
    return add(c, type, c->page, trunc, IT_HDR, 1, "dummy high key");
}

static tarn_rc
bt_halfdead(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 20)) != TARN_OK)
        return rc;
    if (c->block_id == 0)
        return halfdead_leaf(c, type, tarn_get_u32(md + 8),
                             tarn_get_u32(md + 12), tarn_get_u32(md + 16));
    if (c->block_id == 1) {
        unsigned poff = tarn_get_u16(md), len;
        uint8_t *next, *t;
        if ((rc = need_bt_page(c, type)) != TARN_OK)
            return rc;
        if ((next = bt_item(c->page, poff + 1, &len)) == NULL
            || (t = bt_item(c->page, poff, &len)) == NULL)
            return redo_fail(c, type, "no downlinks at offsets %u and %u", poff,
                             poff + 1);
        it_set_blk(t, it_blk(next));
        if (!pg_page_index_delete(c->page, poff + 1))
            return redo_fail(c, type, "cannot delete the item at offset %u",
                             poff + 1);
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

static tarn_rc
bt_unlink(redo_ctx *c, const char *type, bool meta)
{
    const uint8_t *md = c->r->main_data;
    uint32_t leftsib, rightsib, level;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 36)) != TARN_OK)
        return rc;
    leftsib = tarn_get_u32(md);
    rightsib = tarn_get_u32(md + 4);
    level = tarn_get_u32(md + 8);
    switch (c->block_id) {
    case 0:
        bt_init(c->page, leftsib, rightsib, level,
                BTP_DELETED | BTP_HAS_FULLXID | (level == 0 ? BTP_LEAF : 0));
        /* BTPageSetDeleted(): the safexid is the page's contents. */
        tarn_put_u16(c->page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + 8);
        tarn_put_u16(c->page + PG_PD_UPPER, BT_SPECIAL);
        memcpy(c->page + PG_PAGE_HEADER_SIZE, md + 16, 8);
        return TARN_OK;
    case 1:
        if (leftsib == P_NONE)
            break;
        if ((rc = need_bt_page(c, type)) != TARN_OK)
            return rc;
        tarn_put_u32(opaque(c->page) + O_NEXT, rightsib);
        return TARN_OK;
    case 2:
        if ((rc = need_bt_page(c, type)) != TARN_OK)
            return rc;
        tarn_put_u32(opaque(c->page) + O_PREV, leftsib);
        return TARN_OK;
    case 3:
        return halfdead_leaf(c, type, tarn_get_u32(md + 24),
                             tarn_get_u32(md + 28), tarn_get_u32(md + 32));
    case 4:
        if (meta)
            return restore_meta(c, type);
        break;
    }
    return redo_no_part(c, type);
}

static tarn_rc
bt_newroot(redo_ctx *c, const char *type)
{
    uint32_t level;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 8)) != TARN_OK)
        return rc;
    level = tarn_get_u32(c->r->main_data + 4);
    switch (c->block_id) {
    case 0:
        bt_init(c->page, P_NONE, P_NONE, level,
                BTP_ROOT | (level == 0 ? BTP_LEAF : 0));
        if (level > 0)
            return restore_page(c, type, c->page, c->b->data, c->b->data_len);
        return TARN_OK;
    case 1:
        if (level > 0)
            return clear_incomplete_split(c, type);
        break;
    case 2:
        return restore_meta(c, type);
    }
    return redo_no_part(c, type);
}

tarn_rc
redo_btree(redo_ctx *c)
{
    uint8_t op = c->r->info & 0xF0;
    const char *type = bt_names[op >> 4];
    tarn_rc rc;

    switch (op) {
    case BT_INSERT_LEAF:
    case BT_INSERT_UPPER:
    case BT_INSERT_META:
    case BT_INSERT_POST:
        rc = bt_insert(c, type, op);
        break;
    case BT_SPLIT_L:
    case BT_SPLIT_R:
        rc = bt_split(c, type, op == BT_SPLIT_L);
        break;
    case BT_DEDUP:
        rc = bt_dedup(c, type);
        break;
    case BT_VACUUM:
        rc = bt_vacuum_delete(c, type, 0);
        break;
    case BT_DELETE:
        rc = bt_vacuum_delete(c, type, 4);
        break;
    case BT_HALFDEAD:
        rc = bt_halfdead(c, type);
        break;
    case BT_UNLINK:
    case BT_UNLINK_META:
        rc = bt_unlink(c, type, op == BT_UNLINK_META);
        break;
    case BT_NEWROOT:
        rc = bt_newroot(c, type);
        break;
    case BT_META_CLEANUP:
        rc = c->block_id == 0 ? restore_meta(c, type) : redo_no_part(c, type);
        break;
    case BT_REUSE_PAGE:
        return redo_fail(c, type, "the record has no page change");
    default:
        return redo_fail(c, type, "unknown op code 0x%02X", op);
    }
    if (rc == TARN_OK)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}
