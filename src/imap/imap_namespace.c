/*
 * imap_namespace.c - the three namespaces (RFC 2342) and a session's rights
 * (RFC 4314) on a mailbox name.
 *
 *   ""                 the user's own mailboxes            INBOX, Sent, a/b
 *   "Other Users/"     mailboxes other accounts share      Other Users/bob@example.org/INBOX
 *   "Public Folders/"  the public folders (STORE_PUBLIC_OWNER)  Public Folders/News
 *
 * A name is turned into (owner, store name) and the session's effective
 * rights on it here, and back into a name for LIST; the commands call
 * imap_mbref_resolve and imap_mbref_allowed and use ref.owner/ref.name with
 * the store. Rights are bits in RFC 4314 order ("lrswipkxtea").
 * Must never: tell a user without "l" that a mailbox exists (the answer for
 * it is the answer for a missing mailbox), or grant the owner's rights to
 * anyone but the owner.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool imap_rights_parse(struct slice text, unsigned *bits_r)
{
    unsigned bits = 0;
    for (size_t i = 0; i < text.len; i++) {
        const char *p = memchr(IMAP_RIGHTS, text.ptr[i], sizeof(IMAP_RIGHTS) - 1);
        if (p != NULL)
            bits |= 1u << (p - IMAP_RIGHTS);
        else if (text.ptr[i] == 'c') /* RFC 4314 2.1.1: the obsolete "create" is k */
            bits |= IMAP_RIGHT_K;
        else if (text.ptr[i] == 'd') /* ... and "delete" is x, t and e */
            bits |= IMAP_RIGHT_X | IMAP_RIGHT_T | IMAP_RIGHT_E;
        else
            return false;
    }
    *bits_r = bits;
    return true;
}

void imap_rights_write(struct buf *out, unsigned bits, bool virtual_rights)
{
    size_t start = out->len;
    for (size_t i = 0; i < sizeof(IMAP_RIGHTS) - 1; i++)
        if (bits & (1u << i))
            buf_append_byte(out, IMAP_RIGHTS[i]);
    /* RFC 4314 2.1.1: "c" and "d" for RFC 2086 clients when a member is there. */
    if (virtual_rights && (bits & IMAP_RIGHT_K))
        buf_append_byte(out, 'c');
    if (virtual_rights && (bits & (IMAP_RIGHT_X | IMAP_RIGHT_T | IMAP_RIGHT_E)))
        buf_append_byte(out, 'd');
    if (out->len == start)
        buf_append_cstr(out, "\"\"");
}

void imap_rights_flags_write(struct buf *out, unsigned rights, char *const *kw, size_t n_kw)
{
    static const struct {
        const char *flag;
        unsigned right;
    } v[] = {
        {"\\Answered", IMAP_RIGHT_W}, {"\\Flagged", IMAP_RIGHT_W}, {"\\Deleted", IMAP_RIGHT_T},
        {"\\Seen", IMAP_RIGHT_S},     {"\\Draft", IMAP_RIGHT_W},   {"\\*", IMAP_RIGHT_W},
    };
    size_t start = out->len;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (strcmp(v[i].flag, "\\*") == 0 && (rights & IMAP_RIGHT_W)) {
            for (size_t j = 0; j < n_kw; j++) {
                if (out->len > start)
                    buf_append_byte(out, ' ');
                buf_append_cstr(out, kw[j]);
            }
        }
        if (rights & v[i].right) {
            if (out->len > start)
                buf_append_byte(out, ' ');
            buf_append_cstr(out, v[i].flag);
        }
    }
}

void imap_mbref_free(struct imap_mbref *r)
{
    free(r->owner);
    free(r->name);
    memset(r, 0, sizeof(*r));
}

void imap_ns_split(const char *account, const char *imap_name, char **owner_r, char **name_r)
{
    static const char other[] = IMAP_NS_OTHER "/", public[] = IMAP_NS_PUBLIC "/";
    const char *rest = NULL;
    if (strncmp(imap_name, other, sizeof(other) - 1) == 0) {
        const char *user = imap_name + sizeof(other) - 1;
        const char *slash = strchr(user, STORE_DELIMITER);
        *owner_r = slash ? xstrndup(user, (size_t)(slash - user)) : xstrdup(user);
        rest = slash ? slash + 1 : NULL;
    } else if (strncmp(imap_name, public, sizeof(public) - 1) == 0) {
        *owner_r = xstrdup(STORE_PUBLIC_OWNER);
        rest = imap_name + sizeof(public) - 1;
    } else if (strcmp(imap_name, IMAP_NS_OTHER) == 0 || strcmp(imap_name, IMAP_NS_PUBLIC) == 0) {
        *owner_r = xstrdup(account);
    } else {
        *owner_r = xstrdup(account);
        rest = imap_name;
    }
    *name_r = NULL;
    if (rest == NULL || rest[0] == '\0')
        return;
    /* "INBOX" is case-insensitive in every namespace (imap_mailbox_arg does it for ""). */
    size_t first = strcspn(rest, "/");
    *name_r = xstrdup(rest);
    if (first == strlen(STORE_INBOX) && strncasecmp(rest, STORE_INBOX, first) == 0)
        memcpy(*name_r, STORE_INBOX, first);
}

int imap_mbref_resolve(struct imap_session *s, const char *imap_name, struct imap_mbref *r)
{
    memset(r, 0, sizeof(*r));
    imap_ns_split(s->account, imap_name, &r->owner, &r->name);
    if (r->name == NULL)
        return 0;
    r->own = strcmp(r->owner, s->account) == 0;
    struct buf rights = BUF_INIT, err = BUF_INIT;
    int rc = store_acl_rights(s->srv->store, r->owner, r->name, s->account, &rights, &err);
    if (rc < 0) {
        log_error("user=<%s>: rights on %s: %s", s->account, imap_name, buf_cstr(&err));
    } else if (rc == 0) {
        (void)imap_rights_parse(slice_make(rights.data, rights.len), &r->rights);
        r->exists = true;
    }
    if (r->own)
        r->rights = IMAP_RIGHTS_ALL; /* also on a name to be created */
    buf_free(&rights);
    buf_free(&err);
    return rc < 0 ? -1 : 0;
}

bool imap_mbref_allowed(struct imap_session *s, struct slice tag, const struct imap_mbref *r,
                        unsigned need, const char *missing)
{
    if (r->name != NULL && (r->rights & need) == need)
        return true;
    if (r->name != NULL && (r->rights & IMAP_RIGHT_L)) {
        struct buf text = BUF_INIT;
        imap_rights_write(&text, need & ~r->rights, false);
        imap_printf(s, "%.*s NO [NOPERM] Permission denied (you lack the right \"%s\")", TAGF(tag),
                    buf_cstr(&text));
        buf_free(&text);
    } else {
        /* Exactly what a missing mailbox gets: nothing tells that it exists. */
        imap_printf(s, "%.*s NO %s", TAGF(tag), missing);
    }
    return false;
}

char *imap_ns_name(const char *account, const char *owner, const char *name)
{
    struct buf b = BUF_INIT;
    if (strcmp(owner, account) == 0)
        buf_append_cstr(&b, name);
    else if (strcmp(owner, STORE_PUBLIC_OWNER) == 0)
        buf_printf(&b, "%s%c%s", IMAP_NS_PUBLIC, STORE_DELIMITER, name);
    else
        buf_printf(&b, "%s%c%s%c%s", IMAP_NS_OTHER, STORE_DELIMITER, owner, STORE_DELIMITER, name);
    char *r = xstrdup(buf_cstr(&b));
    buf_free(&b);
    return r;
}

void imap_ns_write(struct buf *out)
{
    buf_printf(out, "* NAMESPACE ((\"\" \"%c\")) ((\"%s%c\" \"%c\")) ((\"%s%c\" \"%c\"))\r\n",
               STORE_DELIMITER, IMAP_NS_OTHER, STORE_DELIMITER, STORE_DELIMITER, IMAP_NS_PUBLIC,
               STORE_DELIMITER, STORE_DELIMITER);
}

int imap_ns_list_shared(struct imap_session *s, struct store_mailbox **mbs, size_t *n,
                        struct buf *err)
{
    struct store_acl_share *sh;
    size_t n_sh;
    if (store_acl_shared(s->srv->store, s->account, &sh, &n_sh, err) != 0)
        return -1;
    size_t k = *n;
    struct store_mailbox *v = xreallocarray(*mbs, k + n_sh + 1, sizeof(*v));
    int rc = 0;
    for (size_t i = 0; i < n_sh && rc == 0; i++) {
        unsigned rights = 0;
        (void)imap_rights_parse(slice_from_cstr(sh[i].rights), &rights);
        if (!(rights & IMAP_RIGHT_L))
            continue;
        struct store_mailbox mb = {0};
        /* Without "r" only the name is shown: uidvalidity 0 tells LIST-STATUS to say nothing. */
        if (rights & IMAP_RIGHT_R) {
            int r = store_mailbox_get(s->srv->store, sh[i].owner, sh[i].mailbox, &mb, err);
            if (r != 0) {
                rc = r < 0 ? -1 : 0;
                continue; /* 1: deleted meanwhile */
            }
            free(mb.name);
        }
        mb.name = imap_ns_name(s->account, sh[i].owner, sh[i].mailbox);
        v[k++] = mb;
    }
    *mbs = v;
    *n = k;
    store_acl_shared_free(sh, n_sh);
    return rc;
}
