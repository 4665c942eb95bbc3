/*
 * test_nntp_parse.c - unit tests of the NNTP command parser, its argument
 * forms (ranges, message-ids, wildmats, dates) and the article header checks.
 */
#include "nntp/nntp_article.h"
#include "nntp/nntp_parse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static enum nntp_parse_result parse(const char *line, struct nntp_command *c)
{
    const char *why;
    return nntp_parse_command(slice_from_cstr(line), c, &why);
}

static void test_commands(void **state)
{
    struct nntp_command c;
    assert_int_equal(parse("group comp.wharf.dev", &c), NNTP_PARSE_OK);
    assert_int_equal(c.cmd, NNTP_CMD_GROUP);
    assert_true(slice_eq(c.args[0], SLICE_LIT("comp.wharf.dev")));
    assert_int_equal(parse("GROUP", &c), NNTP_PARSE_SYNTAX);
    assert_int_equal(parse("GROUP a b", &c), NNTP_PARSE_SYNTAX);
    assert_int_equal(parse("XYZZY", &c), NNTP_PARSE_UNKNOWN);
    assert_int_equal(parse("", &c), NNTP_PARSE_UNKNOWN);
    assert_int_equal(parse("  \t ", &c), NNTP_PARSE_UNKNOWN);
    assert_int_equal(parse("AUTHINFO SASL PLAIN AGFsaWNlAHB3", &c), NNTP_PARSE_OK);
    assert_int_equal(c.n_args, 3);
    assert_int_equal(parse("AUTHINFO PASS correct horse  battery ", &c), NNTP_PARSE_OK);
    assert_int_equal(c.n_args, 2);
    assert_true(slice_eq(c.args[1], SLICE_LIT("correct horse  battery")));
    assert_int_equal(parse("NEWNEWS * 20261205 000000 GMT", &c), NNTP_PARSE_OK);
    assert_int_equal(parse("LIST ACTIVE a b c", &c), NNTP_PARSE_SYNTAX);
    assert_int_equal(parse("ARTICLE\x01", &c), NNTP_PARSE_SYNTAX);
    assert_int_equal(parse("xover 1-5", &c), NNTP_PARSE_OK);
    assert_int_equal(c.cmd, NNTP_CMD_XOVER);
}

static void test_forms(void **state)
{
    uint32_t lo, hi;
    assert_true(nntp_parse_range(SLICE_LIT("5"), &lo, &hi));
    assert_true(lo == 5 && hi == 5);
    assert_true(nntp_parse_range(SLICE_LIT("5-"), &lo, &hi));
    assert_true(lo == 5 && hi == UINT32_MAX);
    assert_true(nntp_parse_range(SLICE_LIT("5-9"), &lo, &hi));
    assert_true(lo == 5 && hi == 9);
    assert_false(nntp_parse_range(SLICE_LIT("-9"), &lo, &hi));
    assert_false(nntp_parse_range(SLICE_LIT("99999999999"), &lo, &hi));
    assert_false(nntp_parse_range(SLICE_LIT("1-2-3"), &lo, &hi));
    assert_true(nntp_msgid_valid(SLICE_LIT("<a@b>")));
    assert_false(nntp_msgid_valid(SLICE_LIT("<a>b>")));
    assert_false(nntp_msgid_valid(SLICE_LIT("<a b>")));
    assert_false(nntp_msgid_valid(SLICE_LIT("a@b")));
    assert_true(nntp_wildmat(SLICE_LIT("comp.*,!comp.x.*"), SLICE_LIT("comp.wharf")));
    assert_false(nntp_wildmat(SLICE_LIT("comp.*,!comp.x.*"), SLICE_LIT("comp.x.y")));
    assert_true(nntp_wildmat(SLICE_LIT("c?mp.*"), SLICE_LIT("comp.a")));
    assert_false(nntp_wildmat(SLICE_LIT("comp"), SLICE_LIT("comp.a")));
    assert_true(nntp_wildmat_valid(SLICE_LIT("a*,!b")));
    assert_false(nntp_wildmat_valid(SLICE_LIT("a,,b")));
    assert_false(nntp_wildmat_valid(SLICE_LIT("!")));
    int64_t t;
    assert_true(nntp_parse_datetime(SLICE_LIT("19700102"), SLICE_LIT("000001"), 0, &t));
    assert_int_equal(t, 86401);
    /* "yy": the century that puts the date nearest before now (2026). */
    assert_true(nntp_parse_datetime(SLICE_LIT("261201"), SLICE_LIT("000000"), 1796428800, &t));
    assert_true(nntp_parse_datetime(SLICE_LIT("20261201"), SLICE_LIT("000000"), 0, &t + 0));
    int64_t t2;
    assert_true(nntp_parse_datetime(SLICE_LIT("20261201"), SLICE_LIT("000000"), 0, &t2));
    assert_int_equal(t, t2);
    assert_false(nntp_parse_datetime(SLICE_LIT("20261301"), SLICE_LIT("000000"), 0, &t));
    assert_false(nntp_parse_datetime(SLICE_LIT("2026121"), SLICE_LIT("000000"), 0, &t));
}

static bool check(const char *a, const char **why)
{
    struct nntp_article_info info;
    return nntp_article_check(slice_from_cstr(a), false, &info, why);
}

static void test_article(void **state)
{
    const char *why;
    struct nntp_article_info info;
    const char *ok = "From: a@b\r\nNewsgroups: comp.wharf.dev, comp.wharf.misc\r\n"
                     "Subject: hi\r\n there\r\n\r\nbody\r\n";
    assert_true(nntp_article_check(slice_from_cstr(ok), false, &info, &why));
    assert_false(nntp_article_check(slice_from_cstr(ok), true, &info, &why)); /* no Path... */
    assert_true(info.has_body);
    assert_null(info.message_id.ptr);
    assert_true(slice_eq(info.from, SLICE_LIT("a@b")));
    struct slice rest = info.newsgroups, g;
    assert_true(nntp_newsgroups_next(&rest, &g));
    assert_true(slice_eq(g, SLICE_LIT("comp.wharf.dev")));
    assert_true(nntp_newsgroups_next(&rest, &g));
    assert_true(slice_eq(g, SLICE_LIT("comp.wharf.misc")));
    assert_false(nntp_newsgroups_next(&rest, &g));
    assert_false(check("From: a@b\r\nSubject: x\r\n\r\nb\r\n", &why)); /* no Newsgroups */
    assert_false(check("From: a@b\r\nFrom: c@d\r\nNewsgroups: a\r\nSubject: x\r\n\r\n", &why));
    assert_false(check("From: a@b\r\nNewsgroups: a..b\r\nSubject: x\r\n\r\n", &why));
    assert_false(check("From: a@b\r\nNewsgroups: a\r\nSubject: x\r\nMessage-ID: x\r\n\r\n", &why));
    assert_false(
        check("From: a@b\r\nNewsgroups: a\r\nSubject: x\r\nInjection-Info: h\r\n\r\n", &why));
    assert_false(check("From a@b\r\nNewsgroups: a\r\nSubject: x\r\n\r\n", &why));
    assert_false(check("From: a@b\nNewsgroups: a\r\nSubject: x\r\n\r\n", &why));
    assert_true(
        check("From: a@b\r\nNewsgroups: a\r\nSubject: x\r\nMessage-ID: <1@b>\r\n\r\n.\r\n", &why));
    /* a body, as INN wants one: none after the header (nnrpd and innd), nothing after the
     * blank line (nnrpd; a control message may) */
    const char *head =
        "Path: p\r\nFrom: a@b\r\nNewsgroups: a\r\nSubject: x\r\nMessage-ID: <1@b>\r\n"
        "Date: Sat, 5 Dec 2026 10:00:00 +0000\r\n";
    struct buf t = BUF_INIT;
    buf_append_cstr(&t, head);
    assert_false(nntp_article_check(buf_slice(&t), false, &info, &why));
    assert_string_equal(why, "Article has no body -- just headers");
    assert_false(nntp_article_check(buf_slice(&t), true, &info, &why));
    buf_append_cstr(&t, "\r\n");
    assert_false(nntp_article_check(buf_slice(&t), false, &info, &why));
    assert_string_equal(why, "Article has no body -- just headers");
    assert_true(nntp_article_check(buf_slice(&t), true, &info, &why)); /* innd takes it */
    buf_append_cstr(&t, " \r\n");
    assert_true(nntp_article_check(buf_slice(&t), false, &info, &why)); /* white space */
    buf_reset(&t);
    buf_printf(&t, "%sControl: cancel <0@b>\r\n\r\n", head);
    assert_true(nntp_article_check(buf_slice(&t), false, &info, &why));
    buf_free(&t);
    const char *peer = "Path: a!b\r\nFrom: a@b\r\nNewsgroups: x\r\nSubject: s\r\n"
                       "Message-ID: <p@b>\r\nDate: Sat, 5 Dec 2026 10:00:00 +0000\r\n"
                       "Injection-Info: a.example\r\n\r\nbody\r\n";
    assert_true(nntp_article_check(slice_from_cstr(peer), true, &info, &why));
    assert_false(nntp_article_check(slice_from_cstr(peer), false, &info, &why));
    struct slice h = SLICE_LIT("Subject: one\r\n two\r\nFrom: x\r\n");
    assert_true(slice_eq(nntp_header_field(h, "from"), SLICE_LIT("x")));
    assert_true(slice_eq(nntp_header_field(h, "Subject"), SLICE_LIT("one\r\n two")));
    assert_null(nntp_header_field(h, "Date").ptr);
}

/* What a reader gets of a stored article: the added fields, a peer's Xref left out, and
 * :bytes counting the CRLF the dot writer ends an article with when it lacks one. */
static void test_reader_header(void **state)
{
    (void)state;
    struct slice a = SLICE_LIT("Subject: s\r\nXref: inn.example g:7\r\n\tg2:8\r\nFrom: x\r\n\r\n"
                               ".dot\r\nb\r\n");
    size_t hlen, body;
    nntp_article_split(a, &hlen, &body);
    assert_int_equal(hlen, a.len - 11); /* "\r\n.dot\r\nb\r\n" */
    assert_int_equal(body, a.len - 9);
    struct buf h = BUF_INIT;
    nntp_article_reader_header(slice_make(a.ptr, hlen), "wharf.example", "comp.x",
                               SLICE_LIT("wharf.example comp.x:3"), &h);
    assert_string_equal(buf_cstr(&h), "Path: wharf.example!not-for-mail\r\nNewsgroups: comp.x\r\n"
                                      "Xref: wharf.example comp.x:3\r\nSubject: s\r\nFrom: x\r\n");
    struct slice rest = slice_make(a.ptr + hlen, a.len - hlen);
    assert_int_equal(nntp_article_bytes(buf_slice(&h), rest), h.len + rest.len);
    assert_int_equal(nntp_article_bytes(buf_slice(&h), SLICE_LIT("\r\nno end")), h.len + 10);
    assert_int_equal(nntp_article_bytes(SLICE_LIT("A: b\r"), SLICE_LIT("\n")), 6);
    assert_int_equal(nntp_article_bytes(SLICE_LIT("A: b"), SLICE_NULL), 6);
    buf_reset(&h);
    /* an article with Path and Newsgroups: nothing missing, no Xref asked */
    nntp_article_reader_header(SLICE_LIT("Path: a!b\r\nNewsgroups: g\r\n"), "h", "g", SLICE_NULL,
                               &h);
    assert_string_equal(buf_cstr(&h), "Path: a!b\r\nNewsgroups: g\r\n");
    buf_reset(&h);
    /* a first line that is no field does not fold into ours (fuzz_nntp_article) */
    nntp_article_reader_header(SLICE_LIT(" x\r\n y\r\nPath: a\r\n"), "h", NULL, SLICE_LIT("h g:1"),
                               &h);
    assert_string_equal(buf_cstr(&h), "Xref: h g:1\r\nPath: a\r\n");
    buf_free(&h);
}

static void test_client_side(void **state)
{
    (void)state;
    int code;
    struct slice text;
    assert_true(nntp_parse_reply(SLICE_LIT("238 <a@b>"), &code, &text));
    assert_int_equal(code, 238);
    assert_true(slice_eq(text, SLICE_LIT("<a@b>")));
    assert_true(nntp_parse_reply(SLICE_LIT("203"), &code, &text));
    assert_int_equal(text.len, 0);
    assert_false(nntp_parse_reply(SLICE_LIT("23 x"), &code, &text));
    assert_false(nntp_parse_reply(SLICE_LIT("2388"), &code, &text));
    assert_false(nntp_parse_reply(SLICE_LIT("099 x"), &code, &text));

    struct nntp_peer_spec p;
    const char *why;
    struct buf w = BUF_INIT;
    assert_true(nntp_peer_spec_parse(SLICE_LIT("news.example=nntp://127.0.0.1:119/comp.*;!comp.x"),
                                     &p, &why));
    assert_true(slice_eq(p.name, SLICE_LIT("news.example")));
    assert_true(slice_eq(p.addr, SLICE_LIT("127.0.0.1:119")));
    assert_true(slice_eq(p.host, SLICE_LIT("127.0.0.1")));
    assert_int_equal(p.port, 119);
    assert_false(p.tls);
    nntp_peer_spec_wildmat(&p, &w);
    assert_string_equal(buf_cstr(&w), "comp.*,!comp.x");
    buf_reset(&w);
    assert_true(nntp_peer_spec_parse(SLICE_LIT("a=nntps://[::1]:563"), &p, &why));
    assert_true(p.tls);
    assert_true(slice_eq(p.addr, SLICE_LIT("[::1]:563")));
    assert_true(slice_eq(p.host, SLICE_LIT("::1")));
    assert_int_equal(p.port, 563);
    nntp_peer_spec_wildmat(&p, &w);
    assert_string_equal(buf_cstr(&w), "*");
    buf_free(&w);
    assert_true(nntp_peer_spec_parse(SLICE_LIT("b=nntps://news.example.net:563/comp.*"), &p, &why));
    assert_true(slice_eq(p.host, SLICE_LIT("news.example.net")));
    assert_false(nntp_peer_spec_parse(SLICE_LIT("nntp://127.0.0.1:119"), &p, &why));
    assert_false(nntp_peer_spec_parse(SLICE_LIT("a!b=nntp://127.0.0.1:119"), &p, &why));
    assert_false(nntp_peer_spec_parse(SLICE_LIT("a=http://127.0.0.1:119"), &p, &why));
    assert_false(nntp_peer_spec_parse(SLICE_LIT("a=nntp://127.0.0.1"), &p, &why));
    assert_false(nntp_peer_spec_parse(SLICE_LIT("a=nntp://[::1]"), &p, &why));
    assert_false(nntp_peer_spec_parse(SLICE_LIT("a=nntp://1.2.3.4:119/a;;b"), &p, &why));

    assert_true(nntp_path_has(SLICE_LIT("wharf.example!news.example!not-for-mail"),
                              SLICE_LIT("NEWS.example")));
    assert_true(nntp_path_has(SLICE_LIT("a!\r\n b!c"), SLICE_LIT("b")));
    assert_false(nntp_path_has(SLICE_LIT("a!news.example.org!c"), SLICE_LIT("news.example")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),    cmocka_unit_test(test_forms),
        cmocka_unit_test(test_article),     cmocka_unit_test(test_reader_header),
        cmocka_unit_test(test_client_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
