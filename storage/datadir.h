/*
 * datadir.h - tarnd's data directory: its layout version and the exclusive
 * lock that keeps a second tarnd out.
 *
 * Layout (docs/architecture.md, "On disk"):
 *   <data_dir>/LAYOUT_VERSION   "1\n", written once, atomically
 *   <data_dir>/tarnd.pid        lock file: flock()ed, holds the owner's pid
 *   <data_dir>/tarnd.log        optional: where scripts/up sends the log
 *   <data_dir>/catalog/         the LMDB environment
 *   <data_dir>/tenants/         per-tenant WAL and layer files
 */
#ifndef TARN_STORAGE_DATADIR_H
#define TARN_STORAGE_DATADIR_H

#include "server/core/err.h"

/** The layout this build reads and writes. */
#define DATADIR_LAYOUT_VERSION 1

typedef struct datadir datadir;

/**
 * Open (creating on first use) the data directory at @p path and take its
 * lock.
 *
 * @return TARN_OK; TARN_EBUSY when another process holds the lock (the
 * message names its pid); TARN_EUNSUPPORTED for another layout version;
 * TARN_EINVAL when @p path is a non-empty directory that is not a tarn data
 * directory; TARN_EIO or TARN_ENOSPC on file-system errors.
 */
tarn_rc datadir_open(const char *path, datadir **out, tarn_err *err);

/** Release the lock and free.  NULL-safe. */
void datadir_close(datadir *d);

/** The absolute path of the directory. */
const char *datadir_path(const datadir *d);

/** The absolute path of the catalog's LMDB directory. */
const char *datadir_catalog_path(const datadir *d);

/** True if this open created the directory (first start). */
int datadir_is_new(const datadir *d);

#endif
