/*
 * store_int.h - what the SQLite driver's files share (never included
 * outside src/store).
 */
#ifndef WHARF_STORE_INT_H
#define WHARF_STORE_INT_H

#include "store/store.h"
#include "store/store_blob.h"

#include <sqlite3.h>

#define STORE_STMT_CACHE 64

struct store {
    sqlite3 *db;
    struct blob_dir blobs;
    struct store_options opt;
    char *dir;
    bool temporary; /* remove dir on close */
    struct {
        const char *sql; /* identity: the literal's address */
        sqlite3_stmt *st;
    } stmts[STORE_STMT_CACHE];
    size_t n_stmts;
};

struct mbrow {
    int64_t id;
    uint32_t uidvalidity, uidnext;
    uint64_t highestmodseq;
};

/* A cached prepared statement, reset and unbound. NULL with err on failure. */
sqlite3_stmt *store_stmt(struct store *s, const char *sql, struct buf *err);
/* Appends "what: sqlite message" to err; returns -1. */
int store_db_error(struct store *s, const char *what, struct buf *err);
int store_exec(struct store *s, const char *sql, struct buf *err);
int store_begin(struct store *s, bool write, struct buf *err);
int store_commit(struct store *s, struct buf *err);
void store_rollback(struct store *s);
int64_t store_meta_get(struct store *s, const char *key, struct buf *err);
int store_meta_set(struct store *s, const char *key, int64_t value, struct buf *err);

/* Canonical form of a mailbox name ("inbox/x" -> "INBOX/x") into out; -1 if invalid. */
int store_name_check(struct store *s, const char *name, struct buf *out, struct buf *err);
/* In a write transaction: creates the account's default folders on first use. */
int store_account_ensure(struct store *s, const char *owner, struct buf *err);
/* Inserts a mailbox row with a fresh UIDVALIDITY (in a write transaction). */
int store_mailbox_insert(struct store *s, const char *owner, const char *name,
                         const char *special_use, struct buf *err);
/* 0 found, 1 missing, -1 error. name must be canonical. */
int store_mailbox_find(struct store *s, const char *owner, const char *name, struct mbrow *r,
                       struct buf *err);
/* A text column as an owned string (NULL for SQL NULL). */
char *store_col_text(sqlite3_stmt *st, int i);
/* Takes the next MODSEQ of a mailbox (in a write transaction). */
int store_modseq_next(struct store *s, int64_t mailbox_id, uint64_t *modseq_r, struct buf *err);
/* Drops one reference to a blob, deleting its row at zero. */
int store_blob_unref(struct store *s, const char *hash, struct buf *err);
/* Keywords: at most opt.keywords_max bytes, no control characters (NULL is fine). */
bool store_keywords_ok(struct store *s, const char *keywords, struct buf *err);
int store_quota_add(struct store *s, const char *owner, int64_t bytes, int64_t messages,
                    struct buf *err);

#endif
