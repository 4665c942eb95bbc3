/*
 * http_parse.c - the strict HTTP/1.1 request parser (see http_parse.h).
 *
 * Must never: accept a framing RFC 9112 calls faulty, or read past the
 * caller's bytes.
 */
#include "http/http_parse.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Hard ceilings whatever the configuration says. */
#define CHUNK_EXT_MAX 1024
#define TRAILER_MAX 8192
#define CHUNK_DIGITS_MAX 15 /* 15 hex digits: under 2^60, no overflow */

void http_head_init(struct http_head *h)
{
    memset(h, 0, sizeof(*h));
}

void http_head_free(struct http_head *h)
{
    free(h->fields);
    memset(h, 0, sizeof(*h));
}

/* tchar (RFC 9110 5.6.2). */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(struct slice s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_tchar((unsigned char)s.ptr[i]))
            return false;
    }
    return true;
}

/* field-vchar / SP / HTAB (RFC 9110 5.5): no CTL but HTAB, no DEL. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (unsigned)((c | 0x20) - 'a' + 10);
}

/* pchar / "/" / "?" with valid percent-encoding (RFC 3986 3.3, 3.4). */
static bool is_target_chars(struct slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '%') {
            if (i + 2 >= s.len || !is_hex((unsigned char)s.ptr[i + 1]) ||
                !is_hex((unsigned char)s.ptr[i + 2]))
                return false;
            i += 2;
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (strchr("-._~!$&'()*+,;=:@/?", c) == NULL || c == '\0')
            return false;
    }
    return true;
}

/* uri-host [ ":" port ]: reg-name, IPv4 or an IP-literal in brackets. */
static bool is_host(struct slice s)
{
    size_t i = 0;
    if (s.len > 0 && s.ptr[0] == '[') {
        while (i < s.len && s.ptr[i] != ']') {
            unsigned char c = (unsigned char)s.ptr[i];
            if (i > 0 && !is_hex(c) && c != ':' && c != '.')
                return false;
            i++;
        }
        if (i == s.len)
            return false;
        i++;
    } else {
        for (; i < s.len && s.ptr[i] != ':'; i++) {
            unsigned char c = (unsigned char)s.ptr[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_'))
                return false;
        }
    }
    if (i == s.len)
        return true;
    if (s.ptr[i] != ':')
        return false;
    for (i++; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
    }
    return true;
}

static enum http_parse_result fail(int status, const char *why, int *status_r, const char **why_r)
{
    *status_r = status;
    *why_r = why;
    return HTTP_PARSE_ERROR;
}

/* Splits path and query out of an origin-form (or the rest of an absolute-form) target. */
static void split_query(struct slice t, struct http_head *h)
{
    const char *q = memchr(t.ptr, '?', t.len);
    if (q == NULL) {
        h->path = t;
        h->query = SLICE_NULL;
    } else {
        h->path = slice_make(t.ptr, (size_t)(q - t.ptr));
        h->query = slice_make(q + 1, t.len - (size_t)(q - t.ptr) - 1);
    }
}

static enum http_parse_result parse_request_line(struct slice line, struct http_head *h,
                                                 struct slice *authority, int *status_r,
                                                 const char **why_r)
{
    const char *sp1 = memchr(line.ptr, ' ', line.len);
    if (sp1 == NULL)
        return fail(400, "malformed request line", status_r, why_r);
    h->method = slice_make(line.ptr, (size_t)(sp1 - line.ptr));
    const char *rest = sp1 + 1, *end = line.ptr + line.len;
    const char *sp2 = memchr(rest, ' ', (size_t)(end - rest));
    if (sp2 == NULL)
        return fail(400, "malformed request line", status_r, why_r);
    h->target = slice_make(rest, (size_t)(sp2 - rest));
    struct slice version = slice_make(sp2 + 1, (size_t)(end - sp2 - 1));
    if (!is_token(h->method))
        return fail(400, "malformed method", status_r, why_r);
    /* "HTTP/" DIGIT "." DIGIT, exactly. */
    if (version.len != 8 || memcmp(version.ptr, "HTTP/", 5) != 0 || version.ptr[6] != '.' ||
        version.ptr[5] < '0' || version.ptr[5] > '9' || version.ptr[7] < '0' ||
        version.ptr[7] > '9')
        return fail(400, "malformed HTTP version", status_r, why_r);
    if (version.ptr[5] != '1')
        return fail(505, "HTTP version not supported", status_r, why_r);
    h->minor = version.ptr[7] == '0' ? 0 : 1;
    struct slice t = h->target;
    if (t.len == 0)
        return fail(400, "empty request target", status_r, why_r);
    if (t.len == 1 && t.ptr[0] == '*') {
        if (!slice_eq(h->method, SLICE_LIT("OPTIONS")))
            return fail(400, "asterisk-form outside OPTIONS", status_r, why_r);
        h->path = t;
        h->query = SLICE_NULL;
        return HTTP_PARSE_OK;
    }
    if (!is_target_chars(t))
        return fail(400, "malformed request target", status_r, why_r);
    if (t.ptr[0] == '/') {
        split_query(t, h);
        return HTTP_PARSE_OK;
    }
    /* absolute-form (RFC 9112 3.2.2): http or https only, an authority without userinfo. */
    size_t skip;
    if (slice_startswith_nocase(t, "http://"))
        skip = 7;
    else if (slice_startswith_nocase(t, "https://"))
        skip = 8;
    else
        return fail(400, "unsupported request-target form", status_r, why_r);
    struct slice after = slice_make(t.ptr + skip, t.len - skip);
    size_t alen = 0;
    while (alen < after.len && after.ptr[alen] != '/' && after.ptr[alen] != '?')
        alen++;
    *authority = slice_make(after.ptr, alen);
    if (alen == 0 || !is_host(*authority))
        return fail(400, "malformed authority in request target", status_r, why_r);
    struct slice pq = slice_make(after.ptr + alen, after.len - alen);
    if (pq.len == 0) {
        h->path = SLICE_LIT("/");
        h->query = SLICE_NULL;
    } else if (pq.ptr[0] == '?') {
        h->path = SLICE_LIT("/");
        h->query = slice_make(pq.ptr + 1, pq.len - 1);
    } else {
        split_query(pq, h);
    }
    return HTTP_PARSE_OK;
}

/* A response's status line (the front-end's proxy, http_proxy.c): "HTTP/1.x NNN reason". */
static enum http_parse_result parse_status_line(struct slice line, struct http_head *h, int *code_r,
                                                int *status_r, const char **why_r)
{
    const char *v = line.ptr;
    if (line.len < 12 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1') ||
        v[8] != ' ' || v[9] < '1' || v[9] > '5' || v[10] < '0' || v[10] > '9' || v[11] < '0' ||
        v[11] > '9' || (line.len > 12 && v[12] != ' '))
        return fail(502, "malformed status line", status_r, why_r);
    for (size_t i = 12; i < line.len; i++) {
        if (!is_field_char((unsigned char)v[i]))
            return fail(502, "control character in the status line", status_r, why_r);
    }
    h->minor = v[7] - '0';
    *code_r = (v[9] - '0') * 100 + (v[10] - '0') * 10 + (v[11] - '0');
    return HTTP_PARSE_OK;
}

/* True when list (a comma-separated field value) holds token tok (any case). */
static bool list_has(struct slice list, const char *tok)
{
    size_t i = 0;
    while (i <= list.len) {
        size_t j = i;
        while (j < list.len && list.ptr[j] != ',')
            j++;
        if (slice_eq_cstr_nocase(slice_trim(slice_make(list.ptr + i, j - i)), tok))
            return true;
        i = j + 1;
    }
    return false;
}

static enum http_parse_result parse_field(struct slice line, const struct http_parse_limits *lim,
                                          struct http_head *h, int *status_r, const char **why_r)
{
    if (line.ptr[0] == ' ' || line.ptr[0] == '\t')
        return fail(400, "obsolete line folding", status_r, why_r);
    const char *colon = memchr(line.ptr, ':', line.len);
    if (colon == NULL)
        return fail(400, "header field without a colon", status_r, why_r);
    struct slice name = slice_make(line.ptr, (size_t)(colon - line.ptr));
    if (!is_token(name)) /* also whitespace before the colon (RFC 9112 5.1) */
        return fail(400, "malformed header field name", status_r, why_r);
    struct slice value = slice_make(colon + 1, line.len - name.len - 1);
    for (size_t i = 0; i < value.len; i++) {
        if (!is_field_char((unsigned char)value.ptr[i]))
            return fail(400, "control character in a header field", status_r, why_r);
    }
    while (value.len > 0 && (value.ptr[0] == ' ' || value.ptr[0] == '\t'))
        value.ptr++, value.len--;
    while (value.len > 0 && (value.ptr[value.len - 1] == ' ' || value.ptr[value.len - 1] == '\t'))
        value.len--;
    if (h->n_fields >= lim->max_fields)
        return fail(431, "too many header fields", status_r, why_r);
    if (h->n_fields == h->cap_fields) {
        h->cap_fields = h->cap_fields ? h->cap_fields * 2 : 16;
        h->fields = xreallocarray(h->fields, h->cap_fields, sizeof(*h->fields));
    }
    h->fields[h->n_fields++] = (struct http_field){name, value};
    return HTTP_PARSE_OK;
}

/* What the fields say about framing, host and connection (RFC 9112 6, 9.3; RFC 9110 7.2). */
static enum http_parse_result check_fields(struct http_head *h, struct slice authority,
                                           const struct http_parse_limits *lim, bool response,
                                           int *status_r, const char **why_r)
{
    struct slice host = SLICE_NULL, cl = SLICE_NULL, te = SLICE_NULL;
    bool close = false, keep = false;
    for (size_t i = 0; i < h->n_fields; i++) {
        struct slice n = h->fields[i].name, v = h->fields[i].value;
        if (slice_eq_cstr_nocase(n, "host")) {
            if (host.ptr != NULL)
                return fail(400, "more than one Host", status_r, why_r);
            host = v;
        } else if (slice_eq_cstr_nocase(n, "content-length")) {
            if (cl.ptr != NULL)
                return fail(400, "more than one Content-Length", status_r, why_r);
            cl = v;
        } else if (slice_eq_cstr_nocase(n, "transfer-encoding")) {
            if (te.ptr != NULL)
                return fail(400, "more than one Transfer-Encoding", status_r, why_r);
            te = v;
        } else if (slice_eq_cstr_nocase(n, "connection")) {
            close = close || list_has(v, "close");
            keep = keep || list_has(v, "keep-alive");
        } else if (slice_eq_cstr_nocase(n, "expect")) {
            if (!slice_eq_cstr_nocase(v, "100-continue"))
                return fail(417, "unsupported expectation", status_r, why_r);
            h->expect_continue = true;
        }
    }
    if (host.ptr == NULL && h->minor == 1 && !response)
        return fail(400, "no Host", status_r, why_r);
    if (host.ptr != NULL && host.len > 0 && !is_host(host))
        return fail(400, "malformed Host", status_r, why_r);
    h->host = authority.ptr != NULL ? authority : host.ptr != NULL ? host : SLICE_LIT("");
    if (cl.ptr != NULL && te.ptr != NULL)
        return fail(400, "both Content-Length and Transfer-Encoding", status_r, why_r);
    if (te.ptr != NULL) {
        if (h->minor == 0)
            return fail(400, "Transfer-Encoding in HTTP/1.0", status_r, why_r);
        if (!slice_eq_cstr_nocase(te, "chunked"))
            return fail(400, "Transfer-Encoding other than chunked", status_r, why_r);
        h->body = HTTP_BODY_CHUNKED;
    } else if (cl.ptr != NULL) {
        if (cl.len == 0 || cl.len > 19)
            return fail(400, "malformed Content-Length", status_r, why_r);
        uint64_t n = 0;
        for (size_t i = 0; i < cl.len; i++) {
            if (cl.ptr[i] < '0' || cl.ptr[i] > '9')
                return fail(400, "malformed Content-Length", status_r, why_r);
            n = n * 10 + (uint64_t)(cl.ptr[i] - '0');
        }
        if (n > lim->max_body)
            return fail(413, "body over the limit", status_r, why_r);
        h->content_length = n;
        h->body = n > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    }
    h->keep_alive = h->minor == 1 ? !close : keep && !close;
    return HTTP_PARSE_OK;
}

/* A request head, or (code_r not NULL) a response head with its status code in *code_r. */
static enum http_parse_result parse_head(const char *p, size_t len,
                                         const struct http_parse_limits *lim, struct http_head *h,
                                         int *code_r, size_t *head_len_r, int *status_r,
                                         const char **why_r)
{
    h->n_fields = 0;
    h->body = HTTP_BODY_NONE;
    h->content_length = 0;
    h->keep_alive = false;
    h->expect_continue = false;
    size_t pos = 0;
    /* Empty lines before a request line are ignored (RFC 9112 2.2). */
    while (pos < len && (p[pos] == '\r' || p[pos] == '\n')) {
        if (p[pos] == '\n')
            return fail(400, "bare LF", status_r, why_r);
        if (pos + 1 == len)
            return HTTP_PARSE_NEED_MORE;
        if (p[pos + 1] != '\n')
            return fail(400, "bare CR", status_r, why_r);
        pos += 2;
        if (pos > lim->max_head)
            return fail(400, "too many empty lines", status_r, why_r);
    }
    size_t start = pos;
    bool first = true;
    struct slice authority = SLICE_NULL;
    for (;;) {
        /* One line: up to CRLF; a CR elsewhere or an LF alone is refused. */
        size_t i = pos;
        while (i < len && p[i] != '\r' && p[i] != '\n')
            i++;
        size_t limit = first ? lim->max_request_line : lim->max_head;
        if (i - start > limit || (i == len && len - start > limit))
            return first ? fail(414, "request line too long", status_r, why_r)
                         : fail(431, "header section too large", status_r, why_r);
        if (i == len)
            return HTTP_PARSE_NEED_MORE;
        if (p[i] == '\n')
            return fail(400, "bare LF", status_r, why_r);
        if (i + 1 == len)
            return HTTP_PARSE_NEED_MORE;
        if (p[i + 1] != '\n')
            return fail(400, "bare CR", status_r, why_r);
        struct slice line = slice_make(p + pos, i - pos);
        pos = i + 2;
        enum http_parse_result r;
        if (first) {
            if (line.len == 0)
                return fail(400, "empty request line", status_r, why_r);
            r = code_r != NULL ? parse_status_line(line, h, code_r, status_r, why_r)
                               : parse_request_line(line, h, &authority, status_r, why_r);
            first = false;
        } else if (line.len == 0) {
            r = check_fields(h, authority, lim, code_r != NULL, status_r, why_r);
            if (r == HTTP_PARSE_OK)
                *head_len_r = pos;
            return r;
        } else {
            r = parse_field(line, lim, h, status_r, why_r);
        }
        if (r != HTTP_PARSE_OK)
            return r;
    }
}

enum http_parse_result http_parse_head(const char *p, size_t len,
                                       const struct http_parse_limits *lim, struct http_head *h,
                                       size_t *head_len_r, int *status_r, const char **why_r)
{
    return parse_head(p, len, lim, h, NULL, head_len_r, status_r, why_r);
}

enum http_parse_result http_parse_response_head(const char *p, size_t len,
                                                const struct http_parse_limits *lim,
                                                struct http_head *h, int *code_r,
                                                size_t *head_len_r, int *status_r,
                                                const char **why_r)
{
    *code_r = 0;
    h->method = h->target = h->path = h->query = h->host = SLICE_NULL;
    return parse_head(p, len, lim, h, code_r, head_len_r, status_r, why_r);
}

struct slice http_head_field(const struct http_head *h, const char *name)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        if (slice_eq_cstr_nocase(h->fields[i].name, name))
            return h->fields[i].value;
    }
    return SLICE_NULL;
}

/* ---- chunked ---- */

enum {
    CH_SIZE_FIRST, /* the first hex digit of a size */
    CH_SIZE,       /* more hex digits, or what ends them */
    CH_SIZE_WS,    /* BWS before ';' */
    CH_EXT,        /* chunk extensions, up to CR */
    CH_SIZE_LF,    /* LF after the size line */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,    /* the start of a trailer line */
    CH_TRAILER_IN, /* inside a trailer field line */
    CH_TRAILER_LF, /* LF after a trailer line (or the final empty line) */
    CH_DONE,
};

void http_chunked_init(struct http_chunked *st)
{
    memset(st, 0, sizeof(*st));
    st->state = CH_SIZE_FIRST;
}

enum http_parse_result http_chunked_feed(struct http_chunked *st, const char *p, size_t len,
                                         uint64_t max_body, struct buf *out, size_t *used_r,
                                         int *status_r, const char **why_r)
{
    size_t i = 0;
    enum http_parse_result r = HTTP_PARSE_NEED_MORE;
    while (i < len && st->state != CH_DONE) {
        unsigned char c = (unsigned char)p[i];
        switch (st->state) {
        case CH_SIZE_FIRST:
        case CH_SIZE:
            if (is_hex(c)) {
                if (st->digits == CHUNK_DIGITS_MAX)
                    return fail(400, "chunk size too long", status_r, why_r);
                st->digits++;
                st->size = st->size * 16 + hex_value(c);
                if (st->total + st->size > max_body)
                    return fail(413, "body over the limit", status_r, why_r);
                st->state = CH_SIZE;
            } else if (st->state == CH_SIZE_FIRST) {
                return fail(400, "malformed chunk size", status_r, why_r);
            } else if (c == '\r') {
                st->state = CH_SIZE_LF;
            } else if (c == ';') {
                st->state = CH_EXT;
                st->line = 0;
            } else if (c == ' ' || c == '\t') {
                st->state = CH_SIZE_WS;
            } else {
                return fail(400, "malformed chunk size", status_r, why_r);
            }
            i++;
            break;
        case CH_SIZE_WS:
            if (c == ';') {
                st->state = CH_EXT;
                st->line = 0;
            } else if (c != ' ' && c != '\t') {
                return fail(400, "malformed chunk size", status_r, why_r);
            }
            i++;
            break;
        case CH_EXT:
            if (c == '\r') {
                st->state = CH_SIZE_LF;
            } else if (!is_field_char(c) || ++st->line > CHUNK_EXT_MAX) {
                return fail(400, "malformed chunk extension", status_r, why_r);
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return fail(400, "bare CR in chunk size line", status_r, why_r);
            i++;
            st->digits = 0;
            if (st->size == 0) {
                st->state = CH_TRAILER;
            } else {
                st->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > st->size)
                n = (size_t)st->size;
            buf_append(out, p + i, n);
            i += n;
            st->size -= n;
            st->total += n;
            if (st->size == 0)
                st->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c != '\r')
                return fail(400, "chunk data longer than its size", status_r, why_r);
            st->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return fail(400, "bare CR after chunk data", status_r, why_r);
            st->state = CH_SIZE_FIRST;
            i++;
            break;
        case CH_TRAILER:
            if (c == '\r') {
                st->line_is_field = false;
                st->state = CH_TRAILER_LF;
            } else if (c == ' ' || c == '\t') {
                return fail(400, "obsolete line folding in trailer", status_r, why_r);
            } else if (!is_tchar(c)) {
                return fail(400, "malformed trailer field", status_r, why_r);
            } else {
                st->line_is_field = true;
                st->state = CH_TRAILER_IN;
            }
            if (++st->trailer > TRAILER_MAX)
                return fail(431, "trailer section too large", status_r, why_r);
            i++;
            break;
        case CH_TRAILER_IN:
            if (c == '\r')
                st->state = CH_TRAILER_LF;
            else if (!is_field_char(c))
                return fail(400, "control character in a trailer field", status_r, why_r);
            if (++st->trailer > TRAILER_MAX)
                return fail(431, "trailer section too large", status_r, why_r);
            i++;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                return fail(400, "bare CR in trailer", status_r, why_r);
            st->state = st->line_is_field ? CH_TRAILER : CH_DONE;
            i++;
            break;
        }
    }
    if (st->state == CH_DONE)
        r = HTTP_PARSE_OK;
    *used_r = i;
    return r;
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        return "";
    }
}
