/*
 * test_redo_gist.c - GiST index redo on crafted records: the bytes a few
 * records leave on the page (computed here from PostgreSQL 15's layouts:
 * page header, line pointers, IndexTupleData, GISTPageOpaqueData, the
 * gistxlog records), and the refusals, each naming the rmgr, the record
 * type and the block.  The exhaustive proof against PostgreSQL is
 * tests/integration/test_redo.py.
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

#define RM_GIST 14
#define SPECIAL (8192 - 16)
#define NSN     SPECIAL
#define RLINK   (SPECIAL + 8)
#define FLAGS   (SPECIAL + 12)

/* Record types. */
#define PAGE_UPDATE 0x00
#define DELETE      0x10
#define PAGE_REUSE  0x20
#define PAGE_SPLIT  0x30
#define PAGE_DELETE 0x60

#define F_LEAF         1
#define F_DELETED      2
#define F_FOLLOW_RIGHT 8
#define F_HAS_GARBAGE  16

/* An empty GiST page with @p flags. */
static void
gist_page(uint8_t *page, uint16_t flags)
{
    memset(page, 0x5a, 8192);
    pg_page_init(page, 16);
    tarn_put_u32(page + RLINK, 0xFFFFFFFF);
    tarn_put_u16(page + FLAGS, flags);
    tarn_put_u16(page + SPECIAL + 14, 0xFF81);
}

/* An index tuple of @p size bytes (8-byte header, then @p fill). */
static void
tuple(uint8_t *t, uint16_t size, uint16_t heapoff, uint8_t fill)
{
    memset(t, fill, size);
    tarn_put_u32(t, 0);
    tarn_put_u16(t + 4, heapoff);
    tarn_put_u16(t + 6, size);
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

static uint64_t
nsn(const uint8_t *page)
{
    return (uint64_t)tarn_get_u32(page + NSN) << 32
           | tarn_get_u32(page + NSN + 4);
}

/* A leaf holding @p n 16-byte tuples, heap offsets 1..n. */
static void
leaf_with(uint8_t *page, unsigned n)
{
    uint8_t t[16];

    gist_page(page, F_LEAF);
    for (unsigned i = 1; i <= n; i++) {
        tuple(t, 16, (uint16_t)i, (uint8_t)i);
        assert_int_equal(pg_page_add_item(page, t, 16, i, 0), i);
    }
}

static void
test_page_update(void **state)
{
    uint8_t page[8192], child[8192], d[2 + 24 + 16], m[4];
    blockref b[2] = {{.blkno = 4, .data = d}, {.blkno = 9}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    /* Two tuples added to an empty leaf, at offsets 1 and 2. */
    gist_page(page, F_LEAF);
    tarn_put_u16(m, 0), tarn_put_u16(m + 2, 2);
    tuple(d, 24, 1, 0xA1);
    tuple(d + 24, 16, 2, 0xA2);
    b[0].len = 40;
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 4);
    assert_int_equal(apply(page, 4, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 4), 0x1000);
    assert_int_equal(nitems(page), 2);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL - 40);
    assert_int_equal(item(page, 1) - page, SPECIAL - 24);
    assert_int_equal(item(page, 2)[8], 0xA2);
    /* One replacing one: an overwrite in place, data below moves. */
    tarn_put_u16(m, 1), tarn_put_u16(m + 2, 1);
    tarn_put_u16(d, 1);
    tuple(d + 2, 32, 7, 0xB1);
    b[0].len = 34;
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 4);
    assert_int_equal(apply(page, 4, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(nitems(page), 2);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL - 48);
    assert_int_equal(item(page, 1)[8], 0xB1);
    assert_int_equal(item(page, 2)[8], 0xA2);
    assert_int_equal(tarn_get_u16(page + FLAGS), F_LEAF);
    /* A deletion on a leaf: no F_TUPLES_DELETED since 15.20. */
    tarn_put_u16(m, 1), tarn_put_u16(m + 2, 0);
    tarn_put_u16(d, 1);
    b[0].len = 2;
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 4);
    assert_int_equal(apply(page, 4, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(item(page, 1)[8], 0xA2);
    assert_int_equal(tarn_get_u16(page + FLAGS), F_LEAF);

    /* Block 1, the left child of a finished split: NSN and follow-right. */
    gist_page(child, F_LEAF | F_FOLLOW_RIGHT);
    b[0].len = 0;
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 2, 1, m, 4);
    assert_int_equal(apply(child, 9, &v, 0x123400005000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(child + FLAGS), F_LEAF);
    assert_true(nsn(child) == 0x123400005000);
    assert_int_equal(tarn_get_u32(child + 4), 0x5000);
    /* Also when its image was restored (taken before the NSN was set). */
    {
        static uint8_t img[8192];
        blockref bi[2] = {{.blkno = 4}, {.blkno = 9, .image = img}};
        gist_page(img, F_FOLLOW_RIGHT);
        memset(child, 0, sizeof child);
        redo_record(&v, RM_GIST, PAGE_UPDATE, bi, 2, 1, m, 4);
        assert_int_equal(apply(child, 9, &v, 0x6000, &err), TARN_OK);
        assert_int_equal(tarn_get_u16(child + FLAGS), 0);
        assert_true(nsn(child) == 0x6000);
        assert_int_equal(tarn_get_u32(child + 4), 0x6000);
        /* The target block's image is only restored. */
        bi[0].image = img, bi[1].image = NULL;
        redo_record(&v, RM_GIST, PAGE_UPDATE, bi, 2, 0, m, 4);
        assert_int_equal(apply(child, 4, &v, 0x7000, &err), TARN_OK);
        assert_int_equal(tarn_get_u16(child + FLAGS), F_FOLLOW_RIGHT);
        assert_true(nsn(child) == 0);
    }

    /* Refusals: an overwrite of an offset not on the page... */
    tarn_put_u16(m, 1), tarn_put_u16(m + 2, 1);
    tarn_put_u16(d, 9);
    tuple(d + 2, 16, 7, 0xB1);
    b[0].len = 18;
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 4);
    assert_int_equal(apply(page, 4, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gist PAGE_UPDATE"));
    assert_non_null(strstr(err.msg, "block 4 of 1663/5/16384"));
    assert_non_null(strstr(err.msg, "item 9"));
    /* ...a tuple longer than the data... */
    tarn_put_u16(m, 0), tarn_put_u16(m + 2, 1);
    tuple(d, 24, 1, 0xC1);
    b[0].len = 20;
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 4);
    assert_int_equal(apply(page, 4, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "tuple of 24 bytes"));
    /* ...fewer tuples than announced, short main data, no GiST page. */
    b[0].len = 24;
    tarn_put_u16(m + 2, 2);
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 4);
    assert_int_equal(apply(page, 4, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "1 tuples for 2"));
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 3);
    assert_int_equal(apply(page, 4, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "main data of 3 bytes"));
    pg_page_init(page, 8);
    redo_record(&v, RM_GIST, PAGE_UPDATE, b, 1, 0, m, 4);
    assert_int_equal(apply(page, 4, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a GiST index page"));
    tbuf_free(&v);
}

static void
test_page_split(void **state)
{
    uint8_t page[8192], d1[4 + 16 + 24], d2[4 + 16], m[24] = {0};
    blockref b[3] = {{.blkno = 2},
                     {.blkno = 0, .data = d1, .len = 44, .will_init = true},
                     {.blkno = 6, .data = d2, .len = 20, .will_init = true}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    tarn_put_u32(m, 0xFFFFFFFF); /* origrlink */
    tarn_put_u32(m + 8, 0x7000); /* orignsn, low word */
    tarn_put_u32(m + 12, 0x3);   /* high word */
    m[16] = 1;                   /* origleaf */
    tarn_put_u16(m + 18, 2);     /* npage */
    m[20] = 1;                   /* markfollowright */
    tarn_put_u32(d1, 2);
    tuple(d1 + 4, 16, 1, 0x11);
    tuple(d1 + 20, 24, 2, 0x12);
    tarn_put_u32(d2, 1);
    tuple(d2 + 4, 16, 3, 0x21);
    /* A root split: the root keeps the tuples it is given, not a leaf. */
    memset(page, 0x77, sizeof page);
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 1, m, 24);
    assert_int_equal(apply(page, 0, &v, 0x9000, &err), TARN_OK);
    assert_int_equal(nitems(page), 2);
    assert_int_equal(item(page, 2)[8], 0x12);
    assert_int_equal(tarn_get_u16(page + FLAGS), 0);
    assert_int_equal(tarn_get_u32(page + RLINK), 0xFFFFFFFF);
    assert_true(nsn(page) == 0x300007000);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 14), 0xFF81);
    assert_int_equal(page[100], 0);
    /* Its other page: a leaf, the old right link, no follow-right. */
    tarn_put_u32(m, 77);
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 2, m, 24);
    assert_int_equal(apply(page, 6, &v, 0x9000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    assert_int_equal(tarn_get_u16(page + FLAGS), F_LEAF);
    assert_int_equal(tarn_get_u32(page + RLINK), 77);
    /* A split of block 3: the left half links to the right one and
     * follows right until the parent has its downlink. */
    b[1].blkno = 3;
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 1, m, 24);
    assert_int_equal(apply(page, 3, &v, 0xA000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + FLAGS), F_LEAF | F_FOLLOW_RIGHT);
    assert_int_equal(tarn_get_u32(page + RLINK), 6);
    m[20] = 0;
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 1, m, 24);
    assert_int_equal(apply(page, 3, &v, 0xA000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + FLAGS), F_LEAF);
    /* Block 0, the child whose split the downlinks complete. */
    gist_page(page, F_FOLLOW_RIGHT);
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 0, m, 24);
    assert_int_equal(apply(page, 2, &v, 0xB000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + FLAGS), 0);
    assert_true(nsn(page) == 0xB000);

    /* Refusals: a count the tuples do not match, data too short, a
     * block past npage, short main data. */
    tarn_put_u32(d2, 2);
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 2, m, 24);
    assert_int_equal(apply(page, 6, &v, 0xC000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gist PAGE_SPLIT"));
    assert_non_null(strstr(err.msg, "1 tuples where 2"));
    b[2].len = 2;
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 2, m, 24);
    assert_int_equal(apply(page, 6, &v, 0xC000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "block data of 2 bytes"));
    tarn_put_u16(m + 18, 1);
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 2, m, 24);
    assert_int_equal(apply(page, 6, &v, 0xC000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "no part of the record"));
    redo_record(&v, RM_GIST, PAGE_SPLIT, b, 3, 1, m, 20);
    assert_int_equal(apply(page, 3, &v, 0xC000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "main data of 20 bytes"));
    tbuf_free(&v);
}

static void
test_delete_and_page_delete(void **state)
{
    uint8_t page[8192], m[6 + 6], pm[10];
    blockref b[2] = {{.blkno = 5}, {.blkno = 1}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    /* DELETE: three items from a leaf with garbage. */
    leaf_with(page, 5);
    tarn_put_u16(page + FLAGS, F_LEAF | F_HAS_GARBAGE);
    tarn_put_u32(m, 900);
    tarn_put_u16(m + 4, 3);
    tarn_put_u16(m + 6, 1), tarn_put_u16(m + 8, 2), tarn_put_u16(m + 10, 4);
    redo_record(&v, RM_GIST, DELETE, b, 1, 0, m, 12);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(nitems(page), 2);
    assert_int_equal(item(page, 1)[8], 3);
    assert_int_equal(item(page, 2)[8], 5);
    assert_int_equal(tarn_get_u16(page + FLAGS), F_LEAF);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL - 32);
    /* More offsets than the record holds; an offset not on the page. */
    tarn_put_u16(m + 4, 4);
    redo_record(&v, RM_GIST, DELETE, b, 1, 0, m, 12);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gist DELETE"));
    tarn_put_u16(m + 4, 1);
    redo_record(&v, RM_GIST, DELETE, b, 1, 0, m, 8);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(nitems(page), 1);
    redo_record(&v, RM_GIST, DELETE, b, 1, 0, m, 8);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_OK);
    redo_record(&v, RM_GIST, DELETE, b, 1, 0, m, 8);
    assert_int_equal(apply(page, 5, &v, 0x2000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "cannot delete"));

    /* PAGE_DELETE: the leaf is marked deleted with its XID... */
    gist_page(page, F_LEAF);
    tarn_put_u32(pm, 0x1234), tarn_put_u32(pm + 4, 1); /* deleteXid */
    tarn_put_u16(pm + 8, 2);                           /* downlink */
    redo_record(&v, RM_GIST, PAGE_DELETE, b, 2, 0, pm, 10);
    assert_int_equal(apply(page, 5, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + FLAGS), F_LEAF | F_DELETED);
    assert_int_equal(tarn_get_u16(page + 12), 32);
    assert_int_equal(tarn_get_u32(page + 24), 0x1234);
    assert_int_equal(tarn_get_u32(page + 28), 1);
    /* ...and its parent loses the downlink. */
    leaf_with(page, 3);
    tarn_put_u16(page + FLAGS, 0);
    redo_record(&v, RM_GIST, PAGE_DELETE, b, 2, 1, pm, 10);
    assert_int_equal(apply(page, 1, &v, 0x3000, &err), TARN_OK);
    assert_int_equal(nitems(page), 2);
    assert_int_equal(item(page, 2)[8], 3);
    tarn_put_u16(pm + 8, 3);
    redo_record(&v, RM_GIST, PAGE_DELETE, b, 2, 1, pm, 10);
    assert_int_equal(apply(page, 1, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gist PAGE_DELETE"));
    assert_non_null(strstr(err.msg, "downlink 3 of 2"));
    tbuf_free(&v);
}

static void
test_refusals(void **state)
{
    uint8_t page[8192], m[16] = {0};
    blockref b[1] = {{.blkno = 5}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    leaf_with(page, 1);
    redo_record(&v, RM_GIST, 0x40, b, 1, 0, m, 16);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown op code 0x40"));
    /* PAGE_REUSE has no block to change. */
    redo_record(&v, RM_GIST, PAGE_REUSE, b, 1, 0, m, 16);
    assert_int_equal(apply(page, 5, &v, 0x1000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gist PAGE_REUSE"));
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_update),
        cmocka_unit_test(test_page_split),
        cmocka_unit_test(test_delete_and_page_delete),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
