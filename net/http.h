/*
 * http.h - a small HTTP/1.1 server on libevent bufferevents, for the admin
 * API.
 *
 * It frames requests (Content-Length bodies, keep-alive, pipelining one
 * request at a time), enforces the head and body limits, and answers every
 * error it detects itself with a JSON body {"msg": "..."}, which is the
 * reason it exists instead of evhttp (docs/api.md, "Transport").
 *
 * All functions run on the reactor thread.
 */
#ifndef TARN_NET_HTTP_H
#define TARN_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "net/http_parse.h"
#include "server/core/err.h"
#include "server/core/log.h"

struct event_base;
typedef struct http_server http_server;
typedef struct http_req http_req;

/**
 * Called once per complete request.  The handler (now or later, from any
 * reactor callback) must answer with exactly one http_reply().
 */
typedef void (*http_handler)(http_req *req, void *arg);

typedef struct http_server_opts {
    const char *listen;      /**< "host:port" */
    size_t max_head;         /**< request line + headers, bytes */
    size_t max_body;         /**< Content-Length limit; 413 beyond */
    int max_conns;           /**< 503 beyond */
    int64_t idle_timeout_ms; /**< idle or slow connections are closed */
    tlog *log;
    http_handler handler;
    void *handler_arg;
    /** Optional: told the status of every answer the handler gives. */
    void (*on_reply)(http_req *req, int status, void *arg);
} http_server_opts;

typedef struct http_server_stats {
    uint64_t conns_accepted;
    uint64_t conns_rejected;  /**< over max_conns or shutting down */
    uint64_t requests;        /**< dispatched to the handler */
    uint64_t protocol_errors; /**< answered by the server itself */
    int conns_open;
} http_server_stats;

/**
 * Bind, listen and start accepting.
 *
 * @return TARN_OK; TARN_EINVAL for a bad address; TARN_EIO when the
 * address cannot be bound (the message names it and the reason).
 */
tarn_rc http_server_create(struct event_base *base, const http_server_opts *o,
                           http_server **out, tarn_err *err);

/** New idle timeout for connections accepted from now on (SIGHUP). */
void http_server_set_idle_timeout(http_server *s, int64_t ms);

/**
 * Begin a graceful stop: close the listener and idle connections; busy
 * connections finish their current request and then close.
 */
void http_server_shutdown(http_server *s);

/** Connections that are still open. */
int http_server_open_conns(const http_server *s);

void http_server_get_stats(const http_server *s, http_server_stats *out);

/** Close every connection and free.  NULL-safe. */
void http_server_destroy(http_server *s);

/* ---- requests: valid from the handler call until http_reply() -------- */

http_method http_req_method(const http_req *r);
/** The path, without the query string; NUL-terminated, not decoded. */
const char *http_req_path(const http_req *r);
/** The raw query string without '?'; "" when there is none. */
const char *http_req_query(const http_req *r);
/** A request header (case-insensitive name), NUL-terminated, or NULL. */
const char *http_req_header(http_req *r, const char *name);
/** The body (NUL-terminated for convenience) and its length. */
const char *http_req_body(const http_req *r, size_t *len);
/** "http#12 127.0.0.1:5555", for log lines. */
const char *http_req_logctx(const http_req *r);

/** Attach a small integer to the request (the admin's route index). */
void http_req_set_tag(http_req *r, int tag);
int http_req_get_tag(const http_req *r);

/**
 * Add a response header for the coming http_reply().  Ignored (and
 * logged) if the total would exceed 1 KiB.
 */
void http_req_add_header(http_req *r, const char *name, const char *value);

/**
 * Answer the request and release it: @p r is invalid afterwards.  If the
 * client has gone away meanwhile, the answer is dropped silently.
 * @p body is copied.
 */
void http_reply(http_req *r, int status, const char *content_type,
                const void *body, size_t len);

/** Answer with {"msg": @p msg} and content type application/json. */
void http_reply_error(http_req *r, int status, const char *msg);

/** Format {"msg": "..."} as a malloc'd string (caller frees), or NULL. */
char *http_error_json(const char *msg, size_t *len);

#endif
