/*
 * walgen.c - WAL page assembly.
 *
 * Records are placed the way ReserveXLogInsertLocation and CopyXLogRecord
 * place them: at an 8-byte boundary, continuing after the next page header
 * when the page is full, with xlp_rem_len counting the bytes still to come.
 */
#include "storage/pg/walgen.h"

#include <stdlib.h>
#include <string.h>

#include "server/core/crc32c.h"
#include "storage/pg/pgwal.h"

struct walgen {
    uint64_t sysid;
    uint32_t seg_size, tli;
    tarn_lsn start, pos, prev;
    uint8_t *buf;
    size_t len, cap;
};

static tarn_rc
reserve(walgen *g, size_t more, tarn_err *err)
{
    if (g->len + more <= g->cap)
        return TARN_OK;
    size_t cap = g->cap ? g->cap : 65536;
    while (cap < g->len + more)
        cap *= 2;
    uint8_t *b = realloc(g->buf, cap);
    if (b == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    g->buf = b;
    g->cap = cap;
    return TARN_OK;
}

/* Write the page header at g->pos (a page boundary). */
static tarn_rc
page_header(walgen *g, uint32_t rem, tarn_err *err)
{
    uint32_t size = pg_page_header_size(g->pos, g->seg_size);
    uint16_t info = rem ? PG_XLP_FIRST_IS_CONTRECORD : 0;
    uint8_t *h;
    tarn_rc rc = reserve(g, size, err);

    if (rc != TARN_OK)
        return rc;
    h = g->buf + g->len;
    memset(h, 0, size);
    if (size == PG_LONG_PHD)
        info |= PG_XLP_LONG_HEADER;
    tarn_put_u16(h + PG_PHD_MAGIC, PG_XLOG_PAGE_MAGIC);
    tarn_put_u16(h + PG_PHD_INFO, info);
    tarn_put_u32(h + PG_PHD_TLI, g->tli);
    tarn_put_u64(h + PG_PHD_PAGEADDR, g->pos);
    tarn_put_u32(h + PG_PHD_REM_LEN, rem);
    if (size == PG_LONG_PHD) {
        tarn_put_u64(h + PG_PHD_SYSID, g->sysid);
        tarn_put_u32(h + PG_PHD_SEG_SIZE, g->seg_size);
        tarn_put_u32(h + PG_PHD_XLOG_BLCKSZ, PG_XLOG_BLCKSZ);
    }
    g->len += size;
    g->pos += size;
    return TARN_OK;
}

/*
 * Copy @p len bytes of a record, @p rem bytes of which (these included)
 * are still to be written, breaking at page boundaries.
 */
static tarn_rc
emit(walgen *g, const uint8_t *p, size_t len, uint32_t rem, tarn_err *err)
{
    while (len > 0) {
        tarn_rc rc;
        size_t n;
        if (g->pos % PG_XLOG_BLCKSZ == 0
            && (rc = page_header(g, rem, err)) != TARN_OK)
            return rc;
        n = PG_XLOG_BLCKSZ - g->pos % PG_XLOG_BLCKSZ;
        if (n > len)
            n = len;
        if ((rc = reserve(g, n, err)) != TARN_OK)
            return rc;
        memcpy(g->buf + g->len, p, n);
        g->len += n;
        g->pos += n;
        p += n;
        len -= n;
        rem -= (uint32_t)n;
    }
    return TARN_OK;
}

static tarn_rc
zeros(walgen *g, size_t n, tarn_err *err)
{
    tarn_rc rc = reserve(g, n, err);

    if (rc != TARN_OK)
        return rc;
    memset(g->buf + g->len, 0, n);
    g->len += n;
    g->pos += n;
    return TARN_OK;
}

tarn_rc
walgen_create(uint64_t sysid, uint32_t seg_size, uint32_t tli, tarn_lsn start,
              tarn_lsn prev, walgen **out, tarn_err *err)
{
    walgen *g;

    if (!pg_seg_size_valid(seg_size) || start % 8 != 0)
        return tarn_err_set(err, TARN_EINVAL,
                            "bad WAL segment size or unaligned start");
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    g->sysid = sysid;
    g->seg_size = seg_size;
    g->tli = tli;
    g->start = g->pos = start;
    g->prev = prev;
    *out = g;
    return TARN_OK;
}

void
walgen_destroy(walgen *g)
{
    if (g == NULL)
        return;
    free(g->buf);
    free(g);
}

tarn_rc
walgen_append(walgen *g, uint8_t rmid, uint8_t info, uint32_t xid,
              const void *body, size_t len, tarn_lsn *start, tarn_lsn *end,
              tarn_err *err)
{
    uint8_t hdr[PG_REC_HDR] = {0};
    uint32_t tot = (uint32_t)(PG_REC_HDR + len), crc;
    tarn_lsn rec_start;
    tarn_rc rc;

    if (len > PG_REC_MAX_LEN - PG_REC_HDR)
        return tarn_err_set(err, TARN_EINVAL, "record too long");
    /* A record starts after the page header when it is at a boundary. */
    if (g->pos % PG_XLOG_BLCKSZ == 0
        && (rc = page_header(g, 0, err)) != TARN_OK)
        return rc;
    rec_start = g->pos;
    tarn_put_u32(hdr + PG_REC_TOT_LEN, tot);
    tarn_put_u32(hdr + PG_REC_XID, xid);
    tarn_put_u64(hdr + PG_REC_PREV, g->prev);
    hdr[PG_REC_INFO] = info;
    hdr[PG_REC_RMID] = rmid;
    crc = tarn_crc32c_update(TARN_CRC32C_INIT, body, len);
    crc = tarn_crc32c_final(tarn_crc32c_update(crc, hdr, PG_REC_CRC));
    tarn_put_u32(hdr + PG_REC_CRC, crc);
    if ((rc = emit(g, hdr, PG_REC_HDR, tot, err)) != TARN_OK
        || (rc = emit(g, body, len, tot - PG_REC_HDR, err)) != TARN_OK)
        return rc;
    /* Pad to the next record (padding never crosses a page boundary). */
    if ((rc = zeros(g, PG_MAXALIGN(g->pos) - g->pos, err)) != TARN_OK)
        return rc;
    g->prev = rec_start;
    if (start)
        *start = rec_start;
    if (end)
        *end = g->pos;
    return TARN_OK;
}

tarn_rc
walgen_append_main(walgen *g, uint8_t rmid, uint8_t info, uint32_t xid,
                   const void *main, size_t len, tarn_lsn *start, tarn_lsn *end,
                   tarn_err *err)
{
    uint8_t *body = malloc(len + 5);
    size_t hl;
    tarn_rc rc;

    if (body == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if (len < 256) {
        body[0] = 0xFF; /* XLR_BLOCK_ID_DATA_SHORT */
        body[1] = (uint8_t)len;
        hl = 2;
    } else {
        body[0] = 0xFE; /* XLR_BLOCK_ID_DATA_LONG */
        tarn_put_u32(body + 1, (uint32_t)len);
        hl = 5;
    }
    memcpy(body + hl, main, len);
    rc = walgen_append(g, rmid, info, xid, body, hl + len, start, end, err);
    free(body);
    return rc;
}

tarn_rc
walgen_switch(walgen *g, tarn_lsn *start, tarn_lsn *end, tarn_err *err)
{
    tarn_rc rc = walgen_append(g, PG_RM_XLOG_ID, PG_XLOG_SWITCH, 0, NULL, 0,
                               start, NULL, err);

    if (rc != TARN_OK)
        return rc;
    while (g->pos % g->seg_size != 0) {
        if (g->pos % PG_XLOG_BLCKSZ == 0) {
            if ((rc = page_header(g, 0, err)) != TARN_OK)
                return rc;
            continue;
        }
        rc = zeros(g, PG_XLOG_BLCKSZ - g->pos % PG_XLOG_BLCKSZ, err);
        if (rc != TARN_OK)
            return rc;
    }
    if (end)
        *end = g->pos;
    return TARN_OK;
}

tarn_rc
walgen_pad_to_page(walgen *g, tarn_err *err)
{
    if (g->pos % PG_XLOG_BLCKSZ == 0)
        return TARN_OK;
    return zeros(g, PG_XLOG_BLCKSZ - g->pos % PG_XLOG_BLCKSZ, err);
}

const uint8_t *
walgen_data(const walgen *g, size_t *len)
{
    *len = g->len;
    return g->buf;
}

tarn_lsn
walgen_pos(const walgen *g)
{
    return g->pos;
}
