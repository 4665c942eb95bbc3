/*
 * test_dotread.c - unit tests of the dot-terminated reader: every case fed
 * whole and one byte at a time, the smuggling family, limits, counted chunks.
 */
#include "net/dotread.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

struct scan_case {
    const char *in;
    size_t in_len;
    bool done;
    size_t consumed;
    const char *out; /* NULL: refused */
    enum dotread_newline mode;
};

static void run_case(const struct scan_case *tc, bool bytewise)
{
    struct dotread_limits lim = {
        .max_size = 1000, .max_line = 100, .max_header = 500, .newline = tc->mode};
    struct buf out = BUF_INIT;
    struct dotread sc;
    dotread_init(&sc, &lim, false, false, &out);
    size_t used = 0, took;
    enum dotread_result r = DOTREAD_NEED_MORE;
    if (bytewise) {
        for (size_t i = 0; i < tc->in_len && r != DOTREAD_DONE; i++) {
            r = dotread_feed(&sc, tc->in + i, 1, &took);
            used += took;
        }
    } else {
        r = dotread_feed(&sc, tc->in, tc->in_len, &used);
    }
    assert_int_equal(r == DOTREAD_DONE, tc->done);
    if (tc->done)
        assert_int_equal(used, tc->consumed);
    if (tc->out) {
        assert_false(dotread_failed(&sc));
        assert_int_equal(out.len, strlen(tc->out));
        assert_memory_equal(out.data, tc->out, out.len);
    } else {
        assert_true(dotread_failed(&sc));
    }
    buf_free(&out);
}

#define S(x) x, sizeof(x) - 1

static void test_reader(void **state)
{
    const struct scan_case cases[] = {
        {S("a\r\n.\r\n"), true, 6, "a\r\n", DOTREAD_NEWLINE_REJECT},
        {S(".\r\n"), true, 3, "", DOTREAD_NEWLINE_REJECT},
        {S("a\r\n..b\r\n.\r\nQUIT\r\n"), true, 11, "a\r\n.b\r\n", DOTREAD_NEWLINE_REJECT},
        {S("a\r\n.x\r\n"), false, 0, "a\r\nx\r\n", DOTREAD_NEWLINE_REJECT},
        /* The smuggling family: none of these ends the data, all are refused. */
        {S("a\n.\nMAIL FROM:<x@y>\r\n.\r\n"), true, 24, NULL, DOTREAD_NEWLINE_REJECT},
        {S("a\r.\rRCPT\r\n.\r\n"), true, 13, NULL, DOTREAD_NEWLINE_REJECT},
        {S("a\r\n.\nRCPT\r\n.\r\n"), true, 14, NULL, DOTREAD_NEWLINE_REJECT},
        {S("a\n.\r\nRCPT\r\n.\r\n"), true, 14, NULL, DOTREAD_NEWLINE_REJECT},
        {S("a\n.\n"), false, 0, NULL, DOTREAD_NEWLINE_REJECT},
        {S("a\r\n.\n"), false, 0, NULL, DOTREAD_NEWLINE_REJECT},
        {S("a\n.\r\n"), false, 0, NULL, DOTREAD_NEWLINE_REJECT},
        /* Normalize: bare ends become CRLF, the end is still only CRLF.CRLF. */
        {S("a\nb\r\n.\r\n"), true, 8, "a\r\nb\r\n", DOTREAD_NEWLINE_NORMALIZE},
        {S("a\n.\r\nb\r\n.\r\n"), true, 11, "a\r\n.\r\nb\r\n", DOTREAD_NEWLINE_NORMALIZE},
        {S("a\r\n.\nb\r\n.\r\n"), true, 11, "a\r\n.\r\nb\r\n", DOTREAD_NEWLINE_NORMALIZE},
        {S("a\rb\r\n.\r\n"), true, 8, "a\r\nb\r\n", DOTREAD_NEWLINE_NORMALIZE},
        /* Header section and line limits. */
        {S("x: 0123456789012345678901234567890123456789012345678901234567890123456789"
           "01234567890123456789012345678901234567890\r\n\r\nb\r\n.\r\n"),
         true, 124, NULL, DOTREAD_NEWLINE_REJECT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_case(&cases[i], false);
        run_case(&cases[i], true);
    }
}

static void test_size_limit(void **state)
{
    struct dotread_limits lim = {.max_size = 10, .newline = DOTREAD_NEWLINE_REJECT};
    struct buf out = BUF_INIT;
    struct dotread sc;
    dotread_init(&sc, &lim, false, false, &out);
    size_t took;
    const char *msg = "0123456789abcdef\r\n.\r\n";
    assert_int_equal(dotread_feed(&sc, msg, strlen(msg), &took), DOTREAD_DONE);
    assert_true(sc.oversize);
    assert_true(out.len <= 10); /* never stored beyond the limit */
    buf_free(&out);
}

static void test_counted(void **state)
{
    struct dotread_limits lim = {.max_size = 100, .newline = DOTREAD_NEWLINE_REJECT};
    struct buf out = BUF_INIT;
    struct dotread sc;
    dotread_init(&sc, &lim, true, false, &out);
    size_t took;
    const char *msg = "a\r\n.\r\n..b\r\n";
    assert_int_equal(dotread_feed(&sc, msg, strlen(msg), &took), DOTREAD_NEED_MORE);
    dotread_finish(&sc);
    assert_false(dotread_failed(&sc));
    assert_int_equal(out.len, strlen(msg)); /* no dot handling in BDAT */
    dotread_init(&sc, &lim, true, false, &out);
    assert_int_equal(dotread_feed(&sc, "x\r", 2, &took), DOTREAD_NEED_MORE);
    dotread_finish(&sc);
    assert_true(sc.bare_cr);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
