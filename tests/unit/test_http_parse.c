/*
 * test_http_parse.c - request-head parsing and the URL helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "net/http_parse.h"

static http_head h;

static tarn_rc
parse(const char *s, int *status)
{
    tarn_err e;
    *status = 0;
    return http_parse_head(s, strlen(s), &h, status, &e);
}

static void
bad(const char *s, int want_status)
{
    int status;

    assert_int_equal(parse(s, &status), TARN_EPROTO);
    if (status != want_status)
        fail_msg("'%s': status %d, want %d", s, status, want_status);
}

static void
test_good(void **state)
{
    int status;

    (void)state;
    assert_int_equal(parse("POST /v1/tenant?x=1&y=%20 HTTP/1.1\r\n"
                           "Host: localhost\r\n"
                           "Content-Length: 12\r\n"
                           "Content-Type:application/json  \r\n"
                           "\r\n",
                           &status),
                     TARN_OK);
    assert_int_equal(h.method, HTTP_POST);
    assert_int_equal(h.path.len, 10);
    assert_memory_equal(h.path.p, "/v1/tenant", 10);
    assert_int_equal(h.query.len, 9);
    assert_int_equal(h.minor, 1);
    assert_true(h.content_length == 12);
    assert_true(h.keep_alive);
    assert_false(h.chunked);
    const http_span *ct = http_head_header(&h, "content-type");
    assert_non_null(ct);
    assert_int_equal(ct->len, 16);
    assert_null(http_head_header(&h, "Accept"));

    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &status), TARN_OK);
    assert_false(h.keep_alive);
    assert_true(h.content_length == -1);
    assert_int_equal(
        parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &status),
        TARN_OK);
    assert_true(h.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: "
                           "foo, close\r\n\r\n",
                           &status),
                     TARN_OK);
    assert_false(h.keep_alive);
    assert_int_equal(parse("PUT /a HTTP/1.1\r\nHost: x\r\nExpect: "
                           "100-continue\r\nContent-Length: 0\r\n\r\n",
                           &status),
                     TARN_OK);
    assert_true(h.expect_continue);
    assert_int_equal(parse("BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", &status),
                     TARN_OK);
    assert_int_equal(h.method, HTTP_OTHER);
}

static void
test_bad(void **state)
{
    char many[8192];
    size_t n;

    (void)state;
    bad("\r\n\r\n", 400);
    bad("GET\r\n\r\n", 400);
    bad("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    bad("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400);
    bad("GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    bad("GET http://a/ HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    bad("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    bad("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505);
    bad("GET / FTP/1.1\r\nHost: x\r\n\r\n", 400);
    bad("GET / HTTP/1.1\r\n\r\n", 400); /* no Host */
    bad("GET / HTTP/1.1\nHost: x\r\n\r\n", 400);
    bad("GET / HTTP/1.1\r\nHost: x\n\r\n", 400);
    bad("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
    bad("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400);
    bad("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01"
        "b\r\n\r\n",
        400);
    bad("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        "Content-Length: 1\r\n\r\n",
        400);
    bad("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
    bad("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n", 400);
    bad("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
        "99999999999999999999\r\n\r\n",
        400);
    bad("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        400);
    bad("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    bad("GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 417);
    bad("GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "X%d: y\r\n", i);
    snprintf(many + n, sizeof(many) - n, "\r\n");
    bad(many, 431);
    /* Trailing bytes after the blank line are not part of a head. */
    bad("GET / HTTP/1.1\r\nHost: x\r\n\r\nX", 400);
}

static void
test_url(void **state)
{
    char out[64];
    const char *q = "timestamp=2026-11-21T10%3A00%3A00%2B01%3A00&a=b+c&e=&f";

    (void)state;
    assert_int_equal(
        http_query_get(q, strlen(q), "timestamp", out, sizeof(out)), TARN_OK);
    assert_string_equal(out, "2026-11-21T10:00:00+01:00");
    assert_int_equal(http_query_get(q, strlen(q), "a", out, sizeof(out)),
                     TARN_OK);
    assert_string_equal(out, "b c");
    assert_int_equal(http_query_get(q, strlen(q), "e", out, sizeof(out)),
                     TARN_OK);
    assert_string_equal(out, "");
    assert_int_equal(http_query_get(q, strlen(q), "f", out, sizeof(out)),
                     TARN_OK);
    assert_int_equal(http_query_get(q, strlen(q), "g", out, sizeof(out)),
                     TARN_ENOTFOUND);
    assert_int_equal(http_query_get(q, strlen(q), "times", out, sizeof(out)),
                     TARN_ENOTFOUND);
    assert_int_equal(http_query_get(q, strlen(q), "timestamp", out, 5),
                     TARN_ETOOBIG);
    assert_int_equal(http_url_decode("%zz", 3, out, sizeof(out), false),
                     TARN_EINVAL);
    assert_int_equal(http_url_decode("%4", 2, out, sizeof(out), false),
                     TARN_EINVAL);
    assert_int_equal(http_url_decode("a%00", 4, out, sizeof(out), false),
                     TARN_EINVAL);
    assert_int_equal(http_url_decode("a+%41", 5, out, sizeof(out), false),
                     TARN_OK);
    assert_string_equal(out, "a+A");
    assert_string_equal(http_status_text(404), "Not Found");
    assert_string_equal(http_method_name(HTTP_DELETE), "DELETE");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
