/*
 * net_worker.c - the runtime of a protocol worker process: event base,
 * listeners on the fds wharfd passed, connection accounting and limits
 * (over every worker through the shared table of base/conntab.h when wharfd
 * passed one, in this process alone otherwise),
 * the control channel (status, shutdown, events) and graceful drain.
 *
 * Clients in mynetworks and exempt_networks are counted but never held to
 * the per-address limit. When a service or an address is full, the
 * connection of this worker that has made no progress for longest (and at
 * least connection_evict_idle) and has not logged in is closed to admit the
 * newcomer: slow clients (slowloris) cannot keep a normal one out. A full
 * service whose newcomer lands on a worker with no such stranger asks the
 * worker that has the idlest one (each publishes its idlest stamp in the
 * shared table every second) to close it, over the bus, and admits the
 * newcomer at once, one over the limit until that close; it asks once per
 * published stamp, so the excess is at most one per worker. A full address
 * evicts among this worker's connections of that address only.
 *
 * Must never: bind a socket (wharfd does), keep accepting once a shutdown
 * was asked for, or outlive the drain deadline.
 */
#include "net/net_internal.h"
#include "net/net_tls_park.h"
#include "base/slab.h"

#include "base/alloc.h"
#include "base/strmap.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/sandbox.h"
#include "ipc/component_loop.h"
#include "ipc/frame.h"
#include "net/dns.h"
#include "net/net_tls_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

struct addr_count {
    unsigned n;
    char addr[INET6_ADDRSTRLEN];
};

struct net_service {
    struct net_worker *w;
    char *name;
    enum net_tls_mode tls;
    const struct net_proto *proto;
    void *arg;
    struct net_service_limits lim;
    char *refuse_line;
    struct evconnlistener *listener;
    int tab_service; /* index in the shared connection table, -1: count here */
    bool tab_full;   /* the table's cells were full: said once until there is room */
    /* The other worker's idlest stranger last asked for (its slot and stamp): asked once. */
    int asked_slot;
    int64_t asked_stamp;
    int64_t idlest; /* publish_idlest's scratch */
    size_t n_conns;
    struct strmap by_addr; /* address -> struct addr_count (keyed by its addr) */
};

struct conn_node {
    struct conn_node *next, *prev;
    struct net_conn *c;
};

struct net_worker {
    struct component_ctx *ctx;
    const struct wharf_config *cfg;
    struct event_base *base;
    SSL_CTX *tls;
    SSL_CTX *proxy_tls;             /* to the back-ends (net_proxy.c), front-ends only */
    struct net_proxy *proxies;      /* connections to the back-ends (net_proxy.c) */
    struct dns_resolver *proxy_dns; /* their host names (net_proxy.c), on first use */
    struct net_service **svcs;
    size_t n_svcs;
    struct conn_node *conns; /* every live connection */
    size_t n_conns;
    bool draining;
    struct event *deadline;
    struct event *idlest_ev;     /* publish_idlest, every second, with a shared table */
    struct event *park_ev;       /* parks quiet TLS 1.3 connections (tls_park_idle) */
    size_t parked_untrimmed;     /* parked since the last malloc_trim */
    struct component_loop *loop; /* the skeleton: privileges, loop, control, signals */
    struct control *control;
    void (*status_fn)(void *arg, json_t *obj);
    void *status_arg;
    void (*event_fn)(void *arg, const struct ipc_event *ev);
    void *event_arg;
};

static struct addr_count *addr_find(struct net_service *svc, const char *addr)
{
    struct strmap_slot *s = strmap_find(&svc->by_addr, addr);
    return s ? s->val.ptr : NULL;
}

SSL_CTX *net_worker_tls(struct net_worker *w)
{
    return w->tls;
}

struct net_proxy **net_worker_proxies(struct net_worker *w)
{
    return &w->proxies;
}

SSL_CTX *net_worker_proxy_tls(struct net_worker *w)
{
    return w->proxy_tls;
}

struct dns_resolver *net_worker_proxy_dns(struct net_worker *w, struct buf *err)
{
    if (w->proxy_dns == NULL)
        w->proxy_dns = dns_resolver_new(w->base, w->cfg->dns_resolver, NULL, err);
    return w->proxy_dns;
}

struct event_base *net_worker_base(struct net_worker *w)
{
    return w->base;
}

const struct wharf_config *net_worker_config(struct net_worker *w)
{
    return w->cfg;
}

const struct net_proto *net_service_proto(const struct net_service *svc, void **arg_r)
{
    *arg_r = svc->arg;
    return svc->proto;
}

const char *net_service_name(const struct net_service *svc)
{
    return svc->name;
}

enum net_tls_mode net_service_tls(const struct net_service *svc)
{
    return svc->tls;
}

int64_t net_service_idle_ms(const struct net_service *svc)
{
    return svc->lim.idle_timeout_ms;
}

int64_t net_service_login_ms(const struct net_service *svc)
{
    return svc->lim.login_timeout_ms;
}

bool net_worker_login_admit(struct net_worker *w, uint64_t key, unsigned max, int *cell_r)
{
    *cell_r = -1;
    if (w->ctx->conntab)
        return conntab_acquire_key(w->ctx->conntab, w->ctx->conntab_slot, key, max, cell_r) !=
               CONNTAB_TOO_MANY_ADDR;
    /* No shared table (a worker run alone): count this process's own sessions. */
    unsigned n = 0;
    for (const struct conn_node *c = w->conns; c; c = c->next)
        n += net_conn_login_key(c->c) == key;
    return max == 0 || n < max;
}

void net_worker_login_gone(struct net_worker *w, int cell)
{
    if (w->ctx->conntab && cell >= 0)
        conntab_release_key(w->ctx->conntab, w->ctx->conntab_slot, cell);
}

size_t net_worker_connections(const struct net_worker *w)
{
    return w->n_conns;
}

bool net_worker_draining(const struct net_worker *w)
{
    return w->draining;
}

void *net_worker_link_add(struct net_worker *w, struct net_conn *c)
{
    struct conn_node *n = slab_calloc(1, sizeof(*n)); /* as long as the connection */
    n->c = c;
    n->next = w->conns;
    if (w->conns)
        w->conns->prev = n;
    w->conns = n;
    w->n_conns++;
    component_title_connections(w->n_conns);
    return n;
}

void net_worker_link_remove(struct net_worker *w, void *handle)
{
    struct conn_node *n = handle;
    if (n->prev)
        n->prev->next = n->next;
    else
        w->conns = n->next;
    if (n->next)
        n->next->prev = n->prev;
    slab_free(n);
    w->n_conns--;
    component_title_connections(w->n_conns);
    if (w->draining && w->n_conns == 0)
        event_base_loopexit(w->base, NULL);
}

void net_worker_conn_gone(struct net_worker *w, struct net_service *svc, const char *addr,
                          const struct conntab_hold *hold)
{
    svc->n_conns--;
    if (svc->tab_service >= 0) {
        conntab_release(w->ctx->conntab, w->ctx->conntab_slot, hold);
        return;
    }
    struct addr_count *a = addr_find(svc, addr);
    if (a && --a->n == 0) {
        strmap_del(&svc->by_addr, a->addr, NULL);
        free(a);
    }
}

static void refuse(struct net_service *svc, evutil_socket_t fd, const char *why, const char *addr)
{
    log_warning("%s: refusing connection from unknown[%s]: %s", svc->name, addr, why);
    if (svc->refuse_line && svc->tls != NET_TLS_IMPLICIT) {
        ssize_t r =
            send(fd, svc->refuse_line, strlen(svc->refuse_line), MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)r;
    }
    close(fd);
}

static const char WHY_FULL[] = "too many connections";
static const char WHY_ADDR_FULL[] = "too many connections from this address";

/* Counts a connection in this process alone; NULL when admitted, else why not. */
static const char *admit_here(struct net_service *svc, const char *addr, unsigned per_addr)
{
    if (svc->lim.max_conns && svc->n_conns >= svc->lim.max_conns)
        return WHY_FULL;
    struct addr_count *a = addr_find(svc, addr);
    if (per_addr && a && a->n >= per_addr)
        return WHY_ADDR_FULL;
    if (a == NULL) {
        a = xcalloc(1, sizeof(*a));
        snprintf(a->addr, sizeof(a->addr), "%s", addr);
        bool added;
        strmap_add(&svc->by_addr, a->addr, &added)->val.ptr = a;
    }
    a->n++;
    return NULL;
}

/* Counts a connection in the table shared by every worker; NULL when admitted. */
/* over: admitted past the service's total (another worker was asked to evict). */
static const char *admit_shared(struct net_service *svc, const struct sockaddr *sa,
                                const char *addr, unsigned per_addr, bool over,
                                struct conntab_hold *hold_r)
{
    struct component_ctx *ctx = svc->w->ctx;
    uint64_t key = conntab_key((unsigned)svc->tab_service, sa);
    switch (conntab_acquire(ctx->conntab, ctx->conntab_slot, (unsigned)svc->tab_service, key,
                            over ? 0 : svc->lim.max_conns, per_addr, hold_r)) {
    case CONNTAB_TOO_MANY:
        return WHY_FULL;
    case CONNTAB_TOO_MANY_ADDR:
        return WHY_ADDR_FULL;
    case CONNTAB_OK_UNTRACKED:
        /* Fail open: max_connections still bounds the whole service. */
        if (!svc->tab_full)
            log_warning("%s: connection table full (%d addresses in this worker); per-address "
                        "limit not enforced for unknown[%s] and others until there is room",
                        svc->name, CONNTAB_ADDRS_PER_SLOT, addr);
        svc->tab_full = true;
        return NULL;
    case CONNTAB_OK:
        svc->tab_full = false;
        return NULL;
    }
    return NULL;
}

static bool same_client(const struct net_service *svc, const struct sockaddr *a, const char *a_text,
                        const struct net_conn *c)
{
    if (svc->tab_service >= 0)
        return conntab_key((unsigned)svc->tab_service, a) ==
               conntab_key((unsigned)svc->tab_service, net_conn_sockaddr(c));
    return strcmp(a_text, net_conn_addr(c)) == 0;
}

/*
 * The service (or, when same_addr, the address) is full: closes this worker's
 * pre-login connection of it that has made no progress for longest, if that
 * is at least connection_evict_idle. True when one was closed.
 */
static bool evict_idlest(struct net_service *svc, const struct sockaddr *sa, const char *addr,
                         bool same_addr)
{
    struct net_conn *victim = NULL;
    int64_t oldest = INT64_MAX, p;
    for (const struct conn_node *n = svc->w->conns; n; n = n->next) {
        if (net_conn_svc(n->c) != svc || !net_conn_evictable(n->c, &p) || p >= oldest)
            continue;
        if (same_addr && !same_client(svc, sa, addr, n->c))
            continue;
        victim = n->c;
        oldest = p;
    }
    if (victim == NULL || monotonic_ms() - oldest < svc->w->cfg->connection_evict_idle)
        return false;
    net_conn_evict(victim, addr);
    return true;
}

/*
 * The service is full and this worker has no stranger idle long enough: asks
 * the worker whose published idlest stranger is oldest (and old enough) to
 * close it. True when asked: the caller admits the newcomer over the limit.
 */
static bool evict_elsewhere(struct net_service *svc, const char *addr)
{
    struct component_ctx *ctx = svc->w->ctx;
    int64_t stamp = 0;
    int slot =
        conntab_idlest_elsewhere(ctx->conntab, ctx->conntab_slot, (unsigned)svc->tab_service,
                                 monotonic_ms() - svc->w->cfg->connection_evict_idle, &stamp);
    if (slot < 0 || (slot == svc->asked_slot && stamp == svc->asked_stamp))
        return false;
    svc->asked_slot = slot;
    svc->asked_stamp = stamp;
    struct ipc_event ev = {.type = IPC_EVENT_EVICT_IDLE,
                           .u.evict_idle = {svc->name, (uint64_t)slot, addr}};
    net_worker_publish(svc->w, &ev);
    return true;
}

/* Publishes, per service, the progress stamp of this worker's idlest stranger (0: none). */
static void publish_idlest(struct net_worker *w)
{
    for (size_t i = 0; i < w->n_svcs; i++)
        w->svcs[i]->idlest = INT64_MAX;
    int64_t p;
    for (const struct conn_node *n = w->conns; n; n = n->next) {
        struct net_service *svc = net_conn_svc(n->c);
        if (net_conn_evictable(n->c, &p) && p < svc->idlest)
            svc->idlest = p;
    }
    for (size_t i = 0; i < w->n_svcs; i++) {
        struct net_service *svc = w->svcs[i];
        if (svc->tab_service >= 0)
            conntab_set_idlest(w->ctx->conntab, w->ctx->conntab_slot, (unsigned)svc->tab_service,
                               svc->idlest == INT64_MAX ? 0 : svc->idlest);
    }
}

/*
 * Every connection quiet for tls_park_idle gives its SSL back (net_tls_park.h).
 * Parking frees ~15 KB a connection in the middle of the heap, which glibc
 * keeps unless trimmed: once NET_PARK_TRIM_AT connections (~1 MB) were
 * parked since the last time, malloc_trim(0) gives the whole free pages back
 * (at most once a sweep; counted across sweeps, so that connections going
 * quiet a few at a time, as 1,000 sessions opened over half a minute do, are
 * trimmed too).
 */
#define NET_PARK_TRIM_AT 64

void net_worker_note_parked(struct net_worker *w)
{
    w->parked_untrimmed++;
}

void net_worker_trim(struct net_worker *w)
{
    w->parked_untrimmed = 0;
    alloc_trim();
}

static void park_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_worker *w = arg;
    (void)fd, (void)what;
    int64_t now = monotonic_ms();
    size_t parked = 0;
    for (struct conn_node *n = w->conns, *next; n; n = next) {
        next = n->next; /* a failed hand-over frees the connection */
        parked += net_conn_park_maybe(n->c, now, w->cfg->tls_park_idle);
    }
    parked += net_proxy_park_sweep(w, now, w->cfg->tls_park_idle); /* front-end to back-end */
    w->parked_untrimmed += parked;
    /* Also once a wave of parking is over (a sweep parks none after some did),
     * so that the last connections of a wave do not keep their pages. */
    if (w->parked_untrimmed >= NET_PARK_TRIM_AT || (parked == 0 && w->parked_untrimmed > 0))
        net_worker_trim(w);
}

static void idlest_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    publish_idlest(arg);
}

/* Another worker asks this one to close its idlest stranger of a service. */
static void evict_asked(struct net_worker *w, const struct ipc_event_evict_idle *e)
{
    if (w->ctx->conntab == NULL || e->slot != w->ctx->conntab_slot)
        return;
    for (size_t i = 0; i < w->n_svcs; i++)
        if (strcmp(w->svcs[i]->name, e->service) == 0)
            evict_idlest(w->svcs[i], NULL, e->client, false);
    publish_idlest(w);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct net_service *svc = arg;
    struct net_worker *w = svc->w;
    char addr[INET6_ADDRSTRLEN];
    net_addr_format(sa, addr, sizeof(addr));
    if (w->draining) {
        close(fd);
        return;
    }
    struct conntab_hold hold = {.service = -1, .cell = -1};
    /* Trusted networks are counted, never held to the per-address limit. */
    unsigned per_addr = net_addr_exempt(w->cfg, addr) ? 0 : svc->lim.max_conns_per_client;
    const char *why = NULL;
    bool over = false;
    for (int attempt = 0; attempt < 2; attempt++) {
        why = svc->tab_service >= 0 ? admit_shared(svc, sa, addr, per_addr, over, &hold)
                                    : admit_here(svc, addr, per_addr);
        if (why == NULL || attempt > 0)
            break;
        if (evict_idlest(svc, sa, addr, why == WHY_ADDR_FULL))
            continue;
        if (why != WHY_FULL || svc->tab_service < 0 || !evict_elsewhere(svc, addr))
            break;
        over = true;
    }
    if (why != NULL) {
        refuse(svc, fd, why, addr);
        return;
    }
    svc->n_conns++;
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    /*
     * Replies are written whole, so Nagle's algorithm only delays the tail of
     * a reply until the client's delayed ACK (40 ms): pipelined clients would
     * stall on every batch.
     */
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    net_conn_new(w, svc, fd, sa, (socklen_t)salen, &hold);
}

bool net_worker_serve(struct net_worker *w, const char *service, enum net_tls_mode tls,
                      const struct net_proto *proto, void *proto_arg,
                      const struct net_service_limits *limits)
{
    int fd = component_listener_fd(w->ctx, service);
    if (fd < 0)
        return false;
    if (tls == NET_TLS_IMPLICIT && w->tls == NULL) {
        log_error("%s: TLS is not available; service not served", service);
        return false;
    }
    if (tls == NET_TLS_STARTTLS && w->tls == NULL)
        log_warning("%s: TLS is not available; served without STARTTLS", service);
    struct net_service *svc = xcalloc(1, sizeof(*svc));
    svc->w = w;
    svc->name = xstrdup(service);
    svc->tls = tls;
    svc->proto = proto;
    svc->arg = proto_arg;
    svc->lim = *limits;
    /* The services table's limits (<service>_max_connections, ..._per_ip) over the caller's. */
    component_connection_limits(w->ctx, service, &svc->lim.max_conns,
                                &svc->lim.max_conns_per_client);
    svc->refuse_line = limits->refuse_line ? xstrdup(limits->refuse_line) : NULL;
    svc->tab_service = w->ctx->conntab ? conntab_service(w->ctx->conntab, service) : -1;
    svc->asked_slot = -1;
    evutil_make_socket_nonblocking(fd);
    svc->listener = evconnlistener_new(w->base, accept_cb, svc, LEV_OPT_CLOSE_ON_FREE, 0, fd);
    if (svc->listener == NULL)
        log_fatal(EX_OSERR, "%s: cannot listen on fd %d", service, fd);
    w->svcs = xreallocarray(w->svcs, w->n_svcs + 1, sizeof(*w->svcs));
    w->svcs[w->n_svcs++] = svc;
    return true;
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_worker *w = arg;
    log_info("drain deadline reached with %zu connections; closing them", w->n_conns);
    while (w->conns)
        net_conn_abort(w->conns->c);
    event_base_loopexit(w->base, NULL);
}

static void worker_shutdown(struct net_worker *w, int64_t deadline_ms)
{
    if (w->draining)
        return;
    w->draining = true;
    for (size_t i = 0; i < w->n_svcs; i++) {
        if (w->svcs[i]->listener) {
            evconnlistener_free(w->svcs[i]->listener);
            w->svcs[i]->listener = NULL;
        }
    }
    struct timeval tv = clock_timeval_ms(deadline_ms - monotonic_ms());
    w->deadline = evtimer_new(w->base, deadline_cb, w);
    evtimer_add(w->deadline, &tv);
    /* A drain callback may free its own connection (never another): step first. */
    for (struct conn_node *n = w->conns, *next; n; n = next) {
        next = n->next;
        net_conn_drain(n->c);
    }
    if (w->n_conns == 0)
        event_base_loopexit(w->base, NULL);
}

static void control_status_cb(void *arg, json_t *obj)
{
    struct net_worker *w = arg;
    json_object_set_new(obj, "connections", json_integer((json_int_t)w->n_conns));
    size_t compressed = 0, zmem = 0, parked = 0, asleep = 0, conn_pumped = 0;
    for (const struct conn_node *n = w->conns; n; n = n->next) {
        conn_pumped += net_conn_pumped(n->c);
        parked += net_conn_tls_parked(n->c);
        asleep += net_conn_tls_asleep(n->c);
        if (net_conn_is_compressed(n->c)) {
            compressed++;
            zmem += net_conn_compress_memory(n->c);
        }
    }
    if (w->park_ev) /* TLS connections on net_tls_park's record layer */
        json_object_set_new(obj, "tls_parked", json_integer((json_int_t)parked));
    if (w->park_ev) /* of which asleep: a read event alone, no bufferevent */
        json_object_set_new(obj, "tls_asleep", json_integer((json_int_t)asleep));
    if (w->park_ev && w->proxy_tls) { /* and connections to back-ends */
        size_t proxy_asleep;
        size_t proxy_parked = net_proxy_parked(w, &proxy_asleep);
        json_object_set_new(obj, "proxy_tls_parked", json_integer((json_int_t)proxy_parked));
        json_object_set_new(obj, "proxy_tls_asleep", json_integer((json_int_t)proxy_asleep));
    }
    if (w->proxy_tls) { /* spliced sessions on the pump, and those waiting for their client */
        size_t pump_held;
        size_t pumped = net_proxy_pumped(w, &pump_held);
        json_object_set_new(obj, "proxy_pumped", json_integer((json_int_t)pumped));
        json_object_set_new(obj, "proxy_pump_held", json_integer((json_int_t)pump_held));
        /* and their clients' side on the pump too (a TLS client, spliced) */
        json_object_set_new(obj, "conn_pumped", json_integer((json_int_t)conn_pumped));
    }
    /* What connections keep for as long as they live (base/slab.h). */
    json_object_set_new(obj, "slab_bytes", json_integer((json_int_t)slab_bytes()));
    json_object_set_new(obj, "slab_objects", json_integer((json_int_t)slab_objects()));
    /* And per size class ("320": [objects, chunks]), to tell which object costs what. */
    json_t *classes = json_object();
    size_t size, objects, chunks;
    for (size_t i = 0; slab_class_stats(i, &size, &objects, &chunks); i++) {
        if (chunks == 0)
            continue;
        char name[16];
        snprintf(name, sizeof(name), "%zu", size);
        json_object_set_new(classes, name,
                            json_pack("[I, I]", (json_int_t)objects, (json_int_t)chunks));
    }
    json_object_set_new(obj, "slab_classes", classes);
    if (compressed > 0) { /* what the DEFLATE stages cost (zlib's allocations) */
        json_object_set_new(obj, "compressed_connections", json_integer((json_int_t)compressed));
        json_object_set_new(obj, "compress_memory", json_integer((json_int_t)zmem));
    }
    if (w->status_fn)
        w->status_fn(w->status_arg, obj);
}

static void control_shutdown_cb(void *arg, int64_t deadline_ms)
{
    worker_shutdown(arg, deadline_ms);
}

static void control_event_cb(void *arg, const struct ipc_event *ev)
{
    struct net_worker *w = arg;
    if (ev->type == IPC_EVENT_EVICT_IDLE) {
        evict_asked(w, &ev->u.evict_idle);
        return;
    }
    if (ev->type == IPC_EVENT_TEST_HOOK) { /* test_hooks only */
        if (strcmp(ev->u.test_hook.component, w->ctx->name) == 0)
            sandbox_test_hook(w->cfg, w->ctx->name, ev->u.test_hook.action);
        return;
    }
    if (w->event_fn)
        w->event_fn(w->event_arg, ev);
}

/* Still root under wharfd: the TLS key is read; nothing else needs root. */
static void tls_as_root(void *arg)
{
    struct net_worker *w = arg;
    struct buf err = BUF_INIT;
    w->tls = net_tls_ctx_new(w->cfg, &err);
    if (w->tls == NULL)
        log_error("TLS disabled: %s", buf_cstr(&err));
    else
        SSL_CTX_set_alpn_select_cb(w->tls, net_conn_alpn_select, NULL);
    if (w->tls && w->cfg->tls_park_idle > 0)
        net_tls_park_ctx_setup(w->tls);
    /* A front-end's context to its back-ends: the CA file is read here, before the sandbox. */
    if (strcmp(w->cfg->role, "frontend") == 0 || w->cfg->frontend_secret[0] != '\0') {
        buf_reset(&err);
        w->proxy_tls = net_tls_client_ctx_new(w->cfg->frontend_tls_ca_file, &err);
        if (w->proxy_tls == NULL)
            log_error("front-end proxy disabled: %s", buf_cstr(&err));
        else /* an idle spliced session keeps no TLS record buffers */
            SSL_CTX_set_mode(w->proxy_tls, SSL_MODE_RELEASE_BUFFERS);
        if (w->proxy_tls && w->cfg->tls_park_idle > 0) /* and parks when quiet */
            net_tls_park_ctx_setup(w->proxy_tls);
    }
    buf_free(&err);
}

struct net_worker *net_worker_new(struct component_ctx *ctx)
{
    /* What quiet connections keep goes to the slab (base/slab.h, net_slab.c). */
    net_slab_install();
    struct net_worker *w = xcalloc(1, sizeof(*w));
    w->ctx = ctx;
    w->cfg = ctx->cfg;
    /* The skeleton of every network worker confines it once started (base/sandbox.h). */
    const struct component_hooks hooks = {
        .as_root = tls_as_root,
        .sandbox = true,
        .status = control_status_cb,
        .shutdown = control_shutdown_cb,
        .event = control_event_cb,
        .arg = w,
    };
    w->loop = component_loop_start(ctx, &hooks);
    w->base = w->loop->base;
    w->control = w->loop->control;
    if (ctx->cfg->test_hooks)
        control_subscribe(w->control, IPC_EVENT_TEST_HOOK, IPC_SUBSCRIBE_ALL, NULL);
    if ((w->tls || w->proxy_tls) && w->cfg->tls_park_idle > 0) {
        w->park_ev = event_new(w->base, -1, EV_PERSIST, park_cb, w);
        int64_t every = w->cfg->tls_park_idle / 2;
        struct timeval tv = clock_timeval_ms(every < 50 ? 50 : every > 1000 ? 1000 : every);
        event_add(w->park_ev, &tv);
    }
    if (ctx->conntab) {
        control_subscribe(w->control, IPC_EVENT_EVICT_IDLE, IPC_SUBSCRIBE_ALL, NULL);
        w->idlest_ev = event_new(w->base, -1, EV_PERSIST, idlest_cb, w);
        struct timeval tv = clock_timeval_ms(1000);
        event_add(w->idlest_ev, &tv);
    }
    return w;
}

struct control *net_worker_control(struct net_worker *w)
{
    return w->control;
}

void net_worker_set_status(struct net_worker *w, void (*fn)(void *arg, json_t *obj), void *arg)
{
    w->status_fn = fn;
    w->status_arg = arg;
}

void net_worker_on_event(struct net_worker *w, void (*fn)(void *arg, const struct ipc_event *ev),
                         void *arg)
{
    w->event_fn = fn;
    w->event_arg = arg;
}

void net_worker_subscribe(struct net_worker *w, enum ipc_event_type type, enum ipc_subscribe_op op,
                          const char *owner)
{
    if (w->control)
        control_subscribe(w->control, type, op, owner);
}

void net_worker_publish(struct net_worker *w, const struct ipc_event *ev)
{
    if (w->control)
        control_publish(w->control, ev);
}

int net_worker_run(struct net_worker *w)
{
    component_loop_run(w->loop);
    while (w->conns)
        net_conn_abort(w->conns->c);
    return 0;
}

void net_worker_free(struct net_worker *w)
{
    for (size_t i = 0; i < w->n_svcs; i++) {
        struct net_service *svc = w->svcs[i];
        if (svc->listener)
            evconnlistener_free(svc->listener);
        for (struct strmap_slot *a = NULL; (a = strmap_next(&svc->by_addr, a)) != NULL;)
            free(a->val.ptr);
        strmap_free(&svc->by_addr);
        free(svc->name);
        free(svc->refuse_line);
        free(svc);
    }
    free(w->svcs);
    if (w->deadline)
        event_free(w->deadline);
    if (w->idlest_ev)
        event_free(w->idlest_ev);
    if (w->park_ev)
        event_free(w->park_ev);
    SSL_CTX_free(w->tls);
    SSL_CTX_free(w->proxy_tls);
    if (w->proxy_dns)
        dns_resolver_free(w->proxy_dns);
    component_loop_free(w->loop);
    free(w);
}
