/*
 * pagecache.c - clock-sweep block cache with a linear-probing index.
 *
 * The index maps a pc_key to its slot.  Eviction removes the victim's
 * index entry with backward-shift deletion, so the probe sequences stay
 * valid without tombstones.  The index has twice as many entries as there
 * are slots, which keeps probes short.
 *
 * Slots are handed out in order while the cache is not full, so its
 * memory is only touched (and counted in the process's RSS) as far as it
 * is used.  That is what makes rings worth having: an image job that
 * reads every index block of a timeline once, through the shared policy,
 * would touch the whole cache.
 */
#include "storage/pagecache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_USAGE 5
#define NO_SLOT   UINT32_MAX

typedef struct slot {
    pc_key key;
    const pc_ring *ring; /* the ring that put it, while it owns it */
    uint8_t usage;
    bool valid;
} slot;

struct pc_ring {
    pagecache *pc;
    size_t n, cap, next;
    uint32_t slot[]; /* slots it has put blocks in, reused in turn */
};

struct pagecache {
    pthread_mutex_t mu;
    slot *slots;
    uint8_t *blocks;
    size_t nslots, used, hand;
    uint32_t *index; /* slot number, or NO_SLOT */
    size_t nindex;
    uint32_t *free; /* empty slots below used, taken before the clock */
    size_t nfree;
    uint64_t next_id;
    pagecache_stats st;
};

static inline bool
key_eq(const pc_key *a, const pc_key *b)
{
    return a->kind == b->kind && a->id == b->id && a->num == b->num
           && tkey_eq(&a->key, &b->key);
}

static inline uint64_t
key_hash(const pc_key *k)
{
    uint64_t h = tkey_hash(&k->key);

    h ^= (k->id + 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
    h ^= (k->num + ((uint64_t)k->kind << 56)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 29);
}

tarn_rc
pagecache_create(size_t bytes, pagecache **out, tarn_err *err)
{
    pagecache *pc = calloc(1, sizeof(*pc));
    size_t n = bytes / PAGECACHE_BLOCK;

    if (pc == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if (n < 16)
        n = 16;
    pc->nslots = n;
    pc->nindex = 1;
    while (pc->nindex < 2 * n)
        pc->nindex *= 2;
    pc->slots = calloc(n, sizeof(*pc->slots));
    pc->blocks = malloc(n * PAGECACHE_BLOCK);
    pc->index = malloc(pc->nindex * sizeof(*pc->index));
    pc->free = malloc(n * sizeof(*pc->free));
    if (pc->slots == NULL || pc->blocks == NULL || pc->index == NULL
        || pc->free == NULL) {
        pagecache_destroy(pc);
        return tarn_err_set(err, TARN_ENOMEM,
                            "cannot allocate a page cache of %zu bytes",
                            n * PAGECACHE_BLOCK);
    }
    memset(pc->index, 0xff, pc->nindex * sizeof(*pc->index));
    pthread_mutex_init(&pc->mu, NULL);
    pc->st.slots = n;
    pc->next_id = 1;
    *out = pc;
    return TARN_OK;
}

void
pagecache_destroy(pagecache *pc)
{
    if (pc == NULL)
        return;
    if (pc->index != NULL && pc->slots != NULL && pc->blocks != NULL)
        pthread_mutex_destroy(&pc->mu);
    free(pc->slots);
    free(pc->blocks);
    free(pc->index);
    free(pc->free);
    free(pc);
}

/* Index position holding @p k, or NO_SLOT with *empty at the insert spot. */
static size_t
index_find(pagecache *pc, const pc_key *k, bool *found)
{
    size_t mask = pc->nindex - 1, i = (size_t)key_hash(k) & mask;

    for (;;) {
        uint32_t s = pc->index[i];
        if (s == NO_SLOT) {
            *found = false;
            return i;
        }
        if (key_eq(&pc->slots[s].key, k)) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void
index_remove(pagecache *pc, size_t i)
{
    size_t mask = pc->nindex - 1, j = i;

    pc->index[i] = NO_SLOT;
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (pc->index[j] == NO_SLOT)
            return;
        home = (size_t)key_hash(&pc->slots[pc->index[j]].key) & mask;
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j))
            || (j < i && (home <= i && home > j))) {
            pc->index[i] = pc->index[j];
            pc->index[j] = NO_SLOT;
            i = j;
        }
    }
}

bool
pagecache_peek(pagecache *pc, pc_ring *ring, const pc_key *k,
               void (*fn)(const uint8_t *block, void *arg), void *arg)
{
    bool found;
    size_t i;

    pthread_mutex_lock(&pc->mu);
    i = index_find(pc, k, &found);
    if (found) {
        slot *s = &pc->slots[pc->index[i]];
        /* A bulk reader's hits say nothing about what is hot. */
        if (ring == NULL && s->usage < MAX_USAGE)
            s->usage++;
        fn(pc->blocks + (size_t)pc->index[i] * PAGECACHE_BLOCK, arg);
        pc->st.hits[k->kind % 3]++;
    } else {
        pc->st.misses[k->kind % 3]++;
    }
    pthread_mutex_unlock(&pc->mu);
    return found;
}

static void
copy_out(const uint8_t *block, void *arg)
{
    memcpy(arg, block, PAGECACHE_BLOCK);
}

bool
pagecache_get(pagecache *pc, pc_ring *ring, const pc_key *k, uint8_t *out)
{
    return pagecache_peek(pc, ring, k, copy_out, out);
}

/* Drop slot @p s's block from the index, if it holds one. */
static void
slot_clear(pagecache *pc, slot *s)
{
    bool found;
    size_t i;

    if (!s->valid)
        return;
    i = index_find(pc, &s->key, &found);
    TARN_ASSERT(found);
    index_remove(pc, i);
    s->valid = false;
}

/* Find a slot to reuse: a free one, or the clock's victim. */
static size_t
victim(pagecache *pc)
{
    if (pc->nfree > 0)
        return pc->free[--pc->nfree];
    if (pc->used < pc->nslots)
        return pc->used++;
    for (;;) {
        slot *s = &pc->slots[pc->hand];
        size_t v = pc->hand;
        pc->hand = (pc->hand + 1) % pc->nslots;
        if (s->usage > 0) {
            s->usage--;
            continue;
        }
        if (s->valid)
            pc->st.evictions++;
        slot_clear(pc, s);
        return v;
    }
}

/*
 * The ring's next slot, emptied.  The one it used a full turn ago is
 * reused if the ring still owns it and no other reader has hit it since
 * (its usage is still the 1 it was put with); otherwise the shared cache
 * keeps it and the clock gives the ring another.
 */
static size_t
ring_victim(pagecache *pc, pc_ring *ring)
{
    size_t pos, v;
    slot *s;

    if (ring->n < ring->cap) {
        v = victim(pc);
        ring->slot[ring->n++] = (uint32_t)v;
        return v;
    }
    pos = ring->next;
    ring->next = (ring->next + 1) % ring->cap;
    v = ring->slot[pos];
    s = &pc->slots[v];
    if (s->ring != ring || s->usage > 1) {
        if (s->ring == ring)
            s->ring = NULL;
        v = victim(pc);
        ring->slot[pos] = (uint32_t)v;
        return v;
    }
    slot_clear(pc, s);
    return v;
}

void
pagecache_put(pagecache *pc, pc_ring *ring, const pc_key *k,
              const uint8_t *block)
{
    bool found;
    size_t i, v;

    pthread_mutex_lock(&pc->mu);
    i = index_find(pc, k, &found);
    if (found) {
        v = pc->index[i];
    } else {
        v = ring != NULL ? ring_victim(pc, ring) : victim(pc);
        /* The eviction may have shifted entries: find the spot again. */
        i = index_find(pc, k, &found);
        pc->index[i] = (uint32_t)v;
        pc->slots[v].key = *k;
        pc->slots[v].valid = true;
        pc->slots[v].ring = ring;
    }
    if (ring == NULL || !found)
        pc->slots[v].usage = 1;
    memcpy(pc->blocks + v * PAGECACHE_BLOCK, block, PAGECACHE_BLOCK);
    pc->st.used = pc->used - pc->nfree;
    pthread_mutex_unlock(&pc->mu);
}

tarn_rc
pagecache_ring_create(pagecache *pc, size_t nblocks, pc_ring **out,
                      tarn_err *err)
{
    pc_ring *ring;

    if (nblocks == 0)
        nblocks = 1;
    if (nblocks > pc->nslots / 4 + 1)
        nblocks = pc->nslots / 4 + 1; /* never most of a small cache */
    ring = calloc(1, sizeof(*ring) + nblocks * sizeof(ring->slot[0]));
    if (ring == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    ring->pc = pc;
    ring->cap = nblocks;
    *out = ring;
    return TARN_OK;
}

void
pagecache_ring_destroy(pc_ring *ring)
{
    pagecache *pc;

    if (ring == NULL)
        return;
    pc = ring->pc;
    pthread_mutex_lock(&pc->mu);
    for (size_t i = 0; i < ring->n; i++) {
        uint32_t v = ring->slot[i];
        slot *s = &pc->slots[v];
        if (s->ring != ring)
            continue; /* the shared cache took it */
        s->ring = NULL;
        if (s->usage > 1)
            continue; /* hit by another reader: keep it */
        /* Free the slot, so that the next ring reuses it instead of
         * touching fresh memory. */
        slot_clear(pc, s);
        pc->free[pc->nfree++] = v;
    }
    pthread_mutex_unlock(&pc->mu);
    free(ring);
}

uint64_t
pagecache_new_id(pagecache *pc)
{
    uint64_t id;

    pthread_mutex_lock(&pc->mu);
    id = pc->next_id++;
    pthread_mutex_unlock(&pc->mu);
    return id;
}

void
pagecache_get_stats(pagecache *pc, pagecache_stats *out)
{
    pthread_mutex_lock(&pc->mu);
    *out = pc->st;
    out->used = pc->used - pc->nfree;
    out->touched = pc->used;
    pthread_mutex_unlock(&pc->mu);
}
