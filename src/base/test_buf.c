/*
 * test_buf.c - unit tests for buffers and slices.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdlib.h>

#include "base/buf.h"

static void test_append_and_nul(void **state)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_append(&b, "ab\0c", 4);
    assert_int_equal(b.len, 4);
    assert_int_equal(b.data[4], '\0');
    assert_memory_equal(b.data, "ab\0c", 4);
    buf_free(&b);
}

static void test_printf_grows(void **state)
{
    struct buf b = BUF_INIT;
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%04d", i);
    assert_int_equal(b.len, 4000);
    assert_memory_equal(b.data + 3996, "0999", 4);
    assert_int_equal(strlen(b.data), 4000);
    buf_free(&b);
}

static void test_consume(void **state)
{
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "hello world");
    buf_consume(&b, 6);
    assert_string_equal(buf_cstr(&b), "world");
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_xml_escaped(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    buf_append_xml_escaped(&b, slice_from_cstr("a<b>&\"c'\xc3\xa9"));
    assert_string_equal(buf_cstr(&b), "a&lt;b&gt;&amp;&quot;c&apos;\xc3\xa9");
    buf_free(&b);
}

static void test_integers(void **state)
{
    struct buf b = BUF_INIT;
    buf_append_u16(&b, 0x0102);
    buf_append_u32(&b, 0x03040506);
    buf_append_u64(&b, 0x0708090a0b0c0d0eULL);
    const unsigned char want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    buf_free(&b);
}

static void test_numbers(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_true(slice_to_u64(SLICE_LIT("0"), 10, &v) && v == 0);
    assert_true(slice_to_u64(SLICE_LIT("007"), 10, &v) && v == 7);
    assert_true(slice_to_u64(SLICE_LIT("4294967295"), UINT32_MAX, &v) && v == UINT32_MAX);
    assert_false(slice_to_u64(SLICE_LIT("4294967296"), UINT32_MAX, &v));
    assert_true(slice_to_u64(SLICE_LIT("18446744073709551615"), UINT64_MAX, &v) && v == UINT64_MAX);
    assert_false(slice_to_u64(SLICE_LIT("18446744073709551616"), UINT64_MAX, &v));
    assert_false(slice_to_u64(SLICE_LIT("99999999999999999999999"), UINT64_MAX, &v));
    assert_false(slice_to_u64(SLICE_LIT(""), 10, &v));
    assert_false(slice_to_u64(SLICE_LIT("+1"), 10, &v));
    assert_false(slice_to_u64(SLICE_LIT("1 "), 10, &v));
    assert_false(slice_to_u64(SLICE_LIT("11"), 10, &v));
}

static void test_slices(void **state)
{
    struct slice s = slice_trim(slice_from_cstr("  \tEHLO x\r\n"));
    assert_int_equal(s.len, 6);
    assert_true(slice_startswith_nocase(s, "ehlo"));
    /* substring, ASCII case-insensitive, either case of the first byte; at the very end */
    struct slice hay = slice_from_cstr("the Zanzibar cargo, ZANZIBAR tide");
    assert_true(slice_contains_nocase(hay, slice_from_cstr("zanzibar")));
    assert_true(slice_contains_nocase(hay, slice_from_cstr("cArGo")));
    assert_true(slice_contains_nocase(hay, slice_from_cstr("TIDE")));
    assert_true(slice_contains_nocase(hay, slice_from_cstr("")));
    assert_false(slice_contains_nocase(hay, slice_from_cstr("tides")));
    assert_false(slice_contains_nocase(slice_from_cstr("zanzi"), slice_from_cstr("zanzibar")));
    assert_false(slice_contains_nocase(hay, slice_from_cstr("zanzibarx")));
    assert_true(slice_eq_nocase(slice_make(s.ptr, 4), SLICE_LIT("EhLo")));
    assert_false(slice_eq(slice_make(s.ptr, 4), SLICE_LIT("ehlo")));
    char *d = slice_strdup(s);
    assert_string_equal(d, "EHLO x");
    free(d);
    size_t len;
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "xyz");
    char *p = buf_steal(&b, &len);
    assert_int_equal(len, 3);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, ""); /* an untouched buffer is still a valid empty string */
    free(p);
    /* A never-used buffer is a valid (ptr, 0) pair: no NULL for memcmp and friends. */
    struct buf e = BUF_INIT;
    assert_non_null(e.data);
    assert_int_equal(memcmp(e.data, "", 0), 0);
    assert_string_equal(buf_cstr(&e), "");
    buf_reset(&e);
    buf_free(&e);
    assert_non_null(e.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_nul), cmocka_unit_test(test_printf_grows),
        cmocka_unit_test(test_consume),        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_xml_escaped),    cmocka_unit_test(test_slices),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
