/*
 * test_pgwire.c - the PostgreSQL v3 codec (framer, frontend parsers,
 * backend builders) and SCRAM-SHA-256 against RFC 7677's example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <string.h>

#include "net/pgwire.h"
#include "net/scram.h"

static void
test_frame_typed(void **state)
{
    uint8_t m[16] = {'Q', 0, 0, 0, 9, 's', 'e', 't', ' ', 0};
    pgw_frame f;
    tarn_err e;

    (void)state;
    /* Never framed before every byte is there. */
    for (size_t n = 0; n < 10; n++)
        assert_int_equal(pgw_frame_next(m, n, false, &f, &e), TARN_AGAIN);
    assert_int_equal(pgw_frame_next(m, 10, false, &f, &e), TARN_OK);
    assert_int_equal(f.type, 'Q');
    assert_int_equal(f.total, 10);
    assert_int_equal(f.hdr, 5);
    assert_int_equal(pgw_frame_next(m, 16, false, &f, &e), TARN_OK);
    assert_int_equal(f.total, 10);
    /* Lengths below 4 and above the limit fail from the header alone. */
    m[4] = 3;
    assert_int_equal(pgw_frame_next(m, 5, false, &f, &e), TARN_EPROTO);
    m[1] = 0x7f;
    assert_int_equal(pgw_frame_next(m, 5, false, &f, &e), TARN_ETOOBIG);
    assert_non_null(strstr(e.msg, "exceeds the limit"));
    pgw_put_be32(m + 1, PGW_MAX_MSG - 1);
    assert_int_equal(pgw_frame_next(m, 5, false, &f, &e), TARN_AGAIN);
    pgw_put_be32(m + 1, PGW_MAX_MSG);
    assert_int_equal(pgw_frame_next(m, 5, false, &f, &e), TARN_ETOOBIG);
}

static void
test_frame_startup(void **state)
{
    uint8_t m[8];
    pgw_frame f;
    tarn_err e;

    (void)state;
    pgw_put_be32(m, 8);
    pgw_put_be32(m + 4, PGW_SSL_REQUEST);
    assert_int_equal(pgw_frame_next(m, 3, true, &f, &e), TARN_AGAIN);
    assert_int_equal(pgw_frame_next(m, 7, true, &f, &e), TARN_AGAIN);
    assert_int_equal(pgw_frame_next(m, 8, true, &f, &e), TARN_OK);
    assert_int_equal(f.type, 0);
    assert_int_equal(f.hdr, 4);
    assert_int_equal(f.total, 8);
    pgw_put_be32(m, 7);
    assert_int_equal(pgw_frame_next(m, 8, true, &f, &e), TARN_EPROTO);
    pgw_put_be32(m, PGW_MAX_STARTUP + 1);
    assert_int_equal(pgw_frame_next(m, 8, true, &f, &e), TARN_ETOOBIG);
}

static size_t
startup_body(uint8_t *b, uint32_t code, const char *params, size_t plen)
{
    pgw_put_be32(b, code);
    memcpy(b + 4, params, plen);
    return 4 + plen;
}

static void
test_startup_parse(void **state)
{
    static const char good[] = "user\0alice\0database\0db\0application_name\0"
                               "x\0_pq_.foo\0bar\0\0";
    uint8_t b[256];
    pgw_startup s;
    tarn_err e;
    size_t n;

    (void)state;
    n = startup_body(b, PGW_PROTO_3_0, good, sizeof(good) - 1);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_OK);
    assert_string_equal(s.user, "alice");
    assert_string_equal(s.database, "db");
    assert_string_equal(s.application_name, "x");
    assert_int_equal(s.n_unknown_pq, 1);
    assert_string_equal(s.unknown_pq[0], "_pq_.foo");
    /* Missing the final terminator, a value, or the user. */
    assert_int_equal(pgw_parse_startup(b, n - 1, &s, &e), TARN_EPROTO);
    n = startup_body(b, PGW_PROTO_3_0, "user\0", 5);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_EPROTO);
    n = startup_body(b, PGW_PROTO_3_0, "database\0d\0\0", 12);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_EPROTO);
    assert_non_null(strstr(e.msg, "user name"));
    /* Bytes after the list. */
    n = startup_body(b, PGW_PROTO_3_0, "user\0u\0\0zz", 10);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_EPROTO);
    /* Version 2, and garbage codes. */
    n = startup_body(b, 2u << 16, "user\0u\0\0", 8);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_EUNSUPPORTED);
    /* Fixed-length requests. */
    n = startup_body(b, PGW_SSL_REQUEST, "", 0);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_OK);
    assert_int_equal(s.code, PGW_SSL_REQUEST);
    n = startup_body(b, PGW_GSS_REQUEST, "x", 1);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_EPROTO);
    n = startup_body(b, PGW_CANCEL_REQ, "12345678", 8);
    assert_int_equal(pgw_parse_startup(b, n, &s, &e), TARN_OK);
    assert_int_equal(pgw_parse_startup(b, 2, &s, &e), TARN_EPROTO);
}

static void
test_frontend_parsers(void **state)
{
    const char *t, *name, *mech;
    const uint8_t *data;
    size_t dlen;
    char kind;
    tarn_err e;
    uint8_t sasl[32] = "SCRAM-SHA-256";

    (void)state;
    assert_int_equal(pgw_parse_query((const uint8_t *)"set x", 6, &t, &e),
                     TARN_OK);
    assert_string_equal(t, "set x");
    assert_int_equal(pgw_parse_query((const uint8_t *)"set x", 5, &t, &e),
                     TARN_EPROTO);
    assert_int_equal(pgw_parse_query((const uint8_t *)"a\0b", 4, &t, &e),
                     TARN_EPROTO);
    assert_int_equal(
        pgw_parse_parse((const uint8_t *)"s\0q\0\0\0", 6, &name, &t, &e),
        TARN_OK);
    assert_string_equal(t, "q");
    assert_int_equal(
        pgw_parse_parse((const uint8_t *)"s\0q\0\0\1", 6, &name, &t, &e),
        TARN_EPROTO);
    assert_int_equal(pgw_parse_parse((const uint8_t *)"s\0q\0\0\1\0\0\0\x19",
                                     10, &name, &t, &e),
                     TARN_OK);
    assert_int_equal(
        pgw_parse_describe((const uint8_t *)"S\0", 2, &kind, &name, &e),
        TARN_OK);
    assert_int_equal(kind, 'S');
    assert_int_equal(
        pgw_parse_describe((const uint8_t *)"X\0", 2, &kind, &name, &e),
        TARN_EPROTO);
    pgw_put_be32(sasl + 14, 3);
    memcpy(sasl + 18, "abc", 3);
    assert_int_equal(pgw_parse_sasl_initial(sasl, 21, &mech, &data, &dlen, &e),
                     TARN_OK);
    assert_string_equal(mech, "SCRAM-SHA-256");
    assert_int_equal(dlen, 3);
    assert_memory_equal(data, "abc", 3);
    assert_int_equal(pgw_parse_sasl_initial(sasl, 20, &mech, &data, &dlen, &e),
                     TARN_EPROTO);
    pgw_put_be32(sasl + 14, 0xffffffff);
    assert_int_equal(pgw_parse_sasl_initial(sasl, 18, &mech, &data, &dlen, &e),
                     TARN_OK);
    assert_null(data);
    pgw_put_be32(sasl + 14, 0x7fffffff);
    assert_int_equal(pgw_parse_sasl_initial(sasl, 21, &mech, &data, &dlen, &e),
                     TARN_EPROTO);
}

static void
test_builders(void **state)
{
    struct evbuffer *b = evbuffer_new();
    static const uint8_t want_err[] =
        "E\0\0\0\x29"
        "SERROR\0VERROR\0CXX000\0Mno such thing\0";
    static const uint8_t want_ready[] = {'Z', 0, 0, 0, 5, 'I'};
    static const uint8_t want_cb[] = {'W', 0, 0, 0, 7, 0, 0, 0};
    static const uint8_t want_auth[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0};
    static const uint8_t want_param[] = "S\0\0\0\x0e"
                                        "a_b\0value\0";
    uint8_t out[128];
    size_t n;

    (void)state;
    pgw_put_error(b, "ERROR", "XX000", "no such thing");
    n = evbuffer_get_length(b);
    assert_int_equal(n, sizeof(want_err)); /* the literal's NUL ends it */
    evbuffer_remove(b, out, n);
    assert_memory_equal(out, want_err, n);
    pgw_put_ready(b);
    pgw_put_copy_both(b);
    pgw_put_auth(b, PGW_AUTH_OK, NULL, 0);
    assert_int_equal(evbuffer_get_length(b), 6 + 8 + 9);
    evbuffer_remove(b, out, 6);
    assert_memory_equal(out, want_ready, 6);
    evbuffer_remove(b, out, 8);
    assert_memory_equal(out, want_cb, 8);
    evbuffer_remove(b, out, 9);
    assert_memory_equal(out, want_auth, 9);
    pgw_put_param(b, "a_b", "value");
    n = evbuffer_get_length(b);
    assert_int_equal(n, sizeof(want_param) - 1);
    evbuffer_remove(b, out, n);
    assert_memory_equal(out, want_param, n);
    pgw_put_copydata_hdr(b, 8234);
    evbuffer_remove(b, out, 5);
    assert_int_equal(out[0], 'd');
    assert_int_equal(pgw_get_be32(out + 1), 8238);
    evbuffer_free(b);
}

/* RFC 7677, section 3: user "user", password "pencil". */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE       "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST                                                   \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7so" \
    "EsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                  \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZ" \
    "apWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void
rfc_verifier(scram_verifier *v)
{
    static const uint8_t salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12,
                                     0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14,
                                     0x12, 0x36, 0xfa, 0x81};
    tarn_err e;

    assert_int_equal(scram_verifier_derive("pencil", salt, 16, 4096, v, &e),
                     TARN_OK);
}

static void
test_scram_rfc7677(void **state)
{
    scram_verifier v, v2;
    scram_state st;
    char reply[SCRAM_MSG_MAX], text[256], final[SCRAM_MSG_MAX];
    size_t n;
    bool ok;
    tarn_err e;

    (void)state;
    rfc_verifier(&v);
    assert_int_equal(
        scram_server_first(&st, &v, (const uint8_t *)RFC_CLIENT_FIRST,
                           strlen(RFC_CLIENT_FIRST), RFC_SNONCE, reply, &n, &e),
        TARN_OK);
    assert_string_equal(reply, RFC_SERVER_FIRST);
    assert_int_equal(n, strlen(RFC_SERVER_FIRST));
    assert_int_equal(scram_server_final(&st, (const uint8_t *)RFC_CLIENT_FINAL,
                                        strlen(RFC_CLIENT_FINAL), &ok, reply,
                                        &n, &e),
                     TARN_OK);
    assert_true(ok);
    assert_string_equal(reply, RFC_SERVER_FINAL);
    /* Our client side produces the RFC's message too. */
    assert_int_equal(scram_client_final("pencil", RFC_CLIENT_FIRST + 3,
                                        RFC_SERVER_FIRST, final, sizeof(final),
                                        &e),
                     TARN_OK);
    assert_string_equal(final, RFC_CLIENT_FINAL);
    /* A wrong password is a clean "no". */
    assert_int_equal(scram_client_final("pencil2", RFC_CLIENT_FIRST + 3,
                                        RFC_SERVER_FIRST, final, sizeof(final),
                                        &e),
                     TARN_OK);
    assert_int_equal(scram_server_final(&st, (const uint8_t *) final,
                                        strlen(final), &ok, reply, &n, &e),
                     TARN_OK);
    assert_false(ok);
    /* The verifier round-trips through its text form. */
    scram_verifier_format(&v, text, sizeof(text));
    assert_int_equal(scram_verifier_parse(text, &v2, &e), TARN_OK);
    assert_memory_equal(&v, &v2, sizeof(v));
    assert_int_equal(scram_verifier_from_setting(text, &v2, &e), TARN_OK);
    assert_memory_equal(&v, &v2, sizeof(v));
}

static void
test_scram_bad_messages(void **state)
{
    static const char *const firsts[] = {
        "p=tls-server-end-point,,n=,r=abc", /* channel binding */
        "n,a=admin,n=,r=abc",               /* authzid */
        "n,,m=ext,n=,r=abc",                /* mandatory extension */
        "n,,r=abc",                         /* no user */
        "n,,n=,r=",                         /* empty nonce */
        "x,,n=,r=abc",
        "n",
    };
    static const char *const finals[] = {
        "c=eSws,r=abcSN,p=AAAA", /* GS2 header changed */
        "c=biws,r=abcXX,p=AAAA", /* nonce changed */
        "c=biws,r=abcSN",        /* no proof */
        "c=biws,r=abcSN,p=AAAA", /* proof too short */
        "c=biws,r=abcSN,p=!!!!",
    };
    scram_verifier v;
    scram_state st;
    char reply[SCRAM_MSG_MAX];
    size_t n;
    bool ok;
    tarn_err e;

    (void)state;
    rfc_verifier(&v);
    for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++)
        assert_int_equal(scram_server_first(&st, &v, (const uint8_t *)firsts[i],
                                            strlen(firsts[i]), "SN", reply, &n,
                                            &e),
                         TARN_EPROTO);
    assert_int_equal(scram_server_first(&st, &v,
                                        (const uint8_t *)"n,,n=x,r=abc\0", 13,
                                        "SN", reply, &n, &e),
                     TARN_EPROTO);
    for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
        assert_int_equal(scram_server_first(&st, &v,
                                            (const uint8_t *)"n,,n=,r=abc", 11,
                                            "SN", reply, &n, &e),
                         TARN_OK);
        assert_int_equal(scram_server_final(&st, (const uint8_t *)finals[i],
                                            strlen(finals[i]), &ok, reply, &n,
                                            &e),
                         TARN_EPROTO);
        assert_false(ok);
    }
    assert_int_equal(scram_verifier_parse("SCRAM-SHA-256$x", &v, &e),
                     TARN_EINVAL);
    assert_int_equal(
        scram_verifier_parse("SCRAM-SHA-256$0:AAAA$AAAA:AAAA", &v, &e),
        TARN_EINVAL);
    assert_int_equal(
        scram_verifier_parse("SCRAM-SHA-256$10:AAAA$AAAA:AAAA", &v, &e),
        TARN_EINVAL);
    /* A plain password makes a verifier with a random salt. */
    assert_int_equal(scram_verifier_from_setting("pw", &v, &e), TARN_OK);
    assert_int_equal(v.iterations, SCRAM_ITER_DEF);
    assert_int_equal(v.salt_len, 16);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_typed),
        cmocka_unit_test(test_frame_startup),
        cmocka_unit_test(test_startup_parse),
        cmocka_unit_test(test_frontend_parsers),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_scram_rfc7677),
        cmocka_unit_test(test_scram_bad_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
