/*
 * test_mime_mutf7.c - modified UTF-7 mailbox names (RFC 3501 5.1.3): the
 * RFC's examples, round trips, and the strictness that gives each mailbox
 * one spelling on the wire.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mime/mutf7.h"

static void roundtrip(const char *utf8, const char *utf7)
{
    struct buf b = BUF_INIT;
    assert_true(mutf7_encode(slice_from_cstr(utf8), &b));
    assert_string_equal(buf_cstr(&b), utf7);
    buf_reset(&b);
    assert_true(mutf7_decode(slice_from_cstr(utf7), &b));
    assert_string_equal(buf_cstr(&b), utf8);
    buf_free(&b);
}

static void test_examples(void **state)
{
    (void)state;
    roundtrip("INBOX", "INBOX");
    roundtrip("", "");
    roundtrip("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
              "~peter/mail/&U,BTFw-/&ZeVnLIqe-"); /* RFC 3501 5.1.3 */
    roundtrip("Entw\xc3\xbcrfe", "Entw&APw-rfe");
    roundtrip("A&B", "A&-B");
    roundtrip("&", "&-");
    roundtrip("\xc3\xa4\xc3\xb6\xc3\xbc", "&AOQA9gD8-"); /* 3 chars: 48 bits, no padding */
    roundtrip("\xc3\xa4\xc3\xb6", "&AOQA9g-");           /* 32 bits: 4 zero bits */
    roundtrip("\xf0\x9f\x98\x81", "&2D3eAQ-");           /* a surrogate pair */
    roundtrip("a\tb", "a&AAk-b");                        /* a control character */
    roundtrip("Caf\xc3\xa9 & Co/\xe2\x98\xba", "Caf&AOk- &- Co/&Jjo-");
}

static void bad_utf7(const char *in)
{
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "keep");
    assert_false(mutf7_decode(slice_from_cstr(in), &b));
    assert_string_equal(buf_cstr(&b), "keep"); /* out left as it was */
    buf_free(&b);
}

static void test_invalid(void **state)
{
    (void)state;
    bad_utf7("&Jjo");            /* unterminated */
    bad_utf7("&-&");             /* a lone & at the end */
    bad_utf7("&Jjo!-");          /* not base64 */
    bad_utf7("&Jj/-");           /* "/" is "," in modified BASE64 */
    bad_utf7("&AGE-");           /* "a", printable ASCII encoded */
    bad_utf7("&ACY-");           /* "&" must be "&-" */
    bad_utf7("&AAA-");           /* NUL */
    bad_utf7("&2D0-");           /* a high surrogate alone */
    bad_utf7("&3gE-");           /* a low surrogate alone */
    bad_utf7("&2D3YPQ-");        /* a high surrogate followed by another */
    bad_utf7("&APx-");           /* non-zero padding bits */
    bad_utf7("&APwA-");          /* a 6-bit group too many */
    bad_utf7("&AOQ-&APY-");      /* two shifts in a row: one name, one spelling */
    bad_utf7("Entw\xc3\xbcrfe"); /* 8-bit bytes are not modified UTF-7 */
    bad_utf7("a\tb");            /* a control character sent as itself */
    struct buf b = BUF_INIT;
    assert_true(mutf7_decode(SLICE_LIT("&-&AOQ-"), &b)); /* "&-" is not a shift */
    assert_string_equal(buf_cstr(&b), "&\xc3\xa4");
    buf_free(&b);
}

static void test_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc3",             /* truncated */
        "\xc0\xaf",         /* overlong "/" */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* a surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xff",
        "a\x80",
    };
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(mutf7_utf8_valid(slice_from_cstr(bad[i])));
        assert_false(mutf7_encode(slice_from_cstr(bad[i]), &b));
        assert_int_equal(b.len, 0);
    }
    assert_true(mutf7_utf8_valid(SLICE_LIT("Entw\xc3\xbcrfe \xf0\x9f\x98\x81")));
    buf_free(&b);
}

static void test_net_unicode(void **state)
{
    (void)state;
    assert_true(mutf7_net_unicode(SLICE_LIT("")));
    assert_true(mutf7_net_unicode(SLICE_LIT("Entw\xc3\xbcrfe/\xe6\x97\xa5 \xf0\x9f\x98\x81")));
    assert_false(mutf7_net_unicode(SLICE_LIT("Entwu\xcc\x88rfe"))); /* NFD: u + U+0308 */
    assert_false(mutf7_net_unicode(SLICE_LIT("\xe2\x84\xab")));     /* U+212B -> U+00C5 */
    assert_false(mutf7_net_unicode(SLICE_LIT("a\tb")));
    assert_false(mutf7_net_unicode(SLICE_LIT("a\x7f")));
    assert_false(mutf7_net_unicode(SLICE_LIT("a\xc2\x85"))); /* C1 NEL */
    assert_false(mutf7_net_unicode(SLICE_LIT("caf\xe9")));   /* Latin-1, not UTF-8 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_net_unicode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
