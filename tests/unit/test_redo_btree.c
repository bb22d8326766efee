/*
 * test_redo_btree.c - B-tree redo on crafted records: the bytes a few
 * records leave on the page (computed here from PostgreSQL 15's layouts:
 * page header, line pointers, IndexTupleData, BTPageOpaqueData,
 * BTMetaPageData, posting lists), and the refusals, each naming the rmgr,
 * the record type and the block.  The exhaustive proof against PostgreSQL
 * is tests/integration/test_redo.py; these pin down layouts and the
 * error paths real WAL never takes.
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
#include "storage/redo/redo.h"
#include "storage/value.h"

#define RM_BTREE 11
#define SPECIAL  (8192 - 16)

/* Record types. */
#define INSERT_LEAF  0x00
#define SPLIT_L      0x30
#define SPLIT_R      0x40
#define INSERT_POST  0x50
#define DEDUP        0x60
#define UNLINK_PAGE  0x80
#define VACUUM       0xC0
#define REUSE_PAGE   0xD0
#define META_CLEANUP 0xE0

/* An empty leaf: _bt_pageinit() and BTP_LEAF, rightmost. */
static void
leaf_page(uint8_t *page)
{
    pg_page_init(page, 16);
    tarn_put_u16(page + SPECIAL + 12, 0x0001);
}

/* A 16-byte non-pivot int4 index tuple with heap TID (blk, off). */
static void
int_tuple(uint8_t *t, uint32_t blk, uint16_t off, uint32_t key)
{
    memset(t, 0, 16);
    tarn_put_u16(t, (uint16_t)(blk >> 16));
    tarn_put_u16(t + 2, (uint16_t)blk);
    tarn_put_u16(t + 4, off);
    tarn_put_u16(t + 6, 16);
    tarn_put_u32(t + 8, key);
}

static void
insert(uint8_t *page, uint16_t off, uint32_t key, uint16_t heapoff,
       tarn_lsn lsn)
{
    uint8_t t[16], m[2];
    blockref b = {.blkno = 1, .data = t, .len = 16};
    tbuf v = {0};
    tarn_err err;

    int_tuple(t, 0, heapoff, key);
    tarn_put_u16(m, off);
    redo_record(&v, RM_BTREE, INSERT_LEAF, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, lsn, &err), TARN_OK);
    tbuf_free(&v);
}

static void
test_insert_leaf(void **state)
{
    uint8_t page[8192], t[16], m[2];
    blockref b = {.blkno = 1, .data = t, .len = 16};
    uint32_t lp;
    tbuf v = {0};
    tarn_err err;

    (void)state;
    leaf_page(page);
    insert(page, 1, 10, 1, 0x100000028);
    insert(page, 1, 5, 2, 0x100000050); /* before: shuffles item 1 up */
    assert_int_equal(tarn_get_u32(page), 0x1);
    assert_int_equal(tarn_get_u32(page + 4), 0x50);
    assert_int_equal(tarn_get_u16(page + 12), 24 + 8);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL - 32);
    lp = tarn_get_u32(page + 24);
    assert_int_equal(lp & 0x7fff, SPECIAL - 32);
    assert_int_equal(lp >> 17, 16);
    assert_int_equal(tarn_get_u32(page + SPECIAL - 32 + 8), 5);
    assert_int_equal(tarn_get_u32(page + SPECIAL - 16 + 8), 10);

    /* Offset 4 on a page with two items: PostgreSQL PANICs. */
    int_tuple(t, 0, 3, 20);
    tarn_put_u16(m, 4);
    redo_record(&v, RM_BTREE, INSERT_LEAF, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x200000000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree INSERT_LEAF"));
    assert_non_null(strstr(err.msg, "block 1 of 1663/5/16384"));
    assert_non_null(strstr(err.msg, "failed to add new item at offset 4"));
    /* Main data cut short. */
    redo_record(&v, RM_BTREE, INSERT_LEAF, &b, 1, 0, m, 1);
    assert_int_equal(apply(page, 1, &v, 0x200000000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "main data of 1 bytes"));
    tbuf_free(&v);
}

static void
test_insert_post(void **state)
{
    uint8_t page[8192], post[32], d[2 + 16], m[2], *p;
    blockref b = {.blkno = 1, .data = d, .len = sizeof(d)};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    leaf_page(page);
    /* A posting list of key 7 with heap TIDs (0,1) (0,3) (0,5): key at
     * 8, list at 16 (3 * 6 = 18 bytes), MAXALIGN(34) = 40 bytes. */
    memset(post, 0, sizeof(post));
    {
        uint8_t t[40] = {0};
        tarn_put_u16(t + 2, 16);          /* list offset in the block field */
        tarn_put_u16(t + 4, 3 | 0x2000);  /* 3 TIDs, BT_IS_POSTING */
        tarn_put_u16(t + 6, 40 | 0x2000); /* size, INDEX_ALT_TID_MASK */
        tarn_put_u32(t + 8, 7);
        tarn_put_u16(t + 16 + 4, 1), tarn_put_u16(t + 22 + 4, 3),
            tarn_put_u16(t + 28 + 4, 5);
        assert_int_equal(pg_page_is_new(page), 0);
        {
            blockref bb = {.blkno = 1, .data = t, .len = 40};
            tarn_put_u16(m, 1);
            redo_record(&v, RM_BTREE, INSERT_LEAF, &bb, 1, 0, m, 2);
            assert_int_equal(apply(page, 1, &v, 0x100, &err), TARN_OK);
        }
    }
    /* New item (0,4) splits the list at 2: the list becomes (0,1) (0,3)
     * (0,4) and the new item takes (0,5), inserted at offset 2. */
    tarn_put_u16(d, 2);
    int_tuple(d + 2, 0, 4, 7);
    tarn_put_u16(m, 2);
    redo_record(&v, RM_BTREE, INSERT_POST, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x200, &err), TARN_OK);
    p = page + (tarn_get_u32(page + 24) & 0x7fff);
    assert_int_equal(tarn_get_u16(p + 16 + 4), 1);
    assert_int_equal(tarn_get_u16(p + 22 + 4), 3);
    assert_int_equal(tarn_get_u16(p + 28 + 4), 4);
    p = page + (tarn_get_u32(page + 28) & 0x7fff);
    assert_int_equal(tarn_get_u16(p + 4), 5);
    assert_int_equal(tarn_get_u32(p + 8), 7);

    /* Split offset past the list's end. */
    tarn_put_u16(d, 3);
    tarn_put_u16(m, 2);
    redo_record(&v, RM_BTREE, INSERT_POST, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree INSERT_POST"));
    assert_non_null(strstr(err.msg, "cannot be split at offset 3"));
    /* Item 2 (before offset 3) is a plain tuple, not a posting list. */
    tarn_put_u16(d, 1);
    tarn_put_u16(m, 3);
    redo_record(&v, RM_BTREE, INSERT_POST, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a posting list"));
    tbuf_free(&v);
}

static void
test_split(void **state)
{
    uint8_t left[8192], right[8192], m[10], t[3][16], rd[48], ld[8];
    blockref b[2] = {
        {.blkno = 1, .data = ld, .len = sizeof(ld)},
        {.blkno = 2, .data = rd, .len = sizeof(rd), .will_init = true}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    leaf_page(left);
    memset(right, 0xEE, sizeof(right));
    tarn_put_u32(m, 0);     /* level */
    tarn_put_u16(m + 4, 3); /* firstrightoff */
    tarn_put_u16(m + 6, 5); /* newitemoff */
    tarn_put_u16(m + 8, 0); /* postingoff */
    /* The right page's tuple area as logged: items 3, 2, 1 from low to
     * high addresses (the high key is item 1). */
    int_tuple(t[0], 0, 1, 100); /* high key */
    int_tuple(t[1], 0, 2, 101);
    int_tuple(t[2], 0, 3, 102);
    memcpy(rd, t[2], 16), memcpy(rd + 16, t[1], 16), memcpy(rd + 32, t[0], 16);
    redo_record(&v, RM_BTREE, SPLIT_R, b, 2, 1, m, 10);
    assert_int_equal(apply(right, 2, &v, 0x100, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(right + 12), 24 + 12);
    assert_int_equal(tarn_get_u16(right + 14), SPECIAL - 48);
    assert_int_equal(tarn_get_u32(right + 24) & 0x7fff, SPECIAL - 16);
    assert_int_equal(tarn_get_u32(right + SPECIAL - 16 + 8), 100);
    assert_int_equal(tarn_get_u32(right + SPECIAL - 48 + 8), 102);
    assert_int_equal(tarn_get_u32(right + SPECIAL), 1);      /* btpo_prev */
    assert_int_equal(tarn_get_u32(right + SPECIAL + 4), 0);  /* btpo_next */
    assert_int_equal(tarn_get_u16(right + SPECIAL + 12), 1); /* BTP_LEAF */

    /* A tuple whose size field is zero would never end. */
    tarn_put_u16(rd + 16 + 6, 0);
    redo_record(&v, RM_BTREE, SPLIT_R, b, 2, 1, m, 10);
    assert_int_equal(apply(right, 2, &v, 0x100, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree SPLIT_R"));

    /* The left page's data is too short for the new item (SPLIT_L). */
    memset(ld, 0, sizeof(ld));
    redo_record(&v, RM_BTREE, SPLIT_L, b, 2, 0, m, 10);
    assert_int_equal(apply(left, 1, &v, 0x100, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree SPLIT_L"));
    assert_non_null(strstr(err.msg, "new item cut short"));
    /* Main data cut short. */
    redo_record(&v, RM_BTREE, SPLIT_L, b, 2, 0, m, 8);
    assert_int_equal(apply(left, 1, &v, 0x100, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "main data of 8 bytes"));
    tbuf_free(&v);
}

static void
test_vacuum(void **state)
{
    uint8_t page[8192], d[8], m[4];
    blockref b = {.blkno = 1, .data = d, .len = sizeof(d)};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    leaf_page(page);
    for (unsigned i = 1; i <= 5; i++)
        insert(page, (uint16_t)i, 10 * i, (uint16_t)i, 0x100 + i);
    /* Delete items 1, 3 and 4: the rest are compacted towards the
     * special space in line-pointer order. */
    tarn_put_u16(d, 1), tarn_put_u16(d + 2, 3), tarn_put_u16(d + 4, 4);
    tarn_put_u16(m, 3), tarn_put_u16(m + 2, 0);
    b.len = 6;
    redo_record(&v, RM_BTREE, VACUUM, &b, 1, 0, m, 4);
    assert_int_equal(apply(page, 1, &v, 0x200, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), 24 + 8);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL - 32);
    assert_int_equal(tarn_get_u32(page + 24) & 0x7fff, SPECIAL - 16);
    assert_int_equal(tarn_get_u32(page + SPECIAL - 16 + 8), 20);
    assert_int_equal(tarn_get_u32(page + 28) & 0x7fff, SPECIAL - 32);
    assert_int_equal(tarn_get_u32(page + SPECIAL - 32 + 8), 50);

    /* Offsets out of order or past the end are refused. */
    tarn_put_u16(d, 2), tarn_put_u16(d + 2, 1), tarn_put_u16(d + 4, 2);
    redo_record(&v, RM_BTREE, VACUUM, &b, 1, 0, m, 4);
    assert_int_equal(apply(page, 1, &v, 0x300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree VACUUM"));
    assert_non_null(strstr(err.msg, "incorrect index offsets"));
    /* More offsets than the data holds. */
    tarn_put_u16(m, 9);
    redo_record(&v, RM_BTREE, VACUUM, &b, 1, 0, m, 4);
    assert_int_equal(apply(page, 1, &v, 0x300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "9 deleted and 0 updated offsets"));
    tbuf_free(&v);
}

static void
test_dedup(void **state)
{
    uint8_t page[8192], iv[4], m[2], *p;
    blockref b = {.blkno = 1, .data = iv, .len = sizeof(iv)};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    leaf_page(page);
    /* Keys 4, 4, 4, 9 with heap TIDs (0,1) (0,2) (0,3) (0,4). */
    insert(page, 1, 4, 1, 0x100);
    insert(page, 2, 4, 2, 0x101);
    insert(page, 3, 4, 3, 0x102);
    insert(page, 4, 9, 4, 0x103);
    /* One interval: base offset 1, 3 items. */
    tarn_put_u16(iv, 1), tarn_put_u16(iv + 2, 3);
    tarn_put_u16(m, 1);
    redo_record(&v, RM_BTREE, DEDUP, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x200, &err), TARN_OK);
    /* A posting list of MAXALIGN(16 + 3 * 6) = 40 bytes, then the plain
     * tuple, on a page rebuilt from scratch. */
    assert_int_equal(tarn_get_u16(page + 12), 24 + 8);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL - 40 - 16);
    p = page + SPECIAL - 40;
    assert_int_equal(tarn_get_u32(page + 24) & 0x7fff, SPECIAL - 40);
    assert_int_equal(tarn_get_u32(page + 24) >> 17, 40);
    assert_int_equal(tarn_get_u16(p + 2), 16);          /* list offset */
    assert_int_equal(tarn_get_u16(p + 4), 3 | 0x2000);  /* 3 TIDs, posting */
    assert_int_equal(tarn_get_u16(p + 6), 40 | 0x2000); /* size, alt TID */
    assert_int_equal(tarn_get_u32(p + 8), 4);           /* the key */
    assert_int_equal(tarn_get_u16(p + 16 + 4), 1);
    assert_int_equal(tarn_get_u16(p + 22 + 4), 2);
    assert_int_equal(tarn_get_u16(p + 28 + 4), 3);
    assert_int_equal(tarn_get_u16(p + 34), 0); /* padding zeroed */
    assert_int_equal(tarn_get_u32(page + SPECIAL - 56 + 8), 9);

    /* An interval the page's items do not make is refused. */
    leaf_page(page);
    insert(page, 1, 4, 1, 0x100);
    insert(page, 2, 5, 2, 0x101);
    tarn_put_u16(iv, 1), tarn_put_u16(iv + 2, 3);
    redo_record(&v, RM_BTREE, DEDUP, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree DEDUP"));
    /* More intervals than the data holds. */
    tarn_put_u16(m, 2);
    redo_record(&v, RM_BTREE, DEDUP, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "2 intervals in 4 bytes"));
    tbuf_free(&v);
}

static void
test_unlink(void **state)
{
    uint8_t page[8192], m[36] = {0};
    blockref b[2] = {{.blkno = 5, .will_init = true}, {.blkno = 4}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    memset(page, 0x55, sizeof(page));
    tarn_put_u32(m, 4);               /* leftsib */
    tarn_put_u32(m + 4, 6);           /* rightsib */
    tarn_put_u32(m + 8, 0);           /* level */
    tarn_put_u32(m + 16, 0x12345678); /* safexid, low word */
    tarn_put_u32(m + 20, 0x9);        /* safexid, high word */
    redo_record(&v, RM_BTREE, UNLINK_PAGE, b, 2, 0, m, 36);
    assert_int_equal(apply(page, 5, &v, 0x100, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12),
                     32); /* the safexid is the contents */
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL);
    assert_int_equal(tarn_get_u32(page + 24), 0x12345678);
    assert_int_equal(tarn_get_u32(page + 28), 0x9);
    assert_int_equal(tarn_get_u32(page + SPECIAL), 4);
    assert_int_equal(tarn_get_u32(page + SPECIAL + 4), 6);
    /* BTP_DELETED | BTP_HAS_FULLXID | BTP_LEAF */
    assert_int_equal(tarn_get_u16(page + SPECIAL + 12), 0x0105);
    assert_int_equal(page[100], 0);

    /* The left sibling gets the right link. */
    leaf_page(page);
    redo_record(&v, RM_BTREE, UNLINK_PAGE, b, 2, 1, m, 36);
    assert_int_equal(apply(page, 4, &v, 0x200, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + SPECIAL + 4), 6);
    /* No left sibling: block 1 has no part in the record. */
    tarn_put_u32(m, 0);
    redo_record(&v, RM_BTREE, UNLINK_PAGE, b, 2, 1, m, 36);
    assert_int_equal(apply(page, 4, &v, 0x300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree UNLINK_PAGE"));
    assert_non_null(strstr(err.msg, "no part of the record"));
    /* Main data cut short. */
    redo_record(&v, RM_BTREE, UNLINK_PAGE, b, 2, 0, m, 30);
    assert_int_equal(apply(page, 5, &v, 0x300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "main data of 30 bytes"));
    tbuf_free(&v);
}

static void
test_meta_and_others(void **state)
{
    uint8_t page[8192], d[28] = {0}, m[20] = {0};
    blockref b = {.blkno = 0, .data = d, .len = sizeof(d), .will_init = true};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    memset(page, 0x77, sizeof(page));
    tarn_put_u32(d, 4);      /* version */
    tarn_put_u32(d + 4, 3);  /* root */
    tarn_put_u32(d + 8, 1);  /* level */
    tarn_put_u32(d + 12, 3); /* fastroot */
    tarn_put_u32(d + 16, 1); /* fastlevel */
    tarn_put_u32(d + 20, 2); /* last_cleanup_num_delpages */
    d[24] = 1;               /* allequalimage */
    redo_record(&v, RM_BTREE, META_CLEANUP, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 0, &v, 0x100, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), 72);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL);
    assert_int_equal(tarn_get_u32(page + 24), 0x053162);
    assert_int_equal(tarn_get_u32(page + 28), 4);
    assert_int_equal(tarn_get_u32(page + 32), 3);
    assert_int_equal(tarn_get_u32(page + 48), 2);
    assert_int_equal(tarn_get_u32(page + 56), 0);          /* -1.0, low word */
    assert_int_equal(tarn_get_u32(page + 60), 0xBFF00000); /* high word */
    assert_int_equal(page[64], 1);
    assert_int_equal(page[100], 0); /* the rest is zeroed */
    assert_int_equal(tarn_get_u16(page + SPECIAL + 12), 0x0008); /* BTP_META */

    b.len = 12;
    redo_record(&v, RM_BTREE, META_CLEANUP, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 0, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree META_CLEANUP"));
    assert_non_null(strstr(err.msg, "metapage data of 12 bytes"));

    b.len = 0;
    b.will_init = false;
    redo_record(&v, RM_BTREE, REUSE_PAGE, &b, 1, 0, m, 20);
    assert_int_equal(apply(page, 0, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Btree REUSE_PAGE"));
    redo_record(&v, RM_BTREE, 0xF0, &b, 1, 0, m, 20);
    assert_int_equal(apply(page, 0, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown op code 0xF0"));
    /* A leaf insert on a page that is not a B-tree page (no special). */
    pg_page_init(page, 0);
    redo_record(&v, RM_BTREE, VACUUM, &b, 1, 0, m, 4);
    assert_int_equal(apply(page, 0, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a B-tree page"));
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_leaf),
        cmocka_unit_test(test_insert_post),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_vacuum),
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_unlink),
        cmocka_unit_test(test_meta_and_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
