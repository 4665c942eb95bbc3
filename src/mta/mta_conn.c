/*
 * mta_conn.c - outbound SMTP sessions per destination: reuse, idle cache,
 * concurrency limits, waiting requests (see mta_conn.h).
 *
 * Requests are called back from a pool event, never from inside a client
 * callback or a submit, so the caller may submit again or free its request
 * from there. Must never run two transactions of one request, nor call a
 * request back twice or after the pool is freed.
 */
#include "mta/mta_conn.h"

#include "base/alloc.h"
#include "base/hash.h"
#include "base/clock.h"
#include "base/log.h"

#include <event2/event.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct conn {
    struct mta_conn_dest *dest;
    struct smtp_client *c;
    struct mta_conn_req *req; /* the transaction in flight, or NULL */
    size_t n_txns;
    struct event *idle_ev;
    bool idle;    /* waiting for a request, its idle timer running */
    bool closing; /* QUIT sent or session over: takes no request */
    struct conn *prev, *next;
};

struct mta_conn_dest {
    struct mta_conn_pool *pool;
    char *key; /* address, port, TLS policy, server name, AUTH */
    char *servername;
    unsigned char *tlsa; /* the params' DANE records, owned */
    struct smtp_client_params p;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct conn *conns;
    size_t n_conns;
    struct mta_conn_req *wait_head, *wait_tail;
    struct mta_conn_dest *prev, *next;
};

struct mta_conn_pool {
    struct event_base *base;
    size_t dest_limit, total_limit, reuse_limit;
    int64_t idle_ms;
    size_t n_conns;
    struct mta_conn_dest *dests;
    struct mta_conn_req *fin_head, *fin_tail; /* done, to be called back */
    struct event *fin_ev;
    bool freeing;
};

static void req_push(struct mta_conn_req **head, struct mta_conn_req **tail, struct mta_conn_req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static struct mta_conn_req *req_pop(struct mta_conn_req **head, struct mta_conn_req **tail)
{
    struct mta_conn_req *r = *head;
    if (r) {
        *head = r->next;
        if (*head == NULL)
            *tail = NULL;
        r->next = NULL;
    }
    return r;
}

static void on_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct mta_conn_pool *pool = arg;
    struct mta_conn_req *r;
    while ((r = req_pop(&pool->fin_head, &pool->fin_tail)) != NULL)
        r->done(r);
}

struct mta_conn_pool *mta_conn_pool_new(struct event_base *base, const struct wharf_config *cfg)
{
    struct mta_conn_pool *pool = xcalloc(1, sizeof(*pool));
    pool->base = base;
    pool->dest_limit = (size_t)cfg->mta_destination_concurrency_limit;
    pool->total_limit = (size_t)cfg->mta_connection_limit;
    pool->reuse_limit = (size_t)cfg->mta_smtp_connection_reuse_limit;
    pool->idle_ms = cfg->mta_smtp_connection_cache_time;
    pool->fin_ev = event_new(base, -1, 0, on_finished, pool);
    return pool;
}

size_t mta_conn_open(const struct mta_conn_pool *pool)
{
    return pool->n_conns;
}

bool mta_conn_failed_early(const struct smtp_client_txn *t, const struct smtp_client_result *err)
{
    if (err == NULL || err->code / 100 != 4)
        return false;
    for (size_t i = 0; i < t->n_rcpts; i++) {
        const struct smtp_client_result *r = &t->rcpts[i].result;
        if (r->code != err->code || strcmp(r->enh, err->enh) != 0)
            return false;
    }
    return true;
}

/* ---- sessions ---- */

static void dest_kick(struct mta_conn_dest *d);

static void finish(struct mta_conn_pool *pool, struct mta_conn_req *r)
{
    r->t_end = wallclock_ms();
    req_push(&pool->fin_head, &pool->fin_tail, r);
    event_active(pool->fin_ev, 0, 0);
}

static void conn_assign(struct conn *k, struct mta_conn_req *r)
{
    if (k->idle)
        evtimer_del(k->idle_ev);
    k->idle = false;
    k->req = r;
    r->conn_use = (unsigned)++k->n_txns;
    r->t_assign = wallclock_ms();
    r->txn->started_ms = 0;
    smtp_client_send(k->c, r->txn);
    if (k->n_txns >= k->dest->pool->reuse_limit) {
        k->closing = true;
        smtp_client_quit(k->c); /* QUIT after this transaction */
    }
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct conn *k = arg;
    k->idle = false;
    k->closing = true;
    smtp_client_quit(k->c);
}

/* At the total limit, requests of a destination other than mine wait for a
 * slot: a session of mine then gives its slot up after its transaction
 * rather than serve my next request or idle (no destination starves). */
static bool pool_starved(const struct mta_conn_pool *pool, const struct mta_conn_dest *mine)
{
    if (pool->n_conns < pool->total_limit)
        return false;
    for (const struct mta_conn_dest *d = pool->dests; d != NULL; d = d->next)
        if (d != mine && d->wait_head != NULL)
            return true;
    return false;
}

static void conn_idle(struct conn *k)
{
    struct mta_conn_pool *pool = k->dest->pool;
    if (pool->idle_ms <= 0) {
        k->closing = true;
        smtp_client_quit(k->c);
        return;
    }
    k->idle = true;
    struct timeval tv = clock_timeval_ms(pool->idle_ms);
    evtimer_add(k->idle_ev, &tv);
}

static void on_txn(struct smtp_client *c, struct smtp_client_txn *t, void *arg)
{
    struct conn *k = arg;
    struct mta_conn_dest *d = k->dest;
    struct mta_conn_pool *pool = d->pool;
    struct mta_conn_req *r = k->req;
    if (pool->freeing || r == NULL || r->txn != t)
        return; /* cancelled at shutdown */
    k->req = NULL;
    r->t_start = t->started_ms;
    const struct smtp_client_result *err = smtp_client_error(c);
    if (err != NULL) {
        k->closing = true; /* the session is over; on_done frees it */
        if (r->conn_use > 1 && !r->retried && mta_conn_failed_early(t, err)) {
            /* a cached session the peer had given up: once more on a new one */
            r->retried = true;
            r->next = d->wait_head;
            d->wait_head = r;
            if (d->wait_tail == NULL)
                d->wait_tail = r;
            return;
        }
        r->err.code = err->code;
        memcpy(r->err.enh, err->enh, sizeof(r->err.enh));
        buf_reset(&r->err.text);
        buf_append_slice(&r->err.text, buf_slice(&err->text));
        r->err.local = err->local;
    }
    finish(pool, r);
    if (k->closing)
        return;
    if (pool_starved(pool, d)) {
        k->closing = true;
        smtp_client_quit(k->c);
        return;
    }
    struct mta_conn_req *next = req_pop(&d->wait_head, &d->wait_tail);
    if (next)
        conn_assign(k, next); /* sent when this callback returns */
    else
        conn_idle(k);
}

static void dest_free(struct mta_conn_dest *d)
{
    struct mta_conn_pool *pool = d->pool;
    if (d->prev)
        d->prev->next = d->next;
    else
        pool->dests = d->next;
    if (d->next)
        d->next->prev = d->prev;
    free(d->key);
    free(d->servername);
    free(d->tlsa);
    free(d);
}

static void conn_unlink(struct conn *k)
{
    struct mta_conn_dest *d = k->dest;
    if (k->prev)
        k->prev->next = k->next;
    else
        d->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    d->n_conns--;
    d->pool->n_conns--;
    event_free(k->idle_ev);
}

static void on_done(struct smtp_client *c, void *arg)
{
    struct conn *k = arg;
    struct mta_conn_dest *d = k->dest;
    struct mta_conn_pool *pool = d->pool;
    conn_unlink(k);
    smtp_client_free(c);
    free(k);
    /* a slot is free: other destinations' waiting requests first (at the
     * total limit this one may have held the slots long), then this one's */
    for (struct mta_conn_dest *o = pool->dests; o != NULL; o = o->next)
        if (o != d)
            dest_kick(o);
    dest_kick(d);
    if (d->n_conns == 0 && d->wait_head == NULL)
        dest_free(d);
}

static struct conn *conn_open(struct mta_conn_dest *d)
{
    struct conn *k = xcalloc(1, sizeof(*k));
    k->dest = d;
    k->c = smtp_client_new(d->pool->base, &d->p, on_txn, on_done, k);
    k->idle_ev = evtimer_new(d->pool->base, on_idle, k);
    k->next = d->conns;
    if (d->conns)
        d->conns->prev = k;
    d->conns = k;
    d->n_conns++;
    d->pool->n_conns++;
    return k;
}

/* At the total limit: an idle session elsewhere makes room (QUIT; its end
 * kicks the waiting destinations). */
static void close_one_idle(struct mta_conn_pool *pool)
{
    for (struct mta_conn_dest *d = pool->dests; d != NULL; d = d->next)
        for (struct conn *k = d->conns; k != NULL; k = k->next)
            if (k->idle) {
                evtimer_del(k->idle_ev);
                on_idle(-1, 0, k);
                return;
            }
}

/* Runs waiting requests on idle sessions, or on new ones within the limits. */
static void dest_kick(struct mta_conn_dest *d)
{
    struct mta_conn_pool *pool = d->pool;
    while (d->wait_head != NULL) {
        struct conn *k = d->conns;
        while (k != NULL && !k->idle)
            k = k->next;
        bool fresh = k == NULL;
        if (fresh) {
            if (d->n_conns >= pool->dest_limit)
                return;
            if (pool->n_conns >= pool->total_limit) {
                close_one_idle(pool);
                return;
            }
            k = conn_open(d);
        }
        conn_assign(k, req_pop(&d->wait_head, &d->wait_tail));
        if (fresh) /* a failure at once calls on_txn from inside: the request is finished */
            smtp_client_connect(k->c, (const struct sockaddr *)&d->addr, d->addrlen);
    }
}

static void dest_key(struct buf *key, const struct smtp_client_params *p,
                     const struct sockaddr *addr, socklen_t addrlen)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo(addr, addrlen, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(host, sizeof(host), "?"), snprintf(serv, sizeof(serv), "?");
    /* sessions are shared only under the same TLSA records (a hash of them) */
    uint64_t h = hash_fnv1a(HASH_FNV1A_BASIS, p->tlsa, p->tlsa_len);
    buf_printf(key, "[%s]:%s %d %s %d %zu:%016llx", host, serv, (int)p->tls,
               p->tls_servername ? p->tls_servername : "", p->auth_user != NULL, p->tlsa_len,
               (unsigned long long)h);
}

void mta_conn_submit(struct mta_conn_pool *pool, struct mta_conn_req *r,
                     const struct smtp_client_params *p, const struct sockaddr *addr,
                     socklen_t addrlen)
{
    struct buf key = BUF_INIT;
    dest_key(&key, p, addr, addrlen);
    struct mta_conn_dest *d = pool->dests;
    while (d != NULL && strcmp(d->key, buf_cstr(&key)) != 0)
        d = d->next;
    if (d == NULL) {
        d = xcalloc(1, sizeof(*d));
        d->pool = pool;
        d->key = buf_steal(&key, NULL);
        d->p = *p;
        d->servername = p->tls_servername ? xstrdup(p->tls_servername) : NULL;
        d->p.tls_servername = d->servername;
        d->tlsa = p->tlsa_len ? xmemdup(p->tlsa, p->tlsa_len) : NULL;
        d->p.tlsa = d->tlsa;
        memcpy(&d->addr, addr, addrlen < sizeof(d->addr) ? addrlen : sizeof(d->addr));
        d->addrlen = addrlen;
        d->next = pool->dests;
        if (pool->dests)
            pool->dests->prev = d;
        pool->dests = d;
    }
    buf_free(&key);
    r->t_submit = wallclock_ms();
    r->t_assign = r->t_start = r->t_end = 0;
    r->conn_use = 0;
    r->retried = false;
    if (r->err.text.data == NULL)
        buf_init(&r->err.text);
    r->err.code = 0;
    r->err.enh[0] = '\0';
    buf_reset(&r->err.text);
    req_push(&d->wait_head, &d->wait_tail, r);
    dest_kick(d);
}

void mta_conn_pool_free(struct mta_conn_pool *pool)
{
    if (pool == NULL)
        return;
    pool->freeing = true;
    while (pool->dests) {
        struct mta_conn_dest *d = pool->dests;
        while (d->conns) {
            struct conn *k = d->conns;
            conn_unlink(k);
            smtp_client_free(k->c); /* on_txn ignores the cancelled transaction */
            free(k);
        }
        dest_free(d);
    }
    event_free(pool->fin_ev);
    free(pool);
}
