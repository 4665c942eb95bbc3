/*
 * smtp_commit.c - group commit of spool files (see smtp_commit.h).
 *
 * Threads: the event loop submits and receives results; one writer thread
 * does the blocking I/O. They share only the two job lists under the mutex,
 * and the loop is woken through a pipe. Must never: touch a session from the
 * writer thread.
 */
#include "smtp/smtp_commit.h"

#include "base/alloc.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct smtp_commit_job {
    struct smtp_commit_job *next;
    struct spool_message *msg;
    bool ok, cancelled;
    smtp_commit_cb cb;
    void *arg;
};

struct smtp_commit {
    const struct wharf_config *cfg;
    bool threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct smtp_commit_job *todo, **todo_tail; /* loop -> writer */
    struct smtp_commit_job *done, **done_tail; /* writer -> loop */
    bool stop;
    int wake[2];
    struct event *wake_ev;
    uint64_t batches, messages;
};

static void job_finish(struct smtp_commit_job *j)
{
    if (!j->cancelled)
        j->cb(j->arg, j->ok);
    spool_message_free(j->msg);
    free(j->msg);
    free(j);
}

static void write_batch(struct smtp_commit *c, struct smtp_commit_job *list)
{
    size_t n = 0;
    for (struct smtp_commit_job *j = list; j; j = j->next)
        n++;
    const struct spool_message **msgs = xcalloc(n, sizeof(*msgs));
    bool *ok = xcalloc(n, sizeof(bool));
    size_t i = 0;
    for (struct smtp_commit_job *j = list; j; j = j->next)
        msgs[i++] = j->msg;
    struct buf err = BUF_INIT;
    if (spool_write_batch(c->cfg, msgs, n, ok, &err) != 0 || err.len)
        log_error("spool write failed: %s", buf_cstr(&err));
    buf_free(&err);
    i = 0;
    for (struct smtp_commit_job *j = list; j; j = j->next)
        j->ok = ok[i++];
    free(msgs);
    free(ok);
}

static void *writer_main(void *arg)
{
    struct smtp_commit *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->todo == NULL && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->todo == NULL && c->stop)
            break;
        struct smtp_commit_job *batch = c->todo;
        c->todo = NULL;
        c->todo_tail = &c->todo;
        pthread_mutex_unlock(&c->mu);
        write_batch(c, batch);
        pthread_mutex_lock(&c->mu);
        *c->done_tail = batch;
        while (*c->done_tail)
            c->done_tail = &(*c->done_tail)->next;
        ssize_t w = write(c->wake[1], "x", 1);
        (void)w;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_commit *c = arg;
    char tmp[256];
    while (fd >= 0 && read(fd, tmp, sizeof(tmp)) > 0)
        ;
    pthread_mutex_lock(&c->mu);
    struct smtp_commit_job *list = c->done;
    c->done = NULL;
    c->done_tail = &c->done;
    pthread_mutex_unlock(&c->mu);
    if (list)
        c->batches++;
    while (list) {
        struct smtp_commit_job *next = list->next;
        c->messages += list->ok;
        job_finish(list);
        list = next;
    }
}

struct smtp_commit *smtp_commit_new(struct event_base *base, const struct wharf_config *cfg,
                                    bool threaded)
{
    struct smtp_commit *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->threaded = threaded;
    c->todo_tail = &c->todo;
    c->done_tail = &c->done;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (!threaded) {
        c->wake[0] = c->wake[1] = -1;
        c->wake_ev = event_new(base, -1, 0, wake_cb, c);
        return c;
    }
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        log_fatal(70, "pipe: %s", strerror(errno));
    c->wake_ev = event_new(base, c->wake[0], EV_READ | EV_PERSIST, wake_cb, c);
    event_add(c->wake_ev, NULL);
    if (pthread_create(&c->thread, NULL, writer_main, c) != 0)
        log_fatal(71, "cannot start the spool writer thread");
    return c;
}

void smtp_commit_free(struct smtp_commit *c)
{
    if (c->threaded) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
        close(c->wake[1]);
    }
    wake_cb(c->wake[0], EV_READ, c); /* finish what was written last */
    event_free(c->wake_ev);
    if (c->wake[0] >= 0)
        close(c->wake[0]);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

struct smtp_commit_job *smtp_commit_submit(struct smtp_commit *c, struct spool_message *msg,
                                           smtp_commit_cb cb, void *arg)
{
    struct smtp_commit_job *j = xcalloc(1, sizeof(*j));
    j->msg = msg;
    j->cb = cb;
    j->arg = arg;
    if (!c->threaded) {
        /* Written and synced now; the callback still runs from the loop, never inside submit. */
        write_batch(c, j);
        *c->done_tail = j;
        c->done_tail = &j->next;
        event_active(c->wake_ev, EV_READ, 0);
        return j;
    }
    pthread_mutex_lock(&c->mu);
    *c->todo_tail = j;
    c->todo_tail = &j->next;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
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
