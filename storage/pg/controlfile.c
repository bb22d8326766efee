/*
 * controlfile.c - pg_control parsing, and the shutdown state a base
 * backup's pg_control gets.
 */
#include "storage/pg/controlfile.h"

#include <string.h>

#include "server/core/crc32c.h"

const char *
pg_db_state_name(uint32_t state)
{
    static const char *const names[] = {
        "starting up",   "shut down",         "shut down in recovery",
        "shutting down", "in crash recovery", "in archive recovery",
        "in production"};

    return state < TARN_ARRAY_LEN(names) ? names[state] : "unrecognized";
}

tarn_rc
pg_control_parse(const uint8_t *buf, size_t len, pg_control *out, tarn_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len < PG_CTL_CRC + 4)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "pg_control is %zu bytes, too short", len);
    out->version = tarn_get_u32(buf + PG_CTL_VERSION);
    if (out->version != PG_CONTROL_VERSION)
        return tarn_err_set(err, TARN_EUNSUPPORTED,
                            "pg_control version %u is not PostgreSQL 15's "
                            "(%d)",
                            out->version, PG_CONTROL_VERSION);
    if (tarn_get_u32(buf + PG_CTL_CRC) != tarn_crc32c(buf, PG_CTL_CRC))
        return tarn_err_set(err, TARN_ECORRUPT,
                            "pg_control fails its CRC check");
    if (tarn_get_u32(buf + PG_CTL_BLCKSZ) != PG_BLCKSZ
        || tarn_get_u32(buf + PG_CTL_XLOG_BLCKSZ) != PG_BLCKSZ)
        return tarn_err_set(err, TARN_EUNSUPPORTED,
                            "the cluster uses a block size of %u (WAL %u); "
                            "tarn supports 8192",
                            tarn_get_u32(buf + PG_CTL_BLCKSZ),
                            tarn_get_u32(buf + PG_CTL_XLOG_BLCKSZ));
    out->system_id = tarn_get_u64(buf + PG_CTL_SYSTEM_ID);
    out->catalog_version = tarn_get_u32(buf + PG_CTL_CATALOG_VERSION);
    out->state = tarn_get_u32(buf + PG_CTL_STATE);
    out->checkpoint = tarn_get_u64(buf + PG_CTL_CHECKPOINT);
    memcpy(out->ckpt, buf + PG_CTL_CHECKPOINT_COPY, PG_CKPT_SIZE);
    out->wal_seg_size = tarn_get_u32(buf + PG_CTL_XLOG_SEG_SIZE);
    out->data_checksum_version =
        tarn_get_u32(buf + PG_CTL_DATA_CHECKSUM_VERSION);
    return TARN_OK;
}

void
pg_control_set_shutdown(uint8_t *buf, tarn_lsn ckpt_lsn,
                        const uint8_t ckpt[PG_CKPT_SIZE], int64_t now)
{
    tarn_put_u32(buf + PG_CTL_STATE, PG_DB_SHUTDOWNED);
    tarn_put_u64(buf + PG_CTL_TIME, (uint64_t)now);
    tarn_put_u64(buf + PG_CTL_CHECKPOINT, ckpt_lsn);
    memcpy(buf + PG_CTL_CHECKPOINT_COPY, ckpt, PG_CKPT_SIZE);
    /* As a clean shutdown leaves them (UpdateControlFile at shutdown). */
    tarn_put_u64(buf + PG_CTL_MIN_RECOVERY_POINT, 0);
    tarn_put_u32(buf + PG_CTL_MIN_RECOVERY_TLI, 0);
    tarn_put_u64(buf + PG_CTL_BACKUP_START, 0);
    tarn_put_u64(buf + PG_CTL_BACKUP_END, 0);
    buf[PG_CTL_BACKUP_END_REQUIRED] = 0;
    tarn_put_u32(buf + PG_CTL_CRC, tarn_crc32c(buf, PG_CTL_CRC));
}
