/*
 * test_retry.c - the retry schedule: doubling, ceiling, lifetime clamp,
 * expiry and the delay warning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mta/retry.h"

#define MIN (60 * 1000LL)
#define HOUR (3600 * 1000LL)
#define DAY (24 * HOUR)

static const struct retry_policy pol = {5 * MIN, 4 * HOUR, 5 * DAY, 4 * HOUR};

static void test_backoff_doubles_to_ceiling(void **state)
{
    (void)state;
    assert_int_equal(retry_backoff(&pol, 1), 5 * MIN);
    assert_int_equal(retry_backoff(&pol, 2), 10 * MIN);
    assert_int_equal(retry_backoff(&pol, 3), 20 * MIN);
    assert_int_equal(retry_backoff(&pol, 7), 4 * HOUR);           /* 320 min capped at 240 */
    assert_int_equal(retry_backoff(&pol, 4000000000u), 4 * HOUR); /* no overflow */
    struct retry_policy huge = {INT64_MAX / 3, INT64_MAX, INT64_MAX / 2, 0};
    assert_true(retry_backoff(&huge, 100) > 0);
}

static void test_next_and_expiry(void **state)
{
    (void)state;
    int64_t arrival = 1000 * DAY, next = 0;
    assert_int_equal(retry_next(&pol, arrival, arrival + 1000, 1, &next), RETRY_LATER);
    assert_int_equal(next, arrival + 1000 + 5 * MIN);
    /* near the end: clamped to the lifetime's end, a last try at expiry */
    int64_t late = arrival + 5 * DAY - 10 * MIN;
    assert_int_equal(retry_next(&pol, arrival, late, 9, &next), RETRY_LATER);
    assert_int_equal(next, arrival + 5 * DAY);
    assert_int_equal(retry_next(&pol, arrival, arrival + 5 * DAY, 10, &next), RETRY_EXPIRED);
    assert_int_equal(retry_until(&pol, arrival), arrival + 5 * DAY);
}

static void test_warning(void **state)
{
    (void)state;
    int64_t arrival = 1000 * DAY;
    assert_false(retry_warning_due(&pol, arrival, arrival + 4 * HOUR - 1, false));
    assert_true(retry_warning_due(&pol, arrival, arrival + 4 * HOUR, false));
    assert_false(retry_warning_due(&pol, arrival, arrival + 4 * HOUR, true));
    assert_false(retry_warning_due(&pol, arrival, arrival + 6 * DAY, false)); /* expired: bounce */
    struct retry_policy off = pol;
    off.delay_warning_ms = 0;
    assert_false(retry_warning_due(&off, arrival, arrival + DAY, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_ceiling),
        cmocka_unit_test(test_next_and_expiry),
        cmocka_unit_test(test_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
