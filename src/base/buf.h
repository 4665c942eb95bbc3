/*
 * buf.h - the one owned, growable byte buffer (struct buf) and the one
 * non-owning view (struct slice) used everywhere in Wharf.
 *
 * A buf always keeps a NUL byte after its contents so that buf->data can be
 * handed to C APIs that want a string, but its length is len, never strlen():
 * message data may contain NUL bytes. Growth checks for overflow and never
 * fails (see alloc.h). A slice never owns what it points at.
 */
#ifndef WHARF_BASE_BUF_H
#define WHARF_BASE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slice {
    const char *ptr;
    size_t len;
};

#define SLICE_NULL ((struct slice){NULL, 0})
#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})

struct slice slice_from_cstr(const char *s);
struct slice slice_make(const void *p, size_t len);
bool slice_eq(struct slice a, struct slice b);
/* ASCII case-insensitive comparison (protocol keywords, domains). */
bool slice_eq_nocase(struct slice a, struct slice b);
bool slice_eq_cstr_nocase(struct slice a, const char *s);
bool slice_startswith_nocase(struct slice s, const char *prefix);
/* Whether needle occurs in hay, ASCII case-insensitively (memchr for the candidates). */
bool slice_contains_nocase(struct slice hay, struct slice needle);
struct slice slice_trim(struct slice s);
/* A protocol's decimal number: one or more ASCII digits and nothing else (no sign,
 * no space), at most max. False on anything else, overflow included. */
bool slice_to_u64(struct slice s, uint64_t max, uint64_t *out);
/* Copies into a new NUL-terminated string (the caller frees). */
char *slice_strdup(struct slice s);

struct buf {
    char *data; /* never NULL; data[len] == '\0' */
    size_t len;
    size_t cap; /* 0: data is the shared empty string, nothing is owned yet */
};

/*
 * A buffer that owns nothing yet: data points at a shared, read-only empty
 * string, so even an untouched buffer is a valid (ptr, 0) for memcmp, memchr
 * and pointer arithmetic. The first append allocates.
 */
extern char buf_empty[1];
#define BUF_INIT                                                                                   \
    {                                                                                              \
        buf_empty, 0, 0                                                                            \
    }

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Ensures room for at least extra more bytes (plus the NUL). */
void buf_reserve(struct buf *b, size_t extra);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_cstr(struct buf *b, const char *s);
void buf_append_slice(struct buf *b, struct slice s);
/* One byte; inline, for the decoders' per-byte loops (the room is
 * usually there: only growing takes the call). */
static inline void buf_append_byte(struct buf *b, char c)
{
    if (b->cap > b->len + 1) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
    } else {
        buf_append(b, &c, 1);
    }
}
/* Appends s with the five XML/HTML special characters (< > & " ') as entities
 * (text and attribute values of XML and HTML). */
void buf_append_xml_escaped(struct buf *b, struct slice s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Big-endian integer appends, for length-prefixed records. */
void buf_append_u16(struct buf *b, uint16_t v);
void buf_append_u32(struct buf *b, uint32_t v);
void buf_append_u64(struct buf *b, uint64_t v);
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hands the contents (always allocated) to the caller, who frees them; resets the buffer. */
char *buf_steal(struct buf *b, size_t *len_r);
static inline struct slice buf_slice(const struct buf *b)
{
    return (struct slice){b->data, b->len};
}
/* Returns b->data, always a valid NUL-terminated string. */
const char *buf_cstr(struct buf *b);

#endif
