/*
 * redo_record.h - crafted WAL records for the redo unit tests of every
 * index resource manager: a record of one rmgr with n block references
 * (ids 0..n-1, relation 1663/5/16384, data and optionally a page image to
 * restore) and main data, as the PGREC value of one of its blocks, and
 * redo_apply() of it.
 */
#ifndef TARN_TESTS_UNIT_REDO_RECORD_H
#define TARN_TESTS_UNIT_REDO_RECORD_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/core/types.h"
#include "storage/key.h"
#include "storage/redo/redo.h"
#include "storage/value.h"

typedef struct blockref {
    uint32_t blkno;
    const uint8_t *data;
    uint16_t len;
    bool will_init;
    const uint8_t *image; /**< a whole page to restore (apply), or NULL */
} blockref;

static redo_stats st;

/*
 * A WAL record of resource manager @p rmid with @p n block references
 * (ids 0..n-1, relation 1663/5/16384) and @p mlen bytes of main data, as
 * the PGREC value of block @p id.
 */
static void
redo_record(tbuf *v, uint8_t rmid, uint8_t info, const blockref *b, unsigned n,
            uint8_t id, const uint8_t *main, uint32_t mlen)
{
    static uint8_t rec[24 + 8 * 25 + 5 + 8 * 8192 + 8 * 8192 + 8192];
    size_t at = 24;
    tarn_err err;

    memset(rec, 0, sizeof(rec));
    for (unsigned i = 0; i < n; i++) {
        rec[at++] = (uint8_t)i;
        rec[at++] = (uint8_t)((b[i].len ? 0x20 : 0) | (b[i].image ? 0x10 : 0)
                              | (b[i].will_init ? 0x40 : 0)
                              | (i > 0 ? 0x80 : 0)); /* SAME_REL */
        tarn_put_u16(rec + at, b[i].len), at += 2;
        if (b[i].image) {
            tarn_put_u16(rec + at, 8192), at += 2;
            tarn_put_u16(rec + at, 0), at += 2;
            rec[at++] = 0x02; /* BKPIMAGE_APPLY */
        }
        if (i == 0) {
            tarn_put_u32(rec + at, 1663), tarn_put_u32(rec + at + 4, 5);
            tarn_put_u32(rec + at + 8, 16384);
            at += 12;
        }
        tarn_put_u32(rec + at, b[i].blkno), at += 4;
    }
    if (mlen > 255) {
        rec[at++] = 254; /* XLR_BLOCK_ID_DATA_LONG */
        tarn_put_u32(rec + at, mlen), at += 4;
    } else if (mlen > 0) {
        rec[at++] = 255; /* XLR_BLOCK_ID_DATA_SHORT */
        rec[at++] = (uint8_t)mlen;
    }
    for (unsigned i = 0; i < n; i++) {
        if (b[i].image)
            memcpy(rec + at, b[i].image, 8192), at += 8192;
        if (b[i].len)
            memcpy(rec + at, b[i].data, b[i].len), at += b[i].len;
    }
    if (mlen > 0)
        memcpy(rec + at, main, mlen), at += mlen;
    tarn_put_u32(rec, (uint32_t)at);
    rec[16] = info;
    rec[17] = rmid;
    assert_int_equal(tval_pgrec(v, id, b[id].will_init, rec, at, &err),
                     TARN_OK);
}

static tarn_rc
apply(uint8_t *page, uint32_t blkno, const tbuf *v, tarn_lsn lsn, tarn_err *err)
{
    tkey k = tkey_rel_block(1663, 5, 16384, 0, blkno);
    return redo_apply(&st, page, &k, lsn, v->p, v->len, err);
}

#endif
