/*
 * untar.h - a streaming extractor for the tar archives tarnd's basebackup
 * writes (GNU or ustar headers: regular files and directories, GNU long
 * names).  Bytes are fed in pieces of any size, as they arrive.
 *
 * Every path must stay inside the target directory: an absolute path, a
 * ".." component, or any entry type other than a file or a directory
 * (links, devices, pax headers) is an error.  Files are created with
 * O_EXCL and O_NOFOLLOW, so nothing that exists is overwritten.
 */
#ifndef TARN_CLI_UNTAR_H
#define TARN_CLI_UNTAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/core/err.h"

typedef struct untar untar;

typedef struct untar_opts {
    const char *dir; /**< the target directory; it must exist */
    bool chown;      /**< give every entry to uid:gid */
    uid_t uid;
    gid_t gid;
} untar_opts;

tarn_rc untar_new(const untar_opts *o, untar **out, tarn_err *err);

/** Extract the next @p len bytes of the archive. */
tarn_rc untar_feed(untar *u, const void *data, size_t len, tarn_err *err);

/** The archive is complete: its end-of-archive blocks were seen. */
tarn_rc untar_finish(untar *u, tarn_err *err);

/** Entries written so far. */
uint64_t untar_entries(const untar *u);

/** NULL-safe; closes a file left open by an error. */
void untar_free(untar *u);

#endif
