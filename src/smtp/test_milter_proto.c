/*
 * test_milter_proto.c - the milter packet writer and reply decoder: framing
 * in pieces, each reply kind, and what must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "smtp/milter_proto.h"

static struct slice S(const char *p, size_t n) {
    return slice_make(p, n);
}

static void
test_packet_strings(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    milter_packet_macros(&b, 'C', "j", "mx.example", (char *)NULL);
    static const char want[] = "\0\0\0\x0f"
                               "DCj\0mx.example";
    assert_int_equal(b.len, sizeof(want)); /* the last NUL is the string's */
    assert_memory_equal(b.data, want, sizeof(want));
    buf_reset(&b);
    milter_packet_strings(&b, MILTER_C_HELO, "client.example", (char *)NULL);
    assert_int_equal(b.len, 4 + 1 + 15);
    assert_memory_equal(b.data, "\0\0\0\x10Hclient.example", 20);
    buf_reset(&b);
    milter_packet(&b, MILTER_C_EOH, NULL, 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "\0\0\0\1N", 5);
    buf_free(&b);
}

static void test_take_in_pieces(void **state)
{
    (void)state;
    static const char two[] = "\0\0\0\1c\0\0\0\x0chX-Spam\0Yes\0";
    size_t total = sizeof(two) - 1;
    char cmd = 0;
    struct slice d;
    size_t used = 0;
    for (size_t n = 0; n < 5; n++)
        assert_int_equal(milter_take(S(two, n), &cmd, &d, &used), MILTER_TAKE_MORE);
    assert_int_equal(milter_take(S(two, total), &cmd, &d, &used), MILTER_TAKE_OK);
    assert_int_equal(cmd, 'c');
    assert_int_equal(d.len, 0);
    assert_int_equal(used, 5);
    assert_int_equal(milter_take(S(two + 5, total - 6), &cmd, &d, &used), MILTER_TAKE_MORE);
    assert_int_equal(milter_take(S(two + 5, total - 5), &cmd, &d, &used), MILTER_TAKE_OK);
    struct milter_reply r;
    assert_true(milter_reply_parse(cmd, d, &r));
    assert_true(slice_eq_cstr_nocase(r.name, "X-Spam"));
    assert_true(slice_eq_cstr_nocase(r.value, "Yes"));
    /* a zero length, and one over the limit, are refused before any data */
    assert_int_equal(milter_take(S("\0\0\0\0", 4), &cmd, &d, &used), MILTER_TAKE_BAD);
    assert_int_equal(milter_take(S("\0\x20\0\0", 4), &cmd, &d, &used), MILTER_TAKE_BAD);
}

static void test_replies(void **state)
{
    (void)state;
    struct milter_reply r;
    static const char opt[] = "\0\0\0\6\0\0\0\x21\0\0\x10\0";
    assert_true(milter_reply_parse('O', S(opt, 12), &r));
    assert_int_equal(r.version, 6);
    assert_int_equal(r.actions, MILTER_F_ADDHDRS | MILTER_F_QUARANTINE);
    assert_int_equal(r.protocol, MILTER_P_NR_CONN);
    assert_false(milter_reply_parse('O', S(opt, 11), &r));

    static const char y[] = "554 5.7.1 Gtube pattern";
    assert_true(milter_reply_parse('y', S(y, sizeof(y)), &r));
    assert_int_equal(r.text.len, strlen(y));
    assert_false(milter_reply_parse('y', S("250 ok", 7), &r)); /* not a refusal */
    assert_false(milter_reply_parse('y', S("554 no nul", 10), &r));
    assert_false(milter_reply_parse('y', S("55x 5.7.1 a", 12), &r));

    static const char chg[] = "\0\0\0\2Subject\0new\n\tline\0";
    assert_true(milter_reply_parse('m', S(chg, sizeof(chg) - 1), &r));
    assert_int_equal(r.index, 2);
    assert_true(slice_eq_cstr_nocase(r.value, "new\n\tline"));
    /* a line break that does not fold, a colon in the name, trailing bytes */
    static const char bad1[] = "\0\0\0\1Subject\0a\nb\0";
    assert_false(milter_reply_parse('m', S(bad1, sizeof(bad1) - 1), &r));
    assert_false(milter_reply_parse('h', S("X:Y\0v\0", 6), &r));
    assert_false(milter_reply_parse('h', S("X\0v\0z", 5), &r));
    assert_false(milter_reply_parse('c', S("x", 1), &r));
    assert_false(milter_reply_parse('Z', S("", 0), &r));
    assert_true(milter_reply_parse('q', S("spam\0", 5), &r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packet_strings),
        cmocka_unit_test(test_take_in_pieces),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
