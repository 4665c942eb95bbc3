/*
 * nexthop_tool.c - a test helper: prints the next hop of each DOMAIN as the
 * mta would choose it, for tests/integration/test_nexthop.py (which points
 * dns_resolver at a DNS server of its own). Not installed; never connects.
 *
 * usage: nexthop_tool [-o name=value]... DOMAIN...
 * output per domain: "DOMAIN ok|tempfail|permfail ENH tls=P auth=A REASON",
 * then "  host NAME PREF ADDR PORT dane=none|verify|encrypt" per address.
 */
#include "base/config.h"
#include "mta/nexthop.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

static int pending;
static struct event_base *base;

static void on_hop(const char *domain, const struct nexthop_result *res, void *arg)
{
    static const char *const st[] = {"ok", "tempfail", "permfail"};
    static const char *const pol[] = {"none", "may", "require", "verify", "dane", "dane-only"};
    static const char *const dane[] = {"none", "verify", "encrypt"};
    printf("%s %s %s tls=%s auth=%d %s\n", domain, st[res->status], res->enh[0] ? res->enh : "-",
           pol[res->tls], res->relay_auth, res->reason.data ? res->reason.data : "");
    for (size_t i = 0; i < res->n_hosts; i++) {
        const struct nexthop_host *h = &res->hosts[i];
        for (size_t k = 0; k < h->n_addrs; k++) {
            char a[INET6_ADDRSTRLEN] = "";
            int port;
            if (h->addrs[k].ss_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *)&h->addrs[k];
                inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
                port = ntohs(s4->sin_port);
            } else {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&h->addrs[k];
                inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
                port = ntohs(s6->sin6_port);
            }
            printf("  host %s %d %s %d dane=%s\n", h->name, h->pref, a, port, dane[h->dane]);
        }
    }
    if (--pending == 0)
        event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
    char *assign[64];
    size_t n_assign = 0;
    int opt;
    while ((opt = getopt(argc, argv, "o:")) != -1) {
        if (opt != 'o' || n_assign == 64)
            return 64;
        assign[n_assign++] = optarg;
    }
    struct wharf_config cfg;
    struct buf err = BUF_INIT;
    if (config_read(&cfg, NULL, assign, n_assign, &err) != 0) {
        fprintf(stderr, "config: %s\n", buf_cstr(&err));
        return 78;
    }
    base = event_base_new();
    struct nexthop_resolver *r = nexthop_resolver_new(base, &cfg, &err);
    if (r == NULL) {
        fprintf(stderr, "%s\n", buf_cstr(&err));
        return 78;
    }
    for (int i = optind; i < argc; i++) {
        pending++;
        nexthop_lookup(r, argv[i], on_hop, NULL);
    }
    if (pending > 0)
        event_base_dispatch(base);
    nexthop_resolver_free(r);
    event_base_free(base);
    config_free(&cfg);
    buf_free(&err);
    return 0;
}
