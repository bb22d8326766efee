/*
 * fuzz_walrec.c - arbitrary bytes through the WAL record decoder and the
 * image restorer.
 *
 * The input is taken as one assembled record (header first); its first
 * four bytes are overwritten with the input's length, as the scanner
 * guarantees xl_tot_len equals the buffer, so the fuzzer spends its time
 * past that check.  The walrec is filled with junk before each decode, so
 * anything the decoder fails to set shows up.  Invariants on success:
 * every image, data and main-data part lies inside the record, the parts
 * do not overlap and together with the headers they cover it; each image
 * either restores or fails with TARN_ECORRUPT.  The input also goes to
 * pg_pglz_decompress() directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* [p, p + len) inside [lo, hi)? */
static void
check_inside(const uint8_t *p, size_t len, const uint8_t *lo, const uint8_t *hi)
{
    if (len == 0)
        return;
    if (p == NULL || p < lo || p > hi || len > (size_t)(hi - p))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static walrec w;
    static uint8_t page[PG_BLCKSZ];
    uint8_t *rec;
    tarn_err e;

    if (size > 0) {
        /* rawsize from the input, so both the exact and the short cases
         * come up. */
        int raw = (int)(data[0] * 37u % (PG_BLCKSZ + 1));
        int n = pg_pglz_decompress(data, (int)size, page, raw);
        if (n != -1 && n != raw)
            abort();
    }
    rec = malloc(size > 0 ? size : 1);
    if (rec == NULL)
        return 0;
    memcpy(rec, data, size);
    if (size >= 4)
        tarn_put_u32(rec, (uint32_t)size);
    memset(&w, 0xA5, sizeof(w));
    if (walrec_decode(rec, size, 0x1000028, 0x1000100, &w, &e) == TARN_OK) {
        const uint8_t *end = rec + size;
        size_t covered = 0;
        if (w.max_block_id < -1 || w.max_block_id > PG_XLR_MAX_BLOCK_ID
            || w.tot_len != size || w.raw != rec)
            abort();
        for (int i = 0; i <= w.max_block_id; i++) {
            const walrec_block *b = &w.blocks[i];
            if (!b->in_use)
                continue;
            if (b->fork > PG_MAX_FORKNUM)
                abort();
            if (!b->has_image
                && (b->image != NULL || b->image_len != 0 || b->apply))
                abort();
            if (b->has_image) {
                tarn_rc rc;
                check_inside(b->image, b->image_len, rec, end);
                covered += b->image_len;
                if (b->image_len == 0 || b->image_len > PG_BLCKSZ
                    || b->hole_offset + b->hole_length > PG_BLCKSZ)
                    abort();
                rc = walrec_restore_image(b, page, &e);
                if (rc != TARN_OK && rc != TARN_ECORRUPT)
                    abort();
            }
            if ((b->data_len > 0) != ((b->flags & PG_BKPBLOCK_HAS_DATA) != 0))
                abort();
            check_inside(b->data, b->data_len, rec, end);
            covered += b->data_len;
        }
        for (int i = w.max_block_id + 1; i <= PG_XLR_MAX_BLOCK_ID; i++)
            if (w.blocks[i].in_use)
                abort();
        check_inside(w.main_data, w.main_len, rec, end);
        covered += w.main_len;
        /* The payload ends the record. */
        if (covered > size - PG_REC_HDR)
            abort();
        if (w.main_len > 0 && w.main_data + w.main_len != end)
            abort();
    }
    free(rec);
    return 0;
}
