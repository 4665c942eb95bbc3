/*
 * jmap_account.c - the accounts a user sees over JMAP beside their own
 * (RFC 8620 1.6.2, 2): one per other user who shares mailboxes with them,
 * and one for the public folders (STORE_PUBLIC_OWNER), each made of the
 * mailboxes the user holds the "l" right on (RFC 4314, the store's ACLs,
 * the same ones IMAP's "Other Users" and "Public Folders" namespaces show).
 *
 * Every call naming such an account selects it here, reading the ACLs
 * again (a right taken away counts from the next call): r->acl then holds
 * the user's rights on each mailbox, and the methods ask jmap_may before
 * they show or change anything; Emails are read only through
 * jmap_account_messages, which leaves out the mailboxes without "r".
 * Must never: let a call see a mailbox without "l", an Email of a mailbox
 * without "r", or tell an account the user may not see from one that does
 * not exist (both are accountNotFound).
 */
#include "http/jmap_int.h"
#include "base/alloc.h"
#include "base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JMAP_RIGHTS_ALL "lrswipkxtea"

void jmap_account_reset(struct jmap_req *r)
{
    r->user = r->login;
    jmap_account_id(r->login, &r->account_id);
    free(r->acl);
    r->acl = NULL;
    r->n_acl = 0;
    free(r->owner);
    r->owner = NULL;
    buf_reset(&r->view_key);
    buf_append_cstr(&r->view_key, r->login);
}

void jmap_req_free(struct jmap_req *r)
{
    free(r->acl);
    free(r->owner);
    buf_free(&r->account_id);
    buf_free(&r->view_key);
}

/* "a" + hex back to the account name; false when id is not one. */
static bool account_owner(const char *id, struct buf *out)
{
    size_t len = strlen(id);
    if (id[0] != 'a' || len < 3 || len % 2 == 0 || len > 2 * STORE_MAILBOX_NAME_MAX)
        return false;
    buf_reset(out);
    for (size_t i = 1; i < len; i += 2) {
        int v = 0;
        for (size_t k = 0; k < 2; k++) {
            char c = id[i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return false;
            v = v * 16 + d;
        }
        if (v == 0)
            return false;
        buf_append_byte(out, (char)v);
    }
    buf_cstr(out);
    return true;
}

int jmap_account_select(struct jmap_req *r, const char *account_id, struct buf *err)
{
    jmap_account_reset(r);
    if (strcmp(account_id, r->account_id.data) == 0)
        return 0;
    struct buf owner = BUF_INIT;
    if (!account_owner(account_id, &owner) || strcmp(owner.data, r->login) == 0) {
        buf_free(&owner);
        return 1;
    }
    struct store_acl_share *sh = NULL;
    size_t n_sh = 0;
    struct store_mailbox *mb = NULL;
    size_t n_mb = 0;
    int rc = store_acl_shared(r->j->store, r->login, &sh, &n_sh, err) != 0 ? -1 : 1;
    bool listed = false;
    for (size_t i = 0; rc == 1 && i < n_sh; i++)
        listed = listed || (strcmp(sh[i].owner, owner.data) == 0 && strchr(sh[i].rights, 'l'));
    if (listed)
        rc = store_mailbox_list(r->j->store, owner.data, &mb, &n_mb, err) != 0 ? -1 : 0;
    if (rc == 0) {
        r->acl = xcalloc(n_mb + 1, sizeof(*r->acl));
        buf_printf(&r->view_key, "\n%s", owner.data);
        for (size_t i = 0; i < n_mb; i++)
            for (size_t k = 0; k < n_sh; k++)
                if (strcmp(sh[k].owner, owner.data) == 0 &&
                    strcmp(sh[k].mailbox, mb[i].name) == 0) {
                    struct jmap_acl *a = &r->acl[r->n_acl++];
                    a->mailbox_id = mb[i].id;
                    snprintf(a->rights, sizeof(a->rights), "%s", sh[k].rights);
                    /* the caches hold what these rights let through: keyed by them */
                    buf_printf(&r->view_key, "\n%lld:%s", (long long)a->mailbox_id, a->rights);
                }
        r->owner = xstrdup(owner.data);
        r->user = r->owner;
        buf_reset(&r->account_id);
        buf_append_cstr(&r->account_id, account_id);
    }
    store_mailbox_list_free(mb, n_mb);
    store_acl_shared_free(sh, n_sh);
    buf_free(&owner);
    return rc;
}

const char *jmap_rights(const struct jmap_req *r, int64_t mailbox_id)
{
    if (r->acl == NULL)
        return JMAP_RIGHTS_ALL;
    for (size_t i = 0; i < r->n_acl; i++)
        if (r->acl[i].mailbox_id == mailbox_id)
            return r->acl[i].rights;
    return "";
}

bool jmap_may(const struct jmap_req *r, int64_t mailbox_id, const char *need)
{
    const char *have = jmap_rights(r, mailbox_id);
    for (const char *c = need; *c; c++)
        if (strchr(have, *c) == NULL)
            return false;
    return true;
}

int jmap_account_messages(struct jmap_req *r, const char *hash, uint64_t since,
                          struct store_account_message **list_r, size_t *n_r, struct buf *err)
{
    if (store_account_messages(r->j->store, r->user, hash, since, false, list_r, n_r, err) != 0)
        return -1;
    if (r->acl == NULL)
        return 0;
    struct store_account_message *v = *list_r;
    struct store_account_message *out = xcalloc(*n_r + 1, sizeof(*out));
    size_t k = 0, nd = 0;
    for (size_t i = 0; i < *n_r; i++) {
        if (jmap_may(r, v[i].mailbox_id, "r"))
            out[k++] = v[i];
        else
            v[nd++] = v[i]; /* the dropped ones, freed below (nd <= i) */
    }
    store_account_messages_free(v, nd);
    *list_r = out;
    *n_r = k;
    return 0;
}

/* ---- the session's accounts ---- */

/* Whether the owner of sh[from] (sh ordered by owner) has a mailbox login may
 * list ("l"); *end_r: the next owner's first; *read_only_r: no right there to
 * change anything over JMAP (s, w, i, t, e: Email/set's; k, x: Mailbox/set's). */
static bool share_listed(const struct store_acl_share *sh, size_t n, size_t from, size_t *end_r,
                         bool *read_only_r)
{
    size_t e = from;
    bool listed = false, ro = true;
    while (e < n && strcmp(sh[e].owner, sh[from].owner) == 0) {
        if (strchr(sh[e].rights, 'l')) {
            listed = true;
            ro = ro && strpbrk(sh[e].rights, "switekx") == NULL;
        }
        e++;
    }
    *end_r = e;
    *read_only_r = ro;
    return listed;
}

/* s and its NUL (a separator) hashed onto h. */
static uint64_t fnv(uint64_t h, const char *s)
{
    return hash_fnv1a(h, s, strlen(s) + 1);
}

int jmap_shared_accounts(struct jmap *j, const char *user, json_t *accounts, json_t *caps,
                         struct buf *state)
{
    struct store_acl_share *sh = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT, id = BUF_INIT, name = BUF_INIT;
    if (store_acl_shared(j->store, user, &sh, &n, &err) != 0) {
        buf_free(&err);
        return -1;
    }
    /* the session state: changes when the set of accounts or the rights do */
    uint64_t h = HASH_FNV1A_BASIS;
    for (size_t i = 0; i < n; i++) {
        h = fnv(h, sh[i].owner);
        h = fnv(h, sh[i].mailbox);
        h = fnv(h, sh[i].rights);
    }
    buf_printf(state, "%s-%016llx", JMAP_SESSION_STATE, (unsigned long long)h);
    for (size_t i = 0, end; i < n; i = end) {
        bool ro;
        if (!share_listed(sh, n, i, &end, &ro) || accounts == NULL)
            continue;
        jmap_account_id(sh[i].owner, &id);
        buf_reset(&name);
        if (strcmp(sh[i].owner, STORE_PUBLIC_OWNER) == 0)
            buf_append_cstr(&name, "Public folders");
        else
            buf_append_cstr(&name, sh[i].owner);
        json_object_set_new(accounts, id.data,
                            json_pack("{s:s, s:b, s:b, s:{s:O}}", "name", name.data, "isPersonal",
                                      0, "isReadOnly", ro, "accountCapabilities", JMAP_MAIL, caps));
    }
    store_acl_shared_free(sh, n);
    buf_free(&err);
    buf_free(&id);
    buf_free(&name);
    return 0;
}
