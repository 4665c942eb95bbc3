/*
 * mta_remove.c - spool removals in a thread (see mta_remove.h), on the
 * worker-thread kit (base/offload.h).
 *
 * Threads: the event loop submits ids and, when they come back, logs the
 * results and forgets the ids; the remover thread only calls spool_remove().
 * Must never: let the loop forget an id before its file is gone (a scan
 * would deliver it again).
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
    return r;
}

void mta_remove_submit(struct mta_remove *r, const char *id)
{
    struct rm_job *j = xcalloc(1, sizeof(*j));
    strncpy(j->id, id, sizeof(j->id) - 1);
    buf_init(&j->err);
    idset_add(&r->pending, j->id);
    offload_submit(r->remover, &j->oj);
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
