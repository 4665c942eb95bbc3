/*
 * mta_dkim.c - DKIM signing as the mta relays (see mta_dkim.h).
 *
 * Must never block on anything but the key files under DATA/dkim, and never
 * let a signing failure lose or delay a message.
 */
#include "mta/mta_dkim.h"

#include "base/log.h"
#include "mailauth/dkim.h"
#include "mailauth/arc.h"
#include "mailauth/dkim_keys.h"
#include "mailauth/mailauth.h"
#include "mime/mime.h"
#include "net/net.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

bool mta_dkim_should_sign(const struct wharf_config *cfg, const struct spool_envelope *env)
{
    if (!cfg->dkim_sign)
        return false;
    if (env->auth_user != NULL && env->auth_user[0] != '\0')
        return true;
    if (env->client == NULL)
        return false;
    if (strcmp(env->client, "local") == 0)
        return true; /* the maildrop pickup */
    /* "name[addr]": a client inside mynetworks (sendmail while wharfd runs) */
    const char *lb = strrchr(env->client, '[');
    const char *rb = lb ? strchr(lb, ']') : NULL;
    if (lb == NULL || rb == NULL || rb - lb > 64)
        return false;
    char addr[72];
    snprintf(addr, sizeof(addr), "%.*s", (int)(rb - lb - 1), lb + 1);
    const char *a = strncmp(addr, "IPv6:", 5) == 0 ? addr + 5 : addr;
    return net_addr_in_networks(a, (const char *const *)cfg->mynetworks.v, cfg->mynetworks.n);
}

bool mta_dkim_from_domain(struct slice data, struct buf *out)
{
    struct dkim_msg m;
    dkim_msg_init(&m, data);
    bool ok = false;
    for (size_t i = 0; i < m.n_fields && !ok; i++) {
        if (!slice_eq_cstr_nocase(m.fields[i].name, "From"))
            continue;
        struct mime_address_list list;
        mime_address_parse(m.fields[i].value, &list);
        for (size_t k = 0; k < list.n && !ok; k++) {
            struct slice h = list.v[k].host;
            if (h.ptr == NULL || h.len == 0 || h.len > 253)
                continue;
            for (size_t j = 0; j < h.len; j++)
                buf_append_byte(out, (char)tolower((unsigned char)h.ptr[j]));
            ok = true;
        }
        mime_address_list_free(&list);
        break; /* only the first From: field counts */
    }
    dkim_msg_free(&m);
    return ok;
}

size_t mta_dkim_sign(const struct wharf_config *cfg, const struct spool_message *sm,
                     struct buf *out)
{
    if (!mta_dkim_should_sign(cfg, &sm->env))
        return 0;
    struct buf domain = BUF_INIT;
    if (!mta_dkim_from_domain(buf_slice(&sm->data), &domain)) {
        buf_free(&domain);
        return 0;
    }
    struct dkim_keyset ks;
    struct buf err = BUF_INIT;
    int rc = dkim_keys_load(cfg, buf_cstr(&domain), &ks, &err);
    if (rc < 0)
        log_error("%s: DKIM keys of %s unusable, sent unsigned: %s", sm->env.id, buf_cstr(&domain),
                  buf_cstr(&err));
    size_t n = 0;
    if (rc > 0) {
        struct dkim_msg m;
        dkim_msg_init(&m, buf_slice(&sm->data));
        time_t now = time(NULL);
        for (size_t i = 0; i < ks.n; i++) {
            const char *why;
            if (dkim_sign(&m, buf_cstr(&domain), &ks.keys[i], (int64_t)now, out, &why))
                n++;
            else
                log_error("%s: DKIM signing with %s failed: %s", sm->env.id, ks.keys[i].selector,
                          why);
        }
        dkim_msg_free(&m);
        dkim_keyset_free(&ks);
    }
    buf_free(&err);
    buf_free(&domain);
    return n;
}

/* Loads into ks the keys of the first candidate domain that has an RSA key:
 * the aliases that were expanded, then myhostname's parent and myhostname.
 * Returns the index of that key in ks, or -1 (ks freed). */
static int seal_key(const struct wharf_config *cfg, const struct spool_envelope *env,
                    struct buf *domain, struct dkim_keyset *ks)
{
    const char *cand[8];
    size_t nc = 0;
    for (size_t i = 0; i < env->n_rcpts && nc < 6; i++) {
        const char *at = strrchr(env->rcpts[i].address, '@');
        if (env->rcpts[i].state == SPOOL_RCPT_EXPANDED && at != NULL && at[1] != '\0')
            cand[nc++] = at + 1;
    }
    const char *dot = strchr(cfg->myhostname, '.');
    if (dot != NULL && strchr(dot + 1, '.') != NULL)
        cand[nc++] = dot + 1;
    cand[nc++] = cfg->myhostname;
    for (size_t c = 0; c < nc; c++) {
        buf_reset(domain);
        for (const char *p = cand[c]; *p; p++)
            buf_append_byte(domain, (char)tolower((unsigned char)*p));
        struct buf err = BUF_INIT;
        int rc = dkim_keys_load(cfg, buf_cstr(domain), ks, &err);
        if (rc < 0)
            log_error("%s: DKIM keys of %s unusable for an ARC seal: %s", env->id, buf_cstr(domain),
                      buf_cstr(&err));
        buf_free(&err);
        if (rc <= 0)
            continue;
        for (size_t k = 0; k < ks->n; k++)
            if (EVP_PKEY_get_base_id(ks->keys[k].pkey) == EVP_PKEY_RSA)
                return (int)k;
        dkim_keyset_free(ks);
    }
    return -1;
}

unsigned mta_arc_seal(const struct wharf_config *cfg, const struct spool_message *sm,
                      struct buf *out)
{
    if (!cfg->arc_seal || mta_dkim_should_sign(cfg, &sm->env))
        return 0;
    struct dkim_msg m;
    dkim_msg_init(&m, buf_slice(&sm->data));
    const struct dkim_field *ar =
        mailauth_ours(&m, cfg->authserv_id[0] ? cfg->authserv_id : cfg->myhostname);
    unsigned i = 0;
    struct buf domain = BUF_INIT;
    struct dkim_keyset ks;
    int k;
    if (ar != NULL && (k = seal_key(cfg, &sm->env, &domain, &ks)) >= 0) {
        const char *why;
        i = arc_seal(&m, ar->value, arc_ar_cv(ar->value), buf_cstr(&domain), &ks.keys[k],
                     (int64_t)time(NULL), out, &why);
        if (i == 0)
            log_info("%s: not ARC-sealed: %s", sm->env.id, why);
        dkim_keyset_free(&ks);
    }
    buf_free(&domain);
    dkim_msg_free(&m);
    return i;
}
