/*
 * test_smtp_parse.c - unit tests of the SMTP command parser and the DATA
 * scanner, every scanner case fed whole and one byte at a time.
 */
#include "smtp/smtp_parse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static enum smtp_parse_result parse(const char *line, struct smtp_cmd *cmd)
{
    const char *why;
    return smtp_cmd_parse(slice_from_cstr(line), cmd, &why);
}

static void test_commands(void **state)
{
    struct smtp_cmd c;
    assert_int_equal(parse("ehlo client.example", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_EHLO);
    assert_true(slice_eq(c.arg, SLICE_LIT("client.example")));
    assert_int_equal(parse("EHLO", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("XYZZY", &c), SMTP_PARSE_UNKNOWN);
    assert_int_equal(parse("MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME SMTPUTF8", &c),
                     SMTP_PARSE_OK);
    assert_true(slice_eq(c.path, SLICE_LIT("a@example.org")));
    assert_int_equal(c.n_params, 3);
    assert_true(slice_eq(c.params[0].value, SLICE_LIT("100")));
    assert_null(c.params[2].value.ptr);
    assert_int_equal(parse("MAIL FROM:<>", &c), SMTP_PARSE_OK);
    assert_int_equal(c.path.len, 0);
    assert_int_equal(parse("MAIL FROM: <a@example.org>", &c), SMTP_PARSE_OK);
    assert_int_equal(parse("MAIL FROM:a@example.org", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("MAIL FROM:<a b@example.org>", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("MAIL FROM:<a@exa..mple>", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("RCPT TO:<>", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("RCPT TO:<Postmaster>", &c), SMTP_PARSE_OK);
    assert_int_equal(parse("RCPT TO:<@a,@b:u@example.test>", &c), SMTP_PARSE_OK);
    assert_true(slice_eq(c.path, SLICE_LIT("u@example.test")));
    assert_int_equal(parse("RCPT TO:<\"john doe\"@example.test>", &c), SMTP_PARSE_OK);
    assert_int_equal(parse("RCPT TO:<j\xc3\xb6rg@example.test>", &c), SMTP_PARSE_OK);
    assert_true(c.path_utf8);
    assert_int_equal(parse("RCPT TO:<a@b> NOTIFY=", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("BDAT 42 LAST", &c), SMTP_PARSE_OK);
    assert_int_equal(c.chunk_size, 42);
    assert_true(c.last);
    assert_int_equal(parse("BDAT 42", &c), SMTP_PARSE_OK);
    assert_false(c.last);
    assert_int_equal(parse("BDAT x", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("BDAT 99999999999999999999999", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("DATA x", &c), SMTP_PARSE_SYNTAX);
    assert_int_equal(parse("STARTTLS", &c), SMTP_PARSE_OK);
}

static void test_decoders(void **state)
{
    struct buf b = BUF_INIT;
    assert_true(smtp_xtext_decode(SLICE_LIT("a+2Bb+3D"), &b));
    assert_string_equal(buf_cstr(&b), "a+b=");
    assert_false(smtp_xtext_decode(SLICE_LIT("a+2"), &b));
    assert_false(smtp_xtext_decode(SLICE_LIT("a+zz"), &b));
    buf_free(&b);
}

struct scan_case {
    const char *in;
    size_t in_len;
    bool done;
    size_t consumed;
    const char *out; /* NULL: refused */
    enum smtp_newline_mode mode;
};

static void run_case(const struct scan_case *tc, bool bytewise)
{
    struct smtp_data_limits lim = {
        .max_size = 1000, .max_line = 100, .max_header = 500, .newline = tc->mode};
    struct buf out = BUF_INIT;
    struct smtp_scanner sc;
    smtp_scanner_init(&sc, &lim, false, false, &out);
    size_t used = 0, took;
    enum smtp_scan_result r = SMTP_SCAN_NEED_MORE;
    if (bytewise) {
        for (size_t i = 0; i < tc->in_len && r != SMTP_SCAN_DONE; i++) {
            r = smtp_scanner_feed(&sc, tc->in + i, 1, &took);
            used += took;
        }
    } else {
        r = smtp_scanner_feed(&sc, tc->in, tc->in_len, &used);
    }
    assert_int_equal(r == SMTP_SCAN_DONE, tc->done);
    if (tc->done)
        assert_int_equal(used, tc->consumed);
    if (tc->out) {
        assert_false(smtp_scanner_failed(&sc));
        assert_int_equal(out.len, strlen(tc->out));
        assert_memory_equal(out.data, tc->out, out.len);
    } else {
        assert_true(smtp_scanner_failed(&sc));
    }
    buf_free(&out);
}

#define S(x) x, sizeof(x) - 1

static void test_scanner(void **state)
{
    const struct scan_case cases[] = {
        {S("a\r\n.\r\n"), true, 6, "a\r\n", SMTP_NEWLINE_REJECT},
        {S(".\r\n"), true, 3, "", SMTP_NEWLINE_REJECT},
        {S("a\r\n..b\r\n.\r\nQUIT\r\n"), true, 11, "a\r\n.b\r\n", SMTP_NEWLINE_REJECT},
        {S("a\r\n.x\r\n"), false, 0, "a\r\nx\r\n", SMTP_NEWLINE_REJECT},
        /* The smuggling family: none of these ends the data, all are refused. */
        {S("a\n.\nMAIL FROM:<x@y>\r\n.\r\n"), true, 24, NULL, SMTP_NEWLINE_REJECT},
        {S("a\r.\rRCPT\r\n.\r\n"), true, 13, NULL, SMTP_NEWLINE_REJECT},
        {S("a\r\n.\nRCPT\r\n.\r\n"), true, 14, NULL, SMTP_NEWLINE_REJECT},
        {S("a\n.\r\nRCPT\r\n.\r\n"), true, 14, NULL, SMTP_NEWLINE_REJECT},
        {S("a\n.\n"), false, 0, NULL, SMTP_NEWLINE_REJECT},
        {S("a\r\n.\n"), false, 0, NULL, SMTP_NEWLINE_REJECT},
        {S("a\n.\r\n"), false, 0, NULL, SMTP_NEWLINE_REJECT},
        /* Normalize: bare ends become CRLF, the end is still only CRLF.CRLF. */
        {S("a\nb\r\n.\r\n"), true, 8, "a\r\nb\r\n", SMTP_NEWLINE_NORMALIZE},
        {S("a\n.\r\nb\r\n.\r\n"), true, 11, "a\r\n.\r\nb\r\n", SMTP_NEWLINE_NORMALIZE},
        {S("a\r\n.\nb\r\n.\r\n"), true, 11, "a\r\n.\r\nb\r\n", SMTP_NEWLINE_NORMALIZE},
        {S("a\rb\r\n.\r\n"), true, 8, "a\r\nb\r\n", SMTP_NEWLINE_NORMALIZE},
        /* Header section and line limits. */
        {S("x: 0123456789012345678901234567890123456789012345678901234567890123456789"
           "01234567890123456789012345678901234567890\r\n\r\nb\r\n.\r\n"),
         true, 124, NULL, SMTP_NEWLINE_REJECT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_case(&cases[i], false);
        run_case(&cases[i], true);
    }
}

static void test_size_limit(void **state)
{
    struct smtp_data_limits lim = {.max_size = 10, .newline = SMTP_NEWLINE_REJECT};
    struct buf out = BUF_INIT;
    struct smtp_scanner sc;
    smtp_scanner_init(&sc, &lim, false, false, &out);
    size_t took;
    const char *msg = "0123456789abcdef\r\n.\r\n";
    assert_int_equal(smtp_scanner_feed(&sc, msg, strlen(msg), &took), SMTP_SCAN_DONE);
    assert_true(sc.oversize);
    assert_true(out.len <= 10); /* never stored beyond the limit */
    buf_free(&out);
}

static void test_bdat(void **state)
{
    struct smtp_data_limits lim = {.max_size = 100, .newline = SMTP_NEWLINE_REJECT};
    struct buf out = BUF_INIT;
    struct smtp_scanner sc;
    smtp_scanner_init(&sc, &lim, true, false, &out);
    size_t took;
    const char *msg = "a\r\n.\r\n..b\r\n";
    assert_int_equal(smtp_scanner_feed(&sc, msg, strlen(msg), &took), SMTP_SCAN_NEED_MORE);
    smtp_scanner_finish(&sc);
    assert_false(smtp_scanner_failed(&sc));
    assert_int_equal(out.len, strlen(msg)); /* no dot handling in BDAT */
    smtp_scanner_init(&sc, &lim, true, false, &out);
    assert_int_equal(smtp_scanner_feed(&sc, "x\r", 2, &took), SMTP_SCAN_NEED_MORE);
    smtp_scanner_finish(&sc);
    assert_true(sc.bare_cr);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands), cmocka_unit_test(test_decoders),
        cmocka_unit_test(test_scanner),  cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_bdat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
