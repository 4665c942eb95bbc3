/*
 * mailauth.c - one inbound message's DKIM, SPF and DMARC checks and its
 * Authentication-Results: field (see mailauth.h).
 *
 * Must never print a value from the message into the new field unchecked
 * (a CR, LF or ';' there would forge results).
 */
#include "mailauth/mailauth.h"

#include "base/alloc.h"
#include "mime/mime.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void copy_slice(char *dst, size_t n, struct slice s)
{
    size_t k = s.len < n - 1 ? s.len : n - 1;
    memcpy(dst, s.ptr, k);
    dst[k] = '\0';
    for (size_t i = 0; i < k; i++)
        dst[i] = (char)tolower((unsigned char)dst[i]);
}

static void check_dkim(const struct mailauth_input *in, const struct dkim_msg *m,
                       struct authdns *dns, struct mailauth_result *res, bool *need)
{
    res->n_dkim = 0;
    for (size_t i = 0; i < m->n_fields && res->n_dkim < DKIM_VERIFY_MAX; i++) {
        if (!slice_eq_cstr_nocase(m->fields[i].name, "DKIM-Signature"))
            continue;
        struct mailauth_dkim *r = &res->dkim[res->n_dkim++];
        memset(r, 0, sizeof(*r));
        struct dkim_sig sig;
        const char *why = NULL;
        if (!dkim_sig_parse(m->fields[i].value, &sig, &why)) {
            r->result = DKIM_NEUTRAL; /* RFC 6376 6.1.1: PERMFAIL of this signature */
            snprintf(r->reason, sizeof(r->reason), "%s", why);
            continue;
        }
        copy_slice(r->d, sizeof(r->d), sig.d);
        copy_slice(r->s, sizeof(r->s), sig.s);
        snprintf(r->a, sizeof(r->a), "%s",
                 sig.alg == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256");
        size_t bl = 0;
        for (size_t k = 0; k < sig.b_b64.len && bl < 8; k++) {
            char c = sig.b_b64.ptr[k];
            if (isalnum((unsigned char)c) || c == '+' || c == '/')
                r->b[bl++] = c;
        }
        r->b[bl] = '\0';
        struct buf qname = BUF_INIT;
        buf_printf(&qname, "%s._domainkey.%s", r->s, r->d);
        const struct authdns_answer *a = authdns_get(dns, buf_cstr(&qname), AUTHDNS_TXT);
        buf_free(&qname);
        if (a == NULL) {
            *need = true;
            continue;
        }
        if (a->status == AUTHDNS_TEMPFAIL) {
            r->result = DKIM_TEMPERROR;
            snprintf(r->reason, sizeof(r->reason), "key lookup failed");
            continue;
        }
        if (a->status == AUTHDNS_NXDOMAIN || a->n == 0) {
            r->result = DKIM_PERMERROR;
            snprintf(r->reason, sizeof(r->reason), "no key");
            continue;
        }
        EVP_PKEY *key = NULL;
        if (a->n > 1 || !dkim_key_record_parse(authdns_record(a, 0), sig.alg, &key, &why)) {
            r->result = DKIM_PERMERROR;
            snprintf(r->reason, sizeof(r->reason), "%s", a->n > 1 ? "several key records" : why);
            continue;
        }
        r->result = dkim_verify(m, &m->fields[i], &sig, key, in->now, &why);
        EVP_PKEY_free(key);
        if (why)
            snprintf(r->reason, sizeof(r->reason), "%s", why);
    }
}

/* The domain of the only address of the only From: field, or "". */
static void from_domain(const struct dkim_msg *m, char *out, size_t n)
{
    out[0] = '\0';
    const struct dkim_field *from = NULL;
    for (size_t i = 0; i < m->n_fields; i++)
        if (slice_eq_cstr_nocase(m->fields[i].name, "From")) {
            if (from != NULL)
                return; /* several From: fields (RFC 7489 6.6.1) */
            from = &m->fields[i];
        }
    if (from == NULL)
        return;
    struct mime_address_list list;
    mime_address_parse(from->value, &list);
    if (list.n == 1 && list.v[0].host.ptr != NULL && list.v[0].host.len > 0 &&
        list.v[0].host.len < n) {
        bool ok = true;
        for (size_t k = 0; k < list.v[0].host.len; k++) {
            unsigned char c = (unsigned char)list.v[0].host.ptr[k];
            ok &= isalnum(c) || c == '-' || c == '.' || c >= 0x80;
        }
        if (ok)
            copy_slice(out, n, list.v[0].host);
    }
    mime_address_list_free(&list);
}

void mailauth_check(const struct mailauth_input *in, const struct psl *psl, struct authdns *dns,
                    struct mailauth_result *res)
{
    memset(res, 0, sizeof(*res));
    struct dkim_msg m;
    dkim_msg_init(&m, in->message);
    bool need = false;
    check_dkim(in, &m, dns, res, &need);
    from_domain(&m, res->from_domain, sizeof(res->from_domain));
    arc_check(&m, dns, in->now, &res->arc);
    dkim_msg_free(&m);

    struct spf_input si = {.helo = in->helo, .sender = in->sender, .receiver = in->receiver};
    if (!spf_ip_parse(in->client_ip ? in->client_ip : "", &si.ip)) {
        res->spf.done = true;
        res->spf.result = SPF_NONE;
    } else {
        spf_check(&si, dns, &res->spf);
    }

    struct dmarc_input di = {
        .from_domain = res->from_domain[0] ? res->from_domain : NULL,
        .spf_pass = res->spf.done && res->spf.result == SPF_PASS,
        .spf_domain = res->spf.domain,
        .sample = in->sample,
    };
    for (size_t i = 0; i < res->n_dkim; i++)
        if (res->dkim[i].result == DKIM_PASS && di.n_dkim_pass < DMARC_DKIM_MAX)
            di.dkim_pass[di.n_dkim_pass++] = res->dkim[i].d;
    dmarc_check(&di, psl, dns, &res->dmarc);
    res->done = !need && res->spf.done && res->dmarc.done && res->arc.done;
}

/* A value as is when it is a pvalue (RFC 8601 2.2: a token, or
 * local-part@domain), else as a quoted-string. */
static void ar_value(const char *v, struct buf *out)
{
    bool plain = v[0] != '\0';
    for (const char *p = v; *p && plain; p++) {
        unsigned char c = (unsigned char)*p;
        plain = c > 0x20 && c < 0x7f && strchr("()<>,;:\\\"[]?=", c) == NULL;
    }
    if (plain) {
        buf_append_cstr(out, v);
        return;
    }
    buf_append_byte(out, '"');
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            continue;
        if (c == '"' || c == '\\')
            buf_append_byte(out, '\\');
        buf_append_byte(out, (char)c);
    }
    buf_append_byte(out, '"');
}

static void ar_comment(const char *why, struct buf *out)
{
    if (why == NULL || why[0] == '\0')
        return;
    buf_append_cstr(out, " (");
    for (const char *p = why; *p; p++)
        if ((unsigned char)*p >= 0x20 && *p != '(' && *p != ')' && *p != '\\' &&
            (unsigned char)*p < 0x7f)
            buf_append_byte(out, *p);
    buf_append_byte(out, ')');
}

void mailauth_ar_header(const struct mailauth_input *in, const struct mailauth_result *res,
                        const char *authserv_id, struct buf *out)
{
    buf_printf(out, "Authentication-Results: %s;", authserv_id);
    if (res->n_dkim == 0)
        buf_append_cstr(out, "\r\n\tdkim=none;");
    for (size_t i = 0; i < res->n_dkim; i++) {
        const struct mailauth_dkim *d = &res->dkim[i];
        buf_printf(out, "\r\n\tdkim=%s", dkim_result_name(d->result));
        ar_comment(d->reason, out);
        if (d->d[0]) {
            buf_append_cstr(out, " header.d=");
            ar_value(d->d, out);
            buf_append_cstr(out, " header.s=");
            ar_value(d->s, out);
            buf_printf(out, " header.a=%s", d->a);
            if (d->b[0])
                buf_printf(out, " header.b=%s", d->b);
        }
        buf_append_byte(out, ';');
    }
    buf_printf(out, "\r\n\tspf=%s", spf_result_name(res->spf.result));
    ar_comment(res->spf.reason, out);
    if (in->sender != NULL && in->sender[0] != '\0') {
        buf_append_cstr(out, " smtp.mailfrom=");
        ar_value(in->sender, out);
    } else {
        buf_append_cstr(out, " smtp.helo=");
        ar_value(in->helo ? in->helo : "", out);
    }
    buf_printf(out, ";\r\n\tarc=%s", arc_result_name(res->arc.result));
    if (res->arc.result == ARC_PASS) {
        char c[32];
        snprintf(c, sizeof(c), "i=%u", res->arc.instances);
        ar_comment(c, out);
    } else {
        ar_comment(res->arc.reason, out);
    }
    buf_printf(out, ";\r\n\tdmarc=%s", dmarc_result_name(res->dmarc.result));
    if (res->dmarc.have_record) {
        char c[64];
        snprintf(c, sizeof(c), "p=%s dis=%s", dmarc_policy_name(res->dmarc.published),
                 res->dmarc.result == DMARC_FAIL ? dmarc_policy_name(res->dmarc.policy) : "none");
        ar_comment(c, out);
    } else {
        ar_comment(res->dmarc.reason, out);
    }
    if (res->from_domain[0]) {
        buf_append_cstr(out, " header.from=");
        ar_value(res->from_domain, out);
    }
    buf_append_cstr(out, "\r\n");
}

/* The authserv-id of an Authentication-Results value: after CFWS, up to
 * ';', white space or a comment. */
static struct slice authserv_of(struct slice v)
{
    size_t i = 0;
    int depth = 0;
    while (i < v.len) {
        char c = v.ptr[i];
        if (depth > 0) {
            depth += c == '(' ? 1 : c == ')' ? -1 : 0;
            i++;
        } else if (c == '(') {
            depth = 1;
            i++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else {
            break;
        }
    }
    size_t st = i;
    while (i < v.len && v.ptr[i] != ';' && v.ptr[i] != ' ' && v.ptr[i] != '\t' && v.ptr[i] != '(' &&
           v.ptr[i] != '\r' && v.ptr[i] != '\n')
        i++;
    struct slice id = slice_make(v.ptr + st, i - st);
    if (id.len >= 2 && id.ptr[0] == '"' && id.ptr[id.len - 1] == '"')
        id = slice_make(id.ptr + 1, id.len - 2);
    return id;
}

size_t mailauth_strip_ours(struct slice message, const char *authserv_id, struct buf *out)
{
    struct dkim_msg m;
    dkim_msg_init(&m, message);
    size_t dropped = 0;
    const char *pos = message.ptr;
    for (size_t i = 0; i < m.n_fields; i++) {
        const struct dkim_field *f = &m.fields[i];
        if (!slice_eq_cstr_nocase(f->name, "Authentication-Results") ||
            !slice_eq_cstr_nocase(authserv_of(f->value), authserv_id))
            continue;
        /* copy up to this field, skip it and its line break */
        buf_append(out, pos, (size_t)(f->name.ptr - pos));
        const char *end = f->value.ptr + f->value.len;
        const char *stop = message.ptr + message.len;
        if (end < stop && *end == '\r')
            end++;
        if (end < stop && *end == '\n')
            end++;
        pos = end;
        dropped++;
    }
    buf_append(out, pos, (size_t)(message.ptr + message.len - pos));
    dkim_msg_free(&m);
    return dropped;
}

const struct dkim_field *mailauth_ours(const struct dkim_msg *m, const char *authserv_id)
{
    for (size_t i = 0; i < m->n_fields; i++)
        if (slice_eq_cstr_nocase(m->fields[i].name, "Authentication-Results") &&
            slice_eq_cstr_nocase(authserv_of(m->fields[i].value), authserv_id))
            return &m->fields[i];
    return NULL;
}
