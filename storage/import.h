/*
 * import.h - make a timeline from a cleanly shut-down PostgreSQL 15 data
 * directory (the output of initdb, or an existing cluster).
 *
 * Every relation block, SLRU page (pg_xact, pg_multixact), relmapper file,
 * two-phase state file, pg_control and the checkpoint state become image
 * layers at the import LSN: the end of the shutdown checkpoint record
 * that pg_control points to.  The WAL segment holding that record is
 * copied too, up to its end, so that the same data directory can be
 * started as a compute and attached: its next record continues tarn's WAL
 * (its xl_prev is the checkpoint's start).
 */
#ifndef TARN_STORAGE_IMPORT_H
#define TARN_STORAGE_IMPORT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/log.h"
#include "storage/layerfile.h"
#include "storage/pg/controlfile.h"

/**
 * Check, quickly, that @p pgdata can be imported: an absolute path to a
 * PostgreSQL 15 data directory (PG_VERSION says 15), with a valid
 * pg_control, shut down cleanly, without data checksums, on WAL timeline
 * 1.
 *
 * @return TARN_OK with @p out filled; TARN_EINVAL naming what is wrong
 * (missing, not a data directory, another version); TARN_ECONFLICT when it
 * was not shut down cleanly (the message says how to stop it);
 * TARN_EUNSUPPORTED for checksums or another timeline.
 */
tarn_rc import_check(const char *pgdata, pg_control *out, tarn_err *err);

typedef struct import_opts {
    const char *pgdata;
    const char *layer_dir; /**< exists */
    const char *wal_dir;   /**< exists, empty */
    tarn_id tenant, timeline;
    tlog *log;
    const char *logctx;
    tarn_codec codec; /**< how the image layers compress pages */
} import_opts;

typedef struct import_result {
    pg_control ctl;
    tarn_lsn lsn;        /**< import LSN: end of the checkpoint record */
    tarn_lsn ckpt_start; /**< start of that record */
    tarn_lsn wal_start;  /**< first byte of the copied WAL (segment start) */
    layer_desc *layers;  /**< image layers written, key order */
    char (*names)[LAYER_NAME_MAX];
    size_t nlayers;
    uint64_t rel_pages, slru_pages, bytes;
    size_t nrels, ndbs;
} import_result;

/**
 * Import (blocking; a worker thread).  Progress is logged every 256 MiB.
 * On failure the files already written stay; the caller removes the
 * timeline directory.
 */
tarn_rc import_run(const import_opts *o, import_result *out, tarn_err *err);

void import_result_free(import_result *r);

#endif
