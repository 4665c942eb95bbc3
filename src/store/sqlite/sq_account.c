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

/* The row of a statement of the messages_date columns (as sql_account_dates names them)
 * into *a (keywords SQLite's until the next step). */
static void dates_row(sqlite3_stmt *st, struct store_account_message *a)
{
    a->m.uid = (uint32_t)sqlite3_column_int64(st, 0);
    a->m.flags = (unsigned)sqlite3_column_int(st, 1);
    const unsigned char *kw = sqlite3_column_text(st, 2);
    a->m.keywords = kw && kw[0] ? (char *)kw : NULL;
    a->m.internaldate = sqlite3_column_int64(st, 3);
    const unsigned char *h = sqlite3_column_text(st, 4);
    memset(a->m.blob, 0, sizeof(a->m.blob));
    if (h)
        memcpy(a->m.blob, h, strnlen((const char *)h, 64));
    a->mailbox_id = sqlite3_column_int64(st, 5);
    a->created_state = (uint64_t)sqlite3_column_int64(st, 6);
    a->thread = sqlite3_column_int64(st, 7);
}

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
        dates_row(st, &a);
        row(ctx, &a);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "account dates", err);
    return 0;
}

#define SQL_DATES                                                                                  \
    "SELECT m.uid, m.flags, m.keywords, m.internaldate, m.blob, m.mailbox_id, m.created_state,"    \
    " m.thread FROM mailboxes b JOIN messages m"
/* a keyword condition: ?f a store flag (0: none), else the word " kw " in " keywords "
 * (lowered: jmap_has_keyword's case rule, ASCII only); = ?want. Most copies have no
 * keyword: their test stops at the empty string, before the string is built (half the
 * cost of a count over a 100,000-message Inbox). */
#define SQL_KW(f, w, want)                                                                         \
    " AND (" w " IS NULL OR (CASE WHEN " f " THEN (m.flags & " f ") != 0"                          \
    " WHEN m.keywords = '' THEN 0 ELSE instr(' ' || lower(m.keywords) || ' ', " w                  \
    ") > 0 END) = " want ")"
#define SQL_KW4                                                                                    \
    SQL_KW("?3", "?4", "?5")                                                                       \
    SQL_KW("?6", "?7", "?8") SQL_KW("?9", "?10", "?11") SQL_KW("?12", "?13", "?14")
/* the first copy of each body in mailbox ?2 only (message_dupes: the others) */
#define SQL_FIRST " AND m.uid NOT IN (SELECT uid FROM message_dupes WHERE mailbox_id = ?2)"
/* SQLite walks the index by (mailbox, date, arrival) and sorts only the runs of equal
 * ones by body: rows come out as they are asked for */
static const char sql_mailbox_desc[] =
    SQL_DATES " INDEXED BY messages_date ON m.mailbox_id = b.id WHERE b.owner = ?1"
              " AND m.mailbox_id = ?2" SQL_FIRST
              " ORDER BY m.internaldate DESC, m.created_state DESC, m.blob";
static const char sql_mailbox_asc[] = SQL_DATES
    " INDEXED BY messages_date ON m.mailbox_id = b.id WHERE b.owner = ?1"
    " AND m.mailbox_id = ?2" SQL_FIRST " ORDER BY m.internaldate, m.created_state, m.blob";
static const char sql_keyword[] = SQL_DATES " INDEXED BY messages_date ON m.mailbox_id = b.id"
                                            " WHERE b.owner = ?1 AND ?2 = ?2" SQL_KW4;
/* a keyword word wanted (?3 = 0, ?5 = 1): only the copies having words can have it, and the
 * partial index messages_keywords holds those alone (schema 22) */
static const char sql_keyword_word[] = SQL_DATES " INDEXED BY messages_keywords ON"
                                                 " m.mailbox_id = b.id WHERE b.owner = ?1"
                                                 " AND ?2 = ?2 AND m.keywords != ''" SQL_KW4;
static const char sql_thread[] = SQL_DATES " INDEXED BY messages_thread ON m.mailbox_id = b.id"
                                           " WHERE b.owner = ?1 AND m.thread = ?2";
static const char sql_count[] = "SELECT COUNT(*) FROM mailboxes b JOIN messages m"
                                " INDEXED BY messages_date ON m.mailbox_id = b.id"
                                " WHERE b.owner = ?1 AND m.mailbox_id = ?2" SQL_FIRST SQL_KW4;
static const char sql_count_threads[] = "SELECT COUNT(DISTINCT m.thread) FROM mailboxes b"
                                        " JOIN messages m INDEXED BY messages_date"
                                        " ON m.mailbox_id = b.id WHERE b.owner = ?1"
                                        " AND m.mailbox_id = ?2" SQL_FIRST SQL_KW4;

/* Binds the keyword conditions k (at most STORE_DATES_KW) at ?3 on; false when they are more,
 * or a word the SQL cannot match as jmap_has_keyword would (empty, or with a space). */
static bool bind_keywords(sqlite3_stmt *st, const struct store_keyword_cond *k, size_t nk,
                          struct buf *words)
{
    if (nk > STORE_DATES_KW)
        return false;
    for (size_t i = 0; i < nk; i++)
        if (k[i].flag == 0 && (k[i].word == NULL || k[i].word[0] == '\0' || strchr(k[i].word, ' ')))
            return false;
    buf_reset(words);
    size_t at[STORE_DATES_KW];
    for (size_t i = 0; i < nk; i++) { /* " kw " lowered, one NUL-separated string each */
        at[i] = words->len;
        buf_append_cstr(words, " ");
        for (const char *c = k[i].flag ? "" : k[i].word; *c; c++)
            buf_append_byte(words, (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c));
        buf_append_cstr(words, " ");
        buf_append_byte(words, '\0');
    }
    for (size_t i = 0; i < nk; i++) {
        sqlite3_bind_int64(st, 3 + 3 * (int)i, k[i].flag);
        sqlite3_bind_text(st, 4 + 3 * (int)i, words->data + at[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5 + 3 * (int)i, k[i].want);
    }
    return true;
}

int sq_dates(struct store *s, const struct store_dates_ask *q, store_account_walk_fn *row,
             void *ctx, struct buf *err)
{
    bool word = q->by == STORE_DATES_KEYWORD && q->nk > 0 && q->k[0].flag == 0 && q->k[0].want;
    const char *sql = q->by == STORE_DATES_THREAD    ? sql_thread
                      : word                         ? sql_keyword_word
                      : q->by == STORE_DATES_KEYWORD ? sql_keyword
                      : q->desc                      ? sql_mailbox_desc
                                                     : sql_mailbox_asc;
    sqlite3_stmt *st = sq_stmt(s, sql, err);
    if (st == NULL)
        return -1;
    struct buf words = BUF_INIT;
    sqlite3_bind_text(st, 1, q->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, q->id);
    if (q->by == STORE_DATES_KEYWORD && !bind_keywords(st, q->k, q->nk, &words)) {
        buf_free(&words);
        return 1;
    }
    struct store_account_message a;
    memset(&a, 0, sizeof(a));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dates_row(st, &a);
        if (!row(ctx, &a)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    buf_free(&words);
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "dates", err);
    return 0;
}

int sq_mailbox_count(struct store *s, const char *owner, int64_t mailbox, bool threads,
                     const struct store_keyword_cond *k, size_t nk, uint64_t *n_r, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, threads ? sql_count_threads : sql_count, err);
    if (st == NULL)
        return -1;
    struct buf words = BUF_INIT;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, mailbox);
    if (!bind_keywords(st, k, nk, &words)) {
        buf_free(&words);
        return 1;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n_r = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    buf_free(&words);
    if (rc != SQLITE_ROW)
        return sq_db_error(s, "mailbox count", err);
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
