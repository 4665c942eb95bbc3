/*
 * mta_remove.c - spool removals in a thread (see mta_remove.h), on the
 * worker-thread kit (base/offload.h).
 *
 * Threads: the event loop retires each id at once (spool_retire: queue/ID
 * renamed to done/ID, before its session goes on with the next message, so
 * that a crash then cannot repeat the delivery), submits it and, when it
 * comes back, logs the result and forgets the id; the remover thread only
 * unlinks (spool_remove_retired, or spool_remove when the rename failed).
 * What a crash left in done/ is submitted at start.
 * Must never: let the loop forget an id before its file has left queue/ (a
 * scan would deliver it again).
 */
#include "mta/mta_remove.h"

#include "base/alloc.h"
#include "base/log.h"
#include "base/offload.h"
#include "mta/idset.h"
#include "spool/spool.h"

#include <stdlib.h>
#include <string.h>

struct rm_job {
    struct offload_job oj;
    char id[IDSET_ID_MAX];
    bool retired;   /* in done/ (else still in queue/: the rename failed) */
    struct buf err; /* empty: removed */
};

struct mta_remove {
    const struct wharf_config *cfg;
    struct offload *remover;
    struct idset pending; /* loop only */
};

/* In the thread: every removal queued. */
static void remove_run(void *arg, struct offload_job *list)
{
    struct mta_remove *r = arg;
    for (struct offload_job *oj = list; oj; oj = oj->next) {
        struct rm_job *j = OFFLOAD_CONTAINER(oj, struct rm_job, oj);
        if (j->retired)
            spool_remove_retired(r->cfg, j->id, &j->err);
        else
            spool_remove(r->cfg, j->id, &j->err);
    }
}

/* In the loop: logs and forgets what the thread has removed. */
static void remove_done(void *arg, struct offload_job *oj)
{
    struct mta_remove *r = arg;
    struct rm_job *j = OFFLOAD_CONTAINER(oj, struct rm_job, oj);
    if (j->err.len == 0)
        log_info("%s: removed", j->id);
    else
        log_error("%s: cannot remove from the spool: %s", j->id, buf_cstr(&j->err));
    idset_del(&r->pending, j->id);
    buf_free(&j->err);
    free(j);
}

static void submit(struct mta_remove *r, const char *id, bool retired)
{
    struct rm_job *j = xcalloc(1, sizeof(*j));
    strncpy(j->id, id, sizeof(j->id) - 1);
    j->retired = retired;
    buf_init(&j->err);
    idset_add(&r->pending, j->id);
    offload_submit(r->remover, &j->oj);
}

struct mta_remove *mta_remove_new(struct event_base *base, const struct wharf_config *cfg,
                                  struct buf *err)
{
    struct mta_remove *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    struct offload_params p = {
        .name = "spool remover",
        .threads = 1,
        .batch = true,
        .run = remove_run,
        .done = remove_done,
        .arg = r,
    };
    r->remover = offload_new(base, &p, err);
    if (r->remover == NULL) {
        free(r);
        return NULL;
    }
    /* finished before a crash (or a stop) and not yet removed */
    char **ids;
    size_t n;
    struct buf lerr = BUF_INIT;
    if (spool_list_retired(cfg, &ids, &n, &lerr) != 0)
        log_warning("spool: %s", buf_cstr(&lerr));
    else {
        for (size_t i = 0; i < n; i++)
            submit(r, ids[i], true);
        spool_list_free(ids, n);
    }
    buf_free(&lerr);
    return r;
}

void mta_remove_submit(struct mta_remove *r, const char *id)
{
    struct buf err = BUF_INIT;
    bool retired = spool_retire(r->cfg, id, &err) == 0;
    if (!retired) /* still in queue/, pending until the thread has unlinked it there */
        log_warning("%s: %s; removing it in place", id, buf_cstr(&err));
    buf_free(&err);
    submit(r, id, retired);
}

bool mta_remove_pending(const struct mta_remove *r, const char *id)
{
    return idset_has(&r->pending, id);
}

void mta_remove_free(struct mta_remove *r)
{
    if (r == NULL)
        return;
    offload_free(r->remover); /* finishes the submitted removals */
    idset_free(&r->pending);
    free(r);
}
