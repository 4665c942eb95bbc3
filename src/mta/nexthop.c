/*
 * nexthop.c - chooses and resolves the next hop of a remote domain (see
 * nexthop.h): routes, relayhost, then MX / implicit MX through libunbound,
 * asynchronously on the caller's event loop. Never connects anywhere.
 */
#include "mta/nexthop.h"

#include "base/alloc.h"
#include "base/hex.h"
#include "base/log.h"
#include "mailauth/dkim.h"
#include "mta/mta_sts.h"
#include "net/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <event2/event.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28
#define RR_TLSA 52
#define RR_TXT 16

/* ---- parsing the configuration ---- */

void nexthop_dest_free(struct nexthop_dest *d)
{
    free(d->host);
    memset(d, 0, sizeof(*d));
}

static bool is_ip_literal(const char *s)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

bool nexthop_dest_parse(const char *s, struct nexthop_dest *d_r)
{
    memset(d_r, 0, sizeof(*d_r));
    d_r->port = 25;
    const char *host = s, *rest;
    size_t hostlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return false;
        host = s + 1;
        hostlen = (size_t)(close - host);
        rest = close + 1;
        d_r->no_mx = true;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            return false; /* a bare IPv6 address: must be written [addr] */
        hostlen = colon ? (size_t)(colon - s) : strlen(s);
        rest = s + hostlen;
    }
    if (hostlen == 0 || hostlen > 255)
        return false;
    if (*rest == ':') {
        char *end;
        long port = strtol(rest + 1, &end, 10);
        if (rest[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
            return false;
        d_r->port = (uint16_t)port;
    } else if (*rest != '\0') {
        return false;
    }
    d_r->host = xstrndup(host, hostlen);
    d_r->is_literal = is_ip_literal(d_r->host);
    if (d_r->is_literal)
        d_r->no_mx = true;
    return true;
}

void nexthop_routes_free(struct nexthop_route *routes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(routes[i].domain);
        nexthop_dest_free(&routes[i].dest);
    }
    free(routes);
}

bool nexthop_routes_parse(const struct strlist *words, struct nexthop_route **routes_r, size_t *n_r,
                          struct buf *err)
{
    struct nexthop_route *routes = NULL;
    size_t n = 0;
    for (size_t i = 0; i < words->n; i++) {
        const char *w = words->v[i];
        const char *eq = strchr(w, '=');
        if (eq == NULL) {
            enum smtp_tls_policy p;
            if (n == 0 || routes[n - 1].dest.policy_set || !smtp_tls_policy_parse(w, &p)) {
                buf_printf(
                    err,
                    "transport_routes: \"%s\" is neither DOMAIN=HOST nor a TLS policy after one",
                    w);
                goto fail;
            }
            routes[n - 1].dest.policy_set = true;
            routes[n - 1].dest.tls = p;
            continue;
        }
        routes = xreallocarray(routes, n + 1, sizeof(*routes));
        memset(&routes[n], 0, sizeof(routes[n]));
        if (eq == w || !nexthop_dest_parse(eq + 1, &routes[n].dest)) {
            buf_printf(err, "transport_routes: bad route \"%s\"", w);
            goto fail;
        }
        routes[n].domain = xstrndup(w, (size_t)(eq - w));
        n++;
    }
    *routes_r = routes;
    *n_r = n;
    return true;
fail:
    nexthop_routes_free(routes, n);
    return false;
}

void nexthop_host_clear(struct nexthop_host *h)
{
    free(h->name);
    free(h->tlsa);
    h->name = NULL;
    h->tlsa = NULL;
    h->tlsa_len = 0;
}

void nexthop_host_copy(struct nexthop_host *to, const struct nexthop_host *h)
{
    *to = *h;
    to->name = h->name ? xstrdup(h->name) : NULL;
    to->tlsa = h->tlsa ? xmemdup(h->tlsa, h->tlsa_len) : NULL;
}

bool nexthop_tlsa_usable(const unsigned char *rd, size_t len)
{
    if (len < 4 || (rd[0] != 2 && rd[0] != 3) || rd[1] > 1)
        return false;
    size_t dl = len - 3;
    switch (rd[2]) {
    case 0: /* the full certificate or key */
        return true;
    case 1: /* SHA2-256 */
        return dl == 32;
    case 2: /* SHA2-512 */
        return dl == 64;
    default:
        return false;
    }
}

/* ---- MX rules (RFC 5321 5.1) ---- */

static int cmp_pref(const void *a, const void *b)
{
    const struct nexthop_host *x = a, *y = b;
    return (x->pref > y->pref) - (x->pref < y->pref);
}

void nexthop_mx_order(struct nexthop_host *hosts, size_t n)
{
    qsort(hosts, n, sizeof(*hosts), cmp_pref);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && hosts[j].pref == hosts[i].pref)
            j++;
        for (size_t k = j - 1; k > i; k--) { /* Fisher-Yates over [i, j) */
            size_t r = i + arc4random_uniform((uint32_t)(k - i + 1));
            struct nexthop_host t = hosts[k];
            hosts[k] = hosts[r];
            hosts[r] = t;
        }
        i = j;
    }
}

/* The IP address and port of a socket address; false for another family. */
static bool sa_split(const struct sockaddr_storage *ss, int *family_r, const void **ip_r,
                     size_t *len_r, uint16_t *port_r)
{
    *family_r = ss->ss_family;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        *ip_r = &s4->sin_addr, *len_r = 4, *port_r = ntohs(s4->sin_port);
        return true;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        *ip_r = &s6->sin6_addr, *len_r = 16, *port_r = ntohs(s6->sin6_port);
        return true;
    }
    return false;
}

/* A "*" listener answers on every address of this machine: loopback, or
 * one of the interfaces' addresses. */
static bool addr_is_local(const struct sockaddr_storage *a, const struct nexthop_self *self)
{
    int fam, f2;
    const void *ip, *ip2;
    size_t len, l2;
    uint16_t port, p2;
    if (!sa_split(a, &fam, &ip, &len, &port))
        return false;
    if (fam == AF_INET && ((const unsigned char *)ip)[0] == 127)
        return true;
    if (fam == AF_INET6 && IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)ip))
        return true;
    for (size_t i = 0; i < self->n_local; i++)
        if (sa_split(&self->local[i], &f2, &ip2, &l2, &p2) && f2 == fam &&
            memcmp(ip, ip2, len) == 0)
            return true;
    return false;
}

bool nexthop_host_is_self(const struct nexthop_host *h, const struct nexthop_self *self)
{
    if (self->hostname != NULL && self->hostname[0] != '\0' && h->name != NULL &&
        strcasecmp(h->name, self->hostname) == 0)
        return true;
    for (size_t i = 0; i < h->n_addrs; i++) {
        int fam;
        const void *ip;
        size_t len;
        uint16_t port;
        if (!sa_split(&h->addrs[i], &fam, &ip, &len, &port))
            continue;
        for (size_t k = 0; self->listen != NULL && k < self->listen->n; k++) {
            struct listen_addr la;
            unsigned char lip[16];
            if (!config_parse_listen_addr(self->listen->v[k], &la) || la.port != port)
                continue;
            if (la.host[0] == '\0' ? addr_is_local(&h->addrs[i], self)
                                   : inet_pton(fam, la.host, lip) == 1 && memcmp(lip, ip, len) == 0)
                return true;
        }
    }
    return false;
}

size_t nexthop_mx_cut_self(struct nexthop_host *hosts, size_t n, const struct nexthop_self *self,
                           bool *self_r)
{
    *self_r = false;
    size_t s = 0;
    while (s < n && !nexthop_host_is_self(&hosts[s], self))
        s++;
    if (s == n)
        return n;
    *self_r = true;
    size_t keep = 0;
    while (keep < s && hosts[keep].pref < hosts[s].pref)
        keep++;
    for (size_t i = keep; i < n; i++)
        nexthop_host_clear(&hosts[i]);
    return keep;
}

/* ---- the resolver ---- */

/* Most addresses of this machine remembered for loop detection. */
#define NEXTHOP_LOCAL_ADDRS_MAX 64

struct lookup;

struct nexthop_resolver {
    struct event_base *base;
    struct dns_resolver *dns;
    struct nexthop_route *routes;
    size_t n_routes;
    struct nexthop_dest relay;
    bool has_relay, relay_auth;
    bool dnssec;   /* a trust anchor is loaded: answers can be secure */
    bool sts;      /* mta_sts: look up _mta-sts TXT records */
    uint16_t port; /* mta_smtp_port */
    enum smtp_tls_policy tls;
    struct lookup *lookups; /* in flight, for free */
    /* The organization's routes (doc/routing.md): the routing process's table, re-read when
     * the file changes. */
    char *org_path;
    json_t *org_state; /* org, group, routes */
    struct stat org_st;
    struct nexthop_self self;
    struct sockaddr_storage local[NEXTHOP_LOCAL_ADDRS_MAX];
};

struct lookup {
    struct nexthop_resolver *r;
    struct lookup *next, *prev;
    char *domain;
    nexthop_cb *cb;
    void *arg;
    uint16_t port;
    int pending;
    bool temp_error;
    bool configured;    /* a route or the relayhost: its name failing is our config's fault */
    bool by_mx;         /* MX rules apply: hosts from the domain's MX (or implicit MX) */
    bool dane;          /* the policy asks for TLSA records and DNSSEC is on */
    bool mx_secure;     /* the host names came from a DNSSEC-secure answer (or the config) */
    bool txt_pending;   /* the _mta-sts TXT answer is still to come */
    bool finish_wanted; /* finish() waits for it */
    struct nexthop_result res;
    struct event *done_ev;
    struct nexthop_dest org_dest; /* the organization's next hop, when it routes the domain */
};

/* A query's context: which lookup and which host it is for. */
struct query {
    struct lookup *lk;
    size_t host; /* index in lk->res.hosts; SIZE_MAX for the MX query */
};

struct nexthop_resolver *nexthop_resolver_new(struct event_base *base,
                                              const struct wharf_config *cfg, struct buf *err)
{
    struct nexthop_resolver *r = xcalloc(1, sizeof(*r));
    r->base = base;
    r->self.hostname = cfg->myhostname;
    r->port = (uint16_t)cfg->mta_smtp_port;
    r->sts = cfg->mta_sts;
    r->self.listen = &cfg->smtp_listen;
    r->org_path = config_data_path(cfg, "routing/state.json");
    r->self.local = r->local;
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *i = ifa; i != NULL && r->self.n_local < NEXTHOP_LOCAL_ADDRS_MAX;
             i = i->ifa_next)
            if (i->ifa_addr != NULL &&
                (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
                memcpy(&r->local[r->self.n_local++], i->ifa_addr,
                       i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                         : sizeof(struct sockaddr_in6));
        freeifaddrs(ifa);
    }
    if (!smtp_tls_policy_parse(cfg->mta_smtp_tls_policy, &r->tls)) {
        buf_printf(err, "mta_smtp_tls_policy: unknown policy \"%s\"", cfg->mta_smtp_tls_policy);
        goto fail;
    }
    if (!nexthop_routes_parse(&cfg->transport_routes, &r->routes, &r->n_routes, err))
        goto fail;
    bool trust = cfg->dns_trust_anchor_file != NULL && cfg->dns_trust_anchor_file[0] != '\0';
    bool dane_only = r->tls == SMTP_TLS_DANE_ONLY;
    for (size_t i = 0; i < r->n_routes; i++)
        dane_only |= r->routes[i].dest.tls == SMTP_TLS_DANE_ONLY;
    if (dane_only && !trust) {
        buf_printf(err, "the dane-only TLS policy needs dns_trust_anchor_file (DNSSEC)");
        goto fail;
    }
    if (cfg->relayhost != NULL && cfg->relayhost[0] != '\0') {
        if (!nexthop_dest_parse(cfg->relayhost, &r->relay)) {
            buf_printf(err, "relayhost: bad value \"%s\"", cfg->relayhost);
            goto fail;
        }
        r->has_relay = true;
        r->relay_auth = cfg->relayhost_auth_file != NULL && cfg->relayhost_auth_file[0] != '\0';
    }
    r->dns =
        dns_resolver_new(base, cfg->dns_resolver, trust ? cfg->dns_trust_anchor_file : NULL, err);
    if (r->dns == NULL)
        goto fail;
    r->dnssec = trust;
    return r;
fail:
    nexthop_resolver_free(r);
    return NULL;
}

static void lookup_free(struct lookup *lk)
{
    struct nexthop_resolver *r = lk->r;
    if (lk->prev)
        lk->prev->next = lk->next;
    else
        r->lookups = lk->next;
    if (lk->next)
        lk->next->prev = lk->prev;
    for (size_t i = 0; i < lk->res.n_hosts; i++)
        nexthop_host_clear(&lk->res.hosts[i]);
    buf_free(&lk->res.reason);
    buf_free(&lk->res.org);
    buf_free(&lk->res.org_group);
    buf_free(&lk->res.org_next_group);
    buf_free(&lk->res.org_self);
    buf_free(&lk->res.hop);
    nexthop_dest_free(&lk->org_dest);
    event_free(lk->done_ev);
    free(lk->domain);
    free(lk);
}

void nexthop_resolver_free(struct nexthop_resolver *r)
{
    if (r == NULL)
        return;
    dns_resolver_free(r->dns); /* cancels the queries in flight */
    while (r->lookups)
        lookup_free(r->lookups);
    nexthop_routes_free(r->routes, r->n_routes);
    nexthop_dest_free(&r->relay);
    json_decref(r->org_state);
    free(r->org_path);
    free(r);
}

static void lookup_done(evutil_socket_t fd, short what, void *arg)
{
    struct lookup *lk = arg;
    lk->cb(lk->domain, &lk->res, lk->arg);
    lookup_free(lk);
}

static void host_order_addrs(struct nexthop_host *h)
{
    struct nexthop_host sorted = *h;
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < h->n_addrs; i++)
            if ((h->addrs[i].ss_family == AF_INET) == (pass == 0)) {
                sorted.addrs[k] = h->addrs[i];
                sorted.addr_lens[k++] = h->addr_lens[i];
            }
    *h = sorted;
}

static void tlsa_lookup(struct lookup *lk);

static void finish(struct lookup *lk)
{
    struct nexthop_result *res = &lk->res;
    if (lk->txt_pending) {
        lk->finish_wanted = true;
        return;
    }
    if (res->status == NEXTHOP_OK && lk->by_mx) {
        bool self;
        res->n_hosts = nexthop_mx_cut_self(res->hosts, res->n_hosts, &lk->r->self, &self);
        if (self && res->n_hosts == 0) {
            res->status = NEXTHOP_PERMFAIL;
            snprintf(res->enh, sizeof(res->enh), "5.4.6");
            buf_printf(&res->reason, "mail for %s loops back to myself", lk->domain);
        }
    }
    if (res->status == NEXTHOP_OK) {
        /* keep hosts that have an address, in order; IPv4 before IPv6 within a
         * host whatever order the answers came in (a stable order for logs) */
        size_t k = 0;
        for (size_t i = 0; i < res->n_hosts; i++) {
            host_order_addrs(&res->hosts[i]);
            if (res->hosts[i].n_addrs > 0)
                res->hosts[k++] = res->hosts[i];
            else
                nexthop_host_clear(&res->hosts[i]);
        }
        res->n_hosts = k;
        if (k == 0) {
            res->status = lk->temp_error ? NEXTHOP_TEMPFAIL : NEXTHOP_PERMFAIL;
            snprintf(res->enh, sizeof(res->enh), lk->temp_error ? "4.4.3" : "5.4.4");
            buf_printf(&res->reason, "%s: no address for the mail exchanger%s", lk->domain,
                       lk->temp_error ? " (DNS failure)" : "");
        }
    }
    if (lk->configured && res->status == NEXTHOP_PERMFAIL) {
        /* a configured next hop that does not resolve must not bounce mail */
        res->status = NEXTHOP_TEMPFAIL;
        snprintf(res->enh, sizeof(res->enh), "4.4.3");
        buf_append_cstr(&res->reason, " (configured next hop)");
    }
    if (res->status == NEXTHOP_OK && lk->dane) {
        tlsa_lookup(lk);
        return;
    }
    struct timeval now = {0, 0};
    event_add(lk->done_ev, &now);
}

/* ---- DANE (RFC 7672 2.2): TLSA records of each host ---- */

/* A host whose TLSA lookup failed (bogus, SERVFAIL) is not used; under
 * dane-only neither is one without secure TLSA records. */
static void dane_settle(struct lookup *lk)
{
    struct nexthop_result *res = &lk->res;
    size_t k = 0, failed = 0;
    for (size_t i = 0; i < res->n_hosts; i++) {
        struct nexthop_host *h = &res->hosts[i];
        bool drop = h->addr_insecure; /* reused below as "TLSA lookup failed" */
        if (!drop && res->tls == SMTP_TLS_DANE_ONLY && h->dane == NEXTHOP_DANE_NONE)
            drop = true;
        if (drop) {
            log_warning("%s: not using %s: %s", lk->domain, h->name,
                        h->addr_insecure ? "its TLSA lookup failed (DNSSEC bogus or DNS failure)"
                                         : "no DNSSEC-secure TLSA records (dane-only)");
            nexthop_host_clear(h);
            failed++;
        } else {
            res->hosts[k++] = *h;
        }
    }
    res->n_hosts = k;
    if (k == 0) {
        res->status = NEXTHOP_TEMPFAIL;
        snprintf(res->enh, sizeof(res->enh), "4.7.5");
        buf_printf(&res->reason, "%s: no mail exchanger usable under DANE (%zu without valid TLSA)",
                   lk->domain, failed);
    }
    struct timeval now = {0, 0};
    event_add(lk->done_ev, &now);
}

static void on_tlsa(void *arg, int err, struct ub_result *ur)
{
    struct query *q = arg;
    struct lookup *lk = q->lk;
    struct nexthop_host *h = &lk->res.hosts[q->host];
    free(q);
    /* after the address phase addr_insecure is false for every host asked
     * (only secure ones are); from here it means "TLSA lookup failed" */
    if (err != 0 || ur == NULL || ur->bogus || (ur->rcode != 0 && ur->rcode != 3)) {
        h->addr_insecure = true;
    } else if (ur->secure && ur->havedata) {
        struct buf b = BUF_INIT;
        bool usable = false;
        for (int i = 0; ur->data[i] != NULL; i++) {
            size_t len = (size_t)ur->len[i];
            if (len > 0xffff || b.len + 2 + len > NEXTHOP_TLSA_MAX)
                break;
            unsigned char l2[2] = {(unsigned char)(len >> 8), (unsigned char)len};
            buf_append(&b, l2, 2);
            buf_append(&b, ur->data[i], len);
            usable |= nexthop_tlsa_usable((const unsigned char *)ur->data[i], len);
        }
        h->dane = usable ? NEXTHOP_DANE_VERIFY : NEXTHOP_DANE_ENCRYPT;
        h->tlsa_len = b.len;
        h->tlsa = (unsigned char *)buf_steal(&b, NULL);
    }
    /* insecure, or a secure "none": no DANE for this host */
    if (ur)
        ub_resolve_free(ur);
    if (--lk->pending == 0)
        dane_settle(lk);
}

static void tlsa_lookup(struct lookup *lk)
{
    lk->dane = false; /* finish() may run once more: do this once */
    lk->pending = 1;  /* held until all are sent */
    for (size_t i = 0; i < lk->res.n_hosts; i++) {
        struct nexthop_host *h = &lk->res.hosts[i];
        bool secure = lk->mx_secure && h->addr_secure && !h->addr_insecure;
        h->addr_insecure = false;
        if (!secure)
            continue;
        char qname[300];
        snprintf(qname, sizeof(qname), "_%u._tcp.%s", (unsigned)lk->port, h->name);
        struct query *q = xmalloc(sizeof(*q));
        *q = (struct query){lk, i};
        lk->pending++;
        int err;
        if (dns_query(lk->r->dns, qname, RR_TLSA, on_tlsa, q, &err) < 0) {
            free(q);
            h->addr_insecure = true;
            lk->pending--;
        }
    }
    if (--lk->pending == 0)
        dane_settle(lk);
}

static void fail(struct lookup *lk, enum nexthop_status st, const char *enh, const char *why)
{
    lk->res.status = st;
    snprintf(lk->res.enh, sizeof(lk->res.enh), "%s", enh);
    buf_printf(&lk->res.reason, "%s: %s", lk->domain, why);
    for (size_t i = 0; i < lk->res.n_hosts; i++)
        nexthop_host_clear(&lk->res.hosts[i]);
    lk->res.n_hosts = 0;
    finish(lk);
}

static void add_addr(struct nexthop_host *h, int family, const void *a, uint16_t port)
{
    if (h->n_addrs == NEXTHOP_ADDRS_MAX)
        return;
    struct sockaddr_storage *ss = &h->addrs[h->n_addrs];
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, a, 4);
        h->addr_lens[h->n_addrs++] = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, a, 16);
        h->addr_lens[h->n_addrs++] = sizeof(*s6);
    }
}

static void on_addr(void *arg, int err, struct ub_result *ur)
{
    struct query *q = arg;
    struct lookup *lk = q->lk;
    struct nexthop_host *h = &lk->res.hosts[q->host];
    free(q);
    if (err != 0 || ur == NULL || (ur->rcode != 0 && ur->rcode != 3))
        lk->temp_error = true; /* SERVFAIL and the like; NXDOMAIN (3) is just "none" */
    else if (ur->havedata) {
        if (ur->secure)
            h->addr_secure = true;
        else
            h->addr_insecure = true;
        for (int i = 0; ur->data[i] != NULL; i++) {
            if (ur->qtype == RR_A && ur->len[i] == 4)
                add_addr(h, AF_INET, ur->data[i], lk->port);
            else if (ur->qtype == RR_AAAA && ur->len[i] == 16)
                add_addr(h, AF_INET6, ur->data[i], lk->port);
        }
    }
    if (ur)
        ub_resolve_free(ur);
    if (--lk->pending == 0)
        finish(lk);
}

static void query_addrs(struct lookup *lk)
{
    struct nexthop_resolver *r = lk->r;
    lk->pending = (int)(2 * lk->res.n_hosts) + 1; /* +1: held until all are sent */
    for (size_t i = 0; i < lk->res.n_hosts; i++) {
        const int types[2] = {RR_A, RR_AAAA};
        for (int t = 0; t < 2; t++) {
            struct query *q = xmalloc(sizeof(*q));
            *q = (struct query){lk, i};
            int err;
            if (dns_query(r->dns, lk->res.hosts[i].name, types[t], on_addr, q, &err) < 0) {
                free(q);
                lk->temp_error = true;
                lk->pending--;
            }
        }
    }
    if (--lk->pending == 0)
        finish(lk);
}

static void add_host(struct lookup *lk, const char *name, int pref)
{
    if (lk->res.n_hosts == NEXTHOP_HOSTS_MAX)
        return;
    struct nexthop_host *h = &lk->res.hosts[lk->res.n_hosts++];
    memset(h, 0, sizeof(*h));
    h->name = xstrdup(name);
    h->pref = pref;
}

static void on_mx(void *arg, int err, struct ub_result *ur)
{
    struct query *q = arg;
    struct lookup *lk = q->lk;
    const char *qname = ur && ur->qname ? ur->qname : lk->domain;
    free(q);
    if (err != 0 || ur == NULL || (ur->rcode != 0 && ur->rcode != 3)) {
        if (ur)
            ub_resolve_free(ur);
        fail(lk, NEXTHOP_TEMPFAIL, "4.4.3",
             err ? ub_strerror(err) : "temporary DNS failure looking up MX");
        return;
    }
    if (ur->nxdomain) {
        ub_resolve_free(ur);
        fail(lk, NEXTHOP_PERMFAIL, "5.1.2", "domain not found");
        return;
    }
    /* the host names are as trustworthy as this answer (a configured [host]
     * never gets here: its name is trusted as written, RFC 7672 2.2.2) */
    lk->mx_secure = ur->secure;
    if (!ur->havedata) {
        /* no MX: the domain itself is the implicit MX (RFC 5321 5.1) */
        add_host(lk, qname, 0);
        ub_resolve_free(ur);
        query_addrs(lk);
        return;
    }
    /* all records first (bounded: the array sorts the best NEXTHOP_HOSTS_MAX) */
    struct nexthop_host all[64];
    size_t n = 0;
    bool null_mx = false;
    struct buf name = BUF_INIT;
    for (int i = 0; ur->data[i] != NULL && n < 64; i++) {
        int pref;
        if (!dns_mx_rdata_parse((const unsigned char *)ur->data[i], (size_t)ur->len[i], &pref,
                                &name))
            continue;
        if (name.len == 0) {
            null_mx = true;
            continue;
        }
        all[n].pref = pref;
        all[n].name = buf_steal(&name, NULL);
        n++;
    }
    buf_free(&name);
    ub_resolve_free(ur);
    if (n == 0) {
        fail(lk, NEXTHOP_PERMFAIL, null_mx ? "5.1.10" : "5.4.4",
             null_mx ? "the domain accepts no mail (null MX, RFC 7505)" : "malformed MX records");
        return;
    }
    nexthop_mx_order(all, n);
    for (size_t i = 0; i < n; i++) {
        add_host(lk, all[i].name, all[i].pref);
        free(all[i].name);
    }
    query_addrs(lk);
}

/* RFC 8461 3.1: exactly one TXT record that starts with v=STSv1, and a
 * valid one, or no policy to look for. */
/* A TXT record's text: its character-strings, each after a length byte,
 * joined (RFC 7208 3.3 does the same), cut at cap - 1 octets. */
static size_t txt_join(const unsigned char *rd, size_t len, char *txt, size_t cap)
{
    size_t tl = 0;
    for (size_t k = 0; k < len;) {
        size_t sl = rd[k++];
        if (k + sl > len || tl + sl >= cap)
            break;
        memcpy(txt + tl, rd + k, sl);
        tl += sl;
        k += sl;
    }
    txt[tl] = '\0';
    return tl;
}

static void on_sts_txt(void *arg, int err, struct ub_result *ur)
{
    struct lookup *lk = arg;
    int n = 0;
    char id[MTA_STS_ID_MAX + 1] = "";
    bool valid = false;
    if (err == 0 && ur != NULL && ur->rcode == 0 && ur->havedata)
        for (int i = 0; ur->data[i] != NULL; i++) {
            char txt[1024];
            size_t tl =
                txt_join((const unsigned char *)ur->data[i], (size_t)ur->len[i], txt, sizeof(txt));
            bool is_sts;
            char one[MTA_STS_ID_MAX + 1];
            bool ok = mta_sts_txt_parse(txt, tl, &is_sts, one);
            if (is_sts) {
                n++;
                valid = ok;
                memcpy(id, one, sizeof(id));
            }
        }
    if (n == 1 && valid)
        snprintf(lk->res.sts_id, sizeof(lk->res.sts_id), "%s", id);
    if (ur)
        ub_resolve_free(ur);
    lk->txt_pending = false;
    if (lk->finish_wanted)
        finish(lk);
}

static const struct nexthop_route *route_find(const struct nexthop_resolver *r, const char *domain)
{
    for (size_t i = 0; i < r->n_routes; i++) {
        const char *d = r->routes[i].domain;
        if (strcasecmp(d, domain) == 0)
            return &r->routes[i];
        /* ".example.net" matches every subdomain */
        size_t dl = strlen(d), l = strlen(domain);
        if (d[0] == '.' && l > dl && strcasecmp(domain + l - dl, d) == 0)
            return &r->routes[i];
    }
    return NULL;
}

static struct lookup *lookup_new(struct nexthop_resolver *r, const char *name, uint16_t port,
                                 nexthop_cb *cb, void *arg)
{
    struct lookup *lk = xcalloc(1, sizeof(*lk));
    lk->r = r;
    lk->domain = xstrdup(name);
    lk->cb = cb;
    lk->arg = arg;
    lk->port = port;
    buf_init(&lk->res.reason);
    buf_init(&lk->res.org);
    buf_init(&lk->res.org_group);
    buf_init(&lk->res.org_next_group);
    buf_init(&lk->res.org_self);
    buf_init(&lk->res.hop);
    lk->res.tls = r->tls;
    lk->mx_secure = true; /* a configured name; an MX answer sets it */
    lk->done_ev = event_new(r->base, -1, 0, lookup_done, lk);
    lk->next = r->lookups;
    if (r->lookups)
        r->lookups->prev = lk;
    r->lookups = lk;
    return lk;
}

struct slice nexthop_route_trace_item(struct slice value, const char *name)
{
    struct slice found = SLICE_NULL;
    const char *p = value.ptr, *end = value.ptr + value.len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        struct slice item = slice_trim(slice_make(p, (size_t)(stop - p)));
        const char *eq = memchr(item.ptr, '=', item.len);
        if (eq != NULL) {
            struct slice key = slice_trim(slice_make(item.ptr, (size_t)(eq - item.ptr)));
            struct slice val =
                slice_trim(slice_make(eq + 1, item.len - (size_t)(eq - item.ptr) - 1));
            if (slice_eq_cstr_nocase(key, name))
                found = val;
        }
        p = stop + (semi != NULL);
    }
    return found;
}

bool nexthop_route_trace_parse(struct slice value, struct slice *org_r, struct slice *group_r)
{
    *org_r = nexthop_route_trace_item(value, "org");
    *group_r = nexthop_route_trace_item(value, "group");
    return org_r->len > 0 && group_r->len > 0;
}

/* The name of a configured next hop in a queue (nexthop_result.hop): "KIND:HOST:PORT". */
static void hop_name(struct buf *out, const char *kind, const struct nexthop_dest *d)
{
    buf_printf(out, "%s:%s:%u", kind, d->host, (unsigned)d->port);
}

/* How specific an address space is for domain: -1 no match ("*", "*.x": x and below, "x"). */
static int org_space_match(const char *pattern, const char *domain)
{
    if (strcmp(pattern, "*") == 0)
        return 0;
    bool sub = strncmp(pattern, "*.", 2) == 0;
    const char *base = sub ? pattern + 2 : pattern;
    size_t bl = strlen(base), dl = strlen(domain);
    if (strcasecmp(domain, base) == 0)
        return sub ? (int)bl + 1 : 100000;
    if (sub && dl > bl && domain[dl - bl - 1] == '.' && strcasecmp(domain + dl - bl, base) == 0)
        return (int)bl + 1;
    return -1;
}

/*
 * The organization's route for domain: 1 with lk->org_dest (the next hop's SMTP address, or
 * the connector's smart host when this server is its bridgehead), -1 when the most specific
 * address space matching it has no usable connector (mail waits), 0 when the organization
 * does not route it (no file, no match: the rules below apply).
 */
/* The routing process's table, re-read when the file changed; fills lk's org and
 * org_group when this server is in an organization. false: it is in none. */
static bool org_refresh(struct nexthop_resolver *r)
{
    struct stat st;
    if (stat(r->org_path, &st) != 0) {
        json_decref(r->org_state);
        r->org_state = NULL;
        return false;
    }
    if (st.st_ino != r->org_st.st_ino || st.st_size != r->org_st.st_size ||
        st.st_mtim.tv_sec != r->org_st.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != r->org_st.st_mtim.tv_nsec) {
        json_decref(r->org_state);
        r->org_state = json_load_file(r->org_path, 0, NULL);
        r->org_st = st;
    }
    return r->org_state != NULL;
}

void nexthop_route_id_content(struct slice data, unsigned char md[32])
{
    static const char *const names[] = {"from",
                                        "sender",
                                        "reply-to",
                                        "to",
                                        "cc",
                                        "subject",
                                        "date",
                                        "message-id",
                                        "in-reply-to",
                                        "references",
                                        "mime-version",
                                        "content-type",
                                        "content-transfer-encoding"};
    struct dkim_msg msg;
    dkim_msg_init(&msg, data);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        abort();
    for (size_t i = 0; i < msg.n_fields; i++) {
        const struct dkim_field *f = &msg.fields[i];
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && !slice_eq_cstr_nocase(f->name, names[k]))
            k++;
        if (k == sizeof(names) / sizeof(names[0]))
            continue;
        EVP_DigestUpdate(ctx, names[k], strlen(names[k]));
        EVP_DigestUpdate(ctx, ":", 1);
        EVP_DigestUpdate(ctx, f->value.ptr, f->value.len);
        EVP_DigestUpdate(ctx, "\r\n", 2);
    }
    EVP_DigestUpdate(ctx, "\r\n", 2);
    EVP_DigestUpdate(ctx, msg.body.ptr, msg.body.len);
    unsigned int len = 32;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    dkim_msg_free(&msg);
}

bool nexthop_route_id_mac(struct nexthop_resolver *r, struct slice base, struct slice data,
                          char out[NEXTHOP_ROUTE_MAC_HEX + 1])
{
    if (!org_refresh(r))
        return false;
    const char *hex = json_string_value(json_object_get(r->org_state, "route_id_key"));
    unsigned char key[32], md[32], content[32];
    unsigned int md_len = sizeof(md);
    if (hex == NULL || !hex_decode(hex, key, sizeof(key)))
        return false;
    nexthop_route_id_content(data, content);
    struct buf in = BUF_INIT;
    buf_append_slice(&in, base);
    buf_append_byte(&in, '\n');
    buf_append(&in, content, sizeof(content));
    bool ok = HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)in.data, in.len, md,
                   &md_len) != NULL;
    buf_free(&in);
    if (ok)
        hex_encode(md, NEXTHOP_ROUTE_MAC_HEX / 2, out);
    OPENSSL_cleanse(key, sizeof(key));
    return ok;
}

static bool org_load(struct nexthop_resolver *r, struct lookup *lk)
{
    if (!org_refresh(r))
        return false;
    const char *org = json_string_value(json_object_get(r->org_state, "org"));
    const char *group = json_string_value(json_object_get(r->org_state, "group"));
    const char *self = json_string_value(json_object_get(r->org_state, "self"));
    if (org == NULL || group == NULL || self == NULL)
        return false;
    buf_reset(&lk->res.org);
    buf_reset(&lk->res.org_group);
    buf_reset(&lk->res.org_self);
    buf_append_cstr(&lk->res.org, org);
    buf_append_cstr(&lk->res.org_group, group);
    buf_append_cstr(&lk->res.org_self, self);
    return true;
}

static int org_route(struct nexthop_resolver *r, struct lookup *lk, const char *domain)
{
    if (!org_load(r, lk))
        return 0;
    const json_t *best = NULL;
    int best_spec = -1;
    size_t i;
    json_t *rt;
    json_array_foreach(json_object_get(r->org_state, "routes"), i, rt)
    {
        const char *kind = json_string_value(json_object_get(rt, "kind"));
        const char *pat = json_string_value(json_object_get(rt, "dest"));
        int spec = kind && pat && strcmp(kind, "space") == 0 ? org_space_match(pat, domain) : -1;
        if (spec > best_spec) {
            best_spec = spec;
            best = rt;
        }
    }
    if (best == NULL)
        return 0;
    const char *smtp = json_string_value(json_object_get(best, "smtp"));
    if (!json_is_true(json_object_get(best, "reachable")) || smtp == NULL ||
        !nexthop_dest_parse(smtp, &lk->org_dest)) {
        buf_printf(&lk->res.hop, "unreachable:%s",
                   json_string_value(json_object_get(best, "dest")));
        return -1;
    }
    const char *next = json_string_value(json_object_get(best, "next_group"));
    const char *hop = json_string_value(json_object_get(best, "next_hop"));
    if (next != NULL) {
        buf_append_cstr(&lk->res.org_next_group, next);
        buf_printf(&lk->res.hop, "org:%s/%s", next, hop ? hop : "?");
    } else
        hop_name(&lk->res.hop, "smarthost", &lk->org_dest);
    return 1;
}

/* The server of the organization that home names (its name, or the host of its SMTP
 * address), or NULL. */
static const json_t *org_home_server(const json_t *state, const char *home)
{
    size_t i;
    json_t *sv;
    json_array_foreach(json_object_get(state, "servers"), i, sv)
    {
        const char *name = json_string_value(json_object_get(sv, "name"));
        struct nexthop_dest d;
        const char *smtp = json_string_value(json_object_get(sv, "smtp"));
        bool same = name != NULL && strcasecmp(name, home) == 0;
        if (!same && smtp != NULL && nexthop_dest_parse(smtp, &d)) {
            same = strcasecmp(d.host, home) == 0;
            nexthop_dest_free(&d);
        }
        if (same)
            return sv;
    }
    return NULL;
}

/*
 * The organization's route to home, a server of it: 1 with lk->org_dest (the home server
 * itself in our group, else the next hop towards its group) and org_next_group, -1 with a
 * reason when there is no usable route (mail waits), 0 when home is not a server of our
 * organization.
 */
static int org_home_route(struct nexthop_resolver *r, struct lookup *lk, const char *home,
                          struct buf *why)
{
    if (!org_load(r, lk))
        return 0;
    const json_t *srv = org_home_server(r->org_state, home);
    if (srv == NULL)
        return 0;
    const char *group = json_string_value(json_object_get(srv, "group"));
    const char *name = json_string_value(json_object_get(srv, "name"));
    const char *smtp = NULL, *next = NULL, *hop = NULL;
    if (group != NULL && strcmp(group, buf_cstr(&lk->res.org_group)) == 0) {
        smtp = json_string_value(json_object_get(srv, "smtp"));
        next = group;
        hop = name;
    } else {
        size_t i;
        json_t *rt;
        json_array_foreach(json_object_get(r->org_state, "routes"), i, rt)
        {
            const char *kind = json_string_value(json_object_get(rt, "kind"));
            const char *dest = json_string_value(json_object_get(rt, "dest"));
            if (kind == NULL || dest == NULL || group == NULL || strcmp(kind, "group") != 0 ||
                strcmp(dest, group) != 0)
                continue;
            if (json_is_true(json_object_get(rt, "reachable"))) {
                smtp = json_string_value(json_object_get(rt, "smtp"));
                next = json_string_value(json_object_get(rt, "next_group"));
                hop = json_string_value(json_object_get(rt, "next_hop"));
            }
        }
    }
    if (smtp == NULL || next == NULL || !nexthop_dest_parse(smtp, &lk->org_dest)) {
        buf_printf(why,
                   "no usable route in the organization to %s (group %s) with an SMTP address; "
                   "the message waits",
                   name ? name : home, group ? group : "?");
        buf_printf(&lk->res.hop, "unreachable:%s", group ? group : "?");
        return -1;
    }
    buf_append_cstr(&lk->res.org_next_group, next);
    buf_printf(&lk->res.hop, "org:%s/%s", next, hop ? hop : "?");
    return 1;
}

void nexthop_lookup(struct nexthop_resolver *r, const char *domain, nexthop_cb *cb, void *arg)
{
    struct lookup *lk = lookup_new(r, domain, r->port, cb, arg);

    int org = org_route(r, lk, domain);
    lk->res.org_routed = org != 0;
    if (org < 0) {
        fail(lk, NEXTHOP_TEMPFAIL, "4.4.0",
             "no usable route in the organization (its connectors for this address space are "
             "down); the message waits");
        return;
    }
    const struct nexthop_route *route = org > 0 ? NULL : route_find(r, domain);
    const struct nexthop_dest *dest = org > 0        ? &lk->org_dest
                                      : route        ? &route->dest
                                      : r->has_relay ? &r->relay
                                                     : NULL;
    const char *mx_of = domain;
    enum smtp_tls_policy pol = dest != NULL && dest->policy_set ? dest->tls : r->tls;
    lk->dane = r->dnssec && (pol == SMTP_TLS_DANE || pol == SMTP_TLS_DANE_ONLY) &&
               (dest == NULL || !dest->is_literal);
    if (route != NULL)
        hop_name(&lk->res.hop, "route", dest);
    else if (dest != NULL && org == 0)
        hop_name(&lk->res.hop, "relayhost", dest);
    else if (dest == NULL)
        buf_printf(&lk->res.hop, "mx:%s", domain);
    if (dest != NULL) {
        lk->configured = true;
        lk->port = dest->port;
        if (dest->policy_set)
            lk->res.tls = dest->tls;
        lk->res.relay_auth = route == NULL && r->relay_auth;
        if (dest->is_literal) {
            /* no name to look TLSA records up for */
            if (lk->res.tls == SMTP_TLS_DANE_ONLY) {
                fail(lk, NEXTHOP_TEMPFAIL, "4.7.5",
                     "an address literal cannot be authenticated by DANE (dane-only)");
                return;
            }
            add_host(lk, dest->host, 0);
            unsigned char a[16];
            struct nexthop_host *h = &lk->res.hosts[0];
            if (inet_pton(AF_INET, dest->host, a) == 1)
                add_addr(h, AF_INET, a, lk->port);
            else if (inet_pton(AF_INET6, dest->host, a) == 1)
                add_addr(h, AF_INET6, a, lk->port);
            finish(lk);
            return;
        }
        if (dest->no_mx) {
            add_host(lk, dest->host, 0);
            query_addrs(lk);
            return;
        }
        mx_of = dest->host;
    } else {
        lk->by_mx = true;
        lk->res.sts_applies = r->sts;
        if (r->sts) {
            struct buf name = BUF_INIT;
            buf_printf(&name, "_mta-sts.%s", domain);
            int err;
            lk->txt_pending = dns_query(r->dns, buf_cstr(&name), RR_TXT, on_sts_txt, lk, &err) >= 0;
            buf_free(&name);
        }
    }
    struct query *q = xmalloc(sizeof(*q));
    *q = (struct query){lk, SIZE_MAX};
    int rc = 0;
    if (dns_query(r->dns, mx_of, RR_MX, on_mx, q, &rc) < 0) {
        free(q);
        fail(lk, NEXTHOP_TEMPFAIL, "4.4.3", ub_strerror(rc));
    }
}

/* One host's addresses for lk (no MX, no TLSA): an address as it is, a name looked up. */
static void lookup_host(struct lookup *lk, const char *host)
{
    add_host(lk, host, 0);
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1) {
        /* an address already (a home server given by address): no lookup */
        add_addr(&lk->res.hosts[0], strchr(host, ':') ? AF_INET6 : AF_INET, a, lk->port);
        finish(lk);
        return;
    }
    query_addrs(lk);
}

void nexthop_addrs(struct nexthop_resolver *r, const char *host, uint16_t port, nexthop_cb *cb,
                   void *arg)
{
    struct lookup *lk = lookup_new(r, host, port, cb, arg);
    buf_printf(&lk->res.hop, "host:%s:%u", host, (unsigned)port);
    lookup_host(lk, host);
}

void nexthop_home(struct nexthop_resolver *r, const char *home, uint16_t port, nexthop_cb *cb,
                  void *arg)
{
    struct lookup *lk = lookup_new(r, home, port, cb, arg);
    struct buf why = BUF_INIT;
    int org = org_home_route(r, lk, home, &why);
    lk->res.org_routed = org != 0;
    if (org < 0)
        fail(lk, NEXTHOP_TEMPFAIL, "4.4.0", buf_cstr(&why));
    else if (org > 0) {
        lk->configured = true;
        lk->port = lk->org_dest.port;
        lookup_host(lk, lk->org_dest.host);
    } else {
        buf_printf(&lk->res.hop, "host:%s:%u", home, (unsigned)port);
        lookup_host(lk, home);
    }
    buf_free(&why);
}

/* A credentials line is short; a bigger file is a mistake, not credentials. */
#define NEXTHOP_AUTH_FILE_MAX 4096

bool nexthop_relay_auth_load(const char *path, char **user_r, char **pass_r, struct buf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        buf_printf(err, "relayhost_auth_file %s: %s", path, strerror(errno));
        return false;
    }
    char line[NEXTHOP_AUTH_FILE_MAX];
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    bool too_big = n == sizeof(line) - 1 && fgetc(f) != EOF;
    fclose(f);
    line[n] = '\0';
    char *end = line + strcspn(line, "\r\n");
    *end = '\0';
    char *colon = strchr(line, ':');
    bool ok = !too_big && colon != NULL && colon != line && colon[1] != '\0';
    if (ok) {
        *user_r = xstrndup(line, (size_t)(colon - line));
        *pass_r = xstrdup(colon + 1);
    } else {
        buf_printf(err, "relayhost_auth_file %s: expected one line USER:PASSWORD", path);
    }
    explicit_bzero(line, sizeof(line));
    return ok;
}

/* ---- TXT records for other users (TLS-RPT) ---- */

struct txt_query {
    nexthop_txt_cb *cb;
    void *arg;
};

static void on_txt(void *arg, int err, struct ub_result *ur)
{
    struct txt_query *q = arg;
    const char *texts[8] = {NULL};
    char store[8][1024];
    size_t n = 0;
    bool ok = err == 0 && ur != NULL && (ur->rcode == 0 || ur->rcode == 3);
    if (ok && ur->havedata)
        for (int i = 0; ur->data[i] != NULL && n < 8; i++) {
            txt_join((const unsigned char *)ur->data[i], (size_t)ur->len[i], store[n],
                     sizeof(store[n]));
            texts[n] = store[n];
            n++;
        }
    q->cb(q->arg, ok, texts, n);
    if (ur != NULL)
        ub_resolve_free(ur);
    free(q);
}

void nexthop_txt(struct nexthop_resolver *r, const char *name, nexthop_txt_cb *cb, void *arg)
{
    struct txt_query *q = xcalloc(1, sizeof(*q));
    q->cb = cb;
    q->arg = arg;
    int err;
    if (dns_query(r->dns, name, RR_TXT, on_txt, q, &err) < 0)
        on_txt(q, err ? err : -1, NULL);
}
