/*
 * fuzz_redo.c - arbitrary values through redo_apply() on every kind of
 * page key.
 *
 * Input: byte 0 picks the key (pg_xact, multixact offsets or members,
 * a visibility-map block, a heap block) and whether the page starts as
 * zeros or as a pattern; bytes 1..4 the SLRU page or block number; the
 * rest is the value.  Invariants: no crash or sanitizer report, the result
 * is TARN_OK, TARN_ECORRUPT or TARN_EUNSUPPORTED, and a refused value
 * leaves an error message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/types.h"
#include "storage/key.h"
#include "storage/redo/redo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static redo_stats st;
    static uint8_t page[8192];
    tarn_err err = {0};
    uint32_t n;
    tkey k;
    tarn_rc rc;

    if (size < 5)
        return 0;
    n = tarn_get_u32(data + 1);
    switch (data[0] % 5) {
    case 0:
        k = tkey_slru_block(SLRU_CLOG, n / 32 % 4096, n % 32);
        break;
    case 1:
        k = tkey_slru_block(SLRU_MXOFFSETS, n / 32 % 4096, n % 32);
        break;
    case 2:
        k = tkey_slru_block(SLRU_MXMEMBERS, n / 32 % 65536, n % 32);
        break;
    case 3:
        k = tkey_rel_block(1663, 5, 16384, 2, n);
        break;
    default:
        k = tkey_rel_block(1663, 5, 16384, 0, n);
        break;
    }
    if (data[0] & 0x80)
        memset(page, 0, sizeof(page));
    else
        for (size_t i = 0; i < sizeof(page); i++)
            page[i] = (uint8_t)(i * 31 + 7);
    rc = redo_apply(&st, page, &k, 0x1000000, data + 5, size - 5, &err);
    if (rc != TARN_OK && rc != TARN_ECORRUPT && rc != TARN_EUNSUPPORTED)
        abort();
    if (rc != TARN_OK && err.msg[0] == '\0')
        abort();
    return 0;
}
