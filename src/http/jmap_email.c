/*
 * jmap_email.c - the Email object (RFC 8621 4.1): its metadata from the
 * store's copies, its header fields and body parts from the parsed message,
 * and Email/get and Email/parse.
 *
 * An Email is a body of the account: "e" + its SHA-256; mailboxIds are the
 * mailboxes holding a copy; keywords are those of its first copy (Email/set
 * keeps every copy the same). The message is read only when a property
 * needs more than the metadata. Never returns a body value longer than
 * maxBodyValueBytes, and never cuts a UTF-8 sequence.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"
#include "base/date.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PREVIEW_CHARS 256

static const struct {
    const char *keyword;
    unsigned flag;
} system_flags[] = {
    {"$seen", STORE_FLAG_SEEN},
    {"$answered", STORE_FLAG_ANSWERED},
    {"$flagged", STORE_FLAG_FLAGGED},
    {"$draft", STORE_FLAG_DRAFT},
};

/* The next keyword of the store's space-separated list at *p (*len_r bytes), or NULL. */
static const char *keyword_next(const char **p, size_t *len_r)
{
    while (**p == ' ')
        (*p)++;
    size_t len = strcspn(*p, " ");
    if (len == 0)
        return NULL;
    const char *kw = *p;
    *p += len;
    *len_r = len;
    return kw;
}

json_t *jmap_flags_to_keywords(unsigned flags, const char *keywords)
{
    json_t *k = json_object();
    for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++)
        if (flags & system_flags[i].flag)
            json_object_set_new(k, system_flags[i].keyword, json_true());
    const char *p = keywords ? keywords : "", *w;
    size_t len;
    while ((w = keyword_next(&p, &len)) != NULL) {
        char *kw = xstrndup(w, len);
        for (char *c = kw; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        json_object_set_new(k, kw, json_true());
        free(kw);
    }
    return k;
}

bool jmap_has_keyword(unsigned flags, const char *keywords, const char *kw)
{
    for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++)
        if (strcasecmp(kw, system_flags[i].keyword) == 0)
            return (flags & system_flags[i].flag) != 0;
    size_t want = strlen(kw), len;
    const char *p = keywords ? keywords : "", *w;
    while ((w = keyword_next(&p, &len)) != NULL)
        if (len == want && strncasecmp(w, kw, len) == 0)
            return true;
    return false;
}

/* RFC 8621 4.1.1: a keyword is 1-255 bytes of %x21-%x7e minus ( ) { ] % * " \ */
static bool keyword_ok(const char *k)
{
    size_t len = strlen(k);
    if (len == 0 || len > 255)
        return false;
    for (const char *p = k; *p; p++)
        if (*p < 0x21 || *p > 0x7e || strchr("(){]%*\"\\", *p))
            return false;
    return true;
}

bool jmap_keywords_to_flags(json_t *kw, unsigned *flags_r, struct buf *list)
{
    *flags_r = 0;
    buf_reset(list);
    if (!json_is_object(kw))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(kw, k, v)
    {
        if (!json_is_true(v) || !keyword_ok(k))
            return false;
        bool sys = false;
        for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
            if (strcasecmp(k, system_flags[i].keyword) == 0) {
                *flags_r |= system_flags[i].flag;
                sys = true;
            }
        }
        if (!sys) {
            if (list->len)
                buf_append_byte(list, ' ');
            buf_append_cstr(list, k);
        }
    }
    return true;
}

/* ---- header field forms (RFC 8621 4.1.2) ---- */

static json_t *text_value(struct slice raw)
{
    struct buf u = BUF_INIT, d = BUF_INIT;
    mime_unfold(raw, &u);
    mime_decode_words(buf_slice(&u), &d);
    json_t *s = json_stringn(d.data ? d.data : "", d.len);
    buf_free(&u);
    buf_free(&d);
    return s ? s : json_string("");
}

static json_t *addresses_value(struct slice raw)
{
    struct mime_address_list l;
    mime_address_parse(raw, &l);
    json_t *a = json_array();
    for (size_t i = 0; i < l.n; i++) {
        const struct mime_address *x = &l.v[i];
        if (x->host.ptr == NULL)
            continue; /* group markers: members are listed flat */
        struct buf email = BUF_INIT, name = BUF_INIT;
        buf_append_slice(&email, x->mailbox);
        buf_append_byte(&email, '@');
        buf_append_slice(&email, x->host);
        json_t *o = json_object();
        if (x->name.ptr) {
            mime_decode_words(x->name, &name);
            json_t *n = json_stringn(name.data ? name.data : "", name.len);
            json_object_set_new(o, "name", n ? n : json_null());
        } else
            json_object_set_new(o, "name", json_null());
        json_t *e = json_stringn(email.data, email.len);
        json_object_set_new(o, "email", e ? e : json_string(""));
        json_array_append_new(a, o);
        buf_free(&email);
        buf_free(&name);
    }
    mime_address_list_free(&l);
    return a;
}

static json_t *message_ids_value(struct slice raw)
{
    json_t *a = json_array();
    const char *p = raw.ptr, *end = raw.ptr + raw.len;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (lt == NULL)
            break;
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        if (gt == NULL)
            break;
        json_t *s = json_stringn(lt + 1, (size_t)(gt - lt - 1));
        if (s && gt > lt + 1)
            json_array_append_new(a, s);
        else
            json_decref(s);
        p = gt + 1;
    }
    if (json_array_size(a) == 0) {
        json_decref(a);
        return json_null();
    }
    return a;
}

static json_t *date_value(struct slice raw)
{
    int64_t t, zone;
    struct buf u = BUF_INIT;
    mime_unfold(raw, &u);
    bool ok = date_rfc5322_parse(buf_slice(&u), &t, &zone);
    buf_free(&u);
    if (!ok)
        return json_null();
    struct buf d = BUF_INIT;
    jmap_utc_date(t + zone, &d);
    d.len--; /* the Z */
    int64_t z = zone < 0 ? -zone : zone;
    buf_printf(&d, "%c%02d:%02d", zone < 0 ? '-' : '+', (int)(z / 3600), (int)(z / 60 % 60));
    json_t *s = json_string(d.data);
    buf_free(&d);
    return s;
}

enum hform { H_RAW, H_TEXT, H_ADDRESSES, H_IDS, H_DATE, H_URLS };

static json_t *form_value(enum hform f, struct slice raw)
{
    switch (f) {
    case H_TEXT:
        return text_value(raw);
    case H_ADDRESSES:
        return addresses_value(raw);
    case H_IDS:
        return message_ids_value(raw);
    case H_DATE:
        return date_value(raw);
    case H_URLS:
    case H_RAW:
        break;
    }
    json_t *s = json_stringn(raw.ptr, raw.len);
    return s ? s : json_string("");
}

/* "header:Name[:asForm][:all]" of part p; NULL when prop is not such a property. */
static json_t *header_property(const struct mime_message *msg, const struct mime_part *p,
                               const char *prop, bool *bad_r)
{
    *bad_r = false;
    if (strncmp(prop, "header:", 7) != 0)
        return NULL;
    char *spec = xstrdup(prop + 7);
    char *name = strtok(spec, ":"), *a = strtok(NULL, ":"), *b = strtok(NULL, ":");
    bool all = false;
    enum hform f = H_RAW;
    if (a && strcmp(a, "all") == 0) {
        all = true;
        a = NULL;
    } else if (b && strcmp(b, "all") == 0)
        all = true;
    else if (b)
        *bad_r = true;
    if (a) {
        static const char *const forms[] = {"asRaw",        "asText", "asAddresses",
                                            "asMessageIds", "asDate", "asURLs"};
        size_t k = 0;
        while (k < 6 && strcmp(a, forms[k]) != 0)
            k++;
        if (k == 6)
            *bad_r = true;
        f = (enum hform)(k < 6 ? k : 0);
    }
    json_t *res = NULL;
    if (name == NULL || *bad_r) {
        *bad_r = true;
    } else if (all) {
        res = json_array();
        for (size_t i = 0; i < p->field_count; i++) {
            const struct mime_field *fl = &msg->fields[p->field_first + i];
            if (slice_eq_cstr_nocase(mime_field_name(msg, fl), name))
                json_array_append_new(res, form_value(f, mime_field_value(msg, fl)));
        }
    } else {
        const struct mime_field *fl = mime_part_field_last(msg, p, name);
        res = fl ? form_value(f, mime_field_value(msg, fl)) : json_null();
    }
    free(spec);
    return res;
}

/* The raw value of the last field name of p (ptr NULL: none). */
static struct slice last_raw(const struct mime_message *msg, const struct mime_part *p,
                             const char *name)
{
    const struct mime_field *f = mime_part_field_last(msg, p, name);
    return f ? mime_field_value(msg, f) : SLICE_NULL;
}

static json_t *headers_list(const struct mime_message *msg, const struct mime_part *p)
{
    json_t *a = json_array();
    for (size_t i = 0; i < p->field_count; i++) {
        const struct mime_field *f = &msg->fields[p->field_first + i];
        struct slice n = mime_field_name(msg, f), v = mime_field_value(msg, f);
        json_t *jn = json_stringn(n.ptr, n.len), *jv = json_stringn(v.ptr, v.len);
        if (jn && jv)
            json_array_append_new(a, json_pack("{s:o, s:o}", "name", jn, "value", jv));
        else {
            json_decref(jn);
            json_decref(jv);
        }
    }
    return a;
}

/* ---- body parts (RFC 8621 4.1.4) ---- */

struct parts {
    const struct mime_part **v; /* preorder: v[i] has partId i + 1 */
    size_t n;
};

static void parts_collect(struct parts *ps, const struct mime_part *p)
{
    ps->v = xreallocarray(ps->v, ps->n + 1, sizeof(*ps->v));
    ps->v[ps->n++] = p;
    if (p->kind == MIME_MULTIPART)
        for (const struct mime_part *c = p->children; c; c = c->next)
            parts_collect(ps, c);
}

static size_t part_index(const struct parts *ps, const struct mime_part *p)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->v[i] == p)
            return i;
    return 0;
}

static void lower_type(const struct mime_part *p, struct buf *t)
{
    buf_reset(t);
    buf_append_slice(t, p->type);
    buf_append_byte(t, '/');
    buf_append_slice(t, p->subtype);
    for (size_t i = 0; i < t->len; i++)
        t->data[i] = (char)tolower((unsigned char)t->data[i]);
}

static bool type_is(const struct mime_part *p, const char *type, const char *subtype)
{
    return slice_eq_cstr_nocase(p->type, type) &&
           (subtype == NULL || slice_eq_cstr_nocase(p->subtype, subtype));
}

/* The decoded parameter name of field (Content-Type / Content-Disposition) of p into out. */
static bool part_param(const struct mime_message *msg, const struct mime_part *p, const char *field,
                       const char *name, struct buf *out, struct slice *value_r)
{
    const struct mime_field *f = mime_part_field(msg, p, field);
    buf_reset(out);
    if (value_r)
        *value_r = SLICE_NULL;
    if (f == NULL)
        return false;
    struct mime_params ps;
    struct slice value;
    struct buf u = BUF_INIT;
    mime_unfold(mime_field_value(msg, f), &u);
    mime_params_parse(buf_slice(&u), MIME_PARAMS_DECODE, &value, &ps);
    bool found = false;
    if (value_r && value.len) {
        /* the caller only compares it: copy into out after the param */
        *value_r = value;
    }
    if (name) {
        struct slice v = mime_params_get(&ps, name);
        if (v.ptr) {
            mime_decode_words(v, out);
            found = true;
        }
    } else if (value.len) {
        buf_append_slice(out, value);
        found = true;
    }
    mime_params_free(&ps);
    buf_free(&u);
    return found;
}

static bool part_name(const struct mime_message *msg, const struct mime_part *p, struct buf *out)
{
    return part_param(msg, p, "Content-Disposition", "filename", out, NULL) ||
           part_param(msg, p, "Content-Type", "name", out, NULL);
}

static bool part_attachment(const struct mime_message *msg, const struct mime_part *p)
{
    struct buf d = BUF_INIT;
    bool att = part_param(msg, p, "Content-Disposition", NULL, &d, NULL) &&
               strcasecmp(d.data, "attachment") == 0;
    buf_free(&d);
    return att;
}

/* The part's size once its transfer encoding is undone (counted, not decoded). */
static size_t part_size(const struct mime_message *msg, const struct mime_part *p)
{
    const struct mime_field *f = mime_part_field(msg, p, "Content-Transfer-Encoding");
    struct buf cte = BUF_INIT;
    if (f)
        mime_unfold(mime_field_value(msg, f), &cte);
    size_t size;
    mime_decoded_size(buf_slice(&cte), mime_part_body(msg, p), &size);
    buf_free(&cte);
    return size;
}

static json_t *part_object(const struct mime_message *msg, const struct parts *ps,
                           const struct mime_part *p, const char *hash, bool sub)
{
    json_t *o = json_object();
    struct buf t = BUF_INIT, v = BUF_INIT;
    size_t idx = part_index(ps, p);
    if (p->kind == MIME_MULTIPART) {
        json_object_set_new(o, "partId", json_null());
        json_object_set_new(o, "blobId", json_null());
        json_object_set_new(o, "size", json_integer(0));
    } else {
        char pid[24];
        snprintf(pid, sizeof(pid), "%zu", idx + 1);
        json_object_set_new(o, "partId", json_string(pid));
        buf_printf(&v, "b%s.%zu", hash, idx + 1);
        json_object_set_new(o, "blobId", json_string(v.data));
        json_object_set_new(o, "size", json_integer((json_int_t)part_size(msg, p)));
    }
    json_object_set_new(o, "headers", headers_list(msg, p));
    json_t *name = part_name(msg, p, &v) ? json_stringn(v.data, v.len) : NULL;
    json_object_set_new(o, "name", name ? name : json_null());
    lower_type(p, &t);
    json_object_set_new(o, "type", json_string(t.data));
    json_t *cs = NULL;
    if (part_param(msg, p, "Content-Type", "charset", &v, NULL))
        cs = json_stringn(v.data, v.len);
    else if (type_is(p, "text", NULL))
        cs = json_string("us-ascii");
    json_object_set_new(o, "charset", cs ? cs : json_null());
    json_t *disp = NULL;
    if (part_param(msg, p, "Content-Disposition", NULL, &v, NULL)) {
        for (size_t i = 0; i < v.len; i++)
            v.data[i] = (char)tolower((unsigned char)v.data[i]);
        disp = json_stringn(v.data, v.len);
    }
    json_object_set_new(o, "disposition", disp ? disp : json_null());
    struct slice cid = last_raw(msg, p, "Content-ID");
    json_t *jc = NULL;
    if (cid.ptr) {
        buf_reset(&v);
        mime_unfold(cid, &v);
        struct slice c = buf_slice(&v);
        if (c.len >= 2 && c.ptr[0] == '<' && c.ptr[c.len - 1] == '>')
            c = slice_make(c.ptr + 1, c.len - 2);
        jc = json_stringn(c.ptr, c.len);
    }
    json_object_set_new(o, "cid", jc ? jc : json_null());
    json_object_set_new(o, "language", json_null());
    json_object_set_new(o, "location", json_null());
    if (sub && p->kind == MIME_MULTIPART) {
        json_t *subs = json_array();
        for (const struct mime_part *c = p->children; c; c = c->next)
            json_array_append_new(subs, part_object(msg, ps, c, hash, true));
        json_object_set_new(o, "subParts", subs);
    }
    buf_free(&t);
    buf_free(&v);
    return o;
}

struct bodies {
    const struct mime_part **text, **html, **att;
    size_t ntext, nhtml, natt;
    bool no_text, no_html;
};

static void push(const struct mime_part ***v, size_t *n, const struct mime_part *p)
{
    *v = xreallocarray(*v, *n + 1, sizeof(**v));
    (*v)[(*n)++] = p;
}

static bool inline_media(const struct mime_part *p)
{
    return type_is(p, "image", NULL) || type_is(p, "audio", NULL) || type_is(p, "video", NULL);
}

/* RFC 8621 4.1.4's parseStructure, as the RFC writes it. */
static void parse_structure(const struct mime_message *msg, const struct mime_part *first,
                            const char *mtype, bool in_alt, struct bodies *b)
{
    size_t text_len = b->no_text ? (size_t)-1 : b->ntext;
    size_t html_len = b->no_html ? (size_t)-1 : b->nhtml;
    size_t i = 0;
    for (const struct mime_part *p = first; p; p = p->next, i++) {
        bool multi = p->kind == MIME_MULTIPART;
        bool is_text = type_is(p, "text", "plain"), is_html = type_is(p, "text", "html");
        struct buf nm = BUF_INIT;
        bool has_name = part_name(msg, p, &nm);
        buf_free(&nm);
        bool is_inline =
            !part_attachment(msg, p) && (is_text || is_html || inline_media(p)) &&
            (i == 0 || (strcmp(mtype, "related") != 0 && (inline_media(p) || !has_name)));
        if (multi) {
            char sub[32];
            size_t l = p->subtype.len < 31 ? p->subtype.len : 31;
            for (size_t k = 0; k < l; k++)
                sub[k] = (char)tolower((unsigned char)p->subtype.ptr[k]);
            sub[l] = '\0';
            parse_structure(msg, p->children, sub, in_alt || strcmp(sub, "alternative") == 0, b);
        } else if (is_inline) {
            if (strcmp(mtype, "alternative") == 0) {
                if (is_text)
                    push(&b->text, &b->ntext, p);
                else if (is_html)
                    push(&b->html, &b->nhtml, p);
                else
                    push(&b->att, &b->natt, p);
                continue;
            } else if (in_alt) {
                if (is_text)
                    b->no_html = true;
                if (is_html)
                    b->no_text = true;
            }
            if (!b->no_text)
                push(&b->text, &b->ntext, p);
            if (!b->no_html)
                push(&b->html, &b->nhtml, p);
            if ((b->no_text || b->no_html) && inline_media(p))
                push(&b->att, &b->natt, p);
        } else
            push(&b->att, &b->natt, p);
    }
    if (strcmp(mtype, "alternative") == 0 && !b->no_text && !b->no_html) {
        if (text_len == b->ntext && html_len != b->nhtml)
            for (size_t k = html_len; k < b->nhtml; k++)
                push(&b->text, &b->ntext, b->html[k]);
        if (html_len == b->nhtml && text_len != b->ntext)
            for (size_t k = text_len; k < b->ntext; k++)
                push(&b->html, &b->nhtml, b->text[k]);
    }
}

static void bodies_free(struct bodies *b)
{
    free(b->text);
    free(b->html);
    free(b->att);
}

/* At most max bytes of s, cut at a UTF-8 character boundary. */
static size_t utf8_cut(struct slice s, size_t max)
{
    if (s.len <= max)
        return s.len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s.ptr[n] & 0xc0) == 0x80)
        n--;
    return n;
}

static json_t *body_value(const struct mime_message *msg, const struct mime_part *p, size_t max)
{
    struct buf t = BUF_INIT;
    bool ok = mime_part_text(msg, p, &t);
    size_t n = max ? utf8_cut(buf_slice(&t), max) : t.len;
    json_t *s = json_stringn(t.data ? t.data : "", n);
    if (s == NULL) { /* not UTF-8 after all: keep what is */
        ok = false;
        struct buf clean = BUF_INIT;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)t.data[i] < 0x80)
                buf_append_byte(&clean, t.data[i]);
        s = json_stringn(clean.data ? clean.data : "", clean.len);
        buf_free(&clean);
    }
    json_t *o = json_pack("{s:o, s:b, s:b}", "value", s, "isEncodingProblem", !ok, "isTruncated",
                          n < t.len);
    buf_free(&t);
    return o;
}

/* The text a preview and a search snippet show: the first text (or HTML,
 * tags dropped) body part, white space runs as one space, trimmed. */
static void body_text(const struct mime_message *msg, const struct bodies *b, struct buf *s)
{
    struct buf t = BUF_INIT;
    const struct mime_part *p = b->ntext ? b->text[0] : b->nhtml ? b->html[0] : NULL;
    if (p) {
        mime_part_text(msg, p, &t);
        if (type_is(p, "text", "html"))
            mime_html_text(buf_slice(&t), s);
        else {
            bool space = false;
            for (size_t i = 0; i < t.len; i++) {
                char c = t.data[i];
                bool ws = c == ' ' || c == '\n' || c == '\r' || c == '\t';
                if (ws && (space || s->len == 0))
                    continue;
                space = ws;
                buf_append_byte(s, ws ? ' ' : c);
            }
        }
    }
    while (s->len && s->data[s->len - 1] == ' ')
        s->data[--s->len] = '\0';
    buf_free(&t);
}

static json_t *preview(const struct mime_message *msg, const struct bodies *b)
{
    struct buf s = BUF_INIT;
    body_text(msg, b, &s);
    /* 256 characters, not bytes */
    size_t n = 0, chars = 0;
    while (n < s.len && chars < PREVIEW_CHARS) {
        n++;
        while (n < s.len && ((unsigned char)s.data[n] & 0xc0) == 0x80)
            n++;
        chars++;
    }
    json_t *j = json_stringn(s.data ? s.data : "", n);
    buf_free(&s);
    return j ? j : json_string("");
}

void jmap_email_text(struct slice data, struct buf *subject, bool *has_subject, struct buf *body)
{
    struct mime_message msg;
    mime_parse(&msg, data, NULL);
    struct slice raw = last_raw(&msg, msg.root, "Subject");
    *has_subject = raw.ptr != NULL;
    if (raw.ptr) {
        json_t *v = form_value(H_TEXT, raw);
        if (json_is_string(v))
            buf_append_cstr(subject, json_string_value(v));
        json_decref(v);
    }
    struct bodies b = {0};
    parse_structure(&msg, msg.root, "mixed", false, &b);
    body_text(&msg, &b, body);
    bodies_free(&b);
    mime_message_free(&msg);
}

static json_t *part_list(const struct mime_message *msg, const struct parts *ps,
                         const struct mime_part **v, size_t n, const char *hash)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, part_object(msg, ps, v[i], hash, false));
    return a;
}

static void add_values(json_t *values, const struct mime_message *msg, const struct parts *ps,
                       const struct mime_part **v, size_t n, size_t max)
{
    for (size_t i = 0; i < n; i++) {
        char pid[24];
        snprintf(pid, sizeof(pid), "%zu", part_index(ps, v[i]) + 1);
        if (json_object_get(values, pid) == NULL && type_is(v[i], "text", NULL))
            json_object_set_new(values, pid, body_value(msg, v[i], max));
    }
}

/* Fills o with the properties asked for that need the message itself. */
static void message_properties(json_t *o, struct slice data, const char *hash, json_t *props,
                               json_t *args)
{
    struct mime_message msg;
    mime_parse(&msg, data, NULL);
    const struct mime_part *root = msg.root;
    static const struct {
        const char *prop, *field;
        enum hform form;
    } conv[] = {
        {"messageId", "Message-ID", H_IDS},
        {"inReplyTo", "In-Reply-To", H_IDS},
        {"references", "References", H_IDS},
        {"sender", "Sender", H_ADDRESSES},
        {"from", "From", H_ADDRESSES},
        {"to", "To", H_ADDRESSES},
        {"cc", "Cc", H_ADDRESSES},
        {"bcc", "Bcc", H_ADDRESSES},
        {"replyTo", "Reply-To", H_ADDRESSES},
        {"subject", "Subject", H_TEXT},
        {"sentAt", "Date", H_DATE},
    };
    for (size_t i = 0; i < sizeof(conv) / sizeof(conv[0]); i++) {
        if (!jmap_want(props, conv[i].prop))
            continue;
        struct slice raw = last_raw(&msg, root, conv[i].field);
        json_object_set_new(o, conv[i].prop, raw.ptr ? form_value(conv[i].form, raw) : json_null());
    }
    if (jmap_want(props, "headers"))
        json_object_set_new(o, "headers", headers_list(&msg, root));
    if (props) {
        size_t i;
        json_t *p;
        json_array_foreach(props, i, p)
        {
            bool bad;
            json_t *h = header_property(&msg, root, json_string_value(p), &bad);
            if (h)
                json_object_set_new(o, json_string_value(p), h);
        }
    }
    struct parts ps = {0};
    parts_collect(&ps, root);
    struct bodies b = {0};
    parse_structure(&msg, root, "mixed", false, &b);
    if (jmap_want(props, "bodyStructure"))
        json_object_set_new(o, "bodyStructure", part_object(&msg, &ps, root, hash, true));
    if (jmap_want(props, "textBody"))
        json_object_set_new(o, "textBody", part_list(&msg, &ps, b.text, b.ntext, hash));
    if (jmap_want(props, "htmlBody"))
        json_object_set_new(o, "htmlBody", part_list(&msg, &ps, b.html, b.nhtml, hash));
    if (jmap_want(props, "attachments"))
        json_object_set_new(o, "attachments", part_list(&msg, &ps, b.att, b.natt, hash));
    if (jmap_want(props, "hasAttachment"))
        json_object_set_new(o, "hasAttachment", json_boolean(b.natt > 0));
    if (jmap_want(props, "preview"))
        json_object_set_new(o, "preview", preview(&msg, &b));
    if (jmap_want(props, "bodyValues")) {
        json_t *values = json_object();
        json_t *mx = json_object_get(args, "maxBodyValueBytes");
        size_t max =
            json_is_integer(mx) && json_integer_value(mx) > 0 ? (size_t)json_integer_value(mx) : 0;
        if (json_is_true(json_object_get(args, "fetchAllBodyValues"))) {
            for (size_t i = 0; i < ps.n; i++)
                if (ps.v[i]->kind == MIME_LEAF)
                    add_values(values, &msg, &ps, &ps.v[i], 1, max);
        }
        if (json_is_true(json_object_get(args, "fetchTextBodyValues")))
            add_values(values, &msg, &ps, b.text, b.ntext, max);
        if (json_is_true(json_object_get(args, "fetchHTMLBodyValues")))
            add_values(values, &msg, &ps, b.html, b.nhtml, max);
        json_object_set_new(o, "bodyValues", values);
    }
    bodies_free(&b);
    free(ps.v);
    mime_message_free(&msg);
}

/* Properties read from the store's copies alone. */
static const char *const meta_props[] = {"id",       "blobId", "threadId",  "mailboxIds",
                                         "keywords", "size",   "receivedAt"};

static bool needs_message(json_t *props)
{
    if (props == NULL)
        return true;
    size_t i;
    json_t *p;
    json_array_foreach(props, i, p)
    {
        bool meta = false;
        for (size_t k = 0; k < sizeof(meta_props) / sizeof(meta_props[0]); k++)
            meta = meta || strcmp(json_string_value(p), meta_props[k]) == 0;
        if (!meta)
            return true;
    }
    return false;
}

static const char *const default_props[] = {
    "id",        "blobId",    "threadId",    "mailboxIds", "keywords",      "size",    "receivedAt",
    "messageId", "inReplyTo", "references",  "sender",     "from",          "to",      "cc",
    "bcc",       "replyTo",   "subject",     "sentAt",     "hasAttachment", "preview", "bodyValues",
    "textBody",  "htmlBody",  "attachments",
};

json_t *jmap_email_object(struct jmap_req *r, const struct store_account_message *c, size_t n,
                          json_t *props, json_t *args, json_t **err_r)
{
    const char *hash = c[0].m.blob;
    struct buf s = BUF_INIT;
    json_t *o = json_object();
    buf_printf(&s, "e%s", hash);
    json_object_set_new(o, "id", json_string(s.data));
    if (jmap_want(props, "blobId")) {
        buf_reset(&s);
        buf_printf(&s, "b%s", hash);
        json_object_set_new(o, "blobId", json_string(s.data));
    }
    if (jmap_want(props, "threadId")) {
        char tid[32];
        jmap_thread_id(c[0].thread, tid);
        json_object_set_new(o, "threadId", json_string(tid));
    }
    if (jmap_want(props, "mailboxIds")) {
        json_t *m = json_object();
        for (size_t i = 0; i < n; i++) {
            char id[32];
            jmap_mailbox_id(c[i].mailbox_id, id);
            json_object_set_new(m, id, json_true());
        }
        json_object_set_new(o, "mailboxIds", m);
    }
    if (jmap_want(props, "keywords"))
        json_object_set_new(o, "keywords", jmap_flags_to_keywords(c[0].m.flags, c[0].m.keywords));
    if (jmap_want(props, "size"))
        json_object_set_new(o, "size", json_integer((json_int_t)c[0].m.size));
    if (jmap_want(props, "receivedAt")) {
        buf_reset(&s);
        jmap_utc_date(c[0].m.internaldate, &s);
        json_object_set_new(o, "receivedAt", json_string(s.data));
    }
    buf_free(&s);
    if (needs_message(props)) {
        struct buf data = BUF_INIT, err = BUF_INIT;
        if (store_message_read_id(r->j->store, r->user, c[0].mailbox_id, c[0].m.uid, &data, &err) !=
            0) {
            *err_r = jmap_server_fail("read message", &err);
            buf_free(&data);
            buf_free(&err);
            json_decref(o);
            return NULL;
        }
        message_properties(o, buf_slice(&data), hash, props, args);
        buf_free(&data);
        buf_free(&err);
    }
    return o;
}

json_t *jmap_email_from_bytes(struct slice data, json_t *props, json_t *args)
{
    char hash[65];
    struct buf h = BUF_INIT;
    /* the parsed message's parts are named after the blob it came from */
    json_t *o = json_object();
    const char *bid = json_string_value(json_object_get(args, "_blobHash"));
    snprintf(hash, sizeof(hash), "%s", bid ? bid : "");
    message_properties(o, data, hash, props, args);
    buf_free(&h);
    return o;
}

/* Checks the properties asked for against those an Email has. */
static bool props_known(json_t *props, json_t **err_r)
{
    if (props == NULL)
        return true;
    size_t i;
    json_t *p;
    json_array_foreach(props, i, p)
    {
        const char *s = json_string_value(p);
        bool ok = strncmp(s, "header:", 7) == 0 || strcmp(s, "headers") == 0;
        for (size_t k = 0; k < sizeof(default_props) / sizeof(default_props[0]) && !ok; k++)
            ok = strcmp(s, default_props[k]) == 0;
        ok = ok || strcmp(s, "bodyStructure") == 0;
        if (!ok) {
            *err_r = jmap_invalid("unknown property");
            return false;
        }
    }
    return true;
}

/* The ids of every Email of the account (Email/get without ids), or NULL with err. */
static json_t *all_email_ids(struct jmap_req *r, struct buf *err)
{
    struct store_account_message *all;
    size_t n;
    if (jmap_account_messages(r, NULL, 0, &all, &n, err) != 0)
        return NULL;
    json_t *ids = json_array(), *seen = json_object();
    for (size_t i = 0; i < n; i++) {
        char id[70];
        snprintf(id, sizeof(id), "e%s", all[i].m.blob);
        if (json_object_get(seen, id) == NULL) {
            json_object_set_new(seen, id, json_true());
            json_array_append_new(ids, json_string(id));
        }
    }
    json_decref(seen);
    store_account_messages_free(all, n);
    return ids;
}

json_t *jmap_email_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *ids, *props;
    if (!jmap_check_account(r, args, err_r) || !jmap_get_ids(r, args, &ids, err_r) ||
        !jmap_get_properties(args, &props, err_r) || !props_known(props, err_r))
        return NULL;
    json_t *own_props = NULL, *own_ids = NULL, *res = NULL, *list = json_array(),
           *not_found = json_array();
    if (props == NULL) {
        own_props = json_array();
        for (size_t k = 0; k < sizeof(default_props) / sizeof(default_props[0]); k++)
            json_array_append_new(own_props, json_string(default_props[k]));
        props = own_props;
    }
    struct buf err = BUF_INIT;
    json_t *state = jmap_state(r);
    if (state == NULL) {
        *err_r = jmap_error("serverFail", "account state");
        goto out;
    }
    if (ids == NULL) {
        /* every Email: at most maxObjectsInGet of them */
        if ((ids = own_ids = all_email_ids(r, &err)) == NULL) {
            *err_r = jmap_server_fail("email get", &err);
            goto out;
        }
        if (json_array_size(ids) > r->j->limits.max_objects_in_get) {
            *err_r = jmap_error("requestTooLarge", "more Emails than maxObjectsInGet: give ids");
            goto out;
        }
    }
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        char hash[65];
        const char *sid = jmap_resolve_id(r, json_string_value(id));
        struct store_account_message *c = NULL;
        size_t n = 0;
        if (sid == NULL || !jmap_email_id_parse(sid, hash)) {
            json_array_append(not_found, id);
            continue;
        }
        if (jmap_account_messages(r, hash, 0, &c, &n, &err) != 0) {
            *err_r = jmap_server_fail("email get", &err);
            goto out;
        }
        json_t *o = n ? jmap_email_object(r, c, n, props, args, err_r) : NULL;
        store_account_messages_free(c, n);
        if (n == 0)
            json_array_append(not_found, id);
        else if (o == NULL)
            goto out;
        else
            json_array_append_new(list, o);
    }
    res = json_pack("{s:s, s:O, s:O, s:O}", "accountId", r->account_id.data, "state", state, "list",
                    list, "notFound", not_found);
out:
    json_decref(own_ids);
    json_decref(state);
    json_decref(list);
    json_decref(not_found);
    json_decref(own_props);
    buf_free(&err);
    return res;
}

json_t *jmap_email_parse(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *props;
    json_t *blobs = json_object_get(args, "blobIds");
    if (!jmap_check_account(r, args, err_r) || !jmap_get_properties(args, &props, err_r) ||
        !props_known(props, err_r))
        return NULL;
    if (!json_is_array(blobs)) {
        *err_r = jmap_invalid("blobIds must be an array");
        return NULL;
    }
    if (json_array_size(blobs) > r->j->limits.max_objects_in_get) {
        *err_r = jmap_error("requestTooLarge", "more blobIds than maxObjectsInGet");
        return NULL;
    }
    json_t *parsed = json_object(), *not_parsable = json_array(), *not_found = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(blobs, i, b)
    {
        struct buf data = BUF_INIT, err = BUF_INIT;
        const char *bid = json_string_value(b);
        int rc = bid ? jmap_blob_read(r->j, r->user, bid, &data, &err) : 1;
        if (rc < 0) {
            json_array_append(not_parsable, b);
        } else if (rc > 0)
            json_array_append(not_found, b);
        else {
            json_t *a = json_deep_copy(args);
            char hash[65] = "";
            if (strlen(bid) >= 65)
                memcpy(hash, bid + 1, 64);
            json_object_set_new(a, "_blobHash", json_string(hash));
            json_t *o = jmap_email_from_bytes(buf_slice(&data), props, a);
            json_decref(a);
            json_object_set_new(parsed, bid, o);
        }
        buf_free(&data);
        buf_free(&err);
    }
    return json_pack("{s:s, s:o, s:o, s:o}", "accountId", r->account_id.data, "parsed", parsed,
                     "notParsable", not_parsable, "notFound", not_found);
}
