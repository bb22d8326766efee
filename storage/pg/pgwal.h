/*
 * pgwal.h - the physical layout of PostgreSQL 15 WAL: page headers, the
 * record header and the constants tarn reads and writes
 * (reference/pg15-wal-and-redo.md, section 1).
 *
 * Layouts are given as byte offsets, read with the little-endian helpers
 * of server/core/types.h, never by casting buffers to structs.
 */
#ifndef TARN_STORAGE_PG_PGWAL_H
#define TARN_STORAGE_PG_PGWAL_H

#include <stdbool.h>
#include <stdint.h>

#include "server/core/types.h"

#define PG_XLOG_BLCKSZ     8192
#define PG_XLOG_PAGE_MAGIC 0xD110 /* PostgreSQL 15 */
#define PG_MAXALIGN(x)     (((x) + 7) & ~(uint64_t)7)

/* Page header: short (24 bytes) on every page, long (40) on a segment's
 * first page. */
#define PG_SHORT_PHD       24
#define PG_LONG_PHD        40
#define PG_PHD_MAGIC       0  /* u16 */
#define PG_PHD_INFO        2  /* u16 */
#define PG_PHD_TLI         4  /* u32 */
#define PG_PHD_PAGEADDR    8  /* u64 */
#define PG_PHD_REM_LEN     16 /* u32 */
#define PG_PHD_SYSID       24 /* u64, long header only */
#define PG_PHD_SEG_SIZE    32 /* u32, long header only */
#define PG_PHD_XLOG_BLCKSZ 36 /* u32, long header only */

#define PG_XLP_FIRST_IS_CONTRECORD           0x0001
#define PG_XLP_LONG_HEADER                   0x0002
#define PG_XLP_BKP_REMOVABLE                 0x0004
#define PG_XLP_FIRST_IS_OVERWRITE_CONTRECORD 0x0008
#define PG_XLP_ALL_FLAGS                     0x000F

/* Record header, XLogRecord: 24 bytes. */
#define PG_REC_HDR     24
#define PG_REC_TOT_LEN 0  /* u32 */
#define PG_REC_XID     4  /* u32 */
#define PG_REC_PREV    8  /* u64 */
#define PG_REC_INFO    16 /* u8 */
#define PG_REC_RMID    17 /* u8 */
#define PG_REC_CRC     20 /* u32 */
/* The largest record PostgreSQL can write (MaxAllocSize). */
#define PG_REC_MAX_LEN 0x3fffffffu

/* Resource managers and the XLOG record types tarn acts on. */
#define PG_RM_XLOG_ID                0
#define PG_RM_MAX_BUILTIN_ID         21 /* RM_LOGICALMSG_ID in PostgreSQL 15 */
#define PG_RM_MIN_CUSTOM_ID          128
#define PG_XLOG_SWITCH               0x40
#define PG_XLOG_OVERWRITE_CONTRECORD 0xD0

static inline bool
pg_rmid_valid(uint8_t rmid)
{
    return rmid <= PG_RM_MAX_BUILTIN_ID || rmid >= PG_RM_MIN_CUSTOM_ID;
}

/** Size of the page header at @p lsn (a page boundary). */
static inline uint32_t
pg_page_header_size(tarn_lsn lsn, uint32_t seg_size)
{
    return lsn % seg_size == 0 ? PG_LONG_PHD : PG_SHORT_PHD;
}

/** True for a WAL segment size PostgreSQL accepts: a power of two from
 * 1 MiB to 1 GiB. */
static inline bool
pg_seg_size_valid(uint64_t s)
{
    return s >= (1u << 20) && s <= (1u << 30) && (s & (s - 1)) == 0;
}

/**
 * The file name of segment @p segno on timeline @p tli, as PostgreSQL
 * names it: 24 upper-case hex digits.  @p buf holds at least 25 bytes.
 */
void pg_wal_file_name(char *buf, uint32_t tli, uint64_t segno,
                      uint32_t seg_size);

/**
 * Parse a segment file name ("000000010000000000000003", optionally with
 * ".partial"); returns false if it is not one.
 */
bool pg_wal_file_parse(const char *name, uint32_t seg_size, uint32_t *tli,
                       uint64_t *segno, bool *partial);

#endif
