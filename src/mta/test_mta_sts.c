/*
 * test_mta_sts.c - unit tests of the MTA-STS parsers and mx matching
 * (RFC 8461 3.1, 3.2, 4.1), with the RFC's own example policy.
 */
#include "mta/mta_sts.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static bool parse(const char *body, struct mta_sts_policy *p)
{
    struct buf err = BUF_INIT;
    bool ok = mta_sts_policy_parse(body, strlen(body), p, &err);
    buf_free(&err);
    return ok;
}

static void test_policy(void **state)
{
    (void)state;
    struct mta_sts_policy p;
    assert_true(parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                      "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
                      &p));
    assert_int_equal(p.mode, MTA_STS_ENFORCE);
    assert_int_equal(p.max_age, 604800);
    assert_int_equal(p.n_mx, 3);
    assert_string_equal(p.mx[1], "*.example.net");
    /* LF line ends, white space around values, unknown keys */
    assert_true(parse("version:STSv1\nmode:   testing  \nmx: a.example\nmax_age: 10\nx: y\n", &p));
    assert_int_equal(p.mode, MTA_STS_TESTING);
    /* mode none needs no mx; max_age capped at a year */
    assert_false(parse("version: STSv1\nmode: none\nmax_age: 99999999999\n", &p));
    assert_true(parse("version: STSv1\nmode: none\nmax_age: 9999999999\n", &p));
    assert_int_equal(p.max_age, MTA_STS_MAX_AGE_MAX);
    /* refused */
    assert_false(parse("version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n", &p));
    assert_false(parse("mode: enforce\nmx: a.b\nmax_age: 1\n", &p));
    assert_false(parse("version: STSv1\nmode: enforce\nmax_age: 1\n", &p)); /* no mx */
    assert_false(parse("version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n", &p));
    assert_false(parse("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n", &p));
    assert_false(parse("version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n", &p));
    assert_false(parse("version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n", &p));
    assert_false(parse("<html>not a policy</html>\n", &p));
}

static void test_match(void **state)
{
    (void)state;
    struct mta_sts_policy p;
    assert_true(parse("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
                      "max_age: 1\n",
                      &p));
    assert_true(mta_sts_mx_match(&p, "mail.example.com"));
    assert_true(mta_sts_mx_match(&p, "MAIL.Example.COM."));
    assert_true(mta_sts_mx_match(&p, "mx1.example.net"));
    assert_false(mta_sts_mx_match(&p, "example.net"));       /* the wildcard needs a label */
    assert_false(mta_sts_mx_match(&p, "a.mx1.example.net")); /* and only one */
    assert_false(mta_sts_mx_match(&p, "evil-mail.example.com"));
    assert_false(mta_sts_mx_match(&p, "mail.example.com.evil"));
}

static void test_txt(void **state)
{
    (void)state;
    bool is_sts;
    char id[MTA_STS_ID_MAX + 1];
    const char *t = "v=STSv1; id=20160831085700Z;";
    assert_true(mta_sts_txt_parse(t, strlen(t), &is_sts, id));
    assert_string_equal(id, "20160831085700Z");
    t = "v=STSv1;id=abc;ext=whatever";
    assert_true(mta_sts_txt_parse(t, strlen(t), &is_sts, id));
    t = "v=spf1 -all";
    assert_false(mta_sts_txt_parse(t, strlen(t), &is_sts, id));
    assert_false(is_sts);
    t = "v=STSv1; id=not-alnum;";
    assert_false(mta_sts_txt_parse(t, strlen(t), &is_sts, id));
    assert_true(is_sts);
    t = "v=STSv1;";
    assert_false(mta_sts_txt_parse(t, strlen(t), &is_sts, id));
    t = "v=STSv1; id=123456789012345678901234567890123;"; /* 33 characters */
    assert_false(mta_sts_txt_parse(t, strlen(t), &is_sts, id));
    t = "v=STSv10; id=1;";
    assert_false(mta_sts_txt_parse(t, strlen(t), &is_sts, id));
    assert_false(is_sts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_txt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
