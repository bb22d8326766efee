/*
 * timeline.h - the versioned key/value store of one timeline: its layer
 * map (the open in-memory layer, frozen layers, delta and image layer
 * files), and the read path that rebuilds any key at any LSN, falling
 * through to the ancestor below the branch point.
 *
 * Reads run over a tl_view: the layer map of a timeline and of its
 * ancestors.  The reactor reads the live view of a timeline.  A worker
 * thread reads a snapshot (timeline_snapshot), which holds references to
 * the immutable layers only, so the reactor may keep ingesting and
 * swapping layers while the worker reads.
 *
 * LSN rules: a value is stamped with its record's end LSN; a read at L
 * sees every value with LSN <= L.  A layer covers [lsn_start, lsn_end).
 *
 * Threading: a timeline belongs to the reactor.  Views from
 * timeline_snapshot() may be read on any thread.
 */
#ifndef TARN_STORAGE_TIMELINE_H
#define TARN_STORAGE_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/key.h"
#include "storage/layerfile.h"
#include "storage/memlayer.h"
#include "storage/pagecache.h"
#include "storage/redo/redo.h"
#include "storage/value.h"

/** The layers of one timeline, newest first, and its ancestry. */
typedef struct tl_view {
    uint64_t cache_id; /**< the timeline's id in the page cache */
    memlayer *open;    /**< NULL in snapshots */
    memlayer **frozen; /**< oldest first */
    size_t nfrozen;
    layer **deltas; /**< by lsn_end, newest first */
    size_t ndeltas;
    layer **images; /**< by LSN, newest first */
    size_t nimages;
    struct tl_view *ancestor; /**< NULL for a root */
    tarn_lsn ancestor_lsn;
    pagecache *pc;
    /** NULL, or (in a bulk pass's snapshot) the ring that its index block
     * reads go through; pages it rebuilds are then not cached at all */
    pc_ring *ring;
    redo_stats *rs;
    bool snapshot; /**< owns its arrays and references */
} tl_view;

typedef struct timeline timeline;

typedef struct timeline_opts {
    tarn_id tenant, id;
    timeline *ancestor; /**< outlives this timeline; NULL for a root */
    tarn_lsn ancestor_lsn;
    tarn_lsn last_record_lsn; /**< where ingest resumes */
    tarn_lsn prev_record_lsn; /**< start of the record ending there */
    pagecache *pc;
    memlayer_pool *pool; /**< arena chunks of the open layers; may be NULL */
    redo_stats *rs;
} timeline_opts;

tarn_rc timeline_create(const timeline_opts *o, timeline **out, tarn_err *err);

/** Drop every layer reference and free.  NULL-safe. */
void timeline_destroy(timeline *tl);

/** The live view (reactor only). */
const tl_view *timeline_view(const timeline *tl);

/**
 * A view for a worker thread: the frozen and file layers of this timeline
 * and its ancestors, with references held.  Reads through it are valid at
 * LSNs below timeline_open_start() of each timeline at the time of the
 * snapshot.  Free with tl_view_release().
 */
tarn_rc timeline_snapshot(const timeline *tl, tl_view **out, tarn_err *err);

void tl_view_release(tl_view *v);

/* ---- the layer map ----------------------------------------------------- */

/** Add a layer file (takes a reference). */
tarn_rc timeline_add_layer(timeline *tl, layer *l, tarn_err *err);

/**
 * Append a value for ingest to the open layer, creating it at
 * open_start if needed.
 */
tarn_rc timeline_put(timeline *tl, const tkey *k, tarn_lsn lsn,
                     const uint8_t *val, size_t len, tarn_err *err);

/**
 * The size a size key (a relation fork's or an SLRU segment's) holds at
 * @p lsn: *@p exists, and *@p n blocks.  Answered from the timeline's
 * size cache when it can be (reactor only; see timeline.c for why the
 * cache stays true), else from the layers, which may fill the cache.
 * @return TARN_ECORRUPT for a stored value that is not 4 bytes.
 */
tarn_rc timeline_get_size(timeline *tl, const tkey *k, tarn_lsn lsn,
                          bool *exists, uint32_t *n, tarn_err *err);

/** Record a commit timestamp in the open layer. */
tarn_rc timeline_put_commit_ts(timeline *tl, int64_t ts, tarn_lsn lsn,
                               tarn_err *err);

/** Ingest has consumed every record up to @p end (@p start: its start). */
void timeline_advance(timeline *tl, tarn_lsn end, tarn_lsn start);

tarn_lsn timeline_last_record_lsn(const timeline *tl);
tarn_lsn timeline_prev_record_lsn(const timeline *tl);

/** Where the open layer starts (or will start): everything below is in
 * frozen or file layers. */
tarn_lsn timeline_open_start(const timeline *tl);

/** Bytes held by the open layer. */
size_t timeline_open_bytes(const timeline *tl);
/** Bytes held by the frozen layers not written yet. */
size_t timeline_frozen_bytes(const timeline *tl);
/** LSN distance covered by the open layer. */
uint64_t timeline_open_span(const timeline *tl);

/**
 * Freeze the open layer at last_record_lsn + 1 and queue it for writing.
 * @return the frozen layer (the timeline keeps its own reference; the
 * caller gets one more), or NULL when the open layer held no value, in
 * which case the open range just moves up.
 */
memlayer *timeline_freeze(timeline *tl);

/** Frozen layers waiting to be written. */
size_t timeline_nfrozen(const timeline *tl);
/** The oldest frozen layer, or NULL. */
memlayer *timeline_oldest_frozen(const timeline *tl);

/**
 * The oldest frozen layer has been written as @p l (NULL when it was
 * empty): swap it in.
 */
tarn_rc timeline_frozen_done(timeline *tl, memlayer *m, layer *l,
                             tarn_err *err);

/* ---- reads (on a view) ------------------------------------------------- */

/**
 * Rebuild the page of @p k (a relation or SLRU block) at @p lsn.
 *
 * @return TARN_OK; TARN_ENOTFOUND when the key has no history at all (the
 * caller decides: usually a block past the relation's end, read as
 * zeros); TARN_EPRECOND when the history has no base to start from (a
 * timeline without base data); the errors of redo and of layer reads
 * (TARN_ECORRUPT for a failed CRC).
 */
tarn_rc tl_get_page(const tl_view *v, const tkey *k, tarn_lsn lsn,
                    uint8_t *page, tarn_err *err);

/**
 * tl_get_page() in two phases, so that a long reconstruction can leave the
 * reactor: tl_page_read_start() collects the key's history (reactor only)
 * and either finds the page in the cache (TARN_OK with *@p out NULL, the
 * page filled) or returns the read in *@p out.  tl_page_read_finish()
 * applies it into @p page and caches the result; it runs on the reactor,
 * or on any thread after tl_page_read_detach() (which copies the values
 * held in memory layers and references the layer files, so the read no
 * longer shares anything with the timeline).  Free with
 * tl_page_read_free() in every case.  Errors as tl_get_page().
 */
typedef struct tl_page_read tl_page_read;

tarn_rc tl_page_read_start(const tl_view *v, const tkey *k, tarn_lsn lsn,
                           uint8_t *page, tl_page_read **out, tarn_err *err);

/** The number of values the read applies (its image or base included). */
size_t tl_page_read_values(const tl_page_read *rd);

tarn_rc tl_page_read_detach(tl_page_read *rd, tarn_err *err);

tarn_rc tl_page_read_finish(tl_page_read *rd, uint8_t *page, tarn_err *err);

/** NULL-safe. */
void tl_page_read_free(tl_page_read *rd);

/**
 * Read a metadata value (a relation size, a directory...): the newest
 * image at or below @p lsn, without its kind byte, into @p out.
 * *found is false when there is none or it is a tombstone.
 */
tarn_rc tl_get_value(const tl_view *v, const tkey *k, tarn_lsn lsn, tbuf *out,
                     bool *found, tarn_err *err);

/**
 * Every key in [lo, hi] that has a value at @p lsn that is not a
 * tombstone, in key order; calls @p fn with the key and the value (as
 * tl_get_value gives it).
 */
tarn_rc tl_scan(const tl_view *v, const tkey *lo, const tkey *hi, tarn_lsn lsn,
                tarn_rc (*fn)(void *arg, const tkey *k, const uint8_t *val,
                              size_t len, tarn_err *err),
                void *arg, tarn_err *err);

/** Count layer files of each kind and their bytes. */
void timeline_layer_stats(const timeline *tl, size_t *ndeltas, size_t *nimages,
                          uint64_t *bytes);

#endif
