/*
 * test_wal.c - the WAL store on a real directory: preallocation, writes
 * across segments, group syncs and renames, reads, rewinds, and recovery
 * from a torn tail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/pg/pgwal.h"
#include "storage/pg/walgen.h"
#include "storage/wal.h"

#define SEG   (1u << 20)
#define SYSID 1234567ULL

typedef struct fx {
    char dir[64];
    walstore *w;
    walgen *g;
    const uint8_t *data;
    size_t len;
    tarn_lsn last_start, last_end;
} fx;

static walstore *
open_store(const char *dir)
{
    walstore_opts o = {dir, SEG, 1, SYSID};
    walstore *w;
    tarn_err e;

    if (walstore_open(&o, &w, &e) != TARN_OK)
        fail_msg("open: %s", e.msg);
    return w;
}

static void
prealloc_all(walstore *w)
{
    walstore_prealloc_job job;
    tarn_err e;

    while (walstore_prealloc_prepare(w, &job)) {
        walstore_prealloc_run(&job);
        if (walstore_prealloc_finish(w, &job, &e) != TARN_OK)
            fail_msg("prealloc: %s", e.msg);
    }
}

static void
sync_now(walstore *w)
{
    walstore_sync_job job;
    tarn_err e;

    assert_int_equal(walstore_sync_prepare(w, &job, &e), TARN_OK);
    walstore_sync_run(&job);
    if (walstore_sync_finish(w, &job, 0, &e) != TARN_OK)
        fail_msg("sync: %s", e.msg);
}

/* Write @p len bytes, preallocating whenever the store asks. */
static void
write_all(walstore *w, const uint8_t *p, size_t len)
{
    while (len > 0) {
        size_t n;
        tarn_err e;
        tarn_rc rc = walstore_write(w, p, len, &n, &e);
        p += n;
        len -= n;
        if (rc == TARN_AGAIN) {
            prealloc_all(w);
            if (walstore_sync_wanted(w))
                sync_now(w);
        } else if (rc != TARN_OK) {
            fail_msg("write: %s", e.msg);
        }
    }
}

static int
setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    uint8_t body[5000];
    tarn_err e;

    snprintf(f->dir, sizeof(f->dir), "/tmp/tarn-wal-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    strcat(f->dir, "/wal");
    f->w = open_store(f->dir);
    /* 2.5 segments of WAL from segment 2 on. */
    if (walgen_create(SYSID, SEG, 1, 2ULL * SEG, 0, &f->g, &e) != TARN_OK)
        return -1;
    for (int i = 0; walgen_pos(f->g) < 2ULL * SEG + SEG * 5 / 2; i++) {
        memset(body, i, sizeof(body));
        if (walgen_append(f->g, 1, 0, (uint32_t)i, body,
                          (size_t)(i * 37) % sizeof(body), &f->last_start,
                          &f->last_end, &e)
            != TARN_OK)
            return -1;
    }
    f->data = walgen_data(f->g, &f->len);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx *f = *state;
    char cmd[128];

    walstore_close(f->w);
    walgen_destroy(f->g);
    snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)(strlen(f->dir) - 4),
             f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static bool
exists(const fx *f, const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return stat(path, &st) == 0;
}

static void
test_write_sync_rename(void **state)
{
    fx *f = *state;
    uint8_t *back;
    size_t n;
    tarn_err e;

    assert_int_equal(walstore_begin(f->w, 2ULL * SEG, &e), TARN_OK);
    assert_int_equal(walstore_begin(f->w, 2ULL * SEG + 8, &e), TARN_EINVAL);
    /* Nothing is preallocated yet: the write must wait. */
    assert_int_equal(walstore_write(f->w, f->data, 10, &n, &e), TARN_AGAIN);
    assert_int_equal(n, 0);
    prealloc_all(f->w);
    assert_true(exists(f, "000000010000000000000002.partial"));
    assert_true(exists(f, "000000010000000000000003.partial"));
    write_all(f->w, f->data, f->len);
    assert_true(walstore_write_pos(f->w) == 2ULL * SEG + f->len);
    assert_true(walstore_sync_wanted(f->w));
    sync_now(f->w);
    assert_true(walstore_synced_pos(f->w) == walstore_write_pos(f->w));
    assert_false(walstore_sync_wanted(f->w));
    /* Complete segments have their final names, the newest is partial. */
    assert_true(exists(f, "000000010000000000000002"));
    assert_true(exists(f, "000000010000000000000003"));
    assert_true(exists(f, "000000010000000000000004.partial"));
    assert_false(exists(f, "000000010000000000000002.partial"));
    /* Every byte reads back. */
    back = malloc(f->len);
    assert_int_equal(walstore_read(f->w, 2ULL * SEG, back, f->len, &e),
                     TARN_OK);
    assert_memory_equal(back, f->data, f->len);
    assert_int_equal(walstore_read(f->w, 9ULL * SEG, back, 10, &e),
                     TARN_ENOTFOUND);
    free(back);
}

static void
test_rewind_and_rewrite(void **state)
{
    fx *f = *state;
    size_t part = SEG + 5000;
    tarn_err e;

    assert_int_equal(walstore_begin(f->w, 2ULL * SEG, &e), TARN_OK);
    prealloc_all(f->w);
    write_all(f->w, f->data, part);
    sync_now(f->w);
    /* Back into the previous, complete segment, and on again. */
    assert_int_equal(walstore_set_write_pos(f->w, 2ULL * SEG + SEG - 100, &e),
                     TARN_OK);
    assert_int_equal(walstore_set_write_pos(f->w, 1, &e), TARN_EINVAL);
    write_all(f->w, f->data + SEG - 100, f->len - (SEG - 100));
    sync_now(f->w);
    {
        uint8_t *back = malloc(f->len);
        assert_int_equal(walstore_read(f->w, 2ULL * SEG, back, f->len, &e),
                         TARN_OK);
        assert_memory_equal(back, f->data, f->len);
        free(back);
    }
    assert_true(exists(f, "000000010000000000000003"));
}

/* Bytes this process has caused to be written to storage (0: unknown). */
static uint64_t
write_bytes(void)
{
    char line[128];
    unsigned long long v = 0;
    FILE *fp = fopen("/proc/self/io", "r");

    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "write_bytes: %llu", &v) == 1)
            break;
    fclose(fp);
    return v;
}

/*
 * A commit-sized append followed by a group sync, many times over: each
 * sync may write back the pages the append touched, and no more.  Large
 * page-cache folios (kernels from 6.16 give ext4 files large folios) made
 * every fdatasync write a whole 64 KiB folio for a few hundred bytes: 8x
 * the WAL's volume.  The kernel charges a folio's full size to the writer
 * when it dirties it, so /proc/self/io shows the amplification directly.
 */
static void
test_write_amplification(void **state)
{
    fx *f = *state;
    const int rounds = 200;
    size_t off = 0;
    uint64_t before, after, bytes = 0;
    tarn_err e;

    assert_int_equal(walstore_begin(f->w, 2ULL * SEG, &e), TARN_OK);
    prealloc_all(f->w);
    sync_now(f->w);
    before = write_bytes();
    for (int i = 0; i < rounds; i++) {
        /* 300 to 9,300 bytes, mostly small, like commits with and without
         * full-page images. */
        size_t n = 300 + (size_t)(i % 7 == 0 ? 9000 : (i * 131) % 700);
        write_all(f->w, f->data + off, n);
        sync_now(f->w);
        off += n;
        bytes += n;
    }
    after = write_bytes();
    if (before == 0 && after == 0)
        skip(); /* no I/O accounting here (tmpfs, or no /proc/self/io) */
    /* What an append can dirty: its own bytes rounded out to pages, plus
     * the page it shares with the previous append. */
    print_message("%d appends of %llu bytes in all; %llu bytes written\n",
                  rounds, (unsigned long long)bytes,
                  (unsigned long long)(after - before));
    assert_true(after - before <= bytes + (uint64_t)rounds * 2 * 4096);
}

/* Damage after the last good record is cut off; the rest survives. */
static void
test_recover_torn_tail(void **state)
{
    fx *f = *state;
    walstore_end end;
    size_t keep = f->len - 3000; /* a partial last record */
    char path[256];
    tarn_err e;
    int fd;

    assert_int_equal(walstore_begin(f->w, 2ULL * SEG, &e), TARN_OK);
    prealloc_all(f->w);
    write_all(f->w, f->data, keep);
    sync_now(f->w);
    walstore_close(f->w);
    /* Garbage after the torn record, as a crash mid-write might leave. */
    snprintf(path, sizeof(path), "%s/000000010000000000000004.partial", f->dir);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "garbage!", 8, (off_t)(keep - 2 * SEG + 64)),
                     8);
    close(fd);
    f->w = open_store(f->dir);
    /* From the start of the WAL (no catalog position). */
    assert_int_equal(walstore_recover(f->w, 2ULL * SEG, 0, true, &end, &e),
                     TARN_OK);
    assert_true(end.end < 2ULL * SEG + keep);
    assert_true(end.end > 2ULL * SEG + keep - 12000);
    assert_true(end.records > 100);
    assert_true(end.cut_bytes > 0);
    assert_non_null(strstr(end.stop_reason, "WAL"));
    assert_true(walstore_write_pos(f->w) == end.end);
    /* The same answer from a later durable position, and nothing left to
     * cut the second time. */
    tarn_lsn first_end = end.end, last_start = end.last_start;
    walstore_close(f->w);
    f->w = open_store(f->dir);
    assert_int_equal(
        walstore_recover(f->w, 3ULL * SEG + 8192 + 24 * 0, 0, true, &end, &e),
        TARN_OK);
    assert_true(end.end == first_end && end.last_start == last_start);
    assert_int_equal(end.cut_bytes, 0);
    /* The tail after the end reads as zeros. */
    {
        uint8_t back[100], zero[100] = {0};
        assert_int_equal(walstore_read(f->w, end.end, back, 100, &e), TARN_OK);
        assert_memory_equal(back, zero, 100);
    }
    /* And writing resumes there. */
    prealloc_all(f->w);
    write_all(f->w, f->data + (end.end - 2ULL * SEG),
              f->len - (size_t)(end.end - 2ULL * SEG));
    sync_now(f->w);
    walstore_close(f->w);
    f->w = open_store(f->dir);
    assert_int_equal(walstore_recover(f->w, 2ULL * SEG, 0, true, &end, &e),
                     TARN_OK);
    assert_true(end.end == f->last_end);
    assert_true(end.last_start == f->last_start);
}

/* A segment that was complete but never renamed gets its name. */
static void
test_recover_renames(void **state)
{
    fx *f = *state;
    walstore_end end;
    char a[256], b[256];
    tarn_err e;

    assert_int_equal(walstore_begin(f->w, 2ULL * SEG, &e), TARN_OK);
    prealloc_all(f->w);
    write_all(f->w, f->data, f->len);
    sync_now(f->w);
    walstore_close(f->w);
    snprintf(a, sizeof(a), "%s/000000010000000000000003", f->dir);
    snprintf(b, sizeof(b), "%s/000000010000000000000003.partial", f->dir);
    assert_int_equal(rename(a, b), 0);
    f->w = open_store(f->dir);
    assert_int_equal(walstore_recover(f->w, 2ULL * SEG, 0, true, &end, &e),
                     TARN_OK);
    assert_true(end.end == f->last_end);
    assert_true(exists(f, "000000010000000000000003"));
    assert_false(exists(f, "000000010000000000000003.partial"));
    assert_false(exists(f, "000000010000000000000005.partial"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_sync_rename, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_amplification, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewind_and_rewrite, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recover_torn_tail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recover_renames, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
