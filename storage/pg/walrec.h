/*
 * walrec.h - decode one PostgreSQL 15 WAL record into its parts: the
 * header fields, every block reference (relation, fork, block, flags,
 * image, data) and the main data; and restore a block image to a page.
 *
 * Decoding is zero-copy: the parts point into the record buffer, which
 * must outlive the walrec.  Multi-byte fields are read with unaligned
 * little-endian loads, so nothing needs to be copied for alignment.
 */
#ifndef TARN_STORAGE_PG_WALREC_H
#define TARN_STORAGE_PG_WALREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/pg/pgdefs.h"

/** A relation's physical address (RelFileNode). */
typedef struct pg_rel {
    uint32_t spc, db, rel;
} pg_rel;

typedef struct walrec_block {
    bool in_use;
    pg_rel rel;
    uint8_t fork;
    uint32_t blkno;
    uint8_t flags;  /**< PG_BKPBLOCK_* */
    bool has_image; /**< an image is present (apply or verification) */
    bool apply;     /**< PG_BKPIMAGE_APPLY: redo restores it */
    bool will_init; /**< PG_BKPBLOCK_WILL_INIT */
    const uint8_t *image;
    uint16_t image_len; /**< bytes stored (compressed or not) */
    uint16_t hole_offset;
    uint16_t hole_length;
    uint8_t bimg_info;
    const uint8_t *data;
    uint16_t data_len;
} walrec_block;

typedef struct walrec {
    tarn_lsn start, end; /**< the record's LSN and EndRecPtr */
    uint32_t tot_len;
    uint32_t xid;
    tarn_lsn prev;
    uint8_t info, rmid;
    uint16_t origin;       /**< 0 when absent */
    uint32_t toplevel_xid; /**< 0 when absent */
    int max_block_id;      /**< -1 when there are no block references */
    walrec_block blocks[PG_XLR_MAX_BLOCK_ID + 1];
    const uint8_t *main_data;
    uint32_t main_len;
    const uint8_t *raw; /**< the whole record, tot_len bytes */
} walrec;

/**
 * Decode the record in @p rec (@p len = xl_tot_len bytes, header first, as
 * walscan assembles it).  The CRC was checked by the scanner.
 *
 * @return TARN_OK, or TARN_ECORRUPT naming what is malformed (an unknown
 * block id, out-of-order ids, SAME_REL on the first block, lengths that do
 * not add up, an image that claims more than a page...).
 */
tarn_rc walrec_decode(const uint8_t *rec, size_t len, tarn_lsn start,
                      tarn_lsn end, walrec *out, tarn_err *err);

/**
 * Restore block @p b's image into @p page (8192 bytes): decompress it if it
 * is compressed (pglz, lz4, zstd), put the hole back as zeros.  The page
 * LSN is left as the image has it.
 *
 * @return TARN_OK; TARN_ECORRUPT when the image does not decompress to
 * exactly the expected size.
 */
tarn_rc walrec_restore_image(const walrec_block *b, uint8_t *page,
                             tarn_err *err);

/**
 * PostgreSQL's pglz decompression.  @return the bytes produced, or -1 if
 * the input is malformed or does not fill exactly @p rawsize bytes.
 */
int pg_pglz_decompress(const uint8_t *src, int srclen, uint8_t *dst,
                       int rawsize);

/** A heap block whose visibility-map bits a record clears. */
typedef struct walrec_vmclear {
    uint32_t blkno; /**< heap block (of block 0's relation) */
    uint8_t flags;  /**< VM bits: 1 all-visible, 2 all-frozen */
} walrec_vmclear;

/**
 * The visibility-map bits a Heap or Heap2 record clears through its
 * flags, without a block reference to the VM page (heap_xlog_insert,
 * _delete, _update, _lock, multi_insert and lock_updated each clear the
 * bits of the heap blocks they change).  The VM pages are those of block
 * 0's relation.  Other records clear nothing.
 *
 * @param[out] out  up to two heap blocks, distinct
 * @return the number written (0..2), or -1 with @p err set
 * (TARN_ECORRUPT) when the main data is too short for the record type.
 */
int walrec_heap_vm_clears(const walrec *r, walrec_vmclear out[2],
                          tarn_err *err);

/** "Heap", "Btree", ...; "custom" for 128..255; "?" otherwise. */
const char *pg_rmgr_name(uint8_t rmid);

#endif
