/*
 * wal.h - a timeline's WAL on disk: 16 MiB (or other) segment files named
 * and laid out exactly as PostgreSQL's own, so pg_waldump reads them.
 *
 * The newest segment carries ".partial" until it is complete and durable.
 * New segments are preallocated (zero-filled, fsynced, then renamed into
 * place) ahead of need.  Writes happen on the reactor (they land in the page
 * cache); the blocking parts (preallocation, fdatasync, renames, directory
 * fsyncs) are packaged as jobs that run on the worker pool:
 *
 *   reactor:  walstore_*_prepare(job)  -> worker: walstore_*_run(job)
 *             -> reactor: walstore_*_finish(job)
 *
 * A job owns duplicated descriptors and copied paths, so nothing it
 * touches can change under it while it runs.
 *
 * Reactor thread only, except the *_run functions.
 */
#ifndef TARN_STORAGE_WAL_H
#define TARN_STORAGE_WAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"

typedef struct walstore walstore;

typedef struct walstore_opts {
    const char *dir;   /**< the timeline's wal/ directory; made if missing */
    uint32_t seg_size; /**< power of two, 1 MiB .. 1 GiB */
    uint32_t tli;      /**< PostgreSQL timeline of the files (1) */
    uint64_t sysid;    /**< system identifier in the long page headers */
} walstore_opts;

/** What walstore_recover() found. */
typedef struct walstore_end {
    tarn_lsn end;                   /**< end of the last valid record */
    tarn_lsn last_start;            /**< start of that record (0: none seen) */
    uint64_t records;               /**< records checked */
    uint64_t cut_bytes;             /**< bytes of torn tail zeroed */
    char stop_reason[TARN_ERR_MSG]; /**< why the scan stopped */
} walstore_end;

#define WALSTORE_MAX_SYNC 4

/**
 * Sync jobs that may be in flight at once.  One: a running job keeps
 * syncing new writes to the same segment itself (walstore_sync_again).
 */
#define WALSTORE_MAX_INFLIGHT 1

/** A group fsync: everything written since the previous one. */
typedef struct walstore_sync_job {
    tarn_lsn upto;    /**< bytes below this are durable when it succeeds */
    uint64_t seg_gen; /**< walstore_segment_gen() when prepared */
    int fds[WALSTORE_MAX_SYNC];
    int nfds;
    int nrenames;
    char rename_from[2][PATH_MAX], rename_to[2][PATH_MAX];
    char dir[PATH_MAX];
    int64_t run_us; /**< time spent in fdatasync */
    int errnum;     /**< 0 on success */
    char failed[PATH_MAX + 64];
} walstore_sync_job;

/** Creation of one zero-filled segment under its ".partial" name. */
typedef struct walstore_prealloc_job {
    uint64_t segno;
    uint32_t seg_size;
    char tmp[PATH_MAX], path[PATH_MAX], dir[PATH_MAX];
    int errnum;
    char failed[PATH_MAX + 64];
} walstore_prealloc_job;

/**
 * Open the store in @p o->dir (creating the directory).  Nothing is read
 * yet; call walstore_recover() for existing WAL or walstore_begin() for
 * new WAL.
 */
tarn_rc walstore_open(const walstore_opts *o, walstore **out, tarn_err *err);

/** Close all files.  NULL-safe.  Jobs in flight must have finished. */
void walstore_close(walstore *w);

/**
 * Start a store that has no WAL yet: writing begins at @p start, which
 * must be a segment boundary.
 */
tarn_rc walstore_begin(walstore *w, tarn_lsn start, tarn_err *err);

/**
 * Find the end of valid WAL after a restart, and make the files clean.
 *
 * Scans from @p from: a record boundary whose preceding record starts at
 * @p prev, or (when @p from_mid) a segment start where a record may be in
 * progress.  Every record's CRC and xl_prev are checked; the scan stops at
 * the first that fails, or where the files end.  Then the torn tail after
 * that point is zeroed, segments past it are removed, complete segments
 * get their final names, and all of it is fsynced.  Writing resumes at
 * out->end.  Blocking: runs at start-up, before the reactor serves.
 */
tarn_rc walstore_recover(walstore *w, tarn_lsn from, tarn_lsn prev,
                         bool from_mid, walstore_end *out, tarn_err *err);

/**
 * Append at the write position.
 *
 * @param[out] written  bytes written, also on failure
 * @return TARN_OK; TARN_AGAIN when the next segment is not preallocated
 * yet (start a prealloc job and retry when it is done); TARN_ENOSPC when
 * the disk is full; TARN_EIO.
 */
tarn_rc walstore_write(walstore *w, const uint8_t *data, size_t len,
                       size_t *written, tarn_err *err);

/**
 * Move the write position back to @p lsn (at least the durable position),
 * to receive the bytes after it again.  The files are not changed: the
 * bytes written again are the same bytes.
 */
tarn_rc walstore_set_write_pos(walstore *w, tarn_lsn lsn, tarn_err *err);

/** Read @p len bytes at @p lsn from the files (TARN_ENOTFOUND if absent). */
tarn_rc walstore_read(walstore *w, tarn_lsn lsn, uint8_t *buf, size_t len,
                      tarn_err *err);

tarn_lsn walstore_write_pos(const walstore *w);
/** Bytes below this are durable. */
tarn_lsn walstore_synced_pos(const walstore *w);
/** Where this store's WAL begins. */
tarn_lsn walstore_start_pos(const walstore *w);

/** True if bytes were written (or a rename is due) since the last
 * prepared sync, and another sync job may start. */
bool walstore_sync_wanted(const walstore *w);

/**
 * Package a group fsync of everything written so far (and the renames of
 * segments that it completes).  At most WALSTORE_MAX_INFLIGHT jobs may be
 * in flight; they may finish in any order.
 */
tarn_rc walstore_sync_prepare(walstore *w, walstore_sync_job *job,
                              tarn_err *err);

/** Worker thread: fdatasync, rename, fsync the directory.  The job keeps
 * its descriptors open for walstore_sync_again(). */
void walstore_sync_run(walstore_sync_job *job);

/**
 * Worker thread: fdatasync the job's descriptors once more, to make
 * later writes to the same segments durable.  Records a failure in the
 * job like walstore_sync_run().  @return 0, or the errno.
 */
int walstore_sync_again(walstore_sync_job *job);

/**
 * Apply a finished sync and close its descriptors.  @p synced is the
 * write position its fdatasyncs covered (job->upto, or more after
 * walstore_sync_again).  On failure it returns TARN_EIO with the reason and
 * the store must not be written again: after a failed fsync the state of
 * the page cache is unknown, so nothing past the last good sync may ever
 * be acknowledged (PostgreSQL's lesson).
 */
tarn_rc walstore_sync_finish(walstore *w, walstore_sync_job *job,
                             tarn_lsn synced, tarn_err *err);

/**
 * A number that changes whenever writes move to another segment file, so
 * that a running sync job (whose descriptors were taken before) knows it
 * no longer covers new writes.
 */
uint64_t walstore_segment_gen(const walstore *w);

/** Give up a prepared sync job that will not run (shutting down): its
 * descriptors are closed, and the next prepare covers the same bytes. */
void walstore_sync_abandon(walstore *w, walstore_sync_job *job);

/**
 * Does the segment at the write position, or the one after it, need to
 * be created?  Returns true and fills @p job if so (and no prealloc job is
 * in flight).
 */
bool walstore_prealloc_prepare(walstore *w, walstore_prealloc_job *job);

/** Worker thread: create, zero-fill, fsync and rename one segment. */
void walstore_prealloc_run(walstore_prealloc_job *job);

/** Give up a prepared prealloc job that will not run. */
void walstore_prealloc_abandon(walstore *w, walstore_prealloc_job *job);

/** Apply a finished prealloc; TARN_ENOSPC or TARN_EIO on failure. */
tarn_rc walstore_prealloc_finish(walstore *w, walstore_prealloc_job *job,
                                 tarn_err *err);

#endif
