/*
 * walsvc.c - the WAL service.
 *
 * Data path for one timeline:
 *
 *   walrecv on_data ──► verify (resume only) ──► walstore_write (pwrite)
 *        │                                        │
 *        │                                        ▼
 *        │                              walscan_feed: where does the
 *        │                              last complete record end?
 *        ▼
 *   maybe_sync: if no sync job is running, package everything written
 *   so far (walstore_sync_prepare) and hand it to a worker; remember the
 *   scanner's record boundary at that moment.
 *        │ worker: fdatasync, renames, directory fsync
 *        ▼
 *   on_sync_done: flush := that boundary; tell the compute (standby
 *   status update); start the next sync if more was written meanwhile.
 *
 * The sync job is a flusher loop: once started on a worker it keeps
 * making each newly published burst durable with one more fdatasync, and
 * posts each new durable boundary back, until input goes quiet or moves to
 * another segment.  Under load that takes two thread hand-offs out of
 * every commit's path (measured: p50 130 us, p90 700 us on two busy
 * cores).  While idle it waits on the connection's socket, so the arrival
 * that wakes the reactor wakes it too, rather than one after the other.
 * It is still group commit: whatever arrives during one fdatasync is
 * covered by the next, so the number of fsyncs follows the disk, not the
 * message rate.  The worker shares only the flusher struct (and the ack
 * channel) with the reactor, each under its mutex.
 *
 * Failure rules.  A failed fdatasync breaks the timeline: the receiver
 * stops, nothing past the last good flush is ever reported, and only a
 * restart (which re-reads the WAL from disk) brings it back.  A write that
 * finds the disk full stalls: the connection is dropped (so no
 * acknowledgement goes out), and the receiver reconnects with backoff until
 * writes succeed again.  Every reconnect rewinds to the durable position,
 * so nothing unsynced is ever trusted.
 */
#include "net/walsvc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/core/fsutil.h"
#include "server/core/hist.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walscan.h"
#include "storage/wal.h"

#define CATALOG_SAVE_US (1000 * 1000)
#define ATTACH_GRACE_MS 15000
#define LAT_BUCKETS     13
/* A flusher with nothing new to sync for this long returns its thread. */
#define FLUSHER_IDLE_US 5000
/* How long a flusher woken by arriving WAL stays runnable for its publish
 * (see flusher_await()). */
#define FLUSHER_AWAIT_US 200
/* After a full disk met creating the next segment: how often to retry. */
#define PREALLOC_RETRY_US (1000 * 1000)

/* Bounds of the fsync and acknowledgement latency histograms, seconds. */
static const double lat_bounds[LAT_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1.0};

typedef enum tl_mode {
    TLM_DETACHED,  /* no compute */
    TLM_ATTACHING, /* an attach request waits for the handshake */
    TLM_ATTACHED,  /* following a compute (streaming or reconnecting) */
    TLM_REFUSED    /* the compute was refused; detach to clear */
} tl_mode;

typedef struct tlw tlw;

/*
 * The meeting point of the reactor and a running sync job: the only state
 * of a timeline that a worker thread touches, all of it under @mu.  The
 * reactor publishes what it has written (after each burst); the job makes
 * it durable and publishes how far it got.
 */
typedef struct flusher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* published by the reactor */
    uint64_t seq;     /* bumped by every publish; also read without mu */
    tarn_lsn written; /* write position */
    tarn_lsn boundary, boundary_start; /* record boundary <= written */
    uint64_t epoch;                    /* bumped by every rewind */
    uint64_t seg_gen;                  /* walstore_segment_gen() */
    int64_t oldest_us; /* when the oldest unsynced byte was written, or 0 */
    bool stop;         /* end the job now */
    /* published by the job */
    tarn_lsn durable, durable_start; /* for durable_epoch */
    uint64_t durable_epoch;
    tarn_lsn synced; /* write position covered by its fdatasyncs */
    /* the job's idle wait on the socket (see sync_work()) */
    bool polling; /* the job is in, or about to enter, that wait */
    int wake_fd;  /* eventfd that ends it early; -1: wait on cv only */
    /* the job's timings, taken in by apply_durable() */
    tarn_hist syncs;  /* one fdatasync */
    tarn_hist delays; /* from a group's first write to its acknowledgement */
} flusher;

struct tlw {
    TAILQ_ENTRY(tlw) link;
    walsvc *svc;
    tarn_id tenant, timeline;
    char logctx[96];
    char dir[PATH_MAX];
    int jobs; /* worker jobs in flight that point at us */

    bool has_wal; /* durable: WAL exists and the catalog says so */
    uint64_t sysid;
    uint32_t seg_size;
    tarn_lsn wal_start;
    walstore *store;
    walscan *scan;
    tarn_lsn flush, flush_prev;
    tarn_lsn saved_flush;
    int64_t saved_at_us;

    tarn_lsn stream_pos;   /* next LSN expected from the compute */
    tarn_lsn verify_until; /* bytes below this must equal ours */
    /*
     * A branch's first compute, attached at its branch point: the bytes
     * below it are the ancestor's WAL as a basebackup wrote it, which is
     * page headers and zeros where the ancestor's WAL has been removed.
     * They are stored (whole segments) but not scanned; records start
     * here.  0: scan everything.
     */
    tarn_lsn scan_from;
    uint64_t epoch; /* bumped by every rewind */

    uint8_t *pend; /* received but not yet written */
    size_t pend_len, pend_cap;

    int syncs; /* sync jobs in flight (0 or 1) */
    flusher fl;
    walrecv_ack ack;
    bool prealloc_busy;
    uint64_t checked_segno;
    /* The last creation of the next segment met a full disk: no new try
     * before prealloc_retry_us (0: none failed). */
    bool prealloc_full;
    int64_t prealloc_retry_us;
    char warning[TARN_ERR_MSG]; /* why it failed, while prealloc_full */

    walrecv *recv;
    char conninfo[CATALOG_CONNINFO_MAX + 1];
    tl_mode mode;
    bool has_start;
    tarn_lsn want_start;
    walsvc_done_fn done;
    void *done_arg;
    struct event *attach_tmo;

    bool broken, stalled, forgotten;
    char error[TARN_ERR_MSG];
    uint64_t bytes, fsyncs;
    tarn_lsn wal_end;
};

struct walsvc {
    walsvc_opts o;
    char data_dir[PATH_MAX];
    TAILQ_HEAD(, tlw) tls;
    bool stopping;
    struct event *tick; /* once a second: take in positions, save them */
    tarn_hist fsyncs, ack_delays;
};

typedef struct sync_job {
    tlw *t;
    uint64_t epoch, seq;
    int64_t oldest_us;
    tarn_lsn boundary, boundary_start;
    walstore_sync_job job;
} sync_job;

typedef struct prealloc_job {
    tlw *t;
    walstore_prealloc_job job;
} prealloc_job;

typedef struct rm_job {
    walsvc *svc;
    char path[PATH_MAX];
    tarn_err err;
    tarn_rc rc;
} rm_job;

static void maybe_sync(tlw *t);
static void maybe_prealloc(tlw *t);
static void apply_durable(tlw *t);
static void notify_flush(tlw *t);
static void drain_pending(tlw *t);
static void attach_finish(tlw *t, tarn_rc rc, const char *msg);

/* ---- helpers ---------------------------------------------------------- */

static void
tl_dir(walsvc *s, const tarn_id *tenant, const tarn_id *tl, char *buf,
       size_t len)
{
    char a[TARN_ID_STRLEN], b[TARN_ID_STRLEN];

    snprintf(buf, len, "%s/tenants/%s/timelines/%s", s->data_dir,
             tarn_id_format(tenant, a), tarn_id_format(tl, b));
}

static tlw *
find(walsvc *s, const tarn_id *tenant, const tarn_id *tl)
{
    tlw *t;

    TAILQ_FOREACH (t, &s->tls, link)
        if (tarn_id_equal(&t->tenant, tenant)
            && tarn_id_equal(&t->timeline, tl))
            return t;
    return NULL;
}

static tlw *
tlw_new(walsvc *s, const tarn_id *tenant, const tarn_id *tl)
{
    tlw *t = calloc(1, sizeof(*t));
    char idbuf[TARN_ID_STRLEN], base[PATH_MAX];

    if (t == NULL)
        return NULL;
    t->svc = s;
    t->tenant = *tenant;
    t->timeline = *tl;
    t->checked_segno = UINT64_MAX;
    pthread_mutex_init(&t->fl.mu, NULL);
    pthread_cond_init(&t->fl.cv, NULL);
    t->fl.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    tarn_hist_init(&t->fl.syncs, lat_bounds, LAT_BUCKETS);
    tarn_hist_init(&t->fl.delays, lat_bounds, LAT_BUCKETS);
    walrecv_ack_init(&t->ack);
    tarn_id_format(tl, idbuf);
    snprintf(t->logctx, sizeof(t->logctx), "wal %.8s", idbuf);
    tl_dir(s, tenant, tl, base, sizeof(base));
    snprintf(t->dir, sizeof(t->dir), "%.*s/wal", PATH_MAX - 8, base);
    TAILQ_INSERT_TAIL(&s->tls, t, link);
    return t;
}

static void
tlw_free(tlw *t)
{
    if (t->attach_tmo)
        event_free(t->attach_tmo);
    walrecv_destroy(t->recv);
    walscan_destroy(t->scan);
    walstore_close(t->store);
    free(t->pend);
    pthread_cond_destroy(&t->fl.cv);
    pthread_mutex_destroy(&t->fl.mu);
    if (t->fl.wake_fd >= 0)
        close(t->fl.wake_fd);
    walrecv_ack_destroy(&t->ack);
    free(t);
}

/* Drop a timeline's state once no worker job points at it. */
static void
tlw_release(tlw *t)
{
    if (t->forgotten && t->jobs == 0)
        tlw_free(t);
}

static void
save_catalog(tlw *t, bool force)
{
    catalog_timeline ct;
    tarn_err err;
    int64_t now = tarn_mono_us();

    if (!force
        && (t->flush == t->saved_flush
            || now - t->saved_at_us < CATALOG_SAVE_US))
        return;
    if (catalog_timeline_get(t->svc->o.cat, &t->tenant, &t->timeline, &ct, &err)
        != TARN_OK) {
        tlog_error(t->svc->o.log, t->logctx, "save WAL state: %s", err.msg);
        return;
    }
    if (t->has_wal) {
        ct.system_id = t->sysid;
        ct.wal_seg_size = t->seg_size;
        ct.wal_start_lsn = t->wal_start;
        ct.wal_flush_lsn = t->flush;
        ct.prev_record_lsn = t->flush_prev;
        if (ct.state == CATALOG_TL_EMPTY)
            ct.state = CATALOG_TL_ACTIVE;
        if (ct.start_lsn == 0)
            ct.start_lsn = t->wal_start;
    }
    snprintf(ct.compute_conninfo, sizeof(ct.compute_conninfo), "%s",
             t->mode == TLM_ATTACHED || t->mode == TLM_REFUSED ? t->conninfo
                                                               : "");
    if (catalog_timeline_update(t->svc->o.cat, &ct, &err) != TARN_OK) {
        tlog_error(t->svc->o.log, t->logctx, "save WAL state: %s", err.msg);
        return;
    }
    t->saved_flush = t->flush;
    t->saved_at_us = now;
}

static tarn_rc
open_scanner(tlw *t, tarn_err *err)
{
    walscan_opts o = {.seg_size = t->seg_size,
                      .sysid = t->sysid,
                      .tli = 1,
                      .start = t->flush,
                      .prev = t->flush_prev};

    /* At the very start of the WAL a record may be in progress. */
    o.mid_record = t->flush == t->wal_start && t->flush_prev == 0;
    if (t->scan_from > t->flush) {
        o.start = t->scan_from;
        o.prev = 0;
        o.mid_record = false;
    }
    walscan_destroy(t->scan);
    t->scan = NULL;
    return walscan_create(&o, &t->scan, err);
}

/* Forget what was received past the durable position. */
static tarn_rc
rewind_to_flush(tlw *t, tarn_err *err)
{
    tarn_rc rc;

    apply_durable(t);
    t->epoch++;
    pthread_mutex_lock(&t->fl.mu);
    t->fl.epoch = t->epoch;
    __atomic_store_n(&t->fl.seq, t->fl.seq + 1, __ATOMIC_RELEASE);
    t->fl.written = t->fl.boundary = t->fl.synced = t->flush;
    t->fl.boundary_start = t->flush_prev;
    pthread_mutex_unlock(&t->fl.mu);
    t->pend_len = 0;
    if (walstore_write_pos(t->store) > t->flush
        && (rc = walstore_set_write_pos(t->store, t->flush, err)) != TARN_OK)
        return rc;
    return open_scanner(t, err);
}

/*
 * A full disk stops acknowledgement at the durable position until space is
 * free: @p what failed ("writing WAL"), @p why says how.  Logged at ERROR
 * when the stall begins; each reconnect meets it again, at DEBUG.
 */
static void
stall(tlw *t, const char *what, const char *why)
{
    char l[TARN_LSN_STRLEN];
    tlog_level lvl = t->stalled ? TLOG_DEBUG : TLOG_ERROR;

    t->stalled = true;
    snprintf(t->error, sizeof(t->error),
             "disk full %s (%s); acknowledgements stop at %s until space is "
             "free",
             what, why, tarn_lsn_format(t->flush, l));
    TLOG(t->svc->o.log, lvl, t->logctx, "%s", t->error);
}

/* Stop the timeline for good (until a restart): a failed fsync. */
static void
break_timeline(tlw *t, const char *why)
{
    char l[TARN_LSN_STRLEN];

    t->broken = true;
    snprintf(t->error, sizeof(t->error),
             "%s; the timeline is stopped: nothing past %s is acknowledged, "
             "and a restart of tarnd re-reads its WAL from disk",
             why, tarn_lsn_format(t->flush, l));
    tlog_error(t->svc->o.log, t->logctx, "%s", t->error);
    if (t->mode == TLM_ATTACHING)
        attach_finish(t, TARN_EIO, t->error);
    if (t->recv != NULL)
        walrecv_disconnect(t->recv, t->error, false);
}

/* ---- worker jobs ------------------------------------------------------ */

/*
 * Worker: record how far the job got and acknowledge it to the compute at
 * once (the ack channel is thread-safe).  The reactor is not woken: it
 * reads the flusher's position when it needs it (apply_durable()).
 */
static void
flusher_report(tlw *t, tarn_lsn boundary, tarn_lsn start, uint64_t epoch,
               tarn_lsn written, int64_t began_us, int64_t oldest_us)
{
    flusher *f = &t->fl;
    tarn_lsn ack_flush = 0;
    int64_t now = tarn_mono_us();
    bool current;

    pthread_mutex_lock(&f->mu);
    current = epoch == f->epoch;
    if (current) {
        if (boundary > f->durable || f->durable_epoch != epoch) {
            f->durable = boundary;
            f->durable_start = start;
            f->durable_epoch = epoch;
        }
        if (written > f->synced)
            f->synced = written;
        ack_flush = f->durable;
    }
    tarn_hist_add(&f->syncs, (double)(now - began_us) / 1e6);
    if (current && ack_flush != 0 && oldest_us != 0)
        tarn_hist_add(&f->delays, (double)(now - oldest_us) / 1e6);
    pthread_mutex_unlock(&f->mu);
    if (current && ack_flush != 0)
        walrecv_ack_send(&t->ack, epoch, written, ack_flush, ack_flush, false,
                         false);
}

/* End a flusher's socket wait early (the caller saw f->polling). */
static void
flusher_poke(flusher *f)
{
    uint64_t one = 1;

    if (write(f->wake_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is full, so a poke is already pending. */
    }
}

/*
 * Worker: wait up to @p us for input on the replication socket, or for a
 * poke from publish() or a stop.  The poke closes a race: the reactor may
 * read and publish a burst between our check and the poll, and the socket
 * alone would then keep us waiting for the next arrival.
 * @return true if the socket has input.
 */
static bool
flusher_poll(tlw *t, int64_t us)
{
    struct pollfd p[2] = {{.fd = walrecv_ack_socket(&t->ack), .events = POLLIN},
                          {.fd = t->fl.wake_fd, .events = POLLIN}};
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
                          .tv_nsec = (long)(us % 1000000) * 1000L};
    uint64_t n;

    /* A negative fd (not streaming) is ignored by ppoll. */
    if (ppoll(p, 2, &ts, NULL) <= 0)
        return false;
    if ((p[1].revents & POLLIN) != 0
        && read(t->fl.wake_fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: another wait drained it first. */
    }
    return (p[0].revents & POLLIN) != 0;
}

/*
 * Worker: WAL has arrived, and the reactor is reading and writing it.
 * Stay runnable until it publishes (or FLUSHER_AWAIT_US), yielding the CPU
 * to whoever else wants it, instead of sleeping on the condition variable.
 * A sleeping thread needs a second wakeup after the publish, and on a busy
 * two-core VM that wakeup is the slow part of the commit path (a
 * receiver that did it all on one thread, the way pg_receivewal does, had
 * a replication round trip about 200 us shorter).  In wal_commit, against
 * sleeping: 9.6% more commits per second in 30 s rounds (3 of 3; 500 us
 * gave 5.3%); in 60 s rounds faster in 2 of 3, with a median 2.7% lower.
 * seq is read without the mutex: publish() stores it atomically, and
 * everything else is read under the mutex afterwards.
 */
static void
flusher_await(flusher *f, uint64_t seq)
{
    int64_t until = tarn_mono_us() + FLUSHER_AWAIT_US;

    while (__atomic_load_n(&f->seq, __ATOMIC_ACQUIRE) == seq
           && tarn_mono_us() < until)
        sched_yield();
}

/* Worker, under f->mu: nothing new since @p seq, and the job may go on. */
static bool
flusher_unchanged(const flusher *f, uint64_t seq, uint64_t seg_gen)
{
    return !f->stop && f->seq == seq && f->seg_gen == seg_gen;
}

/*
 * Worker: the flusher loop.  The first pass syncs what the job was
 * prepared with (and renames complete segments); then, for as long as the
 * reactor keeps publishing new bursts to the same segment, each burst gets
 * one more fdatasync, with no trip back to the reactor in between.  It
 * returns when nothing new came for FLUSHER_IDLE_US, when writes moved to
 * another segment (the reactor prepares a new job), or when told to stop.
 *
 * When idle it waits on the connection's socket, not on the reactor's
 * signal.  Waiting for the signal puts two wakeups in a row into every
 * commit's path: the reactor's, when WAL arrives, and then this thread's,
 * once the reactor has written and published it (measured: a median 80
 * us, p90 354 us, between publish and fdatasync on two busy cores).  On
 * the socket, one arrival wakes both threads together, and this one is
 * ready by the time the publish comes.  Once there is something to sync it
 * syncs it at once: waiting for WAL still unread in the socket, the way
 * pg_receivewal reads all that is waiting before each fsync, saved
 * fdatasyncs but cost commit throughput here (see docs/testing.md).
 */
static void
sync_work(void *arg)
{
    sync_job *j = arg;
    tlw *t = j->t;
    flusher *f = &t->fl;
    uint64_t seq = j->seq, gen = j->job.seg_gen;
    int64_t t0 = tarn_mono_us();

    walstore_sync_run(&j->job);
    if (j->job.errnum != 0)
        return;
    flusher_report(t, j->boundary, j->boundary_start, j->epoch, j->job.upto, t0,
                   j->oldest_us);
    for (;;) {
        struct timespec until = tarn_deadline_in(FLUSHER_IDLE_US);
        tarn_lsn written, boundary, start;
        uint64_t epoch;
        int64_t oldest;

        pthread_mutex_lock(&f->mu);
        if (flusher_unchanged(f, seq, gen) && f->wake_fd >= 0) {
            bool input;
            f->polling = true;
            pthread_mutex_unlock(&f->mu);
            input = flusher_poll(t, FLUSHER_IDLE_US);
            pthread_mutex_lock(&f->mu);
            f->polling = false;
            if (input && flusher_unchanged(f, seq, gen)) {
                pthread_mutex_unlock(&f->mu);
                flusher_await(f, seq);
                pthread_mutex_lock(&f->mu);
            }
        }
        while (flusher_unchanged(f, seq, gen))
            if (pthread_cond_timedwait(&f->cv, &f->mu, &until) == ETIMEDOUT)
                break;
        if (f->stop || f->seq == seq || f->seg_gen != gen) {
            pthread_mutex_unlock(&f->mu);
            return;
        }
        seq = f->seq;
        written = f->written;
        boundary = f->boundary;
        start = f->boundary_start;
        epoch = f->epoch;
        oldest = f->oldest_us;
        f->oldest_us = 0;
        pthread_mutex_unlock(&f->mu);
        t0 = tarn_mono_us();
        if (walstore_sync_again(&j->job) != 0)
            return;
        flusher_report(t, boundary, start, epoch, written, t0, oldest);
    }
}

/* Tell the page server how far the durable WAL reaches. */
static void
notify_flush(tlw *t)
{
    walsvc *s = t->svc;

    if (s->o.on_flush != NULL && t->has_wal && !t->forgotten)
        s->o.on_flush(s->o.on_flush_arg, &t->tenant, &t->timeline, t->flush,
                      t->wal_start, t->seg_size, t->sysid);
}

/*
 * Reactor: take in what the flusher made durable.  Called wherever the
 * reactor reads its flush position (status, rewinds, the HTTP detail, the
 * catalog), so the flusher never has to wake it.
 */
static void
apply_durable(tlw *t)
{
    walsvc *s = t->svc;
    flusher *f = &t->fl;
    tarn_lsn durable, start;
    uint64_t epoch;

    pthread_mutex_lock(&f->mu);
    durable = f->durable;
    start = f->durable_start;
    epoch = f->durable_epoch;
    t->fsyncs += f->syncs.n;
    tarn_hist_merge(&s->fsyncs, &f->syncs);
    tarn_hist_merge(&s->ack_delays, &f->delays);
    pthread_mutex_unlock(&f->mu);
    if (epoch == t->epoch && durable > t->flush) {
        t->flush = durable;
        t->flush_prev = start;
        notify_flush(t);
    }
}

/* Reactor: publish what has been written, for a running flusher. */
static void
publish(tlw *t)
{
    flusher *f = &t->fl;
    tarn_lsn written = walstore_write_pos(t->store);
    uint64_t gen = walstore_segment_gen(t->store);
    bool poke;

    pthread_mutex_lock(&f->mu);
    /*
     * A wakeup that brought no whole message (a large XLogData arrives in
     * several TCP segments) has nothing to publish.  Waking the flusher
     * for it would cost a full fdatasync, a device cache flush even with
     * no dirty page, and delay the next real group by as much.
     */
    if (written == f->written && f->epoch == t->epoch && f->seg_gen == gen) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    __atomic_store_n(&f->seq, f->seq + 1, __ATOMIC_RELEASE);
    if (f->oldest_us == 0 && written > f->written)
        f->oldest_us = tarn_mono_us();
    f->written = written;
    f->boundary = walscan_boundary(t->scan);
    f->boundary_start = walscan_last_start(t->scan);
    f->epoch = t->epoch;
    f->seg_gen = gen;
    poke = f->polling;
    f->polling = false;
    pthread_mutex_unlock(&f->mu);
    /* Signalled after the unlock: a flusher woken while the mutex is still
     * held would only block on it again, one more sleep and wakeup per
     * burst on a busy machine.  Usually the arrival of this burst already
     * woke it from its socket wait, and nothing needs poking. */
    if (poke)
        flusher_poke(f);
    pthread_cond_signal(&f->cv);
}

static void
sync_done(void *arg)
{
    sync_job *j = arg;
    tlw *t = j->t;
    tarn_lsn synced;
    tarn_err err;
    tarn_rc rc;

    t->jobs--;
    t->syncs--;
    pthread_mutex_lock(&t->fl.mu);
    synced = t->fl.epoch == j->epoch ? t->fl.synced : j->job.upto;
    pthread_mutex_unlock(&t->fl.mu);
    rc = walstore_sync_finish(t->store, &j->job, synced, &err);
    if (t->forgotten) {
        free(j);
        tlw_release(t);
        return;
    }
    apply_durable(t);
    free(j);
    if (rc != TARN_OK) {
        break_timeline(t, err.msg);
        return;
    }
    save_catalog(t, false);
    /* Retired segments may unblock a write that had to wait. */
    drain_pending(t);
    maybe_sync(t);
}

/*
 * Make what was written durable: hand it to the running flusher, or start
 * one.  Called once per burst of input, never per message.
 */
static void
maybe_sync(tlw *t)
{
    sync_job *j;
    tarn_err err;

    if (t->broken || t->store == NULL)
        return;
    publish(t);
    if (t->syncs > 0 || !walstore_sync_wanted(t->store))
        return;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return; /* retried after the next burst */
    if (walstore_sync_prepare(t->store, &j->job, &err) != TARN_OK) {
        free(j);
        break_timeline(t, err.msg);
        return;
    }
    j->t = t;
    j->epoch = t->epoch;
    j->boundary = walscan_boundary(t->scan);
    j->boundary_start = walscan_last_start(t->scan);
    pthread_mutex_lock(&t->fl.mu);
    j->seq = t->fl.seq;
    j->oldest_us = t->fl.oldest_us;
    t->fl.oldest_us = 0;
    pthread_mutex_unlock(&t->fl.mu);
    if (wpool_submit(t->svc->o.pool, sync_work, sync_done, j) != TARN_OK) {
        /* Shutting down: nothing unsynced was acknowledged, so skip it. */
        walstore_sync_abandon(t->store, &j->job);
        free(j);
        return;
    }
    t->jobs++;
    t->syncs++;
}

static tarn_rc append(tlw *t, const uint8_t *p, size_t len, size_t *used,
                      tarn_err *err);

/* Write what was held back while a segment was being made. */
static void
drain_pending(tlw *t)
{
    size_t used = 0;
    tarn_err err;
    tarn_rc rc;

    if (t->pend_len == 0)
        return;
    rc = append(t, t->pend, t->pend_len, &used, &err);
    memmove(t->pend, t->pend + used, t->pend_len - used);
    t->pend_len -= used;
    if (rc == TARN_OK && t->pend_len == 0) {
        if (t->recv != NULL)
            walrecv_resume(t->recv);
    } else if (rc != TARN_AGAIN) {
        t->pend_len = 0;
        if (t->recv != NULL && !t->broken)
            walrecv_disconnect(t->recv, err.msg, rc != TARN_ECONFLICT);
    }
}

static void
prealloc_work(void *arg)
{
    walstore_prealloc_run(&((prealloc_job *)arg)->job);
}

static void
prealloc_done(void *arg)
{
    prealloc_job *j = arg;
    tlw *t = j->t;
    tarn_err err;
    tarn_rc rc;

    t->jobs--;
    t->prealloc_busy = false;
    rc = walstore_prealloc_finish(t->store, &j->job, &err);
    free(j);
    if (t->forgotten) {
        tlw_release(t);
        return;
    }
    t->checked_segno = UINT64_MAX;
    if (rc == TARN_ENOSPC) {
        bool first = !t->prealloc_full;
        snprintf(t->warning, sizeof(t->warning),
                 "disk full creating the next WAL segment (%s); WAL goes on "
                 "into the current one, retrying every %d s",
                 err.msg, PREALLOC_RETRY_US / 1000000);
        t->prealloc_full = true;
        t->prealloc_retry_us = tarn_mono_us() + PREALLOC_RETRY_US;
        if (t->pend_len == 0) {
            /*
             * Nothing waits for the segment yet: the current one still has
             * room, and its blocks were written when it was created, so
             * WAL goes on into it and commits are still acknowledged.  The
             * timeline stalls only once the stream reaches its end
             * (append() then asks for the segment again at once).
             */
            if (first)
                tlog_warn(t->svc->o.log, t->logctx, "%s", t->warning);
            return;
        }
        stall(t, "creating a WAL segment", err.msg);
        t->pend_len = 0;
        if (t->recv != NULL)
            walrecv_disconnect(t->recv, t->error, true);
        return;
    }
    if (rc != TARN_OK) {
        break_timeline(t, err.msg);
        return;
    }
    if (t->prealloc_full)
        tlog_info(t->svc->o.log, t->logctx,
                  "created the next WAL segment: disk space is back");
    t->prealloc_full = false;
    t->prealloc_retry_us = 0;
    t->warning[0] = '\0';
    drain_pending(t);
    maybe_prealloc(t);
}

static void
maybe_prealloc(tlw *t)
{
    prealloc_job *j;
    uint64_t segno;

    if (t->prealloc_busy || t->broken || t->store == NULL)
        return;
    if (t->prealloc_retry_us != 0 && tarn_mono_us() < t->prealloc_retry_us)
        return;
    segno = walstore_write_pos(t->store) / t->seg_size;
    if (segno == t->checked_segno)
        return;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return;
    j->t = t;
    if (!walstore_prealloc_prepare(t->store, &j->job)) {
        free(j);
        t->checked_segno = segno; /* both segments exist */
        return;
    }
    if (wpool_submit(t->svc->o.pool, prealloc_work, prealloc_done, j)
        != TARN_OK) {
        walstore_prealloc_abandon(t->store, &j->job);
        free(j);
        return;
    }
    t->jobs++;
    t->prealloc_busy = true;
}

static void
rm_work(void *arg)
{
    rm_job *j = arg;
    j->rc = tarn_rmtree(j->path, &j->err);
}

static void
rm_done(void *arg)
{
    rm_job *j = arg;

    if (j->rc != TARN_OK)
        tlog_error(j->svc->o.log, NULL, "remove %s: %s", j->path, j->err.msg);
    else
        tlog_info(j->svc->o.log, NULL, "removed %s", j->path);
    free(j);
}

static void
remove_later(walsvc *s, const char *path)
{
    rm_job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return;
    j->svc = s;
    snprintf(j->path, sizeof(j->path), "%s", path);
    if (wpool_submit(s->o.pool, rm_work, rm_done, j) != TARN_OK) {
        rm_work(j); /* shutting down: do it here */
        rm_done(j);
    }
}

/* ---- the data path ---------------------------------------------------- */

/*
 * Write and scan @p len bytes at the stream position.  *used says how many
 * were taken.  TARN_AGAIN: wait for a segment; TARN_ENOSPC: disk full;
 * TARN_ECONFLICT: the WAL diverged; others: broken or corrupt stream.
 */
static tarn_rc
append(tlw *t, const uint8_t *p, size_t len, size_t *used, tarn_err *err)
{
    size_t n = 0;
    tarn_rc rc, src;

    *used = 0;
    rc = walstore_write(t->store, p, len, &n, err);
    if (n > 0) {
        tarn_err serr;
        size_t skip = 0;
        if (t->stream_pos < t->scan_from)
            skip = t->scan_from - t->stream_pos < n
                       ? (size_t)(t->scan_from - t->stream_pos)
                       : n;
        src = skip < n
                  ? walscan_feed(t->scan, p + skip, n - skip, NULL, NULL, &serr)
                  : TARN_OK;
        t->stream_pos += n;
        t->bytes += n;
        *used = n;
        if (t->stalled) {
            t->stalled = false;
            t->error[0] = '\0';
            tlog_info(t->svc->o.log, t->logctx,
                      "WAL writes succeed again; acknowledging");
        }
        if (src != TARN_OK) {
            if (src == TARN_ECONFLICT)
                return tarn_err_set(err, TARN_ECONFLICT,
                                    "the compute's WAL diverged from this "
                                    "timeline: %s",
                                    serr.msg);
            return tarn_err_set(err, TARN_EPROTO,
                                "invalid WAL from the compute: %s", serr.msg);
        }
    }
    if (rc == TARN_AGAIN)
        t->prealloc_retry_us = 0; /* the stream waits: try again now */
    maybe_prealloc(t);
    if (rc == TARN_AGAIN)
        maybe_sync(t); /* may retire segments and free the way */
    if (rc == TARN_ENOSPC) {
        stall(t, "writing WAL", err->msg);
        return tarn_err_set(err, TARN_ENOSPC, "%s", t->error);
    }
    if (rc != TARN_OK && rc != TARN_AGAIN) {
        break_timeline(t, err->msg);
        return rc;
    }
    return rc;
}

/* ---- receiver callbacks ----------------------------------------------- */

static tarn_rc
on_identify(void *arg, const walrecv_ident *id, tarn_lsn *start, tarn_err *err)
{
    tlw *t = arg;
    char l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];
    tarn_rc rc;

    if (id->tli != 1)
        return tarn_err_set(err, TARN_ECONFLICT,
                            "the compute is on PostgreSQL timeline %u; tarn "
                            "follows timeline 1 only",
                            id->tli);
    if (!pg_seg_size_valid(id->seg_size))
        return tarn_err_set(err, TARN_ECONFLICT,
                            "the compute reports WAL segment size %u",
                            id->seg_size);
    if (t->has_wal) {
        if (id->sysid != t->sysid)
            return tarn_err_set(err, TARN_ECONFLICT,
                                "the compute has system identifier %llu, but "
                                "this timeline's WAL comes from system %llu "
                                "(a compute from another initdb)",
                                (unsigned long long)id->sysid,
                                (unsigned long long)t->sysid);
        if (id->seg_size != t->seg_size)
            return tarn_err_set(err, TARN_ECONFLICT,
                                "the compute's WAL segment size %u differs "
                                "from this timeline's %u",
                                id->seg_size, t->seg_size);
        if (id->xlogpos < t->flush)
            return tarn_err_set(err, TARN_ECONFLICT,
                                "the compute's WAL ends at %s, before this "
                                "timeline's durable WAL at %s: it cannot "
                                "continue this timeline",
                                tarn_lsn_format(id->xlogpos, l1),
                                tarn_lsn_format(t->flush, l2));
        if ((rc = rewind_to_flush(t, err)) != TARN_OK)
            return rc;
        /* Restart at our last record and check it byte for byte. */
        *start = t->flush_prev ? t->flush_prev : t->flush;
        t->verify_until = t->flush;
    } else {
        tarn_lsn s0 = t->has_start ? t->want_start : id->xlogpos;
        walstore_opts so = {t->dir, id->seg_size, 1, id->sysid};
        if (t->has_start && t->want_start > id->xlogpos)
            return tarn_err_set(err, TARN_ECONFLICT,
                                "start_lsn %s is beyond the compute's end of "
                                "WAL %s",
                                tarn_lsn_format(t->want_start, l1),
                                tarn_lsn_format(id->xlogpos, l2));
        /* Whole segments, so that every file has its long page header. */
        t->sysid = id->sysid;
        t->seg_size = id->seg_size;
        t->wal_start = s0 - s0 % id->seg_size;
        t->flush = t->wal_start;
        t->flush_prev = 0;
        walstore_close(t->store);
        t->store = NULL;
        if ((rc = tarn_rmtree(t->dir, err)) != TARN_OK
            || (rc = walstore_open(&so, &t->store, err)) != TARN_OK
            || (rc = walstore_begin(t->store, t->wal_start, err)) != TARN_OK
            || (rc = open_scanner(t, err)) != TARN_OK)
            return rc;
        *start = t->wal_start;
        t->verify_until = 0;
        t->checked_segno = UINT64_MAX;
    }
    t->stream_pos = *start;
    maybe_prealloc(t);
    return TARN_OK;
}

static void
verified(tlw *t)
{
    char l[TARN_LSN_STRLEN];

    if (t->mode != TLM_ATTACHING)
        return;
    t->mode = TLM_ATTACHED;
    tlog_info(t->svc->o.log, t->logctx,
              "compute attached; WAL durable up to %s",
              tarn_lsn_format(t->flush, l));
    save_catalog(t, true);
    attach_finish(t, TARN_OK, "");
}

static void
on_streaming(void *arg, tarn_lsn start)
{
    tlw *t = arg;

    (void)start;
    walrecv_ack_set_tag(&t->ack, t->epoch);
    if (!t->has_wal) {
        t->has_wal = true;
        save_catalog(t, true);
    }
    if (t->stream_pos >= t->verify_until)
        verified(t);
}

static void
on_start_failed(void *arg, const char *msg)
{
    tlw *t = arg;

    if (t->mode == TLM_ATTACHING)
        attach_finish(t, TARN_ECONFLICT, msg);
}

static tarn_rc
on_data(void *arg, tarn_lsn start, const uint8_t *data, size_t len,
        tarn_err *err)
{
    tlw *t = arg;
    char l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];
    size_t used;
    tarn_rc rc;

    if (start != t->stream_pos)
        return tarn_err_set(
            err, TARN_EPROTO, "the compute sent WAL at %s, expected %s",
            tarn_lsn_format(start, l1), tarn_lsn_format(t->stream_pos, l2));
    if (t->stream_pos < t->verify_until) {
        uint8_t ours[8192];
        size_t n = (size_t)(t->verify_until - t->stream_pos);
        if (n > len)
            n = len;
        for (size_t off = 0; off < n;) {
            size_t k = n - off < sizeof(ours) ? n - off : sizeof(ours);
            if ((rc =
                     walstore_read(t->store, t->stream_pos + off, ours, k, err))
                != TARN_OK)
                return rc;
            if (memcmp(ours, data + off, k) != 0)
                return tarn_err_set(err, TARN_ECONFLICT,
                                    "the compute's WAL differs from this "
                                    "timeline's before %s: it diverged",
                                    tarn_lsn_format(t->verify_until, l1));
            off += k;
        }
        t->stream_pos += n;
        data += n;
        len -= n;
        if (t->stream_pos == t->verify_until)
            verified(t);
        if (len == 0)
            return TARN_OK;
    }
    rc = append(t, data, len, &used, err);
    if (rc == TARN_AGAIN) {
        size_t rest = len - used;
        if (t->pend_cap < rest) {
            uint8_t *p = realloc(t->pend, rest);
            if (p == NULL)
                return tarn_err_set(err, TARN_ENOMEM, "out of memory");
            t->pend = p;
            t->pend_cap = rest;
        }
        memcpy(t->pend, data + used, rest);
        t->pend_len = rest;
    }
    return rc;
}

/* A burst of messages has been written: sync it as one group (and take
 * in what earlier syncs made durable, for ingest). */
static void
on_drained(void *arg)
{
    apply_durable(arg);
    maybe_sync(arg);
}

static void
on_wal_end(void *arg, tarn_lsn end)
{
    ((tlw *)arg)->wal_end = end;
}

static void
on_disconnect(void *arg, const char *reason, bool will_retry)
{
    tlw *t = arg;

    if (t->mode == TLM_ATTACHING) {
        attach_finish(t, will_retry ? TARN_EUNAVAIL : TARN_ECONFLICT, reason);
        return;
    }
    if (!t->stalled && !t->broken)
        snprintf(t->error, sizeof(t->error), "%s", reason);
    if (!will_retry && t->mode == TLM_ATTACHED && !t->broken) {
        t->mode = TLM_REFUSED;
        save_catalog(t, true);
    }
}

static void
positions(void *arg, tarn_lsn *write, tarn_lsn *flush, tarn_lsn *apply)
{
    tlw *t = arg;

    apply_durable(t);
    *write = t->store ? walstore_write_pos(t->store) : t->flush;
    *flush = t->flush;
    *apply = t->flush;
}

/* ---- attach and detach ------------------------------------------------ */

static void
attach_finish(tlw *t, tarn_rc rc, const char *msg)
{
    walsvc_done_fn done = t->done;
    void *arg = t->done_arg;

    t->done = NULL;
    if (t->attach_tmo != NULL)
        event_del(t->attach_tmo);
    if (rc != TARN_OK) {
        /* The receiver may be calling us: stop it, free it later. */
        if (t->recv != NULL)
            walrecv_disconnect(t->recv, msg, false);
        t->mode = TLM_DETACHED;
        t->conninfo[0] = '\0';
        if (!t->has_wal) {
            walscan_destroy(t->scan);
            t->scan = NULL;
            walstore_close(t->store);
            t->store = NULL;
            tarn_rmtree(t->dir, &(tarn_err){0});
        }
        tlog_warn(t->svc->o.log, t->logctx, "attach refused: %s", msg);
    }
    if (done != NULL)
        done(arg, rc, msg);
}

static void
on_attach_timeout(evutil_socket_t fd, short what, void *arg)
{
    tlw *t = arg;
    char msg[TARN_ERR_MSG + 64];
    const char *last = t->recv ? walrecv_last_error(t->recv) : "";

    (void)fd;
    (void)what;
    snprintf(msg, sizeof(msg), "timed out waiting for the compute%s%s",
             *last ? ": " : "", last);
    attach_finish(t, TARN_EUNAVAIL, msg);
}

static tarn_rc
start_receiver(tlw *t, tarn_err *err)
{
    walsvc *s = t->svc;
    walrecv_opts o = {0};

    o.base = s->o.base;
    o.log = s->o.log;
    o.logctx = t->logctx;
    o.conninfo = t->conninfo;
    o.status_interval_ms = s->o.status_interval_ms;
    o.connect_timeout_ms = s->o.connect_timeout_ms;
    o.reconnect_max_ms = s->o.reconnect_max_ms;
    o.receiver_timeout_ms = s->o.receiver_timeout_ms;
    o.arg = t;
    o.ack = &t->ack;
    o.cbs.on_identify = on_identify;
    o.cbs.on_start_failed = on_start_failed;
    o.cbs.on_streaming = on_streaming;
    o.cbs.on_data = on_data;
    o.cbs.on_drained = on_drained;
    o.cbs.on_wal_end = on_wal_end;
    o.cbs.on_disconnect = on_disconnect;
    o.cbs.positions = positions;
    walrecv_destroy(t->recv);
    t->recv = NULL;
    tarn_rc rc = walrecv_create(&o, &t->recv, err);
    if (rc != TARN_OK)
        return rc;
    walrecv_start(t->recv);
    return TARN_OK;
}

tarn_rc
walsvc_attach(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
              const char *conninfo, bool has_start, tarn_lsn start,
              walsvc_done_fn done, void *arg, tarn_err *err)
{
    catalog_timeline ct;
    char masked[CATALOG_CONNINFO_MAX + 64], l[TARN_LSN_STRLEN];
    tlw *t;
    tarn_rc rc;

    if (s->stopping)
        return tarn_err_set(err, TARN_EUNAVAIL, "tarnd is shutting down");
    if ((rc = catalog_timeline_get(s->o.cat, tenant, tl, &ct, err)) != TARN_OK)
        return rc;
    if (strlen(conninfo) > CATALOG_CONNINFO_MAX)
        return tarn_err_set(err, TARN_EINVAL,
                            "conninfo is longer than %d bytes",
                            CATALOG_CONNINFO_MAX);
    t = find(s, tenant, tl);
    if (t != NULL && t->broken)
        return tarn_err_set(err, TARN_ECONFLICT, "%s", t->error);
    if (t != NULL && (t->mode == TLM_ATTACHING || t->mode == TLM_ATTACHED)) {
        walrecv_conninfo_masked(t->conninfo, masked, sizeof(masked));
        return tarn_err_set(err, TARN_ECONFLICT,
                            "a compute is already attached (%s); detach it "
                            "first",
                            masked);
    }
    if (t != NULL && t->has_wal && has_start)
        return tarn_err_set(err, TARN_EINVAL,
                            "this timeline already has WAL up to %s; a "
                            "compute resumes there, so start_lsn is not "
                            "accepted",
                            tarn_lsn_format(t->flush, l));
    if (t == NULL && (t = tlw_new(s, tenant, tl)) == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    snprintf(t->conninfo, sizeof(t->conninfo), "%s", conninfo);
    t->has_start = has_start;
    t->want_start = start;
    t->scan_from =
        has_start && !t->has_wal && ct.has_ancestor && start == ct.ancestor_lsn
            ? start
            : 0;
    t->error[0] = '\0';
    if ((rc = start_receiver(t, err)) != TARN_OK) {
        t->conninfo[0] = '\0';
        return rc;
    }
    t->mode = TLM_ATTACHING;
    t->done = done;
    t->done_arg = arg;
    if (t->attach_tmo == NULL)
        t->attach_tmo = event_new(s->o.base, -1, 0, on_attach_timeout, t);
    if (t->attach_tmo != NULL) {
        int64_t ms = s->o.connect_timeout_ms + ATTACH_GRACE_MS;
        struct timeval tv = {(time_t)(ms / 1000),
                             (suseconds_t)((ms % 1000) * 1000)};
        event_add(t->attach_tmo, &tv);
    }
    walrecv_conninfo_masked(conninfo, masked, sizeof(masked));
    tlog_info(s->o.log, t->logctx, "attaching compute %s", masked);
    return TARN_OK;
}

tarn_rc
walsvc_detach(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
              tarn_err *err)
{
    tlw *t = find(s, tenant, tl);

    if (t == NULL || t->mode == TLM_DETACHED)
        return tarn_err_set(err, TARN_ENOTFOUND,
                            "no compute is attached to this timeline");
    if (t->mode == TLM_ATTACHING)
        attach_finish(t, TARN_EUNAVAIL, "detached before the attach completed");
    walrecv_destroy(t->recv);
    t->recv = NULL;
    t->mode = TLM_DETACHED;
    t->conninfo[0] = '\0';
    t->error[0] = '\0';
    t->stalled = false;
    if (t->store != NULL && !t->broken) {
        tarn_err e2;
        if (rewind_to_flush(t, &e2) != TARN_OK)
            tlog_error(s->o.log, t->logctx, "%s", e2.msg);
    }
    save_catalog(t, true);
    tlog_info(s->o.log, t->logctx, "compute detached");
    return TARN_OK;
}

bool
walsvc_attached(walsvc *s, const tarn_id *tenant, const tarn_id *tl)
{
    tlw *t = find(s, tenant, tl);
    return t != NULL && t->mode != TLM_DETACHED;
}

bool
walsvc_status_get(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
                  walsvc_status *out)
{
    tlw *t = find(s, tenant, tl);
    walrecv_stats rs = {0};

    memset(out, 0, sizeof(*out));
    out->receiver_state = "detached";
    out->error = "";
    out->warning = "";
    if (t == NULL)
        return false;
    apply_durable(t);
    out->has_wal = t->has_wal;
    out->wal_start = t->wal_start;
    out->flush_lsn = t->flush;
    out->prev_record_lsn = t->flush_prev;
    out->write_lsn = t->store ? walstore_write_pos(t->store) : t->flush;
    out->attached = t->mode == TLM_ATTACHING || t->mode == TLM_ATTACHED;
    if (t->recv != NULL) {
        walrecv_get_stats(t->recv, &rs);
        out->receiver_state = walrecv_state_name(walrecv_get_state(t->recv));
    }
    if (t->mode == TLM_REFUSED)
        out->receiver_state = "refused";
    if (t->mode == TLM_DETACHED)
        out->receiver_state = "detached";
    if (t->broken)
        out->receiver_state = "broken";
    out->error = t->error;
    out->warning = t->prealloc_full && !t->stalled ? t->warning : "";
    if (t->conninfo[0])
        walrecv_conninfo_masked(t->conninfo, out->conninfo,
                                sizeof(out->conninfo));
    out->compute_wal_end = t->wal_end;
    out->last_message_at = rs.last_msg_at;
    out->connected_at = rs.connected_at;
    out->bytes_received = t->bytes;
    out->fsyncs = t->fsyncs;
    out->reconnects = rs.reconnects;
    out->stalled = t->stalled;
    out->broken = t->broken;
    return true;
}

void
walsvc_forget(walsvc *s, const tarn_id *tenant, const tarn_id *tl)
{
    tlw *t = find(s, tenant, tl);
    char path[PATH_MAX];

    if (t != NULL) {
        if (t->mode == TLM_ATTACHING)
            attach_finish(t, TARN_EUNAVAIL, "the timeline was deleted");
        walrecv_destroy(t->recv);
        t->recv = NULL;
        TAILQ_REMOVE(&s->tls, t, link);
        t->forgotten = true;
        pthread_mutex_lock(&t->fl.mu);
        t->fl.stop = true;
        if (t->fl.polling)
            flusher_poke(&t->fl);
        pthread_cond_broadcast(&t->fl.cv);
        pthread_mutex_unlock(&t->fl.mu);
        tlw_release(t);
    }
    tl_dir(s, tenant, tl, path, sizeof(path));
    remove_later(s, path);
}

void
walsvc_forget_tenant(walsvc *s, const tarn_id *tenant)
{
    tlw *t, *next;
    char a[TARN_ID_STRLEN], path[PATH_MAX];

    for (t = TAILQ_FIRST(&s->tls); t != NULL; t = next) {
        next = TAILQ_NEXT(t, link);
        if (tarn_id_equal(&t->tenant, tenant))
            walsvc_forget(s, tenant, &t->timeline);
    }
    snprintf(path, sizeof(path), "%s/tenants/%s", s->data_dir,
             tarn_id_format(tenant, a));
    remove_later(s, path);
}

/* ---- start-up and shutdown -------------------------------------------- */

/* Recover one timeline's WAL from disk (blocking, at start-up). */
static void
recover_timeline(walsvc *s, const catalog_timeline *ct)
{
    walstore_opts so;
    walstore_end end;
    tarn_err err;
    tlw *t = tlw_new(s, &ct->tenant_id, &ct->timeline_id);
    char l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];
    bool mid;
    tarn_lsn from, prev;

    if (t == NULL) {
        tlog_error(s->o.log, NULL, "out of memory recovering WAL");
        return;
    }
    t->has_wal = true;
    t->sysid = ct->system_id;
    t->seg_size = ct->wal_seg_size;
    t->wal_start = ct->wal_start_lsn;
    t->flush = t->saved_flush = ct->wal_flush_lsn;
    t->flush_prev = ct->prev_record_lsn;
    so.dir = t->dir;
    so.seg_size = t->seg_size;
    so.tli = 1;
    so.sysid = t->sysid;
    mid = ct->wal_flush_lsn <= ct->wal_start_lsn;
    from = mid ? ct->wal_start_lsn : ct->wal_flush_lsn;
    prev = mid ? 0 : ct->prev_record_lsn;
    if (walstore_open(&so, &t->store, &err) != TARN_OK
        || walstore_recover(t->store, from, prev, mid, &end, &err) != TARN_OK) {
        break_timeline(t, err.msg);
        return;
    }
    if (!mid) {
        /* The durable position must still be on disk. */
        uint8_t b;
        if (walstore_read(t->store, from - 1, &b, 1, &err) != TARN_OK) {
            snprintf(err.msg, sizeof(err.msg),
                     "the WAL the catalog recorded as durable up to %s is "
                     "missing from disk",
                     tarn_lsn_format(from, l1));
            break_timeline(t, err.msg);
            return;
        }
    }
    t->flush = end.end;
    if (end.records > 0 || mid)
        t->flush_prev = end.last_start;
    if (open_scanner(t, &err) != TARN_OK) {
        break_timeline(t, err.msg);
        return;
    }
    tlog_info(s->o.log, t->logctx,
              "WAL recovered: %llu record(s) after %s, durable up to %s%s%s",
              (unsigned long long)end.records, tarn_lsn_format(from, l1),
              tarn_lsn_format(end.end, l2),
              end.cut_bytes ? ", torn tail cut" : "", "");
    if (end.cut_bytes)
        tlog_info(s->o.log, t->logctx, "%llu byte(s) after the end: %s",
                  (unsigned long long)end.cut_bytes, end.stop_reason);
    /* The attachment outlives restarts: reconnect to the same compute.
     * (Set before saving, which writes the conninfo of the mode.) */
    if (ct->compute_conninfo[0] != '\0') {
        snprintf(t->conninfo, sizeof(t->conninfo), "%s", ct->compute_conninfo);
        t->mode = TLM_ATTACHED;
        if (start_receiver(t, &err) != TARN_OK) {
            snprintf(t->error, sizeof(t->error), "%s", err.msg);
            t->mode = TLM_REFUSED;
        }
    }
    save_catalog(t, true);
    notify_flush(t);
}

/* Once a second: the reactor's view and the catalog catch up with the
 * flushers (the catalog write itself is throttled by save_catalog). */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    walsvc *s = arg;
    tlw *t;

    (void)fd;
    (void)what;
    TAILQ_FOREACH (t, &s->tls, link) {
        apply_durable(t);
        if (t->has_wal && !t->broken)
            save_catalog(t, false);
        if (t->prealloc_retry_us != 0)
            maybe_prealloc(t);
    }
}

tarn_rc
walsvc_create(const walsvc_opts *o, walsvc **out, tarn_err *err)
{
    walsvc *s = calloc(1, sizeof(*s));
    catalog_tenant *ts = NULL;
    size_t nt = 0;
    tarn_rc rc;

    if (s == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    tarn_hist_init(&s->fsyncs, lat_bounds, LAT_BUCKETS);
    tarn_hist_init(&s->ack_delays, lat_bounds, LAT_BUCKETS);
    s->o = *o;
    snprintf(s->data_dir, sizeof(s->data_dir), "%s", o->data_dir);
    s->o.data_dir = s->data_dir;
    TAILQ_INIT(&s->tls);
    if ((rc = catalog_tenant_list(o->cat, &ts, &nt, err)) != TARN_OK) {
        free(s);
        return rc;
    }
    for (size_t i = 0; i < nt; i++) {
        catalog_timeline *tls = NULL;
        size_t n = 0;
        if ((rc = catalog_timeline_list(o->cat, &ts[i].id, &tls, &n, err))
            != TARN_OK) {
            free(ts);
            walsvc_destroy(s);
            return rc;
        }
        for (size_t k = 0; k < n; k++)
            if (tls[k].system_id != 0)
                recover_timeline(s, &tls[k]);
        free(tls);
    }
    free(ts);
    s->tick = event_new(o->base, -1, EV_PERSIST, on_tick, s);
    if (s->tick == NULL || event_add(s->tick, &(struct timeval){1, 0}) != 0) {
        walsvc_destroy(s);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    *out = s;
    return TARN_OK;
}

void
walsvc_stop(walsvc *s)
{
    tlw *t;

    s->stopping = true;
    TAILQ_FOREACH (t, &s->tls, link) {
        if (t->mode == TLM_ATTACHING)
            attach_finish(t, TARN_EUNAVAIL, "tarnd is shutting down");
        if (t->recv != NULL)
            walrecv_disconnect(t->recv, "tarnd is shutting down", false);
    }
}

void
walsvc_destroy(walsvc *s)
{
    tlw *t;

    if (s == NULL)
        return;
    if (s->tick != NULL)
        event_free(s->tick);
    while ((t = TAILQ_FIRST(&s->tls)) != NULL) {
        TAILQ_REMOVE(&s->tls, t, link);
        apply_durable(t);
        if (t->has_wal && !t->broken)
            save_catalog(t, true);
        tlw_free(t);
    }
    free(s);
}

tarn_rc
walsvc_read(walsvc *s, const tarn_id *tenant, const tarn_id *tl, tarn_lsn lsn,
            uint8_t *buf, size_t len, tarn_err *err)
{
    tlw *t = find(s, tenant, tl);
    char l[TARN_LSN_STRLEN];

    if (t == NULL || t->store == NULL)
        return tarn_err_set(err, TARN_ENOTFOUND, "the timeline has no WAL");
    if (lsn + len > t->flush)
        return tarn_err_set(err, TARN_ENOTFOUND,
                            "WAL up to %s is not durable yet",
                            tarn_lsn_format(lsn + len, l));
    return walstore_read(t->store, lsn, buf, len, err);
}

tarn_rc
walsvc_adopt(walsvc *s, const tarn_id *tenant, const tarn_id *tl, tarn_err *err)
{
    catalog_timeline ct;
    tarn_rc rc;

    if (find(s, tenant, tl) != NULL)
        return tarn_err_set(err, TARN_EEXIST, "the timeline already has WAL");
    if ((rc = catalog_timeline_get(s->o.cat, tenant, tl, &ct, err)) != TARN_OK)
        return rc;
    if (ct.system_id == 0)
        return tarn_err_set(err, TARN_EINVAL, "the timeline has no WAL");
    recover_timeline(s, &ct);
    return TARN_OK;
}

typedef struct trim_job {
    walsvc *svc;
    char dir[PATH_MAX];
    uint32_t seg_size;
    uint64_t from, to; /* segments [from, to) */
    int removed;
    tarn_err err;
    tarn_rc rc;
} trim_job;

static void
trim_work(void *arg)
{
    trim_job *j = arg;

    j->rc = TARN_OK;
    for (uint64_t seg = j->from; seg < j->to; seg++) {
        char name[32], path[PATH_MAX + 48];
        pg_wal_file_name(name, 1, seg, j->seg_size);
        snprintf(path, sizeof(path), "%s/%s", j->dir, name);
        if (unlink(path) == 0)
            j->removed++;
        else if (errno != ENOENT)
            j->rc = tarn_err_errno(&j->err, errno, "remove %s", path);
    }
    if (j->removed > 0 && j->rc == TARN_OK)
        j->rc = tarn_fsync_dir(j->dir, &j->err);
}

static void
trim_done(void *arg)
{
    trim_job *j = arg;

    if (j->rc != TARN_OK)
        tlog_error(j->svc->o.log, NULL, "WAL removal: %s", j->err.msg);
    else if (j->removed > 0)
        tlog_debug(j->svc->o.log, NULL,
                   "removed %d WAL segment(s) covered by layers from %s",
                   j->removed, j->dir);
    free(j);
}

void
walsvc_trim(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
            tarn_lsn keep_from)
{
    tlw *t = find(s, tenant, tl);
    uint64_t first, keep;
    trim_job *j;

    if (t == NULL || !t->has_wal || t->broken || t->seg_size == 0)
        return;
    /* Resuming a compute re-reads tarn's last record: keep it too. */
    if (t->flush_prev != 0 && t->flush_prev < keep_from)
        keep_from = t->flush_prev;
    first = t->wal_start / t->seg_size;
    keep = keep_from / t->seg_size;
    /* Never the segment being written, nor beyond the durable end. */
    if (keep > t->flush / t->seg_size)
        keep = t->flush / t->seg_size;
    if (keep <= first)
        return;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return;
    /* The catalog first: a crash then leaves extra files, never a gap. */
    t->wal_start = keep * t->seg_size;
    save_catalog(t, true);
    j->svc = s;
    snprintf(j->dir, sizeof(j->dir), "%s", t->dir);
    j->seg_size = t->seg_size;
    j->from = first;
    j->to = keep;
    if (wpool_submit(s->o.pool, trim_work, trim_done, j) != TARN_OK) {
        trim_work(j);
        trim_done(j);
    }
}

void
walsvc_metrics(walsvc *s, struct evbuffer *out)
{
    char id[TARN_ID_STRLEN];
    tlw *t;

    TAILQ_FOREACH (t, &s->tls, link)
        apply_durable(t);
    evbuffer_add_printf(
        out, "# HELP tarn_wal_received_bytes_total WAL bytes received from "
             "computes.\n# TYPE tarn_wal_received_bytes_total counter\n");
    TAILQ_FOREACH (t, &s->tls, link)
        evbuffer_add_printf(out,
                            "tarn_wal_received_bytes_total{timeline=\"%s\"} "
                            "%llu\n",
                            tarn_id_format(&t->timeline, id),
                            (unsigned long long)t->bytes);
    evbuffer_add_printf(out, "# HELP tarn_wal_fsyncs_total Group fsyncs of "
                             "WAL.\n# TYPE tarn_wal_fsyncs_total counter\n");
    TAILQ_FOREACH (t, &s->tls, link)
        evbuffer_add_printf(
            out, "tarn_wal_fsyncs_total{timeline=\"%s\"} %llu\n",
            tarn_id_format(&t->timeline, id), (unsigned long long)t->fsyncs);
    evbuffer_add_printf(out,
                        "# HELP tarn_wal_flush_lsn The durable WAL position "
                        "(an LSN as a number).\n"
                        "# TYPE tarn_wal_flush_lsn gauge\n");
    TAILQ_FOREACH (t, &s->tls, link)
        evbuffer_add_printf(out, "tarn_wal_flush_lsn{timeline=\"%s\"} %llu\n",
                            tarn_id_format(&t->timeline, id),
                            (unsigned long long)t->flush);
    evbuffer_add_printf(out,
                        "# HELP tarn_wal_flush_lag_bytes How far the durable "
                        "WAL is behind the compute's end of WAL.\n"
                        "# TYPE tarn_wal_flush_lag_bytes gauge\n");
    TAILQ_FOREACH (t, &s->tls, link)
        evbuffer_add_printf(
            out, "tarn_wal_flush_lag_bytes{timeline=\"%s\"} %llu\n",
            tarn_id_format(&t->timeline, id),
            (unsigned long long)(t->wal_end > t->flush ? t->wal_end - t->flush
                                                       : 0));
    evbuffer_add_printf(out, "# HELP tarn_walreceiver_reconnects_total "
                             "Reconnections to computes.\n"
                             "# TYPE tarn_walreceiver_reconnects_total "
                             "counter\n");
    TAILQ_FOREACH (t, &s->tls, link) {
        walrecv_stats rs = {0};
        if (t->recv)
            walrecv_get_stats(t->recv, &rs);
        evbuffer_add_printf(out,
                            "tarn_walreceiver_reconnects_total{timeline=\"%s\"}"
                            " %llu\n",
                            tarn_id_format(&t->timeline, id),
                            (unsigned long long)rs.reconnects);
    }
    tarn_hist_print(out, "tarn_wal_fsync_duration_seconds",
                    "Time spent in one WAL group fsync.", &s->fsyncs);
    tarn_hist_print(
        out, "tarn_wal_ack_delay_seconds",
        "From writing a group's first WAL byte to acknowledging the "
        "group as flushed.",
        &s->ack_delays);
}
