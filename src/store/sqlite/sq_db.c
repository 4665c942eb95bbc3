/*
 * sq_db.c - the SQLite (WAL) store driver: opening, schema migration,
 * transactions, the helpers the other sq_*.c files share, and the driver
 * table (store_sqlite_driver) that store.c dispatches through.
 *
 * Every statement is prepared with bound parameters; no SQL text is ever
 * built from data. This file never touches message bodies (store_blob.c does).
 */
#include "store/sqlite/sq_int.h"
#include "store/sqlite/sq_schema.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/sqlite_setup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_BUSY_TIMEOUT_MS 30000 /* a writer holds the lock for one batch: two fsyncs */
#define STORE_BUSY_STEP_US 250      /* how often a waiting writer tries the lock again */

sqlite3_stmt *sq_stmt(struct store *s, const char *sql, struct buf *err)
{
    for (size_t i = 0; i < sq(s)->n_stmts; i++) {
        if (sq(s)->stmts[i].sql == sql) {
            sqlite3_reset(sq(s)->stmts[i].st);
            sqlite3_clear_bindings(sq(s)->stmts[i].st);
            return sq(s)->stmts[i].st;
        }
    }
    if (sq(s)->n_stmts == STORE_STMT_CACHE)
        log_panic("store statement cache full (raise STORE_STMT_CACHE)");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(sq(s)->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sq_db_error(s, "prepare", err);
        return NULL;
    }
    sq(s)->stmts[sq(s)->n_stmts].sql = sql;
    sq(s)->stmts[sq(s)->n_stmts].st = st;
    sq(s)->n_stmts++;
    return st;
}

int sq_db_error(struct store *s, const char *what, struct buf *err)
{
    buf_printf(err, "store: %s: %s", what, sqlite3_errmsg(sq(s)->db));
    return -1;
}

int sq_exec(struct store *s, const char *sql, struct buf *err)
{
    char *msg = NULL;
    if (sqlite3_exec(sq(s)->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        buf_printf(err, "store: %s", msg ? msg : sqlite3_errmsg(sq(s)->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* A statement without rows, from the cache: BEGIN and COMMIT run once or twice
 * for every transaction, and sqlite3_exec parsed them again each time. */
static int sq_run(struct store *s, const char *sql, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, sql, err);
    if (st == NULL)
        return -1;
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, sql, err);
    sqlite3_reset(st);
    return rc;
}

/* Inside store_read_begin's snapshot a read transaction is already open: a read
 * BEGIN and its COMMIT or ROLLBACK do nothing; a write ends the snapshot first. */
int sq_begin(struct store *s, bool write, struct buf *err)
{
    if (sq(s)->read_scope) {
        if (!write) {
            sq(s)->read_nested++;
            return 0;
        }
        sq_read_end(s);
    }
    return sq_run(s, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
}

int sq_commit(struct store *s, struct buf *err)
{
    if (sq(s)->read_nested > 0) {
        sq(s)->read_nested--;
        return 0;
    }
    if (sq_run(s, "COMMIT", err) != 0) {
        sq_rollback(s);
        return -1;
    }
    return 0;
}

int sq_read_begin(struct store *s, struct buf *err)
{
    if (sq(s)->read_scope || !sqlite3_get_autocommit(sq(s)->db)) {
        buf_printf(err, "store: a read snapshot inside a transaction");
        return -1;
    }
    if (sq_run(s, "BEGIN", err) != 0)
        return -1;
    sq(s)->read_scope = true;
    sq(s)->read_nested = 0;
    return 0;
}

void sq_read_end(struct store *s)
{
    if (!sq(s)->read_scope)
        return;
    sq(s)->read_scope = false;
    sq(s)->read_nested = 0;
    if (!sqlite3_get_autocommit(sq(s)->db)) {
        struct buf err = BUF_INIT;
        sq_run(s, "COMMIT", &err); /* nothing was written: only the read lock goes */
        buf_free(&err);
        sq_rollback(s);
    }
}

void sq_rollback(struct store *s)
{
    if (sq(s)->read_nested > 0) {
        sq(s)->read_nested--;
        return;
    }
    sq(s)->read_scope = false; /* the snapshot's transaction, if open, ends here too */
    if (!sqlite3_get_autocommit(sq(s)->db)) {
        struct buf err = BUF_INIT;
        sq_run(s, "ROLLBACK", &err);
        buf_free(&err);
    }
}

int64_t sq_meta_get(struct store *s, const char *key, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "SELECT value FROM meta WHERE key = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        return sq_db_error(s, "meta", err);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

int sq_meta_set(struct store *s, const char *key, int64_t value, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "UPDATE meta SET value = ? WHERE key = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, value);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "meta", err);
    return 0;
}

#define STORE_CHECKPOINT_FRAMES 1000 /* SQLite's automatic checkpoint's mark */

/* Replaces SQLite's automatic checkpoint: notes the log's length after each commit. */
static int wal_noted(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db, (void)name;
    ((struct sq_store *)arg)->wal_frames = frames;
    return SQLITE_OK;
}

static void sq_checkpoint_deferred(struct store *s)
{
    sqlite3_wal_hook(sq(s)->db, wal_noted, sq(s));
}

static int sq_checkpoint(struct store *s, struct buf *err)
{
    if (sq(s)->wal_frames < STORE_CHECKPOINT_FRAMES)
        return 0;
    sq(s)->wal_frames = 0;
    if (sqlite3_wal_checkpoint_v2(sq(s)->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
        SQLITE_OK)
        return sq_db_error(s, "checkpoint", err);
    return 0;
}

/* SQLite's own counter of commits by other connections (PRAGMA data_version). */
static int sq_data_version(struct store *s, int64_t *v_r, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "PRAGMA data_version", err);
    if (st == NULL)
        return -1;
    if (sqlite3_step(st) != SQLITE_ROW)
        return sq_db_error(s, "data version", err);
    *v_r = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

/* Waiting for another process's write lock (a batch: its sync, then COMMIT): tries again
 * every STORE_BUSY_STEP_US, where SQLite's own handler sleeps 1, 2, 5, 10, 15, 20,
 * 25... ms and so leaves the lock idle for up to as long again as it was held (two
 * nntp workers committing in turn each waited most of a sync for nothing). */
static int busy_wait(void *arg, int tries)
{
    (void)arg;
    if ((int64_t)tries * STORE_BUSY_STEP_US >= (int64_t)STORE_BUSY_TIMEOUT_MS * 1000)
        return 0;
    struct timespec ts = {0, STORE_BUSY_STEP_US * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}

static int migrate(struct store *s, struct buf *err)
{
    for (;;) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(sq(s)->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            return sq_db_error(s, "schema version", err);
        }
        int64_t v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sq(s)->blob_body = v > 0 && sq_schema_blob_body((size_t)v);
        sq(s)->blob_rows = v > 0 && sq_schema_blob_rows((size_t)v);
        if (v < 0 || (size_t)v > sq_schema_count()) {
            buf_printf(err, "store: schema version %lld is newer than this program knows",
                       (long long)v);
            return -1;
        }
        if ((size_t)v == sq_schema_count())
            return 0;
        if (sq_begin(s, true, err) != 0)
            return -1;
        /* Re-read inside the write lock: another process may have migrated meanwhile. */
        if (sqlite3_prepare_v2(sq(s)->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            sq_rollback(s);
            return sq_db_error(s, "schema version", err);
        }
        int64_t v2 = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (v2 != v) {
            sq_rollback(s);
            continue;
        }
        struct buf sql = BUF_INIT;
        buf_printf(&sql, "%s; PRAGMA user_version = %lld;", sq_schema_migration((size_t)v),
                   (long long)v + 1);
        int rc = sq_exec(s, sql.data, err);
        buf_free(&sql);
        sq(s)->blob_body = sq_schema_blob_body((size_t)v + 1);
        sq(s)->blob_rows = sq_schema_blob_rows((size_t)v + 1);
        sq_schema_step_fn *after = sq_schema_after((size_t)v);
        if (rc == 0 && after != NULL)
            rc = after(s, err);
        if (rc != 0) {
            sq_rollback(s);
            return -1;
        }
        if (sq_commit(s, err) != 0)
            return -1;
    }
}

static void sq_close(struct store *s);

static struct store *open_common(const char *dir, const char *dbpath,
                                 const struct store_options *opt, bool temporary, struct buf *err)
{
    struct sq_store *q = xcalloc(1, sizeof(*q));
    struct store *s = &q->base;
    s->drv = &store_sqlite_driver;
    s->opt = *opt;
    q->dir = xstrdup(dir);
    q->temporary = temporary;
    q->blobs.fd = -1;
    sqlite_setup();
    if (sqlite3_open_v2(dbpath, &q->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        temporary ? NULL : sq_vfs_name(opt->fsync)) != SQLITE_OK) {
        buf_printf(err, "store: cannot open %s: %s", dbpath,
                   q->db ? sqlite3_errmsg(q->db) : "out of memory");
        sq_close(s);
        return NULL;
    }
    sqlite3_busy_handler(q->db, busy_wait, NULL);
    /* WAL: readers never block the writer. synchronous=FULL: the WAL is fsync'd at every
     * commit, so a commit that returned is durable (the bodies were synced before it). */
    if (sq_exec(s, "PRAGMA journal_mode = WAL", err) != 0 ||
        sq_exec(s, opt->fsync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = OFF", err) !=
            0 ||
        sq_exec(s, "PRAGMA foreign_keys = ON", err) != 0 ||
        /* statement journals (a batch's statements roll back alone) and sorts in memory:
         * in a file they cost ~10 writes per article of a streamed batch (bench/README) */
        sq_exec(s, "PRAGMA temp_store = MEMORY", err) != 0 || sq_msgid_register(s, err) != 0 ||
        /* the bodies first: a migration may read them (sq_schema_after) */
        blob_dir_open(&q->blobs, dir, opt->fsync, err) != 0 || migrate(s, err) != 0) {
        sq_close(s);
        return NULL;
    }
    return s;
}

/* DIR/store.db (metadata) beside DIR/blobs/ (bodies). */
static struct store *sq_open(const char *dir, const struct store_options *opt, struct buf *err)
{
    struct buf db = BUF_INIT;
    buf_printf(&db, "%s/store.db", dir);
    /* Mail is private: create the database 0600 (SQLite gives its -wal and -shm
     * files the database's mode), whatever the caller's umask. */
    int fd = open(db.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        buf_printf(err, "store: cannot open %s: %s", db.data, strerror(errno));
        buf_free(&db);
        return NULL;
    }
    close(fd);
    struct store *s = open_common(dir, db.data, opt, false, err);
    buf_free(&db);
    return s;
}

/* The metadata in memory, the bodies in dir. */
static struct store *sq_open_temporary(const char *dir, const struct store_options *opt,
                                       struct buf *err)
{
    return open_common(dir, ":memory:", opt, true, err);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            struct buf p = BUF_INIT;
            buf_printf(&p, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(p.data, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p.data);
            else
                unlink(p.data);
            buf_free(&p);
        }
        closedir(d);
    }
    rmdir(path);
}

static void sq_close(struct store *s)
{
    if (s == NULL)
        return;
    struct sq_store *q = sq(s);
    for (size_t i = 0; i < q->n_stmts; i++)
        sqlite3_finalize(q->stmts[i].st);
    if (q->db)
        sqlite3_close(q->db);
    blob_dir_close(&q->blobs);
    if (q->temporary)
        remove_tree(q->dir);
    free(q->dir);
    free(q);
}

/* ---- accounts and mailbox rows ---- */

static const struct {
    const char *name, *special_use;
} default_folders[] = {
    {"INBOX", NULL},      {"Drafts", "\\Drafts"}, {"Sent", "\\Sent"},
    {"Trash", "\\Trash"}, {"Junk", "\\Junk"},     {"Archive", "\\Archive"},
};

int sq_mailbox_insert(struct store *s, const char *owner, const char *name, const char *special_use,
                      struct buf *err)
{
    int64_t uv = sq_meta_get(s, "uidvalidity_next", err);
    if (uv < 0)
        return -1;
    if (uv == 0 || uv > 0xffffffffLL)
        uv = 1; /* wrapped after 4 billion creations: still never equal to a live one's */
    if (sq_meta_set(s, "uidvalidity_next", uv + 1, err) != 0)
        return -1;
    /* Mailbox ids are never reused (store_mailbox_resolve): SQLite would give a
     * deleted last row's id again. */
    int64_t id = sq_meta_get(s, "mailbox_id_next", err);
    if (id < 0 || sq_meta_set(s, "mailbox_id_next", id + 1, err) != 0)
        return -1;
    sqlite3_stmt *st = sq_stmt(
        s,
        "INSERT INTO mailboxes(owner, name, special_use, uidvalidity, uidnext, highestmodseq, id)"
        " VALUES(?, ?, ?, ?, 1, 1, ?)",
        err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (special_use)
        sqlite3_bind_text(st, 3, special_use, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, uv);
    sqlite3_bind_int64(st, 5, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT) {
        buf_printf(err, "mailbox %s already exists", name);
        return -1;
    }
    if (rc != SQLITE_DONE)
        return sq_db_error(s, "create mailbox", err);
    return sq_acl_inherit(s, owner, name, id, err);
}

int sq_account_ensure(struct store *s, const char *owner, struct buf *err)
{
    if (strcmp(owner, STORE_PUBLIC_OWNER) == 0)
        return 0;
    sqlite3_stmt *st =
        sq_stmt(s, "INSERT OR IGNORE INTO accounts(owner, created) VALUES(?, ?)", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "account", err);
    if (sqlite3_changes(sq(s)->db) == 0)
        return 0;
    for (size_t i = 0; i < sizeof(default_folders) / sizeof(default_folders[0]); i++) {
        struct mbrow row;
        int f = sq_mailbox_find(s, owner, default_folders[i].name, &row, err);
        if (f < 0)
            return -1;
        if (f == 1 && sq_mailbox_insert(s, owner, default_folders[i].name,
                                        default_folders[i].special_use, err) != 0)
            return -1;
    }
    return 0;
}

/* Steps a SELECT id, uidvalidity, uidnext, highestmodseq of one mailbox into r. */
static int mbrow_step(struct store *s, sqlite3_stmt *st, struct mbrow *r, struct buf *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 1;
    if (rc != SQLITE_ROW)
        return sq_db_error(s, "find mailbox", err);
    r->id = sqlite3_column_int64(st, 0);
    r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
    r->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
    r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    return 0;
}

int sq_mailbox_find(struct store *s, const char *owner, const char *name, struct mbrow *r,
                    struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT id, uidvalidity, uidnext, highestmodseq FROM mailboxes"
                               " WHERE owner = ? AND name = ?",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    return mbrow_step(s, st, r, err);
}

int sq_mailbox_find_id(struct store *s, const char *owner, int64_t id, struct mbrow *r,
                       struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT id, uidvalidity, uidnext, highestmodseq FROM mailboxes"
                               " WHERE id = ? AND owner = ?",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, owner, -1, SQLITE_STATIC);
    return mbrow_step(s, st, r, err);
}

int sq_mailbox_resolve(struct store *s, const char *owner, const char *name, int64_t *id_r,
                       struct buf *err)
{
    struct buf canon = BUF_INIT;
    struct mbrow row;
    int rc = store_name_check(s, name, &canon, err);
    if (rc == 0)
        rc = sq_mailbox_find(s, owner, canon.data, &row, err);
    buf_free(&canon);
    *id_r = rc == 0 ? row.id : 0;
    return rc;
}

int sq_public_folder_now(struct store *s, const char *name, struct buf *now_r, struct buf *err)
{
    struct buf canon = BUF_INIT;
    if (store_name_check(s, name, &canon, err) != 0) {
        buf_free(&canon);
        return -1;
    }
    /* the folder of that name first: a former name is kept only while no folder has it,
     * but a folder is never shadowed by one */
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT name, 0 FROM mailboxes WHERE owner = ?1 AND name = ?2"
                               " UNION ALL SELECT m.name, 1 FROM public_former_names f"
                               " JOIN mailboxes m ON m.id = f.mailbox_id WHERE f.name = ?2"
                               " ORDER BY 2 LIMIT 1",
                               err);
    int rc = -1;
    if (st != NULL) {
        sqlite3_bind_text(st, 1, STORE_PUBLIC_OWNER, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, canon.data, -1, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            buf_reset(now_r);
            buf_append_cstr(now_r, (const char *)sqlite3_column_text(st, 0));
            rc = 0;
        } else {
            rc = r == SQLITE_DONE ? 1 : sq_db_error(s, "public folder", err);
        }
        sqlite3_reset(st);
    }
    buf_free(&canon);
    return rc;
}

int sq_modseq_next(struct store *s, int64_t mailbox_id, uint64_t *modseq_r, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
                               " WHERE id = ? RETURNING highestmodseq",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, mailbox_id);
    if (sqlite3_step(st) != SQLITE_ROW)
        return sq_db_error(s, "modseq", err);
    *modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

int sq_blob_unref(struct store *s, const char *hash, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "UPDATE blobs SET refs = refs - 1 WHERE hash = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "unref blob", err);
    st = sq_stmt(s, "DELETE FROM blobs WHERE hash = ? AND refs <= 0", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "drop blob", err);
    return 0;
}

int sq_quota_add(struct store *s, const char *owner, int64_t bytes, int64_t messages,
                 struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(
        s,
        "INSERT INTO quota(owner, bytes, messages) VALUES(?, ?, ?) ON CONFLICT(owner)"
        " DO UPDATE SET bytes = bytes + excluded.bytes, messages = messages + excluded.messages",
        err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, bytes);
    sqlite3_bind_int64(st, 3, messages);
    if (sqlite3_step(st) != SQLITE_DONE)
        return sq_db_error(s, "quota", err);
    return 0;
}

/* The n integer columns of sql's row for owner into v (zeros when there is no row). */
static int owner_ints(struct store *s, const char *sql, const char *what, const char *owner,
                      uint64_t *v, int n, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, sql, err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    for (int i = 0; i < n; i++)
        v[i] = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, i) : 0;
    if (rc == SQLITE_ROW)
        sqlite3_reset(st);
    else if (rc != SQLITE_DONE)
        return sq_db_error(s, what, err);
    return 0;
}

void sq_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int sq_account_state_next(struct store *s, const char *owner, int64_t *state_r, struct buf *err)
{
    static const char *const steps[] = {
        "INSERT OR IGNORE INTO account_state VALUES(?, 0)",
        "UPDATE account_state SET state = state + 1 WHERE owner = ?",
        "SELECT state FROM account_state WHERE owner = ?",
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        sqlite3_stmt *st = sq_stmt(s, steps[i], err);
        if (st == NULL)
            return -1;
        sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            *state_r = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            return sq_db_error(s, "account state", err);
    }
    return 0;
}

int sq_account_state(struct store *s, const char *owner, uint64_t *state_r, struct buf *err)
{
    return owner_ints(s, "SELECT state FROM account_state WHERE owner = ?", "account state", owner,
                      state_r, 1, err);
}

int sq_quota_usage(struct store *s, const char *owner, uint64_t *bytes_r, uint64_t *messages_r,
                   struct buf *err)
{
    uint64_t v[2] = {0, 0}; /* gcc -O3 (release) cannot see owner_ints set them */
    int rc = owner_ints(s, "SELECT bytes, messages FROM quota WHERE owner = ?", "quota", owner, v,
                        2, err);
    *bytes_r = v[0];
    *messages_r = v[1];
    return rc;
}

static int sq_totals(struct store *s, struct store_totals *t, struct buf *err)
{
    memset(t, 0, sizeof(*t));
    sqlite3_stmt *st =
        sq_stmt(s,
                "SELECT COUNT(*), COALESCE(SUM(messages), 0), COALESCE(SUM(bytes), 0)"
                " FROM quota",
                err);
    if (st == NULL)
        return -1;
    if (sqlite3_step(st) != SQLITE_ROW)
        return sq_db_error(s, "totals", err);
    t->accounts = (uint64_t)sqlite3_column_int64(st, 0);
    t->messages = (uint64_t)sqlite3_column_int64(st, 1);
    t->bytes = (uint64_t)sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    return 0;
}

/* The connection's page cache (up to SQLite's default 2 MB, full after reading a
 * big account) back to the heap; the caller may trim the heap. */
static void sq_release_memory(struct store *s)
{
    sqlite3_db_release_memory(sq(s)->db);
}

const struct store_driver store_sqlite_driver = {
    .name = "sqlite",
    .open = sq_open,
    .open_temporary = sq_open_temporary,
    .close = sq_close,
    .backup = sq_backup,
    .present = sq_present,
    .restore = sq_restore,
    .mailbox_resolve = sq_mailbox_resolve,
    .public_folder_now = sq_public_folder_now,
    .mailbox_list = sq_mailbox_list,
    .mailbox_get = sq_mailbox_get,
    .mailbox_recent_claim = sq_mailbox_recent_claim,
    .mailbox_create = sq_mailbox_create,
    .mailbox_set_uids = sq_mailbox_set_uids,
    .mailbox_delete = sq_mailbox_delete,
    .mailbox_rename = sq_mailbox_rename,
    .subscribe = sq_subscribe,
    .subscriptions = sq_subscriptions,
    .account_state = sq_account_state,
    .message_list = sq_message_list,
    .message_read = sq_message_read,
    .message_flags = sq_message_flags,
    .message_set_cache = sq_message_set_cache,
    .message_records = sq_message_records,
    .message_set_records = sq_message_set_records,
    .msgid_find = sq_msgid_find,
    .message_copies = sq_message_copies,
    .text_search = sq_text_search,
    .text_emails = sq_text_emails,
    .text_topup = sq_text_topup,
    .data_version = sq_data_version,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .checkpoint_deferred = sq_checkpoint_deferred,
    .checkpoint = sq_checkpoint,
    .message_copy_to = sq_message_copy_to,
    .message_expunge = sq_message_expunge,
    .message_changes = sq_message_changes,
    .expunged_since = sq_expunged_since,
    .deliver = sq_deliver,
    .account_messages = sq_account_messages,
    .account_gone = sq_account_gone,
    .account_dates = sq_account_dates,
    .dates = sq_dates,
    .mailbox_count = sq_mailbox_count,
    .upload = sq_upload,
    .account_blob_read = sq_account_blob_read,
    .quota_usage = sq_quota_usage,
    .totals = sq_totals,
    .acl_set = sq_acl_set,
    .acl_get = sq_acl_get,
    .acl_list = sq_acl_list,
    .acl_rights = sq_acl_rights,
    .acl_shared = sq_acl_shared,
    .newsgroup_anchor_set = sq_newsgroup_anchor_set,
    .newsgroup_anchors = sq_newsgroup_anchors,
    .vacation_get = sq_vacation_get,
    .vacation_set = sq_vacation_set,
    .vacation_claim = sq_vacation_claim,
    .identity_list = sq_identity_list,
    .identity_put = sq_identity_put,
    .identity_delete = sq_identity_delete,
    .identity_gone = sq_identity_gone,
    .feed_cursor = sq_feed_cursor,
    .feed_enqueue = sq_feed_enqueue,
    .feed_pending = sq_feed_pending,
    .feed_done = sq_feed_done,
    .feed_retry = sq_feed_retry,
    .pull_since = sq_pull_since,
    .pull_set = sq_pull_set,
    .blob_stats = sq_blob_stats,
    .gc = sq_gc,
    .dedupe_expire = sq_dedupe_expire,
    .release_memory = sq_release_memory,
};
