/*
 * test_redo_generic.c - Generic (generic_xlog) redo on crafted records:
 * page deltas copied in order, the hole between pd_lower and pd_upper
 * zeroed, the page LSN; and the refusals, each naming the rmgr, the
 * record type and the block.
 */
#include "redo_record.h"

#include "storage/redo/bufpage.h"

#define RM_GENERIC 20

/* A fragment {u16 offset, u16 length, bytes} at d + at; @return the end. */
static size_t
frag(uint8_t *d, size_t at, uint16_t off, const void *bytes, uint16_t len)
{
    tarn_put_u16(d + at, off);
    tarn_put_u16(d + at + 2, len);
    memcpy(d + at + 4, bytes, len);
    return at + 4 + len;
}

static void
test_delta(void **state)
{
    uint8_t page[8192], d[64];
    blockref b = {.blkno = 3, .data = d};
    tbuf v = {0};
    tarn_err err;
    size_t n;

    (void)state;
    memset(page, 0xAB, sizeof page);
    pg_page_init(page, 8);
    memset(page + 100, 0xCC, 200); /* garbage in the hole */
    /* pd_lower 24 -> 40 and pd_upper 8184 -> 8000, then two items'
     * worth of bytes, the second fragment overlapping the first. */
    {
        uint8_t hdr[4];
        tarn_put_u16(hdr, 40);
        tarn_put_u16(hdr + 2, 8000);
        n = frag(d, 0, 12, hdr, 4);
    }
    n = frag(d, n, 8000, "abcdefgh", 8);
    n = frag(d, n, 8004, "XY", 2);
    b.len = (uint16_t)n;
    redo_record(&v, RM_GENERIC, 0x00, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 3, &v, 0x5000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 4), 0x5000);
    assert_int_equal(tarn_get_u16(page + 12), 40);
    assert_int_equal(tarn_get_u16(page + 14), 8000);
    assert_memory_equal(page + 8000, "abcdXYgh", 8);
    for (unsigned i = 40; i < 8000; i++)
        assert_int_equal(page[i], 0);

    /* No data: only the hole and the LSN. */
    memset(page + 50, 0xEE, 10);
    b.len = 0;
    redo_record(&v, RM_GENERIC, 0x00, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 3, &v, 0x5100, &err), TARN_OK);
    assert_int_equal(page[55], 0);
    assert_int_equal(tarn_get_u32(page + 4), 0x5100);
    tbuf_free(&v);
}

static void
test_refusals(void **state)
{
    uint8_t page[8192], d[64];
    blockref b = {.blkno = 3, .data = d};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    pg_page_init(page, 8);
    /* A fragment reaching past the page. */
    b.len = (uint16_t)frag(d, 0, 8190, "abcd", 4);
    redo_record(&v, RM_GENERIC, 0x00, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 3, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Generic GENERIC"));
    assert_non_null(strstr(err.msg, "block 3 of 1663/5/16384"));
    assert_non_null(strstr(err.msg, "outside the page"));
    /* A fragment longer than the data. */
    b.len = (uint16_t)frag(d, 0, 100, "abcd", 4);
    tarn_put_u16(d + 2, 40);
    redo_record(&v, RM_GENERIC, 0x00, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 3, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "fragment of 40 bytes"));
    /* A fragment header cut short. */
    b.len = 3;
    redo_record(&v, RM_GENERIC, 0x00, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 3, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "cut short"));
    /* pd_lower above pd_upper after the delta: no hole to clear. */
    {
        uint8_t lo[2];
        tarn_put_u16(lo, 8190);
        b.len = (uint16_t)frag(d, 0, 12, lo, 2);
    }
    redo_record(&v, RM_GENERIC, 0x00, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 3, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "enclose no hole"));
    /* An unknown record type. */
    pg_page_init(page, 8);
    b.len = 0;
    redo_record(&v, RM_GENERIC, 0x10, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 3, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown op code 0x10"));
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delta),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
