/*
 * gist.c - redo of the GiST index resource manager, as PostgreSQL 15's
 * gist_redo() changes each page.
 *
 * Each record is applied to one block (rmgr.h); the parts by block id:
 *
 *   PAGE_UPDATE  0 the page changed (items deleted, overwritten, added);
 *                1 the left child whose split this completes (NSN set to
 *                the record's LSN, F_FOLLOW_RIGHT cleared)
 *   DELETE       0 the leaf losing dead items
 *   PAGE_SPLIT   0 the left child, as block 1 of PAGE_UPDATE; 1..npage
 *                the pages of the split (will_init), each rebuilt from
 *                the record's tuples with its right link, NSN and flags
 *   PAGE_DELETE  0 the emptied leaf (marked deleted); 1 the parent
 *                losing the downlink
 *   PAGE_REUSE   (no block: a recovery conflict point only)
 *   ASSIGN_LSN   (no block)
 *
 * PostgreSQL updates the left child even when its full-page image was
 * restored, because the image was taken before the NSN was set; the caller
 * restores images and then calls redo_gist_restored() for that part.
 *
 * PostgreSQL 15.20 deprecated F_TUPLES_DELETED: neither the primary nor
 * redo sets it any more (15.18 still set it on the redo of PAGE_UPDATE
 * deletions and DELETE, and on the primary's VACUUM but not its prune).
 * tarn does what 15.20 does, which both oracles check.
 *
 * Every check PostgreSQL makes with elog(ERROR), and every place where a
 * damaged record or page would make it read or write out of bounds,
 * becomes TARN_ECORRUPT naming the record type.
 */
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

/* Record types (info & 0xF0). */
#define G_PAGE_UPDATE 0x00
#define G_DELETE      0x10
#define G_PAGE_REUSE  0x20
#define G_PAGE_SPLIT  0x30
#define G_PAGE_DELETE 0x60
#define G_ASSIGN_LSN  0x70

static const char *const g_names[16] = {
    "PAGE_UPDATE", "DELETE",  "PAGE_REUSE",  "PAGE_SPLIT",
    "unknown",     "unknown", "PAGE_DELETE", "ASSIGN_LSN",
    "unknown",     "unknown", "unknown",     "unknown",
    "unknown",     "unknown", "unknown",     "unknown"};

/* GISTPageOpaqueData: the 16-byte special space. */
#define G_OPAQUE_SIZE 16
#define G_SPECIAL     (PG_BLCKSZ - G_OPAQUE_SIZE)
enum { O_NSN = 0, O_RIGHTLINK = 8, O_FLAGS = 12, O_PAGE_ID = 14 };
#define GIST_PAGE_ID  0xFF81
#define INVALID_BLOCK 0xFFFFFFFFu
#define GIST_ROOT     0u

#define F_LEAF         0x0001
#define F_DELETED      0x0002
#define F_FOLLOW_RIGHT 0x0008
#define F_HAS_GARBAGE  0x0010

/* gistxlogPageSplit: origrlink, orignsn (8-aligned), origleaf, npage,
 * markfollowright; 24 bytes with padding. */
enum { S_RLINK = 0, S_NSN = 8, S_LEAF = 16, S_NPAGE = 18, S_MARKFR = 20 };
#define S_SIZE 24

#define IT_INFO         6
#define IT_HDR          8
#define INDEX_SIZE_MASK 0x1FFF

/* ---- helpers ---------------------------------------------------------------
 */

static uint8_t *
opq(uint8_t *page)
{
    return page + G_SPECIAL;
}

static uint16_t
get_flags(uint8_t *page)
{
    return tarn_get_u16(opq(page) + O_FLAGS);
}

static void
set_flags(uint8_t *page, uint16_t f)
{
    tarn_put_u16(opq(page) + O_FLAGS, f);
}

/* GistPageSetNSN(): the NSN is kept as {xlogid, xrecoff} like pd_lsn. */
static void
set_nsn(uint8_t *page, uint64_t nsn)
{
    tarn_put_u32(opq(page) + O_NSN, (uint32_t)(nsn >> 32));
    tarn_put_u32(opq(page) + O_NSN + 4, (uint32_t)nsn);
}

/* The page must be a GiST page PostgreSQL can work on. */
static tarn_rc
need_gist_page(const redo_ctx *c, const char *type)
{
    return redo_need_index_page(c, type, G_SPECIAL, "a GiST index page");
}

/* gistinitpage(): an empty page with GiST special space and flags @p f. */
static void
g_init(uint8_t *page, uint16_t f)
{
    pg_page_init(page, G_OPAQUE_SIZE);
    tarn_put_u32(opq(page) + O_RIGHTLINK, INVALID_BLOCK);
    set_flags(page, f);
    tarn_put_u16(opq(page) + O_PAGE_ID, GIST_PAGE_ID);
}

/*
 * The size of the index tuple at byte @p at of @p len bytes of @p d, or 0
 * (after failing) when it does not fit.
 */
static size_t
tuple_size(const redo_ctx *c, const char *type, const uint8_t *d, size_t at,
           size_t len)
{
    size_t s;

    if (len - at < IT_HDR) {
        redo_fail(c, type, "tuple data cut short at byte %zu of %zu", at, len);
        return 0;
    }
    s = tarn_get_u16(d + at + IT_INFO) & INDEX_SIZE_MASK;
    if (s < IT_HDR || s > len - at) {
        redo_fail(c, type, "tuple of %zu bytes at byte %zu of %zu", s, at, len);
        return 0;
    }
    return s;
}

/*
 * PageAddItem() of the tuples in d[at..len) at offsets @p off, @p off + 1,
 * ... (gistfillbuffer()).  @return the number added in *n.
 */
static tarn_rc
add_tuples(const redo_ctx *c, const char *type, const uint8_t *d, size_t at,
           size_t len, unsigned off, unsigned *n)
{
    while (at < len) {
        size_t s = tuple_size(c, type, d, at, len);
        if (s == 0)
            return TARN_ECORRUPT;
        if (pg_page_add_item(c->page, d + at, s, off, 0) != off)
            return redo_fail(c, type,
                             "failed to add item of %zu bytes at offset %u", s,
                             off);
        at += s;
        off++;
        (*n)++;
    }
    return TARN_OK;
}

/* gistRedoClearFollowRight(): the left child of a completed split. */
static tarn_rc
clear_follow_right(redo_ctx *c, const char *type)
{
    tarn_rc rc;

    if ((rc = need_gist_page(c, type)) != TARN_OK)
        return rc;
    set_nsn(c->page, c->lsn);
    set_flags(c->page, get_flags(c->page) & ~F_FOLLOW_RIGHT);
    return TARN_OK;
}

/* ---- record types ----------------------------------------------------------
 */

static tarn_rc
g_page_update(redo_ctx *c, const char *type)
{
    const uint8_t *d = c->data;
    size_t at = 0, len = c->data_len;
    unsigned ndel, nins, n = 0, off;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 4)) != TARN_OK)
        return rc;
    if (c->block_id == 1)
        return clear_follow_right(c, type);
    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = need_gist_page(c, type)) != TARN_OK)
        return rc;
    ndel = tarn_get_u16(c->r->main_data);
    nins = tarn_get_u16(c->r->main_data + 2);
    if ((size_t)ndel * 2 > len)
        return redo_fail(c, type, "%u offsets in %zu bytes of block data", ndel,
                         len);
    if (ndel == 1 && nins == 1) {
        /* One tuple replacing another: PageIndexTupleOverwrite(). */
        size_t s = tuple_size(c, type, d, 2, len);
        unsigned o = tarn_get_u16(d);
        if (s == 0)
            return TARN_ECORRUPT;
        if (!pg_page_index_overwrite(c->page, o, d + 2, s))
            return redo_fail(c, type,
                             "failed to overwrite item %u of %u with %zu bytes",
                             o, pg_page_max_offset(c->page), s);
        at = 2 + s;
        n = 1;
    } else if (ndel > 0) {
        if ((rc = redo_multi_delete(c, type, d, ndel)) != TARN_OK)
            return rc;
        at = (size_t)ndel * 2;
    }
    off = pg_page_lower(c->page) <= PG_PAGE_HEADER_SIZE
              ? 1
              : pg_page_max_offset(c->page) + 1;
    if ((rc = add_tuples(c, type, d, at, len, off, &n)) != TARN_OK)
        return rc;
    if (n != nins)
        return redo_fail(c, type, "%u tuples for %u to insert", n, nins);
    return TARN_OK;
}

static tarn_rc
g_delete(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    unsigned ndel;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 6)) != TARN_OK
        || (rc = need_gist_page(c, type)) != TARN_OK)
        return rc;
    if (c->r->main_len > 6) {
        ndel = tarn_get_u16(md + 4);
        if ((size_t)ndel * 2 > c->r->main_len - 6)
            return redo_fail(c, type, "%u offsets in %u bytes", ndel,
                             c->r->main_len - 6);
        if ((rc = redo_multi_delete(c, type, md + 6, ndel)) != TARN_OK)
            return rc;
    }
    set_flags(c->page, get_flags(c->page) & ~F_HAS_GARBAGE);
    return TARN_OK;
}

static tarn_rc
g_page_split(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    const uint8_t *d = c->data;
    unsigned npage, i, n = 0;
    int32_t num;
    bool root = false, last;
    uint32_t blkno = c->b->blkno;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, S_SIZE)) != TARN_OK)
        return rc;
    if (c->block_id == 0)
        return clear_follow_right(c, type);
    npage = tarn_get_u16(md + S_NPAGE);
    i = c->block_id - 1u;
    if (i >= npage)
        return redo_no_part(c, type);
    /* PostgreSQL notices a root split as it reaches the root's block. */
    for (unsigned j = 0; j <= i; j++) {
        const walrec_block *bj = &c->r->blocks[j + 1];
        if (!bj->in_use)
            return redo_fail(c, type, "split page %u of %u is missing", j + 1,
                             npage);
        if (bj->blkno == GIST_ROOT)
            root = true;
    }
    last = i + 1 == npage;
    if (!last && !c->r->blocks[i + 2].in_use)
        return redo_fail(c, type, "split page %u of %u is missing", i + 2,
                         npage);
    if (c->data_len < 4)
        return redo_fail(c, type, "block data of %u bytes, 4 expected",
                         c->data_len);
    num = (int32_t)tarn_get_u32(d);
    if (num < 0)
        return redo_fail(c, type, "%d tuples", num);
    g_init(c->page, (md[S_LEAF] && blkno != GIST_ROOT) ? F_LEAF : 0);
    if ((rc = add_tuples(c, type, d, 4, c->data_len, 1, &n)) != TARN_OK)
        return rc;
    if (n != (unsigned)num)
        return redo_fail(c, type, "%u tuples where %d were announced", n, num);
    set_nsn(c->page, tarn_get_u64(md + S_NSN));
    if (blkno == GIST_ROOT) {
        tarn_put_u32(opq(c->page) + O_RIGHTLINK, INVALID_BLOCK);
        set_flags(c->page, get_flags(c->page) & ~F_FOLLOW_RIGHT);
        return TARN_OK;
    }
    tarn_put_u32(opq(c->page) + O_RIGHTLINK,
                 last ? tarn_get_u32(md + S_RLINK) : c->r->blocks[i + 2].blkno);
    if (!last && !root && md[S_MARKFR])
        set_flags(c->page, get_flags(c->page) | F_FOLLOW_RIGHT);
    else
        set_flags(c->page, get_flags(c->page) & ~F_FOLLOW_RIGHT);
    return TARN_OK;
}

static tarn_rc
g_page_delete(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    unsigned off;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 10)) != TARN_OK)
        return rc;
    switch (c->block_id) {
    case 0:
        /* GistPageSetDeleted(): the deleteXid in the page contents. */
        if ((rc = need_gist_page(c, type)) != TARN_OK)
            return rc;
        if (pg_page_upper(c->page) < PG_PAGE_HEADER_SIZE + 8)
            return redo_fail(c, type, "no room for the delete XID (upper %u)",
                             pg_page_upper(c->page));
        set_flags(c->page, get_flags(c->page) | F_DELETED);
        tarn_put_u16(c->page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + 8);
        tarn_put_u64(c->page + PG_PAGE_HEADER_SIZE, tarn_get_u64(md));
        return TARN_OK;
    case 1:
        if ((rc = need_gist_page(c, type)) != TARN_OK)
            return rc;
        off = tarn_get_u16(md + 8);
        if (!pg_page_index_delete(c->page, off))
            return redo_fail(c, type, "cannot delete downlink %u of %u", off,
                             pg_page_max_offset(c->page));
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

tarn_rc
redo_gist(redo_ctx *c)
{
    uint8_t op = c->r->info & 0xF0;
    const char *type = g_names[op >> 4];
    tarn_rc rc;

    switch (op) {
    case G_PAGE_UPDATE:
        rc = g_page_update(c, type);
        break;
    case G_DELETE:
        rc = g_delete(c, type);
        break;
    case G_PAGE_SPLIT:
        rc = g_page_split(c, type);
        break;
    case G_PAGE_DELETE:
        rc = g_page_delete(c, type);
        break;
    case G_PAGE_REUSE:
    case G_ASSIGN_LSN:
        return redo_no_part(c, type);
    default:
        return redo_fail(c, type, "unknown op code 0x%02X", op);
    }
    if (rc == TARN_OK)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}

tarn_rc
redo_gist_restored(redo_ctx *c)
{
    uint8_t op = c->r->info & 0xF0;
    tarn_rc rc;

    if ((op == G_PAGE_UPDATE && c->block_id == 1)
        || (op == G_PAGE_SPLIT && c->block_id == 0)) {
        rc = clear_follow_right(c, g_names[op >> 4]);
        if (rc == TARN_OK)
            pg_page_set_lsn(c->page, c->lsn);
        return rc;
    }
    return TARN_OK;
}
