/*
 * milter_proto.c - packets of the milter protocol (see milter_proto.h).
 */
#include "smtp/milter_proto.h"

#include <stdarg.h>
#include <string.h>

void milter_packet(struct buf *out, char cmd, const void *data, size_t len)
{
    buf_append_u32(out, (uint32_t)(len + 1));
    buf_append_byte(out, cmd);
    if (len > 0)
        buf_append(out, data, len);
}

/* A packet of NUL-terminated strings, after the byte lead (0: none). */
static void packet_strings(struct buf *out, int cmd, int lead, va_list ap)
{
    size_t at = out->len;
    buf_append_u32(out, 0);
    buf_append_byte(out, (char)cmd);
    if (lead != 0)
        buf_append_byte(out, (char)lead);
    for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
        buf_append(out, s, strlen(s) + 1);
    uint32_t len = (uint32_t)(out->len - at - 4);
    unsigned char *p = (unsigned char *)out->data + at;
    p[0] = (unsigned char)(len >> 24), p[1] = (unsigned char)(len >> 16);
    p[2] = (unsigned char)(len >> 8), p[3] = (unsigned char)len;
}

void milter_packet_strings(struct buf *out, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    packet_strings(out, cmd, 0, ap);
    va_end(ap);
}

void milter_packet_macros(struct buf *out, int stage, ...)
{
    va_list ap;
    va_start(ap, stage);
    packet_strings(out, MILTER_C_MACRO, stage, ap);
    va_end(ap);
}

static uint32_t get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

enum milter_take milter_take(struct slice in, char *cmd, struct slice *data, size_t *used)
{
    if (in.len < 4)
        return MILTER_TAKE_MORE;
    uint32_t len = get_u32(in.ptr);
    if (len == 0 || len > MILTER_PACKET_MAX)
        return MILTER_TAKE_BAD;
    if (in.len - 4 < len)
        return MILTER_TAKE_MORE;
    *cmd = in.ptr[4];
    *data = slice_make(in.ptr + 5, len - 1);
    *used = 4 + (size_t)len;
    return MILTER_TAKE_OK;
}

/* The NUL-terminated string at the start of *d, consumed; false without a NUL. */
static bool take_string(struct slice *d, struct slice *s)
{
    const char *nul = memchr(d->ptr, '\0', d->len);
    if (nul == NULL)
        return false;
    *s = slice_make(d->ptr, (size_t)(nul - d->ptr));
    d->ptr = nul + 1;
    d->len -= s->len + 1;
    return true;
}

/* RFC 5322 field name: printable US-ASCII but the colon, at least one. */
static bool field_name_ok(struct slice n)
{
    if (n.len == 0 || n.len > 998)
        return false;
    for (size_t i = 0; i < n.len; i++) {
        unsigned char c = (unsigned char)n.ptr[i];
        if (c < 33 || c > 126 || c == ':')
            return false;
    }
    return true;
}

/* A header value may hold folding (CR LF or LF followed by white space)
 * but no other control characters, and no line that is not a continuation. */
static bool field_value_ok(struct slice v)
{
    if (v.len > 65536)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c == '\r') {
            if (i + 1 >= v.len || v.ptr[i + 1] != '\n')
                return false;
            continue;
        }
        if (c == '\n') {
            if (i + 1 >= v.len || (v.ptr[i + 1] != ' ' && v.ptr[i + 1] != '\t'))
                return false;
            continue;
        }
        if (c < 32 && c != '\t')
            return false;
    }
    return true;
}

/* "4xx" or "5xx", then a space or a hyphen (several lines), printable text. */
static bool replycode_ok(struct slice t)
{
    if (t.len < 4 || (t.ptr[0] != '4' && t.ptr[0] != '5') || t.ptr[1] < '0' || t.ptr[1] > '9' ||
        t.ptr[2] < '0' || t.ptr[2] > '9' || (t.ptr[3] != ' ' && t.ptr[3] != '-'))
        return false;
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.ptr[i];
        if (c < 32 && c != '\r' && c != '\n' && c != '\t')
            return false;
    }
    return true;
}

bool milter_reply_parse(char cmd, struct slice d, struct milter_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->cmd = cmd;
    switch (cmd) {
    case MILTER_R_OPTNEG:
        /* version, actions, protocol; a list of macros may follow (ignored) */
        if (d.len < 12)
            return false;
        r->version = get_u32(d.ptr);
        r->actions = get_u32(d.ptr + 4);
        r->protocol = get_u32(d.ptr + 8);
        return r->version >= 2;
    case MILTER_R_ACCEPT:
    case MILTER_R_CONTINUE:
    case MILTER_R_DISCARD:
    case MILTER_R_REJECT:
    case MILTER_R_TEMPFAIL:
    case MILTER_R_PROGRESS:
    case MILTER_R_SKIP:
        return d.len == 0;
    case MILTER_R_REPLYCODE:
        return take_string(&d, &r->text) && d.len == 0 && replycode_ok(r->text);
    case MILTER_R_QUARANTINE:
        return take_string(&d, &r->text) && d.len == 0;
    case MILTER_R_INSHEADER:
    case MILTER_R_CHGHEADER:
        if (d.len < 4)
            return false;
        r->index = get_u32(d.ptr);
        d.ptr += 4, d.len -= 4;
        /* fall through */
    case MILTER_R_ADDHEADER:
        return take_string(&d, &r->name) && take_string(&d, &r->value) && d.len == 0 &&
               field_name_ok(r->name) && field_value_ok(r->value);
    case MILTER_R_ADDRCPT:
    case MILTER_R_DELRCPT:
    case MILTER_R_CHGFROM:
    case MILTER_R_REPLBODY:
    case MILTER_R_SETSYMLIST:
        return true; /* known, never negotiated: the caller refuses them */
    default:
        return false;
    }
}
