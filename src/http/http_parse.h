/*
 * http_parse.h - the strict HTTP/1.1 request parser (RFC 9112): the request
 * head (request line and header fields) and the chunked body decoder.
 *
 * Pure functions over bytes: no I/O, no allocation besides the field table,
 * no clock. The connection code (http_conn.c) feeds them what arrived.
 *
 * Strictness is the point (request smuggling): every framing the RFC calls
 * faulty or ambiguous is refused with the status the RFC names, never
 * guessed at -- bare CR or LF, obs-fold, whitespace before a field's colon,
 * Content-Length together with Transfer-Encoding, a repeated or malformed
 * Content-Length, a Transfer-Encoding other than exactly "chunked" (or any
 * in HTTP/1.0), a missing (HTTP/1.1) or repeated Host, bad chunk sizes. The
 * caller answers with that status and closes the connection.
 *
 * Must never: read past len, accept a message whose body length two servers
 * could disagree on, or let a slice point outside the caller's bytes.
 */
#ifndef WHARF_HTTP_HTTP_PARSE_H
#define WHARF_HTTP_HTTP_PARSE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_parse_limits {
    size_t max_request_line; /* longer: 414 */
    size_t max_head;         /* request line and fields together; longer: 431 */
    size_t max_fields;       /* more header fields: 431 */
    uint64_t max_body;       /* larger Content-Length or chunked total: 413 */
};

enum http_parse_result {
    HTTP_PARSE_OK,        /* a complete head (or body) */
    HTTP_PARSE_NEED_MORE, /* nothing wrong so far; more bytes are needed */
    HTTP_PARSE_ERROR,     /* refuse with *status_r (*why_r says why, for the log) and close */
};

enum http_body_kind {
    HTTP_BODY_NONE,    /* no body */
    HTTP_BODY_LENGTH,  /* content_length bytes */
    HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
};

struct http_field {
    struct slice name;  /* as received (compare without case) */
    struct slice value; /* without leading and trailing whitespace */
};

struct http_head {
    struct slice method; /* case-sensitive token ("GET") */
    struct slice target; /* the request-target as received */
    struct slice path;   /* origin-form path (absolute-form: the path part, "/" if none) */
    struct slice query;  /* after '?', without it; len 0 when none (ptr NULL when no '?') */
    struct slice host;   /* Host's value, or the authority of an absolute-form target */
    int minor;           /* HTTP/1.<minor>: 0 or 1 */
    struct http_field *fields;
    size_t n_fields, cap_fields;
    enum http_body_kind body;
    uint64_t content_length; /* HTTP_BODY_LENGTH */
    bool keep_alive;         /* the connection may carry another request after this one */
    bool expect_continue;    /* Expect: 100-continue */
};

void http_head_init(struct http_head *h);
void http_head_free(struct http_head *h);

/*
 * Parses the head at the start of p[0..len) (after any empty lines a
 * client sent between pipelined requests, RFC 9112 2.2). On OK, *head_len_r
 * is the number of bytes it took up to and including the empty line; the
 * slices of h point into p. On ERROR, *status_r is 400, 413, 414, 417, 431
 * or 505.
 */
enum http_parse_result http_parse_head(const char *p, size_t len,
                                       const struct http_parse_limits *lim, struct http_head *h,
                                       size_t *head_len_r, int *status_r, const char **why_r);

/* The value of the first field called name (any case), or a slice with ptr NULL. */
/*
 * A response head (the front-end's proxy reading its back-end, http_proxy.c):
 * "HTTP/1.x NNN reason" and fields, with the same framing checks as a
 * request's (one Content-Length or chunked, never both) and no Host needed.
 * The status code goes to *code_r; errors have *status_r 502 (or 413/431 for
 * the limits). A response without Content-Length or chunked has body NONE.
 */
enum http_parse_result http_parse_response_head(const char *p, size_t len,
                                                const struct http_parse_limits *lim,
                                                struct http_head *h, int *code_r,
                                                size_t *head_len_r, int *status_r,
                                                const char **why_r);

struct slice http_head_field(const struct http_head *h, const char *name);

/* The chunked body decoder (RFC 9112 7.1): a byte state machine. */
struct http_chunked {
    int state;
    uint64_t size;      /* of the chunk being read */
    uint64_t total;     /* data bytes so far */
    unsigned digits;    /* hex digits of the size line */
    size_t line;        /* bytes of the current extension or trailer line */
    size_t trailer;     /* bytes of the trailer section */
    bool line_is_field; /* a trailer line started (not the final empty line) */
};

void http_chunked_init(struct http_chunked *st);
/*
 * Decodes from p[0..len): data goes to out. *used_r is the number of bytes
 * consumed. OK: the body is complete (bytes after it, the next pipelined
 * request, are not consumed). ERROR: 400 (malformed) or 413 (over max_body).
 */
enum http_parse_result http_chunked_feed(struct http_chunked *st, const char *p, size_t len,
                                         uint64_t max_body, struct buf *out, size_t *used_r,
                                         int *status_r, const char **why_r);

/* The reason phrase of a status ("Not Found"); "" for an unknown one. */
const char *http_status_text(int status);

#endif
