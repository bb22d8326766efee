/*
 * walrecv.c - the replication client state machine.
 *
 *   CONNECTING  PQconnectPoll until the connection is up (timeout armed)
 *   HANDSHAKE   IDENTIFY_SYSTEM -> SHOW wal_segment_size -> owner picks
 *               the start -> START_REPLICATION PHYSICAL X/Y TIMELINE n
 *   STREAMING   CopyBoth: XLogData and keepalives in, status updates out
 *   BACKOFF     after a failure, wait min(max, 100 ms * 2^n), reconnect
 *   STOPPED     refused, or stopped by the owner
 *
 * Everything is non-blocking.  libpq may already hold many messages in its
 * buffer when the socket goes quiet, so the copy loop is bounded (a fixed
 * number of messages or bytes per wakeup) and re-schedules itself through
 * a user event instead of waiting for a readiness event that would never
 * come.
 *
 * Callbacks may drop or stop the connection.  Each connection has a
 * generation number; after any callback the code checks that its
 * generation is still current before touching the connection again.
 */
#include "net/walrecv.h"

#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/replmsg.h"

#define MSGS_PER_WAKEUP  64
#define BYTES_PER_WAKEUP (4u << 20)
#define BACKOFF_BASE_MS  100

typedef enum query_kind { Q_NONE, Q_IDENTIFY, Q_SHOW, Q_START } query_kind;

struct walrecv {
    walrecv_opts o;
    char *conninfo;
    char logctx[160];
    PGconn *conn;
    walrecv_state state;
    query_kind query;
    struct event *sock_ev, *write_ev, *tmo_ev, *status_ev, *cont_ev;
    walrecv_ident ident;
    bool got_ident, got_show;
    tarn_lsn start;
    bool paused;
    int attempts;
    bool connected_once;
    uint64_t gen;
    char last_error[512];
    char prev_failure[512]; /* the reason of the previous fail() */
    walrecv_stats st;
};

static void on_socket(evutil_socket_t fd, short what, void *arg);
static void process_copy(walrecv *r);
static void fail(walrecv *r, const char *reason, bool retry, bool tell);

const char *
walrecv_state_name(walrecv_state s)
{
    static const char *const names[] = {"connecting", "handshake", "streaming",
                                        "backoff", "stopped"};
    return names[s];
}

static void
set_state(walrecv *r, walrecv_state to)
{
    if (r->state != to)
        tlog_debug(r->o.log, r->logctx, "receiver %s -> %s",
                   walrecv_state_name(r->state), walrecv_state_name(to));
    r->state = to;
}

static void
clear_event(struct event **ev)
{
    if (*ev != NULL) {
        event_free(*ev);
        *ev = NULL;
    }
}

/* Watch the connection's socket; persistent for reads once connected. */
static void
watch(walrecv *r, short what)
{
    int fd = r->conn ? PQsocket(r->conn) : -1;
    short flags = what;

    clear_event(&r->sock_ev);
    if (fd < 0 || what == 0)
        return;
    if (r->state != WALRECV_CONNECTING)
        flags |= EV_PERSIST;
    r->sock_ev = event_new(r->o.base, fd, flags, on_socket, r);
    if (r->sock_ev != NULL && !(r->paused && r->state == WALRECV_STREAMING))
        event_add(r->sock_ev, NULL);
}

static void
arm_timer(walrecv *r, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000),
                         (suseconds_t)((ms % 1000) * 1000)};
    event_del(r->tmo_ev);
    event_add(r->tmo_ev, &tv);
}

static void
close_conn(walrecv *r)
{
    clear_event(&r->sock_ev);
    if (r->write_ev)
        event_del(r->write_ev);
    event_del(r->status_ev);
    event_del(r->cont_ev);
    if (r->conn != NULL) {
        /* No worker may write to the socket once libpq closes it. */
        pthread_mutex_lock(&r->o.ack->mu);
        r->o.ack->fd = -1;
        r->o.ack->tail_len = 0;
        pthread_mutex_unlock(&r->o.ack->mu);
        PQfinish(r->conn);
        r->conn = NULL;
    }
    r->query = Q_NONE;
    r->got_ident = r->got_show = false;
    r->gen++;
}

/*
 * End this connection.  @p retry: come back after backoff.  @p tell: call
 * on_disconnect (not when the owner asked for it).
 */
static void
fail(walrecv *r, const char *reason, bool retry, bool tell)
{
    char msg[sizeof(r->last_error)];
    size_t n;
    bool same;

    snprintf(msg, sizeof(msg), "%s", reason);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    close_conn(r);
    same = strcmp(r->prev_failure, msg) == 0;
    snprintf(r->last_error, sizeof(r->last_error), "%s", msg);
    snprintf(r->prev_failure, sizeof(r->prev_failure), "%s", msg);
    if (retry) {
        int64_t delay = BACKOFF_BASE_MS;
        char times[48] = "";
        int row;
        for (int i = 0; i < r->attempts && delay < r->o.reconnect_max_ms; i++)
            delay *= 2;
        if (delay > r->o.reconnect_max_ms)
            delay = r->o.reconnect_max_ms;
        row = ++r->attempts;
        set_state(r, WALRECV_BACKOFF);
        arm_timer(r, delay);
        /*
         * The same failure again and again (a compute that is down, a
         * disk that stays full) is a WARN the 1st, 2nd, 4th, 8th... time
         * in a row and DEBUG in between: at wal_reconnect_max a line
         * every few seconds would bury the rest of the log.  A new
         * reason is always a WARN.
         */
        if (row > 1)
            snprintf(times, sizeof(times), " (failed %d times in a row)", row);
        if (row == 1 || !same || (row & (row - 1)) == 0)
            tlog_warn(r->o.log, r->logctx, "%s; reconnecting in %lld ms%s", msg,
                      (long long)delay, times);
        else
            tlog_debug(r->o.log, r->logctx, "%s; reconnecting in %lld ms%s",
                       msg, (long long)delay, times);
    } else {
        event_del(r->tmo_ev);
        set_state(r, WALRECV_STOPPED);
        tlog_warn(r->o.log, r->logctx, "%s; receiver stopped", msg);
    }
    if (tell && r->o.cbs.on_disconnect != NULL)
        r->o.cbs.on_disconnect(r->o.arg, msg, retry);
}

static void
flush_out(walrecv *r)
{
    int rc = PQflush(r->conn);

    if (rc < 0) {
        fail(r, PQerrorMessage(r->conn), true, true);
    } else if (rc == 1) {
        /* libpq could not send everything: finish when writable. */
        event_del(r->write_ev);
        event_assign(r->write_ev, r->o.base, PQsocket(r->conn), EV_WRITE,
                     on_socket, r);
        event_add(r->write_ev, NULL);
    }
}

static void
send_query(walrecv *r, const char *sql, query_kind q)
{
    tlog_debug(r->o.log, r->logctx, "-> %s", sql);
    r->query = q;
    if (!PQsendQuery(r->conn, sql)) {
        fail(r, PQerrorMessage(r->conn), true, true);
        return;
    }
    flush_out(r);
}

static void
start_streaming(walrecv *r)
{
    walrecv_ident id = r->ident;
    char sql[128], l[TARN_LSN_STRLEN];
    tarn_err err;
    tarn_rc rc;
    uint64_t gen = r->gen;

    rc = r->o.cbs.on_identify(r->o.arg, &id, &r->start, &err);
    if (gen != r->gen)
        return;
    if (rc != TARN_OK) {
        fail(r, err.msg, rc != TARN_ECONFLICT, true);
        return;
    }
    snprintf(sql, sizeof(sql), "START_REPLICATION PHYSICAL %s TIMELINE %u",
             tarn_lsn_format(r->start, l), r->ident.tli);
    send_query(r, sql, Q_START);
}

/* One result of the handshake queries. */
static void
handle_result(walrecv *r, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    char msg[600];
    tarn_err err;

    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
        snprintf(msg, sizeof(msg), "%s failed: %s",
                 r->query == Q_START      ? "START_REPLICATION"
                 : r->query == Q_IDENTIFY ? "IDENTIFY_SYSTEM"
                                          : "SHOW wal_segment_size",
                 PQresultErrorMessage(res));
        if (r->query == Q_START && r->o.cbs.on_start_failed != NULL) {
            uint64_t gen = r->gen;
            r->o.cbs.on_start_failed(r->o.arg, msg);
            if (gen != r->gen)
                return;
        }
        fail(r, msg, true, true);
        return;
    }
    switch (r->query) {
    case Q_IDENTIFY:
        if (st != PGRES_TUPLES_OK || PQntuples(res) != 1
            || PQnfields(res) < 3) {
            fail(r, "IDENTIFY_SYSTEM returned an unexpected result", true,
                 true);
            return;
        }
        {
            const char *sysid = PQgetvalue(res, 0, 0);
            char *end;
            r->ident.sysid = strtoull(sysid, &end, 10);
            long tli = strtol(PQgetvalue(res, 0, 1), NULL, 10);
            if (*end != '\0' || tli <= 0
                || tarn_lsn_parse(PQgetvalue(res, 0, 2), &r->ident.xlogpos,
                                  &err)
                       != TARN_OK) {
                fail(r, "IDENTIFY_SYSTEM returned malformed values", true,
                     true);
                return;
            }
            r->ident.tli = (uint32_t)tli;
            r->got_ident = true;
        }
        break;
    case Q_SHOW: {
        int64_t size;
        if (st != PGRES_TUPLES_OK || PQntuples(res) != 1
            || tarn_size_parse(PQgetvalue(res, 0, 0), &size, &err) != TARN_OK) {
            fail(r, "SHOW wal_segment_size returned an unexpected result", true,
                 true);
            return;
        }
        r->ident.seg_size = (uint32_t)size;
        r->got_show = true;
        break;
    }
    case Q_START:
        if (st == PGRES_COPY_BOTH) {
            char l[TARN_LSN_STRLEN];
            uint64_t gen = r->gen;
            struct timeval tv = {
                (time_t)(r->o.status_interval_ms / 1000),
                (suseconds_t)((r->o.status_interval_ms % 1000) * 1000)};
            set_state(r, WALRECV_STREAMING);
            r->query = Q_NONE;
            pthread_mutex_lock(&r->o.ack->mu);
            r->o.ack->fd = PQsocket(r->conn);
            r->o.ack->write = r->o.ack->flush = r->o.ack->apply = 0;
            r->o.ack->tail_len = 0;
            pthread_mutex_unlock(&r->o.ack->mu);
            event_del(r->tmo_ev);
            event_add(r->status_ev, &tv);
            r->st.connected_at = tarn_now_us();
            if (r->connected_once)
                r->st.reconnects++;
            r->connected_once = true;
            r->last_error[0] = '\0';
            tlog_info(r->o.log, r->logctx, "streaming from %s",
                      tarn_lsn_format(r->start, l));
            if (r->o.cbs.on_streaming != NULL)
                r->o.cbs.on_streaming(r->o.arg, r->start);
            if (gen != r->gen)
                return;
            /* Report at once, as PostgreSQL's walreceiver does: the
             * compute then shows our positions without waiting. */
            walrecv_send_status(r, false, true);
            if (gen == r->gen)
                event_active(r->cont_ev, EV_READ, 0);
            return;
        }
        fail(r, "START_REPLICATION did not start a copy stream", true, true);
        return;
    case Q_NONE:
        break;
    }
}

/* The current query has returned all its results. */
static void
query_done(walrecv *r)
{
    switch (r->query) {
    case Q_IDENTIFY:
        if (r->got_ident)
            send_query(r, "SHOW wal_segment_size", Q_SHOW);
        break;
    case Q_SHOW:
        if (r->got_show)
            start_streaming(r);
        break;
    default:
        break;
    }
}

static void
handshake_input(walrecv *r)
{
    uint64_t gen = r->gen;

    if (!PQconsumeInput(r->conn)) {
        fail(r, PQerrorMessage(r->conn), true, true);
        return;
    }
    while (gen == r->gen && r->state == WALRECV_HANDSHAKE
           && !PQisBusy(r->conn)) {
        PGresult *res = PQgetResult(r->conn);
        if (res == NULL) {
            query_done(r);
            return;
        }
        handle_result(r, res);
        PQclear(res);
    }
}

static void
handle_msg(walrecv *r, const uint8_t *buf, size_t len)
{
    repl_msg m;
    tarn_err err;
    uint64_t gen = r->gen;

    if (repl_parse(buf, len, &m, &err) != TARN_OK) {
        fail(r, err.msg, true, true);
        return;
    }
    r->st.messages++;
    r->st.last_msg_at = tarn_now_us();
    if (m.wal_end > r->st.wal_end) {
        r->st.wal_end = m.wal_end;
        if (r->o.cbs.on_wal_end)
            r->o.cbs.on_wal_end(r->o.arg, m.wal_end);
        if (gen != r->gen)
            return;
    }
    if (m.kind == REPL_KEEPALIVE) {
        if (m.reply_requested)
            walrecv_send_status(r, false, true);
        return;
    }
    r->st.bytes += m.len;
    tarn_rc rc = r->o.cbs.on_data(r->o.arg, m.start, m.data, m.len, &err);
    if (gen != r->gen)
        return;
    /* Data was taken: the next failure starts backoff over.  Data that is
     * refused (a full disk) keeps it growing, so a stall does not turn
     * into a reconnect every 100 ms. */
    if (rc == TARN_OK || rc == TARN_AGAIN)
        r->attempts = 0;
    if (rc == TARN_AGAIN)
        walrecv_pause(r);
    else if (rc != TARN_OK)
        fail(r, err.msg, rc != TARN_ECONFLICT, true);
}

static void
process_copy(walrecv *r)
{
    size_t bytes = 0;
    uint64_t gen = r->gen;

    for (int i = 0; i < MSGS_PER_WAKEUP && bytes < BYTES_PER_WAKEUP; i++) {
        char *buf = NULL;
        int n;
        if (r->paused || gen != r->gen || r->state != WALRECV_STREAMING)
            return;
        n = PQgetCopyData(r->conn, &buf, 1);
        if (n > 0) {
            handle_msg(r, (const uint8_t *)buf, (size_t)n);
            PQfreemem(buf);
            bytes += (size_t)n;
            continue;
        }
        if (n == 0) {
            /* All caught up: let the owner act on the whole burst. */
            if (r->o.cbs.on_drained != NULL)
                r->o.cbs.on_drained(r->o.arg);
            return; /* wait for the socket */
        }
        if (n == -1) {
            /* The server ended the stream (shutdown, timeline switch). */
            PGresult *res;
            char msg[600] = "the compute ended the replication stream";
            while ((res = PQgetResult(r->conn)) != NULL) {
                if (PQresultStatus(res) == PGRES_FATAL_ERROR)
                    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
                PQclear(res);
            }
            fail(r, msg, true, true);
            return;
        }
        fail(r, PQerrorMessage(r->conn), true, true);
        return;
    }
    /* More may be buffered inside libpq: come back without waiting. */
    event_active(r->cont_ev, EV_READ, 0);
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
    walrecv *r = arg;

    (void)fd;
    if (r->conn == NULL)
        return;
    if (r->state == WALRECV_CONNECTING) {
        switch (PQconnectPoll(r->conn)) {
        case PGRES_POLLING_READING:
            watch(r, EV_READ);
            return;
        case PGRES_POLLING_WRITING:
            watch(r, EV_WRITE);
            return;
        case PGRES_POLLING_FAILED:
            fail(r, PQerrorMessage(r->conn), true, true);
            return;
        default: /* PGRES_POLLING_OK */
            if (PQsetnonblocking(r->conn, 1) != 0) {
                fail(r, PQerrorMessage(r->conn), true, true);
                return;
            }
            set_state(r, WALRECV_HANDSHAKE);
            watch(r, EV_READ);
            send_query(r, "IDENTIFY_SYSTEM", Q_IDENTIFY);
            return;
        }
    }
    if (what & EV_WRITE) {
        flush_out(r);
        return;
    }
    if (r->state == WALRECV_HANDSHAKE) {
        handshake_input(r);
        return;
    }
    if (r->state == WALRECV_STREAMING) {
        if (!PQconsumeInput(r->conn)) {
            fail(r, PQerrorMessage(r->conn), true, true);
            return;
        }
        process_copy(r);
    }
}

static void
on_cont(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_copy(arg);
}

static void
start_connect(walrecv *r)
{
    const char *keys[] = {"dbname", "replication", "application_name", NULL};
    const char *vals[] = {r->conninfo, "true", "tarn", NULL};

    close_conn(r);
    r->paused = false;
    r->conn = PQconnectStartParams(keys, vals, 1);
    if (r->conn == NULL) {
        fail(r, "out of memory", true, true);
        return;
    }
    if (PQstatus(r->conn) == CONNECTION_BAD) {
        fail(r, PQerrorMessage(r->conn), true, true);
        return;
    }
    set_state(r, WALRECV_CONNECTING);
    arm_timer(r, r->o.connect_timeout_ms);
    watch(r, EV_WRITE);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    walrecv *r = arg;

    (void)fd;
    (void)what;
    if (r->state == WALRECV_BACKOFF)
        start_connect(r);
    else if (r->state == WALRECV_CONNECTING || r->state == WALRECV_HANDSHAKE)
        fail(r, "timed out connecting to the compute", true, true);
}

static void
on_status_timer(evutil_socket_t fd, short what, void *arg)
{
    walrecv *r = arg;
    struct timeval tv = {
        (time_t)(r->o.status_interval_ms / 1000),
        (suseconds_t)((r->o.status_interval_ms % 1000) * 1000)};

    (void)fd;
    (void)what;
    if (r->state != WALRECV_STREAMING)
        return;
    if (r->o.receiver_timeout_ms > 0) {
        tarn_time_us last = r->st.last_msg_at > r->st.connected_at
                                ? r->st.last_msg_at
                                : r->st.connected_at;
        int64_t quiet = tarn_now_us() - last;
        if (quiet > r->o.receiver_timeout_ms * 1000) {
            char msg[128];
            snprintf(msg, sizeof(msg),
                     "no message from the compute for %lld ms "
                     "(wal_receiver_timeout)",
                     (long long)r->o.receiver_timeout_ms);
            fail(r, msg, true, true);
            return;
        }
        /* Half the timeout in silence: ask the walsender to answer, as
         * PostgreSQL's walreceiver does, so an idle compute is not
         * mistaken for a vanished one. */
        if (quiet > r->o.receiver_timeout_ms * 500) {
            walrecv_send_status(r, true, true);
            goto rearm;
        }
    }
    walrecv_send_status(r, false, true);
rearm:
    if (r->state == WALRECV_STREAMING)
        event_add(r->status_ev, &tv);
}

tarn_rc
walrecv_create(const walrecv_opts *o, walrecv **out, tarn_err *err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(o->conninfo, &perr);
    walrecv *r;

    if (opts == NULL) {
        tarn_err_set(err, TARN_EINVAL, "invalid conninfo: %s",
                     perr ? perr : "out of memory");
        if (perr)
            PQfreemem(perr);
        return err ? err->code : TARN_EINVAL;
    }
    PQconninfoFree(opts);
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    r->o = *o;
    r->conninfo = strdup(o->conninfo);
    snprintf(r->logctx, sizeof(r->logctx), "%s", o->logctx ? o->logctx : "");
    r->o.logctx = r->logctx;
    r->tmo_ev = event_new(o->base, -1, 0, on_timer, r);
    r->status_ev = event_new(o->base, -1, 0, on_status_timer, r);
    r->cont_ev = event_new(o->base, -1, 0, on_cont, r);
    r->write_ev = event_new(o->base, -1, 0, on_socket, r);
    if (r->conninfo == NULL || r->tmo_ev == NULL || r->status_ev == NULL
        || r->cont_ev == NULL || r->write_ev == NULL) {
        walrecv_destroy(r);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    r->state = WALRECV_STOPPED;
    *out = r;
    return TARN_OK;
}

void
walrecv_start(walrecv *r)
{
    if (r->state == WALRECV_STOPPED || r->state == WALRECV_BACKOFF) {
        r->attempts = 0;
        start_connect(r);
    }
}

void
walrecv_disconnect(walrecv *r, const char *reason, bool retry)
{
    if (r->state == WALRECV_STOPPED && !retry)
        return;
    fail(r, reason, retry, false);
}

void
walrecv_send_status(walrecv *r, bool reply_requested, bool force)
{
    tarn_lsn w = 0, f = 0, a = 0;
    uint64_t tag;

    if (r->state != WALRECV_STREAMING || r->conn == NULL)
        return;
    r->o.cbs.positions(r->o.arg, &w, &f, &a);
    pthread_mutex_lock(&r->o.ack->mu);
    tag = r->o.ack->tag;
    pthread_mutex_unlock(&r->o.ack->mu);
    if (walrecv_ack_send(r->o.ack, tag, w, f, a, force, reply_requested))
        r->st.status_sent++;
}

void
walrecv_ack_init(walrecv_ack *a)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->fd = -1;
}

void
walrecv_ack_destroy(walrecv_ack *a)
{
    pthread_mutex_destroy(&a->mu);
}

int
walrecv_ack_socket(walrecv_ack *a)
{
    int fd;

    pthread_mutex_lock(&a->mu);
    fd = a->fd;
    pthread_mutex_unlock(&a->mu);
    return fd;
}

void
walrecv_ack_set_tag(walrecv_ack *a, uint64_t tag)
{
    pthread_mutex_lock(&a->mu);
    a->tag = tag;
    pthread_mutex_unlock(&a->mu);
}

/* Push queued bytes; false if the socket takes no more now. */
static bool
ack_push(walrecv_ack *a)
{
    while (a->tail_len > 0) {
        ssize_t n =
            send(a->fd, a->tail, a->tail_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN: later.  Anything else: the reactor sees it too. */
            return false;
        }
        memmove(a->tail, a->tail + n, a->tail_len - (size_t)n);
        a->tail_len -= (size_t)n;
    }
    return true;
}

bool
walrecv_ack_send(walrecv_ack *a, uint64_t tag, tarn_lsn write, tarn_lsn flush,
                 tarn_lsn apply, bool force, bool reply_requested)
{
    uint8_t frame[5 + REPL_STATUS_LEN];
    bool queued = false;

    pthread_mutex_lock(&a->mu);
    if (a->fd < 0 || a->tag != tag)
        goto out;
    /* Positions never go backwards on one connection. */
    if (write < a->write)
        write = a->write;
    if (flush < a->flush)
        flush = a->flush;
    if (apply < a->apply)
        apply = a->apply;
    if (!force && write == a->write && flush == a->flush && apply == a->apply)
        goto out;
    /* A CopyData message: 'd', int32 length (itself included), payload. */
    frame[0] = 'd';
    frame[1] = 0;
    frame[2] = 0;
    frame[3] = 0;
    frame[4] = 4 + REPL_STATUS_LEN;
    repl_build_status(frame + 5, write, flush, apply, repl_now(),
                      reply_requested);
    ack_push(a);
    /* If an earlier frame is still stuck, this one waits behind it (the
     * socket is full only when the compute stopped reading: the next update
     * carries the same news, so one that does not fit is dropped). */
    if (a->tail_len + sizeof(frame) <= sizeof(a->tail)) {
        memcpy(a->tail + a->tail_len, frame, sizeof(frame));
        a->tail_len += sizeof(frame);
        a->write = write;
        a->flush = flush;
        a->apply = apply;
        a->sent++;
        queued = true;
        ack_push(a);
    }
out:
    pthread_mutex_unlock(&a->mu);
    return queued;
}

void
walrecv_pause(walrecv *r)
{
    if (r->paused)
        return;
    r->paused = true;
    if (r->sock_ev != NULL)
        event_del(r->sock_ev);
}

void
walrecv_resume(walrecv *r)
{
    if (!r->paused)
        return;
    r->paused = false;
    if (r->state == WALRECV_STREAMING && r->sock_ev != NULL) {
        event_add(r->sock_ev, NULL);
        event_active(r->cont_ev, EV_READ, 0);
    }
}

walrecv_state
walrecv_get_state(const walrecv *r)
{
    return r->state;
}

const char *
walrecv_last_error(const walrecv *r)
{
    return r->last_error;
}

void
walrecv_get_stats(const walrecv *r, walrecv_stats *out)
{
    *out = r->st;
}

void
walrecv_conninfo_masked(const char *conninfo, char *buf, size_t len)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL), *o;
    size_t used = 0;

    buf[0] = '\0';
    if (opts == NULL)
        return;
    for (o = opts; o->keyword != NULL; o++) {
        const char *v = o->val;
        int n;
        if (v == NULL || *v == '\0')
            continue;
        if (strcmp(o->keyword, "password") == 0)
            v = "********";
        n = snprintf(buf + used, len - used, "%s%s='", used ? " " : "",
                     o->keyword);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
        for (; *v && used + 3 < len; v++) {
            if (*v == '\'' || *v == '\\')
                buf[used++] = '\\';
            buf[used++] = *v;
        }
        if (used + 2 >= len)
            break;
        buf[used++] = '\'';
        buf[used] = '\0';
    }
    PQconninfoFree(opts);
}

void
walrecv_destroy(walrecv *r)
{
    if (r == NULL)
        return;
    if (r->conn != NULL)
        PQfinish(r->conn);
    clear_event(&r->sock_ev);
    clear_event(&r->write_ev);
    clear_event(&r->tmo_ev);
    clear_event(&r->status_ev);
    clear_event(&r->cont_ev);
    free(r->conninfo);
    free(r);
}
