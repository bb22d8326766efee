/*
 * ingest.c - WAL records to values.
 *
 * Metadata is kept exact at every LSN, because reads at any LSN depend on
 * it: a read past a relation's size returns zeros without looking at the
 * blocks, and a dropped relation's directory entry is gone.  Three rules
 * make stale data unreachable without ever deleting it (reference 1.3):
 *
 *   - extending a relation by more than one block writes explicit zero
 *     pages for the gap, so a reused relfilenode never shows old blocks;
 *   - truncation and drop write a smaller size or a tombstone;
 *   - a block that no record can rebuild is never served as a page.
 *
 * Sizes and existence are cached (key -> block count) so the common case,
 * a record touching a block inside a known relation, costs one hash
 * lookup.  The cache is filled from the timeline on first use and is
 * exact afterwards, because every change goes through here.
 *
 * The directories that are single values (databases, SLRU segments,
 * two-phase transactions) are small and kept in memory, and rewritten
 * whole when they change.  Relations have one directory key each.
 */
#include "storage/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/pg/walrec.h"

#define LATEST       (TARN_LSN_MAX - 1)
#define XID_ROUNDING 1024
#define NOT_EXIST    (-1)

typedef struct size_ent {
    tkey key;
    int64_t n; /* blocks, or NOT_EXIST */
    bool used;
} size_ent;

typedef struct u32set {
    uint32_t *v;
    size_t n, cap;
} u32set;

struct ingest {
    ingest_opts o;
    timeline *tl;
    uint8_t ckpt[PG_CKPT_SIZE];
    bool have_ckpt, ckpt_dirty;
    uint64_t *dbs; /* spc << 32 | db, sorted */
    size_t ndbs, dbs_cap;
    u32set slru[SLRU_NKINDS];
    u32set twophase;
    size_ent *sizes;
    size_t nsizes, sizes_cap;
    tbuf val, tmp;
    walrec rec;
    tarn_lsn lsn, start; /* the record being ingested */
    ingest_stats st;
};

#define FAIL(...) tarn_err_set(err, TARN_ECORRUPT, __VA_ARGS__)

/* ---- small helpers ------------------------------------------------------ */

static const tl_view *
view(ingest *ing)
{
    return timeline_view(ing->tl);
}

static tarn_rc
put(ingest *ing, const tkey *k, const tbuf *v, tarn_err *err)
{
    ing->st.values++;
    return timeline_put(ing->tl, k, ing->lsn, v->p, v->len, err);
}

static tarn_rc
put_image(ingest *ing, const tkey *k, const void *data, size_t len,
          tarn_err *err)
{
    if (tval_image(&ing->val, data, len, err) != TARN_OK)
        return TARN_ENOMEM;
    return put(ing, k, &ing->val, err);
}

static tarn_rc
put_zero(ingest *ing, const tkey *k, tarn_err *err)
{
    if (tval_zero(&ing->val, err) != TARN_OK)
        return TARN_ENOMEM;
    ing->st.zero_pages++;
    return put(ing, k, &ing->val, err);
}

static tarn_rc
put_tombstone(ingest *ing, const tkey *k, tarn_err *err)
{
    return put_image(ing, k, NULL, 0, err);
}

/* A sorted set of u32 with its value form: count, then the members. */
static bool
u32set_has(const u32set *s, uint32_t x)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->v[mid] == x)
            return true;
        if (s->v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static tarn_rc
u32set_add(u32set *s, uint32_t x, tarn_err *err)
{
    size_t i = 0;

    if (u32set_has(s, x))
        return TARN_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        uint32_t *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        s->v = v;
        s->cap = cap;
    }
    while (i < s->n && s->v[i] < x)
        i++;
    memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
    s->v[i] = x;
    s->n++;
    return TARN_OK;
}

static void
u32set_del(u32set *s, uint32_t x)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == x) {
            memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
            s->n--;
            return;
        }
}

static tarn_rc
u32set_put(ingest *ing, const tkey *k, const u32set *s, tarn_err *err)
{
    tbuf *t = &ing->tmp;

    t->len = 0;
    if (tbuf_reserve(t, 4 + 4 * s->n, err) != TARN_OK)
        return TARN_ENOMEM;
    tarn_put_u32(t->p, (uint32_t)s->n);
    for (size_t i = 0; i < s->n; i++)
        tarn_put_u32(t->p + 4 + 4 * i, s->v[i]);
    t->len = 4 + 4 * s->n;
    return put_image(ing, k, t->p, t->len, err);
}

static tarn_rc
u32set_load(ingest *ing, const tkey *k, u32set *s, tarn_err *err)
{
    bool found;
    tarn_rc rc = tl_get_value(view(ing), k, LATEST, &ing->tmp, &found, err);
    uint32_t n;

    s->n = 0;
    if (rc != TARN_OK || !found)
        return rc;
    if (ing->tmp.len < 4
        || (n = tarn_get_u32(ing->tmp.p), ing->tmp.len != 4 + (size_t)n * 4)) {
        char kd[96];
        return FAIL("%s has a malformed value",
                    tkey_describe(k, kd, sizeof(kd)));
    }
    for (uint32_t i = 0; i < n; i++)
        if (u32set_add(s, tarn_get_u32(ing->tmp.p + 4 + 4 * i), err) != TARN_OK)
            return TARN_ENOMEM;
    return TARN_OK;
}

/* ---- the database directory ------------------------------------------- */

static tarn_rc
dbdir_put(ingest *ing, tarn_err *err)
{
    tbuf *t = &ing->tmp;
    tkey k = tkey_dbdir();

    t->len = 0;
    if (tbuf_reserve(t, 4 + 8 * ing->ndbs, err) != TARN_OK)
        return TARN_ENOMEM;
    tarn_put_u32(t->p, (uint32_t)ing->ndbs);
    for (size_t i = 0; i < ing->ndbs; i++) {
        tarn_put_u32(t->p + 4 + 8 * i, (uint32_t)(ing->dbs[i] >> 32));
        tarn_put_u32(t->p + 8 + 8 * i, (uint32_t)ing->dbs[i]);
    }
    t->len = 4 + 8 * ing->ndbs;
    return put_image(ing, &k, t->p, t->len, err);
}

static tarn_rc
dbdir_add(ingest *ing, uint32_t spc, uint32_t db, tarn_err *err)
{
    uint64_t x = (uint64_t)spc << 32 | db;
    size_t i = 0;

    while (i < ing->ndbs && ing->dbs[i] < x)
        i++;
    if (i < ing->ndbs && ing->dbs[i] == x)
        return TARN_OK;
    if (ing->ndbs == ing->dbs_cap) {
        size_t cap = ing->dbs_cap ? ing->dbs_cap * 2 : 16;
        uint64_t *v = realloc(ing->dbs, cap * sizeof(*v));
        if (v == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        ing->dbs = v;
        ing->dbs_cap = cap;
    }
    memmove(ing->dbs + i + 1, ing->dbs + i, (ing->ndbs - i) * sizeof(uint64_t));
    ing->dbs[i] = x;
    ing->ndbs++;
    return dbdir_put(ing, err);
}

static tarn_rc
dbdir_remove(ingest *ing, uint32_t spc, uint32_t db, tarn_err *err)
{
    uint64_t x = (uint64_t)spc << 32 | db;

    for (size_t i = 0; i < ing->ndbs; i++)
        if (ing->dbs[i] == x) {
            memmove(ing->dbs + i, ing->dbs + i + 1,
                    (ing->ndbs - i - 1) * sizeof(uint64_t));
            ing->ndbs--;
            return dbdir_put(ing, err);
        }
    return TARN_OK;
}

static tarn_rc
dbdir_load(ingest *ing, tarn_err *err)
{
    tkey k = tkey_dbdir();
    bool found;
    uint32_t n;
    tarn_rc rc = tl_get_value(view(ing), &k, LATEST, &ing->tmp, &found, err);

    ing->ndbs = 0;
    if (rc != TARN_OK || !found)
        return rc;
    n = ing->tmp.len >= 4 ? tarn_get_u32(ing->tmp.p) : 0;
    if (ing->tmp.len != 4 + (size_t)n * 8)
        return FAIL("the database directory has a malformed value");
    ing->dbs = malloc((n ? n : 1) * sizeof(uint64_t));
    if (ing->dbs == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    ing->dbs_cap = n ? n : 1;
    for (uint32_t i = 0; i < n; i++)
        ing->dbs[i] = (uint64_t)tarn_get_u32(ing->tmp.p + 4 + 8 * i) << 32
                      | tarn_get_u32(ing->tmp.p + 8 + 8 * i);
    ing->ndbs = n;
    return TARN_OK;
}

/* ---- sizes: relations and SLRU segments -------------------------------- */

static size_t
size_slot(const ingest *ing, const tkey *k)
{
    size_t mask = ing->sizes_cap - 1, i = (size_t)tkey_hash(k) & mask;

    while (ing->sizes[i].used && !tkey_eq(&ing->sizes[i].key, k))
        i = (i + 1) & mask;
    return i;
}

static tarn_rc
size_cache_grow(ingest *ing, tarn_err *err)
{
    size_t oldcap = ing->sizes_cap, cap = oldcap ? oldcap * 2 : 1024;
    size_ent *old = ing->sizes;

    ing->sizes = calloc(cap, sizeof(size_ent));
    if (ing->sizes == NULL) {
        ing->sizes = old;
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    ing->sizes_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].used)
            ing->sizes[size_slot(ing, &old[i].key)] = old[i];
    free(old);
    return TARN_OK;
}

/* Blocks of the object whose size key is @p k, or NOT_EXIST. */
static tarn_rc
size_get(ingest *ing, const tkey *k, int64_t *out, tarn_err *err)
{
    size_t i;
    bool found;
    tarn_rc rc;

    if ((ing->nsizes + 1) * 2 > ing->sizes_cap
        && size_cache_grow(ing, err) != TARN_OK)
        return TARN_ENOMEM;
    i = size_slot(ing, k);
    if (ing->sizes[i].used) {
        *out = ing->sizes[i].n;
        return TARN_OK;
    }
    rc = tl_get_value(view(ing), k, LATEST, &ing->tmp, &found, err);
    if (rc != TARN_OK)
        return rc;
    if (found && ing->tmp.len != 4) {
        char kd[96];
        return FAIL("%s has a malformed value",
                    tkey_describe(k, kd, sizeof(kd)));
    }
    ing->sizes[i].used = true;
    ing->sizes[i].key = *k;
    ing->sizes[i].n = found ? (int64_t)tarn_get_u32(ing->tmp.p) : NOT_EXIST;
    ing->nsizes++;
    *out = ing->sizes[i].n;
    return TARN_OK;
}

/* Record a new size (or NOT_EXIST: a tombstone) in the cache and as a
 * value. */
static tarn_rc
size_set(ingest *ing, const tkey *k, int64_t n, tarn_err *err)
{
    int64_t cur;
    uint8_t le[4];
    tarn_rc rc = size_get(ing, k, &cur, err); /* makes the slot */

    if (rc != TARN_OK)
        return rc;
    ing->sizes[size_slot(ing, k)].n = n;
    if (n == NOT_EXIST)
        return put_tombstone(ing, k, err);
    tarn_put_u32(le, (uint32_t)n);
    return put_image(ing, k, le, 4, err);
}

/* ---- relations ---------------------------------------------------------- */

static tarn_rc
rel_size(ingest *ing, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork,
         int64_t *n, tarn_err *err)
{
    tkey k = tkey_rel_size(spc, db, rel, fork);

    return size_get(ing, &k, n, err);
}

/* Create the relation fork if it does not exist; *n gets its size. */
static tarn_rc
rel_ensure(ingest *ing, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork,
           int64_t *n, tarn_err *err)
{
    tkey dk = tkey_reldir(spc, db, rel, fork),
         sk = tkey_rel_size(spc, db, rel, fork);
    static const uint8_t exists = 'r';
    tarn_rc rc;

    if ((rc = size_get(ing, &sk, n, err)) != TARN_OK || *n != NOT_EXIST)
        return rc;
    if ((rc = dbdir_add(ing, spc, db, err)) != TARN_OK
        || (rc = put_image(ing, &dk, &exists, 1, err)) != TARN_OK
        || (rc = size_set(ing, &sk, 0, err)) != TARN_OK)
        return rc;
    ing->st.rels_created++;
    *n = 0;
    return TARN_OK;
}

/* A block is about to be written: create and extend the fork as needed,
 * with zero pages for any gap. */
static tarn_rc
rel_extend_to(ingest *ing, uint32_t spc, uint32_t db, uint32_t rel,
              uint8_t fork, uint32_t blk, tarn_err *err)
{
    int64_t n;
    tkey sk;
    tarn_rc rc = rel_ensure(ing, spc, db, rel, fork, &n, err);

    if (rc != TARN_OK || (int64_t)blk < n)
        return rc;
    for (int64_t b = n; b < (int64_t)blk; b++) {
        tkey k = tkey_rel_block(spc, db, rel, fork, (uint32_t)b);
        if ((rc = put_zero(ing, &k, err)) != TARN_OK)
            return rc;
    }
    sk = tkey_rel_size(spc, db, rel, fork);
    return size_set(ing, &sk, (int64_t)blk + 1, err);
}

static tarn_rc
rel_drop(ingest *ing, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork,
         tarn_err *err)
{
    tkey dk = tkey_reldir(spc, db, rel, fork),
         sk = tkey_rel_size(spc, db, rel, fork);
    int64_t n;
    tarn_rc rc;

    if ((rc = size_get(ing, &sk, &n, err)) != TARN_OK || n == NOT_EXIST)
        return rc;
    ing->st.rels_dropped++;
    if ((rc = put_tombstone(ing, &dk, err)) != TARN_OK)
        return rc;
    return size_set(ing, &sk, NOT_EXIST, err);
}

static tarn_rc
rel_set_size(ingest *ing, uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork,
             uint32_t nblocks, tarn_err *err)
{
    tkey sk = tkey_rel_size(spc, db, rel, fork);

    return size_set(ing, &sk, nblocks, err);
}

/* ---- SLRUs -------------------------------------------------------------- */

/* Make SLRU page @p pageno exist: create its segment, fill the gap with
 * zero pages.  *created is set when the page itself is new (zeroed). */
static tarn_rc
slru_ensure(ingest *ing, slru_kind kind, uint32_t pageno, bool *created,
            tarn_err *err)
{
    uint32_t seg = pageno / PG_SLRU_PAGES_PER_SEGMENT,
             blk = pageno % PG_SLRU_PAGES_PER_SEGMENT;
    tkey sk = tkey_slru_size(kind, seg), dk = tkey_slru_dir(kind);
    int64_t n;
    tarn_rc rc;

    *created = false;
    if ((rc = size_get(ing, &sk, &n, err)) != TARN_OK)
        return rc;
    if (n == NOT_EXIST) {
        if ((rc = u32set_add(&ing->slru[kind], seg, err)) != TARN_OK
            || (rc = u32set_put(ing, &dk, &ing->slru[kind], err)) != TARN_OK)
            return rc;
        n = 0;
    }
    if ((int64_t)blk < n)
        return TARN_OK;
    for (int64_t b = n; b <= (int64_t)blk; b++) {
        tkey k = tkey_slru_block(kind, seg, (uint32_t)b);
        if ((rc = put_zero(ing, &k, err)) != TARN_OK)
            return rc;
    }
    *created = true;
    return size_set(ing, &sk, (int64_t)blk + 1, err);
}

/* SLRU zero-page record: the page becomes zeros. */
static tarn_rc
slru_zero_page(ingest *ing, slru_kind kind, uint32_t pageno, tarn_err *err)
{
    bool created;
    tkey k = tkey_slru_block(kind, pageno / PG_SLRU_PAGES_PER_SEGMENT,
                             pageno % PG_SLRU_PAGES_PER_SEGMENT);
    tarn_rc rc = slru_ensure(ing, kind, pageno, &created, err);

    if (rc != TARN_OK || created)
        return rc;
    /*
     * PostgreSQL 15.5 and later set the next multixact's offset while
     * recording a multixact, creating the next offsets page early if
     * needed; replay then skips the zero-page record of that page.  The
     * page exists here only in that case, so keep it.
     */
    if (kind == SLRU_MXOFFSETS)
        return TARN_OK;
    return put_zero(ing, &k, err);
}

static tarn_rc
slru_drop_segment(ingest *ing, slru_kind kind, uint32_t seg, tarn_err *err)
{
    tkey sk = tkey_slru_size(kind, seg), dk = tkey_slru_dir(kind);
    tarn_rc rc;

    if (!u32set_has(&ing->slru[kind], seg))
        return TARN_OK;
    u32set_del(&ing->slru[kind], seg);
    if ((rc = u32set_put(ing, &dk, &ing->slru[kind], err)) != TARN_OK)
        return rc;
    return size_set(ing, &sk, NOT_EXIST, err);
}

static inline bool
xid_precedes(uint32_t a, uint32_t b)
{
    if (a < PG_FIRST_NORMAL_XID || b < PG_FIRST_NORMAL_XID)
        return a < b;
    return (int32_t)(a - b) < 0;
}

/* SimpleLruTruncate(): drop segments wholly before the cutoff page, with
 * the wraparound-aware page comparison of each SLRU. */
static bool
page_precedes(slru_kind kind, uint32_t p1, uint32_t p2)
{
    uint32_t a, b, per;

    switch (kind) {
    case SLRU_CLOG:
        per = PG_CLOG_XACTS_PER_PAGE;
        a = p1 * per + PG_FIRST_NORMAL_XID + 1;
        b = p2 * per + PG_FIRST_NORMAL_XID + 1;
        return xid_precedes(a, b) && xid_precedes(a, b + per - 1);
    case SLRU_MXOFFSETS:
        per = PG_MULTIXACT_OFFSETS_PER_PAGE;
        a = p1 * per + 1 + 1;
        b = p2 * per + 1 + 1;
        return (int32_t)(a - b) < 0 && (int32_t)(a - (b + per - 1)) < 0;
    case SLRU_MXMEMBERS:
        per = PG_MULTIXACT_MEMBERS_PER_PAGE;
        a = p1 * per;
        b = p2 * per;
        return (int32_t)(a - b) < 0 && (int32_t)(a - (b + per - 1)) < 0;
    }
    return false;
}

static tarn_rc
slru_truncate(ingest *ing, slru_kind kind, uint32_t cutoff, tarn_err *err)
{
    u32set *s = &ing->slru[kind];

    cutoff -= cutoff % PG_SLRU_PAGES_PER_SEGMENT;
    for (size_t i = 0; i < s->n;) {
        uint32_t seg = s->v[i], first = seg * PG_SLRU_PAGES_PER_SEGMENT;
        if (page_precedes(kind, first, cutoff)
            && page_precedes(kind, first + PG_SLRU_PAGES_PER_SEGMENT - 1,
                             cutoff)) {
            tarn_rc rc = slru_drop_segment(ing, kind, seg, err);
            if (rc != TARN_OK)
                return rc;
            continue; /* the set shifted */
        }
        i++;
    }
    return TARN_OK;
}

/* ---- CLOG --------------------------------------------------------------- */

/* Set the status of @p xids (modified: sorted), one value per page. */
static tarn_rc
clog_set(ingest *ing, uint32_t *xids, size_t n, uint8_t status, tarn_err *err)
{
    qsort(xids, n, sizeof(*xids), tarn_cmp_u32);
    for (size_t i = 0; i < n;) {
        uint32_t page = xids[i] / PG_CLOG_XACTS_PER_PAGE;
        size_t j = i;
        bool created;
        tkey k;
        tarn_rc rc;
        while (j < n && xids[j] / PG_CLOG_XACTS_PER_PAGE == page)
            j++;
        if ((rc = slru_ensure(ing, SLRU_CLOG, page, &created, err)) != TARN_OK)
            return rc;
        if (tval_clog(&ing->val, status, xids + i, j - i, err) != TARN_OK)
            return TARN_ENOMEM;
        k = tkey_slru_block(SLRU_CLOG, page / PG_SLRU_PAGES_PER_SEGMENT,
                            page % PG_SLRU_PAGES_PER_SEGMENT);
        if ((rc = put(ing, &k, &ing->val, err)) != TARN_OK)
            return rc;
        i = j;
    }
    return TARN_OK;
}

/* ---- checkpoint state ---------------------------------------------------- */

static void
ckpt_update_next_xid(ingest *ing, uint32_t xid)
{
    uint64_t full = tarn_get_u64(ing->ckpt + PG_CKPT_NEXT_XID), next;
    uint32_t cur = (uint32_t)full;

    if (!ing->have_ckpt || xid < PG_FIRST_NORMAL_XID
        || (int32_t)(xid - cur) < 0)
        return;
    next = full + (uint32_t)(xid - cur) + 1;
    /* Rounded up, so the checkpoint is rewritten once per 1024 xids. */
    next = (next + XID_ROUNDING - 1) / XID_ROUNDING * XID_ROUNDING;
    if ((uint32_t)next < PG_FIRST_NORMAL_XID)
        next += PG_FIRST_NORMAL_XID - (uint32_t)next;
    if (next != full) {
        tarn_put_u64(ing->ckpt + PG_CKPT_NEXT_XID, next);
        ing->ckpt_dirty = true;
    }
}

static void
ckpt_set32(ingest *ing, size_t off, uint32_t v)
{
    if (ing->have_ckpt && tarn_get_u32(ing->ckpt + off) != v) {
        tarn_put_u32(ing->ckpt + off, v);
        ing->ckpt_dirty = true;
    }
}

/* Merge a CHECKPOINT record's CheckPoint into the tracked one. */
static void
ckpt_merge(ingest *ing, const uint8_t *cp, bool shutdown)
{
    uint64_t ours, theirs;

    if (!ing->have_ckpt) {
        memcpy(ing->ckpt, cp, PG_CKPT_SIZE);
        ing->have_ckpt = ing->ckpt_dirty = true;
        return;
    }
    ours = tarn_get_u64(ing->ckpt + PG_CKPT_NEXT_XID);
    theirs = tarn_get_u64(cp + PG_CKPT_NEXT_XID);
    if (theirs > ours)
        tarn_put_u64(ing->ckpt + PG_CKPT_NEXT_XID, theirs);
    /* Fields where the record's value is the truth at its LSN. */
    memcpy(ing->ckpt + PG_CKPT_REDO, cp + PG_CKPT_REDO, 8);
    memcpy(ing->ckpt + PG_CKPT_THIS_TLI, cp + PG_CKPT_THIS_TLI, 9);
    memcpy(ing->ckpt + PG_CKPT_TIME, cp + PG_CKPT_TIME, 8);
    memcpy(ing->ckpt + PG_CKPT_OLDEST_COMMITTS, cp + PG_CKPT_OLDEST_COMMITTS,
           8);
    if (xid_precedes(tarn_get_u32(ing->ckpt + PG_CKPT_OLDEST_XID),
                     tarn_get_u32(cp + PG_CKPT_OLDEST_XID))) {
        memcpy(ing->ckpt + PG_CKPT_OLDEST_XID, cp + PG_CKPT_OLDEST_XID, 8);
    }
    if ((int32_t)(tarn_get_u32(cp + PG_CKPT_NEXT_OID)
                  - tarn_get_u32(ing->ckpt + PG_CKPT_NEXT_OID))
        > 0)
        memcpy(ing->ckpt + PG_CKPT_NEXT_OID, cp + PG_CKPT_NEXT_OID, 4);
    if ((int32_t)(tarn_get_u32(cp + PG_CKPT_NEXT_MULTI)
                  - tarn_get_u32(ing->ckpt + PG_CKPT_NEXT_MULTI))
        > 0)
        memcpy(ing->ckpt + PG_CKPT_NEXT_MULTI, cp + PG_CKPT_NEXT_MULTI, 4);
    if ((int32_t)(tarn_get_u32(cp + PG_CKPT_NEXT_MULTI_OFFSET)
                  - tarn_get_u32(ing->ckpt + PG_CKPT_NEXT_MULTI_OFFSET))
        > 0)
        memcpy(ing->ckpt + PG_CKPT_NEXT_MULTI_OFFSET,
               cp + PG_CKPT_NEXT_MULTI_OFFSET, 4);
    if ((int32_t)(tarn_get_u32(cp + PG_CKPT_OLDEST_MULTI)
                  - tarn_get_u32(ing->ckpt + PG_CKPT_OLDEST_MULTI))
        > 0)
        memcpy(ing->ckpt + PG_CKPT_OLDEST_MULTI, cp + PG_CKPT_OLDEST_MULTI, 8);
    /* A shutdown checkpoint has no running transactions. */
    if (!shutdown)
        memcpy(ing->ckpt + PG_CKPT_OLDEST_ACTIVE_XID,
               cp + PG_CKPT_OLDEST_ACTIVE_XID, 4);
    else
        tarn_put_u32(ing->ckpt + PG_CKPT_OLDEST_ACTIVE_XID, 0);
    ing->ckpt_dirty = true;
}

/* ---- per resource manager ----------------------------------------------- */

static tarn_rc
need(const walrec *r, uint32_t len, const char *what, tarn_err *err)
{
    char l[TARN_LSN_STRLEN];

    if (r->main_len < len)
        return FAIL("%s record at %s has %u bytes of main data, %u needed",
                    what, tarn_lsn_format(r->start, l), r->main_len, len);
    return TARN_OK;
}

/* The visibility-map bits a heap record clears through its flags. */
static tarn_rc
vm_clear(ingest *ing, const walrec_block *heap, uint32_t blk1, uint32_t blk2,
         uint8_t flags, tarn_err *err)
{
    uint32_t spc = heap->rel.spc, db = heap->rel.db, rel = heap->rel.rel;
    int64_t vmsize;
    tarn_rc rc;
    uint32_t pages[2];
    int npages = 0;

    if ((rc = rel_size(ing, spc, db, rel, PG_VM_FORKNUM, &vmsize, err))
        != TARN_OK)
        return rc;
    if (vmsize == NOT_EXIST)
        return TARN_OK; /* no bit can be set: nothing to clear */
    if (blk1 != TVAL_NO_BLOCK)
        pages[npages++] = blk1 / PG_VM_HEAPBLOCKS_PER_PAGE;
    if (blk2 != TVAL_NO_BLOCK
        && (npages == 0 || pages[0] != blk2 / PG_VM_HEAPBLOCKS_PER_PAGE))
        pages[npages++] = blk2 / PG_VM_HEAPBLOCKS_PER_PAGE;
    for (int i = 0; i < npages; i++) {
        tkey k = tkey_rel_block(spc, db, rel, PG_VM_FORKNUM, pages[i]);
        uint32_t a = blk1 != TVAL_NO_BLOCK
                             && blk1 / PG_VM_HEAPBLOCKS_PER_PAGE == pages[i]
                         ? blk1
                         : TVAL_NO_BLOCK;
        uint32_t b = blk2 != TVAL_NO_BLOCK
                             && blk2 / PG_VM_HEAPBLOCKS_PER_PAGE == pages[i]
                         ? blk2
                         : TVAL_NO_BLOCK;
        if ((int64_t)pages[i] >= vmsize)
            continue; /* the page does not exist: no bit set there */
        if (tval_vmclear(&ing->val, a, b, flags, err) != TARN_OK)
            return TARN_ENOMEM;
        if ((rc = put(ing, &k, &ing->val, err)) != TARN_OK)
            return rc;
        ing->st.vm_clears++;
    }
    return TARN_OK;
}

/* Heap and Heap2: the VM bits their flags clear (walrec_heap_vm_clears). */
static tarn_rc
ingest_vm_clears(ingest *ing, const walrec *r, tarn_err *err)
{
    walrec_vmclear c[2];
    int n = walrec_heap_vm_clears(r, c, err);

    if (n < 0)
        return TARN_ECORRUPT;
    if (n == 2 && c[0].flags == c[1].flags)
        return vm_clear(ing, &r->blocks[0], c[0].blkno, c[1].blkno, c[0].flags,
                        err);
    for (int i = 0; i < n; i++) {
        tarn_rc rc = vm_clear(ing, &r->blocks[0], c[i].blkno, TVAL_NO_BLOCK,
                              c[i].flags, err);
        if (rc != TARN_OK)
            return rc;
    }
    return TARN_OK;
}

static uint32_t
fsm_logical_to_physical(uint32_t logpageno)
{
    uint64_t pages = 0, leafno = logpageno;

    for (int l = 0; l < PG_FSM_TREE_DEPTH; l++) {
        pages += leafno + 1;
        leafno /= PG_FSM_SLOTS_PER_PAGE;
    }
    return (uint32_t)(pages - 1);
}

static tarn_rc
ingest_smgr(ingest *ing, const walrec *r, tarn_err *err)
{
    uint8_t op = r->info & PG_XLR_RMGR_INFO_MASK;
    const uint8_t *d = r->main_data;
    tarn_rc rc;

    if (op == PG_XLOG_SMGR_CREATE) {
        int64_t n;
        uint32_t fork;
        if ((rc = need(r, PG_SMGR_CREATE_SIZE, "Storage/CREATE", err))
            != TARN_OK)
            return rc;
        fork = tarn_get_u32(d + PG_SMGR_CREATE_FORK);
        if (fork > PG_MAX_FORKNUM)
            return FAIL("Storage/CREATE of fork %u", fork);
        return rel_ensure(ing, tarn_get_u32(d), tarn_get_u32(d + 4),
                          tarn_get_u32(d + 8), (uint8_t)fork, &n, err);
    }
    if (op == PG_XLOG_SMGR_TRUNCATE) {
        uint32_t blkno, spc, db, rel, flags;
        int64_t n;
        if ((rc = need(r, PG_SMGR_TRUNCATE_SIZE, "Storage/TRUNCATE", err))
            != TARN_OK)
            return rc;
        blkno = tarn_get_u32(d + PG_SMGR_TRUNCATE_BLKNO);
        spc = tarn_get_u32(d + PG_SMGR_TRUNCATE_RNODE);
        db = tarn_get_u32(d + PG_SMGR_TRUNCATE_RNODE + 4);
        rel = tarn_get_u32(d + PG_SMGR_TRUNCATE_RNODE + 8);
        flags = tarn_get_u32(d + PG_SMGR_TRUNCATE_FLAGS);
        if (flags & PG_SMGR_TRUNCATE_HEAP) {
            /* Replay creates the main fork if it is missing. */
            if ((rc = rel_ensure(ing, spc, db, rel, PG_MAIN_FORKNUM, &n, err))
                != TARN_OK)
                return rc;
            if (n > (int64_t)blkno
                && (rc = rel_set_size(ing, spc, db, rel, PG_MAIN_FORKNUM, blkno,
                                      err))
                       != TARN_OK)
                return rc;
        }
        if (flags & PG_SMGR_TRUNCATE_FSM) {
            uint32_t logical = blkno / PG_FSM_SLOTS_PER_PAGE,
                     phys = fsm_logical_to_physical(logical);
            if ((rc = rel_size(ing, spc, db, rel, PG_FSM_FORKNUM, &n, err))
                != TARN_OK)
                return rc;
            if (n != NOT_EXIST) {
                /*
                 * The FSM is a hint that PostgreSQL rebuilds: clear the
                 * whole partial page rather than its tail (as Neon does).
                 */
                if (blkno % PG_FSM_SLOTS_PER_PAGE != 0) {
                    if ((int64_t)phys < n) {
                        tkey k =
                            tkey_rel_block(spc, db, rel, PG_FSM_FORKNUM, phys);
                        if ((rc = put_zero(ing, &k, err)) != TARN_OK)
                            return rc;
                    }
                    phys++;
                }
                if (n > (int64_t)phys
                    && (rc = rel_set_size(ing, spc, db, rel, PG_FSM_FORKNUM,
                                          phys, err))
                           != TARN_OK)
                    return rc;
            }
        }
        if (flags & PG_SMGR_TRUNCATE_VM) {
            uint32_t vmblk = blkno / PG_VM_HEAPBLOCKS_PER_PAGE, newn = vmblk;
            if ((rc = rel_size(ing, spc, db, rel, PG_VM_FORKNUM, &n, err))
                != TARN_OK)
                return rc;
            if (n != NOT_EXIST && n > (int64_t)vmblk) {
                if (blkno % PG_VM_HEAPBLOCKS_PER_PAGE != 0) {
                    tkey k = tkey_rel_block(spc, db, rel, PG_VM_FORKNUM, vmblk);
                    if (tval_vmtrunc(&ing->val, blkno, err) != TARN_OK)
                        return TARN_ENOMEM;
                    if ((rc = put(ing, &k, &ing->val, err)) != TARN_OK)
                        return rc;
                    newn = vmblk + 1;
                }
                if (n > (int64_t)newn
                    && (rc = rel_set_size(ing, spc, db, rel, PG_VM_FORKNUM,
                                          newn, err))
                           != TARN_OK)
                    return rc;
            }
        }
    }
    return TARN_OK;
}

/* Parsed COMMIT/ABORT main data (xactdesc.c ParseCommitRecord order). */
typedef struct xact_parsed {
    int64_t xact_time;
    uint32_t xinfo;
    uint32_t nsubxacts;
    const uint8_t *subxacts;
    uint32_t nrels;
    const uint8_t *rels;
    uint32_t twophase_xid;
} xact_parsed;

static tarn_rc
parse_xact(const walrec *r, bool commit, xact_parsed *p, tarn_err *err)
{
    const uint8_t *d = r->main_data, *end = d + r->main_len;
    char l[TARN_LSN_STRLEN];

#define TAKE(n)                                                  \
    do {                                                         \
        if ((size_t)(end - d) < (size_t)(n))                     \
            return FAIL("Transaction record at %s is truncated", \
                        tarn_lsn_format(r->start, l));           \
    } while (0)

    memset(p, 0, sizeof(*p));
    TAKE(8);
    p->xact_time = (int64_t)tarn_get_u64(d);
    d += 8;
    if (r->info & PG_XLOG_XACT_HAS_INFO) {
        TAKE(4);
        p->xinfo = tarn_get_u32(d);
        d += 4;
    }
    if (p->xinfo & PG_XACT_XINFO_HAS_DBINFO) {
        TAKE(8);
        d += 8;
    }
    if (p->xinfo & PG_XACT_XINFO_HAS_SUBXACTS) {
        TAKE(4);
        p->nsubxacts = tarn_get_u32(d);
        d += 4;
        TAKE((uint64_t)p->nsubxacts * 4);
        p->subxacts = d;
        d += (size_t)p->nsubxacts * 4;
    }
    if (p->xinfo & PG_XACT_XINFO_HAS_RELFILENODES) {
        TAKE(4);
        p->nrels = tarn_get_u32(d);
        d += 4;
        TAKE((uint64_t)p->nrels * 12);
        p->rels = d;
        d += (size_t)p->nrels * 12;
    }
    if (p->xinfo & PG_XACT_XINFO_HAS_DROPPED_STATS) {
        uint32_t n;
        TAKE(4);
        n = tarn_get_u32(d);
        d += 4;
        TAKE((uint64_t)n * 12);
        d += (size_t)n * 12;
    }
    if (commit && (p->xinfo & PG_XACT_XINFO_HAS_INVALS)) {
        uint32_t n;
        TAKE(4);
        n = tarn_get_u32(d);
        d += 4;
        TAKE((uint64_t)n * 16);
        d += (size_t)n * 16;
    }
    if (p->xinfo & PG_XACT_XINFO_HAS_TWOPHASE) {
        TAKE(4);
        p->twophase_xid = tarn_get_u32(d);
    }
#undef TAKE
    return TARN_OK;
}

static tarn_rc
twophase_put_dir(ingest *ing, tarn_err *err)
{
    tkey k = tkey_twophase_dir();

    return u32set_put(ing, &k, &ing->twophase, err);
}

static tarn_rc
ingest_xact(ingest *ing, const walrec *r, tarn_err *err)
{
    uint8_t op = r->info & PG_XLOG_XACT_OPMASK;
    bool commit =
        op == PG_XLOG_XACT_COMMIT || op == PG_XLOG_XACT_COMMIT_PREPARED;
    bool prepared =
        op == PG_XLOG_XACT_COMMIT_PREPARED || op == PG_XLOG_XACT_ABORT_PREPARED;
    xact_parsed p;
    uint32_t *xids, xid;
    tarn_rc rc;

    if (op == PG_XLOG_XACT_PREPARE) {
        tkey k;
        if ((rc = need(r, PG_XACT_PREPARE_XID + 4, "Transaction/PREPARE", err))
            != TARN_OK)
            return rc;
        xid = tarn_get_u32(r->main_data + PG_XACT_PREPARE_XID);
        k = tkey_twophase(xid);
        if ((rc = put_image(ing, &k, r->main_data, r->main_len, err)) != TARN_OK
            || (rc = u32set_add(&ing->twophase, xid, err)) != TARN_OK)
            return rc;
        return twophase_put_dir(ing, err);
    }
    if (op != PG_XLOG_XACT_COMMIT && op != PG_XLOG_XACT_ABORT && !prepared)
        return TARN_OK; /* ASSIGNMENT, INVALIDATIONS: nothing on pages */
    if ((rc = parse_xact(r, commit, &p, err)) != TARN_OK)
        return rc;
    xid = prepared ? p.twophase_xid : r->xid;
    xids = malloc(((size_t)p.nsubxacts + 1) * sizeof(uint32_t));
    if (xids == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    xids[0] = xid;
    for (uint32_t i = 0; i < p.nsubxacts; i++)
        xids[i + 1] = tarn_get_u32(p.subxacts + 4 * i);
    for (uint32_t i = 0; i <= p.nsubxacts; i++)
        ckpt_update_next_xid(ing, xids[i]);
    rc = clog_set(ing, xids, (size_t)p.nsubxacts + 1,
                  commit ? TVAL_XID_COMMITTED : TVAL_XID_ABORTED, err);
    free(xids);
    if (rc != TARN_OK)
        return rc;
    for (uint32_t i = 0; i < p.nrels; i++) {
        const uint8_t *n = p.rels + 12 * i;
        for (uint8_t f = 0; f <= PG_MAX_FORKNUM; f++)
            if ((rc = rel_drop(ing, tarn_get_u32(n), tarn_get_u32(n + 4),
                               tarn_get_u32(n + 8), f, err))
                != TARN_OK)
                return rc;
    }
    if (prepared && u32set_has(&ing->twophase, xid)) {
        tkey k = tkey_twophase(xid);
        u32set_del(&ing->twophase, xid);
        if ((rc = put_tombstone(ing, &k, err)) != TARN_OK
            || (rc = twophase_put_dir(ing, err)) != TARN_OK)
            return rc;
    }
    if (commit) {
        ing->st.commits++;
        return timeline_put_commit_ts(ing->tl, p.xact_time, ing->lsn, err);
    }
    return TARN_OK;
}

static tarn_rc
ingest_clog(ingest *ing, const walrec *r, tarn_err *err)
{
    uint8_t op = r->info & PG_XLR_RMGR_INFO_MASK;
    tarn_rc rc;

    if (op == PG_CLOG_ZEROPAGE) {
        if ((rc = need(r, 4, "CLOG/ZEROPAGE", err)) != TARN_OK)
            return rc;
        return slru_zero_page(ing, SLRU_CLOG, tarn_get_u32(r->main_data), err);
    }
    if (op == PG_CLOG_TRUNCATE) {
        if ((rc = need(r, 12, "CLOG/TRUNCATE", err)) != TARN_OK)
            return rc;
        if (ing->have_ckpt) {
            uint32_t oldest = tarn_get_u32(r->main_data + 4);
            if (xid_precedes(tarn_get_u32(ing->ckpt + PG_CKPT_OLDEST_XID),
                             oldest)) {
                ckpt_set32(ing, PG_CKPT_OLDEST_XID, oldest);
                ckpt_set32(ing, PG_CKPT_OLDEST_XID_DB,
                           tarn_get_u32(r->main_data + 8));
            }
        }
        return slru_truncate(ing, SLRU_CLOG, tarn_get_u32(r->main_data), err);
    }
    return TARN_OK;
}

static tarn_rc
mx_set_offset(ingest *ing, uint32_t mid, uint32_t moff, tarn_err *err)
{
    uint32_t page = mid / PG_MULTIXACT_OFFSETS_PER_PAGE;
    bool created;
    tkey k = tkey_slru_block(SLRU_MXOFFSETS, page / PG_SLRU_PAGES_PER_SEGMENT,
                             page % PG_SLRU_PAGES_PER_SEGMENT);
    tarn_rc rc = slru_ensure(ing, SLRU_MXOFFSETS, page, &created, err);

    if (rc != TARN_OK)
        return rc;
    if (tval_mxoff(&ing->val, mid, moff, err) != TARN_OK)
        return TARN_ENOMEM;
    return put(ing, &k, &ing->val, err);
}

static tarn_rc
ingest_multixact(ingest *ing, const walrec *r, tarn_err *err)
{
    uint8_t op = r->info & PG_XLR_RMGR_INFO_MASK;
    const uint8_t *d = r->main_data;
    tarn_rc rc;

    switch (op) {
    case PG_XLOG_MULTIXACT_ZERO_OFF_PAGE:
    case PG_XLOG_MULTIXACT_ZERO_MEM_PAGE:
        if ((rc = need(r, 4, "MultiXact/ZERO_PAGE", err)) != TARN_OK)
            return rc;
        return slru_zero_page(ing,
                              op == PG_XLOG_MULTIXACT_ZERO_OFF_PAGE
                                  ? SLRU_MXOFFSETS
                                  : SLRU_MXMEMBERS,
                              tarn_get_u32(d), err);
    case PG_XLOG_MULTIXACT_CREATE_ID: {
        uint32_t mid, moff, n, next, next_off, maxxid = 0;
        if ((rc = need(r, PG_MULTIXACT_CREATE_HDR, "MultiXact/CREATE_ID", err))
            != TARN_OK)
            return rc;
        mid = tarn_get_u32(d);
        moff = tarn_get_u32(d + 4);
        n = tarn_get_u32(d + 8);
        if ((rc = need(r, PG_MULTIXACT_CREATE_HDR + 8 * n,
                       "MultiXact/CREATE_ID", err))
            != TARN_OK)
            return rc;
        /* This multixact's offset, and (15.5+) the next one's. */
        next = mid + 1;
        if (next < 1)
            next = 1;
        next_off = moff + n;
        if (next_off == 0)
            next_off = 1;
        if ((rc = mx_set_offset(ing, mid, moff, err)) != TARN_OK
            || (rc = mx_set_offset(ing, next, next_off, err)) != TARN_OK)
            return rc;
        /* Members, one value per members page. */
        for (uint32_t i = 0; i < n;) {
            uint32_t off = moff + i, page = off / PG_MULTIXACT_MEMBERS_PER_PAGE,
                     j = i;
            uint32_t xids[PG_MULTIXACT_MEMBERS_PER_PAGE];
            uint8_t st[PG_MULTIXACT_MEMBERS_PER_PAGE];
            bool created;
            tkey k = tkey_slru_block(SLRU_MXMEMBERS,
                                     page / PG_SLRU_PAGES_PER_SEGMENT,
                                     page % PG_SLRU_PAGES_PER_SEGMENT);
            while (j < n
                   && (moff + j) / PG_MULTIXACT_MEMBERS_PER_PAGE == page) {
                const uint8_t *m = d + PG_MULTIXACT_CREATE_HDR + 8 * j;
                xids[j - i] = tarn_get_u32(m);
                st[j - i] = (uint8_t)tarn_get_u32(m + 4);
                if (xid_precedes(maxxid, xids[j - i]))
                    maxxid = xids[j - i];
                j++;
            }
            if ((rc = slru_ensure(ing, SLRU_MXMEMBERS, page, &created, err))
                != TARN_OK)
                return rc;
            if (tval_mxmem(&ing->val, off, xids, st, j - i, err) != TARN_OK)
                return TARN_ENOMEM;
            if ((rc = put(ing, &k, &ing->val, err)) != TARN_OK)
                return rc;
            i = j;
        }
        if (ing->have_ckpt) {
            if ((int32_t)(next - tarn_get_u32(ing->ckpt + PG_CKPT_NEXT_MULTI))
                > 0)
                ckpt_set32(ing, PG_CKPT_NEXT_MULTI, next);
            if ((int32_t)(moff + n
                          - tarn_get_u32(ing->ckpt + PG_CKPT_NEXT_MULTI_OFFSET))
                > 0)
                ckpt_set32(ing, PG_CKPT_NEXT_MULTI_OFFSET, moff + n);
            if (maxxid != 0)
                ckpt_update_next_xid(ing, maxxid);
        }
        return TARN_OK;
    }
    case PG_XLOG_MULTIXACT_TRUNCATE_ID: {
        uint32_t start_memb, end_memb, seg, endseg, maxseg, end_off;
        if ((rc =
                 need(r, PG_MULTIXACT_TRUNCATE_SIZE, "MultiXact/TRUNCATE", err))
            != TARN_OK)
            return rc;
        end_off = tarn_get_u32(d + 8);
        start_memb = tarn_get_u32(d + 12);
        end_memb = tarn_get_u32(d + 16);
        ckpt_set32(ing, PG_CKPT_OLDEST_MULTI, end_off);
        ckpt_set32(ing, PG_CKPT_OLDEST_MULTI_DB, tarn_get_u32(d));
        /* PerformMembersTruncation: every segment but the last. */
        maxseg = (uint32_t)(UINT32_MAX / PG_MULTIXACT_MEMBERS_PER_PAGE
                            / PG_SLRU_PAGES_PER_SEGMENT);
        seg = start_memb / PG_MULTIXACT_MEMBERS_PER_PAGE
              / PG_SLRU_PAGES_PER_SEGMENT;
        endseg = end_memb / PG_MULTIXACT_MEMBERS_PER_PAGE
                 / PG_SLRU_PAGES_PER_SEGMENT;
        while (seg != endseg) {
            if ((rc = slru_drop_segment(ing, SLRU_MXMEMBERS, seg, err))
                != TARN_OK)
                return rc;
            seg = seg == maxseg ? 0 : seg + 1;
        }
        /* PerformOffsetsTruncation: before the page of end_off - 1. */
        end_off = end_off - 1 < 1 ? UINT32_MAX : end_off - 1;
        return slru_truncate(ing, SLRU_MXOFFSETS,
                             end_off / PG_MULTIXACT_OFFSETS_PER_PAGE, err);
    }
    }
    return TARN_OK;
}

static tarn_rc
ingest_relmap(ingest *ing, const walrec *r, tarn_err *err)
{
    uint32_t db, spc;
    int32_t nbytes;
    tkey k;
    tarn_rc rc;

    if ((r->info & PG_XLR_RMGR_INFO_MASK) != PG_XLOG_RELMAP_UPDATE)
        return TARN_OK;
    if ((rc = need(r, PG_RELMAP_UPDATE_HDR, "RelMap/UPDATE", err)) != TARN_OK)
        return rc;
    db = tarn_get_u32(r->main_data);
    spc = tarn_get_u32(r->main_data + 4);
    nbytes = (int32_t)tarn_get_u32(r->main_data + 8);
    if (nbytes != PG_RELMAP_FILE_SIZE
        || r->main_len < PG_RELMAP_UPDATE_HDR + (uint32_t)nbytes)
        return FAIL("RelMap/UPDATE with %d bytes of map", nbytes);
    k = tkey_relmap(spc, db);
    if ((rc = put_image(ing, &k, r->main_data + PG_RELMAP_UPDATE_HDR,
                        (size_t)nbytes, err))
        != TARN_OK)
        return rc;
    return dbdir_add(ing, spc, db, err);
}

/* The relation forks of one database, from its directory entries. */
typedef struct relfork {
    uint32_t rel;
    uint8_t fork;
} relfork;

typedef struct relfork_list {
    relfork *v;
    size_t n, cap;
} relfork_list;

static tarn_rc
collect_relfork(void *arg, const tkey *k, const uint8_t *val, size_t len,
                tarn_err *err)
{
    relfork_list *l = arg;

    (void)val;
    (void)len;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        relfork *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].rel = tkey_f4(k);
    l->v[l->n].fork = tkey_f5(k);
    l->n++;
    return TARN_OK;
}

static tarn_rc
list_rels(ingest *ing, uint32_t spc, uint32_t db, tarn_lsn lsn,
          relfork_list *out, tarn_err *err)
{
    tkey lo = tkey_make(TKEY_RELDIR, spc, db, 0, 0, 0),
         hi = tkey_make(TKEY_RELDIR, spc, db, UINT32_MAX, 0xff, UINT32_MAX);

    return tl_scan(view(ing), &lo, &hi, lsn, collect_relfork, out, err);
}

/* CREATE DATABASE ... STRATEGY FILE_COPY: copy every page of the source
 * database as it is now. */
static tarn_rc
dbase_copy(ingest *ing, uint32_t db, uint32_t spc, uint32_t src_db,
           uint32_t src_spc, tarn_err *err)
{
    tarn_lsn at = timeline_last_record_lsn(ing->tl);
    relfork_list rels = {0};
    uint8_t page[PG_BLCKSZ];
    tkey mk = tkey_relmap(src_spc, src_db);
    bool found;
    tarn_rc rc;

    if ((rc = dbdir_add(ing, spc, db, err)) != TARN_OK)
        return rc;
    if ((rc = tl_get_value(view(ing), &mk, at, &ing->tmp, &found, err))
        != TARN_OK)
        return rc;
    if (found) {
        tkey k = tkey_relmap(spc, db);
        if ((rc = put_image(ing, &k, ing->tmp.p, ing->tmp.len, err)) != TARN_OK)
            return rc;
    }
    if ((rc = list_rels(ing, src_spc, src_db, at, &rels, err)) != TARN_OK)
        goto done;
    for (size_t i = 0; i < rels.n; i++) {
        tkey sk = tkey_rel_size(src_spc, src_db, rels.v[i].rel, rels.v[i].fork);
        uint32_t n;
        int64_t cur;
        if ((rc = tl_get_value(view(ing), &sk, at, &ing->tmp, &found, err))
            != TARN_OK)
            goto done;
        if (!found || ing->tmp.len != 4)
            continue;
        n = tarn_get_u32(ing->tmp.p);
        if ((rc = rel_ensure(ing, spc, db, rels.v[i].rel, rels.v[i].fork, &cur,
                             err))
            != TARN_OK)
            goto done;
        for (uint32_t b = 0; b < n; b++) {
            tkey src = tkey_rel_block(src_spc, src_db, rels.v[i].rel,
                                      rels.v[i].fork, b),
                 dst =
                     tkey_rel_block(spc, db, rels.v[i].rel, rels.v[i].fork, b);
            rc = tl_get_page(view(ing), &src, at, page, err);
            if (rc == TARN_ENOTFOUND) {
                rc = put_zero(ing, &dst, err);
            } else if (rc == TARN_OK) {
                rc = put_image(ing, &dst, page, PG_BLCKSZ, err);
                ing->st.images++;
            } else {
                tarn_err_prefix(err,
                                "CREATE DATABASE (FILE_COPY) of database %u "
                                "from %u: ",
                                db, src_db);
            }
            if (rc != TARN_OK)
                goto done;
        }
        if ((rc = rel_set_size(ing, spc, db, rels.v[i].rel, rels.v[i].fork, n,
                               err))
            != TARN_OK)
            goto done;
    }
done:
    free(rels.v);
    return rc;
}

static tarn_rc
dbase_drop(ingest *ing, uint32_t db, uint32_t spc, tarn_err *err)
{
    relfork_list rels = {0};
    tkey mk = tkey_relmap(spc, db);
    tarn_rc rc;

    if ((rc = list_rels(ing, spc, db, LATEST, &rels, err)) != TARN_OK)
        goto done;
    for (size_t i = 0; i < rels.n; i++)
        if ((rc = rel_drop(ing, spc, db, rels.v[i].rel, rels.v[i].fork, err))
            != TARN_OK)
            goto done;
    if ((rc = put_tombstone(ing, &mk, err)) != TARN_OK)
        goto done;
    rc = dbdir_remove(ing, spc, db, err);
done:
    free(rels.v);
    return rc;
}

static tarn_rc
ingest_dbase(ingest *ing, const walrec *r, tarn_err *err)
{
    uint8_t op = r->info & PG_XLR_RMGR_INFO_MASK;
    const uint8_t *d = r->main_data;
    tarn_rc rc;

    switch (op) {
    case PG_XLOG_DBASE_CREATE_FILE_COPY:
        if ((rc = need(r, PG_DBASE_FILE_COPY_SIZE, "Database/CREATE_FILE_COPY",
                       err))
            != TARN_OK)
            return rc;
        return dbase_copy(ing, tarn_get_u32(d), tarn_get_u32(d + 4),
                          tarn_get_u32(d + 8), tarn_get_u32(d + 12), err);
    case PG_XLOG_DBASE_CREATE_WAL_LOG:
        if ((rc =
                 need(r, PG_DBASE_WAL_LOG_SIZE, "Database/CREATE_WAL_LOG", err))
            != TARN_OK)
            return rc;
        return dbdir_add(ing, tarn_get_u32(d + 4), tarn_get_u32(d), err);
    case PG_XLOG_DBASE_DROP: {
        uint32_t db, n;
        if ((rc = need(r, PG_DBASE_DROP_HDR, "Database/DROP", err)) != TARN_OK)
            return rc;
        db = tarn_get_u32(d);
        n = tarn_get_u32(d + 4);
        if ((rc = need(r, PG_DBASE_DROP_HDR + 4 * n, "Database/DROP", err))
            != TARN_OK)
            return rc;
        for (uint32_t i = 0; i < n; i++)
            if ((rc = dbase_drop(ing, db, tarn_get_u32(d + 8 + 4 * i), err))
                != TARN_OK)
                return rc;
        return TARN_OK;
    }
    }
    return TARN_OK;
}

static tarn_rc
ingest_xlog(ingest *ing, const walrec *r, tarn_err *err)
{
    uint8_t op = r->info & PG_XLR_RMGR_INFO_MASK;
    tarn_rc rc;

    switch (op) {
    case PG_XLOG_CHECKPOINT_SHUTDOWN:
    case PG_XLOG_CHECKPOINT_ONLINE:
        if ((rc = need(r, PG_CKPT_SIZE, "XLOG/CHECKPOINT", err)) != TARN_OK)
            return rc;
        ckpt_merge(ing, r->main_data, op == PG_XLOG_CHECKPOINT_SHUTDOWN);
        return TARN_OK;
    case PG_XLOG_NEXTOID:
        if ((rc = need(r, 4, "XLOG/NEXTOID", err)) != TARN_OK)
            return rc;
        ckpt_set32(ing, PG_CKPT_NEXT_OID, tarn_get_u32(r->main_data));
        return TARN_OK;
    }
    return TARN_OK;
}

static tarn_rc
ingest_standby(ingest *ing, const walrec *r, tarn_err *err)
{
    tarn_rc rc;

    if ((r->info & PG_XLR_RMGR_INFO_MASK) != PG_XLOG_RUNNING_XACTS)
        return TARN_OK;
    if ((rc = need(r, PG_RUNNING_XACTS_OLDEST_RUNNING + 4,
                   "Standby/RUNNING_XACTS", err))
        != TARN_OK)
        return rc;
    ckpt_set32(ing, PG_CKPT_OLDEST_ACTIVE_XID,
               tarn_get_u32(r->main_data + PG_RUNNING_XACTS_OLDEST_RUNNING));
    return TARN_OK;
}

/* ---- block references -------------------------------------------------- */

static tarn_rc
ingest_blocks(ingest *ing, const walrec *r, tarn_err *err)
{
    uint8_t page[PG_BLCKSZ];
    tarn_rc rc;

    for (int id = 0; id <= r->max_block_id; id++) {
        const walrec_block *b = &r->blocks[id];
        tkey k;
        if (!b->in_use)
            continue;
        /* XLOG records carry nothing but their images. */
        if (r->rmid == PG_RM_XLOG && !b->has_image)
            continue;
        if ((rc = rel_extend_to(ing, b->rel.spc, b->rel.db, b->rel.rel, b->fork,
                                b->blkno, err))
            != TARN_OK)
            return rc;
        k = tkey_rel_block(b->rel.spc, b->rel.db, b->rel.rel, b->fork,
                           b->blkno);
        if (b->has_image && (b->apply || ing->o.trust_consistency_images)) {
            bool keep_lsn;
            if ((rc = walrec_restore_image(b, page, err)) != TARN_OK)
                return rc;
            /*
             * Redo sets the LSN of a page it restores or changes, except
             * Heap2/VISIBLE's heap page, which only gets PD_ALL_VISIBLE.
             */
            keep_lsn =
                !b->apply && r->rmid == PG_RM_HEAP2
                && (r->info & PG_XLOG_HEAP_OPMASK) == PG_XLOG_HEAP2_VISIBLE
                && id == 1;
            if (!pg_page_is_new(page) && !keep_lsn)
                pg_page_set_lsn(page, ing->lsn);
            if ((rc = put_image(ing, &k, page, PG_BLCKSZ, err)) != TARN_OK)
                return rc;
            ing->st.images++;
            continue;
        }
        if (tval_pgrec(&ing->val, (uint8_t)id, b->will_init, r->raw, r->tot_len,
                       err)
            != TARN_OK)
            return TARN_ENOMEM;
        if ((rc = put(ing, &k, &ing->val, err)) != TARN_OK)
            return rc;
        ing->st.pg_records++;
    }
    return TARN_OK;
}

/* ---- the entry points --------------------------------------------------- */

tarn_rc
ingest_create(const ingest_opts *o, ingest **out, tarn_err *err)
{
    ingest *ing = calloc(1, sizeof(*ing));
    tkey ck = tkey_checkpoint();
    bool found;
    tarn_rc rc;

    if (ing == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    ing->o = *o;
    ing->tl = o->tl;
    if ((rc = size_cache_grow(ing, err)) != TARN_OK)
        goto fail;
    if ((rc = tl_get_value(view(ing), &ck, LATEST, &ing->tmp, &found, err))
        != TARN_OK)
        goto fail;
    if (found) {
        if (ing->tmp.len != PG_CKPT_SIZE) {
            rc = FAIL("the checkpoint state has %zu bytes, expected %d",
                      ing->tmp.len, PG_CKPT_SIZE);
            goto fail;
        }
        memcpy(ing->ckpt, ing->tmp.p, PG_CKPT_SIZE);
        ing->have_ckpt = true;
    }
    if ((rc = dbdir_load(ing, err)) != TARN_OK)
        goto fail;
    for (int kind = 0; kind < SLRU_NKINDS; kind++) {
        tkey k = tkey_slru_dir((slru_kind)kind);
        if ((rc = u32set_load(ing, &k, &ing->slru[kind], err)) != TARN_OK)
            goto fail;
    }
    {
        tkey k = tkey_twophase_dir();
        if ((rc = u32set_load(ing, &k, &ing->twophase, err)) != TARN_OK)
            goto fail;
    }
    *out = ing;
    return TARN_OK;
fail:
    ingest_destroy(ing);
    return rc;
}

void
ingest_destroy(ingest *ing)
{
    if (ing == NULL)
        return;
    free(ing->dbs);
    for (int i = 0; i < SLRU_NKINDS; i++)
        free(ing->slru[i].v);
    free(ing->twophase.v);
    free(ing->sizes);
    tbuf_free(&ing->val);
    tbuf_free(&ing->tmp);
    free(ing);
}

void
ingest_set_trust(ingest *ing, bool trust)
{
    ing->o.trust_consistency_images = trust;
}

void
ingest_get_stats(const ingest *ing, ingest_stats *out)
{
    *out = ing->st;
}

tarn_rc
ingest_record(ingest *ing, const walscan_rec *rec, tarn_err *err)
{
    walrec *r = &ing->rec;
    tarn_rc rc;

    TARN_ASSERT(rec->data != NULL);
    if ((rc = walrec_decode(rec->data, rec->tot_len, rec->start, rec->end, r,
                            err))
        != TARN_OK)
        return rc;
    ing->lsn = rec->end;
    ing->start = rec->start;
    if (r->xid != 0)
        ckpt_update_next_xid(ing, r->xid);
    if ((rc = ingest_blocks(ing, r, err)) != TARN_OK)
        goto fail;
    switch (r->rmid) {
    case PG_RM_XLOG:
        rc = ingest_xlog(ing, r, err);
        break;
    case PG_RM_XACT:
        rc = ingest_xact(ing, r, err);
        break;
    case PG_RM_SMGR:
        rc = ingest_smgr(ing, r, err);
        break;
    case PG_RM_CLOG:
        rc = ingest_clog(ing, r, err);
        break;
    case PG_RM_DBASE:
        rc = ingest_dbase(ing, r, err);
        break;
    case PG_RM_MULTIXACT:
        rc = ingest_multixact(ing, r, err);
        break;
    case PG_RM_RELMAP:
        rc = ingest_relmap(ing, r, err);
        break;
    case PG_RM_STANDBY:
        rc = ingest_standby(ing, r, err);
        break;
    case PG_RM_HEAP:
    case PG_RM_HEAP2:
        rc = ingest_vm_clears(ing, r, err);
        break;
    default:
        rc = TARN_OK;
        break;
    }
    if (rc != TARN_OK)
        goto fail;
    if (ing->ckpt_dirty) {
        tkey k = tkey_checkpoint();
        if ((rc = put_image(ing, &k, ing->ckpt, PG_CKPT_SIZE, err)) != TARN_OK)
            goto fail;
        ing->ckpt_dirty = false;
    }
    ing->st.records++;
    ing->st.bytes += rec->tot_len;
    timeline_advance(ing->tl, rec->end, rec->start);
    return TARN_OK;
fail : {
    char l[TARN_LSN_STRLEN];
    tarn_err_prefix(err, "ingest of %s record at %s: ", pg_rmgr_name(r->rmid),
                    tarn_lsn_format(rec->start, l));
}
    return rc;
}
