/*
 * mime_params.c - parameters of Content-Type and Content-Disposition
 * (RFC 2045 section 5.1, RFC 2231: continuations name*0, name*1*, charset'lang'
 * and %XX), both decoded to UTF-8 and in the joined-but-encoded form IMAP
 * BODYSTRUCTURE shows.
 *
 * Input is a raw field value from hostile mail: never read outside it, keep
 * at most MAX_RAW_PARAMS pairs, and stay O(n log n) in them.
 */
#include "mime/mime.h"
#include "mime/mime_chars.h"

#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RAW_PARAMS 128 /* name=value pairs read (each RFC 2231 section is one) */

struct raw_param {
    struct slice name; /* base name, in raw */
    long section;      /* -1: no *N */
    bool ext;          /* any '*' */
    bool encoded;      /* trailing '*': charset'lang'%XX */
    size_t voff, vlen; /* value in tmp */
    size_t order;      /* position in the field */
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
        } else if (!mime_is_lwsp(c)) {
            break;
        }
        i++;
    }
    return i;
}

/* RFC 2231 attribute-char: a token char other than '*', '\'' and '%'. */
static bool is_attr_char(unsigned char c)
{
    return mime_is_token_char(c) && c != '*' && c != '\'' && c != '%';
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
        i++;
        while (i < s.len && s.ptr[i] != '"') {
            size_t j = i;
            while (j < s.len && s.ptr[j] != '"' && s.ptr[j] != '\\' && s.ptr[j] != '\r' &&
                   s.ptr[j] != '\n')
                j++;
            buf_append(tmp, s.ptr + i, j - i);
            i = j;
            if (i >= s.len || s.ptr[i] == '"')
                break;
            if (s.ptr[i] == '\\' && i + 1 < s.len)
                buf_append_byte(tmp, s.ptr[++i]); /* quoted-pair */
            i++; /* CR and LF (folding inside the quotes) are dropped */
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
        if (v.ptr[i] == '%' && i + 2 < v.len && (h = mime_hexval(v.ptr[i + 1])) >= 0 &&
            (l = mime_hexval(v.ptr[i + 2])) >= 0) {
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

/* ASCII case-insensitive order of two names. */
static int slice_cmp_nocase(struct slice a, struct slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int r = n > 0 ? strncasecmp(a.ptr, b.ptr, n) : 0;
    if (r != 0)
        return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* Extended parameters by name, then section (a lone name* counts as 0),
 * then position. */
static int ext_cmp(const void *a, const void *b)
{
    const struct raw_param *x = *(const struct raw_param *const *)a;
    const struct raw_param *y = *(const struct raw_param *const *)b;
    int r = slice_cmp_nocase(x->name, y->name);
    if (r != 0)
        return r;
    long sx = x->section < 0 ? 0 : x->section, sy = y->section < 0 ? 0 : y->section;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool ext_has(struct raw_param *const *ext, size_t n, struct slice name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = slice_cmp_nocase(ext[mid]->name, name);
        if (r == 0)
            return true;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

struct out_param {
    size_t noff, nlen, voff, vlen;
    bool extended;
};

/* Joins the sections list[0..nl) (numbered 0, 1, 2, ...) into store. */
static void sections_join(struct raw_param *const *list, size_t nl, enum mime_params_mode mode,
                          const struct buf *tmp, struct buf *store, struct out_param *o)
{
    const struct raw_param *first = list[0];
    bool any_encoded = false;
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
    buf_append_slice(store, first->name);
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

    /* the value is one word ("text/plain", "attachment"); junk after it,
     * up to the first ';', is skipped */
    size_t i = skip_cfws(raw, 0), v0 = i;
    while (i < raw.len && raw.ptr[i] != ';' && raw.ptr[i] != '(' && !mime_is_lwsp(raw.ptr[i]))
        i++;
    *value_r = slice_make(raw.ptr + v0, i - v0);
    while (i < raw.len && raw.ptr[i] != ';')
        i++;

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
        if (tmp.data == NULL)
            buf_init(&tmp); /* values may be empty: tmp.data must exist */
        if (nrp == rp_cap) {
            rp_cap = rp_cap == 0 ? 8 : rp_cap * 2;
            rp = xreallocarray(rp, rp_cap, sizeof(*rp));
        }
        struct raw_param *p = &rp[nrp++];
        memset(p, 0, sizeof(*p));
        p->order = nrp - 1;
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
    struct raw_param *ext[MAX_RAW_PARAMS];
    size_t nop = 0, next = 0;
    for (size_t k = 0; k < nrp; k++)
        if (rp[k].ext)
            ext[next++] = &rp[k];
    qsort(ext, next, sizeof(ext[0]), ext_cmp);

    /* plain parameters in their order, then the extended ones sorted by
     * name (the order Dovecot shows them in) */
    for (size_t k = 0; k < nrp && nop < MIME_MAX_PARAMS; k++) {
        struct raw_param *p = &rp[k];
        if (p->ext)
            continue;
        if (mode == MIME_PARAMS_DECODE && ext_has(ext, next, p->name))
            continue; /* the RFC 2231 form wins */
        struct out_param *o = &op[nop++];
        o->noff = params_r->store.len;
        buf_append_slice(&params_r->store, p->name);
        o->nlen = p->name.len;
        o->voff = params_r->store.len;
        buf_append(&params_r->store, tmp.data + p->voff, p->vlen);
        o->vlen = p->vlen;
        o->extended = false;
    }
    for (size_t g = 0; g < next && nop < MIME_MAX_PARAMS;) {
        size_t end = g + 1;
        while (end < next && slice_eq_nocase(ext[end]->name, ext[g]->name))
            end++;
        /* sections 0, 1, 2, ... up to the first gap; duplicates are skipped */
        struct raw_param *list[MAX_RAW_PARAMS];
        size_t nl = 0;
        for (size_t k = g; k < end; k++) {
            long want = (long)nl, sec = ext[k]->section < 0 ? 0 : ext[k]->section;
            if (nl > 0 && list[0]->section < 0)
                break; /* a lone name* has no continuations */
            if (sec == want && (nl == 0 || ext[k]->section >= 0))
                list[nl++] = ext[k];
            else if (sec > want)
                break;
        }
        if (nl > 0) /* else continuations without a section 0: dropped */
            sections_join(list, nl, mode, &tmp, &params_r->store, &op[nop++]);
        g = end;
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
