/*
 * memlayer.c - the in-memory layer.
 *
 * Why this shape.  Ingest writes at WAL speed, and most keys get one or
 * two versions per layer, so each key keeps its first version inline and
 * only a key with more history gets a version array.  Values are copied
 * once into 1 MiB arena chunks (never moved, so references into them stay
 * valid for as long as the layer lives).  The index is open addressing on
 * tkey_hash() with at most half the slots used.
 */
#include "storage/memlayer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "storage/value.h"

#define CHUNK_SIZE (1u << 20)

typedef struct ml_ver {
    tarn_lsn lsn;
    const uint8_t *data;
    uint32_t len;
    bool will_init;
} ml_ver;

typedef struct ml_key {
    tkey key;
    uint32_t n, cap; /* cap 0: the one version is inline */
    ml_ver first;
    ml_ver *more;
} ml_key;

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    uint8_t data[];
} chunk;

struct memlayer_pool {
    pthread_mutex_t mu;
    chunk *free; /* CHUNK_SIZE chunks only */
    size_t nfree, keep;
};

struct memlayer {
    atomic_int refs;
    memlayer_pool *pool;
    tarn_lsn start, end, last;
    bool frozen;
    chunk *chunks; /* newest first */
    size_t arena_bytes;
    ml_key *keys;
    size_t nkeys, keys_cap;
    uint32_t *slots; /* key index + 1; 0 = empty */
    size_t nslots;
    size_t nvalues, ver_bytes;
    commit_ts *cts;
    size_t ncts, cts_cap;
    tkey lo, hi;
};

void
vcollect_free(vcollect *c)
{
    if (c->v != c->inline_v)
        free(c->v);
    vcollect_init(c);
}

tarn_rc
vcollect_push(vcollect *c, const vref *r, tarn_err *err)
{
    if (c->n == c->cap) {
        size_t cap = c->cap * 2;
        vref *v = malloc(cap * sizeof(*v));
        if (v == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        memcpy(v, c->v, c->n * sizeof(*v));
        if (c->v != c->inline_v)
            free(c->v);
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *r;
    if (r->will_init)
        c->complete = true;
    return TARN_OK;
}

tarn_rc
memlayer_pool_create(size_t keep, memlayer_pool **out, tarn_err *err)
{
    memlayer_pool *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    p->keep = keep;
    *out = p;
    return TARN_OK;
}

void
memlayer_pool_destroy(memlayer_pool *p)
{
    chunk *c;

    if (p == NULL)
        return;
    while ((c = p->free) != NULL) {
        p->free = c->next;
        free(c);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void
memlayer_pool_set_keep(memlayer_pool *p, size_t keep)
{
    chunk *drop = NULL, *c;

    pthread_mutex_lock(&p->mu);
    p->keep = keep;
    while (p->nfree * CHUNK_SIZE > p->keep) {
        c = p->free;
        p->free = c->next;
        p->nfree--;
        c->next = drop;
        drop = c;
    }
    pthread_mutex_unlock(&p->mu);
    while ((c = drop) != NULL) {
        drop = c->next;
        free(c);
    }
}

size_t
memlayer_pool_bytes(memlayer_pool *p)
{
    size_t n;

    pthread_mutex_lock(&p->mu);
    n = p->nfree * CHUNK_SIZE;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* A chunk of @p size data bytes: from the pool if it has one. */
static chunk *
chunk_get(memlayer_pool *p, size_t size)
{
    chunk *c = NULL;

    if (p != NULL && size == CHUNK_SIZE) {
        pthread_mutex_lock(&p->mu);
        if ((c = p->free) != NULL) {
            p->free = c->next;
            p->nfree--;
        }
        pthread_mutex_unlock(&p->mu);
    }
    if (c == NULL && (c = malloc(sizeof(*c) + size)) == NULL)
        return NULL;
    c->size = size;
    c->used = 0;
    return c;
}

static void
chunk_put(memlayer_pool *p, chunk *c)
{
    if (p != NULL && c->size == CHUNK_SIZE) {
        pthread_mutex_lock(&p->mu);
        if ((p->nfree + 1) * CHUNK_SIZE <= p->keep) {
            c->next = p->free;
            p->free = c;
            p->nfree++;
            c = NULL;
        }
        pthread_mutex_unlock(&p->mu);
    }
    free(c);
}

tarn_rc
memlayer_create(tarn_lsn start, memlayer_pool *pool, memlayer **out,
                tarn_err *err)
{
    memlayer *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    m->pool = pool;
    m->start = start;
    m->end = TARN_LSN_MAX;
    m->nslots = 1024;
    m->slots = calloc(m->nslots, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    *out = m;
    return TARN_OK;
}

void
memlayer_ref(memlayer *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void
memlayer_unref(memlayer *m)
{
    chunk *c;

    if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    while ((c = m->chunks) != NULL) {
        m->chunks = c->next;
        chunk_put(m->pool, c);
    }
    for (size_t i = 0; i < m->nkeys; i++)
        free(m->keys[i].more);
    free(m->keys);
    free(m->slots);
    free(m->cts);
    free(m);
}

static inline const ml_ver *
ver_at(const ml_key *k, uint32_t i)
{
    return k->cap == 0 ? &k->first : &k->more[i];
}

/* Slot of @p key, or of the empty slot where it would go. */
static size_t
find_slot(const memlayer *m, const tkey *key)
{
    size_t mask = m->nslots - 1, i = (size_t)tkey_hash(key) & mask;

    for (;;) {
        uint32_t s = m->slots[i];
        if (s == 0 || tkey_eq(&m->keys[s - 1].key, key))
            return i;
        i = (i + 1) & mask;
    }
}

static tarn_rc
grow_index(memlayer *m, tarn_err *err)
{
    size_t n = m->nslots * 2, mask = n - 1;
    uint32_t *slots = calloc(n, sizeof(*slots));

    if (slots == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    for (size_t k = 0; k < m->nkeys; k++) {
        size_t i = (size_t)tkey_hash(&m->keys[k].key) & mask;
        while (slots[i] != 0)
            i = (i + 1) & mask;
        slots[i] = (uint32_t)(k + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    return TARN_OK;
}

static const uint8_t *
arena_copy(memlayer *m, const uint8_t *val, size_t len, tarn_err *err)
{
    chunk *c = m->chunks;
    uint8_t *p;

    if (c == NULL || c->size - c->used < len) {
        size_t size = len > CHUNK_SIZE ? len : CHUNK_SIZE;
        if ((c = chunk_get(m->pool, size)) == NULL) {
            tarn_err_set(err, TARN_ENOMEM, "out of memory");
            return NULL;
        }
        c->next = m->chunks;
        m->chunks = c;
        m->arena_bytes += sizeof(*c) + size;
    }
    p = c->data + c->used;
    if (len > 0)
        memcpy(p, val, len);
    c->used += len;
    return p;
}

tarn_rc
memlayer_put(memlayer *m, const tkey *k, tarn_lsn lsn, const uint8_t *val,
             size_t len, tarn_err *err)
{
    size_t slot;
    ml_key *e;
    ml_ver v;

    TARN_ASSERT(!m->frozen && lsn >= m->start);
    if (len > UINT32_MAX)
        return tarn_err_set(err, TARN_ETOOBIG, "value of %zu bytes", len);
    if ((m->nkeys + 1) * 2 > m->nslots && grow_index(m, err) != TARN_OK)
        return TARN_ENOMEM;
    v.lsn = lsn;
    v.len = (uint32_t)len;
    v.will_init = tval_will_init(val, len);
    if ((v.data = arena_copy(m, val, len, err)) == NULL)
        return TARN_ENOMEM;
    slot = find_slot(m, k);
    if (m->slots[slot] == 0) {
        if (m->nkeys == m->keys_cap) {
            size_t cap = m->keys_cap ? m->keys_cap * 2 : 1024;
            ml_key *keys = realloc(m->keys, cap * sizeof(*keys));
            if (keys == NULL)
                return tarn_err_set(err, TARN_ENOMEM, "out of memory");
            m->keys = keys;
            m->keys_cap = cap;
        }
        e = &m->keys[m->nkeys];
        memset(e, 0, sizeof(*e));
        e->key = *k;
        e->first = v;
        e->n = 1;
        m->slots[slot] = (uint32_t)++m->nkeys;
        if (m->nkeys == 1 || tkey_cmp(k, &m->lo) < 0)
            m->lo = *k;
        if (m->nkeys == 1 || tkey_cmp(k, &m->hi) > 0)
            m->hi = *k;
    } else {
        e = &m->keys[m->slots[slot] - 1];
        TARN_ASSERT(ver_at(e, e->n - 1)->lsn <= lsn);
        if (e->cap == 0 || e->n == e->cap) {
            uint32_t cap = e->cap == 0 ? 4 : e->cap * 2;
            ml_ver *more = realloc(e->more, cap * sizeof(*more));
            if (more == NULL)
                return tarn_err_set(err, TARN_ENOMEM, "out of memory");
            if (e->cap == 0)
                more[0] = e->first;
            m->ver_bytes += (cap - e->cap) * sizeof(*more);
            e->more = more;
            e->cap = cap;
        }
        e->more[e->n++] = v;
    }
    m->nvalues++;
    if (lsn > m->last)
        m->last = lsn;
    return TARN_OK;
}

tarn_rc
memlayer_add_commit_ts(memlayer *m, int64_t ts, tarn_lsn lsn, tarn_err *err)
{
    if (m->ncts == m->cts_cap) {
        size_t cap = m->cts_cap ? m->cts_cap * 2 : 256;
        commit_ts *c = realloc(m->cts, cap * sizeof(*c));
        if (c == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        m->cts = c;
        m->cts_cap = cap;
    }
    m->cts[m->ncts].ts = ts;
    m->cts[m->ncts].lsn = lsn;
    m->ncts++;
    return TARN_OK;
}

const commit_ts *
memlayer_commit_ts(const memlayer *m, size_t *n)
{
    *n = m->ncts;
    return m->cts;
}

void
memlayer_freeze(memlayer *m, tarn_lsn end)
{
    TARN_ASSERT(!m->frozen && end > m->last && end >= m->start);
    m->frozen = true;
    m->end = end;
}

bool
memlayer_is_frozen(const memlayer *m)
{
    return m->frozen;
}

tarn_lsn
memlayer_start(const memlayer *m)
{
    return m->start;
}

tarn_lsn
memlayer_end(const memlayer *m)
{
    return m->end;
}

tarn_lsn
memlayer_last_lsn(const memlayer *m)
{
    return m->last;
}

size_t
memlayer_bytes(const memlayer *m)
{
    return m->arena_bytes + m->keys_cap * sizeof(ml_key)
           + m->nslots * sizeof(uint32_t) + m->ver_bytes
           + m->cts_cap * sizeof(commit_ts);
}

size_t
memlayer_nkeys(const memlayer *m)
{
    return m->nkeys;
}

size_t
memlayer_nvalues(const memlayer *m)
{
    return m->nvalues;
}

void
memlayer_key_range(const memlayer *m, tkey *lo, tkey *hi)
{
    *lo = m->lo;
    *hi = m->hi;
}

tarn_rc
memlayer_collect(const memlayer *m, const tkey *k, tarn_lsn floor,
                 tarn_lsn ceil, vcollect *c, tarn_err *err)
{
    uint32_t s = m->slots[find_slot(m, k)];
    const ml_key *e;
    uint32_t lo, hi;

    if (s == 0 || ceil < floor)
        return TARN_OK;
    e = &m->keys[s - 1];
    /* The first version with lsn > ceil. */
    lo = 0;
    hi = e->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (ver_at(e, mid)->lsn <= ceil)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0) {
        const ml_ver *v = ver_at(e, --lo);
        vref r;
        if (v->lsn < floor)
            break;
        r.lsn = v->lsn;
        r.will_init = v->will_init;
        r.len = v->len;
        r.mem = v->data;
        r.file = NULL;
        r.off = 0;
        if (vcollect_push(c, &r, err) != TARN_OK)
            return TARN_ENOMEM;
        if (v->will_init)
            break;
    }
    return TARN_OK;
}

tarn_rc
memlayer_each_key(const memlayer *m, const tkey *lo, const tkey *hi,
                  tarn_rc (*fn)(void *arg, const tkey *k, tarn_err *err),
                  void *arg, tarn_err *err)
{
    for (size_t i = 0; i < m->nkeys; i++) {
        const tkey *k = &m->keys[i].key;
        tarn_rc rc;
        if (tkey_cmp(k, lo) < 0 || tkey_cmp(k, hi) > 0)
            continue;
        if ((rc = fn(arg, k, err)) != TARN_OK)
            return rc;
    }
    return TARN_OK;
}

static int
cmp_idx_r(const void *a, const void *b, void *arg)
{
    const memlayer *m = arg;

    return tkey_cmp(&m->keys[*(const uint32_t *)a].key,
                    &m->keys[*(const uint32_t *)b].key);
}

tarn_rc
memlayer_iter_begin(const memlayer *m, memlayer_iter *it, tarn_err *err)
{
    memset(it, 0, sizeof(*it));
    it->m = m;
    it->nkeys = m->nkeys;
    if (m->nkeys == 0)
        return TARN_OK;
    it->order = malloc(m->nkeys * sizeof(*it->order));
    if (it->order == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->nkeys; i++)
        it->order[i] = (uint32_t)i;
    /* The sort runs on whichever thread writes the layer out. */
    qsort_r(it->order, m->nkeys, sizeof(*it->order), cmp_idx_r, (void *)m);
    return TARN_OK;
}

bool
memlayer_iter_next(memlayer_iter *it, tkey *k, tarn_lsn *lsn,
                   const uint8_t **val, uint32_t *len, bool *will_init)
{
    const ml_key *e;
    const ml_ver *v;

    while (it->ki < it->nkeys) {
        e = &it->m->keys[it->order[it->ki]];
        if (it->vi < e->n) {
            v = ver_at(e, (uint32_t)it->vi++);
            *k = e->key;
            *lsn = v->lsn;
            *val = v->data;
            *len = v->len;
            *will_init = v->will_init;
            return true;
        }
        it->ki++;
        it->vi = 0;
    }
    return false;
}

void
memlayer_iter_end(memlayer_iter *it)
{
    free(it->order);
    it->order = NULL;
}
