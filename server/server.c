/*
 * server.c - start-up, signals, reload and graceful stop of tarnd.
 *
 * Start-up order matters: the configuration first (so a bad value costs
 * nothing), then the log, then the data directory lock (so a second tarnd
 * never opens the catalog), then the catalog and its verification, then
 * the worker pool and, last, the listeners, so that nothing is accepted
 * before everything behind it is ready.
 *
 * Stopping runs the other way.  SIGTERM closes the listeners and refuses
 * new jobs, then a timer waits for open requests and in-flight worker jobs
 * to finish (bounded by shutdown_timeout) before the loop exits and the
 * modules are freed: worker pool first (its done callbacks may still
 * touch the WAL service and the page server and answer requests), then
 * the WAL service (which saves its positions and may tell the page
 * server), then the page server, then HTTP, then the catalog, then the
 * lock.
 */
#include "server/server.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "net/admin.h"
#include "net/http.h"
#include "net/pagesvc.h"
#include "net/walsvc.h"
#include "server/core/config.h"
#include "server/core/log.h"
#include "server/core/types.h"
#include "server/core/version.h"
#include "server/core/wpool.h"
#include "storage/datadir.h"
#include "storage/repo.h"

#define ADMIN_MAX_BODY (1024 * 1024)
#define ADMIN_MAX_HEAD (16 * 1024)

struct tarn_server {
    struct event_base *base;
    tarn_config cfg;
    const char *config_path;
    const char *const *sets;
    size_t nsets;
    tlog *log;
    datadir *dir;
    catalog *cat;
    wpool *pool;
    repo *repo;
    walsvc *wal;
    admin *admin;
    http_server *http;
    pagesvc *page;
    struct event *sig_term, *sig_int, *sig_hup;
    struct event *stop_timer;
    bool stopping;
    int64_t stop_deadline_us;
    int exit_code;
};

static long
resident_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* The admin's hook: metrics of the modules the admin does not own. */
static void
server_metrics(struct evbuffer *out, void *arg)
{
    tarn_server *s = arg;
    http_server_stats hs;
    wpool_stats ws;

    wpool_get_stats(s->pool, &ws);
    http_server_get_stats(s->http, &hs);
    evbuffer_add_printf(
        out,
        "# HELP tarn_worker_jobs_total Jobs run by the worker pool.\n"
        "# TYPE tarn_worker_jobs_total counter\n"
        "tarn_worker_jobs_total %llu\n"
        "# HELP tarn_worker_queue_depth Jobs waiting for a worker.\n"
        "# TYPE tarn_worker_queue_depth gauge\n"
        "tarn_worker_queue_depth %zu\n"
        "# HELP tarn_worker_threads Threads in the worker pool.\n"
        "# TYPE tarn_worker_threads gauge\n"
        "tarn_worker_threads %d\n"
        "# HELP tarn_http_connections_total Admin HTTP connections.\n"
        "# TYPE tarn_http_connections_total counter\n"
        "tarn_http_connections_total{result=\"accepted\"} %llu\n"
        "tarn_http_connections_total{result=\"rejected\"} %llu\n"
        "# HELP tarn_http_connections_open Admin HTTP connections open now.\n"
        "# TYPE tarn_http_connections_open gauge\n"
        "tarn_http_connections_open %d\n"
        "# HELP tarn_http_protocol_errors_total Requests refused before "
        "routing (malformed, too large).\n"
        "# TYPE tarn_http_protocol_errors_total counter\n"
        "tarn_http_protocol_errors_total %llu\n"
        "# HELP tarn_process_resident_memory_bytes Resident set size.\n"
        "# TYPE tarn_process_resident_memory_bytes gauge\n"
        "tarn_process_resident_memory_bytes %ld\n",
        (unsigned long long)ws.completed, ws.queued, ws.threads,
        (unsigned long long)hs.conns_accepted,
        (unsigned long long)hs.conns_rejected, hs.conns_open,
        (unsigned long long)hs.protocol_errors, resident_bytes());
    walsvc_metrics(s->wal, out);
    repo_metrics(s->repo, out);
    if (s->page != NULL)
        pagesvc_metrics(s->page, out);
}

/* ---- wiring the WAL service and the page server ------------------------ */

static tarn_rc
hook_wal_read(void *arg, const tarn_id *tenant, const tarn_id *tl, tarn_lsn lsn,
              uint8_t *buf, size_t len, tarn_err *err)
{
    tarn_server *s = arg;

    if (s->wal == NULL)
        return tarn_err_set(err, TARN_EUNAVAIL, "the WAL service is stopped");
    return walsvc_read(s->wal, tenant, tl, lsn, buf, len, err);
}

static void
hook_wal_trim(void *arg, const tarn_id *tenant, const tarn_id *tl,
              tarn_lsn keep_from)
{
    tarn_server *s = arg;

    if (s->wal != NULL)
        walsvc_trim(s->wal, tenant, tl, keep_from);
}

static tarn_rc
hook_wal_adopt(void *arg, const tarn_id *tenant, const tarn_id *tl,
               tarn_err *err)
{
    tarn_server *s = arg;

    if (s->wal == NULL)
        return tarn_err_set(err, TARN_EUNAVAIL, "the WAL service is stopped");
    return walsvc_adopt(s->wal, tenant, tl, err);
}

static void
hook_wal_flushed(void *arg, const tarn_id *tenant, const tarn_id *tl,
                 tarn_lsn flush, tarn_lsn wal_start, uint32_t seg_size,
                 uint64_t sysid)
{
    tarn_server *s = arg;
    repo_wal_info wi = {flush, wal_start, seg_size, sysid};

    if (s->repo != NULL)
        repo_wal_flushed(s->repo, tenant, tl, &wi);
}

static void
hook_lsn_advanced(void *arg, const tarn_id *tenant, const tarn_id *tl,
                  tarn_lsn last)
{
    tarn_server *s = arg;

    if (s->page != NULL)
        pagesvc_lsn_advanced(s->page, tenant, tl, last);
}

static void
on_stop_tick(evutil_socket_t fd, short what, void *arg)
{
    tarn_server *s = arg;
    int conns = http_server_open_conns(s->http) + pagesvc_open_conns(s->page);
    size_t jobs = wpool_inflight(s->pool);

    (void)fd;
    (void)what;
    if (conns == 0 && jobs == 0) {
        tlog_info(s->log, NULL, "stopped cleanly");
        event_base_loopexit(s->base, NULL);
        return;
    }
    if (tarn_mono_us() >= s->stop_deadline_us) {
        tlog_warn(s->log, NULL,
                  "shutdown_timeout passed with %d connection(s) and %zu "
                  "job(s) open; exiting anyway",
                  conns, jobs);
        event_base_loopexit(s->base, NULL);
    }
}

static void
begin_stop(tarn_server *s, const char *why)
{
    struct timeval tick = {0, 50 * 1000};

    if (s->stopping) {
        tlog_warn(s->log, NULL, "%s again: exiting now", why);
        event_base_loopbreak(s->base);
        return;
    }
    s->stopping = true;
    tlog_info(s->log, NULL,
              "%s: stopping (no new requests; finishing %d connection(s), "
              "%zu job(s))",
              why,
              http_server_open_conns(s->http) + pagesvc_open_conns(s->page),
              wpool_inflight(s->pool));
    http_server_shutdown(s->http);
    pagesvc_shutdown(s->page);
    walsvc_stop(s->wal);
    repo_stop(s->repo);
    wpool_close(s->pool);
    s->stop_deadline_us = tarn_mono_us() + s->cfg.shutdown_timeout_ms * 1000;
    s->stop_timer = event_new(s->base, -1, EV_PERSIST, on_stop_tick, s);
    if (s->stop_timer == NULL || event_add(s->stop_timer, &tick) != 0)
        event_base_loopexit(s->base, NULL);
    else
        on_stop_tick(-1, 0, s);
}

/* Apply the reloadable keys of @p next; warn about the others. */
static void
reload(tarn_server *s)
{
    tarn_config next;
    tarn_err err;
    const cfg_key *keys;
    size_t n;

    if (cfg_load(&next, s->config_path, s->sets, s->nsets, &err) != TARN_OK) {
        tlog_error(s->log, NULL,
                   "reload failed, keeping the running configuration: %s",
                   err.msg);
        return;
    }
    keys = cfg_keys(&n);
    for (size_t i = 0; i < n; i++) {
        const cfg_key *k = &keys[i];
        char buf[512];
        if (!cfg_differs(&s->cfg, &next, k))
            continue;
        if (!k->reloadable) {
            tlog_warn(s->log, NULL,
                      "reload: %s changed, but only a restart applies it; "
                      "keeping %s",
                      k->name, cfg_format(&s->cfg, k, buf, sizeof(buf)));
            continue;
        }
        if (cfg_copy_key(&s->cfg, &next, k, &err) != TARN_OK) {
            tlog_error(s->log, NULL, "reload: %s: %s", k->name, err.msg);
            continue;
        }
        tlog_info(s->log, NULL, "reload: %s = %s", k->name,
                  cfg_format(&s->cfg, k, buf, sizeof(buf)));
    }
    cfg_free(&next);
    /* Reopen even when unchanged: SIGHUP after log rotation. */
    if (tlog_reopen(s->log, s->cfg.log_file, &err) != TARN_OK)
        tlog_error(s->log, NULL, "reload: %s", err.msg);
    else
        tlog_info(s->log, NULL, "reload: log reopened (%s)",
                  s->cfg.log_file[0] ? s->cfg.log_file : "stderr");
    tlog_set_level(s->log, (tlog_level)s->cfg.log_level);
    admin_set_token(s->admin, s->cfg.http_auth_token, &err);
    http_server_set_idle_timeout(s->http, s->cfg.http_idle_timeout_ms);
    if (pagesvc_set_auth(s->page, s->cfg.page_auth, &err) != TARN_OK)
        tlog_error(s->log, NULL, "reload: %s (keeping the old one)", err.msg);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    tarn_server *s = arg;

    (void)what;
    if (sig == SIGHUP) {
        tlog_info(s->log, NULL, "SIGHUP: reloading configuration");
        reload(s);
    } else {
        begin_stop(s, sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
}

tarn_rc
server_create(const server_opts *o, tarn_server **out, tarn_err *err)
{
    tarn_server *s = calloc(1, sizeof(*s));
    catalog_opts co = {0};
    catalog_summary sum;
    admin_opts ao = {0};
    http_server_opts ho = {0};
    tarn_rc rc;

    if (s == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    s->config_path = o->config_path;
    s->sets = o->sets;
    s->nsets = o->nsets;
    if ((rc = cfg_load(&s->cfg, o->config_path, o->sets, o->nsets, err))
        != TARN_OK)
        goto fail;
    if ((rc = tlog_create(s->cfg.log_file, (tlog_level)s->cfg.log_level,
                          &s->log, err))
        != TARN_OK)
        goto fail;
    if ((rc = datadir_open(s->cfg.data_dir, &s->dir, err)) != TARN_OK)
        goto fail;
    tlog_info(s->log, NULL, "tarnd %s starting (pid %ld), data directory %s%s",
              TARN_VERSION, (long)getpid(), datadir_path(s->dir),
              datadir_is_new(s->dir) ? " (new)" : "");

    co.path = datadir_catalog_path(s->dir);
    co.map_size = (size_t)s->cfg.catalog_map_size;
    if ((rc = catalog_open(&co, &s->cat, err)) != TARN_OK)
        goto fail;
    if ((rc = catalog_verify(s->cat, &sum, err)) != TARN_OK) {
        tarn_err_prefix(err, "catalog check failed: ");
        goto fail;
    }
    tlog_info(s->log, NULL, "catalog: %zu tenant(s), %zu timeline(s), checked",
              sum.tenants, sum.timelines);

    /* Worker threads hand results back with event_active(): locking on. */
    if (evthread_use_pthreads() != 0) {
        rc = tarn_err_set(err, TARN_EIO, "libevent has no pthreads support");
        goto fail;
    }
    s->base = event_base_new();
    if (s->base == NULL) {
        rc = tarn_err_set(err, TARN_EIO, "cannot create the event loop");
        goto fail;
    }
    if ((rc = wpool_create(s->base, (int)s->cfg.worker_threads, &s->pool, err))
        != TARN_OK)
        goto fail;

    {
        repo_opts ro = {0};
        ro.base = s->base;
        ro.pool = s->pool;
        ro.cat = s->cat;
        ro.log = s->log;
        ro.data_dir = datadir_path(s->dir);
        ro.cfg = &s->cfg;
        ro.hooks.arg = s;
        ro.hooks.wal_read = hook_wal_read;
        ro.hooks.wal_trim = hook_wal_trim;
        ro.hooks.wal_adopt = hook_wal_adopt;
        ro.hooks.lsn_advanced = hook_lsn_advanced;
        if ((rc = repo_create(&ro, &s->repo, err)) != TARN_OK) {
            tarn_err_prefix(err, "page server: ");
            goto fail;
        }
    }
    {
        walsvc_opts wo = {0};
        wo.base = s->base;
        wo.pool = s->pool;
        wo.cat = s->cat;
        wo.log = s->log;
        wo.data_dir = datadir_path(s->dir);
        wo.status_interval_ms = s->cfg.wal_status_interval_ms;
        wo.connect_timeout_ms = s->cfg.wal_connect_timeout_ms;
        wo.reconnect_max_ms = s->cfg.wal_reconnect_max_ms;
        wo.receiver_timeout_ms = s->cfg.wal_receiver_timeout_ms;
        wo.on_flush = hook_wal_flushed;
        wo.on_flush_arg = s;
        if ((rc = walsvc_create(&wo, &s->wal, err)) != TARN_OK)
            goto fail;
    }

    ao.cat = s->cat;
    ao.wal = s->wal;
    ao.repo = s->repo;
    ao.log = s->log;
    ao.auth_token = s->cfg.http_auth_token;
    ao.page_listen = s->cfg.page_listen;
    ao.metrics = server_metrics;
    ao.metrics_arg = s;
    if ((rc = admin_create(&ao, &s->admin, err)) != TARN_OK)
        goto fail;
    ho.listen = s->cfg.http_listen;
    ho.max_head = ADMIN_MAX_HEAD;
    ho.max_body = ADMIN_MAX_BODY;
    ho.max_conns = (int)s->cfg.http_max_connections;
    ho.idle_timeout_ms = s->cfg.http_idle_timeout_ms;
    ho.log = s->log;
    ho.handler = admin_handle;
    ho.handler_arg = s->admin;
    ho.on_reply = admin_on_reply;
    if ((rc = http_server_create(s->base, &ho, &s->http, err)) != TARN_OK)
        goto fail;
    {
        pagesvc_opts po = {0};
        po.base = s->base;
        po.listen = s->cfg.page_listen;
        po.repo = s->repo;
        po.log = s->log;
        po.cfg = &s->cfg;
        po.auth = s->cfg.page_auth;
        if ((rc = pagesvc_create(&po, &s->page, err)) != TARN_OK)
            goto fail;
    }

    s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
    s->sig_hup = evsignal_new(s->base, SIGHUP, on_signal, s);
    if (s->sig_term == NULL || s->sig_int == NULL || s->sig_hup == NULL
        || event_add(s->sig_term, NULL) != 0 || event_add(s->sig_int, NULL) != 0
        || event_add(s->sig_hup, NULL) != 0) {
        rc = tarn_err_set(err, TARN_EIO, "cannot install signal handlers");
        goto fail;
    }
    signal(SIGPIPE, SIG_IGN);
    *out = s;
    return TARN_OK;
fail:
    server_destroy(s);
    return rc;
}

int
server_run(tarn_server *s)
{
    tlog_info(s->log, NULL,
              "ready: admin API on http://%s, page service on %s (%s), %d "
              "worker thread(s)",
              s->cfg.http_listen, s->cfg.page_listen,
              s->cfg.page_auth[0] ? "SCRAM-SHA-256" : "trust",
              (int)s->cfg.worker_threads);
    if (event_base_dispatch(s->base) < 0) {
        tlog_error(s->log, NULL, "event loop failed");
        return 1;
    }
    return s->exit_code;
}

void
server_destroy(tarn_server *s)
{
    if (s == NULL)
        return;
    /* The pool's last done callbacks may touch the WAL service, which may
     * answer HTTP requests: free in that order. */
    wpool_destroy(s->pool);
    walsvc_destroy(s->wal);
    s->wal = NULL;
    pagesvc_destroy(s->page);
    s->page = NULL;
    repo_destroy(s->repo);
    s->repo = NULL;
    http_server_destroy(s->http);
    admin_destroy(s->admin);
    if (s->stop_timer)
        event_free(s->stop_timer);
    if (s->sig_term)
        event_free(s->sig_term);
    if (s->sig_int)
        event_free(s->sig_int);
    if (s->sig_hup)
        event_free(s->sig_hup);
    catalog_close(s->cat);
    if (s->base)
        event_base_free(s->base);
    if (s->log && s->dir)
        tlog_info(s->log, NULL, "data directory unlocked");
    datadir_close(s->dir);
    tlog_destroy(s->log);
    cfg_free(&s->cfg);
    free(s);
}
