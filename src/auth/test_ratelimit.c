/*
 * test_ratelimit.c - unit tests for failed-login counters: windows, reset,
 * and the size cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "auth/auth_ratelimit.h"

static void test_window(void **state)
{
    struct ratelimit *rl = ratelimit_new(1000, 100);
    assert_int_equal(ratelimit_count(rl, "1.2.3.4", 0), 0);
    assert_int_equal(ratelimit_fail(rl, "1.2.3.4", 0), 1);
    assert_int_equal(ratelimit_fail(rl, "1.2.3.4", 500), 2);
    assert_int_equal(ratelimit_count(rl, "1.2.3.4", 999), 2);
    assert_int_equal(ratelimit_count(rl, "1.2.3.5", 999), 0);
    /* The window started at 0; at 1000 it is over. */
    assert_int_equal(ratelimit_count(rl, "1.2.3.4", 1000), 0);
    assert_int_equal(ratelimit_fail(rl, "1.2.3.4", 1000), 1);
    ratelimit_reset(rl, "1.2.3.4");
    assert_int_equal(ratelimit_count(rl, "1.2.3.4", 1001), 0);
    assert_int_equal(ratelimit_size(rl), 0);
    ratelimit_free(rl);
}

static void test_cap(void **state)
{
    struct ratelimit *rl = ratelimit_new(1000000, 100);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
        ratelimit_fail(rl, key, i);
        assert_true(ratelimit_size(rl) <= 100);
    }
    /* The newest keys are kept, the oldest forgotten. */
    assert_int_equal(ratelimit_count(rl, "10.0.3.231", 1000), 1);
    assert_int_equal(ratelimit_count(rl, "10.0.0.0", 1000), 0);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
