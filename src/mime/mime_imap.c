/*
 * mime_imap.c - the IMAP wire forms of a parsed message: strings (quoted or
 * literal), ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 / RFC 9051 section 7.4.2
 * and the formal syntax in section 9).
 *
 * Output follows Dovecot where the RFCs leave room (defaults, MISSING_*
 * addresses, RFC 2231 parameters shown joined but encoded), so that clients
 * see what they are used to. It must never emit anything that breaks the
 * grammar: every part gives a complete body, multiparts without children
 * and message/rfc822 parts without a parsed message get an empty one.
 */
#include "mime/mime.h"
#include "mime/mime_chars.h"

#include <string.h>

#define QUOTED_MAX 1024 /* longer strings go as literals */

#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

/* FETCH renders these for every message: bytes go straight into out after
 * one buf_reserve per string, not one buf_append per byte. */
static inline void put_byte(struct buf *out, char c)
{
    if (out->len + 1 < out->cap) {
        out->data[out->len++] = c;
        out->data[out->len] = '\0';
    } else {
        buf_append_byte(out, c);
    }
}
#define put_lit(out, s) buf_append((out), (s), sizeof(s) - 1)

/* "{n}\r\n" */
static char *literal_head(struct buf *out, size_t n, size_t room)
{
    buf_printf(out, "{%zu}\r\n", n);
    buf_reserve(out, room);
    return out->data + out->len;
}

static void put_end(struct buf *out, char *w)
{
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
}

/* Bytes that go into a quoted string as they are: printable ASCII but '"'
 * and '\\' (space included; mime_imap_string_human treats space apart). */
static bool plain_byte(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

void mime_imap_string(struct buf *out, struct slice s)
{
    bool quoted = s.len <= QUOTED_MAX;
    size_t nuls = 0, escapes = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (plain_byte(c))
            continue;
        if (c == 0)
            nuls++;
        if ((c < 0x20 && c != '\t') || c >= 0x7f)
            quoted = false;
        escapes += c == '"' || c == '\\';
    }
    if (quoted) {
        buf_reserve(out, s.len + escapes + 2);
        char *w = out->data + out->len;
        *w++ = '"';
        if (escapes == 0) {
            memcpy(w, s.ptr, s.len);
            w += s.len;
        } else {
            for (size_t i = 0; i < s.len; i++) {
                if (s.ptr[i] == '"' || s.ptr[i] == '\\')
                    *w++ = '\\';
                *w++ = s.ptr[i];
            }
        }
        *w++ = '"';
        put_end(out, w);
        return;
    }
    /* A literal may not hold NUL (RFC 3501 CHAR8): those bytes are dropped. */
    char *w = literal_head(out, s.len - nuls, s.len - nuls);
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] != '\0')
            *w++ = s.ptr[i];
    put_end(out, w);
}

void mime_imap_string_human(struct buf *out, struct slice s)
{
    size_t i = 0, n = s.len, outlen = 0;
    bool plain = n <= QUOTED_MAX, lwsp = true;
    /* pass 1: the length after collapsing white space, and whether the
     * text can go as it is in a quoted string */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c != ' ' && plain_byte(c)) {
            lwsp = false;
            outlen++;
            continue;
        }
        if (mime_is_lwsp((char)c)) {
            if (c != ' ' || lwsp)
                plain = false;
            if (!lwsp)
                outlen++;
            lwsp = true;
            continue;
        }
        if (c == 0 || c == '"' || c == '\\' || c < 0x20 || c >= 0x7f)
            plain = false;
        lwsp = false;
        outlen++;
    }
    if (lwsp && outlen > 0) {
        plain = false;
        outlen--; /* trailing space */
    }
    if (plain) {
        buf_reserve(out, n + 2);
        char *w = out->data + out->len;
        *w++ = '"';
        memcpy(w, s.ptr, n);
        w += n;
        *w++ = '"';
        put_end(out, w);
        return;
    }
    if (outlen == 0) {
        put_lit(out, "\"\"");
        return;
    }
    char *w = literal_head(out, outlen, outlen), *end = w + outlen;
    lwsp = true;
    for (i = 0; i < n && w < end; i++) {
        char c = s.ptr[i];
        if (mime_is_lwsp(c)) {
            if (!lwsp)
                *w++ = ' ';
            lwsp = true;
            continue;
        }
        *w++ = c == '\0' ? (char)0x80 : c;
        lwsp = false;
    }
    put_end(out, w);
}

void mime_imap_nstring(struct buf *out, struct slice s)
{
    if (s.ptr == NULL)
        put_lit(out, "NIL");
    else
        mime_imap_string(out, s);
}

/* An ENVELOPE text field: the value with white space made readable. */
static void human_nstring(struct buf *out, struct slice s)
{
    if (s.ptr == NULL)
        put_lit(out, "NIL");
    else
        mime_imap_string_human(out, s);
}

/* An address list; false (nothing appended) when there is no address. */
static bool address_list(struct buf *out, const struct mime_address *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct mime_address *a = &v[i];
        if (i == 0)
            put_byte(out, '(');
        put_byte(out, '(');
        human_nstring(out, a->name);
        put_byte(out, ' ');
        mime_imap_nstring(out, a->adl);
        put_byte(out, ' ');
        mime_imap_nstring(out, a->mailbox);
        put_byte(out, ' ');
        mime_imap_nstring(out, a->host);
        put_byte(out, ')');
    }
    if (n > 0)
        put_byte(out, ')');
    return n > 0;
}

static void envelope_write(struct buf *out, const struct mime_struct_envelope *e)
{
    if (e == NULL) {
        buf_append_cstr(out, EMPTY_ENVELOPE);
        return;
    }
    put_byte(out, '(');
    human_nstring(out, e->date);
    put_byte(out, ' ');
    human_nstring(out, e->subject);
    /* from, then sender and reply-to defaulting to from (RFC 3501 7.4.2) */
    static const enum mime_struct_addr order[] = {MIME_ADDR_FROM,     MIME_ADDR_SENDER,
                                                  MIME_ADDR_REPLY_TO, MIME_ADDR_TO,
                                                  MIME_ADDR_CC,       MIME_ADDR_BCC};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        enum mime_struct_addr a = order[k];
        put_byte(out, ' ');
        if (address_list(out, e->addr[a], e->naddr[a]))
            continue;
        if ((a != MIME_ADDR_SENDER && a != MIME_ADDR_REPLY_TO) ||
            !address_list(out, e->addr[MIME_ADDR_FROM], e->naddr[MIME_ADDR_FROM]))
            put_lit(out, "NIL");
    }
    put_byte(out, ' ');
    human_nstring(out, e->in_reply_to);
    put_byte(out, ' ');
    human_nstring(out, e->message_id);
    put_byte(out, ')');
}

void mime_imap_struct_envelope(struct buf *out, const struct mime_struct *st, size_t part)
{
    envelope_write(out, part < st->nparts ? st->parts[part].env : NULL);
}

/* body-fld-param; text parts always show a charset (us-ascii by default,
 * RFC 2045 section 5.2), appended last as Dovecot does. */
static void params_list(struct buf *out, const struct mime_param *v, size_t n, bool text)
{
    bool charset = !text;
    for (size_t i = 0; i < n && !charset; i++)
        charset = slice_eq_cstr_nocase(v[i].name, "charset");
    if (n == 0 && charset) {
        put_lit(out, "NIL");
        return;
    }
    put_byte(out, '(');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            put_byte(out, ' ');
        mime_imap_string(out, v[i].name);
        put_byte(out, ' ');
        mime_imap_string(out, v[i].value);
    }
    if (!charset)
        buf_append_cstr(out, n > 0 ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
    put_byte(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void ext_common(struct buf *out, const struct mime_struct_part *p)
{
    if (p->disposition.ptr != NULL) {
        put_byte(out, '(');
        mime_imap_string(out, p->disposition);
        put_byte(out, ' ');
        params_list(out, p->disp_params, p->ndisp_params, false);
        put_byte(out, ')');
    } else {
        put_lit(out, "NIL");
    }

    put_byte(out, ' ');
    size_t nlang = 0;
    struct slice s = p->language;
    size_t i = 0;
    while (i < s.len && nlang < MIME_MAX_PARAMS) {
        while (i < s.len && (s.ptr[i] == ',' || s.ptr[i] == ' ' || s.ptr[i] == '\t'))
            i++;
        size_t j = i;
        while (j < s.len && s.ptr[j] != ',' && s.ptr[j] != ' ' && s.ptr[j] != '\t')
            j++;
        if (j > i) {
            buf_append_cstr(out, nlang++ == 0 ? "(" : " ");
            mime_imap_string(out, slice_make(s.ptr + i, j - i));
        }
        i = j;
    }
    buf_append_cstr(out, nlang > 0 ? ")" : "NIL");
    put_byte(out, ' ');
    mime_imap_nstring(out, p->location);
}

static void body_write(struct buf *out, const struct mime_struct *st, size_t i, bool ext);

static void body_multipart(struct buf *out, const struct mime_struct *st, size_t i, bool ext)
{
    const struct mime_struct_part *p = &st->parts[i];
    put_byte(out, '(');
    if (p->first_child == MIME_STRUCT_NONE)
        buf_append_cstr(out, ext ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")");
    for (size_t c = p->first_child; c != MIME_STRUCT_NONE; c = st->parts[c].next)
        body_write(out, st, c, ext);
    put_byte(out, ' ');
    mime_imap_string(out, p->subtype);
    if (ext) {
        put_byte(out, ' ');
        params_list(out, p->params, p->nparams, false);
        put_byte(out, ' ');
        ext_common(out, p);
    }
    put_byte(out, ')');
}

static void body_single(struct buf *out, const struct mime_struct *st, size_t i, bool ext)
{
    const struct mime_struct_part *p = &st->parts[i];
    bool text = slice_eq_cstr_nocase(p->type, "text");
    put_byte(out, '(');
    if (p->kind == MIME_MESSAGE) {
        /* media-message, spelt as Dovecot does whatever the header says */
        buf_append_cstr(out, slice_eq_cstr_nocase(p->subtype, "global") ? "\"message\" \"global\""
                                                                        : "\"message\" \"rfc822\"");
    } else {
        mime_imap_string(out, p->type);
        put_byte(out, ' ');
        mime_imap_string(out, p->subtype);
    }
    put_byte(out, ' ');
    params_list(out, p->params, p->has_ctype ? p->nparams : 0, text);
    put_byte(out, ' ');
    mime_imap_nstring(out, p->id);
    put_byte(out, ' ');
    mime_imap_nstring(out, p->description);
    put_byte(out, ' ');
    mime_imap_string(out, p->encoding.len > 0 ? p->encoding : SLICE_LIT("7bit"));
    buf_printf(out, " %zu", p->body_len + p->body_bare_lf);
    if (p->kind == MIME_MESSAGE) {
        size_t c = p->first_child;
        put_byte(out, ' ');
        envelope_write(out, c != MIME_STRUCT_NONE ? st->parts[c].env : NULL);
        put_byte(out, ' ');
        if (c != MIME_STRUCT_NONE)
            body_write(out, st, c, ext);
        else
            buf_append_cstr(out, ext ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")");
        buf_printf(out, " %zu", p->body_lines);
    } else if (text) {
        buf_printf(out, " %zu", p->body_lines);
    }
    if (ext) {
        put_byte(out, ' ');
        mime_imap_nstring(out, p->md5);
        put_byte(out, ' ');
        ext_common(out, p);
    }
    put_byte(out, ')');
}

/* Recursion follows the tree, whose depth the parser or the decoder bounded. */
static void body_write(struct buf *out, const struct mime_struct *st, size_t i, bool ext)
{
    if (st->parts[i].kind == MIME_MULTIPART)
        body_multipart(out, st, i, ext);
    else
        body_single(out, st, i, ext);
}

void mime_imap_struct_bodystructure(struct buf *out, const struct mime_struct *st, size_t part,
                                    bool extended)
{
    if (part >= st->nparts)
        buf_append_cstr(out, extended ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")");
    else
        body_write(out, st, part, extended);
}

/* Index of p in st (both of msg, preorder). */
static size_t part_index(const struct mime_message *msg, const struct mime_part *p)
{
    size_t i = 0;
    for (const struct mime_part *q = msg->root; q != NULL && q != p; i++) {
        if (q->children != NULL) {
            q = q->children;
            continue;
        }
        while (q != NULL && q->next == NULL)
            q = q->parent;
        if (q != NULL)
            q = q->next;
    }
    return i;
}

void mime_imap_envelope(struct buf *out, const struct mime_message *msg, const struct mime_part *p)
{
    struct mime_struct st;
    mime_struct_from_message(&st, msg);
    mime_imap_struct_envelope(out, &st, part_index(msg, p));
    mime_struct_free(&st);
}

void mime_imap_bodystructure(struct buf *out, const struct mime_message *msg,
                             const struct mime_part *p, bool extended)
{
    struct mime_struct st;
    mime_struct_from_message(&st, msg);
    mime_imap_struct_bodystructure(out, &st, part_index(msg, p), extended);
    mime_struct_free(&st);
}
