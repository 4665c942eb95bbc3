/*
 * store_record.c - the search records of the SQLite driver (see
 * sq_message_records in store.h): read for a whole mailbox in one
 * statement, and written for messages stored before records existed.
 * The record's bytes are the MIME layer's (mime_cache_record); this file
 * never looks inside them. Must never: change a MODSEQ (a record is not a
 * change a client sees).
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"

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
        sqlite3_stmt *st =
            sq_stmt(s, "UPDATE messages SET search = ? WHERE mailbox_id = ? AND uid = ?", err);
        if (st == NULL) {
            sq_rollback(s);
            return -1;
        }
        sqlite3_bind_blob(st, 1, recs[i].ptr, (int)recs[i].len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, row.id);
        sqlite3_bind_int64(st, 3, uids[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sq_db_error(s, "search record", err);
            sq_rollback(s);
            return -1;
        }
    }
    return sq_commit(s, err);
}
