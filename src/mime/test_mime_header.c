/*
 * test_mime_header.c - unfolding, RFC 2047 encoded-words (UTF-8,
 * ISO-8859-1, windows-1252, unknown charsets, malformed words), RFC 2231
 * parameters, and the base64 / quoted-printable decoders.
 */
#include "mime/mime.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void check_words(const char *in, const char *want)
{
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_decode_words(slice_from_cstr(in), &out);
    print_message("words: %s\n", in);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static void test_unfold(void **state)
{
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_unfold(SLICE_LIT("  a\r\n b\n\tc \r\n"), &out);
    assert_string_equal(buf_cstr(&out), "a b\tc");
    buf_free(&out);
}

static void test_encoded_words(void **state)
{
    /* UTF-8, Q and B, adjacent words joined (the white space between them goes) */
    check_words("=?UTF-8?Q?R=C3=A9union_du_lundi?= =?UTF-8?Q?_=E2=80=94_ordre?=\r\n du jour",
                "R\xc3\xa9union du lundi \xe2\x80\x94 ordre du jour");
    check_words("=?UTF-8?B?QWxpY2Ugw4VrZXJtYW4=?= <a@b>", "Alice \xc3\x85kerman <a@b>");
    /* ISO-8859-1 and windows-1252 (curly quotes are not in Latin-1) */
    check_words("=?ISO-8859-1?Q?caf=E9?=", "caf\xc3\xa9");
    check_words("=?windows-1252?Q?Fran=E7ois_=93Frank=94?=", "Fran\xc3\xa7ois \xe2\x80\x9c"
                                                             "Frank\xe2\x80\x9d");
    /* a UTF-8 character split across two words is joined before conversion */
    check_words("=?utf-8?B?w6k=?= =?utf-8?B?w6k=?=", "\xc3\xa9\xc3\xa9");
    check_words("=?utf-8?Q?=C3?= =?utf-8?Q?=A9?=", "\xc3\xa9");
    /* different charsets side by side */
    check_words("=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "\xc3\xa9\xc3\xa9");
    /* white space between a word and text is kept */
    check_words("a =?utf-8?q?b?= c", "a b c");
    /* RFC 2231 language suffix in the charset */
    check_words("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
    /* unknown charset, invalid UTF-8, bad encoding: kept as written */
    check_words("=?x-unknown?Q?abc?= tail", "=?x-unknown?Q?abc?= tail");
    check_words("=?utf-8?Q?=FF?=", "=?utf-8?Q?=FF?=");
    check_words("=?utf-8?X?abc?=", "=?utf-8?X?abc?=");
    check_words("=?utf-8//TRANSLIT?Q?a?=", "=?utf-8//TRANSLIT?Q?a?=");
    /* unterminated and empty words */
    check_words("=?utf-8?q?abc", "=?utf-8?q?abc");
    check_words("=?utf-8?q?"
                "?=",
                "");
    check_words("==?=?", "==?=?");
    check_words("", "");
    /* plain 8-bit text outside words passes through */
    check_words("caf\xe9", "caf\xe9");
}

static void check_params(const char *raw, enum mime_params_mode mode, const char *value,
                         const char *const *pairs)
{
    struct mime_params p;
    struct slice v;
    mime_params_parse(slice_from_cstr(raw), mode, &v, &p);
    print_message("params: %s\n", raw);
    assert_int_equal(v.len, strlen(value));
    assert_memory_equal(v.ptr, value, v.len);
    size_t n = 0;
    while (pairs[n * 2] != NULL)
        n++;
    assert_int_equal(p.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p.v[i].name.len, strlen(pairs[i * 2]));
        assert_memory_equal(p.v[i].name.ptr, pairs[i * 2], p.v[i].name.len);
        assert_int_equal(p.v[i].value.len, strlen(pairs[i * 2 + 1]));
        assert_memory_equal(p.v[i].value.ptr, pairs[i * 2 + 1], p.v[i].value.len);
    }
    mime_params_free(&p);
}

static void test_params(void **state)
{
    check_params("text/plain; charset=\"UTF-8\"; format=flowed", MIME_PARAMS_DECODE, "text/plain",
                 (const char *const[]){"charset", "UTF-8", "format", "flowed", NULL});
    /* quoted-string escapes, comments, folding, junk */
    check_params(" attachment (c) ;\r\n filename=\"a \\\"q\\\" b.txt\" (x); junk; size = 12",
                 MIME_PARAMS_DECODE, "attachment",
                 (const char *const[]){"filename", "a \"q\" b.txt", "size", "12", NULL});
    /* RFC 2231: continuations, charset, percent-decoding */
    static const char c2231[] = "application/pdf; name*0*=UTF-8''R%C3%A9union%20du;\r\n"
                                " name*1*=%20lundi.pdf; x=1";
    check_params(c2231, MIME_PARAMS_DECODE, "application/pdf",
                 (const char *const[]){"x", "1", "name", "R\xc3\xa9union du lundi.pdf", NULL});
    check_params(
        c2231, MIME_PARAMS_JOIN, "application/pdf",
        (const char *const[]){"x", "1", "name*", "UTF-8''R%C3%A9union%20du%20lundi.pdf", NULL});
    /* ISO-8859-1 with language, sections out of order, a plain duplicate */
    check_params("a; title*1*=%E9; title*0*=iso-8859-1'fr'caf; title=plain", MIME_PARAMS_DECODE,
                 "a", (const char *const[]){"title", "caf\xc3\xa9", NULL});
    /* unencoded continuations join without a charset */
    check_params("image/gif; name*0=\"a b\"; name*1=.gif", MIME_PARAMS_JOIN, "image/gif",
                 (const char *const[]){"name", "a b.gif", NULL});
    /* a gap stops the join; a continuation without section 0 is dropped */
    check_params("a; n*0=x; n*2=z; m*1=q", MIME_PARAMS_DECODE, "a",
                 (const char *const[]){"n", "x", NULL});
    /* a lone name* takes no continuation; a duplicate section 0 is ignored */
    check_params("a; f*=utf-8''x; f*1=y; g*0=1; g*0=2; g*1=3", MIME_PARAMS_DECODE, "a",
                 (const char *const[]){"f", "x", "g", "13", NULL});
    /* extended parameters come after the plain ones, sorted by name */
    check_params("a; z*=''1; b=2; m*0=3", MIME_PARAMS_JOIN, "a",
                 (const char *const[]){"b", "2", "m", "3", "z*", "''1", NULL});
    /* unknown charset: bytes kept as decoded */
    check_params("a; f*=x-nope''%41%42", MIME_PARAMS_DECODE, "a",
                 (const char *const[]){"f", "AB", NULL});
    /* regression: only empty values, the value store was never allocated
     * (UBSan: zero offset applied to a null pointer) */
    check_params("a; b=\"\"; c*=\"\"", MIME_PARAMS_JOIN, "a",
                 (const char *const[]){"b", "", "c*", "''", NULL});
    /* unterminated quote */
    check_params("a; b=\"xyz", MIME_PARAMS_DECODE, "a", (const char *const[]){"b", "xyz", NULL});
    check_params("", MIME_PARAMS_DECODE, "", (const char *const[]){NULL});

    struct mime_params p;
    struct slice v;
    mime_params_parse(SLICE_LIT("multipart/mixed; BOUNDARY=\"=_x\""), MIME_PARAMS_DECODE, &v, &p);
    struct slice b = mime_params_get(&p, "boundary");
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.ptr, "=_x", 3);
    assert_null(mime_params_get(&p, "charset").ptr);
    mime_params_free(&p);
}

static void test_params_bounded(void **state)
{
    struct buf raw = BUF_INIT;
    buf_init(&raw);
    buf_append_cstr(&raw, "a");
    for (int i = 0; i < 1000; i++)
        buf_printf(&raw, "; p%d=%d", i, i);
    struct mime_params p;
    struct slice v;
    mime_params_parse(buf_slice(&raw), MIME_PARAMS_JOIN, &v, &p);
    assert_int_equal(p.n, MIME_MAX_PARAMS);
    mime_params_free(&p);
    buf_free(&raw);
}

static void check_qp(const char *in, const char *want)
{
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_decode_qp(slice_from_cstr(in), &out);
    assert_string_equal(buf_cstr(&out), want);
    size_t size = 0; /* the counting twin agrees with the decoder */
    assert_true(mime_decoded_size(SLICE_LIT("quoted-printable"), slice_from_cstr(in), &size));
    assert_int_equal(size, out.len);
    buf_free(&out);
}

static void test_qp(void **state)
{
    check_qp("Bonjour =C3=A0 tous,\r\nvoici l'ordre du jour.=20\r\nAlice\r\n",
             "Bonjour \xc3\xa0 tous,\r\nvoici l'ordre du jour. \r\nAlice\r\n");
    check_qp("soft=\r\nbreak=\nand lf\n", "softbreakand lf\n");
    check_qp("trailing   \r\nspace=  \r\nx", "trailing\r\nspacex");
    check_qp("bad =ZZ =4 =", "bad =ZZ =4 ");
    check_qp("=3d=3D", "==");
}

static void test_cte_and_charset(void **state)
{
    struct buf out = BUF_INIT;
    buf_init(&out);
    assert_true(mime_decode_cte(SLICE_LIT(" Base64 "), SLICE_LIT("YWJj"), &out));
    assert_string_equal(buf_cstr(&out), "abc");
    buf_reset(&out);
    assert_true(mime_decode_cte(SLICE_LIT("8bit"), SLICE_LIT("x"), &out));
    assert_false(mime_decode_cte(SLICE_LIT("x-uuencode"), SLICE_LIT("y"), &out));
    assert_string_equal(buf_cstr(&out), "xy");
    buf_reset(&out);
    size_t size = 0;
    assert_true(mime_decoded_size(SLICE_LIT(" Base64 "), SLICE_LIT("YWJj\r\nZA=="), &size));
    assert_int_equal(size, 4);
    assert_true(mime_decoded_size(SLICE_LIT(""), SLICE_LIT("abc"), &size));
    assert_int_equal(size, 3);
    assert_false(mime_decoded_size(SLICE_LIT("x-uuencode"), SLICE_LIT("yy"), &size));
    assert_true(mime_charset_to_utf8(SLICE_LIT("iso-8859-15"), SLICE_LIT("\xa4"), &out));
    assert_string_equal(buf_cstr(&out), "\xe2\x82\xac");
    assert_false(mime_charset_to_utf8(SLICE_LIT("utf-8"), SLICE_LIT("\xc3"), &out));
    assert_false(mime_charset_to_utf8(SLICE_LIT("utf-8"), SLICE_LIT("\xed\xa0\x80"), &out));
    assert_false(mime_charset_to_utf8(SLICE_LIT("/etc/passwd"), SLICE_LIT("a"), &out));
    assert_false(mime_charset_to_utf8(SLICE_LIT("shift_jis"), SLICE_LIT("\x82"), &out));
    assert_string_equal(buf_cstr(&out), "\xe2\x82\xac");
    assert_true(mime_charset_to_utf8(SLICE_LIT("SHIFT_JIS"), SLICE_LIT("\x82\xa0"), &out));
    assert_string_equal(buf_cstr(&out), "\xe2\x82\xac\xe3\x81\x82");
    buf_free(&out);
}

static void test_part_text(void **state)
{
    static const char msg[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                              "Content-Type: text/plain; charset=iso-8859-1\r\n"
                              "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9=\r\n!\r\n"
                              "--b\r\nContent-Transfer-Encoding: base64\r\n\r\nw6k=\r\n--b--\r\n";
    struct mime_message m;
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_parse(&m, SLICE_LIT(msg), NULL);
    assert_true(mime_part_text(&m, m.root->children, &out));
    assert_string_equal(buf_cstr(&out), "caf\xc3\xa9!");
    buf_reset(&out);
    /* UTF-8 under the default us-ascii label is taken as UTF-8 */
    assert_true(mime_part_text(&m, m.root->children->next, &out));
    assert_string_equal(buf_cstr(&out), "\xc3\xa9");
    buf_free(&out);
    mime_message_free(&m);
}

/* A part's last line break survives the delimiter after it; a body without one gets none. */
static void test_part_body_write(void **state)
{
    static const char *const bodies[] = {"Ham, cheese, tomato.\n", "no line break", "two\n\n"};
    static const char *const want[] = {"Ham, cheese, tomato.\r\n", "no line break", "two\r\n\r\n"};
    struct buf msg = BUF_INIT, out = BUF_INIT;
    buf_init(&out);
    buf_append_cstr(&msg, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for (size_t i = 0; i < 3; i++) {
        buf_append_cstr(&msg, "--b\r\nContent-Type: text/plain\r\n");
        mime_part_body_write(slice_from_cstr(bodies[i]), true, &msg);
    }
    buf_append_cstr(&msg, "--b--\r\n");
    struct mime_message m;
    mime_parse(&m, buf_slice(&msg), NULL);
    const struct mime_part *p = m.root->children;
    for (size_t i = 0; i < 3; i++, p = p->next) {
        assert_non_null(p);
        buf_reset(&out);
        assert_true(mime_part_text(&m, p, &out));
        assert_string_equal(buf_cstr(&out), want[i]);
    }
    mime_message_free(&m);
    buf_free(&msg);
    buf_free(&out);
}

/* What does not convert is U+FFFD, never dropped, never passed on as it was. */
static void test_part_text_broken(void **state)
{
    static const char msg[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                              "Broken \xff\xfe UTF-8 \xc3\xa9\xe2\x82\r\n"
                              "--b\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\n"
                              "Caf\xe9 \xc3\xa9\r\n"
                              "--b\r\nContent-Type: text/plain; charset=shift_jis\r\n\r\n"
                              "\x82\xa0\x82 \x82\xa0\x82\r\n--b--\r\n";
    struct mime_message m;
    struct buf out = BUF_INIT;
    buf_init(&out);
    mime_parse(&m, SLICE_LIT(msg), NULL);
    const struct mime_part *p = m.root->children;
    assert_false(mime_part_text(&m, p, &out));
    assert_string_equal(buf_cstr(&out), "Broken \xef\xbf\xbd\xef\xbf\xbd UTF-8 \xc3\xa9"
                                        "\xef\xbf\xbd\xef\xbf\xbd");
    buf_reset(&out);
    assert_false(mime_part_text(&m, p->next, &out));
    assert_string_equal(buf_cstr(&out), "Caf\xef\xbf\xbd \xc3\xa9");
    buf_reset(&out);
    assert_false(mime_part_text(&m, p->next->next, &out));
    assert_string_equal(buf_cstr(&out), "\xe3\x81\x82\xef\xbf\xbd \xe3\x81\x82\xef\xbf\xbd");
    buf_free(&out);
    mime_message_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unfold),
        cmocka_unit_test(test_encoded_words),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_params_bounded),
        cmocka_unit_test(test_qp),
        cmocka_unit_test(test_cte_and_charset),
        cmocka_unit_test(test_part_text),
        cmocka_unit_test(test_part_text_broken),
        cmocka_unit_test(test_part_body_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
