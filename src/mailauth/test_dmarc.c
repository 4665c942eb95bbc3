/*
 * test_dmarc.c - DMARC (RFC 7489): record parsing, organizational domains
 * from Debian's Public Suffix List, alignment (relaxed and strict), policy
 * discovery at the organizational domain with sp=, pct=, and the whole
 * inbound check with its Authentication-Results field and the removal of
 * forged ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "mailauth/dmarc.h"
#include "mailauth/mailauth.h"
#include "mailauth/test_zone.h"

#include <string.h>

#define PSL_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

static const struct zone_rr zone[] = {
    {"_dmarc.example.com", AUTHDNS_TXT, "v=DMARC1; p=reject; sp=quarantine; adkim=s"},
    {"_dmarc.strict.test", AUTHDNS_TXT, "v=DMARC1; p=reject; aspf=s; pct=0"},
    {"_dmarc.broken.test", AUTHDNS_TXT, "SERVFAIL"},
    {"_dmarc.two.test", AUTHDNS_TXT, "v=DMARC1; p=reject"},
    {"_dmarc.two.test", AUTHDNS_TXT, "v=DMARC1; p=none"},
    {"example.com", AUTHDNS_TXT, "v=spf1 ip4:192.0.2.0/24 -all"},
    {NULL, 0, NULL},
};

static void test_record(void **state)
{
    (void)state;
    struct dmarc_record r;
    assert_true(dmarc_record_parse(slice_from_cstr("v=DMARC1; p=quarantine; pct=50; adkim=s"), &r));
    assert_int_equal(r.p, DMARC_P_QUARANTINE);
    assert_int_equal(r.sp, DMARC_P_QUARANTINE);
    assert_int_equal(r.pct, 50);
    assert_true(r.adkim_strict);
    assert_false(r.aspf_strict);
    assert_false(dmarc_record_parse(slice_from_cstr("p=reject; v=DMARC1"), &r)); /* v= first */
    assert_false(dmarc_record_parse(slice_from_cstr("v=DMARC1; p=maybe"), &r));
    assert_false(dmarc_record_parse(slice_from_cstr("v=DMARC1"), &r));
    assert_true(dmarc_record_parse(slice_from_cstr("v=DMARC1; p=none; pct=300"), &r));
    assert_int_equal(r.pct, 100); /* out of range: the default */
}

static void test_org_domain(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    struct psl *l = psl_load(PSL_PATH, &err);
    assert_non_null(l);
    static const char *const cases[][2] = {
        {"mail.example.com", "example.com"},          {"example.com", "example.com"},
        {"a.b.example.co.uk", "example.co.uk"},       {"com", "com"},
        {"www.city.kawasaki.jp", "city.kawasaki.jp"}, /* !city.kawasaki.jp under *.kawasaki.jp */
        {"x.y.foo.kawasaki.jp", "y.foo.kawasaki.jp"}, {"a.b.test", "b.test"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out = BUF_INIT;
        psl_org_domain(l, cases[i][0], &out);
        assert_string_equal(buf_cstr(&out), cases[i][1]);
        buf_free(&out);
    }
    psl_free(l);
    buf_free(&err);
}

static struct dmarc_outcome dmarc(const struct psl *l, const char *from, bool spf_pass,
                                  const char *spf_domain, const char *dkim_d, unsigned sample)
{
    struct dmarc_input in = {
        .from_domain = from, .spf_pass = spf_pass, .spf_domain = spf_domain, .sample = sample};
    if (dkim_d)
        in.dkim_pass[in.n_dkim_pass++] = dkim_d;
    struct authdns d;
    authdns_init(&d);
    struct dmarc_outcome out;
    for (int i = 0; i < 5 && !(dmarc_check(&in, l, &d, &out), out.done); i++)
        zone_answer(&d, zone);
    assert_true(out.done);
    authdns_free(&d);
    return out;
}

static void test_alignment_and_policy(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    struct psl *l = psl_load(PSL_PATH, &err);
    assert_non_null(l);
    struct dmarc_outcome o;
    /* relaxed SPF alignment: the bounce domain shares the organizational domain */
    o = dmarc(l, "example.com", true, "bounces.example.com", NULL, 0);
    assert_int_equal(o.result, DMARC_PASS);
    /* adkim=s: a subdomain signature does not align, an exact one does */
    o = dmarc(l, "example.com", false, "other.test", "mail.example.com", 0);
    assert_int_equal(o.result, DMARC_FAIL);
    assert_int_equal(o.policy, DMARC_P_REJECT);
    o = dmarc(l, "example.com", false, "other.test", "example.com", 0);
    assert_int_equal(o.result, DMARC_PASS);
    /* a subdomain without a record of its own: the organizational record's sp= */
    o = dmarc(l, "news.example.com", false, "other.test", NULL, 0);
    assert_int_equal(o.result, DMARC_FAIL);
    assert_int_equal(o.policy, DMARC_P_QUARANTINE);
    /* pct=0: outside the sample, reject becomes quarantine */
    o = dmarc(l, "strict.test", false, "x.test", NULL, 50);
    assert_int_equal(o.result, DMARC_FAIL);
    assert_int_equal(o.policy, DMARC_P_QUARANTINE);
    /* aspf=s */
    o = dmarc(l, "strict.test", true, "a.strict.test", NULL, 0);
    assert_int_equal(o.result, DMARC_FAIL);
    o = dmarc(l, "nodmarc.test", false, "x.test", NULL, 0);
    assert_int_equal(o.result, DMARC_NONE);
    o = dmarc(l, "broken.test", true, "broken.test", NULL, 0);
    assert_int_equal(o.result, DMARC_TEMPERROR);
    o = dmarc(l, "two.test", false, "x.test", NULL, 0);
    assert_int_equal(o.result, DMARC_NONE); /* two records: as if none */
    psl_free(l);
    buf_free(&err);
}

static void test_whole_check_and_header(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    struct psl *l = psl_load(PSL_PATH, &err);
    static const char msg[] =
        "Authentication-Results: mx.test; dkim=pass; spf=pass; dmarc=pass\r\n"
        "Authentication-Results: (comment) MX.TEST;\r\n\tdmarc=pass\r\n"
        "Authentication-Results: other.example; spf=fail\r\n"
        "From: Joe <joe@example.com>\r\nTo: x@mx.test\r\nSubject: hi\r\n\r\nbody\r\n";
    struct mailauth_input in = {.message = slice_from_cstr(msg),
                                .client_ip = "198.51.100.1",
                                .helo = "evil.example",
                                .sender = "joe@example.com",
                                .receiver = "mx.test",
                                .now = 1700000000};
    struct authdns d;
    authdns_init(&d);
    struct mailauth_result res;
    for (int i = 0; i < 10 && !(mailauth_check(&in, l, &d, &res), res.done); i++)
        zone_answer(&d, zone);
    assert_true(res.done);
    assert_int_equal(res.spf.result, SPF_FAIL);
    assert_int_equal(res.n_dkim, 0);
    assert_int_equal(res.dmarc.result, DMARC_FAIL);
    assert_int_equal(res.dmarc.policy, DMARC_P_REJECT);
    struct buf ar = BUF_INIT;
    mailauth_ar_header(&in, &res, "mx.test", &ar);
    assert_string_equal(buf_cstr(&ar),
                        "Authentication-Results: mx.test;\r\n\tdkim=none;\r\n"
                        "\tspf=fail smtp.mailfrom=joe@example.com;\r\n"
                        "\tarc=none;\r\n"
                        "\tdmarc=fail (p=reject dis=reject) header.from=example.com\r\n");
    struct buf out = BUF_INIT;
    assert_int_equal(mailauth_strip_ours(in.message, "mx.test", &out), 2);
    assert_string_equal(
        buf_cstr(&out),
        "Authentication-Results: other.example; spf=fail\r\n"
        "From: Joe <joe@example.com>\r\nTo: x@mx.test\r\nSubject: hi\r\n\r\nbody\r\n");
    buf_free(&out);
    buf_free(&ar);
    authdns_free(&d);
    psl_free(l);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_org_domain),
        cmocka_unit_test(test_alignment_and_policy),
        cmocka_unit_test(test_whole_check_and_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
