/*
 * ingest.h - turn PostgreSQL 15 WAL records into versioned values of a
 * timeline (reference/pageserver-internals.md 2, pg15-wal-and-redo.md 4).
 *
 * Every block reference becomes a value under its block key: the page
 * image when the record carries one redo must restore (or, in
 * consistency-image mode, any image), else the record itself.  On top of
 * that, ingest keeps the metadata a page server needs and that has no
 * block reference of its own: relation and SLRU sizes and directories
 * (with zero pages for extension gaps), database create/drop, relation
 * drops from commit and abort records, CLOG status, multixacts, relmapper
 * files, two-phase state, the visibility-map bits that heap records clear
 * through their flags, the checkpoint fields (nextXid, nextOid, nextMulti,
 * the oldest values), and the commit timestamps behind
 * get_lsn_by_timestamp.  Every value is stamped with the record's end LSN.
 *
 * Reactor thread (it writes the timeline's open layer).
 */
#ifndef TARN_STORAGE_INGEST_H
#define TARN_STORAGE_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/log.h"
#include "storage/pg/walscan.h"
#include "storage/timeline.h"

typedef struct ingest ingest;

typedef struct ingest_opts {
    timeline *tl;
    /** Store verification images (apply bit clear) as page versions. */
    bool trust_consistency_images;
    tlog *log;
    const char *logctx;
} ingest_opts;

typedef struct ingest_stats {
    uint64_t records;
    uint64_t bytes;      /**< total record bytes */
    uint64_t values;     /**< values put */
    uint64_t images;     /**< page images stored */
    uint64_t pg_records; /**< record values stored */
    uint64_t vm_clears;
    uint64_t zero_pages; /**< gap fills and SLRU zero pages */
    uint64_t rels_created, rels_dropped;
    uint64_t commits;
} ingest_stats;

/**
 * Start ingesting into @p o->tl: loads the state that ingest keeps
 * current (checkpoint, directories) from the timeline at its last LSN.
 */
tarn_rc ingest_create(const ingest_opts *o, ingest **out, tarn_err *err);

void ingest_destroy(ingest *ing);

/**
 * Ingest one complete record (walscan assemble mode) and advance the
 * timeline's last_record_lsn to its end.
 *
 * @return TARN_OK; TARN_ECORRUPT for a record that does not decode or
 * whose main data is too short for its type; TARN_EUNSUPPORTED for
 * something tarn cannot represent (CREATE DATABASE ... FILE_COPY from a
 * template whose pages need redo tarn does not have yet); TARN_ENOMEM.
 * A failure may leave values of the failed record in the open layer,
 * above last_record_lsn where no read sees them; the caller must stop
 * ingesting into this timeline (and not freeze its open layer) until a
 * restart re-ingests from disk_consistent_lsn.
 */
tarn_rc ingest_record(ingest *ing, const walscan_rec *rec, tarn_err *err);

void ingest_get_stats(const ingest *ing, ingest_stats *out);

/**
 * Switch consistency-image mode (a timeline override may change it).
 */
void ingest_set_trust(ingest *ing, bool trust);

#endif
