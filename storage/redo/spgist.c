/*
 * spgist.c - redo of the SP-GiST index resource manager, as PostgreSQL
 * 15's spg_redo() changes each page.
 *
 * Each record is applied to one block (rmgr.h); the parts by block id:
 *
 *   ADD_LEAF        0 the leaf page (will_init when newPage) getting the
 *                   tuple; 1 the parent whose downlink points at it
 *   MOVE_LEAFS      0 the source leaf (moved tuples become a redirect and
 *                   placeholders); 1 the destination leaf (will_init when
 *                   newPage); 2 the parent whose downlink follows them
 *   ADD_NODE        with no block 1: 0 the page whose inner tuple is
 *                   replaced in place.  Otherwise 0 the page the tuple
 *                   leaves (a redirect or placeholder remains), 1 the page
 *                   it moves to (will_init when newPage), 2 the parent when
 *                   it is neither; parentBlk says which page holds the
 *                   downlink to update
 *   SPLIT_TUPLE     0 the page of the prefix tuple (and of the postfix one
 *                   when postfixBlkSame); 1 the postfix tuple's page
 *   PICKSPLIT       0 the source leaf (will_init when initSrc; untouched in
 *                   a root split); 1 the destination leaf (will_init when
 *                   initDest); 2 the page of the new inner tuple (will_init
 *                   when initInner); 3 the parent when it is not the inner
 *                   page
 *   VACUUM_LEAF     0 the leaf page
 *   VACUUM_ROOT     0 the root page, while it is a leaf
 *   VACUUM_REDIRECT 0 the page whose redirects become placeholders
 *
 * The blocks of one record are distinct pages (PostgreSQL registers a page
 * once and says in the record when two roles share it), so applying each
 * block's part alone gives what spg_redo() leaves.  Every check PostgreSQL
 * makes with elog(ERROR), and every place where a damaged record or page
 * would make it read or write out of bounds, becomes TARN_ECORRUPT naming
 * the record type.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

/* Record types (info & 0xF0). */
#define SP_ADD_LEAF        0x10
#define SP_MOVE_LEAFS      0x20
#define SP_ADD_NODE        0x30
#define SP_SPLIT_TUPLE     0x40
#define SP_PICKSPLIT       0x50
#define SP_VACUUM_LEAF     0x60
#define SP_VACUUM_ROOT     0x70
#define SP_VACUUM_REDIRECT 0x80

static const char *const sp_names[16] = {
    "unknown",         "ADD_LEAF",  "MOVE_LEAFS",  "ADD_NODE",
    "SPLIT_TUPLE",     "PICKSPLIT", "VACUUM_LEAF", "VACUUM_ROOT",
    "VACUUM_REDIRECT", "unknown",   "unknown",     "unknown",
    "unknown",         "unknown",   "unknown",     "unknown"};

/* SpGistPageOpaqueData: the 8-byte special space. */
#define SP_OPAQUE_SIZE 8
#define SP_SPECIAL     (PG_BLCKSZ - SP_OPAQUE_SIZE)
enum { O_FLAGS = 0, O_NREDIRECT = 2, O_NPLACEHOLDER = 4, O_PAGE_ID = 6 };
#define SPGIST_PAGE_ID 0xFF82
#define SPGIST_LEAF    0x0004
#define SPGIST_NULLS   0x0008
#define INVALID_BLOCK  0xFFFFFFFFu

/* Tuple states, in the low two bits of every tuple's first word. */
#define SPGIST_LIVE        0
#define SPGIST_REDIRECT    1
#define SPGIST_DEAD        2
#define SPGIST_PLACEHOLDER 3

/*
 * Leaf and dead tuples: {tupstate:2, size:30}, t_info (next offset in the
 * low 14 bits), then an item pointer; a dead tuple adds an XID (16 bytes).
 * Inner tuples: {tupstate:2, allTheSame:1, nNodes:13, prefixSize:16}, a
 * 16-bit size, padding to 8, the prefix, then node tuples (index tuples:
 * item pointer, t_info with the size in the low 13 bits).
 */
#define LEAF_HDR      12
#define LT_INFO       4
#define LT_PTR        6
#define DEAD_SIZE     16
#define DT_XID        12
#define INNER_HDR     8
#define IN_SIZE       4
#define NODE_HDR      8
#define NODE_INFO     6
#define NODE_SIZEMASK 0x1FFF
#define NEXT_MASK     0x3FFF

/* spgxlogState as it sits in the main data: myXid, isBuild. */
typedef struct sp_state {
    uint32_t xid;
    bool build;
} sp_state;

static sp_state
get_state(const uint8_t *p)
{
    sp_state s = {tarn_get_u32(p), p[4] != 0};
    return s;
}

/* ---- helpers ---------------------------------------------------------------
 */

static uint8_t *
opq(uint8_t *page)
{
    return page + SP_SPECIAL;
}

static void
bump(uint8_t *page, unsigned field, int by)
{
    uint8_t *p = opq(page) + field;
    tarn_put_u16(p, (uint16_t)(tarn_get_u16(p) + by));
}

static tarn_rc
need_block(const redo_ctx *c, const char *type, unsigned id)
{
    if (!c->r->blocks[id].in_use)
        return redo_fail(c, type, "the record has no block %u", id);
    return TARN_OK;
}

/* The page must be an SP-GiST page PostgreSQL can work on. */
static tarn_rc
need_spg_page(const redo_ctx *c, const char *type)
{
    return redo_need_index_page(c, type, SP_SPECIAL, "an SP-GiST index page");
}

/* SpGistInitPage() when @p init, else the page must be an SP-GiST page. */
static tarn_rc
init_or_need(const redo_ctx *c, const char *type, bool init, uint16_t flags)
{
    if (!init)
        return need_spg_page(c, type);
    pg_page_init(c->page, SP_OPAQUE_SIZE);
    tarn_put_u16(opq(c->page) + O_FLAGS, flags);
    tarn_put_u16(opq(c->page) + O_PAGE_ID, SPGIST_PAGE_ID);
    return TARN_OK;
}

/*
 * A tuple in the main data at byte @p at: a leaf (size in the first word)
 * or an inner tuple (16-bit size at byte 4).  Sets *size and returns a
 * pointer to it, or NULL after failing when it does not fit.
 */
static const uint8_t *
rec_tuple(const redo_ctx *c, const char *type, size_t at, bool leaf,
          size_t *size)
{
    size_t len = c->r->main_len, hdr = leaf ? LEAF_HDR : INNER_HDR, s;
    const uint8_t *p;

    if (at > len || len - at < hdr) {
        redo_fail(c, type, "tuple header cut short at byte %zu of %zu", at,
                  len);
        return NULL;
    }
    p = c->r->main_data + at;
    s = leaf ? tarn_get_u32(p) >> 2 : tarn_get_u16(p + IN_SIZE);
    if (s < hdr || s > len - at) {
        redo_fail(c, type, "tuple of %zu bytes at byte %zu of %zu", s, at, len);
        return NULL;
    }
    *size = s;
    return p;
}

/* The item at @p off, at least @p min bytes long, or NULL after failing. */
static uint8_t *
item(const redo_ctx *c, const char *type, unsigned off, unsigned min)
{
    unsigned len;
    uint8_t *it = pg_page_item(c->page, off, &len);

    if (it == NULL || len < min) {
        redo_fail(c, type, "no tuple of at least %u bytes at offset %u of %u",
                  min, off, pg_page_max_offset(c->page));
        return NULL;
    }
    return it;
}

static tarn_rc
add_at(const redo_ctx *c, const char *type, const uint8_t *tup, size_t size,
       unsigned off)
{
    if (pg_page_add_item(c->page, tup, size, off, 0) != off)
        return redo_fail(
            c, type, "failed to add item of %zu bytes at offset %u", size, off);
    return TARN_OK;
}

static tarn_rc
delete_at(const redo_ctx *c, const char *type, unsigned off)
{
    if (!pg_page_index_delete(c->page, off))
        return redo_fail(c, type, "cannot delete item %u of %u", off,
                         pg_page_max_offset(c->page));
    return TARN_OK;
}

/* PageIndexTupleDelete() then PageAddItem() at the same offset. */
static tarn_rc
replace_at(const redo_ctx *c, const char *type, const uint8_t *tup, size_t size,
           unsigned off)
{
    tarn_rc rc;

    if ((rc = delete_at(c, type, off)) != TARN_OK)
        return rc;
    return add_at(c, type, tup, size, off);
}

/* addOrReplaceTuple(): an existing item there must be a placeholder. */
static tarn_rc
add_or_replace(const redo_ctx *c, const char *type, const uint8_t *tup,
               size_t size, unsigned off)
{
    tarn_rc rc;

    if (off <= pg_page_max_offset(c->page)) {
        uint8_t *dt = item(c, type, off, 4);
        if (dt == NULL)
            return TARN_ECORRUPT;
        if ((tarn_get_u32(dt) & 3) != SPGIST_PLACEHOLDER)
            return redo_fail(
                c, type, "tuple %u to be replaced is not a placeholder", off);
        bump(c->page, O_NPLACEHOLDER, -1);
        if ((rc = delete_at(c, type, off)) != TARN_OK)
            return rc;
    }
    return add_at(c, type, tup, size, off);
}

static void
put_tid(uint8_t *p, uint32_t blkno, uint16_t off)
{
    tarn_put_u16(p, (uint16_t)(blkno >> 16));
    tarn_put_u16(p + 2, (uint16_t)blkno);
    tarn_put_u16(p + 4, off);
}

/* spgFormDeadTuple(): a redirect to (blkno, off), or XID-less otherwise. */
static void
form_dead(uint8_t dt[DEAD_SIZE], unsigned state, const sp_state *st,
          uint32_t blkno, uint16_t off)
{
    tarn_put_u32(dt, (uint32_t)state | (uint32_t)DEAD_SIZE << 2);
    tarn_put_u16(dt + LT_INFO, 0);
    if (state == SPGIST_REDIRECT) {
        put_tid(dt + LT_PTR, blkno, off);
        tarn_put_u32(dt + DT_XID, st->xid);
    } else {
        put_tid(dt + LT_PTR, INVALID_BLOCK, 0);
        tarn_put_u32(dt + DT_XID, 0);
    }
}

static int
cmp_off(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/*
 * spgPageIndexMultiDelete(): remove the @p n items at @p offs (unaligned,
 * any order) and put a dead tuple in each place: @p first for the first
 * listed one, @p rest for the others, counted in the special space.
 */
static tarn_rc
spg_multi_delete(const redo_ctx *c, const char *type, const uint8_t *offs,
                 size_t n, unsigned first, unsigned rest, const sp_state *st,
                 uint32_t blkno, uint16_t off)
{
    uint16_t o[PG_BLCKSZ / 4];
    uint8_t dt[DEAD_SIZE];
    unsigned first_item;

    if (n == 0)
        return TARN_OK;
    if (n > sizeof o / sizeof o[0])
        return redo_fail(c, type, "%zu offsets to delete", n);
    for (size_t i = 0; i < n; i++)
        o[i] = tarn_get_u16(offs + 2 * i);
    first_item = o[0];
    qsort(o, n, sizeof o[0], cmp_off);
    if (!pg_page_index_multi_delete(c->page, o, (unsigned)n))
        return redo_fail(c, type,
                         "cannot delete %zu items (offsets %u..%u) from a "
                         "page of %u",
                         n, o[0], o[n - 1], pg_page_max_offset(c->page));
    for (size_t i = 0; i < n; i++) {
        unsigned state = o[i] == first_item ? first : rest;
        tarn_rc rc;
        form_dead(dt, state, st, blkno, off);
        if ((rc = add_at(c, type, dt, DEAD_SIZE, o[i])) != TARN_OK)
            return rc;
        if (state == SPGIST_REDIRECT)
            bump(c->page, O_NREDIRECT, 1);
        else if (state == SPGIST_PLACEHOLDER)
            bump(c->page, O_NPLACEHOLDER, 1);
    }
    return TARN_OK;
}

/* spgUpdateNodeLink(): node @p node of the inner tuple at @p at points to
 * (blkno, off). */
static tarn_rc
update_link(const redo_ctx *c, const char *type, unsigned at, unsigned node,
            uint32_t blkno, uint16_t off)
{
    unsigned len, nnodes, pos;
    uint8_t *it = pg_page_item(c->page, at, &len);

    if (it == NULL || len < INNER_HDR)
        return redo_fail(c, type, "no inner tuple at offset %u of %u", at,
                         pg_page_max_offset(c->page));
    nnodes = (tarn_get_u32(it) >> 3) & 0x1FFF;
    pos = INNER_HDR + (tarn_get_u32(it) >> 16);
    for (unsigned i = 0; i < nnodes; i++) {
        unsigned ns;
        if (pos + NODE_HDR > len)
            return redo_fail(c, type,
                             "node %u of inner tuple %u runs past its %u bytes",
                             i, at, len);
        if (i == node) {
            put_tid(it + pos, blkno, off);
            return TARN_OK;
        }
        ns = tarn_get_u16(it + pos + NODE_INFO) & NODE_SIZEMASK;
        if (ns < NODE_HDR)
            return redo_fail(c, type, "node %u of inner tuple %u has %u bytes",
                             i, at, ns);
        pos += ns;
    }
    return redo_fail(c, type, "no node %u in inner tuple %u of %u nodes", node,
                     at, nnodes);
}

/* ---- record types ----------------------------------------------------------
 */

static tarn_rc
sp_add_leaf(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data, *leaf;
    unsigned leaf_off, head_off, parent_off;
    size_t size;
    tarn_rc rc;

    if ((leaf = rec_tuple(c, type, 10, true, &size)) == NULL)
        return TARN_ECORRUPT;
    leaf_off = tarn_get_u16(md + 2);
    head_off = tarn_get_u16(md + 4);
    parent_off = tarn_get_u16(md + 6);
    switch (c->block_id) {
    case 0:
        if ((rc = init_or_need(c, type, md[0],
                               SPGIST_LEAF | (md[1] ? SPGIST_NULLS : 0)))
            != TARN_OK)
            return rc;
        if (leaf_off == head_off) /* replacing a DEAD tuple */
            return replace_at(c, type, leaf, size, leaf_off);
        if ((rc = add_or_replace(c, type, leaf, size, leaf_off)) != TARN_OK)
            return rc;
        if (head_off != 0) {
            uint8_t *head = item(c, type, head_off, LT_INFO + 2);
            if (head == NULL)
                return TARN_ECORRUPT;
            tarn_put_u16(head + LT_INFO,
                         (tarn_get_u16(head + LT_INFO) & ~NEXT_MASK)
                             | (leaf_off & NEXT_MASK));
        }
        return TARN_OK;
    case 1:
        if (parent_off == 0)
            break;
        if ((rc = need_block(c, type, 0)) != TARN_OK
            || (rc = need_spg_page(c, type)) != TARN_OK)
            return rc;
        return update_link(c, type, parent_off, tarn_get_u16(md + 8),
                           c->r->blocks[0].blkno, (uint16_t)leaf_off);
    }
    return redo_no_part(c, type);
}

static tarn_rc
sp_move_leafs(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data, *dels, *ins;
    unsigned nmoves, ninsert;
    uint16_t last;
    uint32_t dst;
    sp_state st;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 20)) != TARN_OK
        || (rc = need_block(c, type, 1)) != TARN_OK)
        return rc;
    nmoves = tarn_get_u16(md);
    ninsert = md[3] ? 1 : nmoves + 1;
    if ((rc = redo_need_main(c, type, 20 + 2 * (size_t)(nmoves + ninsert)))
        != TARN_OK)
        return rc;
    st = get_state(md + 12);
    dels = md + 20;
    ins = dels + 2 * nmoves;
    last = tarn_get_u16(ins + 2 * (ninsert - 1));
    dst = c->r->blocks[1].blkno;
    switch (c->block_id) {
    case 1: {
        size_t at = 20 + 2 * (size_t)(nmoves + ninsert), size;
        if ((rc = init_or_need(c, type, md[2],
                               SPGIST_LEAF | (md[4] ? SPGIST_NULLS : 0)))
            != TARN_OK)
            return rc;
        for (unsigned i = 0; i < ninsert; i++) {
            const uint8_t *leaf = rec_tuple(c, type, at, true, &size);
            if (leaf == NULL)
                return TARN_ECORRUPT;
            if ((rc = add_or_replace(c, type, leaf, size,
                                     tarn_get_u16(ins + 2 * i)))
                != TARN_OK)
                return rc;
            at += size;
        }
        return TARN_OK;
    }
    case 0:
        if ((rc = need_spg_page(c, type)) != TARN_OK)
            return rc;
        return spg_multi_delete(c, type, dels, nmoves,
                                st.build ? SPGIST_PLACEHOLDER : SPGIST_REDIRECT,
                                SPGIST_PLACEHOLDER, &st, dst, last);
    case 2:
        if ((rc = need_spg_page(c, type)) != TARN_OK)
            return rc;
        return update_link(c, type, tarn_get_u16(md + 6), tarn_get_u16(md + 8),
                           dst, last);
    }
    return redo_no_part(c, type);
}

static tarn_rc
sp_add_node(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data, *inner;
    unsigned off, off_new, parent_off, node;
    int parent_blk;
    uint32_t blk_new;
    sp_state st;
    size_t size;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 20)) != TARN_OK)
        return rc;
    if ((inner = rec_tuple(c, type, 20, false, &size)) == NULL)
        return TARN_ECORRUPT;
    off = tarn_get_u16(md);
    off_new = tarn_get_u16(md + 2);
    parent_blk = (int8_t)md[5];
    parent_off = tarn_get_u16(md + 6);
    node = tarn_get_u16(md + 8);
    st = get_state(md + 12);
    if (!c->r->blocks[1].in_use) {
        /* the inner tuple is replaced in place */
        if (c->block_id != 0)
            return redo_no_part(c, type);
        if ((rc = need_spg_page(c, type)) != TARN_OK)
            return rc;
        return replace_at(c, type, inner, size, off);
    }
    blk_new = c->r->blocks[1].blkno;
    switch (c->block_id) {
    case 1:
        if ((rc = init_or_need(c, type, md[4], 0)) != TARN_OK
            || (rc = add_or_replace(c, type, inner, size, off_new)) != TARN_OK)
            return rc;
        if (parent_blk == 1)
            return update_link(c, type, parent_off, node, blk_new,
                               (uint16_t)off_new);
        return TARN_OK;
    case 0: {
        uint8_t dt[DEAD_SIZE];
        if ((rc = need_spg_page(c, type)) != TARN_OK)
            return rc;
        if (st.build)
            form_dead(dt, SPGIST_PLACEHOLDER, &st, INVALID_BLOCK, 0);
        else
            form_dead(dt, SPGIST_REDIRECT, &st, blk_new, (uint16_t)off_new);
        if ((rc = replace_at(c, type, dt, DEAD_SIZE, off)) != TARN_OK)
            return rc;
        bump(c->page, st.build ? O_NPLACEHOLDER : O_NREDIRECT, 1);
        if (parent_blk == 0)
            return update_link(c, type, parent_off, node, blk_new,
                               (uint16_t)off_new);
        return TARN_OK;
    }
    case 2:
        if (parent_blk != 2)
            break;
        if ((rc = need_spg_page(c, type)) != TARN_OK)
            return rc;
        return update_link(c, type, parent_off, node, blk_new,
                           (uint16_t)off_new);
    }
    return redo_no_part(c, type);
}

static tarn_rc
sp_split_tuple(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data, *prefix, *postfix;
    size_t psize, qsize;
    unsigned post_off;
    bool same;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 6)) != TARN_OK)
        return rc;
    if ((prefix = rec_tuple(c, type, 6, false, &psize)) == NULL
        || (postfix = rec_tuple(c, type, 6 + psize, false, &qsize)) == NULL)
        return TARN_ECORRUPT;
    post_off = tarn_get_u16(md + 2);
    same = md[5] != 0;
    switch (c->block_id) {
    case 1:
        if (same)
            break;
        if ((rc = init_or_need(c, type, md[4], 0)) != TARN_OK)
            return rc;
        return add_or_replace(c, type, postfix, qsize, post_off);
    case 0:
        if ((rc = need_spg_page(c, type)) != TARN_OK
            || (rc = replace_at(c, type, prefix, psize, tarn_get_u16(md)))
                   != TARN_OK)
            return rc;
        if (same)
            return add_or_replace(c, type, postfix, qsize, post_off);
        return TARN_OK;
    }
    return redo_no_part(c, type);
}

/* The leaf tuples of a PICKSPLIT that go to page @p dest (0 src, 1 dest). */
static tarn_rc
pick_leaves(const redo_ctx *c, const char *type, const uint8_t *ins,
            const uint8_t *select, unsigned ninsert, size_t at, bool dest)
{
    for (unsigned i = 0; i < ninsert; i++) {
        size_t size;
        const uint8_t *leaf = rec_tuple(c, type, at, true, &size);
        tarn_rc rc;
        if (leaf == NULL)
            return TARN_ECORRUPT;
        at += size;
        if ((select[i] != 0) != dest)
            continue;
        if ((rc =
                 add_or_replace(c, type, leaf, size, tarn_get_u16(ins + 2 * i)))
            != TARN_OK)
            return rc;
    }
    return TARN_OK;
}

static tarn_rc
sp_picksplit(redo_ctx *c, const char *type, bool *changed)
{
    const uint8_t *md = c->r->main_data, *dels, *ins, *select;
    unsigned ndelete, ninsert, inner_off, parent_off, node;
    uint16_t leaf_flags;
    uint32_t blk_inner;
    size_t at, isize;
    sp_state st;
    tarn_rc rc;

    if ((rc = redo_need_main(c, type, 28)) != TARN_OK
        || (rc = need_block(c, type, 2)) != TARN_OK)
        return rc;
    ndelete = tarn_get_u16(md + 2);
    ninsert = tarn_get_u16(md + 4);
    inner_off = tarn_get_u16(md + 8);
    parent_off = tarn_get_u16(md + 14);
    node = tarn_get_u16(md + 16);
    st = get_state(md + 20);
    leaf_flags = SPGIST_LEAF | (md[11] ? SPGIST_NULLS : 0);
    at = 28 + 2 * (size_t)ndelete + 3 * (size_t)ninsert;
    if ((rc = redo_need_main(c, type, at)) != TARN_OK)
        return rc;
    dels = md + 28;
    ins = dels + 2 * ndelete;
    select = ins + 2 * ninsert;
    if (rec_tuple(c, type, at, false, &isize) == NULL)
        return TARN_ECORRUPT;
    blk_inner = c->r->blocks[2].blkno;
    switch (c->block_id) {
    case 0:
        if (md[0]) { /* a root split does not touch a source page */
            *changed = false;
            return TARN_OK;
        }
        if ((rc = init_or_need(c, type, md[6], leaf_flags)) != TARN_OK)
            return rc;
        if (!md[6]) {
            if (st.build)
                rc =
                    spg_multi_delete(c, type, dels, ndelete, SPGIST_PLACEHOLDER,
                                     SPGIST_PLACEHOLDER, &st, INVALID_BLOCK, 0);
            else
                rc = spg_multi_delete(c, type, dels, ndelete, SPGIST_REDIRECT,
                                      SPGIST_PLACEHOLDER, &st, blk_inner,
                                      (uint16_t)inner_off);
            if (rc != TARN_OK)
                return rc;
        }
        return pick_leaves(c, type, ins, select, ninsert, at + isize, false);
    case 1:
        if ((rc = init_or_need(c, type, md[7], leaf_flags)) != TARN_OK)
            return rc;
        return pick_leaves(c, type, ins, select, ninsert, at + isize, true);
    case 2:
        if ((rc = init_or_need(c, type, md[10], md[11] ? SPGIST_NULLS : 0))
                != TARN_OK
            || (rc = add_or_replace(c, type, md + at, isize, inner_off))
                   != TARN_OK)
            return rc;
        if (md[12])
            return update_link(c, type, parent_off, node, blk_inner,
                               (uint16_t)inner_off);
        return TARN_OK;
    case 3:
        if ((rc = need_spg_page(c, type)) != TARN_OK)
            return rc;
        return update_link(c, type, parent_off, node, blk_inner,
                           (uint16_t)inner_off);
    }
    return redo_no_part(c, type);
}

static tarn_rc
sp_vacuum_leaf(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data, *dead, *ph, *msrc, *mdst, *csrc, *cdst;
    unsigned ndead, nph, nmove, nchain;
    sp_state st;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 16)) != TARN_OK)
        return rc;
    ndead = tarn_get_u16(md);
    nph = tarn_get_u16(md + 2);
    nmove = tarn_get_u16(md + 4);
    nchain = tarn_get_u16(md + 6);
    st = get_state(md + 8);
    if ((rc =
             redo_need_main(c, type,
                            16
                                + 2
                                      * ((size_t)ndead + nph + 2 * (size_t)nmove
                                         + 2 * (size_t)nchain)))
            != TARN_OK
        || (rc = need_spg_page(c, type)) != TARN_OK)
        return rc;
    dead = md + 16;
    ph = dead + 2 * ndead;
    msrc = ph + 2 * nph;
    mdst = msrc + 2 * nmove;
    csrc = mdst + 2 * nmove;
    cdst = csrc + 2 * nchain;
    if ((rc = spg_multi_delete(c, type, dead, ndead, SPGIST_DEAD, SPGIST_DEAD,
                               &st, INVALID_BLOCK, 0))
            != TARN_OK
        || (rc = spg_multi_delete(c, type, ph, nph, SPGIST_PLACEHOLDER,
                                  SPGIST_PLACEHOLDER, &st, INVALID_BLOCK, 0))
               != TARN_OK)
        return rc;
    /* Swap the line pointers of each move's source and destination. */
    for (unsigned i = 0; i < nmove; i++) {
        unsigned s = tarn_get_u16(msrc + 2 * i), d = tarn_get_u16(mdst + 2 * i);
        unsigned max = pg_page_max_offset(c->page);
        uint32_t t;
        if (s == 0 || s > max || d == 0 || d > max)
            return redo_fail(c, type, "move %u -> %u on a page of %u", s, d,
                             max);
        t = pg_lp_get(c->page, s);
        tarn_put_u32(c->page + PG_PAGE_HEADER_SIZE + (s - 1) * 4,
                     pg_lp_get(c->page, d));
        tarn_put_u32(c->page + PG_PAGE_HEADER_SIZE + (d - 1) * 4, t);
    }
    if ((rc = spg_multi_delete(c, type, msrc, nmove, SPGIST_PLACEHOLDER,
                               SPGIST_PLACEHOLDER, &st, INVALID_BLOCK, 0))
        != TARN_OK)
        return rc;
    for (unsigned i = 0; i < nchain; i++) {
        uint8_t *lt = item(c, type, tarn_get_u16(csrc + 2 * i), LT_INFO + 2);
        if (lt == NULL)
            return TARN_ECORRUPT;
        tarn_put_u16(lt + LT_INFO,
                     (tarn_get_u16(lt + LT_INFO) & ~NEXT_MASK)
                         | (tarn_get_u16(cdst + 2 * i) & NEXT_MASK));
    }
    return TARN_OK;
}

static tarn_rc
sp_vacuum_root(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    uint16_t o[PG_BLCKSZ / 4];
    unsigned n;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 12)) != TARN_OK)
        return rc;
    n = tarn_get_u16(md);
    if ((rc = redo_need_main(c, type, 12 + 2 * (size_t)n)) != TARN_OK
        || (rc = need_spg_page(c, type)) != TARN_OK)
        return rc;
    if (n > sizeof o / sizeof o[0])
        return redo_fail(c, type, "%u offsets to delete", n);
    for (unsigned i = 0; i < n; i++)
        o[i] = tarn_get_u16(md + 12 + 2 * i);
    if (n > 0 && !pg_page_index_multi_delete(c->page, o, n))
        return redo_fail(c, type,
                         "cannot delete %u items (offsets %u..%u) from a page "
                         "of %u",
                         n, o[0], o[n - 1], pg_page_max_offset(c->page));
    return TARN_OK;
}

static tarn_rc
sp_vacuum_redirect(redo_ctx *c, const char *type)
{
    const uint8_t *md = c->r->main_data;
    unsigned n, first, max;
    tarn_rc rc;

    if (c->block_id != 0)
        return redo_no_part(c, type);
    if ((rc = redo_need_main(c, type, 8)) != TARN_OK)
        return rc;
    n = tarn_get_u16(md);
    first = tarn_get_u16(md + 2);
    if ((rc = redo_need_main(c, type, 8 + 2 * (size_t)n)) != TARN_OK
        || (rc = need_spg_page(c, type)) != TARN_OK)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        uint8_t *dt = item(c, type, tarn_get_u16(md + 8 + 2 * i), LT_PTR + 6);
        if (dt == NULL)
            return TARN_ECORRUPT;
        tarn_put_u32(dt, (tarn_get_u32(dt) & ~3u) | SPGIST_PLACEHOLDER);
        put_tid(dt + LT_PTR, INVALID_BLOCK, 0);
    }
    bump(c->page, O_NREDIRECT, -(int)n);
    bump(c->page, O_NPLACEHOLDER, (int)n);
    if (first == 0)
        return TARN_OK;
    /* Remove the placeholders from @p first to the end of the page. */
    max = pg_page_max_offset(c->page);
    if (first > max + 1)
        return redo_fail(c, type, "first placeholder %u on a page of %u", first,
                         max);
    if (first <= max) {
        uint16_t o[PG_BLCKSZ / 4];
        unsigned cnt = max - first + 1;
        for (unsigned i = 0; i < cnt; i++)
            o[i] = (uint16_t)(first + i);
        bump(c->page, O_NPLACEHOLDER, -(int)cnt);
        if (!pg_page_index_multi_delete(c->page, o, cnt))
            return redo_fail(c, type, "cannot delete items %u..%u", first, max);
    }
    return TARN_OK;
}

tarn_rc
redo_spgist(redo_ctx *c)
{
    uint8_t op = c->r->info & 0xF0;
    const char *type = sp_names[op >> 4];
    bool changed = true;
    tarn_rc rc;

    switch (op) {
    case SP_ADD_LEAF:
        rc = sp_add_leaf(c, type);
        break;
    case SP_MOVE_LEAFS:
        rc = sp_move_leafs(c, type);
        break;
    case SP_ADD_NODE:
        rc = sp_add_node(c, type);
        break;
    case SP_SPLIT_TUPLE:
        rc = sp_split_tuple(c, type);
        break;
    case SP_PICKSPLIT:
        rc = sp_picksplit(c, type, &changed);
        break;
    case SP_VACUUM_LEAF:
        rc = sp_vacuum_leaf(c, type);
        break;
    case SP_VACUUM_ROOT:
        rc = sp_vacuum_root(c, type);
        break;
    case SP_VACUUM_REDIRECT:
        rc = sp_vacuum_redirect(c, type);
        break;
    default:
        return redo_fail(c, type, "unknown op code 0x%02X", op);
    }
    if (rc == TARN_OK && changed)
        pg_page_set_lsn(c->page, c->lsn);
    return rc;
}
