/*
 * offload.h - blocking work off the event loop: the one worker-thread kit.
 *
 * A process whose event loop must never wait on a disk or a slow hash
 * (the auth process's password checks, the smtp worker's spool commits, the
 * mta's spool removals) hands jobs to an offload: one or more threads take
 * them from a queue and run them, and the finished jobs come back to the
 * loop, woken through a pipe, where the done callback runs for each, in the
 * order they finished. The threads and the loop share only the two lists,
 * under one mutex.
 *
 * Jobs are the caller's structs with a struct offload_job inside (use
 * OFFLOAD_CONTAINER to get back to them). With batch set, a thread takes
 * every queued job at once and run gets the whole list (a group commit);
 * otherwise one job at a time. With threads = 0 nothing is threaded: run
 * happens inside offload_submit, done still from the loop.
 *
 * Must never: call done from inside offload_submit or from a thread, lose a
 * finished job, or hold more than max_queued jobs waiting for a thread.
 */
#ifndef WHARF_BASE_OFFLOAD_H
#define WHARF_BASE_OFFLOAD_H

#include "base/buf.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct offload;

struct offload_job {
    struct offload_job *next;
};

#define OFFLOAD_CONTAINER(ptr, type, member)                                                       \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* In a thread: does the blocking work of list (one job unless batch), touching nothing else
 * the loop owns. */
typedef void (*offload_run_fn)(void *arg, struct offload_job *list);
/* In the loop: one job is finished; it may be freed here. */
typedef void (*offload_done_fn)(void *arg, struct offload_job *job);
/* In a thread, after the jobs run handled are handed to the loop (their done may
 * already run) and before it looks for more: work that must not delay their answers. */
typedef void (*offload_after_fn)(void *arg);

struct offload_params {
    const char *name;  /* in error messages: "crypt", "spool writer" */
    size_t threads;    /* 0: run inside offload_submit */
    bool batch;        /* run takes every job queued */
    size_t max_queued; /* jobs waiting for a thread; 0: unbounded */
    offload_run_fn run;
    offload_done_fn done;
    offload_after_fn after; /* NULL: none */
    void *arg;
};

/* Starts the threads. NULL with err when they cannot be started. */
struct offload *offload_new(struct event_base *base, const struct offload_params *p,
                            struct buf *err);
/* Queues job; false (nothing queued) when max_queued jobs are waiting already. */
bool offload_submit(struct offload *o, struct offload_job *job);
/* Submitted jobs whose done has not run yet. */
size_t offload_in_flight(const struct offload *o);
/* Runs what is queued, stops the threads, then calls done for every finished job. */
void offload_free(struct offload *o);

#endif
