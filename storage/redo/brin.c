/*
 * brin.c - redo of the BRIN index resource manager, as PostgreSQL 15's
 * brin_redo() changes each page.
 *
 * Each record is applied to one block (rmgr.h); the parts by block id:
 *
 *   CREATE_INDEX     0 the metapage (will_init)
 *   INSERT           0 the regular page the tuple goes to (will_init with
 *                    the INIT_PAGE bit); 1 the revmap page pointing at it
 *   UPDATE           as INSERT, and 2 the regular page the old tuple
 *                    leaves
 *   SAMEPAGE_UPDATE  0 the regular page whose tuple is overwritten
 *   REVMAP_EXTEND    0 the metapage; 1 the new revmap page (will_init)
 *   DESUMMARIZE      0 the revmap page; 1 the regular page losing the
 *                    range's tuple
 *
 * A revmap entry is the TID (6 bytes) of the range's tuple, at index
 * (heapBlk / pagesPerRange) % REVMAP_PAGE_MAXITEMS of the page contents.
 * Checks PostgreSQL makes with elog(PANIC/ERROR), and records or pages
 * that would make it read or write out of bounds, become TARN_ECORRUPT.
 */
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

#define B_CREATE_INDEX    0x00
#define B_INSERT          0x10
#define B_UPDATE          0x20
#define B_SAMEPAGE_UPDATE 0x30
#define B_REVMAP_EXTEND   0x40
#define B_DESUMMARIZE     0x50
#define B_OPMASK          0x70
#define B_INIT_PAGE       0x80

static const char *const b_names[8] = {
    "CREATE_INDEX",  "INSERT",      "UPDATE",  "SAMEPAGE_UPDATE",
    "REVMAP_EXTEND", "DESUMMARIZE", "unknown", "unknown"};

/* BrinSpecialSpace: 8 bytes, flags at +4 and page type at +6. */
#define BRIN_SPECIAL_SIZE 8
#define BRIN_TYPE_AT      (PG_BLCKSZ - BRIN_SPECIAL_SIZE + 6)
#define PAGETYPE_META     0xF091
#define PAGETYPE_REVMAP   0xF092
#define PAGETYPE_REGULAR  0xF093

/* BrinMetaPageData at the page contents. */
#define BRIN_META_MAGIC 0xA8109CFA
enum { M_MAGIC = 0, M_VERSION = 4, M_PPR = 8, M_LAST_REVMAP = 12, M_SIZE = 16 };

/* REVMAP_PAGE_MAXITEMS: the contents between header and special, in TIDs. */
#define REVMAP_MAXITEMS \
    ((PG_BLCKSZ - PG_PAGE_HEADER_SIZE - BRIN_SPECIAL_SIZE) / 6)
#define INVALID_BLOCK 0xFFFFFFFFu

/* brin_page_init(). */
static void
brin_init(uint8_t *page, uint16_t type)
{
    pg_page_init(page, BRIN_SPECIAL_SIZE);
    tarn_put_u16(page + BRIN_TYPE_AT, type);
}

/* brinSetHeapBlockItemptr(): the revmap entry of @p heap_blk. */
static tarn_rc
set_revmap(const redo_ctx *c, const char *type, uint32_t ppr, uint32_t heap_blk,
           uint32_t blk, uint16_t off)
{
    uint8_t *e;

    if (ppr == 0)
        return redo_fail(c, type, "0 pages per range");
    e = c->page + PG_PAGE_HEADER_SIZE
        + ((heap_blk / ppr) % REVMAP_MAXITEMS) * 6;
    if (off == 0)
        blk = INVALID_BLOCK; /* ItemPointerSetInvalid() */
    tarn_put_u16(e, (uint16_t)(blk >> 16));
    tarn_put_u16(e + 2, (uint16_t)blk);
    tarn_put_u16(e + 4, off);
    return TARN_OK;
}

static tarn_rc
delete_no_compact(const redo_ctx *c, const char *type, unsigned off)
{
    if (!pg_page_index_delete_no_compact(c->page, off))
        return redo_fail(c, type, "cannot delete item %u of a page of %u", off,
                         pg_page_max_offset(c->page));
    return TARN_OK;
}

/*
 * The insert part of INSERT and UPDATE; @p ins is xl_brin_insert
 * {heapBlk u32, pagesPerRange u32, offnum u16}.
 */
static tarn_rc
insert_update(redo_ctx *c, const char *type, const uint8_t *ins)
{
    unsigned off = tarn_get_u16(ins + 8);

    switch (c->block_id) {
    case 0:
        if (c->r->info & B_INIT_PAGE)
            brin_init(c->page, PAGETYPE_REGULAR);
        if (!pg_page_header_ok(c->page))
            return redo_fail(c, type, "not a BRIN page (lower %u, upper %u)",
                             pg_page_lower(c->page), pg_page_upper(c->page));
        if (off == 0 || pg_page_max_offset(c->page) + 1 < off)
            return redo_fail(c, type, "invalid offset %u on a page of %u", off,
                             pg_page_max_offset(c->page));
        if (c->data_len == 0
            || pg_page_add_item(c->page, c->data, c->data_len, off,
                                PG_PAI_OVERWRITE)
                   == 0)
            return redo_fail(c, type, "failed to add tuple (%u bytes) at %u",
                             c->data_len, off);
        return TARN_OK;
    case 1:
        if (!c->r->blocks[0].in_use)
            return redo_fail(c, type, "block 0 is missing");
        return set_revmap(c, type, tarn_get_u32(ins + 4), tarn_get_u32(ins),
                          c->r->blocks[0].blkno, (uint16_t)off);
    }
    return redo_no_part(c, type);
}

static tarn_rc
b_create_index(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    uint8_t *m = c->page + PG_PAGE_HEADER_SIZE;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 6)) != TARN_OK)
        return rc;
    brin_init(c->page, PAGETYPE_META);
    tarn_put_u32(m + M_MAGIC, BRIN_META_MAGIC);
    tarn_put_u32(m + M_VERSION, tarn_get_u16(md + 4));
    tarn_put_u32(m + M_PPR, tarn_get_u32(md));
    tarn_put_u32(m + M_LAST_REVMAP, 0);
    tarn_put_u16(c->page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + M_SIZE);
    return TARN_OK;
}

static tarn_rc
b_update(redo_ctx *c, const char *type)
{
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 14)) != TARN_OK)
        return rc;
    if (c->block_id == 2)
        return delete_no_compact(c, type, tarn_get_u16(c->r->main_data));
    return insert_update(c, type, c->r->main_data + 4);
}

static tarn_rc
b_samepage_update(redo_ctx *c, const char *type)
{
    unsigned off;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    off = tarn_get_u16(c->r->main_data);
    if (c->data_len == 0
        || !pg_page_index_overwrite(c->page, off, c->data, c->data_len))
        return redo_fail(c, type, "failed to replace tuple %u (%u bytes)", off,
                         c->data_len);
    return TARN_OK;
}

static tarn_rc
b_revmap_extend(redo_ctx *c, const char *type)
{
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 4)) != TARN_OK)
        return rc;
    switch (c->block_id) {
    case 0:
        if (pg_page_is_new(c->page))
            return redo_fail(c, type, "the metapage is not initialised");
        tarn_put_u32(c->page + PG_PAGE_HEADER_SIZE + M_LAST_REVMAP,
                     tarn_get_u32(c->r->main_data));
        tarn_put_u16(c->page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + M_SIZE);
        return TARN_OK;
    case 1:
        brin_init(c->page, PAGETYPE_REVMAP);
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

static tarn_rc
b_desummarize(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 10)) != TARN_OK)
        return rc;
    switch (c->block_id) {
    case 0:
        return set_revmap(c, type, tarn_get_u32(md), tarn_get_u32(md + 4),
                          INVALID_BLOCK, 0);
    case 1:
        return delete_no_compact(c, type, tarn_get_u16(md + 8));
    }
    return redo_no_part(c, type);
}

tarn_rc
redo_brin(redo_ctx *c)
{
    uint8_t op = c->r->info & B_OPMASK;
    const char *type = b_names[op >> 4];
    tarn_rc rc;

    switch (op) {
    case B_CREATE_INDEX:
        rc = b_create_index(c, type);
        break;
    case B_INSERT:
        if ((rc = redo_need_main(c, type, 10)) == TARN_OK)
            rc = insert_update(c, type, c->r->main_data);
        break;
    case B_UPDATE:
        rc = b_update(c, type);
        break;
    case B_SAMEPAGE_UPDATE:
        rc = b_samepage_update(c, type);
        break;
    case B_REVMAP_EXTEND:
        rc = b_revmap_extend(c, type);
        break;
    case B_DESUMMARIZE:
        rc = b_desummarize(c, type);
        break;
    default:
        return redo_fail(c, type, "unknown op code 0x%02X", op);
    }
    if (rc == TARN_OK)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}
