/*
 * store_message.c - messages of the SQLite driver: list, read, flags,
 * copy, expunge and the expunge log.
 *
 * Every change takes a new MODSEQ from its mailbox (store_modseq_next) in
 * the same transaction as the change; an expunge writes the UID and that
 * MODSEQ to the expunge log before the row goes. Bodies are read from blob
 * segments, never modified.
 */
#include "store/store_int.h"
#include "base/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Finds a mailbox by any spelling of its name: 0, 1 (missing) or -1. */
static int find_mb(struct store *s, const char *owner, const char *name, struct mbrow *row,
                   struct buf *err)
{
    struct buf canon = BUF_INIT;
    int rc = store_name_check(s, name, &canon, err);
    if (rc == 0)
        rc = store_mailbox_find(s, owner, canon.data, row, err);
    buf_free(&canon);
    return rc;
}

static bool keywords_ok(const char *k, struct buf *err)
{
    if (k == NULL)
        return true;
    if (strlen(k) > STORE_KEYWORDS_MAX) {
        buf_printf(err, "keywords longer than %d bytes", STORE_KEYWORDS_MAX);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            buf_append_cstr(err, "keywords contain a control character");
            return false;
        }
    }
    return true;
}

int store_message_list(struct store *s, const char *owner, const char *mailbox, uint32_t uid_min,
                       struct store_message **list_r, size_t *n_r, struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    if (store_begin(s, false, err) != 0)
        return -1;
    struct mbrow row;
    int f = find_mb(s, owner, mailbox, &row, err);
    if (f != 0) {
        store_rollback(s);
        if (f == 1)
            buf_printf(err, "no mailbox %s", mailbox);
        return -1;
    }
    sqlite3_stmt *st = store_stmt(
        s, "SELECT uid, modseq, flags, keywords, internaldate, size, blob, envelope,"
           " bodystructure FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid",
        err);
    if (st == NULL) {
        store_rollback(s);
        return -1;
    }
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, uid_min);
    struct store_message *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        struct store_message *m = &v[n++];
        memset(m, 0, sizeof(*m));
        m->uid = (uint32_t)sqlite3_column_int64(st, 0);
        m->modseq = (uint64_t)sqlite3_column_int64(st, 1);
        m->flags = (unsigned)sqlite3_column_int(st, 2);
        m->keywords = xstrdup((const char *)sqlite3_column_text(st, 3));
        m->internaldate = sqlite3_column_int64(st, 4);
        m->size = (uint64_t)sqlite3_column_int64(st, 5);
        const unsigned char *h = sqlite3_column_text(st, 6);
        if (h)
            memcpy(m->blob, h, strnlen((const char *)h, 64));
        const unsigned char *e = sqlite3_column_text(st, 7);
        m->envelope = e ? xstrdup((const char *)e) : NULL;
        const unsigned char *b = sqlite3_column_text(st, 8);
        m->bodystructure = b ? xstrdup((const char *)b) : NULL;
    }
    store_rollback(s);
    if (rc != SQLITE_DONE) {
        store_message_list_free(v, n);
        buf_printf(err, "store: list messages failed");
        return -1;
    }
    *list_r = v;
    *n_r = n;
    return 0;
}

void store_message_list_free(struct store_message *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].keywords);
        free(list[i].envelope);
        free(list[i].bodystructure);
    }
    free(list);
}

int store_message_read(struct store *s, const char *owner, const char *mailbox, uint32_t uid,
                       struct buf *out, struct buf *err)
{
    /* Two tries: store_gc may move the body between our lookup and our open(). */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct mbrow row;
        int f = find_mb(s, owner, mailbox, &row, err);
        if (f != 0)
            return f;
        sqlite3_stmt *st = store_stmt(
            s, "SELECT b.segment, b.offset, b.size FROM messages m JOIN blobs b ON b.hash = m.blob"
               " WHERE m.mailbox_id = ? AND m.uid = ?",
            err);
        if (st == NULL)
            return -1;
        sqlite3_bind_int64(st, 1, row.id);
        sqlite3_bind_int64(st, 2, uid);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            return 1;
        if (rc != SQLITE_ROW)
            return store_db_error(s, "read message", err);
        int64_t seg = sqlite3_column_int64(st, 0);
        uint64_t off = (uint64_t)sqlite3_column_int64(st, 1);
        uint64_t size = (uint64_t)sqlite3_column_int64(st, 2);
        sqlite3_reset(st);
        struct buf e = BUF_INIT;
        if (blob_read(&s->blobs, seg, off, size, out, &e) == 0) {
            buf_free(&e);
            return 0;
        }
        if (errno != ENOENT || attempt == 1) {
            buf_append_slice(err, buf_slice(&e));
            buf_free(&e);
            return -1;
        }
        buf_free(&e);
    }
    return -1;
}

int store_message_set_flags(struct store *s, const char *owner, const char *mailbox,
                            uint32_t uid, unsigned flags, const char *keywords,
                            uint64_t unchangedsince, uint64_t *modseq_r, struct buf *err)
{
    if (!keywords_ok(keywords, err) || store_begin(s, true, err) != 0)
        return -1;
    struct mbrow row;
    int f = find_mb(s, owner, mailbox, &row, err);
    if (f != 0) {
        store_rollback(s);
        return f;
    }
    sqlite3_stmt *st =
        store_stmt(s, "SELECT modseq FROM messages WHERE mailbox_id = ? AND uid = ?", err);
    if (st == NULL) {
        store_rollback(s);
        return -1;
    }
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, uid);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        store_rollback(s);
        return rc == SQLITE_DONE ? 1 : store_db_error(s, "flags", err);
    }
    uint64_t cur = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (unchangedsince != 0 && cur > unchangedsince) {
        store_rollback(s);
        return 1;
    }
    uint64_t modseq;
    if (store_modseq_next(s, row.id, &modseq, err) != 0) {
        store_rollback(s);
        return -1;
    }
    st = store_stmt(s,
                    "UPDATE messages SET flags = ?, keywords = ?, modseq = ?"
                    " WHERE mailbox_id = ? AND uid = ?",
                    err);
    if (st == NULL) {
        store_rollback(s);
        return -1;
    }
    sqlite3_bind_int(st, 1, (int)(flags & 0x1f));
    sqlite3_bind_text(st, 2, keywords ? keywords : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)modseq);
    sqlite3_bind_int64(st, 4, row.id);
    sqlite3_bind_int64(st, 5, uid);
    if (sqlite3_step(st) != SQLITE_DONE) {
        store_db_error(s, "flags", err);
        store_rollback(s);
        return -1;
    }
    if (store_commit(s, err) != 0)
        return -1;
    if (modseq_r)
        *modseq_r = modseq;
    return 0;
}

int store_message_set_cache(struct store *s, const char *owner, const char *mailbox, uint32_t uid,
                            const char *envelope, const char *bodystructure, struct buf *err)
{
    struct mbrow row;
    int f = find_mb(s, owner, mailbox, &row, err);
    if (f != 0)
        return f;
    sqlite3_stmt *st = store_stmt(s,
                                  "UPDATE messages SET envelope = ?, bodystructure = ?"
                                  " WHERE mailbox_id = ? AND uid = ?",
                                  err);
    if (st == NULL)
        return -1;
    if (envelope)
        sqlite3_bind_text(st, 1, envelope, -1, SQLITE_STATIC);
    if (bodystructure)
        sqlite3_bind_text(st, 2, bodystructure, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, row.id);
    sqlite3_bind_int64(st, 4, uid);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : store_db_error(s, "cache", err);
}

int store_message_copy(struct store *s, const char *owner, const char *mailbox, uint32_t uid,
                       const char *dest, uint32_t *uid_r, struct buf *err)
{
    if (store_begin(s, true, err) != 0)
        return -1;
    struct mbrow from, to;
    int f = find_mb(s, owner, mailbox, &from, err);
    if (f == 0)
        f = find_mb(s, owner, dest, &to, err);
    if (f != 0) {
        if (f == 1)
            buf_append_cstr(err, "no such mailbox");
        store_rollback(s);
        return -1;
    }
    uint64_t modseq;
    if (store_modseq_next(s, to.id, &modseq, err) != 0) {
        store_rollback(s);
        return -1;
    }
    sqlite3_stmt *st = store_stmt(
        s, "INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords, internaldate, size,"
           " blob, envelope, bodystructure) SELECT ?1, ?2, ?3, flags, keywords, internaldate,"
           " size, blob, envelope, bodystructure FROM messages WHERE mailbox_id = ?4 AND uid = ?5"
           " RETURNING blob, size",
        err);
    if (st == NULL) {
        store_rollback(s);
        return -1;
    }
    sqlite3_bind_int64(st, 1, to.id);
    sqlite3_bind_int64(st, 2, to.uidnext);
    sqlite3_bind_int64(st, 3, (int64_t)modseq);
    sqlite3_bind_int64(st, 4, from.id);
    sqlite3_bind_int64(st, 5, uid);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            buf_printf(err, "no message with UID %u", uid);
        else
            store_db_error(s, "copy", err);
        store_rollback(s);
        return -1;
    }
    char *hash = xstrdup((const char *)sqlite3_column_text(st, 0));
    int64_t size = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    int r = -1;
    sqlite3_stmt *u = store_stmt(s, "UPDATE blobs SET refs = refs + 1 WHERE hash = ?", err);
    if (u) {
        sqlite3_bind_text(u, 1, hash, -1, SQLITE_STATIC);
        if (sqlite3_step(u) == SQLITE_DONE) {
            sqlite3_stmt *m =
                store_stmt(s, "UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ?", err);
            if (m) {
                sqlite3_bind_int64(m, 1, to.id);
                if (sqlite3_step(m) == SQLITE_DONE)
                    r = store_quota_add(s, owner, size, 1, err);
                else
                    store_db_error(s, "copy", err);
            }
        } else
            store_db_error(s, "copy", err);
    }
    free(hash);
    if (r != 0) {
        store_rollback(s);
        return -1;
    }
    if (store_commit(s, err) != 0)
        return -1;
    if (uid_r)
        *uid_r = to.uidnext;
    return 0;
}

int store_message_expunge(struct store *s, const char *owner, const char *mailbox,
                          const uint32_t *uids, size_t n, struct buf *err)
{
    if (store_begin(s, true, err) != 0)
        return -1;
    struct mbrow row;
    int f = find_mb(s, owner, mailbox, &row, err);
    if (f != 0) {
        if (f == 1)
            buf_printf(err, "no mailbox %s", mailbox);
        store_rollback(s);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = store_stmt(
            s, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING blob, size", err);
        if (st == NULL)
            goto fail;
        sqlite3_bind_int64(st, 1, row.id);
        sqlite3_bind_int64(st, 2, uids[i]);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            continue;
        if (rc != SQLITE_ROW) {
            store_db_error(s, "expunge", err);
            goto fail;
        }
        char *hash = xstrdup((const char *)sqlite3_column_text(st, 0));
        int64_t size = sqlite3_column_int64(st, 1);
        sqlite3_reset(st);
        uint64_t modseq;
        int r = store_modseq_next(s, row.id, &modseq, err);
        if (r == 0)
            r = store_blob_unref(s, hash, err);
        free(hash);
        if (r == 0)
            r = store_quota_add(s, owner, -size, -1, err);
        if (r != 0)
            goto fail;
        st = store_stmt(
            s, "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES(?, ?, ?)", err);
        if (st == NULL)
            goto fail;
        sqlite3_bind_int64(st, 1, row.id);
        sqlite3_bind_int64(st, 2, uids[i]);
        sqlite3_bind_int64(st, 3, (int64_t)modseq);
        if (sqlite3_step(st) != SQLITE_DONE) {
            store_db_error(s, "expunge log", err);
            goto fail;
        }
    }
    return store_commit(s, err);
fail:
    store_rollback(s);
    return -1;
}

int store_expunged_since(struct store *s, const char *owner, const char *mailbox,
                         uint64_t modseq, uint32_t **uids_r, size_t *n_r, struct buf *err)
{
    *uids_r = NULL;
    *n_r = 0;
    struct mbrow row;
    int f = find_mb(s, owner, mailbox, &row, err);
    if (f != 0) {
        if (f == 1)
            buf_printf(err, "no mailbox %s", mailbox);
        return -1;
    }
    sqlite3_stmt *st = store_stmt(
        s, "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, (int64_t)modseq);
    uint32_t *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n++] = (uint32_t)sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) {
        free(v);
        return store_db_error(s, "expunge log", err);
    }
    *uids_r = v;
    *n_r = n;
    return 0;
}
