/*
 * directory_sqlite.c - the embedded directory driver ("sqlite", the
 * directory_driver table of directory_driver.h): SQLite at
 * DATA_DIRECTORY/directory/directory.db.
 *
 * Holds the schema and its migrations (PRAGMA user_version is the schema
 * version), and every read and write of domains, accounts and aliases. SQL
 * only through prepared statements with bound parameters; never a string
 * built from input. It must never log a password hash, and it is the only
 * file of the directory that may name a sqlite3 type or function.
 *
 * The password hashes are not in directory.db: they live in
 * DATA_DIRECTORY/auth/credentials.db (table credentials: account, hash),
 * which only the auth user and root can open (doc/architecture.md). The auth
 * process opens that file alone (open_credentials); the wharf command
 * attaches it to its directory handle (attach_credentials).
 */
#include "directory/directory_driver.h"
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/sqlite_setup.h"
#include "base/sqlite_snapshot.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a writer (the wharf command) may wait for another one. */
#define DIRECTORY_BUSY_TIMEOUT_MS 5000
/* How long wharf backup waits for a writer to let it read. */
#define DIRECTORY_BACKUP_BUSY_MS 30000

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
    /* 1 -> 2: the addresses of mail-enabled public folders (doc/accounts.md). Kept in
     * directory.db whichever the driver: an LDAP tree has no place for them. */
    "CREATE TABLE public_addresses ("
    "  address TEXT PRIMARY KEY NOT NULL," /* local@domain, domain lower case */
    "  domain TEXT NOT NULL,"
    "  folder TEXT NOT NULL);" /* a public folder (owner #public), e.g. News/dev */
    "CREATE INDEX public_addresses_domain ON public_addresses(domain);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum directory_stmt {
    STMT_DOMAIN_GET,
    STMT_ACCOUNT_GET,
    STMT_ALIAS_TARGETS,
    STMT_FIRST_ACCOUNT,
    STMT__EAGER, /* those above are prepared at open; those below at their first use (an
                    LDAP mirror made by an older Wharf has no table for them, and is never
                    asked them) */
    STMT_PUBLIC_GET = STMT__EAGER,
    STMT__COUNT
};

static const char *const stmt_sql[STMT__COUNT] = {
    [STMT_DOMAIN_GET] = "SELECT 1 FROM domains WHERE name = ?1",
    [STMT_ACCOUNT_GET] = ("SELECT quota_bytes, quota_messages, home_server FROM accounts "
                          "WHERE name = ?1"),
    [STMT_ALIAS_TARGETS] = "SELECT target FROM aliases WHERE address = ?1 ORDER BY target",
    [STMT_FIRST_ACCOUNT] = ("SELECT name FROM accounts WHERE home_server IS NULL "
                            "ORDER BY created, rowid LIMIT 1"),
    [STMT_PUBLIC_GET] = "SELECT folder FROM public_addresses WHERE address = ?1",
};

/* The driver's state behind struct directory. */
struct sqlite_dir {
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT__COUNT]; /* prepared once, for the hot lookups */
    const char *cred_table; /* "cred.credentials" (attached), "main.credentials", or NULL */
};

static struct sqlite_dir *db_of(struct directory *d)
{
    return d->priv;
}

static enum directory_status db_error(struct sqlite_dir *s, struct buf *err, const char *what)
{
    buf_printf(err, "directory: %s: %s", what, sqlite3_errmsg(s->db));
    return DIRECTORY_ERR_DB;
}

static int exec_sql(struct sqlite_dir *s, const char *sql, struct buf *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        buf_printf(err, "directory: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* ---- one statement: bind, step, read rows ---- */

/* A value bound to ?1, ?2, ...: text (NULL binds NULL) or an integer. */
struct val {
    const char *text;
    sqlite3_int64 n;
    bool is_int;
};
#define TXT(s) ((struct val){.text = (s)})
#define NUM(x) ((struct val){.n = (sqlite3_int64)(x), .is_int = true})
/* The values of a statement and their count, as two arguments. */
#define VALS(...)                                                                                  \
    (const struct val[]){__VA_ARGS__},                                                             \
        (int)(sizeof((const struct val[]){__VA_ARGS__}) / sizeof(struct val))

static void bind_vals(sqlite3_stmt *st, const struct val *v, int n)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (int i = 0; i < n; i++) {
        if (v[i].is_int)
            sqlite3_bind_int64(st, i + 1, v[i].n);
        else if (v[i].text != NULL)
            sqlite3_bind_text(st, i + 1, v[i].text, -1, SQLITE_TRANSIENT);
    }
}

static sqlite3_stmt *prepare(struct sqlite_dir *s, const char *sql, const struct val *v, int n,
                             struct buf *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_error(s, err, "prepare");
        return NULL;
    }
    bind_vals(st, v, n);
    return st;
}

/*
 * Runs a statement that returns no rows. 0 with *changes_r (may be NULL)
 * the rows it changed, SQLITE_CONSTRAINT (err untouched), or -1 with err.
 */
static int run(struct sqlite_dir *s, const char *sql, const struct val *v, int n, int *changes_r,
               struct buf *err, const char *what)
{
    sqlite3_stmt *st = prepare(s, sql, v, n, err);
    if (st == NULL)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE && changes_r != NULL)
        *changes_r = sqlite3_changes(s->db);
    if (rc != SQLITE_DONE && rc != SQLITE_CONSTRAINT)
        db_error(s, err, what);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : rc == SQLITE_CONSTRAINT ? SQLITE_CONSTRAINT : -1;
}

typedef void row_fn(void *arg, sqlite3_stmt *st);

/* Steps st to its end, calling row (may be NULL) on each row: the row count, or -1 with err. */
static int rows(struct sqlite_dir *s, sqlite3_stmt *st, row_fn *row, void *arg, struct buf *err,
                const char *what)
{
    int count = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row)
            row(arg, st);
        count++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        db_error(s, err, what);
        return -1;
    }
    return count;
}

/* A query with bound values, its rows given to row: the row count, or -1 with err. */
static int query(struct sqlite_dir *s, const char *sql, const struct val *v, int n, row_fn *row,
                 void *arg, struct buf *err, const char *what)
{
    sqlite3_stmt *st = prepare(s, sql, v, n, err);
    if (st == NULL)
        return -1;
    int r = rows(s, st, row, arg, err, what);
    sqlite3_finalize(st);
    return r;
}

/* One of the statements prepared at open, with ?1 = key (may be NULL: no value). */
static int cached(struct sqlite_dir *s, enum directory_stmt which, const char *key, row_fn *row,
                  void *arg, struct buf *err, const char *what)
{
    if (s->stmt[which] == NULL &&
        sqlite3_prepare_v3(s->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[which],
                           NULL) != SQLITE_OK) {
        db_error(s, err, what);
        return -1;
    }
    sqlite3_stmt *st = s->stmt[which];
    const struct val v = TXT(key);
    bind_vals(st, &v, 1);
    return rows(s, st, row, arg, err, what);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? t : "";
}

static void row_text(void *arg, sqlite3_stmt *st)
{
    struct buf *out = arg;
    buf_reset(out);
    buf_append_cstr(out, col_text(st, 0));
}

/* ---- schema ---- */

static void row_int(void *arg, sqlite3_stmt *st)
{
    *(int *)arg = sqlite3_column_int(st, 0);
}

static int migrate(struct sqlite_dir *s, struct buf *err)
{
    if (exec_sql(s, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    int v = 0;
    if (query(s, "PRAGMA user_version", NULL, 0, row_int, &v, err, "user_version") != 1)
        goto fail;
    if (v > SCHEMA_VERSION) {
        buf_printf(err,
                   "directory: directory.db has schema version %d, newer than this Wharf "
                   "knows (%d); run the newer Wharf",
                   v, SCHEMA_VERSION);
        goto fail;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if (exec_sql(s, migrations[v], err) != 0)
            goto fail;
        struct buf sql = BUF_INIT; /* an integer we chose, not input */
        buf_printf(&sql, "PRAGMA user_version = %d", v + 1);
        int r = exec_sql(s, sql.data, err);
        buf_free(&sql);
        if (r != 0)
            goto fail;
        log_info("directory: schema migrated to version %d", v + 1);
    }
    return exec_sql(s, "COMMIT", err);
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
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

/* Creates (as its owner) and opens one database file of DATA. */
static int open_file(struct directory *d, const char *relative, bool auth, struct buf *err)
{
    struct sqlite_dir *s = xcalloc(1, sizeof(*s));
    d->priv = s;
    char *path = config_data_path(d->cfg, relative);
    sqlite_setup();
    int rc = precreate(d->cfg, path, auth, err) != 0
                 ? SQLITE_CANTOPEN
                 : sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK && err->len == 0)
        buf_printf(err, "directory: cannot open %s: %s", path,
                   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    free(path);
    if (rc != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(s->db, DIRECTORY_BUSY_TIMEOUT_MS);
    return 0;
}

#define CRED_TABLE_SQL                                                                             \
    "CREATE TABLE IF NOT EXISTS %s.credentials ("                                                  \
    "  account TEXT PRIMARY KEY NOT NULL," /* local@domain, as in directory.db */                  \
    "  hash TEXT NOT NULL);"               /* crypt(3) string */

/* WAL and FULL for the credential database under schema name, and its table. */
static int cred_schema(struct sqlite_dir *s, const char *schema, struct buf *err)
{
    struct buf sql = BUF_INIT; /* a schema name we chose, not input */
    buf_printf(&sql, "PRAGMA %s.journal_mode = WAL; PRAGMA %s.synchronous = FULL; " CRED_TABLE_SQL,
               schema, schema, schema);
    int r = exec_sql(s, sql.data, err);
    buf_free(&sql);
    return r;
}

static int sqlite_open_credentials(struct directory *d, struct buf *err)
{
    if (open_file(d, "auth/credentials.db", true, err) != 0 ||
        cred_schema(db_of(d), "main", err) != 0)
        return -1;
    db_of(d)->cred_table = "main.credentials";
    return 0;
}

static int sqlite_attach_credentials(struct directory *d, struct buf *err)
{
    struct sqlite_dir *s = db_of(d);
    char *path = config_data_path(d->cfg, "auth/credentials.db");
    int rc = precreate(d->cfg, path, true, err);
    if (rc == 0 && run(s, "ATTACH DATABASE ?1 AS cred", VALS(TXT(path)), NULL, err,
                       "cannot attach the credential database") != 0)
        rc = -1;
    free(path);
    if (rc != 0 || cred_schema(s, "cred", err) != 0)
        return -1;
    s->cred_table = "cred.credentials";
    /* Hashes an older Wharf kept in directory.db move out, and their bytes are
     * overwritten (secure_delete) and checkpointed out of the WAL. */
    if (exec_sql(s,
                 "BEGIN IMMEDIATE;"
                 "INSERT OR REPLACE INTO cred.credentials (account, hash)"
                 "  SELECT name, password FROM main.accounts WHERE password IS NOT NULL;",
                 err) != 0)
        return -1;
    int moved = sqlite3_changes(s->db);
    if (exec_sql(s,
                 "PRAGMA main.secure_delete = ON;"
                 "UPDATE main.accounts SET password = NULL WHERE password IS NOT NULL;"
                 "COMMIT;",
                 err) != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (moved > 0) {
        sqlite3_exec(s->db, "VACUUM main; PRAGMA main.wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
        log_info("directory: moved %d password hashes from directory.db to auth/credentials.db",
                 moved);
    }
    return 0;
}

static int prepare_lookups(struct sqlite_dir *s, struct buf *err);

static int sqlite_open(struct directory *d, struct buf *err)
{
    if (open_file(d, "directory/directory.db", false, err) != 0)
        return -1;
    struct sqlite_dir *s = db_of(d);
    /* WAL: the auth process reads while the wharf command writes. FULL: an
     * account change is on disk when the command says so. */
    if (exec_sql(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", err) != 0 ||
        migrate(s, err) != 0)
        return -1;
    return prepare_lookups(s, err);
}

/* ---- the LDAP driver's mirror (directory_ldap.c, directory_driver.h) ---- */

static int prepare_lookups(struct sqlite_dir *s, struct buf *err)
{
    for (int i = 0; i < STMT__EAGER; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                               NULL) != SQLITE_OK) {
            db_error(s, err, "prepare");
            return -1;
        }
    }
    return 0;
}

int directory_sqlite_open_mirror(struct directory *d, const char *relative, bool create,
                                 struct buf *err)
{
    if (create) {
        /* A new file, written once and renamed into place: no journal to keep
         * (a crash leaves a .new file the next write replaces). */
        if (open_file(d, relative, false, err) != 0 ||
            exec_sql(db_of(d), "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;", err) != 0 ||
            migrate(db_of(d), err) != 0)
            return -1;
    } else {
        struct sqlite_dir *s = xcalloc(1, sizeof(*s));
        d->priv = s;
        char *path = config_data_path(d->cfg, relative);
        sqlite_setup();
        int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY, NULL);
        if (rc != SQLITE_OK)
            buf_printf(err, "directory: cannot open %s: %s", path,
                       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        free(path);
        if (rc != SQLITE_OK)
            return -1;
    }
    struct sqlite_dir *s = db_of(d);
    /* The DN of each account, where the SQLite driver keeps hashes. */
    if ((create && exec_sql(s,
                            "CREATE TABLE IF NOT EXISTS main.credentials (account TEXT PRIMARY "
                            "KEY NOT NULL, hash TEXT NOT NULL);",
                            err) != 0) ||
        prepare_lookups(s, err) != 0)
        return -1;
    s->cred_table = "main.credentials";
    return 0;
}

int directory_sqlite_mirror_home(struct directory *d, const char *account, const char *home,
                                 struct buf *err)
{
    return run(db_of(d), "UPDATE accounts SET home_server = ?2 WHERE name = ?1",
               VALS(TXT(account), TXT(home)), NULL, err, "home server");
}

/* Hashes an older Wharf kept in directory.db: attaching the credentials moves them. */
static int sqlite_upgrade_credentials(const struct wharf_config *cfg, struct buf *err)
{
    char *path = config_data_path(cfg, "directory/directory.db");
    bool exists = access(path, F_OK) == 0;
    free(path);
    if (!exists)
        return 0;
    struct directory *d = directory_open(cfg, err);
    int r = d != NULL ? directory_attach_credentials(d, err) : -1;
    directory_close(d);
    return r;
}

static void sqlite_close(struct directory *d)
{
    struct sqlite_dir *s = db_of(d);
    if (s == NULL)
        return;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    free(s);
    d->priv = NULL;
}

/* ---- lookups ---- */

static int sqlite_domain_exists(struct directory *d, const char *domain, struct buf *err)
{
    int n = cached(db_of(d), STMT_DOMAIN_GET, domain, NULL, NULL, err, "domain lookup");
    return n < 0 ? -1 : n > 0;
}

struct account_row {
    uint64_t *bytes_r, *messages_r;
    struct buf *home_r;
};

static void row_account(void *arg, sqlite3_stmt *st)
{
    struct account_row *a = arg;
    *a->bytes_r = (uint64_t)sqlite3_column_int64(st, 0);
    *a->messages_r = (uint64_t)sqlite3_column_int64(st, 1);
    if (a->home_r != NULL) {
        buf_reset(a->home_r);
        buf_append_cstr(a->home_r, col_text(st, 2));
    }
}

static int sqlite_account_get(struct directory *d, const char *account, uint64_t *bytes_r,
                              uint64_t *messages_r, struct buf *home_r, struct buf *err)
{
    struct account_row a = {bytes_r, messages_r, home_r};
    int n = cached(db_of(d), STMT_ACCOUNT_GET, account, row_account, &a, err, "account lookup");
    return n < 0 ? -1 : n > 0;
}

struct strv {
    char ***v;
    size_t *n_r;
};

static void row_strv(void *arg, sqlite3_stmt *st)
{
    struct strv *a = arg;
    *a->v = xreallocarray(*a->v, *a->n_r + 1, sizeof(char *));
    (*a->v)[(*a->n_r)++] = xstrdup(col_text(st, 0));
}

static int sqlite_alias_targets(struct directory *d, const char *address, char ***v, size_t *n_r,
                                struct buf *err)
{
    struct strv a = {v, n_r};
    return cached(db_of(d), STMT_ALIAS_TARGETS, address, row_strv, &a, err, "alias lookup");
}

static int sqlite_first_account(struct directory *d, struct buf *out, struct buf *err)
{
    int n = cached(db_of(d), STMT_FIRST_ACCOUNT, NULL, row_text, out, err, "first account lookup");
    return n < 0 ? -1 : n > 0;
}

/* ---- enumeration ---- */

struct list_cb {
    void (*domain)(void *arg, const char *domain);
    void (*account)(void *arg, const struct directory_account *a);
    void (*alias)(void *arg, const char *address, const char *target);
    void *arg;
};

static void row_list(void *arg, sqlite3_stmt *st)
{
    struct list_cb *l = arg;
    if (l->domain) {
        l->domain(l->arg, col_text(st, 0));
    } else if (l->alias) {
        l->alias(l->arg, col_text(st, 0), col_text(st, 1));
    } else {
        struct directory_account a = {
            .name = col_text(st, 0),
            .quota_bytes = (uint64_t)sqlite3_column_int64(st, 1),
            .quota_messages = (uint64_t)sqlite3_column_int64(st, 2),
            .has_password = sqlite3_column_int(st, 3) != 0,
            .home = col_text(st, 4),
        };
        l->account(l->arg, &a);
    }
}

static enum directory_status list(struct directory *d, const char *sql, const char *domain,
                                  struct list_cb *l, struct buf *err, const char *what)
{
    const struct val v = TXT(domain); /* NULL: every domain */
    return query(db_of(d), sql, &v, 1, row_list, l, err, what) < 0 ? DIRECTORY_ERR_DB
                                                                   : DIRECTORY_OK;
}

static enum directory_status sqlite_domain_list(struct directory *d,
                                                void (*fn)(void *arg, const char *domain),
                                                void *arg, struct buf *err)
{
    struct list_cb l = {.domain = fn, .arg = arg};
    return list(d, "SELECT name FROM domains ORDER BY name", NULL, &l, err, "domain list");
}

static enum directory_status sqlite_account_list(struct directory *d, const char *domain,
                                                 void (*fn)(void *arg,
                                                            const struct directory_account *a),
                                                 void *arg, struct buf *err)
{
    const char *cred = db_of(d)->cred_table;
    struct buf sql = BUF_INIT; /* a table name we chose, not input */
    buf_printf(&sql,
               "SELECT name, quota_bytes, quota_messages, %s%s%s, home_server "
               "FROM accounts WHERE ?1 IS NULL OR domain = ?1 ORDER BY name",
               cred ? "EXISTS (SELECT 1 FROM " : "password IS NOT NULL", cred ? cred : "",
               cred ? " c WHERE c.account = accounts.name)" : "");
    struct list_cb l = {.account = fn, .arg = arg};
    enum directory_status s = list(d, sql.data, domain, &l, err, "account list");
    buf_free(&sql);
    return s;
}

static enum directory_status sqlite_alias_list(struct directory *d, const char *domain,
                                               void (*fn)(void *arg, const char *address,
                                                          const char *target),
                                               void *arg, struct buf *err)
{
    struct list_cb l = {.alias = fn, .arg = arg};
    return list(d,
                "SELECT address, target FROM aliases "
                "WHERE ?1 IS NULL OR domain = ?1 ORDER BY address, target",
                domain, &l, err, "alias list");
}

static void row_int64(void *arg, sqlite3_stmt *st)
{
    *(long long *)arg = sqlite3_column_int64(st, 0);
}

static int sqlite_domain_usage(struct directory *d, const char *domain, long long *accounts_r,
                               long long *aliases_r, struct buf *err)
{
    struct sqlite_dir *s = db_of(d);
    return query(s, "SELECT count(*) FROM accounts WHERE domain = ?1", VALS(TXT(domain)), row_int64,
                 accounts_r, err, "count") == 1 &&
                   query(s, "SELECT count(*) FROM aliases WHERE domain = ?1", VALS(TXT(domain)),
                         row_int64, aliases_r, err, "count") == 1
               ? 0
               : -1;
}

/* ---- administration ---- */

/*
 * The status of a change of one row (run's result): EXISTS on a constraint,
 * NOT_FOUND when nothing changed and that matters.
 */
static enum directory_status change_status(int rc, int changes, bool need_change)
{
    if (rc == SQLITE_CONSTRAINT)
        return DIRECTORY_ERR_EXISTS;
    if (rc != 0)
        return DIRECTORY_ERR_DB;
    return need_change && changes == 0 ? DIRECTORY_ERR_NOT_FOUND : DIRECTORY_OK;
}

static enum directory_status sqlite_domain_add(struct directory *d, const char *domain,
                                               struct buf *err)
{
    int rc = run(db_of(d), "INSERT INTO domains (name, created) VALUES (?1, ?2)",
                 VALS(TXT(domain), NUM(time(NULL))), NULL, err, "domain add");
    return change_status(rc, 0, false);
}

static enum directory_status sqlite_domain_del(struct directory *d, const char *domain,
                                               struct buf *err)
{
    int changes = 0;
    int rc = run(db_of(d), "DELETE FROM domains WHERE name = ?1", VALS(TXT(domain)), &changes, err,
                 "domain del");
    return change_status(rc, changes, true);
}

static enum directory_status sqlite_account_add(struct directory *d, const char *account,
                                                uint64_t quota_bytes, uint64_t quota_messages,
                                                struct buf *err)
{
    int rc = run(db_of(d),
                 "INSERT INTO accounts (name, domain, password, quota_bytes, quota_messages, "
                 "created) VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
                 VALS(TXT(account), TXT(strrchr(account, '@') + 1), NUM(quota_bytes),
                      NUM(quota_messages), NUM(time(NULL))),
                 NULL, err, "account add");
    return change_status(rc, 0, false);
}

static enum directory_status sqlite_account_del(struct directory *d, const char *account,
                                                struct buf *err)
{
    int changes = 0;
    int rc = run(db_of(d), "DELETE FROM accounts WHERE name = ?1", VALS(TXT(account)), &changes,
                 err, "account change");
    return change_status(rc, changes, true);
}

static enum directory_status sqlite_account_set_quota(struct directory *d, const char *account,
                                                      uint64_t quota_bytes, uint64_t quota_messages,
                                                      struct buf *err)
{
    int changes = 0;
    int rc = run(
        db_of(d), "UPDATE accounts SET quota_bytes = ?2, quota_messages = ?3 WHERE name = ?1",
        VALS(TXT(account), NUM(quota_bytes), NUM(quota_messages)), &changes, err, "account change");
    return change_status(rc, changes, true);
}

static enum directory_status sqlite_account_set_home(struct directory *d, const char *account,
                                                     const char *home, struct buf *err)
{
    int changes = 0;
    int rc = home[0] == '\0'
                 ? run(db_of(d), "UPDATE accounts SET home_server = NULL WHERE name = ?1",
                       VALS(TXT(account)), &changes, err, "account change")
                 : run(db_of(d), "UPDATE accounts SET home_server = ?2 WHERE name = ?1",
                       VALS(TXT(account), TXT(home)), &changes, err, "account change");
    return change_status(rc, changes, true);
}

static enum directory_status sqlite_alias_add(struct directory *d, const char *address,
                                              char *const *targets, size_t n_targets,
                                              struct buf *err)
{
    struct sqlite_dir *s = db_of(d);
    if (exec_sql(s, "BEGIN IMMEDIATE", err) != 0)
        return DIRECTORY_ERR_DB;
    enum directory_status st = DIRECTORY_OK;
    for (size_t i = 0; i < n_targets && st == DIRECTORY_OK; i++) {
        if (run(s, "INSERT OR IGNORE INTO aliases (address, domain, target) VALUES (?1, ?2, ?3)",
                VALS(TXT(address), TXT(strrchr(address, '@') + 1), TXT(targets[i])), NULL, err,
                "alias add") != 0)
            st = DIRECTORY_ERR_DB;
    }
    if (st == DIRECTORY_OK && exec_sql(s, "COMMIT", err) != 0)
        st = DIRECTORY_ERR_DB;
    if (st != DIRECTORY_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

static long long sqlite_alias_del(struct directory *d, const char *address, char *const *targets,
                                  size_t n_targets, struct buf *err)
{
    long long total = 0;
    for (size_t i = 0; i < (n_targets ? n_targets : 1); i++) {
        int changes = 0;
        if (run(db_of(d), "DELETE FROM aliases WHERE address = ?1 AND (?2 IS NULL OR target = ?2)",
                VALS(TXT(address), TXT(n_targets ? targets[i] : NULL)), &changes, err,
                "alias del") != 0)
            return -1;
        total += changes;
    }
    return total;
}

/* ---- addresses of public folders ---- */

static int sqlite_public_get(struct directory *d, const char *address, struct buf *folder_r,
                             struct buf *err)
{
    buf_reset(folder_r);
    int n = cached(db_of(d), STMT_PUBLIC_GET, address, row_text, folder_r, err,
                   "public folder address lookup");
    return n < 0 ? -1 : n > 0;
}

static enum directory_status sqlite_public_set(struct directory *d, const char *address,
                                               const char *folder, struct buf *err)
{
    int rc =
        run(db_of(d), "INSERT INTO public_addresses (address, domain, folder) VALUES (?1, ?2, ?3)",
            VALS(TXT(address), TXT(strrchr(address, '@') + 1), TXT(folder)), NULL, err,
            "public folder address add");
    return change_status(rc, 0, false);
}

static enum directory_status sqlite_public_del(struct directory *d, const char *address,
                                               struct buf *err)
{
    int changes = 0;
    int rc = run(db_of(d), "DELETE FROM public_addresses WHERE address = ?1", VALS(TXT(address)),
                 &changes, err, "public folder address del");
    return change_status(rc, changes, true);
}

static enum directory_status sqlite_public_list(struct directory *d, const char *domain,
                                                void (*fn)(void *arg, const char *address,
                                                           const char *folder),
                                                void *arg, struct buf *err)
{
    struct list_cb l = {.alias = fn, .arg = arg}; /* the same shape: two strings a row */
    return list(d,
                "SELECT address, folder FROM public_addresses "
                "WHERE ?1 IS NULL OR domain = ?1 ORDER BY address",
                domain, &l, err, "public folder address list");
}

/* ---- credentials ---- */

/* A statement on the credentials table: head, its schema-qualified name, tail. */
static void cred_sql(struct directory *d, struct buf *sql, const char *head, const char *tail)
{
    buf_printf(sql, "%s%s%s", head, db_of(d)->cred_table, tail);
}

struct cred_row {
    struct buf *account_r, *hash_r;
};

static void row_cred(void *arg, sqlite3_stmt *st)
{
    struct cred_row *c = arg;
    buf_reset(c->account_r);
    buf_append_cstr(c->account_r, col_text(st, 0));
    buf_reset(c->hash_r);
    buf_append_cstr(c->hash_r, col_text(st, 1));
}

static enum directory_status sqlite_credentials_get(struct directory *d, const char *account,
                                                    struct buf *account_r, struct buf *hash_r,
                                                    struct buf *err)
{
    struct buf sql = BUF_INIT;
    cred_sql(d, &sql, "SELECT account, hash FROM ", " WHERE account = ?1");
    struct cred_row c = {account_r, hash_r};
    int n = query(db_of(d), sql.data, VALS(TXT(account)), row_cred, &c, err, "account lookup");
    buf_free(&sql);
    return n < 0 ? DIRECTORY_ERR_DB : n == 0 ? DIRECTORY_ERR_NOT_FOUND : DIRECTORY_OK;
}

static enum directory_status sqlite_credentials_set(struct directory *d, const char *account,
                                                    const char *hash, struct buf *err)
{
    struct buf sql = BUF_INIT;
    if (hash)
        cred_sql(d, &sql, "INSERT OR REPLACE INTO ", " (account, hash) VALUES (?1, ?2)");
    else
        cred_sql(d, &sql, "DELETE FROM ", " WHERE account = ?1");
    int rc = run(db_of(d), sql.data, VALS(TXT(account), TXT(hash)), NULL, err, "credentials");
    buf_free(&sql);
    return rc == 0 ? DIRECTORY_OK : DIRECTORY_ERR_DB;
}

/* ---- backup ---- */

/* The backup keeps the layout of DATA: auth/credentials.db, directory/directory.db. */
static const char *part_folder(enum directory_part part)
{
    return part == DIRECTORY_PART_CREDENTIALS ? "auth" : "directory";
}

static const char *part_file(enum directory_part part)
{
    return part == DIRECTORY_PART_CREDENTIALS ? "auth/credentials.db" : "directory/directory.db";
}

static int sqlite_backup(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                         struct buf *err)
{
    const char *folder = part_folder(part);
    struct buf out = BUF_INIT;
    char *src = config_data_path(cfg, part_file(part));
    int rc = 0;
    if (access(src, F_OK) == 0) {
        buf_printf(&out, "%s/%s", dir, folder);
        mkdir(out.data, 0700);
        buf_reset(&out);
        buf_printf(&out, "%s/%s", dir, part_file(part));
        rc = sqlite_snapshot(src, out.data, DIRECTORY_BACKUP_BUSY_MS, err);
    }
    free(src);
    buf_free(&out);
    return rc;
}

static bool sqlite_present(const struct wharf_config *cfg, enum directory_part part)
{
    char *path = config_data_path(cfg, part_file(part));
    bool r = access(path, F_OK) == 0;
    free(path);
    return r;
}

/* The file back where backup took it; the credentials are the auth user's, mode 0600. */
static int sqlite_restore(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                          struct buf *err)
{
    struct buf from = BUF_INIT;
    buf_printf(&from, "%s/%s", dir, part_file(part));
    char *to = config_data_path(cfg, part_file(part));
    int r = datadir_copy_file(from.data, to, NULL);
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (r == 0 && part == DIRECTORY_PART_CREDENTIALS &&
        ((geteuid() == 0 && datadir_auth_ids(cfg, &uid, &gid) && chown(to, uid, gid) != 0) ||
         chmod(to, 0600) != 0))
        r = -1;
    if (r < 0)
        buf_printf(err, "%s: %s", to, strerror(errno));
    free(to);
    buf_free(&from);
    return r < 0 ? -1 : 0;
}

const struct directory_driver directory_sqlite_driver = {
    .name = "sqlite",
    .open = sqlite_open,
    .open_credentials = sqlite_open_credentials,
    .attach_credentials = sqlite_attach_credentials,
    .upgrade_credentials = sqlite_upgrade_credentials,
    .close = sqlite_close,
    .domain_exists = sqlite_domain_exists,
    .account_get = sqlite_account_get,
    .alias_targets = sqlite_alias_targets,
    .first_account = sqlite_first_account,
    .domain_list = sqlite_domain_list,
    .account_list = sqlite_account_list,
    .alias_list = sqlite_alias_list,
    .domain_usage = sqlite_domain_usage,
    .domain_add = sqlite_domain_add,
    .domain_del = sqlite_domain_del,
    .account_add = sqlite_account_add,
    .account_del = sqlite_account_del,
    .account_set_quota = sqlite_account_set_quota,
    .account_set_home = sqlite_account_set_home,
    .alias_add = sqlite_alias_add,
    .alias_del = sqlite_alias_del,
    .public_get = sqlite_public_get,
    .public_set = sqlite_public_set,
    .public_del = sqlite_public_del,
    .public_list = sqlite_public_list,
    .credentials_get = sqlite_credentials_get,
    .credentials_set = sqlite_credentials_set,
    .backup = sqlite_backup,
    .present = sqlite_present,
    .restore = sqlite_restore,
};
