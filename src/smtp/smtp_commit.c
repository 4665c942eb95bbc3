/*
 * smtp_commit.c - group commit of spool files (see smtp_commit.h), on the
 * worker-thread kit (base/offload.h).
 *
 * Threads: the event loop submits and receives results; one writer thread
 * does the blocking I/O of every message queued at once. Must never: touch a
 * session from the writer thread.
 */
#include "smtp/smtp_commit.h"

#include "base/alloc.h"
#include "base/log.h"
#include "base/offload.h"

#include <stdlib.h>

struct smtp_commit_job {
    struct offload_job oj;
    struct spool_message *msg;
    bool ok, cancelled;
    bool first; /* the first of the batch it was written in */
    smtp_commit_cb cb;
    void *arg;
};

struct smtp_commit {
    const struct wharf_config *cfg;
    struct offload *writer;
    uint64_t batches, messages;
};

/* In the writer thread (or in submit, unthreaded): one sync for the whole list. */
static void write_batch(void *arg, struct offload_job *list)
{
    struct smtp_commit *c = arg;
    size_t n = 0;
    for (struct offload_job *j = list; j; j = j->next)
        n++;
    const struct spool_message **msgs = xcalloc(n, sizeof(*msgs));
    bool *ok = xcalloc(n, sizeof(bool));
    size_t i = 0;
    for (struct offload_job *j = list; j; j = j->next)
        msgs[i++] = OFFLOAD_CONTAINER(j, struct smtp_commit_job, oj)->msg;
    struct buf err = BUF_INIT;
    if (spool_write_batch(c->cfg, msgs, n, ok, &err) != 0 || err.len)
        log_error("spool write failed: %s", buf_cstr(&err));
    buf_free(&err);
    i = 0;
    for (struct offload_job *j = list; j; j = j->next) {
        struct smtp_commit_job *cj = OFFLOAD_CONTAINER(j, struct smtp_commit_job, oj);
        cj->ok = ok[i++];
        cj->first = j == list;
    }
    free(msgs);
    free(ok);
}

/* In the loop: the message is durable (or failed); tell its session. */
static void job_finish(void *arg, struct offload_job *oj)
{
    struct smtp_commit *c = arg;
    struct smtp_commit_job *j = OFFLOAD_CONTAINER(oj, struct smtp_commit_job, oj);
    c->batches += j->first;
    c->messages += j->ok;
    if (!j->cancelled)
        j->cb(j->arg, j->ok);
    spool_message_free(j->msg);
    free(j->msg);
    free(j);
}

struct smtp_commit *smtp_commit_new(struct event_base *base, const struct wharf_config *cfg,
                                    bool threaded)
{
    struct smtp_commit *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    struct offload_params p = {
        .name = "spool writer",
        .threads = threaded ? 1 : 0,
        .batch = true,
        .run = write_batch,
        .done = job_finish,
        .arg = c,
    };
    struct buf err = BUF_INIT;
    c->writer = offload_new(base, &p, &err);
    if (c->writer == NULL)
        log_fatal(71, "%s", buf_cstr(&err));
    buf_free(&err);
    return c;
}

void smtp_commit_free(struct smtp_commit *c)
{
    offload_free(c->writer); /* finishes what was submitted */
    free(c);
}

struct smtp_commit_job *smtp_commit_submit(struct smtp_commit *c, struct spool_message *msg,
                                           smtp_commit_cb cb, void *arg)
{
    struct smtp_commit_job *j = xcalloc(1, sizeof(*j));
    j->msg = msg;
    j->cb = cb;
    j->arg = arg;
    offload_submit(c->writer, &j->oj); /* unbounded: the sessions are */
    return j;
}

void smtp_commit_cancel(struct smtp_commit_job *job)
{
    job->cancelled = true;
}

void smtp_commit_stats(const struct smtp_commit *c, uint64_t *batches_r, uint64_t *messages_r)
{
    *batches_r = c->batches;
    *messages_r = c->messages;
}
