/*
 * net_addr.c - is a client address inside a list of networks (mynetworks)? And the
 * local address an outgoing connection is bound to (net_addr_bind_source).
 *
 * Must never: match on a malformed network entry (it is skipped; net_addr_check_networks
 * refuses it in `wharf config check` and before wharfd starts).
 */
#include "net/net_internal.h"

#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool prefix_match(const unsigned char *a, const unsigned char *n, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, n, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xFF << (8 - rest));
    return (a[full] & mask) == (n[full] & mask);
}

/* Parses a network entry ("10.0.0.0/8", "192.0.2.7", "[::1]/128") into n (family's bytes),
 * *bits and *v6. False when it is not one. */
static bool net_parse(const char *net, unsigned char n[16], unsigned *bits, bool *v6)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *slash = strchr(net, '/');
    size_t hl = slash ? (size_t)(slash - net) : strlen(net);
    if (hl >= sizeof(host))
        return false;
    memcpy(host, net, hl);
    host[hl] = '\0';
    char *h = host;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    *v6 = strchr(h, ':') != NULL;
    unsigned maxbits = *v6 ? 128 : 32;
    if (inet_pton(*v6 ? AF_INET6 : AF_INET, h, n) != 1)
        return false;
    *bits = maxbits;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || b < 0 || b > (long)maxbits)
            return false;
        *bits = (unsigned)b;
    }
    return true;
}

static bool net_match(const char *addr, const char *net)
{
    unsigned char a[16], n[16];
    unsigned bits;
    bool v6;
    if (!net_parse(net, n, &bits, &v6) || inet_pton(v6 ? AF_INET6 : AF_INET, addr, a) != 1)
        return false;
    return prefix_match(a, n, bits);
}

int net_addr_check_networks(const struct wharf_config *cfg, struct buf *err)
{
    const struct {
        const char *name;
        const struct strlist *list;
    } lists[] = {{"mynetworks", &cfg->mynetworks},
                 {"exempt_networks", &cfg->exempt_networks},
                 {"frontend_networks", &cfg->frontend_networks}};
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        for (size_t i = 0; i < lists[l].list->n; i++) {
            unsigned char n[16];
            unsigned bits;
            bool v6;
            if (!net_parse(lists[l].list->v[i], n, &bits, &v6)) {
                buf_printf(err, "%s: \"%s\" is not a network (192.0.2.7/32, [2001:db8::]/64)",
                           lists[l].name, lists[l].list->v[i]);
                return -1;
            }
        }
    }
    return 0;
}

bool net_addr_in_networks(const char *addr, const char *const *networks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (net_match(addr, networks[i]))
            return true;
    }
    return false;
}

void net_addr_format(const struct sockaddr *sa, char *out, size_t len)
{
    snprintf(out, len, "local");
    /* Copied out, not cast: a struct sockaddr need not be aligned for the larger types. */
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof(s6));
        if (IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr)) /* a v4 client on a dual-stack socket */
            inet_ntop(AF_INET, &s6.sin6_addr.s6_addr[12], out, (socklen_t)len);
        else
            inet_ntop(AF_INET6, &s6.sin6_addr, out, (socklen_t)len);
    } else if (sa->sa_family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof(s4));
        inet_ntop(AF_INET, &s4.sin_addr, out, (socklen_t)len);
    }
}

bool net_addr_exempt(const struct wharf_config *cfg, const char *addr)
{
    /* a front-end carries many clients; its hand-over names each one */
    return net_addr_in_networks(addr, (const char *const *)cfg->mynetworks.v, cfg->mynetworks.n) ||
           net_addr_in_networks(addr, (const char *const *)cfg->exempt_networks.v,
                                cfg->exempt_networks.n) ||
           net_addr_frontend(cfg, addr);
}

bool net_addr_frontend(const struct wharf_config *cfg, const char *addr)
{
    return net_addr_in_networks(addr, (const char *const *)cfg->frontend_networks.v,
                                cfg->frontend_networks.n);
}

int net_addr_source_socket(int family, const char *const *addrs, size_t n, struct buf *why)
{
    if (n == 0)
        return -1;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        buf_printf(why, "socket: %s", strerror(errno));
        return -1;
    }
    if (net_addr_bind_source(fd, family, addrs, n, why) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool net_addr_source_list_check(const struct strlist *l, const char *option, struct buf *err)
{
    int seen4 = 0, seen6 = 0;
    for (size_t i = 0; i < l->n; i++) {
        unsigned char a[16];
        int *seen = inet_pton(AF_INET, l->v[i], a) == 1    ? &seen4
                    : inet_pton(AF_INET6, l->v[i], a) == 1 ? &seen6
                                                           : NULL;
        if (seen == NULL || (*seen)++ > 0) {
            buf_printf(err, "%s: %s is %s", option, l->v[i],
                       seen ? "a second address of its family" : "not an IP address");
            return false;
        }
    }
    return true;
}

int net_addr_bind_source(int fd, int family, const char *const *addrs, size_t n, struct buf *why)
{
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage src;
        memset(&src, 0, sizeof(src));
        struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
        socklen_t len;
        if (inet_pton(AF_INET, addrs[i], &s4->sin_addr) == 1) {
            src.ss_family = AF_INET;
            len = sizeof(*s4);
        } else if (inet_pton(AF_INET6, addrs[i], &s6->sin6_addr) == 1) {
            src.ss_family = AF_INET6;
            len = sizeof(*s6);
        } else {
            buf_printf(why, "source address %s is not an IP address", addrs[i]);
            return -1;
        }
        if (src.ss_family != family)
            continue;
        if (bind(fd, (struct sockaddr *)&src, len) != 0) {
            buf_printf(why, "bind %s: %s", addrs[i], strerror(errno));
            return -1;
        }
        return 1;
    }
    return 0;
}
