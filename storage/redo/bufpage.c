/*
 * bufpage.c - PostgreSQL's slotted-page primitives for redo.
 *
 * Redo must leave every byte PostgreSQL would leave, including the ones
 * no tuple owns: a later insert's alignment padding is whatever the free
 * space held, so the free space itself has to match.  That decides how
 * fragmentation is repaired here: PostgreSQL moves each tuple's aligned
 * storage (padding included) to its new place in line-pointer order from
 * the special space down, and never writes below the new pd_upper.  We do
 * the same through a scratch copy of the page, which gives the bytes of
 * both of PostgreSQL's paths (the presorted memmove and the scratch copy)
 * without their bookkeeping.
 */
#include "storage/redo/bufpage.h"

#include <string.h>

bool
pg_page_header_ok(const uint8_t *page)
{
    unsigned lower = pg_page_lower(page), upper = pg_page_upper(page);
    unsigned special = pg_page_special(page);

    return lower >= PG_PAGE_HEADER_SIZE && lower <= upper && upper <= special
           && special <= PG_BLCKSZ;
}

uint8_t *
pg_page_item(uint8_t *page, unsigned off, unsigned *len)
{
    uint32_t lp;
    unsigned o, l;

    if (off == 0 || off > pg_page_max_offset(page))
        return NULL;
    lp = pg_lp_get(page, off);
    o = pg_lp_off(lp);
    l = pg_lp_len(lp);
    if (pg_lp_flags(lp) != PG_LP_NORMAL || l == 0 || o < pg_page_lower(page)
        || o + l > PG_BLCKSZ)
        return NULL;
    *len = l;
    return page + o;
}

unsigned
pg_page_add_item(uint8_t *page, const uint8_t *item, size_t size, unsigned off,
                 int flags)
{
    unsigned limit = pg_page_max_offset(page) + 1;
    bool shuffle = false;
    int lower, upper;
    size_t aligned;

    if (!pg_page_header_ok(page))
        return 0;
    if (off != 0) {
        if (flags & PG_PAI_OVERWRITE) {
            if (off < limit) {
                uint32_t lp = pg_lp_get(page, off);
                if (pg_lp_flags(lp) != PG_LP_UNUSED || pg_lp_len(lp) != 0)
                    return 0; /* will not overwrite a used line pointer */
            }
        } else if (off < limit) {
            shuffle = true;
        }
    } else {
        off = limit;
        if (pg_page_flags(page) & PG_PD_HAS_FREE_LINES) {
            for (unsigned i = 1; i < limit; i++) {
                uint32_t lp = pg_lp_get(page, i);
                if (pg_lp_flags(lp) == PG_LP_UNUSED && pg_lp_len(lp) == 0) {
                    off = i;
                    break;
                }
            }
            if (off == limit) /* the hint was wrong */
                pg_page_set_flags(page,
                                  pg_page_flags(page) & ~PG_PD_HAS_FREE_LINES);
        }
    }
    if (off > limit)
        return 0;
    if ((flags & PG_PAI_IS_HEAP) && off > PG_MAX_HEAP_TUPLES)
        return 0;
    lower = pg_page_lower(page) + ((off == limit || shuffle) ? 4 : 0);
    aligned = pg_maxalign(size);
    upper = (int)pg_page_upper(page) - (int)aligned;
    if (lower > upper)
        return 0;
    if (shuffle)
        memmove(page + PG_PAGE_HEADER_SIZE + off * 4,
                page + PG_PAGE_HEADER_SIZE + (off - 1) * 4,
                (size_t)(limit - off) * 4);
    pg_lp_set(page, off, (unsigned)upper, PG_LP_NORMAL, (unsigned)size);
    memcpy(page + upper, item, size);
    tarn_put_u16(page + PG_PD_LOWER, (uint16_t)lower);
    tarn_put_u16(page + PG_PD_UPPER, (uint16_t)upper);
    return off;
}

bool
pg_page_repair_fragmentation(uint8_t *page)
{
    uint8_t scratch[PG_BLCKSZ];
    unsigned lower = pg_page_lower(page), upper = pg_page_upper(page);
    unsigned special = pg_page_special(page);
    unsigned n = pg_page_max_offset(page), last_used = 0, nunused = 0;
    size_t total = 0;
    unsigned nstorage = 0;

    if (lower < PG_PAGE_HEADER_SIZE || lower > upper || upper > special
        || special > PG_BLCKSZ || special != pg_maxalign(special))
        return false;
    /* Check everything before moving anything. */
    for (unsigned i = 1; i <= n; i++) {
        uint32_t lp = pg_lp_get(page, i);
        if (pg_lp_flags(lp) != PG_LP_UNUSED) {
            if (pg_lp_len(lp) != 0) {
                unsigned o = pg_lp_off(lp);
                if (o < upper || o >= special)
                    return false;
                total += pg_maxalign(pg_lp_len(lp));
                nstorage++;
            }
            last_used = i;
        } else {
            nunused++;
        }
    }
    if (nstorage > 0 && total > (size_t)(special - lower))
        return false;
    for (unsigned i = 1; i <= n; i++)
        if (pg_lp_flags(pg_lp_get(page, i)) == PG_LP_UNUSED)
            pg_lp_set(page, i, 0, PG_LP_UNUSED, 0);
    if (nstorage == 0) {
        tarn_put_u16(page + PG_PD_UPPER, (uint16_t)special);
    } else {
        unsigned top = special;
        memcpy(scratch, page, PG_BLCKSZ);
        for (unsigned i = 1; i <= n; i++) {
            uint32_t lp = pg_lp_get(page, i);
            size_t len;
            if (pg_lp_flags(lp) == PG_LP_UNUSED || pg_lp_len(lp) == 0)
                continue;
            len = pg_maxalign(pg_lp_len(lp));
            top -= (unsigned)len;
            if (top != pg_lp_off(lp))
                memcpy(page + top, scratch + pg_lp_off(lp), len);
            pg_lp_set(page, i, top, pg_lp_flags(lp), pg_lp_len(lp));
        }
        tarn_put_u16(page + PG_PD_UPPER, (uint16_t)top);
    }
    if (last_used != n) {
        nunused -= n - last_used;
        tarn_put_u16(page + PG_PD_LOWER,
                     (uint16_t)(lower - 4 * (n - last_used)));
    }
    if (nunused > 0)
        pg_page_set_flags(page, pg_page_flags(page) | PG_PD_HAS_FREE_LINES);
    else
        pg_page_set_flags(page, pg_page_flags(page) & ~PG_PD_HAS_FREE_LINES);
    return true;
}

void
pg_page_truncate_lp_array(uint8_t *page)
{
    unsigned n = pg_page_max_offset(page), nunusedend = 0;
    bool counting = true, hint = false;

    for (unsigned i = n; i >= 1; i--) {
        bool unused = pg_lp_flags(pg_lp_get(page, i)) == PG_LP_UNUSED;
        if (counting && i > 1) {
            if (unused)
                nunusedend++;
            else
                counting = false;
        } else if (unused) {
            hint = true;
            break;
        }
    }
    if (nunusedend > 0)
        tarn_put_u16(page + PG_PD_LOWER,
                     (uint16_t)(pg_page_lower(page) - 4 * nunusedend));
    if (hint)
        pg_page_set_flags(page, pg_page_flags(page) | PG_PD_HAS_FREE_LINES);
    else
        pg_page_set_flags(page, pg_page_flags(page) & ~PG_PD_HAS_FREE_LINES);
}

size_t
pg_page_exact_free(const uint8_t *page)
{
    int space = (int)pg_page_upper(page) - (int)pg_page_lower(page);
    return space < 0 ? 0 : (size_t)space;
}

size_t
pg_page_free(const uint8_t *page)
{
    size_t space = pg_page_exact_free(page);
    return space < 4 ? 0 : space - 4;
}

bool
pg_xid_precedes(uint32_t a, uint32_t b)
{
    /* Permanent xids (< 3) are older than every normal one. */
    if (a < 3 || b < 3)
        return a < b;
    return (int32_t)(a - b) < 0;
}

void
pg_page_set_prunable(uint8_t *page, uint32_t xid)
{
    uint32_t cur = tarn_get_u32(page + PG_PD_PRUNE_XID);

    if (cur == 0 || pg_xid_precedes(xid, cur))
        tarn_put_u32(page + PG_PD_PRUNE_XID, xid);
}

/* ---- index pages --------------------------------------------------------- */

/* PostgreSQL's "paranoia" checks on the page's pointers. */
static bool
index_page_ok(const uint8_t *page)
{
    unsigned special = pg_page_special(page);

    return pg_page_header_ok(page) && special == pg_maxalign(special);
}

/* The storage of line pointer @p off lies in the tuple area. */
static bool
index_item_ok(const uint8_t *page, uint32_t lp)
{
    unsigned o = pg_lp_off(lp), l = pg_lp_len(lp);

    return o >= pg_page_upper(page) && o + l <= pg_page_special(page)
           && o == pg_maxalign(o);
}

bool
pg_page_index_delete(uint8_t *page, unsigned off)
{
    unsigned n = pg_page_max_offset(page), upper, lower, o, size;
    uint32_t lp;

    if (!index_page_ok(page) || off == 0 || off > n)
        return false;
    lp = pg_lp_get(page, off);
    if (!index_item_ok(page, lp))
        return false;
    o = pg_lp_off(lp);
    size = (unsigned)pg_maxalign(pg_lp_len(lp));
    upper = pg_page_upper(page);
    lower = pg_page_lower(page);
    /* Close the gap in the line pointer array. */
    if (off < n)
        memmove(page + PG_PAGE_HEADER_SIZE + (off - 1) * 4,
                page + PG_PAGE_HEADER_SIZE + off * 4, (size_t)(n - off) * 4);
    /* Slide the data below the deleted item up over it. */
    if (o > upper)
        memmove(page + upper + size, page + upper, o - upper);
    upper += size;
    lower -= 4;
    tarn_put_u16(page + PG_PD_UPPER, (uint16_t)upper);
    tarn_put_u16(page + PG_PD_LOWER, (uint16_t)lower);
    if (lower > PG_PAGE_HEADER_SIZE) {
        for (unsigned i = 1; i <= n - 1; i++) {
            uint32_t w = pg_lp_get(page, i);
            if (pg_lp_off(w) <= o)
                pg_lp_set(page, i, pg_lp_off(w) + size, pg_lp_flags(w),
                          pg_lp_len(w));
        }
    }
    return true;
}

bool
pg_page_index_multi_delete(uint8_t *page, const uint16_t *offs, unsigned n)
{
    uint8_t scratch[PG_BLCKSZ];
    uint32_t kept[PG_BLCKSZ / 4];
    unsigned nline, nkept = 0, next = 0, top;
    size_t total = 0;

    if (n <= 2) {
        /* Check every offset first so that a bad one changes nothing. */
        unsigned max = pg_page_max_offset(page);
        for (unsigned i = 0; i < n; i++)
            if (offs[i] == 0 || offs[i] + (n - 1 - i) > max)
                return false;
        while (n-- > 0)
            if (!pg_page_index_delete(page, offs[n]))
                return false;
        return true;
    }
    if (!index_page_ok(page))
        return false;
    nline = pg_page_max_offset(page);
    for (unsigned i = 1; i <= nline; i++) {
        uint32_t lp = pg_lp_get(page, i);
        if (!index_item_ok(page, lp))
            return false;
        if (next < n && i == offs[next]) {
            next++;
            continue;
        }
        kept[nkept++] = lp;
        total += pg_maxalign(pg_lp_len(lp));
    }
    if (next != n
        || total > (size_t)(pg_page_special(page) - pg_page_lower(page)))
        return false;
    /* Compact: kept items in line-pointer order from the special space
     * down, each moving its aligned storage. */
    memcpy(scratch, page, PG_BLCKSZ);
    top = pg_page_special(page);
    for (unsigned i = 0; i < nkept; i++) {
        unsigned len = (unsigned)pg_maxalign(pg_lp_len(kept[i]));
        top -= len;
        if (top != pg_lp_off(kept[i]))
            memcpy(page + top, scratch + pg_lp_off(kept[i]), len);
        pg_lp_set(page, i + 1, top, pg_lp_flags(kept[i]), pg_lp_len(kept[i]));
    }
    tarn_put_u16(page + PG_PD_LOWER,
                 (uint16_t)(PG_PAGE_HEADER_SIZE + 4 * nkept));
    tarn_put_u16(page + PG_PD_UPPER, (uint16_t)top);
    return true;
}

bool
pg_page_index_overwrite(uint8_t *page, unsigned off, const uint8_t *item,
                        size_t size)
{
    unsigned n = pg_page_max_offset(page), o, upper, oldsize, newsize;
    int diff;
    uint32_t lp;

    if (!index_page_ok(page) || off == 0 || off > n)
        return false;
    lp = pg_lp_get(page, off);
    if (!index_item_ok(page, lp))
        return false;
    o = pg_lp_off(lp);
    upper = pg_page_upper(page);
    oldsize = (unsigned)pg_maxalign(pg_lp_len(lp));
    newsize = (unsigned)pg_maxalign(size);
    if (newsize > oldsize + (upper - pg_page_lower(page)))
        return false;
    diff = (int)oldsize - (int)newsize;
    if (diff != 0) {
        memmove(page + (int)upper + diff, page + upper, o - upper);
        tarn_put_u16(page + PG_PD_UPPER, (uint16_t)((int)upper + diff));
        for (unsigned i = 1; i <= n; i++) {
            uint32_t w = pg_lp_get(page, i);
            if (pg_lp_len(w) != 0 && pg_lp_off(w) <= o)
                pg_lp_set(page, i, (unsigned)((int)pg_lp_off(w) + diff),
                          pg_lp_flags(w), pg_lp_len(w));
        }
    }
    pg_lp_set(page, off, (unsigned)((int)o + diff), pg_lp_flags(lp),
              (unsigned)size);
    memcpy(page + (int)o + diff, item, size);
    return true;
}

bool
pg_page_index_delete_no_compact(uint8_t *page, unsigned off)
{
    unsigned n = pg_page_max_offset(page), upper, o, size;
    uint32_t lp;

    if (!index_page_ok(page) || off == 0 || off > n)
        return false;
    lp = pg_lp_get(page, off);
    if (!index_item_ok(page, lp))
        return false;
    o = pg_lp_off(lp);
    size = (unsigned)pg_maxalign(pg_lp_len(lp));
    upper = pg_page_upper(page);
    if (off < n) {
        pg_lp_set(page, off, 0, PG_LP_UNUSED, 0);
    } else {
        tarn_put_u16(page + PG_PD_LOWER, (uint16_t)(pg_page_lower(page) - 4));
        n--;
    }
    if (o > upper)
        memmove(page + upper + size, page + upper, o - upper);
    upper += size;
    tarn_put_u16(page + PG_PD_UPPER, (uint16_t)upper);
    /* PageIsEmpty(): no line pointers left. */
    if (pg_page_lower(page) > PG_PAGE_HEADER_SIZE) {
        for (unsigned i = 1; i <= n; i++) {
            uint32_t w = pg_lp_get(page, i);
            if (pg_lp_len(w) != 0 && pg_lp_off(w) <= o)
                pg_lp_set(page, i, pg_lp_off(w) + size, pg_lp_flags(w),
                          pg_lp_len(w));
        }
    }
    return true;
}
