/*
 * test_dmarc.c - DMARC (RFC 7489): record parsing, organizational domains
 * from Debian's Public Suffix List, alignment (relaxed and strict), policy
 * discovery at the organizational domain with sp=, pct=, the DNS Tree Walk
 * of DMARC's revision (RFC 9989 4.10: the jump to 7 labels, psd=y/n,
 * organizational domains for relaxed alignment), and the whole inbound
 * check with its Authentication-Results field and the removal of forged
 * ones.
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
    /* the tree walk's */
    {"_dmarc.author.test", AUTHDNS_TXT, "v=DMARC1; p=reject; sp=none"},
    {"_dmarc.shop.test", AUTHDNS_TXT, "v=DMARC1; p=reject; sp=quarantine"},
    {"_dmarc.deep.test", AUTHDNS_TXT, "v=DMARC1; p=none; sp=reject"},
    {"_dmarc.psd.test", AUTHDNS_TXT, "v=DMARC1; p=reject; psd=y"},
    {"_dmarc.corp.test", AUTHDNS_TXT, "v=DMARC1; p=none"},
    {"_dmarc.dept.corp.test", AUTHDNS_TXT, "v=DMARC1; p=reject; psd=n"},
    {"_dmarc.multi.test", AUTHDNS_TXT, "v=DMARC1; p=reject"},
    {"_dmarc.a.multi.test", AUTHDNS_TXT, "v=DMARC1; p=quarantine"},
    {"_dmarc.sf.test", AUTHDNS_TXT, "SERVFAIL"},
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
    for (int i = 0; i < 40 && !(dmarc_check(&in, l, &d, &out), out.done); i++)
        assert_true(zone_answer(&d, zone) > 0); /* never waits for nothing */
    assert_true(out.done);
    authdns_free(&d);
    return out;
}

/* The check's result and, when it is not -1, the policy it asks for. */
static void expect(const struct psl *l, const char *from, bool spf_pass, const char *spf_domain,
                   const char *dkim_d, unsigned sample, enum dmarc_result result, int policy)
{
    struct dmarc_outcome o = dmarc(l, from, spf_pass, spf_domain, dkim_d, sample);
    if (o.result != result || (policy >= 0 && (int)o.policy != policy)) /* which case */
        print_message("From: %s, SPF %s, DKIM %s, %s\n", from, spf_domain ? spf_domain : "-",
                      dkim_d ? dkim_d : "-", l ? "list" : "walk");
    assert_int_equal(o.result, result);
    if (policy >= 0)
        assert_int_equal(o.policy, policy);
}

static void alignment_and_policy(const struct psl *l)
{
    /* relaxed SPF alignment: the bounce domain shares the organizational domain */
    expect(l, "example.com", true, "bounces.example.com", NULL, 0, DMARC_PASS, -1);
    /* adkim=s: a subdomain signature does not align, an exact one does */
    expect(l, "example.com", false, "other.test", "mail.example.com", 0, DMARC_FAIL,
           DMARC_P_REJECT);
    expect(l, "example.com", false, "other.test", "example.com", 0, DMARC_PASS, -1);
    /* a subdomain without a record of its own: the organizational record's sp= */
    expect(l, "news.example.com", false, "other.test", NULL, 0, DMARC_FAIL, DMARC_P_QUARANTINE);
    /* pct=0: outside the sample, reject becomes quarantine */
    expect(l, "strict.test", false, "x.test", NULL, 50, DMARC_FAIL, DMARC_P_QUARANTINE);
    /* aspf=s */
    expect(l, "strict.test", true, "a.strict.test", NULL, 0, DMARC_FAIL, -1);
    expect(l, "nodmarc.test", false, "x.test", NULL, 0, DMARC_NONE, -1);
    expect(l, "broken.test", true, "broken.test", NULL, 0, DMARC_TEMPERROR, -1);
    expect(l, "two.test", false, "x.test", NULL, 0, DMARC_NONE, -1); /* two records: as if none */
}

/* RFC 7489's way (dmarc_discovery = psl) and the tree walk agree here */
static void test_alignment_and_policy(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    struct psl *l = psl_load(PSL_PATH, &err);
    assert_non_null(l);
    alignment_and_policy(l);
    alignment_and_policy(NULL);
    psl_free(l);
    buf_free(&err);
}

static size_t dmarc_questions(const struct authdns *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += strncmp(d->a[i].name, "_dmarc.", 7) == 0;
    return n;
}

/* One walk run to its end against the zone: its outcome, and the names it
 * asked for in d (the caller frees d). */
static struct dmarc_walk walk(struct authdns *d, const char *domain, bool policy_only)
{
    struct dmarc_walk w;
    authdns_init(d);
    for (int i = 0; i < 10 && (dmarc_walk(d, domain, policy_only, &w), w.status == 0); i++)
        assert_true(zone_answer(d, zone) > 0);
    return w;
}

static void test_walk_names(void **state)
{
    (void)state;
    const char *names[DMARC_WALK_MAX];
    /* 13 labels: the name, then a jump to its last 7, then one fewer each time */
    static const char *const deep[] = {
        "a.b.c.d.e.f.g.h.i.j.mail.deep.test",
        "g.h.i.j.mail.deep.test",
        "h.i.j.mail.deep.test",
        "i.j.mail.deep.test",
        "j.mail.deep.test",
        "mail.deep.test",
        "deep.test",
        "test",
    };
    assert_int_equal(dmarc_walk_names(deep[0], names), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(names[i], deep[i]);
    /* 8 labels: the jump lands on the next name anyway */
    assert_int_equal(dmarc_walk_names("b.c.d.e.f.g.h.test", names), 8);
    assert_string_equal(names[1], "c.d.e.f.g.h.test");
    assert_int_equal(dmarc_walk_names("mail.example.com", names), 3);
    assert_string_equal(names[2], "com");
    assert_int_equal(dmarc_walk_names("test", names), 1);
    assert_int_equal(dmarc_walk_names("x.test.", names), 2); /* no empty last name */
}

static void test_tree_walk(void **state)
{
    (void)state;
    struct authdns d;
    struct dmarc_walk w;

    /* a policy at the author domain: p=, and the walk asks nothing more */
    w = walk(&d, "author.test", true);
    assert_int_equal(w.status, 1);
    assert_true(w.have_policy && w.policy_at_domain);
    assert_int_equal(dmarc_questions(&d), 1);
    authdns_free(&d);
    expect(NULL, "author.test", false, "x.test", NULL, 0, DMARC_FAIL, DMARC_P_REJECT);

    /* none at the author domain, one at its organizational domain: sp= */
    w = walk(&d, "mail.shop.test", true);
    assert_true(w.have_policy && !w.policy_at_domain);
    assert_true(zone_asked(&d, "_dmarc.mail.shop.test"));
    assert_true(zone_asked(&d, "_dmarc.shop.test"));
    assert_false(zone_asked(&d, "_dmarc.test")); /* policy discovery stops there */
    authdns_free(&d);
    w = walk(&d, "mail.shop.test", false);
    assert_string_equal(w.org, "shop.test");
    authdns_free(&d);
    expect(NULL, "mail.shop.test", false, "x.test", NULL, 0, DMARC_FAIL, DMARC_P_QUARANTINE);

    /* a deep name: 8 questions at most, none between the name and its last 7 labels */
    w = walk(&d, "a.b.c.d.e.f.g.h.i.j.mail.deep.test", false);
    assert_int_equal(w.status, 1);
    assert_true(w.have_policy && !w.policy_at_domain);
    assert_string_equal(w.org, "deep.test");
    assert_int_equal(dmarc_questions(&d), 8);
    assert_true(zone_asked(&d, "_dmarc.a.b.c.d.e.f.g.h.i.j.mail.deep.test"));
    assert_false(zone_asked(&d, "_dmarc.b.c.d.e.f.g.h.i.j.mail.deep.test"));
    assert_false(zone_asked(&d, "_dmarc.f.g.h.i.j.mail.deep.test"));
    assert_true(zone_asked(&d, "_dmarc.g.h.i.j.mail.deep.test"));
    assert_true(zone_asked(&d, "_dmarc.test"));
    authdns_free(&d);
    expect(NULL, "a.b.c.d.e.f.g.h.i.j.mail.deep.test", false, "x.test", NULL, 0, DMARC_FAIL,
           DMARC_P_REJECT); /* deep.test's sp= */
    expect(NULL, "a.b.c.d.e.f.g.h.i.j.mail.deep.test", false, "x.test", "deep.test", 0, DMARC_PASS,
           -1); /* relaxed: the same organization */

    /* psd=y: the organizational domain is one label below the public suffix */
    w = walk(&d, "x.shop.psd.test", false);
    assert_string_equal(w.org, "shop.psd.test");
    assert_false(zone_asked(&d, "_dmarc.test")); /* psd= ends the walk */
    authdns_free(&d);
    w = walk(&d, "psd.test", false);
    assert_string_equal(w.org, "psd.test");
    authdns_free(&d);
    expect(NULL, "shop.psd.test", false, "x.test", "mail.shop.psd.test", 0, DMARC_PASS, -1);
    expect(NULL, "shop.psd.test", false, "x.test", "other.psd.test", 0, DMARC_FAIL,
           DMARC_P_REJECT); /* two organizations under one suffix */

    /* psd=n: the domain where it is, whatever its parents publish */
    w = walk(&d, "x.dept.corp.test", false);
    assert_string_equal(w.org, "dept.corp.test");
    assert_false(zone_asked(&d, "_dmarc.corp.test"));
    authdns_free(&d);
    expect(NULL, "dept.corp.test", false, "x.test", "corp.test", 0, DMARC_FAIL, DMARC_P_REJECT);
    expect(NULL, "x.dept.corp.test", true, "bounces.dept.corp.test", NULL, 0, DMARC_PASS, -1);

    /* no psd=: the name with the fewest labels that has a record */
    w = walk(&d, "b.a.multi.test", false);
    assert_true(w.have_policy);
    assert_int_equal(w.policy.p, DMARC_P_QUARANTINE); /* the first one met */
    assert_string_equal(w.org, "multi.test");
    authdns_free(&d);

    /* relaxed alignment of a subdomain found through the walk */
    expect(NULL, "a.multi.test", false, "x.test", "mail.b.multi.test", 0, DMARC_PASS, -1);
    expect(NULL, "multi.test", true, "bounces.multi.test", NULL, 0, DMARC_PASS, -1);
    /* a domain without records anywhere is its own organization */
    expect(NULL, "shop.test", true, "shop.nowhere.test", NULL, 0, DMARC_FAIL, -1);

    /* a DNS failure on the walk is a temporary error, never a policy */
    expect(NULL, "x.sf.test", false, "x.test", NULL, 0, DMARC_TEMPERROR, -1);
    expect(NULL, "shop.test", true, "a.sf.test", NULL, 0, DMARC_TEMPERROR, -1);
}

static void test_whole_check_and_header(void **state)
{
    (void)state;
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
    /* the default: DMARC by the tree walk, no list */
    for (int i = 0; i < 20 && !(mailauth_check(&in, NULL, &d, &res), res.done); i++)
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
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_org_domain),
        cmocka_unit_test(test_alignment_and_policy),
        cmocka_unit_test(test_walk_names),
        cmocka_unit_test(test_tree_walk),
        cmocka_unit_test(test_whole_check_and_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
