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

void mime_imap_string(struct buf *out, struct slice s)
{
    bool quoted = s.len <= QUOTED_MAX;
    size_t nuls = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == 0)
            nuls++;
        if ((c < 0x20 && c != '\t') || c >= 0x7f)
            quoted = false;
    }
    if (quoted) {
        buf_append_byte(out, '"');
        size_t run = 0;
        for (size_t i = 0; i < s.len; i++) {
            if (s.ptr[i] == '"' || s.ptr[i] == '\\') {
                buf_append(out, s.ptr + run, i - run);
                buf_append_byte(out, '\\');
                run = i;
            }
        }
        buf_append(out, s.ptr + run, s.len - run);
        buf_append_byte(out, '"');
        return;
    }
    /* A literal may not hold NUL (RFC 3501 CHAR8): those bytes are dropped. */
    buf_printf(out, "{%zu}\r\n", s.len - nuls);
    if (nuls == 0) {
        buf_append_slice(out, s);
        return;
    }
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] != '\0')
            buf_append_byte(out, s.ptr[i]);
}

void mime_imap_string_human(struct buf *out, struct slice s)
{
    size_t i = 0, n = s.len, outlen = 0;
    bool plain = n <= QUOTED_MAX, lwsp = true;
    /* pass 1: the length after collapsing white space, and whether the
     * text can go as it is in a quoted string */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
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
        buf_append_byte(out, '"');
        buf_append_slice(out, s);
        buf_append_byte(out, '"');
        return;
    }
    if (outlen == 0) {
        buf_append_cstr(out, "\"\"");
        return;
    }
    buf_printf(out, "{%zu}\r\n", outlen);
    size_t start = out->len;
    lwsp = true;
    for (i = 0; i < n && out->len - start < outlen; i++) {
        char c = s.ptr[i];
        if (mime_is_lwsp(c)) {
            if (!lwsp)
                buf_append_byte(out, ' ');
            lwsp = true;
            continue;
        }
        buf_append_byte(out, c == '\0' ? (char)0x80 : c);
        lwsp = false;
    }
}

void mime_imap_nstring(struct buf *out, struct slice s)
{
    if (s.ptr == NULL)
        buf_append_cstr(out, "NIL");
    else
        mime_imap_string(out, s);
}

/* The unfolded value of the first field name of p as an nstring. */
static void field_nstring(struct buf *out, const struct mime_message *msg,
                          const struct mime_part *p, const char *name, struct buf *tmp)
{
    const struct mime_field *f = mime_part_field(msg, p, name);
    if (f == NULL) {
        buf_append_cstr(out, "NIL");
        return;
    }
    buf_reset(tmp);
    mime_unfold(mime_field_value(msg, f), tmp);
    mime_imap_string(out, buf_slice(tmp));
}

/* An ENVELOPE text field (its last occurrence): the value with white space
 * made readable. */
static void field_human(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                        const char *name)
{
    const struct mime_field *f = mime_part_field_last(msg, p, name);
    if (f == NULL) {
        buf_append_cstr(out, "NIL");
        return;
    }
    struct slice v = mime_field_value(msg, f);
    while (v.len > 0 && (v.ptr[0] == ' ' || v.ptr[0] == '\t')) {
        v.ptr++;
        v.len--;
    }
    mime_imap_string_human(out, v);
}

/* Appends the addresses of every field called name (a message may repeat
 * To: or Cc:, and Dovecot shows them all as one list); false (nothing
 * appended) when there is no address. */
static bool address_list(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                         const char *name)
{
    size_t n = strlen(name), total = 0;
    for (size_t k = 0; k < p->field_count; k++) {
        const struct mime_field *f = &msg->fields[p->field_first + k];
        if (f->name_len != n || !slice_eq_cstr_nocase(mime_field_name(msg, f), name))
            continue;
        struct mime_address_list list;
        mime_address_parse(mime_field_value(msg, f), &list);
        for (size_t i = 0; i < list.n && total < MIME_MAX_ADDRESSES; i++, total++) {
            const struct mime_address *a = &list.v[i];
            buf_append_cstr(out, total == 0 ? "((" : "(");
            if (a->name.ptr == NULL)
                buf_append_cstr(out, "NIL");
            else
                mime_imap_string_human(out, a->name);
            buf_append_byte(out, ' ');
            mime_imap_nstring(out, a->adl);
            buf_append_byte(out, ' ');
            mime_imap_nstring(out, a->mailbox);
            buf_append_byte(out, ' ');
            mime_imap_nstring(out, a->host);
            buf_append_byte(out, ')');
        }
        mime_address_list_free(&list);
    }
    if (total > 0)
        buf_append_byte(out, ')');
    return total > 0;
}

void mime_imap_envelope(struct buf *out, const struct mime_message *msg, const struct mime_part *p)
{
    struct buf tmp = BUF_INIT;
    buf_init(&tmp);
    buf_append_byte(out, '(');
    field_human(out, msg, p, "Date");
    buf_append_byte(out, ' ');
    field_human(out, msg, p, "Subject");
    /* from, then sender and reply-to defaulting to from */
    buf_append_byte(out, ' ');
    size_t from_at = out->len;
    bool has_from = address_list(out, msg, p, "From");
    size_t from_len = out->len - from_at;
    if (!has_from)
        buf_append_cstr(out, "NIL");
    static const char *const dflt[] = {"Sender", "Reply-To"};
    for (size_t k = 0; k < 2; k++) {
        buf_append_byte(out, ' ');
        if (address_list(out, msg, p, dflt[k]))
            continue;
        if (has_from) {
            /* copy the from list: out may move, so go through tmp */
            buf_reset(&tmp);
            buf_append(&tmp, out->data + from_at, from_len);
            buf_append_slice(out, buf_slice(&tmp));
        } else {
            buf_append_cstr(out, "NIL");
        }
    }
    static const char *const lists[] = {"To", "Cc", "Bcc"};
    for (size_t k = 0; k < 3; k++) {
        buf_append_byte(out, ' ');
        if (!address_list(out, msg, p, lists[k]))
            buf_append_cstr(out, "NIL");
    }
    buf_append_byte(out, ' ');
    field_human(out, msg, p, "In-Reply-To");
    buf_append_byte(out, ' ');
    field_human(out, msg, p, "Message-ID");
    buf_append_byte(out, ')');
    buf_free(&tmp);
}

/* body-fld-param; text parts always show a charset (us-ascii by default,
 * RFC 2045 section 5.2), appended last as Dovecot does. */
static void params_list(struct buf *out, const struct mime_params *params, bool text)
{
    bool charset = !text || mime_params_get(params, "charset").ptr != NULL;
    if (params->n == 0 && charset) {
        buf_append_cstr(out, "NIL");
        return;
    }
    buf_append_byte(out, '(');
    for (size_t i = 0; i < params->n; i++) {
        if (i > 0)
            buf_append_byte(out, ' ');
        mime_imap_string(out, params->v[i].name);
        buf_append_byte(out, ' ');
        mime_imap_string(out, params->v[i].value);
    }
    if (!charset)
        buf_append_cstr(out,
                        params->n > 0 ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
    buf_append_byte(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void ext_common(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                       struct buf *tmp)
{
    const struct mime_field *f = mime_part_field_last(msg, p, "Content-Disposition");
    struct mime_params params;
    struct slice v;
    if (f != NULL) {
        mime_params_parse(mime_field_value(msg, f), MIME_PARAMS_JOIN, &v, &params);
        if (v.len > 0) {
            buf_append_byte(out, '(');
            mime_imap_string(out, v);
            buf_append_byte(out, ' ');
            params_list(out, &params, false);
            buf_append_byte(out, ')');
        } else {
            buf_append_cstr(out, "NIL");
        }
        mime_params_free(&params);
    } else {
        buf_append_cstr(out, "NIL");
    }

    buf_append_byte(out, ' ');
    f = mime_part_field(msg, p, "Content-Language");
    size_t nlang = 0;
    if (f != NULL) {
        buf_reset(tmp);
        mime_unfold(mime_field_value(msg, f), tmp);
        struct slice s = buf_slice(tmp);
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
    }
    buf_append_cstr(out, nlang > 0 ? ")" : "NIL");
    buf_append_byte(out, ' ');
    field_nstring(out, msg, p, "Content-Location", tmp);
}

static void body_write(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                       bool ext, struct buf *tmp);

static void body_multipart(struct buf *out, const struct mime_message *msg,
                           const struct mime_part *p, bool ext, struct buf *tmp)
{
    buf_append_byte(out, '(');
    if (p->children == NULL)
        buf_append_cstr(out, ext ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")");
    for (const struct mime_part *c = p->children; c != NULL; c = c->next)
        body_write(out, msg, c, ext, tmp);
    buf_append_byte(out, ' ');
    mime_imap_string(out, p->subtype);
    if (ext) {
        struct mime_params params;
        struct slice v;
        buf_append_byte(out, ' ');
        mime_params_parse(mime_field_value(msg, mime_part_field(msg, p, "Content-Type")),
                          MIME_PARAMS_JOIN, &v, &params);
        params_list(out, &params, false);
        mime_params_free(&params);
        buf_append_byte(out, ' ');
        ext_common(out, msg, p, tmp);
    }
    buf_append_byte(out, ')');
}

static void body_single(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                        bool ext, struct buf *tmp)
{
    bool text = slice_eq_cstr_nocase(p->type, "text");
    buf_append_byte(out, '(');
    if (p->kind == MIME_MESSAGE) {
        /* media-message, spelt as Dovecot does whatever the header says */
        buf_append_cstr(out, slice_eq_cstr_nocase(p->subtype, "global") ? "\"message\" \"global\""
                                                                        : "\"message\" \"rfc822\"");
    } else {
        mime_imap_string(out, p->type);
        buf_append_byte(out, ' ');
        mime_imap_string(out, p->subtype);
    }
    buf_append_byte(out, ' ');
    struct mime_params params = {0};
    struct slice v;
    if (p->has_ctype)
        mime_params_parse(mime_field_value(msg, mime_part_field(msg, p, "Content-Type")),
                          MIME_PARAMS_JOIN, &v, &params);
    params_list(out, &params, text);
    if (p->has_ctype)
        mime_params_free(&params);
    buf_append_byte(out, ' ');
    field_nstring(out, msg, p, "Content-ID", tmp);
    buf_append_byte(out, ' ');
    field_nstring(out, msg, p, "Content-Description", tmp);
    buf_append_byte(out, ' ');
    const struct mime_field *cte = mime_part_field(msg, p, "Content-Transfer-Encoding");
    buf_reset(tmp);
    if (cte != NULL)
        mime_unfold(mime_field_value(msg, cte), tmp);
    mime_imap_string(out, tmp->len > 0 ? buf_slice(tmp) : SLICE_LIT("7bit"));
    buf_printf(out, " %zu", mime_part_body_size_crlf(p));
    if (p->kind == MIME_MESSAGE) {
        buf_append_byte(out, ' ');
        if (p->children != NULL)
            mime_imap_envelope(out, msg, p->children);
        else
            buf_append_cstr(out, EMPTY_ENVELOPE);
        buf_append_byte(out, ' ');
        if (p->children != NULL)
            body_write(out, msg, p->children, ext, tmp);
        else
            buf_append_cstr(out, ext ? EMPTY_BODY " NIL NIL NIL NIL)" : EMPTY_BODY ")");
        buf_printf(out, " %zu", p->body_lines);
    } else if (text) {
        buf_printf(out, " %zu", p->body_lines);
    }
    if (ext) {
        buf_append_byte(out, ' ');
        field_nstring(out, msg, p, "Content-MD5", tmp);
        buf_append_byte(out, ' ');
        ext_common(out, msg, p, tmp);
    }
    buf_append_byte(out, ')');
}

/* Recursion follows the tree, whose depth the parser bounded. */
static void body_write(struct buf *out, const struct mime_message *msg, const struct mime_part *p,
                       bool ext, struct buf *tmp)
{
    if (p->kind == MIME_MULTIPART)
        body_multipart(out, msg, p, ext, tmp);
    else
        body_single(out, msg, p, ext, tmp);
}

void mime_imap_bodystructure(struct buf *out, const struct mime_message *msg,
                             const struct mime_part *p, bool extended)
{
    struct buf tmp = BUF_INIT;
    buf_init(&tmp);
    body_write(out, msg, p, extended, &tmp);
    buf_free(&tmp);
}
