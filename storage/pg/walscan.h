/*
 * walscan.h - a streaming reader of PostgreSQL 15 WAL that finds record
 * boundaries.
 *
 * Bytes go in as they arrive, in pieces of any size; complete records come
 * out through a callback once their CRC has been checked.  It validates
 * every page header, follows records and record headers across pages,
 * checks each record's xl_prev against the previous record, skips the dead
 * rest of a segment after XLOG_SWITCH and drops a record that an
 * overwrite-contrecord replaced.  Memory is O(1) unless whole records are
 * asked for (assemble mode).
 *
 * It serves three callers: the WAL service (where does the last complete
 * record end?), recovery at start-up (where does valid WAL end?) and, in
 * assemble mode, ingest.
 */
#ifndef TARN_STORAGE_PG_WALSCAN_H
#define TARN_STORAGE_PG_WALSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"

typedef struct walscan walscan;

/** One complete, checked record. */
typedef struct walscan_rec {
    tarn_lsn start; /**< LSN of the record header */
    tarn_lsn end;   /**< EndRecPtr: past the record, MAXALIGNed; for
                         XLOG_SWITCH the start of the next segment */
    tarn_lsn prev;  /**< xl_prev */
    uint32_t tot_len;
    uint32_t xid;
    uint8_t info;
    uint8_t rmid;
    /** The whole record, tot_len bytes (header first), in assemble mode;
     * NULL otherwise.  Valid only during the callback. */
    const uint8_t *data;
} walscan_rec;

/** Called for each record; a non-OK return stops walscan_feed() with it. */
typedef tarn_rc (*walscan_fn)(void *arg, const walscan_rec *rec, tarn_err *err);

typedef struct walscan_opts {
    uint32_t seg_size; /**< WAL segment size, a power of two */
    uint64_t sysid;    /**< expected system identifier; 0 = learn it */
    uint32_t tli;      /**< expected timeline; 0 = learn it */
    tarn_lsn start;    /**< LSN of the first byte that will be fed */
    /**
     * true: @p start is a page boundary that may sit inside a record; the
     * scanner skips the continuation and starts at the first record that
     * begins on this page or later.  false: @p start is a record boundary.
     */
    bool mid_record;
    tarn_lsn prev; /**< start of the record before @p start; 0 = unknown */
    bool assemble; /**< hand out whole records */
} walscan_opts;

/**
 * Create a scanner.
 * @return TARN_OK, or TARN_EINVAL for a bad segment size, or a mid-record
 * start that is not a page boundary, or an unaligned record start.
 */
tarn_rc walscan_create(const walscan_opts *o, walscan **out, tarn_err *err);

void walscan_destroy(walscan *s);

/**
 * Feed the next @p len bytes of the stream, calling @p cb (may be NULL)
 * for every record they complete.
 *
 * @return TARN_OK when every byte was consumed; TARN_ECONFLICT when a
 * record's xl_prev does not point at the previous record (the stream
 * diverged); TARN_ECORRUPT for anything else that is not valid WAL (a bad
 * page header, CRC or length; a zero length is the usual end of WAL).
 * The message names the LSN.  After a failure, every later call fails the
 * same way.  An error from @p cb is returned as it is.
 */
tarn_rc walscan_feed(walscan *s, const uint8_t *data, size_t len, walscan_fn cb,
                     void *arg, tarn_err *err);

/** The LSN of the next byte the scanner expects. */
tarn_lsn walscan_pos(const walscan *s);

/**
 * The last record boundary at or before walscan_pos(): the end of the
 * last complete record, or the start position (after the skipped
 * continuation in mid-record mode); 0 when none is known yet.  An
 * XLOG_SWITCH record counts only once the dead rest of its segment has
 * been fed, because its end is the end of the segment.
 */
tarn_lsn walscan_boundary(const walscan *s);

/** The start of the record that ends at walscan_boundary() (initially
 * opts.prev). */
tarn_lsn walscan_last_start(const walscan *s);

/** System identifier and timeline seen in page headers (0 if none yet). */
uint64_t walscan_sysid(const walscan *s);
uint32_t walscan_tli(const walscan *s);

#endif
