/*
 * rmgr.h - what a resource manager's redo gets, inside storage/redo/.
 *
 * tarn rebuilds one page at a time: a record that touches several blocks
 * is stored once per block (as a PGREC value with that block's id), and
 * each rmgr's redo applies the part of the record that concerns
 * @c block_id only.  An applicable full-page image has been restored by
 * the caller already; rmgr code runs only when the block needs redo.
 */
#ifndef TARN_STORAGE_REDO_RMGR_H
#define TARN_STORAGE_REDO_RMGR_H

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/pg/walrec.h"

typedef struct redo_ctx {
    const walrec *r; /**< its main_data is never NULL here */
    uint8_t block_id;
    const walrec_block *b; /**< &r->blocks[block_id] */
    uint8_t *page;         /**< the block before the record; changed */
    tarn_lsn lsn;          /**< the record's end: the new page LSN */
    const uint8_t *data;   /**< the block's data, never NULL */
    uint16_t data_len;     /**< its length (0 when the block has none) */
    tarn_err *err;
} redo_ctx;

/**
 * Fail with TARN_ECORRUPT naming the rmgr, record type, LSN and block,
 * then @p why.
 */
tarn_rc redo_fail(const redo_ctx *c, const char *type, const char *why, ...)
    TARN_PRINTF(3, 4);

/** redo_fail() for a record that has no part for block @c block_id. */
tarn_rc redo_no_part(const redo_ctx *c, const char *type);

/** TARN_OK if the record's main data has at least @p n bytes, else
 * redo_fail() saying how many it has. */
tarn_rc redo_need_main(const redo_ctx *c, const char *type, size_t n);

/** The same for the block's data (@c data_len). */
tarn_rc redo_need_data(const redo_ctx *c, const char *type, size_t n);

/**
 * TARN_OK if the page is an initialised page with a sane header and its
 * special space at @p special (the index AM's), else redo_fail() saying
 * "not @p what" with pd_lower, pd_upper and pd_special.
 */
tarn_rc redo_need_index_page(const redo_ctx *c, const char *type,
                             unsigned special, const char *what);

/**
 * PageIndexMultiDelete() of the @p n offsets at @p offs (little-endian
 * u16s, unaligned); redo_fail() when they do not fit the page.
 */
tarn_rc redo_multi_delete(const redo_ctx *c, const char *type,
                          const uint8_t *offs, size_t n);

tarn_rc redo_heap(redo_ctx *c);
tarn_rc redo_heap2(redo_ctx *c);
tarn_rc redo_seq(redo_ctx *c);
tarn_rc redo_btree(redo_ctx *c);
tarn_rc redo_hash(redo_ctx *c);
tarn_rc redo_gin(redo_ctx *c);
tarn_rc redo_brin(redo_ctx *c);
tarn_rc redo_generic(redo_ctx *c);

tarn_rc redo_gist(redo_ctx *c);
tarn_rc redo_spgist(redo_ctx *c);

/**
 * The part of a GiST record PostgreSQL applies to a block even after
 * restoring its image (the left child's NSN and F_FOLLOW_RIGHT); called
 * by the caller once it restored @c block_id's image.
 */
tarn_rc redo_gist_restored(redo_ctx *c);

#endif
