/*
 * sq_int.h - what the SQLite store driver's files share (never included
 * outside src/store/sqlite). sq_ names everything of this driver; the
 * driver's ops (store_sqlite_driver, sq_db.c) have the contracts of the
 * store.h functions of the same name. Only the files of this folder may call
 * sqlite3_* (a meson test reads the objects' symbol tables).
 */
#ifndef WHARF_STORE_SQ_INT_H
#define WHARF_STORE_SQ_INT_H

#include "store/store_blob.h"
#include "store/store_driver.h"

#include <sqlite3.h>

#define STORE_STMT_CACHE 80

struct sq_store {
    struct store base; /* first: a struct store * of this driver is a struct sq_store * */
    sqlite3 *db;
    struct blob_dir blobs;
    char *dir;
    bool temporary; /* remove dir on close */
    bool blob_body; /* the schema has blobs.body (sq_schema_blob_body): reads name it */
    bool blob_rows; /* ... and blob_bodies (sq_schema_blob_rows): the bodies are there */
    struct {
        const char *sql; /* identity: the literal's address */
        sqlite3_stmt *st;
    } stmts[STORE_STMT_CACHE];
    size_t n_stmts;
    int wal_frames; /* the log's length after the last commit (store_checkpoint_deferred) */
    /* store_read_begin's snapshot: its BEGIN is open (read_scope), and how many of the
     * driver's own read transactions are running inside it (each a no-op, sq_begin) */
    bool read_scope;
    int read_nested;
};

/* The VFS a store opens its database with (sq_vfs.c): one that writes a commit's
 * WAL frames at once where the WAL is synced at each commit (synced), else NULL
 * (SQLite's default). */
const char *sq_vfs_name(bool synced);

static inline struct sq_store *sq(struct store *s)
{
    return (struct sq_store *)s;
}

struct mbrow {
    int64_t id;
    uint32_t uidvalidity, uidnext;
    uint64_t highestmodseq;
};

/* A cached prepared statement, reset and unbound. NULL with err on failure. */
sqlite3_stmt *sq_stmt(struct store *s, const char *sql, struct buf *err);
/* Appends "what: sqlite message" to err; returns -1. */
int sq_db_error(struct store *s, const char *what, struct buf *err);
int sq_exec(struct store *s, const char *sql, struct buf *err);
int sq_begin(struct store *s, bool write, struct buf *err);
int sq_commit(struct store *s, struct buf *err);
void sq_rollback(struct store *s);
int sq_read_begin(struct store *s, struct buf *err);
void sq_read_end(struct store *s);
int64_t sq_meta_get(struct store *s, const char *key, struct buf *err);
int sq_meta_set(struct store *s, const char *key, int64_t value, struct buf *err);

/* In a write transaction: creates the account's default folders on first use. */
int sq_account_ensure(struct store *s, const char *owner, struct buf *err);
/* Inserts a mailbox row with a fresh UIDVALIDITY and its parent's ACL
 * (sq_acl_inherit), in a write transaction. */
int sq_mailbox_insert(struct store *s, const char *owner, const char *name, const char *special_use,
                      struct buf *err);
/* 0 found, 1 missing, -1 error. name must be canonical. */
int sq_mailbox_find(struct store *s, const char *owner, const char *name, struct mbrow *r,
                    struct buf *err);
/* The same by id (0 found, 1 missing: gone, another owner's, or id 0). */
int sq_mailbox_find_id(struct store *s, const char *owner, int64_t id, struct mbrow *r,
                       struct buf *err);
/* Binds s, or SQL NULL when s is NULL (static: s outlives the step). */
void sq_bind_text_or_null(sqlite3_stmt *st, int i, const char *s);
/* In a write transaction: takes owner's next account state into *state_r
 * (for changes no trigger counts: vacation response, identities). */
int sq_account_state_next(struct store *s, const char *owner, int64_t *state_r, struct buf *err);
/* A text column as an owned string (NULL for SQL NULL). */
char *sq_col_text(sqlite3_stmt *st, int i);
/* Columns 0-5 of a message row (uid, modseq, flags, keywords, internaldate,
 * size) into m, the rest of m zeroed. */
void sq_message_row(sqlite3_stmt *st, struct store_message *m);
/* Steps st (rows whose column 0 is a blob hash) to its end and drops one
 * reference to each hash (in a write transaction). */
int sq_unref_rows(struct store *s, sqlite3_stmt *st, const char *what, struct buf *err);
/* Takes the next MODSEQ of a mailbox (in a write transaction). */
int sq_modseq_next(struct store *s, int64_t mailbox_id, uint64_t *modseq_r, struct buf *err);
/* Drops one reference to a blob, deleting its row at zero. */
int sq_blob_unref(struct store *s, const char *hash, struct buf *err);
int sq_quota_add(struct store *s, const char *owner, int64_t bytes, int64_t messages,
                 struct buf *err);

/* The driver's ops (store_sqlite_driver in sq_db.c). */
int sq_backup(const char *dir, const char *dest, const char *prev, struct store_backup_stats *st,
              struct buf *err);
bool sq_present(const char *dir);
int sq_restore(const char *from, const char *dir, struct store_backup_stats *st, struct buf *err);
int sq_mailbox_resolve(struct store *s, const char *owner, const char *name, int64_t *id_r,
                       struct buf *err);
int sq_public_folder_now(struct store *s, const char *name, struct buf *now_r, struct buf *err);
int sq_mailbox_list(struct store *s, const char *owner, struct store_mailbox **list_r, size_t *n_r,
                    struct buf *err);
int sq_mailbox_get(struct store *s, const char *owner, const char *mailbox,
                   struct store_mailbox *mb, struct buf *err);
int sq_mailbox_recent_claim(struct store *s, const char *owner, const char *mailbox, uint32_t upto,
                            bool claim, uint32_t *first_r, struct buf *err);
int sq_mailbox_create(struct store *s, const char *owner, const char *name, const char *special_use,
                      struct buf *err);
int sq_mailbox_set_uids(struct store *s, const char *owner, const char *name,
                        const char *special_use, uint32_t uidvalidity, uint32_t uidnext,
                        struct buf *err);
int sq_mailbox_delete(struct store *s, const char *owner, const char *name, struct buf *err);
int sq_mailbox_rename(struct store *s, const char *owner, const char *from, const char *to,
                      struct buf *err);
int sq_subscribe(struct store *s, const char *owner, const char *name, bool on, struct buf *err);
int sq_subscriptions(struct store *s, const char *owner, char ***names_r, size_t *n_r,
                     struct buf *err);
int sq_account_state(struct store *s, const char *owner, uint64_t *state_r, struct buf *err);
int sq_message_list(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                    struct store_message **list_r, size_t *n_r, struct buf *err);
int sq_message_read(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                    struct buf *out, struct buf *err);
int sq_message_flags(struct store *s, const char *owner, int64_t mailbox_id, const uint32_t *uids,
                     size_t n, enum store_flags_op op, unsigned flags, const char *keywords,
                     uint64_t unchangedsince, struct store_flags_result *results, struct buf *err);
int sq_message_set_cache(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                         struct slice structure, struct buf *err);
int sq_message_records(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                       struct store_records *r, struct buf *err);
int sq_msgid_find(struct store *s, const char *owner, struct slice msgid,
                  struct store_msgid_hit **list_r, size_t *n_r, struct buf *err);
int sq_message_copies(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                      uint32_t uid_max, struct store_copy **list_r, size_t *n_r, struct buf *err);
/* In a write transaction: 1 when owner holds a message with this Message-ID. */
int sq_msgid_held(struct store *s, const char *owner, struct slice msgid, struct buf *err);
/* Registers wharf_record_msgid(search) (the schema's backfill of messages.msgid). */
int sq_msgid_register(struct store *s, struct buf *err);
int sq_text_search(struct store *s, const char *owner, int64_t mailbox_id, unsigned fields,
                   struct slice text, struct store_text_hit **list_r, size_t *n_r, struct buf *err);
int sq_text_emails(struct store *s, const char *owner, int64_t in_mailbox, unsigned fields,
                   struct slice text, bool newest_first, char (**hashes_r)[65], size_t *n_r,
                   struct buf *err);
int sq_text_topup(struct store *s, size_t max, size_t *n_r, struct buf *err);
int sq_message_set_records(struct store *s, const char *owner, int64_t mailbox_id,
                           const uint32_t *uids, const struct slice *recs, size_t n,
                           struct buf *err);
int sq_message_copy_to(struct store *s, const char *owner, int64_t mailbox_id, const uint32_t *uids,
                       size_t n, const char *dest_owner, int64_t dest_id, bool move,
                       uint32_t *new_uids_r, struct buf *err);
int sq_message_expunge(struct store *s, const char *owner, int64_t mailbox_id, const uint32_t *uids,
                       size_t n, struct buf *err);
int sq_message_changes(struct store *s, const char *owner, int64_t mailbox_id, uint64_t since,
                       struct store_changes *c, struct buf *err);
int sq_expunged_since(struct store *s, const char *owner, int64_t mailbox_id, uint64_t modseq,
                      uint32_t **uids_r, size_t *n_r, struct buf *err);
int sq_deliver(struct store *s, struct store_delivery *d, size_t n, struct buf *err);
int sq_account_messages(struct store *s, const char *owner, const char *blob, uint64_t since,
                        bool with_structure, struct store_account_message **list_r, size_t *n_r,
                        struct buf *err);
int sq_account_gone(struct store *s, const char *owner, uint64_t since,
                    struct store_account_gone *g, struct buf *err);
int sq_account_dates(struct store *s, const char *owner, store_account_row_fn *row, void *ctx,
                     struct buf *err);
int sq_dates(struct store *s, const struct store_dates_ask *q, store_account_walk_fn *row,
             void *ctx, struct buf *err);
int sq_mailbox_count(struct store *s, const char *owner, int64_t mailbox, bool threads,
                     const struct store_keyword_cond *k, size_t nk, uint64_t *n_r, struct buf *err);
int sq_upload(struct store *s, const char *owner, struct slice data, char hash_r[65],
              struct buf *err);
int sq_account_blob_read(struct store *s, const char *owner, const char *hash, struct buf *out,
                         struct buf *err);
/* Makes sure the body is stored and has a row; adds one reference (write transaction).
 * in_row: a new body is kept in its row (durable with the commit), not in segment seg. */
int sq_blob_ref(struct store *s, struct slice data, const char *hex, int64_t seg, bool in_row,
                struct buf *err);
/* "SELECT b.segment, b.offset, b.size, BODY REST", the columns sq_blob_body reads: BODY
 * is the blob_bodies row a segment -1 body is in (schema 18), b.body before, NULL while
 * a migration older than that column runs. */
#define SQ_BLOB_SELECT(s, rest)                                                                    \
    (sq(s)->blob_rows   ? "SELECT b.segment, b.offset, b.size, CASE WHEN b.segment < 0 THEN"       \
                          " (SELECT bb.body FROM blob_bodies bb WHERE bb.id = b.offset) END " rest \
     : sq(s)->blob_body ? "SELECT b.segment, b.offset, b.size, b.body " rest                       \
                        : "SELECT b.segment, b.offset, b.size, NULL " rest)
/* The body a row of blobs names, from the columns segment, offset, size, body of st's
 * current row starting at column col (a segment -1 body is in the row itself); st is
 * reset. 0, or -1 with err (errno ENOENT: the segment file is gone, sq_gc moved it). */
int sq_blob_body(struct store *s, sqlite3_stmt *st, int col, struct buf *out, struct buf *err);
/* The segment to append to, rolled over when full (write transaction). */
int sq_current_segment(struct store *s, int64_t *seg_r, struct buf *err);
/* Drops uploads older than STORE_UPLOAD_HOLD and their references (write transaction). */
int sq_uploads_expire(struct store *s, struct buf *err);
struct mime_thread_keys;
/* sq_thread.c: the thread of a new message of owner with body hex (inside
 * the caller's write transaction), and the threads of the messages stored
 * before threads existed (the migration that added them). */
int sq_thread_assign(struct store *s, const char *owner, const char *hex,
                     const struct mime_thread_keys *k, int64_t *thread_r, struct buf *err);
int sq_thread_backfill(struct store *s, struct buf *err);
int sq_quota_usage(struct store *s, const char *owner, uint64_t *bytes_r, uint64_t *messages_r,
                   struct buf *err);
int sq_feed_cursor(struct store *s, const char *peer, int64_t mailbox_id, uint32_t *uid_r,
                   struct buf *err);
int sq_feed_enqueue(struct store *s, const char *peer, int64_t mailbox_id, uint32_t cursor,
                    const struct store_feed_item *items, size_t n, struct buf *err);
int sq_feed_pending(struct store *s, const char *peer, size_t max, struct store_feed_item **list_r,
                    size_t *n_r, uint64_t *total_r, struct buf *err);
int sq_feed_done(struct store *s, const char *peer, char *const *msgids, size_t n, struct buf *err);
int sq_pull_since(struct store *s, const char *peer, int64_t *since_r, struct buf *err);
int sq_pull_set(struct store *s, const char *peer, int64_t since, struct buf *err);
int sq_feed_retry(struct store *s, const char *peer, const char *msgid, int64_t due,
                  struct buf *err);
int sq_newsgroup_anchor_set(struct store *s, const char *mailbox, const char *hierarchy,
                            struct buf *err);
int sq_newsgroup_anchors(struct store *s, struct store_newsgroup_anchor **list_r, size_t *n_r,
                         struct buf *err);
int sq_acl_set(struct store *s, const char *owner, const char *mailbox, const char *identifier,
               const char *rights, struct buf *err);
int sq_acl_get(struct store *s, const char *owner, const char *mailbox, const char *identifier,
               struct buf *rights_r, struct buf *err);
int sq_acl_list(struct store *s, const char *owner, const char *mailbox,
                struct store_acl_entry **list_r, size_t *n_r, struct buf *err);
int sq_acl_rights(struct store *s, const char *owner, const char *mailbox, const char *user,
                  struct buf *rights_r, struct buf *err);
int sq_acl_shared(struct store *s, const char *user, struct store_acl_share **list_r, size_t *n_r,
                  struct buf *err);
/* In a write transaction: gives the new mailbox id (owner's name, canonical)
 * a copy of the ACL of its nearest existing ancestor; nothing at the top level. */
int sq_acl_inherit(struct store *s, const char *owner, const char *name, int64_t id,
                   struct buf *err);
int sq_vacation_get(struct store *s, const char *owner, struct store_vacation *v, struct buf *err);
int sq_vacation_set(struct store *s, const char *owner, const struct store_vacation *v,
                    struct buf *err);
int sq_vacation_claim(struct store *s, const char *owner, const char *sender, int64_t now,
                      int64_t period, struct buf *err);
int sq_identity_list(struct store *s, const char *owner, uint64_t since,
                     struct store_identity **list_r, size_t *n_r, struct buf *err);
int sq_identity_put(struct store *s, const char *owner, struct store_identity *v, struct buf *err);
int sq_identity_delete(struct store *s, const char *owner, int64_t id, struct buf *err);
int sq_identity_gone(struct store *s, const char *owner, uint64_t since, int64_t **ids_r,
                     uint64_t **states_r, size_t *n_r, struct buf *err);
int sq_blob_stats(struct store *s, struct store_blob_stats *st, struct buf *err);
int sq_gc(struct store *s, struct buf *err);
int sq_dedupe_expire(struct store *s, int64_t max_age_seconds, struct buf *err);

#endif
