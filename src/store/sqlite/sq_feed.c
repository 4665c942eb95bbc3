/*
 * sq_feed.c - the SQLite driver's outbound news feed queue (store_feed_* in
 * store.h): entries per peer and Message-ID, cursors per peer and folder.
 * Must never: move a cursor without queueing what it passed in the same
 * transaction, or drop an entry other than by store_feed_done.
 */
#include "base/alloc.h"
#include "store/sqlite/sq_int.h"

#include <stdlib.h>
#include <string.h>

int sq_feed_cursor(struct store *s, const char *peer, int64_t mailbox_id, uint32_t *uid_r,
                   struct buf *err)
{
    *uid_r = 0;
    sqlite3_stmt *st =
        sq_stmt(s, "SELECT uid FROM nntp_feed_cursor WHERE peer = ?1 AND mailbox_id = ?2", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, mailbox_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *uid_r = (uint32_t)sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        return sq_db_error(s, "feed cursor", err);
    sqlite3_reset(st);
    return 0;
}

int sq_feed_enqueue(struct store *s, const char *peer, int64_t mailbox_id, uint32_t cursor,
                    const struct store_feed_item *items, size_t n, struct buf *err)
{
    if (sq_begin(s, true, err) != 0)
        return -1;
    sqlite3_stmt *st = NULL;
    for (size_t i = 0; i < n; i++) {
        st = sq_stmt(s,
                     "INSERT OR IGNORE INTO nntp_feed_queue(peer, msgid, mailbox_id, uid, due)"
                     " VALUES(?1, ?2, ?3, ?4, ?5)",
                     err);
        if (st == NULL)
            goto fail;
        sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, items[i].msgid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, items[i].mailbox_id);
        sqlite3_bind_int64(st, 4, items[i].uid);
        sqlite3_bind_int64(st, 5, items[i].due);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto db_fail;
    }
    st = sq_stmt(s,
                 "INSERT INTO nntp_feed_cursor(peer, mailbox_id, uid) VALUES(?1, ?2, ?3)"
                 " ON CONFLICT(peer, mailbox_id) DO UPDATE SET uid = excluded.uid",
                 err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, mailbox_id);
    sqlite3_bind_int64(st, 3, cursor);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto db_fail;
    sqlite3_reset(st);
    return sq_commit(s, err);
db_fail:
    sq_db_error(s, "feed queue", err);
fail:
    if (st)
        sqlite3_reset(st);
    sq_rollback(s);
    return -1;
}

int sq_feed_pending(struct store *s, const char *peer, size_t max, struct store_feed_item **list_r,
                    size_t *n_r, uint64_t *total_r, struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    if (total_r) {
        sqlite3_stmt *c = sq_stmt(s, "SELECT COUNT(*) FROM nntp_feed_queue WHERE peer = ?1", err);
        if (c == NULL)
            return -1;
        sqlite3_bind_text(c, 1, peer, -1, SQLITE_STATIC);
        if (sqlite3_step(c) != SQLITE_ROW)
            return sq_db_error(s, "feed queue", err);
        *total_r = (uint64_t)sqlite3_column_int64(c, 0);
        sqlite3_reset(c);
    }
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT msgid, mailbox_id, uid, attempts, due FROM nntp_feed_queue"
                               " WHERE peer = ?1 ORDER BY due, mailbox_id, uid LIMIT ?2",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    struct store_feed_item *v = max ? xcalloc(max, sizeof(*v)) : NULL;
    size_t n = 0;
    int rc;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        v[n].msgid = sq_col_text(st, 0);
        v[n].mailbox_id = sqlite3_column_int64(st, 1);
        v[n].uid = (uint32_t)sqlite3_column_int64(st, 2);
        v[n].attempts = (uint32_t)sqlite3_column_int64(st, 3);
        v[n].due = sqlite3_column_int64(st, 4);
        n++;
    }
    if (n < max && rc != SQLITE_DONE) {
        store_feed_items_free(v, n);
        return sq_db_error(s, "feed queue", err);
    }
    sqlite3_reset(st);
    *list_r = v;
    *n_r = n;
    return 0;
}

int sq_feed_done(struct store *s, const char *peer, char *const *msgids, size_t n, struct buf *err)
{
    if (sq_begin(s, true, err) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st =
            sq_stmt(s, "DELETE FROM nntp_feed_queue WHERE peer = ?1 AND msgid = ?2", err);
        if (st == NULL) {
            sq_rollback(s);
            return -1;
        }
        sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, msgids[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            sq_db_error(s, "feed queue", err);
            sqlite3_reset(st);
            sq_rollback(s);
            return -1;
        }
    }
    return sq_commit(s, err);
}

int sq_feed_retry(struct store *s, const char *peer, const char *msgid, int64_t due,
                  struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "UPDATE nntp_feed_queue SET attempts = attempts + 1, due = ?3"
                               " WHERE peer = ?1 AND msgid = ?2",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, msgid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, due);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "feed queue", err);
}

int sq_pull_since(struct store *s, const char *peer, int64_t *since_r, struct buf *err)
{
    *since_r = 0;
    sqlite3_stmt *st = sq_stmt(s, "SELECT since FROM nntp_pull WHERE peer = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *since_r = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_db_error(s, "pull state", err);
}

int sq_pull_set(struct store *s, const char *peer, int64_t since, struct buf *err)
{
    sqlite3_stmt *st =
        sq_stmt(s, "INSERT OR REPLACE INTO nntp_pull(peer, since) VALUES(?, ?)", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "pull state", err);
}
