/*
 * mime_header.c - header field access: lookup, unfolding, RFC 2047
 * encoded-words and RFC 2045/2231 parameters of Content-Type and
 * Content-Disposition.
 *
 * Everything here works on raw field values that came from hostile mail:
 * it must never read outside the slice it is given, never fail, and keep
 * its output bounded by a small multiple of its input.
 */
#include "mime/mime.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

struct slice mime_field_name(const struct mime_message *msg, const struct mime_field *f)
{
    return slice_make(msg->data.ptr + f->start, f->name_len);
}

struct slice mime_field_value(const struct mime_message *msg, const struct mime_field *f)
{
    if (f == NULL)
        return slice_make("", 0);
    return slice_make(msg->data.ptr + f->value_start, f->value_len);
}

const struct mime_field *mime_part_field(const struct mime_message *msg, const struct mime_part *p,
                                         const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < p->field_count; i++) {
        const struct mime_field *f = &msg->fields[p->field_first + i];
        if (f->name_len == n && slice_eq_cstr_nocase(mime_field_name(msg, f), name))
            return f;
    }
    return NULL;
}

static bool is_lwsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void mime_unfold(struct slice raw, struct buf *out)
{
    size_t i = 0, n = raw.len;
    while (i < n && is_lwsp(raw.ptr[i]))
        i++;
    while (n > i && is_lwsp(raw.ptr[n - 1]))
        n--;
    size_t run = i;
    for (; i < n; i++) {
        char c = raw.ptr[i];
        if (c == '\r' || c == '\n') {
            buf_append(out, raw.ptr + run, i - run);
            run = i + 1;
        }
    }
    buf_append(out, raw.ptr + run, n - run);
}

/* ---- RFC 2047 ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

struct eword {
    struct slice charset, text;
    char enc;
    size_t end; /* index after "?=" */
};

/* An encoded-word at s[i] ("=?charset?B?text?="), lenient about its length. */
static bool eword_parse(struct slice s, size_t i, struct eword *w)
{
    size_t n = s.len;
    if (i + 1 >= n || s.ptr[i] != '=' || s.ptr[i + 1] != '?')
        return false;
    size_t c0 = i + 2, c = c0;
    while (c < n && s.ptr[c] != '?' && !is_lwsp(s.ptr[c]) && c - c0 < 64)
        c++;
    if (c == c0 || c + 3 >= n || s.ptr[c] != '?' || s.ptr[c + 2] != '?')
        return false;
    char enc = s.ptr[c + 1];
    if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q')
        return false;
    size_t t0 = c + 3, t = t0;
    while (t + 1 < n && !(s.ptr[t] == '?' && s.ptr[t + 1] == '=') && !is_lwsp(s.ptr[t]))
        t++;
    if (t + 1 >= n || s.ptr[t] != '?' || s.ptr[t + 1] != '=')
        return false;
    struct slice cs = slice_make(s.ptr + c0, c - c0);
    const char *star = memchr(cs.ptr, '*', cs.len); /* RFC 2231 language suffix */
    if (star != NULL)
        cs.len = (size_t)(star - cs.ptr);
    w->charset = cs;
    w->enc = (char)(enc & ~0x20);
    w->text = slice_make(s.ptr + t0, t - t0);
    w->end = t + 2;
    return true;
}

static void eword_decode(const struct eword *w, struct buf *out)
{
    if (w->enc == 'B') {
        mime_decode_base64(w->text, out);
        return;
    }
    const char *t = w->text.ptr;
    size_t n = w->text.len;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (t[i] == '_') {
            buf_append_byte(out, ' ');
        } else if (t[i] == '=' && i + 2 < n && (h = hexval(t[i + 1])) >= 0 &&
                   (l = hexval(t[i + 2])) >= 0) {
            buf_append_byte(out, (char)(h << 4 | l));
            i += 2;
        } else {
            buf_append_byte(out, t[i]);
        }
    }
}

/* Pending run of adjacent encoded-words in one charset. */
struct ew_run {
    struct slice charset;
    size_t raw_start, raw_end; /* the words as written, for a fallback */
    struct buf bytes;          /* decoded, not yet converted */
    bool active;
};

static void ew_run_flush(struct ew_run *r, struct slice raw, struct buf *out)
{
    if (!r->active)
        return;
    if (!mime_charset_to_utf8(r->charset, buf_slice(&r->bytes), out))
        buf_append(out, raw.ptr + r->raw_start, r->raw_end - r->raw_start);
    buf_reset(&r->bytes);
    r->active = false;
}

static void ws_append(struct slice raw, size_t from, size_t to, struct buf *out)
{
    for (size_t k = from; k < to; k++)
        if (raw.ptr[k] != '\r' && raw.ptr[k] != '\n')
            buf_append_byte(out, raw.ptr[k]);
}

void mime_decode_words(struct slice raw, struct buf *out)
{
    struct ew_run run = {.bytes = BUF_INIT}; /* bytes allocated on first use */
    size_t i = 0, n = raw.len;
    size_t ws_start = 0, ws_end = 0; /* white space seen since the last token */
    bool after_word = false;
    while (i < n) {
        char c = raw.ptr[i];
        if (is_lwsp(c)) {
            ws_start = i;
            while (i < n && is_lwsp(raw.ptr[i]))
                i++;
            ws_end = i;
            continue;
        }
        struct eword w;
        if (c == '=' && eword_parse(raw, i, &w)) {
            /* White space between adjacent encoded-words is dropped. */
            if (!after_word || !slice_eq_nocase(run.charset, w.charset)) {
                ew_run_flush(&run, raw, out);
                if (!after_word)
                    ws_append(raw, ws_start, ws_end, out);
                run.active = true;
                run.charset = w.charset;
                run.raw_start = i;
            }
            eword_decode(&w, &run.bytes);
            run.raw_end = w.end;
            after_word = true;
            i = w.end;
        } else {
            ew_run_flush(&run, raw, out);
            ws_append(raw, ws_start, ws_end, out);
            after_word = false;
            size_t j = i + 1;
            while (j < n && !is_lwsp(raw.ptr[j]) && raw.ptr[j] != '=')
                j++;
            buf_append(out, raw.ptr + i, j - i);
            i = j;
        }
        ws_start = ws_end = 0;
    }
    ew_run_flush(&run, raw, out);
    ws_append(raw, ws_start, ws_end, out);
    buf_free(&run.bytes);
}

/* ---- RFC 2045 / RFC 2231 parameters ---- */

#define MAX_RAW_PARAMS 256 /* sections before joining */

struct raw_param {
    struct slice name; /* base name, in raw */
    long section;      /* -1: no *N */
    bool ext;          /* any '*' */
    bool encoded;      /* trailing '*': charset'lang'%XX */
    size_t voff, vlen; /* value in tmp */
    bool used;
};

/* Skips white space and (nested) comments. */
static size_t skip_cfws(struct slice s, size_t i)
{
    unsigned depth = 0;
    while (i < s.len) {
        char c = s.ptr[i];
        if (depth > 0) {
            if (c == '\\' && i + 1 < s.len)
                i++;
            else if (c == '(')
                depth++;
            else if (c == ')')
                depth--;
        } else if (c == '(') {
            depth = 1;
        } else if (!is_lwsp(c)) {
            break;
        }
        i++;
    }
    return i;
}

/* RFC 2231 attribute-char: a token char other than '*', '\'' and '%'. */
static bool is_attr_char(unsigned char c)
{
    if (c <= ' ' || c >= 127)
        return false;
    switch (c) {
    case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':':
    case '\\': case '"': case '/': case '[': case ']': case '?': case '=':
    case '*': case '\'': case '%':
        return false;
    default:
        return true;
    }
}

/* A lenient unquoted value: anything visible up to ';' (8-bit included). */
static bool is_pvalue_char(unsigned char c)
{
    return c > ' ' && c != 127 && c != ';' && c != '"';
}

/* Reads a token or quoted-string value at s[i] into tmp. */
static size_t value_read(struct slice s, size_t i, struct buf *tmp)
{
    if (i < s.len && s.ptr[i] == '"') {
        for (i++; i < s.len && s.ptr[i] != '"'; i++) {
            char c = s.ptr[i];
            if (c == '\\' && i + 1 < s.len)
                c = s.ptr[++i];
            else if (c == '\r' || c == '\n')
                continue; /* folding inside the quotes */
            buf_append_byte(tmp, c);
        }
        return i < s.len ? i + 1 : i;
    }
    size_t j = i;
    while (j < s.len && is_pvalue_char((unsigned char)s.ptr[j]))
        j++;
    buf_append(tmp, s.ptr + i, j - i);
    return j;
}

/* Splits "name*N*" into its parts. */
static void param_name_split(struct raw_param *p)
{
    struct slice n = p->name;
    p->section = -1;
    p->ext = p->encoded = false;
    const char *star = memchr(n.ptr, '*', n.len);
    if (star == NULL)
        return;
    p->ext = true;
    p->name.len = (size_t)(star - n.ptr);
    size_t i = p->name.len + 1;
    if (i < n.len && n.ptr[i] >= '0' && n.ptr[i] <= '9') {
        long v = 0;
        while (i < n.len && n.ptr[i] >= '0' && n.ptr[i] <= '9' && v < 100000)
            v = v * 10 + (n.ptr[i++] - '0');
        p->section = v;
        p->encoded = i < n.len && n.ptr[i] == '*';
    } else {
        p->encoded = true;
    }
}

static void pct_decode(struct slice v, struct buf *out)
{
    for (size_t i = 0; i < v.len; i++) {
        int h, l;
        if (v.ptr[i] == '%' && i + 2 < v.len && (h = hexval(v.ptr[i + 1])) >= 0 &&
            (l = hexval(v.ptr[i + 2])) >= 0) {
            buf_append_byte(out, (char)(h << 4 | l));
            i += 2;
        } else {
            buf_append_byte(out, v.ptr[i]);
        }
    }
}

static void pct_encode(struct slice v, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (is_attr_char(c)) {
            buf_append_byte(out, (char)c);
        } else {
            buf_append_byte(out, '%');
            buf_append_byte(out, hex[c >> 4]);
            buf_append_byte(out, hex[c & 15]);
        }
    }
}

/* Finds the section numbered sec of base name (or the single "name*"). */
static struct raw_param *section_find(struct raw_param *v, size_t n, struct slice name, long sec)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].ext && !v[i].used && (v[i].section == sec || (sec == 0 && v[i].section < 0)) &&
            slice_eq_nocase(v[i].name, name))
            return &v[i];
    return NULL;
}

struct out_param {
    size_t noff, nlen, voff, vlen;
    bool extended;
};

/* Joins the RFC 2231 sections of first's name into store. */
static void sections_join(struct raw_param *v, size_t n, struct raw_param *first,
                          enum mime_params_mode mode, const struct buf *tmp, struct buf *store,
                          struct out_param *o)
{
    struct raw_param *list[MAX_RAW_PARAMS];
    size_t nl = 0;
    struct slice name = first->name;
    bool any_encoded = false;
    list[nl++] = first;
    first->used = true;
    for (long sec = 1; first->section >= 0 && nl < MAX_RAW_PARAMS; sec++) {
        struct raw_param *s = section_find(v, n, name, sec);
        if (s == NULL)
            break;
        s->used = true;
        list[nl++] = s;
    }
    for (size_t i = 0; i < n; i++) /* duplicates and sections after a gap */
        if (v[i].ext && slice_eq_nocase(v[i].name, name))
            v[i].used = true;
    for (size_t k = 0; k < nl; k++)
        any_encoded |= list[k]->encoded;

    struct slice v0 = slice_make(tmp->data + first->voff, first->vlen);
    struct slice charset = SLICE_NULL;
    size_t lang_end = 0; /* bytes of v0 taken by charset'lang' */
    if (first->encoded) {
        const char *q1 = memchr(v0.ptr, '\'', v0.len);
        const char *q2 =
            q1 == NULL ? NULL : memchr(q1 + 1, '\'', v0.len - (size_t)(q1 + 1 - v0.ptr));
        if (q2 != NULL) {
            charset = slice_make(v0.ptr, (size_t)(q1 - v0.ptr));
            lang_end = (size_t)(q2 + 1 - v0.ptr);
        }
    }
    struct buf val = BUF_INIT;
    buf_init(&val);
    for (size_t k = 0; k < nl; k++) {
        struct slice sv = slice_make(tmp->data + list[k]->voff, list[k]->vlen);
        if (k == 0) {
            sv.ptr += lang_end;
            sv.len -= lang_end;
        }
        if (mode == MIME_PARAMS_DECODE && list[k]->encoded)
            pct_decode(sv, &val);
        else if (mode == MIME_PARAMS_JOIN && any_encoded && !list[k]->encoded)
            pct_encode(sv, &val);
        else
            buf_append_slice(&val, sv);
    }
    o->noff = store->len;
    buf_append_slice(store, name);
    if (mode == MIME_PARAMS_JOIN && any_encoded)
        buf_append_byte(store, '*');
    o->nlen = store->len - o->noff;
    o->voff = store->len;
    if (mode == MIME_PARAMS_JOIN && any_encoded) {
        if (lang_end > 0)
            buf_append(store, v0.ptr, lang_end);
        else
            buf_append_cstr(store, "''");
        buf_append_slice(store, buf_slice(&val));
    } else if (mode == MIME_PARAMS_DECODE && charset.len > 0) {
        if (!mime_charset_to_utf8(charset, buf_slice(&val), store))
            buf_append_slice(store, buf_slice(&val));
    } else {
        buf_append_slice(store, buf_slice(&val));
    }
    o->vlen = store->len - o->voff;
    o->extended = true;
    buf_free(&val);
}

void mime_params_parse(struct slice raw, enum mime_params_mode mode, struct slice *value_r,
                       struct mime_params *params_r)
{
    struct raw_param *rp = NULL;
    size_t nrp = 0, rp_cap = 0;
    struct buf tmp = BUF_INIT; /* unquoted values; allocated on first use */
    memset(params_r, 0, sizeof(*params_r));
    if (raw.ptr == NULL)
        raw = slice_make("", 0);

    size_t i = skip_cfws(raw, 0), v0 = i;
    const char *semi = memchr(raw.ptr + i, ';', raw.len - i);
    i = semi == NULL ? raw.len : (size_t)(semi - raw.ptr);
    const char *paren = memchr(raw.ptr + v0, '(', i - v0); /* a comment ends the value */
    size_t v1 = paren == NULL ? i : (size_t)(paren - raw.ptr);
    while (v1 > v0 && is_lwsp(raw.ptr[v1 - 1]))
        v1--;
    *value_r = slice_make(raw.ptr + v0, v1 - v0);

    while (i < raw.len && nrp < MAX_RAW_PARAMS) {
        i = skip_cfws(raw, i + 1); /* past ';' or junk */
        size_t n0 = i;
        while (i < raw.len && (is_attr_char((unsigned char)raw.ptr[i]) || raw.ptr[i] == '*' ||
                               raw.ptr[i] == '\'' || raw.ptr[i] == '%'))
            i++;
        size_t n1 = i;
        i = skip_cfws(raw, i);
        if (n1 == n0 || i >= raw.len || raw.ptr[i] != '=') {
            /* not name=value: skip to the next ';' */
            while (i < raw.len && raw.ptr[i] != ';')
                i++;
            continue;
        }
        i = skip_cfws(raw, i + 1);
        if (nrp == rp_cap) {
            rp_cap = rp_cap == 0 ? 8 : rp_cap * 2;
            rp = xreallocarray(rp, rp_cap, sizeof(*rp));
        }
        struct raw_param *p = &rp[nrp++];
        memset(p, 0, sizeof(*p));
        p->name = slice_make(raw.ptr + n0, n1 - n0);
        p->voff = tmp.len;
        i = value_read(raw, i, &tmp);
        p->vlen = tmp.len - p->voff;
        param_name_split(p);
        i = skip_cfws(raw, i);
        while (i < raw.len && raw.ptr[i] != ';')
            i++;
    }

    struct out_param op[MIME_MAX_PARAMS];
    size_t nop = 0;
    /* plain parameters first, then the extended ones (IMAP shows them so) */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < nrp && nop < MIME_MAX_PARAMS; k++) {
            struct raw_param *p = &rp[k];
            if (p->used || p->ext != (pass == 1))
                continue;
            if (!p->ext) {
                if (mode == MIME_PARAMS_DECODE && section_find(rp, nrp, p->name, 0) != NULL)
                    continue; /* the RFC 2231 form wins */
                p->used = true;
                struct out_param *o = &op[nop++];
                o->noff = params_r->store.len;
                buf_append_slice(&params_r->store, p->name);
                o->nlen = p->name.len;
                o->voff = params_r->store.len;
                buf_append(&params_r->store, tmp.data + p->voff, p->vlen);
                o->vlen = p->vlen;
                o->extended = false;
                continue;
            }
            struct raw_param *first = section_find(rp, nrp, p->name, 0);
            if (first == NULL) {
                p->used = true; /* a continuation without section 0 */
                continue;
            }
            sections_join(rp, nrp, first, mode, &tmp, &params_r->store, &op[nop++]);
        }
    }
    if (nop > 0) {
        params_r->v = xcalloc(nop, sizeof(*params_r->v));
        params_r->n = nop;
        for (size_t k = 0; k < nop; k++) {
            params_r->v[k].name = slice_make(params_r->store.data + op[k].noff, op[k].nlen);
            params_r->v[k].value = slice_make(params_r->store.data + op[k].voff, op[k].vlen);
            params_r->v[k].extended = op[k].extended;
        }
    }
    free(rp);
    buf_free(&tmp);
}

void mime_params_free(struct mime_params *params)
{
    free(params->v);
    buf_free(&params->store);
    memset(params, 0, sizeof(*params));
}

struct slice mime_params_get(const struct mime_params *params, const char *name)
{
    for (size_t i = 0; i < params->n; i++)
        if (slice_eq_cstr_nocase(params->v[i].name, name))
            return params->v[i].value;
    return SLICE_NULL;
}
