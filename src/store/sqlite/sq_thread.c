/*
 * sq_thread.c - JMAP threads (RFC 8621 3) in the SQLite driver: the thread
 * id each message row carries (messages.thread), given when a message is
 * stored (sq_deliver: delivery, APPEND, Email/import and Email/set create)
 * and kept by a copy or move, and the index that finds a thread from a
 * Message-ID (thread_ids).
 *
 * A new message joins a thread when one of its In-Reply-To, References or
 * Message-ID msg-ids is registered in the account with the same base
 * subject (RFC 5256 2.1), as Cyrus and Gmail do: a reply whose subject
 * changed starts a thread of its own, and so does a message with the same
 * subject and no references. The copies of one body in an account are one
 * Email and so share one thread. Ids come from meta 'thread_id_next' and are
 * never reused.
 * Must never: run outside the caller's write transaction, or look at
 * another account's rows.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>

/* Steps st (bound by the caller): 1 and *thread_r from its first row, 0 when none. */
static int one_thread(struct store *s, sqlite3_stmt *st, int64_t *thread_r, struct buf *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *thread_r = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, "thread", err);
}

/* 1 and *thread_r when a copy of the body is already in the account. */
static int thread_of_body(struct store *s, const char *owner, const char *hex, int64_t *thread_r,
                          struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT m.thread FROM messages m JOIN mailboxes b"
                               " ON b.id = m.mailbox_id WHERE m.blob = ? AND b.owner = ?"
                               " AND m.thread != 0 LIMIT 1",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    return one_thread(s, st, thread_r, err);
}

static int thread_of_msgid(struct store *s, const char *owner, const char *msgid,
                           const char *subject, int64_t *thread_r, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(
        s, "SELECT thread FROM thread_ids WHERE owner = ? AND msgid = ? AND subject = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, msgid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
    return one_thread(s, st, thread_r, err);
}

static int register_msgid(struct store *s, const char *owner, const char *msgid,
                          const char *subject, int64_t thread, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "INSERT OR IGNORE INTO thread_ids(owner, msgid, subject, thread)"
                               " VALUES(?, ?, ?, ?)",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, msgid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, thread);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "thread", err);
}

int sq_thread_assign(struct store *s, const char *owner, const char *hex,
                     const struct mime_thread_keys *k, int64_t *thread_r, struct buf *err)
{
    int64_t t = 0;
    int f = thread_of_body(s, owner, hex, &t, err);
    if (f != 0) {
        *thread_r = t;
        return f < 0 ? -1 : 0;
    }
    const char *subject = k->subject ? k->subject : "";
    for (size_t i = 0; i < k->n_refs && f == 0; i++)
        f = thread_of_msgid(s, owner, k->refs[i], subject, &t, err);
    if (f == 0 && k->msgid)
        f = thread_of_msgid(s, owner, k->msgid, subject, &t, err);
    if (f < 0)
        return -1;
    if (f == 0) {
        t = sq_meta_get(s, "thread_id_next", err);
        if (t <= 0 || sq_meta_set(s, "thread_id_next", t + 1, err) != 0)
            return -1;
    }
    if (k->msgid && register_msgid(s, owner, k->msgid, subject, t, err) != 0)
        return -1;
    for (size_t i = 0; i < k->n_refs; i++)
        if (register_msgid(s, owner, k->refs[i], subject, t, err) != 0)
            return -1;
    *thread_r = t;
    return 0;
}

struct row {
    char *owner;
    int64_t mailbox_id;
    uint32_t uid;
    char blob[65];
};

int sq_thread_backfill(struct store *s, struct buf *err)
{
    /* the messages stored before threads existed, in the order they came */
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT b.owner, m.mailbox_id, m.uid, m.blob FROM messages m"
                               " JOIN mailboxes b ON b.id = m.mailbox_id WHERE m.thread = 0"
                               " ORDER BY m.internaldate, m.mailbox_id, m.uid",
                               err);
    if (st == NULL)
        return -1;
    struct row *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        struct row *r = &v[n++];
        memset(r, 0, sizeof(*r));
        r->owner = sq_col_text(st, 0);
        r->mailbox_id = sqlite3_column_int64(st, 1);
        r->uid = (uint32_t)sqlite3_column_int64(st, 2);
        const unsigned char *h = sqlite3_column_text(st, 3);
        if (h)
            memcpy(r->blob, h, strnlen((const char *)h, 64));
    }
    sqlite3_reset(st);
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "thread backfill", err);
    struct buf data = BUF_INIT;
    for (size_t i = 0; i < n && result == 0; i++) {
        struct mime_thread_keys k = {0};
        int64_t t;
        /* a body that cannot be read (damaged segment) gets a thread of its own */
        struct buf ignored = BUF_INIT;
        if (sq_message_read(s, v[i].owner, v[i].mailbox_id, v[i].uid, &data, &ignored) == 0) {
            struct mime_message msg;
            mime_parse(&msg, buf_slice(&data), NULL);
            mime_thread_keys_build(&msg, &k);
            mime_message_free(&msg);
        }
        buf_free(&ignored);
        result = sq_thread_assign(s, v[i].owner, v[i].blob, &k, &t, err);
        mime_thread_keys_free(&k);
        if (result == 0 && (st = sq_stmt(s,
                                         "UPDATE messages SET thread = ?"
                                         " WHERE mailbox_id = ? AND uid = ?",
                                         err)) != NULL) {
            sqlite3_bind_int64(st, 1, t);
            sqlite3_bind_int64(st, 2, v[i].mailbox_id);
            sqlite3_bind_int64(st, 3, v[i].uid);
            result = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "thread backfill", err);
        } else if (result == 0)
            result = -1;
    }
    buf_free(&data);
    for (size_t i = 0; i < n; i++)
        free(v[i].owner);
    free(v);
    return result;
}
