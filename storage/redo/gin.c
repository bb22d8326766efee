/*
 * gin.c - redo of the GIN index resource manager, as PostgreSQL 15's
 * gin_redo() changes each page.
 *
 * Each record is applied to one block (rmgr.h); the parts by block id:
 *
 *   CREATE_PTREE          0 the posting tree's root leaf (will_init), from
 *                         the posting list in the main data
 *   INSERT                0 the entry or data page inserted into; 1 the
 *                         child whose split this insert finishes
 *                         (INCOMPLETE_SPLIT cleared)
 *   SPLIT                 0, 1, 2 always full-page images; 3 the child
 *                         whose split this split finishes
 *   VACUUM_PAGE           0 always a full-page image
 *   VACUUM_DATA_LEAF_PAGE 0 the posting tree leaf, recompressed
 *   DELETE_PAGE           0 the deleted page; 1 the parent losing its
 *                         downlink; 2 the left sibling (right link)
 *   UPDATE_META_PAGE      0 the metapage (rebuilt); 1 the pending list tail
 *                         that gets tuples, or the old tail linked to a
 *                         new sublist
 *   INSERT_LISTPAGE       0 the pending list page (will_init)
 *   DELETE_LISTPAGE       0 the metapage (rebuilt); 1..n the pending list
 *                         pages deleted (reinitialised)
 *
 * A posting tree leaf holds a sequence of posting list segments
 * {first TID (6 bytes), u16 nbytes, nbytes of varbyte deltas, padded to
 * an even size}.  INSERT and VACUUM_DATA_LEAF_PAGE log the changes as
 * segment actions (delete, insert, replace, add items) that
 * ginRedoRecompress() replays; "add items" decodes the old segment,
 * merges the new TIDs and encodes it again, as ginCompressPostingList()
 * does.  Checks PostgreSQL makes with elog(PANIC/ERROR), and records or
 * pages that would make it read or write out of bounds (a malformed
 * varbyte list among them), become TARN_ECORRUPT.  Leaf pages in the
 * pre-9.4 uncompressed format are refused.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

#define G_CREATE_PTREE          0x10
#define G_INSERT                0x20
#define G_SPLIT                 0x30
#define G_VACUUM_PAGE           0x40
#define G_DELETE_PAGE           0x50
#define G_UPDATE_META_PAGE      0x60
#define G_INSERT_LISTPAGE       0x70
#define G_DELETE_LISTPAGE       0x80
#define G_VACUUM_DATA_LEAF_PAGE 0x90

static const char *const g_names[16] = {
    "unknown",          "CREATE_PTREE",
    "INSERT",           "SPLIT",
    "VACUUM_PAGE",      "DELETE_PAGE",
    "UPDATE_META_PAGE", "INSERT_LISTPAGE",
    "DELETE_LISTPAGE",  "VACUUM_DATA_LEAF_PAGE",
    "unknown",          "unknown",
    "unknown",          "unknown",
    "unknown",          "unknown"};

/* GinPageOpaqueData: the 8-byte special space. */
#define GIN_OPAQUE_SIZE 8
#define GIN_SPECIAL     (PG_BLCKSZ - GIN_OPAQUE_SIZE)
enum { O_RIGHTLINK = 0, O_MAXOFF = 4, O_FLAGS = 6 };

#define GIN_DATA             0x01
#define GIN_LEAF             0x02
#define GIN_DELETED          0x04
#define GIN_META             0x08
#define GIN_LIST             0x10
#define GIN_LIST_FULLROW     0x20
#define GIN_INCOMPLETE_SPLIT 0x40
#define GIN_COMPRESSED       0x80

#define GIN_INSERT_ISDATA 0x01
#define GIN_INSERT_ISLEAF 0x02

#define INVALID_BLOCK 0xFFFFFFFFu

/* GinMetaPageData (56 bytes with its padding) at the page contents. */
#define GIN_META_SIZE 56
#define GIN_VERSION   2
enum {
    M_HEAD = 0,
    M_TAIL = 4,
    M_TAIL_FREE = 8,
    M_NPENDING_PAGES = 12,
    M_NPENDING_TUPLES = 16,
    M_NTOTAL = 24,
    M_NENTRY = 28,
    M_NDATA = 32,
    M_NENTRIES = 40,
    M_VERSION = 48
};

/* Data pages: the right bound item pointer, then the data at byte 32. */
#define GIN_DATA_START    (PG_PAGE_HEADER_SIZE + 8)
#define GIN_DATA_MAX_SIZE (GIN_SPECIAL - GIN_DATA_START)
#define POSTING_ITEM_SIZE 10 /* BlockIdData child, ItemPointerData key */

/* Posting list segments. */
#define SEG_HDR          8  /* ItemPointerData first, u16 nbytes */
#define TID_OFFSET_BITS  11 /* MaxHeapTuplesPerPageBits */
#define MAX_VARBYTE_LEN  7
#define SEGMENT_DELETE   1
#define SEGMENT_INSERT   2
#define SEGMENT_REPLACE  3
#define SEGMENT_ADDITEMS 4

#define IT_INFO         6
#define IT_HDR          8
#define INDEX_SIZE_MASK 0x1FFF

/* ---- helpers ---------------------------------------------------------------
 */

static uint8_t *
opq(uint8_t *page)
{
    return page + GIN_SPECIAL;
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

/* The page must be a GIN page PostgreSQL can work on. */
static tarn_rc
need_gin_page(const redo_ctx *c, const char *type)
{
    return redo_need_index_page(c, type, GIN_SPECIAL, "a GIN page");
}

/* GinInitPage(). */
static void
gin_init(uint8_t *page, uint16_t flags)
{
    pg_page_init(page, GIN_OPAQUE_SIZE);
    tarn_put_u32(opq(page) + O_RIGHTLINK, INVALID_BLOCK);
    set_flags(page, flags);
}

/* GinInitMetabuffer() and the logged metadata copied over it. */
static void
gin_meta(uint8_t *page, const uint8_t *metadata)
{
    gin_init(page, GIN_META);
    memcpy(page + PG_PAGE_HEADER_SIZE, metadata, GIN_META_SIZE);
    tarn_put_u16(page + PG_PD_LOWER, PG_PAGE_HEADER_SIZE + GIN_META_SIZE);
}

/* GinDataPageSetDataSize(). */
static void
set_data_size(uint8_t *page, unsigned size)
{
    tarn_put_u16(page + PG_PD_LOWER, (uint16_t)(GIN_DATA_START + size));
}

static uint32_t
get_block_id(const uint8_t *p)
{
    return (uint32_t)tarn_get_u16(p) << 16 | tarn_get_u16(p + 2);
}

static void
put_block_id(uint8_t *p, uint32_t blk)
{
    tarn_put_u16(p, (uint16_t)(blk >> 16));
    tarn_put_u16(p + 2, (uint16_t)blk);
}

/* ginRedoClearIncompleteSplit(). */
static tarn_rc
clear_incomplete_split(const redo_ctx *c, const char *type)
{
    tarn_rc rc;

    if ((rc = need_gin_page(c, type)) != TARN_OK)
        return rc;
    set_flags(c->page, get_flags(c->page) & ~GIN_INCOMPLETE_SPLIT);
    return TARN_OK;
}

/* Add @p n index tuples packed in @p d (each IndexTupleSize long) from
 * offset @p off on. */
static tarn_rc
add_tuples(const redo_ctx *c, const char *type, const uint8_t *d, size_t len,
           int32_t n, unsigned off)
{
    size_t at = 0;

    if (n < 0)
        return redo_fail(c, type, "%d tuples", n);
    for (int32_t i = 0; i < n; i++, off++) {
        size_t s;
        if (len - at < IT_HDR)
            return redo_fail(c, type, "tuple %d cut short at byte %zu of %zu",
                             i, at, len);
        s = tarn_get_u16(d + at + IT_INFO) & INDEX_SIZE_MASK;
        if (s < IT_HDR || s > len - at)
            return redo_fail(c, type,
                             "tuple of %zu bytes at byte %zu of %zu of data", s,
                             at, len);
        if (pg_page_add_item(c->page, d + at, s, off, 0) == 0)
            return redo_fail(c, type,
                             "failed to add tuple (%zu bytes) at offset %u", s,
                             off);
        at += s;
    }
    if (at != len)
        return redo_fail(c, type, "%zu bytes of data left after %d tuples",
                         len - at, n);
    return TARN_OK;
}

/* ---- posting lists ---------------------------------------------------------
 */

/* SizeOfGinPostingList() of the segment at @p s, which has @p avail bytes;
 * 0 when its header or its bytes do not fit. */
static size_t
seg_size(const uint8_t *s, size_t avail)
{
    size_t n;

    if (avail < SEG_HDR)
        return 0;
    n = SEG_HDR + (((size_t)tarn_get_u16(s + 6) + 1) & ~(size_t)1);
    return n > avail ? 0 : n;
}

static uint64_t
tid_to_u64(const uint8_t *t)
{
    return (uint64_t)get_block_id(t) << TID_OFFSET_BITS | tarn_get_u16(t + 4);
}

static void
u64_to_tid(uint64_t v, uint8_t *t)
{
    put_block_id(t, (uint32_t)(v >> TID_OFFSET_BITS));
    tarn_put_u16(t + 4, (uint16_t)(v & ((1u << TID_OFFSET_BITS) - 1)));
}

/*
 * ginPostingListDecode() of one segment into @p out (at most @p max).
 * @return the number of TIDs, or -1 when a varbyte runs past the segment
 * or past seven bytes, a TID's block number overflows, or there are more
 * than @p max.
 */
static int
seg_decode(const uint8_t *s, uint64_t *out, int max)
{
    const uint8_t *p = s + SEG_HDR, *end = p + tarn_get_u16(s + 6);
    uint64_t v;
    int n = 0;

    if (tarn_get_u16(s + 4) >= 1u << TID_OFFSET_BITS)
        return -1;
    v = tid_to_u64(s);
    out[n++] = v;
    while (p < end) {
        uint64_t delta = 0;
        unsigned shift = 0;
        for (;;) {
            uint8_t b;
            if (p == end || shift > 42)
                return -1;
            b = *p++;
            if (shift == 42 && (b & 0x80))
                return -1;
            delta |= (uint64_t)(b & 0x7F) << shift;
            shift += 7;
            if (!(b & 0x80))
                break;
        }
        v += delta;
        if ((v >> TID_OFFSET_BITS) > 0xFFFFFFFFu || n == max)
            return -1;
        out[n++] = v;
    }
    return n;
}

/*
 * ginCompressPostingList() of @p n (> 0) TIDs with room for a whole page:
 * the segment, its padding byte zeroed, into @p out.  @return its size,
 * or 0 when the TIDs are not increasing or do not all fit.
 */
static size_t
seg_encode(const uint64_t *tids, int n, uint8_t *out)
{
    uint8_t *p = out + SEG_HDR, *end = out + PG_BLCKSZ;
    size_t nbytes;

    u64_to_tid(tids[0], out);
    for (int i = 1; i < n; i++) {
        uint64_t delta = tids[i] - tids[i - 1];
        uint8_t buf[MAX_VARBYTE_LEN + 3];
        size_t k = 0;
        if (tids[i] <= tids[i - 1])
            return 0;
        while (delta > 0x7F) {
            buf[k++] = (uint8_t)(0x80 | (delta & 0x7F));
            delta >>= 7;
        }
        buf[k++] = (uint8_t)delta;
        if (k > (size_t)(end - p))
            return 0;
        memcpy(p, buf, k);
        p += k;
    }
    nbytes = (size_t)(p - (out + SEG_HDR));
    tarn_put_u16(out + 6, (uint16_t)nbytes);
    if (nbytes & 1)
        *p = 0;
    return SEG_HDR + ((nbytes + 1) & ~(size_t)1);
}

/* ginMergeItemPointers(): both sorted; equal TIDs kept once. */
static int
merge_tids(const uint64_t *a, int na, const uint64_t *b, int nb, uint64_t *dst)
{
    int i = 0, j = 0, n = 0;

    while (i < na && j < nb) {
        if (a[i] > b[j])
            dst[n++] = b[j++];
        else if (a[i] == b[j])
            dst[n++] = b[j++], i++;
        else
            dst[n++] = a[i++];
    }
    while (i < na)
        dst[n++] = a[i++];
    while (j < nb)
        dst[n++] = b[j++];
    return n;
}

/*
 * The ADDITEMS action: the segment at @p seg (segment @p segno) decoded,
 * the @p nitems TIDs at @p items merged in, and the result encoded into
 * @p out (a page's worth), its size in *size.
 */
static tarn_rc
add_items(const redo_ctx *c, const char *type, const uint8_t *seg,
          unsigned segno, const uint8_t *items, unsigned nitems, uint8_t *out,
          size_t *size)
{
    /* A segment of n varbyte bytes holds at most n + 1 TIDs. */
    size_t cap = (size_t)tarn_get_u16(seg + 6) + 1;
    uint64_t *oldt = malloc(sizeof(uint64_t) * 2 * (cap + nitems + 1));
    uint64_t *newt, *merged;
    int nold, nm;
    tarn_rc rc = TARN_OK;

    if (oldt == NULL)
        return tarn_err_set(c->err, TARN_ENOMEM,
                            "GIN redo: no memory to recompress a leaf");
    newt = oldt + cap;
    merged = newt + nitems + 1;
    nold = seg_decode(seg, oldt, (int)cap);
    if (nold < 0) {
        rc = redo_fail(c, type, "malformed posting list segment %u", segno);
        goto out;
    }
    for (unsigned i = 0; i < nitems; i++) {
        if (tarn_get_u16(items + 6 * i + 4) >= 1u << TID_OFFSET_BITS) {
            rc = redo_fail(c, type, "item %u has offset %u", i,
                           tarn_get_u16(items + 6 * i + 4));
            goto out;
        }
        newt[i] = tid_to_u64(items + 6 * i);
    }
    nm = merge_tids(newt, (int)nitems, oldt, nold, merged);
    *size = nm > 0 ? seg_encode(merged, nm, out) : 0;
    if (*size == 0)
        rc = redo_fail(c, type, "items added to segment %u do not encode",
                       segno);
out:
    free(oldt);
    return rc;
}

/*
 * ginRedoRecompress(): apply the segment actions in @p d (@p len bytes:
 * u16 nactions, then the actions) to the posting tree leaf in c->page.
 * The new list is built in a scratch buffer and copied over the old one;
 * bytes past its end are left as they were, as PostgreSQL leaves them.
 */
static tarn_rc
recompress(const redo_ctx *c, const char *type, const uint8_t *d, size_t len)
{
    uint8_t old[PG_BLCKSZ], out[PG_BLCKSZ], seg[PG_BLCKSZ];
    size_t at, pos = 0, end, w = 0;
    unsigned nactions, segno = 0;
    tarn_rc rc;

    if ((rc = need_gin_page(c, type)) != TARN_OK)
        return rc;
    if ((get_flags(c->page) & (GIN_DATA | GIN_LEAF)) != (GIN_DATA | GIN_LEAF))
        return redo_fail(c, type, "not a posting tree leaf (flags 0x%04X)",
                         get_flags(c->page));
    if (!(get_flags(c->page) & GIN_COMPRESSED))
        return redo_fail(c, type, "leaf page in the pre-9.4 format");
    if (pg_page_lower(c->page) < GIN_DATA_START)
        return redo_fail(c, type, "posting list ends at %u",
                         pg_page_lower(c->page));
    end = pg_page_lower(c->page) - GIN_DATA_START;
    if (end > GIN_DATA_MAX_SIZE)
        return redo_fail(c, type, "posting list of %zu bytes", end);
    memcpy(old, c->page + GIN_DATA_START, end);
    if (len < 2)
        return redo_fail(c, type, "block data of %zu bytes", len);
    nactions = tarn_get_u16(d);
    at = 2;
    for (unsigned a = 0; a < nactions; a++) {
        const uint8_t *newseg = NULL, *items = NULL;
        size_t newsize = 0, oldsize;
        unsigned a_segno, action, nitems = 0;

        if (len - at < 2)
            return redo_fail(c, type, "action %u cut short", a);
        a_segno = d[at];
        action = d[at + 1];
        at += 2;
        if (action == SEGMENT_INSERT || action == SEGMENT_REPLACE) {
            newsize = seg_size(d + at, len - at);
            if (newsize == 0)
                return redo_fail(
                    c, type, "segment of action %u does not fit the data", a);
            newseg = d + at;
            at += newsize;
        } else if (action == SEGMENT_ADDITEMS) {
            if (len - at < 2)
                return redo_fail(c, type, "action %u cut short", a);
            nitems = tarn_get_u16(d + at);
            at += 2;
            if ((size_t)nitems * 6 > len - at)
                return redo_fail(c, type, "%u items in %zu bytes", nitems,
                                 len - at);
            items = d + at;
            at += (size_t)nitems * 6;
        } else if (action != SEGMENT_DELETE) {
            return redo_fail(c, type, "unexpected GIN leaf action %u", action);
        }
        if (a_segno < segno)
            return redo_fail(c, type, "action %u on segment %u after %u", a,
                             a_segno, segno);
        /* Copy the untouched segments before the one the action concerns. */
        while (segno < a_segno) {
            size_t s = seg_size(old + pos, end - pos);
            if (s == 0)
                return redo_fail(
                    c, type, "segment %u is past the end of the list", a_segno);
            if (w + s > GIN_DATA_MAX_SIZE)
                return redo_fail(c, type, "the posting list outgrows the page");
            memcpy(out + w, old + pos, s);
            w += s;
            pos += s;
            segno++;
        }
        oldsize = pos < end ? seg_size(old + pos, end - pos) : 0;
        if (pos < end && oldsize == 0)
            return redo_fail(c, type, "segment %u overruns the list", segno);
        if (action == SEGMENT_ADDITEMS) {
            if (oldsize == 0)
                return redo_fail(c, type, "items added past the last segment");
            if ((rc = add_items(c, type, old + pos, segno, items, nitems, seg,
                                &newsize))
                != TARN_OK)
                return rc;
            newseg = seg;
            action = SEGMENT_REPLACE;
        }
        if (oldsize == 0 && action != SEGMENT_INSERT)
            return redo_fail(c, type, "action %u past the last segment",
                             action);
        if (newseg != NULL && w + newsize > GIN_DATA_MAX_SIZE)
            return redo_fail(c, type, "the posting list outgrows the page");
        switch (action) {
        case SEGMENT_DELETE:
            pos += oldsize;
            segno++;
            break;
        case SEGMENT_INSERT:
            memcpy(out + w, newseg, newsize);
            w += newsize;
            break;
        case SEGMENT_REPLACE:
            memcpy(out + w, newseg, newsize);
            w += newsize;
            pos += oldsize;
            segno++;
            break;
        }
    }
    if (w + (end - pos) > GIN_DATA_MAX_SIZE)
        return redo_fail(c, type, "the posting list outgrows the page");
    memcpy(out + w, old + pos, end - pos);
    w += end - pos;
    memcpy(c->page + GIN_DATA_START, out, w);
    set_data_size(c->page, (unsigned)w);
    return TARN_OK;
}

/* ---- record types ----------------------------------------------------------
 */

static tarn_rc
g_create_ptree(redo_ctx *c, const char *type)
{
    uint32_t size;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 4)) != TARN_OK)
        return rc;
    size = tarn_get_u32(c->r->main_data);
    if (size > GIN_DATA_MAX_SIZE || size > c->r->main_len - 4)
        return redo_fail(c, type, "posting list of %u bytes in %u of data",
                         size, c->r->main_len - 4);
    gin_init(c->page, GIN_DATA | GIN_LEAF | GIN_COMPRESSED);
    memcpy(c->page + GIN_DATA_START, c->r->main_data + 4, size);
    set_data_size(c->page, size);
    return TARN_OK;
}

/* ginRedoInsertEntry(). */
static tarn_rc
insert_entry(redo_ctx *c, const char *type, bool leaf, uint32_t rightblk)
{
    const uint8_t *d = c->data;
    unsigned off, max = pg_page_max_offset(c->page), len;
    size_t s;
    uint8_t *itup;
    tarn_rc rc;

    if ((rc = redo_need_data(c, type, 4 + IT_HDR)) != TARN_OK)
        return rc;
    off = tarn_get_u16(d);
    s = tarn_get_u16(d + 4 + IT_INFO) & INDEX_SIZE_MASK;
    if (s < IT_HDR || s > (size_t)c->data_len - 4)
        return redo_fail(c, type, "tuple of %zu bytes in %u bytes of data", s,
                         c->data_len - 4);
    if (!leaf) {
        itup = pg_page_item(c->page, off, &len);
        if (itup == NULL || len < IT_HDR)
            return redo_fail(c, type, "no downlink at offset %u of %u", off,
                             max);
        put_block_id(itup, rightblk);
        tarn_put_u16(itup + 4, 0);
    }
    if (d[2] && !pg_page_index_delete(c->page, off))
        return redo_fail(c, type, "cannot delete item %u of a page of %u", off,
                         max);
    if (pg_page_add_item(c->page, d + 4, s, off, 0) == 0)
        return redo_fail(c, type, "failed to add item (%zu bytes) at offset %u",
                         s, off);
    return TARN_OK;
}

/* ginRedoInsertData() on an internal posting tree page. */
static tarn_rc
insert_data_internal(redo_ctx *c, const char *type, uint32_t rightblk)
{
    unsigned off, maxoff = tarn_get_u16(opq(c->page) + O_MAXOFF);
    uint8_t *items = c->page + GIN_DATA_START;
    tarn_rc rc;

    if ((rc = redo_need_data(c, type, 2 + POSTING_ITEM_SIZE)) != TARN_OK)
        return rc;
    off = tarn_get_u16(c->data);
    if (off == 0 || off > maxoff
        || (size_t)(maxoff + 1) * POSTING_ITEM_SIZE > GIN_DATA_MAX_SIZE)
        return redo_fail(c, type, "posting item %u on a page of %u", off,
                         maxoff);
    put_block_id(items + (off - 1) * POSTING_ITEM_SIZE, rightblk);
    memmove(items + off * POSTING_ITEM_SIZE,
            items + (off - 1) * POSTING_ITEM_SIZE,
            (size_t)(maxoff - off + 1) * POSTING_ITEM_SIZE);
    memcpy(items + (off - 1) * POSTING_ITEM_SIZE, c->data + 2,
           POSTING_ITEM_SIZE);
    maxoff++;
    tarn_put_u16(opq(c->page) + O_MAXOFF, (uint16_t)maxoff);
    set_data_size(c->page, maxoff * POSTING_ITEM_SIZE);
    return TARN_OK;
}

static tarn_rc
g_insert(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    uint16_t flags;
    bool leaf;
    uint32_t rightblk = INVALID_BLOCK;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 2)) != TARN_OK)
        return rc;
    flags = tarn_get_u16(md);
    leaf = (flags & GIN_INSERT_ISLEAF) != 0;
    if (!leaf) {
        if ((rc = redo_need_main(c, type, 10)) != TARN_OK)
            return rc;
        rightblk = get_block_id(md + 6);
    }
    switch (c->block_id) {
    case 0:
        if ((rc = need_gin_page(c, type)) != TARN_OK)
            return rc;
        if (flags & GIN_INSERT_ISDATA) {
            if (leaf)
                return recompress(c, type, c->data, c->data_len);
            return insert_data_internal(c, type, rightblk);
        }
        return insert_entry(c, type, leaf, rightblk);
    case 1:
        if (!leaf)
            return clear_incomplete_split(c, type);
        break;
    }
    return redo_no_part(c, type);
}

static tarn_rc
g_delete_page(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 12)) != TARN_OK)
        return rc;
    if (c->block_id > 2)
        return redo_no_part(c, type);
    if ((rc = need_gin_page(c, type)) != TARN_OK)
        return rc;
    switch (c->block_id) {
    case 0:
        set_flags(c->page, get_flags(c->page) | GIN_DELETED);
        tarn_put_u32(c->page + PG_PD_PRUNE_XID, tarn_get_u32(md + 8));
        return TARN_OK;
    case 1: {
        unsigned off = tarn_get_u16(md),
                 maxoff = tarn_get_u16(opq(c->page) + O_MAXOFF);
        uint8_t *items = c->page + GIN_DATA_START;
        if (off == 0 || off > maxoff
            || (size_t)maxoff * POSTING_ITEM_SIZE > GIN_DATA_MAX_SIZE)
            return redo_fail(c, type, "posting item %u on a page of %u", off,
                             maxoff);
        memmove(items + (off - 1) * POSTING_ITEM_SIZE,
                items + off * POSTING_ITEM_SIZE,
                (size_t)(maxoff - off) * POSTING_ITEM_SIZE);
        maxoff--;
        tarn_put_u16(opq(c->page) + O_MAXOFF, (uint16_t)maxoff);
        set_data_size(c->page, maxoff * POSTING_ITEM_SIZE);
        return TARN_OK;
    }
    default:
        tarn_put_u32(opq(c->page) + O_RIGHTLINK, tarn_get_u32(md + 4));
        return TARN_OK;
    }
}

/* ginxlogUpdateMeta: RelFileNode, metadata at 16, prevTail at 72,
 * newRightlink at 76, ntuples at 80. */
static tarn_rc
g_update_meta(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    int32_t ntuples;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 84)) != TARN_OK)
        return rc;
    ntuples = (int32_t)tarn_get_u32(md + 80);
    switch (c->block_id) {
    case 0:
        gin_meta(c->page, md + 16);
        return TARN_OK;
    case 1:
        if ((rc = need_gin_page(c, type)) != TARN_OK)
            return rc;
        if (ntuples > 0) {
            unsigned off = pg_page_lower(c->page) <= PG_PAGE_HEADER_SIZE
                               ? 1
                               : pg_page_max_offset(c->page) + 1;
            if ((rc = add_tuples(c, type, c->data, c->data_len, ntuples, off))
                != TARN_OK)
                return rc;
            tarn_put_u16(opq(c->page) + O_MAXOFF,
                         (uint16_t)(tarn_get_u16(opq(c->page) + O_MAXOFF) + 1));
            return TARN_OK;
        }
        if (tarn_get_u32(md + 72) != INVALID_BLOCK) {
            tarn_put_u32(opq(c->page) + O_RIGHTLINK, tarn_get_u32(md + 76));
            return TARN_OK;
        }
        break;
    }
    return redo_no_part(c, type);
}

static tarn_rc
g_insert_listpage(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    uint32_t right;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 8)) != TARN_OK)
        return rc;
    right = tarn_get_u32(md);
    gin_init(c->page, GIN_LIST);
    tarn_put_u32(opq(c->page) + O_RIGHTLINK, right);
    if (right == INVALID_BLOCK) {
        set_flags(c->page, GIN_LIST | GIN_LIST_FULLROW);
        tarn_put_u16(opq(c->page) + O_MAXOFF, 1);
    }
    return add_tuples(c, type, c->data, c->data_len,
                      (int32_t)tarn_get_u32(md + 4), 1);
}

static tarn_rc
g_delete_listpage(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    int32_t ndeleted;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, GIN_META_SIZE + 4)) != TARN_OK)
        return rc;
    ndeleted = (int32_t)tarn_get_u32(md + GIN_META_SIZE);
    if (c->block_id == 0) {
        gin_meta(c->page, md);
        return TARN_OK;
    }
    if ((int32_t)c->block_id > ndeleted)
        return redo_no_part(c, type);
    gin_init(c->page, GIN_DELETED);
    return TARN_OK;
}

tarn_rc
redo_gin(redo_ctx *c)
{
    uint8_t op = c->r->info & 0xF0;
    const char *type = g_names[op >> 4];
    tarn_rc rc;

    switch (op) {
    case G_CREATE_PTREE:
        rc = g_create_ptree(c, type);
        break;
    case G_INSERT:
        rc = g_insert(c, type);
        break;
    case G_SPLIT:
        if (c->block_id == 3) {
            if (c->r->main_len >= 26
                && !(tarn_get_u16(c->r->main_data + 24) & GIN_INSERT_ISLEAF)) {
                rc = clear_incomplete_split(c, type);
                break;
            }
            return redo_no_part(c, type);
        }
        return redo_fail(c, type,
                         "the record did not contain a full-page image");
    case G_VACUUM_PAGE:
        return redo_fail(c, type,
                         "the record did not contain a full-page image");
    case G_VACUUM_DATA_LEAF_PAGE:
        if (c->block_id != 0)
            return redo_no_part(c, type);
        rc = recompress(c, type, c->data, c->data_len);
        break;
    case G_DELETE_PAGE:
        rc = g_delete_page(c, type);
        break;
    case G_UPDATE_META_PAGE:
        rc = g_update_meta(c, type);
        break;
    case G_INSERT_LISTPAGE:
        rc = g_insert_listpage(c, type);
        break;
    case G_DELETE_LISTPAGE:
        rc = g_delete_listpage(c, type);
        break;
    default:
        return redo_fail(c, type, "unknown op code 0x%02X", op);
    }
    if (rc == TARN_OK)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}
