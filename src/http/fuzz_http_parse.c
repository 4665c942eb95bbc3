/*
 * fuzz_http_parse.c - libFuzzer target for the HTTP/1.1 request parser: the
 * head, then (when the head asks for one) the chunked body decoder over the
 * rest of the input, fed in two pieces to exercise the state machine; and
 * the same input as a response head (the front-end's proxy, http_proxy.c).
 */
#include "http/http_parse.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(struct slice s, const char *p, size_t len)
{
    return s.ptr == NULL || s.len == 0 || (s.ptr >= p && s.ptr + s.len <= p + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const struct http_parse_limits lim = {
        .max_request_line = 256, .max_head = 2048, .max_fields = 32, .max_body = 4096};
    struct http_head h;
    http_head_init(&h);
    size_t used = 0;
    int status = 0;
    const char *why = NULL;
    enum http_parse_result r = http_parse_head(p, size, &lim, &h, &used, &status, &why);
    if (r == HTTP_PARSE_ERROR && (status < 400 || status > 505 || why == NULL))
        __builtin_trap();
    if (r == HTTP_PARSE_OK) {
        if (used > size || !inside(h.method, p, size) || !inside(h.target, p, size) ||
            !inside(h.query, p, size) || h.n_fields > lim.max_fields)
            __builtin_trap();
        if (h.body == HTTP_BODY_LENGTH && h.content_length > lim.max_body)
            __builtin_trap();
        for (size_t i = 0; i < h.n_fields; i++) {
            if (!inside(h.fields[i].name, p, size) || !inside(h.fields[i].value, p, size))
                __builtin_trap();
        }
        if (h.body == HTTP_BODY_CHUNKED) {
            struct http_chunked st;
            http_chunked_init(&st);
            struct buf out = BUF_INIT;
            size_t rest = size - used, half = rest / 2, u1 = 0, u2 = 0;
            r = http_chunked_feed(&st, p + used, half, lim.max_body, &out, &u1, &status, &why);
            if (r == HTTP_PARSE_NEED_MORE) {
                if (u1 != half)
                    __builtin_trap();
                r = http_chunked_feed(&st, p + used + half, rest - half, lim.max_body, &out, &u2,
                                      &status, &why);
            }
            if (out.len > lim.max_body || u1 + u2 > rest)
                __builtin_trap();
            buf_free(&out);
        }
    }
    http_head_free(&h);
    http_head_init(&h);
    int code = 0;
    used = 0;
    r = http_parse_response_head(p, size, &lim, &h, &code, &used, &status, &why);
    if (r == HTTP_PARSE_ERROR && (status < 400 || status > 505 || why == NULL))
        __builtin_trap();
    if (r == HTTP_PARSE_OK) {
        if (used > size || code < 100 || code > 599 || h.n_fields > lim.max_fields)
            __builtin_trap();
        for (size_t i = 0; i < h.n_fields; i++) {
            if (!inside(h.fields[i].name, p, size) || !inside(h.fields[i].value, p, size))
                __builtin_trap();
        }
    }
    http_head_free(&h);
    return 0;
}
