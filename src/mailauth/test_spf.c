/*
 * test_spf.c - SPF (RFC 7208) against the examples of its appendix A and
 * section 7.4 (macros), and its limits: 10 DNS-querying terms (include
 * loops), 2 void lookups, syntax errors, DNS failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "mailauth/spf.h"
#include "mailauth/test_zone.h"

#include <stdio.h>

/* RFC 7208 appendix A, with the record under test at example.com. */
static struct zone_rr zone[64] = {
    {"example.com", AUTHDNS_A, "192.0.2.10"},
    {"example.com", AUTHDNS_A, "192.0.2.11"},
    {"amy.example.com", AUTHDNS_A, "192.0.2.65"},
    {"bob.example.com", AUTHDNS_A, "192.0.2.66"},
    {"mail-a.example.com", AUTHDNS_A, "192.0.2.129"},
    {"mail-b.example.com", AUTHDNS_A, "192.0.2.130"},
    {"example.com", AUTHDNS_MX, "10 mail-a.example.com"},
    {"example.com", AUTHDNS_MX, "20 mail-b.example.com"},
    {"example.org", AUTHDNS_MX, "10 mail-c.example.org"},
    {"mail-c.example.org", AUTHDNS_A, "192.0.2.140"},
    {"10.2.0.192.in-addr.arpa", AUTHDNS_PTR, "example.com"},
    {"65.2.0.192.in-addr.arpa", AUTHDNS_PTR, "amy.example.com"},
    {"loop1.test", AUTHDNS_TXT, "v=spf1 include:loop2.test -all"},
    {"loop2.test", AUTHDNS_TXT, "v=spf1 include:loop1.test -all"},
    {"two.test", AUTHDNS_TXT, "v=spf1 -all"},
    {"two.test", AUTHDNS_TXT, "v=spf1 +all"},
    {"broken.test", AUTHDNS_TXT, "SERVFAIL"},
    {"soft.test", AUTHDNS_TXT, "v=spf1 ~all"},
    {"neutral.test", AUTHDNS_TXT, "v=spf1 ?all"},
    {"redir.test", AUTHDNS_TXT, "v=spf1 redirect=example.com"},
    {"nospf.test", AUTHDNS_TXT, "some other text"},
    {"c1.test", AUTHDNS_TXT, "v=spf1 include:c2.test -all"},
    {"c2.test", AUTHDNS_TXT, "v=spf1 include:c3.test -all"},
    {"c3.test", AUTHDNS_TXT, "v=spf1 include:c4.test -all"},
    {"c4.test", AUTHDNS_TXT, "v=spf1 include:c5.test -all"},
    {"c5.test", AUTHDNS_TXT, "v=spf1 include:c6.test -all"},
    {"c6.test", AUTHDNS_TXT, "v=spf1 include:c7.test -all"},
    {"c7.test", AUTHDNS_TXT, "v=spf1 include:c8.test -all"},
    {"c8.test", AUTHDNS_TXT, "v=spf1 include:c9.test -all"},
    {"c9.test", AUTHDNS_TXT, "v=spf1 include:c10.test -all"},
    {"c10.test", AUTHDNS_TXT, "v=spf1 include:c11.test -all"},
    {"c11.test", AUTHDNS_TXT, "v=spf1 +all"},
    {"example.com", AUTHDNS_TXT, NULL}, /* the record under test: slot 32 */
    {NULL, 0, NULL},
};
#define RECORD_SLOT 32

static enum spf_result run(const char *record, const char *ip, const char *sender,
                           struct authdns *d)
{
    zone[RECORD_SLOT].val = record ? record : "v=spf1 mx -all";
    zone[RECORD_SLOT].type = AUTHDNS_TXT;
    zone[RECORD_SLOT].name = "example.com";
    struct spf_input in = {.helo = "mx.example.net", .sender = sender, .receiver = "mx.test"};
    assert_true(spf_ip_parse(ip, &in.ip));
    struct spf_outcome out;
    authdns_init(d);
    for (int round = 0; round < 300; round++) {
        spf_check(&in, d, &out);
        if (out.done)
            return out.result;
        assert_true(zone_answer(d, zone) > 0); /* progress, or the check is stuck */
    }
    fail_msg("no result after 300 rounds");
    return SPF_NONE;
}

static enum spf_result check(const char *record, const char *ip)
{
    struct authdns d;
    enum spf_result r = run(record, ip, "user@example.com", &d);
    authdns_free(&d);
    return r;
}

static enum spf_result check_domain(const char *domain, const char *ip)
{
    struct authdns d;
    char sender[300];
    snprintf(sender, sizeof(sender), "user@%s", domain);
    enum spf_result r = run(NULL, ip, sender, &d);
    authdns_free(&d);
    return r;
}

static void test_appendix_a(void **state)
{
    (void)state;
    assert_int_equal(check("v=spf1 +all", "192.0.2.10"), SPF_PASS);
    assert_int_equal(check("v=spf1 a -all", "192.0.2.10"), SPF_PASS);
    assert_int_equal(check("v=spf1 a -all", "192.0.2.65"), SPF_FAIL);
    assert_int_equal(check("v=spf1 a:example.org -all", "192.0.2.10"), SPF_FAIL);
    assert_int_equal(check("v=spf1 mx -all", "192.0.2.129"), SPF_PASS);
    assert_int_equal(check("v=spf1 mx -all", "192.0.2.10"), SPF_FAIL);
    assert_int_equal(check("v=spf1 mx:example.org -all", "192.0.2.140"), SPF_PASS);
    assert_int_equal(check("v=spf1 mx mx:example.org -all", "192.0.2.140"), SPF_PASS);
    assert_int_equal(check("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.131"), SPF_PASS);
    assert_int_equal(check("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.141"), SPF_PASS);
    assert_int_equal(check("v=spf1 mx/30 mx:example.org/30 -all", "192.0.2.150"), SPF_FAIL);
    assert_int_equal(check("v=spf1 ptr -all", "192.0.2.10"), SPF_PASS);
    assert_int_equal(check("v=spf1 ptr -all", "192.0.2.65"), SPF_PASS);
    assert_int_equal(check("v=spf1 ptr -all", "192.0.2.140"), SPF_FAIL);
    assert_int_equal(check("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.65"), SPF_FAIL);
    assert_int_equal(check("v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.129"), SPF_PASS);
    assert_int_equal(check("v=spf1 ip6:2001:db8::/32 -all", "2001:db8::1"), SPF_PASS);
    assert_int_equal(check("v=spf1 ip6:2001:db8::/32 ~all", "2001:db9::1"), SPF_SOFTFAIL);
    assert_int_equal(check("v=spf1 ip4:192.0.2.0/24 -all", "::ffff:192.0.2.1"), SPF_PASS);
    assert_int_equal(check("v=spf1", "192.0.2.1"), SPF_NEUTRAL);
    assert_int_equal(check("v=spf1 ?all", "192.0.2.1"), SPF_NEUTRAL);
    /* redirect, and redirect ignored when all is there */
    assert_int_equal(check("v=spf1 redirect=soft.test", "192.0.2.1"), SPF_SOFTFAIL);
    assert_int_equal(check("v=spf1 -all redirect=soft.test", "192.0.2.1"), SPF_FAIL);
    assert_int_equal(check("v=spf1 redirect=nospf.test", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check("v=spf1 include:neutral.test -all", "192.0.2.1"), SPF_FAIL);
    assert_int_equal(check("v=spf1 include:nospf.test -all", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check_domain("nowhere.test", "192.0.2.1"), SPF_NONE);
    assert_int_equal(check_domain("nospf.test", "192.0.2.1"), SPF_NONE);
    assert_int_equal(check_domain("redir.test", "192.0.2.129"),
                     SPF_PASS); /* example.com's record */
}

static void test_errors_and_limits(void **state)
{
    (void)state;
    assert_int_equal(check_domain("broken.test", "192.0.2.1"), SPF_TEMPERROR);
    assert_int_equal(check_domain("two.test", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check("v=spf1 include:broken.test -all", "192.0.2.1"), SPF_TEMPERROR);
    assert_int_equal(check("v=spf1 foo:bar -all", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check("v=spf1 ip4:300.1.1.1 -all", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check("v=spf1 -all ip4:1.2.3.4/33", "192.0.2.1"),
                     SPF_PERMERROR); /* anywhere */
    assert_int_equal(check("v=spf1 redirect=a.test redirect=b.test", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check("v=spf1 unknown-mod=x +all", "192.0.2.1"), SPF_PASS); /* ignored */
    /* include loops end at the lookup limit */
    assert_int_equal(check_domain("loop1.test", "192.0.2.1"), SPF_PERMERROR);
    /* ten includes are allowed, eleven are not */
    assert_int_equal(check("v=spf1 include:c2.test -all", "192.0.2.1"), SPF_PASS);
    assert_int_equal(check("v=spf1 include:c1.test -all", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check("v=spf1 a mx a mx a mx a mx a mx a -all", "192.0.2.1"), SPF_PERMERROR);
    /* two void lookups are allowed, the third is permerror */
    assert_int_equal(check("v=spf1 a:x1.test a:x2.test ip4:192.0.2.1 -all", "192.0.2.1"), SPF_PASS);
    assert_int_equal(check("v=spf1 a:x1.test a:x2.test a:x3.test ip4:192.0.2.1 -all", "192.0.2.1"),
                     SPF_PERMERROR);
    /* a match before the limit is reached stands */
    assert_int_equal(check("v=spf1 ip4:192.0.2.1 include:c1.test -all", "192.0.2.1"), SPF_PASS);
}

static void test_macros(void **state)
{
    (void)state;
    struct authdns d;
    /* RFC 7208 7.4, sender strong-bad@email.example.com from 192.0.2.3 */
    zone[RECORD_SLOT].name = "email.example.com";
    zone[RECORD_SLOT].type = AUTHDNS_TXT;
    zone[RECORD_SLOT].val = "v=spf1 exists:%{ir}.%{v}._spf.%{d2} exists:%{lr-}.lp._spf.%{d2} "
                            "exists:%{l1r-}.%{d1}.%{dr}.%{d2r}.x -all";
    struct spf_input in = {.helo = "mx.example.net", .sender = "strong-bad@email.example.com"};
    assert_true(spf_ip_parse("192.0.2.3", &in.ip));
    struct spf_outcome out;
    authdns_init(&d);
    for (int i = 0; i < 20 && !(spf_check(&in, &d, &out), out.done); i++)
        zone_answer(&d, zone);
    assert_int_equal(out.result, SPF_PERMERROR); /* the three names do not exist: 3 void lookups */
    assert_true(zone_asked(&d, "3.2.0.192.in-addr._spf.example.com"));
    assert_true(zone_asked(&d, "bad.strong.lp._spf.example.com"));
    assert_true(zone_asked(&d, "strong.com.com.example.email.example.email.x"));
    authdns_free(&d);
    /* IPv6 %{i}: dotted nibbles */
    zone[RECORD_SLOT].val = "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all";
    assert_true(spf_ip_parse("2001:db8::cb01", &in.ip));
    authdns_init(&d);
    for (int i = 0; i < 20 && !(spf_check(&in, &d, &out), out.done); i++)
        zone_answer(&d, zone);
    assert_true(zone_asked(
        &d,
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"));
    authdns_free(&d);
    /* a bad macro is a syntax error */
    assert_int_equal(check("v=spf1 exists:%{q}.x -all", "192.0.2.1"), SPF_PERMERROR);
    assert_int_equal(check("v=spf1 exists:%{d0}.x -all", "192.0.2.1"), SPF_PERMERROR);
    assert_false(spf_record_valid(slice_from_cstr("v=spf1 a:%")));
    assert_true(spf_record_valid(slice_from_cstr("v=spf1 a:%{d}%%%_%-.x/24//64 ~all")));
}

static void test_null_sender_uses_helo(void **state)
{
    (void)state;
    zone[RECORD_SLOT].name = "mx.example.net";
    zone[RECORD_SLOT].type = AUTHDNS_TXT;
    zone[RECORD_SLOT].val = "v=spf1 ip4:192.0.2.7 -all";
    struct authdns d;
    authdns_init(&d);
    struct spf_input in = {.helo = "mx.example.net", .sender = ""};
    assert_true(spf_ip_parse("192.0.2.7", &in.ip));
    struct spf_outcome out;
    for (int i = 0; i < 20 && !(spf_check(&in, &d, &out), out.done); i++)
        zone_answer(&d, zone);
    assert_int_equal(out.result, SPF_PASS);
    assert_string_equal(out.domain, "mx.example.net");
    authdns_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appendix_a),
        cmocka_unit_test(test_errors_and_limits),
        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_null_sender_uses_helo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
