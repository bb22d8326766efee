/*
 * value.h - what a key maps to at an LSN.
 *
 * A value is a byte string whose first byte says what it is:
 *
 *   IMAGE    the object itself: an 8 KiB page, or the bytes of a metadata
 *            object (a relation size, a directory, pg_control...).  An
 *            empty IMAGE of a metadata key is a tombstone: "gone".
 *   ZERO     an all-zero 8 KiB page (relation extension gap, SLRU zero
 *            page), stored without the 8 KiB
 *   PGREC    a PostgreSQL WAL record, whole, and the block id within it
 *            that this key is; redo replays it onto the page
 *   CLOG     set the status of xids on one pg_xact page
 *   MXOFF    set one multixact's member offset on a pg_multixact/offsets
 *            page
 *   MXMEM    set members on one pg_multixact/members page
 *   VMCLEAR  clear visibility-map bits of up to two heap blocks
 *   VMTRUNC  clear the visibility map after a heap truncation point
 *
 * IMAGE and ZERO, and a PGREC flagged will_init, rebuild their object from
 * nothing ("will_init"); a read stops collecting history at the newest
 * such value.  Every value is stamped with its record's end LSN.
 *
 * Multi-byte fields inside native values are little-endian.
 */
#ifndef TARN_STORAGE_VALUE_H
#define TARN_STORAGE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"

typedef enum tval_kind {
    TVAL_IMAGE = 1,
    TVAL_ZERO = 2,
    TVAL_PGREC = 3,
    TVAL_CLOG = 4,
    TVAL_MXOFF = 5,
    TVAL_MXMEM = 6,
    TVAL_VMCLEAR = 7,
    TVAL_VMTRUNC = 8
} tval_kind;

/** Index flag: the value rebuilds its object from nothing. */
#define TVAL_F_WILL_INIT 0x01

/** CLOG statuses (two bits per xid, as pg_xact stores them). */
#define TVAL_XID_COMMITTED 0x01
#define TVAL_XID_ABORTED   0x02

/** No heap block (VMCLEAR). */
#define TVAL_NO_BLOCK 0xFFFFFFFFu

/** A growable byte buffer. */
typedef struct tbuf {
    uint8_t *p;
    size_t len, cap;
} tbuf;

tarn_rc tbuf_reserve(tbuf *b, size_t extra, tarn_err *err);
tarn_rc tbuf_append(tbuf *b, const void *data, size_t len, tarn_err *err);
void tbuf_free(tbuf *b);

static inline tval_kind
tval_kind_of(const uint8_t *v, size_t len)
{
    return len > 0 ? (tval_kind)v[0] : (tval_kind)0;
}

/** True for values that rebuild their object from nothing. */
bool tval_will_init(const uint8_t *v, size_t len);

/** "image", "zero", "pgrec"... */
const char *tval_kind_name(tval_kind k);

/*
 * Builders.  Each writes a complete value into @p out (reset first) and
 * fails only on allocation.
 */
tarn_rc tval_image(tbuf *out, const void *data, size_t len, tarn_err *err);
tarn_rc tval_zero(tbuf *out, tarn_err *err);
tarn_rc tval_pgrec(tbuf *out, uint8_t block_id, bool will_init,
                   const uint8_t *rec, size_t len, tarn_err *err);
/** @p xids all lie on one pg_xact page. */
tarn_rc tval_clog(tbuf *out, uint8_t status, const uint32_t *xids, size_t n,
                  tarn_err *err);
tarn_rc tval_mxoff(tbuf *out, uint32_t mid, uint32_t moff, tarn_err *err);
/** Members @p first .. first+n-1 (offsets), all on one members page. */
tarn_rc tval_mxmem(tbuf *out, uint32_t first, const uint32_t *xids,
                   const uint8_t *status, size_t n, tarn_err *err);
/** @p flags: the VM bits to clear (1 all-visible, 2 all-frozen). */
tarn_rc tval_vmclear(tbuf *out, uint32_t heapblk1, uint32_t heapblk2,
                     uint8_t flags, tarn_err *err);
/** The heap now has @p heap_nblocks blocks. */
tarn_rc tval_vmtrunc(tbuf *out, uint32_t heap_nblocks, tarn_err *err);

/* Layout of PGREC: kind, block id, flags (bit 0 will_init), record. */
#define TVAL_PGREC_HDR 3

#endif
