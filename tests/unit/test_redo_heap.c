/*
 * test_redo_heap.c - Heap, Heap2 and Sequence redo on crafted records:
 * the bytes each record leaves on the page (computed here from
 * PostgreSQL 15's layouts: page header, line pointers, heap tuple header),
 * and the refusals, each naming the rmgr, the record type and the block.
 * The exhaustive proof against PostgreSQL is tests/integration/
 * test_redo.py; these pin down the layouts and the error paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/core/types.h"

#include "storage/key.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/value.h"

#define RM_HEAP2 9
#define RM_HEAP  10
#define RM_SEQ   15
#define BLK      7u

static redo_stats st;

/*
 * A WAL record (XLogRecord, one block reference to 1663/5/16384 block BLK
 * with @p data, then @p main) as the PGREC value of block 0.
 */
static void
record(tbuf *v, uint8_t rmid, uint8_t info, uint32_t xid, bool will_init,
       const uint8_t *data, uint16_t dlen, const uint8_t *main, uint8_t mlen)
{
    uint8_t rec[24 + 4 + 12 + 4 + 2 + 8192 + 255];
    size_t n = 24;
    tarn_err err;

    memset(rec, 0, sizeof(rec));
    rec[n++] = 0; /* block id 0 */
    rec[n++] = (uint8_t)((dlen ? 0x20 : 0) | (will_init ? 0x40 : 0));
    tarn_put_u16(rec + n, dlen), n += 2;
    tarn_put_u32(rec + n, 1663), tarn_put_u32(rec + n + 4, 5),
        tarn_put_u32(rec + n + 8, 16384);
    n += 12;
    tarn_put_u32(rec + n, BLK), n += 4;
    if (mlen > 0) {
        rec[n++] = 255; /* XLR_BLOCK_ID_DATA_SHORT */
        rec[n++] = mlen;
    }
    if (dlen > 0)
        memcpy(rec + n, data, dlen), n += dlen;
    if (mlen > 0)
        memcpy(rec + n, main, mlen), n += mlen;
    tarn_put_u32(rec, (uint32_t)n);
    tarn_put_u32(rec + 4, xid);
    rec[16] = info;
    rec[17] = rmid;
    assert_int_equal(tval_pgrec(v, 0, will_init, rec, n, &err), TARN_OK);
}

static tkey
heap_key(void)
{
    return tkey_rel_block(1663, 5, 16384, 0, BLK);
}

/* An xl_heap_header plus @p n bytes of tuple data (a null bitmap-free
 * tuple: t_hoff 24). */
static uint16_t
tuple_data(uint8_t *d, size_t n, uint8_t fill)
{
    tarn_put_u16(d, 3);          /* t_infomask2: 3 attributes */
    tarn_put_u16(d + 2, 0x0802); /* t_infomask: HASVARWIDTH | XMAX_INVALID */
    d[4] = 24;                   /* t_hoff */
    memset(d + 5, fill, n);
    return (uint16_t)(5 + n);
}

static tarn_rc
apply(uint8_t *page, const tbuf *v, tarn_lsn lsn, tarn_err *err)
{
    tkey k = heap_key();
    return redo_apply(&st, page, &k, lsn, v->p, v->len, err);
}

static void
insert_at(uint8_t *page, uint16_t off, uint8_t fill, bool init, tarn_lsn lsn)
{
    uint8_t d[64], m[3];
    tbuf v = {0};
    tarn_err err;

    tarn_put_u16(m, off);
    m[2] = 0;
    record(&v, RM_HEAP, init ? 0x80 : 0x00, 900, init, d,
           tuple_data(d, 17, fill), m, 3);
    assert_int_equal(apply(page, &v, lsn, &err), TARN_OK);
    tbuf_free(&v);
}

static void
test_insert(void **state)
{
    uint8_t page[8192];
    const uint8_t *t;
    uint32_t lp;

    (void)state;
    memset(page, 0xAA, sizeof(page)); /* INIT_PAGE must not care */
    insert_at(page, 1, 'q', true, 0x100000028);
    /* Header: LSN {0x1, 0x28}, lower 28, upper 8192 - MAXALIGN(23 + 17). */
    assert_int_equal(tarn_get_u32(page), 0x1);
    assert_int_equal(tarn_get_u32(page + 4), 0x28);
    assert_int_equal(tarn_get_u16(page + 12), 28);
    assert_int_equal(tarn_get_u16(page + 14), 8192 - 40);
    lp = tarn_get_u32(page + 24);
    assert_int_equal(lp & 0x7fff, 8192 - 40); /* lp_off */
    assert_int_equal((lp >> 15) & 3, 1);      /* LP_NORMAL */
    assert_int_equal(lp >> 17, 40);           /* lp_len */
    t = page + 8192 - 40;
    assert_int_equal(tarn_get_u32(t), 900);      /* t_xmin: the record xid */
    assert_int_equal(tarn_get_u32(t + 4), 0);    /* t_xmax */
    assert_int_equal(tarn_get_u32(t + 8), 0);    /* t_cid */
    assert_int_equal(tarn_get_u16(t + 12), 0);   /* ctid block hi */
    assert_int_equal(tarn_get_u16(t + 14), BLK); /* ctid block lo */
    assert_int_equal(tarn_get_u16(t + 16), 1);   /* ctid offset */
    assert_int_equal(tarn_get_u16(t + 18), 3);
    assert_int_equal(tarn_get_u16(t + 20), 0x0802);
    assert_int_equal(t[22], 24);
    assert_int_equal(t[23], 'q');
    assert_int_equal(t[39], 'q');

    insert_at(page, 2, 'r', false, 0x100000050);
    assert_int_equal(tarn_get_u16(page + 12), 32);
    assert_int_equal(tarn_get_u16(page + 14), 8192 - 80);
}

static void
test_insert_refused(void **state)
{
    uint8_t page[8192], d[64], m[3];
    tbuf v = {0};
    tarn_err err;

    (void)state;
    memset(page, 0, sizeof(page));
    insert_at(page, 1, 'a', true, 0x100);
    /* Offset 3 on a page with one item: PostgreSQL PANICs. */
    tarn_put_u16(m, 3);
    m[2] = 0;
    record(&v, RM_HEAP, 0x00, 901, false, d, tuple_data(d, 8, 'b'), m, 3);
    assert_int_equal(apply(page, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Heap INSERT"));
    assert_non_null(strstr(err.msg, "block 7 of 1663/5/16384"));
    assert_non_null(strstr(err.msg, "invalid max offset number"));
    /* Over an item in use: refused, not overwritten. */
    tarn_put_u16(m, 1);
    record(&v, RM_HEAP, 0x00, 901, false, d, tuple_data(d, 8, 'b'), m, 3);
    assert_int_equal(apply(page, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "failed to add a tuple"));
    /* No tuple data at all. */
    record(&v, RM_HEAP, 0x00, 901, false, d, 0, m, 3);
    assert_int_equal(apply(page, &v, 0x200, &err), TARN_ECORRUPT);
    /* Main data cut short. */
    record(&v, RM_HEAP, 0x00, 901, false, d, tuple_data(d, 8, 'b'), m, 2);
    assert_int_equal(apply(page, &v, 0x200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "main data of 2 bytes"));
    tbuf_free(&v);
}

static void
test_delete(void **state)
{
    uint8_t page[8192], m[8];
    const uint8_t *t;
    tbuf v = {0};
    tarn_err err;

    (void)state;
    insert_at(page, 1, 'a', true, 0x100);
    tarn_put_u32(m, 777);   /* xmax */
    tarn_put_u16(m + 4, 1); /* offnum */
    m[6] = 0x10;            /* infobits: KEYS_UPDATED */
    m[7] = 0x01;            /* ALL_VISIBLE_CLEARED */
    page[10] |= 0x04;       /* PD_ALL_VISIBLE */
    record(&v, RM_HEAP, 0x10, 902, false, NULL, 0, m, 8);
    assert_int_equal(apply(page, &v, 0x200, &err), TARN_OK);
    t = page + 8192 - 40;
    assert_int_equal(tarn_get_u32(t + 4), 777);
    assert_int_equal(tarn_get_u16(t + 18), 3 | 0x2000); /* HEAP_KEYS_UPDATED */
    assert_int_equal(tarn_get_u16(t + 20), 0x0002);     /* xmax bits cleared */
    assert_int_equal(tarn_get_u32(page + 20), 902);     /* pd_prune_xid */
    assert_int_equal(page[10] & 0x04, 0);
    /* A line pointer that does not exist. */
    tarn_put_u16(m + 4, 5);
    record(&v, RM_HEAP, 0x10, 902, false, NULL, 0, m, 8);
    assert_int_equal(apply(page, &v, 0x300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Heap DELETE"));
    assert_non_null(strstr(err.msg, "invalid line pointer 5"));
    tbuf_free(&v);
}

static void
test_prune_and_vacuum(void **state)
{
    uint8_t page[8192], m[8], d[6];
    uint8_t third[40];
    tbuf v = {0};
    tarn_err err;

    (void)state;
    insert_at(page, 1, 'a', true, 0x100);
    insert_at(page, 2, 'b', false, 0x200);
    insert_at(page, 3, 'c', false, 0x300);
    memcpy(third, page + 8192 - 120, 40);
    /* PRUNE: 2 becomes dead, no redirects; the page is compacted. */
    tarn_put_u32(m, 0), tarn_put_u16(m + 4, 0), tarn_put_u16(m + 6, 1);
    tarn_put_u16(d, 2);
    record(&v, RM_HEAP2, 0x10, 0, false, d, 2, m, 8);
    assert_int_equal(apply(page, &v, 0x400, &err), TARN_OK);
    assert_int_equal((tarn_get_u32(page + 28) >> 15) & 3, 3); /* LP_DEAD */
    assert_int_equal(tarn_get_u32(page + 32) & 0x7fff,
                     8192 - 80); /* moved up */
    assert_memory_equal(page + 8192 - 80, third, 40);
    assert_int_equal(tarn_get_u16(page + 14), 8192 - 80);
    assert_int_equal(page[10] & 0x01, 0); /* no unused line pointers */
    /* VACUUM: 2 becomes unused, and the array is not truncated because a
     * used pointer follows it; PD_HAS_FREE_LINES is set. */
    tarn_put_u16(m, 1);
    record(&v, RM_HEAP2, 0x20, 0, false, d, 2, m, 2);
    assert_int_equal(apply(page, &v, 0x500, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 28), 0);
    assert_int_equal(tarn_get_u16(page + 12), 36);
    assert_int_equal(page[10] & 0x01, 0x01);
    /* A PRUNE naming an offset past the array. */
    tarn_put_u16(m + 6, 1);
    tarn_put_u16(d, 9);
    record(&v, RM_HEAP2, 0x10, 0, false, d, 2, m, 8);
    assert_int_equal(apply(page, &v, 0x600, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Heap2 PRUNE"));
    tbuf_free(&v);
}

static void
test_multi_insert(void **state)
{
    uint8_t page[8192], m[4], d[64];
    size_t n = 0;
    tbuf v = {0};
    tarn_err err;

    (void)state;
    m[0] = 0x20; /* ALL_FROZEN_SET */
    m[1] = 0;
    tarn_put_u16(m + 2, 2);
    for (int i = 0; i < 2; i++) {
        if (n % 2)
            d[n++] = 0; /* SHORTALIGN */
        tarn_put_u16(d + n, 5), tarn_put_u16(d + n + 2, 1),
            tarn_put_u16(d + n + 4, 0x0800);
        d[n + 6] = 24;
        memset(d + n + 7, 'm' + i, 5);
        n += 12;
    }
    record(&v, RM_HEAP2, 0x50 | 0x80, 903, true, d, (uint16_t)n, m, 4);
    assert_int_equal(apply(page, &v, 0x700, &err), TARN_OK);
    assert_int_equal(pg_page_max_offset(page), 2);
    assert_int_equal(page[10] & 0x04, 0x04); /* PD_ALL_VISIBLE */
    assert_int_equal(tarn_get_u16(page + 8192 - 32 + 16),
                     1); /* ctid offset 1 */
    assert_int_equal(tarn_get_u16(page + 8192 - 64 + 16), 2);
    assert_int_equal(page[8192 - 64 + 23], 'n');
    /* Tuple lengths that overrun the data. */
    tarn_put_u16(d, 200);
    record(&v, RM_HEAP2, 0x50 | 0x80, 903, true, d, (uint16_t)n, m, 4);
    assert_int_equal(apply(page, &v, 0x800, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Heap2 MULTI_INSERT"));
    tbuf_free(&v);
}

static void
test_sequence(void **state)
{
    uint8_t page[8192], m[12 + 30];
    tbuf v = {0};
    tarn_err err;

    (void)state;
    memset(page, 0x55, sizeof(page));
    memset(m, 0, 12);
    memset(m + 12, 's', 30);
    record(&v, RM_SEQ, 0x00, 904, true, NULL, 0, m, sizeof(m));
    assert_int_equal(apply(page, &v, 0x900, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 16), 8184);     /* pd_special */
    assert_int_equal(tarn_get_u32(page + 8184), 0x1717); /* sequence magic */
    assert_int_equal(tarn_get_u16(page + 12), 28);
    assert_int_equal(tarn_get_u16(page + 14), 8184 - 32);
    assert_int_equal(page[8184 - 32], 's');
    record(&v, RM_SEQ, 0x00, 904, true, NULL, 0, m, 12);
    assert_int_equal(apply(page, &v, 0xA00, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Sequence LOG"));
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert),
        cmocka_unit_test(test_insert_refused),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_prune_and_vacuum),
        cmocka_unit_test(test_multi_insert),
        cmocka_unit_test(test_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
