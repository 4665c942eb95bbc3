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

struct seen {
    unsigned n, count;
};

static void count_cb(void *arg, const char *key, unsigned count, int64_t start_ms)
{
    struct seen *s = arg;
    s->n++;
    s->count += count;
}

/* Bans: set with a count, listed while their window runs, gone after. */
static void test_set_and_list(void **state)
{
    struct ratelimit *rl = ratelimit_new(1000, 100);
    ratelimit_set(rl, "192.0.2.1", 50, 0);
    ratelimit_set(rl, "2001:db8::/64", 60, 500);
    assert_int_equal(ratelimit_count(rl, "192.0.2.1", 999), 50);
    struct seen s = {0, 0};
    ratelimit_foreach(rl, 999, count_cb, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.count, 110);
    s = (struct seen){0, 0};
    ratelimit_foreach(rl, 1000, count_cb, &s); /* the first one's window is over */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.count, 60);
    ratelimit_set(rl, "192.0.2.1", 1, 1200); /* a fresh window */
    assert_int_equal(ratelimit_count(rl, "192.0.2.1", 2100), 1);
    assert_int_equal(ratelimit_window(rl), 1000);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_set_and_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
