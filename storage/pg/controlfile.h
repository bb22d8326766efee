/*
 * controlfile.h - read PostgreSQL 15's pg_control (global/pg_control): the
 * fields tarn needs to import a cluster, checked the way PostgreSQL checks
 * them (CRC-32C over the struct, version, block sizes).
 */
#ifndef TARN_STORAGE_PG_CONTROLFILE_H
#define TARN_STORAGE_PG_CONTROLFILE_H

#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/pg/pgdefs.h"

typedef struct pg_control {
    uint64_t system_id;
    uint32_t version, catalog_version;
    uint32_t state;             /**< DBState */
    tarn_lsn checkpoint;        /**< start of the last checkpoint record */
    uint8_t ckpt[PG_CKPT_SIZE]; /**< a copy of that record's CheckPoint */
    uint32_t wal_seg_size;
    uint32_t data_checksum_version;
} pg_control;

/**
 * Parse and check the 8 KiB pg_control file in @p buf.
 *
 * @return TARN_OK; TARN_ECORRUPT (bad CRC, short file); TARN_EUNSUPPORTED
 * (another PostgreSQL version or block size).
 */
tarn_rc pg_control_parse(const uint8_t *buf, size_t len, pg_control *out,
                         tarn_err *err);

/**
 * Turn the 8 KiB pg_control image in @p buf into that of a cluster shut
 * down cleanly at a checkpoint record that starts at @p ckpt_lsn and
 * carries @p ckpt: state DB_SHUTDOWNED, time @p now (Unix seconds),
 * checkPoint and checkPointCopy set, minRecoveryPoint and the backup
 * fields cleared, the CRC-32C recomputed.  Every other field is kept.
 */
void pg_control_set_shutdown(uint8_t *buf, tarn_lsn ckpt_lsn,
                             const uint8_t ckpt[PG_CKPT_SIZE], int64_t now);

/** "shut down", "in production", ... as pg_controldata prints them. */
const char *pg_db_state_name(uint32_t state);

#endif
