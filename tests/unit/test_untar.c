/*
 * test_untar.c - the basebackup extractor of `tarn endpoint start`:
 * archives fed in pieces of every size, long names, and the entries it
 * must refuse (absolute paths, "..", links, bad checksums, a cut archive).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/cli/untar.h"
#include "server/core/fsutil.h"

typedef struct tarbuf {
    uint8_t *p;
    size_t len;
} tarbuf;

static void
put(tarbuf *t, const void *data, size_t n)
{
    t->p = realloc(t->p, t->len + n);
    assert_non_null(t->p);
    memcpy(t->p + t->len, data, n);
    t->len += n;
}

/* One header as tarnd writes it (GNU magic), then the padded data. */
static void
entry(tarbuf *t, const char *name, char type, unsigned mode, const void *data,
      size_t size)
{
    uint8_t h[512] = {0}, pad[512] = {0};
    unsigned sum = 0;

    memcpy(h, name, strnlen(name, 100));
    snprintf((char *)h + 100, 8, "%07o", mode);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011o", (unsigned)size);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = (uint8_t)type;
    memcpy(h + 257, "ustar  ", 8);
    memset(h + 148, ' ', 8);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    put(t, h, 512);
    if (size > 0) {
        put(t, data, size);
        put(t, pad, (512 - size % 512) % 512);
    }
}

static void
end(tarbuf *t)
{
    uint8_t z[1024] = {0};
    put(t, z, sizeof(z));
}

static char *
tmpdir(void)
{
    char *d = strdup("/tmp/tarn-untar-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void
rm(char *d)
{
    tarn_err err;
    assert_int_equal(tarn_rmtree(d, &err), TARN_OK);
    free(d);
}

/* Feed @p t in pieces of @p step bytes; the result of the whole. */
static tarn_rc
extract(const char *dir, const tarbuf *t, size_t step, tarn_err *err)
{
    untar_opts o = {dir, false, 0, 0};
    untar *u;
    tarn_rc rc;

    assert_int_equal(untar_new(&o, &u, err), TARN_OK);
    for (size_t off = 0; off < t->len; off += step) {
        size_t n = t->len - off < step ? t->len - off : step;
        if ((rc = untar_feed(u, t->p + off, n, err)) != TARN_OK) {
            untar_free(u);
            return rc;
        }
    }
    rc = untar_finish(u, err);
    untar_free(u);
    return rc;
}

static void
read_back(const char *dir, const char *name, const char *want, size_t len,
          unsigned mode)
{
    char path[512], *got;
    size_t n;
    struct stat st;
    tarn_err err;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(tarn_read_file(path, 1 << 20, &got, &n, &err), TARN_OK);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    free(got);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, mode);
}

static void
test_pieces_of_every_size(void **state)
{
    static const size_t steps[] = {1, 7, 511, 512, 513, 4096, 1 << 20};
    char big[3000], longname[300];
    tarbuf t = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    memset(longname, 'n', sizeof(longname));
    memcpy(longname, "base/", 5);
    longname[100] = longname[200] = '/'; /* each name under NAME_MAX */
    longname[sizeof(longname) - 1] = '\0';
    entry(&t, "./", '5', 0755, NULL, 0); /* the target itself */
    entry(&t, "base/", '5', 0755, NULL, 0);
    entry(&t, "base/1/", '5', 0755, NULL, 0);
    entry(&t, "PG_VERSION", '0', 0600, "15\n", 3);
    entry(&t, "./base/1/16384", '0', 0600, big, sizeof(big));
    entry(&t, "empty", '0', 0600, NULL, 0);
    entry(&t, "pg_wal/seg", '0', 0600, big, 512); /* parent made on the way */
    entry(&t, "././@LongLink", 'L', 0, longname, strlen(longname) + 1);
    entry(&t, "ignored-short-name", '0', 0600, "L", 1);
    end(&t);
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        char *d = tmpdir();
        tarn_err err;
        struct stat st;
        char path[512];
        if (extract(d, &t, steps[s], &err) != TARN_OK)
            fail_msg("step %zu: %s", steps[s], err.msg);
        read_back(d, "PG_VERSION", "15\n", 3, 0600);
        read_back(d, "base/1/16384", big, sizeof(big), 0600);
        read_back(d, "empty", "", 0, 0600);
        read_back(d, "pg_wal/seg", big, 512, 0600);
        read_back(d, longname, "L", 1, 0600);
        snprintf(path, sizeof(path), "%s/base/1", d);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0755);
        rm(d);
    }
    free(t.p);
}

static void
expect_refused(const tarbuf *t, const char *want)
{
    char *d = tmpdir();
    tarn_err err;

    assert_int_not_equal(extract(d, t, 512, &err), TARN_OK);
    if (strstr(err.msg, want) == NULL)
        fail_msg("'%s' does not say '%s'", err.msg, want);
    rm(d);
}

static void
test_refusals(void **state)
{
    tarbuf t = {0};

    (void)state;
    entry(&t, "/etc/passwd", '0', 0600, "x", 1);
    end(&t);
    expect_refused(&t, "absolute path");
    t.len = 0;
    entry(&t, "base/../../x", '0', 0600, "x", 1);
    end(&t);
    expect_refused(&t, "'..'");
    t.len = 0;
    entry(&t, "..", '5', 0755, NULL, 0);
    end(&t);
    expect_refused(&t, "'..'");
    t.len = 0;
    entry(&t, "link", '2', 0777, NULL, 0);
    end(&t);
    expect_refused(&t, "of type '2'");
    t.len = 0;
    entry(&t, "dup", '0', 0600, "x", 1);
    entry(&t, "dup", '0', 0600, "y", 1);
    end(&t);
    expect_refused(&t, "File exists");
    t.len = 0;
    entry(&t, "a", '0', 0600, "x", 1);
    t.p[0] = 'b'; /* the checksum no longer fits */
    end(&t);
    expect_refused(&t, "bad checksum");
    t.len = 0;
    entry(&t, "a", '0', 0600, "abc", 3);
    expect_refused(&t, "cut short");
    t.len = 0;
    entry(&t, "./", '0', 0600, NULL, 0);
    end(&t);
    expect_refused(&t, "empty name");
    free(t.p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_of_every_size),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
