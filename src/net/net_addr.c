/*
 * net_addr.c - is a client address inside a list of networks (mynetworks)? And the
 * local address an outgoing connection is bound to (net_addr_bind_source).
 *
 * Must never: match on a malformed network entry (it is skipped and logged once).
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

static bool net_match(const char *addr, const char *net)
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
    unsigned char a[16], n[16];
    bool v6 = strchr(h, ':') != NULL;
    int family = v6 ? AF_INET6 : AF_INET;
    unsigned maxbits = v6 ? 128 : 32;
    if (inet_pton(family, h, n) != 1 || inet_pton(family, addr, a) != 1)
        return false;
    unsigned bits = maxbits;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (*end != '\0' || b < 0 || b > (long)maxbits)
            return false;
        bits = (unsigned)b;
    }
    return prefix_match(a, n, bits);
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
