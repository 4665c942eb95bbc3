/*
 * store_acl.c - ACLs of the SQLite driver (RFC 4314): the rows (mailbox,
 * identifier, rights), a user's effective rights on one mailbox, and the
 * mailboxes of other owners shared with a user.
 *
 * Identifiers are account names, "anyone", or either prefixed with "-"
 * (negative rights: they are taken away from what the others grant).
 * Effective rights of user U: (rights of U and of anyone) minus (rights of
 * -U and of -anyone); the owner of a mailbox has every right on it.
 * Must never: enforce anything (the protocol layers do), or grant rights
 * from any row but those four identifiers.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

#define ACL_RIGHTS "lrswipkxtea"
#define ACL_IDENTIFIER_MAX 321 /* "-" + an address (RFC 5321: 64 + 1 + 255), or "anyone" */
#define ACL_ANYONE "anyone"

/* The mailbox's id; 1 (with a message in err) when there is none, or the name is invalid. */
static int acl_mailbox(struct store *s, const char *owner, const char *mailbox, int64_t *id_r,
                       struct buf *err)
{
    struct buf canon = BUF_INIT;
    int rc = store_name_check(s, mailbox, &canon, err) == 0 ? 0 : 1;
    if (rc == 0) {
        struct mbrow row;
        rc = sq_mailbox_find(s, owner, canon.data, &row, err);
        if (rc == 1)
            buf_printf(err, "no mailbox %s", canon.data);
        else if (rc == 0)
            *id_r = row.id;
    }
    buf_free(&canon);
    return rc;
}

/* Each letter of ACL_RIGHTS found in set, once, in RFC 4314 order. */
static void rights_canon(const char *set, char out[sizeof(ACL_RIGHTS)])
{
    size_t n = 0;
    for (const char *k = ACL_RIGHTS; *k; k++)
        if (strchr(set, *k))
            out[n++] = *k;
    out[n] = '\0';
}

int sq_acl_set(struct store *s, const char *owner, const char *mailbox, const char *identifier,
               const char *rights, struct buf *err)
{
    size_t ilen = strlen(identifier);
    if (ilen == 0 || ilen > ACL_IDENTIFIER_MAX || strcmp(identifier, "-") == 0) {
        buf_append_cstr(err, "bad ACL identifier");
        return -1;
    }
    for (const char *r = rights; *r; r++) {
        if (strchr(ACL_RIGHTS, *r) == NULL) {
            buf_printf(err, "unknown ACL right '%c'", *r);
            return -1;
        }
    }
    char canon[sizeof(ACL_RIGHTS)];
    rights_canon(rights, canon);
    int64_t id;
    if (acl_mailbox(s, owner, mailbox, &id, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(
        s,
        canon[0] ? "INSERT INTO acl(mailbox_id, identifier, rights) VALUES(?1, ?2, ?3)"
                   " ON CONFLICT(mailbox_id, identifier) DO UPDATE SET rights = excluded.rights"
                 : "DELETE FROM acl WHERE mailbox_id = ?1 AND identifier = ?2",
        err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, identifier, -1, SQLITE_STATIC);
    if (canon[0])
        sqlite3_bind_text(st, 3, canon, -1, SQLITE_STATIC);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "acl", err);
}

int sq_acl_get(struct store *s, const char *owner, const char *mailbox, const char *identifier,
               struct buf *rights_r, struct buf *err)
{
    int64_t id;
    buf_reset(rights_r);
    if (acl_mailbox(s, owner, mailbox, &id, err) != 0)
        return -1;
    sqlite3_stmt *st =
        sq_stmt(s, "SELECT rights FROM acl WHERE mailbox_id = ? AND identifier = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, identifier, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        buf_append_cstr(rights_r, (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        return 0;
    }
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, "acl", err);
}

int sq_acl_list(struct store *s, const char *owner, const char *mailbox,
                struct store_acl_entry **list_r, size_t *n_r, struct buf *err)
{
    int64_t id;
    *list_r = NULL;
    *n_r = 0;
    if (acl_mailbox(s, owner, mailbox, &id, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(
        s, "SELECT identifier, rights FROM acl WHERE mailbox_id = ? ORDER BY identifier", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    struct store_acl_entry *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n].identifier = sq_col_text(st, 0);
        v[n].rights = sq_col_text(st, 1);
        n++;
    }
    if (rc != SQLITE_DONE) {
        store_acl_list_free(v, n);
        return sq_db_error(s, "acl", err);
    }
    *list_r = v;
    *n_r = n;
    return 0;
}

/* ---- inheritance: a new mailbox starts with its parent's ACL ---- */

/*
 * As Cyrus does (RFC 4314 leaves it to the server): whoever may use the
 * parent may use what is made in it, so a folder a sharee makes in a shared
 * folder is theirs to use at once, and a public folder's subfolders (NNTP
 * groups under an anchor) read and post as the folder does. The nearest
 * existing ancestor counts when parents are missing (public folders are
 * made without their parents). Only creation copies: a RENAME keeps the
 * mailbox's own ACL (its id and rows move with it, as in Cyrus), so moving a
 * private folder under a shared one never shows it to anybody.
 */
int sq_acl_inherit(struct store *s, const char *owner, const char *name, int64_t id,
                   struct buf *err)
{
    char *parent = xstrdup(name);
    int rc = 1;
    char *slash;
    while (rc == 1 && (slash = strrchr(parent, STORE_DELIMITER)) != NULL) {
        *slash = '\0';
        struct mbrow row;
        rc = sq_mailbox_find(s, owner, parent, &row, err);
        if (rc != 0)
            continue;
        sqlite3_stmt *st = sq_stmt(s,
                                   "INSERT INTO acl(mailbox_id, identifier, rights)"
                                   " SELECT ?1, identifier, rights FROM acl WHERE mailbox_id = ?2",
                                   err);
        if (st == NULL) {
            rc = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, row.id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "inherit acl", err);
    }
    free(parent);
    return rc < 0 ? -1 : 0;
}

/* ---- effective rights ---- */

/* The four identifiers that speak about user (?1): user, anyone, -user, -anyone. */
#define ACL_MATCH "a.identifier IN (?1, 'anyone', '-' || ?1, '-anyone')"

/* Adds one row's rights to the granted (pos) or taken (neg) set. */
static void rights_add(struct buf *pos, struct buf *neg, const char *identifier, const char *rights)
{
    buf_append_cstr(identifier[0] == '-' ? neg : pos, rights);
}

/* pos minus neg, canonical, into out (reset first). */
static void rights_effective(struct buf *pos, struct buf *neg, struct buf *out)
{
    char canon[sizeof(ACL_RIGHTS)];
    rights_canon(buf_cstr(pos), canon);
    buf_reset(out);
    for (const char *r = canon; *r; r++)
        if (neg->len == 0 || memchr(neg->data, *r, neg->len) == NULL)
            buf_append_byte(out, *r);
    buf_cstr(out);
}

int sq_acl_rights(struct store *s, const char *owner, const char *mailbox, const char *user,
                  struct buf *rights_r, struct buf *err)
{
    int64_t id;
    buf_reset(rights_r);
    int rc = acl_mailbox(s, owner, mailbox, &id, err);
    if (rc != 0)
        return rc;
    if (strcmp(owner, user) == 0) {
        buf_append_cstr(rights_r, ACL_RIGHTS);
        return 0;
    }
    sqlite3_stmt *st = sq_stmt(
        s, "SELECT a.identifier, a.rights FROM acl a WHERE a.mailbox_id = ?2 AND " ACL_MATCH, err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    struct buf pos = BUF_INIT, neg = BUF_INIT;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        rights_add(&pos, &neg, (const char *)sqlite3_column_text(st, 0),
                   (const char *)sqlite3_column_text(st, 1));
    if (rc == SQLITE_DONE)
        rights_effective(&pos, &neg, rights_r);
    buf_free(&pos);
    buf_free(&neg);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, "acl", err);
}

/* Closes the share being gathered: kept only when some right is left. */
static void share_close(struct store_acl_share *v, size_t *n, struct buf *pos, struct buf *neg)
{
    struct buf eff = BUF_INIT;
    rights_effective(pos, neg, &eff);
    struct store_acl_share *sh = &v[*n];
    if (eff.len > 0) {
        sh->rights = xstrdup(buf_cstr(&eff));
        (*n)++;
    } else {
        free(sh->owner);
        free(sh->mailbox);
    }
    buf_free(&eff);
    buf_reset(pos);
    buf_reset(neg);
}

int sq_acl_shared(struct store *s, const char *user, struct store_acl_share **list_r, size_t *n_r,
                  struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    sqlite3_stmt *st =
        sq_stmt(s,
                "SELECT m.id, m.owner, m.name, a.identifier, a.rights FROM acl a"
                " JOIN mailboxes m ON m.id = a.mailbox_id WHERE m.owner <> ?1 AND " ACL_MATCH
                " ORDER BY m.owner, m.name, m.id",
                err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    struct store_acl_share *v = NULL;
    size_t n = 0, cap = 0;
    int64_t cur = -1;
    struct buf pos = BUF_INIT, neg = BUF_INIT;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id != cur) {
            if (cur != -1)
                share_close(v, &n, &pos, &neg);
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                v = xreallocarray(v, cap, sizeof(*v));
            }
            v[n] = (struct store_acl_share){.owner = sq_col_text(st, 1),
                                            .mailbox = sq_col_text(st, 2)};
            cur = id;
        }
        rights_add(&pos, &neg, (const char *)sqlite3_column_text(st, 3),
                   (const char *)sqlite3_column_text(st, 4));
    }
    if (cur != -1)
        share_close(v, &n, &pos, &neg);
    buf_free(&pos);
    buf_free(&neg);
    if (rc != SQLITE_DONE) {
        store_acl_shared_free(v, n);
        return sq_db_error(s, "acl", err);
    }
    *list_r = v;
    *n_r = n;
    return 0;
}

/* ---- newsgroup hierarchies: public folders that anchor one (NNTP) ---- */

#define NEWSGROUP_HIERARCHY_MAX 200

/* "comp.wharf": components of letters, digits, "+", "-", "_", joined by dots. */
static bool hierarchy_valid(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > NEWSGROUP_HIERARCHY_MAX || h[0] == '.' || h[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.' && h[i + 1] == '.')
            return false;
        if (!(c == '.' || c == '+' || c == '-' || c == '_' || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

int sq_newsgroup_anchor_set(struct store *s, const char *mailbox, const char *hierarchy,
                            struct buf *err)
{
    if (hierarchy[0] && !hierarchy_valid(hierarchy)) {
        buf_printf(err, "bad newsgroup hierarchy name \"%s\"", hierarchy);
        return -1;
    }
    int64_t id;
    if (acl_mailbox(s, STORE_PUBLIC_OWNER, mailbox, &id, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(
        s,
        hierarchy[0] ? "INSERT INTO newsgroups(mailbox_id, hierarchy, created)"
                       " VALUES(?1, ?2, strftime('%s', 'now'))"
                       " ON CONFLICT(mailbox_id) DO UPDATE SET hierarchy = excluded.hierarchy"
                     : "DELETE FROM newsgroups WHERE mailbox_id = ?1",
        err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (hierarchy[0])
        sqlite3_bind_text(st, 2, hierarchy, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        sqlite3_reset(st);
        buf_printf(err, "another public folder anchors %s", hierarchy);
        return -1;
    }
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, "newsgroups", err);
}

int sq_newsgroup_anchors(struct store *s, struct store_newsgroup_anchor **list_r, size_t *n_r,
                         struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT m.name, n.hierarchy, n.created FROM newsgroups n"
                               " JOIN mailboxes m ON m.id = n.mailbox_id ORDER BY n.hierarchy",
                               err);
    if (st == NULL)
        return -1;
    struct store_newsgroup_anchor *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n].mailbox = sq_col_text(st, 0);
        v[n].hierarchy = sq_col_text(st, 1);
        v[n].created = sqlite3_column_int64(st, 2);
        n++;
    }
    if (rc != SQLITE_DONE) {
        store_newsgroup_anchors_free(v, n);
        return sq_db_error(s, "newsgroups", err);
    }
    *list_r = v;
    *n_r = n;
    return 0;
}
