/*
 * dotread.c - the dot-terminated reader of the line protocols (SMTP DATA and
 * BDAT, NNTP POST/IHAVE/TAKETHIS): end detection on <CRLF>.<CRLF> only,
 * dot-unstuffing, bare CR/LF verdicts and the size, line and header limits.
 *
 * Must never: end the data on a line that did not begin after a real CRLF or
 * that ends in a bare LF (".\n", "\n.\r\n": smuggling), or store a byte
 * beyond max_size.
 */
#include "net/dotread.h"

#include <string.h>

enum {
    SC_LINE_START, /* at the start of a line */
    SC_DOT,        /* "." at the start of a line */
    SC_DOT_CR,     /* ".\r" at the start of a line */
    SC_TEXT,       /* inside a line */
    SC_CR,         /* "\r" inside a line */
    SC_DONE,
};

void dotread_init(struct dotread *s, const struct dotread_limits *lim, bool counted, bool binary,
                  struct buf *out)
{
    memset(s, 0, sizeof(*s));
    s->lim = *lim;
    s->counted = counted;
    s->binary = binary;
    s->state = SC_LINE_START;
    s->crlf_start = true;
    s->in_header = true;
    s->out = out;
}

bool dotread_failed(const struct dotread *s)
{
    return s->bare_lf || s->bare_cr || s->oversize || s->line_too_long || s->header_too_big;
}

static void emit(struct dotread *s, const char *p, size_t n)
{
    s->size += n;
    if (s->size > s->lim.max_size)
        s->oversize = true;
    if (!dotread_failed(s))
        buf_append(s->out, p, n);
}

static void line_bytes(struct dotread *s, size_t n)
{
    s->line_len += n;
    if (s->lim.max_line && s->line_len > s->lim.max_line)
        s->line_too_long = true;
}

/* A line ended (real CRLF when crlf). */
static void line_end(struct dotread *s, bool crlf)
{
    emit(s, "\r\n", 2);
    if (s->in_header) {
        if (s->line_len == 0)
            s->in_header = false;
        else {
            s->header_len += s->line_len + 2;
            if (s->lim.max_header && s->header_len > s->lim.max_header)
                s->header_too_big = true;
        }
    }
    s->line_len = 0;
    s->crlf_start = crlf;
    s->state = SC_LINE_START;
}

static void bare(struct dotread *s, bool lf)
{
    if (s->lim.newline == DOTREAD_NEWLINE_REJECT) {
        if (lf)
            s->bare_lf = true;
        else
            s->bare_cr = true;
    }
    line_end(s, false);
}

enum dotread_result dotread_feed(struct dotread *s, const char *p, size_t n, size_t *consumed_r)
{
    size_t i = 0;
    if (s->binary) {
        emit(s, p, n);
        *consumed_r = n;
        return DOTREAD_NEED_MORE;
    }
    while (i < n) {
        char c = p[i];
        switch (s->state) {
        case SC_LINE_START:
            if (c == '.' && !s->counted) {
                s->state = SC_DOT;
                i++;
                break;
            }
            s->state = SC_TEXT;
            break; /* c is handled as text */
        case SC_TEXT: {
            size_t j = i;
            while (j < n && p[j] != '\r' && p[j] != '\n')
                j++;
            if (j > i) {
                line_bytes(s, j - i);
                emit(s, p + i, j - i);
                i = j;
                break;
            }
            i++;
            if (c == '\r')
                s->state = SC_CR;
            else
                bare(s, true);
            break;
        }
        case SC_CR:
            if (c == '\n') {
                i++;
                line_end(s, true);
            } else {
                bare(s, false); /* c is looked at again at the start of a line */
            }
            break;
        case SC_DOT:
            if (c == '\r') {
                s->state = SC_DOT_CR;
                i++;
            } else if (c == '\n') {
                /* ".\n": not the end. Kept as a line holding one dot. */
                i++;
                line_bytes(s, 1);
                emit(s, ".", 1);
                bare(s, true);
            } else {
                s->state = SC_TEXT; /* dot-unstuffing: the dot is dropped */
            }
            break;
        case SC_DOT_CR:
            if (c == '\n' && s->crlf_start) {
                i++;
                s->state = SC_DONE;
                *consumed_r = i;
                return DOTREAD_DONE;
            }
            line_bytes(s, 1);
            emit(s, ".", 1);
            if (c == '\n') {
                /* "\n.\r\n": the line before ended bare, so this is no end. */
                i++;
                line_end(s, true);
            } else {
                bare(s, false);
            }
            break;
        default:
            i = n;
            break;
        }
    }
    *consumed_r = n;
    return DOTREAD_NEED_MORE;
}

void dotread_finish(struct dotread *s)
{
    if (s->state == SC_CR)
        bare(s, false);
}
