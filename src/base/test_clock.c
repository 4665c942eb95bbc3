/*
 * test_clock.c - unit tests for the clock kit: the monotonic clock never
 * goes back and its units agree, and the wall clock is the epoch time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>

#include "base/clock.h"

static void test_monotonic(void **state)
{
    int64_t prev = monotonic_us();
    for (int i = 0; i < 10000; i++) {
        int64_t now = monotonic_us();
        assert_true(now >= prev);
        prev = now;
    }
    int64_t ms = monotonic_ms(), us = monotonic_us();
    /* the same clock in two units: us read after ms is no earlier */
    assert_true(us / 1000 >= ms);
    assert_true(us / 1000 - ms < 1000);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t direct = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(direct >= ms && direct - ms < 1000);
}

static void test_wallclock(void **state)
{
    time_t before = time(NULL);
    int64_t ms = wallclock_ms();
    time_t after = time(NULL);
    assert_true(ms / 1000 >= (int64_t)before);
    assert_true(ms / 1000 <= (int64_t)after);
}

static void test_timeval(void **state)
{
    (void)state;
    struct timeval tv = clock_timeval_ms(2500);
    assert_int_equal(tv.tv_sec, 2);
    assert_int_equal(tv.tv_usec, 500000);
    tv = clock_timeval_ms(-20);
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic),
        cmocka_unit_test(test_wallclock),
        cmocka_unit_test(test_timeval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
