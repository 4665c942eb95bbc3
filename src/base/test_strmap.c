/*
 * test_strmap.c - the hash table kit: add, find, delete across growth and
 * broken probe chains, values, walking, reserve.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/strmap.h"

#define N 5000

static void test_add_find_del(void **state)
{
    (void)state;
    struct strmap m = {0};
    char *keys[N];
    bool added;
    assert_null(strmap_find(&m, "k1"));
    assert_false(strmap_del(&m, "k1", NULL)); /* empty map */
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof(k), "k%dx", i);
        keys[i] = xstrdup(k);
        struct strmap_slot *s = strmap_add(&m, keys[i], &added);
        assert_true(added);
        assert_ptr_equal(s->key, keys[i]); /* the key itself, not a copy */
        assert_int_equal(s->val.num, 0);
        s->val.num = i;
    }
    struct strmap_slot *s = strmap_add(&m, "k17x", &added); /* present: the same entry */
    assert_false(added);
    assert_int_equal(s->val.num, 17);
    assert_int_equal(m.n, N);
    assert_true(m.n * 2 <= m.cap);
    for (int i = 0; i < N; i += 2) { /* every other one: breaks probe chains */
        struct strmap_slot out;
        assert_true(strmap_del(&m, keys[i], &out));
        assert_ptr_equal(out.key, keys[i]);
        assert_int_equal(out.val.num, i);
    }
    assert_int_equal(m.n, N / 2);
    for (int i = 0; i < N; i++) {
        s = strmap_find(&m, keys[i]);
        if (i % 2 == 0) {
            assert_null(s);
        } else {
            assert_non_null(s);
            assert_int_equal(s->val.num, i);
        }
    }
    assert_false(strmap_del(&m, "nothere", NULL));
    /* the walk sees each entry once */
    size_t seen = 0;
    int64_t sum = 0;
    for (s = NULL; (s = strmap_next(&m, s)) != NULL;) {
        seen++;
        sum += s->val.num;
    }
    assert_int_equal(seen, N / 2);
    assert_int_equal(sum, (int64_t)(N / 2) * (N / 2)); /* 1 + 3 + ... + (N - 1) */
    for (int i = 1; i < N; i += 2)
        assert_true(strmap_del(&m, keys[i], NULL));
    assert_int_equal(m.n, 0);
    for (size_t i = 0; i < m.cap; i++)
        assert_null(m.slot[i].key);
    strmap_free(&m);
    assert_null(strmap_find(&m, keys[1]));
    assert_null(strmap_next(&m, NULL));
    for (int i = 0; i < N; i++)
        free(keys[i]);
}

static void test_reserve_and_pointers(void **state)
{
    (void)state;
    struct strmap m = {0};
    strmap_reserve(&m, 100);
    size_t cap = m.cap;
    assert_true(cap >= 200);
    static const char *const k[] = {"alpha", "beta", "gamma"};
    bool added;
    for (size_t i = 0; i < 3; i++)
        strmap_add(&m, k[i], &added)->val.ptr = (void *)k[i];
    strmap_reserve(&m, 10); /* never shrinks */
    assert_int_equal(m.cap, cap);
    assert_ptr_equal(strmap_find(&m, "beta")->val.ptr, k[1]);
    strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_del),
        cmocka_unit_test(test_reserve_and_pointers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
