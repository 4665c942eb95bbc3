/*
 * offload.c - worker threads that wake the event loop through a pipe
 * (offload.h). One byte is written when the finished list goes from empty to
 * non-empty, and the loop empties list and pipe together under the mutex,
 * so a wake-up is never lost and the pipe never fills.
 */
#include "base/offload.h"
#include "base/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct offload {
    struct offload_params p;
    pthread_t *threads;
    size_t n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct offload_job *todo, **todo_tail; /* loop -> threads */
    struct offload_job *done, **done_tail; /* threads -> loop */
    size_t n_todo;
    size_t in_flight; /* loop only */
    bool stop;
    int wake[2];
    struct event *wake_ev;
};

static void append(struct offload_job ***tail, struct offload_job *list)
{
    **tail = list;
    while (**tail)
        *tail = &(**tail)->next;
}

static void *offload_main(void *arg)
{
    struct offload *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (o->todo == NULL && !o->stop)
            pthread_cond_wait(&o->cv, &o->mu);
        if (o->todo == NULL)
            break; /* stopping, and nothing is left to run */
        struct offload_job *list = o->todo;
        if (o->p.batch) {
            o->todo = NULL;
            o->n_todo = 0;
        } else {
            o->todo = list->next;
            list->next = NULL;
            o->n_todo--;
        }
        if (o->todo == NULL)
            o->todo_tail = &o->todo;
        pthread_mutex_unlock(&o->mu);
        o->p.run(o->p.arg, list);
        pthread_mutex_lock(&o->mu);
        bool was_empty = o->done == NULL;
        append(&o->done_tail, list);
        pthread_mutex_unlock(&o->mu);
        /* The byte after the unlock: the loop it wakes takes the mutex at once
         * (reap), and would otherwise sleep on it until this write returned.
         * Still one byte per empty-to-non-empty change: the loop reaps only
         * on a byte, so done cannot be emptied before this one is written. */
        if (was_empty) {
            char c = 1;
            (void)!write(o->wake[1], &c, 1);
        }
        if (o->p.after)
            o->p.after(o->p.arg);
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* In the loop: hands the finished jobs to done. */
static void reap(struct offload *o)
{
    pthread_mutex_lock(&o->mu);
    struct offload_job *list = o->done;
    o->done = NULL;
    o->done_tail = &o->done;
    /* At most one byte waits: it is written only when done goes from empty
     * to non-empty, and done and pipe are emptied here together. One read. */
    char drain[64];
    if (o->wake[0] >= 0)
        (void)!read(o->wake[0], drain, sizeof(drain));
    pthread_mutex_unlock(&o->mu);
    while (list) {
        struct offload_job *j = list;
        list = j->next;
        o->in_flight--;
        o->p.done(o->p.arg, j);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    reap(arg);
}

struct offload *offload_new(struct event_base *base, const struct offload_params *p,
                            struct buf *err)
{
    struct offload *o = xcalloc(1, sizeof(*o));
    o->p = *p;
    o->todo_tail = &o->todo;
    o->done_tail = &o->done;
    o->wake[0] = o->wake[1] = -1;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    if (p->threads > 0 && pipe2(o->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        buf_printf(err, "%s: pipe: %s", p->name, strerror(errno));
        offload_free(o);
        return NULL;
    }
    o->wake_ev =
        event_new(base, o->wake[0], o->wake[0] >= 0 ? EV_READ | EV_PERSIST : 0, on_wake, o);
    if (o->wake[0] >= 0)
        event_add(o->wake_ev, NULL);
    o->threads = xcalloc(p->threads ? p->threads : 1, sizeof(pthread_t));
    for (; o->n_started < p->threads; o->n_started++) {
        int rc = pthread_create(&o->threads[o->n_started], NULL, offload_main, o);
        if (rc != 0) {
            buf_printf(err, "cannot start the %s threads: %s", p->name, strerror(rc));
            offload_free(o);
            return NULL;
        }
    }
    return o;
}

bool offload_submit(struct offload *o, struct offload_job *job)
{
    job->next = NULL;
    if (o->p.threads == 0) {
        /* Done now; the callback still runs from the loop, never inside submit. */
        o->p.run(o->p.arg, job);
        append(&o->done_tail, job);
        o->in_flight++;
        event_active(o->wake_ev, EV_READ, 0);
        return true;
    }
    pthread_mutex_lock(&o->mu);
    bool ok = o->p.max_queued == 0 || o->n_todo < o->p.max_queued;
    if (ok) {
        append(&o->todo_tail, job);
        o->n_todo++;
        o->in_flight++;
    }
    pthread_mutex_unlock(&o->mu);
    /* After the unlock: a thread woken under the mutex would only block on it
     * (a futex round trip and a context switch more per job). The job is in
     * the list, so a thread that misses this signal finds it before waiting. */
    if (ok)
        pthread_cond_signal(&o->cv);
    return ok;
}

size_t offload_in_flight(const struct offload *o)
{
    return o->in_flight;
}

void offload_free(struct offload *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = true;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    for (size_t i = 0; i < o->n_started; i++)
        pthread_join(o->threads[i], NULL);
    reap(o); /* what finished last */
    if (o->wake_ev)
        event_free(o->wake_ev);
    if (o->wake[0] >= 0) {
        close(o->wake[0]);
        close(o->wake[1]);
    }
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o->threads);
    free(o);
}
