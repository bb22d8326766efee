/*
 * fsutil.h - the durable file-system idioms: fsync a directory, write a
 * small file atomically, create a directory path, read a small file.
 *
 * These block; on the server they run at start-up or on the worker pool.
 */
#ifndef TARN_CORE_FSUTIL_H
#define TARN_CORE_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "server/core/err.h"

/** fsync() the directory @p path, so that entries created in it persist. */
tarn_rc tarn_fsync_dir(const char *path, tarn_err *err);

/**
 * Replace @p path with @p len bytes, atomically and durably: write
 * "<path>.tmp", fsync it, rename it over @p path, fsync the directory.
 * A crash leaves either the old or the new content, never a mix.
 */
tarn_rc tarn_write_file_atomic(const char *path, const void *data, size_t len,
                               mode_t mode, tarn_err *err);

/**
 * Create @p path and any missing parents with @p mode, fsyncing each
 * parent whose entries changed.  An existing directory is not an error.
 */
tarn_rc tarn_mkdir_p(const char *path, mode_t mode, tarn_err *err);

/**
 * Read a whole file of at most @p max bytes into a NUL-terminated,
 * malloc'd buffer.  TARN_ENOTFOUND if it does not exist, TARN_ETOOBIG if
 * it is larger than @p max.  The caller frees *out.
 */
tarn_rc tarn_read_file(const char *path, size_t max, char **out, size_t *len,
                       tarn_err *err);

/**
 * Remove @p path and everything below it, then fsync its parent.  A path
 * that does not exist is not an error.
 */
tarn_rc tarn_rmtree(const char *path, tarn_err *err);

/** Write all of @p len bytes, retrying short writes and EINTR. */
tarn_rc tarn_write_all(int fd, const void *data, size_t len, const char *what,
                       tarn_err *err);

#endif
