/*
 * test_mime_imap.c - exact IMAP wire forms: ENVELOPE and BODYSTRUCTURE of the
 * samples (expected strings produced by Dovecot 2.3.19, see
 * test_mime_samples.h), BODY without extensions, IMAP strings, and the
 * section locator.
 */
#include "mime/mime.h"
#include "mime/test_mime_samples.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void check_forms(const char *data, size_t len, const char *env, const char *bs)
{
    struct mime_message m;
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_parse(&m, slice_make(data, len), NULL);
    mime_imap_envelope(&out, &m, m.root);
    assert_string_equal(buf_cstr(&out), env);
    buf_reset(&out);
    mime_imap_bodystructure(&out, &m, m.root, true);
    assert_string_equal(buf_cstr(&out), bs);
    buf_free(&out);
    mime_message_free(&m);
}

static void test_sample_a(void **state)
{
    size_t n;
    char *s = sample_crlf(SAMPLE_A, &n);
    check_forms(s, n, A_ENVELOPE, A_BODYSTRUCTURE);
    /* LF input gives the same sizes: IMAP sizes count the CRLF form */
    check_forms(SAMPLE_A, strlen(SAMPLE_A), A_ENVELOPE, A_BODYSTRUCTURE);
    free(s);
}

static void test_sample_b(void **state)
{
    size_t n;
    char *s = sample_crlf(SAMPLE_B, &n);
    check_forms(s, n, B_ENVELOPE, B_BODYSTRUCTURE);
    free(s);
}

static void test_sample_d(void **state)
{
    size_t n;
    char *s = sample_crlf(SAMPLE_D, &n);
    check_forms(s, n, D_ENVELOPE, D_BODYSTRUCTURE);
    free(s);
}

/* Repeated fields: address fields are merged, Date/Subject/Message-ID and
 * Content-Disposition come from the last occurrence, other Content-* fields
 * from the first; extended parameters sorted by name; MESSAGE/RFC822 spelt
 * "message" "rfc822". Expected strings from Dovecot 2.3.19. */
static void test_repeated_fields(void **state)
{
    static const char rep[] =
        "To: a@b\nCc: c@d\nCC: e@f (E)\nSubject: first\nSubject: second\nContent-Type: "
        "multipart/signed; "
        "micalg*=us-ascii''pgp-md5;\n\tprotocol*=us-ascii''application%2Fpgp-signature;"
        "\n\tboundary=x\n\n--x\nContent-Type: MESSAGE/RFC822\n\nSubject: in\n\nb\n--x--\n";
    check_forms(
        rep, strlen(rep),
        "(NIL \"second\" NIL NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"c\" \"d\")(\"E\" NIL "
        "\"e\" \"f\")) NIL NIL NIL)",
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 16 (NIL \"in\" NIL NIL NIL NIL NIL NIL NIL "
        "NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL) "
        "2 NIL NIL NIL NIL) \"signed\" (\"boundary\" \"x\" \"micalg*\" \"us-ascii''pgp-md5\" "
        "\"protocol*\" \"us-ascii''application%2Fpgp-signature\") NIL NIL NIL)");
    static const char dup[] =
        "Content-Type: text/html\nContent-Type: image/gif\nContent-ID: <1>\nContent-ID: "
        "<2>\nContent-Transfer-Encoding: base64\nContent-Transfer-Encoding: "
        "8bit\nContent-Disposition: inline\nContent-Disposition: attachment\nDate: d1\nDate: "
        "d2\nMessage-ID: <m1>\nMessage-ID: <m2>\nFrom: a@b\nFrom: c@d\n\nx";
    check_forms(
        dup, strlen(dup),
        "(\"d2\" NIL ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) ((NIL NIL \"a\" \"b\")(NIL NIL "
        "\"c\" \"d\")) ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) NIL NIL NIL NIL \"<m2>\")",
        "(\"text\" \"html\" (\"charset\" \"us-ascii\") \"<1>\" NIL \"base64\" 1 0 NIL "
        "(\"attachment\" NIL) NIL NIL)");
}

static void test_body_non_extended(void **state)
{
    size_t n;
    char *s = sample_crlf(SAMPLE_B, &n);
    struct mime_message m;
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_parse(&m, slice_make(s, n), NULL);
    mime_imap_bodystructure(&out, &m, m.root, false);
    assert_string_equal(
        buf_cstr(&out),
        "((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL \"8bit\" 12 1)"
        "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 338 (\"Tue, 12 Mar 2024 12:00:00 +0000\" "
        "\"Lunch?\" ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" "
        "\"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Frank\" NIL \"frank\" "
        "\"example.com\")) NIL NIL NIL \"<inner@example.org>\") ((\"text\" \"plain\" (\"charset\" "
        "\"us-ascii\") NIL NIL \"7bit\" 14 0)(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
        "\"7bit\" 21 0) \"alternative\") 17) \"mixed\")");
    buf_free(&out);
    mime_message_free(&m);
    free(s);
}

static void test_edge_forms(void **state)
{
    /* no header at all; multipart without boundary (an empty text part
     * keeps the grammar); Content-Language list; RFC 2231 without charset */
    check_forms(
        "\r\nx", 3, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0 NIL NIL NIL NIL)");
    static const char nob[] = "Content-Type: multipart/mixed\r\nContent-Language: en, de\r\n\r\nx";
    check_forms(nob, strlen(nob), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
                "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL "
                "NIL) \"mixed\" NIL NIL (\"en\" \"de\") NIL)");
    static const char cont[] = "Content-Type: image/gif; name*0=\"a b\"; name*1=.gif\r\n\r\n";
    check_forms(cont, strlen(cont), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
                "(\"image\" \"gif\" (\"name\" \"a b.gif\") NIL NIL \"7bit\" 0 NIL NIL NIL NIL)");
    /* a message/rfc822 part cut by the depth limit still has the msg form */
    struct mime_limits lim = {.max_depth = 1, .max_parts = 10, .max_fields = 10};
    static const char deep[] =
        "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n"
        "Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n--z--\r\n";
    struct mime_message m;
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_parse(&m, SLICE_LIT(deep), &lim);
    mime_imap_bodystructure(&out, &m, m.root, false);
    assert_string_equal(buf_cstr(&out),
                        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 15 (NIL NIL NIL NIL NIL NIL "
                        "NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
                        "\"7bit\" 0 0) 2) \"mixed\")");
    buf_free(&out);
    mime_message_free(&m);
}

static void test_imap_string(void **state)
{
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_imap_string(&out, SLICE_LIT("plain text"));
    buf_append_byte(&out, ' ');
    mime_imap_string(&out, SLICE_LIT("q\"x"));
    buf_append_byte(&out, ' ');
    mime_imap_string(&out, SLICE_LIT("caf\xc3\xa9"));
    buf_append_byte(&out, ' ');
    mime_imap_string(&out, slice_make("a\0b", 3));
    buf_append_byte(&out, ' ');
    mime_imap_nstring(&out, SLICE_NULL);
    buf_append_byte(&out, ' ');
    mime_imap_nstring(&out, SLICE_LIT(""));
    buf_append_byte(&out, ' ');
    mime_imap_string_human(&out, SLICE_LIT("  Re: a\r\n\tb  "));
    buf_append_byte(&out, ' ');
    mime_imap_string_human(&out, SLICE_LIT("Re: plain"));
    buf_append_byte(&out, ' ');
    mime_imap_string_human(&out, SLICE_LIT(" \r\n "));
    buf_append_byte(&out, ' ');
    mime_imap_string_human(&out, slice_make("q\"\0", 3));
    assert_string_equal(buf_cstr(&out),
                        "\"plain text\" \"q\\\"x\" {5}\r\ncaf\xc3\xa9 {2}\r\nab NIL \"\" "
                        "{7}\r\nRe: a b \"Re: plain\" \"\" {3}\r\nq\"\x80");
    buf_free(&out);
}

struct sec_case {
    const char *spec;
    enum mime_section_result r;
    const char *want; /* LF form of the expected bytes */
};

static void check_sections(const char *lf_msg, const struct sec_case *cases, size_t n)
{
    size_t len;
    char *s = sample_crlf(lf_msg, &len);
    struct mime_message m;
    struct mime_section sec;
    buf_init(&sec.built);
    mime_parse(&m, slice_make(s, len), NULL);
    for (size_t i = 0; i < n; i++) {
        enum mime_section_result r = mime_section_locate(&m, slice_from_cstr(cases[i].spec), &sec);
        print_message("section %s\n", cases[i].spec);
        assert_int_equal(r, cases[i].r);
        if (cases[i].want == NULL)
            continue;
        size_t wl;
        char *want = sample_crlf(cases[i].want, &wl);
        if (r == MIME_SECTION_RANGE) {
            assert_int_equal(sec.len, wl);
            assert_memory_equal(s + sec.start, want, wl);
        } else {
            assert_string_equal(buf_cstr(&sec.built), want);
        }
        free(want);
    }
    buf_free(&sec.built);
    mime_message_free(&m);
    free(s);
}

static void test_sections_b(void **state)
{
    static const struct sec_case cases[] = {
        {"1", MIME_SECTION_RANGE, "See b\xe9low.\n"},
        {"1.MIME", MIME_SECTION_RANGE,
         "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"},
        {"2.MIME", MIME_SECTION_RANGE,
         "Content-Type: message/rfc822\nContent-Disposition: inline\n\n"},
        {"2.1", MIME_SECTION_RANGE, "Lunch at noon?"},
        {"2.2.MIME", MIME_SECTION_RANGE, "Content-Type: text/html\n\n"},
        {"2.TEXT", MIME_SECTION_RANGE,
         "--b2\nContent-Type: text/plain\n\nLunch at noon?\n--b2\nContent-Type: text/html\n\n"
         "<b>Lunch</b> at noon?\n--b2--\n"},
        {"2.HEADER.FIELDS (Subject \"TO\")", MIME_SECTION_BUILT,
         "To: Frank <frank@example.com>\nSubject: Lunch?\n\n"},
        {"HEADER.FIELDS.NOT (From To Subject Date Message-ID MIME-Version)", MIME_SECTION_BUILT,
         "Content-Type: multipart/mixed; boundary=b1\n\n"},
        {"HEADER.FIELDS (X-None)", MIME_SECTION_BUILT, "\n"},
        {"1.HEADER", MIME_SECTION_NONE, NULL},
        {"3", MIME_SECTION_NONE, NULL},
        {"1.1", MIME_SECTION_RANGE, "See b\xe9low.\n"}, /* a leaf is its own part 1 */
        {"1.2", MIME_SECTION_NONE, NULL},
        {"2.3", MIME_SECTION_NONE, NULL},
        {"0", MIME_SECTION_BAD, NULL},
        {"1.", MIME_SECTION_BAD, NULL},
        {"FOO", MIME_SECTION_BAD, NULL},
        {"HEADER.FIELDS", MIME_SECTION_BAD, NULL},
        {"HEADER.FIELDS ()", MIME_SECTION_BAD, NULL},
        {"HEADER.FIELDS (From", MIME_SECTION_BAD, NULL},
        {"99999999999999999999", MIME_SECTION_BAD, NULL},
    };
    check_sections(SAMPLE_B, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_sections_single_part(void **state)
{
    static const char msg[] = "Subject: one\n\nonly body\n";
    static const struct sec_case cases[] = {
        {"", MIME_SECTION_RANGE, "Subject: one\n\nonly body\n"},
        {"HEADER", MIME_SECTION_RANGE, "Subject: one\n\n"},
        {"TEXT", MIME_SECTION_RANGE, "only body\n"},
        {"1", MIME_SECTION_RANGE, "only body\n"},
        {"1.MIME", MIME_SECTION_RANGE, "Subject: one\n\n"},
        {"2", MIME_SECTION_NONE, NULL},
        {"1.1", MIME_SECTION_NONE, NULL},
        {"1.2", MIME_SECTION_NONE, NULL},
    };
    check_sections(msg, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_sections_lf_built_crlf(void **state)
{
    /* a constructed subset is sent as is: bare LF input gives CRLF output */
    static const char msg[] = "Received: a\n\tb\nSubject: s\nreceived: c\n\nbody\n";
    struct mime_message m;
    struct mime_section sec;
    buf_init(&sec.built);
    mime_parse(&m, SLICE_LIT(msg), NULL);
    assert_int_equal(mime_section_locate(&m, SLICE_LIT("HEADER.FIELDS (RECEIVED)"), &sec),
                     MIME_SECTION_BUILT);
    assert_string_equal(buf_cstr(&sec.built), "Received: a\r\n\tb\r\nreceived: c\r\n\r\n");
    assert_int_equal(mime_section_locate(&m, SLICE_LIT("HEADER.FIELDS.NOT (received)"), &sec),
                     MIME_SECTION_BUILT);
    assert_string_equal(buf_cstr(&sec.built), "Subject: s\r\n\r\n");
    buf_free(&sec.built);
    mime_message_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_a),
        cmocka_unit_test(test_sample_b),
        cmocka_unit_test(test_sample_d),
        cmocka_unit_test(test_repeated_fields),
        cmocka_unit_test(test_body_non_extended),
        cmocka_unit_test(test_edge_forms),
        cmocka_unit_test(test_imap_string),
        cmocka_unit_test(test_sections_b),
        cmocka_unit_test(test_sections_single_part),
        cmocka_unit_test(test_sections_lf_built_crlf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
