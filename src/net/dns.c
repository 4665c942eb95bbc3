/*
 * dns.c - libunbound on a libevent loop (see dns.h).
 *
 * Must never call a blocking resolver function.
 */
#include "net/dns.h"

#include "base/alloc.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <stdlib.h>

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
