/*
 * vref.h - the history of one key as a read collects it.
 *
 * A read walks layers from newest to oldest and appends what each has for
 * the key, newest first, until it meets a value that rebuilds the object
 * from nothing (an image, a zero page, a will_init record).  A reference
 * points either into memory (an in-memory layer) or at a blob in a layer
 * file, which is read only once the walk is over, so that a cached page
 * can be found before any blob is read.
 */
#ifndef TARN_STORAGE_VREF_H
#define TARN_STORAGE_VREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"

struct layer;

typedef struct vref {
    tarn_lsn lsn;
    bool will_init;
    uint32_t len;       /**< bytes of the stored blob or memory value */
    const uint8_t *mem; /**< in-memory value, or NULL */
    struct layer *file; /**< layer file holding the blob, or NULL */
    uint64_t off;       /**< blob offset in @p file */
} vref;

typedef struct vcollect {
    vref *v;
    size_t n, cap;
    bool complete; /**< reached a will_init value */
    vref inline_v[8];
} vcollect;

static inline void
vcollect_init(vcollect *c)
{
    c->v = c->inline_v;
    c->n = 0;
    c->cap = TARN_ARRAY_LEN(c->inline_v);
    c->complete = false;
}

void vcollect_free(vcollect *c);

/** Append one reference; sets complete when it will_init. */
tarn_rc vcollect_push(vcollect *c, const vref *r, tarn_err *err);

#endif
