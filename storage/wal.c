/*
 * wal.c - WAL segment files.
 *
 * Durability protocol.  A segment is born as "<name>.partial": created
 * under a temporary name, zero-filled to its full size, fsynced, renamed,
 * and its directory fsynced, all on a worker.  Because the file has its
 * full size from the start, a later fdatasync only has to flush data, never
 * metadata.  WAL bytes are written with pwrite on the reactor.  A group
 * sync job fdatasyncs every segment written since the previous job, then
 * renames segments that are now complete and durable to their final name
 * and fsyncs the directory.  Only after the job reports success may the
 * caller acknowledge anything below job.upto.
 *
 * Recovery trusts nothing but CRCs.  It scans forward from the last
 * position the catalog knew to be durable, keeps every record whose CRC and
 * xl_prev check out, and zeroes what follows (a torn tail from a crash
 * mid-write), so that pg_waldump and the next scan stop at the same place.
 */
#include "storage/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/core/fsutil.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walscan.h"

#define MAX_PENDING 4

/* The kernel's page size as far as write amplification goes (see
 * walstore_write and walstore_prealloc_run). */
#define WAL_PAGE 4096

typedef struct seg {
    uint64_t segno;
    int fd;
    bool final_name; /* the file has its final name */
    bool dirty;      /* written since the last sync job */
    bool complete;   /* written up to its last byte */
    bool renaming;   /* a sync job in flight will give it its final name */
} seg;

struct walstore {
    walstore_opts o;
    char dir[PATH_MAX];
    tarn_lsn start, write_pos, synced;
    seg cur;                  /* the segment at write_pos */
    seg pending[MAX_PENDING]; /* complete, awaiting sync or rename */
    int npending;
    int sync_inflight; /* up to WALSTORE_MAX_INFLIGHT sync jobs */
    bool prealloc_inflight;
    uint64_t seg_gen; /* bumped whenever cur changes */
};

static void
seg_path(const walstore *w, uint64_t segno, bool final, char *buf)
{
    char name[32];

    pg_wal_file_name(name, w->o.tli, segno, w->o.seg_size);
    snprintf(buf, PATH_MAX, "%s/%s%s", w->dir, name, final ? "" : ".partial");
}

/*
 * Which name does segment @p segno have on disk?  -1: none.
 *
 * access(), not stat(): on kernels with multigrain timestamps, asking for
 * a file's times makes its next write stamp a fine-grained mtime, which
 * dirties the inode, and then every fdatasync of that segment writes the
 * inode block too.  Nothing here needs the times.
 */
static int
seg_exists(const walstore *w, uint64_t segno)
{
    char path[PATH_MAX];

    seg_path(w, segno, false, path);
    if (access(path, F_OK) == 0)
        return 0;
    seg_path(w, segno, true, path);
    if (access(path, F_OK) == 0)
        return 1;
    return -1;
}

static void
seg_reset(seg *s)
{
    if (s->fd >= 0)
        close(s->fd);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}

tarn_rc
walstore_open(const walstore_opts *o, walstore **out, tarn_err *err)
{
    walstore *w;
    tarn_rc rc;

    if (!pg_seg_size_valid(o->seg_size))
        return tarn_err_set(err, TARN_EINVAL, "invalid WAL segment size %u",
                            o->seg_size);
    if ((rc = tarn_mkdir_p(o->dir, 0700, err)) != TARN_OK)
        return rc;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    w->o = *o;
    snprintf(w->dir, sizeof(w->dir), "%s", o->dir);
    w->o.dir = w->dir;
    w->cur.fd = -1;
    *out = w;
    return TARN_OK;
}

void
walstore_close(walstore *w)
{
    if (w == NULL)
        return;
    seg_reset(&w->cur);
    for (int i = 0; i < w->npending; i++)
        seg_reset(&w->pending[i]);
    free(w);
}

tarn_rc
walstore_begin(walstore *w, tarn_lsn start, tarn_err *err)
{
    if (start % w->o.seg_size != 0)
        return tarn_err_set(err, TARN_EINVAL,
                            "new WAL must start at a segment boundary");
    w->start = w->write_pos = w->synced = start;
    seg_reset(&w->cur);
    w->cur.segno = start / w->o.seg_size;
    w->seg_gen++;
    return TARN_OK;
}

tarn_lsn
walstore_write_pos(const walstore *w)
{
    return w->write_pos;
}

tarn_lsn
walstore_synced_pos(const walstore *w)
{
    return w->synced;
}

uint64_t
walstore_segment_gen(const walstore *w)
{
    return w->seg_gen;
}

tarn_lsn
walstore_start_pos(const walstore *w)
{
    return w->start;
}

/* Open the current segment for writing.  TARN_AGAIN if it does not exist. */
static tarn_rc
open_cur(walstore *w, tarn_err *err)
{
    char path[PATH_MAX];
    int which = seg_exists(w, w->cur.segno);

    if (which < 0)
        return TARN_AGAIN;
    seg_path(w, w->cur.segno, which == 1, path);
    w->cur.fd = open(path, O_RDWR | O_CLOEXEC);
    if (w->cur.fd < 0)
        return tarn_err_errno(err, errno, "open WAL segment %s", path);
    w->cur.final_name = which == 1;
    w->seg_gen++;
    return TARN_OK;
}

/* The current segment is full: queue it for sync and rename. */
static void
retire_cur(walstore *w)
{
    uint64_t next = w->cur.segno + 1;

    TARN_ASSERT(w->npending < MAX_PENDING);
    w->cur.complete = true;
    w->pending[w->npending++] = w->cur;
    memset(&w->cur, 0, sizeof(w->cur));
    w->cur.fd = -1;
    w->cur.segno = next;
    w->seg_gen++;
}

tarn_rc
walstore_write(walstore *w, const uint8_t *data, size_t len, size_t *written,
               tarn_err *err)
{
    *written = 0;
    while (len > 0) {
        uint64_t off = w->write_pos % w->o.seg_size;
        size_t n = w->o.seg_size - off;
        ssize_t r;
        tarn_rc rc;

        if (w->npending == MAX_PENDING)
            return TARN_AGAIN; /* wait for a sync to retire segments */
        if (w->cur.fd < 0 && (rc = open_cur(w, err)) != TARN_OK)
            return rc;
        if (n > len)
            n = len;
        /*
         * A write that ends inside a page leaves that page's last part to
         * the next write, so the page is written again at every sync.  Write
         * the part of the data that fills whole pages on its own and the
         * tail separately: the kernel sizes a new page-cache folio by the
         * length of the write that creates it, so the page that is written
         * again stays one 4 KiB page, not a large folio that every
         * fdatasync would write whole.
         */
        if (off / WAL_PAGE != (off + n) / WAL_PAGE && (off + n) % WAL_PAGE != 0)
            n -= (off + n) % WAL_PAGE;
        r = pwrite(w->cur.fd, data, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            char path[PATH_MAX];
            seg_path(w, w->cur.segno, w->cur.final_name, path);
            return tarn_err_errno(err, errno, "write WAL segment %s", path);
        }
        if (r == 0)
            return tarn_err_set(err, TARN_EIO, "write WAL: wrote nothing");
        w->cur.dirty = true;
        w->write_pos += (uint64_t)r;
        data += r;
        len -= (size_t)r;
        *written += (size_t)r;
        if (w->write_pos % w->o.seg_size == 0)
            retire_cur(w);
    }
    return TARN_OK;
}

tarn_rc
walstore_set_write_pos(walstore *w, tarn_lsn lsn, tarn_err *err)
{
    if (lsn > w->write_pos || lsn < w->start)
        return tarn_err_set(err, TARN_EINVAL,
                            "cannot move the WAL write position outside the "
                            "written WAL");
    if (lsn / w->o.seg_size != w->cur.segno) {
        /*
         * Back into a segment that is complete: it is rewritten with the
         * same bytes, and becomes complete again when they reach its end.
         */
        int i;
        for (i = 0; i < w->npending; i++)
            if (w->pending[i].segno == lsn / w->o.seg_size)
                break;
        if (i < w->npending) {
            seg s = w->pending[i];
            /* Unsynced bytes of the segment we leave lie past @p lsn and
             * will be written (and marked dirty) again. */
            seg_reset(&w->cur);
            w->cur = s;
            w->cur.complete = false;
            memmove(&w->pending[i], &w->pending[i + 1],
                    (size_t)(w->npending - i - 1) * sizeof(seg));
            w->npending--;
        } else {
            seg_reset(&w->cur);
            w->cur.segno = lsn / w->o.seg_size;
        }
    }
    w->write_pos = lsn;
    if (w->synced > lsn)
        w->synced = lsn;
    w->seg_gen++;
    return TARN_OK;
}

/* The writer's open segment @p segno, if it has it open; else NULL. */
static const seg *
writer_seg(const walstore *w, uint64_t segno)
{
    if (w->cur.fd >= 0 && w->cur.segno == segno)
        return &w->cur;
    for (int i = 0; i < w->npending; i++)
        if (w->pending[i].fd >= 0 && w->pending[i].segno == segno)
            return &w->pending[i];
    return NULL;
}

tarn_rc
walstore_read(walstore *w, tarn_lsn lsn, uint8_t *buf, size_t len,
              tarn_err *err)
{
    while (len > 0) {
        uint64_t segno = lsn / w->o.seg_size, off = lsn % w->o.seg_size;
        size_t n = w->o.seg_size - off;
        char path[PATH_MAX] = "";
        const seg *ws = writer_seg(w, segno);
        int fd = ws != NULL ? ws->fd : -1;
        bool own = fd < 0;
        ssize_t r;

        /*
         * Ingest reads what was just flushed, from the segments still being
         * written: their open descriptors serve, with no path lookups.
         * Others are opened by name.  A worker may rename a segment from
         * .partial to its final name between two opens (rename is atomic,
         * so one of the names always exists): try each name in turn.
         */
        for (int tries = 0; fd < 0 && tries < 4; tries++) {
            seg_path(w, segno, tries % 2 == 1, path);
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 && errno != ENOENT)
                return tarn_err_errno(err, errno, "open %s", path);
        }
        if (fd < 0)
            return tarn_err_set(err, TARN_ENOTFOUND,
                                "WAL segment %llu is not on disk",
                                (unsigned long long)segno);
        if (n > len)
            n = len;
        r = pread(fd, buf, n, (off_t)off);
        if (own)
            close(fd);
        if (r != (ssize_t)n) {
            if (!own)
                seg_path(w, segno, ws->final_name, path);
            return tarn_err_errno(err, r < 0 ? errno : EIO, "read %s", path);
        }
        buf += n;
        lsn += n;
        len -= n;
    }
    return TARN_OK;
}

/* ---- group sync ------------------------------------------------------- */

bool
walstore_sync_wanted(const walstore *w)
{
    if (w->sync_inflight >= WALSTORE_MAX_INFLIGHT)
        return false;
    if (w->cur.dirty)
        return true;
    for (int i = 0; i < w->npending; i++)
        if (w->pending[i].dirty
            || (!w->pending[i].final_name && !w->pending[i].renaming))
            return true;
    return false;
}

static tarn_rc
add_fd(walstore_sync_job *job, int fd, tarn_err *err)
{
    int d;

    TARN_ASSERT(job->nfds < WALSTORE_MAX_SYNC);
    d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (d < 0)
        return tarn_err_errno(err, errno, "dup WAL descriptor");
    job->fds[job->nfds++] = d;
    return TARN_OK;
}

tarn_rc
walstore_sync_prepare(walstore *w, walstore_sync_job *job, tarn_err *err)
{
    tarn_rc rc;

    TARN_ASSERT(w->sync_inflight < WALSTORE_MAX_INFLIGHT);
    memset(job, 0, sizeof(*job));
    snprintf(job->dir, sizeof(job->dir), "%s", w->dir);
    job->upto = w->write_pos;
    for (int i = 0; i < w->npending; i++) {
        seg *s = &w->pending[i];
        if (s->dirty) {
            if ((rc = add_fd(job, s->fd, err)) != TARN_OK)
                goto fail;
            s->dirty = false;
        }
        /*
         * Every byte of a complete segment was written before this job,
         * so once its fdatasyncs return the whole segment is durable and
         * may take its final name.  One job claims each rename.
         */
        if (!s->final_name && !s->renaming && job->nrenames < 2) {
            seg_path(w, s->segno, false, job->rename_from[job->nrenames]);
            seg_path(w, s->segno, true, job->rename_to[job->nrenames]);
            job->nrenames++;
            s->renaming = true;
        }
    }
    /* The current segment always: the job may sync later writes to it. */
    if (w->cur.fd >= 0) {
        if ((rc = add_fd(job, w->cur.fd, err)) != TARN_OK)
            goto fail;
        w->cur.dirty = false;
    }
    job->seg_gen = w->seg_gen;
    w->sync_inflight++;
    return TARN_OK;
fail:
    for (int i = 0; i < job->nfds; i++)
        close(job->fds[i]);
    return rc;
}

int
walstore_sync_again(walstore_sync_job *job)
{
    for (int i = 0; i < job->nfds && job->errnum == 0; i++) {
        if (fdatasync(job->fds[i]) != 0) {
            job->errnum = errno;
            snprintf(job->failed, sizeof(job->failed), "fdatasync WAL");
        }
    }
    return job->errnum;
}

void
walstore_sync_run(walstore_sync_job *job)
{
    int64_t t0 = tarn_mono_us();

    walstore_sync_again(job);
    job->run_us = tarn_mono_us() - t0;
    if (job->errnum != 0)
        return;
    for (int i = 0; i < job->nrenames; i++) {
        if (rename(job->rename_from[i], job->rename_to[i]) != 0) {
            job->errnum = errno;
            snprintf(job->failed, sizeof(job->failed), "rename %s",
                     job->rename_from[i]);
            return;
        }
    }
    if (job->nrenames > 0) {
        tarn_err e;
        if (tarn_fsync_dir(job->dir, &e) != TARN_OK) {
            job->errnum = EIO;
            snprintf(job->failed, sizeof(job->failed), "%s", e.msg);
        }
    }
}

tarn_rc
walstore_sync_finish(walstore *w, walstore_sync_job *job, tarn_lsn synced,
                     tarn_err *err)
{
    for (int i = 0; i < job->nfds; i++)
        close(job->fds[i]);
    job->nfds = 0;
    w->sync_inflight--;
    if (job->errnum != 0)
        return tarn_err_set(err, TARN_EIO, "%s: %s", job->failed,
                            strerror(job->errnum));
    if (synced < job->upto)
        synced = job->upto;
    if (synced > w->write_pos)
        synced = w->write_pos; /* rewound meanwhile */
    if (synced > w->synced)
        w->synced = synced;
    /* Segments renamed by this job are done with. */
    for (int i = 0; i < w->npending;) {
        seg *s = &w->pending[i];
        bool renamed = false;
        for (int k = 0; k < job->nrenames; k++) {
            char to[PATH_MAX];
            seg_path(w, s->segno, true, to);
            if (strcmp(to, job->rename_to[k]) == 0)
                renamed = true;
        }
        if (renamed) {
            s->final_name = true;
            s->renaming = false;
        }
        if (s->final_name && !s->dirty) {
            seg_reset(s);
            memmove(s, s + 1, (size_t)(w->npending - i - 1) * sizeof(seg));
            w->npending--;
        } else {
            i++;
        }
    }
    return TARN_OK;
}

void
walstore_sync_abandon(walstore *w, walstore_sync_job *job)
{
    for (int i = 0; i < job->nfds; i++)
        close(job->fds[i]);
    job->nfds = 0;
    /* The bytes stay unsynced: mark the segments dirty again. */
    w->cur.dirty = w->cur.fd >= 0;
    for (int i = 0; i < w->npending; i++) {
        w->pending[i].dirty = true;
        for (int k = 0; k < job->nrenames; k++) {
            char to[PATH_MAX];
            seg_path(w, w->pending[i].segno, true, to);
            if (strcmp(to, job->rename_to[k]) == 0)
                w->pending[i].renaming = false;
        }
    }
    w->sync_inflight--;
}

/* ---- preallocation ---------------------------------------------------- */

bool
walstore_prealloc_prepare(walstore *w, walstore_prealloc_job *job)
{
    uint64_t want;

    if (w->prealloc_inflight)
        return false;
    if (w->cur.fd < 0 && seg_exists(w, w->cur.segno) < 0)
        want = w->cur.segno;
    else if (seg_exists(w, w->cur.segno + 1) < 0)
        want = w->cur.segno + 1;
    else
        return false;
    memset(job, 0, sizeof(*job));
    job->segno = want;
    job->seg_size = w->o.seg_size;
    seg_path(w, want, false, job->path);
    snprintf(job->tmp, sizeof(job->tmp), "%s/waltmp", w->dir);
    snprintf(job->dir, sizeof(job->dir), "%s", w->dir);
    w->prealloc_inflight = true;
    return true;
}

void
walstore_prealloc_run(walstore_prealloc_job *job)
{
    static const uint8_t zero[WAL_PAGE];
    uint64_t done = 0;
    int fd = open(job->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    tarn_err e;

    if (fd < 0) {
        job->errnum = errno;
        snprintf(job->failed, sizeof(job->failed), "create %s", job->tmp);
        return;
    }
    /*
     * Real zeros, not a sparse file: fdatasync never allocates later.  One
     * page per write, so that the page cache holds the segment as 4 KiB
     * folios: a folio is written back whole, and the segment's last page
     * is written again at every group fsync.  With 64 KiB writes the
     * kernel made 64 KiB folios, and each fdatasync wrote 64 KiB for the
     * few hundred bytes that had changed (tarnd wrote 8x the WAL's bytes).
     */
    while (done < job->seg_size) {
        ssize_t n = write(fd, zero, sizeof(zero));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            job->errnum = errno;
            snprintf(job->failed, sizeof(job->failed), "zero-fill %s",
                     job->tmp);
            goto fail;
        }
        done += (uint64_t)n;
    }
    if (fsync(fd) != 0) {
        job->errnum = errno;
        snprintf(job->failed, sizeof(job->failed), "fsync %s", job->tmp);
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(job->tmp, job->path) != 0) {
        job->errnum = errno;
        snprintf(job->failed, sizeof(job->failed), "rename to %s", job->path);
        goto fail;
    }
    if (tarn_fsync_dir(job->dir, &e) != TARN_OK) {
        job->errnum = EIO;
        snprintf(job->failed, sizeof(job->failed), "%s", e.msg);
    }
    return;
fail:
    if (fd >= 0)
        close(fd);
    unlink(job->tmp);
}

void
walstore_prealloc_abandon(walstore *w, walstore_prealloc_job *job)
{
    (void)job;
    w->prealloc_inflight = false;
}

tarn_rc
walstore_prealloc_finish(walstore *w, walstore_prealloc_job *job, tarn_err *err)
{
    w->prealloc_inflight = false;
    if (job->errnum != 0)
        return tarn_err_errno(err, job->errnum, "%s", job->failed);
    return TARN_OK;
}

/* ---- recovery --------------------------------------------------------- */

typedef struct recover_ctx {
    uint64_t records;
} recover_ctx;

static tarn_rc
count_record(void *arg, const walscan_rec *r, tarn_err *err)
{
    (void)r;
    (void)err;
    ((recover_ctx *)arg)->records++;
    return TARN_OK;
}

/* Zero the tail of segment @p segno from @p off up to the first all-zero
 * page; returns the bytes zeroed. */
static tarn_rc
zero_tail(walstore *w, uint64_t segno, uint64_t off, uint64_t *cut,
          tarn_err *err)
{
    static const uint8_t zero[PG_XLOG_BLCKSZ];
    uint8_t page[PG_XLOG_BLCKSZ];
    char path[PATH_MAX];
    int which = seg_exists(w, segno), fd;
    tarn_rc rc = TARN_OK;

    *cut = 0;
    if (which < 0)
        return TARN_OK;
    seg_path(w, segno, which == 1, path);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return tarn_err_errno(err, errno, "open %s", path);
    while (off < w->o.seg_size) {
        uint64_t page_off = off - off % PG_XLOG_BLCKSZ;
        size_t in = (size_t)(off - page_off);
        ssize_t r = pread(fd, page, sizeof(page), (off_t)page_off);
        if (r != (ssize_t)sizeof(page)) {
            rc = tarn_err_errno(err, r < 0 ? errno : EIO, "read %s", path);
            break;
        }
        if (memcmp(page + in, zero, sizeof(page) - in) == 0) {
            if (in == 0)
                break; /* a clean page: nothing was written past here */
        } else {
            size_t n = sizeof(page) - in;
            if (pwrite(fd, zero, n, (off_t)off) != (ssize_t)n) {
                rc = tarn_err_errno(err, errno, "zero %s", path);
                break;
            }
            *cut += n;
        }
        off = page_off + PG_XLOG_BLCKSZ;
    }
    if (rc == TARN_OK && *cut > 0 && fsync(fd) != 0)
        rc = tarn_err_errno(err, errno, "fsync %s", path);
    close(fd);
    return rc;
}

/*
 * Read the unwritten rest of segment @p segno, from the page holding
 * @p off, into the page cache as 4 KiB folios (no readahead), as a fresh
 * segment's preallocation leaves it.  Appends then never wait for a disk
 * read on the reactor, and never land in a large folio.  Best effort: a
 * failure here only costs speed.
 */
static void
warm_tail(walstore *w, uint64_t segno, uint64_t off, uint8_t *buf, size_t cap)
{
    char path[PATH_MAX];
    int which = seg_exists(w, segno), fd;

    if (which < 0)
        return;
    seg_path(w, segno, which == 1, path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    for (off -= off % WAL_PAGE; off < w->o.seg_size;) {
        size_t n = w->o.seg_size - off < cap ? w->o.seg_size - off : cap;
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r <= 0)
            break;
        off += (uint64_t)r;
    }
    close(fd);
}

tarn_rc
walstore_recover(walstore *w, tarn_lsn from, tarn_lsn prev, bool from_mid,
                 walstore_end *out, tarn_err *err)
{
    walscan_opts so = {.seg_size = w->o.seg_size,
                       .sysid = w->o.sysid,
                       .tli = w->o.tli,
                       .start = from,
                       .mid_record = from_mid,
                       .prev = prev};
    recover_ctx ctx = {0};
    uint8_t *buf = NULL;
    uint64_t segno = from / w->o.seg_size, off = from % w->o.seg_size;
    uint64_t end_segno, lowest = UINT64_MAX;
    walscan *s = NULL;
    DIR *d = NULL;
    struct dirent *de;
    tarn_err e;
    tarn_rc rc;

    memset(out, 0, sizeof(*out));
    if ((rc = walscan_create(&so, &s, err)) != TARN_OK)
        return rc;
    buf = malloc(1 << 20);
    if (buf == NULL) {
        rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(out->stop_reason, sizeof(out->stop_reason),
             "no more segment files");
    /* Scan forward until the WAL stops being valid or the files end. */
    for (bool going = true; going; segno++, off = 0) {
        char path[PATH_MAX];
        int which = seg_exists(w, segno), fd;
        if (which < 0)
            break;
        seg_path(w, segno, which == 1, path);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = tarn_err_errno(err, errno, "open %s", path);
            goto done;
        }
        /* No readahead: it would fill the page cache with large folios,
         * which the appends to come would then write back whole. */
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
        while (off < w->o.seg_size) {
            size_t n = (size_t)(w->o.seg_size - off);
            if (n > (1 << 20))
                n = 1 << 20;
            ssize_t r = pread(fd, buf, n, (off_t)off);
            if (r <= 0) {
                snprintf(out->stop_reason, sizeof(out->stop_reason),
                         "%s is short", path);
                going = false;
                break;
            }
            if (walscan_feed(s, buf, (size_t)r, count_record, &ctx, &e)
                != TARN_OK) {
                snprintf(out->stop_reason, sizeof(out->stop_reason), "%s",
                         e.msg);
                going = false;
                break;
            }
            off += (uint64_t)r;
        }
        close(fd);
    }
    out->end = walscan_boundary(s) ? walscan_boundary(s) : from;
    out->last_start = walscan_last_start(s);
    out->records = ctx.records;

    /* Make the files say the same: zero the torn tail, drop what follows,
     * name complete segments finally and the current one partially. */
    end_segno = out->end / w->o.seg_size;
    if (out->end % w->o.seg_size != 0) {
        rc = zero_tail(w, end_segno, out->end % w->o.seg_size, &out->cut_bytes,
                       err);
        if (rc != TARN_OK)
            goto done;
    }
    d = opendir(w->dir);
    if (d == NULL) {
        rc = tarn_err_errno(err, errno, "open %s", w->dir);
        goto done;
    }
    while ((de = readdir(d)) != NULL) {
        uint32_t tli;
        uint64_t no;
        bool partial;
        char path[PATH_MAX], final[PATH_MAX];
        if (strcmp(de->d_name, "waltmp") == 0) {
            snprintf(path, sizeof(path), "%s/waltmp", w->dir);
            unlink(path);
            continue;
        }
        if (!pg_wal_file_parse(de->d_name, w->o.seg_size, &tli, &no, &partial)
            || tli != w->o.tli)
            continue;
        snprintf(path, sizeof(path), "%s/%s", w->dir, de->d_name);
        bool beyond =
            out->end % w->o.seg_size == 0 ? no >= end_segno : no > end_segno;
        if (beyond) {
            if (unlink(path) != 0) {
                rc = tarn_err_errno(err, errno, "remove %s", path);
                goto done;
            }
            continue;
        }
        if (no < lowest)
            lowest = no;
        seg_path(w, no, true, final);
        if (no < end_segno && partial) {
            if (rename(path, final) != 0) {
                rc = tarn_err_errno(err, errno, "rename %s", path);
                goto done;
            }
        } else if (no == end_segno && !partial) {
            char part[PATH_MAX];
            seg_path(w, no, false, part);
            if (rename(path, part) != 0) {
                rc = tarn_err_errno(err, errno, "rename %s", path);
                goto done;
            }
        }
    }
    if ((rc = tarn_fsync_dir(w->dir, err)) != TARN_OK)
        goto done;
    warm_tail(w, end_segno, out->end % w->o.seg_size, buf, 1 << 20);
    w->start = lowest == UINT64_MAX ? out->end - out->end % w->o.seg_size
                                    : lowest * w->o.seg_size;
    w->write_pos = w->synced = out->end;
    seg_reset(&w->cur);
    w->cur.segno = end_segno;
done:
    if (d != NULL)
        closedir(d);
    free(buf);
    walscan_destroy(s);
    return rc;
}
