/*
 * test_imap_date.c - unit tests of IMAP date and date-time parsing and
 * writing (imap_date.c), against values computed independently.
 */
#include "imap/imap_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_write(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    imap_date_time_write(&b, 0);
    assert_string_equal(buf_cstr(&b), "01-Jan-1970 00:00:00 +0000");
    buf_reset(&b);
    imap_date_time_write(&b, 951782400); /* 2000-02-29 00:00:00 UTC */
    assert_string_equal(buf_cstr(&b), "29-Feb-2000 00:00:00 +0000");
    buf_reset(&b);
    imap_date_time_write(&b, 1795820576); /* 2026-11-27 ... */
    assert_string_equal(buf_cstr(&b), "27-Nov-2026 23:02:56 +0000");
    buf_reset(&b);
    imap_date_time_write(&b, -1);
    assert_string_equal(buf_cstr(&b), "31-Dec-1969 23:59:59 +0000");
    buf_free(&b);
}

static void test_parse(void **state)
{
    (void)state;
    int64_t t;
    assert_true(imap_date_parse(SLICE_LIT("1-Feb-1994"), &t));
    assert_int_equal(t, 760060800);
    assert_true(imap_date_parse(SLICE_LIT("29-feb-2024"), &t));
    assert_int_equal(t, 1709164800);
    assert_true(imap_date_time_parse(SLICE_LIT("17-Jul-1996 02:44:25 -0700"), &t));
    assert_int_equal(t, 837596665);
    assert_true(imap_date_time_parse(SLICE_LIT(" 5-Jan-2025 10:11:12 +0100"), &t));
    assert_int_equal(t, 1736068272);
    const char *bad[] = {"",         "32-Jan-2020", "29-Feb-2023", "1-Foo-2020",
                         "1-Jan-20", "1-Jan-2020x", "1 Jan 2020",  "001-Jan-2020"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(imap_date_parse(slice_from_cstr(bad[i]), &t));
    const char *bad_dt[] = {"17-Jul-1996 24:00:00 +0000", "17-Jul-1996 02:44:25",
                            "17-Jul-1996 02:44 +0000", "17-Jul-1996 02:44:25 0700",
                            "17-Jul-1996 02:44:25 +07000"};
    for (size_t i = 0; i < sizeof(bad_dt) / sizeof(bad_dt[0]); i++)
        assert_false(imap_date_time_parse(slice_from_cstr(bad_dt[i]), &t));
}

static void test_rfc5322(void **state)
{
    (void)state;
    int64_t t;
    assert_true(imap_rfc5322_date_parse(SLICE_LIT("Wed, 17 Jul 1996 02:44:25 -0700"), &t));
    assert_int_equal(t, 837596665);
    assert_true(imap_rfc5322_date_parse(SLICE_LIT("5 Jan 2025 10:11 +0100 (CET)"), &t));
    assert_int_equal(t, 1736068260);
    assert_true(imap_rfc5322_date_parse(SLICE_LIT("Sun, 5 Jan 25 09:11:00 GMT"), &t));
    assert_int_equal(t, 1736068260);
    int64_t zone; /* SENTON's day is the local one: 17 Jul 1996 02:44:25, not 09:44:25 UTC */
    assert_true(
        imap_rfc5322_date_zone_parse(SLICE_LIT("Wed, 17 Jul 1996 02:44:25 -0700"), &t, &zone));
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
        assert_false(imap_rfc5322_date_parse(slice_from_cstr(bad[i]), &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_write), cmocka_unit_test(test_parse),
                                       cmocka_unit_test(test_rfc5322)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
