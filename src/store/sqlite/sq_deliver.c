/*
 * sq_deliver.c - group-committed delivery, blob garbage collection and
 * the exactly-once records of the SQLite driver.
 *
 * sq_deliver() is the one write path for new messages. Order, inside one
 * BEGIN IMMEDIATE (the write lock, which also serialises segment appends
 * between processes):
 *   1. each distinct new body is appended to the current segment once;
 *   2. rows: thread (sq_thread.c), blob (refs), message (UID = uidnext, new
 *      MODSEQ), quota, dedupe;
 *   3. ONE fdatasync of the segment (blob_sync)      <- "blob-synced"
 *   4. COMMIT (SQLite fsyncs the WAL once)            <- "committed"
 * A crash before 4 leaves bodies no row names (reclaimed by sq_gc) and no
 * message; a crash after 4 leaves a complete message. Never refers to a body
 * that is not yet durable. The bodies of a batch of at most
 * store_options.inline_max bytes in all are not appended but kept in the
 * database (segment -1; a blob_bodies row, blobs.offset its id, schema 18):
 * they become durable with the rows that name them, at 4, and such a batch
 * only has step 4's sync.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"
#include "mime/mime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int sq_current_segment(struct store *s, int64_t *seg_r, struct buf *err)
{
    int64_t seg = sq_meta_get(s, "segment_current", err);
    if (seg < 0)
        return -1;
    if (blob_segment_size(&sq(s)->blobs, seg) >= s->opt.segment_size) {
        seg++;
        if (sq_meta_set(s, "segment_current", seg, err) != 0)
            return -1;
    }
    *seg_r = seg;
    return 0;
}

/* 1 when (dedupe_id, owner) was delivered already. */
static int dedupe_seen(struct store *s, const char *id, const char *owner, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM delivered WHERE dedupe_id = ? AND owner = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, "dedupe", err);
}

int sq_blob_ref(struct store *s, struct slice data, const char *hex, int64_t seg, bool in_row,
                struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "UPDATE blobs SET refs = refs + 1 WHERE hash = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "blob", err);
    if (sqlite3_changes(sq(s)->db) == 1)
        return 0;
    if (in_row && sq(s)->blob_rows) {
        /* in the database: durable with this transaction's commit, no segment sync; in a
         * rowid table of its own, appended, never read by a lookup of blobs */
        st = sq_stmt(s, "INSERT INTO blob_bodies(body) VALUES(?)", err);
        if (st == NULL)
            return -1;
        sqlite3_bind_blob64(st, 1, data.len ? data.ptr : "", (sqlite3_uint64)data.len,
                            SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            return sq_db_error(s, "blob", err);
        int64_t id = sqlite3_last_insert_rowid(sq(s)->db);
        st = sq_stmt(
            s, "INSERT INTO blobs(hash, segment, offset, size, refs) VALUES(?, -1, ?, ?, 1)", err);
        if (st == NULL)
            return -1;
        sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        sqlite3_bind_int64(st, 3, (int64_t)data.len);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "blob", err);
    }
    if (in_row && sq(s)->blob_body) {
        /* in the row: durable with this transaction's commit, no segment sync */
        st = sq_stmt(s,
                     "INSERT INTO blobs(hash, segment, offset, size, refs, body)"
                     " VALUES(?, -1, 0, ?, 1, ?)",
                     err);
        if (st == NULL)
            return -1;
        sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)data.len);
        sqlite3_bind_blob64(st, 3, data.len ? data.ptr : "", (sqlite3_uint64)data.len,
                            SQLITE_STATIC);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "blob", err);
    }
    uint64_t off;
    if (blob_append(&sq(s)->blobs, seg, data, hex, &off, err) != 0)
        return -1;
    st = sq_stmt(s, "INSERT INTO blobs(hash, segment, offset, size, refs) VALUES(?, ?, ?, ?, 1)",
                 err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seg);
    sqlite3_bind_int64(st, 3, (int64_t)off);
    sqlite3_bind_int64(st, 4, (int64_t)data.len);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "blob", err);
}

int sq_blob_body(struct store *s, sqlite3_stmt *st, int col, struct buf *out, struct buf *err)
{
    int64_t seg = sqlite3_column_int64(st, col);
    uint64_t off = (uint64_t)sqlite3_column_int64(st, col + 1);
    uint64_t size = (uint64_t)sqlite3_column_int64(st, col + 2);
    if (seg < 0) {
        const void *p = sqlite3_column_blob(st, col + 3);
        size_t n = (size_t)sqlite3_column_bytes(st, col + 3);
        buf_reset(out);
        if (n != size) {
            sqlite3_reset(st);
            buf_printf(err, "store: a body kept in its row has %zu bytes, not %llu", n,
                       (unsigned long long)size);
            errno = EIO;
            return -1;
        }
        buf_append(out, p, n);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    return blob_read(&sq(s)->blobs, seg, off, size, out, err);
}

static int over_quota(struct store *s, const struct store_target *t, size_t size, int *over_r,
                      struct buf *err)
{
    *over_r = 0;
    if (t->quota_bytes == 0 && t->quota_messages == 0)
        return 0;
    uint64_t bytes, messages;
    if (sq_quota_usage(s, t->owner, &bytes, &messages, err) != 0)
        return -1;
    if ((t->quota_bytes && bytes + size > t->quota_bytes) ||
        (t->quota_messages && messages + 1 > t->quota_messages))
        *over_r = 1;
    return 0;
}

static int deliver_target(struct store *s, struct store_delivery *d, struct store_target *t,
                          const char *hex, struct mime_cache *c, struct slice msgid, int64_t seg,
                          bool in_row, int64_t now, struct buf *err)
{
    t->status = STORE_FAILED;
    t->uid = 0;
    t->stored_in = NULL;
    if (d->dedupe_id) {
        int seen = dedupe_seen(s, d->dedupe_id, t->owner, err);
        if (seen < 0)
            return -1;
        if (seen) {
            t->status = STORE_DUPLICATE;
            return 0;
        }
    }
    if (sq_account_ensure(s, t->owner, err) != 0)
        return -1;
    struct mbrow row;
    int f = 1;
    struct buf canon = BUF_INIT;
    struct buf ignored = BUF_INIT;
    if (t->mailbox && store_name_check(s, t->mailbox, &canon, &ignored) == 0)
        f = sq_mailbox_find(s, t->owner, canon.data, &row, err);
    buf_free(&canon);
    buf_free(&ignored);
    if (f < 0)
        return -1;
    if (f == 1 && t->must_exist && t->mailbox) {
        t->status = STORE_NO_MAILBOX;
        return 0;
    }
    t->stored_in = f == 0 ? t->mailbox : STORE_INBOX;
    if (f == 1) {
        f = sq_mailbox_find(s, t->owner, STORE_INBOX, &row, err);
        if (f != 0) {
            if (f == 1)
                buf_printf(err, "store: %s has no INBOX", t->owner);
            return -1;
        }
    }
    int over;
    if (over_quota(s, t, d->data.len, &over, err) != 0)
        return -1;
    if (over) {
        t->status = STORE_OVER_QUOTA;
        return 0;
    }
    uint32_t uid = row.uidnext;
    if (t->want_uid != 0) {
        if (t->want_uid < row.uidnext || t->want_uid == UINT32_MAX) {
            buf_printf(err, "store: UID %u is below UIDNEXT %u of %s", t->want_uid, row.uidnext,
                       t->stored_in);
            return -1;
        }
        uid = t->want_uid;
    }
    uint64_t modseq;
    int64_t thread;
    if (sq_thread_assign(s, t->owner, hex, &c->thread, &thread, err) != 0 ||
        sq_blob_ref(s, d->data, hex, seg, in_row, err) != 0 ||
        sq_modseq_next(s, row.id, &modseq, err) != 0)
        return -1;
    sqlite3_stmt *st =
        sq_stmt(s, "UPDATE mailboxes SET uidnext = ?3 + 1 WHERE id = ?1 AND uidnext = ?2", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, row.uidnext);
    sqlite3_bind_int64(st, 3, uid);
    if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(sq(s)->db) != 1)
        return sq_db_error(s, "uidnext", err);
    st = sq_stmt(s,
                 "INSERT INTO messages(mailbox_id, uid, modseq, flags, keywords, internaldate,"
                 " size, blob, envelope, bodystructure, search, msgid, thread)"
                 " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, row.id);
    sqlite3_bind_int64(st, 2, uid);
    sqlite3_bind_int64(st, 3, (int64_t)modseq);
    sqlite3_bind_int(st, 4, (int)(d->flags & 0x1f));
    sqlite3_bind_text(st, 5, d->keywords ? d->keywords : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, d->internaldate ? d->internaldate : now);
    sqlite3_bind_int64(st, 7, (int64_t)d->data.len);
    sqlite3_bind_text(st, 8, hex, -1, SQLITE_STATIC);
    sqlite3_bind_null(st, 9); /* IMAP text of older versions */
    sqlite3_bind_blob(st, 10, c->structure.data, (int)c->structure.len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 11, c->record.data, (int)c->record.len, SQLITE_STATIC);
    if (msgid.ptr)
        sqlite3_bind_text(st, 12, msgid.ptr, (int)msgid.len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 12);
    sqlite3_bind_int64(st, 13, thread);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "insert message", err);
    if (sq_quota_add(s, t->owner, (int64_t)d->data.len, 1, err) != 0)
        return -1;
    if (d->dedupe_id) {
        st = sq_stmt(s, "INSERT INTO delivered(dedupe_id, owner, at) VALUES(?, ?, ?)", err);
        if (st == NULL)
            return -1;
        sqlite3_bind_text(st, 1, d->dedupe_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        if (sqlite3_step(st) != SQLITE_DONE)
            return sq_db_error(s, "dedupe", err);
    }
    t->uid = uid;
    t->uidvalidity = row.uidvalidity;
    t->status = STORE_OK;
    return 0;
}

int sq_deliver(struct store *s, struct store_delivery *d, size_t n, struct buf *err)
{
    int64_t now = (int64_t)time(NULL);
    int64_t seg = -1;
    /* parsed once, outside the write lock: ENVELOPE, BODYSTRUCTURE and the
     * search record are never computed again for these messages */
    struct mime_cache *cache = xcalloc(n ? n : 1, sizeof(*cache));
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        mime_cache_build(d[i].data, NULL, &cache[i]);
        bytes += d[i].data.len;
    }
    /* a small batch (a lone poster's article) pays one sync, in the commit; a large
     * one shares the segment's fdatasync and keeps its bodies out of the WAL */
    bool in_row = bytes <= s->opt.inline_max;
    int rc = -1;
    if (sq_begin(s, true, err) != 0)
        goto failed;
    /* bodies kept in blob_bodies rows name no segment: no look at the segment file (a
     * stat) or its meta row for a lone poster's commit */
    if ((!in_row || !sq(s)->blob_rows) && sq_current_segment(s, &seg, err) != 0)
        goto rollback;
    for (size_t i = 0; i < n; i++) {
        if (!store_keywords_ok(s, d[i].keywords, err))
            goto rollback;
        char hex[BLOB_HASH_HEX];
        blob_hash_hex(d[i].data, hex);
        struct slice msgid = SLICE_NULL;
        if (!mime_cache_record_msgid(buf_slice(&cache[i].record), &msgid))
            msgid = SLICE_NULL;
        /* unique_msgid: every target checked before any is stored (one cross-post) */
        for (size_t k = 0; k < d[i].n_targets; k++) {
            struct store_target *t = &d[i].targets[k];
            t->status = STORE_FAILED;
            t->uid = 0;
            t->stored_in = NULL;
            if (d[i].unique_msgid && msgid.ptr) {
                int held = sq_msgid_held(s, t->owner, msgid, err);
                if (held < 0)
                    goto rollback;
                if (held)
                    t->status = STORE_DUPLICATE;
            }
        }
        for (size_t k = 0; k < d[i].n_targets; k++)
            if (d[i].targets[k].status != STORE_DUPLICATE &&
                deliver_target(s, &d[i], &d[i].targets[k], hex, &cache[i], msgid, seg, in_row, now,
                               err) != 0)
                goto rollback;
    }
    if (blob_sync(&sq(s)->blobs, err) != 0)
        goto rollback;
    store_fault_point("blob-synced");
    if (sq_commit(s, err) != 0)
        goto failed;
    store_fault_point("committed");
    rc = 0;
    goto done;
rollback:
    sq_rollback(s);
failed:
    blob_release(&sq(s)->blobs); /* what was appended is dead space now, for sq_gc */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d[i].n_targets; k++)
            d[i].targets[k].status = STORE_FAILED;
done:
    for (size_t i = 0; i < n; i++)
        mime_cache_free(&cache[i]);
    free(cache);
    return rc;
}
