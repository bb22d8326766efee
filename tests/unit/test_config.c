/*
 * test_config.c - the key table, the INI loader and --set overrides, with
 * good and bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/core/config.h"
#include "server/core/log.h"
#include "server/core/types.h"

static void
test_defaults(void **state)
{
    tarn_config c;
    tarn_err e;

    (void)state;
    assert_int_equal(cfg_defaults(&c, &e), TARN_OK);
    assert_string_equal(c.http_listen, "127.0.0.1:9898");
    assert_string_equal(c.page_listen, "127.0.0.1:6400");
    assert_string_equal(c.data_dir, ".tarn");
    assert_string_equal(c.http_auth_token, "");
    assert_true(c.catalog_map_size == 64LL << 20);
    assert_true(c.http_idle_timeout_ms == 60000);
    assert_int_equal(c.log_level, TLOG_INFO);
    assert_int_equal(c.worker_threads, 4);
    assert_int_equal(c.layer_compression, TARN_CODEC_LZ4);
    cfg_free(&c);
}

static void
test_every_default_is_in_bounds(void **state)
{
    const cfg_key *keys;
    tarn_config c;
    tarn_err e;
    size_t n;

    (void)state;
    keys = cfg_keys(&n);
    assert_true(n >= 10);
    assert_int_equal(cfg_defaults(&c, &e), TARN_OK);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(keys[i].help);
        assert_true(strlen(keys[i].help) > 10);
        /* Setting each default again through the parser succeeds. */
        assert_int_equal(cfg_set(&c, keys[i].name, keys[i].def, &e), TARN_OK);
        assert_ptr_equal(cfg_key_find(keys[i].name), &keys[i]);
    }
    cfg_free(&c);
}

static void
test_file_good(void **state)
{
    tarn_config c;
    tarn_err e;
    const char *text = "; comment\n"
                       "# another\n"
                       "[server]\n"
                       "data_dir = /var/lib/tarn\n"
                       "worker_threads=8\n"
                       "\n"
                       "[whatever]\n"
                       "http_listen = 0.0.0.0:1234 ; inline comment\n"
                       "http_auth_token = \"s3cret token\"\n"
                       "catalog_map_size = 1GB\n"
                       "http_idle_timeout = 90s\n"
                       "log_level = DEBUG\n"
                       "layer_compression = ZSTD\n";

    (void)state;
    assert_int_equal(cfg_defaults(&c, &e), TARN_OK);
    assert_int_equal(cfg_load_string(&c, text, "t.conf", &e), TARN_OK);
    assert_string_equal(c.data_dir, "/var/lib/tarn");
    assert_int_equal(c.worker_threads, 8);
    assert_string_equal(c.http_listen, "0.0.0.0:1234");
    assert_string_equal(c.http_auth_token, "s3cret token");
    assert_true(c.catalog_map_size == 1LL << 30);
    assert_true(c.http_idle_timeout_ms == 90000);
    assert_int_equal(c.log_level, TLOG_DEBUG);
    assert_int_equal(c.layer_compression, TARN_CODEC_ZSTD);
    cfg_free(&c);
}

/* Load @p text and expect failure with @p needle in the message. */
static void
expect_bad(const char *text, const char *needle)
{
    tarn_config c;
    tarn_err e;

    assert_int_equal(cfg_defaults(&c, &e), TARN_OK);
    assert_int_not_equal(cfg_load_string(&c, text, "bad.conf", &e), TARN_OK);
    if (strstr(e.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", e.msg, needle);
    cfg_free(&c);
}

static void
test_file_bad(void **state)
{
    (void)state;
    expect_bad("data_dir = x\nnope = 1\n", "bad.conf:2: unknown key 'nope'");
    expect_bad("\n\nworker_threads = 0\n",
               "bad.conf:3: key 'worker_threads': value '0' is out of range "
               "[1, 64]");
    expect_bad("worker_threads = many\n",
               "bad.conf:1: key 'worker_threads': invalid integer");
    expect_bad("catalog_map_size = 12 parsecs\n",
               "bad.conf:1: key 'catalog_map_size': invalid size");
    expect_bad("catalog_map_size = 1kB\n", "out of range [1MB, 1024GB]");
    expect_bad("http_idle_timeout = soon\n", "invalid duration");
    expect_bad("http_listen = nohost\n", "key 'http_listen': invalid address");
    expect_bad("log_level = loud\n", "invalid log level 'loud'");
    expect_bad("layer_compression = gzip\n",
               "key 'layer_compression': invalid compression 'gzip' "
               "(expected lz4, zstd or none)");
    expect_bad("a\n", "bad.conf:1: syntax error");
    expect_bad("log_level = info\nlog_level = warn\n",
               "bad.conf:2: key 'log_level' is set twice");
    expect_bad("[unterminated\n", "bad.conf:1: syntax error");
    /* The first error is reported, with its own line. */
    expect_bad("ok_then = 1\nlog_level = x\n", "bad.conf:1: unknown key");
    {
        char line[400];
        memset(line, 'x', sizeof(line));
        memcpy(line, "data_dir = ", 11);
        line[sizeof(line) - 2] = '\n';
        line[sizeof(line) - 1] = '\0';
        expect_bad(line, "bad.conf:1: line is too long");
    }
}

static void
test_load_with_sets(void **state)
{
    char path[] = "/tmp/tarn-cfg-XXXXXX";
    const char *sets[] = {"worker_threads=2", "log_level=warn"};
    const char *badsets[] = {"worker_threads"};
    const char *badsets2[] = {"worker_threads=99"};
    tarn_config c;
    tarn_err e;
    FILE *f;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("worker_threads = 6\nhttp_listen = 127.0.0.1:1\n", f);
    fclose(f);
    assert_int_equal(cfg_load(&c, path, sets, 2, &e), TARN_OK);
    assert_int_equal(c.worker_threads, 2); /* --set wins over the file */
    assert_string_equal(c.http_listen, "127.0.0.1:1");
    assert_int_equal(c.log_level, TLOG_WARN);
    cfg_free(&c);
    assert_int_equal(cfg_load(&c, path, badsets, 1, &e), TARN_EINVAL);
    assert_non_null(strstr(e.msg, "expected key=value"));
    assert_int_equal(cfg_load(&c, path, badsets2, 1, &e), TARN_EINVAL);
    assert_non_null(strstr(e.msg, "--set worker_threads: key"));
    unlink(path);
    assert_int_not_equal(cfg_load(&c, path, NULL, 0, &e), TARN_OK);
    assert_non_null(strstr(e.msg, "cannot read config file"));
}

/* The generated example file loads back to exactly the defaults. */
static void
test_example_round_trip(void **state)
{
    tarn_config def, c;
    const cfg_key *keys;
    char *text = NULL;
    size_t len = 0, n;
    tarn_err e;
    FILE *f;

    (void)state;
    f = open_memstream(&text, &len);
    cfg_write_example(f);
    fclose(f);
    assert_int_equal(cfg_defaults(&def, &e), TARN_OK);
    assert_int_equal(cfg_defaults(&c, &e), TARN_OK);
    /* Start from different values so that the file must set each one. */
    assert_int_equal(cfg_set(&c, "worker_threads", "9", &e), TARN_OK);
    assert_int_equal(cfg_set(&c, "data_dir", "/elsewhere", &e), TARN_OK);
    assert_int_equal(cfg_load_string(&c, text, "example", &e), TARN_OK);
    keys = cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        assert_false(cfg_differs(&def, &c, &keys[i]));
        assert_non_null(strstr(text, keys[i].name));
    }
    free(text);
    cfg_free(&def);
    cfg_free(&c);
}

static void
test_differs_and_copy(void **state)
{
    const cfg_key *k = cfg_key_find("http_auth_token");
    tarn_config a, b;
    char buf[64];
    tarn_err e;

    (void)state;
    assert_non_null(k);
    assert_true(k->reloadable);
    assert_false(cfg_key_find("data_dir")->reloadable);
    assert_int_equal(cfg_defaults(&a, &e), TARN_OK);
    assert_int_equal(cfg_defaults(&b, &e), TARN_OK);
    assert_false(cfg_differs(&a, &b, k));
    assert_int_equal(cfg_set(&b, "http_auth_token", "t0k", &e), TARN_OK);
    assert_true(cfg_differs(&a, &b, k));
    /* Secrets are never printed back. */
    assert_string_equal(cfg_format(&b, k, buf, sizeof(buf)), "(set)");
    assert_int_equal(cfg_copy_key(&a, &b, k, &e), TARN_OK);
    assert_string_equal(a.http_auth_token, "t0k");
    assert_string_equal(
        cfg_format(&a, cfg_key_find("catalog_map_size"), buf, sizeof(buf)),
        "64MB");
    assert_string_equal(
        cfg_format(&a, cfg_key_find("http_idle_timeout"), buf, sizeof(buf)),
        "1min");
    assert_string_equal(
        cfg_format(&a, cfg_key_find("log_level"), buf, sizeof(buf)), "info");
    assert_string_equal(
        cfg_format(&a, cfg_key_find("layer_compression"), buf, sizeof(buf)),
        "lz4");
    /* A value in quotes of its own keeps them through format and set
     * (the fuzzer's round trip found this). */
    assert_int_equal(cfg_set(&a, "data_dir", "\"\"x =\"\"", &e), TARN_OK);
    assert_string_equal(a.data_dir, "\"x =\"");
    assert_string_equal(
        cfg_format(&a, cfg_key_find("data_dir"), buf, sizeof(buf)),
        "\"\"x =\"\"");
    assert_int_equal(cfg_set(&b, "data_dir", buf, &e), TARN_OK);
    assert_false(cfg_differs(&a, &b, cfg_key_find("data_dir")));
    assert_null(cfg_key_find("no_such_key"));
    assert_int_equal(cfg_set(&a, "no_such_key", "1", &e), TARN_ENOTFOUND);
    cfg_free(&a);
    cfg_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_default_is_in_bounds),
        cmocka_unit_test(test_file_good),
        cmocka_unit_test(test_file_bad),
        cmocka_unit_test(test_load_with_sets),
        cmocka_unit_test(test_example_round_trip),
        cmocka_unit_test(test_differs_and_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
