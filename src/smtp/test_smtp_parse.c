/*
 * test_smtp_parse.c - unit tests of the SMTP command parser and decoders
 * (the DATA reader's are src/net/test_dotread.c).
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

static void test_linkstate(void **state)
{
    (void)state;
    struct smtp_cmd c;
    assert_int_equal(parse("X-WHARF-LINKSTATE 1 b1.rg-b_2", &c), SMTP_PARSE_OK);
    assert_int_equal(c.verb, SMTP_XWHARFLINKSTATE);
    assert_true(slice_eq(c.ls_server, SLICE_LIT("b1.rg-b_2")));
    assert_int_equal(parse("x-wharf-linkstate 1 a", &c), SMTP_PARSE_OK);
    /* no argument, another version, two names, a bad character, too long, no space */
    const char *bad[] = {"X-WHARF-LINKSTATE",
                         "X-WHARF-LINKSTATE 2 b1",
                         "X-WHARF-LINKSTATE 1 b 1",
                         "X-WHARF-LINKSTATE 1 b/1",
                         "X-WHARF-LINKSTATE 1",
                         "X-WHARF-LINKSTATE 1  b1",
                         "X-WHARF-LINKSTATE 1b1",
                         "X-WHARF-LINKSTATE 1 "
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &c), SMTP_PARSE_SYNTAX);
    /* Exchange's verb is not ours */
    assert_int_equal(parse("X-LINK2STATE FIRST CHUNK=x", &c), SMTP_PARSE_UNKNOWN);
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

/* Fields of the header section only, names case-insensitive, counted up to the limit. */
static void test_header_count(void **state)
{
    (void)state;
    struct slice m = slice_from_cstr("Received: a\r\n\tfolded: not a field\r\nreceived: b\r\n"
                                     "Received-SPF: pass\r\nSubject: x\r\n\r\nReceived: body\r\n");
    assert_int_equal(smtp_header_count(m, "Received", 100), 2);
    assert_int_equal(smtp_header_count(m, "Received", 1), 1);
    assert_int_equal(smtp_header_count(m, "Folded", 100), 0);
    assert_true(smtp_header_present(m, "subject"));
    assert_false(smtp_header_present(m, "Date"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_linkstate),
        cmocka_unit_test(test_decoders),
        cmocka_unit_test(test_header_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
