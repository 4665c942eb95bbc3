/*
 * sq_text.c - the SQLite driver's full-text index (store_text_search,
 * store_text_emails, store_text_topup): an FTS5 table with the trigram
 * tokenizer, one row per body, filled lazily, never by delivery.
 *
 * text_docs maps a body's hash to its row of text_index (and whether the
 * body has leaf parts that are not text, which the index does not hold); a
 * trigger of the schema deletes both with the body's blobs row, so the index
 * lives at most as long as the body. text_marks keeps, per mailbox (and its
 * UIDVALIDITY), the highest UID whose body is indexed: UIDs only grow, so
 * what a mailbox holds beyond its mark (mailboxes.uidnext says whether there
 * is any, one row read) is what is left to index. Every search first tops
 * up the mailboxes it looks in (topup), in write transactions of at most
 * TOPUP_BATCH messages, then MATCHes; the mta tops up the whole store a
 * little at a time when no delivery is going on (store_text_topup). So the
 * delivery's transaction never pays for the index, and a search never misses
 * a message delivered before it began. Must never: index anything but a
 * body that a blobs row holds, or be asked for text store_text_indexed
 * refuses (store.c filters it).
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
/* Messages looked at in one write transaction of a top-up (a parse each, at most). */
#define TOPUP_BATCH 64

/* In a write transaction: indexes the body hex, data (not indexed yet). */
static int doc_add(struct store *s, const char *hex, struct slice data, struct buf *err)
{
    struct mime_message msg;
    mime_parse(&msg, data, NULL);
    struct buf f[7];
    for (size_t i = 0; i < 7; i++)
        buf_init(&f[i]);
    struct buf rec = BUF_INIT;
    mime_cache_record(&rec, &msg, msg.root);
    struct slice r = buf_slice(&rec), name, value;
    if (r.len > 0) {
        struct slice rest = slice_make(r.ptr + 1, r.len - 1);
        while (mime_cache_record_next(&rest, &name, &value))
            for (size_t i = 0; i < 5; i++)
                if (slice_eq_cstr_nocase(name, record_names[i])) {
                    buf_append_slice(&f[i], value);
                    buf_append(&f[i], "\n", 1);
                }
    }
    buf_append_slice(&f[5], mime_part_header(&msg, msg.root));
    mime_body_text(&msg, &f[6]);
    bool other = mime_body_other(&msg);
    mime_message_free(&msg);
    buf_free(&rec);
    int rc = -1;
    sqlite3_stmt *st = sq_stmt(s, "INSERT INTO text_docs(hash, other) VALUES(?, ?)", err);
    if (st != NULL) {
        sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, other);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "text index", err);
        sqlite3_reset(st);
    }
    int64_t id = sqlite3_last_insert_rowid(sq(s)->db);
    if (rc == 0) {
        rc = -1;
        st = sq_stmt(s,
                     "INSERT INTO text_index(rowid, subject, from_, to_, cc, bcc, header, body)"
                     " VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                     err);
        if (st != NULL) {
            sqlite3_bind_int64(st, 1, id);
            for (int i = 0; i < 7; i++)
                sqlite3_bind_text64(st, 2 + i, f[i].data ? f[i].data : "", f[i].len, SQLITE_STATIC,
                                    SQLITE_UTF8);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "text index", err);
            sqlite3_reset(st);
        }
    }
    for (size_t i = 0; i < 7; i++)
        buf_free(&f[i]);
    return rc;
}

/* In a write transaction: indexes the body hex unless it is already (or is gone). */
static int body_index(struct store *s, const char *hex, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT 1 FROM text_docs WHERE hash = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0; /* another copy of the body */
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "text index", err);
    st = sq_stmt(s, SQ_BLOB_SELECT(s, "FROM blobs b WHERE b.hash = ?"), err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return 0;
    }
    /* a body that cannot be read (damaged segment) is indexed empty: never found */
    struct buf data = BUF_INIT, ignored = BUF_INIT;
    (void)sq_blob_body(s, st, 0, &data, &ignored);
    rc = doc_add(s, hex, buf_slice(&data), err);
    buf_free(&data);
    buf_free(&ignored);
    return rc;
}

/*
 * One write transaction of a top-up of one mailbox: the bodies of up to
 * TOPUP_BATCH messages beyond its mark, and the mark moved past them. 1
 * when the mailbox is done, 0 when more is left, -1 on error; *n_r grows
 * by the messages looked at.
 */
static int topup_batch(struct store *s, int64_t mailbox_id, size_t *n_r, struct buf *err)
{
    if (sq_begin(s, true, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT b.uidvalidity, b.uidnext, t.uid FROM mailboxes b"
                               " LEFT JOIN text_marks t ON t.mailbox_id = b.id"
                               " AND t.uidvalidity = b.uidvalidity WHERE b.id = ?",
                               err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_int64(st, 1, mailbox_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        sq_rollback(s);
        return 1; /* gone meanwhile */
    }
    int64_t uidvalidity = sqlite3_column_int64(st, 0), last = sqlite3_column_int64(st, 1) - 1,
            mark = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    if (mark >= last) {
        sq_rollback(s);
        return 1;
    }
    st = sq_stmt(s,
                 "SELECT uid, blob FROM messages WHERE mailbox_id = ? AND uid > ?"
                 " ORDER BY uid LIMIT ?",
                 err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_int64(st, 1, mailbox_id);
    sqlite3_bind_int64(st, 2, mark);
    sqlite3_bind_int(st, 3, TOPUP_BATCH);
    char hex[TOPUP_BATCH][65];
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mark = sqlite3_column_int64(st, 0);
        const unsigned char *h = sqlite3_column_text(st, 1);
        memset(hex[n], 0, sizeof(hex[n]));
        if (h)
            memcpy(hex[n], h, strnlen((const char *)h, 64));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "text top-up", err);
        goto fail;
    }
    bool done = n < TOPUP_BATCH;
    if (done)
        mark = last;
    for (size_t i = 0; i < n; i++)
        if (body_index(s, hex[i], err) != 0)
            goto fail;
    *n_r += n;
    st = sq_stmt(s, "INSERT OR REPLACE INTO text_marks VALUES(?, ?, ?)", err);
    if (st == NULL)
        goto fail;
    sqlite3_bind_int64(st, 1, mailbox_id);
    sqlite3_bind_int64(st, 2, uidvalidity);
    sqlite3_bind_int64(st, 3, mark);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        sq_db_error(s, "text top-up", err);
        goto fail;
    }
    if (sq_commit(s, err) != 0)
        return -1;
    return done ? 1 : 0;
fail:
    sq_rollback(s);
    return -1;
}

/*
 * Indexes what the mailboxes of the scope (mailbox_id; else owner's; else
 * every mailbox) hold beyond their marks, at most about max messages (0: no
 * limit). *n_r: the messages looked at.
 */
static int topup(struct store *s, const char *owner, int64_t mailbox_id, size_t max, size_t *n_r,
                 struct buf *err)
{
#define TOPUP_BEHIND                                                                               \
    "SELECT b.id FROM mailboxes b LEFT JOIN text_marks t ON t.mailbox_id = b.id"                   \
    " AND t.uidvalidity = b.uidvalidity WHERE b.uidnext - 1 > COALESCE(t.uid, 0)"
    *n_r = 0;
    sqlite3_stmt *st = mailbox_id != 0 ? sq_stmt(s, TOPUP_BEHIND " AND b.id = ?", err)
                       : owner != NULL ? sq_stmt(s, TOPUP_BEHIND " AND b.owner = ?", err)
                                       : sq_stmt(s, TOPUP_BEHIND, err);
    if (st == NULL)
        return -1;
    if (mailbox_id != 0)
        sqlite3_bind_int64(st, 1, mailbox_id);
    else if (owner != NULL)
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ids = xreallocarray(ids, cap, sizeof(*ids));
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "text top-up", err);
    for (size_t i = 0; i < n && result == 0 && (max == 0 || *n_r < max); i++) {
        int r;
        while ((r = topup_batch(s, ids[i], n_r, err)) == 0 && (max == 0 || *n_r < max))
            ;
        if (r < 0)
            result = -1;
    }
    free(ids);
    return result;
#undef TOPUP_BEHIND
}

int sq_text_topup(struct store *s, size_t max, size_t *n_r, struct buf *err)
{
    return topup(s, NULL, 0, max, n_r, err);
}

/* The MATCH expression of text in fields: {columns} : "text" with its quotes doubled. */
static void match_expr(unsigned fields, struct slice text, struct buf *q)
{
    buf_append(q, "{", 1);
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
        if (fields & (1u << i))
            buf_printf(q, "%s%s", q->len > 1 ? " " : "", columns[i]);
    buf_append(q, "} : \"", 5);
    for (size_t i = 0; i < text.len; i++) {
        if (text.ptr[i] == '"')
            buf_append(q, "\"", 1);
        buf_append(q, &text.ptr[i], 1);
    }
    buf_append(q, "\"", 1);
}

static int hit_order(const void *a, const void *b)
{
    const struct store_text_hit *x = a, *y = b;
    if (x->mailbox_id != y->mailbox_id)
        return x->mailbox_id < y->mailbox_id ? -1 : 1;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Appends the rows (mailbox_id, uid, blob) of st to *v (bound; reset here). */
static int hits_read(struct store *s, sqlite3_stmt *st, bool other, struct store_text_hit **v,
                     size_t *n, size_t *cap, struct buf *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *v = xreallocarray(*v, *cap, sizeof(**v));
        }
        struct store_text_hit *h = &(*v)[*n];
        memset(h, 0, sizeof(*h));
        h->mailbox_id = sqlite3_column_int64(st, 0);
        h->uid = (uint32_t)sqlite3_column_int64(st, 1);
        const unsigned char *b = sqlite3_column_text(st, 2);
        if (b)
            memcpy(h->blob, b, strnlen((const char *)b, 64));
        h->other = other;
        (*n)++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_db_error(s, "text search", err);
}

int sq_text_search(struct store *s, const char *owner, int64_t mailbox_id, unsigned fields,
                   struct slice text, struct store_text_hit **list_r, size_t *n_r, struct buf *err)
{
    *list_r = NULL;
    *n_r = 0;
    size_t indexed;
    if (topup(s, owner, mailbox_id, 0, &indexed, err) != 0)
        return -1;
    struct buf q = BUF_INIT;
    match_expr(fields & STORE_TEXT_FIELDS, text, &q);
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
                      " WHERE text_index MATCH ?1 AND m.mailbox_id = ?2 AND ?3 IS NOT NULL",
                      err)
            : sq_stmt(s,
                      "SELECT m.mailbox_id, m.uid, m.blob FROM text_index f"
                      " CROSS JOIN text_docs d ON d.id = f.rowid"
                      " CROSS JOIN messages m ON m.blob = d.hash"
                      " CROSS JOIN mailboxes b ON b.id = m.mailbox_id"
                      " WHERE text_index MATCH ?1 AND ?2 = 0 AND b.owner = ?3",
                      err);
    size_t n = 0, cap = 0;
    struct store_text_hit *v = NULL;
    int result = -1;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, q.data, (int)q.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, mailbox_id);
        sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
        result = hits_read(s, st, false, &v, &n, &cap, err);
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), hit_order);
    /* the copies that did not match, with parts the index lacks: the caller scans those */
    size_t matched = n;
    if (result == 0 && (fields & STORE_TEXT_OTHER)) {
        st = mailbox_id != 0 ? sq_stmt(s,
                                       "SELECT m.mailbox_id, m.uid, m.blob FROM messages m"
                                       " CROSS JOIN text_docs d ON d.hash = m.blob"
                                       " WHERE m.mailbox_id = ?1 AND d.other AND ?2 IS NOT NULL",
                                       err)
                             : sq_stmt(s,
                                       "SELECT m.mailbox_id, m.uid, m.blob FROM mailboxes b"
                                       " CROSS JOIN messages m ON m.mailbox_id = b.id"
                                       " CROSS JOIN text_docs d ON d.hash = m.blob"
                                       " WHERE ?1 = 0 AND b.owner = ?2 AND d.other",
                                       err);
        result = -1;
        if (st != NULL) {
            sqlite3_bind_int64(st, 1, mailbox_id);
            sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
            result = hits_read(s, st, true, &v, &n, &cap, err);
        }
        size_t k = matched;
        for (size_t i = matched; i < n; i++)
            if (matched == 0 || bsearch(&v[i], v, matched, sizeof(*v), hit_order) == NULL)
                v[k++] = v[i];
        n = k;
        if (n > 1)
            qsort(v, n, sizeof(*v), hit_order);
    }
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

int sq_text_emails(struct store *s, const char *owner, int64_t in_mailbox, unsigned fields,
                   struct slice text, bool newest_first, char (**hashes_r)[65], size_t *n_r,
                   struct buf *err)
{
    *hashes_r = NULL;
    *n_r = 0;
    size_t indexed;
    if (topup(s, owner, 0, 0, &indexed, err) != 0)
        return -1;
    struct buf q = BUF_INIT;
    match_expr(fields & STORE_TEXT_FIELDS, text, &q);
    if (sq_begin(s, false, err) != 0) {
        buf_free(&q);
        return -1;
    }
    /*
     * An Email is a body in the account; its receivedAt and its arrival are
     * those of its copy in the lowest mailbox id (min() makes the bare
     * columns that row's), as Email/query's own sort has them; ties by
     * arrival, then by id.
     */
#define EMAILS                                                                                     \
    "WITH h AS (SELECT d.hash FROM text_index f CROSS JOIN text_docs d ON d.id = f.rowid"          \
    "  WHERE text_index MATCH ?1)"                                                                 \
    " SELECT m.blob, min(m.mailbox_id), m.internaldate, m.created_state FROM h"                    \
    " CROSS JOIN messages m ON m.blob = h.hash CROSS JOIN mailboxes b ON b.id = m.mailbox_id"      \
    " WHERE b.owner = ?2 GROUP BY m.blob HAVING ?3 = 0 OR sum(m.mailbox_id = ?3) > 0"
    sqlite3_stmt *st = newest_first ? sq_stmt(s, EMAILS " ORDER BY 3 DESC, 4 DESC, 1", err)
                                    : sq_stmt(s, EMAILS " ORDER BY 3, 4, 1", err);
#undef EMAILS
    if (st == NULL) {
        sq_rollback(s);
        buf_free(&q);
        return -1;
    }
    sqlite3_bind_text(st, 1, q.data, (int)q.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, in_mailbox);
    size_t n = 0, cap = 0;
    char(*v)[65] = NULL;
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
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "text search", err);
    sq_rollback(s);
    buf_free(&q);
    if (result != 0) {
        free(v);
        return -1;
    }
    *hashes_r = v;
    *n_r = n;
    return 0;
}
