/*
 * sq_record.c - the search records of the SQLite driver (see
 * sq_message_records in store.h): read for a whole mailbox in one
 * statement, and written for messages stored before records existed; and
 * the Message-ID index derived from them (messages.msgid, store_msgid_find).
 * The record's bytes are the MIME layer's (mime_cache_record); this file
 * reads only their Message-ID, through mime_cache_record_msgid. Must never:
 * change a MODSEQ (a record is not a change a client sees).
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>

int sq_message_records(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                       struct store_records *r, struct buf *err)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->data);
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
    sqlite3_stmt *st = sq_stmt(
        s, "SELECT uid, search FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid", err);
    if (st == NULL) {
        sq_rollback(s);
        return -1;
    }
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, uid_min);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->n == cap) {
            cap = cap ? cap * 2 : 256;
            r->v = xreallocarray(r->v, cap, sizeof(*r->v));
        }
        struct store_record *e = &r->v[r->n++];
        e->uid = (uint32_t)sqlite3_column_int64(st, 0);
        e->off = r->data.len;
        e->len = 0;
        e->present = sqlite3_column_type(st, 1) != SQLITE_NULL;
        if (e->present) {
            const void *b = sqlite3_column_blob(st, 1);
            e->len = (size_t)sqlite3_column_bytes(st, 1);
            buf_append(&r->data, b, e->len);
        }
    }
    sq_rollback(s);
    if (rc != SQLITE_DONE) {
        store_records_free(r);
        buf_printf(err, "store: list search records failed");
        return -1;
    }
    return 0;
}

int sq_message_set_records(struct store *s, const char *owner, int64_t mailbox_id,
                           const uint32_t *uids, const struct slice *recs, size_t n,
                           struct buf *err)
{
    if (n == 0)
        return 0;
    if (sq_begin(s, true, err) != 0)
        return -1;
    struct mbrow row;
    int f = sq_mailbox_find_id(s, owner, mailbox_id, &row, err);
    if (f != 0) {
        sq_rollback(s);
        return f; /* 1: the mailbox went meanwhile */
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = sq_stmt(
            s, "UPDATE messages SET search = ?, msgid = ? WHERE mailbox_id = ? AND uid = ?", err);
        if (st == NULL) {
            sq_rollback(s);
            return -1;
        }
        struct slice id;
        sqlite3_bind_blob(st, 1, recs[i].ptr, (int)recs[i].len, SQLITE_STATIC);
        if (mime_cache_record_msgid(recs[i], &id))
            sqlite3_bind_text(st, 2, id.ptr, (int)id.len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, row.id);
        sqlite3_bind_int64(st, 4, uids[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sq_db_error(s, "search record", err);
            sq_rollback(s);
            return -1;
        }
    }
    return sq_commit(s, err);
}

int sq_msgid_find(struct store *s, const char *owner, struct slice msgid,
                  struct store_msgid_hit **list_r, size_t *n_r, struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    if (sq_begin(s, false, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT m.mailbox_id, m.uid FROM messages m JOIN mailboxes b"
                               " ON b.id = m.mailbox_id WHERE m.msgid = ? AND b.owner = ?"
                               " ORDER BY m.mailbox_id, m.uid",
                               err);
    if (st == NULL) {
        sq_rollback(s);
        return -1;
    }
    sqlite3_bind_text(st, 1, msgid.ptr, (int)msgid.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n_r == cap) {
            cap = cap ? cap * 2 : 4;
            *list_r = xreallocarray(*list_r, cap, sizeof(**list_r));
        }
        (*list_r)[*n_r].mailbox_id = sqlite3_column_int64(st, 0);
        (*list_r)[(*n_r)++].uid = (uint32_t)sqlite3_column_int64(st, 1);
    }
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "message-id lookup", err);
        sq_rollback(s);
        free(*list_r);
        *list_r = NULL;
        *n_r = 0;
        return -1;
    }
    sq_rollback(s);
    return 0;
}

int sq_msgid_held(struct store *s, const char *owner, struct slice msgid, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT 1 FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                               " WHERE m.msgid = ? AND b.owner = ? LIMIT 1",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, msgid.ptr, (int)msgid.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, "message-id lookup", err);
}

/* wharf_record_msgid(search): the record's Message-ID, or NULL. */
static void record_msgid_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    struct slice rec =
        slice_make(sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]));
    struct slice id;
    if (rec.ptr != NULL && mime_cache_record_msgid(rec, &id))
        sqlite3_result_text(ctx, id.ptr, (int)id.len, SQLITE_TRANSIENT);
    else
        sqlite3_result_null(ctx);
}

int sq_msgid_register(struct store *s, struct buf *err)
{
    if (sqlite3_create_function_v2(sq(s)->db, "wharf_record_msgid", 1,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, record_msgid_fn, NULL,
                                   NULL, NULL) != SQLITE_OK)
        return sq_db_error(s, "register wharf_record_msgid", err);
    return 0;
}
