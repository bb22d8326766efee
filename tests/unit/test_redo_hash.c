/*
 * test_redo_hash.c - Hash index redo on crafted records: the bytes a few
 * records leave on the page (computed here from PostgreSQL 15's layouts:
 * page header, line pointers, IndexTupleData, HashPageOpaqueData,
 * HashMetaPageData), and the refusals, each naming the rmgr, the record
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

#define RM_HASH 12
#define SPECIAL (8192 - 16)

/* Record types. */
#define INIT_META_PAGE  0x00
#define INSERT          0x20
#define ADD_OVFL_PAGE   0x30
#define SPLIT_PAGE      0x50
#define SQUEEZE_PAGE    0x80
#define DELETE          0x90
#define VACUUM_ONE_PAGE 0xC0

static double
f64(const uint8_t *p)
{
    uint64_t u =
        (uint64_t)tarn_get_u32(p) | (uint64_t)tarn_get_u32(p + 4) << 32;
    double d;

    memcpy(&d, &u, sizeof d);
    return d;
}

static void
put_f64(uint8_t *p, double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof u);
    tarn_put_u32(p, (uint32_t)u);
    tarn_put_u32(p + 4, (uint32_t)(u >> 32));
}

/* The metapage of an empty index (INIT_META_PAGE, fill factor 307). */
static void
meta_page(uint8_t *page)
{
    uint8_t m[14] = {0};
    blockref b = {.blkno = 0, .will_init = true};
    tbuf v = {0};
    tarn_err err;

    tarn_put_u32(m + 8, 450); /* hashint4 */
    tarn_put_u16(m + 12, 307);
    memset(page, 0x5a, 8192);
    redo_record(&v, RM_HASH, INIT_META_PAGE, &b, 1, 0, m, sizeof m);
    assert_int_equal(apply(page, 0, &v, 0x1000, &err), TARN_OK);
    tbuf_free(&v);
}

/* An empty primary bucket page of bucket @p bucket. */
static void
bucket_page(uint8_t *page, uint32_t bucket)
{
    pg_page_init(page, 16);
    tarn_put_u32(page + SPECIAL, 1);
    tarn_put_u32(page + SPECIAL + 4, 0xFFFFFFFF);
    tarn_put_u32(page + SPECIAL + 8, bucket);
    tarn_put_u16(page + SPECIAL + 12, 0x0002);
    tarn_put_u16(page + SPECIAL + 14, 0xFF80);
}

/* A 16-byte int4 hash index tuple (the key's hash code) for heap TID. */
static void
hash_tuple(uint8_t *t, uint16_t heapoff, uint32_t code)
{
    memset(t, 0, 16);
    tarn_put_u16(t + 4, heapoff);
    tarn_put_u16(t + 6, 16);
    tarn_put_u32(t + 8, code);
}

static void
test_init_meta(void **state)
{
    uint8_t page[8192], *m = page + 24;

    (void)state;
    meta_page(page);
    assert_int_equal(tarn_get_u32(page + 4), 0x1000);           /* LSN */
    assert_int_equal(tarn_get_u16(page + 12), 24 + 4544);       /* pd_lower */
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL);         /* pd_upper */
    assert_int_equal(tarn_get_u16(page + 16), SPECIAL);         /* pd_special */
    assert_int_equal(tarn_get_u32(page + SPECIAL), 0xFFFFFFFF); /* prev */
    assert_int_equal(tarn_get_u32(page + SPECIAL + 8), 0xFFFFFFFF);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 12),
                     0x0008); /* LH_META_PAGE */
    assert_int_equal(tarn_get_u16(page + SPECIAL + 14), 0xFF80);
    assert_int_equal(tarn_get_u32(m), 0x6440640);
    assert_int_equal(tarn_get_u32(m + 4), 4);
    assert_true(f64(m + 8) == 0.0);
    assert_int_equal(tarn_get_u16(m + 16), 307);
    assert_int_equal(tarn_get_u16(m + 18), 8152);  /* bsize */
    assert_int_equal(tarn_get_u16(m + 20), 4096);  /* bmsize */
    assert_int_equal(tarn_get_u16(m + 22), 15);    /* bmshift */
    assert_int_equal(tarn_get_u32(m + 24), 1);     /* maxbucket */
    assert_int_equal(tarn_get_u32(m + 28), 3);     /* highmask */
    assert_int_equal(tarn_get_u32(m + 32), 1);     /* lowmask */
    assert_int_equal(tarn_get_u32(m + 36), 1);     /* ovflpoint */
    assert_int_equal(tarn_get_u32(m + 40), 0);     /* firstfree */
    assert_int_equal(tarn_get_u32(m + 44), 0);     /* nmaps */
    assert_int_equal(tarn_get_u32(m + 48), 450);   /* procid */
    assert_int_equal(tarn_get_u32(m + 52 + 4), 1); /* spares[1] */
    assert_int_equal(tarn_get_u32(m + 52), 0);
    /* The old contents are gone everywhere else. */
    for (unsigned i = 24 + 4544; i < SPECIAL; i++)
        assert_int_equal(page[i], 0);
    /* 184,200 tuples at fill factor 307: 600 buckets round up to 640,
     * the first phase of split point group 10 (the first with four). */
    {
        uint8_t md[14] = {0};
        blockref b = {.blkno = 0, .will_init = true};
        tbuf v = {0};
        tarn_err err;

        put_f64(md, 184200);
        tarn_put_u16(md + 12, 307);
        redo_record(&v, RM_HASH, INIT_META_PAGE, &b, 1, 0, md, sizeof md);
        assert_int_equal(apply(page, 0, &v, 0x1000, &err), TARN_OK);
        assert_int_equal(tarn_get_u32(m + 24), 639);  /* maxbucket */
        assert_int_equal(tarn_get_u32(m + 28), 1023); /* highmask */
        assert_int_equal(tarn_get_u32(m + 32), 511);  /* lowmask */
        assert_int_equal(tarn_get_u32(m + 36), 10);   /* ovflpoint */
        assert_int_equal(tarn_get_u32(m + 52 + 40), 1);
        /* A fill factor of 0 and a NaN tuple count are refused. */
        tarn_put_u16(md + 12, 0);
        redo_record(&v, RM_HASH, INIT_META_PAGE, &b, 1, 0, md, sizeof md);
        assert_int_equal(apply(page, 0, &v, 0x1000, &err), TARN_ECORRUPT);
        assert_non_null(strstr(err.msg, "Hash INIT_META_PAGE"));
        tarn_put_u16(md + 12, 307);
        memset(md, 0xFF, 8);
        redo_record(&v, RM_HASH, INIT_META_PAGE, &b, 1, 0, md, sizeof md);
        assert_int_equal(apply(page, 0, &v, 0x1000, &err), TARN_ECORRUPT);
        assert_non_null(strstr(err.msg, "not a number"));
        tbuf_free(&v);
    }
}

static void
test_insert(void **state)
{
    uint8_t page[8192], meta[8192], t[16], m[2];
    blockref b[2] = {{.blkno = 1, .data = t, .len = 16}, {.blkno = 0}};
    tbuf v = {0};
    tarn_err err;
    uint32_t lp;

    (void)state;
    bucket_page(page, 0);
    meta_page(meta);
    hash_tuple(t, 7, 0x1234);
    tarn_put_u16(m, 1);
    redo_record(&v, RM_HASH, INSERT, b, 2, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 4), 0x2000);
    assert_int_equal(tarn_get_u16(page + 12), 28);
    lp = tarn_get_u32(page + 24);
    assert_int_equal(lp & 0x7fff, SPECIAL - 16);
    assert_int_equal(lp >> 17, 16);
    assert_int_equal(tarn_get_u32(page + SPECIAL - 16 + 8), 0x1234);
    redo_record(&v, RM_HASH, INSERT, b, 2, 1, m, 2);
    assert_int_equal(apply(meta, 0, &v, 0x2000, &err), TARN_OK);
    assert_true(f64(meta + 24 + 8) == 1.0);
    assert_int_equal(tarn_get_u32(meta + 4), 0x2000);

    /* Offset 5 on a page with one item: PostgreSQL PANICs. */
    tarn_put_u16(m, 5);
    redo_record(&v, RM_HASH, INSERT, b, 2, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Hash INSERT"));
    assert_non_null(strstr(err.msg, "block 1 of 1663/5/16384"));
    assert_non_null(strstr(err.msg, "failed to add item"));
    /* Not a hash page. */
    memset(page, 0, sizeof page);
    pg_page_init(page, 8);
    tarn_put_u16(m, 1);
    redo_record(&v, RM_HASH, INSERT, b, 2, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a hash index page"));
    tbuf_free(&v);
}

static void
test_add_ovfl_page(void **state)
{
    uint8_t page[8192], meta[8192], bucket[4], bit[4], ff[4], m[3] = {0};
    blockref b[5] = {{.blkno = 9, .data = bucket, .len = 4, .will_init = true},
                     {.blkno = 1},
                     {.blkno = 3, .data = bit, .len = 4},
                     {.blkno = 10, .will_init = true},
                     {.blkno = 0, .data = ff, .len = 4}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    tarn_put_u16(m, 4096);
    tarn_put_u32(bucket, 1);
    tarn_put_u32(bit, 37);
    tarn_put_u32(ff, 2);
    redo_record(&v, RM_HASH, ADD_OVFL_PAGE, b, 5, 0, m, 3);
    memset(page, 0x77, sizeof page);
    assert_int_equal(apply(page, 9, &v, 0x4000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), 24);
    assert_int_equal(tarn_get_u32(page + SPECIAL), 1); /* prev: block 1 */
    assert_int_equal(tarn_get_u32(page + SPECIAL + 4), 0xFFFFFFFF);
    assert_int_equal(tarn_get_u32(page + SPECIAL + 8), 1);       /* bucket */
    assert_int_equal(tarn_get_u16(page + SPECIAL + 12), 0x0001); /* overflow */
    /* The left page's next link. */
    bucket_page(page, 1);
    redo_record(&v, RM_HASH, ADD_OVFL_PAGE, b, 5, 1, m, 3);
    assert_int_equal(apply(page, 1, &v, 0x4000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + SPECIAL + 4), 9);
    /* The bitmap bit. */
    pg_page_init(page, 16);
    redo_record(&v, RM_HASH, ADD_OVFL_PAGE, b, 5, 2, m, 3);
    assert_int_equal(apply(page, 3, &v, 0x4000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 24 + 4), 1u << 5);
    /* A new bitmap page: all ones. */
    redo_record(&v, RM_HASH, ADD_OVFL_PAGE, b, 5, 3, m, 3);
    assert_int_equal(apply(page, 10, &v, 0x4000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), 24 + 4096);
    assert_int_equal(tarn_get_u32(page + 24 + 4092), 0xFFFFFFFF);
    assert_int_equal(page[24 + 4096], 0);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 12), 0x0004);
    /* The metapage: firstfree, two more spares, the new bitmap. */
    meta_page(meta);
    redo_record(&v, RM_HASH, ADD_OVFL_PAGE, b, 5, 4, m, 3);
    assert_int_equal(apply(meta, 0, &v, 0x4000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(meta + 24 + 40), 2);
    assert_int_equal(tarn_get_u32(meta + 24 + 52 + 4), 3);
    assert_int_equal(tarn_get_u32(meta + 24 + 44), 1);
    assert_int_equal(tarn_get_u32(meta + 24 + 52 + 4 * 98), 10);
    /* A bitmap page was found: only firstfree. */
    m[2] = 1;
    meta_page(meta);
    redo_record(&v, RM_HASH, ADD_OVFL_PAGE, b, 5, 4, m, 3);
    assert_int_equal(apply(meta, 0, &v, 0x4000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(meta + 24 + 52 + 4), 1);
    assert_int_equal(tarn_get_u32(meta + 24 + 44), 0);
    /* A bit past the page. */
    tarn_put_u32(bit, 70000);
    pg_page_init(page, 16);
    redo_record(&v, RM_HASH, ADD_OVFL_PAGE, b, 5, 2, m, 3);
    assert_int_equal(apply(page, 3, &v, 0x4000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Hash ADD_OVFL_PAGE"));
    assert_non_null(strstr(err.msg, "bitmap bit 70000"));
    tbuf_free(&v);
}

static void
test_vacuum_one_page(void **state)
{
    uint8_t page[8192], meta[8192], t[16], m[8 + 6];
    blockref b[2] = {{.blkno = 1}, {.blkno = 0}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    bucket_page(page, 0);
    tarn_put_u16(page + SPECIAL + 12, 0x0002 | 0x0080);
    for (unsigned i = 1; i <= 5; i++) {
        hash_tuple(t, (uint16_t)i, 100 + i);
        assert_int_equal(pg_page_add_item(page, t, 16, i, 0), i);
    }
    tarn_put_u32(m, 0);
    tarn_put_u32(m + 4, 3);
    tarn_put_u16(m + 8, 1), tarn_put_u16(m + 10, 3), tarn_put_u16(m + 12, 4);
    redo_record(&v, RM_HASH, VACUUM_ONE_PAGE, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 1, &v, 0x5000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), 24 + 8);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 12), 0x0002);
    assert_int_equal(
        tarn_get_u32(page + (tarn_get_u32(page + 24) & 0x7fff) + 8), 102);
    assert_int_equal(
        tarn_get_u32(page + (tarn_get_u32(page + 28) & 0x7fff) + 8), 105);
    meta_page(meta);
    put_f64(meta + 24 + 8, 10);
    redo_record(&v, RM_HASH, VACUUM_ONE_PAGE, b, 2, 1, m, sizeof m);
    assert_int_equal(apply(meta, 0, &v, 0x5000, &err), TARN_OK);
    assert_true(f64(meta + 24 + 8) == 7.0);
    /* More offsets claimed than the record holds. */
    tarn_put_u32(m + 4, 4);
    redo_record(&v, RM_HASH, VACUUM_ONE_PAGE, b, 2, 0, m, sizeof m);
    assert_int_equal(apply(page, 1, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Hash VACUUM_ONE_PAGE"));
    tbuf_free(&v);
}

static void
test_squeeze_and_refusals(void **state)
{
    uint8_t page[8192], copy[8192], m[12] = {0}, bit[4];
    blockref b[6] = {{.blkno = 1}, {.blkno = 2},
                     {.blkno = 5}, {.blkno = 4},
                     {.blkno = 6}, {.blkno = 3, .data = bit, .len = 4}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    tarn_put_u32(m, 4);     /* prevblkno */
    tarn_put_u32(m + 4, 6); /* nextblkno */
    tarn_put_u32(bit, 33);
    /* The primary bucket page is only locked: nothing changes. */
    bucket_page(page, 0);
    memcpy(copy, page, sizeof page);
    redo_record(&v, RM_HASH, SQUEEZE_PAGE, b, 6, 0, m, sizeof m);
    assert_int_equal(apply(page, 1, &v, 0x7000, &err), TARN_OK);
    assert_memory_equal(page, copy, sizeof page);
    /* The freed overflow page becomes an unused hash page. */
    memset(page, 0x33, sizeof page);
    redo_record(&v, RM_HASH, SQUEEZE_PAGE, b, 6, 2, m, sizeof m);
    assert_int_equal(apply(page, 5, &v, 0x7000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 12), 0);
    assert_int_equal(tarn_get_u32(page + SPECIAL + 8), 0xFFFFFFFF);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 14), 0xFF80);
    assert_int_equal(page[100], 0);
    /* Links of the pages around it, and its bitmap bit. */
    bucket_page(page, 0);
    redo_record(&v, RM_HASH, SQUEEZE_PAGE, b, 6, 3, m, sizeof m);
    assert_int_equal(apply(page, 4, &v, 0x7000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + SPECIAL + 4), 6);
    redo_record(&v, RM_HASH, SQUEEZE_PAGE, b, 6, 4, m, sizeof m);
    assert_int_equal(apply(page, 6, &v, 0x7000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + SPECIAL), 4);
    pg_page_init(page, 16);
    memset(page + 24, 0xFF, 8);
    redo_record(&v, RM_HASH, SQUEEZE_PAGE, b, 6, 5, m, sizeof m);
    assert_int_equal(apply(page, 3, &v, 0x7000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 28), 0xFFFFFFFD); /* bit 33 */

    /* SPLIT_PAGE always carries the page's image. */
    bucket_page(page, 0);
    redo_record(&v, RM_HASH, SPLIT_PAGE, b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 1, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Hash SPLIT_PAGE"));
    assert_non_null(strstr(err.msg, "full-page image"));
    /* An unknown op code. */
    redo_record(&v, RM_HASH, 0xD0, b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 1, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown op code 0xD0"));
    /* DELETE from a page of 0 items. */
    tarn_put_u16(bit, 1);
    b[1].data = bit, b[1].len = 2;
    m[0] = 1, m[1] = 0;
    redo_record(&v, RM_HASH, DELETE, b, 2, 1, m, 2);
    assert_int_equal(apply(page, 2, &v, 0x8000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Hash DELETE"));
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_meta),
        cmocka_unit_test(test_insert),
        cmocka_unit_test(test_add_ovfl_page),
        cmocka_unit_test(test_vacuum_one_page),
        cmocka_unit_test(test_squeeze_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
