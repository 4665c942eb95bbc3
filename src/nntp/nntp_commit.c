/*
 * nntp_commit.c - group commit of articles (see nntp_commit.h), on the
 * worker-thread kit (base/offload.h), as smtp_commit.c does for the spool.
 *
 * Threads: the loop submits and receives results; one writer thread runs
 * one store_deliver for every job queued at once, on a store handle no
 * other thread uses (SQLite connections are not shared between threads;
 * the loop keeps its own for reading). Must never: touch a session or the
 * loop's store from the writer thread.
 */
#include "nntp/nntp_commit.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/offload.h"
#include "ipc/event.h"
#include "nntp/nntp_groups.h"

#include <stdlib.h>
#include <string.h>

struct job {
    struct offload_job oj;
    struct nntp_commit_job pub;
    char *newsgroups; /* the article's field, checked by the writer */
    char *user;       /* the poster's account, NULL: anonymous */
    bool transit;
    char *log;
    size_t batch; /* articles in the commit that held it */
    uint64_t seq; /* which commit (the writer numbers them) */
    bool cancelled;
    nntp_commit_cb cb;
    void *arg;
};

struct nntp_commit {
    struct net_worker *worker;
    struct store *store; /* the writer thread's */
    struct offload *writer;
    uint64_t seq; /* the writer thread's: commits made */
    /* The writer's: the newsgroups and the rights it looked up, kept while no other handle
     * has committed (store_data_version at version): only another handle changes a folder,
     * an anchor or an ACL (this one adds messages, and the counts are not read here). */
    bool cached;
    int64_t version;
    struct nntp_groups groups;
    struct rights_seen *seen;
    size_t n_seen;
    /* The loop's: the groups already announced for commit told_seq. A commit's
     * articles finish one after the other, and one event per group and commit
     * tells the others all it holds (a streamed batch is dozens of articles). */
    uint64_t told_seq;
    char **told;
    size_t n_told;
};

/* A right looked up by the writer: user's on g (user NULL: anonymous). */
struct rights_seen {
    const struct nntp_group *g;
    char *user;
    struct nntp_rights r;
};

/* Rights remembered, at most this many (then forgotten, and looked up again). */
#define RIGHTS_SEEN_MAX 256

/* In the writer thread: forgets the groups and rights it kept. */
static void cache_drop(struct nntp_commit *c)
{
    for (size_t i = 0; i < c->n_seen; i++)
        free(c->seen[i].user);
    free(c->seen);
    c->seen = NULL;
    c->n_seen = 0;
    if (c->cached)
        nntp_groups_free(&c->groups);
    c->cached = false;
}

/* In the writer thread: user's rights on g, looked up once while the cache holds. */
static int rights_of(void *arg, const struct nntp_group *g, const char *user, struct nntp_rights *r,
                     struct buf *err)
{
    struct nntp_commit *c = arg;
    for (size_t i = 0; i < c->n_seen; i++) {
        const struct rights_seen *v = &c->seen[i];
        if (v->g == g && (v->user && user ? strcmp(v->user, user) == 0 : v->user == user)) {
            *r = v->r;
            return 0;
        }
    }
    if (nntp_group_rights(c->store, g, user, r, err) != 0)
        return -1;
    if (c->n_seen == RIGHTS_SEEN_MAX) {
        for (size_t i = 0; i < c->n_seen; i++)
            free(c->seen[i].user);
        c->n_seen = 0;
    }
    if (c->seen == NULL)
        c->seen = xcalloc(RIGHTS_SEEN_MAX, sizeof(*c->seen));
    c->seen[c->n_seen++] =
        (struct rights_seen){.g = g, .user = user ? xstrdup(user) : NULL, .r = *r};
    return 0;
}

/* In the writer thread: the newsgroups as of now, read again only when another handle
 * has committed since they were (false: they cannot be listed). */
static bool groups_now(struct nntp_commit *c, struct buf *err)
{
    int64_t v = 0;
    bool versioned = store_data_version(c->store, &v, err) == 0;
    if (!versioned) {
        log_warning("article writer: %s", buf_cstr(err)); /* listed again for each batch */
        buf_reset(err);
    }
    if (versioned && c->cached && v == c->version)
        return true;
    cache_drop(c);
    if (nntp_groups_load(c->store, &c->groups, err) != 0)
        return false;
    c->cached = true;
    c->version = versioned ? v : -1; /* SQLite's data versions are positive */
    return true;
}

/* Forgets the groups announced for the last commit. */
static void told_reset(struct nntp_commit *c)
{
    for (size_t i = 0; i < c->n_told; i++)
        free(c->told[i]);
    free(c->told);
    c->told = NULL;
    c->n_told = 0;
}

/* Whether mailbox needs its event for commit seq (and it is taken as told). */
static bool tell_once(struct nntp_commit *c, uint64_t seq, const char *mailbox)
{
    if (seq != c->told_seq) {
        told_reset(c);
        c->told_seq = seq;
    }
    for (size_t i = 0; i < c->n_told; i++)
        if (strcmp(c->told[i], mailbox) == 0)
            return false;
    c->told = xreallocarray(c->told, c->n_told + 1, sizeof(*c->told));
    c->told[c->n_told++] = xstrdup(mailbox);
    return true;
}

/* In the writer thread: each article's groups, then its posting rights, on this thread's
 * handle. Its page cache is warm: a commit drops the cache of every other handle of the
 * database (the loop's), not the one that made it. */
static void check_batch(struct nntp_commit *c, struct offload_job *list)
{
    struct buf err = BUF_INIT;
    if (store_read_begin(c->store, &err) != 0) {
        log_error("article writer: read snapshot: %s", buf_cstr(&err)); /* reads one by one */
        buf_reset(&err);
    }
    struct buf why = BUF_INIT;
    bool loaded = groups_now(c, &err), trouble = !loaded;
    if (!loaded)
        log_error("article writer: cannot list the newsgroups: %s", buf_cstr(&err));
    for (struct offload_job *j = list; j; j = j->next) {
        struct job *jb = OFFLOAD_CONTAINER(j, struct job, oj);
        const struct nntp_group *g[64];
        size_t n;
        buf_reset(&err);
        buf_reset(&why);
        int rc = !loaded ? -1
                         : nntp_article_groups(&c->groups, slice_from_cstr(jb->newsgroups),
                                               jb->transit, jb->user, rights_of, c, g,
                                               sizeof(g) / sizeof(g[0]), &n, &why, &err);
        if (rc < 0 && loaded)
            log_error("article writer: rights: %s", buf_cstr(&err));
        trouble |= rc < 0;
        jb->pub.failed = rc < 0;
        if (rc == 1)
            jb->pub.refused = xstrdup(buf_cstr(&why));
        if (rc != 0)
            continue;
        jb->pub.t = xcalloc(n, sizeof(*jb->pub.t));
        for (size_t k = 0; k < n; k++) {
            jb->pub.t[k].owner = STORE_PUBLIC_OWNER;
            jb->pub.t[k].mailbox = xstrdup(g[k]->mailbox);
            jb->pub.t[k].must_exist = true;
        }
        jb->pub.n = n;
    }
    if (trouble)
        cache_drop(c); /* looked up again for the next batch */
    store_read_end(c->store);
    buf_free(&why);
    buf_free(&err);
}

/* In the writer thread: the checks, then one transaction, one fdatasync for the articles
 * that passed them. */
static void write_batch(void *arg, struct offload_job *list)
{
    struct nntp_commit *c = arg;
    check_batch(c, list);
    size_t n = 0, all = 0;
    for (struct offload_job *j = list; j; j = j->next, all++)
        n += OFFLOAD_CONTAINER(j, struct job, oj)->pub.n > 0;
    struct store_delivery *d = xcalloc(n ? n : 1, sizeof(*d));
    size_t i = 0;
    for (struct offload_job *j = list; j; j = j->next) {
        struct job *jb = OFFLOAD_CONTAINER(j, struct job, oj);
        if (jb->pub.n == 0)
            continue;
        d[i++] = (struct store_delivery){.data = buf_slice(&jb->pub.data),
                                         .targets = jb->pub.t,
                                         .n_targets = jb->pub.n,
                                         .unique_msgid = true};
    }
    struct buf err = BUF_INIT;
    bool failed = n > 0 && store_deliver(c->store, d, n, &err) != 0;
    uint64_t seq = ++c->seq;
    if (failed)
        log_error("cannot store %zu article(s): %s", n, buf_cstr(&err));
    buf_free(&err);
    for (struct offload_job *j = list; j; j = j->next) {
        struct job *jb = OFFLOAD_CONTAINER(j, struct job, oj);
        jb->pub.failed |= failed && jb->pub.n > 0;
        jb->batch = all;
        jb->seq = seq;
    }
    free(d);
}

/* In the writer thread, once the batch's answers are on their way: the WAL checkpoint
 * the commits put off (a database sync every ~60 lone POSTs, which the 240 waited for). */
static void after_batch(void *arg)
{
    struct nntp_commit *c = arg;
    struct buf err = BUF_INIT;
    if (store_checkpoint(c->store, &err) != 0)
        log_warning("article writer: %s", buf_cstr(&err));
    buf_free(&err);
}

/* In the loop: the article is committed (or not); its session is told, then its groups
 * (an event to the supervisor) and the log: the answer does not wait for them. */
static void job_finish(void *arg, struct offload_job *oj)
{
    struct nntp_commit *c = arg;
    struct job *j = OFFLOAD_CONTAINER(oj, struct job, oj);
    if (!j->cancelled)
        j->cb(j->arg, &j->pub);
    size_t stored = 0;
    for (size_t k = 0; k < j->pub.n; k++) {
        if (j->pub.failed || j->pub.t[k].status != STORE_OK)
            continue;
        stored++;
        if (!tell_once(c, j->seq, j->pub.t[k].mailbox))
            continue;
        struct ipc_event ev = {
            .type = IPC_EVENT_MAILBOX_CHANGED,
            .u.mailbox_changed = {.owner = STORE_PUBLIC_OWNER, .mailbox = j->pub.t[k].mailbox}};
        net_worker_publish(c->worker, &ev);
    }
    if (stored)
        log_info("%s, groups=%zu, size=%zu, batch=%zu", j->log, stored, j->pub.data.len, j->batch);
    for (size_t k = 0; k < j->pub.n; k++)
        free((char *)j->pub.t[k].mailbox);
    free(j->pub.t);
    buf_free(&j->pub.data);
    free(j->pub.refused);
    free(j->newsgroups);
    free(j->user);
    free(j->log);
    free(j);
}

struct nntp_commit *nntp_commit_new(struct net_worker *w, const struct wharf_config *cfg,
                                    struct buf *err)
{
    struct nntp_commit *c = xcalloc(1, sizeof(*c));
    c->worker = w;
    c->store = store_open(cfg, err);
    if (c->store == NULL) {
        free(c);
        return NULL;
    }
    store_checkpoint_deferred(c->store);
    struct offload_params p = {
        .name = "article writer",
        .threads = 1,
        .batch = true,
        .run = write_batch,
        .done = job_finish,
        .after = after_batch,
        .arg = c,
    };
    c->writer = offload_new(net_worker_base(w), &p, err);
    if (c->writer == NULL) {
        store_close(c->store);
        free(c);
        return NULL;
    }
    return c;
}

void nntp_commit_free(struct nntp_commit *c)
{
    if (c == NULL)
        return;
    offload_free(c->writer); /* finishes what was submitted */
    cache_drop(c);
    store_close(c->store);
    told_reset(c);
    free(c);
}

struct nntp_commit_job *nntp_commit_submit(struct nntp_commit *c, struct buf *data,
                                           struct slice newsgroups, bool transit, const char *user,
                                           const char *log, nntp_commit_cb cb, void *arg)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->pub.data = *data;
    buf_init(data);
    j->newsgroups = slice_strdup(newsgroups);
    j->user = user ? xstrdup(user) : NULL;
    j->transit = transit;
    j->log = xstrdup(log);
    j->cb = cb;
    j->arg = arg;
    offload_submit(c->writer, &j->oj); /* unbounded: each session bounds its own */
    return &j->pub;
}

void nntp_commit_cancel(struct nntp_commit_job *job)
{
    struct job *j = OFFLOAD_CONTAINER(job, struct job, pub);
    j->cancelled = true;
}
