/*
 * test_pagestream.c - the pagestream codec: request layouts and sizes in
 * v2 and v3, the v3 echo, and the refusal of unknown tags and short
 * requests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "net/pagestream.h"
#include "net/pgwire.h"

static ps_req
sample(uint8_t tag)
{
    ps_req r;

    memset(&r, 0, sizeof(r));
    r.tag = tag;
    r.reqid = 0x0102030405060708ULL;
    r.request_lsn = UINT64_MAX;
    r.not_modified_since = 0x16B5A50ULL;
    r.spc = 1663;
    r.db = 5;
    r.rel = 16384;
    r.fork = 2;
    r.blkno = 77;
    r.dboid = 5;
    r.kind = 1;
    r.segno = 0xABCD;
    return r;
}

static void
test_request_sizes(void **state)
{
    static const size_t v3[] = {38, 38, 42, 29, 30},
                        v2[] = {30, 30, 34, 21, 22};

    (void)state;
    for (uint8_t t = 0; t < PS_REQ_NTYPES; t++) {
        assert_int_equal(ps_request_size(3, t), v3[t]);
        assert_int_equal(ps_request_size(2, t), v2[t]);
    }
    assert_int_equal(ps_request_size(3, 5), 0);
}

static void
test_request_roundtrip(void **state)
{
    uint8_t buf[64];
    ps_req in, out;
    tarn_err e;

    (void)state;
    for (int v = 2; v <= 3; v++)
        for (uint8_t t = 0; t < PS_REQ_NTYPES; t++) {
            size_t n;
            in = sample(t);
            if (v == 2)
                in.reqid = 0;
            n = ps_encode_request(v, &in, buf);
            assert_int_equal(n, ps_request_size(v, t));
            assert_int_equal(ps_parse_request(v, buf, n, &out, &e), TARN_OK);
            assert_int_equal(out.tag, t);
            assert_true(out.reqid == in.reqid);
            assert_true(out.request_lsn == in.request_lsn);
            assert_true(out.not_modified_since == in.not_modified_since);
            if (t <= PS_REQ_GETPAGE) {
                assert_int_equal(out.spc, 1663);
                assert_int_equal(out.db, 5);
                assert_int_equal(out.rel, 16384);
                assert_int_equal(out.fork, 2);
            }
            if (t == PS_REQ_GETPAGE)
                assert_int_equal(out.blkno, 77);
            if (t == PS_REQ_DBSIZE)
                assert_int_equal(out.dboid, 5);
            if (t == PS_REQ_SLRU) {
                assert_int_equal(out.kind, 1);
                assert_int_equal(out.segno, 0xABCD);
            }
            /* One byte short fails; extra bytes are ignored. */
            assert_int_equal(ps_parse_request(v, buf, n - 1, &out, &e),
                             TARN_EPROTO);
            assert_int_equal(ps_parse_request(v, buf, n + 3, &out, &e),
                             TARN_OK);
        }
}

static void
test_request_exact_bytes(void **state)
{
    /* GetPage v3 as the compute packs it. */
    static const uint8_t want[42] = {
        2,                                              /* tag */
        1,    2,    3,    4,    5,    6,    7,    8,    /* reqid */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* request_lsn */
        0,    0,    0,    0,    1,    0x6b, 0x5a, 0x50, /* not_modified */
        0,    0,    6,    0x7f,                         /* spc 1663 */
        0,    0,    0,    5,                            /* db */
        0,    0,    0x40, 0,                            /* rel 16384 */
        2,                                              /* fork */
        0,    0,    0,    77};                          /* blkno */
    ps_req r = sample(PS_REQ_GETPAGE), out;
    uint8_t buf[64];
    tarn_err e;

    (void)state;
    assert_int_equal(ps_encode_request(3, &r, buf), 42);
    assert_memory_equal(buf, want, 42);
    assert_int_equal(ps_parse_request(3, want, 42, &out, &e), TARN_OK);
    assert_int_equal(out.blkno, 77);
    /* v2 is v3 without the reqid. */
    assert_int_equal(ps_parse_request(2, (const uint8_t[]){2}, 1, &out, &e),
                     TARN_EPROTO);
}

static void
test_bad_requests(void **state)
{
    uint8_t buf[64] = {0};
    ps_req out;
    tarn_err e;

    (void)state;
    assert_int_equal(ps_parse_request(3, buf, 0, &out, &e), TARN_EPROTO);
    for (int t = PS_REQ_NTYPES; t < 256; t++) {
        buf[0] = (uint8_t)t;
        assert_int_equal(ps_parse_request(3, buf, sizeof(buf), &out, &e),
                         TARN_EPROTO);
    }
    buf[0] = 99;
    ps_parse_request(3, buf, sizeof(buf), &out, &e);
    assert_string_equal(e.msg, "invalid tag 99");
}

static void
test_responses_v3(void **state)
{
    ps_req r;
    ps_resp rs;
    uint8_t b[PS_FIXED_MAX];
    size_t n;

    (void)state;
    r = sample(PS_REQ_EXISTS);
    rs = (ps_resp){.tag = PS_RESP_EXISTS, .exists = true};
    n = ps_encode_fixed(3, &r, &rs, b);
    assert_int_equal(n, 39);
    assert_int_equal(b[0], 100);
    assert_true(pgw_get_be64(b + 1) == r.reqid);
    assert_true(pgw_get_be64(b + 9) == UINT64_MAX);
    assert_true(pgw_get_be64(b + 17) == r.not_modified_since);
    assert_int_equal(pgw_get_be32(b + 25), 1663);
    assert_int_equal(pgw_get_be32(b + 33), 16384);
    assert_int_equal(b[37], 2);
    assert_int_equal(b[38], 1);
    assert_int_equal(ps_payload_len(&rs), 0);

    r = sample(PS_REQ_NBLOCKS);
    rs = (ps_resp){.tag = PS_RESP_NBLOCKS, .nblocks = 123456};
    assert_int_equal(ps_encode_fixed(3, &r, &rs, b), 42);
    assert_int_equal(pgw_get_be32(b + 38), 123456);

    r = sample(PS_REQ_GETPAGE);
    rs = (ps_resp){.tag = PS_RESP_GETPAGE};
    assert_int_equal(ps_encode_fixed(3, &r, &rs, b) + ps_payload_len(&rs),
                     8234);
    assert_int_equal(pgw_get_be32(b + 38), 77);

    r = sample(PS_REQ_DBSIZE);
    rs = (ps_resp){.tag = PS_RESP_DBSIZE, .db_size = 8192 * 1000LL};
    assert_int_equal(ps_encode_fixed(3, &r, &rs, b), 37);
    assert_int_equal(pgw_get_be32(b + 25), 5);
    assert_true(pgw_get_be64(b + 29) == 8192 * 1000ULL);

    r = sample(PS_REQ_SLRU);
    rs = (ps_resp){.tag = PS_RESP_SLRU, .nblocks = 3};
    assert_int_equal(ps_encode_fixed(3, &r, &rs, b), 34);
    assert_int_equal(b[25], 1);
    assert_int_equal(pgw_get_be32(b + 26), 0xABCD);
    assert_int_equal(pgw_get_be32(b + 30), 3);
    assert_int_equal(ps_payload_len(&rs), 3 * 8192);

    rs = (ps_resp){.tag = PS_RESP_ERROR, .errmsg = "Read error"};
    assert_int_equal(ps_encode_fixed(3, &r, &rs, b), 25);
    assert_int_equal(ps_payload_len(&rs), 11); /* with its NUL */
}

static void
test_responses_v2(void **state)
{
    ps_req r = sample(PS_REQ_EXISTS);
    ps_resp rs;
    uint8_t b[PS_FIXED_MAX];

    (void)state;
    rs = (ps_resp){.tag = PS_RESP_EXISTS, .exists = false};
    assert_int_equal(ps_encode_fixed(2, &r, &rs, b), 2);
    assert_int_equal(b[0], 100);
    assert_int_equal(b[1], 0);
    rs = (ps_resp){.tag = PS_RESP_NBLOCKS, .nblocks = 9};
    assert_int_equal(ps_encode_fixed(2, &r, &rs, b), 5);
    rs = (ps_resp){.tag = PS_RESP_GETPAGE};
    assert_int_equal(ps_encode_fixed(2, &r, &rs, b) + ps_payload_len(&rs),
                     8193);
    rs = (ps_resp){.tag = PS_RESP_DBSIZE, .db_size = 1};
    assert_int_equal(ps_encode_fixed(2, &r, &rs, b), 9);
    rs = (ps_resp){.tag = PS_RESP_SLRU, .nblocks = 32};
    assert_int_equal(ps_encode_fixed(2, &r, &rs, b), 5);
    assert_int_equal(pgw_get_be32(b + 1), 32);
    rs = (ps_resp){.tag = PS_RESP_ERROR, .errmsg = "x"};
    assert_int_equal(ps_encode_fixed(2, &r, &rs, b), 1);
    assert_string_equal(ps_req_name(PS_REQ_SLRU), "slru");
    assert_string_equal(ps_req_name(200), "invalid");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_sizes),
        cmocka_unit_test(test_request_roundtrip),
        cmocka_unit_test(test_request_exact_bytes),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_responses_v3),
        cmocka_unit_test(test_responses_v2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
