/*
 * wpool.h - a fixed pool of worker threads for blocking work.
 *
 * The reactor submits a job (a work function and a done function with one
 * argument).  A worker runs the work function; the done function then runs
 * on the reactor thread, from the event loop, where it may touch any
 * reactor-owned state.  Workers never touch reactor state themselves: the
 * argument is the only thing the two sides share, and ownership of it
 * passes to the worker at submit and back to the reactor at done.
 */
#ifndef TARN_CORE_WPOOL_H
#define TARN_CORE_WPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"

struct event_base;
typedef struct wpool wpool;

/** Runs on a worker thread. */
typedef void (*wpool_work_fn)(void *arg);
/** Runs on the reactor thread after the work function returned. */
typedef void (*wpool_done_fn)(void *arg);

typedef struct wpool_stats {
    uint64_t submitted;
    uint64_t completed;
    size_t queued;  /**< waiting for a worker */
    size_t running; /**< on a worker now */
    int threads;
} wpool_stats;

/**
 * Start @p nthreads workers that report back to @p base.
 *
 * libevent must have been set up for threads (evthread_use_pthreads())
 * before @p base was created.
 */
tarn_rc wpool_create(struct event_base *base, int nthreads, wpool **out,
                     tarn_err *err);

/**
 * Queue a job.  @p done may be NULL.  Only from the reactor thread.
 *
 * @return TARN_OK; TARN_EUNAVAIL after wpool_close(); TARN_ENOMEM.
 */
TARN_MUSTCHECK tarn_rc wpool_submit(wpool *p, wpool_work_fn work,
                                    wpool_done_fn done, void *arg);

/** Jobs submitted whose done function has not run yet. */
size_t wpool_inflight(const wpool *p);

/** Counters for /metrics.  Reactor thread. */
void wpool_get_stats(const wpool *p, wpool_stats *out);

/** Refuse new jobs from now on; queued and running jobs still finish. */
void wpool_close(wpool *p);

/**
 * Wait for every job, run the remaining done functions here, join the
 * threads and free the pool.  Reactor thread, outside the event loop.
 * NULL-safe.
 */
void wpool_destroy(wpool *p);

#endif
