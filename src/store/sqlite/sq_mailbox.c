/*
 * store_mailbox.c - mailboxes of the SQLite driver: list, create, delete,
 * rename and subscriptions (ACLs: store_acl.c).
 *
 * A deleted mailbox takes its messages (and their blob references) and its
 * expunge log with it; a mailbox created again under the same name gets a
 * new UIDVALIDITY, so no client can mistake old UIDs for new ones.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

char *sq_col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}

static const char sql_list[] =
    "SELECT m.id, m.name, m.special_use, m.uidvalidity, m.uidnext, m.highestmodseq,"
    " EXISTS(SELECT 1 FROM subscriptions s WHERE s.owner = m.owner AND s.name = m.name),"
    " m.n_messages, m.n_unseen, m.n_bytes," /* kept by triggers (store_schema.c) */
    " m.recent_uid, m.n_recent, m.state, m.created_state"
    " FROM mailboxes m WHERE m.owner = ?1 AND (?2 IS NULL OR m.name = ?2) ORDER BY m.name";

static void fill_mailbox(sqlite3_stmt *st, struct store_mailbox *mb)
{
    mb->id = sqlite3_column_int64(st, 0);
    mb->name = sq_col_text(st, 1);
    mb->special_use = sq_col_text(st, 2);
    mb->uidvalidity = (uint32_t)sqlite3_column_int64(st, 3);
    mb->uidnext = (uint32_t)sqlite3_column_int64(st, 4);
    mb->highestmodseq = (uint64_t)sqlite3_column_int64(st, 5);
    mb->subscribed = sqlite3_column_int(st, 6) != 0;
    mb->messages = (uint64_t)sqlite3_column_int64(st, 7);
    mb->unseen = (uint64_t)sqlite3_column_int64(st, 8);
    mb->bytes = (uint64_t)sqlite3_column_int64(st, 9);
    mb->recent_uid = (uint32_t)sqlite3_column_int64(st, 10);
    mb->recent = (uint64_t)sqlite3_column_int64(st, 11);
    mb->state = (uint64_t)sqlite3_column_int64(st, 12);
    mb->created_state = (uint64_t)sqlite3_column_int64(st, 13);
}

int sq_mailbox_recent_claim(struct store *s, const char *owner, const char *name, uint32_t upto,
                            bool claim, uint32_t *first_r, struct buf *err)
{
    struct mbrow row;
    *first_r = UINT32_MAX;
    /* A look first: most calls find nothing to take and need no write transaction. */
    for (int write = 0; write < 2; write++) {
        if (write && sq_begin(s, true, err) != 0)
            return -1;
        int r = sq_mailbox_find(s, owner, name, &row, err);
        sqlite3_stmt *st =
            r != 0 ? NULL : sq_stmt(s, "SELECT recent_uid FROM mailboxes WHERE id = ?", err);
        if (st == NULL) {
            if (write)
                sq_rollback(s);
            return r > 0 ? 1 : -1;
        }
        sqlite3_bind_int64(st, 1, row.id);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sq_db_error(s, "recent", err);
            sqlite3_reset(st);
            if (write)
                sq_rollback(s);
            return -1;
        }
        *first_r = (uint32_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (!claim || *first_r > upto) {
            if (write)
                sq_rollback(s);
            return 0;
        }
        if (!write)
            continue;
        st = sq_stmt(s, "UPDATE mailboxes SET recent_uid = ? WHERE id = ?", err);
        if (st == NULL) {
            sq_rollback(s);
            return -1;
        }
        sqlite3_bind_int64(st, 1, (int64_t)upto + 1);
        sqlite3_bind_int64(st, 2, row.id);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sq_db_error(s, "recent", err);
            sq_rollback(s);
            return -1;
        }
        return sq_commit(s, err);
    }
    return 0;
}

/* Creates the account's default folders if this is its first use (a short write transaction). */
static int ensure_account(struct store *s, const char *owner, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM accounts WHERE owner = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW || strcmp(owner, STORE_PUBLIC_OWNER) == 0)
        return 0;
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "account", err);
    if (sq_begin(s, true, err) != 0)
        return -1;
    if (sq_account_ensure(s, owner, err) != 0) {
        sq_rollback(s);
        return -1;
    }
    return sq_commit(s, err);
}

int sq_mailbox_list(struct store *s, const char *owner, struct store_mailbox **list_r, size_t *n_r,
                    struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    if (ensure_account(s, owner, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(s, sql_list, err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    struct store_mailbox *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        fill_mailbox(st, &v[n++]);
    }
    if (rc != SQLITE_DONE) {
        store_mailbox_list_free(v, n);
        return sq_db_error(s, "list mailboxes", err);
    }
    *list_r = v;
    *n_r = n;
    return 0;
}

int sq_mailbox_get(struct store *s, const char *owner, const char *name, struct store_mailbox *mb,
                   struct buf *err)
{
    struct buf canon = BUF_INIT;
    memset(mb, 0, sizeof(*mb));
    if (store_name_check(s, name, &canon, err) != 0 || ensure_account(s, owner, err) != 0) {
        buf_free(&canon);
        return -1;
    }
    sqlite3_stmt *st = sq_stmt(s, sql_list, err);
    int rc = -1;
    if (st) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, canon.data, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            fill_mailbox(st, mb);
            rc = 0;
        } else if (r == SQLITE_DONE)
            rc = 1;
        else
            sq_db_error(s, "mailbox", err);
        sqlite3_reset(st);
    }
    buf_free(&canon);
    return rc;
}

int sq_mailbox_create(struct store *s, const char *owner, const char *name, const char *special_use,
                      struct buf *err)
{
    struct buf canon = BUF_INIT;
    if (store_name_check(s, name, &canon, err) != 0) {
        buf_free(&canon);
        return -1;
    }
    int rc = -1;
    if (sq_begin(s, true, err) == 0) {
        if (sq_account_ensure(s, owner, err) == 0 &&
            sq_mailbox_insert(s, owner, canon.data, special_use, err) == 0)
            rc = sq_commit(s, err);
        else
            sq_rollback(s);
    }
    buf_free(&canon);
    return rc;
}

int sq_mailbox_set_uids(struct store *s, const char *owner, const char *name,
                        const char *special_use, uint32_t uidvalidity, uint32_t uidnext,
                        struct buf *err)
{
    struct buf canon = BUF_INIT;
    if (store_name_check(s, name, &canon, err) != 0) {
        buf_free(&canon);
        return -1;
    }
    int rc = -1;
    if (sq_begin(s, true, err) != 0)
        goto out;
    struct mbrow row;
    int f = sq_account_ensure(s, owner, err) == 0 ? sq_mailbox_find(s, owner, canon.data, &row, err)
                                                  : -1;
    if (f == 1 && sq_mailbox_insert(s, owner, canon.data, special_use, err) == 0)
        f = sq_mailbox_find(s, owner, canon.data, &row, err);
    if (f != 0)
        goto rollback;
    if (uidvalidity != 0 && uidvalidity != row.uidvalidity && row.uidnext != 1) {
        buf_printf(err, "%s already holds messages under UIDVALIDITY %u (the source has %u)",
                   canon.data, row.uidvalidity, uidvalidity);
        goto rollback;
    }
    sqlite3_stmt *st = sq_stmt(
        s, "UPDATE mailboxes SET uidvalidity = ?2, uidnext = max(uidnext, ?3) WHERE id = ?1", err);
    if (st == NULL)
        goto rollback;
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, uidvalidity ? uidvalidity : row.uidvalidity);
    sqlite3_bind_int64(st, 3, uidnext);
    if (sqlite3_step(st) != SQLITE_DONE) {
        sq_db_error(s, "set uids", err);
        goto rollback;
    }
    rc = sq_commit(s, err);
    goto out;
rollback:
    sq_rollback(s);
out:
    buf_free(&canon);
    return rc;
}

/* Deletes one mailbox row and everything hanging on it (in a write transaction). */
static int delete_mailbox_row(struct store *s, const char *owner, int64_t id, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT blob, size FROM messages WHERE mailbox_id = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    char **hashes = NULL;
    size_t n = 0, cap = 0;
    int64_t bytes = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            hashes = xreallocarray(hashes, cap, sizeof(*hashes));
        }
        hashes[n++] = sq_col_text(st, 0);
        bytes += sqlite3_column_int64(st, 1);
    }
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "delete mailbox", err);
    size_t n_messages = n;
    /* The bodies the expunge log still holds (store_options.expunge_hold) go too. */
    st = result != 0 ? NULL
                     : sq_stmt(s,
                               "SELECT blob FROM expunged WHERE mailbox_id = ?"
                               " AND blob IS NOT NULL",
                               err);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                hashes = xreallocarray(hashes, cap, sizeof(*hashes));
            }
            hashes[n++] = sq_col_text(st, 0);
        }
        result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "delete mailbox", err);
    } else
        result = -1;
    /* Rows first (they refer to the blobs), then the references they held. */
    static const char *const sqls[] = {
        "DELETE FROM messages WHERE mailbox_id = ?",
        "DELETE FROM expunged WHERE mailbox_id = ?",
        "DELETE FROM acl WHERE mailbox_id = ?",
        "DELETE FROM mailboxes WHERE id = ?",
    };
    for (size_t i = 0; i < 4 && result == 0; i++) {
        st = sq_stmt(s, sqls[i], err);
        if (st == NULL) {
            result = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE)
            result = sq_db_error(s, "delete mailbox", err);
    }
    for (size_t i = 0; i < n; i++) {
        if (result == 0)
            result = sq_blob_unref(s, hashes[i], err);
        free(hashes[i]);
    }
    free(hashes);
    if (result == 0 && n_messages > 0)
        result = sq_quota_add(s, owner, -bytes, -(int64_t)n_messages, err);
    return result;
}

int sq_mailbox_delete(struct store *s, const char *owner, const char *name, struct buf *err)
{
    struct buf canon = BUF_INIT;
    if (store_name_check(s, name, &canon, err) != 0) {
        buf_free(&canon);
        return -1;
    }
    if (strcmp(canon.data, STORE_INBOX) == 0) {
        buf_append_cstr(err, "INBOX cannot be deleted");
        buf_free(&canon);
        return -1;
    }
    int rc = -1;
    if (sq_begin(s, true, err) == 0) {
        struct mbrow row;
        int f = sq_mailbox_find(s, owner, canon.data, &row, err);
        if (f == 1)
            buf_printf(err, "no mailbox %s", canon.data);
        if (f == 0 && delete_mailbox_row(s, owner, row.id, err) == 0)
            rc = sq_commit(s, err);
        else
            sq_rollback(s);
    }
    buf_free(&canon);
    return rc;
}

int sq_mailbox_rename(struct store *s, const char *owner, const char *from, const char *to,
                      struct buf *err)
{
    struct buf a = BUF_INIT, b = BUF_INIT, prefix = BUF_INIT;
    int rc = -1;
    if (store_name_check(s, from, &a, err) != 0 || store_name_check(s, to, &b, err) != 0)
        goto out;
    if (strcmp(a.data, STORE_INBOX) == 0 || strcmp(b.data, STORE_INBOX) == 0) {
        buf_append_cstr(err, "renaming INBOX is not supported");
        goto out;
    }
    if (sq_begin(s, true, err) != 0)
        goto out;
    struct mbrow row;
    int f = sq_mailbox_find(s, owner, a.data, &row, err);
    if (f == 1)
        buf_printf(err, "no mailbox %s", a.data);
    if (f != 0) {
        sq_rollback(s);
        goto out;
    }
    /* The mailbox and its children: name = from, or name starting with "from/". */
    buf_printf(&prefix, "%s%c", a.data, STORE_DELIMITER);
    sqlite3_stmt *st =
        sq_stmt(s,
                "UPDATE mailboxes SET name = ?3 || substr(name, length(?2) + 1)"
                " WHERE owner = ?1 AND (name = ?2 OR substr(name, 1, length(?4)) = ?4)",
                err);
    if (st == NULL) {
        sq_rollback(s);
        goto out;
    }
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a.data, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, b.data, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, prefix.data, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_CONSTRAINT) {
        buf_printf(err, "mailbox %s already exists", b.data);
        sq_rollback(s);
    } else if (r != SQLITE_DONE) {
        sq_db_error(s, "rename", err);
        sq_rollback(s);
    } else
        rc = sq_commit(s, err);
out:
    buf_free(&a);
    buf_free(&b);
    buf_free(&prefix);
    return rc;
}

int sq_subscribe(struct store *s, const char *owner, const char *name, bool on, struct buf *err)
{
    struct buf canon = BUF_INIT;
    if (store_name_check(s, name, &canon, err) != 0) {
        buf_free(&canon);
        return -1;
    }
    sqlite3_stmt *st = sq_stmt(s,
                               on ? "INSERT OR IGNORE INTO subscriptions(owner, name) VALUES(?, ?)"
                                  : "DELETE FROM subscriptions WHERE owner = ? AND name = ?",
                               err);
    int rc = -1;
    if (st) {
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, canon.data, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "subscribe", err);
    }
    buf_free(&canon);
    return rc;
}

int sq_subscriptions(struct store *s, const char *owner, char ***names_r, size_t *n_r,
                     struct buf *err)
{
    *names_r = NULL;
    *n_r = 0;
    sqlite3_stmt *st =
        sq_stmt(s, "SELECT name FROM subscriptions WHERE owner = ? ORDER BY name", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n++] = sq_col_text(st, 0);
    }
    if (rc != SQLITE_DONE) {
        store_names_free(v, n);
        return sq_db_error(s, "subscriptions", err);
    }
    *names_r = v;
    *n_r = n;
    return 0;
}
