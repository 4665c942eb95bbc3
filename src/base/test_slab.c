/*
 * test_slab.c - the heap of connection-long objects (slab.h): objects of a
 * class packed in one chunk, freed slots reused, a chunk given back when its
 * last object goes, realloc across classes and to malloc, and malloc's
 * pointers accepted by slab_free.
 */
#include "base/slab.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_packed_and_reused(void **state)
{
    (void)state;
    size_t objects = slab_objects();
    size_t size, before, chunks_before, n, chunks;
    size_t cls = 0;
    while (slab_class_stats(cls, &size, &before, &chunks_before) && size != 320)
        cls++;
    assert_int_equal(size, 320);
    enum { N = 300 };
    char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = slab_calloc(1, 300); /* the 320-byte class */
        assert_true(slab_owns(p[i]));
        for (int j = 0; j < 300; j++)
            assert_int_equal(p[i][j], 0);
        memset(p[i], i, 300);
    }
    assert_int_equal(slab_objects(), objects + N);
    assert_true(slab_class_stats(cls, &size, &n, &chunks)); /* counted in its class */
    assert_int_equal(n, before + N);
    assert_int_equal(chunks, chunks_before + 2);
    /* Packed: the first 204 share one 64 kB chunk, side by side. */
    assert_int_equal(p[1] - p[0], 320);
    assert_int_equal((uintptr_t)p[0] >> 16, (uintptr_t)p[100] >> 16);
    for (int i = 0; i < N; i++)
        assert_int_equal((unsigned char)p[i][299], (unsigned char)i);
    char *freed = p[7];
    slab_free(p[7]);
    p[7] = slab_malloc(310);
    assert_ptr_equal(p[7], freed); /* the freed slot first */
    size_t bytes = slab_bytes();
    assert_true(bytes >= 2 * 64 * 1024);
    for (int i = 0; i < N; i++)
        slab_free(p[i]);
    assert_int_equal(slab_objects(), objects);
    assert_true(slab_bytes() < bytes); /* emptied chunks given back */
}

static void test_realloc_and_malloc(void **state)
{
    (void)state;
    char *p = slab_malloc(20);
    memcpy(p, "connection-long obj", 20);
    p = slab_realloc(p, 30); /* fits the 32-byte class: stays */
    assert_true(slab_owns(p));
    p = slab_realloc(p, 1000);
    assert_true(slab_owns(p));
    assert_memory_equal(p, "connection-long obj", 20);
    p = slab_realloc(p, SLAB_MAX + 1); /* beyond the classes: malloc's */
    assert_false(slab_owns(p));
    assert_memory_equal(p, "connection-long obj", 20);
    slab_free(p);
    char *m = malloc(64); /* malloc's pointers are welcome too */
    assert_false(slab_owns(m));
    m = slab_realloc(m, 128);
    assert_false(slab_owns(m));
    slab_free(m);
    slab_free(NULL);
    void *z = slab_malloc(0);
    assert_true(slab_owns(z));
    slab_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_and_reused),
        cmocka_unit_test(test_realloc_and_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
