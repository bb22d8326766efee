/*
 * admin.c - routes and handlers of the admin API.
 *
 * Routing is a table of (method, pattern) rows where a pattern segment
 * "{t}" is a tenant id and "{tl}" a timeline id.  The order of checks is
 * fixed: route (404 naming every route), method (405 with Allow), auth
 * (401), ids (400), then the handler.  Auth comes before anything that
 * touches data, so a client without the token learns only which routes
 * exist, which docs/api.md says anyway.
 *
 * Handlers map tarn_rc to status codes in one place (admin_status_for),
 * so "unknown id" is a 404 and "bad input" a 400 on every route alike,
 * and no input a client can send produces a 500.
 */
#include "net/admin.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/admin_req.h"
#include "server/core/version.h"

#define MAX_COUNTERS 512

typedef struct route_args {
    tarn_id tenant;
    tarn_id timeline;
} route_args;

typedef void (*route_fn)(admin *a, http_req *r, const route_args *args);

typedef struct route {
    http_method method;
    const char *pattern;
    route_fn fn;
    bool noauth;
} route;

typedef struct counter {
    uint16_t route; /* index into routes; nroutes = unmatched */
    uint16_t status;
    uint64_t count;
} counter;

struct admin {
    catalog *cat;
    walsvc *wal;
    repo *repo;
    tlog *log;
    bool auth;
    uint8_t token_hash[SHA256_DIGEST_LENGTH];
    admin_metrics_fn metrics;
    void *metrics_arg;
    int64_t started_mono;
    tarn_time_us started_at;
    char page_listen[128]; /* "" when unknown */
    counter counters[MAX_COUNTERS];
    size_t ncounters;
};

static void h_status(admin *, http_req *, const route_args *);
static void h_metrics(admin *, http_req *, const route_args *);
static void h_tenant_create(admin *, http_req *, const route_args *);
static void h_tenant_list(admin *, http_req *, const route_args *);
static void h_tenant_get(admin *, http_req *, const route_args *);
static void h_tenant_delete(admin *, http_req *, const route_args *);
static void h_timeline_create(admin *, http_req *, const route_args *);
static void h_timeline_list(admin *, http_req *, const route_args *);
static void h_timeline_get(admin *, http_req *, const route_args *);
static void h_timeline_delete(admin *, http_req *, const route_args *);
static void h_lsn_by_timestamp(admin *, http_req *, const route_args *);
static void h_checkpoint(admin *, http_req *, const route_args *);
static void h_compact(admin *, http_req *, const route_args *);
static void h_do_gc(admin *, http_req *, const route_args *);
static void h_getpage(admin *, http_req *, const route_args *);
static void h_rel_size(admin *, http_req *, const route_args *);
static void h_db_size(admin *, http_req *, const route_args *);
static void h_slru_page(admin *, http_req *, const route_args *);
static void h_compute_attach(admin *, http_req *, const route_args *);
static void h_compute_detach(admin *, http_req *, const route_args *);

#define TL "/v1/tenant/{t}/timeline/{tl}"

static const route routes[] = {
    {HTTP_GET, "/v1/status", h_status, true},
    {HTTP_GET, "/metrics", h_metrics, false},
    {HTTP_POST, "/v1/tenant", h_tenant_create, false},
    {HTTP_GET, "/v1/tenant", h_tenant_list, false},
    {HTTP_GET, "/v1/tenant/{t}", h_tenant_get, false},
    {HTTP_DELETE, "/v1/tenant/{t}", h_tenant_delete, false},
    {HTTP_POST, "/v1/tenant/{t}/timeline", h_timeline_create, false},
    {HTTP_GET, "/v1/tenant/{t}/timeline", h_timeline_list, false},
    {HTTP_GET, TL, h_timeline_get, false},
    {HTTP_DELETE, TL, h_timeline_delete, false},
    {HTTP_GET, TL "/get_lsn_by_timestamp", h_lsn_by_timestamp, false},
    {HTTP_PUT, TL "/checkpoint", h_checkpoint, false},
    {HTTP_PUT, TL "/compact", h_compact, false},
    {HTTP_PUT, TL "/do_gc", h_do_gc, false},
    {HTTP_GET, TL "/getpage", h_getpage, false},
    {HTTP_GET, TL "/rel_size", h_rel_size, false},
    {HTTP_GET, TL "/db_size", h_db_size, false},
    {HTTP_GET, TL "/slru_page", h_slru_page, false},
    {HTTP_POST, TL "/compute", h_compute_attach, false},
    {HTTP_DELETE, TL "/compute", h_compute_detach, false},
};

#define NROUTES TARN_ARRAY_LEN(routes)

int
admin_status_for(tarn_rc rc)
{
    switch (rc) {
    case TARN_OK:
        return 200;
    case TARN_EINVAL:
    case TARN_EPROTO:
        return 400;
    case TARN_ENOTFOUND:
        return 404;
    case TARN_EEXIST:
    case TARN_ECONFLICT:
        return 409;
    case TARN_EPRECOND:
        return 412;
    case TARN_ETOOBIG:
        return 413;
    case TARN_EUNAVAIL:
    case TARN_EBUSY:
    case TARN_ENOSPC:
    case TARN_ENOMEM:
    case TARN_AGAIN:
        return 503;
    case TARN_EUNSUPPORTED:
        return 501;
    case TARN_EIO:
    case TARN_ECORRUPT:
        return 500;
    }
    return 500;
}

/* ---- replies ---------------------------------------------------------- */

static void
count(admin *a, size_t route_idx, int status)
{
    for (size_t i = 0; i < a->ncounters; i++) {
        if (a->counters[i].route == route_idx
            && a->counters[i].status == status) {
            a->counters[i].count++;
            return;
        }
    }
    if (a->ncounters < MAX_COUNTERS) {
        a->counters[a->ncounters].route = (uint16_t)route_idx;
        a->counters[a->ncounters].status = (uint16_t)status;
        a->counters[a->ncounters].count = 1;
        a->ncounters++;
    }
}

/* The route currently being served, for the counters. */
typedef struct served {
    admin *a;
    size_t route;
} served;

static void
reply_json(http_req *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (s == NULL) {
        http_reply_error(r, 503, "out of memory");
        return;
    }
    http_reply(r, status, "application/json", s, strlen(s));
    free(s);
}

static void
reply_err(admin *a, http_req *r, const tarn_err *err)
{
    int status = admin_status_for(err->code);

    if (status >= 500)
        tlog_error(a->log, http_req_logctx(r), "%s", err->msg);
    http_reply_error(r, status, err->msg);
}

/* ---- JSON encoders ---------------------------------------------------- */

static json_t *
j_id(const tarn_id *id)
{
    char buf[TARN_ID_STRLEN];
    return json_string(tarn_id_format(id, buf));
}

static json_t *
j_lsn(tarn_lsn lsn)
{
    char buf[TARN_LSN_STRLEN];
    return json_string(tarn_lsn_format(lsn, buf));
}

static json_t *
j_time(tarn_time_us t)
{
    char buf[64];
    return json_string(tarn_time_format(t, buf, sizeof(buf)));
}

static json_t *
j_name(const char *name)
{
    return name[0] ? json_string(name) : json_null();
}

static json_t *
tenant_json(const catalog_tenant *t)
{
    return json_pack("{s:o, s:o, s:o}", "id", j_id(&t->id), "name",
                     j_name(t->name), "created_at", j_time(t->created_at));
}

static json_t *
j_opt_time(tarn_time_us t)
{
    return t ? j_time(t) : json_null();
}

/* The compute object of a timeline detail, or null. */
static json_t *
compute_json(const walsvc_status *ws)
{
    if (ws == NULL
        || (!ws->attached && ws->error[0] == '\0'
            && strcmp(ws->receiver_state, "detached") == 0))
        return json_null();
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:b}", "conninfo",
        ws->conninfo, "state", ws->receiver_state, "error", ws->error,
        "warning", ws->warning, "compute_wal_end", j_lsn(ws->compute_wal_end),
        "last_message_at", j_opt_time(ws->last_message_at), "connected_at",
        j_opt_time(ws->connected_at), "bytes_received",
        (json_int_t)ws->bytes_received, "fsyncs", (json_int_t)ws->fsyncs,
        "reconnects", (json_int_t)ws->reconnects, "stalled", ws->stalled);
}

static json_t *
timeline_json(admin *a, const catalog_timeline *tl)
{
    walsvc_status ws;
    bool live =
        a->wal != NULL
        && walsvc_status_get(a->wal, &tl->tenant_id, &tl->timeline_id, &ws);
    bool has_wal = live ? ws.has_wal : tl->system_id != 0;
    char sysid[24];
    json_t *o;

    snprintf(sysid, sizeof(sysid), "%llu", (unsigned long long)tl->system_id);
    o = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
        "tenant_id", j_id(&tl->tenant_id), "timeline_id",
        j_id(&tl->timeline_id), "name", j_name(tl->name),
        "ancestor_timeline_id",
        tl->has_ancestor ? j_id(&tl->ancestor_id) : json_null(), "ancestor_lsn",
        tl->has_ancestor ? j_lsn(tl->ancestor_lsn) : json_null(), "state",
        catalog_tl_state_name(tl->state), "created_at", j_time(tl->created_at),
        "start_lsn", j_lsn(tl->start_lsn), "last_record_lsn",
        j_lsn(tl->last_record_lsn), "wal_flush_lsn",
        j_lsn(live ? ws.flush_lsn : tl->wal_flush_lsn), "disk_consistent_lsn",
        j_lsn(tl->disk_consistent_lsn), "remote_consistent_lsn",
        j_lsn(tl->remote_consistent_lsn), "pg_version", json_integer(15));
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "system_id",
                        has_wal ? json_string(sysid) : json_null());
    json_object_set_new(o, "wal_start_lsn",
                        has_wal ? j_lsn(live ? ws.wal_start : tl->wal_start_lsn)
                                : json_null());
    json_object_set_new(o, "wal_write_lsn",
                        has_wal ? j_lsn(live ? ws.write_lsn : tl->wal_flush_lsn)
                                : json_null());
    json_object_set_new(
        o, "prev_record_lsn",
        has_wal ? j_lsn(live ? ws.prev_record_lsn : tl->prev_record_lsn)
                : json_null());
    json_object_set_new(o, "compute", compute_json(live ? &ws : NULL));
    if (a->repo != NULL) {
        repo_tl_info ri;
        repo_timeline_info(a->repo, &tl->tenant_id, &tl->timeline_id, &ri);
        if (ri.loaded) {
            json_object_set_new(o, "last_record_lsn",
                                j_lsn(ri.last_record_lsn));
            json_object_set_new(o, "disk_consistent_lsn",
                                j_lsn(ri.disk_consistent_lsn));
            json_object_set_new(
                o, "storage",
                json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                          "s:b}",
                          "ingest", ri.ingest_state, "error", ri.error,
                          "ingest_lag_bytes", (json_int_t)ri.ingest_lag_bytes,
                          "records_ingested", (json_int_t)ri.records_ingested,
                          "delta_layers", (json_int_t)ri.delta_layers,
                          "image_layers", (json_int_t)ri.image_layers,
                          "layer_bytes", (json_int_t)ri.layer_bytes,
                          "frozen_layers", (json_int_t)ri.frozen_layers,
                          "open_layer_bytes", (json_int_t)ri.open_layer_bytes,
                          "trust_consistency_images",
                          ri.trust_consistency_images));
        }
    }
    return o;
}

/* ---- handlers --------------------------------------------------------- */

static void
h_status(admin *a, http_req *r, const route_args *args)
{
    double uptime = (double)(tarn_mono_us() - a->started_mono) / 1e6;

    (void)args;
    reply_json(r, 200,
               json_pack("{s:s, s:s, s:f, s:o, s:o}", "status", "ok", "version",
                         TARN_VERSION, "uptime_seconds", uptime, "started_at",
                         j_time(a->started_at), "page_listen",
                         a->page_listen[0] ? json_string(a->page_listen)
                                           : json_null()));
}

static void
metric_header(struct evbuffer *out, const char *name, const char *type,
              const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                        type);
}

static void
h_metrics(admin *a, http_req *r, const route_args *args)
{
    struct evbuffer *out = evbuffer_new();
    catalog_stats cs;
    size_t len;

    (void)args;
    if (out == NULL) {
        http_reply_error(r, 503, "out of memory");
        return;
    }
    metric_header(out, "tarn_build_info", "gauge",
                  "Build information; the value is always 1.");
    evbuffer_add_printf(out, "tarn_build_info{version=\"%s\"} 1\n",
                        TARN_VERSION);
    metric_header(out, "tarn_uptime_seconds", "gauge",
                  "Seconds since tarnd started.");
    evbuffer_add_printf(out, "tarn_uptime_seconds %.3f\n",
                        (double)(tarn_mono_us() - a->started_mono) / 1e6);
    metric_header(out, "tarn_http_requests_total", "counter",
                  "Admin API requests answered, by route and status.");
    for (size_t i = 0; i < a->ncounters; i++) {
        const counter *c = &a->counters[i];
        if (c->route < NROUTES)
            evbuffer_add_printf(
                out,
                "tarn_http_requests_total{method=\"%s\",route=\"%s\","
                "status=\"%u\"} %llu\n",
                http_method_name(routes[c->route].method),
                routes[c->route].pattern, c->status,
                (unsigned long long)c->count);
        else
            evbuffer_add_printf(out,
                                "tarn_http_requests_total{method=\"\","
                                "route=\"unmatched\",status=\"%u\"} %llu\n",
                                c->status, (unsigned long long)c->count);
    }
    catalog_get_stats(a->cat, &cs);
    metric_header(out, "tarn_catalog_transactions_total", "counter",
                  "Catalog (LMDB) transactions, by kind and outcome.");
    evbuffer_add_printf(
        out,
        "tarn_catalog_transactions_total{kind=\"write\",result=\"commit\"} "
        "%llu\n"
        "tarn_catalog_transactions_total{kind=\"write\",result=\"abort\"} "
        "%llu\n"
        "tarn_catalog_transactions_total{kind=\"read\",result=\"commit\"} "
        "%llu\n",
        (unsigned long long)cs.write_commits,
        (unsigned long long)cs.write_aborts, (unsigned long long)cs.read_txns);
    metric_header(out, "tarn_catalog_map_size_bytes", "gauge",
                  "Size of the catalog's LMDB map.");
    evbuffer_add_printf(out, "tarn_catalog_map_size_bytes %zu\n", cs.map_size);
    metric_header(out, "tarn_catalog_used_bytes", "gauge",
                  "Bytes of the catalog's LMDB map in use.");
    evbuffer_add_printf(out, "tarn_catalog_used_bytes %zu\n", cs.used_bytes);
    metric_header(out, "tarn_catalog_map_resizes_total", "counter",
                  "Times the catalog map grew because it was full.");
    evbuffer_add_printf(out, "tarn_catalog_map_resizes_total %llu\n",
                        (unsigned long long)cs.map_resizes);
    if (a->metrics != NULL)
        a->metrics(out, a->metrics_arg);
    len = evbuffer_get_length(out);
    http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8",
               evbuffer_pullup(out, -1), len);
    evbuffer_free(out);
}

static void
h_tenant_create(admin *a, http_req *r, const route_args *args)
{
    admin_tenant_create req;
    catalog_tenant t;
    const char *body;
    tarn_err err;
    size_t len;

    (void)args;
    body = http_req_body(r, &len);
    if (admin_parse_tenant_create(body, len, &req, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    memset(&t, 0, sizeof(t));
    if (req.has_id)
        t.id = req.id;
    else if (tarn_id_generate(&t.id, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    memcpy(t.name, req.name, sizeof(t.name));
    t.created_at = tarn_now_us();
    if (catalog_tenant_create(a->cat, &t, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    reply_json(r, 201, tenant_json(&t));
}

static void
h_tenant_list(admin *a, http_req *r, const route_args *args)
{
    catalog_tenant *ts = NULL;
    json_t *arr;
    tarn_err err;
    size_t n = 0;

    (void)args;
    if (catalog_tenant_list(a->cat, &ts, &n, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    arr = json_array();
    for (size_t i = 0; i < n && arr != NULL; i++)
        json_array_append_new(arr, tenant_json(&ts[i]));
    free(ts);
    reply_json(r, 200, arr);
}

static void
h_tenant_get(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline *tls = NULL;
    catalog_tenant t;
    json_t *o, *ids;
    tarn_err err;
    size_t n = 0;

    if (catalog_tenant_get(a->cat, &args->tenant, &t, &err) != TARN_OK
        || catalog_timeline_list(a->cat, &args->tenant, &tls, &n, &err)
               != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    o = tenant_json(&t);
    ids = json_array();
    for (size_t i = 0; i < n && ids != NULL; i++)
        json_array_append_new(ids, j_id(&tls[i].timeline_id));
    free(tls);
    json_object_set_new(o, "timelines", ids);
    reply_json(r, 200, o);
}

static void
h_tenant_delete(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline *tls = NULL;
    char idbuf[TARN_ID_STRLEN];
    tarn_err err;
    size_t n = 0;

    if (catalog_timeline_list(a->cat, &args->tenant, &tls, &n, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (tls[i].state == CATALOG_TL_CREATING) {
            tarn_err_set(&err, TARN_ECONFLICT,
                         "timeline %s is still being created; try again "
                         "when its creation has answered",
                         tarn_id_format(&tls[i].timeline_id, idbuf));
            free(tls);
            reply_err(a, r, &err);
            return;
        }
        if (walsvc_attached(a->wal, &args->tenant, &tls[i].timeline_id)) {
            tarn_err_set(&err, TARN_ECONFLICT,
                         "timeline %s has a compute attached; detach it "
                         "before deleting the tenant",
                         tarn_id_format(&tls[i].timeline_id, idbuf));
            free(tls);
            reply_err(a, r, &err);
            return;
        }
    }
    free(tls);
    if (catalog_tenant_delete(a->cat, &args->tenant, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    repo_tenant_forget(a->repo, &args->tenant);
    walsvc_forget_tenant(a->wal, &args->tenant);
    reply_json(r, 200, json_pack("{s:o}", "id", j_id(&args->tenant)));
}

/* A bootstrap or import answers when its data is in. */
typedef struct create_wait {
    admin *a;
    http_req *r;
    tarn_id tenant, timeline;
} create_wait;

static void
create_done(void *arg, tarn_rc rc, const char *msg)
{
    create_wait *w = arg;
    catalog_timeline tl;
    tarn_err err;

    if (rc != TARN_OK) {
        tarn_err_set(&err, rc, "%s", msg);
        reply_err(w->a, w->r, &err);
    } else if (catalog_timeline_get(w->a->cat, &w->tenant, &w->timeline, &tl,
                                    &err)
               != TARN_OK) {
        reply_err(w->a, w->r, &err);
    } else {
        reply_json(w->r, 201, timeline_json(w->a, &tl));
    }
    free(w);
}

/* ancestor_start_time: the LSN of the last commit at or before it. */
static bool
lsn_for_time(admin *a, http_req *r, const tarn_id *tenant,
             const tarn_id *ancestor, tarn_time_us t, tarn_lsn *out)
{
    repo_ts_result res;
    char tb[64], idbuf[TARN_ID_STRLEN];
    tarn_err err;

    if (repo_lsn_by_timestamp(a->repo, tenant, ancestor, t, &res, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return false;
    }
    if (strcmp(res.kind, "present") != 0 && strcmp(res.kind, "future") != 0) {
        tarn_err_set(&err, TARN_EPRECOND,
                     "ancestor timeline %s has no commit records at or "
                     "before %s (%s)",
                     tarn_id_format(ancestor, idbuf),
                     tarn_time_format(t, tb, sizeof(tb)),
                     strcmp(res.kind, "past") == 0 ? "its first commit is later"
                                                   : "it has no commits");
        reply_err(a, r, &err);
        return false;
    }
    *out = res.lsn;
    return true;
}

static void
h_timeline_create(admin *a, http_req *r, const route_args *args)
{
    admin_timeline_create req;
    catalog_timeline_new n;
    catalog_timeline tl;
    const char *body;
    tarn_err err, e2;
    size_t len;

    body = http_req_body(r, &len);
    if (admin_parse_timeline_create(body, len, &req, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    memset(&n, 0, sizeof(n));
    n.tenant_id = args->tenant;
    if (req.has_id)
        n.timeline_id = req.id;
    else if (tarn_id_generate(&n.timeline_id, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    n.name = req.name;
    n.has_ancestor = req.has_ancestor;
    n.ancestor_id = req.ancestor;
    n.has_ancestor_lsn = req.has_lsn;
    n.ancestor_lsn = req.lsn;
    n.created_at = tarn_now_us();
    n.trust_consistency_images = !req.has_trust ? CATALOG_DEFAULT
                                 : req.trust    ? CATALOG_ON
                                                : CATALOG_OFF;
    if (req.has_ancestor) {
        repo_tl_info info;
        repo_timeline_info(a->repo, &args->tenant, &req.ancestor, &info);
        if (info.loaded)
            n.ancestor_last_lsn = info.last_record_lsn;
        if (req.has_time) {
            catalog_timeline anc;
            if (catalog_timeline_get(a->cat, &args->tenant, &req.ancestor, &anc,
                                     &err)
                != TARN_OK) {
                reply_err(a, r, &err);
                return;
            }
            if (!lsn_for_time(a, r, &args->tenant, &req.ancestor, req.time,
                              &n.ancestor_lsn))
                return;
            n.has_ancestor_lsn = true;
        }
    } else if (req.bootstrap != ADMIN_BOOTSTRAP_NONE) {
        n.creating = true;
    }
    if (catalog_timeline_create(a->cat, &n, &tl, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    if (n.creating) {
        create_wait *w = calloc(1, sizeof(*w));
        if (w == NULL) {
            tarn_err_set(&err, TARN_ENOMEM, "out of memory");
        } else {
            w->a = a;
            w->r = r;
            w->tenant = tl.tenant_id;
            w->timeline = tl.timeline_id;
            if (repo_timeline_bootstrap(a->repo, &tl,
                                        req.bootstrap == ADMIN_BOOTSTRAP_IMPORT
                                            ? req.import_pgdata
                                            : NULL,
                                        create_done, w, &err)
                == TARN_OK)
                return; /* answered when the data is in */
            free(w);
        }
        if (catalog_timeline_delete(a->cat, &tl.tenant_id, &tl.timeline_id, &e2)
            != TARN_OK)
            tlog_error(a->log, http_req_logctx(r), "%s", e2.msg);
        reply_err(a, r, &err);
        return;
    }
    if (repo_timeline_add(a->repo, &tl, &err) != TARN_OK) {
        if (catalog_timeline_delete(a->cat, &tl.tenant_id, &tl.timeline_id, &e2)
            != TARN_OK)
            tlog_error(a->log, http_req_logctx(r), "%s", e2.msg);
        reply_err(a, r, &err);
        return;
    }
    reply_json(r, 201, timeline_json(a, &tl));
}

static void
h_timeline_list(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline *tls = NULL;
    json_t *arr;
    tarn_err err;
    size_t n = 0;

    if (catalog_timeline_list(a->cat, &args->tenant, &tls, &n, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    arr = json_array();
    for (size_t i = 0; i < n && arr != NULL; i++)
        json_array_append_new(arr, timeline_json(a, &tls[i]));
    free(tls);
    reply_json(r, 200, arr);
}

static void
h_timeline_get(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline tl;
    tarn_err err;

    if (catalog_timeline_get(a->cat, &args->tenant, &args->timeline, &tl, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    reply_json(r, 200, timeline_json(a, &tl));
}

static void
h_timeline_delete(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline tl;
    tarn_err err;

    if (catalog_timeline_get(a->cat, &args->tenant, &args->timeline, &tl, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    if (tl.state == CATALOG_TL_CREATING) {
        tarn_err_set(&err, TARN_ECONFLICT,
                     "the timeline is still being created; try again when "
                     "its creation has answered");
        reply_err(a, r, &err);
        return;
    }
    if (walsvc_attached(a->wal, &args->tenant, &args->timeline)) {
        walsvc_status ws;
        bool known =
            walsvc_status_get(a->wal, &args->tenant, &args->timeline, &ws)
            && ws.conninfo[0] != '\0';
        tarn_err_set(&err, TARN_ECONFLICT,
                     "a compute is attached to this timeline%s%s%s; stop it "
                     "(tarn endpoint stop) or detach it first (DELETE "
                     ".../compute)",
                     known ? " (" : "", known ? ws.conninfo : "",
                     known ? ")" : "");
        reply_err(a, r, &err);
        return;
    }
    if (catalog_timeline_delete(a->cat, &args->tenant, &args->timeline, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    repo_timeline_forget(a->repo, &args->tenant, &args->timeline);
    walsvc_forget(a->wal, &args->tenant, &args->timeline);
    reply_json(r, 200,
               json_pack("{s:o, s:o}", "tenant_id", j_id(&args->tenant),
                         "timeline_id", j_id(&args->timeline)));
}

/*
 * The data routes act on a timeline's ingested WAL and layers.  The
 * timeline must exist in the catalog; the page server then applies the
 * LSN rules and says what is missing (412 while a timeline has no data).
 */
static bool
need_timeline(admin *a, http_req *r, const route_args *args,
              catalog_timeline *tl)
{
    char idbuf[TARN_ID_STRLEN];
    tarn_err err;

    if (catalog_timeline_get(a->cat, &args->tenant, &args->timeline, tl, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return false;
    }
    if (tl->state == CATALOG_TL_CREATING) {
        tarn_err_set(&err, TARN_EPRECOND, "timeline %s is still being created",
                     tarn_id_format(&tl->timeline_id, idbuf));
        reply_err(a, r, &err);
        return false;
    }
    return true;
}

/* Read query parameter @p key; on failure answer 400 and return false. */
static bool
query_param(admin *a, http_req *r, const char *key, bool required, char *out,
            size_t cap, bool *present)
{
    const char *q = http_req_query(r);
    tarn_err err;
    tarn_rc rc = http_query_get(q, strlen(q), key, out, cap);

    *present = rc == TARN_OK;
    if (rc == TARN_ENOTFOUND && !required)
        return true;
    if (rc == TARN_OK)
        return true;
    if (rc == TARN_ENOTFOUND)
        tarn_err_set(&err, TARN_EINVAL, "missing query parameter '%s'", key);
    else
        tarn_err_set(&err, TARN_EINVAL,
                     "query parameter '%s' is malformed or too long", key);
    reply_err(a, r, &err);
    return false;
}

static bool
query_u32(admin *a, http_req *r, const char *key, uint32_t *out)
{
    char buf[32], *end;
    unsigned long long v;
    bool present;
    tarn_err err;

    if (!query_param(a, r, key, true, buf, sizeof(buf), &present))
        return false;
    v = strtoull(buf, &end, 10);
    if (buf[0] < '0' || buf[0] > '9' || *end != '\0' || v > UINT32_MAX) {
        tarn_err_set(&err, TARN_EINVAL,
                     "query parameter '%s' must be an integer from 0 to "
                     "4294967295, not '%s'",
                     key, buf);
        reply_err(a, r, &err);
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* The optional lsn parameter: absent means the latest. */
static bool
query_lsn(admin *a, http_req *r, bool *latest, tarn_lsn *lsn)
{
    char buf[32];
    bool present;
    tarn_err err;

    if (!query_param(a, r, "lsn", false, buf, sizeof(buf), &present))
        return false;
    *latest = !present || strcmp(buf, "latest") == 0;
    if (!*latest && tarn_lsn_parse(buf, lsn, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return false;
    }
    return true;
}

/* spc, db, rel, fork (0-3 or main/fsm/vm/init). */
static bool
query_rel(admin *a, http_req *r, repo_rel *rel)
{
    static const char *const forks[] = {"main", "fsm", "vm", "init"};
    char fork[16];
    bool present;
    tarn_err err;

    if (!query_u32(a, r, "spc", &rel->spc) || !query_u32(a, r, "db", &rel->db)
        || !query_u32(a, r, "rel", &rel->rel))
        return false;
    if (!query_param(a, r, "fork", true, fork, sizeof(fork), &present))
        return false;
    for (uint8_t i = 0; i < 4; i++) {
        char num[2] = {(char)('0' + i), '\0'};
        if (strcmp(fork, forks[i]) == 0 || strcmp(fork, num) == 0) {
            rel->fork = i;
            return true;
        }
    }
    tarn_err_set(&err, TARN_EINVAL,
                 "query parameter 'fork' must be 0-3 or main, fsm, vm, "
                 "init, not '%s'",
                 fork);
    reply_err(a, r, &err);
    return false;
}

static void
h_lsn_by_timestamp(admin *a, http_req *r, const route_args *args)
{
    char buf[64];
    bool present;
    tarn_time_us t;
    catalog_timeline tl;
    repo_ts_result res;
    tarn_err err;

    if (!query_param(a, r, "timestamp", true, buf, sizeof(buf), &present))
        return;
    if (tarn_time_parse(buf, &t, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    if (!need_timeline(a, r, args, &tl))
        return;
    if (repo_lsn_by_timestamp(a->repo, &args->tenant, &args->timeline, t, &res,
                              &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    reply_json(
        r, 200,
        json_pack("{s:o, s:s}", "lsn", j_lsn(res.lsn), "kind", res.kind));
}

/* compact and do_gc take no body yet, or an empty object. */
static bool
empty_body(admin *a, http_req *r)
{
    const char *body;
    tarn_err err;
    size_t len;
    json_error_t jerr;
    json_t *j;

    body = http_req_body(r, &len);
    while (len > 0 && strchr(" \t\r\n", body[len - 1]) != NULL)
        len--;
    if (len == 0)
        return true;
    j = json_loadb(body, len, 0, &jerr);
    if (j == NULL || !json_is_object(j) || json_object_size(j) != 0) {
        if (j == NULL)
            tarn_err_set(&err, TARN_EINVAL,
                         "malformed JSON at line %d column %d: %s", jerr.line,
                         jerr.column, jerr.text);
        else
            tarn_err_set(&err, TARN_EINVAL,
                         "this route takes no body, or an empty object {}");
        json_decref(j);
        reply_err(a, r, &err);
        return false;
    }
    json_decref(j);
    return true;
}

typedef struct ckpt_req {
    admin *a;
    http_req *r;
} ckpt_req;

static void
checkpoint_done(void *arg, tarn_rc rc, const char *msg,
                const repo_ckpt_result *res)
{
    ckpt_req *w = arg;
    tarn_err err;

    if (rc != TARN_OK) {
        tarn_err_set(&err, rc, "%s", msg);
        reply_err(w->a, w->r, &err);
    } else {
        reply_json(w->r, 200,
                   json_pack("{s:o, s:I, s:I, s:s}", "disk_consistent_lsn",
                             j_lsn(res->lsn), "image_layers_created",
                             (json_int_t)res->image_layers,
                             "partitions_skipped",
                             (json_int_t)res->partitions_skipped,
                             "skipped_reason", res->skipped_reason));
    }
    free(w);
}

static void
h_checkpoint(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline tl;
    admin_checkpoint body;
    ckpt_req *w;
    const char *text;
    size_t len;
    tarn_err err;

    text = http_req_body(r, &len);
    if (admin_parse_checkpoint(text, len, &body, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    if (!need_timeline(a, r, args, &tl))
        return;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        http_reply_error(r, 503, "out of memory");
        return;
    }
    w->a = a;
    w->r = r;
    if (repo_checkpoint(a->repo, &args->tenant, &args->timeline, body.images,
                        checkpoint_done, w, &err)
        != TARN_OK) {
        free(w);
        reply_err(a, r, &err);
    }
}

static void
not_yet(admin *a, http_req *r, const route_args *args, const char *what)
{
    catalog_timeline tl;
    tarn_err err;

    if (!empty_body(a, r) || !need_timeline(a, r, args, &tl))
        return;
    tarn_err_set(&err, TARN_EUNSUPPORTED,
                 "%s is not implemented in this version of tarnd", what);
    reply_err(a, r, &err);
}

static void
h_compact(admin *a, http_req *r, const route_args *args)
{
    not_yet(a, r, args, "compaction");
}

static void
h_do_gc(admin *a, http_req *r, const route_args *args)
{
    not_yet(a, r, args, "garbage collection");
}

/* A page read that may finish on the worker pool (a deep history). */
typedef struct getpage_wait {
    admin *a;
    http_req *r;
    uint8_t page[8192];
} getpage_wait;

static void
getpage_reply(getpage_wait *w, tarn_rc rc, const char *msg, tarn_lsn at)
{
    char lsnbuf[TARN_LSN_STRLEN];
    tarn_err err;

    if (rc != TARN_OK) {
        tarn_err_set(&err, rc, "%s", msg);
        reply_err(w->a, w->r, &err);
        return;
    }
    http_req_add_header(w->r, "X-Tarn-Lsn", tarn_lsn_format(at, lsnbuf));
    http_reply(w->r, 200, "application/octet-stream", (const char *)w->page,
               sizeof(w->page));
}

static void
getpage_done(void *arg, tarn_rc rc, const char *msg, tarn_lsn at)
{
    getpage_wait *w = arg;

    getpage_reply(w, rc, msg, at);
    free(w);
}

static void
h_getpage(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline tl;
    getpage_wait *w;
    repo_rel rel;
    uint32_t blk;
    bool latest, pending;
    tarn_lsn lsn = 0, at = 0;
    tarn_err err;
    tarn_rc rc;

    if (!query_rel(a, r, &rel) || !query_u32(a, r, "blk", &blk)
        || !query_lsn(a, r, &latest, &lsn) || !need_timeline(a, r, args, &tl))
        return;
    if ((w = malloc(sizeof(*w))) == NULL) {
        tarn_err_set(&err, TARN_ENOMEM, "out of memory");
        reply_err(a, r, &err);
        return;
    }
    w->a = a, w->r = r;
    rc = repo_get_page_async(a->repo, &args->tenant, &args->timeline, &rel, blk,
                             latest, lsn, w->page, &at, &pending, getpage_done,
                             w, &err);
    if (rc == TARN_OK && pending)
        return; /* answered by getpage_done */
    getpage_reply(w, rc, err.msg, at);
    free(w);
}

static void
h_rel_size(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline tl;
    repo_rel rel;
    bool latest, exists;
    uint32_t n;
    tarn_lsn lsn = 0, at;
    tarn_err err;

    if (!query_rel(a, r, &rel) || !query_lsn(a, r, &latest, &lsn)
        || !need_timeline(a, r, args, &tl))
        return;
    if (repo_rel_size(a->repo, &args->tenant, &args->timeline, &rel, latest,
                      lsn, &exists, &n, &at, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    reply_json(r, 200,
               json_pack("{s:b, s:I, s:o}", "exists", exists, "nblocks",
                         (json_int_t)n, "lsn", j_lsn(at)));
}

static void
h_db_size(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline tl;
    uint32_t spc, db;
    bool latest;
    uint64_t bytes;
    tarn_lsn lsn = 0, at;
    tarn_err err;

    if (!query_u32(a, r, "spc", &spc) || !query_u32(a, r, "db", &db)
        || !query_lsn(a, r, &latest, &lsn) || !need_timeline(a, r, args, &tl))
        return;
    if (repo_db_size(a->repo, &args->tenant, &args->timeline, spc, db, latest,
                     lsn, &bytes, &at, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    reply_json(
        r, 200,
        json_pack("{s:I, s:o}", "bytes", (json_int_t)bytes, "lsn", j_lsn(at)));
}

static void
h_slru_page(admin *a, http_req *r, const route_args *args)
{
    static const char *const kinds[] = {"pg_xact", "pg_multixact/members",
                                        "pg_multixact/offsets"};
    uint8_t page[8192];
    char kind[32], lsnbuf[TARN_LSN_STRLEN];
    catalog_timeline tl;
    uint32_t segno, blk;
    bool latest, present;
    int k = -1;
    tarn_lsn lsn = 0, at;
    tarn_err err;

    if (!query_param(a, r, "kind", true, kind, sizeof(kind), &present))
        return;
    for (int i = 0; i < 3; i++)
        if (strcmp(kind, kinds[i]) == 0)
            k = i;
    if (k < 0) {
        tarn_err_set(&err, TARN_EINVAL,
                     "query parameter 'kind' must be pg_xact, "
                     "pg_multixact/members or pg_multixact/offsets");
        reply_err(a, r, &err);
        return;
    }
    if (!query_u32(a, r, "segno", &segno) || !query_u32(a, r, "blk", &blk)
        || !query_lsn(a, r, &latest, &lsn) || !need_timeline(a, r, args, &tl))
        return;
    if (repo_get_slru_page(a->repo, &args->tenant, &args->timeline, k, segno,
                           blk, latest, lsn, page, &at, &err)
        != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    http_req_add_header(r, "X-Tarn-Lsn", tarn_lsn_format(at, lsnbuf));
    http_reply(r, 200, "application/octet-stream", (const char *)page,
               sizeof(page));
}

/* An attach answers when the compute has been checked. */
typedef struct attach_wait {
    admin *a;
    http_req *r;
    route_args args;
} attach_wait;

static void
attach_done(void *arg, tarn_rc rc, const char *msg)
{
    attach_wait *w = arg;
    catalog_timeline tl;
    tarn_err err;

    if (rc != TARN_OK) {
        tarn_err_set(&err, rc, "%s", msg);
        reply_err(w->a, w->r, &err);
    } else if (catalog_timeline_get(w->a->cat, &w->args.tenant,
                                    &w->args.timeline, &tl, &err)
               != TARN_OK) {
        reply_err(w->a, w->r, &err);
    } else {
        reply_json(w->r, 200, timeline_json(w->a, &tl));
    }
    free(w);
}

static void
h_compute_attach(admin *a, http_req *r, const route_args *args)
{
    admin_compute_attach req;
    attach_wait *w;
    const char *body;
    tarn_err err;
    size_t len;

    body = http_req_body(r, &len);
    if (admin_parse_compute_attach(body, len, &req, &err) != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    {
        catalog_timeline tl;
        if (!need_timeline(a, r, args, &tl))
            return;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        http_reply_error(r, 503, "out of memory");
        return;
    }
    w->a = a;
    w->r = r;
    w->args = *args;
    if (walsvc_attach(a->wal, &args->tenant, &args->timeline, req.conninfo,
                      req.has_start, req.start, attach_done, w, &err)
        != TARN_OK) {
        free(w);
        reply_err(a, r, &err);
    }
}

static void
h_compute_detach(admin *a, http_req *r, const route_args *args)
{
    catalog_timeline tl;
    tarn_err err;

    if (catalog_timeline_get(a->cat, &args->tenant, &args->timeline, &tl, &err)
            != TARN_OK
        || walsvc_detach(a->wal, &args->tenant, &args->timeline, &err)
               != TARN_OK
        || catalog_timeline_get(a->cat, &args->tenant, &args->timeline, &tl,
                                &err)
               != TARN_OK) {
        reply_err(a, r, &err);
        return;
    }
    reply_json(r, 200, timeline_json(a, &tl));
}

/* ---- routing ---------------------------------------------------------- */

typedef enum match_result {
    M_NONE,  /* the path has another shape */
    M_MATCH, /* the shape fits and the ids parse */
    M_BADID  /* the shape fits but an id does not parse */
} match_result;

/* The id slot a pattern segment ("/{t}", "/{tl}") fills, or NULL. */
static tarn_id *
placeholder(const char *seg, size_t len, route_args *args, const char **what)
{
    if (len == 4 && strncmp(seg, "/{t}", 4) == 0) {
        *what = "tenant";
        return &args->tenant;
    }
    if (len == 5 && strncmp(seg, "/{tl}", 5) == 0) {
        *what = "timeline";
        return &args->timeline;
    }
    return NULL;
}

static match_result
match(const char *pattern, const char *path, route_args *args, tarn_err *err)
{
    const char *p = pattern, *s = path;
    match_result res = M_MATCH;

    while (*p != '\0' && *s != '\0') {
        size_t plen = strcspn(p + 1, "/") + 1, slen = strcspn(s + 1, "/") + 1;
        const char *what;
        tarn_id *slot;

        if (*p != '/' || *s != '/')
            return M_NONE;
        slot = placeholder(p, plen, args, &what);
        if (slot != NULL) {
            char seg[64];
            tarn_err e;
            if (slen == 1)
                return M_NONE;
            snprintf(seg, sizeof(seg), "%.*s", (int)(slen - 1), s + 1);
            /* Report the first bad id; keep matching the shape. */
            if (res == M_MATCH && tarn_id_parse(seg, slot, &e) != TARN_OK) {
                tarn_err_set(err, TARN_EINVAL,
                             "invalid %s id '%.40s' (expected 32 hex digits)",
                             what, seg);
                res = M_BADID;
            }
        } else if (plen != slen || strncmp(p, s, plen) != 0) {
            return M_NONE;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && *s == '\0' ? res : M_NONE;
}

static bool
auth_ok(admin *a, http_req *r, tarn_err *err)
{
    const char *h = http_req_header(r, "Authorization");
    uint8_t digest[SHA256_DIGEST_LENGTH];

    if (!a->auth)
        return true;
    if (h == NULL) {
        tarn_err_set(err, TARN_EINVAL,
                     "authentication required: send 'Authorization: Bearer "
                     "<token>'");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        tarn_err_set(err, TARN_EINVAL,
                     "unsupported Authorization scheme; expected Bearer");
        return false;
    }
    h += 7;
    while (*h == ' ')
        h++;
    /* Hash, then compare in constant time: no length or prefix leaks. */
    SHA256((const unsigned char *)h, strlen(h), digest);
    if (CRYPTO_memcmp(digest, a->token_hash, sizeof(digest)) != 0) {
        tarn_err_set(err, TARN_EINVAL, "invalid bearer token");
        return false;
    }
    return true;
}

void
admin_on_reply(http_req *r, int status, void *arg)
{
    count(arg, (size_t)http_req_get_tag(r), status);
}

void
admin_handle(http_req *r, void *arg)
{
    admin *a = arg;
    char path[512], allow[128] = "";
    const char *raw = http_req_path(r);
    size_t len = strlen(raw), matched = NROUTES;
    bool shape = false;
    route_args args;
    tarn_err err, iderr;
    match_result idres = M_MATCH;

    http_req_set_tag(r, (int)NROUTES);
    if (len >= sizeof(path)) {
        http_reply_error(r, 404, "no such route (path too long)");
        return;
    }
    memcpy(path, raw, len + 1);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
    memset(&args, 0, sizeof(args));
    for (size_t i = 0; i < NROUTES; i++) {
        route_args tmp;
        tarn_err e;
        match_result m = match(routes[i].pattern, path, &tmp, &e);
        if (m == M_NONE)
            continue;
        shape = true;
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
                 http_method_name(routes[i].method));
        if (routes[i].method == http_req_method(r) && matched == NROUTES) {
            matched = i;
            args = tmp;
            idres = m;
            iderr = e;
        }
    }
    if (!shape) {
        char msg[1024];
        size_t used = (size_t)snprintf(
            msg, sizeof(msg), "no route for %s %.100s; routes:",
            http_method_name(http_req_method(r)), path);
        for (size_t i = 0; i < NROUTES && used < sizeof(msg); i++)
            used += (size_t)snprintf(
                msg + used, sizeof(msg) - used, "%s %s %s", i ? "," : "",
                http_method_name(routes[i].method), routes[i].pattern);
        http_reply_error(r, 404, msg);
        return;
    }
    if (matched == NROUTES) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "method %s is not allowed on %.100s; "
                 "allowed: %s",
                 http_method_name(http_req_method(r)), path, allow);
        http_req_add_header(r, "Allow", allow);
        http_reply_error(r, 405, msg);
        return;
    }
    http_req_set_tag(r, (int)matched);
    if (!routes[matched].noauth && !auth_ok(a, r, &err)) {
        http_req_add_header(r, "WWW-Authenticate", "Bearer");
        http_reply_error(r, 401, err.msg);
        return;
    }
    if (idres == M_BADID) {
        reply_err(a, r, &iderr);
        return;
    }
    routes[matched].fn(a, r, &args);
}

/* ---- life cycle ------------------------------------------------------- */

tarn_rc
admin_set_token(admin *a, const char *token, tarn_err *err)
{
    (void)err;
    a->auth = token != NULL && token[0] != '\0';
    if (a->auth)
        SHA256((const unsigned char *)token, strlen(token), a->token_hash);
    else
        memset(a->token_hash, 0, sizeof(a->token_hash));
    return TARN_OK;
}

tarn_rc
admin_create(const admin_opts *o, admin **out, tarn_err *err)
{
    admin *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    a->cat = o->cat;
    a->wal = o->wal;
    a->repo = o->repo;
    a->log = o->log;
    a->metrics = o->metrics;
    a->metrics_arg = o->metrics_arg;
    a->started_mono = tarn_mono_us();
    a->started_at = tarn_now_us();
    if (o->page_listen != NULL)
        snprintf(a->page_listen, sizeof(a->page_listen), "%s", o->page_listen);
    admin_set_token(a, o->auth_token, err);
    *out = a;
    return TARN_OK;
}

void
admin_destroy(admin *a)
{
    free(a);
}
