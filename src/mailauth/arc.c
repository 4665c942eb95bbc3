/*
 * arc.c - ARC chain validation (RFC 8617 5.2), see arc.h.
 *
 * Must never read an instance number without bounds nor accept a set with
 * a missing or duplicated member.
 */
#include "mailauth/arc.h"

#include "base/log.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *arc_result_name(enum arc_result r)
{
    static const char *const names[] = {"none", "pass", "fail"};
    return names[r];
}

static void fail(struct arc_outcome *out, const char *why)
{
    out->done = true;
    out->result = ARC_FAIL;
    snprintf(out->reason, sizeof(out->reason), "%s", why);
}

/* The i= of an ARC-Authentication-Results value ("i=N; authserv-id; ..."). */
static unsigned aar_instance(struct slice v)
{
    size_t i = 0;
    while (i < v.len &&
           (v.ptr[i] == ' ' || v.ptr[i] == '\t' || v.ptr[i] == '\r' || v.ptr[i] == '\n'))
        i++;
    if (i + 2 > v.len || v.ptr[i] != 'i' || v.ptr[i + 1] != '=')
        return 0;
    i += 2;
    unsigned n = 0;
    size_t d = 0;
    while (i < v.len && isdigit((unsigned char)v.ptr[i]) && d < 3)
        n = n * 10 + (unsigned)(v.ptr[i++] - '0'), d++;
    return d > 0 && n <= ARC_MAX_INSTANCES ? n : 0;
}

/* The key for (s, d) under alg: 1 with *key_r, 0 not yet asked, -1 none. */
static int fetch_key(struct authdns *dns, struct slice s, struct slice d, enum dkim_alg alg,
                     EVP_PKEY **key_r)
{
    char name[600];
    snprintf(name, sizeof(name), "%.*s._domainkey.%.*s", (int)s.len, s.ptr, (int)d.len, d.ptr);
    const struct authdns_answer *a = authdns_get(dns, name, AUTHDNS_TXT);
    if (a == NULL)
        return 0;
    const char *why;
    if (a->status != AUTHDNS_OK || a->n != 1 ||
        !dkim_key_record_parse(authdns_record(a, 0), alg, key_r, &why))
        return -1;
    return 1;
}

/* The ARC header fields of m by instance. False with why on a field
 * without a usable instance or a duplicated one; *n_r is the highest
 * instance seen (so far, on failure). */
struct arc_sets {
    const struct dkim_field *as[ARC_MAX_INSTANCES + 1], *ams[ARC_MAX_INSTANCES + 1],
        *aar[ARC_MAX_INSTANCES + 1];
    unsigned n;
};

static unsigned seal_instance(struct slice value)
{
    struct dkim_tag t[DKIM_TAGS_MAX];
    size_t nt;
    struct slice v;
    unsigned inst = 0;
    if (dkim_taglist_parse(value, t, DKIM_TAGS_MAX, &nt) && dkim_tag_get(t, nt, "i", &v) &&
        v.len > 0 && v.len <= 2) {
        for (size_t j = 0; j < v.len; j++)
            inst = isdigit((unsigned char)v.ptr[j]) ? inst * 10 + (unsigned)(v.ptr[j] - '0') : 999;
    }
    return inst;
}

static bool collect(const struct dkim_msg *m, struct arc_sets *s, const char **why_r)
{
    memset(s, 0, sizeof(*s));
    for (size_t k = 0; k < m->n_fields; k++) {
        const struct dkim_field *f = &m->fields[k];
        const struct dkim_field **slot;
        unsigned inst = 0;
        if (slice_eq_cstr_nocase(f->name, "ARC-Authentication-Results")) {
            inst = aar_instance(f->value);
            slot = s->aar;
        } else if (slice_eq_cstr_nocase(f->name, "ARC-Message-Signature")) {
            struct dkim_sig sig;
            const char *why;
            if (!dkim_ams_parse(f->value, &sig, &inst, &why))
                inst = 0;
            slot = s->ams;
        } else if (slice_eq_cstr_nocase(f->name, "ARC-Seal")) {
            inst = seal_instance(f->value);
            slot = s->as;
        } else {
            continue;
        }
        if (inst == 0 || inst > ARC_MAX_INSTANCES) {
            *why_r = "bad ARC header field";
            return false;
        }
        if (slot[inst] != NULL) {
            *why_r = "duplicate ARC instance";
            return false;
        }
        slot[inst] = f;
        if (inst > s->n)
            s->n = inst;
    }
    return true;
}

/* What ARC-Seal i covers (RFC 8617 5.1.1): the sets first..i in order, each
 * AAR, AMS, AS, relaxed; with open, set i's seal is the one being checked:
 * its b= emptied and without its CRLF. */
static void seal_input(const struct arc_sets *s, unsigned first, unsigned i, bool open,
                       struct buf *data)
{
    for (unsigned j = first; j <= i; j++) {
        dkim_canon_header_relaxed(s->aar[j]->name, s->aar[j]->value, true, data);
        dkim_canon_header_relaxed(s->ams[j]->name, s->ams[j]->value, true, data);
        if (j < i || !open) {
            dkim_canon_header_relaxed(s->as[j]->name, s->as[j]->value, true, data);
        } else {
            struct buf stripped = BUF_INIT;
            dkim_strip_b(s->as[j]->value, &stripped);
            dkim_canon_header_relaxed(s->as[j]->name, buf_slice(&stripped), false, data);
            buf_free(&stripped);
        }
    }
}

void arc_check(const struct dkim_msg *m, struct authdns *dns, int64_t now, struct arc_outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct arc_sets sets;
    const char *cwhy;
    if (!collect(m, &sets, &cwhy)) {
        fail(out, cwhy);
        return;
    }
    const struct dkim_field **as = sets.as, **ams = sets.ams, **aar = sets.aar;
    unsigned n = sets.n;
    out->instances = n;
    if (n == 0) {
        out->done = true;
        out->result = ARC_NONE;
        return;
    }
    for (unsigned i = 1; i <= n; i++)
        if (!as[i] || !ams[i] || !aar[i]) {
            fail(out, "incomplete ARC set");
            return;
        }
    /* cv= of every seal: none for the first, pass after it (5.2 steps 2-4) */
    struct dkim_tag st[ARC_MAX_INSTANCES + 1][DKIM_TAGS_MAX];
    size_t nst[ARC_MAX_INSTANCES + 1];
    for (unsigned i = 1; i <= n; i++) {
        struct slice cv;
        if (!dkim_taglist_parse(as[i]->value, st[i], DKIM_TAGS_MAX, &nst[i]) ||
            !dkim_tag_get(st[i], nst[i], "cv", &cv)) {
            fail(out, "bad ARC-Seal");
            return;
        }
        if (i == n && slice_eq_cstr_nocase(cv, "fail")) {
            fail(out, "the chain was already broken");
            return;
        }
        if (!slice_eq_cstr_nocase(cv, i == 1 ? "none" : "pass")) {
            fail(out, "bad cv= in the chain");
            return;
        }
    }
    /* the newest message signature (5.2 step 5) */
    bool need = false;
    struct dkim_sig sig;
    unsigned inst;
    const char *why;
    if (!dkim_ams_parse(ams[n]->value, &sig, &inst, &why)) {
        fail(out, why);
        return;
    }
    EVP_PKEY *key = NULL;
    int rc = fetch_key(dns, sig.s, sig.d, sig.alg, &key);
    if (rc == 0)
        need = true;
    else if (rc < 0) {
        fail(out, "no usable key for the message signature");
        return;
    } else {
        enum dkim_result r = dkim_verify(m, ams[n], &sig, key, now, &why);
        EVP_PKEY_free(key);
        if (r != DKIM_PASS) {
            fail(out, "ARC-Message-Signature did not verify");
            return;
        }
    }
    /* every seal, newest first (5.2 step 6) */
    for (unsigned i = n; i >= 1; i--) {
        struct slice a, b, d, s;
        if (!dkim_tag_get(st[i], nst[i], "a", &a) || !dkim_tag_get(st[i], nst[i], "b", &b) ||
            !dkim_tag_get(st[i], nst[i], "d", &d) || !dkim_tag_get(st[i], nst[i], "s", &s)) {
            fail(out, "bad ARC-Seal");
            return;
        }
        enum dkim_alg alg;
        if (slice_eq_cstr_nocase(a, "rsa-sha256"))
            alg = DKIM_RSA_SHA256;
        else if (slice_eq_cstr_nocase(a, "ed25519-sha256"))
            alg = DKIM_ED25519_SHA256;
        else {
            fail(out, "unsupported seal algorithm");
            return;
        }
        rc = fetch_key(dns, s, d, alg, &key);
        if (rc == 0) {
            need = true;
            continue;
        }
        if (rc < 0) {
            fail(out, "no usable key for a seal");
            return;
        }
        struct buf data = BUF_INIT;
        seal_input(&sets, 1, i, true, &data);
        bool ok = dkim_verify_data(alg, b, &data, key);
        buf_free(&data);
        EVP_PKEY_free(key);
        if (!ok) {
            fail(out, "ARC-Seal did not verify");
            return;
        }
    }
    if (need)
        return;
    out->done = true;
    out->result = ARC_PASS;
}

/* ---- sealing (RFC 8617 5.1) ---- */

enum arc_result arc_ar_cv(struct slice ar_value)
{
    size_t i = 0;
    while (i < ar_value.len) {
        const char *semi = memchr(ar_value.ptr + i, ';', ar_value.len - i);
        size_t end = semi ? (size_t)(semi - ar_value.ptr) : ar_value.len;
        size_t k = i;
        while (k < end && (ar_value.ptr[k] == ' ' || ar_value.ptr[k] == '\t' ||
                           ar_value.ptr[k] == '\r' || ar_value.ptr[k] == '\n'))
            k++;
        i = end + 1;
        if (end - k < 4 || !slice_eq_cstr_nocase(slice_make(ar_value.ptr + k, 4), "arc="))
            continue;
        size_t st = k + 4, e = st;
        while (e < end && isalpha((unsigned char)ar_value.ptr[e]))
            e++;
        struct slice r = slice_make(ar_value.ptr + st, e - st);
        if (slice_eq_cstr_nocase(r, "pass"))
            return ARC_PASS;
        if (slice_eq_cstr_nocase(r, "none"))
            return ARC_NONE;
        return ARC_FAIL; /* fail, and anything a verifier should not have said */
    }
    return ARC_NONE;
}

/* A field of ours (name: value CRLF) as a struct dkim_field. */
static struct dkim_field field_of(const struct buf *b)
{
    const char *colon = memchr(b->data, ':', b->len);
    WHARF_ASSERT(colon != NULL && b->len >= 2);
    size_t vlen = b->len - (size_t)(colon + 1 - b->data) - 2; /* without the CRLF */
    return (struct dkim_field){.name = slice_make(b->data, (size_t)(colon - b->data)),
                               .value = slice_make(colon + 1, vlen)};
}

unsigned arc_seal(const struct dkim_msg *m, struct slice ar_value, enum arc_result cv,
                  const char *d, const struct dkim_signer_key *k, int64_t now, struct buf *out,
                  const char **why_r)
{
    enum dkim_alg alg;
    if (!dkim_signer_alg(k, &alg)) {
        *why_r = "unsupported key type";
        return 0;
    }
    struct arc_sets sets;
    const char *cwhy;
    bool whole = collect(m, &sets, &cwhy);
    unsigned n = sets.n;
    for (unsigned j = 1; whole && j <= n; j++)
        whole = sets.as[j] != NULL && sets.ams[j] != NULL && sets.aar[j] != NULL;
    if (!whole) { /* a broken chain: above the highest instance any ARC-Seal claims */
        cv = ARC_FAIL;
        for (size_t j = 0; j < m->n_fields; j++)
            if (slice_eq_cstr_nocase(m->fields[j].name, "ARC-Seal")) {
                unsigned inst = seal_instance(m->fields[j].value);
                if (inst > n && inst <= ARC_MAX_INSTANCES)
                    n = inst;
            }
    }
    if (n >= ARC_MAX_INSTANCES) {
        *why_r = "the chain has 50 sets already";
        return 0;
    }
    if (whole && n > 0) {
        struct dkim_tag t[DKIM_TAGS_MAX];
        size_t nt;
        struct slice v;
        if (dkim_taglist_parse(sets.as[n]->value, t, DKIM_TAGS_MAX, &nt) &&
            dkim_tag_get(t, nt, "cv", &v) && slice_eq_cstr_nocase(v, "fail")) {
            *why_r = "the chain was ended by an earlier cv=fail";
            return 0;
        }
    }
    /* cv= agrees with the chain: none only for the first set (5.1.2) */
    if (n == 0)
        cv = ARC_NONE;
    else if (cv == ARC_NONE)
        cv = ARC_FAIL;
    unsigned i = n + 1;

    struct buf aar = BUF_INIT, ams = BUF_INIT, seal = BUF_INIT, data = BUF_INIT;
    while (ar_value.len > 0 && (ar_value.ptr[0] == ' ' || ar_value.ptr[0] == '\t'))
        ar_value.ptr++, ar_value.len--;
    buf_printf(&aar, "ARC-Authentication-Results: i=%u; ", i);
    buf_append_slice(&aar, ar_value);
    buf_append(&aar, "\r\n", 2);
    bool ok = dkim_ams_sign(m, d, k, i, now, &ams, why_r);
    if (ok) {
        buf_printf(&seal, "ARC-Seal: i=%u; a=%s; t=%lld; cv=%s;\r\n\td=%s; s=%s;\r\n\tb=", i,
                   alg == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256", (long long)now,
                   arc_result_name(cv), d, k->selector);
        /* a failed chain is not vouched for: the seal covers its own set only */
        if (cv != ARC_FAIL && n > 0)
            seal_input(&sets, 1, n, false, &data);
        struct dkim_field f = field_of(&aar);
        dkim_canon_header_relaxed(f.name, f.value, true, &data);
        f = field_of(&ams);
        dkim_canon_header_relaxed(f.name, f.value, true, &data);
        struct buf top = BUF_INIT;
        ok = dkim_sign_field(k, alg, buf_slice(&seal), &data, &top);
        if (ok) {
            buf_append_slice(out, buf_slice(&top));
            buf_append_slice(out, buf_slice(&ams));
            buf_append_slice(out, buf_slice(&aar));
        } else {
            *why_r = "signing failed";
        }
        buf_free(&top);
    }
    buf_free(&aar);
    buf_free(&ams);
    buf_free(&seal);
    buf_free(&data);
    return ok ? i : 0;
}
