/*
 * timeline.c - the layer map and the read path.
 *
 * The read path (collect) walks one timeline's layers from the newest
 * down, then its ancestor's below the branch point, gathering references
 * to the key's values until one rebuilds the key from nothing:
 *
 *   1. the open in-memory layer, then the frozen ones, newest first: they
 *      lie above every file layer in LSN;
 *   2. the file layers.  Delta layers do not overlap in LSN for a given
 *      key, and an image layer at LSN I holds the state of its whole key
 *      range at I.  So at each step, with everything above `cont` already
 *      read: take the newest image at or below cont that covers the key,
 *      and the newest delta that starts at or below cont.  If the image is
 *      inside or above that delta, read the delta only down to I+1 and then
 *      the image, which ends the walk (a key the image lacks does not exist
 *      at I).  Otherwise read the whole delta and go on below it;
 *   3. with nothing left, continue in the ancestor at min(cont, branch
 *      point).
 *
 * Blobs in layer files are read only after the walk, once it is known
 * which values are needed and whether the page cache already has the
 * result: the cache is keyed by the newest value, so any read whose
 * newest value is the same reuses the page.
 */
#include "storage/timeline.h"

#include <stdlib.h>
#include <string.h>

#include "storage/pg/pgdefs.h"

/*
 * The size cache.  Every GetPage first asks for its relation's size, and
 * at the latest LSN that answer is almost always the same as last time;
 * looking it up again walks the layers and reads a 4-byte blob from a
 * layer file (13% of a GetPage's CPU at scale 50).  So the timeline keeps
 * the newest value of size keys (relation and SLRU segment sizes) it has
 * seen, in a direct-mapped table, under one invariant:
 *
 *   an entry (k, from, value) means that k holds value at every LSN from
 *   `from` up to whatever ingest has put so far.
 *
 * timeline_put keeps it true: a put of k at L sets (k, L, new value).  A
 * lookup that missed may fill an entry only when no put lies above its
 * LSN (max_put): then nothing newer exists yet, and anything newer will
 * come through timeline_put.  Overwriting or dropping an entry never
 * breaks the invariant, so collisions simply evict, and adding a layer
 * from outside ingest (import, compaction) clears the table.
 */
#define SIZE_SLOTS 2048 /* 72 KiB, allocated on first use */

typedef struct size_ent {
    tkey k;
    uint8_t state; /* 0 empty, 1 absent, 2 present */
    uint32_t n;
    tarn_lsn from;
} size_ent;

struct timeline {
    tl_view v;
    size_t frozen_cap, deltas_cap, images_cap;
    tarn_lsn last_record, prev_record;
    tarn_lsn open_start;
    tarn_lsn max_put; /* the highest LSN timeline_put has seen */
    size_ent *sizes;  /* SIZE_SLOTS, or NULL */
    tarn_id tenant, id;
    memlayer_pool *pool;
};

tarn_rc
timeline_create(const timeline_opts *o, timeline **out, tarn_err *err)
{
    timeline *tl = calloc(1, sizeof(*tl));

    if (tl == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    tl->tenant = o->tenant;
    tl->id = o->id;
    tl->v.pc = o->pc;
    tl->v.rs = o->rs;
    tl->pool = o->pool;
    tl->v.cache_id = pagecache_new_id(o->pc);
    if (o->ancestor != NULL) {
        tl->v.ancestor = &o->ancestor->v;
        tl->v.ancestor_lsn = o->ancestor_lsn;
    }
    tl->last_record = o->last_record_lsn;
    tl->prev_record = o->prev_record_lsn;
    tl->open_start = o->last_record_lsn + 1;
    *out = tl;
    return TARN_OK;
}

void
timeline_destroy(timeline *tl)
{
    if (tl == NULL)
        return;
    memlayer_unref(tl->v.open);
    for (size_t i = 0; i < tl->v.nfrozen; i++)
        memlayer_unref(tl->v.frozen[i]);
    for (size_t i = 0; i < tl->v.ndeltas; i++)
        layer_unref(tl->v.deltas[i]);
    for (size_t i = 0; i < tl->v.nimages; i++)
        layer_unref(tl->v.images[i]);
    free(tl->v.frozen);
    free(tl->v.deltas);
    free(tl->v.images);
    free(tl->sizes);
    free(tl);
}

const tl_view *
timeline_view(const timeline *tl)
{
    return &tl->v;
}

static tl_view *
view_snapshot(const tl_view *src, tarn_err *err)
{
    tl_view *v = calloc(1, sizeof(*v));

    if (v == NULL)
        goto oom;
    *v = *src;
    v->snapshot = true;
    v->open = NULL;
    v->frozen = NULL;
    v->deltas = NULL;
    v->images = NULL;
    v->ancestor = NULL;
    v->nfrozen = v->ndeltas = v->nimages = 0;
    if ((src->nfrozen
         && (v->frozen = malloc(src->nfrozen * sizeof(*v->frozen))) == NULL)
        || (src->ndeltas
            && (v->deltas = malloc(src->ndeltas * sizeof(*v->deltas))) == NULL)
        || (src->nimages
            && (v->images = malloc(src->nimages * sizeof(*v->images))) == NULL))
        goto oom;
    for (; v->nfrozen < src->nfrozen; v->nfrozen++) {
        v->frozen[v->nfrozen] = src->frozen[v->nfrozen];
        memlayer_ref(v->frozen[v->nfrozen]);
    }
    for (; v->ndeltas < src->ndeltas; v->ndeltas++) {
        v->deltas[v->ndeltas] = src->deltas[v->ndeltas];
        layer_ref(v->deltas[v->ndeltas]);
    }
    for (; v->nimages < src->nimages; v->nimages++) {
        v->images[v->nimages] = src->images[v->nimages];
        layer_ref(v->images[v->nimages]);
    }
    if (src->ancestor != NULL
        && (v->ancestor = view_snapshot(src->ancestor, err)) == NULL) {
        tl_view_release(v);
        return NULL;
    }
    return v;
oom:
    tl_view_release(v);
    tarn_err_set(err, TARN_ENOMEM, "out of memory");
    return NULL;
}

tarn_rc
timeline_snapshot(const timeline *tl, tl_view **out, tarn_err *err)
{
    *out = view_snapshot(&tl->v, err);
    return *out != NULL ? TARN_OK : TARN_ENOMEM;
}

void
tl_view_release(tl_view *v)
{
    if (v == NULL)
        return;
    TARN_ASSERT(v->snapshot);
    for (size_t i = 0; i < v->nfrozen; i++)
        memlayer_unref(v->frozen[i]);
    for (size_t i = 0; i < v->ndeltas; i++)
        layer_unref(v->deltas[i]);
    for (size_t i = 0; i < v->nimages; i++)
        layer_unref(v->images[i]);
    free(v->frozen);
    free(v->deltas);
    free(v->images);
    tl_view_release(v->ancestor);
    free(v);
}

/* ---- the layer map ----------------------------------------------------- */

static tarn_rc
grow(void **arr, size_t *cap, size_t n, size_t elem, tarn_err *err)
{
    size_t c;
    void *p;

    if (n < *cap)
        return TARN_OK;
    c = *cap ? *cap * 2 : 16;
    p = realloc(*arr, c * elem);
    if (p == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    *arr = p;
    *cap = c;
    return TARN_OK;
}

/* Insert keeping @p arr sorted by @p sortkey, descending. */
static void
insert_desc(layer **arr, size_t *n, layer *l, tarn_lsn (*sortkey)(layer *))
{
    size_t i = 0;
    tarn_lsn k = sortkey(l);

    while (i < *n && sortkey(arr[i]) >= k)
        i++;
    memmove(arr + i + 1, arr + i, (*n - i) * sizeof(*arr));
    arr[i] = l;
    (*n)++;
}

static tarn_lsn
by_end(layer *l)
{
    return layer_get_desc(l)->lsn_end;
}

static tarn_lsn
by_start(layer *l)
{
    return layer_get_desc(l)->lsn_start;
}

static bool
is_size_key(const tkey *k)
{
    return (tkey_f1(k) == TKEY_REL || tkey_f1(k) == TKEY_SLRU)
           && tkey_f6(k) == TKEY_SIZE_BLK;
}

static size_ent *
size_slot(timeline *tl, const tkey *k)
{
    if (tl->sizes == NULL
        && (tl->sizes = calloc(SIZE_SLOTS, sizeof(*tl->sizes))) == NULL)
        return NULL; /* no cache; every lookup reads the layers */
    return &tl->sizes[tkey_hash(k) & (SIZE_SLOTS - 1)];
}

/* A size value as the cache holds it: 4 bytes, or empty (dropped). */
static void
size_set(size_ent *e, const tkey *k, tarn_lsn from, const uint8_t *val,
         size_t len)
{
    e->k = *k;
    e->from = from;
    e->state = len == 4 ? 2 : 1; /* anything else is a dropped size */
    e->n = len == 4 ? tarn_get_u32(val) : 0;
}

static tarn_rc
add_layer(timeline *tl, layer *l, tarn_err *err)
{
    const layer_desc *d = layer_get_desc(l);

    if (d->kind == LAYER_IMAGE) {
        if (grow((void **)&tl->v.images, &tl->images_cap, tl->v.nimages,
                 sizeof(layer *), err)
            != TARN_OK)
            return TARN_ENOMEM;
        layer_ref(l);
        insert_desc(tl->v.images, &tl->v.nimages, l, by_start);
    } else {
        if (grow((void **)&tl->v.deltas, &tl->deltas_cap, tl->v.ndeltas,
                 sizeof(layer *), err)
            != TARN_OK)
            return TARN_ENOMEM;
        layer_ref(l);
        insert_desc(tl->v.deltas, &tl->v.ndeltas, l, by_end);
    }
    return TARN_OK;
}

tarn_rc
timeline_add_layer(timeline *tl, layer *l, tarn_err *err)
{
    /* A layer from outside ingest may hold values the cache has not seen. */
    if (tl->sizes != NULL)
        memset(tl->sizes, 0, SIZE_SLOTS * sizeof(*tl->sizes));
    /* lsn_end is exclusive: the layer's newest value is below it. */
    if (layer_get_desc(l)->lsn_end - 1 > tl->max_put)
        tl->max_put = layer_get_desc(l)->lsn_end - 1;
    return add_layer(tl, l, err);
}

tarn_rc
timeline_get_size(timeline *tl, const tkey *k, tarn_lsn lsn, bool *exists,
                  uint32_t *n, tarn_err *err)
{
    size_ent *e = is_size_key(k) ? size_slot(tl, k) : NULL;
    tbuf v = {0};
    bool found;
    char kd[128];
    tarn_rc rc;

    if (e != NULL && e->state != 0 && tkey_eq(&e->k, k) && lsn >= e->from) {
        *exists = e->state == 2;
        *n = e->n;
        return TARN_OK;
    }
    *exists = false;
    *n = 0;
    if ((rc = tl_get_value(&tl->v, k, lsn, &v, &found, err)) != TARN_OK)
        goto done;
    if (found && v.len != 4) {
        rc = tarn_err_set(err, TARN_ECORRUPT, "%s holds %zu bytes, not 4",
                          tkey_describe(k, kd, sizeof(kd)), v.len);
        goto done;
    }
    if (found) {
        *exists = true;
        *n = tarn_get_u32(v.p);
    }
    if (e != NULL && lsn >= tl->max_put)
        size_set(e, k, lsn, v.p, found ? v.len : 0);
done:
    tbuf_free(&v);
    return rc;
}

tarn_rc
timeline_put(timeline *tl, const tkey *k, tarn_lsn lsn, const uint8_t *val,
             size_t len, tarn_err *err)
{
    size_ent *e;
    tarn_rc rc;

    if (tl->v.open == NULL
        && memlayer_create(tl->open_start, tl->pool, &tl->v.open, err)
               != TARN_OK)
        return TARN_ENOMEM;
    if ((rc = memlayer_put(tl->v.open, k, lsn, val, len, err)) != TARN_OK)
        return rc;
    if (lsn > tl->max_put)
        tl->max_put = lsn;
    /* A size value is an image kind byte and 4 bytes, or the byte alone
     * for a dropped relation; anything else is not cached. */
    if (is_size_key(k) && (e = size_slot(tl, k)) != NULL) {
        if (len >= 1 && tval_kind_of(val, len) == TVAL_IMAGE
            && (len == 1 || len == 5))
            size_set(e, k, lsn, val + 1, len - 1);
        else if (tkey_eq(&e->k, k))
            e->state = 0;
    }
    return TARN_OK;
}

tarn_rc
timeline_put_commit_ts(timeline *tl, int64_t ts, tarn_lsn lsn, tarn_err *err)
{
    if (tl->v.open == NULL
        && memlayer_create(tl->open_start, tl->pool, &tl->v.open, err)
               != TARN_OK)
        return TARN_ENOMEM;
    return memlayer_add_commit_ts(tl->v.open, ts, lsn, err);
}

void
timeline_advance(timeline *tl, tarn_lsn end, tarn_lsn start)
{
    TARN_ASSERT(end >= tl->last_record);
    tl->last_record = end;
    tl->prev_record = start;
}

tarn_lsn
timeline_last_record_lsn(const timeline *tl)
{
    return tl->last_record;
}

tarn_lsn
timeline_prev_record_lsn(const timeline *tl)
{
    return tl->prev_record;
}

tarn_lsn
timeline_open_start(const timeline *tl)
{
    return tl->open_start;
}

size_t
timeline_open_bytes(const timeline *tl)
{
    return tl->v.open ? memlayer_bytes(tl->v.open) : 0;
}

size_t
timeline_frozen_bytes(const timeline *tl)
{
    size_t n = 0;

    for (size_t i = 0; i < tl->v.nfrozen; i++)
        n += memlayer_bytes(tl->v.frozen[i]);
    return n;
}

uint64_t
timeline_open_span(const timeline *tl)
{
    return tl->last_record + 1 > tl->open_start
               ? tl->last_record + 1 - tl->open_start
               : 0;
}

memlayer *
timeline_freeze(timeline *tl)
{
    memlayer *m = tl->v.open;
    tarn_err err;

    tl->v.open = NULL;
    if (m == NULL || memlayer_nvalues(m) == 0) {
        size_t ncts;
        if (m != NULL)
            TARN_ASSERT(memlayer_commit_ts(m, &ncts) == NULL || ncts == 0);
        memlayer_unref(m);
        tl->open_start = tl->last_record + 1;
        return NULL;
    }
    if (grow((void **)&tl->v.frozen, &tl->frozen_cap, tl->v.nfrozen,
             sizeof(memlayer *), &err)
        != TARN_OK) {
        tl->v.open = m; /* try again later */
        return NULL;
    }
    memlayer_freeze(m, tl->last_record + 1);
    tl->v.frozen[tl->v.nfrozen++] = m;
    tl->open_start = tl->last_record + 1;
    memlayer_ref(m);
    return m;
}

size_t
timeline_nfrozen(const timeline *tl)
{
    return tl->v.nfrozen;
}

memlayer *
timeline_oldest_frozen(const timeline *tl)
{
    return tl->v.nfrozen ? tl->v.frozen[0] : NULL;
}

tarn_rc
timeline_frozen_done(timeline *tl, memlayer *m, layer *l, tarn_err *err)
{
    TARN_ASSERT(tl->v.nfrozen > 0 && tl->v.frozen[0] == m);
    /* The same values as the memlayer: the size cache stays true. */
    if (l != NULL && add_layer(tl, l, err) != TARN_OK)
        return TARN_ENOMEM;
    memmove(tl->v.frozen, tl->v.frozen + 1,
            (tl->v.nfrozen - 1) * sizeof(*tl->v.frozen));
    tl->v.nfrozen--;
    memlayer_unref(m);
    return TARN_OK;
}

void
timeline_layer_stats(const timeline *tl, size_t *ndeltas, size_t *nimages,
                     uint64_t *bytes)
{
    uint64_t b = 0;

    for (size_t i = 0; i < tl->v.ndeltas; i++)
        b += layer_get_desc(tl->v.deltas[i])->file_size;
    for (size_t i = 0; i < tl->v.nimages; i++)
        b += layer_get_desc(tl->v.images[i])->file_size;
    *ndeltas = tl->v.ndeltas;
    *nimages = tl->v.nimages;
    *bytes = b;
}

/* ---- the read path ----------------------------------------------------- */

static inline bool
covers(const layer *l, const tkey *k)
{
    const layer_desc *d = layer_get_desc(l);

    return tkey_cmp(k, &d->key_start) >= 0 && tkey_cmp(k, &d->key_end) < 0;
}

/* Read @p m's values of @p k in [its start, cont]. */
static tarn_rc
collect_mem(memlayer *m, const tkey *k, tarn_lsn *cont, vcollect *c,
            tarn_err *err)
{
    tarn_lsn start = memlayer_start(m), end = memlayer_end(m);
    tarn_lsn ceil = *cont;
    tarn_rc rc;

    if (start > *cont)
        return TARN_OK;
    if (end != TARN_LSN_MAX && ceil >= end)
        ceil = end - 1;
    if ((rc = memlayer_collect(m, k, start, ceil, c, err)) != TARN_OK)
        return rc;
    *cont = start - 1;
    return TARN_OK;
}

/*
 * Collect the history of @p k at @p lsn.  *src is the view in which the
 * newest value was found (for the page cache); *absent is set when an
 * image layer showed that the key did not exist.
 */
static tarn_rc
collect(const tl_view *v, const tkey *k, tarn_lsn lsn, vcollect *c,
        const tl_view **src, tarn_err *err)
{
    tarn_lsn cont = lsn;
    pc_ring *ring = v->ring;
    tarn_rc rc;

    *src = NULL;
    for (; v != NULL; v = v->ancestor) {
        size_t before = c->n, di = 0, ii = 0;

        if (v->open != NULL) {
            if ((rc = collect_mem(v->open, k, &cont, c, err)) != TARN_OK)
                return rc;
            if (c->complete)
                goto found;
        }
        for (size_t i = v->nfrozen; i-- > 0;) {
            if ((rc = collect_mem(v->frozen[i], k, &cont, c, err)) != TARN_OK)
                return rc;
            if (c->complete)
                goto found;
        }
        for (;;) {
            layer *img = NULL, *d = NULL;
            bool present;
            /* The newest image at or below cont that covers the key. */
            for (; ii < v->nimages; ii++) {
                layer *l = v->images[ii];
                if (layer_get_desc(l)->lsn_start <= cont && covers(l, k)) {
                    img = l;
                    break;
                }
            }
            /* The newest delta starting at or below cont. */
            for (; di < v->ndeltas; di++) {
                layer *l = v->deltas[di];
                if (layer_get_desc(l)->lsn_start <= cont && covers(l, k)) {
                    d = l;
                    break;
                }
            }
            if (d != NULL) {
                const layer_desc *dd = layer_get_desc(d);
                bool img_inside =
                    img != NULL
                    && layer_get_desc(img)->lsn_start >= dd->lsn_start;
                tarn_lsn floor = img_inside ? layer_get_desc(img)->lsn_start + 1
                                            : dd->lsn_start;
                if ((rc = layer_collect(d, ring, k, floor, cont, c, &present,
                                        err))
                    != TARN_OK)
                    return rc;
                if (c->complete)
                    goto found;
                di++;
                if (!img_inside) {
                    cont = dd->lsn_start - 1;
                    continue;
                }
            }
            if (img != NULL) {
                tarn_lsn il = layer_get_desc(img)->lsn_start;
                if ((rc = layer_collect(img, ring, k, il, il, c, &present, err))
                    != TARN_OK)
                    return rc;
                /* Present or not, the image is the whole truth at il. */
                if (c->n > before && *src == NULL)
                    *src = v;
                return TARN_OK;
            }
            break;
        }
        if (c->n > before && *src == NULL)
            *src = v;
        if (cont > v->ancestor_lsn)
            cont = v->ancestor_lsn;
    }
    return TARN_OK;
found:
    if (*src == NULL)
        *src = v;
    return TARN_OK;
}

/* Bytes of value @p r (from memory or its layer file). */
static tarn_rc
ref_bytes(const vref *r, tbuf *tmp, const uint8_t **val, size_t *len,
          tarn_err *err)
{
    tarn_rc rc;

    if (r->mem != NULL || r->file == NULL) {
        *val = r->mem;
        *len = r->len;
        return TARN_OK;
    }
    if ((rc = layer_read_value(r->file, r->off, r->len, tmp, err)) != TARN_OK)
        return rc;
    *val = tmp->p;
    *len = tmp->len;
    return TARN_OK;
}

/*
 * A page read in two phases.  Collecting the history touches the layer
 * map, which only the reactor may read; applying it (reading blobs from
 * immutable layer files and running redo) may run anywhere once the read
 * is detached: the values that live in memory layers are copied and the
 * layer files referenced, so nothing the reactor changes is shared.
 */
struct tl_page_read {
    vcollect c;    /* oldest value last */
    tbuf own;      /* copies of in-memory values, once detached */
    bool detached; /* file layers referenced, memory values copied */
    pc_key ck;     /* where the result goes in the page cache */
    tkey k;
    pagecache *pc;
    bool cache; /* put the result in the page cache */
    redo_stats *rs;
};

void
tl_page_read_free(tl_page_read *rd)
{
    if (rd == NULL)
        return;
    if (rd->detached)
        for (size_t i = 0; i < rd->c.n; i++)
            if (rd->c.v[i].file != NULL)
                layer_unref(rd->c.v[i].file);
    vcollect_free(&rd->c);
    tbuf_free(&rd->own);
    free(rd);
}

size_t
tl_page_read_values(const tl_page_read *rd)
{
    return rd->c.n;
}

tarn_rc
tl_page_read_start(const tl_view *v, const tkey *k, tarn_lsn lsn, uint8_t *page,
                   tl_page_read **out, tarn_err *err)
{
    tl_page_read *rd;
    const tl_view *src;
    char kd[128], l[TARN_LSN_STRLEN];
    tarn_rc rc;

    *out = NULL;
    if ((rd = calloc(1, sizeof(*rd))) == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    vcollect_init(&rd->c);
    rd->k = *k, rd->pc = v->pc, rd->rs = v->rs;
    /* A bulk pass reads each page once: caching it would only evict. */
    rd->cache = v->ring == NULL;
    if ((rc = collect(v, k, lsn, &rd->c, &src, err)) != TARN_OK)
        goto fail;
    if (rd->c.n == 0) {
        rc = tarn_err_set(err, TARN_ENOTFOUND, "%s has no history at %s",
                          tkey_describe(k, kd, sizeof(kd)),
                          tarn_lsn_format(lsn, l));
        goto fail;
    }
    if (!rd->c.complete) {
        rc = tarn_err_set(err, TARN_EPRECOND,
                          "%s at %s: its history starts with a change to an "
                          "older page that this timeline does not have "
                          "(was it created without base data?)",
                          tkey_describe(k, kd, sizeof(kd)),
                          tarn_lsn_format(lsn, l));
        goto fail;
    }
    rd->ck.kind = PC_PAGE;
    rd->ck.id = src->cache_id;
    rd->ck.num = rd->c.v[0].lsn;
    rd->ck.key = *k;
    if (pagecache_get(v->pc, v->ring, &rd->ck, page)) {
        tl_page_read_free(rd);
        return TARN_OK;
    }
    *out = rd;
    return TARN_OK;
fail:
    tl_page_read_free(rd);
    return rc;
}

tarn_rc
tl_page_read_detach(tl_page_read *rd, tarn_err *err)
{
    size_t total = 0, off = 0;

    if (rd->detached)
        return TARN_OK;
    for (size_t i = 0; i < rd->c.n; i++)
        if (rd->c.v[i].file == NULL && rd->c.v[i].mem != NULL)
            total += rd->c.v[i].len;
    if (total > 0 && tbuf_reserve(&rd->own, total, err) != TARN_OK)
        return TARN_ENOMEM;
    /* Reserved up front: the copies never move once made. */
    for (size_t i = 0; i < rd->c.n; i++) {
        vref *r = &rd->c.v[i];
        if (r->file != NULL) {
            layer_ref(r->file);
        } else if (r->mem != NULL) {
            memcpy(rd->own.p + off, r->mem, r->len);
            r->mem = rd->own.p + off;
            off += r->len;
        }
    }
    rd->own.len = off;
    rd->detached = true;
    return TARN_OK;
}

tarn_rc
tl_page_read_finish(tl_page_read *rd, uint8_t *page, tarn_err *err)
{
    tbuf tmp = {0};
    tarn_rc rc = TARN_OK;

    for (size_t i = rd->c.n; i-- > 0;) {
        const uint8_t *val;
        size_t len;
        if ((rc = ref_bytes(&rd->c.v[i], &tmp, &val, &len, err)) != TARN_OK)
            goto done;
        if (i == rd->c.n - 1 && tval_kind_of(val, len) == TVAL_PGREC)
            memset(page, 0, PG_BLCKSZ); /* a will_init record */
        if ((rc = redo_apply(rd->rs, page, &rd->k, rd->c.v[i].lsn, val, len,
                             err))
            != TARN_OK)
            goto done;
    }
    if (rd->cache)
        pagecache_put(rd->pc, NULL, &rd->ck, page);
done:
    tbuf_free(&tmp);
    return rc;
}

tarn_rc
tl_get_page(const tl_view *v, const tkey *k, tarn_lsn lsn, uint8_t *page,
            tarn_err *err)
{
    tl_page_read *rd;
    tarn_rc rc = tl_page_read_start(v, k, lsn, page, &rd, err);

    if (rc != TARN_OK || rd == NULL)
        return rc;
    rc = tl_page_read_finish(rd, page, err);
    tl_page_read_free(rd);
    return rc;
}

tarn_rc
tl_get_value(const tl_view *v, const tkey *k, tarn_lsn lsn, tbuf *out,
             bool *found, tarn_err *err)
{
    vcollect c;
    const tl_view *src;
    const uint8_t *val;
    size_t len;
    tbuf tmp = {0};
    char kd[128];
    tarn_rc rc;

    *found = false;
    out->len = 0;
    vcollect_init(&c);
    if ((rc = collect(v, k, lsn, &c, &src, err)) != TARN_OK || c.n == 0)
        goto done;
    if ((rc = ref_bytes(&c.v[0], &tmp, &val, &len, err)) != TARN_OK)
        goto done;
    if (tval_kind_of(val, len) != TVAL_IMAGE) {
        rc = tarn_err_set(err, TARN_ECORRUPT, "%s holds a %s, not an image",
                          tkey_describe(k, kd, sizeof(kd)),
                          tval_kind_name(tval_kind_of(val, len)));
        goto done;
    }
    if (len > 1) {
        if ((rc = tbuf_append(out, val + 1, len - 1, err)) != TARN_OK)
            goto done;
        *found = true;
    }
done:
    tbuf_free(&tmp);
    vcollect_free(&c);
    return rc;
}

/* ---- scans ------------------------------------------------------------- */

typedef struct keyset {
    tkey *k;
    size_t n, cap;
} keyset;

static tarn_rc
keyset_add(void *arg, const tkey *k, tarn_err *err)
{
    keyset *s = arg;

    if (grow((void **)&s->k, &s->cap, s->n, sizeof(tkey), err) != TARN_OK)
        return TARN_ENOMEM;
    s->k[s->n++] = *k;
    return TARN_OK;
}

static int
cmp_tkey(const void *a, const void *b)
{
    return tkey_cmp(a, b);
}

static bool
range_overlaps(const layer *l, const tkey *lo, const tkey *hi)
{
    const layer_desc *d = layer_get_desc(l);

    return tkey_cmp(hi, &d->key_start) >= 0 && tkey_cmp(lo, &d->key_end) < 0;
}

tarn_rc
tl_scan(const tl_view *v, const tkey *lo, const tkey *hi, tarn_lsn lsn,
        tarn_rc (*fn)(void *arg, const tkey *k, const uint8_t *val, size_t len,
                      tarn_err *err),
        void *arg, tarn_err *err)
{
    keyset s = {0};
    tbuf val = {0};
    tarn_lsn cont = lsn;
    tarn_rc rc = TARN_OK;
    size_t u = 0;

    /* Every key that any reachable layer holds in the range... */
    for (const tl_view *w = v; w != NULL && rc == TARN_OK; w = w->ancestor) {
        if (w->open != NULL && memlayer_start(w->open) <= cont)
            rc = memlayer_each_key(w->open, lo, hi, keyset_add, &s, err);
        for (size_t i = 0; i < w->nfrozen && rc == TARN_OK; i++)
            if (memlayer_start(w->frozen[i]) <= cont)
                rc = memlayer_each_key(w->frozen[i], lo, hi, keyset_add, &s,
                                       err);
        for (size_t i = 0; i < w->ndeltas && rc == TARN_OK; i++)
            if (layer_get_desc(w->deltas[i])->lsn_start <= cont
                && range_overlaps(w->deltas[i], lo, hi))
                rc = layer_each_key(w->deltas[i], v->ring, lo, hi, keyset_add,
                                    &s, err);
        for (size_t i = 0; i < w->nimages && rc == TARN_OK; i++)
            if (layer_get_desc(w->images[i])->lsn_start <= cont
                && range_overlaps(w->images[i], lo, hi))
                rc = layer_each_key(w->images[i], v->ring, lo, hi, keyset_add,
                                    &s, err);
        if (cont > w->ancestor_lsn)
            cont = w->ancestor_lsn;
    }
    if (rc != TARN_OK)
        goto done;
    /* ...then the value of each at @p lsn, in key order. */
    if (s.n > 0)
        qsort(s.k, s.n, sizeof(tkey), cmp_tkey);
    for (size_t i = 0; i < s.n; i++)
        if (u == 0 || !tkey_eq(&s.k[u - 1], &s.k[i]))
            s.k[u++] = s.k[i];
    for (size_t i = 0; i < u; i++) {
        bool found;
        if ((rc = tl_get_value(v, &s.k[i], lsn, &val, &found, err)) != TARN_OK)
            goto done;
        if (found && (rc = fn(arg, &s.k[i], val.p, val.len, err)) != TARN_OK)
            goto done;
    }
done:
    free(s.k);
    tbuf_free(&val);
    return rc;
}
