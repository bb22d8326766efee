/*
 * repo.c - the page server on the reactor.
 *
 * One rtl per timeline ties its storage (the timeline's layer map), its
 * ingest (decoder state and position in the WAL) and its background jobs
 * together.  The rules that keep it crash-safe:
 *
 *   - The WAL is the durability of everything in memory.  A layer file is
 *     written, fsynced and renamed, its directory fsynced, and only then
 *     is it added to the catalog, together with the new
 *     disk_consistent_lsn, in one LMDB transaction.  A restart opens the
 *     layers the catalog lists, deletes any other file in the layer
 *     directory (a write that never committed), and ingests the WAL again
 *     from disk_consistent_lsn.
 *   - WAL is removed only below the segment holding disk_consistent_lsn
 *     and every branch point that needs it.
 *   - Flushes of one timeline run one at a time and in LSN order, so
 *     disk_consistent_lsn only moves forward.
 *
 * Ingest runs on the reactor in slices of at most SLICE_BYTES and
 * SLICE_US, and the reactor polls for I/O between them (see
 * schedule_ingest()), so that a backlog of WAL never holds up the WAL
 * service, the page service or the admin API; while two
 * frozen layers wait to be written, ingest pauses (memory stays bounded;
 * the WAL keeps flowing to disk meanwhile).
 *
 * Image layers are built on a worker from a snapshot of the immutable
 * layers, at disk_consistent_lsn, one partition of the key space at a
 * time: a partition gets a new image when image_creation_threshold delta
 * layers lie above its newest image, or on a checkpoint request.
 */
#include "storage/repo.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/core/fsutil.h"
#include "server/core/hist.h"
#include "storage/import.h"
#include "storage/ingest.h"
#include "storage/key.h"
#include "storage/layerfile.h"
#include "storage/pagecache.h"
#include "storage/pg/pgdefs.h"
#include "storage/pg/walscan.h"
#include "storage/redo/redo.h"
#include "storage/timeline.h"

#define SLICE_BYTES        (4u << 20) /* WAL ingested per reactor turn */
#define SLICE_US           400        /* and the time it may take */
#define READ_CHUNK         (128u << 10)
#define MAX_FROZEN         2
#define IMAGE_PART_KEYS    16384 /* 128 MiB of pages per image layer */
#define IMAGE_RING_BLOCKS  64    /* 512 KiB of the page cache per image job */
#define FLUSH_RETRY_US     (2 * 1000 * 1000)
#define IMAGE_RETRY_MIN_US (1000 * 1000)
#define IMAGE_RETRY_MAX_US (3600LL * 1000 * 1000)
#define PG_EPOCH_OFFSET_US 946684800000000LL /* 2000-01-01 in Unix us */
#define GETPAGE_BUCKETS    12

static const double getpage_bounds[GETPAGE_BUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001,   0.0025,   0.005,   0.01,   0.1,     1.0};

typedef struct rtl rtl;

/* A checkpoint request waiting for its flush and images. */
typedef struct ckpt_wait {
    struct ckpt_wait *next;
    tarn_lsn target; /* last_record_lsn when asked */
    bool imaged;     /* the forced image job for it has run */
    bool images;     /* it wants one (else the flush answers it) */
    repo_ckpt_fn done;
    void *arg;
    repo_ckpt_result res;
} ckpt_wait;

struct rtl {
    TAILQ_ENTRY(rtl) link;
    repo *r;
    tarn_id tenant, id;
    char logctx[96];
    char dir[PATH_MAX], layer_dir[PATH_MAX + 16];
    timeline *tl;
    rtl *ancestor;
    bool has_ancestor;
    tarn_lsn ancestor_lsn, start_lsn;
    catalog_tristate trust_override;
    bool has_data; /* base data exists: imported, or a branch */

    /* ingest */
    bool has_wal;
    uint64_t sysid;
    uint32_t seg_size;
    tarn_lsn wal_start, wal_upto;
    tarn_lsn ingest_pos; /* next WAL byte to read */
    bool ingest_mid;     /* the first read starts inside a record */
    ingest *ing;
    walscan *scan;
    struct event *ingest_ev;
    bool ingest_scheduled, ingest_failed;
    bool mem_wait; /* ingest paused at layer_memory_limit */
    char error[TARN_ERR_MSG];
    int64_t open_since_us; /* when the open layer got its first value */

    /* background work */
    int jobs;
    bool flushing, imaging, image_wanted;
    bool image_due;           /* a pass waits for image_creation_interval */
    int64_t image_at;         /* when the last pass started (mono us), or 0 */
    unsigned image_fruitless; /* automatic passes in a row that wrote
                                 nothing: they failed or skipped */
    int64_t flush_retry_at;
    tarn_lsn disk_consistent;
    bool deleted;
    ckpt_wait *waiters;
    bool broken;
};

struct repo {
    repo_opts o;
    char data_dir[PATH_MAX];
    TAILQ_HEAD(rtl_head_, rtl) tls;
    pagecache *pc;
    memlayer_pool *pool;
    redo_stats rs;
    struct event *tick;
    bool stopping;
    uint8_t *readbuf;
    /* metrics */
    uint64_t ingest_records, ingest_bytes, ingest_mem_waits;
    uint64_t flushes, flush_bytes, flush_failures;
    double flush_secs;
    uint64_t image_layers, image_bytes, image_jobs, image_jobs_failed;
    uint64_t image_parts_skipped;
    double image_secs;
    tarn_hist getpage;
    uint64_t getpage_errors, getpage_offloaded;
    uint64_t imports, import_bytes;
};

static void schedule_ingest(rtl *t);
static void maybe_flush(rtl *t);
static void freeze(rtl *t);
static void start_flush(rtl *t);
static void maybe_image(rtl *t, bool force);
static void answer_waiters(rtl *t);

/* ---- helpers ------------------------------------------------------------ */

static rtl *
find(repo *r, const tarn_id *tenant, const tarn_id *tl)
{
    rtl *t;

    TAILQ_FOREACH (t, &r->tls, link)
        if (tarn_id_equal(&t->id, tl) && tarn_id_equal(&t->tenant, tenant))
            return t;
    return NULL;
}

static void
tl_paths(repo *r, const tarn_id *tenant, const tarn_id *tl, char *dir,
         size_t dlen, char *layers, size_t llen)
{
    char a[TARN_ID_STRLEN], b[TARN_ID_STRLEN];

    snprintf(dir, dlen, "%s/tenants/%s/timelines/%s", r->data_dir,
             tarn_id_format(tenant, a), tarn_id_format(tl, b));
    if (layers != NULL)
        snprintf(layers, llen, "%s/layers", dir);
}

static bool
trust_images(const rtl *t)
{
    if (t->trust_override != CATALOG_DEFAULT)
        return t->trust_override == CATALOG_ON;
    return t->r->o.cfg->trust_consistency_images != 0;
}

static void
rtl_free(rtl *t)
{
    ckpt_wait *w;

    while ((w = t->waiters) != NULL) {
        t->waiters = w->next;
        w->done(w->arg, TARN_EUNAVAIL, "the timeline was deleted", NULL);
        free(w);
    }
    if (t->ingest_ev != NULL)
        event_free(t->ingest_ev);
    ingest_destroy(t->ing);
    walscan_destroy(t->scan);
    timeline_destroy(t->tl);
    free(t);
}

/* A job finished: free a deleted timeline once nothing points at it. */
static bool
job_done(rtl *t)
{
    t->jobs--;
    if (t->deleted && t->jobs == 0) {
        rtl_free(t);
        return true;
    }
    return t->deleted;
}

static void
catalog_layer_from(catalog_layer *c, const layer_desc *d, const char *name)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->kind = (uint8_t)d->kind;
    memcpy(c->key_start, d->key_start.b, TKEY_LEN);
    memcpy(c->key_end, d->key_end.b, TKEY_LEN);
    c->lsn_start = d->lsn_start;
    c->lsn_end = d->lsn_end;
    c->file_size = d->file_size;
    c->nvalues = d->nvalues;
}

static void
desc_from_catalog(layer_desc *d, const catalog_layer *c)
{
    memset(d, 0, sizeof(*d));
    d->kind = (layer_kind)c->kind;
    memcpy(d->key_start.b, c->key_start, TKEY_LEN);
    memcpy(d->key_end.b, c->key_end, TKEY_LEN);
    d->lsn_start = c->lsn_start;
    d->lsn_end = c->lsn_end;
    d->file_size = c->file_size;
    d->nvalues = c->nvalues;
}

/* ---- loading ------------------------------------------------------------ */

/* Delete files in the layer directory that the layer map does not list. */
static void
remove_orphans(rtl *t, const catalog_layer *ls, size_t n)
{
    DIR *d = opendir(t->layer_dir);
    struct dirent *e;
    int removed = 0;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        bool known = false;
        char path[PATH_MAX + 300];
        if (e->d_name[0] == '.')
            continue;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(ls[i].name, e->d_name) == 0;
        if (known)
            continue;
        snprintf(path, sizeof(path), "%s/%s", t->layer_dir, e->d_name);
        if (unlink(path) == 0) {
            removed++;
            tlog_info(t->r->o.log, t->logctx,
                      "removed %s: not in the layer map (a write that did "
                      "not commit)",
                      e->d_name);
        }
    }
    closedir(d);
    if (removed > 0) {
        tarn_err err;
        if (tarn_fsync_dir(t->layer_dir, &err) != TARN_OK)
            tlog_warn(t->r->o.log, t->logctx, "%s", err.msg);
    }
}

static void on_ingest(evutil_socket_t fd, short what, void *arg);

static tarn_rc
rtl_new(repo *r, const catalog_timeline *ct, rtl **out, tarn_err *err)
{
    rtl *t = calloc(1, sizeof(*t));
    char idbuf[TARN_ID_STRLEN];

    if (t == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    t->r = r;
    t->tenant = ct->tenant_id;
    t->id = ct->timeline_id;
    snprintf(t->logctx, sizeof(t->logctx), "timeline %s",
             tarn_id_format(&t->id, idbuf));
    tl_paths(r, &t->tenant, &t->id, t->dir, sizeof(t->dir), t->layer_dir,
             sizeof(t->layer_dir));
    t->has_ancestor = ct->has_ancestor;
    t->ancestor_lsn = ct->ancestor_lsn;
    t->start_lsn = ct->start_lsn;
    t->trust_override = ct->trust_consistency_images;
    t->ingest_ev = event_new(r->o.base, -1, 0, on_ingest, t);
    if (t->ingest_ev == NULL) {
        free(t);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    *out = t;
    return TARN_OK;
}

/*
 * Open a timeline's storage from its catalog record: layer files (each
 * checked against the layer map), the timeline at disk_consistent_lsn.
 */
static tarn_rc
rtl_load(repo *r, const catalog_timeline *ct, rtl **out, tarn_err *err)
{
    catalog_layer *ls = NULL;
    size_t n = 0;
    timeline_opts to = {0};
    rtl *t = NULL;
    tarn_rc rc;

    if ((rc = rtl_new(r, ct, &t, err)) != TARN_OK)
        return rc;
    if (ct->has_ancestor) {
        t->ancestor = find(r, &ct->tenant_id, &ct->ancestor_id);
        if (t->ancestor == NULL) {
            rtl_free(t);
            return tarn_err_set(err, TARN_ENOTFOUND,
                                "the ancestor of a timeline is not loaded");
        }
    }
    if ((rc = tarn_mkdir_p(t->layer_dir, 0700, err)) != TARN_OK
        || (rc = catalog_layer_list(r->o.cat, &ct->tenant_id, &ct->timeline_id,
                                    &ls, &n, err))
               != TARN_OK) {
        rtl_free(t);
        return rc;
    }
    remove_orphans(t, ls, n);
    t->disk_consistent = ct->disk_consistent_lsn;
    t->has_data = n > 0 || (t->ancestor != NULL && t->ancestor->has_data);
    to.tenant = ct->tenant_id;
    to.id = ct->timeline_id;
    to.ancestor = t->ancestor ? t->ancestor->tl : NULL;
    to.ancestor_lsn = ct->ancestor_lsn;
    to.pc = r->pc;
    to.pool = r->pool;
    to.rs = &r->rs;
    if (t->has_data) {
        to.last_record_lsn = ct->disk_consistent_lsn;
        t->ingest_pos = ct->disk_consistent_lsn;
    } else {
        /* WAL only (no base data): ingest from the start of the WAL. */
        to.last_record_lsn = ct->wal_start_lsn;
        t->ingest_pos = ct->wal_start_lsn;
        t->ingest_mid = true;
        if (t->start_lsn == 0)
            t->start_lsn = ct->wal_start_lsn;
    }
    if ((rc = timeline_create(&to, &t->tl, err)) != TARN_OK) {
        free(ls);
        rtl_free(t);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        layer_desc d;
        layer *l;
        desc_from_catalog(&d, &ls[i]);
        rc = layer_open(t->layer_dir, ls[i].name, &d, r->pc, &l, err);
        if (rc == TARN_OK) {
            rc = timeline_add_layer(t->tl, l, err);
            layer_unref(l);
        }
        if (rc != TARN_OK) {
            /* Serve nothing wrong: the timeline stops with the reason. */
            t->broken = true;
            snprintf(t->error, sizeof(t->error), "%s", err->msg);
            tlog_error(r->o.log, t->logctx,
                       "cannot open its layers, the timeline is stopped: %s",
                       err->msg);
            break;
        }
    }
    free(ls);
    if (ct->system_id != 0) {
        t->has_wal = true;
        t->sysid = ct->system_id;
        t->seg_size = ct->wal_seg_size;
        t->wal_start = ct->wal_start_lsn;
    }
    TAILQ_INSERT_TAIL(&r->tls, t, link);
    *out = t;
    return TARN_OK;
}

static tarn_rc check_stopped(const rtl *t, tarn_err *err);

/* ---- ingest ------------------------------------------------------------- */

static void
ingest_fail(rtl *t, const char *msg)
{
    t->ingest_failed = true;
    snprintf(t->error, sizeof(t->error), "%s", msg);
    char l[TARN_LSN_STRLEN];

    tlog_error(t->r->o.log, t->logctx,
               "ingest stopped at %s: %s (pages stay readable up to there; "
               "restart tarnd to retry)",
               tarn_lsn_format(timeline_last_record_lsn(t->tl), l), msg);
}

static tarn_rc
on_record(void *arg, const walscan_rec *rec, tarn_err *err)
{
    rtl *t = arg;
    tarn_rc rc = ingest_record(t->ing, rec, err);

    if (rc == TARN_OK) {
        t->r->ingest_records++;
        t->r->ingest_bytes += rec->tot_len;
        if (t->open_since_us == 0)
            t->open_since_us = tarn_mono_us();
    }
    return rc;
}

static tarn_rc
ingest_start(rtl *t, tarn_err *err)
{
    ingest_opts io = {.tl = t->tl,
                      .trust_consistency_images = trust_images(t),
                      .log = t->r->o.log,
                      .logctx = t->logctx};
    walscan_opts so = {.seg_size = t->seg_size,
                       .sysid = t->sysid,
                       .tli = 1,
                       .start = t->ingest_pos,
                       .mid_record = t->ingest_mid,
                       .assemble = true};
    tarn_rc rc;

    if ((rc = ingest_create(&io, &t->ing, err)) != TARN_OK)
        return rc;
    return walscan_create(&so, &t->scan, err);
}

/*
 * Memory of in-memory layers.  Each timeline's open and frozen layers
 * stay in memory until written, so with checkpoint_distance alone tarnd's
 * memory would grow with the number of timelines and with three times the
 * distance for each.  layer_memory_limit bounds them all together.
 * Failed timelines are left out of the sum: their open layer never
 * freezes (it may hold a half-applied record), so counting it could stall
 * every other timeline for good.
 */
static bool
counts_memory(const rtl *t)
{
    return !t->ingest_failed && !t->broken;
}

static size_t
layer_memory(const repo *r)
{
    size_t n = 0;
    const rtl *t;

    TAILQ_FOREACH (t, &r->tls, link)
        if (counts_memory(t))
            n += timeline_open_bytes(t->tl) + timeline_frozen_bytes(t->tl);
    return n;
}

/*
 * Called when the in-memory layers are at the limit: start writing one
 * so that memory comes back, and pause this timeline's ingest until a
 * flush completes (flush_done wakes every waiter).  This timeline's own
 * open layer goes first; if it holds nothing and has nothing frozen, the
 * memory is elsewhere and the largest other open layer is frozen.  WAL
 * still arrives and is made durable meanwhile; only ingest lags.
 */
static void
wait_for_memory(rtl *t)
{
    rtl *o, *big = NULL;
    size_t most = 0;

    if (timeline_open_bytes(t->tl) > 0)
        freeze(t);
    if (timeline_nfrozen(t->tl) == 0) {
        TAILQ_FOREACH (o, &t->r->tls, link) {
            size_t n = timeline_open_bytes(o->tl);
            if (counts_memory(o) && n > most) {
                most = n;
                big = o;
            }
        }
        if (big != NULL)
            freeze(big);
    }
    TAILQ_FOREACH (o, &t->r->tls, link)
        start_flush(o);
    if (!t->mem_wait)
        t->r->ingest_mem_waits++;
    t->mem_wait = true;
}

static void
ingest_slice(rtl *t)
{
    repo *r = t->r;
    size_t budget = SLICE_BYTES;
    int64_t until = tarn_mono_us() + SLICE_US;
    tarn_err err;
    tarn_rc rc;

    t->mem_wait = false;
    if (r->stopping || t->deleted || t->ingest_failed || t->broken)
        return;
    if (t->ing == NULL && (rc = ingest_start(t, &err)) != TARN_OK) {
        ingest_fail(t, err.msg);
        return;
    }
    while (t->ingest_pos < t->wal_upto && budget > 0) {
        size_t n = t->wal_upto - t->ingest_pos;
        if (timeline_nfrozen(t->tl) >= MAX_FROZEN)
            return; /* resumed when a flush completes */
        if (layer_memory(r) >= (size_t)r->o.cfg->layer_memory_limit) {
            wait_for_memory(t);
            return; /* resumed when a flush completes */
        }
        if (n > READ_CHUNK)
            n = READ_CHUNK;
        if (n > budget)
            n = budget;
        rc = r->o.hooks.wal_read(r->o.hooks.arg, &t->tenant, &t->id,
                                 t->ingest_pos, r->readbuf, n, &err);
        if (rc == TARN_OK)
            rc = walscan_feed(t->scan, r->readbuf, n, on_record, t, &err);
        if (rc != TARN_OK) {
            ingest_fail(t, err.msg);
            return;
        }
        t->ingest_pos += n;
        budget -= n;
        maybe_flush(t);
        if (tarn_mono_us() >= until)
            break;
    }
    if (t->ingest_pos < t->wal_upto)
        schedule_ingest(t);
}

/*
 * One slice of ingest; then, if last_record_lsn moved, tell the page
 * service, whose requests may be waiting for it.
 */
static void
on_ingest(evutil_socket_t fd, short what, void *arg)
{
    rtl *t = arg;
    tarn_lsn before = timeline_last_record_lsn(t->tl), after;

    (void)fd;
    (void)what;
    t->ingest_scheduled = false;
    ingest_slice(t);
    after = timeline_last_record_lsn(t->tl);
    if (after != before && t->r->o.hooks.lsn_advanced != NULL)
        t->r->o.hooks.lsn_advanced(t->r->o.hooks.arg, &t->tenant, &t->id,
                                   after);
}

/*
 * Run a slice of ingest once the reactor has polled for I/O.  A timer
 * that is already due, not event_active(): libevent runs an event made
 * active from a callback in the same pass, before it polls again, so a
 * backlog would have been ingested whole (seconds of it after a restart)
 * while replication input, page requests and the admin API waited.  A due
 * timer is taken up after the poll, behind the I/O that the poll found.
 */
static void
schedule_ingest(rtl *t)
{
    static const struct timeval now = {0, 0};

    if (t->ingest_scheduled || t->ingest_failed || t->deleted)
        return;
    t->ingest_scheduled = true;
    event_add(t->ingest_ev, &now);
}

void
repo_wal_flushed(repo *r, const tarn_id *tenant, const tarn_id *tl,
                 const repo_wal_info *wi)
{
    rtl *t = find(r, tenant, tl);

    if (t == NULL || r->stopping)
        return;
    if (!t->has_wal) {
        t->has_wal = true;
        t->sysid = wi->sysid;
        t->seg_size = wi->seg_size;
        t->wal_start = wi->wal_start;
        if (!t->has_data && t->ing == NULL) {
            t->ingest_pos = wi->wal_start;
            t->ingest_mid = true;
            if (t->start_lsn == 0)
                t->start_lsn = wi->wal_start;
        }
    }
    if (wi->flush > t->wal_upto) {
        t->wal_upto = wi->flush;
        schedule_ingest(t);
    }
}

/* ---- freezing and flushing ---------------------------------------------- */

typedef struct flush_job {
    rtl *t;
    memlayer *m;
    char dir[PATH_MAX + 16];
    tarn_id tenant, id;
    pagecache *pc;
    tarn_codec codec; /* layer_compression when the job was made */
    /* result */
    layer *l;
    layer_desc d;
    char name[LAYER_NAME_MAX];
    tarn_rc rc;
    tarn_err err;
    int64_t us;
} flush_job;

static void
flush_work(void *arg)
{
    flush_job *j = arg;
    layerw_opts o = {.dir = j->dir,
                     .kind = LAYER_DELTA,
                     .tenant = j->tenant,
                     .timeline = j->id,
                     .lsn_start = memlayer_start(j->m),
                     .lsn_end = memlayer_end(j->m),
                     .codec = j->codec};
    memlayer_iter it;
    layerw *w = NULL;
    int64_t t0 = tarn_mono_us();
    tkey k;
    tarn_lsn lsn;
    const uint8_t *v;
    uint32_t len;
    bool wi;

    if ((j->rc = memlayer_iter_begin(j->m, &it, &j->err)) != TARN_OK)
        return;
    if ((j->rc = layerw_create(&o, &w, &j->err)) != TARN_OK)
        goto done;
    while (memlayer_iter_next(&it, &k, &lsn, &v, &len, &wi))
        if ((j->rc = layerw_add(w, &k, lsn, v, len, wi, &j->err)) != TARN_OK) {
            layerw_abort(w);
            goto done;
        }
    if ((j->rc = layerw_finish(w, NULL, NULL, &j->d, j->name, &j->err))
        != TARN_OK)
        goto done;
    /* Read the new file back through its checks before the catalog
     * points at it; a file that fails them goes (the retry rewrites it). */
    j->rc = layer_open(j->dir, j->name, &j->d, j->pc, &j->l, &j->err);
    if (j->rc != TARN_OK) {
        char path[PATH_MAX + LAYER_NAME_MAX + 20];
        snprintf(path, sizeof(path), "%s/%s", j->dir, j->name);
        unlink(path);
    }
done:
    memlayer_iter_end(&it);
    j->us = tarn_mono_us() - t0;
}

/* The WAL that the layers cover (and no branch needs) may go. */
static void
trim_wal(rtl *t)
{
    repo *r = t->r;
    tarn_lsn keep = t->disk_consistent;
    rtl *c;

    if (!t->has_wal || r->o.hooks.wal_trim == NULL)
        return;
    TAILQ_FOREACH (c, &r->tls, link)
        if (c->ancestor == t && c->ancestor_lsn < keep)
            keep = c->ancestor_lsn;
    r->o.hooks.wal_trim(r->o.hooks.arg, &t->tenant, &t->id, keep);
}

/* Commit a new disk_consistent_lsn (and layers) to the catalog. */
static tarn_rc
commit_state(rtl *t, const catalog_layer *add, size_t nadd,
             const commit_ts *cts, size_t ncts, tarn_lsn dcl, tarn_err *err)
{
    catalog_timeline ct;
    catalog_commit_ts *c = NULL;
    tarn_rc rc;

    if ((rc = catalog_timeline_get(t->r->o.cat, &t->tenant, &t->id, &ct, err))
        != TARN_OK)
        return rc;
    if (dcl > ct.disk_consistent_lsn)
        ct.disk_consistent_lsn = dcl;
    if (timeline_last_record_lsn(t->tl) > ct.last_record_lsn)
        ct.last_record_lsn = timeline_last_record_lsn(t->tl);
    if (ncts > 0) {
        c = malloc(ncts * sizeof(*c));
        if (c == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        for (size_t i = 0; i < ncts; i++) {
            c[i].ts = cts[i].ts;
            c[i].lsn = cts[i].lsn;
        }
    }
    rc = catalog_timeline_commit(t->r->o.cat, &ct, add, nadd, NULL, 0, c, ncts,
                                 err);
    free(c);
    return rc;
}

static void
flush_done(void *arg)
{
    flush_job *j = arg;
    rtl *t = j->t, *o;
    repo *r = t->r;
    tarn_lsn dcl = memlayer_end(j->m) - 1;
    char l[TARN_LSN_STRLEN];
    tarn_err err;

    t->flushing = false;
    if (job_done(t)) {
        layer_unref(j->l);
        memlayer_unref(j->m);
        free(j);
        return;
    }
    if (j->rc == TARN_OK) {
        catalog_layer cl;
        size_t ncts;
        const commit_ts *cts = memlayer_commit_ts(j->m, &ncts);
        catalog_layer_from(&cl, &j->d, j->name);
        j->rc = commit_state(t, &cl, 1, cts, ncts, dcl, &j->err);
        if (j->rc != TARN_OK) {
            char path[PATH_MAX + LAYER_NAME_MAX + 20];
            snprintf(path, sizeof(path), "%s/%s", j->dir, j->name);
            unlink(path);
        }
    }
    if (j->rc != TARN_OK) {
        r->flush_failures++;
        t->flush_retry_at = tarn_mono_us() + FLUSH_RETRY_US;
        tlog_error(r->o.log, t->logctx,
                   "writing the layer up to %s failed, retrying: %s",
                   tarn_lsn_format(dcl, l), j->err.msg);
        layer_unref(j->l);
        memlayer_unref(j->m);
        free(j);
        return;
    }
    if (timeline_frozen_done(t->tl, j->m, j->l, &err) != TARN_OK)
        tlog_error(r->o.log, t->logctx, "%s", err.msg);
    t->disk_consistent = dcl;
    r->flushes++;
    r->flush_bytes += j->d.file_size;
    r->flush_secs += (double)j->us / 1e6;
    tlog_debug(r->o.log, t->logctx,
               "layer %s written: %llu values, %llu bytes, %.1f ms", j->name,
               (unsigned long long)j->d.nvalues,
               (unsigned long long)j->d.file_size, (double)j->us / 1000);
    layer_unref(j->l);
    memlayer_unref(j->m);
    free(j);
    trim_wal(t);
    maybe_flush(t);
    schedule_ingest(t); /* it may have paused for this */
    TAILQ_FOREACH (o, &r->tls, link)
        if (o->mem_wait)
            schedule_ingest(o);
    if (!t->flushing)
        maybe_image(t, false);
    answer_waiters(t);
}

static void
start_flush(rtl *t)
{
    repo *r = t->r;
    memlayer *m = timeline_oldest_frozen(t->tl);
    flush_job *j;

    if (m == NULL || t->flushing || r->stopping
        || tarn_mono_us() < t->flush_retry_at)
        return;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return;
    j->t = t;
    j->m = m;
    memlayer_ref(m);
    snprintf(j->dir, sizeof(j->dir), "%s", t->layer_dir);
    j->tenant = t->tenant;
    j->id = t->id;
    j->pc = r->pc;
    j->codec = (tarn_codec)r->o.cfg->layer_compression;
    if (wpool_submit(r->o.pool, flush_work, flush_done, j) != TARN_OK) {
        memlayer_unref(m);
        free(j);
        return;
    }
    t->flushing = true;
    t->jobs++;
}

/* Freeze the open layer; an empty one just moves disk_consistent_lsn. */
static void
freeze(rtl *t)
{
    memlayer *m;

    /* After an ingest failure the open layer may hold values of the
     * failed record: it must never reach a layer file (ingest.h). */
    if (t->ingest_failed)
        return;
    m = timeline_freeze(t->tl);
    t->open_since_us = 0;
    if (m != NULL) {
        memlayer_unref(m); /* the timeline keeps its own reference */
        return;
    }
    if (timeline_nfrozen(t->tl) == 0 && !t->flushing
        && timeline_last_record_lsn(t->tl) > t->disk_consistent) {
        tarn_err err;
        tarn_lsn dcl = timeline_last_record_lsn(t->tl);
        if (commit_state(t, NULL, 0, NULL, 0, dcl, &err) == TARN_OK) {
            t->disk_consistent = dcl;
            trim_wal(t);
        } else {
            tlog_error(t->r->o.log, t->logctx, "%s", err.msg);
        }
    }
}

static void
maybe_flush(rtl *t)
{
    const tarn_config *cfg = t->r->o.cfg;
    uint64_t dist = (uint64_t)cfg->checkpoint_distance;
    uint64_t bytes = dist;

    /* Half the memory limit at most, so that one layer can fill while the
     * one before it is written. */
    if (bytes > (uint64_t)cfg->layer_memory_limit / 2)
        bytes = (uint64_t)cfg->layer_memory_limit / 2;
    if (timeline_open_span(t->tl) >= dist
        || timeline_open_bytes(t->tl) >= bytes)
        freeze(t);
    start_flush(t);
}

/* ---- image layers ------------------------------------------------------- */

typedef struct keylist {
    tkey *k;
    size_t n, cap;
} keylist;

static tarn_rc
keylist_add(keylist *l, const tkey *k, tarn_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        tkey *p = realloc(l->k, cap * sizeof(*p));
        if (p == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        l->k = p;
        l->cap = cap;
    }
    l->k[l->n++] = *k;
    return TARN_OK;
}

typedef struct image_job {
    rtl *t;
    tl_view *v;
    tarn_lsn lsn;
    bool force;
    int threshold;
    tarn_codec codec; /* layer_compression when the job was made */
    char dir[PATH_MAX + 16];
    tarn_id tenant, id;
    tlog *log;
    char logctx[96];
    /* result */
    layer **layers;
    char (*names)[LAYER_NAME_MAX];
    layer_desc *descs;
    size_t n;
    size_t skipped;
    char skip_reason[256];
    uint64_t keys, bytes;
    tarn_rc rc;
    tarn_err err;
    int64_t us;
} image_job;

typedef struct ks_ctx {
    image_job *j;
    keylist *keys;
    tbuf tmp;
} ks_ctx;

static tarn_rc
ks_reldir(void *arg, const tkey *k, const uint8_t *val, size_t len,
          tarn_err *err)
{
    ks_ctx *c = arg;
    tkey sk = tkey_rel_size(tkey_f2(k), tkey_f3(k), tkey_f4(k), tkey_f5(k));
    bool found;
    tarn_rc rc;

    (void)val;
    (void)len;
    if ((rc = keylist_add(c->keys, k, err)) != TARN_OK)
        return rc;
    if ((rc = tl_get_value(c->j->v, &sk, c->j->lsn, &c->tmp, &found, err))
        != TARN_OK)
        return rc;
    if (!found || c->tmp.len != 4)
        return TARN_OK;
    if ((rc = keylist_add(c->keys, &sk, err)) != TARN_OK)
        return rc;
    for (uint32_t b = 0, n = tarn_get_u32(c->tmp.p); b < n; b++) {
        tkey bk =
            tkey_rel_block(tkey_f2(k), tkey_f3(k), tkey_f4(k), tkey_f5(k), b);
        if ((rc = keylist_add(c->keys, &bk, err)) != TARN_OK)
            return rc;
    }
    return TARN_OK;
}

/* A u32 list value (count, members) already read into @p b. */
static bool
u32_list(const tbuf *b, uint32_t *n)
{
    if (b->len < 4)
        return false;
    *n = tarn_get_u32(b->p);
    return b->len == 4 + (size_t)*n * 4;
}

/* Every live key of the dense key space at the job's LSN, sorted. */
static tarn_rc
collect_keyspace(image_job *j, keylist *out, tarn_err *err)
{
    ks_ctx c = {.j = j, .keys = out};
    tbuf dbs = {0};
    bool found;
    tkey k;
    uint32_t n;
    tarn_rc rc;

    k = tkey_dbdir();
    if ((rc = tl_get_value(j->v, &k, j->lsn, &dbs, &found, err)) != TARN_OK)
        goto done;
    if (found) {
        if ((rc = keylist_add(out, &k, err)) != TARN_OK)
            goto done;
        n = dbs.len >= 4 ? tarn_get_u32(dbs.p) : 0;
        for (uint32_t i = 0; i < n && 8 + 8 * (size_t)i <= dbs.len - 4; i++) {
            uint32_t spc = tarn_get_u32(dbs.p + 4 + 8 * i),
                     db = tarn_get_u32(dbs.p + 8 + 8 * i);
            tkey lo = tkey_make(TKEY_RELDIR, spc, db, 0, 0, 0),
                 hi = tkey_make(TKEY_RELDIR, spc, db, UINT32_MAX, 0xff,
                                UINT32_MAX);
            k = tkey_relmap(spc, db);
            if ((rc = tl_get_value(j->v, &k, j->lsn, &c.tmp, &found, err))
                != TARN_OK)
                goto done;
            if (found && (rc = keylist_add(out, &k, err)) != TARN_OK)
                goto done;
            if ((rc = tl_scan(j->v, &lo, &hi, j->lsn, ks_reldir, &c, err))
                != TARN_OK)
                goto done;
        }
    }
    for (int kind = 0; kind < SLRU_NKINDS; kind++) {
        tbuf segs = {0};
        k = tkey_slru_dir((slru_kind)kind);
        rc = tl_get_value(j->v, &k, j->lsn, &segs, &found, err);
        if (rc == TARN_OK && found && u32_list(&segs, &n)) {
            rc = keylist_add(out, &k, err);
            for (uint32_t i = 0; i < n && rc == TARN_OK; i++) {
                uint32_t seg = tarn_get_u32(segs.p + 4 + 4 * i);
                tkey sk = tkey_slru_size((slru_kind)kind, seg);
                rc = tl_get_value(j->v, &sk, j->lsn, &c.tmp, &found, err);
                if (rc != TARN_OK || !found || c.tmp.len != 4)
                    continue;
                rc = keylist_add(out, &sk, err);
                for (uint32_t b = 0, nb = tarn_get_u32(c.tmp.p);
                     b < nb && rc == TARN_OK; b++) {
                    tkey bk = tkey_slru_block((slru_kind)kind, seg, b);
                    rc = keylist_add(out, &bk, err);
                }
            }
        }
        tbuf_free(&segs);
        if (rc != TARN_OK)
            goto done;
    }
    k = tkey_twophase_dir();
    if ((rc = tl_get_value(j->v, &k, j->lsn, &c.tmp, &found, err)) != TARN_OK)
        goto done;
    if (found && u32_list(&c.tmp, &n)) {
        uint32_t *xids = malloc((n + 1) * sizeof(uint32_t));
        if (xids == NULL) {
            rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
            goto done;
        }
        for (uint32_t i = 0; i < n; i++)
            xids[i] = tarn_get_u32(c.tmp.p + 4 + 4 * i);
        rc = keylist_add(out, &k, err);
        for (uint32_t i = 0; i < n && rc == TARN_OK; i++) {
            tkey xk = tkey_twophase(xids[i]);
            rc = keylist_add(out, &xk, err);
        }
        free(xids);
        if (rc != TARN_OK)
            goto done;
    }
    k = tkey_control();
    if ((rc = keylist_add(out, &k, err)) != TARN_OK)
        goto done;
    k = tkey_checkpoint();
    if ((rc = keylist_add(out, &k, err)) != TARN_OK)
        goto done;
    qsort(out->k, out->n, sizeof(tkey),
          (int (*)(const void *, const void *))tkey_cmp);
done:
    tbuf_free(&dbs);
    tbuf_free(&c.tmp);
    return rc;
}

/* The newest image layer covering all of [lo, hi) at or below @p lsn. */
static tarn_lsn
newest_image(const tl_view *v, const tkey *lo, const tkey *hi, tarn_lsn lsn,
             bool *any)
{
    *any = false;
    for (size_t i = 0; i < v->nimages; i++) {
        const layer_desc *d = layer_get_desc(v->images[i]);
        if (d->lsn_start <= lsn && tkey_cmp(&d->key_start, lo) <= 0
            && tkey_cmp(&d->key_end, hi) >= 0) {
            *any = true;
            return d->lsn_start;
        }
    }
    return 0;
}

/* Delta layers above @p since that hold keys of [lo, hi). */
static int
delta_depth(const tl_view *v, const tkey *lo, const tkey *hi, tarn_lsn since)
{
    int n = 0;

    for (size_t i = 0; i < v->ndeltas; i++) {
        const layer_desc *d = layer_get_desc(v->deltas[i]);
        if (d->lsn_end - 1 > since && tkey_cmp(&d->key_start, hi) < 0
            && tkey_cmp(&d->key_end, lo) > 0)
            n++;
    }
    return n;
}

static tarn_rc
image_value(image_job *j, const tkey *k, uint8_t *page, tbuf *val, bool *skip,
            tarn_err *err)
{
    tarn_rc rc;
    bool found;

    *skip = false;
    if (tkey_is_page(k)) {
        rc = tl_get_page(j->v, k, j->lsn, page, err);
        if (rc == TARN_ENOTFOUND)
            return tval_zero(val, err);
        if (rc != TARN_OK)
            return rc;
        return tval_image(val, page, PG_BLCKSZ, err);
    }
    if ((rc = tl_get_value(j->v, k, j->lsn, val, &found, err)) != TARN_OK)
        return rc;
    if (!found) {
        *skip = true;
        return TARN_OK;
    }
    /* tl_get_value strips the kind byte: put it back. */
    if (tbuf_reserve(val, 1, err) != TARN_OK)
        return TARN_ENOMEM;
    memmove(val->p + 1, val->p, val->len);
    val->p[0] = TVAL_IMAGE;
    val->len++;
    return TARN_OK;
}

static tarn_rc
write_partition(image_job *j, const keylist *keys, size_t from, size_t to,
                const tkey *lo, const tkey *hi, tarn_err *err)
{
    layerw_opts o = {.dir = j->dir,
                     .kind = LAYER_IMAGE,
                     .tenant = j->tenant,
                     .timeline = j->id,
                     .lsn_start = j->lsn,
                     .lsn_end = j->lsn + 1,
                     .codec = j->codec};
    uint8_t page[PG_BLCKSZ];
    tbuf val = {0};
    layerw *w;
    layer_desc d;
    char name[LAYER_NAME_MAX];
    layer *l;
    tarn_rc rc;

    if ((rc = layerw_create(&o, &w, err)) != TARN_OK)
        return rc;
    for (size_t i = from; i < to; i++) {
        bool skip;
        if ((rc = image_value(j, &keys->k[i], page, &val, &skip, err))
            != TARN_OK) {
            layerw_abort(w);
            tbuf_free(&val);
            return rc;
        }
        if (!skip
            && (rc = layerw_add(w, &keys->k[i], j->lsn, val.p, val.len, true,
                                err))
                   != TARN_OK) {
            layerw_abort(w);
            tbuf_free(&val);
            return rc;
        }
    }
    tbuf_free(&val);
    if ((rc = layerw_finish(w, lo, hi, &d, name, err)) != TARN_OK)
        return rc;
    if ((rc = layer_open(j->dir, name, &d, j->v->pc, &l, err)) != TARN_OK)
        return rc;
    {
        layer **ls = realloc(j->layers, (j->n + 1) * sizeof(*ls));
        char(*ns)[LAYER_NAME_MAX] =
            ls ? realloc(j->names, (j->n + 1) * sizeof(*ns)) : NULL;
        layer_desc *ds =
            ns ? realloc(j->descs, (j->n + 1) * sizeof(*ds)) : NULL;
        if (ls)
            j->layers = ls;
        if (ns)
            j->names = ns;
        if (ds == NULL) {
            layer_unref(l);
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        }
        j->descs = ds;
    }
    j->layers[j->n] = l;
    memcpy(j->names[j->n], name, LAYER_NAME_MAX);
    j->descs[j->n] = d;
    j->n++;
    j->keys += to - from;
    j->bytes += d.file_size;
    return TARN_OK;
}

static void
image_work(void *arg)
{
    image_job *j = arg;
    keylist keys = {0};
    int64_t t0 = tarn_mono_us();
    size_t nparts;

    if ((j->rc = collect_keyspace(j, &keys, &j->err)) != TARN_OK)
        goto done;
    nparts = (keys.n + IMAGE_PART_KEYS - 1) / IMAGE_PART_KEYS;
    if (nparts == 0)
        nparts = 1;
    for (size_t p = 0; p < nparts; p++) {
        size_t from = p * IMAGE_PART_KEYS, to = from + IMAGE_PART_KEYS;
        tkey lo = p == 0 ? tkey_min() : keys.k[from];
        tkey hi = p + 1 == nparts ? tkey_max() : keys.k[to];
        bool any;
        tarn_lsn img;
        tarn_err err;
        tarn_rc rc;
        if (to > keys.n)
            to = keys.n;
        img = newest_image(j->v, &lo, &hi, j->lsn, &any);
        if (any && img == j->lsn)
            continue; /* already imaged at this LSN */
        if (!j->force
            && delta_depth(j->v, &lo, &hi, any ? img : 0) < j->threshold)
            continue;
        rc = write_partition(j, &keys, from, to, &lo, &hi, &err);
        if (rc == TARN_EUNSUPPORTED || rc == TARN_EPRECOND) {
            /* Pages that need redo tarn lacks: keep the deltas. */
            j->skipped++;
            if (j->skip_reason[0] == '\0')
                snprintf(j->skip_reason, sizeof(j->skip_reason), "%s", err.msg);
            continue;
        }
        if (rc != TARN_OK) {
            j->rc = rc;
            j->err = err;
            break;
        }
    }
done:
    free(keys.k);
    j->us = tarn_mono_us() - t0;
}

static void
image_job_free(image_job *j)
{
    for (size_t i = 0; i < j->n; i++)
        layer_unref(j->layers[i]);
    free(j->layers);
    free(j->names);
    free(j->descs);
    pagecache_ring_destroy(j->v->ring);
    tl_view_release(j->v);
    free(j);
}

/*
 * The wait between two automatic passes: image_creation_interval, doubled
 * for every pass in a row that wrote nothing (from at least a second, up
 * to an hour).  Such a pass found pages it cannot rebuild: it skipped
 * their partitions (a history that starts with a change to a page the
 * timeline lacks), or it failed (redo of such a page onto the zero page
 * that Postgres's own redo extends a relation with).  The next pass finds
 * the same pages, so on a timeline made with bootstrap "none", where that
 * is every page older than its WAL, tarnd redid the same useless work at
 * every interval while the compute ran, logging an ERROR each time when
 * it failed.  Forced passes (a checkpoint through the API) do not wait.
 */
static int64_t
image_wait_us(const rtl *t)
{
    int64_t us = t->r->o.cfg->image_creation_interval_ms * 1000;

    if (t->image_fruitless == 0)
        return us;
    if (us < IMAGE_RETRY_MIN_US)
        us = IMAGE_RETRY_MIN_US;
    for (unsigned i = 0; i < t->image_fruitless && us < IMAGE_RETRY_MAX_US; i++)
        us *= 2;
    return us < IMAGE_RETRY_MAX_US ? us : IMAGE_RETRY_MAX_US;
}

/* "; the next automatic pass waits N s (K in a row wrote nothing)", or "". */
static const char *
fruitless_note(const rtl *t, char *buf, size_t len)
{
    if (t->image_fruitless == 0)
        return "";
    snprintf(buf, len,
             "; the next automatic pass waits %.0f s (%u in a row wrote "
             "nothing)",
             (double)image_wait_us(t) / 1e6, t->image_fruitless);
    return buf;
}

static void
image_done(void *arg)
{
    image_job *j = arg;
    rtl *t = j->t;
    repo *r = t->r;
    catalog_layer *cls = NULL;
    tarn_err err;
    char l[TARN_LSN_STRLEN], note[96];
    tarn_rc rc = j->rc;

    t->imaging = false;
    if (job_done(t)) {
        image_job_free(j);
        return;
    }
    if (rc == TARN_OK && j->n > 0) {
        cls = calloc(j->n, sizeof(*cls));
        if (cls == NULL) {
            rc = tarn_err_set(&j->err, TARN_ENOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < j->n; i++)
                catalog_layer_from(&cls[i], &j->descs[i], j->names[i]);
            rc = commit_state(t, cls, j->n, NULL, 0, 0, &j->err);
        }
        free(cls);
        if (rc == TARN_OK)
            for (size_t i = 0; i < j->n; i++)
                if (timeline_add_layer(t->tl, j->layers[i], &err) != TARN_OK)
                    tlog_error(r->o.log, t->logctx, "%s", err.msg);
        if (rc != TARN_OK)
            for (size_t i = 0; i < j->n; i++)
                unlink(layer_get_path(j->layers[i]));
    }
    r->image_jobs++;
    r->image_secs += (double)j->us / 1e6;
    if (rc == TARN_OK) {
        r->image_parts_skipped += j->skipped;
        if (j->n > 0)
            t->image_fruitless = 0;
        else if (j->skipped > 0 && !j->force)
            t->image_fruitless++;
        r->image_layers += j->n;
        r->image_bytes += j->bytes;
        if (j->n > 0 || j->skipped > 0)
            tlog_info(r->o.log, t->logctx,
                      "image layers at %s: %zu written (%llu keys, %llu "
                      "bytes) in %.1f ms%s%s%s",
                      tarn_lsn_format(j->lsn, l), j->n,
                      (unsigned long long)j->keys, (unsigned long long)j->bytes,
                      (double)j->us / 1000,
                      j->skipped ? "; partitions skipped: " : "",
                      j->skipped ? j->skip_reason : "",
                      fruitless_note(t, note, sizeof(note)));
    } else {
        r->image_jobs_failed++;
        if (!j->force)
            t->image_fruitless++;
        tlog_error(r->o.log, t->logctx,
                   "image layers at %s failed: %s; the delta layers stay%s",
                   tarn_lsn_format(j->lsn, l), j->err.msg,
                   fruitless_note(t, note, sizeof(note)));
    }
    /* Answer checkpoint requests this job covered. */
    for (ckpt_wait *w = t->waiters; w != NULL; w = w->next) {
        if (!j->force || w->imaged || w->target > j->lsn)
            continue;
        w->imaged = true;
        w->res.lsn = j->lsn;
        w->res.image_layers = rc == TARN_OK ? j->n : 0;
        w->res.partitions_skipped = j->skipped;
        snprintf(w->res.skipped_reason, sizeof(w->res.skipped_reason), "%s",
                 j->skip_reason);
        if (rc != TARN_OK) {
            w->done(w->arg, rc, j->err.msg, NULL);
            w->done = NULL;
        }
    }
    image_job_free(j);
    answer_waiters(t);
    if (t->image_wanted)
        maybe_image(t, false);
}

static void
maybe_image(rtl *t, bool force)
{
    repo *r = t->r;
    int64_t wait_us = image_wait_us(t);
    image_job *j;
    tarn_err err;
    const tl_view *v = timeline_view(t->tl);
    size_t newer = 0;
    tarn_lsn newest = 0;

    if (t->imaging || r->stopping || t->deleted || t->broken
        || t->disk_consistent == 0) {
        t->image_wanted = t->image_wanted || force;
        return;
    }
    if (t->image_wanted)
        force = true;
    /*
     * At most one pass per image_creation_interval unless forced.  During
     * a bulk load every few delta layers would otherwise start a pass,
     * and each would rewrite the same growing partitions: in
     * tests/bench/wal_ingest the passes took a fifth of tarnd's CPU, on a
     * machine where the WAL competes for it.  The tick starts the pass
     * that waited.
     */
    if (!force && t->image_at != 0 && tarn_mono_us() - t->image_at < wait_us) {
        t->image_due = true;
        return;
    }
    t->image_due = false;
    /* A cheap check before snapshotting: enough deltas since any image? */
    if (!force) {
        if (v->nimages > 0)
            newest = layer_get_desc(v->images[0])->lsn_start;
        for (size_t i = 0; i < v->ndeltas; i++)
            if (layer_get_desc(v->deltas[i])->lsn_end - 1 > newest)
                newer++;
        if (newer < (size_t)r->o.cfg->image_creation_threshold)
            return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return;
    if (timeline_snapshot(t->tl, &j->v, &err) != TARN_OK) {
        free(j);
        return;
    }
    if (pagecache_ring_create(r->pc, IMAGE_RING_BLOCKS, &j->v->ring, &err)
        != TARN_OK) {
        tl_view_release(j->v);
        free(j);
        return;
    }
    j->t = t;
    j->lsn = t->disk_consistent;
    j->force = force;
    j->threshold = (int)r->o.cfg->image_creation_threshold;
    j->codec = (tarn_codec)r->o.cfg->layer_compression;
    snprintf(j->dir, sizeof(j->dir), "%s", t->layer_dir);
    j->tenant = t->tenant;
    j->id = t->id;
    j->log = r->o.log;
    if (wpool_submit(r->o.pool, image_work, image_done, j) != TARN_OK) {
        image_job_free(j);
        return;
    }
    t->image_wanted = false;
    t->image_at = tarn_mono_us();
    t->imaging = true;
    t->jobs++;
}

/* ---- checkpoints -------------------------------------------------------- */

/* Move every waiter along: flush first, then a forced image job. */
static void
answer_waiters(rtl *t)
{
    ckpt_wait **pp = &t->waiters, *w;
    bool need_image = false;

    while ((w = *pp) != NULL) {
        if (w->done == NULL) { /* failed and answered */
            *pp = w->next;
            free(w);
            continue;
        }
        if (w->imaged || (!w->images && t->disk_consistent >= w->target)) {
            *pp = w->next;
            if (!w->images)
                w->res.lsn = t->disk_consistent;
            w->done(w->arg, TARN_OK, NULL, &w->res);
            free(w);
            continue;
        }
        if (t->disk_consistent >= w->target)
            need_image = true;
        pp = &w->next;
    }
    if (need_image && !t->flushing && timeline_nfrozen(t->tl) == 0)
        maybe_image(t, true);
}

tarn_rc
repo_checkpoint(repo *r, const tarn_id *tenant, const tarn_id *tl, bool images,
                repo_ckpt_fn done, void *arg, tarn_err *err)
{
    rtl *t = find(r, tenant, tl);
    ckpt_wait *w;
    char idbuf[TARN_ID_STRLEN];
    tarn_rc rc;

    if (t == NULL)
        return tarn_err_set(err, TARN_ENOTFOUND, "timeline %s not found",
                            tarn_id_format(tl, idbuf));
    if ((rc = check_stopped(t, err)) != TARN_OK)
        return rc;
    if (t->ingest_failed)
        return tarn_err_set(err, TARN_ECONFLICT,
                            "ingest is stopped on this timeline: %s", t->error);
    if (!t->has_data && !t->has_wal)
        return tarn_err_set(err, TARN_EPRECOND,
                            "timeline %s has no data to checkpoint",
                            tarn_id_format(tl, idbuf));
    if (r->stopping)
        return tarn_err_set(err, TARN_EUNAVAIL, "tarnd is shutting down");
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    w->target = timeline_last_record_lsn(t->tl);
    w->images = images;
    w->done = done;
    w->arg = arg;
    w->next = t->waiters;
    t->waiters = w;
    freeze(t);
    t->flush_retry_at = 0;
    start_flush(t);
    answer_waiters(t);
    return TARN_OK;
}

/* ---- bootstrap and import ----------------------------------------------- */

typedef struct boot_job {
    repo *r;
    catalog_timeline ct;
    bool initdb;
    tarn_codec codec; /* layer_compression when the job was made */
    char pgdata[PATH_MAX];
    char tmpdir[PATH_MAX];
    char initdb_bin[PATH_MAX + 16];
    uid_t uid;
    gid_t gid;
    bool drop_privileges;
    char tl_dir[PATH_MAX], layer_dir[PATH_MAX + 16], wal_dir[PATH_MAX + 16];
    import_result res;
    tarn_rc rc;
    tarn_err err;
    repo_done_fn done;
    void *arg;
    int64_t us;
    char logctx[96];
} boot_job;

/* The last lines of a log file, for an error message. */
static void
log_tail(const char *path, char *out, size_t len)
{
    char *data = NULL, *p;
    size_t n = 0;
    tarn_err err;

    out[0] = '\0';
    if (tarn_read_file(path, 1 << 20, &data, &n, &err) != TARN_OK)
        return;
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\0'))
        n--;
    data[n] = '\0';
    p = data + n;
    for (int lines = 0; p > data && lines < 3;)
        if (*--p == '\n')
            lines++;
    snprintf(out, len, "%s", *p == '\n' ? p + 1 : p);
    for (char *q = out; *q; q++)
        if (*q == '\n')
            *q = ' ';
    free(data);
}

static tarn_rc
run_initdb(boot_job *j, tarn_err *err)
{
    char logpath[PATH_MAX + 32], tail[300];
    pid_t pid;
    int status, fd;

    snprintf(j->tmpdir, sizeof(j->tmpdir), "/tmp/tarn-initdb-XXXXXX");
    if (mkdtemp(j->tmpdir) == NULL)
        return tarn_err_errno(err, errno, "mkdtemp %s", j->tmpdir);
    if (j->drop_privileges && chown(j->tmpdir, j->uid, j->gid) != 0)
        return tarn_err_errno(err, errno, "chown %s", j->tmpdir);
    snprintf(j->pgdata, sizeof(j->pgdata), "%s/data", j->tmpdir);
    snprintf(logpath, sizeof(logpath), "%s/initdb.log", j->tmpdir);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return tarn_err_errno(err, errno, "create %s", logpath);
    if (j->drop_privileges && fchown(fd, j->uid, j->gid) != 0) {
        close(fd);
        return tarn_err_errno(err, errno, "chown %s", logpath);
    }
    pid = fork();
    if (pid < 0) {
        close(fd);
        return tarn_err_errno(err, errno, "fork");
    }
    if (pid == 0) {
        /* The child: only async-signal-safe calls until exec. */
        char *const argv[] = {j->initdb_bin,
                              "-D",
                              j->pgdata,
                              "-U",
                              "postgres",
                              "-A",
                              "trust",
                              "-E",
                              "UTF8",
                              "--locale=C.UTF-8",
                              "--no-instructions",
                              "--no-sync",
                              NULL};
        char *const envp[] = {"LC_ALL=C.UTF-8", "PATH=/usr/bin:/bin", NULL};
        dup2(fd, 1);
        dup2(fd, 2);
        if (j->drop_privileges
            && (setgroups(0, NULL) != 0 || setgid(j->gid) != 0
                || setuid(j->uid) != 0))
            _exit(126);
        if (chdir(j->tmpdir) != 0)
            _exit(126);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(fd);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return tarn_err_errno(err, errno, "waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return TARN_OK;
    log_tail(logpath, tail, sizeof(tail));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return tarn_err_set(err, TARN_EINVAL,
                            "cannot run %s (is PostgreSQL 15 installed? see "
                            "pg_bin_dir)",
                            j->initdb_bin);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
        return tarn_err_set(err, TARN_EINVAL,
                            "cannot switch to pg_user to run initdb");
    return tarn_err_set(err, TARN_EIO, "initdb failed (status %d): %s",
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1, tail);
}

static void
boot_work(void *arg)
{
    boot_job *j = arg;
    import_opts io = {0};
    int64_t t0 = tarn_mono_us();
    tarn_err e2;

    if (j->initdb && (j->rc = run_initdb(j, &j->err)) != TARN_OK)
        goto done;
    if ((j->rc = tarn_mkdir_p(j->layer_dir, 0700, &j->err)) != TARN_OK
        || (j->rc = tarn_mkdir_p(j->wal_dir, 0700, &j->err)) != TARN_OK)
        goto done;
    io.pgdata = j->pgdata;
    io.layer_dir = j->layer_dir;
    io.wal_dir = j->wal_dir;
    io.tenant = j->ct.tenant_id;
    io.timeline = j->ct.timeline_id;
    io.log = j->r->o.log;
    io.logctx = j->logctx;
    io.codec = j->codec;
    j->rc = import_run(&io, &j->res, &j->err);
done:
    if (j->tmpdir[0] != '\0')
        tarn_rmtree(j->tmpdir, &e2);
    j->us = tarn_mono_us() - t0;
}

static void
boot_done(void *arg)
{
    boot_job *j = arg;
    repo *r = j->r;
    catalog_timeline ct = j->ct;
    catalog_layer *cls = NULL;
    char l[TARN_LSN_STRLEN];
    tarn_err e2;
    tarn_rc rc = j->rc;
    rtl *t;

    if (rc == TARN_OK) {
        ct.state = CATALOG_TL_ACTIVE;
        ct.start_lsn = j->res.lsn;
        ct.last_record_lsn = j->res.lsn;
        ct.disk_consistent_lsn = j->res.lsn;
        ct.system_id = j->res.ctl.system_id;
        ct.wal_seg_size = j->res.ctl.wal_seg_size;
        ct.wal_start_lsn = j->res.wal_start;
        ct.wal_flush_lsn = j->res.lsn;
        ct.prev_record_lsn = j->res.ckpt_start;
        cls = calloc(j->res.nlayers ? j->res.nlayers : 1, sizeof(*cls));
        if (cls == NULL) {
            rc = tarn_err_set(&j->err, TARN_ENOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < j->res.nlayers; i++)
                catalog_layer_from(&cls[i], &j->res.layers[i], j->res.names[i]);
            rc = catalog_timeline_commit(r->o.cat, &ct, cls, j->res.nlayers,
                                         NULL, 0, NULL, 0, &j->err);
        }
        free(cls);
    }
    if (rc == TARN_OK && (rc = rtl_load(r, &ct, &t, &j->err)) == TARN_OK) {
        r->imports++;
        r->import_bytes += j->res.bytes;
        tlog_info(r->o.log, j->logctx,
                  "%s: %llu relation pages, %llu SLRU pages, %zu layer(s) "
                  "of %llu bytes at %s in %.1f s",
                  j->initdb ? "bootstrapped with initdb" : "imported",
                  (unsigned long long)j->res.rel_pages,
                  (unsigned long long)j->res.slru_pages, j->res.nlayers,
                  (unsigned long long)j->res.bytes,
                  tarn_lsn_format(j->res.lsn, l), (double)j->us / 1e6);
        if (r->o.hooks.wal_adopt != NULL
            && (rc = r->o.hooks.wal_adopt(r->o.hooks.arg, &ct.tenant_id,
                                          &ct.timeline_id, &j->err))
                   != TARN_OK)
            tlog_error(r->o.log, j->logctx, "WAL service: %s", j->err.msg);
    }
    if (rc != TARN_OK) {
        tlog_error(r->o.log, j->logctx, "%s failed: %s",
                   j->initdb ? "bootstrap" : "import", j->err.msg);
        t = find(r, &ct.tenant_id, &ct.timeline_id);
        if (t != NULL) {
            TAILQ_REMOVE(&r->tls, t, link);
            t->deleted = true;
            if (t->jobs == 0)
                rtl_free(t);
        }
        if (catalog_timeline_delete(r->o.cat, &ct.tenant_id, &ct.timeline_id,
                                    &e2)
            != TARN_OK)
            tlog_error(r->o.log, j->logctx, "%s", e2.msg);
        if (tarn_rmtree(j->tl_dir, &e2) != TARN_OK)
            tlog_error(r->o.log, j->logctx, "%s", e2.msg);
    }
    j->done(j->arg, rc, rc == TARN_OK ? NULL : j->err.msg);
    import_result_free(&j->res);
    free(j);
}

tarn_rc
repo_timeline_bootstrap(repo *r, const catalog_timeline *tl,
                        const char *import_pgdata, repo_done_fn done, void *arg,
                        tarn_err *err)
{
    boot_job *j;
    pg_control ctl;
    char idbuf[TARN_ID_STRLEN];
    tarn_rc rc;

    if (r->stopping)
        return tarn_err_set(err, TARN_EUNAVAIL, "tarnd is shutting down");
    if (import_pgdata != NULL
        && (rc = import_check(import_pgdata, &ctl, err)) != TARN_OK)
        return rc;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    j->r = r;
    j->ct = *tl;
    j->codec = (tarn_codec)r->o.cfg->layer_compression;
    j->done = done;
    j->arg = arg;
    snprintf(j->logctx, sizeof(j->logctx), "timeline %s",
             tarn_id_format(&tl->timeline_id, idbuf));
    tl_paths(r, &tl->tenant_id, &tl->timeline_id, j->tl_dir, sizeof(j->tl_dir),
             j->layer_dir, sizeof(j->layer_dir));
    snprintf(j->wal_dir, sizeof(j->wal_dir), "%s/wal", j->tl_dir);
    if (import_pgdata != NULL) {
        snprintf(j->pgdata, sizeof(j->pgdata), "%s", import_pgdata);
    } else {
        struct stat st;
        j->initdb = true;
        snprintf(j->initdb_bin, sizeof(j->initdb_bin), "%s/initdb",
                 r->o.cfg->pg_bin_dir);
        if (stat(j->initdb_bin, &st) != 0) {
            rc = tarn_err_set(err, TARN_EPRECOND,
                              "%s not found: install postgresql-15 or set "
                              "pg_bin_dir",
                              j->initdb_bin);
            free(j);
            return rc;
        }
        if (geteuid() == 0) {
            struct passwd pw, *res = NULL;
            char buf[4096];
            getpwnam_r(r->o.cfg->pg_user, &pw, buf, sizeof(buf), &res);
            if (res == NULL) {
                rc = tarn_err_set(err, TARN_EPRECOND,
                                  "pg_user '%s' does not exist; tarnd runs "
                                  "as root and PostgreSQL refuses to run "
                                  "initdb as root",
                                  r->o.cfg->pg_user);
                free(j);
                return rc;
            }
            j->drop_privileges = true;
            j->uid = pw.pw_uid;
            j->gid = pw.pw_gid;
        }
    }
    if ((rc = wpool_submit(r->o.pool, boot_work, boot_done, j)) != TARN_OK) {
        free(j);
        return tarn_err_set(err, TARN_EUNAVAIL, "tarnd is shutting down");
    }
    tlog_info(r->o.log, j->logctx, "%s",
              j->initdb ? "bootstrapping with initdb"
                        : "importing a data directory");
    return TARN_OK;
}

tarn_rc
repo_timeline_add(repo *r, const catalog_timeline *tl, tarn_err *err)
{
    rtl *t;
    tarn_rc rc;

    if (find(r, &tl->tenant_id, &tl->timeline_id) != NULL)
        return TARN_OK;
    if (tl->has_ancestor) {
        rtl *a = find(r, &tl->tenant_id, &tl->ancestor_id);
        /*
         * Everything at or below the branch point must be in immutable
         * layers, so that a snapshot of the ancestor (for a worker) sees
         * it: freeze the ancestor's open layer if it reaches that far.
         */
        if (a != NULL && timeline_open_start(a->tl) <= tl->ancestor_lsn) {
            freeze(a);
            start_flush(a);
        }
    }
    if ((rc = rtl_load(r, tl, &t, err)) != TARN_OK)
        return rc;
    return TARN_OK;
}

void
repo_timeline_forget(repo *r, const tarn_id *tenant, const tarn_id *tl)
{
    rtl *t = find(r, tenant, tl);

    if (t == NULL)
        return;
    TAILQ_REMOVE(&r->tls, t, link);
    t->deleted = true;
    if (t->ingest_scheduled)
        event_del(t->ingest_ev);
    if (t->jobs == 0)
        rtl_free(t);
}

void
repo_tenant_forget(repo *r, const tarn_id *tenant)
{
    rtl *t, *next;

    /* Children first: their timelines point at their ancestors'. */
    for (bool again = true; again;) {
        again = false;
        for (t = TAILQ_FIRST(&r->tls); t != NULL; t = next) {
            rtl *c;
            bool parent = false;
            next = TAILQ_NEXT(t, link);
            if (!tarn_id_equal(&t->tenant, tenant))
                continue;
            TAILQ_FOREACH (c, &r->tls, link)
                if (c->ancestor == t)
                    parent = true;
            if (parent) {
                again = true;
                continue;
            }
            repo_timeline_forget(r, tenant, &t->id);
        }
    }
}

/* ---- reads -------------------------------------------------------------- */

/*
 * TARN_ECONFLICT when @p t or one of its ancestors is stopped: a branch
 * reads through its ancestors' layers, and a stopped ancestor (a layer it
 * could not open) would leave holes in that history.
 */
static tarn_rc
check_stopped(const rtl *t, tarn_err *err)
{
    for (const rtl *a = t; a != NULL; a = a->ancestor)
        if (a->broken)
            return tarn_err_set(err, TARN_ECONFLICT,
                                a == t ? "the timeline is stopped: %s"
                                       : "an ancestor timeline is stopped: %s",
                                a->error);
    return TARN_OK;
}

static tarn_rc
read_target(repo *r, const tarn_id *tenant, const tarn_id *tl, bool latest,
            tarn_lsn lsn, rtl **out, tarn_lsn *at, tarn_err *err)
{
    rtl *t = find(r, tenant, tl);
    char idbuf[TARN_ID_STRLEN], l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];
    tarn_lsn last;
    tarn_rc rc;

    if (t == NULL)
        return tarn_err_set(err, TARN_ENOTFOUND,
                            "timeline %s not found (or still being created)",
                            tarn_id_format(tl, idbuf));
    if ((rc = check_stopped(t, err)) != TARN_OK)
        return rc;
    if (!t->has_data && timeline_last_record_lsn(t->tl) <= t->start_lsn)
        return tarn_err_set(err, TARN_EPRECOND, "timeline %s has no data yet",
                            tarn_id_format(tl, idbuf));
    last = timeline_last_record_lsn(t->tl);
    *at = latest ? last : lsn;
    if (*at < t->start_lsn)
        return tarn_err_set(err, TARN_EINVAL,
                            "LSN %s is before the start of timeline %s at %s",
                            tarn_lsn_format(*at, l1), tarn_id_format(tl, idbuf),
                            tarn_lsn_format(t->start_lsn, l2));
    if (*at > last)
        return tarn_err_set(err, TARN_EINVAL,
                            "LSN %s is past the last record ingested on "
                            "timeline %s, %s",
                            tarn_lsn_format(*at, l1), tarn_id_format(tl, idbuf),
                            tarn_lsn_format(last, l2));
    *out = t;
    return TARN_OK;
}

/* Size of a relation fork at @p at: *exists, *n. */
static tarn_rc
rel_size_at(rtl *t, const repo_rel *rel, tarn_lsn at, bool *exists, uint32_t *n,
            tarn_err *err)
{
    tkey k = tkey_rel_size(rel->spc, rel->db, rel->rel, rel->fork);

    return timeline_get_size(t->tl, &k, at, exists, n, err);
}

static void
getpage_observe(repo *r, int64_t us, bool ok)
{
    tarn_hist_add(&r->getpage, (double)us / 1e6);
    if (!ok)
        r->getpage_errors++;
}

/*
 * The part of a page read that decides where the page comes from.  Sets
 * *@p done when the page is settled without the layers (a block past the
 * relation's end); else *@p t and *@p k name what to read.
 */
static tarn_rc
getpage_locate(repo *r, const tarn_id *tenant, const tarn_id *tl,
               const repo_rel *rel, uint32_t blk, bool latest, tarn_lsn lsn,
               uint8_t *page, tarn_lsn *at, rtl **t, tkey *k, bool *done,
               tarn_err *err)
{
    char l[TARN_LSN_STRLEN];
    bool exists;
    uint32_t n;
    tarn_rc rc;

    *done = false;
    if ((rc = read_target(r, tenant, tl, latest, lsn, t, at, err)) != TARN_OK)
        return rc;
    if ((rc = rel_size_at(*t, rel, *at, &exists, &n, err)) != TARN_OK)
        return rc;
    if (!exists)
        return tarn_err_set(err, TARN_ENOTFOUND,
                            "relation %u/%u/%u fork %u does not exist at %s",
                            rel->spc, rel->db, rel->rel, rel->fork,
                            tarn_lsn_format(*at, l));
    if (blk >= n) {
        memset(page, 0, PG_BLCKSZ);
        *done = true;
        return TARN_OK;
    }
    *k = tkey_rel_block(rel->spc, rel->db, rel->rel, rel->fork, blk);
    return TARN_OK;
}

/* Inside the relation but never written: a new page. */
static tarn_rc
getpage_unwritten(tarn_rc rc, uint8_t *page)
{
    if (rc != TARN_ENOTFOUND)
        return rc;
    memset(page, 0, PG_BLCKSZ);
    return TARN_OK;
}

tarn_rc
repo_timeline_lsns(repo *r, const tarn_id *tenant, const tarn_id *tl,
                   tarn_lsn *last, tarn_lsn *start)
{
    rtl *t = find(r, tenant, tl);

    if (t == NULL)
        return TARN_ENOTFOUND;
    *last = timeline_last_record_lsn(t->tl);
    *start = t->start_lsn;
    return TARN_OK;
}

tarn_rc
repo_get_page(repo *r, const tarn_id *tenant, const tarn_id *tl,
              const repo_rel *rel, uint32_t blk, bool latest, tarn_lsn lsn,
              uint8_t *page, tarn_lsn *at, tarn_err *err)
{
    int64_t t0 = tarn_mono_us();
    bool done;
    rtl *t;
    tkey k;
    tarn_rc rc;

    rc = getpage_locate(r, tenant, tl, rel, blk, latest, lsn, page, at, &t, &k,
                        &done, err);
    if (rc == TARN_OK && !done)
        rc = getpage_unwritten(
            tl_get_page(timeline_view(t->tl), &k, *at, page, err), page);
    getpage_observe(r, tarn_mono_us() - t0, rc == TARN_OK);
    return rc;
}

/* A reconstruction that runs on the worker pool. */
typedef struct page_job {
    repo *r;
    tl_page_read *rd;
    uint8_t *page;
    tarn_lsn at;
    repo_page_fn done;
    void *arg;
    int64_t t0;
    tarn_rc rc;
    tarn_err err;
} page_job;

static void
page_work(void *arg)
{
    page_job *j = arg;

    j->rc = tl_page_read_finish(j->rd, j->page, &j->err);
}

static void
page_done(void *arg)
{
    page_job *j = arg;

    tl_page_read_free(j->rd);
    getpage_observe(j->r, tarn_mono_us() - j->t0, j->rc == TARN_OK);
    j->done(j->arg, j->rc, j->rc == TARN_OK ? "" : j->err.msg, j->at);
    free(j);
}

tarn_rc
repo_get_page_async(repo *r, const tarn_id *tenant, const tarn_id *tl,
                    const repo_rel *rel, uint32_t blk, bool latest,
                    tarn_lsn lsn, uint8_t *page, tarn_lsn *at, bool *pending,
                    repo_page_fn done, void *arg, tarn_err *err)
{
    int64_t t0 = tarn_mono_us();
    tl_page_read *rd = NULL;
    page_job *j = NULL;
    bool settled;
    rtl *t;
    tkey k;
    tarn_rc rc;

    *pending = false;
    rc = getpage_locate(r, tenant, tl, rel, blk, latest, lsn, page, at, &t, &k,
                        &settled, err);
    if (rc != TARN_OK || settled)
        goto out;
    rc = getpage_unwritten(
        tl_page_read_start(timeline_view(t->tl), &k, *at, page, &rd, err),
        page);
    if (rc != TARN_OK || rd == NULL)
        goto out; /* an error, a new page or a cache hit */
    /* Short histories are cheaper to apply here than to hand off
     * (tests/bench/redo measures both). */
    if (tl_page_read_values(rd) <= (size_t)r->o.cfg->redo_inline_max
        || r->stopping)
        goto inline_redo;
    if ((j = calloc(1, sizeof(*j))) == NULL
        || tl_page_read_detach(rd, err) != TARN_OK)
        goto inline_redo;
    *j = (page_job){.r = r,
                    .rd = rd,
                    .page = page,
                    .at = *at,
                    .done = done,
                    .arg = arg,
                    .t0 = t0};
    if (wpool_submit(r->o.pool, page_work, page_done, j) != TARN_OK)
        goto inline_redo;
    r->getpage_offloaded++;
    *pending = true;
    return TARN_OK;
inline_redo:
    free(j);
    rc = tl_page_read_finish(rd, page, err);
out:
    tl_page_read_free(rd);
    getpage_observe(r, tarn_mono_us() - t0, rc == TARN_OK);
    return rc;
}

tarn_rc
repo_rel_size(repo *r, const tarn_id *tenant, const tarn_id *tl,
              const repo_rel *rel, bool latest, tarn_lsn lsn, bool *exists,
              uint32_t *nblocks, tarn_lsn *at, tarn_err *err)
{
    rtl *t;
    tarn_rc rc = read_target(r, tenant, tl, latest, lsn, &t, at, err);

    if (rc != TARN_OK)
        return rc;
    return rel_size_at(t, rel, *at, exists, nblocks, err);
}

tarn_rc
repo_get_slru_page(repo *r, const tarn_id *tenant, const tarn_id *tl, int kind,
                   uint32_t segno, uint32_t blk, bool latest, tarn_lsn lsn,
                   uint8_t *page, tarn_lsn *at, tarn_err *err)
{
    tkey sk, k;
    bool found;
    uint32_t n;
    rtl *t;
    char l[TARN_LSN_STRLEN];
    tarn_rc rc;

    if (kind < 0 || kind >= SLRU_NKINDS)
        return tarn_err_set(err, TARN_EINVAL, "unknown SLRU kind %d", kind);
    if ((rc = read_target(r, tenant, tl, latest, lsn, &t, at, err)) != TARN_OK)
        return rc;
    sk = tkey_slru_size((slru_kind)kind, segno);
    if ((rc = timeline_get_size(t->tl, &sk, *at, &found, &n, err)) != TARN_OK)
        return rc;
    if (!found || blk >= n)
        return tarn_err_set(err, TARN_ENOTFOUND,
                            "SLRU segment %04X has no block %u at %s", segno,
                            blk, tarn_lsn_format(*at, l));
    k = tkey_slru_block((slru_kind)kind, segno, blk);
    rc = tl_get_page(timeline_view(t->tl), &k, *at, page, err);
    if (rc == TARN_ENOTFOUND) {
        memset(page, 0, PG_BLCKSZ);
        rc = TARN_OK;
    }
    return rc;
}

typedef struct dbsize_ctx {
    rtl *t;
    tarn_lsn at;
    uint64_t bytes;
} dbsize_ctx;

static tarn_rc
dbsize_one(void *arg, const tkey *k, const uint8_t *val, size_t len,
           tarn_err *err)
{
    dbsize_ctx *c = arg;
    repo_rel rel = {tkey_f2(k), tkey_f3(k), tkey_f4(k), tkey_f5(k)};
    bool exists;
    uint32_t n;
    tarn_rc rc = rel_size_at(c->t, &rel, c->at, &exists, &n, err);

    (void)val;
    (void)len;
    if (rc == TARN_OK && exists)
        c->bytes += (uint64_t)n * PG_BLCKSZ;
    return rc;
}

tarn_rc
repo_db_size(repo *r, const tarn_id *tenant, const tarn_id *tl, uint32_t spc,
             uint32_t db, bool latest, tarn_lsn lsn, uint64_t *bytes,
             tarn_lsn *at, tarn_err *err)
{
    dbsize_ctx c = {0};
    tkey lo = tkey_make(TKEY_RELDIR, spc, db, 0, 0, 0),
         hi = tkey_make(TKEY_RELDIR, spc, db, UINT32_MAX, 0xff, UINT32_MAX);
    tarn_rc rc = read_target(r, tenant, tl, latest, lsn, &c.t, at, err);

    if (rc != TARN_OK)
        return rc;
    c.at = *at;
    rc = tl_scan(timeline_view(c.t->tl), &lo, &hi, *at, dbsize_one, &c, err);
    *bytes = c.bytes;
    return rc;
}

/* ---- raw reads for base backups ----------------------------------------- */

tarn_rc
repo_backup_info_get(repo *r, const tarn_id *tenant, const tarn_id *tl,
                     repo_backup_info *out, tarn_err *err)
{
    rtl *t;
    tarn_lsn at;
    tarn_rc rc = read_target(r, tenant, tl, true, 0, &t, &at, err);

    if (rc != TARN_OK)
        return rc;
    memset(out, 0, sizeof(*out));
    out->last_record_lsn = at;
    out->prev_record_lsn = timeline_prev_record_lsn(t->tl);
    out->start_lsn = t->start_lsn;
    out->has_ancestor = t->has_ancestor;
    out->ancestor_lsn = t->ancestor_lsn;
    return TARN_OK;
}

tarn_rc
repo_read_value(repo *r, const tarn_id *tenant, const tarn_id *tl,
                const tkey *k, tarn_lsn lsn, tbuf *out, bool *found,
                tarn_err *err)
{
    rtl *t;
    tarn_lsn at;
    tarn_rc rc = read_target(r, tenant, tl, false, lsn, &t, &at, err);

    if (rc != TARN_OK)
        return rc;
    return tl_get_value(timeline_view(t->tl), k, at, out, found, err);
}

tarn_rc
repo_scan(repo *r, const tarn_id *tenant, const tarn_id *tl, const tkey *lo,
          const tkey *hi, tarn_lsn lsn,
          tarn_rc (*fn)(void *arg, const tkey *k, const uint8_t *val,
                        size_t len, tarn_err *err),
          void *arg, tarn_err *err)
{
    rtl *t;
    tarn_lsn at;
    tarn_rc rc = read_target(r, tenant, tl, false, lsn, &t, &at, err);

    if (rc != TARN_OK)
        return rc;
    return tl_scan(timeline_view(t->tl), lo, hi, at, fn, arg, err);
}

tarn_rc
repo_read_pages(repo *r, const tarn_id *tenant, const tarn_id *tl,
                const tkey *first, uint32_t n, tarn_lsn lsn, uint8_t *pages,
                tarn_err *err)
{
    rtl *t;
    tarn_lsn at;
    tarn_rc rc = read_target(r, tenant, tl, false, lsn, &t, &at, err);
    uint32_t blk0 = tkey_f6(first);

    if (rc != TARN_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        tkey k = *first;
        uint8_t *page = pages + (size_t)i * PG_BLCKSZ;
        tkey_put32(k.b + 14, blk0 + i);
        rc = tl_get_page(timeline_view(t->tl), &k, at, page, err);
        if (rc == TARN_ENOTFOUND) {
            memset(page, 0, PG_BLCKSZ);
            rc = TARN_OK;
        }
        if (rc != TARN_OK)
            return rc;
    }
    return TARN_OK;
}

tarn_rc
repo_read_wal(repo *r, const tarn_id *tenant, const tarn_id *tl, tarn_lsn lsn,
              uint8_t *buf, size_t len, tarn_err *err)
{
    char l[TARN_LSN_STRLEN];
    rtl *t = find(r, tenant, tl);
    tarn_rc rc = TARN_ENOTFOUND;

    if (r->o.hooks.wal_read == NULL)
        return tarn_err_set(err, TARN_ENOTFOUND, "no WAL service");
    for (; t != NULL; t = t->ancestor) {
        if (t->has_wal && lsn >= t->wal_start) {
            rc = r->o.hooks.wal_read(r->o.hooks.arg, &t->tenant, &t->id, lsn,
                                     buf, len, err);
            if (rc == TARN_OK)
                return TARN_OK;
        }
        if (!t->has_ancestor || lsn + len > t->ancestor_lsn)
            break;
    }
    if (rc == TARN_ENOTFOUND || rc == TARN_OK)
        return tarn_err_set(err, TARN_ENOTFOUND, "no WAL at %s on the timeline",
                            tarn_lsn_format(lsn, l));
    return rc;
}

/* Commits held in memory (not yet in the catalog) around @p ts. */
static void
mem_commits(const rtl *t, int64_t ts, tarn_lsn upto, catalog_ts_hit *h)
{
    const tl_view *v = timeline_view(t->tl);
    memlayer *ms[MAX_FROZEN + 8];
    size_t nm = 0;

    for (size_t i = 0; i < v->nfrozen && nm < TARN_ARRAY_LEN(ms) - 1; i++)
        ms[nm++] = v->frozen[i];
    if (v->open != NULL)
        ms[nm++] = v->open;
    for (size_t i = 0; i < nm; i++) {
        size_t n;
        const commit_ts *c = memlayer_commit_ts(ms[i], &n);
        for (size_t k = 0; k < n; k++) {
            if (c[k].lsn > upto)
                continue;
            if (!h->any || c[k].lsn < h->first_lsn) {
                h->first_ts = c[k].ts;
                h->first_lsn = c[k].lsn;
            }
            h->any = true;
            if (c[k].ts > ts) {
                h->later = true;
            } else if (!h->found || c[k].ts > h->ts
                       || (c[k].ts == h->ts && c[k].lsn > h->lsn)) {
                h->found = true;
                h->ts = c[k].ts;
                h->lsn = c[k].lsn;
            }
        }
    }
}

tarn_rc
repo_lsn_by_timestamp(repo *r, const tarn_id *tenant, const tarn_id *tl,
                      tarn_time_us when, repo_ts_result *out, tarn_err *err)
{
    rtl *t = find(r, tenant, tl), *c;
    char idbuf[TARN_ID_STRLEN];
    int64_t ts = when - PG_EPOCH_OFFSET_US;
    catalog_ts_hit all = {0};
    tarn_lsn upto, first = 0;

    if (t == NULL)
        return tarn_err_set(err, TARN_ENOTFOUND, "timeline %s not found",
                            tarn_id_format(tl, idbuf));
    upto = timeline_last_record_lsn(t->tl);
    /* This timeline's commits, then its ancestors' below each branch. */
    for (c = t; c != NULL; c = c->ancestor) {
        catalog_ts_hit h;
        tarn_rc rc =
            catalog_commit_ts_find(r->o.cat, &c->tenant, &c->id, ts, &h, err);
        if (rc != TARN_OK)
            return rc;
        /* Catalog entries above upto (a branch point) do not count. */
        if (h.found && h.lsn > upto)
            h.found = false, h.later = true;
        mem_commits(c, ts, upto, &h);
        if (h.any && (!all.any || h.first_lsn < all.first_lsn)) {
            all.first_lsn = h.first_lsn;
            all.first_ts = h.first_ts;
        }
        all.any = all.any || h.any;
        all.later = all.later || h.later;
        if (h.found && (!all.found || h.lsn > all.lsn)) {
            all.found = true;
            all.ts = h.ts;
            all.lsn = h.lsn;
        }
        first = c->start_lsn;
        if (!c->has_ancestor)
            break;
        upto = c->ancestor_lsn;
    }
    if (!all.any) {
        out->kind = "nodata";
        out->lsn = timeline_last_record_lsn(t->tl);
    } else if (!all.found) {
        out->kind = "past";
        out->lsn = first;
    } else if (!all.later) {
        out->kind = "future";
        out->lsn = timeline_last_record_lsn(t->tl);
    } else {
        out->kind = "present";
        out->lsn = all.lsn;
    }
    return TARN_OK;
}

/* ---- info and metrics --------------------------------------------------- */

void
repo_timeline_info(repo *r, const tarn_id *tenant, const tarn_id *tl,
                   repo_tl_info *out)
{
    rtl *t = find(r, tenant, tl);
    ingest_stats st;

    memset(out, 0, sizeof(*out));
    out->ingest_state = "none";
    if (t == NULL)
        return;
    out->loaded = true;
    out->last_record_lsn = timeline_last_record_lsn(t->tl);
    out->disk_consistent_lsn = t->disk_consistent;
    out->start_lsn = t->start_lsn;
    timeline_layer_stats(t->tl, &out->delta_layers, &out->image_layers,
                         &out->layer_bytes);
    out->frozen_layers = timeline_nfrozen(t->tl);
    out->open_layer_bytes = timeline_open_bytes(t->tl);
    out->trust_consistency_images = trust_images(t);
    if (t->ing != NULL) {
        ingest_get_stats(t->ing, &st);
        out->records_ingested = st.records;
    }
    if (t->wal_upto > t->ingest_pos)
        out->ingest_lag_bytes = t->wal_upto - t->ingest_pos;
    snprintf(out->error, sizeof(out->error), "%s", t->error);
    if (t->broken || t->ingest_failed)
        out->ingest_state = "failed";
    else if (!t->has_wal)
        out->ingest_state = "none";
    else if (t->ingest_pos < t->wal_upto
             && timeline_nfrozen(t->tl) >= MAX_FROZEN)
        out->ingest_state = "waiting for a layer flush";
    else if (t->ingest_pos < t->wal_upto && t->mem_wait)
        out->ingest_state = "waiting for layer memory";
    else if (t->ingest_pos < t->wal_upto)
        out->ingest_state = "ingesting";
    else
        out->ingest_state = "idle";
}

void
repo_metrics(repo *r, struct evbuffer *out)
{
    pagecache_stats ps;
    redo_stats *rs = &r->rs;
    size_t nd = 0, ni = 0, nf = 0;
    uint64_t lb = 0, open = 0, lag = 0;
    rtl *t;
    static const char *const kinds[3] = {"", "page", "index"};

    TAILQ_FOREACH (t, &r->tls, link) {
        size_t a, b;
        uint64_t c;
        timeline_layer_stats(t->tl, &a, &b, &c);
        nd += a;
        ni += b;
        lb += c;
        nf += timeline_nfrozen(t->tl);
        open += timeline_open_bytes(t->tl);
        if (t->wal_upto > t->ingest_pos)
            lag += t->wal_upto - t->ingest_pos;
    }
    pagecache_get_stats(r->pc, &ps);
    evbuffer_add_printf(
        out,
        "# HELP tarn_ingest_records_total WAL records ingested into layers.\n"
        "# TYPE tarn_ingest_records_total counter\n"
        "tarn_ingest_records_total %llu\n"
        "# HELP tarn_ingest_bytes_total Bytes of WAL records ingested.\n"
        "# TYPE tarn_ingest_bytes_total counter\n"
        "tarn_ingest_bytes_total %llu\n"
        "# HELP tarn_ingest_lag_bytes Durable WAL not ingested yet.\n"
        "# TYPE tarn_ingest_lag_bytes gauge\n"
        "tarn_ingest_lag_bytes %llu\n"
        "# HELP tarn_layer_files Layer files in the layer maps.\n"
        "# TYPE tarn_layer_files gauge\n"
        "tarn_layer_files{kind=\"delta\"} %zu\n"
        "tarn_layer_files{kind=\"image\"} %zu\n"
        "# HELP tarn_layer_bytes Bytes of layer files.\n"
        "# TYPE tarn_layer_bytes gauge\n"
        "tarn_layer_bytes %llu\n"
        "# HELP tarn_open_layer_bytes Memory held by open in-memory layers.\n"
        "# TYPE tarn_open_layer_bytes gauge\n"
        "tarn_open_layer_bytes %llu\n"
        "# HELP tarn_layer_memory_bytes Memory held by in-memory layers, "
        "open and frozen.\n"
        "# TYPE tarn_layer_memory_bytes gauge\n"
        "tarn_layer_memory_bytes %llu\n"
        "# HELP tarn_layer_memory_limit_bytes layer_memory_limit.\n"
        "# TYPE tarn_layer_memory_limit_bytes gauge\n"
        "tarn_layer_memory_limit_bytes %llu\n"
        "# HELP tarn_layer_memory_pool_bytes Free arena chunks kept for "
        "the next in-memory layers.\n"
        "# TYPE tarn_layer_memory_pool_bytes gauge\n"
        "tarn_layer_memory_pool_bytes %llu\n"
        "# HELP tarn_ingest_memory_waits_total Times ingest paused at "
        "layer_memory_limit.\n"
        "# TYPE tarn_ingest_memory_waits_total counter\n"
        "tarn_ingest_memory_waits_total %llu\n"
        "# HELP tarn_frozen_layers In-memory layers waiting to be written.\n"
        "# TYPE tarn_frozen_layers gauge\n"
        "tarn_frozen_layers %zu\n"
        "# HELP tarn_layer_flushes_total Delta layers written.\n"
        "# TYPE tarn_layer_flushes_total counter\n"
        "tarn_layer_flushes_total{result=\"ok\"} %llu\n"
        "tarn_layer_flushes_total{result=\"failed\"} %llu\n"
        "# HELP tarn_layer_flush_bytes_total Bytes of delta layers written.\n"
        "# TYPE tarn_layer_flush_bytes_total counter\n"
        "tarn_layer_flush_bytes_total %llu\n"
        "# HELP tarn_layer_flush_seconds_total Time writing delta layers.\n"
        "# TYPE tarn_layer_flush_seconds_total counter\n"
        "tarn_layer_flush_seconds_total %.6f\n"
        "# HELP tarn_image_layers_total Image layers written.\n"
        "# TYPE tarn_image_layers_total counter\n"
        "tarn_image_layers_total %llu\n"
        "# HELP tarn_image_layer_bytes_total Bytes of image layers "
        "written.\n"
        "# TYPE tarn_image_layer_bytes_total counter\n"
        "tarn_image_layer_bytes_total %llu\n"
        "# HELP tarn_image_passes_total Image passes run over a timeline, by "
        "outcome.\n"
        "# TYPE tarn_image_passes_total counter\n"
        "tarn_image_passes_total{result=\"ok\"} %llu\n"
        "tarn_image_passes_total{result=\"failed\"} %llu\n"
        "# HELP tarn_image_pass_seconds_total Time spent in image passes.\n"
        "# TYPE tarn_image_pass_seconds_total counter\n"
        "tarn_image_pass_seconds_total %.6f\n"
        "# HELP tarn_image_partitions_skipped_total Key ranges an image "
        "pass left to their delta layers: a page in them cannot be "
        "rebuilt.\n"
        "# TYPE tarn_image_partitions_skipped_total counter\n"
        "tarn_image_partitions_skipped_total %llu\n"
        "# HELP tarn_imports_total Timelines bootstrapped or imported.\n"
        "# TYPE tarn_imports_total counter\n"
        "tarn_imports_total %llu\n",
        (unsigned long long)r->ingest_records,
        (unsigned long long)r->ingest_bytes, (unsigned long long)lag, nd, ni,
        (unsigned long long)lb, (unsigned long long)open,
        (unsigned long long)layer_memory(r),
        (unsigned long long)r->o.cfg->layer_memory_limit,
        (unsigned long long)memlayer_pool_bytes(r->pool),
        (unsigned long long)r->ingest_mem_waits, nf,
        (unsigned long long)r->flushes, (unsigned long long)r->flush_failures,
        (unsigned long long)r->flush_bytes, r->flush_secs,
        (unsigned long long)r->image_layers, (unsigned long long)r->image_bytes,
        (unsigned long long)(r->image_jobs - r->image_jobs_failed),
        (unsigned long long)r->image_jobs_failed, r->image_secs,
        (unsigned long long)r->image_parts_skipped,
        (unsigned long long)r->imports);
    evbuffer_add_printf(out,
                        "# HELP tarn_page_cache_hits_total Page cache hits.\n"
                        "# TYPE tarn_page_cache_hits_total counter\n");
    for (int k = PC_PAGE; k <= PC_INDEX; k++)
        evbuffer_add_printf(out,
                            "tarn_page_cache_hits_total{kind=\"%s\"} %llu\n",
                            kinds[k], (unsigned long long)ps.hits[k]);
    evbuffer_add_printf(out, "# HELP tarn_page_cache_misses_total Page cache "
                             "misses.\n"
                             "# TYPE tarn_page_cache_misses_total counter\n");
    for (int k = PC_PAGE; k <= PC_INDEX; k++)
        evbuffer_add_printf(out,
                            "tarn_page_cache_misses_total{kind=\"%s\"} %llu\n",
                            kinds[k], (unsigned long long)ps.misses[k]);
    evbuffer_add_printf(out,
                        "# HELP tarn_page_cache_hit_ratio Hits over lookups "
                        "since start.\n"
                        "# TYPE tarn_page_cache_hit_ratio gauge\n");
    for (int k = PC_PAGE; k <= PC_INDEX; k++) {
        uint64_t all = ps.hits[k] + ps.misses[k];
        evbuffer_add_printf(
            out, "tarn_page_cache_hit_ratio{kind=\"%s\"} %.4f\n", kinds[k],
            all ? (double)ps.hits[k] / (double)all : 0.0);
    }
    evbuffer_add_printf(
        out,
        "# HELP tarn_page_cache_slots 8 KiB slots of the page cache.\n"
        "# TYPE tarn_page_cache_slots gauge\n"
        "tarn_page_cache_slots{state=\"total\"} %zu\n"
        "tarn_page_cache_slots{state=\"used\"} %zu\n"
        "# HELP tarn_page_cache_evictions_total Entries evicted.\n"
        "# TYPE tarn_page_cache_evictions_total counter\n"
        "tarn_page_cache_evictions_total %llu\n"
        "# HELP tarn_redo_total Values applied by redo.\n"
        "# TYPE tarn_redo_total counter\n"
        "tarn_redo_total{kind=\"native\"} %llu\n"
        "tarn_redo_total{kind=\"pg_record\"} %llu\n"
        "tarn_redo_total{kind=\"record_image\"} %llu\n"
        "tarn_redo_total{kind=\"failed\"} %llu\n",
        ps.slots, ps.used, (unsigned long long)ps.evictions,
        (unsigned long long)atomic_load(&rs->native),
        (unsigned long long)atomic_load(&rs->pg_records),
        (unsigned long long)atomic_load(&rs->images),
        (unsigned long long)atomic_load(&rs->failures));
    tarn_hist_print(out, "tarn_getpage_seconds",
                    "get_page latency, straight into the engine.", &r->getpage);
    evbuffer_add_printf(out,
                        "# HELP tarn_getpage_errors_total get_page calls that "
                        "failed.\n"
                        "# TYPE tarn_getpage_errors_total counter\n"
                        "tarn_getpage_errors_total %llu\n"
                        "# HELP tarn_getpage_offloaded_total get_page calls "
                        "whose redo ran on the worker pool (more than "
                        "redo_inline_max values).\n"
                        "# TYPE tarn_getpage_offloaded_total counter\n"
                        "tarn_getpage_offloaded_total %llu\n",
                        (unsigned long long)r->getpage_errors,
                        (unsigned long long)r->getpage_offloaded);
}

/* ---- start-up, the tick, shutdown --------------------------------------- */

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    repo *r = arg;
    int64_t now = tarn_mono_us();
    rtl *t;

    (void)fd;
    (void)what;
    if (r->stopping)
        return;
    memlayer_pool_set_keep(r->pool, (size_t)r->o.cfg->layer_memory_limit);
    TAILQ_FOREACH (t, &r->tls, link) {
        if (t->broken)
            continue;
        if (t->open_since_us != 0
            && now - t->open_since_us >= r->o.cfg->checkpoint_timeout_ms * 1000)
            freeze(t);
        start_flush(t); /* retries after a failure */
        if (t->image_due && !t->flushing)
            maybe_image(t, false);
        if (t->ingest_pos < t->wal_upto && !t->ingest_failed)
            schedule_ingest(t);
    }
}

static tarn_rc
load_tenant(repo *r, const tarn_id *tenant, tarn_err *err)
{
    catalog_timeline *tls = NULL;
    size_t n = 0, loaded = 0;
    bool *done;
    tarn_rc rc = catalog_timeline_list(r->o.cat, tenant, &tls, &n, err);

    if (rc != TARN_OK)
        return rc;
    done = calloc(n ? n : 1, sizeof(bool));
    if (done == NULL) {
        free(tls);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    /* Crashed bootstraps go first; then ancestors before children. */
    for (size_t i = 0; i < n; i++) {
        if (tls[i].state != CATALOG_TL_CREATING)
            continue;
        char dir[PATH_MAX], idbuf[TARN_ID_STRLEN];
        tarn_err e2;
        tl_paths(r, tenant, &tls[i].timeline_id, dir, sizeof(dir), NULL, 0);
        tlog_warn(r->o.log, NULL,
                  "timeline %s was still being created when tarnd stopped; "
                  "removing it",
                  tarn_id_format(&tls[i].timeline_id, idbuf));
        if (catalog_timeline_delete(r->o.cat, tenant, &tls[i].timeline_id, &e2)
                != TARN_OK
            || tarn_rmtree(dir, &e2) != TARN_OK)
            tlog_error(r->o.log, NULL, "%s", e2.msg);
        done[i] = true;
        loaded++;
    }
    while (loaded < n) {
        size_t before = loaded;
        for (size_t i = 0; i < n; i++) {
            rtl *t;
            if (done[i])
                continue;
            if (tls[i].has_ancestor
                && find(r, tenant, &tls[i].ancestor_id) == NULL)
                continue;
            if ((rc = rtl_load(r, &tls[i], &t, err)) != TARN_OK)
                goto out;
            done[i] = true;
            loaded++;
        }
        if (loaded == before) {
            rc = tarn_err_set(err, TARN_ECORRUPT,
                              "timelines whose ancestors cannot be loaded");
            goto out;
        }
    }
out:
    free(done);
    free(tls);
    return rc;
}

tarn_rc
repo_create(const repo_opts *o, repo **out, tarn_err *err)
{
    repo *r = calloc(1, sizeof(*r));
    catalog_tenant *ts = NULL;
    size_t nt = 0;
    tarn_rc rc;

    if (r == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    r->o = *o;
    tarn_hist_init(&r->getpage, getpage_bounds, GETPAGE_BUCKETS);
    snprintf(r->data_dir, sizeof(r->data_dir), "%s", o->data_dir);
    r->o.data_dir = r->data_dir;
    TAILQ_INIT(&r->tls);
    r->readbuf = malloc(READ_CHUNK);
    if (r->readbuf == NULL) {
        free(r);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    if ((rc = pagecache_create((size_t)o->cfg->page_cache_size, &r->pc, err))
        != TARN_OK)
        goto fail;
    if ((rc = memlayer_pool_create((size_t)o->cfg->layer_memory_limit, &r->pool,
                                   err))
        != TARN_OK)
        goto fail;
    if ((rc = catalog_tenant_list(o->cat, &ts, &nt, err)) != TARN_OK)
        goto fail;
    for (size_t i = 0; i < nt && rc == TARN_OK; i++)
        rc = load_tenant(r, &ts[i].id, err);
    free(ts);
    if (rc != TARN_OK)
        goto fail;
    r->tick = event_new(o->base, -1, EV_PERSIST, on_tick, r);
    if (r->tick == NULL || event_add(r->tick, &(struct timeval){1, 0}) != 0) {
        rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto fail;
    }
    *out = r;
    return TARN_OK;
fail:
    repo_destroy(r);
    return rc;
}

void
repo_stop(repo *r)
{
    r->stopping = true;
}

void
repo_destroy(repo *r)
{
    rtl *t;

    if (r == NULL)
        return;
    if (r->tick != NULL)
        event_free(r->tick);
    /* Children before ancestors: free from the end of the load order. */
    while ((t = TAILQ_LAST(&r->tls, rtl_head_)) != NULL) {
        TAILQ_REMOVE(&r->tls, t, link);
        rtl_free(t);
    }
    pagecache_destroy(r->pc);
    memlayer_pool_destroy(r->pool);
    free(r->readbuf);
    free(r);
}
