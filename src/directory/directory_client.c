/*
 * directory_client.c - the workers' side of directory.sock
 * (directory_client.h), on the IPC client kit (ipc/client.h): one
 * connection per worker process, many lookups in flight on it, matched to
 * their answers by id, and a cache of answers.
 *
 * Must never: call back from inside directory_client_lookup, cache a
 * temporary failure, hold more than directory_client_queue_max lookups or
 * directory_client_cache_entries answers, or send a frame the directory
 * process would refuse (a key over the limit is answered TEMPFAIL here).
 */
#include "directory/directory_client.h"
#include "base/alloc.h"
#include "base/strmap.h"
#include "base/log.h"
#include "ipc/client.h"
#include "ipc/control.h"
#include "ipc/frame.h"

#include <stdlib.h>
#include <string.h>

/* Largest answer accepted: an alias may expand to many targets. */
#define DIRECTORY_CLIENT_MAX_ANSWER (16u << 20)

struct pending {
    struct directory_client *c;
    struct ipc_request *req;
    char *ckey; /* the cache key: query digit, tab, key */
    directory_client_cb cb;
    void *arg;
    struct directory_answer early; /* the answer given without asking (IPC_CLIENT_LOCAL) */
};

struct centry {
    struct centry *older, *newer; /* age list */
    char *ckey;                   /* the map's key too */
    int64_t expires_ms;
    struct directory_answer a;
};

struct directory_client {
    const struct wharf_config *cfg;
    struct ipc_client *ipc;
    /* cache: ckey -> struct centry (base/strmap.h), on when directory_client_cache_entries */
    struct strmap cache;
    bool cache_on;
    struct centry *oldest, *newest;
    uint64_t hits, misses;
};

/* ---- answers ---- */

static void answer_copy(struct directory_answer *dst, const struct directory_answer *src)
{
    *dst = *src;
    dst->home = xstrdup(src->home ? src->home : "");
    dst->dn = xstrdup(src->dn ? src->dn : "");
    dst->secret = xstrdup(src->secret ? src->secret : "");
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

static void centry_unlink(struct directory_client *c, struct centry *e)
{
    strmap_del(&c->cache, e->ckey, NULL);
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    directory_answer_free(&e->a);
    free(e->ckey);
    free(e);
}

static struct centry *cache_find(struct directory_client *c, const char *ckey)
{
    struct strmap_slot *s = strmap_find(&c->cache, ckey);
    return s ? s->val.ptr : NULL;
}

/* Keeps a (moved in: the caller's copy is left empty) under ckey, when the cache is on. */
static void cache_put(struct directory_client *c, const char *ckey, struct directory_answer *a)
{
    const struct wharf_config *cfg = c->cfg;
    int64_t ttl = a->kind == DIRECTORY_NO_SUCH_USER ? cfg->directory_client_negative_ttl
                                                    : cfg->directory_client_cache_ttl;
    /* A password value (the auth process's LOGIN, ldap_password_check = hash) is read
     * afresh at every login: a password changed in LDAP works at once, and no hash
     * stays in memory past its check. */
    bool secret = a->no_secret || (a->secret != NULL && a->secret[0] != '\0') ||
                  (a->dn != NULL && a->dn[0] != '\0' && directory_config_reads_hashes(cfg));
    if (a->status != DIRECTORY_LOOKUP_OK || ttl <= 0 || !c->cache_on || secret)
        return;
    struct centry *old = cache_find(c, ckey);
    if (old)
        centry_unlink(c, old);
    while (c->cache.n >= (size_t)cfg->directory_client_cache_entries && c->oldest)
        centry_unlink(c, c->oldest);
    struct centry *e = xcalloc(1, sizeof(*e));
    e->ckey = xstrdup(ckey);
    e->expires_ms = monotonic_ms() + ttl;
    e->a = *a;
    memset(a, 0, sizeof(*a));
    bool added;
    strmap_add(&c->cache, e->ckey, &added)->val.ptr = e;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

/* ---- lookups in flight ---- */

static void pending_free(struct pending *p)
{
    directory_answer_free(&p->early);
    free(p->ckey);
    free(p);
}

/* Answers p from the loop soon with a (copied), or TEMPFAIL when a is NULL. */
static void pending_answer_soon(struct pending *p, const struct directory_answer *a)
{
    if (a)
        answer_copy(&p->early, a);
    else
        p->early.status = DIRECTORY_LOOKUP_TEMPFAIL;
    ipc_client_later(p->c->ipc, p->req);
}

static int pending_done(void *arg, enum ipc_client_status st, const struct ipc_frame *reply)
{
    struct pending *p = arg;
    if (st == IPC_CLIENT_REPLY) {
        uint64_t id;
        struct directory_answer a;
        if (directory_proto_get_answer(reply->payload, reply->len, &id, &a) != 0)
            return -1;
        p->cb(p->arg, &a);
        cache_put(p->c, p->ckey, &a);
        directory_answer_free(&a);
    } else {
        if (st == IPC_CLIENT_FAILED)
            p->early.status = DIRECTORY_LOOKUP_TEMPFAIL;
        p->cb(p->arg, &p->early);
    }
    pending_free(p);
    return 0;
}

struct directory_client *directory_client_new(struct event_base *base,
                                              const struct wharf_config *cfg)
{
    return directory_client_new_at(base, cfg, "run/directory.sock");
}

struct directory_client *directory_client_new_at(struct event_base *base,
                                                 const struct wharf_config *cfg, const char *socket)
{
    struct directory_client *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    char *path = config_data_path(cfg, socket);
    struct ipc_client_params p = {
        .name = "directory client",
        .peer = "the directory process",
        .reply_type = IPC_DIRECTORY_ANSWER,
        .max_reply = DIRECTORY_CLIENT_MAX_ANSWER,
        .timeout_ms = cfg->directory_client_timeout,
        .max_outstanding = (size_t)cfg->directory_client_queue_max,
        .max_outstanding_option = "directory_client_queue_max",
        /* A directory process told to stop serves until every worker's
         * connection is closed (directory_server.c): keep ours open. */
        .keep_connected = true,
    };
    c->ipc = ipc_client_new(base, path, &p);
    free(path);
    c->cache_on = cfg->directory_client_cache_entries > 0; /* the map grows as it fills */
    return c;
}

static bool drop_pending(void *arg, void *ctx)
{
    pending_free(arg);
    return false;
}

void directory_client_free(struct directory_client *c)
{
    if (c == NULL)
        return;
    ipc_client_any(c->ipc, drop_pending, NULL); /* the lookups still outstanding */
    ipc_client_free(c->ipc);
    while (c->oldest)
        centry_unlink(c, c->oldest);
    strmap_free(&c->cache);
    free(c);
}

static void refreshed(void *arg, const struct directory_answer *a)
{
    /* the answer is in the cache now (cache_put in pending_done) */
}

void *directory_client_lookup(struct directory_client *c, enum directory_query q, const char *key,
                              directory_client_cb cb, void *arg)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    p->c = c;
    p->cb = cb;
    p->arg = arg;
    uint64_t id;
    p->req = ipc_client_start(c->ipc, pending_done, p, &id);
    struct buf ck = BUF_INIT;
    buf_printf(&ck, "%d\t%s", (int)q, key);
    p->ckey = buf_steal(&ck, NULL);

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
    struct buf payload = BUF_INIT;
    directory_proto_put_lookup(&payload, id, q, key);
    ipc_client_send(c->ipc, p->req, IPC_DIRECTORY_LOOKUP, payload.data, payload.len);
    buf_free(&payload);
    return p;
}

static bool asks_for(void *arg, void *ckey)
{
    const struct pending *p = arg;
    return strcmp(p->ckey, ckey) == 0;
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
        if (!ipc_client_any(c->ipc, asks_for, ck.data)) {
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
    ipc_client_cancel(c->ipc, p->req);
    pending_free(p);
}

void directory_client_status(const struct directory_client *c, json_t *obj)
{
    json_object_set_new(obj, "directory_outstanding",
                        json_integer((json_int_t)ipc_client_outstanding(c->ipc)));
    json_object_set_new(obj, "directory_cached", json_integer((json_int_t)c->cache.n));
    json_object_set_new(obj, "directory_cache_hits", json_integer((json_int_t)c->hits));
    json_object_set_new(obj, "directory_cache_misses", json_integer((json_int_t)c->misses));
}
