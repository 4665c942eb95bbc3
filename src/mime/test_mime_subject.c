/*
 * test_mime_subject.c - base subject extraction (RFC 5256 section 2.1), the
 * heart of IMAP SORT SUBJECT and THREAD and of the store's JMAP threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mime/mime.h"

static void check(const char *subject, const char *base, bool reply)
{
    struct buf b = BUF_INIT;
    bool r = mime_base_subject(slice_from_cstr(subject), &b);
    assert_string_equal(buf_cstr(&b), base);
    assert_int_equal(r, reply);
    buf_free(&b);
}

static void test_base_subject(void **state)
{
    (void)state;
    check("hello", "hello", false);
    check("Re: hello", "hello", true);
    check("RE: Re: re[2]: hello", "hello", true);
    check("Fwd: hello (fwd)", "hello", true);
    check("Fw:hello", "hello", true);
    check("[list] Re: hello", "hello", true);
    check("[list] hello", "hello", false); /* a blob alone: not a reply */
    check("[list]", "[list]", false);      /* nothing would stay: kept */
    check("[fwd: Re: hello]", "hello", true);
    check("  hello \t  world  ", "hello world", false);
    check("=?UTF-8?Q?Re=3A_caf=C3=A9?=", "café", true);
    check("Re:", "", true);
    check("", "", false);
    check("Reply to all", "Reply to all", false); /* "Re" without ":" */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_base_subject)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
