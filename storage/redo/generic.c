/*
 * generic.c - redo of the Generic resource manager (generic_xlog.c), the
 * WAL of index access methods that log page deltas (bloom and other
 * extensions).
 *
 * PostgreSQL 15 has one record type (info 0).  Each block's data is a
 * list of fragments {u16 offset, u16 length, length bytes} copied onto
 * the page in order; a page logged whole (GENERIC_XLOG_FULL_IMAGE, or a
 * delta that would be too big) carries a forced image instead, which the
 * caller restores.  After the fragments the bytes between pd_lower and
 * pd_upper are zeroed, as generic_redo() does, since the delta says
 * nothing about them; then the page LSN is set.
 *
 * A fragment that reaches past the page or the end of the data, and a
 * page whose pd_lower/pd_upper do not bound a hole, are TARN_ECORRUPT
 * (PostgreSQL would write out of bounds there).
 */
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

#define GENERIC_FRAG_HDR 4 /* u16 offset, u16 length */

tarn_rc
redo_generic(redo_ctx *c)
{
    const uint8_t *d = c->data;
    size_t at = 0, len = c->data_len;
    unsigned lower, upper;

    if ((c->r->info & 0xF0) != 0)
        return redo_fail(c, "unknown", "unknown op code 0x%02X",
                         c->r->info & 0xF0);
    if (c->block_id >= 4) /* MAX_GENERIC_XLOG_PAGES */
        return redo_fail(c, "GENERIC", "block id %u, at most 3 expected",
                         c->block_id);
    while (at < len) {
        unsigned off, n;

        if (len - at < GENERIC_FRAG_HDR)
            return redo_fail(c, "GENERIC",
                             "fragment header cut short at byte %zu of %zu", at,
                             len);
        off = tarn_get_u16(d + at);
        n = tarn_get_u16(d + at + 2);
        at += GENERIC_FRAG_HDR;
        if (n > len - at)
            return redo_fail(c, "GENERIC",
                             "fragment of %u bytes at byte %zu of %zu of data",
                             n, at, len);
        if ((size_t)off + n > PG_BLCKSZ)
            return redo_fail(c, "GENERIC",
                             "fragment of %u bytes at page offset %u is "
                             "outside the page",
                             n, off);
        memcpy(c->page + off, d + at, n);
        at += n;
    }
    lower = pg_page_lower(c->page);
    upper = pg_page_upper(c->page);
    if (lower > upper || upper > PG_BLCKSZ)
        return redo_fail(c, "GENERIC",
                         "page bounds lower %u, upper %u enclose no hole",
                         lower, upper);
    memset(c->page + lower, 0, upper - lower);
    pg_page_set_lsn(c->page, c->lsn);
    return TARN_OK;
}
