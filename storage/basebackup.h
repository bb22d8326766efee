/*
 * basebackup.h - a base backup of a timeline at an LSN, as a tar stream
 * that a stock PostgreSQL 15 starts from as a primary at exactly that LSN
 * (docs/protocols.md, "basebackup"; docs/storage-format.md, "Base
 * backups").
 *
 * Unlike Neon's lazy base backup, the archive carries every relation fork
 * in full, rebuilt page by page through the read path at the LSN, plus
 * the SLRUs, relmapper, two-phase and config files, a generated
 * pg_control, and the WAL segment that holds the LSN: the timeline's real
 * WAL up to it, then a shutdown checkpoint record that tarn writes there.
 *
 * The generator is resumable and bounded: bb_next() appends about
 * @p budget bytes and returns, so memory does not grow with the database
 * and the caller (the page service) decides when to go on.  Reads go
 * through repo on every call, by timeline id, so a timeline deleted
 * mid-stream is an error, never a dangling pointer.
 *
 * Reactor thread only (the reads are the page server's).
 */
#ifndef TARN_STORAGE_BASEBACKUP_H
#define TARN_STORAGE_BASEBACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/repo.h"

struct evbuffer;
typedef struct basebackup basebackup;

typedef struct bb_opts {
    repo *repo;
    tarn_id tenant, tl;
    bool latest; /**< at last_record_lsn; else at @p lsn */
    tarn_lsn lsn;
    bool gzip;    /**< a gzip member around the tar (zlib, fastest level) */
    bool replica; /**< --replica: accepted; changes nothing (no slots) */
} bb_opts;

/**
 * Parse the arguments of `basebackup <tenant> <timeline> [lsn|latest]
 * [--gzip] [--replica]` (without the command word) into @p o (its repo
 * is left alone).  The third token is an LSN or `latest` unless it
 * starts with `--`; flags come in any order, each at most once.
 *
 * @return TARN_OK or TARN_EINVAL with a message for the client.
 */
tarn_rc bb_parse_args(char *const *args, int nargs, bb_opts *o, tarn_err *err);

/**
 * Check everything that can be checked before the first byte: the
 * timeline, the LSN (within the timeline and a record boundary),
 * pg_control and the checkpoint state, tablespaces; and build pg_control
 * and the checkpoint record.
 *
 * @return TARN_OK; TARN_ENOTFOUND (unknown timeline), TARN_EINVAL (an LSN
 * out of range or not a record boundary), TARN_EPRECOND (a timeline
 * without data), TARN_EUNSUPPORTED (a user tablespace), TARN_ECORRUPT,
 * TARN_ENOMEM.
 */
tarn_rc bb_create(const bb_opts *o, basebackup **out, tarn_err *err);

/** The backup LSN: a record's end; PostgreSQL starts there. */
tarn_lsn bb_lsn(const basebackup *bb);

/** Where tarn's shutdown checkpoint record starts (pg_control's
 * checkPoint: the LSN, or just past a page header there). */
tarn_lsn bb_checkpoint_lsn(const basebackup *bb);

/**
 * Append the next piece of the archive to @p out: about @p budget bytes
 * of tar (before compression; a little more to finish a header).
 *
 * @param[out] done  true once the archive is complete
 * @return TARN_OK, or the read error that ends the backup (the archive
 * is then incomplete).
 */
tarn_rc bb_next(basebackup *bb, struct evbuffer *out, size_t budget, bool *done,
                tarn_err *err);

/** Bytes of tar produced so far (before compression). */
uint64_t bb_tar_bytes(const basebackup *bb);

void bb_destroy(basebackup *bb);

#endif
