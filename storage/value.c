/*
 * value.c - value builders and the growable buffer they write into.
 */
#include "storage/value.h"

#include <stdlib.h>
#include <string.h>

tarn_rc
tbuf_reserve(tbuf *b, size_t extra, tarn_err *err)
{
    size_t want = b->len + extra, cap;
    uint8_t *p;

    if (want <= b->cap)
        return TARN_OK;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return TARN_OK;
}

tarn_rc
tbuf_append(tbuf *b, const void *data, size_t len, tarn_err *err)
{
    tarn_rc rc = tbuf_reserve(b, len, err);

    if (rc != TARN_OK)
        return rc;
    if (len > 0)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return TARN_OK;
}

void
tbuf_free(tbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

bool
tval_will_init(const uint8_t *v, size_t len)
{
    switch (tval_kind_of(v, len)) {
    case TVAL_IMAGE:
    case TVAL_ZERO:
        return true;
    case TVAL_PGREC:
        return len >= TVAL_PGREC_HDR && (v[2] & 1);
    default:
        return false;
    }
}

const char *
tval_kind_name(tval_kind k)
{
    switch (k) {
    case TVAL_IMAGE:
        return "image";
    case TVAL_ZERO:
        return "zero page";
    case TVAL_PGREC:
        return "PostgreSQL record";
    case TVAL_CLOG:
        return "clog set";
    case TVAL_MXOFF:
        return "multixact offset";
    case TVAL_MXMEM:
        return "multixact members";
    case TVAL_VMCLEAR:
        return "visibility map clear";
    case TVAL_VMTRUNC:
        return "visibility map truncate";
    }
    return "unknown";
}

static tarn_rc
start(tbuf *out, tval_kind kind, size_t len, tarn_err *err)
{
    out->len = 0;
    if (tbuf_reserve(out, 1 + len, err) != TARN_OK)
        return TARN_ENOMEM;
    out->p[out->len++] = (uint8_t)kind;
    return TARN_OK;
}

static void
put32(tbuf *out, uint32_t v)
{
    tarn_put_u32(out->p + out->len, v);
    out->len += 4;
}

tarn_rc
tval_image(tbuf *out, const void *data, size_t len, tarn_err *err)
{
    if (start(out, TVAL_IMAGE, len, err) != TARN_OK)
        return TARN_ENOMEM;
    if (len > 0)
        memcpy(out->p + out->len, data, len);
    out->len += len;
    return TARN_OK;
}

tarn_rc
tval_zero(tbuf *out, tarn_err *err)
{
    return start(out, TVAL_ZERO, 0, err);
}

tarn_rc
tval_pgrec(tbuf *out, uint8_t block_id, bool will_init, const uint8_t *rec,
           size_t len, tarn_err *err)
{
    if (start(out, TVAL_PGREC, 2 + len, err) != TARN_OK)
        return TARN_ENOMEM;
    out->p[out->len++] = block_id;
    out->p[out->len++] = will_init ? 1 : 0;
    memcpy(out->p + out->len, rec, len);
    out->len += len;
    return TARN_OK;
}

tarn_rc
tval_clog(tbuf *out, uint8_t status, const uint32_t *xids, size_t n,
          tarn_err *err)
{
    if (start(out, TVAL_CLOG, 5 + 4 * n, err) != TARN_OK)
        return TARN_ENOMEM;
    out->p[out->len++] = status;
    put32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put32(out, xids[i]);
    return TARN_OK;
}

tarn_rc
tval_mxoff(tbuf *out, uint32_t mid, uint32_t moff, tarn_err *err)
{
    if (start(out, TVAL_MXOFF, 8, err) != TARN_OK)
        return TARN_ENOMEM;
    put32(out, mid);
    put32(out, moff);
    return TARN_OK;
}

tarn_rc
tval_mxmem(tbuf *out, uint32_t first, const uint32_t *xids,
           const uint8_t *status, size_t n, tarn_err *err)
{
    if (start(out, TVAL_MXMEM, 8 + 5 * n, err) != TARN_OK)
        return TARN_ENOMEM;
    put32(out, first);
    put32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        put32(out, xids[i]);
        out->p[out->len++] = status[i];
    }
    return TARN_OK;
}

tarn_rc
tval_vmclear(tbuf *out, uint32_t heapblk1, uint32_t heapblk2, uint8_t flags,
             tarn_err *err)
{
    if (start(out, TVAL_VMCLEAR, 9, err) != TARN_OK)
        return TARN_ENOMEM;
    put32(out, heapblk1);
    put32(out, heapblk2);
    out->p[out->len++] = flags;
    return TARN_OK;
}

tarn_rc
tval_vmtrunc(tbuf *out, uint32_t heap_nblocks, tarn_err *err)
{
    if (start(out, TVAL_VMTRUNC, 4, err) != TARN_OK)
        return TARN_ENOMEM;
    put32(out, heap_nblocks);
    return TARN_OK;
}
