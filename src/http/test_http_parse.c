/*
 * test_http_parse.c - unit tests for the strict HTTP/1.1 request parser:
 * what it accepts, each framing it refuses (request smuggling) with its
 * status, and the chunked decoder fed byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "http/http_parse.h"

static const struct http_parse_limits lim = {
    .max_request_line = 64, .max_head = 256, .max_fields = 8, .max_body = 100};

/* Parses s; returns the result, the status in *status. */
static enum http_parse_result parse(const char *s, struct http_head *h, int *status)
{
    size_t used = 0;
    const char *why = NULL;
    *status = 0;
    http_head_init(h);
    return http_parse_head(s, strlen(s), &lim, h, &used, status, &why);
}

static void refused(const char *s, int want)
{
    struct http_head h;
    int status;
    enum http_parse_result r = parse(s, &h, &status);
    if (r != HTTP_PARSE_ERROR || status != want)
        fail_msg("%s: result %d status %d, wanted %d", s, r, status, want);
    http_head_free(&h);
}

static void test_accepts(void **state)
{
    (void)state;
    struct http_head h;
    int status;
    const char *s = "GET /a/b?c=d HTTP/1.1\r\nHost: mail.example.test:443\r\nX:  y \r\n\r\nrest";
    size_t used;
    const char *why;
    http_head_init(&h);
    assert_int_equal(http_parse_head(s, strlen(s), &lim, &h, &used, &status, &why), HTTP_PARSE_OK);
    assert_int_equal(used, strlen(s) - 4);
    assert_true(slice_eq(h.method, SLICE_LIT("GET")));
    assert_true(slice_eq(h.path, SLICE_LIT("/a/b")));
    assert_true(slice_eq(h.query, SLICE_LIT("c=d")));
    assert_true(slice_eq(h.host, SLICE_LIT("mail.example.test:443")));
    assert_true(slice_eq(http_head_field(&h, "x"), SLICE_LIT("y")));
    assert_true(h.keep_alive);
    assert_int_equal(h.body, HTTP_BODY_NONE);
    http_head_free(&h);

    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n"
                           "Connection: close\r\n\r\n",
                           &h, &status),
                     HTTP_PARSE_OK);
    assert_int_equal(h.body, HTTP_BODY_LENGTH);
    assert_int_equal(h.content_length, 12);
    assert_false(h.keep_alive);
    http_head_free(&h);

    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
                           "Expect: 100-continue\r\n\r\n",
                           &h, &status),
                     HTTP_PARSE_OK);
    assert_int_equal(h.body, HTTP_BODY_CHUNKED);
    assert_true(h.expect_continue);
    http_head_free(&h);

    /* HTTP/1.0: no Host needed, keep-alive only when asked. */
    assert_int_equal(parse("\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h, &status),
                     HTTP_PARSE_OK);
    assert_int_equal(h.minor, 0);
    assert_true(h.keep_alive);
    http_head_free(&h);

    assert_int_equal(parse("GET https://h.example:8443?q HTTP/1.1\r\nHost: x\r\n\r\n", &h, &status),
                     HTTP_PARSE_OK);
    assert_true(slice_eq(h.host, SLICE_LIT("h.example:8443")));
    assert_true(slice_eq(h.path, SLICE_LIT("/")));
    assert_true(slice_eq(h.query, SLICE_LIT("q")));
    http_head_free(&h);

    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\n", &h, &status), HTTP_PARSE_NEED_MORE);
    http_head_free(&h);
    assert_int_equal(parse("GET / HTTP/1.1\r", &h, &status), HTTP_PARSE_NEED_MORE);
    http_head_free(&h);
}

static void test_smuggling(void **state)
{
    (void)state;
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: chunked\r\n\r\n",
            400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0b"
            "chunked\r\n\r\n",
            400);
    refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400); /* obs-fold */
    refused("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);              /* leading space */
    refused("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);                 /* bare LF */
    refused("GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
    refused("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400); /* bare CR */
    refused("GET / HTTP/1.1\r\nX: a\x01"
            "b\r\nHost: h\r\n\r\n",
            400);
    refused("GET / HTTP/1.1\r\n\r\n", 400);                       /* no Host */
    refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400); /* two */
    refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
    refused("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
    refused("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
    refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    refused("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused("GET /# HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused("GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417);
    refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413);
}

static void test_limits(void **state)
{
    (void)state;
    char line[200];
    memset(line, 'a', sizeof(line));
    memcpy(line, "GET /", 5);
    line[sizeof(line) - 1] = '\0';
    refused(line, 414); /* no end yet, but already too long */
    char head[400];
    snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: h\r\nX: %0300d\r\n\r\n", 0);
    refused(head, 431);
    refused("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\n"
            "G: 1\r\nH: 1\r\n\r\n",
            431);
}

/* Feeds s one byte at a time; returns the final result and the body. */
static enum http_parse_result chunked(const char *s, size_t len, struct buf *out, int *status,
                                      size_t *used_total)
{
    struct http_chunked st;
    http_chunked_init(&st);
    enum http_parse_result r = HTTP_PARSE_NEED_MORE;
    const char *why;
    *used_total = 0;
    for (size_t i = 0; i < len && r == HTTP_PARSE_NEED_MORE; i++) {
        size_t used = 0;
        r = http_chunked_feed(&st, s + i, 1, 100, out, &used, status, &why);
        *used_total += used;
    }
    return r;
}

static void test_chunked(void **state)
{
    (void)state;
    struct buf out = BUF_INIT;
    int status = 0;
    size_t used;
    const char *ok = "5\r\nhello\r\n6 ; a=b\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    assert_int_equal(chunked(ok, strlen(ok), &out, &status, &used), HTTP_PARSE_OK);
    assert_string_equal(buf_cstr(&out), "hello world");
    assert_int_equal(used, strlen(ok) - 4);
    static const struct {
        const char *s;
        int status;
    } bad[] = {
        {"g\r\n", 400},
        {" 5\r\nhello\r\n", 400},
        {"5\nhello\r\n", 400},
        {"5\r\nhelloX\r\n", 400},
        {"5\r\nhello\n", 400},
        {"-1\r\n", 400},
        {"0000000000000000\r\n", 400},
        {"65\r\n", 413},
        {"5 \r\n", 400},
        {"0\r\n folded\r\n\r\n", 400},
        {"0\r\nX\x01: y\r\n\r\n", 400},
        {"3;a\x01\r\n", 400},
        {"\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&out);
        if (chunked(bad[i].s, strlen(bad[i].s), &out, &status, &used) != HTTP_PARSE_ERROR ||
            status != bad[i].status)
            fail_msg("chunked %zu: wanted %d", i, bad[i].status);
    }
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
