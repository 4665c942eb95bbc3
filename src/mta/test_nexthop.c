/*
 * test_nexthop.c - the next hop's pure parts: destinations ([host]:port,
 * literals, bad forms), transport_routes words with TLS policies, and MX
 * rdata (null MX, malformed names), and the MX rules of RFC 5321 5.1
 * (equal preferences shuffled, this server and the hosts below it cut, a
 * loop when this server is the best MX). The DNS path is tested end to end in
 * tests/integration/test_nexthop.py against a local DNS server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mta/nexthop.h"
#include "net/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static void test_dest(void **state)
{
    (void)state;
    struct nexthop_dest d;
    assert_true(nexthop_dest_parse("mx.example.org", &d));
    assert_string_equal(d.host, "mx.example.org");
    assert_int_equal(d.port, 25);
    assert_false(d.no_mx);
    nexthop_dest_free(&d);
    assert_true(nexthop_dest_parse("[relay.example.org]:587", &d));
    assert_true(d.no_mx && !d.is_literal);
    assert_int_equal(d.port, 587);
    nexthop_dest_free(&d);
    assert_true(nexthop_dest_parse("[::1]:2525", &d));
    assert_true(d.is_literal);
    assert_string_equal(d.host, "::1");
    nexthop_dest_free(&d);
    assert_true(nexthop_dest_parse("10.0.0.5", &d));
    assert_true(d.is_literal && d.no_mx);
    nexthop_dest_free(&d);
    const char *bad[] = {"",        ":25", "host:", "host:0",  "host:70000",
                         "host:2x", "::1", "[host", "[host]x", "[]:25"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(nexthop_dest_parse(bad[i], &d));
}

static void test_routes(void **state)
{
    (void)state;
    char *w[] = {"example.net=[10.0.0.5]:2525", "verify", "example.org=mx.example.org:25", NULL};
    struct strlist l = {w, 3};
    struct nexthop_route *r;
    size_t n;
    struct buf err = BUF_INIT;
    assert_true(nexthop_routes_parse(&l, &r, &n, &err));
    assert_int_equal(n, 2);
    assert_string_equal(r[0].domain, "example.net");
    assert_int_equal(r[0].dest.port, 2525);
    assert_true(r[0].dest.policy_set);
    assert_int_equal(r[0].dest.tls, SMTP_TLS_VERIFY);
    assert_false(r[1].dest.policy_set);
    nexthop_routes_free(r, n);

    char *bad1[] = {"verify", NULL};
    char *bad2[] = {"a=b", "sometimes", NULL};
    char *bad3[] = {"a=b:x", NULL};
    char *bad4[] = {"a=b", "may", "verify", NULL};
    char **bads[] = {bad1, bad2, bad3, bad4};
    size_t lens[] = {1, 2, 1, 3};
    for (size_t i = 0; i < 4; i++) {
        struct strlist b = {bads[i], lens[i]};
        buf_reset(&err);
        assert_false(nexthop_routes_parse(&b, &r, &n, &err));
        assert_true(err.len > 0);
    }
    buf_free(&err);
}

static void test_mx_rdata(void **state)
{
    (void)state;
    struct buf name = BUF_INIT;
    int pref;
    const unsigned char mx[] = {0, 10, 2, 'm', 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
    assert_true(dns_mx_rdata_parse(mx, sizeof(mx), &pref, &name));
    assert_int_equal(pref, 10);
    assert_string_equal(name.data, "mx.example");
    const unsigned char null_mx[] = {0, 0, 0};
    assert_true(dns_mx_rdata_parse(null_mx, sizeof(null_mx), &pref, &name));
    assert_int_equal(name.len, 0);
    const unsigned char trunc[] = {0, 10, 5, 'm', 'x'};
    assert_false(dns_mx_rdata_parse(trunc, sizeof(trunc), &pref, &name));
    const unsigned char ptr[] = {0, 10, 0xc0, 12};
    assert_false(dns_mx_rdata_parse(ptr, sizeof(ptr), &pref, &name));
    const unsigned char trailing[] = {0, 10, 1, 'a', 0, 'x'};
    assert_false(dns_mx_rdata_parse(trailing, sizeof(trailing), &pref, &name));
    const unsigned char ctl[] = {0, 10, 2, 'a', '\n', 0};
    assert_false(dns_mx_rdata_parse(ctl, sizeof(ctl), &pref, &name));
    buf_free(&name);
}

/* RFC 7672 3.1: only DANE-TA(2) and DANE-EE(3), known selectors, and
 * digests of their algorithm's size are usable for SMTP. */
static void test_tlsa_usable(void **state)
{
    (void)state;
    unsigned char rd[3 + 64] = {3, 1, 1};
    assert_true(nexthop_tlsa_usable(rd, 3 + 32));
    assert_false(nexthop_tlsa_usable(rd, 3 + 31)); /* short SHA-256 */
    rd[2] = 2;
    assert_true(nexthop_tlsa_usable(rd, 3 + 64));
    assert_false(nexthop_tlsa_usable(rd, 3 + 32));
    rd[2] = 0;
    assert_true(nexthop_tlsa_usable(rd, 3 + 40)); /* full key: any size */
    rd[0] = 2, rd[1] = 0, rd[2] = 1;
    assert_true(nexthop_tlsa_usable(rd, 3 + 32));
    rd[0] = 1; /* PKIX-EE: meaningless for MX hosts */
    assert_false(nexthop_tlsa_usable(rd, 3 + 32));
    rd[0] = 0;
    assert_false(nexthop_tlsa_usable(rd, 3 + 32));
    rd[0] = 3, rd[1] = 2; /* unknown selector */
    assert_false(nexthop_tlsa_usable(rd, 3 + 32));
    rd[1] = 1, rd[2] = 3; /* unknown matching type */
    assert_false(nexthop_tlsa_usable(rd, 3 + 32));
    assert_false(nexthop_tlsa_usable(rd, 3));
}

static void test_relay_auth_file(void **state)
{
    (void)state;
    char path[] = "/tmp/wharf-test-auth-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "relayuser:pa:ss\n", 16), 16);
    close(fd);
    char *u = NULL, *p = NULL;
    struct buf err = BUF_INIT;
    assert_true(nexthop_relay_auth_load(path, &u, &p, &err));
    assert_string_equal(u, "relayuser");
    assert_string_equal(p, "pa:ss");
    free(u);
    free(p);
    FILE *f = fopen(path, "w");
    fputs("no colon here\n", f);
    fclose(f);
    assert_false(nexthop_relay_auth_load(path, &u, &p, &err));
    assert_null(strstr(buf_cstr(&err), "no colon")); /* never echo the content */
    unlink(path);
    assert_false(nexthop_relay_auth_load(path, &u, &p, &err));
    buf_free(&err);
}

static struct nexthop_host mkhost(const char *name, int pref, const char *ip, uint16_t port)
{
    struct nexthop_host h;
    memset(&h, 0, sizeof(h));
    h.name = strdup(name);
    h.pref = pref;
    if (ip != NULL) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&h.addrs[0];
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        h.addr_lens[0] = sizeof(*s4);
        h.n_addrs = 1;
    }
    return h;
}

static void free_hosts(struct nexthop_host *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(h[i].name);
}

static void test_mx_order_shuffles_equal_preferences(void **state)
{
    (void)state;
    /* over many runs every one of the three equal hosts comes first, and the
     * order of preferences never changes */
    bool first_seen[3] = {false, false, false};
    for (int run = 0; run < 200; run++) {
        struct nexthop_host h[5] = {mkhost("c", 20, NULL, 0), mkhost("e0", 10, NULL, 0),
                                    mkhost("z", 30, NULL, 0), mkhost("e1", 10, NULL, 0),
                                    mkhost("e2", 10, NULL, 0)};
        nexthop_mx_order(h, 5);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(h[i].pref, 10);
            assert_int_equal(h[i].name[0], 'e');
        }
        assert_string_equal(h[3].name, "c");
        assert_string_equal(h[4].name, "z");
        first_seen[h[0].name[1] - '0'] = true;
        free_hosts(h, 5);
    }
    assert_true(first_seen[0] && first_seen[1] && first_seen[2]);
}

static void test_mx_self_by_name_and_address(void **state)
{
    (void)state;
    char *listen_v[] = {"127.0.0.2:2525", "*:25", "[::1]:587"};
    struct strlist listen = {listen_v, 3};
    struct sockaddr_storage local[1];
    memset(local, 0, sizeof(local));
    struct sockaddr_in *l4 = (struct sockaddr_in *)&local[0];
    l4->sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &l4->sin_addr);
    struct nexthop_self self = {"mail.example.org", &listen, local, 1};

    struct nexthop_host h = mkhost("MAIL.example.ORG", 10, NULL, 0);
    assert_true(nexthop_host_is_self(&h, &self)); /* myhostname, any case */
    free(h.name);
    h = mkhost("mx.other", 10, "127.0.0.2", 2525);
    assert_true(nexthop_host_is_self(&h, &self)); /* a listen address and port */
    free(h.name);
    h = mkhost("mx.other", 10, "127.0.0.2", 26);
    assert_false(nexthop_host_is_self(&h, &self)); /* same address, another port: a peer */
    free(h.name);
    h = mkhost("mx.other", 10, "192.0.2.7", 25);
    assert_true(nexthop_host_is_self(&h, &self)); /* "*:25" and an interface address */
    free(h.name);
    h = mkhost("mx.other", 10, "127.8.9.10", 25);
    assert_true(nexthop_host_is_self(&h, &self)); /* "*:25" answers on all of 127/8 */
    free(h.name);
    h = mkhost("mx.other", 10, "198.51.100.1", 25);
    assert_false(nexthop_host_is_self(&h, &self));
    free(h.name);
}

static void test_mx_cut_self(void **state)
{
    (void)state;
    char *listen_v[] = {"192.0.2.1:25"};
    struct strlist listen = {listen_v, 1};
    struct nexthop_self self = {"mx2.example.org", &listen, NULL, 0};
    bool is_self;

    /* this server ranks second: the better host stays, its equals and the worse go */
    struct nexthop_host h[4] = {
        mkhost("mx1", 10, "198.51.100.1", 25), mkhost("mx2.example.org", 20, NULL, 0),
        mkhost("mx2b", 20, "198.51.100.2", 25), mkhost("mx3", 30, "198.51.100.3", 25)};
    assert_int_equal(nexthop_mx_cut_self(h, 4, &self, &is_self), 1);
    assert_true(is_self);
    assert_string_equal(h[0].name, "mx1");
    assert_null(h[1].name);
    free_hosts(h, 1);

    /* an equal host listed before this server goes as well */
    struct nexthop_host e[2] = {mkhost("mx2b", 20, "198.51.100.2", 25),
                                mkhost("mx-self", 20, "192.0.2.1", 25)};
    assert_int_equal(nexthop_mx_cut_self(e, 2, &self, &is_self), 0);
    assert_true(is_self); /* nothing better than this server: a loop (5.4.6) */

    /* the best MX is this server: a loop */
    struct nexthop_host b[2] = {mkhost("mx2.example.org", 5, NULL, 0),
                                mkhost("mx9", 50, "198.51.100.9", 25)};
    assert_int_equal(nexthop_mx_cut_self(b, 2, &self, &is_self), 0);
    assert_true(is_self);

    /* not listed: all stay */
    struct nexthop_host o[2] = {mkhost("mx1", 10, "198.51.100.1", 25),
                                mkhost("mx3", 30, "198.51.100.3", 25)};
    assert_int_equal(nexthop_mx_cut_self(o, 2, &self, &is_self), 2);
    assert_false(is_self);
    free_hosts(o, 2);
}

/* The Wharf-Route field's items (doc/routing.md): org, group and the route id. */
static void test_route_trace(void **state)
{
    (void)state;
    struct slice v = slice_from_cstr(" org=acme; group=rg-a ; id=00ab.a2;x=1");
    struct slice org, group;
    assert_true(nexthop_route_trace_parse(v, &org, &group));
    assert_true(slice_eq_cstr_nocase(org, "acme") && slice_eq_cstr_nocase(group, "rg-a"));
    assert_true(slice_eq_cstr_nocase(nexthop_route_trace_item(v, "ID"), "00ab.a2"));
    /* the field inside a group: an id, no group, so no loop check applies */
    v = slice_from_cstr("org=acme; id=00ab.a2");
    assert_false(nexthop_route_trace_parse(v, &org, &group));
    assert_true(slice_eq_cstr_nocase(nexthop_route_trace_item(v, "id"), "00ab.a2"));
    assert_int_equal(nexthop_route_trace_item(slice_from_cstr("org=acme;id"), "id").len, 0);
}

/* The content a route id is bound to (doc/routing.md, "Exactly once"): the same at every
 * hop (fields hops add are left out), another for a message that reuses the id with other
 * author fields or another body. */
static bool same_content(const char *a, const char *b)
{
    unsigned char x[32], y[32];
    nexthop_route_id_content(slice_from_cstr(a), x);
    nexthop_route_id_content(slice_from_cstr(b), y);
    return memcmp(x, y, sizeof(x)) == 0;
}

static void test_route_id_content(void **state)
{
    (void)state;
    const char *msg = "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n"
                      "Message-ID: <1@x.test>\r\n\r\nbody\r\n";
    /* a hop's fields on top: the same content */
    assert_true(same_content(msg, "Received: from a1 by b1\r\n\tfolded\r\n"
                                  "Wharf-Route: org=acme; group=rg-a; id=1.a1.00\r\n"
                                  "ARC-Seal: i=1; cv=none\r\nDKIM-Signature: v=1\r\n"
                                  "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n"
                                  "Message-ID: <1@x.test>\r\n\r\nbody\r\n"));
    assert_true(same_content(msg, "from: a@x.test\r\nTO: b@y.test\r\nSubject: hi\r\n"
                                  "Message-ID: <1@x.test>\r\n\r\nbody\r\n"));
    /* a replayed id on another message: not the same */
    assert_false(same_content(msg, "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n"
                                   "Message-ID: <1@x.test>\r\n\r\nother body\r\n"));
    assert_false(same_content(msg, "From: a@x.test\r\nTo: b@y.test\r\nSubject: pay now\r\n"
                                   "Message-ID: <1@x.test>\r\n\r\nbody\r\n"));
    assert_false(same_content(msg, "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n"
                                   "Message-ID: <2@x.test>\r\n\r\nbody\r\n"));
    assert_false(same_content(msg, "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n"
                                   "Message-ID: <1@x.test>\r\nFrom: boss@x.test\r\n\r\n"
                                   "body\r\n"));
    assert_false(same_content(msg, "From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n"
                                   "Message-ID: <1@x.test>\r\nContent-Type: text/html\r\n"
                                   "\r\nbody\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dest),
        cmocka_unit_test(test_route_trace),
        cmocka_unit_test(test_route_id_content),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_mx_rdata),
        cmocka_unit_test(test_tlsa_usable),
        cmocka_unit_test(test_relay_auth_file),
        cmocka_unit_test(test_mx_order_shuffles_equal_preferences),
        cmocka_unit_test(test_mx_self_by_name_and_address),
        cmocka_unit_test(test_mx_cut_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
