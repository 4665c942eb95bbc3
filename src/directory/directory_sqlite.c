/*
 * directory_sqlite.c - the embedded directory driver: SQLite at
 * DATA_DIRECTORY/directory/directory.db.
 *
 * Holds the schema and its migrations (PRAGMA user_version is the schema
 * version), and every read and write of domains, accounts and aliases. SQL
 * only through prepared statements with bound parameters; never a string
 * built from input. It must never log a password hash.
 *
 * The password hashes are not in directory.db: they live in
 * DATA_DIRECTORY/auth/credentials.db (table credentials: account, hash),
 * which only the auth user and root can open (doc/architecture.md). The auth
 * process opens that file alone (directory_open_credentials); the wharf
 * command attaches it to its directory handle (directory_attach_credentials).
 */
#include "directory/directory_int.h"
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a writer (the wharf command) may wait for another one. */
#define DIRECTORY_BUSY_TIMEOUT_MS 5000

/* Schema migrations: migrations[i] takes the schema from version i to i+1. */
static const char *const migrations[] = {
    /* 0 -> 1: domains, accounts, aliases. */
    "CREATE TABLE domains ("
    "  name TEXT PRIMARY KEY NOT NULL," /* lower case */
    "  created INTEGER NOT NULL);"
    "CREATE TABLE accounts ("
    "  name TEXT PRIMARY KEY NOT NULL," /* local@domain, domain lower case */
    "  domain TEXT NOT NULL,"
    "  password TEXT," /* crypt(3) string, NULL: cannot log in */
    "  quota_bytes INTEGER NOT NULL DEFAULT 0,"
    "  quota_messages INTEGER NOT NULL DEFAULT 0,"
    "  home_server TEXT," /* NULL: this server */
    "  created INTEGER NOT NULL);"
    "CREATE INDEX accounts_domain ON accounts(domain);"
    "CREATE TABLE aliases ("
    "  address TEXT NOT NULL," /* local@domain, or @domain: catch-all */
    "  domain TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  PRIMARY KEY (address, target));"
    "CREATE INDEX aliases_domain ON aliases(domain);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const stmt_sql[STMT__COUNT] = {
    [STMT_DOMAIN_GET] = "SELECT 1 FROM domains WHERE name = ?1",
    [STMT_ACCOUNT_GET] = ("SELECT name, password, quota_bytes, quota_messages FROM accounts "
                          "WHERE name = ?1"),
    [STMT_ALIAS_TARGETS] = "SELECT target FROM aliases WHERE address = ?1 ORDER BY target",
    [STMT_FIRST_ACCOUNT] = ("SELECT name FROM accounts WHERE home_server IS NULL "
                            "ORDER BY created, rowid LIMIT 1"),
};

static enum directory_status db_error(struct directory *d, struct buf *err, const char *what)
{
    buf_printf(err, "directory: %s: %s", what, sqlite3_errmsg(d->db));
    return DIRECTORY_ERR_DB;
}

static int exec_sql(struct directory *d, const char *sql, struct buf *err)
{
    char *msg = NULL;
    if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        buf_printf(err, "directory: %s", msg ? msg : sqlite3_errmsg(d->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *prepare(struct directory *d, const char *sql, struct buf *err);
static void bind_text(sqlite3_stmt *st, int i, const char *s);
static int step_done(sqlite3_stmt *st);

static int user_version(struct directory *d, int *v_r, struct buf *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        db_error(d, err, "user_version");
        return -1;
    }
    int rc = sqlite3_step(st);
    *v_r = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        db_error(d, err, "user_version");
        return -1;
    }
    return 0;
}

static int migrate(struct directory *d, struct buf *err)
{
    if (exec_sql(d, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    int v;
    if (user_version(d, &v, err) != 0)
        goto fail;
    if (v > SCHEMA_VERSION) {
        buf_printf(err,
                   "directory: directory.db has schema version %d, newer than this Wharf "
                   "knows (%d); run the newer Wharf",
                   v, SCHEMA_VERSION);
        goto fail;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if (exec_sql(d, migrations[v], err) != 0)
            goto fail;
        struct buf sql = BUF_INIT; /* an integer we chose, not input */
        buf_printf(&sql, "PRAGMA user_version = %d", v + 1);
        int r = exec_sql(d, sql.data, err);
        buf_free(&sql);
        if (r != 0)
            goto fail;
        log_info("directory: schema migrated to version %d", v + 1);
    }
    return exec_sql(d, "COMMIT", err);
fail:
    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/*
 * As root, creates the database file with its future owner (the wharf user,
 * or the auth user for the credentials) before SQLite opens it: SQLite run
 * by root gives the -wal and -shm files the owner of the database file, so
 * no root-owned file is left where an unprivileged process must write.
 */
static int precreate(const struct wharf_config *cfg, const char *path, bool auth, struct buf *err)
{
    if (geteuid() != 0)
        return 0;
    uid_t uid;
    gid_t gid;
    /* No such user: a process that did not prepare DATA (a unit test) keeps the file. */
    if (!(auth ? datadir_auth_ids(cfg, &uid, &gid) : datadir_wharf_ids(cfg, &uid, &gid))) {
        uid = 0;
        gid = 0;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        buf_printf(err, "directory: cannot create %s: %m", path);
        return -1;
    }
    struct stat st;
    int r = fstat(fd, &st);
    if (r == 0 && st.st_uid == 0)
        r = fchown(fd, uid, gid);
    if (r == 0 && (st.st_mode & 077) != 0)
        r = fchmod(fd, 0600);
    if (r != 0)
        buf_printf(err, "directory: cannot give %s to its owner: %m", path);
    close(fd);
    return r;
}

#define CRED_TABLE_SQL                                                                             \
    "CREATE TABLE IF NOT EXISTS %s.credentials ("                                                  \
    "  account TEXT PRIMARY KEY NOT NULL," /* local@domain, as in directory.db */                  \
    "  hash TEXT NOT NULL);"               /* crypt(3) string */

struct directory *directory_open_credentials(const struct wharf_config *cfg, struct buf *err)
{
    struct directory *d = xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    buf_init(&d->srs_secret);
    d->cred_only = true;
    char *path = config_data_path(cfg, "auth/credentials.db");
    int rc = precreate(cfg, path, true, err) != 0
                 ? SQLITE_CANTOPEN
                 : sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        if (err->len == 0)
            buf_printf(err, "directory: cannot open %s: %s", path,
                       d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
        free(path);
        directory_close(d);
        return NULL;
    }
    free(path);
    sqlite3_busy_timeout(d->db, DIRECTORY_BUSY_TIMEOUT_MS);
    struct buf sql = BUF_INIT;
    buf_printf(&sql, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; " CRED_TABLE_SQL,
               "main");
    int r = exec_sql(d, sql.data, err);
    buf_free(&sql);
    if (r != 0) {
        directory_close(d);
        return NULL;
    }
    d->cred_table = "main.credentials";
    return d;
}

int directory_attach_credentials(struct directory *d, struct buf *err)
{
    if (d->cred_table != NULL)
        return 0;
    char *path = config_data_path(d->cfg, "auth/credentials.db");
    if (precreate(d->cfg, path, true, err) != 0) {
        free(path);
        return -1;
    }
    sqlite3_stmt *st = prepare(d, "ATTACH DATABASE ?1 AS cred", err);
    if (st == NULL) {
        free(path);
        return -1;
    }
    bind_text(st, 1, path);
    free(path);
    int rc = step_done(st);
    sqlite3_finalize(st);
    if (rc != 0) {
        db_error(d, err, "cannot attach the credential database");
        return -1;
    }
    struct buf sql = BUF_INIT;
    buf_printf(&sql,
               "PRAGMA cred.journal_mode = WAL; PRAGMA cred.synchronous = FULL; " CRED_TABLE_SQL,
               "cred");
    rc = exec_sql(d, sql.data, err);
    buf_free(&sql);
    if (rc != 0)
        return -1;
    d->cred_table = "cred.credentials";
    /* Hashes an older Wharf kept in directory.db move out, and their bytes are
     * overwritten (secure_delete) and checkpointed out of the WAL. */
    if (exec_sql(d,
                 "BEGIN IMMEDIATE;"
                 "INSERT OR REPLACE INTO cred.credentials (account, hash)"
                 "  SELECT name, password FROM main.accounts WHERE password IS NOT NULL;",
                 err) != 0)
        return -1;
    int moved = sqlite3_changes(d->db);
    if (exec_sql(d,
                 "PRAGMA main.secure_delete = ON;"
                 "UPDATE main.accounts SET password = NULL WHERE password IS NOT NULL;"
                 "COMMIT;",
                 err) != 0) {
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (moved > 0) {
        sqlite3_exec(d->db, "VACUUM main; PRAGMA main.wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
        log_info("directory: moved %d password hashes from directory.db to auth/credentials.db",
                 moved);
    }
    return 0;
}

struct directory *directory_open(const struct wharf_config *cfg, struct buf *err)
{
    struct directory *d = xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    buf_init(&d->srs_secret);
    char *path = config_data_path(cfg, "directory/directory.db");
    if (precreate(cfg, path, false, err) != 0) {
        free(path);
        directory_close(d);
        return NULL;
    }
    int rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        buf_printf(err, "directory: cannot open %s: %s", path,
                   d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
        free(path);
        directory_close(d);
        return NULL;
    }
    free(path);
    sqlite3_busy_timeout(d->db, DIRECTORY_BUSY_TIMEOUT_MS);
    /* WAL: the auth process reads while the wharf command writes. FULL: an
     * account change is on disk when the command says so. */
    if (exec_sql(d, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", err) != 0 ||
        migrate(d, err) != 0) {
        directory_close(d);
        return NULL;
    }
    for (int i = 0; i < STMT__COUNT; i++) {
        if (sqlite3_prepare_v3(d->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &d->stmt[i],
                               NULL) != SQLITE_OK) {
            db_error(d, err, "prepare");
            directory_close(d);
            return NULL;
        }
    }
    return d;
}

void directory_close(struct directory *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(d->stmt[i]);
    sqlite3_close(d->db);
    buf_free(&d->srs_secret);
    free(d);
}

/* ---- small helpers around one statement ---- */

static sqlite3_stmt *prepare(struct directory *d, const char *sql, struct buf *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_error(d, err, "prepare");
        return NULL;
    }
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

static sqlite3_stmt *cached(struct directory *d, enum directory_stmt which, const char *arg)
{
    sqlite3_stmt *st = d->stmt[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    bind_text(st, 1, arg);
    return st;
}

/* Steps a statement that returns no rows; 0 or an sqlite error code. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

/* ---- lookups used by resolve ---- */

int directory_db_domain_exists(struct directory *d, const char *domain, struct buf *err)
{
    sqlite3_stmt *st = cached(d, STMT_DOMAIN_GET, domain);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (r < 0)
        db_error(d, err, "domain lookup");
    sqlite3_reset(st);
    return r;
}

int directory_db_account_exists(struct directory *d, const char *address, struct buf *err)
{
    sqlite3_stmt *st = cached(d, STMT_ACCOUNT_GET, address);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (r < 0)
        db_error(d, err, "account lookup");
    sqlite3_reset(st);
    return r;
}

int directory_db_first_account(struct directory *d, struct buf *out, struct buf *err)
{
    sqlite3_stmt *st = d->stmt[STMT_FIRST_ACCOUNT];
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (r > 0)
        buf_append_cstr(out, (const char *)sqlite3_column_text(st, 0));
    if (r < 0)
        db_error(d, err, "first account lookup");
    sqlite3_reset(st);
    return r;
}

int directory_db_alias_targets(struct directory *d, const char *address, char ***v, size_t *n_r,
                               struct buf *err)
{
    sqlite3_stmt *st = cached(d, STMT_ALIAS_TARGETS, address);
    int count = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *v = xreallocarray(*v, *n_r + 1, sizeof(char *));
        (*v)[(*n_r)++] = xstrdup((const char *)sqlite3_column_text(st, 0));
        count++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        db_error(d, err, "alias lookup");
        return -1;
    }
    return count;
}

bool directory_is_local_domain(struct directory *d, const char *domain)
{
    char *norm = directory_normalize_domain(domain);
    if (norm == NULL)
        return false;
    bool local = strlist_contains_nocase(&d->cfg->mydomains, norm);
    if (!local) {
        struct buf err = BUF_INIT;
        int r = directory_db_domain_exists(d, norm, &err);
        if (r < 0)
            log_error("%s", buf_cstr(&err));
        local = r == 1;
        buf_free(&err);
    }
    free(norm);
    return local;
}

int directory_account_info(struct directory *d, const char *account, uint64_t *bytes_r,
                           uint64_t *messages_r, struct buf *home_r, struct buf *err)
{
    char *norm = directory_normalize_address(account, false);
    if (norm == NULL)
        return 0;
    sqlite3_stmt *st = prepare(
        d, "SELECT quota_bytes, quota_messages, home_server FROM accounts WHERE name = ?1", err);
    if (st == NULL) {
        free(norm);
        return -1;
    }
    bind_text(st, 1, norm);
    free(norm);
    int rc = sqlite3_step(st), r = 0;
    buf_reset(home_r);
    if (rc == SQLITE_ROW) {
        *bytes_r = (uint64_t)sqlite3_column_int64(st, 0);
        *messages_r = (uint64_t)sqlite3_column_int64(st, 1);
        if (sqlite3_column_type(st, 2) == SQLITE_TEXT)
            buf_append_cstr(home_r, (const char *)sqlite3_column_text(st, 2));
        r = 1;
    } else if (rc != SQLITE_DONE) {
        db_error(d, err, "account lookup");
        r = -1;
    }
    sqlite3_finalize(st);
    return r;
}

int directory_quota(struct directory *d, const char *account, uint64_t *bytes_r,
                    uint64_t *messages_r)
{
    sqlite3_stmt *st = cached(d, STMT_ACCOUNT_GET, account);
    int r = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *bytes_r = (uint64_t)sqlite3_column_int64(st, 2);
        *messages_r = (uint64_t)sqlite3_column_int64(st, 3);
        r = 0;
    }
    sqlite3_reset(st);
    return r;
}

/* A statement on the credentials table: head, its schema-qualified name, tail. */
static sqlite3_stmt *cred_prepare(struct directory *d, const char *head, const char *tail,
                                  struct buf *err)
{
    if (d->cred_table == NULL) {
        buf_printf(err, "directory: the password hashes are in the credential database, which "
                        "this process does not open");
        return NULL;
    }
    struct buf q = BUF_INIT;
    buf_printf(&q, "%s%s%s", head, d->cred_table, tail);
    sqlite3_stmt *st = prepare(d, q.data, err);
    buf_free(&q);
    return st;
}

/* Sets (hash) or removes (hash NULL) the password hash of a canonical account name. */
static enum directory_status cred_set(struct directory *d, const char *account, const char *hash,
                                      struct buf *err)
{
    sqlite3_stmt *st =
        hash ? cred_prepare(d, "INSERT OR REPLACE INTO ", " (account, hash) VALUES (?1, ?2)", err)
             : cred_prepare(d, "DELETE FROM ", " WHERE account = ?1", err);
    if (st == NULL)
        return DIRECTORY_ERR_DB;
    bind_text(st, 1, account);
    if (hash)
        bind_text(st, 2, hash);
    enum directory_status s = step_done(st) == 0 ? DIRECTORY_OK : db_error(d, err, "credentials");
    sqlite3_finalize(st);
    return s;
}

enum directory_status directory_account_hash(struct directory *d, const char *username,
                                             struct buf *account_r, struct buf *hash_r,
                                             struct buf *err)
{
    char *name = directory_normalize_address(username, false);
    if (name == NULL)
        return DIRECTORY_ERR_NOT_FOUND;
    sqlite3_stmt *st = cred_prepare(d, "SELECT account, hash FROM ", " WHERE account = ?1", err);
    if (st == NULL) {
        free(name);
        return DIRECTORY_ERR_DB;
    }
    bind_text(st, 1, name);
    free(name);
    enum directory_status s = DIRECTORY_ERR_NOT_FOUND;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        buf_reset(account_r);
        buf_append_cstr(account_r, (const char *)sqlite3_column_text(st, 0));
        buf_reset(hash_r);
        buf_append_cstr(hash_r, (const char *)sqlite3_column_text(st, 1));
        s = DIRECTORY_OK;
    } else if (rc != SQLITE_DONE) {
        s = db_error(d, err, "account lookup");
    }
    sqlite3_finalize(st);
    return s;
}

/* ---- domains ---- */

enum directory_status directory_domain_add(struct directory *d, const char *domain, struct buf *err)
{
    char *norm = directory_normalize_domain(domain);
    if (norm == NULL) {
        buf_printf(err, "'%s' is not a valid domain name", domain);
        return DIRECTORY_ERR_INVALID;
    }
    enum directory_status s = DIRECTORY_OK;
    sqlite3_stmt *st = prepare(d, "INSERT INTO domains (name, created) VALUES (?1, ?2)", err);
    if (st == NULL) {
        free(norm);
        return DIRECTORY_ERR_DB;
    }
    bind_text(st, 1, norm);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    int rc = step_done(st);
    if (rc == SQLITE_CONSTRAINT) {
        buf_printf(err, "domain %s already exists", norm);
        s = DIRECTORY_ERR_EXISTS;
    } else if (rc != 0) {
        s = db_error(d, err, "domain add");
    }
    sqlite3_finalize(st);
    free(norm);
    return s;
}

/* Counts rows of "SELECT count(*) ... WHERE x = ?1"; -1 on error. */
static long long count_rows(struct directory *d, const char *sql, const char *arg, struct buf *err)
{
    sqlite3_stmt *st = prepare(d, sql, err);
    if (st == NULL)
        return -1;
    bind_text(st, 1, arg);
    long long n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        db_error(d, err, "count");
    sqlite3_finalize(st);
    return n;
}

enum directory_status directory_domain_del(struct directory *d, const char *domain, struct buf *err)
{
    char *norm = directory_normalize_domain(domain);
    if (norm == NULL) {
        buf_printf(err, "'%s' is not a valid domain name", domain);
        return DIRECTORY_ERR_INVALID;
    }
    enum directory_status s = DIRECTORY_OK;
    long long users = count_rows(d, "SELECT count(*) FROM accounts WHERE domain = ?1", norm, err);
    long long aliases =
        users < 0 ? -1 : count_rows(d, "SELECT count(*) FROM aliases WHERE domain = ?1", norm, err);
    if (users < 0 || aliases < 0) {
        s = DIRECTORY_ERR_DB;
    } else if (users + aliases > 0) {
        buf_printf(err,
                   "domain %s still has %lld accounts and %lld alias entries; delete them first",
                   norm, users, aliases);
        s = DIRECTORY_ERR_IN_USE;
    } else {
        sqlite3_stmt *st = prepare(d, "DELETE FROM domains WHERE name = ?1", err);
        if (st == NULL) {
            s = DIRECTORY_ERR_DB;
        } else {
            bind_text(st, 1, norm);
            if (step_done(st) != 0)
                s = db_error(d, err, "domain del");
            else if (sqlite3_changes(d->db) == 0) {
                buf_printf(err, "no such domain: %s", norm);
                s = DIRECTORY_ERR_NOT_FOUND;
            }
            sqlite3_finalize(st);
        }
    }
    free(norm);
    return s;
}

enum directory_status directory_domain_list(struct directory *d,
                                            void (*fn)(void *arg, const char *domain), void *arg,
                                            struct buf *err)
{
    sqlite3_stmt *st = prepare(d, "SELECT name FROM domains ORDER BY name", err);
    if (st == NULL)
        return DIRECTORY_ERR_DB;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(st, 0));
    enum directory_status s = rc == SQLITE_DONE ? DIRECTORY_OK : db_error(d, err, "domain list");
    sqlite3_finalize(st);
    return s;
}

/* ---- accounts ---- */

/* Normalizes address into *norm_r and checks that its domain is ours. */
static enum directory_status local_address(struct directory *d, const char *address,
                                           bool allow_catchall, char **norm_r, struct buf *err)
{
    char *norm = directory_normalize_address(address, allow_catchall);
    if (norm == NULL) {
        buf_printf(err, "'%s' is not a valid address (local@domain%s)", address,
                   allow_catchall ? " or @domain" : "");
        return DIRECTORY_ERR_INVALID;
    }
    const char *domain = strrchr(norm, '@') + 1;
    if (!directory_is_local_domain(d, domain)) {
        buf_printf(err, "unknown domain %s (add it with: wharf domain add %s)", domain, domain);
        free(norm);
        return DIRECTORY_ERR_UNKNOWN_DOMAIN;
    }
    *norm_r = norm;
    return DIRECTORY_OK;
}

static enum directory_status account_change(struct directory *d, const char *address,
                                            const char *sql, const char *text, const uint64_t *n1,
                                            const uint64_t *n2, struct buf *err);

enum directory_status directory_account_add(struct directory *d, const char *address,
                                            const char *hash, uint64_t quota_bytes,
                                            uint64_t quota_messages, struct buf *err)
{
    char *norm;
    if (hash != NULL && d->cred_table == NULL) {
        buf_printf(err, "directory: the credential database is not open");
        return DIRECTORY_ERR_DB;
    }
    enum directory_status s = local_address(d, address, false, &norm, err);
    if (s != DIRECTORY_OK)
        return s;
    sqlite3_stmt *st = prepare(d,
                               "INSERT INTO accounts (name, domain, password, quota_bytes, "
                               "quota_messages, created) VALUES (?1, ?2, NULL, ?4, ?5, ?6)",
                               err);
    if (st == NULL) {
        free(norm);
        return DIRECTORY_ERR_DB;
    }
    bind_text(st, 1, norm);
    bind_text(st, 2, strrchr(norm, '@') + 1);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)quota_bytes);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)quota_messages);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
    int rc = step_done(st);
    if (rc == SQLITE_CONSTRAINT) {
        buf_printf(err, "account %s already exists", norm);
        s = DIRECTORY_ERR_EXISTS;
    } else if (rc != 0) {
        s = db_error(d, err, "account add");
    }
    sqlite3_finalize(st);
    if (s == DIRECTORY_OK && hash != NULL && (s = cred_set(d, norm, hash, err)) != DIRECTORY_OK) {
        /* no account without the password it was added with */
        struct buf ignored = BUF_INIT;
        account_change(d, norm, "DELETE FROM accounts WHERE name = ?1", NULL, NULL, NULL, &ignored);
        buf_free(&ignored);
    }
    free(norm);
    return s;
}

/* Runs an UPDATE/DELETE on one account (?1 = name, then two optional values). */
static enum directory_status account_change(struct directory *d, const char *address,
                                            const char *sql, const char *text, const uint64_t *n1,
                                            const uint64_t *n2, struct buf *err)
{
    char *norm = directory_normalize_address(address, false);
    if (norm == NULL) {
        buf_printf(err, "'%s' is not a valid address (local@domain)", address);
        return DIRECTORY_ERR_INVALID;
    }
    sqlite3_stmt *st = prepare(d, sql, err);
    if (st == NULL) {
        free(norm);
        return DIRECTORY_ERR_DB;
    }
    enum directory_status s = DIRECTORY_OK;
    bind_text(st, 1, norm);
    if (text)
        bind_text(st, 2, text);
    if (n1) {
        sqlite3_bind_int64(st, 2, (sqlite3_int64)*n1);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)*n2);
    }
    if (step_done(st) != 0)
        s = db_error(d, err, "account change");
    else if (sqlite3_changes(d->db) == 0) {
        buf_printf(err, "no such account: %s", norm);
        s = DIRECTORY_ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    free(norm);
    return s;
}

enum directory_status directory_account_del(struct directory *d, const char *address,
                                            struct buf *err)
{
    enum directory_status s =
        account_change(d, address, "DELETE FROM accounts WHERE name = ?1", NULL, NULL, NULL, err);
    char *norm = directory_normalize_address(address, false);
    if (s == DIRECTORY_OK && d->cred_table != NULL)
        s = cred_set(d, norm, NULL, err);
    free(norm);
    return s;
}

enum directory_status directory_account_set_hash(struct directory *d, const char *address,
                                                 const char *hash, struct buf *err)
{
    if (d->cred_table == NULL) {
        buf_printf(err, "directory: the credential database is not open");
        return DIRECTORY_ERR_DB;
    }
    /* The account must exist: a no-op update tells. */
    enum directory_status s = account_change(
        d, address, "UPDATE accounts SET password = NULL WHERE name = ?1", NULL, NULL, NULL, err);
    if (s != DIRECTORY_OK)
        return s;
    char *norm = directory_normalize_address(address, false);
    s = cred_set(d, norm, hash, err);
    free(norm);
    return s;
}

enum directory_status directory_account_set_quota(struct directory *d, const char *address,
                                                  uint64_t quota_bytes, uint64_t quota_messages,
                                                  struct buf *err)
{
    return account_change(
        d, address, "UPDATE accounts SET quota_bytes = ?2, quota_messages = ?3 WHERE name = ?1",
        NULL, &quota_bytes, &quota_messages, err);
}

/*
 * Prepares a listing whose ?1 is an optional domain filter (NULL: every
 * domain), normalized and bound. Returns OK with *st_r to step and finalize.
 */
static enum directory_status prepare_domain_list(struct directory *d, const char *domain,
                                                 const char *sql, sqlite3_stmt **st_r,
                                                 struct buf *err)
{
    char *norm = NULL;
    if (domain != NULL && (norm = directory_normalize_domain(domain)) == NULL) {
        buf_printf(err, "'%s' is not a valid domain name", domain);
        return DIRECTORY_ERR_INVALID;
    }
    *st_r = prepare(d, sql, err);
    if (*st_r != NULL)
        bind_text(*st_r, 1, norm); /* SQLITE_TRANSIENT: sqlite keeps its own copy */
    free(norm);
    return *st_r != NULL ? DIRECTORY_OK : DIRECTORY_ERR_DB;
}

enum directory_status directory_account_list(struct directory *d, const char *domain,
                                             void (*fn)(void *arg,
                                                        const struct directory_account *a),
                                             void *arg, struct buf *err)
{
    sqlite3_stmt *st;
    struct buf sql = BUF_INIT;
    if (d->cred_table != NULL)
        buf_printf(&sql,
                   "SELECT name, quota_bytes, quota_messages, "
                   "EXISTS (SELECT 1 FROM %s c WHERE c.account = accounts.name) "
                   "FROM accounts WHERE ?1 IS NULL OR domain = ?1 ORDER BY name",
                   d->cred_table);
    else
        buf_append_cstr(&sql, "SELECT name, quota_bytes, quota_messages, password IS NOT NULL "
                              "FROM accounts WHERE ?1 IS NULL OR domain = ?1 ORDER BY name");
    enum directory_status ps = prepare_domain_list(d, domain, sql.data, &st, err);
    buf_free(&sql);
    if (ps != DIRECTORY_OK)
        return ps;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct directory_account a = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .quota_bytes = (uint64_t)sqlite3_column_int64(st, 1),
            .quota_messages = (uint64_t)sqlite3_column_int64(st, 2),
            .has_password = sqlite3_column_int(st, 3) != 0,
        };
        fn(arg, &a);
    }
    enum directory_status s = rc == SQLITE_DONE ? DIRECTORY_OK : db_error(d, err, "account list");
    sqlite3_finalize(st);
    return s;
}

/* ---- aliases ---- */

enum directory_status directory_alias_add(struct directory *d, const char *address,
                                          char *const *targets, size_t n_targets, struct buf *err)
{
    char *norm;
    enum directory_status s = local_address(d, address, true, &norm, err);
    if (s != DIRECTORY_OK)
        return s;
    if (n_targets == 0) {
        buf_printf(err, "alias %s needs at least one target", norm);
        free(norm);
        return DIRECTORY_ERR_INVALID;
    }
    char **ntargets = xcalloc(n_targets, sizeof(char *));
    for (size_t i = 0; i < n_targets && s == DIRECTORY_OK; i++) {
        ntargets[i] = directory_normalize_address(targets[i], false);
        if (ntargets[i] == NULL) {
            buf_printf(err, "target '%s' is not a valid address (local@domain)", targets[i]);
            s = DIRECTORY_ERR_INVALID;
        }
    }
    sqlite3_stmt *st = NULL;
    if (s == DIRECTORY_OK &&
        (st = prepare(d,
                      "INSERT OR IGNORE INTO aliases (address, domain, target) "
                      "VALUES (?1, ?2, ?3)",
                      err)) == NULL)
        s = DIRECTORY_ERR_DB;
    if (s == DIRECTORY_OK && exec_sql(d, "BEGIN IMMEDIATE", err) != 0)
        s = DIRECTORY_ERR_DB;
    for (size_t i = 0; i < n_targets && s == DIRECTORY_OK; i++) {
        sqlite3_reset(st);
        bind_text(st, 1, norm);
        bind_text(st, 2, strrchr(norm, '@') + 1);
        bind_text(st, 3, ntargets[i]);
        if (step_done(st) != 0)
            s = db_error(d, err, "alias add");
    }
    if (s == DIRECTORY_OK && exec_sql(d, "COMMIT", err) != 0)
        s = DIRECTORY_ERR_DB;
    if (s == DIRECTORY_ERR_DB)
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(st);
    for (size_t i = 0; i < n_targets; i++)
        free(ntargets[i]);
    free(ntargets);
    free(norm);
    return s;
}

enum directory_status directory_alias_del(struct directory *d, const char *address,
                                          char *const *targets, size_t n_targets, struct buf *err)
{
    char *norm = directory_normalize_address(address, true);
    if (norm == NULL) {
        buf_printf(err, "'%s' is not a valid address (local@domain or @domain)", address);
        return DIRECTORY_ERR_INVALID;
    }
    sqlite3_stmt *st = prepare(d,
                               "DELETE FROM aliases WHERE address = ?1 AND "
                               "(?2 IS NULL OR target = ?2)",
                               err);
    if (st == NULL) {
        free(norm);
        return DIRECTORY_ERR_DB;
    }
    enum directory_status s = DIRECTORY_OK;
    int changes = 0;
    for (size_t i = 0; i < (n_targets ? n_targets : 1) && s == DIRECTORY_OK; i++) {
        char *t = NULL;
        if (n_targets && (t = directory_normalize_address(targets[i], false)) == NULL) {
            buf_printf(err, "target '%s' is not a valid address", targets[i]);
            s = DIRECTORY_ERR_INVALID;
            break;
        }
        sqlite3_reset(st);
        bind_text(st, 1, norm);
        bind_text(st, 2, t);
        if (step_done(st) != 0)
            s = db_error(d, err, "alias del");
        else
            changes += sqlite3_changes(d->db);
        free(t);
    }
    if (s == DIRECTORY_OK && changes == 0) {
        buf_printf(err, "no such alias%s: %s", n_targets ? " target" : "", norm);
        s = DIRECTORY_ERR_NOT_FOUND;
    }
    sqlite3_finalize(st);
    free(norm);
    return s;
}

enum directory_status directory_alias_list(struct directory *d, const char *domain,
                                           void (*fn)(void *arg, const char *address,
                                                      const char *target),
                                           void *arg, struct buf *err)
{
    sqlite3_stmt *st;
    enum directory_status ps =
        prepare_domain_list(d, domain,
                            "SELECT address, target FROM aliases "
                            "WHERE ?1 IS NULL OR domain = ?1 ORDER BY address, target",
                            &st, err);
    if (ps != DIRECTORY_OK)
        return ps;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
    enum directory_status s = rc == SQLITE_DONE ? DIRECTORY_OK : db_error(d, err, "alias list");
    sqlite3_finalize(st);
    return s;
}
