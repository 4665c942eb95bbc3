/*
 * fuzz_net_addr.c - libFuzzer target for the network entries of mynetworks,
 * exempt_networks and frontend_networks (net_addr.c). The input is an entry,
 * a NUL, then an address. Must hold: an entry that `wharf config check`
 * refuses matches no address; an entry that matches the address is accepted;
 * an address given as its own entry (bare, /32 or /128, or [v6]) matches
 * itself; shortening a matching prefix never loses the match.
 */
#include "base/config.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool accepted(const char *entry)
{
    char *v[2] = {(char *)entry, NULL};
    struct wharf_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.mynetworks.v = v;
    cfg.mynetworks.n = 1;
    struct buf err = BUF_INIT;
    int r = net_addr_check_networks(&cfg, &err);
    if ((r == 0) != (err.len == 0))
        abort(); /* a refusal says why, an acceptance says nothing */
    buf_free(&err);
    return r == 0;
}

static bool matches(const char *addr, const char *entry)
{
    const char *nets[1] = {entry};
    return net_addr_in_networks(addr, nets, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 200)
        return 0;
    char *in = malloc(size + 2);
    memcpy(in, data, size);
    in[size] = in[size + 1] = '\0';
    const char *entry = in;
    const char *addr = in + strlen(in) + (strlen(in) < size ? 1 : 0);
    bool ok = accepted(entry);
    bool m = matches(addr, entry);
    if (m && !ok)
        abort();
    if (!ok && (matches("0.0.0.0", entry) || matches("::", entry) || matches("127.0.0.1", entry)))
        abort();
    /* a real address is its own network */
    unsigned char bin[16];
    bool v4 = inet_pton(AF_INET, addr, bin) == 1, v6 = !v4 && inet_pton(AF_INET6, addr, bin) == 1;
    if (v4 || v6) {
        char e[INET6_ADDRSTRLEN + 8];
        snprintf(e, sizeof(e), v6 ? "[%s]" : "%s", addr);
        if (!accepted(e) || !matches(addr, e))
            abort();
        snprintf(e, sizeof(e), v6 ? "[%s]/128" : "%s/32", addr);
        if (!accepted(e) || !matches(addr, e))
            abort();
    }
    /* a matching prefix stays matching when shortened */
    const char *slash = strrchr(entry, '/');
    if (m && slash != NULL && slash[1] != '\0') {
        long bits = strtol(slash + 1, NULL, 10);
        if (bits > 0) {
            char e[256];
            snprintf(e, sizeof(e), "%.*s/%ld", (int)(slash - entry), entry, bits - 1);
            if (!matches(addr, e))
                abort();
        }
    }
    free(in);
    return 0;
}
