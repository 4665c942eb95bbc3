/*
 * mta_queue.c - spool pickup and bookkeeping of the mta (see mta_queue.h).
 * Never removes or changes a spool entry before the store commit that
 * delivered it has returned.
 */
#include "mta/mta_queue.h"
#include "base/alloc.h"
#include "base/log.h"
#include "spool/spool.h"

#include <stdlib.h>
#include <string.h>

struct qjob {
    struct mta_job job;
    struct mta_queue *q;
    struct spool_message sm;
    size_t *map; /* job recipient i -> spool recipient map[i] */
    struct local_rcpt *rcpts;
};

struct idset {
    char **v;
    size_t n, cap;
};

struct mta_queue {
    const struct wharf_config *cfg;
    struct mta_batch *batch;
    struct idset busy;     /* in the open batch */
    struct idset deferred; /* only remote recipients left: not our job any more */
};

static bool idset_has(const struct idset *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], id) == 0)
            return true;
    return false;
}

static void idset_add(struct idset *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
    }
    s->v[s->n++] = xstrdup(id);
}

static void idset_del(struct idset *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i], id) == 0) {
            free(s->v[i]);
            s->v[i] = s->v[--s->n];
            return;
        }
    }
}

static void idset_free(struct idset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

struct mta_queue *mta_queue_new(const struct wharf_config *cfg, struct mta_batch *batch)
{
    struct mta_queue *q = xcalloc(1, sizeof(*q));
    q->cfg = cfg;
    q->batch = batch;
    return q;
}

static void qjob_free(struct qjob *j)
{
    for (size_t i = 0; i < j->job.msg.n_rcpts; i++)
        local_rcpt_free(&j->rcpts[i]);
    free(j->rcpts);
    free(j->map);
    spool_message_free(&j->sm);
    free(j);
}

static void qjob_done(struct mta_job *job)
{
    struct qjob *j = job->arg;
    struct mta_queue *q = j->q;
    const char *id = j->sm.env.id;
    bool changed = false, remote_left = false, retry_left = false;
    for (size_t i = 0; i < job->msg.n_rcpts; i++) {
        struct spool_rcpt *sr = &j->sm.env.rcpts[j->map[i]];
        switch (j->rcpts[i].status) {
        case LOCAL_DELIVERED:
            sr->state = SPOOL_RCPT_DELIVERED;
            changed = true;
            break;
        case LOCAL_NO_USER:
            sr->state = SPOOL_RCPT_FAILED; /* a bounce is owed (outbound delivery, later) */
            changed = true;
            break;
        case LOCAL_NOT_LOCAL:
        case LOCAL_FORWARDS_PENDING: /* local part stored once; a retry finds it delivered */
            remote_left = true;
            break;
        case LOCAL_TEMPFAIL:
            retry_left = true;
            break;
        }
    }
    struct buf err = BUF_INIT;
    bool pending = false;
    for (size_t i = 0; i < j->sm.env.n_rcpts; i++)
        if (j->sm.env.rcpts[i].state == SPOOL_RCPT_PENDING)
            pending = true;
    if (!pending) {
        if (spool_remove(q->cfg, id, &err) == 0)
            log_info("%s: removed", id);
        else
            log_error("%s: cannot remove from the spool: %s", id, buf_cstr(&err));
    } else if (changed && spool_update_rcpts(q->cfg, &j->sm, &err) != 0)
        log_error("%s: cannot record delivery in the spool: %s (a retry is recognised)", id,
                  buf_cstr(&err));
    if (pending && remote_left && !retry_left) {
        log_info("%s: waiting for outbound delivery (not built yet)", id);
        idset_add(&q->deferred, id);
    }
    idset_del(&q->busy, id);
    buf_free(&err);
    qjob_free(j);
}

void mta_queue_take(struct mta_queue *q, const char *id)
{
    if (idset_has(&q->busy, id) || idset_has(&q->deferred, id))
        return;
    struct qjob *j = xcalloc(1, sizeof(*j));
    struct buf err = BUF_INIT;
    if (spool_read(q->cfg, id, &j->sm, &err) != 0) {
        log_error("%s: cannot read spool entry: %s", id, buf_cstr(&err));
        buf_free(&err);
        free(j);
        return;
    }
    buf_free(&err);
    /*
     * RFC 5321 4.4: the delivering MTA records the envelope sender in a
     * Return-Path: line at the top. The same for every recipient, so the one
     * stored copy stays one.
     */
    const char *sender = j->sm.env.sender ? j->sm.env.sender : "";
    struct buf with_path = BUF_INIT;
    buf_reserve(&with_path, j->sm.data.len + strlen(sender) + 20);
    buf_printf(&with_path, "Return-Path: <%s>\r\n", sender);
    buf_append_slice(&with_path, buf_slice(&j->sm.data));
    buf_free(&j->sm.data);
    j->sm.data = with_path;
    j->q = q;
    size_t n = j->sm.env.n_rcpts;
    j->rcpts = xcalloc(n ? n : 1, sizeof(*j->rcpts));
    j->map = xcalloc(n ? n : 1, sizeof(*j->map));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (j->sm.env.rcpts[i].state != SPOOL_RCPT_PENDING)
            continue;
        local_rcpt_init(&j->rcpts[k], j->sm.env.rcpts[i].address);
        j->map[k++] = i;
    }
    j->job = (struct mta_job){
        .msg = {.queue_id = j->sm.env.id, .data = buf_slice(&j->sm.data),
                .arrival = j->sm.env.arrival, .rcpts = j->rcpts, .n_rcpts = k},
        .done = qjob_done,
        .arg = j,
    };
    idset_add(&q->busy, id);
    mta_batch_add(q->batch, &j->job);
}

void mta_queue_scan(struct mta_queue *q)
{
    char **ids;
    size_t n;
    struct buf err = BUF_INIT;
    if (spool_list(q->cfg, &ids, &n, &err) != 0) {
        log_error("cannot list the spool: %s", buf_cstr(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    for (size_t i = 0; i < n; i++)
        mta_queue_take(q, ids[i]);
    spool_list_free(ids, n);
}

size_t mta_queue_deferred(const struct mta_queue *q)
{
    return q->deferred.n;
}

void mta_queue_free(struct mta_queue *q)
{
    idset_free(&q->busy);
    idset_free(&q->deferred);
    free(q);
}
