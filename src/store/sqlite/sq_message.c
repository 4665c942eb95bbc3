/*
 * store_message.c - messages of the SQLite driver: list, changes since a
 * MODSEQ, read, flags, copy, expunge and the expunge log; the other copies
 * of a message's body in its account (a cross-posted article's groups).
 *
 * Every change takes a new MODSEQ from its mailbox (sq_modseq_next) in
 * the same transaction as the change; an expunge writes the UID and that
 * MODSEQ to the expunge log before the row goes. Bodies are read from blob
 * segments, never modified.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Finds a mailbox by any spelling of its name: 0, 1 (missing) or -1. */
void sq_message_row(sqlite3_stmt *st, struct store_message *m)
{
    memset(m, 0, sizeof(*m));
    m->uid = (uint32_t)sqlite3_column_int64(st, 0);
    m->modseq = (uint64_t)sqlite3_column_int64(st, 1);
    m->flags = (unsigned)sqlite3_column_int(st, 2);
    m->keywords = xstrdup((const char *)sqlite3_column_text(st, 3));
    m->internaldate = sqlite3_column_int64(st, 4);
    m->size = (uint64_t)sqlite3_column_int64(st, 5);
}

int sq_message_list(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                    struct store_message **list_r, size_t *n_r, struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    if (sq_begin(s, false, err) != 0)
        return -1;
    struct mbrow row;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
    if (f != 0) {
        sq_rollback(s);
        if (f == 1)
            buf_append_cstr(err, "no such mailbox");
        return -1;
    }
    sqlite3_stmt *st =
        sq_stmt(s,
                "SELECT uid, modseq, flags, keywords, internaldate, size, blob,"
                " bodystructure FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid",
                err);
    if (st == NULL) {
        sq_rollback(s);
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
        sq_message_row(st, m);
        const unsigned char *h = sqlite3_column_text(st, 6);
        if (h)
            memcpy(m->blob, h, strnlen((const char *)h, 64));
        /* the MIME cache (mime_struct_encode); IMAP text from older versions
         * comes back too and is refused by the decoder, then rewritten */
        m->structure = NULL;
        m->structure_len = 0;
        if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
            const void *b = sqlite3_column_blob(st, 7);
            m->structure_len = (size_t)sqlite3_column_bytes(st, 7);
            m->structure = xmalloc(m->structure_len ? m->structure_len : 1);
            if (m->structure_len > 0)
                memcpy(m->structure, b, m->structure_len);
        }
    }
    sq_rollback(s);
    if (rc != SQLITE_DONE) {
        store_message_list_free(v, n);
        buf_printf(err, "store: list messages failed");
        return -1;
    }
    *list_r = v;
    *n_r = n;
    return 0;
}

int sq_message_read(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                    struct buf *out, struct buf *err)
{
    /* Two tries: sq_gc may move the body between our lookup and our open(). */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct mbrow row;
        int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
        if (f != 0)
            return f;
        sqlite3_stmt *st =
            sq_stmt(s,
                    SQ_BLOB_SELECT(s, "FROM messages m JOIN blobs b ON b.hash = m.blob"
                                      " WHERE m.mailbox_id = ? AND m.uid = ?"),
                    err);
        if (st == NULL)
            return -1;
        sqlite3_bind_int64(st, 1, row.id);
        sqlite3_bind_int64(st, 2, uid);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            /* Expunged: its body is still held for the sessions not yet told (expunge_one). */
            st = sq_stmt(s,
                         SQ_BLOB_SELECT(s, "FROM expunged e JOIN blobs b ON b.hash = e.blob"
                                           " WHERE e.mailbox_id = ? AND e.uid = ?"),
                         err);
            if (st == NULL)
                return -1;
            sqlite3_bind_int64(st, 1, row.id);
            sqlite3_bind_int64(st, 2, uid);
            rc = sqlite3_step(st);
            if (rc == SQLITE_DONE) {
                sqlite3_reset(st);
                return 1;
            }
        }
        if (rc != SQLITE_ROW)
            return sq_db_error(s, "read message", err);
        struct buf e = BUF_INIT;
        if (sq_blob_body(s, st, 0, out, &e) == 0) {
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

/* True when the space-separated list holds the keyword p[0..len) (case-insensitive, as IMAP). */
static bool keyword_in(const char *list, const char *p, size_t len)
{
    const char *q = list ? list : "";
    while (*q) {
        while (*q == ' ')
            q++;
        size_t qlen = strcspn(q, " ");
        if (qlen == len && len > 0 && strncasecmp(p, q, len) == 0)
            return true;
        q += qlen;
    }
    return false;
}

/* Appends the keywords of in to out (space-separated), skipping those in skip; no duplicates. */
static void keywords_merge(struct buf *out, const char *in, const char *skip)
{
    const char *p = in ? in : "";
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0)
            break;
        if (!keyword_in(skip, p, len) && !keyword_in(out->data, p, len)) {
            if (out->len)
                buf_append_byte(out, ' ');
            buf_append(out, p, len);
        }
        p += len;
    }
}

/* The flags and keywords a STORE leaves on a message. */
static void flags_apply(enum store_flags_op op, unsigned cur, const char *cur_kw, unsigned flags,
                        const char *kw, unsigned *new_r, struct buf *new_kw)
{
    buf_reset(new_kw);
    *new_r = cur;
    switch (op) {
    case STORE_FLAGS_REPLACE:
        *new_r = flags;
        keywords_merge(new_kw, kw, NULL);
        break;
    case STORE_FLAGS_ADD:
        *new_r = cur | flags;
        keywords_merge(new_kw, cur_kw, NULL);
        keywords_merge(new_kw, kw, NULL);
        break;
    case STORE_FLAGS_REMOVE:
        *new_r = cur & ~flags;
        keywords_merge(new_kw, cur_kw, kw);
        break;
    }
    *new_r &= 0x1f;
}

/* One message of a STORE (in the caller's write transaction). */
static int flags_one(struct store *s, int64_t mbid, uint32_t uid, enum store_flags_op op,
                     unsigned flags, const char *keywords, uint64_t unchangedsince,
                     struct store_flags_result *res, struct buf *kw, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(
        s, "SELECT modseq, flags, keywords FROM messages WHERE mailbox_id = ? AND uid = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, mbid);
    sqlite3_bind_int64(st, 2, uid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        *res = (struct store_flags_result){STORE_FLAGS_NO_UID, 0, 0};
        return 0;
    }
    if (rc != SQLITE_ROW)
        return sq_db_error(s, "flags", err);
    uint64_t modseq = (uint64_t)sqlite3_column_int64(st, 0);
    unsigned cur = (unsigned)sqlite3_column_int(st, 1);
    char *cur_kw = xstrdup((const char *)sqlite3_column_text(st, 2));
    sqlite3_reset(st);
    unsigned nf = cur;
    flags_apply(op, cur, cur_kw, flags, keywords, &nf, kw);
    bool same = nf == cur && strcmp(kw->data, cur_kw) == 0;
    free(cur_kw);
    *res = (struct store_flags_result){STORE_FLAGS_UNCHANGED, modseq, cur};
    if (unchangedsince != 0 && modseq > unchangedsince) {
        res->outcome = STORE_FLAGS_MODIFIED_SINCE;
        return 0;
    }
    if (same)
        return 0;
    if (sq_modseq_next(s, mbid, &modseq, err) != 0)
        return -1;
    st = sq_stmt(s,
                 "UPDATE messages SET flags = ?, keywords = ?, modseq = ?"
                 " WHERE mailbox_id = ? AND uid = ?",
                 err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int(st, 1, (int)nf);
    sqlite3_bind_text(st, 2, kw->data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)modseq);
    sqlite3_bind_int64(st, 4, mbid);
    sqlite3_bind_int64(st, 5, uid);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "flags", err);
    *res = (struct store_flags_result){STORE_FLAGS_CHANGED, modseq, nf};
    return 0;
}

int sq_message_flags(struct store *s, const char *owner, int64_t mailbox_id, const uint32_t *uids,
                     size_t n, enum store_flags_op op, unsigned flags, const char *keywords,
                     uint64_t unchangedsince, struct store_flags_result *results, struct buf *err)
{
    if (!store_keywords_ok(s, keywords, err) || sq_begin(s, true, err) != 0)
        return -1;
    struct mbrow row;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
    if (f != 0) {
        if (f == 1)
            buf_append_cstr(err, "no such mailbox");
        sq_rollback(s);
        return -1;
    }
    struct buf kw = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct store_flags_result res;
        rc = flags_one(s, row.id, uids[i], op, flags, keywords, unchangedsince, &res, &kw, err);
        if (results)
            results[i] = res;
    }
    buf_free(&kw);
    if (rc != 0) {
        sq_rollback(s);
        return -1;
    }
    return sq_commit(s, err);
}

int sq_message_set_cache(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                         struct slice structure, struct buf *err)
{
    struct mbrow row;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
    if (f != 0)
        return f;
    sqlite3_stmt *st = sq_stmt(s,
                               "UPDATE messages SET envelope = NULL, bodystructure = ?"
                               " WHERE mailbox_id = ? AND uid = ?",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_blob(st, 1, structure.ptr, (int)structure.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, row.id);
    sqlite3_bind_int64(st, 3, uid);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "cache", err);
}

/* Runs sql (a statement on one message: mailbox_id = ?, uid = ?, answering its blob and
 * size) and hands back both: 1 and *hash_r (the caller frees it), 0 if there is no such
 * message, -1 on error. */
static int blob_of_row(struct store *s, const char *sql, int64_t mbid, uint32_t uid, char **hash_r,
                       int64_t *size_r, const char *what, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, sql, err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, mbid);
    sqlite3_bind_int64(st, 2, uid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sq_db_error(s, what, err);
    *hash_r = xstrdup((const char *)sqlite3_column_text(st, 0));
    *size_r = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 1;
}

/* Expunges one message (in the caller's write transaction); *found_r false if absent. */
static int expunge_one(struct store *s, const char *owner, int64_t mbid, uint32_t uid,
                       bool *found_r, struct buf *err)
{
    char *hash;
    int64_t size;
    int r =
        blob_of_row(s, "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING blob, size",
                    mbid, uid, &hash, &size, "expunge", err);
    *found_r = r == 1;
    if (r != 1)
        return r;
    uint64_t modseq;
    bool hold = s->opt.expunge_hold > 0;
    r = sq_modseq_next(s, mbid, &modseq, err);
    if (r == 0 && !hold)
        r = sq_blob_unref(s, hash, err);
    if (r == 0)
        r = sq_quota_add(s, owner, -size, -1, err);
    /* The log row keeps the body's reference (hold) until sq_gc drops it. */
    sqlite3_stmt *st =
        r != 0 ? NULL
               : sq_stmt(s,
                         "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq, blob, at)"
                         " VALUES(?, ?, ?, ?, ?)",
                         err);
    if (st == NULL) {
        free(hash);
        return -1;
    }
    sqlite3_bind_int64(st, 1, mbid);
    sqlite3_bind_int64(st, 2, uid);
    sqlite3_bind_int64(st, 3, (int64_t)modseq);
    if (hold) {
        sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
    }
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "expunge log", err);
    sqlite3_reset(st);
    free(hash);
    return r;
}

/* Copies one message to mailbox to with UID new_uid (in the caller's write transaction). */
static int copy_one(struct store *s, const char *owner, int64_t from, uint32_t uid, int64_t to,
                    uint32_t new_uid, bool *found_r, struct buf *err)
{
    char *hash;
    int64_t size;
    int r = blob_of_row(s, "SELECT blob, size FROM messages WHERE mailbox_id = ? AND uid = ?", from,
                        uid, &hash, &size, "copy", err);
    *found_r = r == 1;
    if (r != 1)
        return r;
    uint64_t modseq;
    sqlite3_stmt *st;
    r = sq_modseq_next(s, to, &modseq, err);
    if (r == 0 && (st = sq_stmt(s,
                                "INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords,"
                                " internaldate, size, blob, envelope, bodystructure, search,"
                                " msgid, thread)"
                                " SELECT ?, ?, ?, flags, keywords, internaldate, size, blob,"
                                " envelope, bodystructure, search, msgid, thread FROM messages"
                                " WHERE mailbox_id = ? AND uid = ?",
                                err)) != NULL) {
        sqlite3_bind_int64(st, 1, to);
        sqlite3_bind_int64(st, 2, new_uid);
        sqlite3_bind_int64(st, 3, (int64_t)modseq);
        sqlite3_bind_int64(st, 4, from);
        sqlite3_bind_int64(st, 5, uid);
        r = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "copy", err);
    } else
        r = -1;
    if (r == 0 && (st = sq_stmt(s, "UPDATE blobs SET refs = refs + 1 WHERE hash = ?", err))) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        r = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "copy", err);
    } else if (r == 0)
        r = -1;
    if (r == 0 && (st = sq_stmt(s, "UPDATE mailboxes SET uidnext = ? WHERE id = ?", err))) {
        sqlite3_bind_int64(st, 1, (int64_t)new_uid + 1);
        sqlite3_bind_int64(st, 2, to);
        r = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "copy", err);
    } else if (r == 0)
        r = -1;
    free(hash);
    if (r == 0)
        r = sq_quota_add(s, owner, size, 1, err);
    return r;
}

int sq_message_copy_to(struct store *s, const char *owner, int64_t mailbox_id, const uint32_t *uids,
                       size_t n, const char *dest_owner, int64_t dest_id, bool move,
                       uint32_t *new_uids_r, struct buf *err)
{
    if (sq_begin(s, true, err) != 0)
        return -1;
    struct mbrow from, to;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &from, err);
    if (f == 0)
        f = sq_mailbox_find_id(s, dest_owner, dest_id, &to, err);
    if (f != 0) {
        if (f == 1)
            buf_append_cstr(err, "no such mailbox");
        sq_rollback(s);
        return -1;
    }
    /* MOVE into the same mailbox: RFC 6851 3.3 defines MOVE as COPY, then
     * expunging the sources; so, as in
     * Dovecot, each message gets a new UID. */
    uint32_t next = to.uidnext;
    for (size_t i = 0; i < n; i++) {
        bool found;
        if (copy_one(s, dest_owner, from.id, uids[i], to.id, next, &found, err) != 0 ||
            (found && move && expunge_one(s, owner, from.id, uids[i], &found, err) != 0)) {
            sq_rollback(s);
            return -1;
        }
        if (new_uids_r)
            new_uids_r[i] = found ? next : 0;
        if (found)
            next++;
    }
    return sq_commit(s, err);
}

int sq_message_expunge(struct store *s, const char *owner, int64_t mailbox_id, const uint32_t *uids,
                       size_t n, struct buf *err)
{
    if (sq_begin(s, true, err) != 0)
        return -1;
    struct mbrow row;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
    if (f != 0) {
        if (f == 1)
            buf_append_cstr(err, "no such mailbox");
        sq_rollback(s);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        bool found;
        if (expunge_one(s, owner, row.id, uids[i], &found, err) != 0) {
            sq_rollback(s);
            return -1;
        }
    }
    return sq_commit(s, err);
}

/* The expunge log of a mailbox past modseq, ascending UIDs. */
static int expunged_read(struct store *s, int64_t mbid, uint64_t modseq, uint32_t **uids_r,
                         size_t *n_r, struct buf *err)
{
    *uids_r = NULL;
    *n_r = 0;
    sqlite3_stmt *st = sq_stmt(
        s, "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, mbid);
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
        return sq_db_error(s, "expunge log", err);
    }
    *uids_r = v;
    *n_r = n;
    return 0;
}

int sq_expunged_since(struct store *s, const char *owner, int64_t mailbox_id, uint64_t modseq,
                      uint32_t **uids_r, size_t *n_r, struct buf *err)
{
    *uids_r = NULL;
    *n_r = 0;
    struct mbrow row;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
    if (f != 0) {
        if (f == 1)
            buf_append_cstr(err, "no such mailbox");
        return -1;
    }
    return expunged_read(s, row.id, modseq, uids_r, n_r, err);
}

static int uid_order(const void *a, const void *b)
{
    uint32_t x = ((const struct store_message *)a)->uid, y = ((const struct store_message *)b)->uid;
    return x < y ? -1 : x > y;
}

/*
 * since 0 walks the primary key (UID order); else the (mailbox_id, modseq)
 * index gives the few changed rows, sorted here: the cost follows the
 * changes, not the mailbox.
 */
static int changed_read(struct store *s, int64_t mbid, uint64_t since, struct store_changes *c,
                        struct buf *err)
{
    sqlite3_stmt *st =
        since == 0 ? sq_stmt(s,
                             "SELECT uid, modseq, flags, keywords, internaldate, size FROM messages"
                             " WHERE mailbox_id = ? ORDER BY uid",
                             err)
                   : sq_stmt(s,
                             "SELECT uid, modseq, flags, keywords, internaldate, size"
                             " FROM messages INDEXED BY messages_modseq"
                             " WHERE mailbox_id = ? AND modseq > ?",
                             err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, mbid);
    if (since != 0)
        sqlite3_bind_int64(st, 2, (int64_t)since);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->n == cap) {
            cap = cap ? cap * 2 : 16;
            c->msgs = xreallocarray(c->msgs, cap, sizeof(*c->msgs));
        }
        sq_message_row(st, &c->msgs[c->n++]);
    }
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "changes", err);
    if (since != 0 && c->n > 1)
        qsort(c->msgs, c->n, sizeof(*c->msgs), uid_order);
    return 0;
}

int sq_message_changes(struct store *s, const char *owner, int64_t mailbox_id, uint64_t since,
                       struct store_changes *c, struct buf *err)
{
    memset(c, 0, sizeof(*c));
    if (sq_begin(s, false, err) != 0)
        return -1;
    struct mbrow row;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
    if (f == 1)
        buf_append_cstr(err, "no such mailbox");
    int rc = f == 0 ? changed_read(s, row.id, since, c, err) : -1;
    if (rc == 0 && since != 0)
        rc = expunged_read(s, row.id, since, &c->expunged, &c->n_expunged, err);
    sq_rollback(s);
    if (rc != 0) {
        store_changes_free(c);
        return -1;
    }
    c->uidvalidity = row.uidvalidity;
    c->uidnext = row.uidnext;
    c->highestmodseq = row.highestmodseq;
    return 0;
}

/* INDEXED BY: each message's copies are one probe of messages_blob; a plan without it
 * would read every message of the account (an error instead, which a test would see). */
static const char sql_copies[] =
    "SELECT o.uid, m.mailbox_id, m.uid FROM messages o"
    " JOIN mailboxes ob ON ob.id = o.mailbox_id"
    " JOIN messages m INDEXED BY messages_blob ON m.blob = o.blob"
    " JOIN mailboxes b ON b.id = m.mailbox_id"
    " WHERE o.mailbox_id = ?1 AND o.uid BETWEEN ?2 AND ?3 AND ob.owner = ?4 AND b.owner = ?4"
    " AND (m.mailbox_id != o.mailbox_id OR m.uid != o.uid)"
    " ORDER BY o.uid, m.mailbox_id, m.uid";

int sq_message_copies(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                      uint32_t uid_max, struct store_copy **list_r, size_t *n_r, struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    if (sq_begin(s, false, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(s, sql_copies, err);
    if (st == NULL) {
        sq_rollback(s);
        return -1;
    }
    sqlite3_bind_int64(st, 1, mailbox_id);
    sqlite3_bind_int64(st, 2, uid_min);
    sqlite3_bind_int64(st, 3, uid_max);
    sqlite3_bind_text(st, 4, owner, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n_r == cap) {
            cap = cap ? cap * 2 : 8;
            *list_r = xreallocarray(*list_r, cap, sizeof(**list_r));
        }
        struct store_copy *c = &(*list_r)[(*n_r)++];
        c->uid = (uint32_t)sqlite3_column_int64(st, 0);
        c->mailbox_id = sqlite3_column_int64(st, 1);
        c->copy_uid = (uint32_t)sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "copies of a message", err);
        sq_rollback(s);
        free(*list_r);
        *list_r = NULL;
        *n_r = 0;
        return -1;
    }
    sq_rollback(s);
    return 0;
}
