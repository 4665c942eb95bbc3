/*
 * dotstuff.c - the dot-stuffed writer (dotstuff.h). One scan per piece,
 * by memchr from line to line; the pieces between stuffed dots are handed
 * to the sink whole.
 *
 * Must never: write a line that begins with "." without the extra dot.
 */
#include "net/dotstuff.h"

#include <string.h>

typedef void (*dot_sink)(void *arg, const char *p, size_t n);

static void stuff(struct dotstuff *st, struct slice d, dot_sink emit, void *arg)
{
    if (d.len == 0)
        return;
    const char *p = d.ptr, *end = d.ptr + d.len, *seg = d.ptr;
    bool bol = st->bol;
    while (p < end) {
        if (bol && *p == '.') {
            if (p > seg)
                emit(arg, seg, (size_t)(p - seg));
            emit(arg, ".", 1);
            seg = p; /* the data's own dot goes out with the next piece */
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            bol = false;
            break;
        }
        p = nl + 1;
        bol = true;
    }
    emit(arg, seg, (size_t)(end - seg));
    char last = end[-1];
    st->crlf = last == '\n' && (d.len >= 2 ? end[-2] == '\r' : st->cr);
    st->cr = last == '\r';
    st->bol = bol;
}

static void to_buf(void *arg, const char *p, size_t n)
{
    buf_append(arg, p, n);
}

static void to_evbuffer(void *arg, const char *p, size_t n)
{
    evbuffer_add(arg, p, n);
}

static void end(struct dotstuff *st, dot_sink emit, void *arg)
{
    if (!st->crlf)
        emit(arg, "\r\n", 2);
    emit(arg, ".\r\n", 3);
    *st = (struct dotstuff)DOTSTUFF_INIT;
}

void dotstuff_buf(struct dotstuff *st, struct slice d, struct buf *out)
{
    stuff(st, d, to_buf, out);
}

void dotstuff_evbuffer(struct dotstuff *st, struct slice d, struct evbuffer *out)
{
    stuff(st, d, to_evbuffer, out);
}

void dotstuff_end_buf(struct dotstuff *st, struct buf *out)
{
    end(st, to_buf, out);
}

void dotstuff_end_evbuffer(struct dotstuff *st, struct evbuffer *out)
{
    end(st, to_evbuffer, out);
}

void dotstuff_message_buf(struct slice d, struct buf *out)
{
    struct dotstuff st = DOTSTUFF_INIT;
    buf_reserve(out, d.len + d.len / 64 + 8);
    dotstuff_buf(&st, d, out);
    dotstuff_end_buf(&st, out);
}
