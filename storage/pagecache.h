/*
 * pagecache.h - a bounded cache of 8 KiB blocks shared by every timeline:
 * materialized pages and layer-file index blocks.
 *
 * Entries are immutable facts, so nothing is ever invalidated:
 *   - a materialized page is keyed by (timeline, key, LSN of the newest
 *     value it contains).  Every read at any LSN whose newest value is that
 *     one rebuilds exactly this page, so the entry stays true forever;
 *   - an index block is keyed by (layer file id, block number); layer files
 *     are immutable and their ids are never reused.
 * Eviction is a clock sweep with a small usage count (as PostgreSQL's and
 * Neon's buffer caches).
 *
 * Threading: every call may come from any thread (one mutex).
 */
#ifndef TARN_STORAGE_PAGECACHE_H
#define TARN_STORAGE_PAGECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "storage/key.h"

#define PAGECACHE_BLOCK 8192

typedef enum pc_kind { PC_PAGE = 1, PC_INDEX = 2 } pc_kind;

typedef struct pc_key {
    uint8_t kind; /**< pc_kind */
    uint64_t id;  /**< timeline cache id, or layer file id */
    uint64_t num; /**< LSN of the newest value, or block number */
    tkey key;     /**< the page's key (PC_PAGE); zero for PC_INDEX */
} pc_key;

typedef struct pagecache_stats {
    uint64_t hits[3], misses[3]; /**< indexed by pc_kind */
    uint64_t evictions;
    size_t slots, used;
    size_t touched; /**< slots ever used: the memory the cache has touched */
} pagecache_stats;

typedef struct pagecache pagecache;

/** A cache of @p bytes (rounded down to whole blocks; at least 16). */
tarn_rc pagecache_create(size_t bytes, pagecache **out, tarn_err *err);

void pagecache_destroy(pagecache *pc);

/**
 * A bulk reader's share of the cache, after PostgreSQL's ring buffer
 * strategy.  A pass over a whole timeline (an image job) would otherwise
 * take a fresh block for each index block it reads: the cache's memory
 * would grow to page_cache_size during ingest, and the blocks that page
 * reads keep hot would be evicted for blocks read once.  Blocks put
 * through a ring reuse its few slots in turn, and lookups through it do
 * not raise usage counts.  A slot that another reader hits in the
 * meantime is left to the shared cache and the ring takes a new one.
 */
typedef struct pc_ring pc_ring;

/** A ring of @p nblocks blocks (at least 1) in @p pc. */
tarn_rc pagecache_ring_create(pagecache *pc, size_t nblocks, pc_ring **out,
                              tarn_err *err);

/** Hand the ring's blocks over to the shared cache and free.  NULL-safe. */
void pagecache_ring_destroy(pc_ring *ring);

/**
 * Copy the block out if cached.  Counts a hit or a miss.
 * @param ring NULL for the shared policy, or a bulk reader's ring.
 */
bool pagecache_get(pagecache *pc, pc_ring *ring, const pc_key *k, uint8_t *out);

/**
 * Run @p fn on the cached block of @p k without copying it out, if it is
 * cached.  @p fn runs under the cache's lock: it must be short and must
 * not call the cache.  Counts a hit or a miss.
 * @param ring NULL for the shared policy, or a bulk reader's ring.
 * @return whether the block was cached (and @p fn ran).
 */
bool pagecache_peek(pagecache *pc, pc_ring *ring, const pc_key *k,
                    void (*fn)(const uint8_t *block, void *arg), void *arg);

/**
 * Insert (or refresh) a block.
 * @param ring NULL to take a slot from the whole cache, or a bulk
 *        reader's ring to reuse one of its slots.
 */
void pagecache_put(pagecache *pc, pc_ring *ring, const pc_key *k,
                   const uint8_t *block);

/** A new id for a layer file or a timeline, never reused in a process. */
uint64_t pagecache_new_id(pagecache *pc);

void pagecache_get_stats(pagecache *pc, pagecache_stats *out);

#endif
