/*
 * test_redo_spgist.c - SP-GiST index redo on crafted records: the bytes a
 * few records leave on the page (computed here from PostgreSQL 15's
 * layouts: page header, line pointers, SpGistPageOpaqueData, leaf, inner,
 * node and dead tuples, the spgxlog records), and the refusals, each
 * naming the rmgr, the record type and the block.  The exhaustive proof
 * against PostgreSQL is tests/integration/test_redo.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/core/types.h"

#include "redo_record.h"
#include "storage/key.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/value.h"

#define RM_SPGIST 16
#define SPECIAL   (8192 - 8)
#define FLAGS     SPECIAL
#define NREDIR    (SPECIAL + 2)
#define NPLACE    (SPECIAL + 4)

/* Record types. */
#define ADD_LEAF        0x10
#define MOVE_LEAFS      0x20
#define ADD_NODE        0x30
#define SPLIT_TUPLE     0x40
#define PICKSPLIT       0x50
#define VACUUM_LEAF     0x60
#define VACUUM_ROOT     0x70
#define VACUUM_REDIRECT 0x80

#define LEAF        4
#define LIVE        0
#define REDIRECT    1
#define DEAD        2
#define PLACEHOLDER 3

/* An empty SP-GiST page with @p flags, over garbage. */
static void
spg_page(uint8_t *page, uint16_t flags)
{
    memset(page, 0x5a, 8192);
    pg_page_init(page, 8);
    tarn_put_u16(page + FLAGS, flags);
    tarn_put_u16(page + SPECIAL + 6, 0xFF82);
}

/* A 16-byte leaf (or dead) tuple in @p state, next offset @p next. */
static void
leaf(uint8_t *t, unsigned state, uint16_t next, uint8_t fill)
{
    memset(t, fill, 16);
    tarn_put_u32(t, state | 16u << 2);
    tarn_put_u16(t + 4, next);
}

/* An inner tuple of @p n 8-byte nodes, no prefix: 8 + 8n bytes. */
static uint16_t
inner(uint8_t *t, unsigned n, uint8_t fill)
{
    uint16_t size = (uint16_t)(8 + 8 * n);

    memset(t, fill, size);
    tarn_put_u32(t, LIVE | n << 3);
    tarn_put_u16(t + 4, size);
    tarn_put_u16(t + 6, 0);
    for (unsigned i = 0; i < n; i++) {
        memset(t + 8 + 8 * i, 0, 6);
        tarn_put_u16(t + 8 + 8 * i + 6, 8);
    }
    return size;
}

static uint8_t *
item(uint8_t *page, unsigned off)
{
    return page + (tarn_get_u32(page + 24 + 4 * (off - 1)) & 0x7fff);
}

static unsigned
nitems(const uint8_t *page)
{
    return (tarn_get_u16(page + 12) - 24u) / 4;
}

static unsigned
state_of(uint8_t *page, unsigned off)
{
    return tarn_get_u32(item(page, off)) & 3;
}

/* The TID node @p node of the inner tuple at @p off points to. */
static void
assert_node(uint8_t *page, unsigned off, unsigned node, uint32_t blk,
            uint16_t pos)
{
    uint8_t *n = item(page, off) + 8 + 8 * node;

    assert_int_equal((uint32_t)tarn_get_u16(n) << 16 | tarn_get_u16(n + 2),
                     blk);
    assert_int_equal(tarn_get_u16(n + 4), pos);
}

/* A leaf page with @p n live leaves, fill bytes 1..n. */
static void
leaf_page(uint8_t *page, unsigned n)
{
    uint8_t t[16];

    spg_page(page, LEAF);
    for (unsigned i = 1; i <= n; i++) {
        leaf(t, LIVE, 0, (uint8_t)i);
        assert_int_equal(pg_page_add_item(page, t, 16, i, 0), i);
    }
}

/* An inner page: two leaves, then an inner tuple of 3 nodes at 3. */
static void
parent_page(uint8_t *page)
{
    uint8_t t[32];
    uint16_t s;

    leaf_page(page, 2);
    tarn_put_u16(page + FLAGS, 0);
    s = inner(t, 3, 0x33);
    assert_int_equal(pg_page_add_item(page, t, s, 3, 0), 3);
}

static void
test_add_leaf(void **state)
{
    uint8_t page[8192], m[10 + 16];
    blockref b[2] = {{.blkno = 5, .will_init = true}, {.blkno = 9}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    /* A new leaf page with its first tuple. */
    memset(m, 0, 10);
    m[0] = 1;               /* newPage */
    tarn_put_u16(m + 2, 1); /* offnumLeaf */
    tarn_put_u16(m + 6, 3); /* offnumParent */
    tarn_put_u16(m + 8, 1); /* nodeI */
    leaf(m + 10, LIVE, 0, 0xA1);
    memset(page, 0x77, sizeof page);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 4), 0x1000);
    assert_int_equal(tarn_get_u16(page + FLAGS), LEAF);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 6), 0xFF82);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(item(page, 1)[8], 0xA1);
    assert_int_equal(page[100], 0);
    /* The next one chained after it: the head's next offset. */
    m[0] = 0;
    b[0].will_init = false;
    tarn_put_u16(m + 2, 2);
    tarn_put_u16(m + 4, 1);
    leaf(m + 10, LIVE, 0, 0xA2);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(nitems(page), 2);
    assert_int_equal(tarn_get_u16(item(page, 1) + 4), 2);
    /* The parent's downlink. */
    parent_page(page);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 1, m, sizeof m);
    assert_int_equal(apply(page, 9, &v, 0x2000, &err), TARN_OK);
    assert_node(page, 3, 1, 5, 2);
    assert_node(page, 3, 0, 0, 0);
    /* A placeholder is replaced, a DEAD tuple too (equal offsets). */
    leaf_page(page, 2);
    leaf(m + 10, PLACEHOLDER, 0, 0);
    pg_page_add_item(page, m + 10, 16, 3, 0);
    tarn_put_u16(page + NPLACE, 1);
    tarn_put_u16(m + 2, 3), tarn_put_u16(m + 4, 0);
    leaf(m + 10, LIVE, 0, 0xA3);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + NPLACE), 0);
    assert_int_equal(item(page, 3)[8], 0xA3);
    assert_int_equal(state_of(page, 3), LIVE);
    tarn_put_u16(m + 2, 1), tarn_put_u16(m + 4, 1);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(item(page, 1)[8], 0xA3);
    assert_int_equal(nitems(page), 3);

    /* Refusals: a live tuple in the way, a node the parent lacks, a
     * tuple longer than the record, a page that is not SP-GiST. */
    tarn_put_u16(m + 2, 2), tarn_put_u16(m + 4, 0);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x4000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist ADD_LEAF"));
    assert_non_null(strstr(err.msg, "block 5 of 1663/5/16384"));
    assert_non_null(strstr(err.msg, "not a placeholder"));
    parent_page(page);
    tarn_put_u16(m + 8, 7);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 1, m, sizeof m);
    assert_int_equal(apply(page, 9, &v, 0x4000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "no node 7"));
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 0, m, sizeof m - 1);
    assert_int_equal(apply(page, 5, &v, 0x4000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "tuple of 16 bytes"));
    pg_page_init(page, 16);
    redo_record(&v, RM_SPGIST, ADD_LEAF, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x4000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "not an SP-GiST index page"));
    tbuf_free(&v);
}

static void
test_move_leafs(void **state)
{
    uint8_t page[8192], m[20 + 4 + 6 + 48] = {0};
    blockref b[3] = {
        {.blkno = 5}, {.blkno = 6, .will_init = true}, {.blkno = 9}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    tarn_put_u16(m, 2);                               /* nMoves */
    m[2] = 1;                                         /* newPage */
    tarn_put_u16(m + 6, 3);                           /* offnumParent */
    tarn_put_u16(m + 8, 2);                           /* nodeI */
    tarn_put_u32(m + 12, 77);                         /* myXid */
    tarn_put_u16(m + 20, 3), tarn_put_u16(m + 22, 1); /* delete */
    tarn_put_u16(m + 24, 1), tarn_put_u16(m + 26, 2); /* insert */
    tarn_put_u16(m + 28, 3);
    for (unsigned i = 0; i < 3; i++)
        leaf(m + 30 + 16 * i, LIVE, 0, (uint8_t)(0xB1 + i));
    /* The destination gets all three. */
    redo_record(&v, RM_SPGIST, MOVE_LEAFS, b, 3, 1, m, sizeof m);
    assert_int_equal(apply(page, 6, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 3);
    assert_int_equal(item(page, 3)[8], 0xB3);
    /* The source: a redirect where the first listed was, a placeholder
     * for the other. */
    leaf_page(page, 4);
    redo_record(&v, RM_SPGIST, MOVE_LEAFS, b, 3, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 4);
    assert_int_equal(state_of(page, 3), REDIRECT);
    assert_int_equal(tarn_get_u32(item(page, 3)) >> 2, 16);
    assert_int_equal(tarn_get_u16(item(page, 3) + 8), 6);
    assert_int_equal(tarn_get_u16(item(page, 3) + 10), 3);
    assert_int_equal(tarn_get_u32(item(page, 3) + 12), 77);
    assert_int_equal(state_of(page, 1), PLACEHOLDER);
    assert_int_equal(tarn_get_u16(item(page, 1) + 6), 0xFFFF);
    assert_int_equal(tarn_get_u32(item(page, 1) + 12), 0);
    assert_int_equal(item(page, 2)[8], 2);
    assert_int_equal(tarn_get_u16(page + NREDIR), 1);
    assert_int_equal(tarn_get_u16(page + NPLACE), 1);
    /* The parent follows the chain's new head. */
    parent_page(page);
    redo_record(&v, RM_SPGIST, MOVE_LEAFS, b, 3, 2, m, sizeof m);
    assert_int_equal(apply(page, 9, &v, 0x1000, &err), TARN_OK);
    assert_node(page, 3, 2, 6, 3);
    /* More offsets than the record holds. */
    tarn_put_u16(m, 40);
    redo_record(&v, RM_SPGIST, MOVE_LEAFS, b, 3, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist MOVE_LEAFS"));
    assert_non_null(strstr(err.msg, "main data of 78 bytes"));
    tbuf_free(&v);
}

static void
test_add_node_and_split_tuple(void **state)
{
    uint8_t page[8192], m[20 + 40], s[6 + 32 + 16];
    blockref b[3] = {
        {.blkno = 5}, {.blkno = 8, .will_init = true}, {.blkno = 9}};
    tbuf v = {0};
    tarn_err err;
    uint16_t size;

    (void)state;
    memset(m, 0, 20);
    tarn_put_u16(m, 3);      /* offnum */
    tarn_put_u16(m + 2, 1);  /* offnumNew */
    m[4] = 1;                /* newPage */
    m[5] = 0;                /* parentBlk: the original page */
    tarn_put_u16(m + 6, 3);  /* offnumParent */
    tarn_put_u16(m + 8, 0);  /* nodeI */
    tarn_put_u32(m + 12, 5); /* myXid */
    size = inner(m + 20, 4, 0x44);
    /* In place (no block 1): the tuple grows a node. */
    parent_page(page);
    redo_record(&v, RM_SPGIST, ADD_NODE, b, 1, 0, m, 20 + size);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 3);
    assert_int_equal(tarn_get_u16(item(page, 3) + 4), 40);
    assert_int_equal(tarn_get_u32(item(page, 3)) >> 3 & 0x1FFF, 4);
    /* Moved to a new page... */
    redo_record(&v, RM_SPGIST, ADD_NODE, b, 2, 1, m, 20 + size);
    memset(page, 0x66, sizeof page);
    assert_int_equal(apply(page, 8, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + FLAGS), 0);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(item(page, 1)[4], 40);
    /* ...leaving a redirect, here in a page that also holds the parent,
     * whose downlink is updated there. */
    tarn_put_u16(m, 1);
    parent_page(page);
    redo_record(&v, RM_SPGIST, ADD_NODE, b, 2, 0, m, 20 + size);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(nitems(page), 3);
    assert_int_equal(state_of(page, 1), REDIRECT);
    assert_int_equal(tarn_get_u32(item(page, 1)) >> 2, 16);
    assert_int_equal(tarn_get_u16(item(page, 1) + 8), 8);
    assert_int_equal(tarn_get_u16(item(page, 1) + 10), 1);
    assert_int_equal(tarn_get_u32(item(page, 1) + 12), 5);
    assert_int_equal(tarn_get_u16(page + NREDIR), 1);
    assert_node(page, 3, 0, 8, 1);
    /* A parent of its own (block 2); refused when parentBlk says not. */
    m[5] = 2;
    parent_page(page);
    redo_record(&v, RM_SPGIST, ADD_NODE, b, 3, 2, m, 20 + size);
    assert_int_equal(apply(page, 9, &v, 0x2000, &err), TARN_OK);
    assert_node(page, 3, 0, 8, 1);
    m[5] = 0xFF;
    redo_record(&v, RM_SPGIST, ADD_NODE, b, 3, 2, m, 20 + size);
    assert_int_equal(apply(page, 9, &v, 0x2000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist ADD_NODE"));
    assert_non_null(strstr(err.msg, "no part of the record"));

    /* SPLIT_TUPLE on one page: prefix replaces, postfix appended. */
    memset(s, 0, 6);
    tarn_put_u16(s, 3);     /* offnumPrefix */
    tarn_put_u16(s + 2, 4); /* offnumPostfix */
    s[5] = 1;               /* postfixBlkSame */
    size = inner(s + 6, 3, 0x55);
    inner(s + 6 + size, 1, 0x56);
    parent_page(page);
    redo_record(&v, RM_SPGIST, SPLIT_TUPLE, b, 1, 0, s, sizeof s);
    assert_int_equal(apply(page, 5, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(nitems(page), 4);
    assert_int_equal(item(page, 3)[4], 32);
    assert_int_equal(item(page, 4)[4], 16);
    /* A postfix on a page of its own. */
    s[5] = 0;
    s[4] = 1;
    redo_record(&v, RM_SPGIST, SPLIT_TUPLE, b, 2, 1, s, sizeof s);
    assert_int_equal(apply(page, 8, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist SPLIT_TUPLE"));
    tarn_put_u16(s + 2, 1);
    redo_record(&v, RM_SPGIST, SPLIT_TUPLE, b, 2, 1, s, sizeof s);
    assert_int_equal(apply(page, 8, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    /* A postfix cut short. */
    redo_record(&v, RM_SPGIST, SPLIT_TUPLE, b, 2, 0, s, sizeof s - 4);
    assert_int_equal(apply(page, 5, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "tuple of 16 bytes"));
    tbuf_free(&v);
}

static void
test_picksplit(void **state)
{
    uint8_t page[8192], copy[8192], m[28 + 2 + 4 + 2 + 24 + 32] = {0};
    blockref b[4] = {{.blkno = 5, .will_init = true},
                     {.blkno = 6, .will_init = true},
                     {.blkno = 7, .will_init = true},
                     {.blkno = 9}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    tarn_put_u16(m + 2, 1);   /* nDelete */
    tarn_put_u16(m + 4, 2);   /* nInsert */
    m[6] = 0;                 /* initSrc */
    m[7] = 1;                 /* initDest */
    tarn_put_u16(m + 8, 1);   /* offnumInner */
    m[10] = 1;                /* initInner */
    tarn_put_u16(m + 14, 3);  /* offnumParent */
    tarn_put_u16(m + 16, 1);  /* nodeI */
    tarn_put_u32(m + 20, 42); /* myXid */
    tarn_put_u16(m + 28, 2);  /* delete 2 */
    tarn_put_u16(m + 30, 2);  /* insert at 2 (src) ... */
    tarn_put_u16(m + 32, 1);  /* ... and at 1 (dest) */
    m[34] = 0, m[35] = 1;     /* page selectors */
    inner(m + 36, 2, 0x77);
    leaf(m + 60, LIVE, 0, 0xC1);
    leaf(m + 76, LIVE, 0, 0xC2);
    /* Source: the deleted tuple's place holds a redirect to the inner
     * tuple, so a leaf sent to that offset is refused; sent past the end,
     * it is added. */
    b[0].will_init = false;
    leaf_page(page, 3);
    redo_record(&v, RM_SPGIST, PICKSPLIT, b, 4, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist PICKSPLIT"));
    assert_non_null(strstr(err.msg, "not a placeholder"));
    tarn_put_u16(m + 30, 4);
    leaf_page(page, 3);
    redo_record(&v, RM_SPGIST, PICKSPLIT, b, 4, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 4);
    assert_int_equal(state_of(page, 2), REDIRECT);
    assert_int_equal(tarn_get_u16(item(page, 2) + 8), 7);
    assert_int_equal(tarn_get_u16(item(page, 2) + 10), 1);
    assert_int_equal(tarn_get_u32(item(page, 2) + 12), 42);
    assert_int_equal(item(page, 4)[8], 0xC1);
    /* Destination: a fresh leaf with its share. */
    redo_record(&v, RM_SPGIST, PICKSPLIT, b, 4, 1, m, sizeof m);
    assert_int_equal(apply(page, 6, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(item(page, 1)[8], 0xC2);
    assert_int_equal(tarn_get_u16(page + FLAGS), LEAF);
    /* Inner: a fresh inner page; parent: the downlink. */
    redo_record(&v, RM_SPGIST, PICKSPLIT, b, 4, 2, m, sizeof m);
    assert_int_equal(apply(page, 7, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(tarn_get_u16(page + FLAGS), 0);
    assert_int_equal(item(page, 1)[4], 24);
    parent_page(page);
    redo_record(&v, RM_SPGIST, PICKSPLIT, b, 4, 3, m, sizeof m);
    assert_int_equal(apply(page, 9, &v, 0x1000, &err), TARN_OK);
    assert_node(page, 3, 1, 7, 1);
    /* A root split leaves a source block alone, LSN included. */
    m[0] = 1;
    leaf_page(page, 3);
    memcpy(copy, page, sizeof page);
    redo_record(&v, RM_SPGIST, PICKSPLIT, b, 4, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_OK);
    assert_memory_equal(page, copy, sizeof page);
    /* Leaf tuples cut short. */
    redo_record(&v, RM_SPGIST, PICKSPLIT, b, 4, 1, m, sizeof m - 4);
    assert_int_equal(apply(page, 6, &v, 0x2000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "tuple of 16 bytes"));
    tbuf_free(&v);
}

static void
test_vacuum(void **state)
{
    uint8_t page[8192], t[16], m[16 + 12], r[12 + 4], d[8 + 2];
    blockref b[1] = {{.blkno = 5}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    /* VACUUM_LEAF: 1 dies, 2 becomes a placeholder, 5 moves to 3 (whose
     * old tuple is gone), 4's chain link now points to 3. */
    leaf_page(page, 5);
    memset(m, 0, 16);
    tarn_put_u16(m, 1), tarn_put_u16(m + 2, 1);
    tarn_put_u16(m + 4, 1), tarn_put_u16(m + 6, 1);
    tarn_put_u16(m + 16, 1); /* dead */
    tarn_put_u16(m + 18, 2); /* placeholder */
    tarn_put_u16(m + 20, 5); /* move from */
    tarn_put_u16(m + 22, 3); /* move to */
    tarn_put_u16(m + 24, 4); /* chain src */
    tarn_put_u16(m + 26, 3); /* chain dest */
    redo_record(&v, RM_SPGIST, VACUUM_LEAF, b, 1, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 5);
    assert_int_equal(state_of(page, 1), DEAD);
    assert_int_equal(tarn_get_u16(item(page, 1) + 6), 0xFFFF);
    assert_int_equal(state_of(page, 2), PLACEHOLDER);
    assert_int_equal(item(page, 3)[8], 5);
    assert_int_equal(tarn_get_u16(item(page, 4) + 4), 3);
    assert_int_equal(state_of(page, 5), PLACEHOLDER);
    assert_int_equal(tarn_get_u16(page + NPLACE), 2);
    assert_int_equal(tarn_get_u32(page + 4), 0x1000);
    /* A move from an offset past the page. */
    tarn_put_u16(m + 20, 9);
    redo_record(&v, RM_SPGIST, VACUUM_LEAF, b, 1, 0, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist VACUUM_LEAF"));

    /* VACUUM_ROOT: items 1 and 3 of 3 go. */
    leaf_page(page, 3);
    memset(r, 0, sizeof r);
    tarn_put_u16(r, 2);
    tarn_put_u16(r + 12, 1), tarn_put_u16(r + 14, 3);
    redo_record(&v, RM_SPGIST, VACUUM_ROOT, b, 1, 0, r, sizeof r);
    assert_int_equal(apply(page, 1, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(item(page, 1)[8], 2);
    redo_record(&v, RM_SPGIST, VACUUM_ROOT, b, 1, 0, r, sizeof r - 2);
    assert_int_equal(apply(page, 1, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist VACUUM_ROOT"));

    /* VACUUM_REDIRECT: the redirect at 2 becomes a placeholder and the
     * placeholders from 2 on are removed. */
    leaf_page(page, 1);
    leaf(t, REDIRECT, 0, 0);
    tarn_put_u16(t + 8, 3), tarn_put_u16(t + 10, 4);
    tarn_put_u32(t + 12, 99);
    pg_page_add_item(page, t, 16, 2, 0);
    leaf(t, PLACEHOLDER, 0, 0);
    pg_page_add_item(page, t, 16, 3, 0);
    tarn_put_u16(page + NREDIR, 1), tarn_put_u16(page + NPLACE, 1);
    memset(d, 0, sizeof d);
    tarn_put_u16(d, 1);
    tarn_put_u16(d + 8, 2);
    redo_record(&v, RM_SPGIST, VACUUM_REDIRECT, b, 1, 0, d, sizeof d);
    {
        uint8_t keep[8192];
        memcpy(keep, page, sizeof page);
        assert_int_equal(apply(page, 5, &v, 0x4000, &err), TARN_OK);
        assert_int_equal(state_of(page, 2), PLACEHOLDER);
        assert_int_equal(tarn_get_u16(item(page, 2) + 6), 0xFFFF);
        assert_int_equal(tarn_get_u16(item(page, 2) + 10), 0);
        assert_int_equal(tarn_get_u32(item(page, 2) + 12), 99);
        assert_int_equal(tarn_get_u16(page + NREDIR), 0);
        assert_int_equal(tarn_get_u16(page + NPLACE), 2);
        memcpy(page, keep, sizeof page);
    }
    tarn_put_u16(d + 2, 2);
    redo_record(&v, RM_SPGIST, VACUUM_REDIRECT, b, 1, 0, d, sizeof d);
    assert_int_equal(apply(page, 5, &v, 0x4000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(tarn_get_u16(page + NREDIR), 0);
    assert_int_equal(tarn_get_u16(page + NPLACE), 0);
    tarn_put_u16(d + 2, 5);
    redo_record(&v, RM_SPGIST, VACUUM_REDIRECT, b, 1, 0, d, sizeof d);
    assert_int_equal(apply(page, 5, &v, 0x4000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "SPGist VACUUM_REDIRECT"));

    /* An unknown op code. */
    redo_record(&v, RM_SPGIST, 0x90, b, 1, 0, d, sizeof d);
    assert_int_equal(apply(page, 5, &v, 0x4000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown op code 0x90"));
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_leaf),
        cmocka_unit_test(test_move_leafs),
        cmocka_unit_test(test_add_node_and_split_tuple),
        cmocka_unit_test(test_picksplit),
        cmocka_unit_test(test_vacuum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
