/*
 * mta_batch.c - collecting concurrent deliveries into one store commit
 * (see mta_batch.h). Never answers a job before its commit returned.
 */
#include "mta/mta_batch.h"
#include "base/alloc.h"

#include <stdlib.h>

#define PRIO_URGENT 0
#define PRIO_IDLE 2

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    mta_batch_flush(arg);
}

void mta_batch_init(struct mta_batch *b, struct event_base *base, size_t max, struct store *s,
                    struct directory *d, local_changed_fn changed, void *changed_arg)
{
    *b = (struct mta_batch){.base = base,
                            .store = s,
                            .dir = d,
                            .changed = changed,
                            .changed_arg = changed_arg,
                            .max = max ? max : 1};
    b->tail = &b->head;
    b->idle_ev = event_new(base, -1, 0, on_idle, b);
    event_priority_set(b->idle_ev, PRIO_IDLE);
    b->deadline_ev = evtimer_new(base, on_idle, b);
    event_priority_set(b->deadline_ev, PRIO_URGENT);
}

void mta_batch_add(struct mta_batch *b, struct mta_job *job)
{
    job->next = NULL;
    *b->tail = job;
    b->tail = &job->next;
    b->n++;
    b->bytes += job->msg.data.len;
    if (b->n >= b->max || b->bytes >= MTA_BATCH_BYTES_MAX) {
        mta_batch_flush(b);
        return;
    }
    if (b->n == 1) {
        event_active(b->idle_ev, 0, 0);
        struct timeval tv = {0, MTA_BATCH_DELAY_MS * 1000};
        evtimer_add(b->deadline_ev, &tv);
    }
}

void mta_batch_flush(struct mta_batch *b)
{
    evtimer_del(b->deadline_ev);
    event_del(b->idle_ev);
    if (b->n == 0)
        return;
    struct mta_job *jobs = b->head;
    size_t n = b->n;
    b->head = NULL;
    b->tail = &b->head;
    b->n = b->bytes = 0;
    struct local_message *msgs = xcalloc(n, sizeof(*msgs));
    size_t i = 0;
    for (struct mta_job *j = jobs; j; j = j->next)
        msgs[i++] = j->msg; /* shares the recipients array: statuses land in the job */
    local_deliver(b->store, b->dir, msgs, n, b->changed, b->changed_arg);
    free(msgs);
    b->n_batches++;
    b->n_jobs += n;
    while (jobs) {
        struct mta_job *next = jobs->next;
        jobs->done(jobs); /* may free the job */
        jobs = next;
    }
}

void mta_batch_free(struct mta_batch *b)
{
    mta_batch_flush(b);
    event_free(b->idle_ev);
    event_free(b->deadline_ev);
}
