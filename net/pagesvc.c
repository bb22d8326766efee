/*
 * pagesvc.c - connections, authentication, queries and pagestream of the
 * page service.
 *
 * Each connection is a bufferevent and one state (pconn.state), moved
 * only by conn_set_state().  conn_process() frames messages with
 * pgw_frame_next(), which peeks and never consumes a partial message, and
 * hands each whole one to the handler of the state; the message is drained
 * only when the handler is done with it.  A pagestream request that must
 * wait for WAL leaves its message in the buffer: the connection parks
 * until ingest moves last_record_lsn (pagesvc_lsn_advanced) or its
 * deadline passes, and then frames the same message again.  That keeps
 * responses in request order without a queue.  A GetPage whose redo went
 * to the worker pool (repo_get_page_async, past redo_inline_max values)
 * parks the same way until the page is back; its message is then framed
 * again and answered from the finished read.
 *
 * Fairness and memory: one wakeup handles at most MSGS_PER_WAKEUP
 * messages, then continues from a zero-timeout timer, which libevent runs
 * only after polling every other socket again.  Reading stops while the
 * output holds more than OUT_HIGH bytes and resumes when the client has
 * read it down to OUT_LOW; input is capped at one maximal message by the
 * read watermark.  So a connection holds at most about 1 MiB each way.
 *
 * Teardown has two phases as in http.c: a fatal error queues a FATAL
 * ErrorResponse and lingers (half-close after it drained, discard input,
 * bounded by LINGER_MS); conn_close() only marks the connection and puts
 * it on the dead list, and the reaper frees it after the callback.
 */
#include "net/pagesvc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/pagestream.h"
#include "net/pgwire.h"
#include "net/scram.h"
#include "server/core/version.h"
#include "storage/basebackup.h"

#define MSGS_PER_WAKEUP 64
#define OUT_HIGH        (1024 * 1024)
#define OUT_LOW         (256 * 1024)
#define LINGER_MS       2000
#define AUTH_TIMEOUT_MS (60 * 1000)
#define IDLE_TIMEOUT_MS (10 * 60 * 1000)
#define MAX_CONNS       1024
#define DEFAULT_SPC     1663 /* pg_default: DbSize has no tablespace field */
#define MAX_FORKNUM     3
#define BACKUP_BUDGET   (256 * 1024) /* tar bytes made per wakeup */

typedef enum pc_state {
    PC_STARTUP,    /* waiting for a startup packet */
    PC_SASL_INIT,  /* AuthenticationSASL sent; waiting for the mechanism */
    PC_SASL_FINAL, /* server-first-message sent; waiting for the proof */
    PC_READY,      /* authenticated: queries */
    PC_STREAM,     /* pagestream in CopyBoth */
    PC_BACKUP,     /* basebackup in CopyOut; input waits */
    PC_LINGER,     /* fatal error sent; discarding input, then close */
    PC_CLOSED      /* on the dead list */
} pc_state;

/* What a message handler did with its message. */
typedef enum { MSG_DONE, MSG_WAIT } msg_result;

typedef struct pconn pconn;

struct pconn {
    TAILQ_ENTRY(pconn) link;
    pagesvc *svc;
    struct bufferevent *bev;
    struct event *resume; /* continuation and LSN-wait deadline */
    pc_state state;
    uint64_t id;
    uint32_t key;
    int version; /* pagestream protocol: 2 or 3 */
    tarn_id tenant, tl;
    bool waiting; /* the head request waits for WAL */
    /* The head GetPage's redo runs on a worker (pending), or has finished
     * (ready) with redo_rc and, on error, redo_msg. */
    bool redo_pending, redo_ready;
    tarn_rc redo_rc;
    char *redo_msg;
    uint8_t *redo_page; /* PS_BLCKSZ, allocated at the first offload */
    int64_t wait_deadline_us;
    bool out_blocked;  /* reading stopped: the client is not reading */
    bool skip_to_sync; /* extended protocol: an error, until Sync */
    char *stmt;        /* the text of the last Parse */
    basebackup *bb;    /* PC_BACKUP */
    bool bb_simple;    /* it came from a simple Query */
    scram_state *scram;
    char user[64];
    char logctx[160];
};

TAILQ_HEAD(pconn_list, pconn);

typedef struct pagesvc_stats {
    uint64_t accepted, rejected;
    uint64_t requests[PS_REQ_NTYPES], req_errors[PS_REQ_NTYPES];
    uint64_t queries, protocol_errors, auth_ok, auth_failed;
    uint64_t lsn_waits, lsn_timeouts, streams;
    uint64_t yields; /* wakeups that ended with messages still buffered */
    uint64_t backups, backup_errors, backup_bytes;
    uint64_t resp_bytes;
} pagesvc_stats;

struct pagesvc {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *reaper;
    repo *repo;
    tlog *log;
    const tarn_config *cfg;
    bool auth_on;
    scram_verifier verifier;
    struct pconn_list conns, dead;
    int nconns;
    bool shutting_down;
    uint64_t next_id;
    char addr[300];
    pagesvc_stats st;
    uint8_t slru[PS_SLRU_MAX_PAGES * PS_BLCKSZ];
};

static void conn_process(pconn *c);
static void schedule_resume(pconn *c);
static void conn_close(pconn *c, const char *why);

static const char *
state_name(pc_state s)
{
    static const char *const names[] = {"startup", "sasl_init", "sasl_final",
                                        "ready",   "stream",    "backup",
                                        "linger",  "closed"};
    return names[s];
}

/*
 * The only place a connection changes state.  Legal moves: startup ->
 * sasl_init -> sasl_final -> ready, startup -> ready (trust), ready ->
 * stream, ready -> backup -> ready; any -> linger (fatal error); any ->
 * closed.
 */
static void
conn_set_state(pconn *c, pc_state to)
{
    TARN_ASSERT(c->state != PC_CLOSED);
    TARN_ASSERT(
        to == PC_CLOSED || to == PC_LINGER
        || (c->state == PC_STARTUP && (to == PC_SASL_INIT || to == PC_READY))
        || (c->state == PC_SASL_INIT && to == PC_SASL_FINAL)
        || (c->state == PC_SASL_FINAL && to == PC_READY)
        || (c->state == PC_READY && (to == PC_STREAM || to == PC_BACKUP))
        || (c->state == PC_BACKUP && to == PC_READY));
    tlog_debug(c->svc->log, c->logctx, "%s -> %s", state_name(c->state),
               state_name(to));
    c->state = to;
}

static struct evbuffer *
out_of(pconn *c)
{
    return bufferevent_get_output(c->bev);
}

static void
set_timeouts(pconn *c, int64_t read_ms, int64_t write_ms)
{
    struct timeval r = {(time_t)(read_ms / 1000),
                        (suseconds_t)((read_ms % 1000) * 1000)};
    struct timeval w = {(time_t)(write_ms / 1000),
                        (suseconds_t)((write_ms % 1000) * 1000)};
    bufferevent_set_timeouts(c->bev, &r, &w);
}

/*
 * Send a FATAL ErrorResponse and stop serving: close once it has drained
 * and the client has hung up, or after LINGER_MS.
 */
static void
conn_fatal(pconn *c, const char *sqlstate, const char *msg)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (c->state >= PC_LINGER)
        return;
    if (strcmp(sqlstate, PGW_SQLSTATE_SHUTDOWN) != 0)
        c->svc->st.protocol_errors++;
    tlog_info(c->svc->log, c->logctx, "FATAL %s: %s", sqlstate, msg);
    pgw_put_error(out_of(c), "FATAL", sqlstate, msg);
    conn_set_state(c, PC_LINGER);
    c->waiting = false;
    evtimer_del(c->resume);
    evbuffer_drain(in, evbuffer_get_length(in));
    set_timeouts(c, LINGER_MS, LINGER_MS);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* A query failed: ERROR, then ReadyForQuery (simple) or skip to Sync. */
static void
query_error(pconn *c, bool simple, const char *sqlstate, const char *msg)
{
    tlog_info(c->svc->log, c->logctx, "ERROR %s: %s", sqlstate, msg);
    pgw_put_error(out_of(c), "ERROR", sqlstate, msg);
    if (simple)
        pgw_put_ready(out_of(c));
    else
        c->skip_to_sync = true;
}

/* ---- startup and authentication ---------------------------------------- */

static void
auth_ok(pconn *c)
{
    struct evbuffer *out = out_of(c);

    c->svc->st.auth_ok++;
    pgw_put_auth(out, PGW_AUTH_OK, NULL, 0);
    pgw_put_param(out, "server_version", "15.0");
    pgw_put_param(out, "server_encoding", "UTF8");
    pgw_put_param(out, "client_encoding", "UTF8");
    pgw_put_param(out, "DateStyle", "ISO, MDY");
    pgw_put_param(out, "integer_datetimes", "on");
    pgw_put_param(out, "standard_conforming_strings", "on");
    pgw_put_param(out, "application_name", "");
    pgw_put_backend_key(out, (uint32_t)c->id, c->key);
    pgw_put_ready(out);
    conn_set_state(c, PC_READY);
    set_timeouts(c, IDLE_TIMEOUT_MS, IDLE_TIMEOUT_MS);
    tlog_debug(c->svc->log, c->logctx, "authenticated");
}

static void
on_startup(pconn *c, const uint8_t *body, size_t len)
{
    pgw_startup su;
    tarn_err err;
    tarn_rc rc = pgw_parse_startup(body, len, &su, &err);
    static const char mechs[] = "SCRAM-SHA-256\0";

    if (rc == TARN_EUNSUPPORTED) {
        conn_fatal(c, PGW_SQLSTATE_UNSUPPORTED, err.msg);
        return;
    }
    if (rc != TARN_OK) {
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
        return;
    }
    if (su.code == PGW_SSL_REQUEST || su.code == PGW_GSS_REQUEST) {
        /* No TLS or GSS encryption yet: "N", then a plain startup. */
        evbuffer_add(out_of(c), "N", 1);
        return;
    }
    if (su.code == PGW_CANCEL_REQ) {
        conn_close(c, "cancel request (not supported; ignored)");
        return;
    }
    snprintf(c->user, sizeof(c->user), "%s", su.user);
    {
        size_t n = strlen(c->logctx);
        snprintf(c->logctx + n, sizeof(c->logctx) - n, " user=%.32s%s%.32s",
                 su.user, su.application_name ? " app=" : "",
                 su.application_name ? su.application_name : "");
    }
    tlog_debug(c->svc->log, c->logctx, "startup: protocol 3.%u%s%s",
               su.code & 0xffff, su.options ? ", options " : "",
               su.options ? su.options : "");
    if ((su.code & 0xffff) != 0 || su.n_unknown_pq > 0)
        pgw_put_negotiate(out_of(c), &su);
    if (!c->svc->auth_on) {
        auth_ok(c);
        return;
    }
    c->scram = calloc(1, sizeof(*c->scram));
    if (c->scram == NULL) {
        conn_fatal(c, PGW_SQLSTATE_INTERNAL, "out of memory");
        return;
    }
    pgw_put_auth(out_of(c), PGW_AUTH_SASL, mechs, sizeof(mechs));
    conn_set_state(c, PC_SASL_INIT);
}

static void
auth_failed(pconn *c)
{
    char msg[160];

    c->svc->st.auth_failed++;
    snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"",
             c->user);
    conn_fatal(c, PGW_SQLSTATE_AUTH_FAILED, msg);
}

static void
on_sasl(pconn *c, char type, const uint8_t *body, size_t len)
{
    char reply[SCRAM_MSG_MAX];
    size_t rlen = 0;
    tarn_err err;
    bool ok;

    if (type != 'p') {
        char msg[96];
        snprintf(msg, sizeof(msg),
                 "expected SASL response, got message type 0x%02x",
                 (uint8_t)type);
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL, msg);
        return;
    }
    if (c->state == PC_SASL_INIT) {
        const char *mech;
        const uint8_t *data;
        size_t dlen;
        if (pgw_parse_sasl_initial(body, len, &mech, &data, &dlen, &err)
            != TARN_OK) {
            conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
            return;
        }
        if (strcmp(mech, "SCRAM-SHA-256") != 0) {
            conn_fatal(c, PGW_SQLSTATE_PROTOCOL,
                       "client selected an invalid SASL authentication "
                       "mechanism");
            return;
        }
        if (scram_server_first(c->scram, &c->svc->verifier, data, dlen, NULL,
                               reply, &rlen, &err)
            != TARN_OK) {
            conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
            return;
        }
        pgw_put_auth(out_of(c), PGW_AUTH_SASL_CONTINUE, reply, rlen);
        conn_set_state(c, PC_SASL_FINAL);
        return;
    }
    if (scram_server_final(c->scram, body, len, &ok, reply, &rlen, &err)
        != TARN_OK) {
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
        return;
    }
    free(c->scram);
    c->scram = NULL;
    if (!ok) {
        auth_failed(c);
        return;
    }
    pgw_put_auth(out_of(c), PGW_AUTH_SASL_FINAL, reply, rlen);
    auth_ok(c);
}

/* ---- queries ------------------------------------------------------------ */

static void
start_stream(pconn *c, int version, char **args, int nargs, bool simple)
{
    char msg[200], a[TARN_ID_STRLEN], b[TARN_ID_STRLEN];
    tarn_lsn last, start;
    tarn_err err;

    if (nargs != 2) {
        query_error(c, simple, PGW_SQLSTATE_INTERNAL,
                    "pagestream takes two arguments: <tenant_id> "
                    "<timeline_id>");
        return;
    }
    if (tarn_id_parse(args[0], &c->tenant, &err) != TARN_OK
        || tarn_id_parse(args[1], &c->tl, &err) != TARN_OK) {
        query_error(c, simple, PGW_SQLSTATE_INTERNAL, err.msg);
        return;
    }
    if (repo_timeline_lsns(c->svc->repo, &c->tenant, &c->tl, &last, &start)
        != TARN_OK) {
        snprintf(msg, sizeof(msg), "tenant %s has no timeline %s",
                 tarn_id_format(&c->tenant, a), tarn_id_format(&c->tl, b));
        query_error(c, simple, PGW_SQLSTATE_INTERNAL, msg);
        return;
    }
    c->version = version;
    c->svc->st.streams++;
    pgw_put_copy_both(out_of(c));
    conn_set_state(c, PC_STREAM);
    {
        size_t n = strlen(c->logctx);
        snprintf(c->logctx + n, sizeof(c->logctx) - n, " tl=%.8s v%d",
                 tarn_id_format(&c->tl, b), version);
    }
    tlog_debug(c->svc->log, c->logctx, "pagestream_v%d on %s/%s", version,
               tarn_id_format(&c->tenant, a), b);
}

/* ---- basebackup ---------------------------------------------------------- */

static void
end_backup(pconn *c, const char *errmsg)
{
    struct evbuffer *out = out_of(c);

    if (errmsg != NULL) {
        c->svc->st.backup_errors++;
        tlog_info(c->svc->log, c->logctx, "basebackup failed: %s", errmsg);
        pgw_put_error(out, "ERROR", PGW_SQLSTATE_INTERNAL, errmsg);
    } else {
        pgw_put_msg(out, 'c', NULL, 0); /* CopyDone */
        pgw_put_complete(out, "SELECT 1");
        tlog_info(c->svc->log, c->logctx, "basebackup done: %llu bytes of tar",
                  (unsigned long long)bb_tar_bytes(c->bb));
    }
    if (c->bb_simple)
        pgw_put_ready(out);
    else if (errmsg != NULL)
        c->skip_to_sync = true;
    bb_destroy(c->bb);
    c->bb = NULL;
    conn_set_state(c, PC_READY);
    schedule_resume(c); /* messages that waited behind the copy */
}

/*
 * Produce the next piece of the archive as one CopyData, unless OUT_HIGH
 * bytes already wait for the client.  Bounded: one piece per wakeup; the
 * next comes from a zero-timeout timer (after every other socket has been
 * polled) while the output is short of OUT_HIGH, else from the write
 * callback once the client has read it down to OUT_LOW.
 */
static void
pump_backup(pconn *c)
{
    struct evbuffer *out = out_of(c), *piece;
    tarn_err err;
    bool done;
    size_t n;

    if (evbuffer_get_length(out) >= OUT_HIGH)
        return;
    piece = evbuffer_new();
    if (piece == NULL) {
        end_backup(c, "out of memory");
        return;
    }
    if (bb_next(c->bb, piece, BACKUP_BUDGET, &done, &err) != TARN_OK) {
        evbuffer_free(piece);
        end_backup(c, err.msg);
        return;
    }
    if ((n = evbuffer_get_length(piece)) > 0) {
        pgw_put_copydata_hdr(out, n);
        evbuffer_add_buffer(out, piece);
        c->svc->st.backup_bytes += n;
    }
    evbuffer_free(piece);
    if (done)
        end_backup(c, NULL);
    else if (evbuffer_get_length(out) < OUT_HIGH)
        schedule_resume(c);
}

static void
start_backup(pconn *c, char **args, int nargs, bool simple)
{
    bb_opts o;
    tarn_err err;
    char l[TARN_LSN_STRLEN];

    if (nargs > 8) {
        query_error(c, simple, PGW_SQLSTATE_INTERNAL,
                    "basebackup: too many arguments");
        return;
    }
    if (bb_parse_args(args, nargs, &o, &err) != TARN_OK) {
        query_error(c, simple, PGW_SQLSTATE_INTERNAL, err.msg);
        return;
    }
    o.repo = c->svc->repo;
    if (bb_create(&o, &c->bb, &err) != TARN_OK) {
        c->svc->st.backup_errors++;
        query_error(c, simple, PGW_SQLSTATE_INTERNAL, err.msg);
        return;
    }
    c->svc->st.backups++;
    c->bb_simple = simple;
    pgw_put_msg(out_of(c), 'H', "\0\0\0", 3); /* CopyOutResponse, binary */
    conn_set_state(c, PC_BACKUP);
    tlog_info(c->svc->log, c->logctx, "basebackup at %s%s",
              tarn_lsn_format(bb_lsn(c->bb), l), o.gzip ? " (gzip)" : "");
    schedule_resume(c);
}

/*
 * Run one query text: simple Query, or Execute of the last Parse (no
 * ReadyForQuery then).  The commands are Neon's: a first word matched
 * case-insensitively and whitespace-separated arguments.
 */
static void
run_query(pconn *c, const char *text, bool simple)
{
    char buf[1024], *args[8], *cmd, *save = NULL, *p;
    int nargs = 0;
    size_t n;

    c->svc->st.queries++;
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    n = strlen(text);
    while (n > 0
           && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n'
               || text[n - 1] == '\r' || text[n - 1] == ';'))
        n--;
    if (n == 0) {
        pgw_put_msg(out_of(c), 'I', NULL, 0); /* EmptyQueryResponse */
        if (simple)
            pgw_put_ready(out_of(c));
        return;
    }
    if (n >= sizeof(buf)) {
        query_error(c, simple, PGW_SQLSTATE_INTERNAL, "query too long");
        return;
    }
    memcpy(buf, text, n);
    buf[n] = '\0';
    tlog_debug(c->svc->log, c->logctx, "query: %s", buf);
    cmd = strtok_r(buf, " \t\r\n", &save);
    while ((p = strtok_r(NULL, " \t\r\n", &save)) != NULL)
        if (nargs < (int)TARN_ARRAY_LEN(args))
            args[nargs++] = p;
        else
            nargs++;
    if (strcasecmp(cmd, "pagestream_v3") == 0) {
        start_stream(c, 3, args, nargs, simple);
    } else if (strcasecmp(cmd, "pagestream_v2") == 0) {
        start_stream(c, 2, args, nargs, simple);
    } else if (strcasecmp(cmd, "basebackup") == 0) {
        start_backup(c, args, nargs, simple);
    } else if (strcasecmp(cmd, "set") == 0 && nargs > 0) {
        pgw_put_complete(out_of(c), "SELECT 1");
        if (simple)
            pgw_put_ready(out_of(c));
    } else {
        char msg[128];
        snprintf(msg, sizeof(msg), "unsupported command %.64s", cmd);
        query_error(c, simple, PGW_SQLSTATE_INTERNAL, msg);
    }
}

static void
on_ready_msg(pconn *c, char type, const uint8_t *body, size_t len)
{
    const char *text, *name;
    tarn_err err;
    char kind;

    if (c->skip_to_sync && type != 'S' && type != 'X')
        return;
    switch (type) {
    case 'Q':
        if (pgw_parse_query(body, len, &text, &err) != TARN_OK) {
            conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
            return;
        }
        run_query(c, text, true);
        return;
    case 'P':
        if (pgw_parse_parse(body, len, &name, &text, &err) != TARN_OK) {
            conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
            return;
        }
        free(c->stmt);
        if ((c->stmt = strdup(text)) == NULL) {
            conn_fatal(c, PGW_SQLSTATE_INTERNAL, "out of memory");
            return;
        }
        pgw_put_msg(out_of(c), '1', NULL, 0);
        return;
    case 'B':
        pgw_put_msg(out_of(c), '2', NULL, 0);
        return;
    case 'D':
        if (pgw_parse_describe(body, len, &kind, &name, &err) != TARN_OK) {
            conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
            return;
        }
        if (kind == 'S')
            pgw_put_msg(out_of(c), 't', "\0\0", 2); /* no parameters */
        pgw_put_msg(out_of(c), 'n', NULL, 0);       /* NoData */
        return;
    case 'C':
        pgw_put_msg(out_of(c), '3', NULL, 0);
        return;
    case 'E':
        run_query(c, c->stmt ? c->stmt : "", false);
        return;
    case 'S':
        c->skip_to_sync = false;
        pgw_put_ready(out_of(c));
        return;
    case 'H': /* Flush: every answer is flushed anyway */
        return;
    case 'X':
        conn_close(c, "client terminated");
        return;
    case 'd':
    case 'c':
    case 'f':
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL,
                   "copy message received outside of COPY");
        return;
    default: {
        char msg[64];
        snprintf(msg, sizeof(msg), "invalid frontend message type %u",
                 (uint8_t)type);
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL, msg);
    }
    }
}

/* ---- pagestream --------------------------------------------------------- */

/* Queue one response: CopyData header, fixed part, then @p data. */
static void
put_response(pconn *c, const ps_req *rq, const ps_resp *rs, const void *data)
{
    struct evbuffer *out = out_of(c);
    uint8_t fixed[PS_FIXED_MAX];
    size_t nf = ps_encode_fixed(c->version, rq, rs, fixed),
           np = ps_payload_len(rs);

    pgw_put_copydata_hdr(out, nf + np);
    evbuffer_add(out, fixed, nf);
    if (rs->tag == PS_RESP_ERROR)
        evbuffer_add(out, rs->errmsg, np);
    else if (np > 0)
        evbuffer_add(out, data, np);
    c->svc->st.resp_bytes += 5 + nf + np;
}

static void
put_error(pconn *c, const ps_req *rq, const char *msg)
{
    ps_resp rs = {.tag = PS_RESP_ERROR, .errmsg = msg};

    c->svc->st.req_errors[rq->tag]++;
    tlog_debug(c->svc->log, c->logctx, "%s: %s", ps_req_name(rq->tag), msg);
    put_response(c, rq, &rs, NULL);
}

/* A read's error as the per-request message Neon's clients expect. */
static void
put_read_error(pconn *c, const ps_req *rq, const tarn_err *err)
{
    char msg[TARN_ERR_MSG + 32];
    const char *kind = err->code == TARN_EINVAL      ? "Bad request"
                       : err->code == TARN_ENOTFOUND ? "Not found"
                                                     : "Read error";

    snprintf(msg, sizeof(msg), "%s: %s", kind, err->msg);
    put_error(c, rq, msg);
}

static void conn_process(pconn *c);

/* A GetPage's redo came back from the worker pool. */
static void
on_page_done(void *arg, tarn_rc rc, const char *msg, tarn_lsn at)
{
    pconn *c = arg;

    (void)at;
    c->redo_pending = false;
    if (c->state == PC_CLOSED) { /* the reaper waited for this */
        event_active(c->svc->reaper, EV_READ, 0);
        return;
    }
    c->redo_ready = true;
    c->redo_rc = rc;
    if (rc != TARN_OK) {
        free(c->redo_msg);
        c->redo_msg = strdup(msg);
    }
    conn_process(c);
}

/* GetPage: inline, or parked while a worker rebuilds the page. */
static msg_result
serve_getpage(pconn *c, const ps_req *rq, const repo_rel *rel, tarn_lsn at)
{
    pagesvc *s = c->svc;
    ps_resp rs = {.tag = PS_RESP_GETPAGE};
    tarn_lsn got;
    tarn_err err;
    bool pending;

    if (c->redo_ready) {
        c->redo_ready = false;
        if (c->redo_rc != TARN_OK) {
            tarn_err_set(&err, c->redo_rc, "%s",
                         c->redo_msg != NULL ? c->redo_msg : "redo failed");
            put_read_error(c, rq, &err);
        } else {
            put_response(c, rq, &rs, c->redo_page);
        }
        return MSG_DONE;
    }
    if (c->redo_page == NULL && (c->redo_page = malloc(PS_BLCKSZ)) == NULL) {
        tarn_err_set(&err, TARN_ENOMEM, "out of memory");
        put_read_error(c, rq, &err);
        return MSG_DONE;
    }
    if (repo_get_page_async(s->repo, &c->tenant, &c->tl, rel, rq->blkno, false,
                            at, c->redo_page, &got, &pending, on_page_done, c,
                            &err)
        != TARN_OK) {
        put_read_error(c, rq, &err);
        return MSG_DONE;
    }
    if (pending) {
        c->redo_pending = true;
        return MSG_WAIT;
    }
    put_response(c, rq, &rs, c->redo_page);
    return MSG_DONE;
}

static msg_result
serve_request(pconn *c, const ps_req *rq, tarn_lsn at)
{
    pagesvc *s = c->svc;
    repo_rel rel = {rq->spc, rq->db, rq->rel, rq->fork};
    ps_resp rs = {0};
    tarn_lsn got;
    tarn_err err;
    char msg[200], l[TARN_LSN_STRLEN];
    bool exists;
    uint32_t n;
    uint64_t bytes;

    if (rq->tag <= PS_REQ_GETPAGE) {
        if (rq->fork > MAX_FORKNUM) {
            snprintf(msg, sizeof(msg), "Bad request: invalid fork number %u",
                     rq->fork);
            put_error(c, rq, msg);
            return MSG_DONE;
        }
        if (rq->rel == 0) {
            put_error(c, rq, "Bad request: invalid relation number 0");
            return MSG_DONE;
        }
    }
    switch (rq->tag) {
    case PS_REQ_EXISTS:
    case PS_REQ_NBLOCKS:
        if (repo_rel_size(s->repo, &c->tenant, &c->tl, &rel, false, at, &exists,
                          &n, &got, &err)
            != TARN_OK) {
            put_read_error(c, rq, &err);
            return MSG_DONE;
        }
        if (rq->tag == PS_REQ_EXISTS) {
            rs.tag = PS_RESP_EXISTS;
            rs.exists = exists;
        } else if (!exists && rq->fork != 1 && rq->fork != 2) {
            snprintf(msg, sizeof(msg),
                     "Not found: relation %u/%u/%u fork %u does not exist "
                     "at %s",
                     rq->spc, rq->db, rq->rel, rq->fork,
                     tarn_lsn_format(at, l));
            put_error(c, rq, msg);
            return MSG_DONE;
        } else {
            rs.tag = PS_RESP_NBLOCKS;
            rs.nblocks = exists ? n : 0;
        }
        put_response(c, rq, &rs, NULL);
        return MSG_DONE;
    case PS_REQ_GETPAGE:
        return serve_getpage(c, rq, &rel, at);
    case PS_REQ_DBSIZE:
        if (repo_db_size(s->repo, &c->tenant, &c->tl, DEFAULT_SPC, rq->dboid,
                         false, at, &bytes, &got, &err)
            != TARN_OK) {
            put_read_error(c, rq, &err);
            return MSG_DONE;
        }
        rs.tag = PS_RESP_DBSIZE;
        rs.db_size = (int64_t)bytes;
        put_response(c, rq, &rs, NULL);
        return MSG_DONE;
    default: /* PS_REQ_SLRU */
        if (rq->kind > 2) {
            put_error(c, rq, "Bad request: invalid SLRU kind");
            return MSG_DONE;
        }
        for (n = 0; n < PS_SLRU_MAX_PAGES; n++) {
            tarn_rc rc = repo_get_slru_page(
                s->repo, &c->tenant, &c->tl, rq->kind, rq->segno, n, false, at,
                s->slru + (size_t)n * PS_BLCKSZ, &got, &err);
            if (rc == TARN_ENOTFOUND && n > 0)
                break; /* the segment's end */
            if (rc != TARN_OK) {
                put_read_error(c, rq, &err);
                return MSG_DONE;
            }
        }
        rs.tag = PS_RESP_SLRU;
        rs.nblocks = n;
        put_response(c, rq, &rs, s->slru);
        return MSG_DONE;
    }
}

/*
 * One pagestream request, with the LSN rules of docs/protocols.md: only
 * not_modified_since is ever waited for; the read happens at
 * min(last_record_lsn, request_lsn) (request_lsn u64::MAX meaning latest).
 */
static msg_result
on_stream_request(pconn *c, const uint8_t *body, size_t len)
{
    pagesvc *s = c->svc;
    ps_req rq;
    tarn_lsn last, start;
    tarn_err err;
    char msg[256], l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];
    int64_t now;

    if (ps_parse_request(c->version, body, len, &rq, &err) != TARN_OK) {
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
        return MSG_DONE;
    }
    if (repo_timeline_lsns(s->repo, &c->tenant, &c->tl, &last, &start)
        != TARN_OK) {
        conn_fatal(c, PGW_SQLSTATE_INTERNAL, "the timeline was deleted");
        return MSG_DONE;
    }
    if (!c->waiting && !c->redo_ready)
        s->st.requests[rq.tag]++;
    if (rq.request_lsn == 0) {
        put_error(c, &rq, "Bad request: invalid LSN(0) in request");
        return MSG_DONE;
    }
    if (rq.request_lsn < rq.not_modified_since) {
        snprintf(msg, sizeof(msg),
                 "Bad request: invalid request with request LSN %s and "
                 "not_modified_since %s",
                 tarn_lsn_format(rq.request_lsn, l1),
                 tarn_lsn_format(rq.not_modified_since, l2));
        put_error(c, &rq, msg);
        return MSG_DONE;
    }
    if (rq.not_modified_since > last) {
        now = tarn_mono_us();
        if (!c->waiting) {
            c->waiting = true;
            c->wait_deadline_us = now + s->cfg->wait_lsn_timeout_ms * 1000;
            s->st.lsn_waits++;
        }
        if (now < c->wait_deadline_us) {
            int64_t us = c->wait_deadline_us - now;
            struct timeval tv = {(time_t)(us / 1000000),
                                 (suseconds_t)(us % 1000000)};
            evtimer_add(c->resume, &tv);
            return MSG_WAIT;
        }
        c->waiting = false;
        s->st.lsn_timeouts++;
        snprintf(msg, sizeof(msg),
                 "LSN timeout: Timed out while waiting for WAL record at LSN "
                 "%s to arrive, last_record_lsn %s",
                 tarn_lsn_format(rq.not_modified_since, l1),
                 tarn_lsn_format(last, l2));
        put_error(c, &rq, msg);
        return MSG_DONE;
    }
    c->waiting = false;
    return serve_request(c, &rq, rq.request_lsn < last ? rq.request_lsn : last);
}

static msg_result
on_stream_msg(pconn *c, char type, const uint8_t *body, size_t len)
{
    char msg[96];

    switch (type) {
    case 'd':
        return on_stream_request(c, body, len);
    case 'X':
        conn_close(c, "client terminated");
        return MSG_DONE;
    case 'c':
    case 'f':
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL,
                   "pagestream ends with Terminate, not CopyDone or CopyFail");
        return MSG_DONE;
    default:
        snprintf(msg, sizeof(msg),
                 "unexpected message type 0x%02x during pagestream",
                 (uint8_t)type);
        conn_fatal(c, PGW_SQLSTATE_PROTOCOL, msg);
        return MSG_DONE;
    }
}

/* ---- the connection loop ------------------------------------------------ */

static msg_result
dispatch(pconn *c, const pgw_frame *f, const uint8_t *msg)
{
    const uint8_t *body = msg + f->hdr;
    size_t len = f->total - f->hdr;

    switch (c->state) {
    case PC_STARTUP:
        on_startup(c, body, len);
        return MSG_DONE;
    case PC_SASL_INIT:
    case PC_SASL_FINAL:
        if (f->type == 'X')
            conn_close(c, "client terminated");
        else
            on_sasl(c, f->type, body, len);
        return MSG_DONE;
    case PC_READY:
        on_ready_msg(c, f->type, body, len);
        return MSG_DONE;
    case PC_STREAM:
        return on_stream_msg(c, f->type, body, len);
    default:
        return MSG_DONE;
    }
}

static void
schedule_resume(pconn *c)
{
    static const struct timeval zero = {0, 0};

    evtimer_add(c->resume, &zero);
}

/*
 * Bounded: at most MSGS_PER_WAKEUP messages, then a zero-timeout timer
 * continues after the loop has polled every other connection.
 */
static void
conn_process(pconn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (c->redo_pending)
        return; /* on_page_done continues */
    if (c->state == PC_BACKUP) {
        pump_backup(c);
        return;
    }
    for (int n = 0; n < MSGS_PER_WAKEUP; n++) {
        size_t avail = evbuffer_get_length(in);
        const uint8_t *p;
        pgw_frame f;
        tarn_err err;
        tarn_rc rc;

        if (c->state >= PC_LINGER) {
            evbuffer_drain(in, avail);
            return;
        }
        if (evbuffer_get_length(out_of(c)) >= OUT_HIGH) {
            /* Backpressure: read on when the client has caught up. */
            c->out_blocked = true;
            bufferevent_disable(c->bev, EV_READ);
            return;
        }
        p = evbuffer_pullup(in, avail < 5 ? (ssize_t)avail : 5);
        rc = pgw_frame_next(p, avail, c->state == PC_STARTUP, &f, &err);
        if (rc == TARN_AGAIN)
            return;
        if (rc != TARN_OK) {
            conn_fatal(c, PGW_SQLSTATE_PROTOCOL, err.msg);
            return;
        }
        p = evbuffer_pullup(in, (ssize_t)f.total);
        if (p == NULL) {
            conn_fatal(c, PGW_SQLSTATE_INTERNAL, "out of memory");
            return;
        }
        if (dispatch(c, &f, p) == MSG_WAIT)
            return;
        evbuffer_drain(in, f.total);
    }
    if (c->state < PC_LINGER) {
        c->svc->st.yields++;
        schedule_resume(c);
    }
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_process(arg);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    pconn *c = arg;

    (void)bev;
    if (c->waiting)
        return; /* parked on its head request; more input waits too */
    conn_process(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    pconn *c = arg;
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));

    if (c->state == PC_LINGER) {
        if (left == 0)
            shutdown(bufferevent_getfd(bev), SHUT_WR);
        return;
    }
    if (c->state == PC_BACKUP) {
        pump_backup(c);
        return;
    }
    if (c->out_blocked && left <= OUT_LOW) {
        c->out_blocked = false;
        bufferevent_enable(bev, EV_READ);
        if (!c->waiting)
            conn_process(c);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    pconn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_TIMEOUT)
        conn_close(c, c->state == PC_LINGER ? "linger over"
                      : c->state < PC_READY ? "authentication timeout"
                                            : "idle timeout");
    else if (what & BEV_EVENT_EOF)
        conn_close(c, "client closed");
    else if (what & BEV_EVENT_ERROR)
        conn_close(c, strerror(EVUTIL_SOCKET_ERROR()));
}

static void
conn_close(pconn *c, const char *why)
{
    if (c->state == PC_CLOSED)
        return;
    tlog_debug(c->svc->log, c->logctx, "closing: %s", why);
    conn_set_state(c, PC_CLOSED);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    evtimer_del(c->resume);
    TAILQ_REMOVE(&c->svc->conns, c, link);
    TAILQ_INSERT_TAIL(&c->svc->dead, c, link);
    c->svc->nconns--;
    event_active(c->svc->reaper, EV_READ, 0);
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
    pagesvc *s = arg;
    pconn *c;

    (void)fd;
    (void)what;
    pconn *next;

    for (c = TAILQ_FIRST(&s->dead); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->redo_pending)
            continue; /* a worker writes its page; freed after */
        TAILQ_REMOVE(&s->dead, c, link);
        bufferevent_free(c->bev);
        event_free(c->resume);
        free(c->stmt);
        free(c->scram);
        free(c->redo_msg);
        free(c->redo_page);
        bb_destroy(c->bb);
        free(c);
    }
}

/* ---- accepting ---------------------------------------------------------- */

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

/* Refuse a connection with a FATAL ErrorResponse, best effort. */
static void
reject(pagesvc *s, evutil_socket_t fd, const char *sqlstate, const char *msg)
{
    struct evbuffer *b = evbuffer_new();

    s->st.rejected++;
    if (b != NULL) {
        size_t n;
        pgw_put_error(b, "FATAL", sqlstate, msg);
        n = evbuffer_get_length(b);
        if (send(fd, evbuffer_pullup(b, (ssize_t)n), n,
                 MSG_DONTWAIT | MSG_NOSIGNAL)
            < 0)
            (void)0;
        evbuffer_free(b);
    }
    evutil_closesocket(fd);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
    pagesvc *s = arg;
    pconn *c;
    char peer[80];
    int one = 1;

    (void)l;
    (void)salen;
    if (s->shutting_down) {
        reject(s, fd, PGW_SQLSTATE_SHUTDOWN, "tarnd is shutting down");
        return;
    }
    if (s->nconns >= MAX_CONNS) {
        tlog_warn(s->log, "page", "too many connections (%d); rejecting one",
                  s->nconns);
        reject(s, fd, PGW_SQLSTATE_TOO_MANY, "sorry, too many clients already");
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        reject(s, fd, PGW_SQLSTATE_INTERNAL, "out of memory");
        return;
    }
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->resume = evtimer_new(s->base, on_resume, c);
    if (c->bev == NULL || c->resume == NULL) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->resume != NULL)
            event_free(c->resume);
        free(c);
        s->st.rejected++;
        return;
    }
    c->svc = s;
    c->state = PC_STARTUP;
    c->id = ++s->next_id;
    if (RAND_bytes((unsigned char *)&c->key, sizeof(c->key)) != 1)
        c->key = (uint32_t)c->id * 2654435761u;
    format_peer(sa, peer, sizeof(peer));
    snprintf(c->logctx, sizeof(c->logctx), "page#%llu %s",
             (unsigned long long)c->id, peer);
    TAILQ_INSERT_TAIL(&s->conns, c, link);
    s->nconns++;
    s->st.accepted++;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* Input holds at most one maximal message; on_write fires at OUT_LOW. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, PGW_MAX_MSG);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    /* libevent writes at most 16 KiB per wakeup by default: two pages, so
     * a pipelined stream paid one writev per two responses.  One write per
     * wakeup of everything queued (up to OUT_HIGH) costs a quarter of the
     * CPU per response (tests/bench/getpage). */
    bufferevent_set_max_single_write(c->bev, OUT_HIGH);
    set_timeouts(c, AUTH_TIMEOUT_MS, AUTH_TIMEOUT_MS);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    tlog_debug(s->log, c->logctx, "connected");
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    pagesvc *s = arg;
    int e = EVUTIL_SOCKET_ERROR();

    (void)l;
    tlog_error(s->log, "page", "accept failed: %s",
               evutil_socket_error_to_string(e));
}

tarn_rc
pagesvc_set_auth(pagesvc *s, const char *auth, tarn_err *err)
{
    scram_verifier v;
    tarn_rc rc;

    if (auth == NULL || auth[0] == '\0') {
        s->auth_on = false;
        return TARN_OK;
    }
    if ((rc = scram_verifier_from_setting(auth, &v, err)) != TARN_OK)
        return tarn_err_prefix(err, "page_auth: ");
    s->verifier = v;
    s->auth_on = true;
    return TARN_OK;
}

tarn_rc
pagesvc_create(const pagesvc_opts *o, pagesvc **out, tarn_err *err)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8];
    tarn_addr addr;
    pagesvc *s;
    tarn_rc rc;
    int gai;

    if ((rc = tarn_addr_parse(o->listen, &addr, err)) != TARN_OK)
        return tarn_err_prefix(err, "page_listen: ");
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    s->base = o->base;
    s->repo = o->repo;
    s->log = o->log;
    s->cfg = o->cfg;
    TAILQ_INIT(&s->conns);
    TAILQ_INIT(&s->dead);
    snprintf(s->addr, sizeof(s->addr), "%s", o->listen);
    if ((rc = pagesvc_set_auth(s, o->auth, err)) != TARN_OK)
        goto fail;
    s->reaper = event_new(o->base, -1, 0, on_reap, s);
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
        rc =
            tarn_err_set(err, TARN_EINVAL, "page_listen: cannot resolve %s: %s",
                         addr.host, gai_strerror(gai));
        goto fail;
    }
    s->listener = evconnlistener_new_bind(
        o->base, on_accept, s,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
        ai->ai_addr, (int)ai->ai_addrlen);
    if (s->listener == NULL) {
        rc = tarn_err_errno(err, errno,
                            "page service: cannot listen on %s (page_listen)",
                            o->listen);
        goto fail;
    }
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    freeaddrinfo(ai);
    *out = s;
    return TARN_OK;
fail:
    if (ai != NULL)
        freeaddrinfo(ai);
    pagesvc_destroy(s);
    return rc;
}

void
pagesvc_lsn_advanced(pagesvc *s, const tarn_id *tenant, const tarn_id *tl,
                     tarn_lsn last)
{
    pconn *c;

    (void)last;
    TAILQ_FOREACH (c, &s->conns, link)
        if (c->waiting && tarn_id_equal(&c->tl, tl)
            && tarn_id_equal(&c->tenant, tenant))
            schedule_resume(c);
}

void
pagesvc_shutdown(pagesvc *s)
{
    pconn *c, *next;

    if (s == NULL)
        return;
    s->shutting_down = true;
    if (s->listener != NULL) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
    for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        conn_fatal(c, PGW_SQLSTATE_SHUTDOWN,
                   "terminating connection: tarnd is shutting down");
    }
}

int
pagesvc_open_conns(const pagesvc *s)
{
    return s != NULL ? s->nconns : 0;
}

void
pagesvc_metrics(const pagesvc *s, struct evbuffer *out)
{
    const pagesvc_stats *st = &s->st;

    evbuffer_add_printf(
        out,
        "# HELP tarn_page_connections_total Page service connections.\n"
        "# TYPE tarn_page_connections_total counter\n"
        "tarn_page_connections_total{result=\"accepted\"} %llu\n"
        "tarn_page_connections_total{result=\"rejected\"} %llu\n"
        "# HELP tarn_page_connections_open Page service connections open "
        "now.\n"
        "# TYPE tarn_page_connections_open gauge\n"
        "tarn_page_connections_open %d\n"
        "# HELP tarn_page_auth_total Page service authentications.\n"
        "# TYPE tarn_page_auth_total counter\n"
        "tarn_page_auth_total{result=\"ok\"} %llu\n"
        "tarn_page_auth_total{result=\"failed\"} %llu\n"
        "# HELP tarn_page_queries_total Queries run (simple or Execute).\n"
        "# TYPE tarn_page_queries_total counter\n"
        "tarn_page_queries_total %llu\n"
        "# HELP tarn_page_streams_total pagestream sessions started.\n"
        "# TYPE tarn_page_streams_total counter\n"
        "tarn_page_streams_total %llu\n"
        "# HELP tarn_page_fatal_errors_total Connections ended by a FATAL "
        "error (malformed input, failed authentication).\n"
        "# TYPE tarn_page_fatal_errors_total counter\n"
        "tarn_page_fatal_errors_total %llu\n"
        "# HELP tarn_page_lsn_waits_total Requests that waited for WAL.\n"
        "# TYPE tarn_page_lsn_waits_total counter\n"
        "tarn_page_lsn_waits_total{result=\"waited\"} %llu\n"
        "tarn_page_lsn_waits_total{result=\"timeout\"} %llu\n"
        "# HELP tarn_page_yields_total Times a connection gave the reactor "
        "back with messages still buffered (at most 64 per wakeup).\n"
        "# TYPE tarn_page_yields_total counter\n"
        "tarn_page_yields_total %llu\n"
        "# HELP tarn_page_response_bytes_total Bytes of pagestream "
        "responses.\n"
        "# TYPE tarn_page_response_bytes_total counter\n"
        "tarn_page_response_bytes_total %llu\n",
        (unsigned long long)st->accepted, (unsigned long long)st->rejected,
        s->nconns, (unsigned long long)st->auth_ok,
        (unsigned long long)st->auth_failed, (unsigned long long)st->queries,
        (unsigned long long)st->streams,
        (unsigned long long)st->protocol_errors,
        (unsigned long long)st->lsn_waits, (unsigned long long)st->lsn_timeouts,
        (unsigned long long)st->yields, (unsigned long long)st->resp_bytes);
    evbuffer_add_printf(
        out,
        "# HELP tarn_page_basebackups_total basebackup commands.\n"
        "# TYPE tarn_page_basebackups_total counter\n"
        "tarn_page_basebackups_total{result=\"started\"} %llu\n"
        "tarn_page_basebackups_total{result=\"failed\"} %llu\n"
        "# HELP tarn_page_basebackup_bytes_total Bytes of basebackup CopyData "
        "(after --gzip).\n"
        "# TYPE tarn_page_basebackup_bytes_total counter\n"
        "tarn_page_basebackup_bytes_total %llu\n",
        (unsigned long long)st->backups, (unsigned long long)st->backup_errors,
        (unsigned long long)st->backup_bytes);
    evbuffer_add_printf(out,
                        "# HELP tarn_page_requests_total pagestream requests "
                        "by type.\n"
                        "# TYPE tarn_page_requests_total counter\n");
    for (int i = 0; i < PS_REQ_NTYPES; i++)
        evbuffer_add_printf(out, "tarn_page_requests_total{type=\"%s\"} %llu\n",
                            ps_req_name((uint8_t)i),
                            (unsigned long long)st->requests[i]);
    evbuffer_add_printf(out, "# HELP tarn_page_request_errors_total pagestream "
                             "requests answered with an error (tag 103).\n"
                             "# TYPE tarn_page_request_errors_total counter\n");
    for (int i = 0; i < PS_REQ_NTYPES; i++)
        evbuffer_add_printf(out,
                            "tarn_page_request_errors_total{type=\"%s\"} "
                            "%llu\n",
                            ps_req_name((uint8_t)i),
                            (unsigned long long)st->req_errors[i]);
}

void
pagesvc_destroy(pagesvc *s)
{
    pconn *c;

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
