/*
 * test_idset.c - the hashed queue-id set: add, has, del across growth and
 * removals in the middle of probe chains.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "mta/idset.h"

static void test_add_has_del(void **state)
{
    (void)state;
    struct idset s = {0};
    char id[IDSET_ID_MAX];
    assert_false(idset_has(&s, "A1"));
    idset_del(&s, "A1"); /* empty set */
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "Q%dX", i);
        idset_add(&s, id);
    }
    idset_add(&s, "Q17X"); /* present: no duplicate */
    assert_int_equal(idset_size(&s), 5000);
    for (int i = 0; i < 5000; i += 2) { /* every other one: breaks probe chains */
        snprintf(id, sizeof(id), "Q%dX", i);
        idset_del(&s, id);
    }
    assert_int_equal(idset_size(&s), 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "Q%dX", i);
        assert_int_equal(idset_has(&s, id), i % 2 == 1);
    }
    idset_del(&s, "nothere");
    assert_int_equal(idset_size(&s), 2500);
    for (int i = 1; i < 5000; i += 2) {
        snprintf(id, sizeof(id), "Q%dX", i);
        idset_del(&s, id);
    }
    assert_int_equal(idset_size(&s), 0);
    assert_null(strmap_next(&s.map, NULL));
    idset_free(&s);
    assert_false(idset_has(&s, "Q1X"));
}

static void test_long_id_is_cut(void **state)
{
    (void)state;
    struct idset s = {0};
    idset_add(&s, "0123456789012345678901234567890123456789");
    assert_true(idset_has(&s, "0123456789012345678901234567890"));
    idset_add(&s, ""); /* never stored: "" marks an empty slot */
    assert_int_equal(idset_size(&s), 1);
    idset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_has_del),
        cmocka_unit_test(test_long_id_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
