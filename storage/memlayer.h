/*
 * memlayer.h - the open in-memory layer of a timeline, and the frozen
 * layers waiting to be written out.
 *
 * Ingest appends (key, LSN, value) here as it decodes WAL.  The WAL is the
 * durability of these values: after a crash they are rebuilt by ingesting
 * again from disk_consistent_lsn, so nothing here is ever fsynced.
 *
 * Values live in an append-only arena; a hash index maps each key to its
 * versions in LSN order.  A layer covers the LSN range [start, end): end is
 * open (TARN_LSN_MAX) until the layer is frozen.  A frozen layer is
 * immutable, which is what lets a worker thread write it out while the
 * reactor keeps reading it.
 *
 * Threading: the reactor owns an open layer.  Once frozen, any thread
 * holding a reference may read it.  References are counted atomically.
 */
#ifndef TARN_STORAGE_MEMLAYER_H
#define TARN_STORAGE_MEMLAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/key.h"
#include "storage/vref.h"

#define TARN_LSN_MAX UINT64_MAX

typedef struct memlayer memlayer;

/** A commit timestamp seen by ingest: commit time and record end LSN. */
typedef struct commit_ts {
    int64_t ts; /**< PostgreSQL TimestampTz: microseconds since 2000-01-01 */
    tarn_lsn lsn;
} commit_ts;

/**
 * Free arena chunks kept for the next in-memory layers, shared by every
 * timeline of a repo.  A fresh 1 MiB chunk costs 256 page faults, each
 * zeroing a page and charging it to the cgroup, and its free an munmap:
 * during a bulk load that was a quarter of the reactor's time
 * (tests/bench/wal_ingest).  A chunk of a freed layer is kept instead, up
 * to @p keep bytes, and handed to the next layer.  Kept chunks were all
 * live at once before, so the pool does not raise the peak memory.
 * Thread-safe (layers are freed wherever their last reference goes).
 */
typedef struct memlayer_pool memlayer_pool;

tarn_rc memlayer_pool_create(size_t keep, memlayer_pool **out, tarn_err *err);
/** Free the pool and its chunks; every layer using it must be gone.
 * NULL-safe. */
void memlayer_pool_destroy(memlayer_pool *p);
/** Change how many bytes of free chunks the pool keeps (on reload). */
void memlayer_pool_set_keep(memlayer_pool *p, size_t keep);
/** Bytes of free chunks the pool holds now. */
size_t memlayer_pool_bytes(memlayer_pool *p);

/** A new open layer starting at @p start; its chunks come from and go
 * back to @p pool (NULL: plain malloc and free). */
tarn_rc memlayer_create(tarn_lsn start, memlayer_pool *pool, memlayer **out,
                        tarn_err *err);

void memlayer_ref(memlayer *m);
/** Drop a reference; the last one frees.  NULL-safe. */
void memlayer_unref(memlayer *m);

/**
 * Append a value.  Per key, LSNs must not go backwards.  @p lsn must lie
 * at or after the layer's start, and the layer must be open.
 */
tarn_rc memlayer_put(memlayer *m, const tkey *k, tarn_lsn lsn,
                     const uint8_t *val, size_t len, tarn_err *err);

/** Remember a commit timestamp (for get_lsn_by_timestamp). */
tarn_rc memlayer_add_commit_ts(memlayer *m, int64_t ts, tarn_lsn lsn,
                               tarn_err *err);

/** Commit timestamps in ingest order. */
const commit_ts *memlayer_commit_ts(const memlayer *m, size_t *n);

/** Close the layer at @p end (exclusive); no more puts. */
void memlayer_freeze(memlayer *m, tarn_lsn end);

bool memlayer_is_frozen(const memlayer *m);
tarn_lsn memlayer_start(const memlayer *m);
/** TARN_LSN_MAX while open. */
tarn_lsn memlayer_end(const memlayer *m);
/** The highest LSN put (0 if empty). */
tarn_lsn memlayer_last_lsn(const memlayer *m);
/** Memory in use: values and index. */
size_t memlayer_bytes(const memlayer *m);
size_t memlayer_nkeys(const memlayer *m);
size_t memlayer_nvalues(const memlayer *m);
/** Smallest and largest key held (only if nkeys > 0). */
void memlayer_key_range(const memlayer *m, tkey *lo, tkey *hi);

/**
 * Collect the versions of @p k with floor <= LSN <= ceil, newest first,
 * into @p c, stopping after a will_init value.
 */
tarn_rc memlayer_collect(const memlayer *m, const tkey *k, tarn_lsn floor,
                         tarn_lsn ceil, vcollect *c, tarn_err *err);

/** Call @p fn for every key in [lo, hi] that has a value (any order). */
tarn_rc memlayer_each_key(const memlayer *m, const tkey *lo, const tkey *hi,
                          tarn_rc (*fn)(void *arg, const tkey *k,
                                        tarn_err *err),
                          void *arg, tarn_err *err);

/** Ordered iteration over every (key, LSN, value) for writing a layer. */
typedef struct memlayer_iter {
    const memlayer *m;
    uint32_t *order; /* key indexes sorted by key */
    size_t nkeys, ki, vi;
} memlayer_iter;

/** Sort the keys; the layer must be frozen. */
tarn_rc memlayer_iter_begin(const memlayer *m, memlayer_iter *it,
                            tarn_err *err);

/** Next value in (key, LSN) order; false at the end. */
bool memlayer_iter_next(memlayer_iter *it, tkey *k, tarn_lsn *lsn,
                        const uint8_t **val, uint32_t *len, bool *will_init);

void memlayer_iter_end(memlayer_iter *it);

#endif
