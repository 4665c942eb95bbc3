/*
 * test_nexthop.c - the next hop's pure parts: destinations ([host]:port,
 * literals, bad forms), transport_routes words with TLS policies, and MX
 * rdata (null MX, malformed names). The DNS path is tested end to end in
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
    assert_true(nexthop_mx_rdata_parse(mx, sizeof(mx), &pref, &name));
    assert_int_equal(pref, 10);
    assert_string_equal(name.data, "mx.example");
    const unsigned char null_mx[] = {0, 0, 0};
    assert_true(nexthop_mx_rdata_parse(null_mx, sizeof(null_mx), &pref, &name));
    assert_int_equal(name.len, 0);
    const unsigned char trunc[] = {0, 10, 5, 'm', 'x'};
    assert_false(nexthop_mx_rdata_parse(trunc, sizeof(trunc), &pref, &name));
    const unsigned char ptr[] = {0, 10, 0xc0, 12};
    assert_false(nexthop_mx_rdata_parse(ptr, sizeof(ptr), &pref, &name));
    const unsigned char trailing[] = {0, 10, 1, 'a', 0, 'x'};
    assert_false(nexthop_mx_rdata_parse(trailing, sizeof(trailing), &pref, &name));
    const unsigned char ctl[] = {0, 10, 2, 'a', '\n', 0};
    assert_false(nexthop_mx_rdata_parse(ctl, sizeof(ctl), &pref, &name));
    buf_free(&name);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dest),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_mx_rdata),
        cmocka_unit_test(test_relay_auth_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
