/*
 * mta_remove.c - spool removals in a thread (see mta_remove.h).
 *
 * Threads: the event loop submits ids and, woken through a pipe, logs the
 * results and forgets the ids; the remover thread only calls spool_remove().
 * They share the two job lists under the mutex. Must never: let the loop
 * forget an id before its file is gone (a scan would deliver it again).
 */
#include "mta/mta_remove.h"

#include "base/alloc.h"
#include "base/log.h"
#include "mta/idset.h"
#include "spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rm_job {
    struct rm_job *next;
    char id[IDSET_ID_MAX];
    struct buf err; /* empty: removed */
};

struct mta_remove {
    const struct wharf_config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rm_job *todo, **todo_tail; /* loop -> thread */
    struct rm_job *done, **done_tail; /* thread -> loop */
    bool stop;
    int wake[2];
    struct event *wake_ev;
    struct idset pending; /* loop only */
};

static void *remove_main(void *arg)
{
    struct mta_remove *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->todo == NULL && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->todo == NULL)
            break;
        struct rm_job *list = r->todo;
        r->todo = NULL;
        r->todo_tail = &r->todo;
        pthread_mutex_unlock(&r->mu);
        struct rm_job *last = list;
        for (struct rm_job *j = list; j; j = j->next) {
            spool_remove(r->cfg, j->id, &j->err);
            last = j;
        }
        pthread_mutex_lock(&r->mu);
        bool was_empty = r->done == NULL;
        *r->done_tail = list;
        r->done_tail = &last->next;
        if (was_empty) {
            char c = 1;
            (void)!write(r->wake[1], &c, 1);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* In the loop: logs and forgets what the thread has removed. */
static void remove_reap(struct mta_remove *r)
{
    pthread_mutex_lock(&r->mu);
    struct rm_job *list = r->done;
    r->done = NULL;
    r->done_tail = &r->done;
    char drain[64];
    while (read(r->wake[0], drain, sizeof(drain)) > 0)
        ;
    pthread_mutex_unlock(&r->mu);
    while (list) {
        struct rm_job *j = list;
        list = j->next;
        if (j->err.len == 0)
            log_info("%s: removed", j->id);
        else
            log_error("%s: cannot remove from the spool: %s", j->id, buf_cstr(&j->err));
        idset_del(&r->pending, j->id);
        buf_free(&j->err);
        free(j);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    remove_reap(arg);
}

struct mta_remove *mta_remove_new(struct event_base *base, const struct wharf_config *cfg,
                                  struct buf *err)
{
    struct mta_remove *r = xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    r->todo_tail = &r->todo;
    r->done_tail = &r->done;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pipe2(r->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        buf_printf(err, "pipe: %s", strerror(errno));
        goto fail;
    }
    r->wake_ev = event_new(base, r->wake[0], EV_READ | EV_PERSIST, on_wake, r);
    event_add(r->wake_ev, NULL);
    int rc = pthread_create(&r->thread, NULL, remove_main, r);
    if (rc != 0) {
        buf_printf(err, "pthread_create: %s", strerror(rc));
        event_free(r->wake_ev);
        close(r->wake[0]);
        close(r->wake[1]);
        goto fail;
    }
    return r;
fail:
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return NULL;
}

void mta_remove_submit(struct mta_remove *r, const char *id)
{
    struct rm_job *j = xcalloc(1, sizeof(*j));
    strncpy(j->id, id, sizeof(j->id) - 1);
    buf_init(&j->err);
    idset_add(&r->pending, j->id);
    pthread_mutex_lock(&r->mu);
    *r->todo_tail = j;
    r->todo_tail = &j->next;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

bool mta_remove_pending(const struct mta_remove *r, const char *id)
{
    return idset_has(&r->pending, id);
}

void mta_remove_free(struct mta_remove *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    remove_reap(r);
    event_free(r->wake_ev);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    idset_free(&r->pending);
    free(r);
}
