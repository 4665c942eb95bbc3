/*
 * directory_client.c - the workers' side of directory.sock
 * (directory_client.h): one connection per worker process, many lookups in
 * flight on it, matched to their answers by id, and a cache of answers.
 *
 * Must never: call back from inside directory_client_lookup, cache a
 * temporary failure, hold more than directory_client_queue_max lookups or
 * directory_client_cache_entries answers, or send a frame the directory
 * process would refuse (a key over the limit is answered TEMPFAIL here).
 */
#include "directory/directory_client.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/channel.h"
#include "ipc/control.h"
#include "ipc/frame.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Largest answer accepted: an alias may expand to many targets. */
#define DIRECTORY_CLIENT_MAX_ANSWER (16u << 20)

struct pending {
    struct pending *prev, *next;
    struct directory_client *c;
    uint64_t id;
    char *ckey; /* the cache key: query digit, tab, key */
    directory_client_cb cb;
    void *arg;
    struct event *timer;           /* the timeout, or "now" for an early answer */
    struct directory_answer early; /* the answer when the timer fires early */
    bool answered_early;
};

struct centry {
    struct centry *hnext;         /* in its bucket */
    struct centry *older, *newer; /* age list */
    char *ckey;
    int64_t expires_ms;
    struct directory_answer a;
};

struct directory_client {
    struct event_base *base;
    const struct wharf_config *cfg;
    char *path;
    struct bufferevent *bev; /* NULL while not connected */
    struct event *retry;     /* reconnects while not connected (see directory_client_new) */
    uint64_t next_id;
    struct pending *head;
    size_t n_pending;
    /* cache */
    struct centry **buckets;
    size_t n_buckets, n_cached;
    struct centry *oldest, *newest;
    uint64_t hits, misses;
};

/* ---- answers ---- */

static void answer_copy(struct directory_answer *dst, const struct directory_answer *src)
{
    *dst = *src;
    dst->home = xstrdup(src->home ? src->home : "");
    dst->accounts = xcalloc(src->n_targets ? src->n_targets : 1, sizeof(char *));
    dst->folders = xcalloc(src->n_targets ? src->n_targets : 1, sizeof(char *));
    for (size_t i = 0; i < src->n_targets; i++) {
        dst->accounts[i] = xstrdup(src->accounts[i]);
        dst->folders[i] = xstrdup(src->folders[i] ? src->folders[i] : "");
    }
    dst->remote = xcalloc(src->n_remote ? src->n_remote : 1, sizeof(char *));
    for (size_t i = 0; i < src->n_remote; i++)
        dst->remote[i] = xstrdup(src->remote[i]);
}

/* ---- the cache ---- */

static size_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static void centry_unlink(struct directory_client *c, struct centry *e)
{
    struct centry **pp = &c->buckets[hash_key(e->ckey) & (c->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    c->n_cached--;
    directory_answer_free(&e->a);
    free(e->ckey);
    free(e);
}

static struct centry *cache_find(struct directory_client *c, const char *ckey)
{
    if (c->n_buckets == 0)
        return NULL;
    struct centry *e = c->buckets[hash_key(ckey) & (c->n_buckets - 1)];
    while (e && strcmp(e->ckey, ckey) != 0)
        e = e->hnext;
    return e;
}

/* Keeps a (moved in: the caller's copy is left empty) under ckey, when the cache is on. */
static void cache_put(struct directory_client *c, const char *ckey, struct directory_answer *a)
{
    const struct wharf_config *cfg = c->cfg;
    int64_t ttl = a->kind == DIRECTORY_NO_SUCH_USER ? cfg->directory_client_negative_ttl
                                                    : cfg->directory_client_cache_ttl;
    if (a->status != DIRECTORY_LOOKUP_OK || ttl <= 0 || c->n_buckets == 0)
        return;
    struct centry *old = cache_find(c, ckey);
    if (old)
        centry_unlink(c, old);
    while (c->n_cached >= (size_t)cfg->directory_client_cache_entries && c->oldest)
        centry_unlink(c, c->oldest);
    struct centry *e = xcalloc(1, sizeof(*e));
    e->ckey = xstrdup(ckey);
    e->expires_ms = monotonic_ms() + ttl;
    e->a = *a;
    memset(a, 0, sizeof(*a));
    size_t b = hash_key(ckey) & (c->n_buckets - 1);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
    c->n_cached++;
}

/* ---- lookups in flight ---- */

static void pending_unlink(struct directory_client *c, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        c->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    c->n_pending--;
}

static void pending_free(struct pending *p)
{
    event_free(p->timer);
    directory_answer_free(&p->early);
    free(p->ckey);
    free(p);
}

/* Answers p from the loop soon with a (copied), or TEMPFAIL when a is NULL. */
static void pending_answer_soon(struct pending *p, const struct directory_answer *a)
{
    p->answered_early = true;
    directory_answer_free(&p->early);
    if (a)
        answer_copy(&p->early, a);
    else
        p->early.status = DIRECTORY_LOOKUP_TEMPFAIL;
    struct timeval now = {0, 0};
    evtimer_add(p->timer, &now);
}

static void retry_soon(struct directory_client *c)
{
    struct timeval tv = {1, 0};
    evtimer_add(c->retry, &tv);
}

static void disconnect(struct directory_client *c, const char *why)
{
    if (c->bev == NULL)
        return;
    retry_soon(c);
    if (c->head)
        log_warning("directory client: %s; lookups in flight answered tempfail", why);
    bufferevent_free(c->bev);
    c->bev = NULL;
    for (struct pending *p = c->head; p; p = p->next) {
        if (!p->answered_early)
            pending_answer_soon(p, NULL);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct directory_client *c = p->c;
    if (!p->answered_early) {
        log_warning("directory client: no answer from the directory process within %lldms",
                    (long long)c->cfg->directory_client_timeout);
        p->early.status = DIRECTORY_LOOKUP_TEMPFAIL;
    }
    pending_unlink(c, p);
    p->cb(p->arg, &p->early);
    pending_free(p);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct directory_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct ipc_frame f;
        size_t used;
        enum ipc_parse_result r = ipc_evbuffer_frame(in, DIRECTORY_CLIENT_MAX_ANSWER, &f, &used);
        if (r == IPC_PARSE_NEED_MORE)
            return;
        uint64_t id;
        struct directory_answer a;
        if (r == IPC_PARSE_ERROR || f.type != IPC_DIRECTORY_ANSWER ||
            directory_proto_get_answer(f.payload, f.len, &id, &a) != 0) {
            if (r == IPC_PARSE_OK && f.type == IPC_DIRECTORY_ANSWER)
                directory_answer_free(&a);
            disconnect(c, "malformed answer from the directory process");
            return;
        }
        evbuffer_drain(in, used);
        struct pending *p = c->head;
        while (p && (p->id != id || p->answered_early))
            p = p->next;
        if (p != NULL) { /* else: cancelled meanwhile */
            pending_unlink(c, p);
            p->cb(p->arg, &a);
            cache_put(c, p->ckey, &a);
            pending_free(p);
        }
        directory_answer_free(&a);
        if (c->bev != bev) /* a callback's new lookup reconnected after an error */
            return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct directory_client *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        disconnect(c, "the directory process closed the connection");
}

static int connect_now(struct directory_client *c, bool quiet)
{
    if (c->bev)
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t n = strlen(c->path);
    if (n >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, c->path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        if (!quiet)
            log_warning("directory client: cannot connect to %s: %s", c->path, strerror(errno));
        close(fd);
        return -1;
    }
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, DIRECTORY_CLIENT_MAX_ANSWER + IPC_HEADER_SIZE);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return 0;
}

/* Keeps a connection open while the worker lives, so that a directory
 * process told to stop knows it still has a worker to serve: it drains
 * until every connection is closed (directory_server.c). */
static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct directory_client *c = arg;
    if (connect_now(c, true) != 0)
        retry_soon(c);
}

struct directory_client *directory_client_new(struct event_base *base,
                                              const struct wharf_config *cfg)
{
    struct directory_client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->cfg = cfg;
    c->path = config_data_path(cfg, "run/directory.sock");
    c->retry = evtimer_new(base, on_retry, c);
    if (connect_now(c, true) != 0)
        retry_soon(c);
    if (cfg->directory_client_cache_entries > 0) {
        size_t want = (size_t)cfg->directory_client_cache_entries / 2;
        c->n_buckets = 64;
        while (c->n_buckets < want && c->n_buckets < (1u << 20))
            c->n_buckets *= 2;
        c->buckets = xcalloc(c->n_buckets, sizeof(*c->buckets));
    }
    return c;
}

void directory_client_free(struct directory_client *c)
{
    if (c == NULL)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->retry);
    while (c->head) {
        struct pending *p = c->head;
        pending_unlink(c, p);
        pending_free(p);
    }
    while (c->oldest)
        centry_unlink(c, c->oldest);
    free(c->buckets);
    free(c->path);
    free(c);
}

static void refreshed(void *arg, const struct directory_answer *a)
{
    /* the answer is in the cache now (cache_put in on_read) */
}

void *directory_client_lookup(struct directory_client *c, enum directory_query q, const char *key,
                              directory_client_cb cb, void *arg)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    p->c = c;
    p->id = ++c->next_id;
    p->cb = cb;
    p->arg = arg;
    p->timer = evtimer_new(c->base, on_timer, p);
    struct buf ck = BUF_INIT;
    buf_printf(&ck, "%d\t%s", (int)q, key);
    p->ckey = buf_steal(&ck, NULL);
    p->next = c->head;
    if (p->next)
        p->next->prev = p;
    c->head = p;
    c->n_pending++;

    struct centry *e = cache_find(c, p->ckey);
    if (e != NULL && e->expires_ms > monotonic_ms()) {
        c->hits++;
        pending_answer_soon(p, &e->a);
        return p;
    }
    if (cb != refreshed)
        c->misses++;
    if (strlen(key) > DIRECTORY_PROTO_MAX_KEY) {
        pending_answer_soon(p, NULL);
        return p;
    }
    if (c->n_pending > (size_t)c->cfg->directory_client_queue_max) {
        log_warning("directory client: %zu lookups outstanding (directory_client_queue_max); "
                    "answering tempfail",
                    c->n_pending - 1);
        pending_answer_soon(p, NULL);
        return p;
    }
    if (connect_now(c, false) != 0) {
        pending_answer_soon(p, NULL);
        return p;
    }
    struct buf payload = BUF_INIT, frame = BUF_INIT;
    directory_proto_put_lookup(&payload, p->id, q, key);
    ipc_frame_encode(&frame, IPC_DIRECTORY_LOOKUP, payload.data, payload.len);
    bufferevent_write(c->bev, frame.data, frame.len);
    buf_free(&payload);
    buf_free(&frame);
    int64_t ms = c->cfg->directory_client_timeout;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
    return p;
}

int directory_client_peek(struct directory_client *c, enum directory_query q, const char *key,
                          struct directory_answer *a)
{
    memset(a, 0, sizeof(*a));
    struct buf ck = BUF_INIT;
    buf_printf(&ck, "%d\t%s", (int)q, key);
    struct centry *e = cache_find(c, buf_cstr(&ck));
    int r = -1;
    if (e != NULL) {
        answer_copy(a, &e->a);
        r = e->expires_ms > monotonic_ms() ? 1 : 0;
    }
    if (r < 1) {
        bool asked = false;
        for (struct pending *p = c->head; p && !asked; p = p->next)
            asked = strcmp(p->ckey, buf_cstr(&ck)) == 0;
        if (!asked) {
            c->misses++;
            /* An expired answer is kept for peeks until the fresh one replaces it. */
            directory_client_lookup(c, q, key, refreshed, NULL);
        }
    } else {
        c->hits++;
    }
    buf_free(&ck);
    return r;
}

void directory_client_cancel(struct directory_client *c, void *handle)
{
    struct pending *p = handle;
    pending_unlink(c, p);
    pending_free(p);
}

void directory_client_status(const struct directory_client *c, json_t *obj)
{
    json_object_set_new(obj, "directory_outstanding", json_integer((json_int_t)c->n_pending));
    json_object_set_new(obj, "directory_cached", json_integer((json_int_t)c->n_cached));
    json_object_set_new(obj, "directory_cache_hits", json_integer((json_int_t)c->hits));
    json_object_set_new(obj, "directory_cache_misses", json_integer((json_int_t)c->misses));
}
