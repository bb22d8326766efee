/*
 * admin.h - the HTTP admin API: routing, authentication, JSON handlers
 * and /metrics.
 *
 * The admin module is the http_handler of the admin http_server.  It
 * reads and writes the catalog and renders its own request metrics; the
 * server adds the metrics of the other modules through a hook.
 * Reactor thread only.
 */
#ifndef TARN_NET_ADMIN_H
#define TARN_NET_ADMIN_H

#include <stddef.h>

#include "catalog/catalog.h"
#include "net/http.h"
#include "net/walsvc.h"
#include "server/core/err.h"
#include "server/core/log.h"
#include "server/core/types.h"
#include "storage/repo.h"

struct evbuffer;
typedef struct admin admin;

/** Appends Prometheus text for the rest of the server to @p out. */
typedef void (*admin_metrics_fn)(struct evbuffer *out, void *arg);

typedef struct admin_opts {
    catalog *cat;
    walsvc *wal;
    repo *repo;
    tlog *log;
    const char *auth_token;  /**< NULL or "" for no auth; copied */
    const char *page_listen; /**< shown by /v1/status; NULL for none */
    admin_metrics_fn metrics;
    void *metrics_arg;
} admin_opts;

tarn_rc admin_create(const admin_opts *o, admin **out, tarn_err *err);

/** NULL-safe. */
void admin_destroy(admin *a);

/** Replace the bearer token (SIGHUP); NULL or "" turns auth off. */
tarn_rc admin_set_token(admin *a, const char *token, tarn_err *err);

/** The http_handler; @p arg is the admin. */
void admin_handle(http_req *req, void *arg);

/** The http_server on_reply hook: counts answers by route and status. */
void admin_on_reply(http_req *req, int status, void *arg);

/** The HTTP status for a result code (TARN_EINVAL -> 400, ...). */
int admin_status_for(tarn_rc rc);

#endif
