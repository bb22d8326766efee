/*
 * test_replmsg.c - the streaming replication message codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "net/replmsg.h"

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void
test_xlogdata(void **state)
{
    uint8_t m[25 + 5];
    repl_msg r;
    tarn_err e;

    (void)state;
    m[0] = 'w';
    put_be64(m + 1, 0x0000000116B5A50ULL);
    put_be64(m + 9, 0x0000000200000000ULL);
    put_be64(m + 17, 123456789);
    memcpy(m + 25, "hello", 5);
    assert_int_equal(repl_parse(m, sizeof(m), &r, &e), TARN_OK);
    assert_int_equal(r.kind, 'w');
    assert_true(r.start == 0x116B5A50ULL);
    assert_true(r.wal_end == 0x200000000ULL);
    assert_true(r.send_time == 123456789);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "hello", 5);
    /* An empty payload is fine; a short header is not. */
    assert_int_equal(repl_parse(m, 25, &r, &e), TARN_OK);
    assert_int_equal(r.len, 0);
    assert_int_equal(repl_parse(m, 24, &r, &e), TARN_EPROTO);
    assert_non_null(strstr(e.msg, "shorter than its 25-byte header"));
    /* Data running past the end of the LSN space. */
    put_be64(m + 1, UINT64_MAX - 2);
    assert_int_equal(repl_parse(m, sizeof(m), &r, &e), TARN_EPROTO);
}

static void
test_keepalive(void **state)
{
    uint8_t m[18];
    repl_msg r;
    tarn_err e;

    (void)state;
    m[0] = 'k';
    put_be64(m + 1, 42);
    put_be64(m + 9, 7);
    m[17] = 1;
    assert_int_equal(repl_parse(m, 18, &r, &e), TARN_OK);
    assert_true(r.wal_end == 42 && r.reply_requested);
    m[17] = 0;
    assert_int_equal(repl_parse(m, 18, &r, &e), TARN_OK);
    assert_false(r.reply_requested);
    m[17] = 2;
    assert_int_equal(repl_parse(m, 18, &r, &e), TARN_EPROTO);
    assert_int_equal(repl_parse(m, 17, &r, &e), TARN_EPROTO);
    assert_int_equal(repl_parse((const uint8_t *)"x", 1, &r, &e), TARN_EPROTO);
    assert_non_null(strstr(e.msg, "unexpected replication message type"));
    assert_int_equal(repl_parse(m, 0, &r, &e), TARN_EPROTO);
}

static void
test_status(void **state)
{
    uint8_t out[REPL_STATUS_LEN];

    (void)state;
    repl_build_status(out, 0x0102030405060708ULL, 2, 3, 4, true);
    assert_int_equal(out[0], 'r');
    assert_int_equal(out[1], 0x01);
    assert_int_equal(out[8], 0x08);
    assert_int_equal(out[16], 2);
    assert_int_equal(out[24], 3);
    assert_int_equal(out[32], 4);
    assert_int_equal(out[33], 1);
    /* PostgreSQL's clock starts in 2000. */
    assert_true(repl_now() > 800000000LL * 1000000);
    assert_true(repl_now() < 2000000000LL * 1000000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xlogdata),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
