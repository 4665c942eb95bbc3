/*
 * sq_text.c - the SQLite driver's full-text index (store_text_search):
 * an FTS5 table with the trigram tokenizer, one row per body.
 *
 * text_docs maps a body's hash to its row of text_index; a trigger of the
 * schema deletes both with the body's blobs row, so the index lives exactly
 * as long as the body. The row is written in the delivery's transaction
 * (sq_deliver), from the mime_cache the delivery built anyway: a message is
 * searchable the moment it is committed. A search is one MATCH of the
 * quoted text (trigram: a case-insensitive substring match for 3 or more
 * characters) joined to the messages of the account or mailbox. Must never:
 * index anything but a body that a blobs row holds, or be asked for text
 * store_text_indexed refuses (store.c filters it).
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>

/* The columns of text_index, in enum store_text_field's bit order. */
static const char *const columns[] = {"subject", "from_", "to_", "cc", "bcc", "header", "body"};
/* The record's field of each of the first five columns. */
static const char *const record_names[] = {"subject", "from", "to", "cc", "bcc"};

int sq_text_add(struct store *s, const char *hex, const struct mime_cache *c, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "INSERT OR IGNORE INTO text_docs(hash) VALUES(?)", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "text index", err);
    if (sqlite3_changes(sq(s)->db) == 0)
        return 0; /* indexed already: another copy of the body */
    int64_t id = sqlite3_last_insert_rowid(sq(s)->db);
    struct buf f[5];
    for (size_t i = 0; i < 5; i++)
        buf_init(&f[i]);
    struct slice rec = buf_slice(&c->record), name, value;
    if (rec.len > 0) {
        struct slice rest = slice_make(rec.ptr + 1, rec.len - 1);
        while (mime_cache_record_next(&rest, &name, &value))
            for (size_t i = 0; i < 5; i++)
                if (slice_eq_cstr_nocase(name, record_names[i])) {
                    buf_append_slice(&f[i], value);
                    buf_append(&f[i], "\n", 1);
                }
    }
    int rc = -1;
    st = sq_stmt(s,
                 "INSERT INTO text_index(rowid, subject, from_, to_, cc, bcc, header, body)"
                 " VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                 err);
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, id);
        for (int i = 0; i < 5; i++)
            sqlite3_bind_text64(st, 2 + i, f[i].data ? f[i].data : "", f[i].len, SQLITE_STATIC,
                                SQLITE_UTF8);
        sqlite3_bind_text64(st, 7, c->header.ptr ? c->header.ptr : "", c->header.len, SQLITE_STATIC,
                            SQLITE_UTF8);
        sqlite3_bind_text64(st, 8, c->body_text.data ? c->body_text.data : "", c->body_text.len,
                            SQLITE_STATIC, SQLITE_UTF8);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "text index", err);
        sqlite3_reset(st);
    }
    for (size_t i = 0; i < 5; i++)
        buf_free(&f[i]);
    return rc;
}

int sq_text_backfill(struct store *s, struct buf *err)
{
    /* the bodies some message names (an upload alone is never searched) */
    sqlite3_stmt *st = sq_stmt(s, "SELECT DISTINCT blob FROM messages", err);
    if (st == NULL)
        return -1;
    char(*v)[65] = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        memset(v[n], 0, sizeof(v[n]));
        const unsigned char *h = sqlite3_column_text(st, 0);
        if (h)
            memcpy(v[n], h, strnlen((const char *)h, 64));
        n++;
    }
    sqlite3_reset(st);
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "text backfill", err);
    struct buf data = BUF_INIT;
    for (size_t i = 0; i < n && result == 0; i++) {
        st = sq_stmt(s, SQ_BLOB_SELECT(s, "FROM blobs b WHERE b.hash = ?"), err);
        if (st == NULL) {
            result = -1;
            break;
        }
        sqlite3_bind_text(st, 1, v[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_reset(st);
            continue;
        }
        /* a body that cannot be read (damaged segment) stays out of the index */
        struct buf ignored = BUF_INIT;
        if (sq_blob_body(s, st, 0, &data, &ignored) == 0) {
            struct mime_cache c;
            mime_cache_build(buf_slice(&data), NULL, &c);
            result = sq_text_add(s, v[i], &c, err);
            mime_cache_free(&c);
        }
        buf_free(&ignored);
    }
    buf_free(&data);
    free(v);
    return result;
}

int sq_text_search(struct store *s, const char *owner, int64_t mailbox_id, unsigned fields,
                   struct slice text, struct store_text_hit **list_r, size_t *n_r, struct buf *err)
{
    /* {columns} : "text" with its quotes doubled: one phrase of trigrams */
    struct buf q = BUF_INIT;
    buf_append(&q, "{", 1);
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
        if (fields & (1u << i))
            buf_printf(&q, "%s%s", q.len > 1 ? " " : "", columns[i]);
    buf_append(&q, "} : \"", 5);
    for (size_t i = 0; i < text.len; i++) {
        if (text.ptr[i] == '"')
            buf_append(&q, "\"", 1);
        buf_append(&q, &text.ptr[i], 1);
    }
    buf_append(&q, "\"", 1);
    *list_r = NULL;
    *n_r = 0;
    if (sq_begin(s, false, err) != 0) {
        buf_free(&q);
        return -1;
    }
    /* CROSS JOIN keeps the index first: its matches, then their copies */
    sqlite3_stmt *st =
        mailbox_id != 0
            ? sq_stmt(s,
                      "SELECT m.mailbox_id, m.uid, m.blob FROM text_index f"
                      " CROSS JOIN text_docs d ON d.id = f.rowid"
                      " CROSS JOIN messages m ON m.blob = d.hash"
                      " WHERE text_index MATCH ?1 AND m.mailbox_id = ?2 AND ?3 IS NOT NULL"
                      " ORDER BY m.mailbox_id, m.uid",
                      err)
            : sq_stmt(s,
                      "SELECT m.mailbox_id, m.uid, m.blob FROM text_index f"
                      " CROSS JOIN text_docs d ON d.id = f.rowid"
                      " CROSS JOIN messages m ON m.blob = d.hash"
                      " CROSS JOIN mailboxes b ON b.id = m.mailbox_id"
                      " WHERE text_index MATCH ?1 AND ?2 = 0 AND b.owner = ?3"
                      " ORDER BY m.mailbox_id, m.uid",
                      err);
    if (st == NULL) {
        sq_rollback(s);
        buf_free(&q);
        return -1;
    }
    sqlite3_bind_text(st, 1, q.data, (int)q.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, mailbox_id);
    sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
    size_t n = 0, cap = 0;
    struct store_text_hit *v = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        memset(&v[n], 0, sizeof(v[n]));
        v[n].mailbox_id = sqlite3_column_int64(st, 0);
        v[n].uid = (uint32_t)sqlite3_column_int64(st, 1);
        const unsigned char *h = sqlite3_column_text(st, 2);
        if (h)
            memcpy(v[n].blob, h, strnlen((const char *)h, 64));
        n++;
    }
    sqlite3_reset(st);
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "text search", err);
    sq_rollback(s);
    buf_free(&q);
    if (result != 0) {
        free(v);
        return -1;
    }
    *list_r = v;
    *n_r = n;
    return 0;
}
