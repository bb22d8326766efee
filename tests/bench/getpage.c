/*
 * getpage.c - a pipelined GetPage load generator for the page service, in
 * the manner of Neon's pagebench: N connections, each in pagestream, each
 * keeping D GetPage requests outstanding for random blocks, for T seconds
 * after a warm-up.
 *
 *   getpage [-c CONNS] [-d DEPTH] [-t SECONDS] [-w WARMUP] [-j THREADS]
 *           [-v 2|3] [-s SEED] [-S] [-E] HOST:PORT TENANT TIMELINE LSN
 *           SPC/DB/REL:NBLOCKS...
 *
 * Every request is for the latest version, as a primary compute asks for
 * it: request_lsn = u64 max and not_modified_since = LSN (the timeline's
 * last_record_lsn, so tarnd never waits for WAL).  The block is uniform
 * over all blocks of the relations given (main forks), so a relation is
 * picked in proportion to its size.  -S (sweep) reads every block once
 * instead, in order, spread over the connections, and stops when done
 * (or at the time limit): a pre-warm pass.  -E measures a peer instead
 * of HOST:PORT: an echo server inside this process that answers at once
 * with a zero page (v3 only), the floor any page server has here.
 *
 * The client speaks the protocol over raw sockets with its own framing
 * (docs/protocols.md): a StartupMessage (trust authentication only: tarnd
 * with an empty page_auth), the Query `pagestream_vN <tenant> <timeline>`,
 * CopyBothResponse, then one CopyData per request and per response.  Each
 * response is checked: tag 102, and in v3 the echoed reqid and block of
 * the oldest outstanding request (responses come in request order).
 *
 * Latency of a request = the time its response was read - the time it was
 * handed to send().  A closed loop: a connection sends a new request as
 * soon as a response frees a slot.  Connections are spread over THREADS
 * threads, each with its own poll() loop.  Only responses read after the
 * warm-up count.
 *
 * Output: one JSON line with requests/s, MiB/s of pages, latency mean,
 * p50, p99, p99.9 and max in microseconds, all responses (warm-up
 * included, to divide CPU time by), errors, and the client's CPU seconds
 * (user + system), parsed by getpage.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLCKSZ      8192
#define RBUF_SIZE   (256 * 1024)
#define MAX_CONNS   1024
#define MAX_RELS    256
#define TAG_GETPAGE 2
#define R_GETPAGE   102
#define R_ERROR     103
#define LSN_MAX     UINT64_MAX

typedef struct rel {
    uint32_t spc, db, rel, nblocks;
} rel;

/* One outstanding request. */
typedef struct slot {
    uint64_t reqid;
    int64_t sent_ns;
    uint32_t blk;
} slot;

typedef struct conn {
    int fd, idx;
    uint8_t *rbuf;
    size_t rlen;
    uint8_t *wbuf;
    size_t wlen, woff, wcap;
    slot *ring; /* DEPTH slots, FIFO */
    uint32_t head, count;
    uint64_t counter, seed;
    uint64_t next; /* -S: this connection's next block in the sweep */
} conn;

typedef struct worker {
    pthread_t th;
    conn **conns;
    int nconns;
    uint32_t *lat; /* nanoseconds, one per counted response */
    size_t nlat, caplat;
    uint64_t responses; /* warm-up included */
    uint64_t errors;
    char errmsg[256];
} worker;

static struct {
    int conns, depth, threads, version;
    bool sweep, echo;
    double seconds, warmup;
    uint64_t seed, lsn;
    const char *tenant, *timeline;
    rel rels[MAX_RELS];
    uint64_t cum[MAX_RELS]; /* cumulative block counts */
    int nrels;
    uint64_t total_blocks;
    int64_t measure_from, end; /* monotonic ns */
} g;

static void
die(const char *fmt, const char *arg)
{
    fprintf(stderr, "getpage: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: cheap and reproducible. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8
           | p[3];
}

static uint64_t
get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* ---- connection setup (blocking) ---------------------------------------- */

static void
write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void
read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            die("%s", "the server closed the connection during setup");
        if (n < 0)
            die("read: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* One typed message into @p body (NUL-terminated); returns its type. */
static char
read_msg(int fd, char *body, size_t cap, size_t *len)
{
    uint8_t hdr[5];
    uint32_t n;

    read_all(fd, hdr, 5);
    n = get_u32(hdr + 1);
    if (n < 4 || n - 4 >= cap)
        die("%s", "bad message length during setup");
    read_all(fd, body, n - 4);
    body[n - 4] = '\0';
    *len = n - 4;
    return (char)hdr[0];
}

/* The M field of an ErrorResponse. */
static const char *
error_text(const char *body, size_t len)
{
    for (size_t i = 0; i < len && body[i] != '\0'; i += strlen(body + i) + 1) {
        if (body[i] == 'M')
            return body + i + 1;
    }
    return "(no message)";
}

static int
connect_to(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {0}, *ai;
    int fd, one = 1;

    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
        die("HOST:PORT expected, not %s", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        die("cannot resolve %s", hostport);
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        die("connect: %s", strerror(errno));
    freeaddrinfo(ai);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Startup, trust authentication, then `pagestream_vN`: CopyBoth. */
static void
handshake(int fd)
{
    uint8_t pkt[256];
    char body[4096], q[160];
    size_t off = 8, len;
    static const char *params[] = {
        "user", "bench", "database", "bench", "application_name", "getpage"};

    put_u32(pkt + 4, 196608);
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        memcpy(pkt + off, params[i], strlen(params[i]) + 1);
        off += strlen(params[i]) + 1;
    }
    pkt[off++] = 0;
    put_u32(pkt, (uint32_t)off);
    write_all(fd, pkt, off);
    for (;;) {
        char t = read_msg(fd, body, sizeof(body), &len);
        if (t == 'E')
            die("startup: %s", error_text(body, len));
        if (t == 'R' && len >= 4 && get_u32((uint8_t *)body) != 0)
            die("%s", "the page service asks for a password; getpage "
                      "needs trust (an empty page_auth)");
        if (t == 'Z')
            break;
    }
    len = (size_t)snprintf(q, sizeof(q), "pagestream_v%d %s %s", g.version,
                           g.tenant, g.timeline)
          + 1;
    pkt[0] = 'Q';
    put_u32(pkt + 1, (uint32_t)(len + 4));
    memcpy(pkt + 5, q, len);
    write_all(fd, pkt, len + 5);
    for (;;) {
        char t = read_msg(fd, body, sizeof(body), &len);
        if (t == 'E')
            die("pagestream: %s", error_text(body, len));
        if (t == 'W')
            break;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        die("fcntl: %s", strerror(errno));
}

/* ---- the load loop ------------------------------------------------------ */

/* Block @p b of all the relations' blocks laid end to end. */
static const rel *
locate(uint64_t b, uint32_t *blk)
{
    int lo = 0, hi = g.nrels - 1;

    while (lo < hi) { /* the first relation whose cum exceeds b */
        int mid = (lo + hi) / 2;
        if (g.cum[mid] > b)
            hi = mid;
        else
            lo = mid + 1;
    }
    *blk = (uint32_t)(b - (lo > 0 ? g.cum[lo - 1] : 0));
    return &g.rels[lo];
}

/* Queue requests until DEPTH are outstanding (or the sweep is done). */
static void
fill(conn *c, int64_t now)
{
    size_t hdr = g.version == 3 ? 25 : 17, n = hdr + 17;

    while (c->count < (uint32_t)g.depth) {
        slot *s = &c->ring[(c->head + c->count) % (uint32_t)g.depth];
        uint8_t *p;
        uint32_t blk;
        const rel *r;

        if (g.sweep && c->next >= g.total_blocks)
            break;
        r = locate(g.sweep ? c->next : rnd(&c->seed) % g.total_blocks, &blk);

        if (c->wlen + 5 + n > c->wcap) {
            if (c->woff > 0) {
                memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
                c->wlen -= c->woff;
                c->woff = 0;
            }
            if (c->wlen + 5 + n > c->wcap)
                break;
        }
        p = c->wbuf + c->wlen;
        p[0] = 'd';
        put_u32(p + 1, (uint32_t)(n + 4));
        p += 5;
        *p++ = TAG_GETPAGE;
        s->reqid = (uint64_t)c->idx << 32 | (c->counter++ & 0xffffffffu);
        if (g.version == 3) {
            put_u64(p, s->reqid);
            p += 8;
        }
        put_u64(p, LSN_MAX);
        put_u64(p + 8, g.lsn);
        p += 16;
        put_u32(p, r->spc);
        put_u32(p + 4, r->db);
        put_u32(p + 8, r->rel);
        p[12] = 0; /* main fork */
        put_u32(p + 13, blk);
        s->blk = blk;
        s->sent_ns = now;
        c->wlen += 5 + n;
        c->count++;
        c->next += (uint64_t)g.conns;
    }
}

static void
flush_out(conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n =
            send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            die("send: %s", strerror(errno));
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
}

static void
record(worker *w, int64_t ns)
{
    if (w->nlat == w->caplat) {
        w->caplat = w->caplat ? w->caplat * 2 : 1 << 16;
        w->lat = realloc(w->lat, w->caplat * sizeof(uint32_t));
        if (w->lat == NULL)
            die("%s", "out of memory");
    }
    w->lat[w->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* One CopyData payload: the response to the oldest outstanding request. */
static void
on_response(worker *w, conn *c, const uint8_t *p, size_t len, int64_t now)
{
    slot *s = &c->ring[c->head];
    size_t hdr = g.version == 3 ? 25 : 1;

    if (c->count == 0)
        die("%s", "a response to no request");
    if (len >= 1 && p[0] == R_ERROR) {
        if (w->errors++ == 0) {
            /* Kept for the JSON line: no quotes, backslashes or controls. */
            snprintf(w->errmsg, sizeof(w->errmsg), "%.*s",
                     (int)(len > hdr ? len - hdr : 0), p + hdr);
            for (char *e = w->errmsg; *e != '\0'; e++)
                if (*e == '"' || *e == '\\' || (unsigned char)*e < 0x20)
                    *e = '?';
        }
    } else if (g.version == 3) {
        if (len != 25 + 17 + BLCKSZ || p[0] != R_GETPAGE)
            die("%s", "not a GetPage response");
        if (get_u64(p + 1) != s->reqid || get_u32(p + 25 + 13) != s->blk)
            die("%s", "the response does not echo the oldest request");
    } else if (len != 1 + BLCKSZ || p[0] != R_GETPAGE) {
        die("%s", "not a GetPage response");
    }
    w->responses++;
    if (now >= g.measure_from)
        record(w, now - s->sent_ns);
    c->head = (c->head + 1) % (uint32_t)g.depth;
    c->count--;
}

/* Read what is there and answer every whole message. */
static void
on_readable(worker *w, conn *c)
{
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
    size_t pos = 0;
    int64_t now;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n == 0)
        die("%s", "the server closed a connection");
    if (n < 0)
        die("recv: %s", strerror(errno));
    now = now_ns();
    c->rlen += (size_t)n;
    while (c->rlen - pos >= 5) {
        const uint8_t *m = c->rbuf + pos;
        uint32_t ml = get_u32(m + 1);

        if (ml < 4 || ml > RBUF_SIZE - 1)
            die("%s", "bad message length");
        if (c->rlen - pos < 1 + (size_t)ml)
            break;
        if (m[0] == 'd') {
            on_response(w, c, m + 5, ml - 4, now);
        } else if (m[0] == 'E') {
            char body[1024];
            size_t bl = ml - 4 < sizeof(body) - 1 ? ml - 4 : sizeof(body) - 1;
            memcpy(body, m + 5, bl);
            body[bl] = '\0';
            die("server error: %s", error_text(body, bl));
        } else if (m[0] != 'N') { /* NoticeResponse is harmless */
            die("%s", "unexpected message during pagestream");
        }
        pos += 1 + ml;
    }
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
}

static void *
run_worker(void *arg)
{
    worker *w = arg;
    struct pollfd *pfd = calloc((size_t)w->nconns, sizeof(*pfd));
    int64_t now = now_ns();

    if (pfd == NULL)
        die("%s", "out of memory");
    for (int i = 0; i < w->nconns; i++) {
        fill(w->conns[i], now);
        flush_out(w->conns[i]);
    }
    while ((now = now_ns()) < g.end) {
        int ms = (int)((g.end - now) / 1000000) + 1, rc, busy = 0;

        for (int i = 0; i < w->nconns; i++)
            busy += w->conns[i]->count > 0;
        if (busy == 0)
            break; /* -S: every block was read */
        for (int i = 0; i < w->nconns; i++) {
            conn *c = w->conns[i];
            pfd[i].fd = c->fd;
            pfd[i].events = POLLIN | (c->woff < c->wlen ? POLLOUT : 0);
            pfd[i].revents = 0;
        }
        rc = poll(pfd, (nfds_t)w->nconns, ms > 100 ? 100 : ms);
        if (rc < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        for (int i = 0; rc > 0 && i < w->nconns; i++) {
            conn *c = w->conns[i];
            /* Read first: a closing server may have said why. */
            if (pfd[i].revents & (POLLIN | POLLHUP))
                on_readable(w, c);
            if (pfd[i].revents & (POLLERR | POLLNVAL))
                die("%s", "a connection failed");
            if (pfd[i].revents & (POLLIN | POLLOUT)) {
                fill(c, now_ns());
                flush_out(c);
            }
        }
    }
    free(pfd);
    return NULL;
}

/* ---- -E: the echo peer -------------------------------------------------- */

/*
 * A page server that stores nothing: it answers every GetPage at once with
 * a zero page and the v3 echo, from one blocking thread per connection.
 * Measured with the same client, it is the floor that loopback TCP, the
 * two processes' wakeups and this machine's load leave for any page
 * server.
 */
/* The echo side's I/O: false when the client has gone (the end of a run). */
static bool
echo_read(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool
echo_write(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void *
echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t hdr[5], *in = malloc(RBUF_SIZE), *out = calloc(1, 5 + 8234);
    static const uint8_t auth_ok[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0},
                         ready[] = {'Z', 0, 0, 0, 5, 'I'},
                         copyboth[] = {'W', 0, 0, 0, 7, 0, 0, 0};
    uint32_t n;

    if (in == NULL || out == NULL)
        die("%s", "out of memory");
    /* The startup packet: its length, then the rest. */
    if (!echo_read(fd, hdr, 4) || (n = get_u32(hdr)) < 8 || n > RBUF_SIZE
        || !echo_read(fd, in, n - 4)
        || !echo_write(fd, auth_ok, sizeof(auth_ok))
        || !echo_write(fd, ready, sizeof(ready)))
        goto out;
    out[0] = 'd';
    put_u32(out + 1, 4 + 8234);
    out[5] = R_GETPAGE;
    while (echo_read(fd, hdr, 5)) {
        n = get_u32(hdr + 1);
        if (n < 4 || n > RBUF_SIZE || !echo_read(fd, in, n - 4))
            break;
        if (hdr[0] == 'Q') {
            if (!echo_write(fd, copyboth, sizeof(copyboth)))
                break;
        } else if (hdr[0] == 'd' && n - 4 >= 42 && in[0] == TAG_GETPAGE) {
            memcpy(out + 6, in + 1, 24 + 17); /* reqid, LSNs, tag, blkno */
            if (!echo_write(fd, out, 5 + 8234))
                break;
        } else if (hdr[0] == 'X') {
            break;
        }
    }
out:
    close(fd);
    free(in);
    free(out);
    return NULL;
}

static void *
echo_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg, one = 1;

    for (;;) {
        pthread_t th;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (pthread_create(&th, NULL, echo_conn, (void *)(intptr_t)fd) != 0)
            die("%s", "pthread_create failed");
        pthread_detach(th);
    }
    return NULL;
}

/* Start the echo peer on a free loopback port; returns "127.0.0.1:PORT". */
static const char *
echo_start(void)
{
    static char addr[32];
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof(sa);
    pthread_t th;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(lfd, MAX_CONNS) != 0
        || getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
        die("echo: %s", strerror(errno));
    if (pthread_create(&th, NULL, echo_accept, (void *)(intptr_t)lfd) != 0)
        die("%s", "pthread_create failed");
    pthread_detach(th);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    return addr;
}

/* ---- main --------------------------------------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double
pct_us(const uint32_t *v, size_t n, double p)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i] / 1000.0;
}

static void
parse_rel(const char *s)
{
    rel *r = &g.rels[g.nrels];

    if (g.nrels == MAX_RELS
        || sscanf(s, "%u/%u/%u:%u", &r->spc, &r->db, &r->rel, &r->nblocks) != 4)
        die("SPC/DB/REL:NBLOCKS expected, not %s", s);
    if (r->nblocks == 0)
        return;
    g.total_blocks += r->nblocks;
    g.cum[g.nrels++] = g.total_blocks;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: getpage [-c CONNS] [-d DEPTH] [-t SECONDS] [-w WARMUP] "
            "[-j THREADS] [-v 2|3] [-s SEED] [-S] [-E]\n"
            "               HOST:PORT TENANT TIMELINE LSN "
            "SPC/DB/REL:NBLOCKS...\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    worker *ws;
    conn *cs;
    uint32_t *all;
    size_t n = 0;
    uint64_t errors = 0, responses = 0, hi, lo;
    double sum = 0;
    struct rusage ru;
    const char *errmsg = "", *target;
    int opt;

    signal(SIGPIPE, SIG_IGN); /* a closed socket is an error, not a kill */
    g.conns = 1;
    g.depth = 1;
    g.threads = 1;
    g.version = 3;
    g.seconds = 10;
    g.warmup = 2;
    g.seed = 0x9E3779B97F4A7C15ULL;
    while ((opt = getopt(argc, argv, "c:d:t:w:j:v:s:SE")) != -1) {
        switch (opt) {
        case 'c':
            g.conns = atoi(optarg);
            break;
        case 'd':
            g.depth = atoi(optarg);
            break;
        case 't':
            g.seconds = atof(optarg);
            break;
        case 'w':
            g.warmup = atof(optarg);
            break;
        case 'j':
            g.threads = atoi(optarg);
            break;
        case 'v':
            g.version = atoi(optarg);
            break;
        case 's':
            g.seed = strtoull(optarg, NULL, 0);
            break;
        case 'S':
            g.sweep = true;
            break;
        case 'E':
            g.echo = true;
            break;
        default:
            usage();
        }
    }
    if (argc - optind < 5 || g.conns < 1 || g.conns > MAX_CONNS || g.depth < 1
        || g.depth > 4096 || g.threads < 1 || (g.version != 2 && g.version != 3)
        || g.seconds <= 0 || g.warmup < 0)
        usage();
    if (g.threads > g.conns)
        g.threads = g.conns;
    target = g.echo ? echo_start() : argv[optind];
    g.tenant = argv[optind + 1];
    g.timeline = argv[optind + 2];
    if (sscanf(argv[optind + 3], "%" SCNx64 "/%" SCNx64, &hi, &lo) != 2)
        die("LSN X/Y expected, not %s", argv[optind + 3]);
    g.lsn = hi << 32 | lo;
    for (int i = optind + 4; i < argc; i++)
        parse_rel(argv[i]);
    if (g.total_blocks == 0)
        die("%s", "no blocks to read");

    cs = calloc((size_t)g.conns, sizeof(*cs));
    ws = calloc((size_t)g.threads, sizeof(*ws));
    if (cs == NULL || ws == NULL)
        die("%s", "out of memory");
    for (int i = 0; i < g.conns; i++) {
        conn *c = &cs[i];
        c->idx = i;
        c->next = (uint64_t)i;
        c->seed = g.seed + (uint64_t)i * 0x2545F4914F6CDD1DULL;
        c->wcap = (size_t)g.depth * 64 + 64;
        c->rbuf = malloc(RBUF_SIZE);
        c->wbuf = malloc(c->wcap);
        c->ring = calloc((size_t)g.depth, sizeof(slot));
        if (c->rbuf == NULL || c->wbuf == NULL || c->ring == NULL)
            die("%s", "out of memory");
        c->fd = connect_to(target);
        handshake(c->fd);
    }
    for (int i = 0; i < g.threads; i++) {
        ws[i].conns = calloc((size_t)g.conns, sizeof(conn *));
        if (ws[i].conns == NULL)
            die("%s", "out of memory");
    }
    for (int i = 0; i < g.conns; i++) {
        worker *w = &ws[i % g.threads];
        w->conns[w->nconns++] = &cs[i];
    }
    g.measure_from = now_ns() + (int64_t)(g.warmup * 1e9);
    g.end = g.measure_from + (int64_t)(g.seconds * 1e9);
    for (int i = 0; i < g.threads; i++)
        if (pthread_create(&ws[i].th, NULL, run_worker, &ws[i]) != 0)
            die("%s", "pthread_create failed");
    for (int i = 0; i < g.threads; i++) {
        pthread_join(ws[i].th, NULL);
        n += ws[i].nlat;
        responses += ws[i].responses;
        errors += ws[i].errors;
        if (ws[i].errors > 0 && errmsg[0] == '\0')
            errmsg = ws[i].errmsg;
    }
    for (int i = 0; i < g.conns; i++) {
        static const uint8_t terminate[5] = {'X', 0, 0, 0, 4};
        (void)send(cs[i].fd, terminate, sizeof(terminate), MSG_NOSIGNAL);
        close(cs[i].fd);
    }
    all = malloc((n ? n : 1) * sizeof(uint32_t));
    if (all == NULL)
        die("%s", "out of memory");
    n = 0;
    for (int i = 0; i < g.threads; i++) {
        memcpy(all + n, ws[i].lat, ws[i].nlat * sizeof(uint32_t));
        n += ws[i].nlat;
    }
    for (size_t i = 0; i < n; i++)
        sum += all[i];
    qsort(all, n, sizeof(uint32_t), cmp_u32);
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"conns\": %d, \"depth\": %d, \"threads\": %d, \"version\": %d, "
           "\"warmup_s\": %g, \"seconds\": %g, \"requests\": %zu, "
           "\"rps\": %.0f, \"mib_s\": %.1f, \"mean_us\": %.1f, "
           "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
           "\"max_us\": %.1f, \"responses\": %llu, \"errors\": %llu, "
           "\"first_error\": \"%s\", \"client_cpu_s\": %.3f}\n",
           g.conns, g.depth, g.threads, g.version, g.warmup, g.seconds, n,
           (double)n / g.seconds, (double)n * BLCKSZ / g.seconds / 1048576.0,
           n ? sum / (double)n / 1000.0 : 0.0, pct_us(all, n, 0.5),
           pct_us(all, n, 0.99), pct_us(all, n, 0.999),
           n ? all[n - 1] / 1000.0 : 0.0, (unsigned long long)responses,
           (unsigned long long)errors, errmsg,
           ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
               + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return errors > 0 ? 1 : 0;
}
