/*
 * redo.c - the redo entry point and the tarn-native values.
 *
 * The native values exist because these changes have no block reference
 * in the WAL (the visibility map) or because their pages are not
 * relation pages (the SLRUs): ingest turns the record into one small value
 * per page touched, and here each is applied exactly as PostgreSQL's own
 * redo changes that page.
 */
#include "storage/redo/redo.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/pg/walrec.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/rmgr.h"
#include "storage/value.h"

void
pg_page_init(uint8_t *page, size_t special)
{
    size_t s = (special + 7) & ~(size_t)7;

    memset(page, 0, PG_BLCKSZ);
    tarn_put_u16(page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE);
    tarn_put_u16(page + PG_PD_UPPER, (uint16_t)(PG_BLCKSZ - s));
    tarn_put_u16(page + PG_PD_SPECIAL, (uint16_t)(PG_BLCKSZ - s));
    tarn_put_u16(page + PG_PD_PAGESIZE_VERSION, PG_BLCKSZ | 4);
}

void
pg_page_set_lsn(uint8_t *page, tarn_lsn lsn)
{
    tarn_put_u32(page + PG_PD_LSN, (uint32_t)(lsn >> 32));
    tarn_put_u32(page + PG_PD_LSN + 4, (uint32_t)lsn);
}

tarn_lsn
pg_page_get_lsn(const uint8_t *page)
{
    return ((tarn_lsn)tarn_get_u32(page + PG_PD_LSN) << 32)
           | tarn_get_u32(page + PG_PD_LSN + 4);
}

int
pg_page_is_new(const uint8_t *page)
{
    return tarn_get_u16(page + PG_PD_UPPER) == 0;
}

/* ---- what every resource manager's redo shares ------------------------- */

tarn_rc
redo_fail(const redo_ctx *c, const char *type, const char *why, ...)
{
    char l[TARN_LSN_STRLEN], msg[TARN_ERR_MSG / 2];
    va_list ap;

    va_start(ap, why);
    vsnprintf(msg, sizeof(msg), why, ap);
    va_end(ap);
    return tarn_err_set(c->err, TARN_ECORRUPT,
                        "redo of %s %s record ending at %s, block %u of "
                        "%u/%u/%u fork %u: %s",
                        pg_rmgr_name(c->r->rmid), type,
                        tarn_lsn_format(c->lsn, l), c->b->blkno, c->b->rel.spc,
                        c->b->rel.db, c->b->rel.rel, c->b->fork, msg);
}

tarn_rc
redo_no_part(const redo_ctx *c, const char *type)
{
    return redo_fail(c, type, "no part of the record is for block id %u",
                     c->block_id);
}

tarn_rc
redo_need_main(const redo_ctx *c, const char *type, size_t n)
{
    if (c->r->main_len < n)
        return redo_fail(c, type, "main data of %u bytes, %zu expected",
                         c->r->main_len, n);
    return TARN_OK;
}

tarn_rc
redo_need_data(const redo_ctx *c, const char *type, size_t n)
{
    if (c->data_len < n)
        return redo_fail(c, type, "block data of %u bytes, %zu expected",
                         c->data_len, n);
    return TARN_OK;
}

tarn_rc
redo_need_index_page(const redo_ctx *c, const char *type, unsigned special,
                     const char *what)
{
    if (pg_page_is_new(c->page) || !pg_page_header_ok(c->page)
        || pg_page_special(c->page) != special)
        return redo_fail(c, type, "not %s (lower %u, upper %u, special %u)",
                         what, pg_page_lower(c->page), pg_page_upper(c->page),
                         pg_page_special(c->page));
    return TARN_OK;
}

tarn_rc
redo_multi_delete(const redo_ctx *c, const char *type, const uint8_t *offs,
                  size_t n)
{
    uint16_t o[PG_BLCKSZ / 4];

    if (n == 0)
        return TARN_OK;
    if (n > sizeof o / sizeof o[0])
        return redo_fail(c, type, "%zu offsets to delete", n);
    for (size_t i = 0; i < n; i++)
        o[i] = tarn_get_u16(offs + 2 * i);
    if (!pg_page_index_multi_delete(c->page, o, (unsigned)n))
        return redo_fail(c, type,
                         "cannot delete %zu items (offsets %u..%u) from a "
                         "page of %u",
                         n, o[0], o[n - 1], pg_page_max_offset(c->page));
    return TARN_OK;
}

#define FAIL(...) tarn_err_set(err, TARN_ECORRUPT, __VA_ARGS__)

/* pg_xact: two status bits per xid. */
static tarn_rc
apply_clog(uint8_t *page, const tkey *key, const uint8_t *v, size_t len,
           tarn_err *err)
{
    uint32_t n, pageno;
    uint8_t status;

    if (len < 6)
        return FAIL("short clog value");
    status = v[1];
    n = tarn_get_u32(v + 2);
    if (len != 6 + (size_t)n * 4 || status > 3)
        return FAIL("malformed clog value");
    pageno = tkey_f4(key) * PG_SLRU_PAGES_PER_SEGMENT + tkey_f6(key);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t xid = tarn_get_u32(v + 6 + 4 * i);
        uint32_t inpage = xid % PG_CLOG_XACTS_PER_PAGE;
        unsigned shift = (xid % 4) * 2;
        if (xid / PG_CLOG_XACTS_PER_PAGE != pageno)
            return FAIL("clog value for xid %u applied to page %u", xid,
                        pageno);
        page[inpage / 4] = (uint8_t)((page[inpage / 4] & ~(3u << shift))
                                     | ((unsigned)status << shift));
    }
    return TARN_OK;
}

static tarn_rc
apply_mxoff(uint8_t *page, const tkey *key, const uint8_t *v, size_t len,
            tarn_err *err)
{
    uint32_t mid, moff, pageno;

    if (len != 9)
        return FAIL("malformed multixact offset value");
    mid = tarn_get_u32(v + 1);
    moff = tarn_get_u32(v + 5);
    pageno = tkey_f4(key) * PG_SLRU_PAGES_PER_SEGMENT + tkey_f6(key);
    if (mid / PG_MULTIXACT_OFFSETS_PER_PAGE != pageno)
        return FAIL("offset of multixact %u applied to page %u", mid, pageno);
    tarn_put_u32(page + (mid % PG_MULTIXACT_OFFSETS_PER_PAGE) * 4, moff);
    return TARN_OK;
}

static tarn_rc
apply_mxmem(uint8_t *page, const tkey *key, const uint8_t *v, size_t len,
            tarn_err *err)
{
    uint32_t first, n, pageno;

    if (len < 9)
        return FAIL("short multixact members value");
    first = tarn_get_u32(v + 1);
    n = tarn_get_u32(v + 5);
    if (len != 9 + (size_t)n * 5)
        return FAIL("malformed multixact members value");
    pageno = tkey_f4(key) * PG_SLRU_PAGES_PER_SEGMENT + tkey_f6(key);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t m = first + i, xid = tarn_get_u32(v + 9 + 5 * i);
        uint8_t status = v[9 + 5 * i + 4];
        size_t group =
            (m / PG_MULTIXACT_MEMBERS_PER_GROUP) % PG_MULTIXACT_GROUPS_PER_PAGE;
        size_t goff = group * PG_MULTIXACT_GROUP_SIZE;
        size_t slot = m % PG_MULTIXACT_MEMBERS_PER_GROUP;
        if (m / PG_MULTIXACT_MEMBERS_PER_PAGE != pageno)
            return FAIL("multixact member %u applied to page %u", m, pageno);
        /* The flags word holds one status byte per member of the group. */
        page[goff + slot] = status;
        tarn_put_u32(page + goff + 4 + slot * 4, xid);
    }
    return TARN_OK;
}

/* Clear bits of heap block @p hb if it maps to VM page @p vmblk. */
static void
vm_clear_one(uint8_t *page, uint32_t vmblk, uint32_t hb, uint8_t flags)
{
    uint32_t inpage;
    unsigned shift;

    if (hb == TVAL_NO_BLOCK || hb / PG_VM_HEAPBLOCKS_PER_PAGE != vmblk)
        return;
    inpage = hb % PG_VM_HEAPBLOCKS_PER_PAGE;
    shift = (hb % 4) * PG_VM_BITS_PER_HEAPBLOCK;
    page[PG_PAGE_HEADER_SIZE + inpage / 4] &= (uint8_t) ~(flags << shift);
}

static tarn_rc
apply_vmclear(uint8_t *page, const tkey *key, const uint8_t *v, size_t len,
              tarn_err *err)
{
    uint32_t vmblk = tkey_f6(key);

    if (len != 10)
        return FAIL("malformed visibility map clear value");
    /* PostgreSQL initialises a VM page it reads as new before using it. */
    if (pg_page_is_new(page))
        pg_page_init(page, 0);
    vm_clear_one(page, vmblk, tarn_get_u32(v + 1), v[9]);
    vm_clear_one(page, vmblk, tarn_get_u32(v + 5), v[9]);
    return TARN_OK;
}

static tarn_rc
apply_vmtrunc(uint8_t *page, const tkey *key, const uint8_t *v, size_t len,
              tarn_err *err)
{
    uint32_t n, vmblk = tkey_f6(key), trunc_byte;
    unsigned trunc_off;
    uint8_t *map = page + PG_PAGE_HEADER_SIZE;
    size_t mapsize = PG_BLCKSZ - PG_PAGE_HEADER_SIZE;

    if (len != 5)
        return FAIL("malformed visibility map truncate value");
    n = tarn_get_u32(v + 1);
    if (n / PG_VM_HEAPBLOCKS_PER_PAGE != vmblk)
        return FAIL("visibility map truncation at heap block %u applied to "
                    "VM page %u",
                    n, vmblk);
    if (pg_page_is_new(page))
        return TARN_OK; /* nothing set */
    trunc_byte = (n % PG_VM_HEAPBLOCKS_PER_PAGE) / 4;
    trunc_off = (n % 4) * PG_VM_BITS_PER_HEAPBLOCK;
    memset(map + trunc_byte + 1, 0, mapsize - (trunc_byte + 1));
    map[trunc_byte] &= (uint8_t)((1u << trunc_off) - 1);
    return TARN_OK;
}

static tarn_rc
apply_pgrec(redo_stats *st, uint8_t *page, const tkey *key, tarn_lsn lsn,
            const uint8_t *v, size_t len, tarn_err *err)
{
    walrec r;
    const walrec_block *b;
    uint8_t id;
    char l[TARN_LSN_STRLEN], kd[128];
    tarn_rc rc;

    if (len < TVAL_PGREC_HDR)
        return FAIL("short PostgreSQL record value");
    id = v[1];
    rc = walrec_decode(v + TVAL_PGREC_HDR, len - TVAL_PGREC_HDR, 0, lsn, &r,
                       err);
    if (rc != TARN_OK)
        return rc;
    if (id > PG_XLR_MAX_BLOCK_ID || !r.blocks[id].in_use)
        return FAIL("record at LSN end %s has no block %u",
                    tarn_lsn_format(lsn, l), id);
    b = &r.blocks[id];
    if (b->has_image && b->apply) {
        /* Restored images replace the page; the record's own change to
         * this block is then skipped, for every resource manager but
         * the GiST part below. */
        if ((rc = walrec_restore_image(b, page, err)) != TARN_OK)
            return rc;
        if (!pg_page_is_new(page))
            pg_page_set_lsn(page, lsn);
        atomic_fetch_add(&st->images, 1);
    }
    {
        static const uint8_t none[1];
        redo_ctx c;
        /* Like block data, main data is never NULL for redo: modules index
         * it after checking main_len, and offsetting NULL is undefined. */
        if (r.main_data == NULL)
            r.main_data = none;
        c = (redo_ctx){.r = &r,
                       .block_id = id,
                       .b = b,
                       .page = page,
                       .lsn = lsn,
                       .data = b->data != NULL ? b->data : none,
                       .data_len = b->data != NULL ? b->data_len : 0,
                       .err = err};
        if (b->has_image && b->apply) {
            /* GiST also sets the NSN of a left child restored from its
             * image (taken before the NSN was). */
            return r.rmid == PG_RM_GIST ? redo_gist_restored(&c) : TARN_OK;
        }
        switch (r.rmid) {
        case PG_RM_HEAP:
            return redo_heap(&c);
        case PG_RM_HEAP2:
            return redo_heap2(&c);
        case PG_RM_BTREE:
            return redo_btree(&c);
        case PG_RM_HASH:
            return redo_hash(&c);
        case PG_RM_GIST:
            return redo_gist(&c);
        case PG_RM_SPGIST:
            return redo_spgist(&c);
        case PG_RM_SEQ:
            return redo_seq(&c);
        case PG_RM_GIN:
            return redo_gin(&c);
        case PG_RM_BRIN:
            return redo_brin(&c);
        case PG_RM_GENERIC:
            return redo_generic(&c);
        default:
            break;
        }
    }
    return tarn_err_set(err, TARN_EUNSUPPORTED,
                        "redo of %s record (rmgr %u, info 0x%02X) ending at "
                        "%s for %s is not implemented yet",
                        pg_rmgr_name(r.rmid), r.rmid, r.info,
                        tarn_lsn_format(lsn, l),
                        tkey_describe(key, kd, sizeof(kd)));
}

tarn_rc
redo_apply(redo_stats *st, uint8_t *page, const tkey *key, tarn_lsn lsn,
           const uint8_t *val, size_t len, tarn_err *err)
{
    tarn_rc rc;
    bool native = true;

    switch (tval_kind_of(val, len)) {
    case TVAL_IMAGE:
        if (len - 1 != PG_BLCKSZ)
            rc = FAIL("image of %zu bytes where a page was expected", len - 1);
        else {
            memcpy(page, val + 1, PG_BLCKSZ);
            rc = TARN_OK;
        }
        break;
    case TVAL_ZERO:
        memset(page, 0, PG_BLCKSZ);
        rc = TARN_OK;
        break;
    case TVAL_PGREC:
        native = false;
        rc = apply_pgrec(st, page, key, lsn, val, len, err);
        break;
    case TVAL_CLOG:
        rc = apply_clog(page, key, val, len, err);
        break;
    case TVAL_MXOFF:
        rc = apply_mxoff(page, key, val, len, err);
        break;
    case TVAL_MXMEM:
        rc = apply_mxmem(page, key, val, len, err);
        break;
    case TVAL_VMCLEAR:
        rc = apply_vmclear(page, key, val, len, err);
        break;
    case TVAL_VMTRUNC:
        rc = apply_vmtrunc(page, key, val, len, err);
        break;
    default:
        rc = FAIL("unknown value kind %u", len ? val[0] : 0);
        break;
    }
    if (rc != TARN_OK)
        atomic_fetch_add(&st->failures, 1);
    else if (native)
        atomic_fetch_add(&st->native, 1);
    else
        atomic_fetch_add(&st->pg_records, 1);
    return rc;
}
