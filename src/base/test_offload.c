/*
 * test_offload.c - unit tests for the worker-thread kit (offload.h): every
 * job comes back to the loop exactly once and never from inside submit, in
 * pools of one and several threads, in batches, inline, with the queue
 * bound, on free with jobs still queued, and the after hook behind the hand-over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/offload.h"

struct job {
    struct offload_job oj;
    int value, result;
    int done_calls;
    pthread_t ran_on;
};

struct ctx {
    struct offload *o;
    int done, runs, max_list;
    pthread_mutex_t mu; /* runs and max_list are written by the threads */
};

static void run(void *arg, struct offload_job *list)
{
    struct ctx *c = arg;
    int n = 0;
    for (struct offload_job *j = list; j; j = j->next, n++) {
        struct job *jb = OFFLOAD_CONTAINER(j, struct job, oj);
        jb->result = jb->value * 2;
        jb->ran_on = pthread_self();
    }
    pthread_mutex_lock(&c->mu);
    c->runs++;
    if (n > c->max_list)
        c->max_list = n;
    pthread_mutex_unlock(&c->mu);
}

static void done(void *arg, struct offload_job *j)
{
    struct ctx *c = arg;
    struct job *jb = OFFLOAD_CONTAINER(j, struct job, oj);
    jb->done_calls++;
    c->done++;
}

static void check(size_t threads, bool batch, int n)
{
    struct event_base *base = event_base_new();
    struct ctx c = {0};
    pthread_mutex_init(&c.mu, NULL);
    struct offload_params p = {
        .name = "test", .threads = threads, .batch = batch, .run = run, .done = done, .arg = &c};
    struct buf err = BUF_INIT;
    c.o = offload_new(base, &p, &err);
    assert_non_null(c.o);
    struct job *jobs = xcalloc((size_t)n, sizeof(*jobs));
    for (int i = 0; i < n; i++) {
        jobs[i].value = i;
        assert_true(offload_submit(c.o, &jobs[i].oj));
    }
    assert_int_equal(c.done, 0); /* never from inside submit */
    assert_int_equal(offload_in_flight(c.o), n);
    while (c.done < n)
        event_base_loop(base, EVLOOP_ONCE);
    for (int i = 0; i < n; i++) {
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(jobs[i].result, 2 * i);
        if (threads > 0)
            assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
    }
    assert_int_equal(offload_in_flight(c.o), 0);
    if (!batch)
        assert_int_equal(c.max_list, 1);
    offload_free(c.o);
    free(jobs);
    buf_free(&err);
    pthread_mutex_destroy(&c.mu);
    event_base_free(base);
}

static void test_one_thread(void **state)
{
    check(1, false, 200);
}

static void test_pool(void **state)
{
    check(4, false, 500);
}

static void test_batches(void **state)
{
    check(1, true, 300);
}

static void test_inline(void **state)
{
    check(0, true, 10);
}

static void block_run(void *arg, struct offload_job *list)
{
    /* the first job waits until the test lets it go */
    pthread_mutex_t *gate = arg;
    pthread_mutex_lock(gate);
    pthread_mutex_unlock(gate);
}

static void count_done(void *arg, struct offload_job *j)
{
    OFFLOAD_CONTAINER(j, struct job, oj)->done_calls++;
}

static void test_bound_and_free_with_jobs_queued(void **state)
{
    struct event_base *base = event_base_new();
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&gate); /* the thread blocks on its first job */
    struct offload_params p = {.name = "test",
                               .threads = 1,
                               .max_queued = 2,
                               .run = block_run,
                               .done = count_done,
                               .arg = &gate};
    struct buf err = BUF_INIT;
    struct offload *o = offload_new(base, &p, &err);
    struct job jobs[4];
    memset(jobs, 0, sizeof(jobs));
    int accepted = 0;
    /* One may be taken by the thread, two wait: a fourth is refused (a third may be too). */
    for (int i = 0; i < 4; i++)
        accepted += offload_submit(o, &jobs[i].oj);
    assert_true(accepted >= 2 && accepted <= 3);
    pthread_mutex_unlock(&gate);
    offload_free(o); /* runs the queued ones and hands every one back */
    int calls = 0;
    for (int i = 0; i < 4; i++)
        calls += jobs[i].done_calls;
    assert_int_equal(calls, accepted);
    buf_free(&err);
    event_base_free(base);
}

/* after runs in the thread once the batch is handed to the loop: it can wait for the
 * batch's done (which would never come if it ran before the hand-over). */
struct after_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, afters;
    bool saw_done;
};

static void after_done(void *arg, struct offload_job *j)
{
    struct after_ctx *a = arg;
    (void)j;
    pthread_mutex_lock(&a->mu);
    a->done++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void after_fn(void *arg)
{
    struct after_ctx *a = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&a->mu);
    while (a->done == 0 && pthread_cond_timedwait(&a->cv, &a->mu, &until) == 0)
        ;
    a->saw_done = a->done > 0;
    a->afters++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void noop_run(void *arg, struct offload_job *list)
{
    (void)arg, (void)list;
}

static void test_after_the_hand_over(void **state)
{
    struct event_base *base = event_base_new();
    struct after_ctx a = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct offload_params p = {.name = "test",
                               .threads = 1,
                               .batch = true,
                               .run = noop_run,
                               .done = after_done,
                               .after = after_fn,
                               .arg = &a};
    struct buf err = BUF_INIT;
    struct offload *o = offload_new(base, &p, &err);
    assert_non_null(o);
    struct job j = {0};
    assert_true(offload_submit(o, &j.oj));
    for (;;) { /* the loop reaps while the thread's after waits for it */
        pthread_mutex_lock(&a.mu);
        int afters = a.afters;
        pthread_mutex_unlock(&a.mu);
        if (afters > 0)
            break;
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    assert_true(a.saw_done);
    assert_int_equal(a.done, 1);
    offload_free(o);
    buf_free(&err);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_thread),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_bound_and_free_with_jobs_queued),
        cmocka_unit_test(test_after_the_hand_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
