/*
 * test_date.c - unit tests for the date kit: RFC 5322 dates against the C
 * library's gmtime/strftime in the C locale over a wide range, the civil
 * day arithmetic both ways, leap days, and IMAP and RFC 5322 dates parsed
 * and written against values computed independently.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "base/date.h"

static void test_known(void **state)
{
    char s[DATE_RFC5322_SIZE];
    date_rfc5322_format(0, s, sizeof(s));
    assert_string_equal(s, "Thu, 01 Jan 1970 00:00:00 +0000");
    date_rfc5322_format(1800000000, s, sizeof(s));
    assert_string_equal(s, "Fri, 15 Jan 2027 08:00:00 +0000");
    date_rfc5322_format(951782400, s, sizeof(s)); /* a leap day of a century year */
    assert_string_equal(s, "Tue, 29 Feb 2000 00:00:00 +0000");
    date_rfc5322_format(-1, s, sizeof(s));
    assert_string_equal(s, "Wed, 31 Dec 1969 23:59:59 +0000");
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "Date: ");
    date_rfc5322_append(1800000000, &b);
    assert_string_equal(b.data, "Date: Fri, 15 Jan 2027 08:00:00 +0000");
    buf_reset(&b);
    date_http_append(784111777, &b); /* RFC 9110 5.6.7's example */
    assert_string_equal(b.data, "Sun, 06 Nov 1994 08:49:37 GMT");
    buf_free(&b);
}

static void test_against_libc(void **state)
{
    /* every 7 hours and 13 minutes from 1901 to 2100 (strftime in the C locale) */
    for (int64_t t = -2145916800; t < 4102444800; t += 7 * 3600 + 13 * 60 + 7) {
        time_t tt = (time_t)t;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char want[64], got[DATE_RFC5322_SIZE];
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S +0000", &tm);
        date_rfc5322_format(t, got, sizeof(got));
        assert_string_equal(got, want);
        int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
        assert_int_equal(
            date_days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday),
            days);
    }
}

static void test_civil_roundtrip(void **state)
{
    for (int64_t days = -800000; days < 800000; days += 17) {
        int64_t y;
        unsigned m, d;
        date_civil_from_days(days, &y, &m, &d);
        assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
        assert_int_equal(date_days_from_civil(y, m, d), days);
    }
}

static void test_short_output(void **state)
{
    char s[8];
    date_rfc5322_format(0, s, sizeof(s));
    assert_string_equal(s, "Thu, 01");
}

static void test_imap_write(void **state)
{
    struct buf b = BUF_INIT;
    date_imap_append(0, &b);
    assert_string_equal(buf_cstr(&b), "01-Jan-1970 00:00:00 +0000");
    buf_reset(&b);
    date_imap_append(951782400, &b); /* 2000-02-29 00:00:00 UTC */
    assert_string_equal(buf_cstr(&b), "29-Feb-2000 00:00:00 +0000");
    buf_reset(&b);
    date_imap_append(1795820576, &b); /* 2026-11-27 ... */
    assert_string_equal(buf_cstr(&b), "27-Nov-2026 23:02:56 +0000");
    buf_reset(&b);
    date_imap_append(-1, &b);
    assert_string_equal(buf_cstr(&b), "31-Dec-1969 23:59:59 +0000");
    buf_reset(&b);
    date_rfc3339_append(951782400 + 3723, &b); /* RFC 3339, for TLS-RPT */
    assert_string_equal(buf_cstr(&b), "2000-02-29T01:02:03Z");
    buf_free(&b);
}

static void test_imap_parse(void **state)
{
    int64_t t;
    assert_true(date_imap_day_parse(SLICE_LIT("1-Feb-1994"), &t));
    assert_int_equal(t, 760060800);
    assert_true(date_imap_day_parse(SLICE_LIT("29-feb-2024"), &t));
    assert_int_equal(t, 1709164800);
    assert_true(date_imap_parse(SLICE_LIT("17-Jul-1996 02:44:25 -0700"), &t));
    assert_int_equal(t, 837596665);
    assert_true(date_imap_parse(SLICE_LIT(" 5-Jan-2025 10:11:12 +0100"), &t));
    assert_int_equal(t, 1736068272);
    assert_true(date_imap_parse(SLICE_LIT(" 5-Dec-2026 10:24:16 +0000"), &t));
    assert_int_equal(t, 1796466256);
    const char *bad[] = {"",         "32-Jan-2020", "29-Feb-2023", "1-Foo-2020",
                         "1-Jan-20", "1-Jan-2020x", "1 Jan 2020",  "001-Jan-2020"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(date_imap_day_parse(slice_from_cstr(bad[i]), &t));
    const char *bad_dt[] = {"17-Jul-1996 24:00:00 +0000", "17-Jul-1996 02:44:25",
                            "17-Jul-1996 02:44 +0000", "17-Jul-1996 02:44:25 0700",
                            "17-Jul-1996 02:44:25 +07000"};
    for (size_t i = 0; i < sizeof(bad_dt) / sizeof(bad_dt[0]); i++)
        assert_false(date_imap_parse(slice_from_cstr(bad_dt[i]), &t));
}

static void test_rfc5322_parse(void **state)
{
    int64_t t;
    assert_true(date_rfc5322_parse(SLICE_LIT("Wed, 17 Jul 1996 02:44:25 -0700"), &t, NULL));
    assert_int_equal(t, 837596665);
    assert_true(date_rfc5322_parse(SLICE_LIT("5 Jan 2025 10:11 +0100 (CET)"), &t, NULL));
    assert_int_equal(t, 1736068260);
    assert_true(date_rfc5322_parse(SLICE_LIT("Sun, 5 Jan 25 09:11:00 GMT"), &t, NULL));
    assert_int_equal(t, 1736068260);
    int64_t zone; /* SENTON's day is the local one: 17 Jul 1996 02:44:25, not 09:44:25 UTC */
    assert_true(date_rfc5322_parse(SLICE_LIT("Wed, 17 Jul 1996 02:44:25 -0700"), &t, &zone));
    assert_int_equal(zone, -7 * 3600);
    assert_int_equal(t + zone, 837596665 - 7 * 3600);
    const char *bad[] = {"",
                         "Wed,",
                         "32 Jan 2020 00:00 +0000",
                         "1 Foo 2020 00:00",
                         "1 Jan 2020",
                         "1 Jan 2020 24:00",
                         "1 Jan 2020 10:00 +1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(date_rfc5322_parse(slice_from_cstr(bad[i]), &t, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),           cmocka_unit_test(test_against_libc),
        cmocka_unit_test(test_civil_roundtrip), cmocka_unit_test(test_short_output),
        cmocka_unit_test(test_imap_write),      cmocka_unit_test(test_imap_parse),
        cmocka_unit_test(test_rfc5322_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
