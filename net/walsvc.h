/*
 * walsvc.h - the WAL service: for each timeline that follows a compute,
 * the WAL store, the stream scanner and the WAL receiver, tied together
 * with the rule that makes tarn a synchronous standby: a position is
 * reported as flushed only when every byte below it is on disk (a group
 * fdatasync on the worker pool has returned) and it is the end of a
 * complete record.
 *
 * Attach adopts the compute's system identifier on a timeline without
 * WAL, or checks it and resumes at the durable position on one that has
 * WAL: streaming restarts at the start of tarn's last record, those bytes
 * must equal what tarn holds, and the next record's xl_prev must point at
 * it.  Anything else is refused.
 *
 * Reactor thread only.
 */
#ifndef TARN_NET_WALSVC_H
#define TARN_NET_WALSVC_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "net/walrecv.h"
#include "server/core/err.h"
#include "server/core/log.h"
#include "server/core/types.h"
#include "server/core/wpool.h"

struct event_base;
struct evbuffer;
typedef struct walsvc walsvc;

/** Told whenever a timeline's durable WAL grows (for ingest). */
typedef void (*walsvc_flush_fn)(void *arg, const tarn_id *tenant,
                                const tarn_id *tl, tarn_lsn flush,
                                tarn_lsn wal_start, uint32_t seg_size,
                                uint64_t sysid);

typedef struct walsvc_opts {
    struct event_base *base;
    wpool *pool;
    catalog *cat;
    tlog *log;
    const char *data_dir;
    int64_t status_interval_ms;
    int64_t connect_timeout_ms;
    int64_t reconnect_max_ms;
    int64_t receiver_timeout_ms;
    walsvc_flush_fn on_flush; /**< may be NULL */
    void *on_flush_arg;
} walsvc_opts;

/** The live WAL state of one timeline. */
typedef struct walsvc_status {
    bool has_wal;
    tarn_lsn wal_start;
    tarn_lsn write_lsn; /**< bytes written (may be mid-record) */
    tarn_lsn flush_lsn; /**< durable end of the last complete record */
    tarn_lsn prev_record_lsn;
    bool attached;
    const char *receiver_state; /**< walrecv_state_name(), or "detached",
                                     "refused", "broken" */
    const char *error;          /**< "" when none */
    /** "" when none; otherwise a problem that does not stop
     * acknowledgement yet (the next segment cannot be created) */
    const char *warning;
    char conninfo[CATALOG_CONNINFO_MAX + 64]; /**< password masked */
    tarn_lsn compute_wal_end; /**< the compute's last reported end */
    tarn_time_us last_message_at;
    tarn_time_us connected_at;
    uint64_t bytes_received;
    uint64_t fsyncs;
    uint64_t reconnects;
    bool stalled; /**< writes fail with a full disk */
    bool broken;  /**< stopped after a failed fsync */
} walsvc_status;

/** Answer of an asynchronous attach: TARN_OK or an error and message. */
typedef void (*walsvc_done_fn)(void *arg, tarn_rc rc, const char *msg);

/**
 * Start the service: recover the WAL of every timeline that has some
 * (blocking, at start-up) and reconnect to the computes that were
 * attached.
 */
tarn_rc walsvc_create(const walsvc_opts *o, walsvc **out, tarn_err *err);

/**
 * Graceful stop: drop every compute connection (the computes keep their
 * WAL; a restart resumes) and refuse new attaches.  Sync jobs in flight
 * still finish.
 */
void walsvc_stop(walsvc *s);

/** Persist the last positions and free.  NULL-safe.  The worker pool must
 * have been drained first. */
void walsvc_destroy(walsvc *s);

/**
 * Attach a compute to a timeline.  Checks that can be made at once fail
 * at once (TARN_EINVAL bad conninfo or start_lsn, TARN_ECONFLICT already
 * attached or broken, TARN_ENOTFOUND no such timeline).  Otherwise the
 * answer comes through @p done once the compute has been identified and
 * streaming has started and been verified: TARN_OK, TARN_ECONFLICT for a
 * refused compute (another system, diverged WAL), TARN_EUNAVAIL when it
 * cannot be reached.
 */
tarn_rc walsvc_attach(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
                      const char *conninfo, bool has_start, tarn_lsn start,
                      walsvc_done_fn done, void *arg, tarn_err *err);

/**
 * Detach the compute of a timeline: close the connection and forget the
 * conninfo.  TARN_ENOTFOUND if none is attached.
 */
tarn_rc walsvc_detach(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
                      tarn_err *err);

/** Fill @p out; false if the timeline has no WAL state. */
bool walsvc_status_get(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
                       walsvc_status *out);

/** True while a compute is attached to the timeline. */
bool walsvc_attached(walsvc *s, const tarn_id *tenant, const tarn_id *tl);

/**
 * The timeline was deleted from the catalog: drop its state and remove
 * its files (in the background).
 */
void walsvc_forget(walsvc *s, const tarn_id *tenant, const tarn_id *tl);

/** Remove the files of a deleted tenant (in the background). */
void walsvc_forget_tenant(walsvc *s, const tarn_id *tenant);

/**
 * Read @p len durable bytes of a timeline's WAL at @p lsn.
 * TARN_ENOTFOUND when the timeline has no WAL or the bytes are not durable
 * or no longer kept.
 */
tarn_rc walsvc_read(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
                    tarn_lsn lsn, uint8_t *buf, size_t len, tarn_err *err);

/**
 * A timeline got WAL on disk outside the service (an import wrote its
 * segment and the catalog's WAL fields): recover it and serve it.
 */
tarn_rc walsvc_adopt(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
                     tarn_err *err);

/**
 * WAL below @p keep_from is covered by layers: remove the complete
 * segments wholly below the one holding it (the catalog's wal_start_lsn
 * moves first, then the files go, in the background).
 */
void walsvc_trim(walsvc *s, const tarn_id *tenant, const tarn_id *tl,
                 tarn_lsn keep_from);

/** Prometheus text for /metrics. */
void walsvc_metrics(walsvc *s, struct evbuffer *out);

#endif
