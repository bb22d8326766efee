/*
 * repo.h - the page server: every timeline's storage engine, driven on
 * the reactor.
 *
 * For each timeline it follows the durable WAL that the WAL service
 * reports, ingests it into the open in-memory layer in bounded slices,
 * freezes the layer at checkpoint_distance or checkpoint_timeout, has a
 * worker write it as a delta layer, commits the layer and
 * disk_consistent_lsn to the catalog in one transaction, writes image
 * layers when delta stacks grow (and on PUT .../checkpoint), and lets the
 * WAL service remove the WAL that the layers now cover.  Timelines are
 * bootstrapped with initdb or imported from a data directory, or branched
 * from another.  Reads (get_page, relation size, database size, LSN by
 * timestamp) follow the LSN rules of the brief.
 *
 * Reactor thread only; the blocking parts run on the worker pool.
 */
#ifndef TARN_STORAGE_REPO_H
#define TARN_STORAGE_REPO_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "server/core/config.h"
#include "server/core/err.h"
#include "server/core/log.h"
#include "server/core/types.h"
#include "server/core/wpool.h"
#include "storage/key.h"
#include "storage/value.h"

struct event_base;
struct evbuffer;
typedef struct repo repo;

/** How the page server reaches the WAL service (wired by the server). */
typedef struct repo_hooks {
    void *arg;
    /** Read durable WAL bytes of a timeline. */
    tarn_rc (*wal_read)(void *arg, const tarn_id *tenant, const tarn_id *tl,
                        tarn_lsn lsn, uint8_t *buf, size_t len, tarn_err *err);
    /** WAL below @p keep_from is no longer needed. */
    void (*wal_trim)(void *arg, const tarn_id *tenant, const tarn_id *tl,
                     tarn_lsn keep_from);
    /** A timeline got WAL on disk (import): start serving it. */
    tarn_rc (*wal_adopt)(void *arg, const tarn_id *tenant, const tarn_id *tl,
                         tarn_err *err);
    /** Ingest moved a timeline's last_record_lsn to @p last (may be NULL). */
    void (*lsn_advanced)(void *arg, const tarn_id *tenant, const tarn_id *tl,
                         tarn_lsn last);
} repo_hooks;

typedef struct repo_opts {
    struct event_base *base;
    wpool *pool;
    catalog *cat;
    tlog *log;
    const char *data_dir;
    const tarn_config *cfg; /**< read live: reloads apply */
    repo_hooks hooks;
} repo_opts;

/** A relation fork. */
typedef struct repo_rel {
    uint32_t spc, db, rel;
    uint8_t fork;
} repo_rel;

/** Answer of an asynchronous operation: TARN_OK or an error. */
typedef void (*repo_done_fn)(void *arg, tarn_rc rc, const char *msg);

/** What a checkpoint did. */
typedef struct repo_ckpt_result {
    tarn_lsn lsn; /**< disk_consistent_lsn after it */
    size_t image_layers;
    size_t partitions_skipped;
    char skipped_reason[256];
} repo_ckpt_result;

typedef void (*repo_ckpt_fn)(void *arg, tarn_rc rc, const char *msg,
                             const repo_ckpt_result *res);

/** The storage view of a timeline, for its detail and tests. */
typedef struct repo_tl_info {
    bool loaded;
    tarn_lsn last_record_lsn, disk_consistent_lsn, start_lsn;
    const char *ingest_state; /**< "idle", "ingesting", "waiting for a
                                   layer flush", "failed", "none" */
    char error[TARN_ERR_MSG];
    uint64_t ingest_lag_bytes;
    size_t delta_layers, image_layers, frozen_layers;
    uint64_t layer_bytes, open_layer_bytes;
    bool trust_consistency_images;
    uint64_t records_ingested;
} repo_tl_info;

/** get_lsn_by_timestamp: where a timestamp falls in a timeline's commits. */
typedef struct repo_ts_result {
    const char *kind; /**< "present", "future", "past", "nodata" */
    tarn_lsn lsn;
} repo_ts_result;

/**
 * Open every timeline of the catalog: their layer files (checked), and
 * the ingest position (disk_consistent_lsn).  Timelines left in state
 * CREATING by a crash are removed.
 */
tarn_rc repo_create(const repo_opts *o, repo **out, tarn_err *err);

/** Stop starting work (shutdown); jobs in flight finish. */
void repo_stop(repo *r);

/** Free.  The worker pool must have been drained.  NULL-safe. */
void repo_destroy(repo *r);

/* ---- timelines ---------------------------------------------------------- */

/**
 * Fill a root timeline created in state CREATING: run initdb (when
 * @p import_pgdata is NULL) or import @p import_pgdata, then make the
 * timeline ACTIVE.  Validation that can be done at once fails at once
 * (TARN_EINVAL, TARN_ECONFLICT, TARN_EUNSUPPORTED for the data directory);
 * the rest is answered through @p done.  On failure the timeline is
 * removed from the catalog.
 */
tarn_rc repo_timeline_bootstrap(repo *r, const catalog_timeline *tl,
                                const char *import_pgdata, repo_done_fn done,
                                void *arg, tarn_err *err);

/**
 * A timeline was created in the catalog without data (a branch, or a
 * root without bootstrap): start its storage.
 */
tarn_rc repo_timeline_add(repo *r, const catalog_timeline *tl, tarn_err *err);

/** A timeline was deleted from the catalog: drop its storage. */
void repo_timeline_forget(repo *r, const tarn_id *tenant, const tarn_id *tl);

/** A tenant was deleted. */
void repo_tenant_forget(repo *r, const tarn_id *tenant);

/** What the WAL service tells about a timeline's durable WAL. */
typedef struct repo_wal_info {
    tarn_lsn flush;     /**< durable end of the last complete record */
    tarn_lsn wal_start; /**< first byte of WAL kept (a segment start) */
    uint32_t seg_size;
    uint64_t sysid;
} repo_wal_info;

/** The WAL service made WAL durable up to @p wi->flush. */
void repo_wal_flushed(repo *r, const tarn_id *tenant, const tarn_id *tl,
                      const repo_wal_info *wi);

/**
 * Write out everything ingested so far (freeze the open layer, wait until
 * every frozen layer is written and committed) and then, when @p images,
 * image layers for every key range at the new disk_consistent_lsn.
 * Answered through @p done.
 */
tarn_rc repo_checkpoint(repo *r, const tarn_id *tenant, const tarn_id *tl,
                        bool images, repo_ckpt_fn done, void *arg,
                        tarn_err *err);

void repo_timeline_info(repo *r, const tarn_id *tenant, const tarn_id *tl,
                        repo_tl_info *out);

/* ---- reads -------------------------------------------------------------- */

/**
 * A timeline's last_record_lsn and start LSN, cheaply (per page request).
 * @return TARN_OK; TARN_ENOTFOUND for an unknown timeline (no message).
 */
tarn_rc repo_timeline_lsns(repo *r, const tarn_id *tenant, const tarn_id *tl,
                           tarn_lsn *last, tarn_lsn *start);

/**
 * The page of @p rel block @p blk at @p lsn (or at last_record_lsn when
 * @p latest).  A block past the relation's end is a zero page.
 *
 * @param[out] at  the LSN read
 * @return TARN_OK; TARN_ENOTFOUND for an unknown timeline or a relation
 * that does not exist at that LSN; TARN_EINVAL for an LSN before the
 * timeline's start or past last_record_lsn; TARN_EPRECOND for a timeline
 * without data yet; TARN_EUNSUPPORTED when the page needs redo that tarn
 * lacks; TARN_ECORRUPT when a layer fails its checks.
 */
tarn_rc repo_get_page(repo *r, const tarn_id *tenant, const tarn_id *tl,
                      const repo_rel *rel, uint32_t blk, bool latest,
                      tarn_lsn lsn, uint8_t *page, tarn_lsn *at, tarn_err *err);

/** Answer of repo_get_page_async(): the page is filled on TARN_OK. */
typedef void (*repo_page_fn)(void *arg, tarn_rc rc, const char *msg,
                             tarn_lsn at);

/**
 * repo_get_page() that keeps long reconstructions off the reactor.  A page
 * whose history has more than redo_inline_max values to apply is rebuilt
 * on the worker pool: the call returns TARN_OK with *@p pending set, and
 * @p done runs later on the reactor with the result.  Every other read
 * completes here, as repo_get_page() does, and @p done is not called.
 * While pending, @p page and @p arg must stay valid (a connection that
 * closes keeps its request until @p done).
 */
tarn_rc repo_get_page_async(repo *r, const tarn_id *tenant, const tarn_id *tl,
                            const repo_rel *rel, uint32_t blk, bool latest,
                            tarn_lsn lsn, uint8_t *page, tarn_lsn *at,
                            bool *pending, repo_page_fn done, void *arg,
                            tarn_err *err);

/** Existence and size in blocks of a relation fork (same LSN rules).  A
 * missing FSM or VM fork reports size 0. */
tarn_rc repo_rel_size(repo *r, const tarn_id *tenant, const tarn_id *tl,
                      const repo_rel *rel, bool latest, tarn_lsn lsn,
                      bool *exists, uint32_t *nblocks, tarn_lsn *at,
                      tarn_err *err);

/** Bytes of every relation fork of a database (same LSN rules). */
tarn_rc repo_db_size(repo *r, const tarn_id *tenant, const tarn_id *tl,
                     uint32_t spc, uint32_t db, bool latest, tarn_lsn lsn,
                     uint64_t *bytes, tarn_lsn *at, tarn_err *err);

/**
 * Block @p blk of SLRU segment @p segno (pg_xact, pg_multixact/members or
 * offsets) at @p lsn, with the same rules; a block past the segment's end,
 * or of a segment that does not exist, is TARN_ENOTFOUND.
 */
tarn_rc repo_get_slru_page(repo *r, const tarn_id *tenant, const tarn_id *tl,
                           int kind, uint32_t segno, uint32_t blk, bool latest,
                           tarn_lsn lsn, uint8_t *page, tarn_lsn *at,
                           tarn_err *err);

/**
 * The LSN of the last commit at or before @p t on this timeline (and its
 * ancestors below the branch point).
 */
tarn_rc repo_lsn_by_timestamp(repo *r, const tarn_id *tenant, const tarn_id *tl,
                              tarn_time_us t, repo_ts_result *out,
                              tarn_err *err);

/* ---- raw reads for base backups (storage/basebackup.c) ------------------ */

/** What a base backup needs to know about a timeline. */
typedef struct repo_backup_info {
    tarn_lsn last_record_lsn;
    tarn_lsn prev_record_lsn; /**< start of the record ending there; 0 =
                                   unknown */
    tarn_lsn start_lsn;       /**< the first LSN with data (import) */
    bool has_ancestor;
    tarn_lsn ancestor_lsn; /**< the branch point */
} repo_backup_info;

/**
 * The LSNs of a timeline that can be read: TARN_ENOTFOUND for an unknown
 * timeline, TARN_ECONFLICT for a stopped one, TARN_EPRECOND for one
 * without data.
 */
tarn_rc repo_backup_info_get(repo *r, const tarn_id *tenant, const tarn_id *tl,
                             repo_backup_info *out, tarn_err *err);

/**
 * A metadata value (a directory, a relmapper file, pg_control...) at
 * @p lsn, which must lie in [start_lsn, last_record_lsn]; *found is false
 * when there is none or it is a tombstone.
 */
tarn_rc repo_read_value(repo *r, const tarn_id *tenant, const tarn_id *tl,
                        const tkey *k, tarn_lsn lsn, tbuf *out, bool *found,
                        tarn_err *err);

/** tl_scan() of [lo, hi] at @p lsn (same LSN rule). */
tarn_rc repo_scan(repo *r, const tarn_id *tenant, const tarn_id *tl,
                  const tkey *lo, const tkey *hi, tarn_lsn lsn,
                  tarn_rc (*fn)(void *arg, const tkey *k, const uint8_t *val,
                                size_t len, tarn_err *err),
                  void *arg, tarn_err *err);

/**
 * @p n pages with keys @p first, first + 1, ... (f6 counts up) at
 * @p lsn, into @p pages (n * 8192 bytes).  A key without history is a
 * zero page; the caller knows the object's size.
 */
tarn_rc repo_read_pages(repo *r, const tarn_id *tenant, const tarn_id *tl,
                        const tkey *first, uint32_t n, tarn_lsn lsn,
                        uint8_t *pages, tarn_err *err);

/**
 * Durable WAL bytes [lsn, lsn + len) of a timeline, from its own WAL or,
 * below the branch point, from its ancestors'.  TARN_ENOTFOUND when the
 * WAL is not there (removed once layers covered it, or never streamed).
 */
tarn_rc repo_read_wal(repo *r, const tarn_id *tenant, const tarn_id *tl,
                      tarn_lsn lsn, uint8_t *buf, size_t len, tarn_err *err);

/** Prometheus text for /metrics. */
void repo_metrics(repo *r, struct evbuffer *out);

#endif
