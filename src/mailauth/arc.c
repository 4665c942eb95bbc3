/*
 * arc.c - ARC chain validation (RFC 8617 5.2), see arc.h.
 *
 * Must never read an instance number without bounds nor accept a set with
 * a missing or duplicated member.
 */
#include "mailauth/arc.h"

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

void arc_check(const struct dkim_msg *m, struct authdns *dns, int64_t now, struct arc_outcome *out)
{
    memset(out, 0, sizeof(*out));
    const struct dkim_field *as[ARC_MAX_INSTANCES + 1] = {0}, *ams[ARC_MAX_INSTANCES + 1] = {0},
                                                    *aar[ARC_MAX_INSTANCES + 1] = {0};
    unsigned n = 0;
    for (size_t k = 0; k < m->n_fields; k++) {
        const struct dkim_field *f = &m->fields[k];
        const struct dkim_field **slot;
        unsigned inst = 0;
        if (slice_eq_cstr_nocase(f->name, "ARC-Authentication-Results")) {
            inst = aar_instance(f->value);
            slot = aar;
        } else if (slice_eq_cstr_nocase(f->name, "ARC-Message-Signature")) {
            struct dkim_sig sig;
            const char *why;
            if (!dkim_ams_parse(f->value, &sig, &inst, &why))
                inst = 0;
            slot = ams;
        } else if (slice_eq_cstr_nocase(f->name, "ARC-Seal")) {
            struct dkim_tag t[DKIM_TAGS_MAX];
            size_t nt;
            struct slice v;
            if (dkim_taglist_parse(f->value, t, DKIM_TAGS_MAX, &nt) &&
                dkim_tag_get(t, nt, "i", &v) && v.len > 0 && v.len <= 2) {
                for (size_t j = 0; j < v.len; j++)
                    inst = isdigit((unsigned char)v.ptr[j]) ? inst * 10 + (unsigned)(v.ptr[j] - '0')
                                                            : 999;
            }
            slot = as;
        } else {
            continue;
        }
        if (inst == 0 || inst > ARC_MAX_INSTANCES) {
            fail(out, "bad ARC header field");
            return;
        }
        if (slot[inst] != NULL) {
            fail(out, "duplicate ARC instance");
            return;
        }
        slot[inst] = f;
        if (inst > n)
            n = inst;
    }
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
        for (unsigned j = 1; j <= i; j++) {
            dkim_canon_header_relaxed(aar[j]->name, aar[j]->value, true, &data);
            dkim_canon_header_relaxed(ams[j]->name, ams[j]->value, true, &data);
            if (j < i) {
                dkim_canon_header_relaxed(as[j]->name, as[j]->value, true, &data);
            } else {
                struct buf stripped = BUF_INIT;
                dkim_strip_b(as[j]->value, &stripped);
                dkim_canon_header_relaxed(as[j]->name, buf_slice(&stripped), false, &data);
                buf_free(&stripped);
            }
        }
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
