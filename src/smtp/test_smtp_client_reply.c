/*
 * test_smtp_client_reply.c - the SMTP client's reply parser, whole and one
 * byte at a time, its limits and malformed replies; EHLO keywords; xtext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "smtp/smtp_client_reply.h"

/* Parses all of in, one byte per call when bytewise; returns the number of replies. */
static int parse_all(const char *in, bool bytewise, struct smtp_reply_parser *p, int *codes,
                     enum smtp_reply_status *last_r)
{
    size_t len = strlen(in), off = 0;
    int n = 0;
    *last_r = SMTP_REPLY_MORE;
    while (off < len) {
        size_t used = 0, chunk = bytewise ? 1 : len - off;
        enum smtp_reply_status st = smtp_reply_parse(p, in + off, chunk, &used);
        *last_r = st;
        if (st == SMTP_REPLY_ERROR)
            return n;
        if (st == SMTP_REPLY_DONE)
            codes[n++] = p->reply.code;
        off += used;
    }
    return n;
}

static void test_multiline_and_pipelined(void **state)
{
    (void)state;
    const char *in = "250-mx.example.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
                     "250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                     "250 2.1.0 Ok\r\n550 5.1.1 <x@y>: no such user\r\n354 go ahead\n";
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct smtp_reply_parser p;
        smtp_reply_parser_init(&p, 512, 10);
        int codes[8];
        enum smtp_reply_status last;
        size_t len = strlen(in), off = 0, used;
        /* first reply: the EHLO reply */
        while (smtp_reply_parse(&p, in + off, bytewise ? 1 : len - off, &used) == SMTP_REPLY_MORE)
            off += used;
        off += used;
        assert_int_equal(p.reply.code, 250);
        assert_int_equal(p.reply.n_lines, 5);
        struct smtp_caps caps;
        smtp_caps_parse(&p.reply, &caps);
        assert_true(caps.pipelining);
        assert_true(caps.eightbitmime);
        assert_true(caps.auth_plain && caps.auth_login);
        assert_false(caps.chunking);
        assert_int_equal(caps.size, 1000);
        int n = parse_all(in + off, bytewise, &p, codes, &last);
        assert_int_equal(n, 3);
        assert_int_equal(last, SMTP_REPLY_DONE);
        assert_int_equal(codes[0], 250);
        assert_int_equal(codes[1], 550);
        assert_int_equal(codes[2], 354);
        assert_string_equal(p.reply.text.data, "go ahead");
        smtp_reply_parser_free(&p);
    }
}

static void test_enhanced_status(void **state)
{
    (void)state;
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p, 512, 10);
    size_t used;
    const char *in = "550-5.1.1 first\r\n550 5.1.1 second\r\n";
    assert_int_equal(smtp_reply_parse(&p, in, strlen(in), &used), SMTP_REPLY_DONE);
    assert_string_equal(p.reply.enh, "5.1.1");
    assert_string_equal(p.reply.text.data, "first\n5.1.1 second");
    /* a status of the wrong class is text, not a status */
    const char *in2 = "451 5.1.1 odd\r\n";
    assert_int_equal(smtp_reply_parse(&p, in2, strlen(in2), &used), SMTP_REPLY_DONE);
    assert_string_equal(p.reply.enh, "");
    const char *in3 = "250\r\n";
    assert_int_equal(smtp_reply_parse(&p, in3, strlen(in3), &used), SMTP_REPLY_DONE);
    assert_int_equal(p.reply.code, 250);
    assert_string_equal(p.reply.text.data, "");
    smtp_reply_parser_free(&p);
}

static void expect_error(const char *in, size_t line_max, size_t lines_max)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct smtp_reply_parser p;
        smtp_reply_parser_init(&p, line_max, lines_max);
        int codes[8];
        enum smtp_reply_status last;
        parse_all(in, bytewise, &p, codes, &last);
        assert_int_equal(last, SMTP_REPLY_ERROR);
        smtp_reply_parser_free(&p);
    }
}

static void test_malformed(void **state)
{
    (void)state;
    expect_error("25\r\n", 512, 10);
    expect_error("abc hello\r\n", 512, 10);
    expect_error("250-a\r\n251 b\r\n", 512, 10);         /* codes disagree */
    expect_error("250xhello\r\n", 512, 10);              /* bad separator */
    expect_error("150 preliminary\r\n", 512, 10);        /* no 1yz in SMTP */
    expect_error("250 a\rb\r\n", 512, 10);               /* bare CR */
    expect_error("250-a\r\n250-b\r\n250-c\r\n", 512, 2); /* too many lines */
    char longline[600];
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "250 ", 4);
    longline[sizeof(longline) - 1] = '\0';
    expect_error(longline, 512, 10); /* too long, even without its LF */
}

static void test_xtext(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    smtp_xtext_encode(SLICE_LIT("rfc822;a+b=c d@x"), &b);
    assert_string_equal(b.data, "rfc822;a+2Bb+3Dc+20d@x");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multiline_and_pipelined),
        cmocka_unit_test(test_enhanced_status),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_xtext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
