/*
 * dns.c - libunbound on a libevent loop (see dns.h).
 *
 * Must never call a blocking resolver function.
 */
#include "net/dns.h"

#include "base/alloc.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct dns_resolver {
    struct ub_ctx *ub;
    struct event *ev;
};

static void on_fd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dns_resolver *r = arg;
    ub_process(r->ub);
}

struct dns_resolver *dns_resolver_new(struct event_base *base, const char *server,
                                      const char *trust_anchors, struct buf *err)
{
    struct dns_resolver *r = xcalloc(1, sizeof(*r));
    r->ub = ub_ctx_create();
    if (r->ub == NULL) {
        buf_printf(err, "cannot create the DNS resolver");
        free(r);
        return NULL;
    }
    /* order matters: zone_add finalises the context */
    int rc = ub_ctx_async(r->ub, 1);
    if (rc == UB_NOERROR && trust_anchors != NULL && trust_anchors[0] != '\0')
        rc = ub_ctx_add_ta_file(r->ub, trust_anchors);
    if (rc == UB_NOERROR && server != NULL && server[0] != '\0') {
        rc = ub_ctx_set_fwd(r->ub, server);
        /* the configured resolver answers for every name, the RFC 6761 test
         * domain included (libunbound would answer NXDOMAIN for it itself) */
        if (rc == UB_NOERROR)
            rc = ub_ctx_zone_add(r->ub, "test.", "transparent");
    } else if (rc == UB_NOERROR) {
        rc = ub_ctx_resolvconf(r->ub, NULL);
    }
    if (rc != UB_NOERROR) {
        buf_printf(err, "DNS resolver setup (dns_resolver \"%s\", trust anchors \"%s\"): %s",
                   server ? server : "", trust_anchors ? trust_anchors : "", ub_strerror(rc));
        dns_resolver_free(r);
        return NULL;
    }
    r->ev = event_new(base, ub_fd(r->ub), EV_READ | EV_PERSIST, on_fd, r);
    event_add(r->ev, NULL);
    return r;
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (r == NULL)
        return;
    if (r->ev)
        event_free(r->ev);
    ub_ctx_delete(r->ub); /* cancels the queries in flight */
    free(r);
}

int dns_query(struct dns_resolver *r, const char *name, int rrtype, ub_callback_type cb, void *arg,
              int *err_r)
{
    int id = -1;
    int rc = ub_resolve_async(r->ub, name, rrtype, 1 /* IN */, arg, cb, &id);
    if (rc != UB_NOERROR) {
        *err_r = rc;
        return -1;
    }
    return id;
}

void dns_cancel(struct dns_resolver *r, int id)
{
    ub_cancel(r->ub, id);
}

struct dns_addr {
    struct dns_resolver *r;
    char *host;
    unsigned port;
    int id;
    bool tried_aaaa;
    dns_addr_cb *cb;
    void *arg;
};

static void addr_answer(void *arg, int err, struct ub_result *res);

static bool addr_query(struct dns_addr *q, int rrtype, struct buf *err)
{
    int uerr = 0;
    q->id = dns_query(q->r, q->host, rrtype, addr_answer, q, &uerr);
    if (q->id < 0)
        buf_printf(err, "cannot look up %s: %s", q->host, ub_strerror(uerr));
    return q->id >= 0;
}

static void addr_done(struct dns_addr *q, const struct sockaddr *sa, socklen_t len, const char *why)
{
    dns_addr_cb *cb = q->cb;
    void *arg = q->arg;
    free(q->host);
    free(q);
    cb(arg, sa, len, why);
}

/* The A answer, else the AAAA answer: the first address. */
static void addr_answer(void *arg, int err, struct ub_result *res)
{
    struct dns_addr *q = arg;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len = 0;
    bool temp = err != 0 || (res != NULL && res->rcode == 2); /* SERVFAIL */
    if (err == 0 && res != NULL && res->havedata && !res->bogus) {
        if (res->qtype == 1 && res->len[0] == 4) {
            struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
            in4->sin_family = AF_INET;
            in4->sin_port = htons((uint16_t)q->port);
            memcpy(&in4->sin_addr, res->data[0], 4);
            len = sizeof(*in4);
        } else if (res->qtype == 28 && res->len[0] == 16) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)q->port);
            memcpy(&in6->sin6_addr, res->data[0], 16);
            len = sizeof(*in6);
        }
    }
    if (res != NULL)
        ub_resolve_free(res);
    struct buf why = BUF_INIT;
    if (len == 0 && !q->tried_aaaa && !temp) {
        q->tried_aaaa = true;
        if (!addr_query(q, 28, &why))
            addr_done(q, NULL, 0, buf_cstr(&why));
        buf_free(&why);
        return;
    }
    if (len == 0)
        buf_printf(&why, "%s: %s", q->host, temp ? "the DNS lookup failed" : "no address in DNS");
    addr_done(q, len ? (const struct sockaddr *)&ss : NULL, len, buf_cstr(&why));
    buf_free(&why);
}

struct dns_addr *dns_addr_lookup(struct dns_resolver *r, const char *host, unsigned port,
                                 dns_addr_cb *cb, void *arg, struct buf *err)
{
    struct dns_addr *q = xcalloc(1, sizeof(*q));
    *q = (struct dns_addr){.r = r, .host = xstrdup(host), .port = port, .cb = cb, .arg = arg};
    if (!addr_query(q, 1, err)) {
        free(q->host);
        free(q);
        return NULL;
    }
    return q;
}

void dns_addr_cancel(struct dns_addr *q)
{
    if (q == NULL)
        return;
    dns_cancel(q->r, q->id);
    free(q->host);
    free(q);
}

socklen_t dns_addr_literal(const char *host, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return sizeof(*in4);
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return sizeof(*in6);
    }
    return 0;
}

bool dns_host_name_ok(const char *host)
{
    size_t n = strlen(host);
    if (n == 0 || n > 253 || host[0] == '.' || host[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

bool dns_name_parse(const unsigned char *rd, size_t len, size_t *used_r, struct buf *name_r)
{
    size_t i = 0;
    buf_reset(name_r);
    while (i < len) {
        size_t l = rd[i++];
        if (l == 0) {
            *used_r = i;
            return name_r->len <= 253;
        }
        if (l > 63 || i + l > len)
            return false; /* compression pointers never appear in libunbound's rdata */
        if (name_r->len > 0)
            buf_append_byte(name_r, '.');
        for (size_t k = 0; k < l; k++) {
            unsigned char c = rd[i + k];
            if (c <= ' ' || c >= 0x7f || c == '.')
                return false;
        }
        buf_append(name_r, rd + i, l);
        i += l;
    }
    return false;
}

bool dns_mx_rdata_parse(const unsigned char *rd, size_t len, int *pref_r, struct buf *name_r)
{
    if (len < 3)
        return false;
    *pref_r = (rd[0] << 8) | rd[1];
    size_t used;
    return dns_name_parse(rd + 2, len - 2, &used, name_r) && used == len - 2;
}

void dns_reverse_name(int family, const uint8_t *addr, const char *zone, struct buf *out)
{
    if (family == AF_INET) {
        buf_printf(out, "%u.%u.%u.%u.%s", addr[3], addr[2], addr[1], addr[0],
                   zone ? zone : "in-addr.arpa");
        return;
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--)
        buf_printf(out, "%c.%c.", hex[addr[i] & 15], hex[addr[i] >> 4]);
    buf_append_cstr(out, zone ? zone : "ip6.arpa");
}
