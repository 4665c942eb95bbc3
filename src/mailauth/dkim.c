/*
 * dkim.c - DKIM (RFC 6376, RFC 8463): tag lists, canonicalization, signing
 * and verification over a message in memory. See dkim.h.
 *
 * Must never read outside the message, never trust a length from a tag
 * without bounds, and never call a signature good unless EVP said so.
 */
#include "mailauth/dkim.h"

#include "base/alloc.h"
#include "base/base64.h"
#include "base/log.h"
#include "mime/mime.h"

#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static struct slice trim_fws(struct slice s)
{
    while (s.len > 0 && is_fws(s.ptr[0]))
        s.ptr++, s.len--;
    while (s.len > 0 && is_fws(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* ---- tag lists ---- */

bool dkim_taglist_parse(struct slice in, struct dkim_tag *tags, size_t max, size_t *n_r)
{
    size_t n = 0, i = 0;
    *n_r = 0;
    while (i < in.len) {
        const char *semi = memchr(in.ptr + i, ';', in.len - i);
        size_t end = semi ? (size_t)(semi - in.ptr) : in.len;
        struct slice spec = trim_fws(slice_make(in.ptr + i, end - i));
        i = semi ? end + 1 : in.len;
        if (spec.len == 0) {
            if (semi == NULL || i >= in.len ||
                trim_fws(slice_make(in.ptr + i, in.len - i)).len == 0)
                break; /* a trailing ";" is allowed (3.2) */
            return false;
        }
        const char *eq = memchr(spec.ptr, '=', spec.len);
        if (eq == NULL)
            return false;
        struct slice name = trim_fws(slice_make(spec.ptr, (size_t)(eq - spec.ptr)));
        struct slice value = trim_fws(slice_make(eq + 1, spec.len - (size_t)(eq + 1 - spec.ptr)));
        if (name.len == 0 || !is_alpha(name.ptr[0]))
            return false;
        for (size_t k = 1; k < name.len; k++)
            if (!is_alpha(name.ptr[k]) && !is_digit(name.ptr[k]) && name.ptr[k] != '_')
                return false;
        for (size_t k = 0; k < value.len; k++) {
            unsigned char c = (unsigned char)value.ptr[k];
            if (!(c >= 0x21 && c <= 0x7e) && !is_fws((char)c) && c < 0x80)
                return false; /* VALCHAR / FWS (UTF-8 allowed, RFC 6376 3.2 + 8616) */
        }
        for (size_t k = 0; k < n; k++)
            if (slice_eq(tags[k].name, name))
                return false; /* a duplicate tag: the whole list is invalid */
        if (n == max)
            return false;
        tags[n++] = (struct dkim_tag){.name = name, .value = value};
    }
    *n_r = n;
    return true;
}

bool dkim_tag_get(const struct dkim_tag *tags, size_t n, const char *name, struct slice *v_r)
{
    for (size_t i = 0; i < n; i++)
        if (tags[i].name.len == strlen(name) &&
            memcmp(tags[i].name.ptr, name, tags[i].name.len) == 0) {
            *v_r = tags[i].value;
            return true;
        }
    return false;
}

static bool parse_u64(struct slice s, uint64_t *v_r)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 19)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.ptr[i]))
            return false;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    *v_r = v;
    return true;
}

/* ---- the signature field ---- */

static bool domain_is_within(struct slice sub, struct slice dom)
{
    if (sub.len == dom.len)
        return slice_eq_nocase(sub, dom);
    return sub.len > dom.len && sub.ptr[sub.len - dom.len - 1] == '.' &&
           slice_eq_nocase(slice_make(sub.ptr + sub.len - dom.len, dom.len), dom);
}

/* arc: an ARC-Message-Signature (RFC 8617 4.1.2): no v=, i= is the
 * instance, From need not be signed, ARC-Seal must not be. */
static bool sig_parse(struct slice value, struct dkim_sig *sig, bool arc, unsigned *instance_r,
                      const char **why_r)
{
    struct dkim_tag tags[DKIM_TAGS_MAX];
    size_t n;
    memset(sig, 0, sizeof(*sig));
    sig->t = sig->x = -1;
    if (!dkim_taglist_parse(value, tags, DKIM_TAGS_MAX, &n)) {
        *why_r = "bad tag list";
        return false;
    }
    struct slice v, a, c, h;
    if (!arc && (!dkim_tag_get(tags, n, "v", &v) || !slice_eq(v, slice_from_cstr("1")))) {
        *why_r = "unknown version";
        return false;
    }
    if (!dkim_tag_get(tags, n, "a", &a) || !dkim_tag_get(tags, n, "b", &sig->b_b64) ||
        !dkim_tag_get(tags, n, "bh", &sig->bh_b64) || !dkim_tag_get(tags, n, "d", &sig->d) ||
        !dkim_tag_get(tags, n, "h", &h) || !dkim_tag_get(tags, n, "s", &sig->s)) {
        *why_r = "missing required tag";
        return false;
    }
    if (slice_eq_cstr_nocase(a, "rsa-sha256"))
        sig->alg = DKIM_RSA_SHA256;
    else if (slice_eq_cstr_nocase(a, "ed25519-sha256"))
        sig->alg = DKIM_ED25519_SHA256;
    else {
        *why_r = "unsupported algorithm"; /* rsa-sha1 too: RFC 8301 */
        return false;
    }
    if (!dkim_tag_get(tags, n, "c", &c)) {
        c = slice_from_cstr("simple/simple");
    }
    {
        const char *slash = memchr(c.ptr, '/', c.len);
        struct slice hc = slash ? slice_make(c.ptr, (size_t)(slash - c.ptr)) : c;
        struct slice bc =
            slash ? slice_make(slash + 1, c.len - hc.len - 1) : slice_from_cstr("simple");
        if (slice_eq_cstr_nocase(hc, "relaxed"))
            sig->hdr_relaxed = true;
        else if (!slice_eq_cstr_nocase(hc, "simple")) {
            *why_r = "unknown canonicalization";
            return false;
        }
        if (slice_eq_cstr_nocase(bc, "relaxed"))
            sig->body_relaxed = true;
        else if (!slice_eq_cstr_nocase(bc, "simple")) {
            *why_r = "unknown canonicalization";
            return false;
        }
    }
    if (sig->d.len == 0 || sig->d.len > 253 || sig->s.len == 0 || sig->s.len > 253) {
        *why_r = "bad d= or s=";
        return false;
    }
    for (size_t k = 0; k < sig->d.len; k++)
        if (!(is_alpha(sig->d.ptr[k]) || is_digit(sig->d.ptr[k]) || sig->d.ptr[k] == '-' ||
              sig->d.ptr[k] == '.' || (unsigned char)sig->d.ptr[k] >= 0x80)) {
            *why_r = "bad d=";
            return false;
        }
    for (size_t k = 0; k < sig->s.len; k++)
        if (!(is_alpha(sig->s.ptr[k]) || is_digit(sig->s.ptr[k]) || sig->s.ptr[k] == '-' ||
              sig->s.ptr[k] == '.' || sig->s.ptr[k] == '_')) {
            *why_r = "bad s=";
            return false;
        }
    /* h=: colon-separated names, FWS allowed around them */
    size_t i = 0;
    bool from = false;
    while (i <= h.len) {
        const char *colon = memchr(h.ptr + i, ':', h.len - i);
        size_t end = colon ? (size_t)(colon - h.ptr) : h.len;
        struct slice name = trim_fws(slice_make(h.ptr + i, end - i));
        if (name.len == 0) {
            *why_r = "bad h=";
            return false;
        }
        if (sig->n_h == DKIM_H_MAX) {
            *why_r = "too many signed fields";
            return false;
        }
        if (slice_eq_cstr_nocase(name, "from"))
            from = true;
        if (arc && slice_eq_cstr_nocase(name, "arc-seal")) {
            *why_r = "ARC-Seal signed by a message signature";
            return false;
        }
        sig->h[sig->n_h++] = name;
        i = end + 1;
        if (colon == NULL)
            break;
    }
    if (!from && !arc) {
        *why_r = "From not signed";
        return false;
    }
    if (arc) {
        uint64_t inst;
        if (!dkim_tag_get(tags, n, "i", &v) || !parse_u64(v, &inst) || inst < 1 || inst > 50) {
            *why_r = "bad instance";
            return false;
        }
        *instance_r = (unsigned)inst;
    } else if (dkim_tag_get(tags, n, "i", &sig->i)) {
        const char *at = memchr(sig->i.ptr, '@', sig->i.len);
        struct slice idom = at ? slice_make(at + 1, sig->i.len - (size_t)(at + 1 - sig->i.ptr))
                               : slice_make(NULL, 0);
        if (at == NULL || !domain_is_within(idom, sig->d)) {
            *why_r = "i= not within d=";
            return false;
        }
    }
    struct slice l, t;
    if (dkim_tag_get(tags, n, "l", &l)) {
        if (!parse_u64(l, &sig->l)) {
            *why_r = "bad l=";
            return false;
        }
        sig->has_l = true;
    }
    uint64_t u;
    if (dkim_tag_get(tags, n, "t", &t)) {
        if (!parse_u64(t, &u) || u > INT64_MAX) {
            *why_r = "bad t=";
            return false;
        }
        sig->t = (int64_t)u;
    }
    if (dkim_tag_get(tags, n, "x", &t)) {
        if (!parse_u64(t, &u) || u > INT64_MAX || (sig->t >= 0 && (int64_t)u < sig->t)) {
            *why_r = "bad x=";
            return false;
        }
        sig->x = (int64_t)u;
    }
    return true;
}

bool dkim_sig_parse(struct slice value, struct dkim_sig *sig, const char **why_r)
{
    return sig_parse(value, sig, false, NULL, why_r);
}

bool dkim_ams_parse(struct slice value, struct dkim_sig *sig, unsigned *instance_r,
                    const char **why_r)
{
    return sig_parse(value, sig, true, instance_r, why_r);
}

/* ---- key records ---- */

bool dkim_key_record_parse(struct slice txt, enum dkim_alg alg, EVP_PKEY **key_r,
                           const char **why_r)
{
    struct dkim_tag tags[DKIM_TAGS_MAX];
    size_t n;
    *key_r = NULL;
    if (!dkim_taglist_parse(txt, tags, DKIM_TAGS_MAX, &n)) {
        *why_r = "bad key record";
        return false;
    }
    struct slice v, k, h, p, s;
    if (dkim_tag_get(tags, n, "v", &v) &&
        (!slice_eq(v, slice_from_cstr("DKIM1")) || !slice_eq(tags[0].name, slice_from_cstr("v")))) {
        *why_r = "bad key record version";
        return false;
    }
    if (!dkim_tag_get(tags, n, "k", &k))
        k = slice_from_cstr("rsa");
    if ((alg == DKIM_RSA_SHA256 && !slice_eq_cstr_nocase(k, "rsa")) ||
        (alg == DKIM_ED25519_SHA256 && !slice_eq_cstr_nocase(k, "ed25519"))) {
        *why_r = "key type does not match the algorithm";
        return false;
    }
    if (dkim_tag_get(tags, n, "h", &h)) {
        bool sha256 = false;
        for (size_t i = 0; i + 6 <= h.len; i++)
            if (slice_eq_cstr_nocase(slice_make(h.ptr + i, 6), "sha256") &&
                (i == 0 || h.ptr[i - 1] == ':' || is_fws(h.ptr[i - 1])))
                sha256 = true;
        if (!sha256) {
            *why_r = "key does not allow sha256";
            return false;
        }
    }
    if (dkim_tag_get(tags, n, "s", &s)) {
        bool ok = false;
        for (size_t i = 0; i < s.len; i++)
            if (s.ptr[i] == '*' ||
                (i + 5 <= s.len && slice_eq_cstr_nocase(slice_make(s.ptr + i, 5), "email")))
                ok = true;
        if (!ok) {
            *why_r = "key not for email";
            return false;
        }
    }
    if (!dkim_tag_get(tags, n, "p", &p)) {
        *why_r = "key record without p=";
        return false;
    }
    struct buf der = BUF_INIT;
    base64_decode_lenient(p, &der);
    if (der.len == 0) {
        buf_free(&der);
        *why_r = "key revoked";
        return false;
    }
    EVP_PKEY *key = NULL;
    const unsigned char *q = (const unsigned char *)der.data;
    if (alg == DKIM_ED25519_SHA256) {
        if (der.len == 32)
            key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, q, 32);
    } else {
        key = d2i_PUBKEY(NULL, &q, (long)der.len);
        if (key == NULL) { /* some publish the bare RSAPublicKey (PKCS#1) */
            q = (const unsigned char *)der.data;
            key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)der.len);
        }
        if (key != NULL &&
            (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < 1024)) {
            EVP_PKEY_free(key); /* RFC 8301: at least 1024 bits */
            key = NULL;
        }
    }
    buf_free(&der);
    if (key == NULL) {
        *why_r = "unusable public key";
        return false;
    }
    *key_r = key;
    return true;
}

/* ---- the message ---- */

void dkim_msg_init(struct dkim_msg *m, struct slice data)
{
    memset(m, 0, sizeof(*m));
    m->data = data;
    size_t cap = 0, i = 0;
    const char *p = data.ptr;
    while (i < data.len) {
        /* an empty line ends the header */
        if (p[i] == '\n' || (p[i] == '\r' && i + 1 < data.len && p[i + 1] == '\n')) {
            i += p[i] == '\n' ? 1 : 2;
            m->body = slice_make(p + i, data.len - i);
            return;
        }
        size_t start = i;
        /* the field runs to the first line break not followed by WSP */
        size_t end;
        for (;;) {
            const char *nl = memchr(p + i, '\n', data.len - i);
            if (nl == NULL) {
                end = i = data.len;
                break;
            }
            size_t lf = (size_t)(nl - p);
            i = lf + 1;
            if (i < data.len && is_wsp(p[i]))
                continue;
            end = lf > start && p[lf - 1] == '\r' ? lf - 1 : lf;
            break;
        }
        const char *colon = memchr(p + start, ':', end - start);
        if (colon == NULL || is_wsp(p[start]))
            continue; /* not a field: ignored */
        struct slice name = slice_make(p + start, (size_t)(colon - (p + start)));
        while (name.len > 0 && is_wsp(name.ptr[name.len - 1]))
            name.len--;
        if (m->n_fields == cap) {
            cap = cap ? cap * 2 : 32;
            m->fields = xreallocarray(m->fields, cap, sizeof(*m->fields));
        }
        m->fields[m->n_fields++] = (struct dkim_field){
            .name = name, .value = slice_make(colon + 1, (size_t)(p + end - colon - 1))};
    }
    m->body = slice_make(p + data.len, 0);
}

void dkim_msg_free(struct dkim_msg *m)
{
    free(m->fields);
    m->fields = NULL;
    m->n_fields = 0;
}

/* ---- canonicalization ---- */

void dkim_canon_header_relaxed(struct slice name, struct slice value, bool crlf, struct buf *out)
{
    while (name.len > 0 && is_wsp(name.ptr[name.len - 1]))
        name.len--;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        buf_append_byte(out, c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
    }
    buf_append_byte(out, ':');
    bool space = false, any = false;
    for (size_t i = 0; i < value.len; i++) {
        char c = value.ptr[i];
        if (c == '\r' || c == '\n')
            continue; /* unfold */
        if (is_wsp(c)) {
            space = true;
            continue;
        }
        if (space && any)
            buf_append_byte(out, ' ');
        space = false;
        any = true;
        buf_append_byte(out, c);
    }
    if (crlf)
        buf_append(out, "\r\n", 2);
}

/* Feeds canonical body bytes to a digest, at most `left` of them. */
struct body_sink {
    EVP_MD_CTX *md;
    int64_t left; /* -1: no limit */
    uint64_t total;
    char blk[4096];
    size_t n;
};

static void sink_put(struct body_sink *s, const char *p, size_t n)
{
    s->total += n;
    if (s->left >= 0) {
        if ((uint64_t)s->left < n)
            n = (size_t)s->left;
        s->left -= (int64_t)n;
    }
    while (n > 0) {
        size_t k = sizeof(s->blk) - s->n < n ? sizeof(s->blk) - s->n : n;
        memcpy(s->blk + s->n, p, k);
        s->n += k, p += k, n -= k;
        if (s->n == sizeof(s->blk)) {
            EVP_DigestUpdate(s->md, s->blk, s->n);
            s->n = 0;
        }
    }
}

void dkim_body_hash(struct slice body, bool relaxed, int64_t limit, unsigned char out[32],
                    uint64_t *len_r)
{
    struct body_sink s = {.md = EVP_MD_CTX_new(), .left = limit};
    WHARF_ASSERT(s.md != NULL);
    EVP_DigestInit_ex(s.md, EVP_sha256(), NULL);
    size_t empty = 0; /* empty lines held back: trailing ones are dropped */
    size_t i = 0;
    while (i < body.len) {
        const char *nl = memchr(body.ptr + i, '\n', body.len - i);
        size_t lend = nl ? (size_t)(nl - body.ptr) : body.len; /* at LF or end */
        size_t cend = lend > i && body.ptr[lend - 1] == '\r' ? lend - 1 : lend;
        size_t next = nl ? lend + 1 : body.len;
        struct slice line = slice_make(body.ptr + i, cend - i);
        i = next;
        if (relaxed) {
            while (line.len > 0 && is_wsp(line.ptr[line.len - 1]))
                line.len--;
        }
        if (line.len == 0) {
            empty++;
            continue;
        }
        for (; empty > 0; empty--)
            sink_put(&s, "\r\n", 2);
        if (relaxed) {
            size_t k = 0;
            while (k < line.len) {
                size_t st = k;
                while (k < line.len && !is_wsp(line.ptr[k]))
                    k++;
                sink_put(&s, line.ptr + st, k - st);
                if (k < line.len) {
                    sink_put(&s, " ", 1);
                    while (k < line.len && is_wsp(line.ptr[k]))
                        k++;
                }
            }
        } else {
            sink_put(&s, line.ptr, line.len);
        }
        sink_put(&s, "\r\n", 2);
    }
    if (s.total == 0 && !relaxed)
        sink_put(&s, "\r\n", 2); /* simple: an empty body is one CRLF */
    if (s.n > 0)
        EVP_DigestUpdate(s.md, s.blk, s.n);
    unsigned int olen = 32;
    EVP_DigestFinal_ex(s.md, out, &olen);
    EVP_MD_CTX_free(s.md);
    if (len_r)
        *len_r = s.total;
}

/* ---- the signed header data ---- */

/* Appends the canonical form of the fields h names (bottom-up, 5.4.2). */
static void hash_fields(const struct dkim_msg *m, const struct slice *h, size_t n_h, bool relaxed,
                        struct buf *out)
{
    for (size_t j = 0; j < n_h; j++) {
        size_t before = 0; /* earlier h entries with this name */
        for (size_t k = 0; k < j; k++)
            before += slice_eq_nocase(h[k], h[j]);
        const struct dkim_field *f = NULL;
        for (size_t k = m->n_fields; k-- > 0;)
            if (slice_eq_nocase(m->fields[k].name, h[j]) && before-- == 0) {
                f = &m->fields[k];
                break;
            }
        if (f == NULL)
            continue; /* a field that does not exist is the null string */
        if (relaxed)
            dkim_canon_header_relaxed(f->name, f->value, true, out);
        else {
            buf_append(out, f->name.ptr, (size_t)(f->value.ptr + f->value.len - f->name.ptr));
            buf_append(out, "\r\n", 2);
        }
    }
}

/* value with the b= tag's value (and white space around it) removed. */
void dkim_strip_b(struct slice value, struct buf *out)
{
    size_t i = 0;
    while (i <= value.len) {
        const char *semi = i < value.len ? memchr(value.ptr + i, ';', value.len - i) : NULL;
        size_t end = semi ? (size_t)(semi - value.ptr) : value.len;
        struct slice spec = slice_make(value.ptr + i, end - i);
        struct slice t = trim_fws(spec);
        const char *eq = memchr(spec.ptr, '=', spec.len);
        if (eq != NULL && t.len > 0 && trim_fws(slice_make(t.ptr, (size_t)(eq - t.ptr))).len == 1 &&
            t.ptr[0] == 'b')
            buf_append(out, spec.ptr, (size_t)(eq + 1 - spec.ptr));
        else
            buf_append(out, spec.ptr, spec.len);
        if (semi == NULL)
            break;
        buf_append_byte(out, ';');
        i = end + 1;
    }
}

static const EVP_MD *alg_md(enum dkim_alg alg)
{
    return alg == DKIM_RSA_SHA256 ? EVP_sha256() : NULL;
}

/* The data a signature covers, ready for EVP: for Ed25519 its SHA-256. */
static void signed_data(enum dkim_alg alg, struct buf *hdr, unsigned char hash[32],
                        const void **p_r, size_t *n_r)
{
    if (alg == DKIM_ED25519_SHA256) {
        SHA256((const unsigned char *)hdr->data, hdr->len, hash);
        *p_r = hash;
        *n_r = 32;
    } else {
        *p_r = hdr->data;
        *n_r = hdr->len;
    }
}

bool dkim_verify_data(enum dkim_alg alg, struct slice b64, struct buf *data, EVP_PKEY *key)
{
    int id = EVP_PKEY_get_base_id(key);
    if ((alg == DKIM_ED25519_SHA256) != (id == EVP_PKEY_ED25519))
        return false;
    struct buf b = BUF_INIT;
    base64_decode_lenient(b64, &b);
    unsigned char hash[32];
    const void *sp;
    size_t sn;
    signed_data(alg, data, hash, &sp, &sn);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && b.len > 0 &&
              EVP_DigestVerifyInit(ctx, NULL, alg_md(alg), NULL, key) == 1 &&
              EVP_DigestVerify(ctx, (const unsigned char *)b.data, b.len, sp, sn) == 1;
    EVP_MD_CTX_free(ctx);
    buf_free(&b);
    return ok;
}

/* ---- signing ---- */

const char *const dkim_signed_headers[] = {"from",
                                           "reply-to",
                                           "subject",
                                           "date",
                                           "to",
                                           "cc",
                                           "message-id",
                                           "in-reply-to",
                                           "references",
                                           "mime-version",
                                           "content-type",
                                           "content-transfer-encoding",
                                           "list-id",
                                           "list-unsubscribe",
                                           "list-unsubscribe-post",
                                           NULL};

bool dkim_signer_alg(const struct dkim_signer_key *k, enum dkim_alg *alg_r)
{
    int id = EVP_PKEY_get_base_id(k->pkey);
    if (id == EVP_PKEY_ED25519)
        *alg_r = DKIM_ED25519_SHA256;
    else if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(k->pkey) >= 1024)
        *alg_r = DKIM_RSA_SHA256;
    else
        return false;
    return true;
}

bool dkim_sign_field(const struct dkim_signer_key *k, enum dkim_alg alg, struct slice field,
                     struct buf *data, struct buf *out)
{
    /* the field itself, canonicalized, without its final CRLF */
    const char *colon = memchr(field.ptr, ':', field.len);
    WHARF_ASSERT(colon != NULL);
    dkim_canon_header_relaxed(slice_make(field.ptr, (size_t)(colon - field.ptr)),
                              slice_make(colon + 1, field.len - (size_t)(colon + 1 - field.ptr)),
                              false, data);
    unsigned char hash[32];
    const void *sp;
    size_t sn;
    signed_data(alg, data, hash, &sp, &sn);
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, alg_md(alg), NULL, k->pkey) == 1 &&
        EVP_DigestSign(ctx, NULL, &siglen, sp, sn) == 1 && siglen <= sizeof(sig) &&
        EVP_DigestSign(ctx, sig, &siglen, sp, sn) == 1)
        ok = true;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return false;
    struct buf b64 = BUF_INIT;
    base64_encode(sig, siglen, &b64);
    buf_append_slice(out, field);
    for (size_t i = 0; i < b64.len; i += 72) {
        if (i > 0)
            buf_append(out, "\r\n\t ", 4);
        buf_append(out, b64.data + i, b64.len - i < 72 ? b64.len - i : 72);
    }
    buf_append(out, "\r\n", 2);
    buf_free(&b64);
    return true;
}

/* A DKIM-Signature (instance 0) or an ARC-Message-Signature (RFC 8617
 * 4.1.2: i= first, no v=, DKIM-Signature fields signed too). */
static bool sign_message(const struct dkim_msg *m, const char *d, const struct dkim_signer_key *k,
                         unsigned instance, int64_t now, struct buf *out, const char **why_r)
{
    enum dkim_alg alg;
    if (!dkim_signer_alg(k, &alg)) {
        *why_r = "unsupported key type";
        return false;
    }
    struct slice h[DKIM_H_MAX];
    size_t n_h = 0;
    for (size_t j = 0; dkim_signed_headers[j] != NULL; j++) {
        struct slice name = slice_from_cstr(dkim_signed_headers[j]);
        size_t count = 0;
        for (size_t f = 0; f < m->n_fields; f++)
            count += slice_eq_nocase(m->fields[f].name, name);
        if (j == 0)
            count++; /* From once more than present: over-signed */
        for (; count > 0 && n_h < DKIM_H_MAX; count--)
            h[n_h++] = name;
    }
    if (instance > 0)
        for (size_t f = 0; f < m->n_fields && n_h < DKIM_H_MAX; f++)
            if (slice_eq_cstr_nocase(m->fields[f].name, "dkim-signature"))
                h[n_h++] = slice_from_cstr("dkim-signature");
    unsigned char bh[32];
    dkim_body_hash(m->body, true, -1, bh, NULL);

    /* the field as it will be sent, with an empty b= */
    struct buf field = BUF_INIT;
    const char *a = alg == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256";
    if (instance == 0)
        buf_printf(&field,
                   "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s;\r\n\ts=%s; t=%lld; h=", a,
                   d, k->selector, (long long)now);
    else
        buf_printf(&field,
                   "ARC-Message-Signature: i=%u; a=%s; c=relaxed/relaxed; d=%s;\r\n\ts=%s; "
                   "t=%lld; h=",
                   instance, a, d, k->selector, (long long)now);
    size_t col = 8 + 10 + strlen(k->selector) + 25;
    for (size_t j = 0; j < n_h; j++) {
        if (j > 0) {
            buf_append_byte(&field, ':');
            col++;
        }
        if (col + h[j].len > 76) {
            buf_append(&field, "\r\n\t", 3);
            col = 8;
        }
        buf_append_slice(&field, h[j]);
        col += h[j].len;
    }
    buf_append_cstr(&field, ";\r\n\tbh=");
    base64_encode(bh, sizeof(bh), &field);
    buf_append_cstr(&field, ";\r\n\tb=");

    struct buf data = BUF_INIT;
    hash_fields(m, h, n_h, true, &data);
    bool ok = dkim_sign_field(k, alg, buf_slice(&field), &data, out);
    buf_free(&data);
    buf_free(&field);
    if (!ok)
        *why_r = "signing failed";
    return ok;
}

bool dkim_sign(const struct dkim_msg *m, const char *d, const struct dkim_signer_key *k,
               int64_t now, struct buf *out, const char **why_r)
{
    return sign_message(m, d, k, 0, now, out, why_r);
}

bool dkim_ams_sign(const struct dkim_msg *m, const char *d, const struct dkim_signer_key *k,
                   unsigned instance, int64_t now, struct buf *out, const char **why_r)
{
    WHARF_ASSERT(instance >= 1 && instance <= 50);
    return sign_message(m, d, k, instance, now, out, why_r);
}

/* ---- verification ---- */

const char *dkim_result_name(enum dkim_result r)
{
    static const char *const names[] = {"none",    "pass",      "fail",     "policy",
                                        "neutral", "temperror", "permerror"};
    return names[r];
}

enum dkim_result dkim_verify(const struct dkim_msg *m, const struct dkim_field *sig_field,
                             const struct dkim_sig *sig, EVP_PKEY *key, int64_t now,
                             const char **why_r)
{
    int id = EVP_PKEY_get_base_id(key);
    if ((sig->alg == DKIM_ED25519_SHA256) != (id == EVP_PKEY_ED25519)) {
        *why_r = "key type does not match the algorithm";
        return DKIM_PERMERROR;
    }
    unsigned char bh[32];
    uint64_t total;
    dkim_body_hash(m->body, sig->body_relaxed,
                   sig->has_l ? (sig->l > INT64_MAX ? INT64_MAX : (int64_t)sig->l) : -1, bh,
                   &total);
    struct buf want = BUF_INIT;
    base64_decode_lenient(sig->bh_b64, &want);
    bool bh_ok = want.len == 32 && CRYPTO_memcmp(want.data, bh, 32) == 0;
    buf_free(&want);
    if (!bh_ok) {
        *why_r = "body hash did not verify";
        return DKIM_FAIL;
    }
    if (sig->has_l && sig->l > total) {
        *why_r = "l= longer than the body";
        return DKIM_FAIL;
    }

    struct buf data = BUF_INIT;
    hash_fields(m, sig->h, sig->n_h, sig->hdr_relaxed, &data);
    struct buf stripped = BUF_INIT;
    dkim_strip_b(sig_field->value, &stripped);
    if (sig->hdr_relaxed)
        dkim_canon_header_relaxed(sig_field->name, buf_slice(&stripped), false, &data);
    else {
        buf_append(&data, sig_field->name.ptr,
                   (size_t)(sig_field->value.ptr - sig_field->name.ptr));
        buf_append_slice(&data, buf_slice(&stripped));
    }
    buf_free(&stripped);
    bool ok = dkim_verify_data(sig->alg, sig->b_b64, &data, key);
    buf_free(&data);
    if (!ok) {
        *why_r = "signature did not verify";
        return DKIM_FAIL;
    }
    if (sig->has_l && sig->l < total) {
        *why_r = "l= leaves part of the body unsigned";
        return DKIM_POLICY;
    }
    if (sig->x >= 0 && sig->x < now) {
        *why_r = "signature expired";
        return DKIM_POLICY;
    }
    *why_r = NULL;
    return DKIM_PASS;
}
