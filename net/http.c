/*
 * http.c - connections, framing and responses of the admin HTTP server.
 *
 * Each connection is a bufferevent and one state (http_conn.state), moved
 * only by conn_set_state().  The framer peeks at the input and consumes
 * nothing until a whole head is there (then the head), and nothing of the
 * body until all of it is there, so a request split across any number of
 * reads is handled the same as one that arrives at once.
 *
 * One request is handled at a time per connection: reading stops while
 * the handler works and the answer drains, and resumes afterwards on the
 * bytes already buffered.  That is pipelining without reordering, and it
 * bounds what one client can make us buffer to one request.
 *
 * Teardown has two phases.  conn_close() may be called from deep inside a
 * callback, so it only marks the connection, detaches it from its request
 * and queues it; the reaper event frees it after the callback returned.
 * A request whose connection died keeps living until its handler replies,
 * so asynchronous handlers never write through a dangling pointer.
 */
#include "net/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/core/types.h"

#define LINGER_MS  2000 /* how long to discard input after an error */
#define EXTRA_HDRS 1024

typedef enum hc_state {
    HC_READ_HEAD, /* waiting for a complete request head */
    HC_READ_BODY, /* head parsed, waiting for Content-Length bytes */
    HC_HANDLING,  /* the handler owns the request */
    HC_WRITING,   /* the answer is draining */
    HC_LINGER,    /* error answer sent; discarding input, then close */
    HC_CLOSED     /* on the dead list */
} hc_state;

typedef struct http_conn http_conn;

struct http_req {
    http_conn *conn; /* NULL once the connection is gone */
    http_server *srv;
    char *head_buf;
    http_head head;
    char *path, *query;
    char *body;
    size_t body_len;
    char hdr_tmp[1024]; /* http_req_header()'s NUL-terminated copy */
    char extra[EXTRA_HDRS];
    size_t extra_len;
    char logctx[96];
    int64_t started_us;
    int tag;
};

struct http_conn {
    TAILQ_ENTRY(http_conn) link;
    http_server *srv;
    struct bufferevent *bev;
    hc_state state;
    http_req *req;
    bool keep_alive;
    char logctx[96];
};

TAILQ_HEAD(conn_list, http_conn);

struct http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *reaper;
    tlog *log;
    http_handler handler;
    void *handler_arg;
    void (*on_reply)(http_req *req, int status, void *arg);
    size_t max_head, max_body;
    int max_conns;
    int64_t idle_ms;
    struct conn_list conns, dead;
    int nconns;
    bool shutting_down;
    uint64_t next_id;
    char addr[300];
    http_server_stats stats;
};

static void conn_process(http_conn *c);
static void conn_close(http_conn *c, const char *why);

static const char *
state_name(hc_state s)
{
    static const char *const names[] = {"read_head", "read_body", "handling",
                                        "writing",   "linger",    "closed"};
    return names[s];
}

/*
 * The only place a connection changes state.  Legal moves:
 * read_head -> read_body -> handling -> writing -> read_head (keep-alive),
 * any -> linger (error answer), any -> closed.
 */
static void
conn_set_state(http_conn *c, hc_state to)
{
    TARN_ASSERT(c->state != HC_CLOSED);
    TARN_ASSERT(to == HC_CLOSED || to == HC_LINGER
                || (c->state == HC_READ_HEAD && to == HC_READ_BODY)
                || (c->state == HC_READ_BODY && to == HC_HANDLING)
                || (c->state == HC_HANDLING && to == HC_WRITING)
                || (c->state == HC_WRITING && to == HC_READ_HEAD));
    tlog_debug(c->srv->log, c->logctx, "%s -> %s", state_name(c->state),
               state_name(to));
    c->state = to;
}

char *
http_error_json(const char *msg, size_t *len)
{
    json_t *o = json_pack("{s:s}", "msg", msg ? msg : "");
    char *s;

    if (o == NULL) /* msg was not valid UTF-8 */
        o = json_pack("{s:s}", "msg", "error (message not valid UTF-8)");
    if (o == NULL)
        return NULL;
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s != NULL && len != NULL)
        *len = strlen(s);
    return s;
}

/* Queue a complete response on @p c's output. */
static void
conn_write_response(http_conn *c, int status, const char *ctype,
                    const void *body, size_t len, bool keep_alive,
                    const char *extra)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: %s\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: %s\r\n"
                        "%s\r\n",
                        status, http_status_text(status), ctype, len,
                        keep_alive ? "keep-alive" : "close",
                        extra ? extra : "");
    if (len > 0)
        evbuffer_add(out, body, len);
}

static void
req_free(http_req *r)
{
    if (r == NULL)
        return;
    free(r->head_buf);
    free(r->path);
    free(r->query);
    free(r->body);
    free(r);
}

/*
 * Answer an error the server found itself (bad framing, limits), then
 * stop reading requests from this connection: close after the answer has
 * drained, discarding whatever the client still sends for a moment so
 * that it sees the answer instead of a reset.
 */
static void
conn_fail(http_conn *c, int status, const char *msg)
{
    char *body;
    size_t len = 0;

    c->srv->stats.protocol_errors++;
    tlog_info(c->srv->log, c->logctx, "answering %d: %s", status, msg);
    body = http_error_json(msg, &len);
    conn_write_response(c, status, "application/json", body ? body : "",
                        body ? len : 0, false, NULL);
    free(body);
    req_free(c->req);
    c->req = NULL;
    conn_set_state(c, HC_LINGER);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    {
        struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, &tv, &tv);
    }
}

static char *
span_dup(http_span s)
{
    char *p = malloc(s.len + 1);

    if (p != NULL) {
        memcpy(p, s.p, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* Frame and parse a head; returns false to stop processing. */
static bool
read_head(http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t avail = evbuffer_get_length(in), head_len;
    struct evbuffer_ptr end, lf;
    http_req *r;
    tarn_err err;
    int status = 400;

    if (avail == 0)
        return false;
    /*
     * A head ends at CRLF CRLF.  A bare LF LF also ends it, so that a
     * client using bare line feeds gets its 400 now instead of waiting
     * for a terminator that never comes.
     */
    end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    lf = evbuffer_search(in, "\n\n", 2, NULL);
    if (end.pos < 0 && lf.pos < 0) {
        if (avail > c->srv->max_head)
            conn_fail(c, 431, "request head too large");
        return false;
    }
    if (lf.pos >= 0 && (end.pos < 0 || lf.pos < end.pos))
        head_len = (size_t)lf.pos + 2;
    else
        head_len = (size_t)end.pos + 4;
    if (head_len > c->srv->max_head) {
        conn_fail(c, 431, "request head too large");
        return false;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->head_buf = malloc(head_len)) == NULL) {
        free(r);
        conn_fail(c, 503, "out of memory");
        return false;
    }
    r->conn = c;
    r->srv = c->srv;
    r->started_us = tarn_mono_us();
    snprintf(r->logctx, sizeof(r->logctx), "%s", c->logctx);
    c->req = r;
    evbuffer_remove(in, r->head_buf, head_len);
    if (http_parse_head(r->head_buf, head_len, &r->head, &status, &err)
        != TARN_OK) {
        conn_fail(c, status, err.msg);
        return false;
    }
    if (r->head.chunked) {
        conn_fail(c, 411,
                  "chunked request bodies are not accepted; send "
                  "Content-Length");
        return false;
    }
    if (r->head.content_length > (int64_t)c->srv->max_body) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "request body of %lld bytes exceeds the limit of %zu bytes",
                 (long long)r->head.content_length, c->srv->max_body);
        conn_fail(c, 413, msg);
        return false;
    }
    r->path = span_dup(r->head.path);
    r->query = span_dup(r->head.query);
    if (r->path == NULL || r->query == NULL) {
        conn_fail(c, 503, "out of memory");
        return false;
    }
    if (r->head.expect_continue && r->head.content_length > 0
        && evbuffer_get_length(in) < (size_t)r->head.content_length)
        bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    conn_set_state(c, HC_READ_BODY);
    return true;
}

/* Wait for the body, then hand the request to the handler. */
static bool
read_body(http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    http_req *r = c->req;
    size_t want =
        r->head.content_length > 0 ? (size_t)r->head.content_length : 0;

    if (evbuffer_get_length(in) < want)
        return false;
    r->body = malloc(want + 1);
    if (r->body == NULL) {
        conn_fail(c, 503, "out of memory");
        return false;
    }
    evbuffer_remove(in, r->body, want);
    r->body[want] = '\0';
    r->body_len = want;
    conn_set_state(c, HC_HANDLING);
    /* No more requests from this client until this one is answered. */
    bufferevent_disable(c->bev, EV_READ);
    c->srv->stats.requests++;
    c->srv->handler(r, c->srv->handler_arg);
    return false; /* the reply (now or later) resumes the connection */
}

/*
 * Bounded: at most one request is dispatched per call, and at most a
 * couple of state steps are taken.
 */
static void
conn_process(http_conn *c)
{
    for (int steps = 0; steps < 4; steps++) {
        bool more;
        switch (c->state) {
        case HC_READ_HEAD:
            more = read_head(c);
            break;
        case HC_READ_BODY:
            more = read_body(c);
            break;
        case HC_LINGER: {
            struct evbuffer *in = bufferevent_get_input(c->bev);
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        default:
            return;
        }
        if (!more)
            return;
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    http_conn *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    if (c->state == HC_LINGER) {
        /* Answer sent: half-close and keep discarding until EOF/timeout. */
        shutdown(bufferevent_getfd(bev), SHUT_WR);
        return;
    }
    if (c->state != HC_WRITING)
        return;
    if (!c->keep_alive) {
        conn_close(c, "answered, not keep-alive");
        return;
    }
    conn_set_state(c, HC_READ_HEAD);
    bufferevent_enable(bev, EV_READ);
    conn_process(c); /* a pipelined request may already be buffered */
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    http_conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_TIMEOUT)
        conn_close(c, c->state == HC_LINGER ? "linger over" : "idle timeout");
    else if (what & BEV_EVENT_EOF)
        conn_close(c, "client closed");
    else if (what & BEV_EVENT_ERROR)
        conn_close(c, strerror(EVUTIL_SOCKET_ERROR()));
}

static void
conn_close(http_conn *c, const char *why)
{
    if (c->state == HC_CLOSED)
        return;
    tlog_debug(c->srv->log, c->logctx, "closing: %s", why);
    if (c->req != NULL) {
        if (c->state == HC_HANDLING)
            c->req->conn = NULL; /* the handler still owns it */
        else
            req_free(c->req);
        c->req = NULL;
    }
    conn_set_state(c, HC_CLOSED);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    TAILQ_REMOVE(&c->srv->conns, c, link);
    TAILQ_INSERT_TAIL(&c->srv->dead, c, link);
    c->srv->nconns--;
    event_active(c->srv->reaper, EV_READ, 0);
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
    http_server *s = arg;
    http_conn *c;

    (void)fd;
    (void)what;
    while ((c = TAILQ_FIRST(&s->dead)) != NULL) {
        TAILQ_REMOVE(&s->dead, c, link);
        bufferevent_free(c->bev);
        free(c);
    }
}

static void
set_timeouts(http_server *s, struct bufferevent *bev)
{
    struct timeval tv = {(time_t)(s->idle_ms / 1000),
                         (suseconds_t)((s->idle_ms % 1000) * 1000)};
    bufferevent_set_timeouts(bev, &tv, &tv);
}

static void
format_peer(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(buf, len, "%s:%d", host, port);
}

static void
reject(http_server *s, evutil_socket_t fd, const char *msg)
{
    char resp[256], *body;
    size_t blen = 0;
    int n;

    s->stats.conns_rejected++;
    body = http_error_json(msg, &blen);
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 503 Service Unavailable\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 blen, body ? body : "");
    free(body);
    /* Best effort: a fresh socket's send buffer takes this at once. */
    if (send(fd, resp, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        (void)0;
    evutil_closesocket(fd);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    http_server *s = arg;
    http_conn *c;
    char peer[80];

    (void)l;
    (void)salen;
    if (s->shutting_down) {
        reject(s, fd, "tarnd is shutting down");
        return;
    }
    if (s->nconns >= s->max_conns) {
        tlog_warn(s->log, "http", "too many connections (%d); rejecting one",
                  s->nconns);
        reject(s, fd, "too many connections");
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        reject(s, fd, "out of memory");
        return;
    }
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        free(c);
        reject(s, fd, "out of memory");
        return;
    }
    c->srv = s;
    c->state = HC_READ_HEAD;
    format_peer(sa, peer, sizeof(peer));
    snprintf(c->logctx, sizeof(c->logctx), "http#%llu %s",
             (unsigned long long)++s->next_id, peer);
    TAILQ_INSERT_TAIL(&s->conns, c, link);
    s->nconns++;
    s->stats.conns_accepted++;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    set_timeouts(s, c->bev);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    http_server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();

    (void)l;
    /* EMFILE and friends: log and keep the listener; libevent retries. */
    tlog_error(s->log, "http", "accept failed: %s",
               evutil_socket_error_to_string(e));
}

tarn_rc
http_server_create(struct event_base *base, const http_server_opts *o,
                   http_server **out, tarn_err *err)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8];
    tarn_addr addr;
    http_server *s;
    tarn_rc rc;
    int gai;

    if ((rc = tarn_addr_parse(o->listen, &addr, err)) != TARN_OK)
        return rc;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    s->base = base;
    s->log = o->log;
    s->handler = o->handler;
    s->handler_arg = o->handler_arg;
    s->on_reply = o->on_reply;
    s->max_head = o->max_head;
    s->max_body = o->max_body;
    s->max_conns = o->max_conns;
    s->idle_ms = o->idle_timeout_ms;
    TAILQ_INIT(&s->conns);
    TAILQ_INIT(&s->dead);
    snprintf(s->addr, sizeof(s->addr), "%s", o->listen);
    s->reaper = event_new(base, -1, 0, on_reap, s);
    if (s->reaper == NULL) {
        rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto fail;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", addr.port);
    gai = getaddrinfo(addr.host, port, &hints, &ai);
    if (gai != 0) {
        rc = tarn_err_set(err, TARN_EINVAL, "cannot resolve %s: %s", addr.host,
                          gai_strerror(gai));
        goto fail;
    }
    s->listener = evconnlistener_new_bind(
        base, on_accept, s,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
        ai->ai_addr, (int)ai->ai_addrlen);
    if (s->listener == NULL) {
        rc = tarn_err_errno(err, errno, "cannot listen on %s", o->listen);
        goto fail;
    }
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    freeaddrinfo(ai);
    *out = s;
    return TARN_OK;
fail:
    if (ai != NULL)
        freeaddrinfo(ai);
    http_server_destroy(s);
    return rc;
}

void
http_server_set_idle_timeout(http_server *s, int64_t ms)
{
    s->idle_ms = ms;
}

void
http_server_shutdown(http_server *s)
{
    http_conn *c, *next;

    s->shutting_down = true;
    if (s->listener != NULL) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
    for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->state == HC_READ_HEAD
            && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            conn_close(c, "shutting down");
        else
            c->keep_alive = false;
    }
}

int
http_server_open_conns(const http_server *s)
{
    return s->nconns;
}

void
http_server_get_stats(const http_server *s, http_server_stats *out)
{
    *out = s->stats;
    out->conns_open = s->nconns;
}

void
http_server_destroy(http_server *s)
{
    http_conn *c;

    if (s == NULL)
        return;
    if (s->listener != NULL)
        evconnlistener_free(s->listener);
    while ((c = TAILQ_FIRST(&s->conns)) != NULL)
        conn_close(c, "server stopped");
    if (s->reaper != NULL) {
        on_reap(-1, 0, s);
        event_free(s->reaper);
    }
    free(s);
}

/* ---- requests --------------------------------------------------------- */

http_method
http_req_method(const http_req *r)
{
    return r->head.method;
}

const char *
http_req_path(const http_req *r)
{
    return r->path;
}

const char *
http_req_query(const http_req *r)
{
    return r->query;
}

const char *
http_req_header(http_req *r, const char *name)
{
    const http_span *v = http_head_header(&r->head, name);

    if (v == NULL || v->len >= sizeof(r->hdr_tmp))
        return NULL;
    memcpy(r->hdr_tmp, v->p, v->len);
    r->hdr_tmp[v->len] = '\0';
    return r->hdr_tmp;
}

const char *
http_req_body(const http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

const char *
http_req_logctx(const http_req *r)
{
    return r->logctx;
}

void
http_req_set_tag(http_req *r, int tag)
{
    r->tag = tag;
}

int
http_req_get_tag(const http_req *r)
{
    return r->tag;
}

void
http_req_add_header(http_req *r, const char *name, const char *value)
{
    int n = snprintf(r->extra + r->extra_len, sizeof(r->extra) - r->extra_len,
                     "%s: %s\r\n", name, value);

    if (n < 0 || (size_t)n >= sizeof(r->extra) - r->extra_len) {
        r->extra[r->extra_len] = '\0';
        tlog_warn(r->srv->log, r->logctx, "response header %s dropped", name);
        return;
    }
    r->extra_len += (size_t)n;
}

void
http_reply(http_req *r, int status, const char *content_type, const void *body,
           size_t len)
{
    http_conn *c = r->conn;

    if (r->srv->on_reply != NULL)
        r->srv->on_reply(r, status, r->srv->handler_arg);
    if (c == NULL) { /* the client left while we worked */
        req_free(r);
        return;
    }
    TARN_ASSERT(c->state == HC_HANDLING && c->req == r);
    c->keep_alive = r->head.keep_alive && !c->srv->shutting_down;
    tlog_debug(c->srv->log, c->logctx, "%s %s -> %d (%lld us)",
               http_method_name(r->head.method), r->path, status,
               (long long)(tarn_mono_us() - r->started_us));
    conn_write_response(c, status, content_type, body, len, c->keep_alive,
                        r->extra);
    c->req = NULL;
    req_free(r);
    conn_set_state(c, HC_WRITING);
    bufferevent_enable(c->bev, EV_WRITE);
}

void
http_reply_error(http_req *r, int status, const char *msg)
{
    size_t len = 0;
    char *body = http_error_json(msg, &len);

    http_reply(r, status, "application/json", body ? body : "{}",
               body ? len : 2);
    free(body);
}
