/*
 * waldir.c - feed a directory of PostgreSQL WAL segment files to walscan,
 * for the test tools (walinspect, redocheck).
 */
#include "tests/tools/waldir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/pg/pgdefs.h"
#include "storage/pg/pgwal.h"

#define CHUNK       (1u << 20)
#define LSN_ARGS(x) (unsigned)((x) >> 32), (unsigned)(x)

/* True for "<24 upper-case hex digits>" with an optional ".partial". */
static bool
is_segment_name(const char *n)
{
    size_t len = strlen(n);

    if (len != 24 && !(len == 32 && strcmp(n + 24, ".partial") == 0))
        return false;
    for (size_t i = 0; i < 24; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'A' && n[i] <= 'F')))
            return false;
    return true;
}

/* Keep directory entries named like segment files. */
static int
segment_filter(const struct dirent *de)
{
    return is_segment_name(de->d_name);
}

/* The segment size in @p path's long page header; 0 if it has none (a
 * segment created ahead of use is all zeros). */
static uint32_t
read_seg_size(const char *path)
{
    uint8_t hdr[PG_LONG_PHD];
    uint32_t size = 0;
    int fd = open(path, O_RDONLY);

    if (fd < 0)
        return 0;
    if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr)
        && tarn_get_u16(hdr + PG_PHD_MAGIC) == PG_XLOG_PAGE_MAGIC
        && (tarn_get_u16(hdr + PG_PHD_INFO) & PG_XLP_LONG_HEADER)
        && pg_seg_size_valid(tarn_get_u32(hdr + PG_PHD_SEG_SIZE)))
        size = tarn_get_u32(hdr + PG_PHD_SEG_SIZE);
    close(fd);
    return size;
}

/*
 * The segment size, from the long page header of the first segment file
 * (by name) in @p dir that has one, and the highest timeline that has
 * segment @p start's file.
 */
static tarn_rc
probe_dir(const char *dir, tarn_lsn start, uint32_t *seg_size, uint32_t *tli,
          tarn_err *err)
{
    struct dirent **names = NULL;
    char path[4096];
    tarn_rc rc = TARN_OK;
    int n = scandir(dir, &names, segment_filter, alphasort);

    if (n < 0)
        return tarn_err_errno(err, errno, "open %s", dir);
    *seg_size = 0;
    for (int i = 0; i < n && *seg_size == 0; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        *seg_size = read_seg_size(path);
    }
    if (*seg_size == 0) {
        rc = tarn_err_set(err, TARN_ENOTFOUND,
                          "no WAL segment file in %s starts with a "
                          "PostgreSQL 15 long page header",
                          dir);
        goto fail;
    }
    *tli = 0;
    for (int i = 0; i < n; i++) {
        uint32_t t;
        uint64_t segno;
        bool partial;
        if (pg_wal_file_parse(names[i]->d_name, *seg_size, &t, &segno, &partial)
            && segno == start / *seg_size && t > *tli)
            *tli = t;
    }
    if (*tli == 0)
        rc = tarn_err_set(err, TARN_ENOTFOUND,
                          "no segment file in %s holds the start LSN", dir);
fail:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Open segment @p segno, under its plain name or else as ".partial". */
static int
open_segment(const char *dir, uint32_t tli, uint64_t segno, uint32_t seg_size,
             char *path, size_t pathlen)
{
    char name[25];
    int fd;

    pg_wal_file_name(name, tli, segno, seg_size);
    snprintf(path, pathlen, "%s/%s", dir, name);
    fd = open(path, O_RDONLY);
    if (fd < 0 && errno == ENOENT) {
        snprintf(path, pathlen, "%s/%s.partial", dir, name);
        fd = open(path, O_RDONLY);
    }
    return fd;
}

tarn_rc
waldir_feed(const char *dir, tarn_lsn start, tarn_lsn end, walscan_fn cb,
            void *arg, tarn_lsn *stop, tarn_err *err)
{
    walscan_opts o = {.start = start, .assemble = true};
    walscan *s = NULL;
    uint8_t *buf = NULL;
    char path[4096];
    tarn_lsn pos = start;
    uint32_t tli = 0;
    int fd = -1;
    tarn_rc rc;

    /* The scanner learns the timeline from the pages: a segment copied at
     * a timeline switch has pages of the older one. */
    rc = probe_dir(dir, start, &o.seg_size, &tli, err);
    if (rc != TARN_OK)
        return rc;
    rc = walscan_create(&o, &s, err);
    if (rc != TARN_OK)
        return rc;
    buf = malloc(CHUNK);
    if (buf == NULL) {
        rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto fail;
    }
    while (pos < end) {
        uint64_t segno = pos / o.seg_size;
        uint64_t seg_end = (segno + 1) * o.seg_size;
        fd = open_segment(dir, tli, segno, o.seg_size, path, sizeof(path));
        if (fd < 0) {
            rc = tarn_err_errno(err, errno, "open %s", path);
            goto fail;
        }
        while (pos < end && pos < seg_end) {
            uint64_t want = end - pos;
            ssize_t n;
            if (want > seg_end - pos)
                want = seg_end - pos;
            if (want > CHUNK)
                want = CHUNK;
            n = pread(fd, buf, want, (off_t)(pos % o.seg_size));
            if (n < 0) {
                rc = tarn_err_errno(err, errno, "read %s", path);
                goto fail;
            }
            if (n == 0) {
                rc = tarn_err_set(err, TARN_EIO, "%s ends before %X/%08X", path,
                                  LSN_ARGS(end));
                goto fail;
            }
            rc = walscan_feed(s, buf, (size_t)n, cb, arg, err);
            if (rc != TARN_OK)
                goto fail;
            pos += (uint64_t)n;
        }
        close(fd);
        fd = -1;
    }
    *stop = walscan_boundary(s);
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    walscan_destroy(s);
    return rc;
}
