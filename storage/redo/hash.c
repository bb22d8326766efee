/*
 * hash.c - redo of the Hash index resource manager, as PostgreSQL 15's
 * hash_redo() changes each page.
 *
 * Each record is applied to one block (rmgr.h); the parts by block id:
 *
 *   INIT_META_PAGE     0 the metapage (will_init)
 *   INIT_BITMAP_PAGE   0 the new bitmap page (will_init); 1 the metapage
 *   INSERT             0 the page inserted into; 1 the metapage (ntuples)
 *   ADD_OVFL_PAGE      0 the new overflow page (will_init); 1 the page it
 *                      is chained after; 2 the bitmap page whose bit is
 *                      set; 3 a new bitmap page (will_init); 4 metapage
 *   SPLIT_ALLOCATE     0 the old bucket; 1 the new bucket (will_init);
 *                      2 the metapage
 *   SPLIT_PAGE         0 always a full-page image
 *   SPLIT_COMPLETE     0 the old bucket; 1 the new bucket (flags)
 *   MOVE_PAGE_CONTENTS 0 the primary bucket page (unchanged); 1 the page
 *                      written to; 2 the page the tuples leave
 *   SQUEEZE_PAGE       0 primary bucket (unchanged); 1 the page written
 *                      to; 2 the freed overflow page; 3 its previous
 *                      page; 4 its next page; 5 the bitmap page; 6 meta
 *   DELETE             0 primary bucket (unchanged); 1 the page deleted
 *                      from
 *   SPLIT_CLEANUP      0 the primary bucket page
 *   UPDATE_META_PAGE   0 the metapage
 *   VACUUM_ONE_PAGE    0 the page cleaned; 1 the metapage
 *
 * A block PostgreSQL only locks (the primary bucket page of a move,
 * squeeze or delete) is left as it is, LSN included.  PostgreSQL also
 * sets the bucket flags of SPLIT_ALLOCATE_PAGE and SPLIT_COMPLETE on a
 * block restored from its image; the image was taken after the same
 * change, so doing nothing more there (as the caller does) is the same.  Every
 * check PostgreSQL makes with elog(PANIC/ERROR), and every place where a
 * damaged record or page would make it read or write out of bounds,
 * becomes TARN_ECORRUPT naming the record type.
 */
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

/* Record types (info & 0xF0). */
#define H_INIT_META_PAGE     0x00
#define H_INIT_BITMAP_PAGE   0x10
#define H_INSERT             0x20
#define H_ADD_OVFL_PAGE      0x30
#define H_SPLIT_ALLOCATE     0x40
#define H_SPLIT_PAGE         0x50
#define H_SPLIT_COMPLETE     0x60
#define H_MOVE_PAGE_CONTENTS 0x70
#define H_SQUEEZE_PAGE       0x80
#define H_DELETE             0x90
#define H_SPLIT_CLEANUP      0xA0
#define H_UPDATE_META_PAGE   0xB0
#define H_VACUUM_ONE_PAGE    0xC0

static const char *const h_names[16] = {"INIT_META_PAGE",
                                        "INIT_BITMAP_PAGE",
                                        "INSERT",
                                        "ADD_OVFL_PAGE",
                                        "SPLIT_ALLOCATE_PAGE",
                                        "SPLIT_PAGE",
                                        "SPLIT_COMPLETE",
                                        "MOVE_PAGE_CONTENTS",
                                        "SQUEEZE_PAGE",
                                        "DELETE",
                                        "SPLIT_CLEANUP",
                                        "UPDATE_META_PAGE",
                                        "VACUUM_ONE_PAGE",
                                        "unknown",
                                        "unknown",
                                        "unknown"};

/* HashPageOpaqueData: the 16-byte special space. */
#define H_OPAQUE_SIZE 16
#define H_SPECIAL     (PG_BLCKSZ - H_OPAQUE_SIZE)
enum { O_PREV = 0, O_NEXT = 4, O_BUCKET = 8, O_FLAG = 12, O_PAGE_ID = 14 };
#define HASHO_PAGE_ID 0xFF80
#define INVALID_BLOCK 0xFFFFFFFFu

#define LH_UNUSED_PAGE                0
#define LH_OVERFLOW_PAGE              0x0001
#define LH_BITMAP_PAGE                0x0004
#define LH_META_PAGE                  0x0008
#define LH_BUCKET_NEEDS_SPLIT_CLEANUP 0x0040
#define LH_PAGE_HAS_DEAD_TUPLES       0x0080

/* HashMetaPageData, at the page contents (byte 24); 8-byte aligned. */
#define HASH_MAGIC      0x6440640
#define HASH_VERSION    4
#define MAX_SPLITPOINTS 98 /* (32 - 10) * 4 + 10 */
#define MAX_BITMAPS     1024
#define SPLIT_ONE_PHASE 10 /* HASH_SPLITPOINT_GROUPS_WITH_ONE_PHASE */
enum {
    M_MAGIC = 0,
    M_VERSION = 4,
    M_NTUPLES = 8,
    M_FFACTOR = 16,
    M_BSIZE = 18,
    M_BMSIZE = 20,
    M_BMSHIFT = 22,
    M_MAXBUCKET = 24,
    M_HIGHMASK = 28,
    M_LOWMASK = 32,
    M_OVFLPOINT = 36,
    M_FIRSTFREE = 40,
    M_NMAPS = 44,
    M_PROCID = 48,
    M_SPARES = 52,
    M_MAPP = M_SPARES + 4 * MAX_SPLITPOINTS,
    M_SIZE = (M_MAPP + 4 * MAX_BITMAPS + 7) & ~7
};

#define IT_INFO         6
#define IT_HDR          8
#define INDEX_SIZE_MASK 0x1FFF

#define SPLIT_UPDATE_MASKS      0x01
#define SPLIT_UPDATE_SPLITPOINT 0x02

/* ---- helpers ---------------------------------------------------------------
 */

static uint8_t *
opq(uint8_t *page)
{
    return page + H_SPECIAL;
}

static uint8_t *
meta(uint8_t *page)
{
    return page + PG_PAGE_HEADER_SIZE;
}

static double
get_f64(const uint8_t *p)
{
    uint64_t u = tarn_get_u64(p);
    double d;

    memcpy(&d, &u, sizeof d);
    return d;
}

static void
put_f64(uint8_t *p, double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof u);
    tarn_put_u64(p, u);
}

/* The page must be a hash index page PostgreSQL can work on. */
static tarn_rc
need_hash_page(const redo_ctx *c, const char *type)
{
    return redo_need_index_page(c, type, H_SPECIAL, "a hash index page");
}

/* _hash_pageinit() plus the special space _hash_initbuf() and friends set. */
static void
h_init(uint8_t *page, uint32_t prev, uint32_t next, uint32_t bucket,
       uint16_t flag)
{
    uint8_t *o = opq(page);

    pg_page_init(page, H_OPAQUE_SIZE);
    tarn_put_u32(o + O_PREV, prev);
    tarn_put_u32(o + O_NEXT, next);
    tarn_put_u32(o + O_BUCKET, bucket);
    tarn_put_u16(o + O_FLAG, flag);
    tarn_put_u16(o + O_PAGE_ID, HASHO_PAGE_ID);
}

static void
set_flag(uint8_t *page, uint16_t f)
{
    tarn_put_u16(opq(page) + O_FLAG, f);
}

static uint16_t
get_flag(uint8_t *page)
{
    return tarn_get_u16(opq(page) + O_FLAG);
}

/* pg_ceil_log2_32(). */
static unsigned
ceil_log2(uint32_t n)
{
    unsigned l = 0;

    if (n <= 1)
        return 0;
    n--;
    while (n) {
        l++;
        n >>= 1;
    }
    return l;
}

/* _hash_spareindex(). */
static uint32_t
spare_index(uint32_t nbucket)
{
    unsigned group = ceil_log2(nbucket);

    if (group < SPLIT_ONE_PHASE)
        return group;
    return SPLIT_ONE_PHASE + ((group - SPLIT_ONE_PHASE) << 2)
           + (((nbucket - 1) >> (group - 3)) & 3);
}

/* _hash_get_totalbuckets(). */
static uint32_t
total_buckets(uint32_t phase)
{
    uint32_t group, total;

    if (phase < SPLIT_ONE_PHASE)
        return (uint32_t)1 << phase;
    group = SPLIT_ONE_PHASE + ((phase - SPLIT_ONE_PHASE) >> 2);
    total = (uint32_t)1 << (group - 1);
    total += (((uint32_t)1 << (group - 1)) >> 2)
             * (((phase - SPLIT_ONE_PHASE) & 3) + 1);
    return total;
}

/* pg_nextpower2_32() for 2 < n <= 2^30 + 1. */
static uint32_t
next_pow2(uint32_t n)
{
    uint32_t p = 1;

    while (p < n)
        p <<= 1;
    return p;
}

/* _hash_init_metabuffer() on a fresh page. */
static void
init_meta(uint8_t *page, double num_tuples, uint32_t procid, uint16_t ffactor)
{
    double dn = num_tuples / ffactor;
    uint32_t nb, si, bsize, lshift;
    uint8_t *m = meta(page);

    if (dn <= 2.0)
        nb = 2;
    else if (dn >= (double)0x40000000)
        nb = 0x40000000;
    else
        nb = total_buckets(spare_index((uint32_t)dn));
    si = spare_index(nb);

    h_init(page, INVALID_BLOCK, INVALID_BLOCK, INVALID_BLOCK, LH_META_PAGE);
    tarn_put_u32(m + M_MAGIC, HASH_MAGIC);
    tarn_put_u32(m + M_VERSION, HASH_VERSION);
    put_f64(m + M_NTUPLES, 0);
    tarn_put_u32(m + M_NMAPS, 0);
    tarn_put_u16(m + M_FFACTOR, ffactor);
    bsize = PG_BLCKSZ - (PG_PAGE_HEADER_SIZE + H_OPAQUE_SIZE);
    tarn_put_u16(m + M_BSIZE, (uint16_t)bsize);
    lshift = 0;
    while ((bsize >> (lshift + 1)) != 0)
        lshift++;
    tarn_put_u16(m + M_BMSIZE, (uint16_t)(1u << lshift));
    tarn_put_u16(m + M_BMSHIFT, (uint16_t)(lshift + 3));
    tarn_put_u32(m + M_PROCID, procid);
    tarn_put_u32(m + M_MAXBUCKET, nb - 1);
    tarn_put_u32(m + M_HIGHMASK, next_pow2(nb + 1) - 1);
    tarn_put_u32(m + M_LOWMASK, (next_pow2(nb + 1) - 1) >> 1);
    /* spares and mapp are zero on the fresh page */
    tarn_put_u32(m + M_SPARES + 4 * si, 1);
    tarn_put_u32(m + M_OVFLPOINT, si);
    tarn_put_u32(m + M_FIRSTFREE, 0);
    tarn_put_u16(page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + M_SIZE);
}

/* _hash_initbitmapbuffer() on a fresh page. */
static tarn_rc
init_bitmap(const redo_ctx *c, const char *type, uint16_t bmsize)
{
    if (bmsize > H_SPECIAL - PG_PAGE_HEADER_SIZE)
        return redo_fail(c, type, "bitmap of %u bytes does not fit a page",
                         bmsize);
    h_init(c->page, INVALID_BLOCK, INVALID_BLOCK, INVALID_BLOCK,
           LH_BITMAP_PAGE);
    memset(c->page + PG_PAGE_HEADER_SIZE, 0xFF, bmsize);
    tarn_put_u16(c->page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + bmsize);
    return TARN_OK;
}

/* SETBIT / CLRBIT on the bitmap page's uint32 words. */
static tarn_rc
bitmap_bit(const redo_ctx *c, const char *type, bool set)
{
    uint32_t bit, w;
    uint8_t *p;
    tarn_rc rc;

    if ((rc = need_hash_page(c, type)) != TARN_OK
        || (rc = redo_need_data(c, type, 4)) != TARN_OK)
        return rc;
    bit = tarn_get_u32(c->data);
    if ((size_t)(bit / 32) * 4 + 4 > H_SPECIAL - PG_PAGE_HEADER_SIZE)
        return redo_fail(c, type, "bitmap bit %u is outside the page", bit);
    p = c->page + PG_PAGE_HEADER_SIZE + (bit / 32) * 4;
    w = tarn_get_u32(p);
    w = set ? w | (uint32_t)1 << (bit % 32) : w & ~((uint32_t)1 << (bit % 32));
    tarn_put_u32(p, w);
    return TARN_OK;
}

static tarn_rc
add_item(const redo_ctx *c, const char *type, const uint8_t *item, size_t size,
         unsigned off)
{
    if (pg_page_add_item(c->page, item, size, off, 0) == 0)
        return redo_fail(c, type, "failed to add item (%zu bytes) at offset %u",
                         size, off);
    return TARN_OK;
}

/*
 * The write page of a move or squeeze: @p ntups offsets, then as many
 * index tuples, each added with its aligned size at its offset.
 */
static tarn_rc
add_moved(const redo_ctx *c, const char *type, unsigned ntups)
{
    const uint8_t *d = c->data;
    size_t at, len = c->data_len;
    unsigned n = 0;
    tarn_rc rc;

    if (ntups == 0)
        return TARN_OK;
    if ((size_t)ntups * 2 > len)
        return redo_fail(c, type, "%u offsets in %zu bytes of block data",
                         ntups, len);
    at = (size_t)ntups * 2;
    while (at < len) {
        size_t s;
        if (len - at < IT_HDR)
            return redo_fail(c, type, "tuple data cut short at byte %zu of %zu",
                             at, len);
        s = pg_maxalign(tarn_get_u16(d + at + IT_INFO) & INDEX_SIZE_MASK);
        if (s < IT_HDR || s > len - at)
            return redo_fail(c, type,
                             "tuple of %zu bytes at byte %zu of %zu of data", s,
                             at, len);
        if (n == ntups)
            return redo_fail(c, type, "more tuples than the %u offsets", ntups);
        if ((rc = add_item(c, type, d + at, s, tarn_get_u16(d + 2 * n)))
            != TARN_OK)
            return rc;
        n++;
        at += s;
    }
    if (n != ntups)
        return redo_fail(c, type, "%u tuples for %u offsets", n, ntups);
    return TARN_OK;
}

/* ---- record types ----------------------------------------------------------
 */

static tarn_rc
h_init_meta(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    uint16_t ffactor;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 14)) != TARN_OK)
        return rc;
    ffactor = tarn_get_u16(md + 12);
    if (ffactor == 0)
        return redo_fail(c, type, "fill factor 0");
    if (get_f64(md) != get_f64(md)) /* NaN: no bucket count to derive */
        return redo_fail(c, type, "number of tuples is not a number");
    init_meta(c->page, get_f64(md), tarn_get_u32(md + 8), ffactor);
    return TARN_OK;
}

static tarn_rc
h_init_bitmap(redo_ctx *c, const char *type)
{
    uint8_t *m = meta(c->page);
    uint32_t nmaps;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    switch (c->block_id) {
    case 0:
        return init_bitmap(c, type, tarn_get_u16(c->r->main_data));
    case 1:
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        nmaps = tarn_get_u32(m + M_NMAPS);
        if (nmaps >= MAX_BITMAPS)
            return redo_fail(c, type, "metapage has %u bitmap pages", nmaps);
        tarn_put_u32(m + M_MAPP + 4 * nmaps,
                     tarn_get_u32(m + M_MAXBUCKET) + 1 + 1);
        tarn_put_u32(m + M_NMAPS, nmaps + 1);
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

static tarn_rc
h_insert(redo_ctx *c, const char *type)
{
    uint8_t *m = meta(c->page);
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    switch (c->block_id) {
    case 0:
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        return add_item(c, type, c->data, c->data_len,
                        tarn_get_u16(c->r->main_data));
    case 1:
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        put_f64(m + M_NTUPLES, get_f64(m + M_NTUPLES) + 1);
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

static tarn_rc
h_add_ovfl(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    const walrec_block *b0 = &c->r->blocks[0], *b1 = &c->r->blocks[1];
    uint8_t *m = meta(c->page);
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 3)) != TARN_OK)
        return rc;
    if (!b0->in_use || !b1->in_use)
        return redo_fail(c, type, "blocks 0 and 1 are not both present");
    switch (c->block_id) {
    case 0:
        if ((rc = redo_need_data(c, type, 4)) != TARN_OK)
            return rc;
        h_init(c->page, b1->blkno, INVALID_BLOCK, tarn_get_u32(c->data),
               LH_OVERFLOW_PAGE);
        return TARN_OK;
    case 1:
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        tarn_put_u32(opq(c->page) + O_NEXT, b0->blkno);
        return TARN_OK;
    case 2:
        return bitmap_bit(c, type, true);
    case 3:
        return init_bitmap(c, type, tarn_get_u16(md));
    case 4: {
        uint32_t op, sp;
        if ((rc = need_hash_page(c, type)) != TARN_OK
            || (rc = redo_need_data(c, type, 4)) != TARN_OK)
            return rc;
        tarn_put_u32(m + M_FIRSTFREE, tarn_get_u32(c->data));
        if (md[2])
            return TARN_OK;
        op = tarn_get_u32(m + M_OVFLPOINT);
        if (op >= MAX_SPLITPOINTS)
            return redo_fail(c, type, "metapage split point %u", op);
        sp = tarn_get_u32(m + M_SPARES + 4 * op) + 1;
        if (c->r->blocks[3].in_use) {
            uint32_t nmaps = tarn_get_u32(m + M_NMAPS);
            if (nmaps >= MAX_BITMAPS)
                return redo_fail(c, type, "metapage has %u bitmap pages",
                                 nmaps);
            tarn_put_u32(m + M_MAPP + 4 * nmaps, c->r->blocks[3].blkno);
            tarn_put_u32(m + M_NMAPS, nmaps + 1);
            sp++;
        }
        tarn_put_u32(m + M_SPARES + 4 * op, sp);
        return TARN_OK;
    }
    }
    return redo_no_part(c, type);
}

static tarn_rc
h_split_allocate(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    uint8_t *m = meta(c->page);
    uint32_t newb;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 9)) != TARN_OK)
        return rc;
    newb = tarn_get_u32(md);
    switch (c->block_id) {
    case 0:
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        set_flag(c->page, tarn_get_u16(md + 4));
        tarn_put_u32(opq(c->page) + O_PREV, newb);
        return TARN_OK;
    case 1:
        h_init(c->page, newb, INVALID_BLOCK, newb, tarn_get_u16(md + 6));
        return TARN_OK;
    case 2: {
        const uint8_t *d = c->data;
        uint32_t need = 0;
        if (md[8] & SPLIT_UPDATE_MASKS)
            need += 8;
        if (md[8] & SPLIT_UPDATE_SPLITPOINT)
            need += 8;
        if ((rc = need_hash_page(c, type)) != TARN_OK
            || (rc = redo_need_data(c, type, need)) != TARN_OK)
            return rc;
        if ((md[8] & SPLIT_UPDATE_SPLITPOINT)) {
            uint32_t op =
                tarn_get_u32(d + ((md[8] & SPLIT_UPDATE_MASKS) ? 8 : 0));
            if (op >= MAX_SPLITPOINTS)
                return redo_fail(c, type, "split point %u", op);
        }
        tarn_put_u32(m + M_MAXBUCKET, newb);
        if (md[8] & SPLIT_UPDATE_MASKS) {
            tarn_put_u32(m + M_LOWMASK, tarn_get_u32(d));
            tarn_put_u32(m + M_HIGHMASK, tarn_get_u32(d + 4));
            d += 8;
        }
        if (md[8] & SPLIT_UPDATE_SPLITPOINT) {
            uint32_t op = tarn_get_u32(d);
            tarn_put_u32(m + M_SPARES + 4 * op, tarn_get_u32(d + 4));
            tarn_put_u32(m + M_OVFLPOINT, op);
        }
        return TARN_OK;
    }
    }
    return redo_no_part(c, type);
}

static tarn_rc
h_split_complete(redo_ctx *c, const char *type)
{
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 4)) != TARN_OK)
        return rc;
    if (c->block_id > 1)
        return redo_no_part(c, type);
    if ((rc = need_hash_page(c, type)) != TARN_OK)
        return rc;
    set_flag(c->page, tarn_get_u16(c->r->main_data + 2 * c->block_id));
    return TARN_OK;
}

/* MOVE_PAGE_CONTENTS and SQUEEZE_PAGE; *changed is false for block 0. */
static tarn_rc
h_move_squeeze(redo_ctx *c, const char *type, bool squeeze, bool *changed)
{
    const uint8_t *md = c->r->main_data;
    unsigned ntups;
    bool prev_same;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, squeeze ? 12 : 3)) != TARN_OK)
        return rc;
    ntups = tarn_get_u16(md + (squeeze ? 8 : 0));
    prev_same = squeeze && md[11];
    switch (c->block_id) {
    case 0:
        *changed = false;
        return TARN_OK;
    case 1:
        if ((rc = need_hash_page(c, type)) != TARN_OK
            || (rc = add_moved(c, type, ntups)) != TARN_OK)
            return rc;
        if (prev_same)
            tarn_put_u32(opq(c->page) + O_NEXT, tarn_get_u32(md + 4));
        return TARN_OK;
    case 2:
        if (!squeeze) {
            if ((rc = need_hash_page(c, type)) != TARN_OK)
                return rc;
            return redo_multi_delete(c, type, c->data, c->data_len / 2);
        }
        h_init(c->page, INVALID_BLOCK, INVALID_BLOCK, INVALID_BLOCK,
               LH_UNUSED_PAGE);
        return TARN_OK;
    }
    if (!squeeze)
        return redo_no_part(c, type);
    switch (c->block_id) {
    case 3:
        if (prev_same)
            break;
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        tarn_put_u32(opq(c->page) + O_NEXT, tarn_get_u32(md + 4));
        return TARN_OK;
    case 4:
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        tarn_put_u32(opq(c->page) + O_PREV, tarn_get_u32(md));
        return TARN_OK;
    case 5:
        return bitmap_bit(c, type, false);
    case 6:
        if ((rc = need_hash_page(c, type)) != TARN_OK
            || (rc = redo_need_data(c, type, 4)) != TARN_OK)
            return rc;
        tarn_put_u32(meta(c->page) + M_FIRSTFREE, tarn_get_u32(c->data));
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

static tarn_rc
h_delete(redo_ctx *c, const char *type, bool *changed)
{
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    switch (c->block_id) {
    case 0:
        *changed = false;
        return TARN_OK;
    case 1:
        if ((rc = need_hash_page(c, type)) != TARN_OK
            || (rc = redo_multi_delete(c, type, c->data, c->data_len / 2))
                   != TARN_OK)
            return rc;
        if (c->r->main_data[0])
            set_flag(c->page, get_flag(c->page) & ~LH_PAGE_HAS_DEAD_TUPLES);
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

static tarn_rc
h_vacuum_one_page(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    int32_t ntuples;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 8)) != TARN_OK)
        return rc;
    ntuples = (int32_t)tarn_get_u32(md + 4);
    switch (c->block_id) {
    case 0:
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        if (c->r->main_len > 8) {
            if (ntuples < 0 || (uint32_t)ntuples > (c->r->main_len - 8) / 2)
                return redo_fail(c, type, "%d offsets in %u bytes", ntuples,
                                 c->r->main_len - 8);
            if ((rc = redo_multi_delete(c, type, md + 8, (size_t)ntuples))
                != TARN_OK)
                return rc;
        }
        set_flag(c->page, get_flag(c->page) & ~LH_PAGE_HAS_DEAD_TUPLES);
        return TARN_OK;
    case 1: {
        uint8_t *m = meta(c->page);
        if ((rc = need_hash_page(c, type)) != TARN_OK)
            return rc;
        put_f64(m + M_NTUPLES, get_f64(m + M_NTUPLES) - ntuples);
        return TARN_OK;
    }
    }
    return redo_no_part(c, type);
}

tarn_rc
redo_hash(redo_ctx *c)
{
    uint8_t op = c->r->info & 0xF0;
    const char *type = h_names[op >> 4];
    bool changed = true;
    tarn_rc rc;

    switch (op) {
    case H_INIT_META_PAGE:
        rc = h_init_meta(c, type);
        break;
    case H_INIT_BITMAP_PAGE:
        rc = h_init_bitmap(c, type);
        break;
    case H_INSERT:
        rc = h_insert(c, type);
        break;
    case H_ADD_OVFL_PAGE:
        rc = h_add_ovfl(c, type);
        break;
    case H_SPLIT_ALLOCATE:
        rc = h_split_allocate(c, type);
        break;
    case H_SPLIT_PAGE:
        return redo_fail(c, type,
                         "the record did not contain a full-page image");
    case H_SPLIT_COMPLETE:
        rc = h_split_complete(c, type);
        break;
    case H_MOVE_PAGE_CONTENTS:
    case H_SQUEEZE_PAGE:
        rc = h_move_squeeze(c, type, op == H_SQUEEZE_PAGE, &changed);
        break;
    case H_DELETE:
        rc = h_delete(c, type, &changed);
        break;
    case H_SPLIT_CLEANUP:
        if (c->block_id != 0) {
            rc = redo_no_part(c, type);
            break;
        }
        if ((rc = need_hash_page(c, type)) == TARN_OK)
            set_flag(c->page,
                     get_flag(c->page) & ~LH_BUCKET_NEEDS_SPLIT_CLEANUP);
        break;
    case H_UPDATE_META_PAGE:
        if (c->block_id != 0) {
            rc = redo_no_part(c, type);
            break;
        }
        if ((rc = redo_need_main(c, type, 8)) == TARN_OK
            && (rc = need_hash_page(c, type)) == TARN_OK)
            put_f64(meta(c->page) + M_NTUPLES, get_f64(c->r->main_data));
        break;
    case H_VACUUM_ONE_PAGE:
        rc = h_vacuum_one_page(c, type);
        break;
    default:
        return redo_fail(c, type, "unknown op code 0x%02X", op);
    }
    if (rc == TARN_OK && changed)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}
