/*
 * buf.c - growable buffers and slices.
 */
#include "base/buf.h"
#include "base/alloc.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct slice slice_from_cstr(const char *s)
{
    return (struct slice){s, s ? strlen(s) : 0};
}

struct slice slice_make(const void *p, size_t len)
{
    return (struct slice){p, len};
}

bool slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool slice_eq_nocase(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

bool slice_eq_cstr_nocase(struct slice a, const char *s)
{
    return slice_eq_nocase(a, slice_from_cstr(s));
}

bool slice_startswith_nocase(struct slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && strncasecmp(s.ptr, prefix, n) == 0;
}

static char ascii_fold(char c, bool upper)
{
    if (upper && c >= 'a' && c <= 'z')
        return (char)(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c;
}

/*
 * ASCII case-insensitive substring search. memchr finds the candidates for
 * the needle's first byte (in either case) so the byte-by-byte compare runs
 * only there: SEARCH TEXT spent a third of its time in strncasecmp at every
 * position of every body before this (IMAP SEARCH and JMAP's text filters
 * use it).
 */
bool slice_contains_nocase(struct slice hay, struct slice needle)
{
    if (needle.len == 0)
        return true;
    if (needle.len > hay.len)
        return false;
    char lo = ascii_fold(needle.ptr[0], false), up = ascii_fold(needle.ptr[0], true);
    struct slice rest = slice_make(needle.ptr + 1, needle.len - 1);
    const char *p = hay.ptr, *end = hay.ptr + (hay.len - needle.len) + 1; /* candidates < end */
    while (p < end) {
        const char *c = memchr(p, lo, (size_t)(end - p));
        if (up != lo) {
            const char *u = memchr(p, up, (size_t)((c ? c : end) - p));
            if (u)
                c = u;
        }
        if (c == NULL)
            return false;
        if (slice_eq_nocase(slice_make(c + 1, rest.len), rest))
            return true;
        p = c + 1;
    }
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct slice slice_trim(struct slice s)
{
    while (s.len > 0 && is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_space(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

bool slice_to_u64(struct slice s, uint64_t max, uint64_t *out)
{
    if (s.len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s.ptr[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

char *slice_strdup(struct slice s)
{
    char *p = xmalloc(s.len + 1);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

char buf_empty[1];

void buf_init(struct buf *b)
{
    b->len = 0;
    b->cap = 0;
    b->data = buf_empty;
    buf_reserve(b, 0);
}

void buf_free(struct buf *b)
{
    if (b->cap > 0)
        free(b->data);
    b->data = buf_empty;
    b->len = b->cap = 0;
}

void buf_reserve(struct buf *b, size_t extra)
{
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need) || __builtin_add_overflow(need, 1, &need))
        log_panic("buffer size overflow");
    if (b->cap > 0 && need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (__builtin_mul_overflow(cap, 2, &cap))
            cap = need;
    }
    /* A buffer that owns nothing (cap 0) points at buf_empty: never realloc that. */
    b->data = b->cap > 0 ? xrealloc(b->data, cap) : xmalloc(cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
    if (b->data == NULL)
        b->data = buf_empty; /* a zeroed struct: treat it as BUF_INIT */
    b->len = 0;
    if (b->cap > 0)
        b->data[0] = '\0';
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_append_cstr(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_append_slice(struct buf *b, struct slice s)
{
    buf_append(b, s.ptr, s.len);
}

void buf_append_xml_escaped(struct buf *b, struct slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        switch (s.ptr[i]) {
        case '<':
            buf_append_cstr(b, "&lt;");
            break;
        case '>':
            buf_append_cstr(b, "&gt;");
            break;
        case '&':
            buf_append_cstr(b, "&amp;");
            break;
        case '"':
            buf_append_cstr(b, "&quot;");
            break;
        case '\'':
            buf_append_cstr(b, "&apos;");
            break;
        default:
            buf_append_byte(b, s.ptr[i]);
        }
    }
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    buf_reserve(b, 0);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    if (n < 0)
        log_panic("vsnprintf failed for format \"%s\"", fmt);
    if ((size_t)n >= room) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_append_u16(struct buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    buf_append(b, x, 2);
}

void buf_append_u32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    buf_append(b, x, 4);
}

void buf_append_u64(struct buf *b, uint64_t v)
{
    buf_append_u32(b, (uint32_t)(v >> 32));
    buf_append_u32(b, (uint32_t)v);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *buf_steal(struct buf *b, size_t *len_r)
{
    buf_reserve(b, 0);
    char *p = b->data;
    if (len_r)
        *len_r = b->len;
    b->data = buf_empty;
    b->len = b->cap = 0;
    return p;
}

const char *buf_cstr(struct buf *b)
{
    if (b->data == NULL)
        b->data = buf_empty;
    return b->data;
}
