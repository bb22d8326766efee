/*
 * test_wpool.c - the worker pool against a real event_base: work runs on
 * worker threads, done functions on the reactor thread, nothing is lost at
 * close and destroy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "server/core/wpool.h"

typedef struct ctx {
    pthread_t reactor;
    atomic_int worked;
    int done; /* only touched on the reactor thread */
    int done_off_thread;
    int work_on_reactor;
    struct event_base *base;
    int target;
} ctx;

typedef struct item {
    ctx *c;
    int value;
} item;

static void
work(void *arg)
{
    item *it = arg;

    if (pthread_equal(pthread_self(), it->c->reactor))
        it->c->work_on_reactor++;
    it->value *= 2;
    atomic_fetch_add(&it->c->worked, 1);
}

static void
done(void *arg)
{
    item *it = arg;

    if (!pthread_equal(pthread_self(), it->c->reactor))
        it->c->done_off_thread++;
    assert_int_equal(it->value % 2, 0);
    if (++it->c->done == it->c->target)
        event_base_loopbreak(it->c->base);
}

static void
test_many_jobs(void **state)
{
    enum { N = 5000 };
    static item items[N];
    ctx c = {0};
    wpool *p;
    tarn_err e;
    wpool_stats st;

    (void)state;
    c.reactor = pthread_self();
    c.base = event_base_new();
    c.target = N;
    assert_int_equal(wpool_create(c.base, 3, &p, &e), TARN_OK);
    for (int i = 0; i < N; i++) {
        items[i].c = &c;
        items[i].value = i + 1;
        assert_int_equal(wpool_submit(p, work, done, &items[i]), TARN_OK);
    }
    event_base_loop(c.base, EVLOOP_NO_EXIT_ON_EMPTY);
    assert_int_equal(c.done, N);
    assert_int_equal(atomic_load(&c.worked), N);
    assert_int_equal(c.done_off_thread, 0);
    assert_int_equal(c.work_on_reactor, 0);
    assert_int_equal(wpool_inflight(p), 0);
    wpool_get_stats(p, &st);
    assert_true(st.submitted == N && st.completed == N);
    assert_int_equal(st.threads, 3);
    for (int i = 0; i < N; i++)
        assert_int_equal(items[i].value, 2 * (i + 1));
    wpool_destroy(p);
    event_base_free(c.base);
}

static void
slow_work(void *arg)
{
    usleep(2000);
    work(arg);
}

/* Destroy without running the loop: queued jobs still finish, done runs. */
static void
test_destroy_finishes_jobs(void **state)
{
    enum { N = 50 };
    static item items[N];
    ctx c = {0};
    wpool *p;
    tarn_err e;

    (void)state;
    c.reactor = pthread_self();
    c.base = event_base_new();
    c.target = -1;
    assert_int_equal(wpool_create(c.base, 2, &p, &e), TARN_OK);
    for (int i = 0; i < N; i++) {
        items[i].c = &c;
        items[i].value = 1;
        assert_int_equal(wpool_submit(p, slow_work, done, &items[i]), TARN_OK);
    }
    wpool_close(p);
    assert_int_equal(wpool_submit(p, work, done, &items[0]), TARN_EUNAVAIL);
    wpool_destroy(p);
    assert_int_equal(c.done, N);
    assert_int_equal(atomic_load(&c.worked), N);
    assert_int_equal(c.done_off_thread, 0);
    event_base_free(c.base);
}

static void
test_bad_args(void **state)
{
    struct event_base *base = event_base_new();
    wpool *p = NULL;
    tarn_err e;

    (void)state;
    assert_int_equal(wpool_create(base, 0, &p, &e), TARN_EINVAL);
    assert_null(p);
    wpool_destroy(NULL);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_jobs),
        cmocka_unit_test(test_destroy_finishes_jobs),
        cmocka_unit_test(test_bad_args),
    };
    evthread_use_pthreads();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
