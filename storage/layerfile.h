/*
 * layerfile.h - immutable layer files: delta layers (values of many keys
 * over an LSN range) and image layers (every live key of a key range at
 * one LSN).  The format is in docs/storage-format.md; in short:
 *
 *   header (4 KiB, CRC32C)
 *   blobs: codec, lengths, payload (zstd or raw), CRC32C each
 *   index: 8 KiB blocks of (key, LSN, flags, blob offset, blob length)
 *          sorted by (key, LSN), CRC32C each
 *   fences: the first (key, LSN) of every index block, CRC32C
 *   Bloom filter over the keys, CRC32C
 *
 * A reader keeps the fences and the Bloom filter in memory, so finding a
 * key costs one binary search in memory and one index block (usually from
 * the page cache); no scan.  Every byte read back is checked against its
 * CRC, and a mismatch is an error naming the file and the offset: a
 * corrupt layer is reported, never served.
 *
 * Writers run on worker threads; readers on any thread (pread only).
 */
#ifndef TARN_STORAGE_LAYERFILE_H
#define TARN_STORAGE_LAYERFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/key.h"
#include "storage/pagecache.h"
#include "storage/value.h"
#include "storage/vref.h"

#define LAYER_FORMAT_VERSION 1
/** "<36 hex>-<36 hex>__<16 hex>-<16 hex>" plus NUL. */
#define LAYER_NAME_MAX 128

typedef enum layer_kind { LAYER_DELTA = 1, LAYER_IMAGE = 2 } layer_kind;

/** What a layer covers.  Both ranges are half-open: [start, end). */
typedef struct layer_desc {
    layer_kind kind;
    tkey key_start, key_end;
    tarn_lsn lsn_start, lsn_end; /**< an image at L covers [L, L+1) */
    uint64_t file_size;
    uint64_t nvalues;
} layer_desc;

/**
 * The file name of a layer: "KS-KE__LS-LE" for a delta, "KS-KE__L" for an
 * image (keys as 36 hex digits, LSNs as 16).
 */
char *layer_name(const layer_desc *d, char *buf);

/** Parse a layer file name back into kind and ranges. */
tarn_rc layer_name_parse(const char *name, layer_desc *out, tarn_err *err);

/* ---- writing ------------------------------------------------------------ */

typedef struct layerw layerw;

typedef struct layerw_opts {
    const char *dir; /**< the timeline's layer directory */
    layer_kind kind;
    tarn_id tenant, timeline;
    tarn_lsn lsn_start, lsn_end;
    tarn_codec codec; /**< how values of 256 bytes or more are stored */
    int zstd_level;   /**< for TARN_CODEC_ZSTD; 0 means 1 */
} layerw_opts;

/** Start writing a new layer under a temporary name in @p o->dir. */
tarn_rc layerw_create(const layerw_opts *o, layerw **out, tarn_err *err);

/**
 * Append a value.  Calls must come in (key, LSN) order; an image layer
 * takes each key once, at lsn_start.
 */
tarn_rc layerw_add(layerw *w, const tkey *k, tarn_lsn lsn, const uint8_t *val,
                   size_t len, bool will_init, tarn_err *err);

/** Values added so far, and bytes written. */
uint64_t layerw_nvalues(const layerw *w);
uint64_t layerw_bytes(const layerw *w);

/**
 * Write the index, the fences, the Bloom filter and the header; fsync the
 * file, rename it to its final name (the key range is [key_start, key_end)
 * as given, or the keys written when both are NULL) and fsync the
 * directory.  Frees @p w, also on failure (the temporary file is then
 * removed).
 */
tarn_rc layerw_finish(layerw *w, const tkey *key_start, const tkey *key_end,
                      layer_desc *out, char *name_out, tarn_err *err);

/** Give up: remove the temporary file and free.  NULL-safe. */
void layerw_abort(layerw *w);

/* ---- reading ------------------------------------------------------------ */

typedef struct layer layer;

/**
 * Open @p dir/@p name and check it: the header's CRC and fields (which must
 * match @p expect when given), the fences and the Bloom filter.
 */
tarn_rc layer_open(const char *dir, const char *name, const layer_desc *expect,
                   pagecache *pc, layer **out, tarn_err *err);

void layer_ref(layer *l);
/** Drop a reference; the last one closes.  NULL-safe. */
void layer_unref(layer *l);

const layer_desc *layer_get_desc(const layer *l);
const char *layer_get_name(const layer *l);
const char *layer_get_path(const layer *l);

/** False when the Bloom filter rules the key out. */
bool layer_may_contain(const layer *l, const tkey *k);

/**
 * Collect the values of @p k with floor <= LSN <= ceil, newest first, into
 * @p c, stopping after a will_init value.  Only index blocks are read.
 *
 * @param ring          NULL, or a bulk reader's ring in the page cache
 *                      that the index blocks read go through
 * @param[out] present  set when the key has any entry in this layer (for
 *                      image layers: the key exists at the image LSN)
 */
tarn_rc layer_collect(layer *l, pc_ring *ring, const tkey *k, tarn_lsn floor,
                      tarn_lsn ceil, vcollect *c, bool *present, tarn_err *err);

/**
 * Read and check one blob (a reference from layer_collect) and decompress
 * it into @p out (reset first).
 */
tarn_rc layer_read_value(layer *l, uint64_t off, uint32_t len, tbuf *out,
                         tarn_err *err);

/** Call @p fn once for every distinct key in [lo, hi], in order; index
 * blocks go through @p ring (NULL for the shared cache policy). */
tarn_rc layer_each_key(layer *l, pc_ring *ring, const tkey *lo, const tkey *hi,
                       tarn_rc (*fn)(void *arg, const tkey *k, tarn_err *err),
                       void *arg, tarn_err *err);

/**
 * Read every value of the layer in order and check every CRC (for tests
 * and `tarn` diagnostics), leaving the page cache as it was.
 * @return TARN_OK or TARN_ECORRUPT.
 */
tarn_rc layer_verify(layer *l, tarn_err *err);

#endif
