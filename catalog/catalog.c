/*
 * catalog.c - the LMDB catalog.
 *
 * Seven named databases:
 *   meta            "schema_version" -> record
 *   tenants         tenant id (16 bytes) -> tenant record
 *   tenant_names    name -> tenant id
 *   timelines       tenant id ++ timeline id (32 bytes) -> timeline record
 *   timeline_names  tenant id ++ name -> timeline id
 *   layers          tenant id ++ timeline id ++ layer file name -> layer
 *                   record (the layer map)
 *   commit_ts       tenant id ++ timeline id ++ commit time (8 bytes,
 *                   big-endian with the sign flipped, so it sorts) ++ LSN
 *                   (8 bytes big-endian) -> empty
 *
 * Records are small tag-length-value lists ending in a CRC-32C, so a field
 * can be added later without a migration (old readers skip unknown tags)
 * and a damaged record is detected instead of decoded.  LMDB protects its
 * own B-tree with copy-on-write and synced meta pages, but it has no
 * checksum on the data, and tarn checks everything it reads back.
 *
 * Every write is one transaction run by run_write().  When a put hits
 * MDB_MAP_FULL the transaction is aborted, the map is doubled and the
 * whole transaction is run again from the start, so a resize never loses
 * or half-applies a change.  That is why the transaction bodies below are
 * pure functions of their arguments and the database.
 */
#include "catalog/catalog.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/crc32c.h"

#define REC_TENANT   'T'
#define REC_TIMELINE 'L'
#define REC_META     'M'
#define REC_LAYER    'Y'
#define REC_FORMAT   1
#define REC_MAX      4096

/* Field tags.  Never renumber: they are on disk. */
enum {
    F_META_SCHEMA = 1,
};
enum { F_TEN_ID = 1, F_TEN_NAME = 2, F_TEN_CREATED = 3, F_TEN_NFIELDS };
enum {
    F_TL_TENANT = 1,
    F_TL_ID = 2,
    F_TL_NAME = 3,
    F_TL_ANCESTOR = 4,
    F_TL_ANCESTOR_LSN = 5,
    F_TL_STATE = 6,
    F_TL_CREATED = 7,
    F_TL_START_LSN = 8,
    F_TL_LAST_RECORD_LSN = 9,
    F_TL_WAL_FLUSH_LSN = 10,
    F_TL_DISK_CONSISTENT_LSN = 11,
    F_TL_REMOTE_CONSISTENT_LSN = 12,
    F_TL_SYSTEM_ID = 13,
    F_TL_WAL_SEG_SIZE = 14,
    F_TL_WAL_START_LSN = 15,
    F_TL_PREV_RECORD_LSN = 16,
    F_TL_COMPUTE_CONNINFO = 17,
    F_TL_TRUST_CI = 18,
    F_TL_NFIELDS
};
enum {
    F_LY_KIND = 1,
    F_LY_KEY_START = 2,
    F_LY_KEY_END = 3,
    F_LY_LSN_START = 4,
    F_LY_LSN_END = 5,
    F_LY_FILE_SIZE = 6,
    F_LY_NVALUES = 7,
    F_LY_NFIELDS
};

#define DEFAULT_MAX_MAP ((size_t)1 << 40)

struct catalog {
    MDB_env *env;
    MDB_dbi meta, tenants, tenant_names, timelines, timeline_names, layers,
        commit_ts;
    size_t map_size, max_map_size;
    bool map_full; /* set by a put that hit MDB_MAP_FULL */
    catalog_stats stats;
};

typedef tarn_rc (*txn_fn)(catalog *c, MDB_txn *txn, void *arg, tarn_err *err);

/* ---- records ---------------------------------------------------------- */

typedef struct rec_buf {
    uint8_t b[REC_MAX];
    size_t len;
    bool overflow;
} rec_buf;

typedef struct rec_field {
    const uint8_t *p;
    size_t len; /* 0 with p == NULL: absent */
} rec_field;

static void
rec_begin(rec_buf *r, uint8_t kind)
{
    r->b[0] = kind;
    r->b[1] = REC_FORMAT;
    r->len = 2;
    r->overflow = false;
}

static void
rec_put(rec_buf *r, uint16_t tag, const void *data, size_t len)
{
    if (r->overflow || len > 0xffff || r->len + 4 + len + 4 > REC_MAX) {
        r->overflow = true;
        return;
    }
    tarn_put_u16(r->b + r->len, tag);
    tarn_put_u16(r->b + r->len + 2, (uint16_t)len);
    memcpy(r->b + r->len + 4, data, len);
    r->len += 4 + len;
}

static void
rec_put_u64(rec_buf *r, uint16_t tag, uint64_t v)
{
    uint8_t b[8];

    tarn_put_u64(b, v);
    rec_put(r, tag, b, 8);
}

static void
rec_finish(rec_buf *r)
{
    TARN_ASSERT(!r->overflow);
    tarn_put_u32(r->b + r->len, tarn_crc32c(r->b, r->len));
    r->len += 4;
}

/*
 * Check kind, format and CRC, and index the fields by tag (tags at or
 * above @p nfields are skipped: they come from a newer tarn).
 */
static tarn_rc
rec_parse(const MDB_val *v, uint8_t kind, rec_field *fields, size_t nfields,
          const char *what, tarn_err *err)
{
    const uint8_t *p = v->mv_data;
    size_t len = v->mv_size, off = 2;

    memset(fields, 0, nfields * sizeof(*fields));
    if (len < 6 || tarn_get_u32(p + len - 4) != tarn_crc32c(p, len - 4))
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog record of %s fails its checksum", what);
    if (p[0] != kind || p[1] != REC_FORMAT)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog record of %s has kind %d format %d, "
                            "expected %d format %d",
                            what, p[0], p[1], kind, REC_FORMAT);
    len -= 4;
    while (off < len) {
        uint16_t tag, flen;
        if (len - off < 4)
            goto bad;
        tag = tarn_get_u16(p + off);
        flen = tarn_get_u16(p + off + 2);
        if (len - off - 4 < flen)
            goto bad;
        if (tag < nfields) {
            fields[tag].p = p + off + 4;
            fields[tag].len = flen;
        }
        off += 4 + (size_t)flen;
    }
    return TARN_OK;
bad:
    return tarn_err_set(err, TARN_ECORRUPT, "catalog record of %s is truncated",
                        what);
}

static bool
field_u64(const rec_field *f, uint64_t *out)
{
    if (f->p == NULL || f->len != 8)
        return false;
    *out = tarn_get_u64(f->p);
    return true;
}

static bool
field_id(const rec_field *f, tarn_id *out)
{
    if (f->p == NULL || f->len != 16)
        return false;
    memcpy(out->b, f->p, 16);
    return true;
}

static bool
field_name(const rec_field *f, char *out)
{
    if (f->p == NULL) {
        out[0] = '\0';
        return true;
    }
    if (f->len > CATALOG_NAME_MAX || memchr(f->p, 0, f->len) != NULL)
        return false;
    memcpy(out, f->p, f->len);
    out[f->len] = '\0';
    return true;
}

static void
encode_tenant(const catalog_tenant *t, rec_buf *r)
{
    rec_begin(r, REC_TENANT);
    rec_put(r, F_TEN_ID, t->id.b, 16);
    if (t->name[0] != '\0')
        rec_put(r, F_TEN_NAME, t->name, strlen(t->name));
    rec_put_u64(r, F_TEN_CREATED, (uint64_t)t->created_at);
    rec_finish(r);
}

static tarn_rc
decode_tenant(const MDB_val *v, catalog_tenant *t, tarn_err *err)
{
    rec_field f[F_TEN_NFIELDS];
    uint64_t created;
    tarn_rc rc = rec_parse(v, REC_TENANT, f, F_TEN_NFIELDS, "a tenant", err);

    if (rc != TARN_OK)
        return rc;
    memset(t, 0, sizeof(*t));
    if (!field_id(&f[F_TEN_ID], &t->id) || !field_name(&f[F_TEN_NAME], t->name)
        || !field_u64(&f[F_TEN_CREATED], &created))
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog tenant record has bad fields");
    t->created_at = (tarn_time_us)created;
    return TARN_OK;
}

static void
encode_timeline(const catalog_timeline *tl, rec_buf *r)
{
    rec_begin(r, REC_TIMELINE);
    rec_put(r, F_TL_TENANT, tl->tenant_id.b, 16);
    rec_put(r, F_TL_ID, tl->timeline_id.b, 16);
    if (tl->name[0] != '\0')
        rec_put(r, F_TL_NAME, tl->name, strlen(tl->name));
    if (tl->has_ancestor) {
        rec_put(r, F_TL_ANCESTOR, tl->ancestor_id.b, 16);
        rec_put_u64(r, F_TL_ANCESTOR_LSN, tl->ancestor_lsn);
    }
    rec_put_u64(r, F_TL_STATE, (uint64_t)tl->state);
    rec_put_u64(r, F_TL_CREATED, (uint64_t)tl->created_at);
    rec_put_u64(r, F_TL_START_LSN, tl->start_lsn);
    rec_put_u64(r, F_TL_LAST_RECORD_LSN, tl->last_record_lsn);
    rec_put_u64(r, F_TL_WAL_FLUSH_LSN, tl->wal_flush_lsn);
    rec_put_u64(r, F_TL_DISK_CONSISTENT_LSN, tl->disk_consistent_lsn);
    rec_put_u64(r, F_TL_REMOTE_CONSISTENT_LSN, tl->remote_consistent_lsn);
    if (tl->system_id != 0) {
        rec_put_u64(r, F_TL_SYSTEM_ID, tl->system_id);
        rec_put_u64(r, F_TL_WAL_SEG_SIZE, tl->wal_seg_size);
        rec_put_u64(r, F_TL_WAL_START_LSN, tl->wal_start_lsn);
        rec_put_u64(r, F_TL_PREV_RECORD_LSN, tl->prev_record_lsn);
    }
    if (tl->compute_conninfo[0] != '\0')
        rec_put(r, F_TL_COMPUTE_CONNINFO, tl->compute_conninfo,
                strlen(tl->compute_conninfo));
    if (tl->trust_consistency_images != CATALOG_DEFAULT)
        rec_put_u64(r, F_TL_TRUST_CI, (uint64_t)tl->trust_consistency_images);
    rec_finish(r);
}

static tarn_rc
decode_timeline(const MDB_val *v, catalog_timeline *tl, tarn_err *err)
{
    rec_field f[F_TL_NFIELDS];
    uint64_t state, created;
    tarn_rc rc = rec_parse(v, REC_TIMELINE, f, F_TL_NFIELDS, "a timeline", err);

    if (rc != TARN_OK)
        return rc;
    memset(tl, 0, sizeof(*tl));
    tl->has_ancestor = f[F_TL_ANCESTOR].p != NULL;
    if (!field_id(&f[F_TL_TENANT], &tl->tenant_id)
        || !field_id(&f[F_TL_ID], &tl->timeline_id)
        || !field_name(&f[F_TL_NAME], tl->name)
        || (tl->has_ancestor
            && (!field_id(&f[F_TL_ANCESTOR], &tl->ancestor_id)
                || !field_u64(&f[F_TL_ANCESTOR_LSN], &tl->ancestor_lsn)))
        || !field_u64(&f[F_TL_STATE], &state)
        || !field_u64(&f[F_TL_CREATED], &created)
        || !field_u64(&f[F_TL_START_LSN], &tl->start_lsn)
        || !field_u64(&f[F_TL_LAST_RECORD_LSN], &tl->last_record_lsn)
        || !field_u64(&f[F_TL_WAL_FLUSH_LSN], &tl->wal_flush_lsn)
        || !field_u64(&f[F_TL_DISK_CONSISTENT_LSN], &tl->disk_consistent_lsn)
        || !field_u64(&f[F_TL_REMOTE_CONSISTENT_LSN],
                      &tl->remote_consistent_lsn)
        || state > CATALOG_TL_CREATING)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog timeline record has bad fields");
    tl->state = (catalog_tl_state)state;
    tl->created_at = (tarn_time_us)created;
    /* Fields added after the first format: absent means zero. */
    if (f[F_TL_SYSTEM_ID].p != NULL) {
        uint64_t seg;
        if (!field_u64(&f[F_TL_SYSTEM_ID], &tl->system_id)
            || !field_u64(&f[F_TL_WAL_SEG_SIZE], &seg) || seg > UINT32_MAX
            || !field_u64(&f[F_TL_WAL_START_LSN], &tl->wal_start_lsn)
            || !field_u64(&f[F_TL_PREV_RECORD_LSN], &tl->prev_record_lsn))
            return tarn_err_set(err, TARN_ECORRUPT,
                                "catalog timeline record has bad WAL fields");
        tl->wal_seg_size = (uint32_t)seg;
    }
    if (f[F_TL_COMPUTE_CONNINFO].p != NULL) {
        const rec_field *c = &f[F_TL_COMPUTE_CONNINFO];
        if (c->len > CATALOG_CONNINFO_MAX || memchr(c->p, 0, c->len) != NULL)
            return tarn_err_set(err, TARN_ECORRUPT,
                                "catalog timeline record has a bad conninfo");
        memcpy(tl->compute_conninfo, c->p, c->len);
        tl->compute_conninfo[c->len] = '\0';
    }
    tl->trust_consistency_images = CATALOG_DEFAULT;
    if (f[F_TL_TRUST_CI].p != NULL) {
        uint64_t trust;
        if (!field_u64(&f[F_TL_TRUST_CI], &trust) || trust > 1)
            return tarn_err_set(err, TARN_ECORRUPT,
                                "catalog timeline record has a bad "
                                "trust_consistency_images");
        tl->trust_consistency_images = (catalog_tristate)trust;
    }
    return TARN_OK;
}

static void
encode_layer(const catalog_layer *l, rec_buf *r)
{
    rec_begin(r, REC_LAYER);
    rec_put_u64(r, F_LY_KIND, l->kind);
    rec_put(r, F_LY_KEY_START, l->key_start, 18);
    rec_put(r, F_LY_KEY_END, l->key_end, 18);
    rec_put_u64(r, F_LY_LSN_START, l->lsn_start);
    rec_put_u64(r, F_LY_LSN_END, l->lsn_end);
    rec_put_u64(r, F_LY_FILE_SIZE, l->file_size);
    rec_put_u64(r, F_LY_NVALUES, l->nvalues);
    rec_finish(r);
}

static tarn_rc
decode_layer(const MDB_val *k, const MDB_val *v, catalog_layer *l,
             tarn_err *err)
{
    rec_field f[F_LY_NFIELDS];
    uint64_t kind;
    size_t nlen = k->mv_size - 32;
    tarn_rc rc = rec_parse(v, REC_LAYER, f, F_LY_NFIELDS, "a layer", err);

    if (rc != TARN_OK)
        return rc;
    memset(l, 0, sizeof(*l));
    if (k->mv_size <= 32 || nlen > CATALOG_LAYER_NAME_MAX
        || !field_u64(&f[F_LY_KIND], &kind) || (kind != 1 && kind != 2)
        || f[F_LY_KEY_START].len != 18 || f[F_LY_KEY_END].len != 18
        || !field_u64(&f[F_LY_LSN_START], &l->lsn_start)
        || !field_u64(&f[F_LY_LSN_END], &l->lsn_end)
        || !field_u64(&f[F_LY_FILE_SIZE], &l->file_size)
        || !field_u64(&f[F_LY_NVALUES], &l->nvalues))
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog layer record has bad fields");
    memcpy(l->name, (const uint8_t *)k->mv_data + 32, nlen);
    l->name[nlen] = '\0';
    l->kind = (uint8_t)kind;
    memcpy(l->key_start, f[F_LY_KEY_START].p, 18);
    memcpy(l->key_end, f[F_LY_KEY_END].p, 18);
    return TARN_OK;
}

/* ---- transactions ----------------------------------------------------- */

static tarn_rc
lmdb_fail(catalog *c, int mrc, const char *what, tarn_err *err)
{
    if (mrc == MDB_MAP_FULL) {
        c->map_full = true;
        return tarn_err_set(err, TARN_ENOSPC, "catalog map is full");
    }
    if (mrc == ENOSPC)
        return tarn_err_set(err, TARN_ENOSPC, "catalog: %s: %s", what,
                            mdb_strerror(mrc));
    return tarn_err_set(err, TARN_EIO, "catalog: %s: %s", what,
                        mdb_strerror(mrc));
}

static tarn_rc
db_put(catalog *c, MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
       const void *val, size_t vlen, unsigned flags, tarn_err *err)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int mrc = mdb_put(txn, dbi, &k, &v, flags);

    if (mrc == MDB_KEYEXIST)
        return TARN_EEXIST; /* the caller words the message */
    if (mrc != 0)
        return lmdb_fail(c, mrc, "put", err);
    return TARN_OK;
}

/* Fetch: TARN_ENOTFOUND (no message set) when absent. */
static tarn_rc
db_get(catalog *c, MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
       MDB_val *out, tarn_err *err)
{
    MDB_val k = {klen, (void *)key};
    int mrc = mdb_get(txn, dbi, &k, out);

    if (mrc == MDB_NOTFOUND)
        return TARN_ENOTFOUND;
    if (mrc != 0)
        return lmdb_fail(c, mrc, "get", err);
    return TARN_OK;
}

static tarn_rc
db_del(catalog *c, MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
       tarn_err *err)
{
    MDB_val k = {klen, (void *)key};
    int mrc = mdb_del(txn, dbi, &k, NULL);

    if (mrc == MDB_NOTFOUND)
        return TARN_ENOTFOUND;
    if (mrc != 0)
        return lmdb_fail(c, mrc, "delete", err);
    return TARN_OK;
}

static tarn_rc
grow_map(catalog *c, tarn_err *err)
{
    size_t want = c->map_size * 2;
    int mrc;

    if (c->map_size >= c->max_map_size)
        return tarn_err_set(err, TARN_ENOSPC,
                            "catalog map is full at its ceiling of %zu bytes",
                            c->max_map_size);
    if (want > c->max_map_size)
        want = c->max_map_size;
    mrc = mdb_env_set_mapsize(c->env, want);
    if (mrc != 0)
        return lmdb_fail(c, mrc, "grow map", err);
    c->map_size = want;
    c->stats.map_resizes++;
    return TARN_OK;
}

static tarn_rc
begin(catalog *c, unsigned flags, MDB_txn **txn, tarn_err *err)
{
    int mrc = mdb_txn_begin(c->env, NULL, flags, txn);

    if (mrc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size and retry once. */
        MDB_envinfo info;
        mdb_env_set_mapsize(c->env, 0);
        mdb_env_info(c->env, &info);
        c->map_size = info.me_mapsize;
        mrc = mdb_txn_begin(c->env, NULL, flags, txn);
    }
    if (mrc != 0)
        return lmdb_fail(c, mrc, "begin transaction", err);
    return TARN_OK;
}

/*
 * Run @p fn in one write transaction and commit it.  A map-full error at
 * any point (a put or the commit) aborts, grows the map and runs @p fn
 * again; any other error aborts and is returned.
 */
static tarn_rc
run_write(catalog *c, txn_fn fn, void *arg, tarn_err *err)
{
    for (;;) {
        MDB_txn *txn;
        tarn_rc rc;
        int mrc;

        c->map_full = false;
        if ((rc = begin(c, 0, &txn, err)) != TARN_OK)
            return rc;
        rc = fn(c, txn, arg, err);
        if (rc != TARN_OK) {
            mdb_txn_abort(txn);
            c->stats.write_aborts++;
            if (!c->map_full)
                return rc;
        } else {
            mrc = mdb_txn_commit(txn); /* frees txn, even on failure */
            if (mrc == 0) {
                c->stats.write_commits++;
                return TARN_OK;
            }
            c->stats.write_aborts++;
            rc = lmdb_fail(c, mrc, "commit", err);
            if (!c->map_full)
                return rc;
        }
        if ((rc = grow_map(c, err)) != TARN_OK)
            return rc;
    }
}

static tarn_rc
run_read(catalog *c, txn_fn fn, void *arg, tarn_err *err)
{
    MDB_txn *txn;
    tarn_rc rc = begin(c, MDB_RDONLY, &txn, err);

    if (rc != TARN_OK)
        return rc;
    c->stats.read_txns++;
    rc = fn(c, txn, arg, err);
    mdb_txn_abort(txn);
    return rc;
}

/* ---- open ------------------------------------------------------------- */

typedef struct open_args {
    bool created;
} open_args;

static tarn_rc
txn_open(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    open_args *a = arg;
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {
        {"meta", &c->meta},
        {"tenants", &c->tenants},
        {"tenant_names", &c->tenant_names},
        {"timelines", &c->timelines},
        {"timeline_names", &c->timeline_names},
        {"layers", &c->layers},
        {"commit_ts", &c->commit_ts},
    };
    MDB_val v;
    rec_field f[2];
    uint64_t version;
    tarn_rc rc;

    for (size_t i = 0; i < TARN_ARRAY_LEN(dbs); i++) {
        int mrc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
        if (mrc != 0)
            return lmdb_fail(c, mrc, "open database", err);
    }
    rc = db_get(c, txn, c->meta, "schema_version", 14, &v, err);
    if (rc == TARN_ENOTFOUND) {
        rec_buf r;
        rec_begin(&r, REC_META);
        rec_put_u64(&r, F_META_SCHEMA, CATALOG_SCHEMA_VERSION);
        rec_finish(&r);
        a->created = true;
        return db_put(c, txn, c->meta, "schema_version", 14, r.b, r.len, 0,
                      err);
    }
    if (rc != TARN_OK)
        return rc;
    rc = rec_parse(&v, REC_META, f, 2, "the schema version", err);
    if (rc != TARN_OK)
        return rc;
    if (!field_u64(&f[F_META_SCHEMA], &version))
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog schema record has no version");
    if (version != CATALOG_SCHEMA_VERSION)
        return tarn_err_set(err, TARN_EUNSUPPORTED,
                            "catalog schema version %llu is not supported "
                            "by this tarnd (it reads version %d)",
                            (unsigned long long)version,
                            CATALOG_SCHEMA_VERSION);
    return TARN_OK;
}

tarn_rc
catalog_open(const catalog_opts *o, catalog **out, tarn_err *err)
{
    catalog *c = calloc(1, sizeof(*c));
    open_args args = {false};
    MDB_envinfo info;
    tarn_rc rc;
    int mrc;

    if (c == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    c->max_map_size = o->max_map_size ? o->max_map_size : DEFAULT_MAX_MAP;
    if ((mrc = mdb_env_create(&c->env)) != 0
        || (mrc = mdb_env_set_maxdbs(c->env, 16)) != 0
        || (mrc = mdb_env_set_mapsize(c->env, o->map_size)) != 0) {
        rc = lmdb_fail(c, mrc, "create environment", err);
        goto fail;
    }
    /*
     * MDB_NOTLS: read transactions are not tied to a thread.  Durability
     * flags stay at their defaults: every commit is synced.
     */
    mrc = mdb_env_open(c->env, o->path, MDB_NOTLS, 0600);
    if (mrc != 0) {
        rc = tarn_err_set(err, mrc == ENOSPC ? TARN_ENOSPC : TARN_EIO,
                          "catalog: open %s: %s", o->path, mdb_strerror(mrc));
        goto fail;
    }
    /* An existing map may be larger than asked: LMDB keeps the larger. */
    mdb_env_info(c->env, &info);
    c->map_size = info.me_mapsize;
    if ((rc = run_write(c, txn_open, &args, err)) != TARN_OK)
        goto fail;
    *out = c;
    return TARN_OK;
fail:
    catalog_close(c);
    return rc;
}

void
catalog_close(catalog *c)
{
    if (c == NULL)
        return;
    if (c->env != NULL)
        mdb_env_close(c->env);
    free(c);
}

void
catalog_get_stats(catalog *c, catalog_stats *out)
{
    MDB_envinfo info;
    MDB_stat st;

    *out = c->stats;
    mdb_env_info(c->env, &info);
    mdb_env_stat(c->env, &st);
    out->map_size = info.me_mapsize;
    out->used_bytes = (size_t)(info.me_last_pgno + 1) * st.ms_psize;
}

/* ---- names ------------------------------------------------------------ */

tarn_rc
catalog_name_check(const char *name, tarn_err *err)
{
    size_t n = strlen(name);

    if (n == 0 || n > CATALOG_NAME_MAX)
        return tarn_err_set(err, TARN_EINVAL,
                            "name must be 1 to %d characters long",
                            CATALOG_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                     || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '-' && ch != '_' && ch != '.')))
            return tarn_err_set(err, TARN_EINVAL,
                                "invalid name '%.64s': use letters, digits, "
                                "'-', '_' and '.', starting with a letter or "
                                "digit",
                                name);
    }
    if (tarn_looks_like_id(name))
        return tarn_err_set(err, TARN_EINVAL,
                            "invalid name '%s': 32 hex digits would read as "
                            "an id",
                            name);
    return TARN_OK;
}

static size_t
tl_name_key(const tarn_id *tenant, const char *name, uint8_t *key)
{
    size_t n = strlen(name);

    memcpy(key, tenant->b, 16);
    memcpy(key + 16, name, n);
    return 16 + n;
}

static void
tl_key(const tarn_id *tenant, const tarn_id *id, uint8_t *key)
{
    memcpy(key, tenant->b, 16);
    memcpy(key + 16, id->b, 16);
}

/* ---- tenants ---------------------------------------------------------- */

static tarn_rc
txn_tenant_create(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    const catalog_tenant *t = arg;
    char idbuf[TARN_ID_STRLEN];
    rec_buf r;
    tarn_rc rc;

    encode_tenant(t, &r);
    rc = db_put(c, txn, c->tenants, t->id.b, 16, r.b, r.len, MDB_NOOVERWRITE,
                err);
    if (rc == TARN_EEXIST)
        return tarn_err_set(err, TARN_EEXIST, "tenant %s already exists",
                            tarn_id_format(&t->id, idbuf));
    if (rc != TARN_OK || t->name[0] == '\0')
        return rc;
    rc = db_put(c, txn, c->tenant_names, t->name, strlen(t->name), t->id.b, 16,
                MDB_NOOVERWRITE, err);
    if (rc == TARN_EEXIST)
        return tarn_err_set(err, TARN_EEXIST,
                            "a tenant named '%s' already exists", t->name);
    return rc;
}

tarn_rc
catalog_tenant_create(catalog *c, const catalog_tenant *t, tarn_err *err)
{
    if (t->name[0] != '\0') {
        tarn_rc rc = catalog_name_check(t->name, err);
        if (rc != TARN_OK)
            return rc;
    }
    return run_write(c, txn_tenant_create, (void *)t, err);
}

typedef struct tenant_lookup {
    const tarn_id *id;
    const char *name;
    catalog_tenant *out;
} tenant_lookup;

static tarn_rc
get_tenant(catalog *c, MDB_txn *txn, const tarn_id *id, catalog_tenant *out,
           tarn_err *err)
{
    char idbuf[TARN_ID_STRLEN];
    MDB_val v;
    tarn_rc rc = db_get(c, txn, c->tenants, id->b, 16, &v, err);

    if (rc == TARN_ENOTFOUND)
        return tarn_err_set(err, TARN_ENOTFOUND, "tenant %s not found",
                            tarn_id_format(id, idbuf));
    if (rc != TARN_OK)
        return rc;
    return decode_tenant(&v, out, err);
}

static tarn_rc
txn_tenant_lookup(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    tenant_lookup *a = arg;
    tarn_id id;
    MDB_val v;
    tarn_rc rc;

    if (a->id != NULL)
        return get_tenant(c, txn, a->id, a->out, err);
    rc = db_get(c, txn, c->tenant_names, a->name, strlen(a->name), &v, err);
    if (rc == TARN_ENOTFOUND)
        return tarn_err_set(err, TARN_ENOTFOUND, "no tenant named '%.64s'",
                            a->name);
    if (rc != TARN_OK)
        return rc;
    if (v.mv_size != 16)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog name entry of tenant '%.64s' is damaged",
                            a->name);
    memcpy(id.b, v.mv_data, 16);
    return get_tenant(c, txn, &id, a->out, err);
}

tarn_rc
catalog_tenant_get(catalog *c, const tarn_id *id, catalog_tenant *out,
                   tarn_err *err)
{
    tenant_lookup a = {id, NULL, out};
    return run_read(c, txn_tenant_lookup, &a, err);
}

tarn_rc
catalog_tenant_find(catalog *c, const char *name, catalog_tenant *out,
                    tarn_err *err)
{
    tenant_lookup a = {NULL, name, out};

    if (*name == '\0' || strlen(name) > CATALOG_NAME_MAX)
        return tarn_err_set(err, TARN_ENOTFOUND, "no tenant named '%.64s'",
                            name);
    return run_read(c, txn_tenant_lookup, &a, err);
}

/* A growable array of records, filled by a cursor scan. */
typedef struct list_args {
    const tarn_id *tenant; /* timelines: the prefix; NULL for tenants */
    void *items;
    size_t n, cap, size;
} list_args;

static tarn_rc
list_push(list_args *a, const void *item, tarn_err *err)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        void *p = realloc(a->items, cap * a->size);
        if (p == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        a->items = p;
        a->cap = cap;
    }
    memcpy((char *)a->items + a->n * a->size, item, a->size);
    a->n++;
    return TARN_OK;
}

static tarn_rc
txn_tenant_list(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    list_args *a = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    tarn_rc rc = TARN_OK;
    int mrc = mdb_cursor_open(txn, c->tenants, &cur);

    if (mrc != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        catalog_tenant t;
        if ((rc = decode_tenant(&v, &t, err)) != TARN_OK
            || (rc = list_push(a, &t, err)) != TARN_OK)
            break;
    }
    if (rc == TARN_OK && mrc != MDB_NOTFOUND)
        rc = lmdb_fail(c, mrc, "scan tenants", err);
    mdb_cursor_close(cur);
    return rc;
}

tarn_rc
catalog_tenant_list(catalog *c, catalog_tenant **out, size_t *n, tarn_err *err)
{
    list_args a = {.size = sizeof(catalog_tenant)};
    tarn_rc rc = run_read(c, txn_tenant_list, &a, err);

    if (rc != TARN_OK) {
        free(a.items);
        return rc;
    }
    *out = a.items;
    *n = a.n;
    return TARN_OK;
}

/*
 * Visit the timelines of one tenant with a cursor positioned on the tenant
 * prefix.  @p fn returns TARN_OK to go on, TARN_AGAIN to stop early, or an
 * error.
 */
/* Delete every entry of @p dbi whose key starts with @p prefix. */
static tarn_rc
del_prefix(catalog *c, MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix,
           size_t plen, tarn_err *err)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)prefix}, v;
    int mrc = mdb_cursor_open(txn, dbi, &cur);

    if (mrc != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    /* After mdb_cursor_del() the next MDB_NEXT returns the entry that
     * followed the deleted one. */
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if ((mrc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return lmdb_fail(c, mrc, "delete range", err);
    return TARN_OK;
}

/* Remove a timeline's layer map and commit timestamps. */
static tarn_rc
del_timeline_data(catalog *c, MDB_txn *txn, const tarn_id *tenant,
                  const tarn_id *id, tarn_err *err)
{
    uint8_t key[32];
    tarn_rc rc;

    tl_key(tenant, id, key);
    if ((rc = del_prefix(c, txn, c->layers, key, 32, err)) != TARN_OK)
        return rc;
    return del_prefix(c, txn, c->commit_ts, key, 32, err);
}

typedef tarn_rc (*tl_visit_fn)(catalog *c, MDB_txn *txn, MDB_cursor *cur,
                               const catalog_timeline *tl, void *arg,
                               tarn_err *err);

static tarn_rc
scan_timelines(catalog *c, MDB_txn *txn, const tarn_id *tenant, tl_visit_fn fn,
               void *arg, tarn_err *err)
{
    MDB_cursor *cur;
    MDB_val k = {16, (void *)tenant->b}, v;
    tarn_rc rc = TARN_OK;
    int mrc = mdb_cursor_open(txn, c->timelines, &cur);

    if (mrc != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        catalog_timeline tl;
        if (k.mv_size != 32 || memcmp(k.mv_data, tenant->b, 16) != 0)
            break;
        if ((rc = decode_timeline(&v, &tl, err)) != TARN_OK)
            break;
        rc = fn(c, txn, cur, &tl, arg, err);
        if (rc != TARN_OK)
            break;
    }
    if (rc == TARN_AGAIN)
        rc = TARN_OK;
    else if (rc == TARN_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = lmdb_fail(c, mrc, "scan timelines", err);
    mdb_cursor_close(cur);
    return rc;
}

static tarn_rc
visit_delete(catalog *c, MDB_txn *txn, MDB_cursor *cur,
             const catalog_timeline *tl, void *arg, tarn_err *err)
{
    int mrc;

    (void)arg;
    if (tl->name[0] != '\0') {
        uint8_t key[16 + CATALOG_NAME_MAX];
        size_t klen = tl_name_key(&tl->tenant_id, tl->name, key);
        tarn_rc rc = db_del(c, txn, c->timeline_names, key, klen, err);
        if (rc != TARN_OK && rc != TARN_ENOTFOUND)
            return rc;
    }
    {
        tarn_rc rc =
            del_timeline_data(c, txn, &tl->tenant_id, &tl->timeline_id, err);
        if (rc != TARN_OK)
            return rc;
    }
    mrc = mdb_cursor_del(cur, 0);
    if (mrc != 0)
        return lmdb_fail(c, mrc, "delete timeline", err);
    return TARN_OK;
}

static tarn_rc
txn_tenant_delete(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    const tarn_id *id = arg;
    catalog_tenant t;
    tarn_rc rc = get_tenant(c, txn, id, &t, err);

    if (rc != TARN_OK)
        return rc;
    /*
     * mdb_cursor_del() leaves the cursor on the following entry and marks
     * it so that the next MDB_NEXT returns that entry, so one pass of the
     * scan deletes every timeline of the tenant.
     */
    rc = scan_timelines(c, txn, id, visit_delete, NULL, err);
    if (rc != TARN_OK)
        return rc;
    if (t.name[0] != '\0') {
        rc = db_del(c, txn, c->tenant_names, t.name, strlen(t.name), err);
        if (rc != TARN_OK && rc != TARN_ENOTFOUND)
            return rc;
    }
    return db_del(c, txn, c->tenants, id->b, 16, err);
}

tarn_rc
catalog_tenant_delete(catalog *c, const tarn_id *id, tarn_err *err)
{
    return run_write(c, txn_tenant_delete, (void *)id, err);
}

/* ---- timelines -------------------------------------------------------- */

static tarn_rc
get_timeline(catalog *c, MDB_txn *txn, const tarn_id *tenant, const tarn_id *id,
             catalog_timeline *out, tarn_err *err)
{
    char idbuf[TARN_ID_STRLEN];
    uint8_t key[32];
    MDB_val v;
    tarn_rc rc;

    tl_key(tenant, id, key);
    rc = db_get(c, txn, c->timelines, key, 32, &v, err);
    if (rc == TARN_ENOTFOUND)
        return tarn_err_set(err, TARN_ENOTFOUND, "timeline %s not found",
                            tarn_id_format(id, idbuf));
    if (rc != TARN_OK)
        return rc;
    return decode_timeline(&v, out, err);
}

static tarn_rc
put_timeline(catalog *c, MDB_txn *txn, const catalog_timeline *tl,
             unsigned flags, tarn_err *err)
{
    uint8_t key[32];
    rec_buf r;

    tl_key(&tl->tenant_id, &tl->timeline_id, key);
    encode_timeline(tl, &r);
    return db_put(c, txn, c->timelines, key, 32, r.b, r.len, flags, err);
}

typedef struct create_args {
    const catalog_timeline_new *n;
    catalog_timeline tl;
} create_args;

static tarn_rc
txn_timeline_create(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    create_args *a = arg;
    const catalog_timeline_new *n = a->n;
    catalog_timeline *tl = &a->tl;
    char idbuf[TARN_ID_STRLEN], l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];
    catalog_tenant t;
    tarn_rc rc;

    if ((rc = get_tenant(c, txn, &n->tenant_id, &t, err)) != TARN_OK)
        return rc;
    memset(tl, 0, sizeof(*tl));
    tl->tenant_id = n->tenant_id;
    tl->timeline_id = n->timeline_id;
    if (n->name != NULL)
        snprintf(tl->name, sizeof(tl->name), "%s", n->name);
    tl->created_at = n->created_at;
    tl->state = n->creating ? CATALOG_TL_CREATING : CATALOG_TL_EMPTY;
    tl->trust_consistency_images = n->trust_consistency_images;
    if (n->has_ancestor) {
        catalog_timeline anc;
        rc = get_timeline(c, txn, &n->tenant_id, &n->ancestor_id, &anc, err);
        if (rc == TARN_ENOTFOUND)
            return tarn_err_set(err, TARN_ENOTFOUND,
                                "ancestor timeline %s not found",
                                tarn_id_format(&n->ancestor_id, idbuf));
        if (rc != TARN_OK)
            return rc;
        if (anc.state == CATALOG_TL_CREATING)
            return tarn_err_set(err, TARN_EPRECOND,
                                "ancestor timeline %s is still being "
                                "created",
                                tarn_id_format(&n->ancestor_id, idbuf));
        tl->has_ancestor = true;
        tl->ancestor_id = n->ancestor_id;
        if (n->ancestor_last_lsn > anc.last_record_lsn)
            anc.last_record_lsn = n->ancestor_last_lsn;
        tl->ancestor_lsn =
            n->has_ancestor_lsn ? n->ancestor_lsn : anc.last_record_lsn;
        if (tl->ancestor_lsn > anc.last_record_lsn)
            return tarn_err_set(err, TARN_EINVAL,
                                "ancestor_start_lsn %s is beyond the "
                                "ancestor's last_record_lsn %s",
                                tarn_lsn_format(tl->ancestor_lsn, l1),
                                tarn_lsn_format(anc.last_record_lsn, l2));
        if (tl->ancestor_lsn < anc.start_lsn)
            return tarn_err_set(err, TARN_EINVAL,
                                "ancestor_start_lsn %s is before the start of "
                                "the ancestor's history at %s",
                                tarn_lsn_format(tl->ancestor_lsn, l1),
                                tarn_lsn_format(anc.start_lsn, l2));
        tl->state = anc.state == CATALOG_TL_ACTIVE ? CATALOG_TL_ACTIVE
                                                   : CATALOG_TL_EMPTY;
        tl->start_lsn = tl->ancestor_lsn;
        tl->last_record_lsn = tl->ancestor_lsn;
        tl->wal_flush_lsn = tl->ancestor_lsn;
        tl->disk_consistent_lsn = tl->ancestor_lsn;
        tl->remote_consistent_lsn = tl->ancestor_lsn;
    }
    rc = put_timeline(c, txn, tl, MDB_NOOVERWRITE, err);
    if (rc == TARN_EEXIST)
        return tarn_err_set(err, TARN_EEXIST,
                            "timeline %s already exists in this tenant",
                            tarn_id_format(&tl->timeline_id, idbuf));
    if (rc != TARN_OK || tl->name[0] == '\0')
        return rc;
    {
        uint8_t key[16 + CATALOG_NAME_MAX];
        size_t klen = tl_name_key(&tl->tenant_id, tl->name, key);
        rc = db_put(c, txn, c->timeline_names, key, klen, tl->timeline_id.b, 16,
                    MDB_NOOVERWRITE, err);
    }
    if (rc == TARN_EEXIST)
        return tarn_err_set(err, TARN_EEXIST,
                            "a branch named '%s' already exists in this "
                            "tenant",
                            tl->name);
    return rc;
}

tarn_rc
catalog_timeline_create(catalog *c, const catalog_timeline_new *n,
                        catalog_timeline *out, tarn_err *err)
{
    create_args a = {.n = n};
    tarn_rc rc;

    if (n->name != NULL && n->name[0] != '\0'
        && (rc = catalog_name_check(n->name, err)) != TARN_OK)
        return rc;
    if (n->has_ancestor && tarn_id_equal(&n->ancestor_id, &n->timeline_id))
        return tarn_err_set(err, TARN_EINVAL,
                            "a timeline cannot be its own ancestor");
    if (n->has_ancestor && n->creating)
        return tarn_err_set(err, TARN_EINVAL,
                            "only a root timeline is bootstrapped or "
                            "imported");
    rc = run_write(c, txn_timeline_create, &a, err);
    if (rc == TARN_OK && out != NULL)
        *out = a.tl;
    return rc;
}

typedef struct tl_lookup {
    const tarn_id *tenant;
    const tarn_id *id;
    const char *name;
    catalog_timeline *out;
} tl_lookup;

static tarn_rc
txn_timeline_lookup(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    tl_lookup *a = arg;
    uint8_t key[16 + CATALOG_NAME_MAX];
    catalog_tenant t;
    tarn_id id;
    MDB_val v;
    tarn_rc rc;

    if ((rc = get_tenant(c, txn, a->tenant, &t, err)) != TARN_OK)
        return rc;
    if (a->id != NULL)
        return get_timeline(c, txn, a->tenant, a->id, a->out, err);
    rc = db_get(c, txn, c->timeline_names, key,
                tl_name_key(a->tenant, a->name, key), &v, err);
    if (rc == TARN_ENOTFOUND)
        return tarn_err_set(err, TARN_ENOTFOUND, "no branch named '%.64s'",
                            a->name);
    if (rc != TARN_OK)
        return rc;
    if (v.mv_size != 16)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "catalog name entry of branch '%.64s' is damaged",
                            a->name);
    memcpy(id.b, v.mv_data, 16);
    return get_timeline(c, txn, a->tenant, &id, a->out, err);
}

tarn_rc
catalog_timeline_get(catalog *c, const tarn_id *tenant, const tarn_id *id,
                     catalog_timeline *out, tarn_err *err)
{
    tl_lookup a = {tenant, id, NULL, out};
    return run_read(c, txn_timeline_lookup, &a, err);
}

tarn_rc
catalog_timeline_find(catalog *c, const tarn_id *tenant, const char *name,
                      catalog_timeline *out, tarn_err *err)
{
    tl_lookup a = {tenant, NULL, name, out};

    if (*name == '\0' || strlen(name) > CATALOG_NAME_MAX)
        return tarn_err_set(err, TARN_ENOTFOUND, "no branch named '%.64s'",
                            name);
    return run_read(c, txn_timeline_lookup, &a, err);
}

static tarn_rc
visit_collect(catalog *c, MDB_txn *txn, MDB_cursor *cur,
              const catalog_timeline *tl, void *arg, tarn_err *err)
{
    (void)c;
    (void)txn;
    (void)cur;
    return list_push(arg, tl, err);
}

static tarn_rc
txn_timeline_list(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    list_args *a = arg;
    catalog_tenant t;
    tarn_rc rc = get_tenant(c, txn, a->tenant, &t, err);

    if (rc != TARN_OK)
        return rc;
    return scan_timelines(c, txn, a->tenant, visit_collect, a, err);
}

tarn_rc
catalog_timeline_list(catalog *c, const tarn_id *tenant, catalog_timeline **out,
                      size_t *n, tarn_err *err)
{
    list_args a = {.tenant = tenant, .size = sizeof(catalog_timeline)};
    tarn_rc rc = run_read(c, txn_timeline_list, &a, err);

    if (rc != TARN_OK) {
        free(a.items);
        return rc;
    }
    *out = a.items;
    *n = a.n;
    return TARN_OK;
}

/* Children of one timeline, for the refusal message. */
typedef struct children_args {
    const tarn_id *parent;
    size_t count;
    char list[TARN_ERR_MSG - 128];
} children_args;

static tarn_rc
visit_children(catalog *c, MDB_txn *txn, MDB_cursor *cur,
               const catalog_timeline *tl, void *arg, tarn_err *err)
{
    children_args *a = arg;
    char idbuf[TARN_ID_STRLEN], item[128];
    size_t used = strlen(a->list);

    (void)c;
    (void)txn;
    (void)cur;
    (void)err;
    if (!tl->has_ancestor || !tarn_id_equal(&tl->ancestor_id, a->parent))
        return TARN_OK;
    a->count++;
    tarn_id_format(&tl->timeline_id, idbuf);
    if (tl->name[0] != '\0')
        snprintf(item, sizeof(item), "%s%s (%s)", used ? ", " : "", tl->name,
                 idbuf);
    else
        snprintf(item, sizeof(item), "%s%s", used ? ", " : "", idbuf);
    if (used + strlen(item) + 1 < sizeof(a->list) - 16)
        memcpy(a->list + used, item, strlen(item) + 1);
    else if (a->list[used - 1] != '.')
        snprintf(a->list + used, sizeof(a->list) - used, ", ...");
    return TARN_OK;
}

typedef struct delete_args {
    const tarn_id *tenant;
    const tarn_id *id;
} delete_args;

static tarn_rc
txn_timeline_delete(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    delete_args *a = arg;
    children_args ch = {.parent = a->id};
    char idbuf[TARN_ID_STRLEN];
    catalog_timeline tl;
    catalog_tenant t;
    uint8_t key[32];
    tarn_rc rc;

    if ((rc = get_tenant(c, txn, a->tenant, &t, err)) != TARN_OK
        || (rc = get_timeline(c, txn, a->tenant, a->id, &tl, err)) != TARN_OK)
        return rc;
    rc = scan_timelines(c, txn, a->tenant, visit_children, &ch, err);
    if (rc != TARN_OK)
        return rc;
    if (ch.count > 0)
        return tarn_err_set(err, TARN_ECONFLICT,
                            "timeline %s has %zu child branch%s: %s; delete "
                            "%s first",
                            tarn_id_format(a->id, idbuf), ch.count,
                            ch.count == 1 ? "" : "es", ch.list,
                            ch.count == 1 ? "it" : "them");
    if (tl.name[0] != '\0') {
        uint8_t nkey[16 + CATALOG_NAME_MAX];
        size_t klen = tl_name_key(a->tenant, tl.name, nkey);
        rc = db_del(c, txn, c->timeline_names, nkey, klen, err);
        if (rc != TARN_OK && rc != TARN_ENOTFOUND)
            return rc;
    }
    if ((rc = del_timeline_data(c, txn, a->tenant, a->id, err)) != TARN_OK)
        return rc;
    tl_key(a->tenant, a->id, key);
    return db_del(c, txn, c->timelines, key, 32, err);
}

tarn_rc
catalog_timeline_delete(catalog *c, const tarn_id *tenant, const tarn_id *id,
                        tarn_err *err)
{
    delete_args a = {tenant, id};
    return run_write(c, txn_timeline_delete, &a, err);
}

static tarn_rc
txn_timeline_update(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    const catalog_timeline *in = arg;
    catalog_timeline tl;
    tarn_rc rc =
        get_timeline(c, txn, &in->tenant_id, &in->timeline_id, &tl, err);

    if (rc != TARN_OK)
        return rc;
    tl.state = in->state;
    tl.start_lsn = in->start_lsn;
    tl.last_record_lsn = in->last_record_lsn;
    tl.wal_flush_lsn = in->wal_flush_lsn;
    tl.disk_consistent_lsn = in->disk_consistent_lsn;
    tl.remote_consistent_lsn = in->remote_consistent_lsn;
    tl.system_id = in->system_id;
    tl.wal_seg_size = in->wal_seg_size;
    tl.wal_start_lsn = in->wal_start_lsn;
    tl.prev_record_lsn = in->prev_record_lsn;
    memcpy(tl.compute_conninfo, in->compute_conninfo,
           sizeof(tl.compute_conninfo));
    tl.trust_consistency_images = in->trust_consistency_images;
    return put_timeline(c, txn, &tl, 0, err);
}

tarn_rc
catalog_timeline_update(catalog *c, const catalog_timeline *tl, tarn_err *err)
{
    return run_write(c, txn_timeline_update, (void *)tl, err);
}

/* ---- layer map and commit timestamps ---------------------------------- */

typedef struct commit_args {
    const catalog_timeline *tl;
    const catalog_layer *add;
    size_t nadd;
    const char *const *remove;
    size_t nremove;
    const catalog_commit_ts *cts;
    size_t ncts;
} commit_args;

static void
ts_key(const tarn_id *tenant, const tarn_id *id, int64_t ts, tarn_lsn lsn,
       uint8_t *key)
{
    uint64_t u = (uint64_t)ts ^ ((uint64_t)1 << 63);

    tl_key(tenant, id, key);
    for (int i = 0; i < 8; i++) {
        key[32 + i] = (uint8_t)(u >> (56 - 8 * i));
        key[40 + i] = (uint8_t)(lsn >> (56 - 8 * i));
    }
}

static void
ts_parse(const uint8_t *key, int64_t *ts, tarn_lsn *lsn)
{
    uint64_t u = 0, l = 0;

    for (int i = 0; i < 8; i++) {
        u = u << 8 | key[32 + i];
        l = l << 8 | key[40 + i];
    }
    *ts = (int64_t)(u ^ ((uint64_t)1 << 63));
    *lsn = l;
}

static tarn_rc
txn_timeline_commit(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    commit_args *a = arg;
    const tarn_id *tenant = &a->tl->tenant_id, *id = &a->tl->timeline_id;
    uint8_t key[32 + CATALOG_LAYER_NAME_MAX + 1];
    tarn_rc rc;

    if ((rc = txn_timeline_update(c, txn, (void *)a->tl, err)) != TARN_OK)
        return rc;
    tl_key(tenant, id, key);
    for (size_t i = 0; i < a->nremove; i++) {
        size_t n = strlen(a->remove[i]);
        if (n > CATALOG_LAYER_NAME_MAX)
            return tarn_err_set(err, TARN_EINVAL, "layer name too long");
        memcpy(key + 32, a->remove[i], n);
        rc = db_del(c, txn, c->layers, key, 32 + n, err);
        if (rc != TARN_OK && rc != TARN_ENOTFOUND)
            return rc;
    }
    for (size_t i = 0; i < a->nadd; i++) {
        size_t n = strlen(a->add[i].name);
        rec_buf r;
        if (n == 0 || n > CATALOG_LAYER_NAME_MAX)
            return tarn_err_set(err, TARN_EINVAL, "bad layer name");
        memcpy(key + 32, a->add[i].name, n);
        encode_layer(&a->add[i], &r);
        rc = db_put(c, txn, c->layers, key, 32 + n, r.b, r.len, MDB_NOOVERWRITE,
                    err);
        if (rc == TARN_EEXIST)
            return tarn_err_set(err, TARN_EEXIST,
                                "layer %s is already in the layer map",
                                a->add[i].name);
        if (rc != TARN_OK)
            return rc;
    }
    for (size_t i = 0; i < a->ncts; i++) {
        uint8_t tk[48];
        ts_key(tenant, id, a->cts[i].ts, a->cts[i].lsn, tk);
        if ((rc = db_put(c, txn, c->commit_ts, tk, 48, "", 0, 0, err))
            != TARN_OK)
            return rc;
    }
    return TARN_OK;
}

tarn_rc
catalog_timeline_commit(catalog *c, const catalog_timeline *tl,
                        const catalog_layer *add, size_t nadd,
                        const char *const *remove, size_t nremove,
                        const catalog_commit_ts *cts, size_t ncts,
                        tarn_err *err)
{
    commit_args a = {tl, add, nadd, remove, nremove, cts, ncts};

    return run_write(c, txn_timeline_commit, &a, err);
}

typedef struct layer_list_args {
    const tarn_id *tenant, *tl;
    catalog_layer *items;
    size_t n, cap;
} layer_list_args;

static tarn_rc
txn_layer_list(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    layer_list_args *a = arg;
    uint8_t prefix[32];
    MDB_cursor *cur;
    MDB_val k = {32, prefix}, v;
    tarn_rc rc = TARN_OK;
    int mrc;

    tl_key(a->tenant, a->tl, prefix);
    if ((mrc = mdb_cursor_open(txn, c->layers, &cur)) != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= 32 || memcmp(k.mv_data, prefix, 32) != 0)
            break;
        if (a->n == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 16;
            catalog_layer *p = realloc(a->items, cap * sizeof(*p));
            if (p == NULL) {
                rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
                break;
            }
            a->items = p;
            a->cap = cap;
        }
        if ((rc = decode_layer(&k, &v, &a->items[a->n], err)) != TARN_OK)
            break;
        a->n++;
    }
    mdb_cursor_close(cur);
    if (rc == TARN_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = lmdb_fail(c, mrc, "scan layers", err);
    return rc;
}

tarn_rc
catalog_layer_list(catalog *c, const tarn_id *tenant, const tarn_id *tl,
                   catalog_layer **out, size_t *n, tarn_err *err)
{
    layer_list_args a = {.tenant = tenant, .tl = tl};
    tarn_rc rc = run_read(c, txn_layer_list, &a, err);

    if (rc != TARN_OK) {
        free(a.items);
        return rc;
    }
    *out = a.items;
    *n = a.n;
    return TARN_OK;
}

typedef struct ts_args {
    const tarn_id *tenant, *tl;
    int64_t ts;
    catalog_ts_hit *out;
} ts_args;

static tarn_rc
txn_ts_find(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    ts_args *a = arg;
    uint8_t key[48], prefix[32];
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc;

    memset(a->out, 0, sizeof(*a->out));
    tl_key(a->tenant, a->tl, prefix);
    if ((mrc = mdb_cursor_open(txn, c->commit_ts, &cur)) != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    /* The first commit of the timeline. */
    k.mv_size = 32;
    k.mv_data = prefix;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == 0 && k.mv_size == 48 && memcmp(k.mv_data, prefix, 32) == 0) {
        a->out->any = true;
        ts_parse(k.mv_data, &a->out->first_ts, &a->out->first_lsn);
    }
    if (a->out->any) {
        /* The first entry after ts: then step back to the last <= ts. */
        ts_key(a->tenant, a->tl, a->ts, UINT64_MAX, key);
        k.mv_size = 48;
        k.mv_data = key;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrc == 0 && k.mv_size == 48 && memcmp(k.mv_data, prefix, 32) == 0)
            a->out->later = true;
        mrc = mrc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                       : mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (mrc == 0 && k.mv_size == 48 && memcmp(k.mv_data, prefix, 32) == 0) {
            a->out->found = true;
            ts_parse(k.mv_data, &a->out->ts, &a->out->lsn);
        }
    }
    mdb_cursor_close(cur);
    return TARN_OK;
}

tarn_rc
catalog_commit_ts_find(catalog *c, const tarn_id *tenant, const tarn_id *tl,
                       int64_t ts, catalog_ts_hit *out, tarn_err *err)
{
    ts_args a = {tenant, tl, ts, out};

    return run_read(c, txn_ts_find, &a, err);
}

/* ---- verification ----------------------------------------------------- */

static tarn_rc
verify_names(catalog *c, MDB_txn *txn, MDB_dbi dbi, bool timelines,
             tarn_err *err)
{
    MDB_cursor *cur;
    MDB_val k, v;
    tarn_rc rc = TARN_OK;
    int mrc = mdb_cursor_open(txn, dbi, &cur);

    if (mrc != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t off = timelines ? 16 : 0;
        char name[CATALOG_NAME_MAX + 1];
        size_t nlen = k.mv_size - off;

        if (k.mv_size <= off || nlen > CATALOG_NAME_MAX || v.mv_size != 16) {
            rc = tarn_err_set(err, TARN_ECORRUPT,
                              "catalog has a malformed name entry");
            break;
        }
        memcpy(name, (char *)k.mv_data + off, nlen);
        name[nlen] = '\0';
        if (timelines) {
            catalog_timeline tl;
            tarn_id tenant, id;
            memcpy(tenant.b, k.mv_data, 16);
            memcpy(id.b, v.mv_data, 16);
            rc = get_timeline(c, txn, &tenant, &id, &tl, err);
            if (rc == TARN_OK && strcmp(tl.name, name) != 0)
                rc = tarn_err_set(err, TARN_ECORRUPT,
                                  "branch name '%s' points at a timeline "
                                  "named '%s'",
                                  name, tl.name);
        } else {
            catalog_tenant t;
            tarn_id id;
            memcpy(id.b, v.mv_data, 16);
            rc = get_tenant(c, txn, &id, &t, err);
            if (rc == TARN_OK && strcmp(t.name, name) != 0)
                rc = tarn_err_set(err, TARN_ECORRUPT,
                                  "tenant name '%s' points at a tenant "
                                  "named '%s'",
                                  name, t.name);
        }
        if (rc == TARN_ENOTFOUND)
            rc = tarn_err_set(err, TARN_ECORRUPT,
                              "name '%s' points at a missing record", name);
        if (rc != TARN_OK)
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

static tarn_rc
verify_timeline(catalog *c, MDB_txn *txn, const catalog_timeline *tl,
                tarn_err *err)
{
    char idbuf[TARN_ID_STRLEN];
    catalog_timeline anc;
    catalog_tenant t;
    tarn_rc rc;

    tarn_id_format(&tl->timeline_id, idbuf);
    rc = get_tenant(c, txn, &tl->tenant_id, &t, err);
    if (rc == TARN_ENOTFOUND)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "timeline %s belongs to a missing tenant", idbuf);
    if (rc != TARN_OK)
        return rc;
    if (tl->has_ancestor) {
        rc = get_timeline(c, txn, &tl->tenant_id, &tl->ancestor_id, &anc, err);
        if (rc == TARN_ENOTFOUND)
            return tarn_err_set(err, TARN_ECORRUPT,
                                "timeline %s has a missing ancestor", idbuf);
        if (rc != TARN_OK)
            return rc;
        if (tl->ancestor_lsn < anc.start_lsn)
            return tarn_err_set(err, TARN_ECORRUPT,
                                "timeline %s branches before its ancestor's "
                                "history",
                                idbuf);
    }
    if (tl->name[0] != '\0') {
        uint8_t key[16 + CATALOG_NAME_MAX];
        MDB_val v;
        rc = db_get(c, txn, c->timeline_names, key,
                    tl_name_key(&tl->tenant_id, tl->name, key), &v, err);
        if (rc == TARN_ENOTFOUND
            || (rc == TARN_OK
                && (v.mv_size != 16
                    || memcmp(v.mv_data, tl->timeline_id.b, 16) != 0)))
            return tarn_err_set(err, TARN_ECORRUPT,
                                "timeline %s is named '%s' but the name "
                                "index disagrees",
                                idbuf, tl->name);
    }
    return rc;
}

static tarn_rc
txn_verify(catalog *c, MDB_txn *txn, void *arg, tarn_err *err)
{
    catalog_summary *s = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    tarn_rc rc = TARN_OK;
    int mrc;

    memset(s, 0, sizeof(*s));
    if ((mrc = mdb_cursor_open(txn, c->tenants, &cur)) != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        catalog_tenant t;
        if ((rc = decode_tenant(&v, &t, err)) != TARN_OK)
            break;
        if (k.mv_size != 16 || memcmp(k.mv_data, t.id.b, 16) != 0) {
            rc = tarn_err_set(err, TARN_ECORRUPT,
                              "a tenant record is filed under another key");
            break;
        }
        if (t.name[0] != '\0') {
            MDB_val nv;
            rc = db_get(c, txn, c->tenant_names, t.name, strlen(t.name), &nv,
                        err);
            if (rc == TARN_ENOTFOUND
                || (rc == TARN_OK
                    && (nv.mv_size != 16
                        || memcmp(nv.mv_data, t.id.b, 16) != 0))) {
                rc = tarn_err_set(err, TARN_ECORRUPT,
                                  "tenant '%s' is missing from the name "
                                  "index",
                                  t.name);
                break;
            }
            if (rc != TARN_OK)
                break;
        }
        s->tenants++;
    }
    mdb_cursor_close(cur);
    if (rc != TARN_OK)
        return rc;
    if ((mrc = mdb_cursor_open(txn, c->timelines, &cur)) != 0)
        return lmdb_fail(c, mrc, "open cursor", err);
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        catalog_timeline tl;
        uint8_t key[32];
        if ((rc = decode_timeline(&v, &tl, err)) != TARN_OK)
            break;
        tl_key(&tl.tenant_id, &tl.timeline_id, key);
        if (k.mv_size != 32 || memcmp(k.mv_data, key, 32) != 0) {
            rc = tarn_err_set(err, TARN_ECORRUPT,
                              "a timeline record is filed under another key");
            break;
        }
        if ((rc = verify_timeline(c, txn, &tl, err)) != TARN_OK)
            break;
        s->timelines++;
    }
    mdb_cursor_close(cur);
    if (rc != TARN_OK)
        return rc;
    if ((rc = verify_names(c, txn, c->tenant_names, false, err)) != TARN_OK)
        return rc;
    return verify_names(c, txn, c->timeline_names, true, err);
}

tarn_rc
catalog_verify(catalog *c, catalog_summary *out, tarn_err *err)
{
    return run_read(c, txn_verify, out, err);
}

const char *
catalog_tl_state_name(catalog_tl_state s)
{
    switch (s) {
    case CATALOG_TL_EMPTY:
        return "empty";
    case CATALOG_TL_ACTIVE:
        return "active";
    case CATALOG_TL_BROKEN:
        return "broken";
    case CATALOG_TL_CREATING:
        return "creating";
    }
    return "unknown";
}
