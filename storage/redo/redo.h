/*
 * redo.h - rebuild a page from a base and the values that follow it.
 *
 * The read path collects a key's history back to a value that rebuilds it
 * from nothing (an image, a zero page, or a will_init record) and asks
 * redo to apply the rest, oldest first.  tarn-native values (CLOG sets,
 * multixact offsets and members, visibility-map clears and truncations)
 * are applied here.  A PostgreSQL record is applied by the redo routine
 * of its resource manager; a record whose block carries an image that
 * redo must restore (BKPIMAGE_APPLY) is handled for every resource manager
 * alike, as PostgreSQL does.
 *
 * Pure functions of their inputs (the counters are atomic): safe on any
 * thread.
 */
#ifndef TARN_STORAGE_REDO_REDO_H
#define TARN_STORAGE_REDO_REDO_H

#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/key.h"

/** Counters of what redo did, for /metrics; any thread may bump them. */
typedef struct redo_stats {
    _Atomic uint64_t native;     /**< tarn-native values applied */
    _Atomic uint64_t pg_records; /**< PostgreSQL records applied */
    _Atomic uint64_t images;     /**< record images restored */
    _Atomic uint64_t failures;   /**< values that could not be applied */
} redo_stats;

/**
 * Apply one value to @p page (8 KiB, the object's state before the value).
 * @p lsn is the value's LSN (its record's end).
 *
 * @return TARN_OK; TARN_EUNSUPPORTED for a PostgreSQL record whose redo
 * tarn does not implement (the message names the resource manager, the
 * record type, the LSN and the block); TARN_ECORRUPT for a value that
 * does not fit the page.
 */
tarn_rc redo_apply(redo_stats *st, uint8_t *page, const tkey *key, tarn_lsn lsn,
                   const uint8_t *val, size_t len, tarn_err *err);

/**
 * PostgreSQL's PageInit(page, 8192, special): zero the page and set the
 * header for an empty page with @p special bytes of special space.
 */
void pg_page_init(uint8_t *page, size_t special);

/** pd_lsn as PostgreSQL stores it: {xlogid, xrecoff}. */
void pg_page_set_lsn(uint8_t *page, tarn_lsn lsn);
tarn_lsn pg_page_get_lsn(const uint8_t *page);

/** True for a page that was never initialised (pd_upper == 0). */
int pg_page_is_new(const uint8_t *page);

#endif
