/*
 * smtp_client_reply.c - parses server replies and EHLO keywords for the
 * SMTP client (see smtp_client_reply.h). Never allocates past the limits,
 * never trusts a line's length or count.
 */
#include "smtp/smtp_client_reply.h"

#include <string.h>

void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t line_max, size_t lines_max)
{
    memset(p, 0, sizeof(*p));
    p->line_max = line_max ? line_max : SMTP_REPLY_LINE_MAX_DEFAULT;
    p->lines_max = lines_max ? lines_max : SMTP_REPLY_LINES_MAX_DEFAULT;
    buf_init(&p->line);
    buf_init(&p->reply.text);
}

void smtp_reply_parser_free(struct smtp_reply_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->reply.text);
}

void smtp_reply_parser_reset(struct smtp_reply_parser *p)
{
    buf_reset(&p->line);
    buf_reset(&p->reply.text);
    p->reply.code = 0;
    p->reply.enh[0] = '\0';
    p->reply.n_lines = 0;
    p->in_reply = false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "X.Y.Z" at the start of s with X the reply's class; returns its length or 0. */
static size_t enh_len(struct slice s, int code)
{
    if (s.len < 5 || s.ptr[0] != (char)('0' + code / 100) || s.ptr[1] != '.')
        return 0;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t n = 0;
        while (i < s.len && is_digit(s.ptr[i])) {
            i++;
            if (++n > 3)
                return 0;
        }
        if (n == 0)
            return 0;
        if (part == 0) {
            if (i >= s.len || s.ptr[i] != '.')
                return 0;
            i++;
        }
    }
    return i < s.len && s.ptr[i] != ' ' ? 0 : i;
}

/* One complete line (without CR LF). Returns ERROR, MORE (continuation) or DONE. */
static enum smtp_reply_status take_line(struct smtp_reply_parser *p)
{
    struct slice l = buf_slice(&p->line);
    if (l.len < 3 || !is_digit(l.ptr[0]) || !is_digit(l.ptr[1]) || !is_digit(l.ptr[2]) ||
        l.ptr[0] < '2' || l.ptr[0] > '5')
        return SMTP_REPLY_ERROR;
    int code = (l.ptr[0] - '0') * 100 + (l.ptr[1] - '0') * 10 + (l.ptr[2] - '0');
    if (l.len > 3 && l.ptr[3] != ' ' && l.ptr[3] != '-')
        return SMTP_REPLY_ERROR;
    bool last = l.len == 3 || l.ptr[3] == ' ';
    if (p->in_reply && code != p->reply.code)
        return SMTP_REPLY_ERROR;
    if (++p->reply.n_lines > p->lines_max)
        return SMTP_REPLY_ERROR;
    struct slice text = l.len > 4 ? slice_make(l.ptr + 4, l.len - 4) : SLICE_NULL;
    if (!p->in_reply) {
        p->reply.code = code;
        size_t n = enh_len(text, code);
        if (n > 0 && n < sizeof(p->reply.enh)) {
            memcpy(p->reply.enh, text.ptr, n);
            p->reply.enh[n] = '\0';
            text.ptr += n;
            text.len -= n;
            text = slice_trim(text);
        }
        p->in_reply = true;
    } else {
        buf_append_byte(&p->reply.text, '\n');
    }
    buf_append_slice(&p->reply.text, text);
    buf_reset(&p->line);
    return last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len,
                                        size_t *used_r)
{
    if (!p->in_reply && p->line.len == 0 && p->reply.n_lines > 0) {
        /* the previous reply was handed out: start a new one */
        smtp_reply_parser_reset(p);
    }
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
        if (p->line.len + take > p->line_max + 1) /* +1: the CR */
            return SMTP_REPLY_ERROR;
        buf_append(&p->line, data + i, take);
        i += take;
        if (nl == NULL)
            break;
        i++; /* the LF */
        if (p->line.len > 0 && p->line.data[p->line.len - 1] == '\r')
            p->line.data[--p->line.len] = '\0';
        if (memchr(p->line.data, '\r', p->line.len) != NULL ||
            memchr(p->line.data, '\0', p->line.len) != NULL)
            return SMTP_REPLY_ERROR;
        enum smtp_reply_status st = take_line(p);
        if (st == SMTP_REPLY_ERROR)
            return st;
        if (st == SMTP_REPLY_DONE) {
            p->in_reply = false; /* the next call starts a new reply */
            *used_r = i;
            return SMTP_REPLY_DONE;
        }
    }
    *used_r = i;
    return SMTP_REPLY_MORE;
}

void smtp_caps_parse(const struct smtp_reply *r, struct smtp_caps *caps_r)
{
    memset(caps_r, 0, sizeof(*caps_r));
    caps_r->esmtp = true;
    struct slice all = buf_slice(&r->text);
    bool first = true;
    while (all.len > 0 || first) {
        const char *nl = memchr(all.ptr, '\n', all.len);
        struct slice line = slice_make(all.ptr, nl ? (size_t)(nl - all.ptr) : all.len);
        all = nl ? slice_make(nl + 1, all.len - line.len - 1) : SLICE_NULL;
        if (first) {
            first = false;
            continue;
        }
        /* keyword [SP params] */
        size_t k = 0;
        while (k < line.len && line.ptr[k] != ' ' && line.ptr[k] != '=')
            k++;
        struct slice kw = slice_make(line.ptr, k);
        struct slice rest =
            k < line.len ? slice_trim(slice_make(line.ptr + k + 1, line.len - k - 1)) : SLICE_NULL;
        if (slice_eq_cstr_nocase(kw, "PIPELINING"))
            caps_r->pipelining = true;
        else if (slice_eq_cstr_nocase(kw, "8BITMIME"))
            caps_r->eightbitmime = true;
        else if (slice_eq_cstr_nocase(kw, "SMTPUTF8"))
            caps_r->smtputf8 = true;
        else if (slice_eq_cstr_nocase(kw, "CHUNKING"))
            caps_r->chunking = true;
        else if (slice_eq_cstr_nocase(kw, "BINARYMIME"))
            caps_r->binarymime = true;
        else if (slice_eq_cstr_nocase(kw, "DSN"))
            caps_r->dsn = true;
        else if (slice_eq_cstr_nocase(kw, "STARTTLS"))
            caps_r->starttls = true;
        else if (slice_eq_cstr_nocase(kw, "X-WHARF-LINKSTATE"))
            caps_r->wharf_linkstate = true;
        else if (slice_eq_cstr_nocase(kw, "ENHANCEDSTATUSCODES"))
            caps_r->enhancedstatuscodes = true;
        else if (slice_eq_cstr_nocase(kw, "SIZE")) {
            uint64_t v = 0;
            for (size_t j = 0; j < rest.len && is_digit(rest.ptr[j]); j++)
                v = v > UINT64_MAX / 10 - 1 ? UINT64_MAX : v * 10 + (uint64_t)(rest.ptr[j] - '0');
            caps_r->size = v;
            caps_r->size_ext = true;
        } else if (slice_eq_cstr_nocase(kw, "AUTH")) {
            while (rest.len > 0) {
                size_t m = 0;
                while (m < rest.len && rest.ptr[m] != ' ')
                    m++;
                struct slice mech = slice_make(rest.ptr, m);
                if (slice_eq_cstr_nocase(mech, "PLAIN"))
                    caps_r->auth_plain = true;
                else if (slice_eq_cstr_nocase(mech, "LOGIN"))
                    caps_r->auth_login = true;
                rest = m < rest.len ? slice_trim(slice_make(rest.ptr + m + 1, rest.len - m - 1))
                                    : SLICE_NULL;
            }
        }
    }
}

void smtp_xtext_encode(struct slice in, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (c < 33 || c > 126 || c == '+' || c == '=') {
            char e[3] = {'+', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 3);
        } else {
            buf_append_byte(out, (char)c);
        }
    }
}
