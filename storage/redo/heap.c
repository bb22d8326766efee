/*
 * heap.c - redo of the Heap and Heap2 resource managers, as PostgreSQL 15's
 * heap_redo() and heap2_redo() change a page.
 *
 * Each record is applied to one block (rmgr.h).  An UPDATE whose new
 * tuple goes to another page is stored for both blocks: block 0 gets the
 * new tuple, block 1 the old tuple's xmax, and an UPDATE on one page does
 * both.  The visibility-map side of these records (clearing bits) is not
 * here: ingest turns it into native VMCLEAR values for the VM page, which
 * has no block reference.  Free-space-map updates are not WAL-logged and
 * not reproduced.  XLOG_HEAP2_VISIBLE leaves the heap page's LSN alone, as
 * PostgreSQL does without data checksums or wal_log_hints.
 *
 * Every check PostgreSQL makes with elog(PANIC) becomes TARN_ECORRUPT with
 * the rmgr, record type, LSN and block, and the page is not served.
 */
#include <stdio.h>
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

/* Heap record types (info & 0x70) and flags. */
#define HEAP_INSERT     0x00
#define HEAP_DELETE     0x10
#define HEAP_UPDATE     0x20
#define HEAP_TRUNCATE   0x30
#define HEAP_HOT_UPDATE 0x40
#define HEAP_CONFIRM    0x50
#define HEAP_LOCK       0x60
#define HEAP_INPLACE    0x70
#define HEAP_OPMASK     0x70
#define HEAP_INIT_PAGE  0x80
#define HEAP2_REWRITE   0x00
#define HEAP2_PRUNE     0x10
#define HEAP2_VACUUM    0x20
#define HEAP2_FREEZE    0x30
#define HEAP2_VISIBLE   0x40
#define HEAP2_MULTI     0x50
#define HEAP2_LOCK_UPD  0x60
#define HEAP2_NEW_CID   0x70

#define XLH_INSERT_ALL_VISIBLE_CLEARED 0x01
#define XLH_INSERT_ALL_FROZEN_SET      0x20
#define XLH_UPDATE_OLD_ALL_VIS_CLEARED 0x01
#define XLH_UPDATE_NEW_ALL_VIS_CLEARED 0x02
#define XLH_UPDATE_PREFIX_FROM_OLD     0x20
#define XLH_UPDATE_SUFFIX_FROM_OLD     0x40
#define XLH_DELETE_ALL_VISIBLE_CLEARED 0x01
#define XLH_DELETE_IS_SUPER            0x08
#define XLH_DELETE_IS_PARTITION_MOVE   0x10
#define XLH_FREEZE_XVAC                0x02
#define XLH_INVALID_XVAC               0x04

#define XLHL_XMAX_IS_MULTI    0x01
#define XLHL_XMAX_LOCK_ONLY   0x02
#define XLHL_XMAX_EXCL_LOCK   0x04
#define XLHL_XMAX_KEYSHR_LOCK 0x08
#define XLHL_KEYS_UPDATED     0x10

/* t_infomask and t_infomask2 bits. */
#define HEAP_XMAX_KEYSHR_LOCK 0x0010
#define HEAP_COMBOCID         0x0020
#define HEAP_XMAX_EXCL_LOCK   0x0040
#define HEAP_XMAX_LOCK_ONLY   0x0080
#define HEAP_XMAX_COMMITTED   0x0400
#define HEAP_XMAX_INVALID     0x0800
#define HEAP_XMAX_IS_MULTI    0x1000
#define HEAP_MOVED            0xC000
#define HEAP_LOCK_MASK        (HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK)
#define HEAP_XMAX_BITS                                            \
    (HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI \
     | HEAP_LOCK_MASK | HEAP_XMAX_LOCK_ONLY)
#define HEAP_KEYS_UPDATED 0x2000
#define HEAP_HOT_UPDATED  0x4000

/* HeapTupleHeaderData field offsets; 23 bytes before the null bitmap. */
enum {
    T_XMIN = 0,
    T_XMAX = 4,
    T_CID = 8,
    T_CTID = 12,
    T_INFOMASK2 = 18,
    T_INFOMASK = 20,
    T_HOFF = 22,
    T_SIZE = 23
};
#define XL_HEAP_HEADER 5 /* t_infomask2, t_infomask, t_hoff */

static const char *const heap_names[8] = {"INSERT",   "DELETE",     "UPDATE",
                                          "TRUNCATE", "HOT_UPDATE", "CONFIRM",
                                          "LOCK",     "INPLACE"};
static const char *const heap2_names[8] = {
    "REWRITE", "PRUNE",        "VACUUM",       "FREEZE_PAGE",
    "VISIBLE", "MULTI_INSERT", "LOCK_UPDATED", "NEW_CID"};

/* ---- tuple header helpers ------------------------------------------------ */

static void
set_ctid(uint8_t *t, uint32_t blk, uint16_t off)
{
    tarn_put_u16(t + T_CTID, (uint16_t)(blk >> 16));
    tarn_put_u16(t + T_CTID + 2, (uint16_t)blk);
    tarn_put_u16(t + T_CTID + 4, off);
}

static uint16_t
infomask(const uint8_t *t)
{
    return tarn_get_u16(t + T_INFOMASK);
}

static uint16_t
infomask2(const uint8_t *t)
{
    return tarn_get_u16(t + T_INFOMASK2);
}

static void
set_masks(uint8_t *t, uint16_t m, uint16_t m2)
{
    tarn_put_u16(t + T_INFOMASK, m);
    tarn_put_u16(t + T_INFOMASK2, m2);
}

/* The xmax-related bits every xmax change starts from, then the bits the
 * record carries (fix_infomask_from_infobits). */
static void
reset_xmax_bits(uint8_t *t, uint8_t infobits)
{
    uint16_t m = infomask(t) & (uint16_t) ~(HEAP_XMAX_BITS | HEAP_MOVED);
    uint16_t m2 = infomask2(t) & (uint16_t)~HEAP_KEYS_UPDATED;

    if (infobits & XLHL_XMAX_IS_MULTI)
        m |= HEAP_XMAX_IS_MULTI;
    if (infobits & XLHL_XMAX_LOCK_ONLY)
        m |= HEAP_XMAX_LOCK_ONLY;
    if (infobits & XLHL_XMAX_EXCL_LOCK)
        m |= HEAP_XMAX_EXCL_LOCK;
    if (infobits & XLHL_XMAX_KEYSHR_LOCK)
        m |= HEAP_XMAX_KEYSHR_LOCK;
    if (infobits & XLHL_KEYS_UPDATED)
        m2 |= HEAP_KEYS_UPDATED;
    set_masks(t, m, m2);
}

/* HeapTupleHeaderSetCmax(t, FirstCommandId, false) and SetCmin: t_cid 0,
 * not a combo CID. */
static void
set_cid_first(uint8_t *t)
{
    tarn_put_u32(t + T_CID, 0);
    tarn_put_u16(t + T_INFOMASK, infomask(t) & (uint16_t)~HEAP_COMBOCID);
}

static void
clear_all_visible(uint8_t *page)
{
    pg_page_set_flags(page, pg_page_flags(page) & ~PG_PD_ALL_VISIBLE);
}

/* The normal tuple at @p off, or a failure. */
static tarn_rc
normal_tuple(const redo_ctx *c, const char *type, unsigned off, uint8_t **t,
             unsigned *len)
{
    *t = pg_page_item(c->page, off, len);
    if (*t == NULL || *len < T_SIZE)
        return redo_fail(c, type, "invalid line pointer %u (the page has %u)",
                         off, pg_page_max_offset(c->page));
    return TARN_OK;
}

/*
 * Build a heap tuple from an xl_heap_header-style header and data, add it
 * at @p off (PAI_OVERWRITE | PAI_IS_HEAP).  @p tup has room for the
 * largest tuple; its first 23 bytes are set here.
 */
static tarn_rc
add_tuple(const redo_ctx *c, const char *type, uint8_t *tup, size_t len,
          uint16_t m2, uint16_t m, uint8_t hoff, uint32_t xmax, unsigned off)
{
    memset(tup, 0, T_SIZE);
    tarn_put_u32(tup + T_XMIN, c->r->xid);
    tarn_put_u32(tup + T_XMAX, xmax);
    set_masks(tup, m, m2);
    tup[T_HOFF] = hoff;
    set_cid_first(tup);
    set_ctid(tup, c->b->blkno, (uint16_t)off);
    if (pg_page_max_offset(c->page) + 1 < off)
        return redo_fail(c, type, "invalid max offset number %u for offset %u",
                         pg_page_max_offset(c->page), off);
    if (pg_page_add_item(c->page, tup, len, off,
                         PG_PAI_OVERWRITE | PG_PAI_IS_HEAP)
        == 0)
        return redo_fail(c, type,
                         "failed to add a tuple of %zu bytes at offset %u", len,
                         off);
    return TARN_OK;
}

/* ---- Heap ---------------------------------------------------------------- */

static tarn_rc
heap_insert(redo_ctx *c, const char *type)
{
    static _Thread_local uint8_t tup[PG_BLCKSZ];
    const uint8_t *md = c->r->main_data, *d = c->data;
    uint16_t off;
    uint8_t flags;
    size_t n;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 3)) != TARN_OK)
        return rc;
    off = tarn_get_u16(md);
    flags = md[2];
    if (c->r->info & HEAP_INIT_PAGE)
        pg_page_init(c->page, 0);
    if (c->data_len <= XL_HEAP_HEADER
        || c->data_len - XL_HEAP_HEADER > PG_MAX_HEAP_TUPLE_SIZE - T_SIZE)
        return redo_fail(c, type, "tuple data of %u bytes", c->data_len);
    n = c->data_len - XL_HEAP_HEADER;
    memcpy(tup + T_SIZE, d + XL_HEAP_HEADER, n);
    if ((rc = add_tuple(c, type, tup, n + T_SIZE, tarn_get_u16(d),
                        tarn_get_u16(d + 2), d[4], 0, off))
        != TARN_OK)
        return rc;
    if (flags & XLH_INSERT_ALL_VISIBLE_CLEARED)
        clear_all_visible(c->page);
    return TARN_OK;
}

static tarn_rc
heap_delete(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    uint8_t *t;
    unsigned len;
    uint16_t off;
    uint8_t flags;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 8)) != TARN_OK)
        return rc;
    off = tarn_get_u16(md + 4);
    flags = md[7];
    if ((rc = normal_tuple(c, type, off, &t, &len)) != TARN_OK)
        return rc;
    reset_xmax_bits(t, md[6]);
    tarn_put_u16(t + T_INFOMASK2, infomask2(t) & (uint16_t)~HEAP_HOT_UPDATED);
    if (!(flags & XLH_DELETE_IS_SUPER))
        tarn_put_u32(t + T_XMAX, tarn_get_u32(md));
    else
        tarn_put_u32(t + T_XMIN, 0);
    set_cid_first(t);
    pg_page_set_prunable(c->page, c->r->xid);
    if (flags & XLH_DELETE_ALL_VISIBLE_CLEARED)
        clear_all_visible(c->page);
    if (flags & XLH_DELETE_IS_PARTITION_MOVE)
        set_ctid(t, 0xFFFFFFFFu, 0xfffd);
    else
        set_ctid(t, c->b->blkno, off);
    return TARN_OK;
}

/* The old tuple's half of an UPDATE. */
static tarn_rc
update_old(redo_ctx *c, const char *type, bool hot, uint32_t newblk)
{
    const uint8_t *md = c->r->main_data;
    uint8_t *t, flags = md[7];
    unsigned len;
    uint16_t m2;
    tarn_rc rc;

    if ((rc = normal_tuple(c, type, tarn_get_u16(md + 4), &t, &len)) != TARN_OK)
        return rc;
    reset_xmax_bits(t, md[6]);
    m2 = infomask2(t);
    m2 = hot ? (m2 | HEAP_HOT_UPDATED) : (m2 & (uint16_t)~HEAP_HOT_UPDATED);
    tarn_put_u16(t + T_INFOMASK2, m2);
    tarn_put_u32(t + T_XMAX, tarn_get_u32(md));
    set_cid_first(t);
    set_ctid(t, newblk, tarn_get_u16(md + 12));
    pg_page_set_prunable(c->page, c->r->xid);
    if (flags & XLH_UPDATE_OLD_ALL_VIS_CLEARED)
        clear_all_visible(c->page);
    return TARN_OK;
}

/* The new tuple's half; @p old is the old tuple when on the same page. */
static tarn_rc
update_new(redo_ctx *c, const char *type, const uint8_t *old, unsigned oldlen)
{
    static _Thread_local uint8_t tup[PG_BLCKSZ];
    const uint8_t *md = c->r->main_data, *d = c->data;
    const uint8_t *end = d + c->data_len;
    uint8_t flags = md[7], hoff, *p = tup + T_SIZE;
    uint16_t prefix = 0, suffix = 0, m2, m;
    size_t tuplen;

    if (flags & (XLH_UPDATE_PREFIX_FROM_OLD | XLH_UPDATE_SUFFIX_FROM_OLD)
        && old == NULL)
        return redo_fail(c, type,
                         "prefix or suffix from an old tuple on "
                         "another page");
    if ((flags & XLH_UPDATE_PREFIX_FROM_OLD) && end - d >= 2)
        prefix = tarn_get_u16(d), d += 2;
    if ((flags & XLH_UPDATE_SUFFIX_FROM_OLD) && end - d >= 2)
        suffix = tarn_get_u16(d), d += 2;
    if (end - d < XL_HEAP_HEADER)
        return redo_fail(c, type, "no tuple header in %u bytes of data",
                         c->data_len);
    m2 = tarn_get_u16(d);
    m = tarn_get_u16(d + 2);
    hoff = d[4];
    d += XL_HEAP_HEADER;
    tuplen = (size_t)(end - d);
    if (T_SIZE + tuplen + prefix + suffix > PG_MAX_HEAP_TUPLE_SIZE
        || (old != NULL
            && (prefix + suffix > oldlen || old[T_HOFF] > oldlen
                || (size_t)old[T_HOFF] + prefix > oldlen)))
        return redo_fail(c, type,
                         "tuple of %zu bytes with prefix %u and "
                         "suffix %u does not fit",
                         tuplen, prefix, suffix);
    if (prefix > 0) {
        /* The null bitmap and padding come first, then the prefix. */
        size_t head = hoff > T_SIZE ? (size_t)(hoff - T_SIZE) : 0;
        if (head > tuplen)
            return redo_fail(c, type, "t_hoff %u past the tuple data", hoff);
        memcpy(p, d, head);
        p += head;
        memcpy(p, old + old[T_HOFF], prefix);
        p += prefix;
        memcpy(p, d + head, tuplen - head);
        p += tuplen - head;
    } else {
        memcpy(p, d, tuplen);
        p += tuplen;
    }
    if (suffix > 0)
        memcpy(p, old + oldlen - suffix, suffix);
    if (add_tuple(c, type, tup, T_SIZE + tuplen + prefix + suffix, m2, m, hoff,
                  tarn_get_u32(md + 8), tarn_get_u16(md + 12))
        != TARN_OK)
        return TARN_ECORRUPT;
    if (flags & XLH_UPDATE_NEW_ALL_VIS_CLEARED)
        clear_all_visible(c->page);
    return TARN_OK;
}

static tarn_rc
heap_update(redo_ctx *c, const char *type, bool hot)
{
    const walrec_block *b1 = c->r->max_block_id >= 1 ? &c->r->blocks[1] : NULL;
    bool other_page = b1 != NULL && b1->in_use;
    uint32_t newblk = c->r->blocks[0].blkno;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 14)) != TARN_OK)
        return rc;
    if (other_page && c->block_id == 1) /* the old page of a cold update */
        return update_old(c, type, false, newblk);
    if (c->block_id != 0)
        return redo_fail(c, type, "no part of the record is for block id %u",
                         c->block_id);
    if (other_page) {
        if (c->r->info & HEAP_INIT_PAGE)
            pg_page_init(c->page, 0);
        return update_new(c, type, NULL, 0);
    }
    /* Both halves on one page: the old tuple first, as PostgreSQL does. */
    {
        uint8_t *old;
        unsigned oldlen;
        if ((rc = update_old(c, type, hot, newblk)) != TARN_OK)
            return rc;
        if ((rc = normal_tuple(c, type, tarn_get_u16(c->r->main_data + 4), &old,
                               &oldlen))
            != TARN_OK)
            return rc;
        /* The new tuple is built before it is added, so the old one can
         * move only after its bytes are copied: copy it first. */
        {
            uint8_t copy[PG_BLCKSZ];
            memcpy(copy, old, oldlen);
            return update_new(c, type, copy, oldlen);
        }
    }
}

static tarn_rc
heap_confirm(redo_ctx *c, const char *type)
{
    uint8_t *t;
    unsigned len, off;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    off = tarn_get_u16(c->r->main_data);
    if ((rc = normal_tuple(c, type, off, &t, &len)) != TARN_OK)
        return rc;
    set_ctid(t, c->b->blkno, (uint16_t)off);
    return TARN_OK;
}

static tarn_rc
heap_lock(redo_ctx *c, const char *type, bool updated)
{
    const uint8_t *md = c->r->main_data;
    uint8_t *t;
    unsigned len, off;
    uint16_t m;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 8)) != TARN_OK)
        return rc;
    off = tarn_get_u16(md + 4);
    if ((rc = normal_tuple(c, type, off, &t, &len)) != TARN_OK)
        return rc;
    reset_xmax_bits(t, md[6]);
    m = infomask(t);
    if (!updated
        && ((m & HEAP_XMAX_LOCK_ONLY)
            || (m & (HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK))
                   == HEAP_XMAX_EXCL_LOCK)) {
        tarn_put_u16(t + T_INFOMASK2,
                     infomask2(t) & (uint16_t)~HEAP_HOT_UPDATED);
        set_ctid(t, c->b->blkno, (uint16_t)off);
    }
    tarn_put_u32(t + T_XMAX, tarn_get_u32(md));
    if (!updated)
        set_cid_first(t);
    return TARN_OK;
}

static tarn_rc
heap_inplace(redo_ctx *c, const char *type)
{
    uint8_t *t;
    unsigned len;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    if ((rc = normal_tuple(c, type, tarn_get_u16(c->r->main_data), &t, &len))
        != TARN_OK)
        return rc;
    if (t[T_HOFF] > len || len - t[T_HOFF] != c->data_len)
        return redo_fail(c, type,
                         "wrong tuple length: %u bytes of data for "
                         "%u",
                         c->data_len, len - t[T_HOFF]);
    memcpy(t + t[T_HOFF], c->data, c->data_len);
    return TARN_OK;
}

/*
 * A page redo changes must have sane pointers (PostgreSQL checks them
 * before changing a page too); only a record that initialises the page
 * may start from anything.
 */
static tarn_rc
need_header(const redo_ctx *c, const char *type)
{
    if (!pg_page_header_ok(c->page))
        return redo_fail(c, type,
                         "corrupted page pointers: lower %u, "
                         "upper %u, special %u",
                         pg_page_lower(c->page), pg_page_upper(c->page),
                         pg_page_special(c->page));
    return TARN_OK;
}

tarn_rc
redo_heap(redo_ctx *c)
{
    uint8_t op = c->r->info & HEAP_OPMASK;
    const char *type = heap_names[op >> 4];
    bool upd = op == HEAP_UPDATE || op == HEAP_HOT_UPDATE;
    /* INIT_PAGE initialises an INSERT's page, and an UPDATE's new page
     * only when the old tuple is on another page (block 1). */
    bool init = (c->r->info & HEAP_INIT_PAGE)
                && (op == HEAP_INSERT
                    || (upd && c->block_id == 0 && c->r->max_block_id >= 1
                        && c->r->blocks[1].in_use));
    tarn_rc rc;

    if (!init && (rc = need_header(c, type)) != TARN_OK)
        return rc;

    switch (op) {
    case HEAP_INSERT:
        rc = heap_insert(c, type);
        break;
    case HEAP_DELETE:
        rc = heap_delete(c, type);
        break;
    case HEAP_UPDATE:
        rc = heap_update(c, type, false);
        break;
    case HEAP_HOT_UPDATE:
        rc = heap_update(c, type, true);
        break;
    case HEAP_CONFIRM:
        rc = heap_confirm(c, type);
        break;
    case HEAP_LOCK:
        rc = heap_lock(c, type, false);
        break;
    case HEAP_INPLACE:
        rc = heap_inplace(c, type);
        break;
    default: /* TRUNCATE has no block references */
        return redo_fail(c, type, "the record has no page change");
    }
    if (rc == TARN_OK)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}

/* ---- Heap2 --------------------------------------------------------------- */

static tarn_rc
heap2_prune(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data, *d = c->data;
    unsigned nredir, ndead, nunused, total, max;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 8)) != TARN_OK)
        return rc;
    nredir = tarn_get_u16(md + 4);
    ndead = tarn_get_u16(md + 6);
    total = c->data_len / 2;
    if (c->data_len % 2 != 0 || 2 * nredir + ndead > total)
        return redo_fail(c, type, "%u redirected and %u dead in %u offsets",
                         nredir, ndead, total);
    nunused = total - 2 * nredir - ndead;
    max = pg_page_max_offset(c->page);
    for (unsigned i = 0; i < total; i++) {
        unsigned off = tarn_get_u16(d + 2 * i);
        if (off == 0 || off > max)
            return redo_fail(c, type,
                             "offset %u outside the line pointer "
                             "array of %u",
                             off, max);
    }
    for (unsigned i = 0; i < nredir; i++)
        pg_lp_set(c->page, tarn_get_u16(d + 4 * i), tarn_get_u16(d + 4 * i + 2),
                  PG_LP_REDIRECT, 0);
    d += 4 * nredir;
    for (unsigned i = 0; i < ndead; i++)
        pg_lp_set(c->page, tarn_get_u16(d + 2 * i), 0, PG_LP_DEAD, 0);
    d += 2 * ndead;
    for (unsigned i = 0; i < nunused; i++)
        pg_lp_set(c->page, tarn_get_u16(d + 2 * i), 0, PG_LP_UNUSED, 0);
    if (!pg_page_repair_fragmentation(c->page))
        return redo_fail(c, type, "corrupted page pointers or items");
    return TARN_OK;
}

static tarn_rc
heap2_vacuum(redo_ctx *c, const char *type)
{
    unsigned n, max = pg_page_max_offset(c->page);
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    n = tarn_get_u16(c->r->main_data);
    if (n == 0 || c->data_len < 2 * n)
        return redo_fail(c, type, "%u unused offsets in %u bytes", n,
                         c->data_len);
    for (unsigned i = 0; i < n; i++) {
        unsigned off = tarn_get_u16(c->data + 2 * i);
        if (off == 0 || off > max)
            return redo_fail(c, type,
                             "offset %u outside the line pointer "
                             "array of %u",
                             off, max);
        pg_lp_set(c->page, off, 0, PG_LP_UNUSED, 0);
    }
    pg_page_truncate_lp_array(c->page);
    return TARN_OK;
}

static tarn_rc
heap2_freeze(redo_ctx *c, const char *type)
{
    enum { FRZ = 12 }; /* sizeof(xl_heap_freeze_tuple) */
    unsigned n;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 6)) != TARN_OK)
        return rc;
    n = tarn_get_u16(c->r->main_data + 4);
    if ((size_t)c->data_len < (size_t)n * FRZ)
        return redo_fail(c, type, "%u tuples in %u bytes", n, c->data_len);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *f = c->data + i * FRZ;
        uint8_t *t;
        unsigned len;
        /* PostgreSQL does not check the line pointer here; we do. */
        if ((rc = normal_tuple(c, type, tarn_get_u16(f + 4), &t, &len))
            != TARN_OK)
            return rc;
        tarn_put_u32(t + T_XMAX, tarn_get_u32(f));
        if (f[10] & XLH_FREEZE_XVAC)
            tarn_put_u32(t + T_CID, 2); /* FrozenTransactionId */
        if (f[10] & XLH_INVALID_XVAC)
            tarn_put_u32(t + T_CID, 0);
        set_masks(t, tarn_get_u16(f + 8), tarn_get_u16(f + 6));
    }
    return TARN_OK;
}

/* XLOG_HEAP2_VISIBLE: block 0 is the VM page, block 1 the heap page. */
static tarn_rc
heap2_visible(redo_ctx *c, const char *type)
{
    uint32_t heapblk, inpage;
    uint8_t flags, *map, bits;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 5)) != TARN_OK)
        return rc;
    flags = c->r->main_data[4];
    if (c->block_id == 1) {
        /* The page LSN stays: no hint-bit logging without checksums. */
        pg_page_set_flags(c->page, pg_page_flags(c->page) | PG_PD_ALL_VISIBLE);
        return TARN_OK;
    }
    if (c->block_id != 0 || c->r->max_block_id < 1 || !c->r->blocks[1].in_use)
        return redo_fail(c, type, "no heap block for the visibility map");
    if (pg_page_is_new(c->page))
        pg_page_init(c->page, 0);
    if (c->lsn <= pg_page_get_lsn(c->page))
        return TARN_OK;
    heapblk = c->r->blocks[1].blkno;
    if (heapblk / PG_VM_HEAPBLOCKS_PER_PAGE != c->b->blkno)
        return redo_fail(c, type, "heap block %u is not on this map page",
                         heapblk);
    inpage = heapblk % PG_VM_HEAPBLOCKS_PER_PAGE;
    map = c->page + PG_PAGE_HEADER_SIZE;
    /* visibilitymap_set(): the LSN moves whenever the bits differ from
     * the flags, even if OR-ing changes nothing. */
    bits = (uint8_t)((map[inpage / 4] >> ((inpage % 4) * 2)) & 3);
    if (bits != flags) {
        map[inpage / 4] |= (uint8_t)(flags << ((inpage % 4) * 2));
        pg_page_set_lsn(c->page, c->lsn);
    }
    return TARN_OK;
}

static tarn_rc
heap2_multi_insert(redo_ctx *c, const char *type)
{
    static _Thread_local uint8_t tup[PG_BLCKSZ];
    const uint8_t *md = c->r->main_data, *d = c->data;
    const uint8_t *end = d + c->data_len;
    bool init = (c->r->info & HEAP_INIT_PAGE) != 0;
    uint8_t flags;
    unsigned n;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 4)) != TARN_OK)
        return rc;
    flags = md[0];
    n = tarn_get_u16(md + 2);
    if (!init && c->r->main_len < 4 + 2 * n)
        return redo_fail(c, type, "%u offsets in %u bytes of main data", n,
                         c->r->main_len);
    if (init)
        pg_page_init(c->page, 0);
    for (unsigned i = 0; i < n; i++) {
        unsigned off = init ? 1 + i : tarn_get_u16(md + 4 + 2 * i);
        size_t len;
        /* Each xl_multi_insert_tuple is 2-byte aligned in the data. */
        if ((d - c->data) % 2)
            d++;
        if (end - d < 7)
            return redo_fail(c, type, "tuple %u of %u is cut short", i + 1, n);
        len = tarn_get_u16(d);
        if ((size_t)(end - d - 7) < len
            || len > PG_MAX_HEAP_TUPLE_SIZE - T_SIZE)
            return redo_fail(c, type, "tuple %u of %u bytes does not fit",
                             i + 1, (unsigned)len);
        memcpy(tup + T_SIZE, d + 7, len);
        if ((rc = add_tuple(c, type, tup, T_SIZE + len, tarn_get_u16(d + 2),
                            tarn_get_u16(d + 4), d[6], 0, off))
            != TARN_OK)
            return rc;
        d += 7 + len;
    }
    if (d != end)
        return redo_fail(c, type, "total tuple length mismatch");
    if (flags & XLH_INSERT_ALL_VISIBLE_CLEARED)
        clear_all_visible(c->page);
    if (flags & XLH_INSERT_ALL_FROZEN_SET)
        pg_page_set_flags(c->page, pg_page_flags(c->page) | PG_PD_ALL_VISIBLE);
    return TARN_OK;
}

tarn_rc
redo_heap2(redo_ctx *c)
{
    uint8_t op = c->r->info & HEAP_OPMASK;
    const char *type = heap2_names[op >> 4];
    bool init = op == HEAP2_MULTI && (c->r->info & HEAP_INIT_PAGE);
    /* The map page of VISIBLE is initialised when new. */
    bool vm = op == HEAP2_VISIBLE && c->block_id == 0;
    tarn_rc rc;

    if (!init && !(vm && pg_page_is_new(c->page))
        && (rc = need_header(c, type)) != TARN_OK)
        return rc;

    switch (op) {
    case HEAP2_PRUNE:
        rc = heap2_prune(c, type);
        break;
    case HEAP2_VACUUM:
        rc = heap2_vacuum(c, type);
        break;
    case HEAP2_FREEZE:
        rc = heap2_freeze(c, type);
        break;
    case HEAP2_VISIBLE:
        return heap2_visible(c, type); /* sets its own LSNs */
    case HEAP2_MULTI:
        rc = heap2_multi_insert(c, type);
        break;
    case HEAP2_LOCK_UPD:
        rc = heap_lock(c, type, true);
        break;
    default: /* REWRITE and NEW_CID change no page */
        return redo_fail(c, type, "the record has no page change");
    }
    if (rc == TARN_OK)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}
