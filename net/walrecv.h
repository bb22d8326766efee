/*
 * walrecv.h - the WAL receiver: a libpq physical-replication client that
 * follows a PostgreSQL 15 compute as its standby, driven entirely by the
 * reactor (PQconnectStart/PQconnectPoll, non-blocking queries and copy).
 *
 * It connects with application_name=tarn (so the compute can name it in
 * synchronous_standby_names), runs IDENTIFY_SYSTEM and SHOW
 * wal_segment_size, asks its owner where to start, and streams.  It owns
 * only the connection: what the bytes mean, and which positions to report,
 * belong to the owner, reached through callbacks.  When the connection
 * drops it reconnects with capped exponential backoff, unless told not to.
 *
 * Reactor thread only.
 */
#ifndef TARN_NET_WALRECV_H
#define TARN_NET_WALRECV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/log.h"
#include "server/core/types.h"

struct event_base;
typedef struct walrecv walrecv;

/**
 * The ack channel: the way standby status updates reach the compute, and
 * the one part of a receiver that another thread may use.  A worker that
 * has just made WAL durable acknowledges it here at once, without a trip
 * through the reactor.  Every status update, the reactor's included, is
 * written through it as one whole CopyData frame under its mutex, and
 * nothing else writes to the connection while it streams, so frames never
 * interleave.  The owner allocates it, keeps it alive for as long as any
 * worker may use it, and passes it to walrecv_create().
 */
typedef struct walrecv_ack {
    pthread_mutex_t mu;
    int fd;       /**< the streaming connection's socket, or -1 */
    uint64_t tag; /**< set by the owner per connection (its epoch) */
    tarn_lsn write, flush, apply; /**< the latest sent on this connection */
    uint8_t tail[80]; /**< bytes of frames the socket did not take yet */
    size_t tail_len;
    uint64_t sent;
} walrecv_ack;

void walrecv_ack_init(walrecv_ack *a);
void walrecv_ack_destroy(walrecv_ack *a);

/**
 * The streaming connection's socket, or -1, for another thread to poll for
 * input; only the reactor reads it.  The reactor may close it at any time
 * after this returns, so a poll on it is a hint: it ends early, or at its
 * timeout, and the caller checks its own state afterwards.
 */
int walrecv_ack_socket(walrecv_ack *a);

/** Owner: tag the current connection (a worker acks only with it). */
void walrecv_ack_set_tag(walrecv_ack *a, uint64_t tag);

/**
 * Send a standby status update from any thread, if the connection with
 * @p tag is streaming and the update reports progress (or @p force).
 * @return true if a frame was sent or queued.
 */
bool walrecv_ack_send(walrecv_ack *a, uint64_t tag, tarn_lsn write,
                      tarn_lsn flush, tarn_lsn apply, bool force,
                      bool reply_requested);

typedef enum walrecv_state {
    WALRECV_CONNECTING, /**< opening the connection */
    WALRECV_HANDSHAKE,  /**< IDENTIFY_SYSTEM, SHOW, START_REPLICATION */
    WALRECV_STREAMING,  /**< receiving WAL */
    WALRECV_BACKOFF,    /**< waiting to reconnect */
    WALRECV_STOPPED     /**< not connected and not retrying */
} walrecv_state;

/** What IDENTIFY_SYSTEM and SHOW told us about the compute. */
typedef struct walrecv_ident {
    uint64_t sysid;
    uint32_t tli;
    tarn_lsn xlogpos; /**< the compute's current WAL flush position */
    uint32_t seg_size;
} walrecv_ident;

typedef struct walrecv_cbs {
    /**
     * The compute identified itself.  Set *start to where streaming must
     * begin, or fail: TARN_ECONFLICT refuses the compute for good (no
     * retry), any other error drops the connection and retries.
     */
    tarn_rc (*on_identify)(void *arg, const walrecv_ident *id, tarn_lsn *start,
                           tarn_err *err);
    /** START_REPLICATION failed; the receiver retries after backoff
     * unless the owner stops it from this callback. */
    void (*on_start_failed)(void *arg, const char *msg);
    /** Streaming began at @p start. */
    void (*on_streaming)(void *arg, tarn_lsn start);
    /**
     * WAL bytes at @p start.  TARN_OK: consumed.  TARN_AGAIN: consumed
     * (the owner keeps what it could not write), and stop reading until
     * walrecv_resume().  TARN_ECONFLICT: the stream diverged, stop for
     * good.  Other errors: drop the connection and retry.
     */
    tarn_rc (*on_data)(void *arg, tarn_lsn start, const uint8_t *data,
                       size_t len, tarn_err *err);
    /**
     * Everything received so far has been handed over: the socket and
     * libpq's buffer are empty.  The place to start a group fsync.
     * Optional.
     */
    void (*on_drained)(void *arg);
    /** The compute's end of WAL, from any message. */
    void (*on_wal_end)(void *arg, tarn_lsn wal_end);
    /** The connection ended; @p will_retry says whether it comes back. */
    void (*on_disconnect)(void *arg, const char *reason, bool will_retry);
    /** The positions for a standby status update. */
    void (*positions)(void *arg, tarn_lsn *write, tarn_lsn *flush,
                      tarn_lsn *apply);
} walrecv_cbs;

typedef struct walrecv_opts {
    struct event_base *base;
    tlog *log;
    const char *logctx;
    const char *conninfo; /**< libpq connection string or URI */
    int64_t status_interval_ms;
    int64_t connect_timeout_ms;
    int64_t reconnect_max_ms;
    /** Reconnect when nothing (not even a keepalive) came for this long;
     * 0 disables.  Catches a compute that vanished without closing. */
    int64_t receiver_timeout_ms;
    walrecv_cbs cbs;
    void *arg;
    walrecv_ack *ack; /**< required; see walrecv_ack */
} walrecv_opts;

typedef struct walrecv_stats {
    uint64_t bytes; /**< WAL bytes received */
    uint64_t messages;
    uint64_t reconnects; /**< connections after the first */
    uint64_t status_sent;
    tarn_lsn wal_end; /**< the compute's last reported end of WAL */
    tarn_time_us last_msg_at;
    tarn_time_us connected_at;
} walrecv_stats;

/**
 * Create a receiver (it does not connect yet).
 * @return TARN_OK, or TARN_EINVAL when libpq cannot parse @p conninfo.
 */
tarn_rc walrecv_create(const walrecv_opts *o, walrecv **out, tarn_err *err);

/** Connect now (from STOPPED or BACKOFF). */
void walrecv_start(walrecv *r);

/**
 * Drop the connection.  @p retry: reconnect after backoff; otherwise
 * stop.  on_disconnect is not called for a drop the owner asked for.
 */
void walrecv_disconnect(walrecv *r, const char *reason, bool retry);

/**
 * Send a standby status update now (when streaming), with the owner's
 * positions.  Unless @p force, only when they moved since the last one.
 */
void walrecv_send_status(walrecv *r, bool reply_requested, bool force);

/** Stop and restart reading the socket (flow control). */
void walrecv_pause(walrecv *r);
void walrecv_resume(walrecv *r);

walrecv_state walrecv_get_state(const walrecv *r);
const char *walrecv_state_name(walrecv_state s);
/** The last error, "" if none. */
const char *walrecv_last_error(const walrecv *r);
void walrecv_get_stats(const walrecv *r, walrecv_stats *out);

/**
 * The connection string with any password replaced by "********", for
 * display.  @p buf gets at most @p len bytes.
 */
void walrecv_conninfo_masked(const char *conninfo, char *buf, size_t len);

/** Close and free.  NULL-safe.  No callback runs. */
void walrecv_destroy(walrecv *r);

#endif
