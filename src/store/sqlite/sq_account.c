/*
 * sq_account.c - the account as JMAP sees it (SQLite driver): the copies of
 * every mailbox of an account, what changed or went after an account state
 * (the state columns and the *_gone tables the 5 -> 6 migration's triggers
 * keep), and uploads: bodies a client sent before any message refers to them.
 *
 * Reads only what the triggers wrote; never writes a state itself. An
 * upload holds one blob reference until sq_uploads_expire drops it.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * One statement per form, not one with "(?2 IS NULL OR m.blob = ?2)": SQLite
 * plans a prepared statement once, and that OR kept it from the
 * messages_blob index, so each Email/get of one Email read the whole account.
 * (SQLite allows a parameter the statement does not use to be bound: ?2, ?3
 * below ?4.)
 */
#define SQL_MESSAGES                                                                               \
    "SELECT m.uid, m.modseq, m.flags, m.keywords, m.internaldate, m.size, m.blob,"                 \
    " m.mailbox_id, m.state, m.created_state, CASE WHEN ?4 THEN m.bodystructure END, m.thread"     \
    " FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id WHERE b.owner = ?1"
static const char sql_messages_all[] = SQL_MESSAGES " ORDER BY m.mailbox_id, m.uid";
static const char sql_messages_since[] =
    SQL_MESSAGES " AND m.state > ?3 ORDER BY m.mailbox_id, m.uid";
static const char sql_messages_blob[] =
    SQL_MESSAGES " AND m.blob = ?2 AND m.state > ?3 ORDER BY m.mailbox_id, m.uid";

int sq_account_messages(struct store *s, const char *owner, const char *blob, uint64_t since,
                        bool with_structure, struct store_account_message **list_r, size_t *n_r,
                        struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    sqlite3_stmt *st = sq_stmt(s,
                               blob    ? sql_messages_blob
                               : since ? sql_messages_since
                                       : sql_messages_all,
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    if (blob)
        sqlite3_bind_text(st, 2, blob, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)since);
    sqlite3_bind_int(st, 4, with_structure);
    struct store_account_message *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        struct store_account_message *a = &v[n++];
        memset(a, 0, sizeof(*a));
        struct store_message *m = &a->m;
        sq_message_row(st, m);
        if (m->keywords[0] == '\0') { /* freed at once: the next row's string reuses it */
            free(m->keywords);
            m->keywords = NULL;
        }
        const unsigned char *h = sqlite3_column_text(st, 6);
        if (h)
            memcpy(m->blob, h, strnlen((const char *)h, 64));
        a->mailbox_id = sqlite3_column_int64(st, 7);
        a->state = (uint64_t)sqlite3_column_int64(st, 8);
        a->created_state = (uint64_t)sqlite3_column_int64(st, 9);
        a->thread = sqlite3_column_int64(st, 11);
        if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
            m->structure_len = (size_t)sqlite3_column_bytes(st, 10);
            m->structure = xmalloc(m->structure_len ? m->structure_len : 1);
            if (m->structure_len)
                memcpy(m->structure, sqlite3_column_blob(st, 10), m->structure_len);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        store_account_messages_free(v, n);
        return sq_db_error(s, "account messages", err);
    }
    *list_r = v;
    *n_r = n;
    return 0;
}

/* INDEXED BY: the plan must not fall back to the message rows (an error instead, which a
 * test would see, if the index were gone) */
static const char sql_account_dates[] =
    "SELECT m.uid, m.flags, m.keywords, m.internaldate, m.blob, m.mailbox_id, m.created_state,"
    " m.thread FROM mailboxes b JOIN messages m INDEXED BY messages_date ON m.mailbox_id = b.id"
    " WHERE b.owner = ?1 ORDER BY m.mailbox_id, m.internaldate";

int sq_account_dates(struct store *s, const char *owner, store_account_row_fn *row, void *ctx,
                     struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, sql_account_dates, err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    struct store_account_message a;
    memset(&a, 0, sizeof(a));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        a.m.uid = (uint32_t)sqlite3_column_int64(st, 0);
        a.m.flags = (unsigned)sqlite3_column_int(st, 1);
        const unsigned char *kw = sqlite3_column_text(st, 2);
        a.m.keywords = kw && kw[0] ? (char *)kw : NULL; /* SQLite's until the next step */
        a.m.internaldate = sqlite3_column_int64(st, 3);
        const unsigned char *h = sqlite3_column_text(st, 4);
        memset(a.m.blob, 0, sizeof(a.m.blob));
        if (h)
            memcpy(a.m.blob, h, strnlen((const char *)h, 64));
        a.mailbox_id = sqlite3_column_int64(st, 5);
        a.created_state = (uint64_t)sqlite3_column_int64(st, 6);
        a.thread = sqlite3_column_int64(st, 7);
        row(ctx, &a);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "account dates", err);
    return 0;
}

/* The (id, state) rows of sql (owner, since bound) appended to the lists; SQLite's last code. */
static int gone_ids(struct store *s, const char *sql, const char *owner, uint64_t since,
                    int64_t **ids, uint64_t **states, size_t *n, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, sql, err);
    if (st == NULL)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)since);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *ids = xreallocarray(*ids, *n + 1, sizeof(**ids));
        *states = xreallocarray(*states, *n + 1, sizeof(**states));
        (*states)[*n] = (uint64_t)sqlite3_column_int64(st, 1);
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    return rc;
}

int sq_account_gone(struct store *s, const char *owner, uint64_t since,
                    struct store_account_gone *g, struct buf *err)
{
    memset(g, 0, sizeof(*g));
    if (sq_begin(s, false, err) != 0)
        return -1;
    int rc = gone_ids(s,
                      "SELECT id, state FROM mailboxes_gone WHERE owner = ? AND state > ?"
                      " ORDER BY id",
                      owner, since, &g->mailboxes, &g->mailbox_states, &g->n_mailboxes, err);
    if (rc == SQLITE_DONE) {
        sqlite3_stmt *st = sq_stmt(
            s, "SELECT hash, state FROM emails_gone WHERE owner = ? AND state > ? ORDER BY hash",
            err);
        rc = SQLITE_ERROR;
        if (st) {
            sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, (int64_t)since);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                g->blobs = xreallocarray(g->blobs, g->n_blobs + 1, sizeof(*g->blobs));
                memset(g->blobs[g->n_blobs], 0, sizeof(g->blobs[0]));
                const unsigned char *h = sqlite3_column_text(st, 0);
                if (h)
                    memcpy(g->blobs[g->n_blobs], h, strnlen((const char *)h, 64));
                g->blob_states = xreallocarray(g->blob_states, g->n_blobs + 1, sizeof(uint64_t));
                g->blob_states[g->n_blobs++] = (uint64_t)sqlite3_column_int64(st, 1);
            }
        }
    }
    if (rc == SQLITE_DONE)
        rc = gone_ids(s,
                      "SELECT thread, state FROM threads_touched WHERE owner = ? AND state > ?"
                      " ORDER BY thread",
                      owner, since, &g->threads, &g->thread_states, &g->n_threads, err);
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "account changes", err);
    sq_rollback(s);
    if (result != 0)
        store_account_gone_free(g);
    return result;
}

int sq_upload(struct store *s, const char *owner, struct slice data, char hash_r[65],
              struct buf *err)
{
    blob_hash_hex(data, hash_r);
    if (sq_begin(s, true, err) != 0)
        return -1;
    int64_t seg;
    sqlite3_stmt *st = NULL;
    if (sq_current_segment(s, &seg, err) != 0)
        goto rollback;
    st = sq_stmt(s, "UPDATE uploads SET at = ? WHERE owner = ? AND hash = ?", err);
    if (st == NULL)
        goto rollback;
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash_r, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        sq_db_error(s, "upload", err);
        goto rollback;
    }
    if (sqlite3_changes(sq(s)->db) == 0) {
        /* a new upload of this owner: it holds a reference of its own */
        if (sq_blob_ref(s, data, hash_r, seg, data.len <= s->opt.inline_max, err) != 0)
            goto rollback;
        st = sq_stmt(s, "INSERT INTO uploads(owner, hash, at) VALUES(?, ?, ?)", err);
        if (st == NULL)
            goto rollback;
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hash_r, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
        if (sqlite3_step(st) != SQLITE_DONE) {
            sq_db_error(s, "upload", err);
            goto rollback;
        }
    }
    if (blob_sync(&sq(s)->blobs, err) != 0)
        goto rollback;
    if (sq_commit(s, err) != 0) {
        blob_release(&sq(s)->blobs);
        return -1;
    }
    return 0;
rollback:
    sq_rollback(s);
    blob_release(&sq(s)->blobs);
    return -1;
}

int sq_uploads_expire(struct store *s, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "DELETE FROM uploads WHERE at <= ? RETURNING hash", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL) - STORE_UPLOAD_HOLD);
    return sq_unref_rows(s, st, "uploads", err);
}

int sq_account_blob_read(struct store *s, const char *owner, const char *hash, struct buf *out,
                         struct buf *err)
{
    buf_reset(out);
    sqlite3_stmt *st = sq_stmt(
        s,
        SQ_BLOB_SELECT(s, "FROM blobs b WHERE b.hash = ?2 AND ("
                          " EXISTS(SELECT 1 FROM uploads u WHERE u.owner = ?1 AND u.hash = ?2) OR"
                          " EXISTS(SELECT 1 FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id"
                          "  WHERE m.blob = ?2 AND x.owner = ?1))"),
        err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 1;
    if (rc != SQLITE_ROW)
        return sq_db_error(s, "blob", err);
    return sq_blob_body(s, st, 0, out, err);
}
