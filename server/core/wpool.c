/*
 * wpool.c - worker threads and the hand-off back to the reactor.
 *
 * Two queues under one mutex: "todo" for workers and "done" for the
 * reactor.  A worker that finishes a job appends it to "done" and, if the
 * queue was empty, activates a user event on the reactor's base
 * (event_active is thread-safe once evthread_use_pthreads() is on).  The
 * reactor drains "done" in its callback, a bounded batch per wakeup so a
 * flood of completions cannot starve the sockets.
 */
#include "server/core/wpool.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define DONE_BATCH 64

typedef struct job {
    wpool_work_fn work;
    wpool_done_fn done;
    void *arg;
    struct job *next;
} job;

typedef struct jobq {
    job *head, *tail;
    size_t len;
} jobq;

struct wpool {
    struct event_base *base;
    struct event *done_ev;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    jobq todo, done;
    bool stopping; /* threads exit when todo is empty */
    bool closed;   /* submit refuses */
    size_t running;
    uint64_t submitted, completed;
    int nthreads;
    pthread_t *threads;
};

static void
q_push(jobq *q, job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->len++;
}

static job *
q_pop(jobq *q)
{
    job *j = q->head;

    if (j != NULL) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->len--;
    }
    return j;
}

static void *
worker_main(void *arg)
{
    wpool *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        job *j;
        while (p->todo.len == 0 && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        j = q_pop(&p->todo);
        if (j == NULL)
            break; /* stopping and nothing left */
        p->running++;
        pthread_mutex_unlock(&p->mu);

        j->work(j->arg);

        pthread_mutex_lock(&p->mu);
        p->running--;
        q_push(&p->done, j);
        if (p->done.len == 1 && p->done_ev != NULL)
            event_active(p->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Run up to DONE_BATCH done functions; reschedule if more are waiting. */
static void
on_done(evutil_socket_t fd, short what, void *arg)
{
    wpool *p = arg;
    job *batch[DONE_BATCH];
    size_t n = 0;
    bool more;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&p->mu);
    while (n < DONE_BATCH && (batch[n] = q_pop(&p->done)) != NULL)
        n++;
    more = p->done.len > 0;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++) {
        p->completed++;
        if (batch[i]->done)
            batch[i]->done(batch[i]->arg);
        free(batch[i]);
    }
    if (more)
        event_active(p->done_ev, EV_READ, 0);
}

tarn_rc
wpool_create(struct event_base *base, int nthreads, wpool **out, tarn_err *err)
{
    wpool *p;
    int started = 0;

    if (nthreads < 1)
        return tarn_err_set(err, TARN_EINVAL, "worker pool needs a thread");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    p->base = base;
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->done_ev = event_new(base, -1, 0, on_done, p);
    p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    if (p->done_ev == NULL || p->threads == NULL) {
        tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto fail;
    }
    for (; started < nthreads; started++) {
        int rc = pthread_create(&p->threads[started], NULL, worker_main, p);
        if (rc != 0) {
            tarn_err_errno(err, rc, "start worker thread");
            goto fail;
        }
    }
    *out = p;
    return TARN_OK;
fail:
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++)
        pthread_join(p->threads[i], NULL);
    if (p->done_ev)
        event_free(p->done_ev);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return err ? err->code : TARN_ENOMEM;
}

tarn_rc
wpool_submit(wpool *p, wpool_work_fn work, wpool_done_fn done, void *arg)
{
    job *j;

    if (p->closed)
        return TARN_EUNAVAIL;
    j = malloc(sizeof(*j));
    if (j == NULL)
        return TARN_ENOMEM;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&p->mu);
    q_push(&p->todo, j);
    p->submitted++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return TARN_OK;
}

size_t
wpool_inflight(const wpool *p)
{
    /* submitted and completed are only written by the reactor thread. */
    return (size_t)(p->submitted - p->completed);
}

void
wpool_get_stats(const wpool *p, wpool_stats *out)
{
    wpool *m = (wpool *)p;

    pthread_mutex_lock(&m->mu);
    out->submitted = m->submitted;
    out->completed = m->completed;
    out->queued = m->todo.len;
    out->running = m->running;
    out->threads = m->nthreads;
    pthread_mutex_unlock(&m->mu);
}

void
wpool_close(wpool *p)
{
    p->closed = true;
}

void
wpool_destroy(wpool *p)
{
    job *j;

    if (p == NULL)
        return;
    p->closed = true;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* Every thread is gone: finish what they handed back. */
    while ((j = q_pop(&p->done)) != NULL) {
        p->completed++;
        if (j->done)
            j->done(j->arg);
        free(j);
    }
    event_free(p->done_ev);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
