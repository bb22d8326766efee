/*
 * test_types.c - parsers and formatters of the shared value types,
 * condition-variable deadlines, CRC-32C, and the metrics histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "server/core/crc32c.h"
#include "server/core/hist.h"
#include "server/core/types.h"

static void
test_lsn(void **state)
{
    char buf[TARN_LSN_STRLEN];
    tarn_lsn l;
    tarn_err e;

    (void)state;
    assert_int_equal(tarn_lsn_parse("0/16B5A50", &l, &e), TARN_OK);
    assert_true(l == 0x16B5A50);
    assert_string_equal(tarn_lsn_format(l, buf), "0/16B5A50");
    assert_int_equal(tarn_lsn_parse("FFFFFFFF/FFFFFFFF", &l, &e), TARN_OK);
    assert_true(l == UINT64_MAX);
    assert_string_equal(tarn_lsn_format(l, buf), "FFFFFFFF/FFFFFFFF");
    assert_int_equal(tarn_lsn_parse("1/a", &l, &e), TARN_OK);
    assert_true(l == 0x10000000aULL);
    const char *bad[] = {"",      "/",   "0/",   "/0",   "0/0/0", "123456789/0",
                         "0x1/2", "g/1", " 0/1", "0/1 ", "-1/0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tarn_lsn_parse(bad[i], &l, &e), TARN_EINVAL);
        assert_non_null(strstr(e.msg, "invalid LSN"));
    }
    assert_int_equal(tarn_lsn_parse(NULL, &l, &e), TARN_EINVAL);
}

static void
test_id(void **state)
{
    char buf[TARN_ID_STRLEN];
    tarn_id id, id2;
    tarn_err e;

    (void)state;
    assert_int_equal(tarn_id_parse("00112233445566778899AABBCCDDEEFF", &id, &e),
                     TARN_OK);
    assert_int_equal(id.b[0], 0x00);
    assert_int_equal(id.b[15], 0xff);
    assert_string_equal(tarn_id_format(&id, buf),
                        "00112233445566778899aabbccddeeff");
    assert_int_equal(tarn_id_parse("0011", &id, &e), TARN_EINVAL);
    assert_int_equal(
        tarn_id_parse("00112233445566778899aabbccddeeffa", &id, &e),
        TARN_EINVAL);
    assert_int_equal(tarn_id_parse("g0112233445566778899aabbccddeeff", &id, &e),
                     TARN_EINVAL);
    assert_int_equal(tarn_id_generate(&id, &e), TARN_OK);
    assert_int_equal(tarn_id_generate(&id2, &e), TARN_OK);
    assert_false(tarn_id_equal(&id, &id2));
    assert_false(tarn_id_is_zero(&id));
    assert_true(tarn_looks_like_id("ffffffffffffffffffffffffffffffff"));
    assert_false(tarn_looks_like_id("main"));
}

static void
test_size_duration(void **state)
{
    int64_t v;
    tarn_err e;

    (void)state;
    assert_int_equal(tarn_size_parse("64MB", &v, &e), TARN_OK);
    assert_true(v == 64LL << 20);
    assert_int_equal(tarn_size_parse("8192", &v, &e), TARN_OK);
    assert_true(v == 8192);
    assert_int_equal(tarn_size_parse("1gb", &v, &e), TARN_OK);
    assert_true(v == 1LL << 30);
    assert_int_equal(tarn_size_parse("16 kB", &v, &e), TARN_OK);
    assert_true(v == 16384);
    assert_int_equal(tarn_size_parse("12XB", &v, &e), TARN_EINVAL);
    assert_int_equal(tarn_size_parse("-1MB", &v, &e), TARN_EINVAL);
    assert_int_equal(tarn_size_parse("", &v, &e), TARN_EINVAL);
    assert_int_equal(tarn_size_parse("99999999999999999999", &v, &e),
                     TARN_EINVAL);
    assert_int_equal(tarn_size_parse("9999999999TB", &v, &e), TARN_EINVAL);
    assert_non_null(strstr(e.msg, "too large"));
    assert_int_equal(tarn_duration_parse("10s", &v, &e), TARN_OK);
    assert_true(v == 10000);
    assert_int_equal(tarn_duration_parse("250ms", &v, &e), TARN_OK);
    assert_true(v == 250);
    assert_int_equal(tarn_duration_parse("2min", &v, &e), TARN_OK);
    assert_true(v == 120000);
    assert_int_equal(tarn_duration_parse("1h", &v, &e), TARN_OK);
    assert_true(v == 3600000);
    assert_int_equal(tarn_duration_parse("5", &v, &e), TARN_OK);
    assert_true(v == 5000);
    assert_int_equal(tarn_duration_parse("5 fortnights", &v, &e), TARN_EINVAL);
}

static void
test_time(void **state)
{
    char buf[64];
    tarn_time_us t;
    tarn_err e;

    (void)state;
    assert_int_equal(tarn_time_parse("1970-01-01T00:00:00Z", &t, &e), TARN_OK);
    assert_true(t == 0);
    assert_int_equal(tarn_time_parse("2026-11-21T10:00:00.25+01:00", &t, &e),
                     TARN_OK);
    assert_string_equal(tarn_time_format(t, buf, sizeof(buf)),
                        "2026-11-21T09:00:00.250000Z");
    assert_int_equal(tarn_time_parse("2024-02-29T23:59:59.999999Z", &t, &e),
                     TARN_OK);
    assert_string_equal(tarn_time_format(t, buf, sizeof(buf)),
                        "2024-02-29T23:59:59.999999Z");
    assert_int_equal(tarn_time_parse("2000-03-01 00:00:00-00:30", &t, &e),
                     TARN_OK);
    assert_string_equal(tarn_time_format(t, buf, sizeof(buf)),
                        "2000-03-01T00:30:00.000000Z");
    assert_int_equal(tarn_time_parse("1969-12-31T23:59:59.5Z", &t, &e),
                     TARN_OK);
    assert_true(t == -500000);
    assert_string_equal(tarn_time_format(t, buf, sizeof(buf)),
                        "1969-12-31T23:59:59.500000Z");
    const char *bad[] = {"2023-02-29T00:00:00Z",     "2026-13-01T00:00:00Z",
                         "2026-11-21T10:00:00",      "2026-11-21",
                         "2026-11-21T24:00:00Z",     "2026-11-21T10:00:00.Z",
                         "2026-11-21T10:00:00+1:00", "now",
                         "2026-11-21T10:00:00Zjunk"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tarn_time_parse(bad[i], &t, &e), TARN_EINVAL);
        assert_non_null(strstr(e.msg, "RFC 3339"));
    }
}

/* Condition-variable deadlines: normalized, as far ahead as asked. */
static void
test_deadline(void **state)
{
    const int64_t asks[] = {0, 1, 999999, 1000000, 1500000, 5000};

    (void)state;
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        struct timespec before, after, d;
        int64_t lo, hi, at;

        clock_gettime(CLOCK_REALTIME, &before);
        d = tarn_deadline_in(asks[i]);
        clock_gettime(CLOCK_REALTIME, &after);
        assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
        at = (int64_t)d.tv_sec * 1000000 + d.tv_nsec / 1000;
        lo = (int64_t)before.tv_sec * 1000000 + before.tv_nsec / 1000;
        hi = (int64_t)after.tv_sec * 1000000 + after.tv_nsec / 1000;
        assert_true(at >= lo + asks[i]);
        assert_true(at <= hi + asks[i]);
    }
}

static void
test_addr(void **state)
{
    tarn_addr a;
    tarn_err e;

    (void)state;
    assert_int_equal(tarn_addr_parse("127.0.0.1:9898", &a, &e), TARN_OK);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 9898);
    assert_int_equal(tarn_addr_parse("[::1]:6400", &a, &e), TARN_OK);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 6400);
    assert_int_equal(tarn_addr_parse("localhost:1", &a, &e), TARN_OK);
    const char *bad[] = {"127.0.0.1", ":80",       "host:0",   "host:65536",
                         "host:80x",  "[::1]6400", "ho st:80", "host:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tarn_addr_parse(bad[i], &a, &e), TARN_EINVAL);
}

static void
test_crc32c(void **state)
{
    uint8_t big[1000];
    uint32_t crc;

    (void)state;
    /* The check value of CRC-32C. */
    assert_int_equal(tarn_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(tarn_crc32c("", 0), 0);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    /* Chunked updates, at every misalignment, equal one pass. */
    for (size_t split = 0; split < 17; split++) {
        crc = tarn_crc32c_update(TARN_CRC32C_INIT, big, split);
        crc = tarn_crc32c_update(crc, big + split, sizeof(big) - split);
        assert_int_equal(tarn_crc32c_final(crc), tarn_crc32c(big, sizeof(big)));
    }
}

static void
test_le(void **state)
{
    uint8_t b[8];

    (void)state;
    tarn_put_u64(b, 0x0102030405060708ULL);
    assert_int_equal(b[0], 8);
    assert_true(tarn_get_u64(b) == 0x0102030405060708ULL);
    tarn_put_u32(b, 0xdeadbeef);
    assert_int_equal(tarn_get_u32(b), 0xdeadbeef);
    tarn_put_u16(b, 0xbeef);
    assert_int_equal(tarn_get_u16(b), 0xbeef);
}

/* Cumulative buckets, merge that empties its source, and the exposition. */
static void
test_hist(void **state)
{
    static const double b[3] = {0.001, 0.01, 0.1};
    tarn_hist h, part;
    struct evbuffer *out = evbuffer_new();
    char text[512];
    size_t n;

    (void)state;
    tarn_hist_init(&h, b, 3);
    tarn_hist_init(&part, b, 3);
    tarn_hist_add(&h, 0.0005);
    tarn_hist_add(&part, 0.01); /* on a bound: counted in it */
    tarn_hist_add(&part, 0.5);  /* above every bound: +Inf only */
    tarn_hist_merge(&h, &part);
    assert_int_equal(part.n, 0);
    assert_int_equal(part.le[0] + part.le[1] + part.le[2], 0);
    assert_int_equal(h.n, 3);
    assert_int_equal(h.le[0], 1);
    assert_int_equal(h.le[1], 2);
    assert_int_equal(h.le[2], 2);
    tarn_hist_print(out, "x_seconds", "Some latency.", &h);
    n = evbuffer_get_length(out);
    assert_true(n < sizeof(text));
    evbuffer_remove(out, text, n);
    text[n] = '\0';
    assert_string_equal(text, "# HELP x_seconds Some latency.\n"
                              "# TYPE x_seconds histogram\n"
                              "x_seconds_bucket{le=\"0.001\"} 1\n"
                              "x_seconds_bucket{le=\"0.01\"} 2\n"
                              "x_seconds_bucket{le=\"0.1\"} 2\n"
                              "x_seconds_bucket{le=\"+Inf\"} 3\n"
                              "x_seconds_sum 0.510500\n"
                              "x_seconds_count 3\n");
    evbuffer_free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lsn),           cmocka_unit_test(test_id),
        cmocka_unit_test(test_size_duration), cmocka_unit_test(test_time),
        cmocka_unit_test(test_deadline),      cmocka_unit_test(test_addr),
        cmocka_unit_test(test_crc32c),        cmocka_unit_test(test_le),
        cmocka_unit_test(test_hist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
