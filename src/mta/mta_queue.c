/*
 * mta_queue.c - spool pickup and bookkeeping of the mta (see mta_queue.h).
 * Never removes or changes a spool entry before the store commit that
 * delivered it has returned.
 */
#include "mta/mta_queue.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "mta/idset.h"
#include "mta/mta_expand.h"
#include "mta/mta_remove.h"
#include "mta/vacation.h"
#include "spool/spool.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct qjob {
    struct mta_job job;
    struct mta_queue *q;
    struct spool_message sm; /* data as spooled: what goes to other servers */
    struct buf data_rp;      /* with Return-Path: what local mailboxes get */
    struct buf route_id;     /* its route id over the organization (the store's key), or empty */
    size_t *map;             /* job recipient i -> spool recipient map[i] */
    struct local_rcpt *rcpts;
    struct {
        char *rcpt, *account;
    } * stored; /* the accounts it was stored for (local_stored_fn), for vacation replies */
    size_t n_stored;
};

struct wait {
    char *id;
    int64_t due; /* unix ms */
    bool org;    /* waits for the organization's routes */
    bool now;    /* made due by a change of routes: before the retry time in its spool file */
};

struct pending_ctl {
    char *id;
    bool del;
    enum spool_ctl c;
};

struct mta_queue {
    const struct wharf_config *cfg;
    struct mta_batch *batch;
    struct idset busy;       /* in the open batch */
    struct idset deferred;   /* in outbound delivery, waiting for a retry, or forwards only */
    struct idset sending;    /* in an outbound attempt right now */
    struct pending_ctl *ctl; /* `wharf queue` actions waiting for an attempt to end */
    size_t n_ctl;
    struct mta_queue_outbound out;
    struct mta_remove *rm; /* NULL: finished entries are removed in place */
    struct wait *waits;    /* deferred entries with a next attempt time */
    size_t n_waits, cap_waits;
    struct event *wake_ev;  /* at the earliest due time */
    int64_t routes_changed; /* unix ms of the last change of the organization's routes */
};

static void wake_arm(struct mta_queue *q)
{
    if (q->n_waits == 0) {
        evtimer_del(q->wake_ev);
        return;
    }
    int64_t due = q->waits[0].due;
    for (size_t i = 1; i < q->n_waits; i++)
        if (q->waits[i].due < due)
            due = q->waits[i].due;
    int64_t d = due - wallclock_ms();
    if (d < 0)
        d = 0;
    struct timeval tv = clock_timeval_ms(d);
    evtimer_add(q->wake_ev, &tv);
}

/* Entry id waits (in q->deferred) until due (or a change of routes, with org). */
static void wait_add(struct mta_queue *q, const char *id, int64_t due, bool org)
{
    if (q->n_waits == q->cap_waits) {
        q->cap_waits = q->cap_waits ? q->cap_waits * 2 : 16;
        q->waits = xreallocarray(q->waits, q->cap_waits, sizeof(*q->waits));
    }
    q->waits[q->n_waits++] = (struct wait){xstrdup(id), due, org, false};
    wake_arm(q);
}

size_t mta_queue_routes_changed(struct mta_queue *q)
{
    int64_t now = wallclock_ms();
    q->routes_changed = now;
    size_t n = 0;
    for (size_t i = 0; i < q->n_waits; i++) {
        if (q->waits[i].org && q->waits[i].due > now) {
            q->waits[i].due = now;
            q->waits[i].now = true;
            n++;
        }
    }
    if (n > 0)
        wake_arm(q);
    return n;
}

static void take(struct mta_queue *q, const char *id, bool now);

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct mta_queue *q = arg;
    int64_t now = wallclock_ms();
    struct wait *due = xcalloc(q->n_waits ? q->n_waits : 1, sizeof(*due));
    size_t n_due = 0;
    for (size_t i = 0; i < q->n_waits;) {
        if (q->waits[i].due <= now) {
            idset_del(&q->deferred, q->waits[i].id);
            due[n_due++] = q->waits[i];
            q->waits[i] = q->waits[--q->n_waits];
        } else
            i++;
    }
    for (size_t i = 0; i < n_due; i++) {
        take(q, due[i].id, due[i].now);
        free(due[i].id);
    }
    free(due);
    wake_arm(q);
}

struct mta_queue *mta_queue_new(const struct wharf_config *cfg, struct mta_batch *batch)
{
    struct mta_queue *q = xcalloc(1, sizeof(*q));
    q->cfg = cfg;
    q->batch = batch;
    q->wake_ev = evtimer_new(batch->base, on_wake, q);
    return q;
}

void mta_queue_set_outbound(struct mta_queue *q, const struct mta_queue_outbound *out)
{
    q->out = *out;
}

void mta_queue_set_remove(struct mta_queue *q, struct mta_remove *rm)
{
    q->rm = rm;
}

static void wait_del(struct mta_queue *q, const char *id)
{
    for (size_t i = 0; i < q->n_waits; i++) {
        if (strcmp(q->waits[i].id, id) == 0) {
            free(q->waits[i].id);
            q->waits[i] = q->waits[--q->n_waits];
            wake_arm(q);
            return;
        }
    }
}

static void control_one(struct mta_queue *q, const char *id, bool del, enum spool_ctl c)
{
    if (idset_has(&q->busy, id) || idset_has(&q->sending, id)) {
        q->ctl = xreallocarray(q->ctl, q->n_ctl + 1, sizeof(*q->ctl));
        q->ctl[q->n_ctl++] = (struct pending_ctl){xstrdup(id), del, c};
        return;
    }
    wait_del(q, id);
    idset_del(&q->deferred, id);
    struct buf err = BUF_INIT;
    static const char *const names[] = {"flush", "hold", "release", "requeue"};
    if (del ? spool_delete(q->cfg, id, &err) : spool_control(q->cfg, id, c, &err)) {
        log_warning("%s: queue %s: %s", id, del ? "delete" : names[c], buf_cstr(&err));
    } else {
        log_info("%s: %s by the administrator", id, del ? "removed" : names[c]);
        if (!del && c != SPOOL_CTL_HOLD)
            mta_queue_take(q, id);
    }
    buf_free(&err);
}

/* Applies the actions that waited for id's attempt to end. */
static void control_pending(struct mta_queue *q, const char *id)
{
    for (size_t i = 0; i < q->n_ctl;) {
        if (strcmp(q->ctl[i].id, id) != 0) {
            i++;
            continue;
        }
        struct pending_ctl p = q->ctl[i];
        memmove(&q->ctl[i], &q->ctl[i + 1], (q->n_ctl - i - 1) * sizeof(*q->ctl));
        q->n_ctl--;
        control_one(q, p.id, p.del, p.c);
        free(p.id);
    }
}

void mta_queue_control(struct mta_queue *q, const char *id, bool del, enum spool_ctl c)
{
    if (id != NULL) {
        control_one(q, id, del, c);
        return;
    }
    char **ids;
    size_t n;
    struct buf err = BUF_INIT;
    if (spool_list(q->cfg, &ids, &n, &err) != 0)
        log_error("cannot list the spool: %s", buf_cstr(&err));
    else {
        for (size_t i = 0; i < n; i++)
            control_one(q, ids[i], del, c);
        spool_list_free(ids, n);
    }
    buf_free(&err);
}

void mta_queue_outbound_done(struct mta_queue *q, const char *id, int64_t next_attempt_ms,
                             int64_t org_since)
{
    idset_del(&q->sending, id);
    /* the routes changed while the attempt ran: it need not wait for its retry time */
    bool changed = next_attempt_ms > 0 && org_since > 0 && q->routes_changed >= org_since;
    if (next_attempt_ms > 0) {
        wait_add(q, id, changed ? wallclock_ms() : next_attempt_ms,
                 org_since > 0); /* stays in deferred until then */
        q->waits[q->n_waits - 1].now = changed;
    } else
        idset_del(&q->deferred, id);
    control_pending(q, id);
}

static void qjob_free(struct qjob *j)
{
    for (size_t i = 0; i < j->n_stored; i++) {
        free(j->stored[i].rcpt);
        free(j->stored[i].account);
    }
    free(j->stored);
    for (size_t i = 0; i < j->job.msg.n_rcpts; i++)
        local_rcpt_free(&j->rcpts[i]);
    free(j->rcpts);
    free(j->map);
    buf_free(&j->data_rp);
    buf_free(&j->route_id);
    spool_message_free(&j->sm);
    free(j);
}

static void qjob_stored(void *arg, const struct local_message *m, const char *rcpt,
                        const char *account)
{
    struct qjob *j = arg;
    j->stored = xreallocarray(j->stored, j->n_stored + 1, sizeof(*j->stored));
    j->stored[j->n_stored].rcpt = xstrdup(rcpt);
    j->stored[j->n_stored++].account = xstrdup(account);
}

/* The vacation replies of the accounts the entry reached (after the commit, as bounces). */
static void qjob_vacation(struct qjob *j)
{
    struct mta_queue *q = j->q;
    if (q->out.notice == NULL)
        return;
    struct buf reply = BUF_INIT, err = BUF_INIT;
    for (size_t i = 0; i < j->n_stored; i++) {
        struct vacation_input in = {.sender = j->sm.env.sender,
                                    .rcpt = j->stored[i].rcpt,
                                    .account = j->stored[i].account,
                                    .data = buf_slice(&j->data_rp),
                                    .now = (int64_t)time(NULL)};
        const char *why;
        buf_reset(&reply);
        int rc = vacation_consider(q->batch->store, &in, q->cfg->vacation_period / 1000,
                                   q->cfg->myhostname, &reply, &why, &err);
        if (rc < 0)
            log_warning("%s: vacation reply of %s: %s", j->sm.env.id, in.account, buf_cstr(&err));
        else if (rc == 0 && why)
            log_info("%s: no vacation reply of %s to <%s>: %s", j->sm.env.id, in.account,
                     in.sender ? in.sender : "", why);
        else if (rc == 1)
            q->out.notice(q->out.arg, j->sm.env.id, in.sender, buf_slice(&reply), "vacation reply");
        buf_reset(&err);
    }
    buf_free(&reply);
    buf_free(&err);
}

static void qjob_done(struct mta_job *job)
{
    struct qjob *j = job->arg;
    struct mta_queue *q = j->q;
    char id[32];
    memcpy(id, j->sm.env.id, sizeof(id));
    size_t n = j->sm.env.n_rcpts;
    bool changed = false, remote_left = false, retry_left = false, any_failed = false;
    bool *remote = xcalloc(n ? n : 1, sizeof(*remote));
    bool *failed = xcalloc(n ? n : 1, sizeof(*failed));
    char **diag = xcalloc(n ? n : 1, sizeof(*diag));
    const char **enh = xcalloc(n ? n : 1, sizeof(*enh));
    for (size_t i = 0; i < job->msg.n_rcpts; i++) {
        struct spool_rcpt *sr = &j->sm.env.rcpts[j->map[i]];
        switch (j->rcpts[i].status) {
        case LOCAL_DELIVERED:
            sr->state = SPOOL_RCPT_DELIVERED;
            changed = true;
            break;
        case LOCAL_NO_USER:
        case LOCAL_LOOP:
            sr->state = SPOOL_RCPT_FAILED;
            failed[j->map[i]] = any_failed = true;
            diag[j->map[i]] = (char *)buf_cstr(&j->rcpts[i].detail);
            enh[j->map[i]] = j->rcpts[i].status == LOCAL_LOOP ? "5.4.6" : "5.1.1";
            changed = true;
            break;
        case LOCAL_NOT_LOCAL:
            remote[j->map[i]] = remote_left = true;
            break;
        case LOCAL_FORWARDS_PENDING: /* an alias not expanded at take (its entry would pass
                                        MTA_EXPAND_RCPTS_MAX, or it changed since): the local
                                        part is stored once, a retry expands it */
        case LOCAL_TEMPFAIL:
            retry_left = true;
            break;
        }
    }
    /* the bounce is spooled before the failure is recorded: never lost */
    if (any_failed && q->out.bounce)
        q->out.bounce(q->out.arg, &j->sm, failed, diag, enh);
    qjob_vacation(j);
    struct buf err = BUF_INIT;
    bool pending = false, outbound = false;
    for (size_t i = 0; i < n; i++) {
        if (j->sm.env.rcpts[i].state == SPOOL_RCPT_PENDING)
            pending = true;
        if (remote[i] && q->out.deliver)
            outbound = true;
    }
    if (!pending && q->rm != NULL)
        mta_remove_submit(q->rm, id);
    else if (!pending) {
        if (spool_remove(q->cfg, id, &err) == 0)
            log_info("%s: removed", id);
        else
            log_error("%s: cannot remove from the spool: %s", id, buf_cstr(&err));
    } else if (changed && spool_update_rcpts(q->cfg, &j->sm, &err) != 0)
        log_error("%s: cannot record delivery in the spool: %s (a retry is recognised)", id,
                  buf_cstr(&err));
    idset_del(&q->busy, id);
    if (outbound) {
        idset_add(&q->deferred, id);
        idset_add(&q->sending, id);
        struct spool_message *sm = xmalloc(sizeof(*sm));
        *sm = j->sm;
        memset(&j->sm, 0, sizeof(j->sm));
        buf_init(&j->sm.data);
        q->out.deliver(q->out.arg, sm, remote);
    } else if (pending && remote_left && !retry_left) {
        log_info("%s: waiting for outbound delivery", id);
        idset_add(&q->deferred, id);
    }
    free(remote);
    free(failed);
    free(diag);
    free(enh);
    buf_free(&err);
    qjob_free(j);
    if (!outbound)
        control_pending(q, id);
}

void mta_queue_take(struct mta_queue *q, const char *id)
{
    take(q, id, false);
}

/* now: at once, before the retry time its spool file holds (a change of routes). */
static void take(struct mta_queue *q, const char *id, bool now)
{
    if (idset_has(&q->busy, id) || idset_has(&q->deferred, id) ||
        (q->rm != NULL && mta_remove_pending(q->rm, id))) /* finished, its file not yet gone */
        return;
    struct qjob *j = xcalloc(1, sizeof(*j));
    struct buf err = BUF_INIT;
    int rc = spool_read(q->cfg, id, &j->sm, &err);
    if (rc != 0) {
        /* gone: finished and removed between a listing (the scan) or an
         * announcement (spool-new, a late one) and now; normal, not an error */
        if (rc > 0)
            log_debug("%s: no longer in the spool", id);
        else
            log_error("%s: cannot read spool entry: %s", id, buf_cstr(&err));
        buf_free(&err);
        free(j);
        return;
    }
    buf_free(&err);
    if (j->sm.env.hold) { /* `wharf queue release` takes it again */
        spool_message_free(&j->sm);
        free(j);
        return;
    }
    if (!now && j->sm.env.next_attempt > wallclock_ms()) { /* a deferred entry, read at start */
        log_info("%s: deferred, next attempt in %llds", id,
                 (long long)((j->sm.env.next_attempt - wallclock_ms()) / 1000));
        idset_add(&q->deferred, id);
        wait_add(q, id, j->sm.env.next_attempt, false);
        spool_message_free(&j->sm);
        free(j);
        return;
    }
    /* aliases to other domains become recipients of their own, on disk first */
    if (mta_expand(q->batch->dir, &j->sm) > 0 && spool_update_rcpts(q->cfg, &j->sm, &err) != 0) {
        log_error("%s: cannot record the alias expansion: %s (tried again later)", id,
                  buf_cstr(&err));
        buf_free(&err);
        spool_message_free(&j->sm);
        free(j);
        return;
    }
    /*
     * RFC 5321 4.4: the delivering MTA records the envelope sender in a
     * Return-Path: line at the top. The same for every recipient, so the one
     * stored copy stays one.
     */
    const char *sender = j->sm.env.sender ? j->sm.env.sender : "";
    buf_init(&j->data_rp);
    buf_reserve(&j->data_rp, j->sm.data.len + strlen(sender) + 20);
    buf_printf(&j->data_rp, "Return-Path: <%s>\r\n", sender);
    buf_append_slice(&j->data_rp, buf_slice(&j->sm.data));
    j->q = q;
    size_t n = j->sm.env.n_rcpts;
    j->rcpts = xcalloc(n ? n : 1, sizeof(*j->rcpts));
    j->map = xcalloc(n ? n : 1, sizeof(*j->map));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (j->sm.env.rcpts[i].state != SPOOL_RCPT_PENDING)
            continue;
        const struct spool_rcpt *sr = &j->sm.env.rcpts[i];
        local_rcpt_init(&j->rcpts[k], sr->address);
        if (sr->account) {
            j->rcpts[k].account = true;
            j->rcpts[k].folder = sr->folder;
            j->rcpts[k].orig_to = mta_expand_orig_to(sr->orcpt);
        }
        j->map[k++] = i;
    }
    /* stored once per account however many hops sent it again (doc/routing.md) */
    buf_init(&j->route_id);
    if (q->out.route_id)
        q->out.route_id(q->out.arg, buf_slice(&j->sm.data), &j->route_id);
    j->job = (struct mta_job){
        .msg = {.queue_id = j->sm.env.id,
                .dedupe_id = j->route_id.len ? buf_cstr(&j->route_id) : NULL,
                .data = buf_slice(&j->data_rp),
                /* quarantined on arrival by a check (doc/mail-auth.md) */
                .folder = j->sm.env.junk ? "Junk" : NULL,
                .arrival = j->sm.env.arrival,
                .stored = qjob_stored,
                .stored_arg = j,
                .rcpts = j->rcpts,
                .n_rcpts = k},
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

/* The oldest arrival among the ids of set (their first digits are the time, spool.h). */
static int64_t oldest_of(const struct idset *set, int64_t oldest)
{
    for (struct strmap_slot *e = NULL; (e = strmap_next(&set->map, e)) != NULL;) {
        int64_t t = spool_id_arrival(e->key);
        if (t > 0 && (oldest == 0 || t < oldest))
            oldest = t;
    }
    return oldest;
}

int64_t mta_queue_oldest(const struct mta_queue *q)
{
    return oldest_of(&q->deferred, oldest_of(&q->busy, 0));
}

size_t mta_queue_deferred(const struct mta_queue *q)
{
    return idset_size(&q->deferred);
}

void mta_queue_free(struct mta_queue *q)
{
    for (size_t i = 0; i < q->n_waits; i++)
        free(q->waits[i].id);
    free(q->waits);
    for (size_t i = 0; i < q->n_ctl; i++)
        free(q->ctl[i].id);
    free(q->ctl);
    idset_free(&q->sending);
    event_free(q->wake_ev);
    idset_free(&q->busy);
    idset_free(&q->deferred);
    free(q);
}
