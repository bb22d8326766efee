/*
 * test_admin_req.c - validation of the admin API's JSON request bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "net/admin_req.h"

static void
tl_bad(const char *body, const char *needle)
{
    admin_timeline_create r;
    tarn_err e;

    assert_int_equal(admin_parse_timeline_create(body, strlen(body), &r, &e),
                     TARN_EINVAL);
    if (strstr(e.msg, needle) == NULL)
        fail_msg("body %s: message '%s' lacks '%s'", body, e.msg, needle);
}

static void
test_tenant(void **state)
{
    admin_tenant_create r;
    tarn_err e;
    const char *ok = "{\"new_tenant_id\": \"0123456789ABCDEF0123456789abcdef\","
                     " \"name\": \"default\"}";

    (void)state;
    assert_int_equal(admin_parse_tenant_create("", 0, &r, &e), TARN_OK);
    assert_false(r.has_id);
    assert_string_equal(r.name, "");
    assert_int_equal(admin_parse_tenant_create(" \n", 2, &r, &e), TARN_OK);
    assert_int_equal(admin_parse_tenant_create("{}", 2, &r, &e), TARN_OK);
    assert_int_equal(admin_parse_tenant_create(ok, strlen(ok), &r, &e),
                     TARN_OK);
    assert_true(r.has_id);
    assert_int_equal(r.id.b[0], 0x01);
    assert_string_equal(r.name, "default");
    assert_int_equal(admin_parse_tenant_create("{\"name\": null}", 14, &r, &e),
                     TARN_OK);
    assert_int_equal(admin_parse_tenant_create("{\"id\": 1}", 9, &r, &e),
                     TARN_EINVAL);
    assert_non_null(strstr(e.msg, "unknown field 'id'"));
    assert_non_null(strstr(e.msg, "allowed: new_tenant_id, name"));
    assert_int_equal(admin_parse_tenant_create("{\"name\": 5}", 11, &r, &e),
                     TARN_EINVAL);
    assert_non_null(strstr(e.msg, "must be a name string"));
    assert_int_equal(
        admin_parse_tenant_create("{\"name\": \"a b\"}", 15, &r, &e),
        TARN_EINVAL);
    assert_int_equal(
        admin_parse_tenant_create("{\"new_tenant_id\": \"xyz\"}", 24, &r, &e),
        TARN_EINVAL);
    assert_non_null(strstr(e.msg, "field 'new_tenant_id': invalid id"));
}

static void
test_malformed(void **state)
{
    admin_tenant_create r;
    tarn_err e;

    (void)state;
    assert_int_equal(admin_parse_tenant_create("{", 1, &r, &e), TARN_EINVAL);
    assert_non_null(strstr(e.msg, "malformed JSON at line 1"));
    assert_int_equal(admin_parse_tenant_create("[]", 2, &r, &e), TARN_EINVAL);
    assert_non_null(strstr(e.msg, "must be a JSON object"));
    assert_int_equal(admin_parse_tenant_create("\"x\"", 3, &r, &e),
                     TARN_EINVAL);
    assert_int_equal(admin_parse_tenant_create("{} {}", 5, &r, &e),
                     TARN_EINVAL);
    assert_int_equal(admin_parse_tenant_create(
                         "{\"name\":\"a\",\"name\":\"b\"}", 23, &r, &e),
                     TARN_EINVAL);
    assert_non_null(strstr(e.msg, "duplicate"));
    /* Invalid UTF-8 and an embedded NUL. */
    assert_int_equal(
        admin_parse_tenant_create("{\"name\":\"\xff\"}", 12, &r, &e),
        TARN_EINVAL);
    assert_int_equal(
        admin_parse_tenant_create("{\"name\":\"a\\u0000b\"}", 19, &r, &e),
        TARN_EINVAL);
    assert_int_equal(
        admin_parse_tenant_create("{\"name\":\"a\"}\0", 13, &r, &e),
        TARN_EINVAL);
}

static void
test_timeline(void **state)
{
    admin_timeline_create r;
    tarn_err e;
    const char *ok =
        "{\"new_timeline_id\": \"00000000000000000000000000000001\","
        " \"name\": \"dev\", \"pg_version\": 15,"
        " \"ancestor_timeline_id\": \"00000000000000000000000000000002\","
        " \"ancestor_start_lsn\": \"0/16B5A50\"}";
    const char *at =
        "{\"ancestor_timeline_id\": \"00000000000000000000000000000002\","
        " \"ancestor_start_time\": \"2026-11-21T10:00:00Z\"}";

    (void)state;
    assert_int_equal(admin_parse_timeline_create("", 0, &r, &e), TARN_OK);
    assert_false(r.has_ancestor || r.has_lsn || r.has_time || r.has_id);
    assert_int_equal(admin_parse_timeline_create(ok, strlen(ok), &r, &e),
                     TARN_OK);
    assert_true(r.has_id && r.has_ancestor && r.has_lsn && !r.has_time);
    assert_true(r.lsn == 0x16B5A50);
    assert_int_equal(r.id.b[15], 1);
    assert_int_equal(r.ancestor.b[15], 2);
    assert_string_equal(r.name, "dev");
    assert_int_equal(admin_parse_timeline_create(at, strlen(at), &r, &e),
                     TARN_OK);
    assert_true(r.has_time);
    tl_bad("{\"ancestor_start_lsn\": \"0/1\"}",
           "ancestor_start_lsn needs ancestor_timeline_id");
    tl_bad("{\"ancestor_start_time\": \"2026-11-21T10:00:00Z\"}",
           "ancestor_start_time needs ancestor_timeline_id");
    tl_bad("{\"ancestor_timeline_id\": \"00000000000000000000000000000002\","
           " \"ancestor_start_lsn\": \"0/1\","
           " \"ancestor_start_time\": \"2026-11-21T10:00:00Z\"}",
           "not both");
    tl_bad("{\"ancestor_start_lsn\": 5}", "must be an LSN string");
    tl_bad("{\"ancestor_timeline_id\": \"00000000000000000000000000000002\","
           " \"ancestor_start_lsn\": \"0-1\"}",
           "field 'ancestor_start_lsn': invalid LSN");
    tl_bad("{\"ancestor_timeline_id\": \"00000000000000000000000000000002\","
           " \"ancestor_start_time\": \"yesterday\"}",
           "invalid timestamp");
    tl_bad("{\"pg_version\": 14}", "only PostgreSQL 15");
    tl_bad("{\"pg_version\": \"15\"}", "must be the integer 15");
    tl_bad("{\"name\": true}", "must be a name string");
    tl_bad("{\"ancestor_lsn\": \"0/1\"}", "unknown field 'ancestor_lsn'");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenant),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_timeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
