/*
 * mta_batch.h - group commit inside the mta: deliveries that arrive while
 * the loop is busy are collected and stored together.
 *
 * Jobs (from deliver.sock and from the spool) are added to the open batch;
 * the batch is flushed when the event loop has nothing more urgent to do (a
 * lowest-priority event, so every socket that is readable now is read
 * first), when it holds mta_batch_max jobs or MTA_BATCH_BYTES_MAX bytes, or
 * at the latest MTA_BATCH_DELAY_MS after its first job. A flush is one
 * local_deliver() call: one blob fdatasync and one commit for all jobs.
 * Each job's done callback runs after the commit returned, never before.
 */
#ifndef WHARF_MTA_BATCH_H
#define WHARF_MTA_BATCH_H

#include "mta/local.h"

#include <event2/event.h>

#define MTA_BATCH_BYTES_MAX (64u << 20) /* bounds the memory of one batch */
#define MTA_BATCH_DELAY_MS 20           /* longest a job waits for company under load */

struct mta_job;
typedef void (*mta_job_done_fn)(struct mta_job *job);

struct mta_job {
    struct local_message msg; /* recipients' statuses are filled by the flush */
    mta_job_done_fn done;
    void *arg;
    struct mta_job *next;
};

struct mta_batch {
    struct event_base *base;
    struct event *idle_ev;     /* lowest priority: "nothing else to do" */
    struct event *deadline_ev; /* highest priority: MTA_BATCH_DELAY_MS passed */
    struct store *store;
    struct directory *dir;
    local_changed_fn changed; /* "mailbox changed" (the mta publishes it); may be NULL */
    void *changed_arg;
    size_t max;
    size_t n, bytes;
    struct mta_job *head, **tail;
    uint64_t n_batches, n_jobs; /* for status */
};

/* base must have been given 3 priorities (event_base_priority_init). */
void mta_batch_init(struct mta_batch *b, struct event_base *base, size_t max, struct store *s,
                    struct directory *d, local_changed_fn changed, void *changed_arg);
void mta_batch_add(struct mta_batch *b, struct mta_job *job);
void mta_batch_flush(struct mta_batch *b);
void mta_batch_free(struct mta_batch *b);

#endif
