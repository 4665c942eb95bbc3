/*
 * test_tlsrpt.c - unit tests of the TLS-RPT record parser (RFC 8460 3):
 * mailto: and https: rua URIs, and the ones it must skip.
 */
#include "mta/mta_tlsrpt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void test_mailto_and_https(void **state)
{
    (void)state;
    struct mta_tlsrpt_rua r[4];
    size_t n;
    assert_true(mta_tlsrpt_txt_parse("v=TLSRPTv1; rua=mailto:tls%2Breports@example.net?subject=a,"
                                     "https://reports.example.net:8443/v1/tlsrpt?k=1",
                                     r, 4, &n));
    assert_int_equal(n, 2);
    assert_false(r[0].https);
    assert_string_equal(r[0].to, "tls+reports@example.net");
    assert_true(r[1].https);
    assert_string_equal(r[1].host, "reports.example.net");
    assert_int_equal(r[1].port, 8443);
    assert_string_equal(r[1].path, "/v1/tlsrpt?k=1");
    /* the default port and path */
    assert_true(mta_tlsrpt_txt_parse("v=TLSRPTv1;rua=HTTPS://r.example", r, 4, &n));
    assert_int_equal(n, 1);
    assert_int_equal(r[0].port, 443);
    assert_string_equal(r[0].path, "/");
    assert_true(mta_tlsrpt_txt_parse("v=TLSRPTv1;rua=https://r.example?x", r, 4, &n));
    assert_int_equal(n, 1);
    assert_string_equal(r[0].path, "/?x");
}

static void test_skipped(void **state)
{
    (void)state;
    struct mta_tlsrpt_rua r[4];
    size_t n;
    /* userinfo, an IP literal in brackets, no host, bad ports, http:, a
     * control character in the path: each skipped, the record still valid */
    const char *bad[] = {"https://u@r.example/", "https://[::1]/",           "https:///x",
                         "https://r.example:0/", "https://r.example:65536/", "https://r.example:/",
                         "http://r.example/",    "https://r.example/a\x01",  "https:r.example",
                         "https://-r.example/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char txt[256];
        snprintf(txt, sizeof(txt), "v=TLSRPTv1; rua=%s", bad[i]);
        assert_true(mta_tlsrpt_txt_parse(txt, r, 4, &n));
        if (n != 0)
            fail_msg("%s taken", bad[i]);
    }
    /* at most max */
    assert_true(mta_tlsrpt_txt_parse("v=TLSRPTv1; rua=https://a.example,https://b.example,"
                                     "https://c.example",
                                     r, 2, &n));
    assert_int_equal(n, 2);
    assert_string_equal(r[1].host, "b.example");
    /* not a TLSRPTv1 record */
    assert_false(mta_tlsrpt_txt_parse("v=TLSRPTv2; rua=https://a.example", r, 4, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mailto_and_https),
        cmocka_unit_test(test_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
