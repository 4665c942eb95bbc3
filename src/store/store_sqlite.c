/*
 * store_sqlite.c - the SQLite (WAL) store driver: opening, schema
 * migration, transactions, mailbox names, and the helpers shared by
 * store_mailbox.c, store_message.c and store_deliver.c.
 *
 * Every statement is prepared with bound parameters; no SQL text is ever
 * built from data. This file never touches message bodies (store_blob.c does).
 */
#include "store/store_int.h"
#include "store/store_schema.h"
#include "base/alloc.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_BUSY_TIMEOUT_MS 30000 /* a writer holds the lock for one batch: two fsyncs */

sqlite3_stmt *store_stmt(struct store *s, const char *sql, struct buf *err)
{
    for (size_t i = 0; i < s->n_stmts; i++) {
        if (s->stmts[i].sql == sql) {
            sqlite3_reset(s->stmts[i].st);
            sqlite3_clear_bindings(s->stmts[i].st);
            return s->stmts[i].st;
        }
    }
    if (s->n_stmts == STORE_STMT_CACHE)
        log_panic("store statement cache full (raise STORE_STMT_CACHE)");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        store_db_error(s, "prepare", err);
        return NULL;
    }
    s->stmts[s->n_stmts].sql = sql;
    s->stmts[s->n_stmts].st = st;
    s->n_stmts++;
    return st;
}

int store_db_error(struct store *s, const char *what, struct buf *err)
{
    buf_printf(err, "store: %s: %s", what, sqlite3_errmsg(s->db));
    return -1;
}

int store_exec(struct store *s, const char *sql, struct buf *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        buf_printf(err, "store: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int store_begin(struct store *s, bool write, struct buf *err)
{
    return store_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
}

int store_commit(struct store *s, struct buf *err)
{
    if (store_exec(s, "COMMIT", err) != 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

void store_rollback(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int64_t store_meta_get(struct store *s, const char *key, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT value FROM meta WHERE key = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
        return store_db_error(s, "meta", err);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

int store_meta_set(struct store *s, const char *key, int64_t value, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, "UPDATE meta SET value = ? WHERE key = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, value);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return store_db_error(s, "meta", err);
    return 0;
}

static int migrate(struct store *s, struct buf *err)
{
    for (;;) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            return store_db_error(s, "schema version", err);
        }
        int64_t v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (v < 0 || (size_t)v > store_schema_count()) {
            buf_printf(err, "store: schema version %lld is newer than this program knows",
                       (long long)v);
            return -1;
        }
        if ((size_t)v == store_schema_count())
            return 0;
        if (store_begin(s, true, err) != 0)
            return -1;
        /* Re-read inside the write lock: another process may have migrated meanwhile. */
        if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_finalize(st);
            store_rollback(s);
            return store_db_error(s, "schema version", err);
        }
        int64_t v2 = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (v2 != v) {
            store_rollback(s);
            continue;
        }
        struct buf sql = BUF_INIT;
        buf_printf(&sql, "%s; PRAGMA user_version = %lld;", store_schema_migration((size_t)v),
                   (long long)v + 1);
        int rc = store_exec(s, sql.data, err);
        buf_free(&sql);
        if (rc != 0) {
            store_rollback(s);
            return -1;
        }
        if (store_commit(s, err) != 0)
            return -1;
    }
}

static struct store *open_common(const char *dir, const char *dbpath,
                                 const struct store_options *opt, bool temporary, struct buf *err)
{
    struct store *s = xcalloc(1, sizeof(*s));
    s->dir = xstrdup(dir);
    s->temporary = temporary;
    s->opt = *opt;
    if (sqlite3_open_v2(dbpath, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        buf_printf(err, "store: cannot open %s: %s", dbpath,
                   s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer. synchronous=FULL: the WAL is fsync'd at every
     * commit, so a commit that returned is durable (the bodies were synced before it). */
    if (store_exec(s, "PRAGMA journal_mode = WAL", err) != 0 ||
        store_exec(s, opt->fsync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = OFF", err) !=
            0 ||
        store_exec(s, "PRAGMA foreign_keys = ON", err) != 0 || migrate(s, err) != 0 ||
        blob_dir_open(&s->blobs, dir, opt->fsync, err) != 0) {
        store_close(s);
        return NULL;
    }
    return s;
}

static void default_options(struct store_options *o)
{
    o->segment_size = 64ull << 20;
    o->fsync = true;
    o->mailbox_name_max = STORE_MAILBOX_NAME_MAX;
    o->mailbox_depth_max = STORE_MAILBOX_DEPTH_MAX;
    o->keywords_max = STORE_KEYWORDS_MAX;
    o->expunge_hold = STORE_EXPUNGE_HOLD;
}

struct store *store_open_dir(const char *dir, const struct store_options *opt, struct buf *err)
{
    struct store_options o;
    if (opt)
        o = *opt;
    else
        default_options(&o);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        buf_printf(err, "store: cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
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
    struct store *s = open_common(dir, db.data, &o, false, err);
    buf_free(&db);
    return s;
}

struct store *store_open(const struct wharf_config *cfg, struct buf *err)
{
    struct store_options o;
    default_options(&o);
    o.segment_size = cfg->store_segment_size;
    o.mailbox_name_max = (size_t)cfg->store_mailbox_name_max;
    o.mailbox_depth_max = (size_t)cfg->store_mailbox_depth_max;
    o.keywords_max = (size_t)cfg->store_keywords_max;
    char *dir = config_data_path(cfg, "store");
    struct store *s = store_open_dir(dir, &o, err);
    free(dir);
    return s;
}

struct store *store_open_temporary(struct buf *err)
{
    const char *tmp = getenv("TMPDIR");
    struct buf dir = BUF_INIT;
    buf_printf(&dir, "%s/wharf-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir.data) == NULL) {
        buf_printf(err, "store: mkdtemp: %s", strerror(errno));
        buf_free(&dir);
        return NULL;
    }
    struct store_options o;
    default_options(&o);
    o.fsync = false;
    o.expunge_hold = 0;
    struct store *s = open_common(dir.data, ":memory:", &o, true, err);
    buf_free(&dir);
    return s;
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

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_stmts; i++)
        sqlite3_finalize(s->stmts[i].st);
    if (s->db)
        sqlite3_close(s->db);
    blob_dir_close(&s->blobs);
    if (s->temporary)
        remove_tree(s->dir);
    free(s->dir);
    free(s);
}

/* ---- names ---- */

int store_name_check(struct store *s, const char *name, struct buf *out, struct buf *err)
{
    size_t len = strlen(name);
    buf_reset(out);
    if (len == 0 || len > s->opt.mailbox_name_max) {
        buf_printf(err, "mailbox name must have 1 to %zu bytes", s->opt.mailbox_name_max);
        return -1;
    }
    size_t depth = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '*' || c == '%') {
            buf_append_cstr(err, "mailbox name contains a control or wildcard character");
            return -1;
        }
        if (c == STORE_DELIMITER) {
            if (i == 0 || i + 1 == len || name[i + 1] == STORE_DELIMITER) {
                buf_append_cstr(err, "mailbox name has an empty level");
                return -1;
            }
            depth++;
        }
    }
    if (depth > s->opt.mailbox_depth_max) {
        buf_printf(err, "mailbox name is deeper than %zu levels", s->opt.mailbox_depth_max);
        return -1;
    }
    /* INBOX is case-insensitive, also as the first level of a hierarchy. */
    if (len >= 5 && strncasecmp(name, "INBOX", 5) == 0 &&
        (len == 5 || name[5] == STORE_DELIMITER)) {
        buf_append_cstr(out, STORE_INBOX);
        buf_append(out, name + 5, len - 5);
    } else
        buf_append(out, name, len);
    return 0;
}

/* ---- accounts and mailbox rows ---- */

static const struct {
    const char *name, *special_use;
} default_folders[] = {
    {"INBOX", NULL},      {"Drafts", "\\Drafts"}, {"Sent", "\\Sent"},
    {"Trash", "\\Trash"}, {"Junk", "\\Junk"},     {"Archive", "\\Archive"},
};

int store_mailbox_insert(struct store *s, const char *owner, const char *name,
                         const char *special_use, struct buf *err)
{
    int64_t uv = store_meta_get(s, "uidvalidity_next", err);
    if (uv < 0)
        return -1;
    if (uv == 0 || uv > 0xffffffffLL)
        uv = 1; /* wrapped after 4 billion creations: still never equal to a live one's */
    if (store_meta_set(s, "uidvalidity_next", uv + 1, err) != 0)
        return -1;
    sqlite3_stmt *st = store_stmt(
        s,
        "INSERT INTO mailboxes(owner, name, special_use, uidvalidity, uidnext, highestmodseq)"
        " VALUES(?, ?, ?, ?, 1, 1)",
        err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (special_use)
        sqlite3_bind_text(st, 3, special_use, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, uv);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT) {
        buf_printf(err, "mailbox %s already exists", name);
        return -1;
    }
    if (rc != SQLITE_DONE)
        return store_db_error(s, "create mailbox", err);
    return 0;
}

int store_account_ensure(struct store *s, const char *owner, struct buf *err)
{
    if (strcmp(owner, STORE_PUBLIC_OWNER) == 0)
        return 0;
    sqlite3_stmt *st =
        store_stmt(s, "INSERT OR IGNORE INTO accounts(owner, created) VALUES(?, ?)", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE)
        return store_db_error(s, "account", err);
    if (sqlite3_changes(s->db) == 0)
        return 0;
    for (size_t i = 0; i < sizeof(default_folders) / sizeof(default_folders[0]); i++) {
        struct mbrow row;
        int f = store_mailbox_find(s, owner, default_folders[i].name, &row, err);
        if (f < 0)
            return -1;
        if (f == 1 && store_mailbox_insert(s, owner, default_folders[i].name,
                                           default_folders[i].special_use, err) != 0)
            return -1;
    }
    return 0;
}

int store_mailbox_find(struct store *s, const char *owner, const char *name, struct mbrow *r,
                       struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s,
                                  "SELECT id, uidvalidity, uidnext, highestmodseq FROM mailboxes"
                                  " WHERE owner = ? AND name = ?",
                                  err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 1;
    if (rc != SQLITE_ROW)
        return store_db_error(s, "find mailbox", err);
    r->id = sqlite3_column_int64(st, 0);
    r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
    r->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
    r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    return 0;
}

int store_modseq_next(struct store *s, int64_t mailbox_id, uint64_t *modseq_r, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s,
                                  "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
                                  " WHERE id = ? RETURNING highestmodseq",
                                  err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, mailbox_id);
    if (sqlite3_step(st) != SQLITE_ROW)
        return store_db_error(s, "modseq", err);
    *modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

int store_blob_unref(struct store *s, const char *hash, struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, "UPDATE blobs SET refs = refs - 1 WHERE hash = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return store_db_error(s, "unref blob", err);
    st = store_stmt(s, "DELETE FROM blobs WHERE hash = ? AND refs <= 0", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        return store_db_error(s, "drop blob", err);
    return 0;
}

int store_quota_add(struct store *s, const char *owner, int64_t bytes, int64_t messages,
                    struct buf *err)
{
    sqlite3_stmt *st = store_stmt(
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
        return store_db_error(s, "quota", err);
    return 0;
}

int store_quota_usage(struct store *s, const char *owner, uint64_t *bytes_r, uint64_t *messages_r,
                      struct buf *err)
{
    sqlite3_stmt *st = store_stmt(s, "SELECT bytes, messages FROM quota WHERE owner = ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *bytes_r = *messages_r = 0;
    if (rc == SQLITE_ROW) {
        *bytes_r = (uint64_t)sqlite3_column_int64(st, 0);
        *messages_r = (uint64_t)sqlite3_column_int64(st, 1);
        sqlite3_reset(st);
    } else if (rc != SQLITE_DONE)
        return store_db_error(s, "quota", err);
    return 0;
}
