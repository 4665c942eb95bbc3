/*
 * cmd_backup.c - wharf backup / wharf restore: a consistent copy of a data
 * directory taken while wharfd runs and takes mail, and its way back.
 *
 *   wharf backup DIR [--incremental PREV]   DIR must not exist (or be empty)
 *   wharf restore DIR                       into an empty data directory only
 *
 * What a backup holds: tls/ and the configuration file (when readable: run
 * as root for the key), spool/queue and maildrop (acknowledged mail not yet
 * delivered), directory/directory.db and store/store.db (SQLite's online
 * backup API: one read snapshot each, writers go on), auth/credentials.db
 * (the password hashes: copied as root and kept root's), dkim/ (the DKIM
 * keys), store/blobs/ (the segment files), and MANIFEST.
 *
 * Consistency, from the store's durability order (doc/store.md):
 *   - The spool is copied BEFORE the store snapshot. The mta removes a spool
 *     file only after the commit that stored its message; so a message
 *     acknowledged before the backup began is either still in the spool when
 *     the copy reaches it, or already committed before the snapshot. Both
 *     copies may hold it: on restore the mta's exactly-once record (queue id,
 *     account) in the snapshot makes the redelivery a no-op.
 *   - The segments are copied AFTER the snapshot: a committed row names bytes
 *     that were fdatasync'd before its commit, and segments only grow, so the
 *     files hold at least what the snapshot refers to. The one thing that
 *     removes bytes is store_gc unlinking a compacted segment; the segment
 *     files are therefore opened BEFORE the snapshot (an unlinked file stays
 *     readable through its fd), and the copy checks every (segment, offset +
 *     size) the snapshot names against what it copied, retrying if a segment
 *     made and compacted within the snapshot window escaped it.
 *   - Incremental: segment files are append-only and never renamed or reused
 *     (their numbers only grow); a segment with the same name and size in
 *     PREV is hard-linked instead of copied.
 * Never writes under the live data directory during a backup; restore never
 * overwrites a store or directory that exists, nor runs beside a live wharfd.
 */
#include "base/alloc.h"
#include "base/component.h"
#include "base/datadir.h"
#include "base/fdio.h"
#include "cli/cli.h"
#include "ipc/control.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_FORMAT "wharf-backup 1"
/* Retries of the store snapshot when a segment escaped it (see above). */
#define BACKUP_SNAPSHOT_TRIES 5

struct totals {
    uint64_t files, bytes, linked, linked_bytes;
};

static void path_join(struct buf *out, const char *a, const char *b)
{
    buf_reset(out);
    buf_printf(out, "%s/%s", a, b);
}

/* Copies len bytes (from offset 0) of in into a new file path. */
static int copy_fd_to(int in, uint64_t len, const char *path, mode_t mode)
{
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (out < 0)
        return -1;
    off_t off = 0;
    char buf[65536];
    while ((uint64_t)off < len) {
        size_t want = (size_t)(len - (uint64_t)off) > sizeof(buf) ? sizeof(buf)
                                                                  : (size_t)(len - (uint64_t)off);
        /* shorter than it was a moment ago (EIO): not for a segment */
        if (fd_pread_exact(in, buf, want, off) != 0 || fd_write_all(out, buf, want) != 0) {
            close(out);
            return -1;
        }
        off += (off_t)want;
    }
    return close(out);
}

/* Copies a file if it (still) exists: 0 copied, 1 gone, -1 error. */
static int copy_file(const char *from, const char *to, struct totals *t)
{
    int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return errno == ENOENT ? 1 : -1;
    struct stat st;
    int rc = -1;
    if (fstat(in, &st) == 0 && S_ISREG(st.st_mode) &&
        copy_fd_to(in, (uint64_t)st.st_size, to, st.st_mode & 0777) == 0) {
        rc = 0;
        t->files++;
        t->bytes += (uint64_t)st.st_size;
    }
    close(in);
    return rc;
}

/* Copies the regular files of a folder (not recursive); a missing folder is empty. */
static int copy_dir(const char *from, const char *to, mode_t mode, struct totals *t)
{
    DIR *d = opendir(from);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    int rc = 0;
    if (mkdir(to, mode) != 0 && errno != EEXIST)
        rc = -1;
    struct buf a = BUF_INIT, b = BUF_INIT;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        path_join(&a, from, e->d_name);
        path_join(&b, to, e->d_name);
        struct stat st;
        if (lstat(a.data, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* gone meanwhile (delivered), or not a file */
        if (copy_file(a.data, b.data, t) < 0) {
            fprintf(stderr, "wharf: %s: %s\n", a.data, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    buf_free(&a);
    buf_free(&b);
    return rc;
}

/* SQLite's online backup of one database (a single read snapshot) into dst (created). */
/* A folder of folders, one level deep (DATA/dkim/DOMAIN/), each as copy_dir
 * copies it; a missing folder is empty. */
static int copy_dirs(const char *from, const char *to, struct totals *t)
{
    DIR *d = opendir(from);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    int rc = mkdir(to, 0700) != 0 && errno != EEXIST ? -1 : 0;
    struct buf a = BUF_INIT, b = BUF_INIT;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        path_join(&a, from, e->d_name);
        path_join(&b, to, e->d_name);
        rc = copy_dir(a.data, b.data, 0700, t);
    }
    closedir(d);
    buf_free(&a);
    buf_free(&b);
    return rc;
}

static int sqlite_copy(const char *src, const char *dst)
{
    sqlite3 *s = NULL, *d = NULL;
    int rc = sqlite3_open_v2(src, &s, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(dst, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s, 30000);
        sqlite3_backup *b = sqlite3_backup_init(d, "main", s, "main");
        if (b == NULL)
            rc = sqlite3_errcode(d);
        else {
            /* -1: every page in one step, so one snapshot of the source */
            do {
                rc = sqlite3_backup_step(b, -1);
                if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                    sqlite3_sleep(50);
            } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
            int f = sqlite3_backup_finish(b);
            if (rc == SQLITE_DONE)
                rc = f;
            /* a self-contained file: no -wal/-shm beside it (the store turns WAL on again) */
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(d, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
        }
    }
    if (rc != SQLITE_OK)
        fprintf(stderr, "wharf: %s: %s\n", src,
                d && sqlite3_errcode(d) != SQLITE_OK ? sqlite3_errmsg(d)
                : s                                  ? sqlite3_errmsg(s)
                                                     : sqlite3_errstr(rc));
    sqlite3_close(s);
    sqlite3_close(d);
    return rc == SQLITE_OK ? 0 : -1;
}

/* ---- the store's segments ---- */

struct seg {
    char name[32];
    int fd;
    uint64_t size;
};

struct segs {
    struct seg *v;
    size_t n, cap;
};

static struct seg *seg_find(struct segs *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

/* Opens every segment file of blobs not opened yet. */
static int segs_open(struct segs *s, const char *blobs)
{
    DIR *d = opendir(blobs);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    struct buf p = BUF_INIT;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(s->v[0].name) ||
            seg_find(s, e->d_name))
            continue;
        path_join(&p, blobs, e->d_name);
        int fd = open(p.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue; /* unlinked by gc meanwhile: the snapshot check decides */
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
        }
        struct seg *g = &s->v[s->n++];
        memcpy(g->name, e->d_name, strlen(e->d_name) + 1); /* length checked above */
        g->fd = fd;
        g->size = 0;
    }
    closedir(d);
    buf_free(&p);
    return 0;
}

static void segs_close(struct segs *s)
{
    for (size_t i = 0; i < s->n; i++)
        close(s->v[i].fd);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/*
 * Every (segment, end of body) the snapshot db refers to is within what we
 * hold open. Records each segment's size to copy (its size now: at least the
 * snapshot's bytes). Returns 0, 1 when a segment escaped, -1 on error.
 */
static int segs_check(struct segs *s, const char *db)
{
    for (size_t i = 0; i < s->n; i++) {
        struct stat st;
        if (fstat(s->v[i].fd, &st) != 0)
            return -1;
        s->v[i].size = (uint64_t)st.st_size;
    }
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d, "SELECT segment, max(offset + size) FROM blobs GROUP BY segment", -1,
                           &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "wharf: %s: %s\n", db, sqlite3_errmsg(d));
        goto out;
    }
    int r;
    rc = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        char name[32];
        snprintf(name, sizeof(name), "%016" PRIx64, (uint64_t)sqlite3_column_int64(st, 0));
        struct seg *g = seg_find(s, name);
        if (g == NULL || g->size < (uint64_t)sqlite3_column_int64(st, 1)) {
            rc = 1;
            break;
        }
    }
    if (rc == 0 && r != SQLITE_DONE) {
        fprintf(stderr, "wharf: %s: %s\n", db, sqlite3_errmsg(d));
        rc = -1;
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(d);
    return rc;
}

static int backup_store(const char *data, const char *dir, const char *prev, struct totals *t)
{
    struct buf blobs = BUF_INIT, db = BUF_INIT, out = BUF_INIT, p = BUF_INIT;
    buf_printf(&blobs, "%s/store/blobs", data);
    path_join(&out, dir, "store");
    if (mkdir(out.data, 0700) != 0) {
        fprintf(stderr, "wharf: %s: %s\n", out.data, strerror(errno));
        buf_free(&blobs);
        buf_free(&out);
        return -1;
    }
    buf_printf(&out, "/store.db");
    struct segs segs = {0};
    int rc = -1;
    for (int tries = 0; tries < BACKUP_SNAPSHOT_TRIES; tries++) {
        unlink(out.data);
        buf_reset(&db);
        buf_printf(&db, "%s/store/store.db", data);
        if (segs_open(&segs, blobs.data) != 0 || sqlite_copy(db.data, out.data) != 0 ||
            segs_open(&segs, blobs.data) != 0)
            goto done;
        rc = segs_check(&segs, out.data);
        if (rc <= 0)
            break;
        segs_close(&segs); /* a segment escaped: take a new snapshot */
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "wharf: no consistent store snapshot after %d tries\n",
                BACKUP_SNAPSHOT_TRIES);
        rc = -1;
        goto done;
    }
    path_join(&out, dir, "store/blobs");
    if (mkdir(out.data, 0700) != 0) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < segs.n && rc == 0; i++) {
        path_join(&out, dir, "store/blobs");
        buf_printf(&out, "/%s", segs.v[i].name);
        if (prev) {
            buf_reset(&p);
            buf_printf(&p, "%s/store/blobs/%s", prev, segs.v[i].name);
            struct stat st;
            if (stat(p.data, &st) == 0 && (uint64_t)st.st_size == segs.v[i].size &&
                link(p.data, out.data) == 0) {
                t->linked++;
                t->linked_bytes += segs.v[i].size;
                continue;
            }
        }
        if (copy_fd_to(segs.v[i].fd, segs.v[i].size, out.data, 0600) != 0) {
            fprintf(stderr, "wharf: %s: %s\n", out.data, strerror(errno));
            rc = -1;
        } else {
            t->files++;
            t->bytes += segs.v[i].size;
        }
    }
done:
    segs_close(&segs);
    buf_free(&blobs);
    buf_free(&db);
    buf_free(&out);
    buf_free(&p);
    return rc;
}

static bool dir_empty_or_missing(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno == ENOENT;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

static int sync_tree(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = syncfs(fd);
    close(fd);
    return rc;
}

int cmd_backup(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *prev = NULL;
    if (argc == 4 && strcmp(argv[2], "--incremental") == 0)
        prev = argv[3];
    else if (argc != 2) {
        fprintf(stderr, "usage: wharf backup DIR [--incremental PREV]\n");
        return EX_USAGE;
    }
    const char *dir = argv[1];
    if (prev) {
        struct buf m = BUF_INIT;
        path_join(&m, prev, "MANIFEST");
        bool ok = access(m.data, R_OK) == 0;
        buf_free(&m);
        if (!ok) {
            fprintf(stderr, "wharf backup: %s is not a backup\n", prev);
            return EX_NOINPUT;
        }
    }
    if (!dir_empty_or_missing(dir) || (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
        fprintf(stderr, "wharf backup: %s must be a new or empty folder\n", dir);
        return EX_CANTCREAT;
    }
    const char *data = ctx->cfg->data_directory;
    struct totals t = {0};
    struct buf a = BUF_INIT, b = BUF_INIT, err = BUF_INIT;
    int rc = 0;
    /* Keys and configuration first, with the caller's rights (root reads tls/). */
    path_join(&a, data, "tls");
    path_join(&b, dir, "tls");
    if (copy_dir(a.data, b.data, 0700, &t) != 0)
        fprintf(stderr, "wharf backup: %s not saved (%s): run as root to include the key\n", a.data,
                strerror(errno));
    if (ctx->args.config_path) {
        path_join(&b, dir, "config");
        mkdir(b.data, 0700);
        buf_append_cstr(&b, "/wharf.conf");
        if (copy_file(ctx->args.config_path, b.data, &t) != 0)
            fprintf(stderr, "wharf backup: %s not saved: %s\n", ctx->args.config_path,
                    strerror(errno));
    }
    uid_t uid;
    gid_t gid;
    if (geteuid() == 0 && datadir_wharf_ids(ctx->cfg, &uid, &gid) && chown(dir, uid, gid) != 0) {
        fprintf(stderr, "wharf backup: chown %s: %s\n", dir, strerror(errno));
        rc = EX_IOERR;
    }
    /* The password hashes first, while still root: only the auth user and
     * root can read DATA/auth, and the copy stays root's (mode 0600 in a
     * 0700 folder), so the wharf user cannot read them in the backup either. */
    if (rc == 0) {
        path_join(&a, data, "auth/credentials.db");
        path_join(&b, dir, "auth");
        if (access(a.data, F_OK) == 0) {
            mkdir(b.data, 0700);
            buf_append_cstr(&b, "/credentials.db");
            mode_t old = umask(077);
            if (sqlite_copy(a.data, b.data) != 0)
                rc = EX_IOERR;
            umask(old);
        }
    }
    component_drop_privileges(ctx->cfg); /* the databases are opened as their owner */
    /* The spool before the store snapshot (see the header comment). */
    static const char *const spool_dirs[][2] = {{"spool", NULL},
                                                {"spool/queue", "spool/queue"},
                                                {"spool/corrupt", "spool/corrupt"},
                                                {"maildrop", "maildrop"}};
    for (size_t i = 0; i < 4 && rc == 0; i++) {
        path_join(&b, dir, spool_dirs[i][0]);
        if (spool_dirs[i][1] == NULL) {
            if (mkdir(b.data, 0700) != 0) {
                /* as root: the wharf user must be able to reach DIR */
                fprintf(stderr, "wharf backup: %s: %s\n", b.data, strerror(errno));
                rc = EX_IOERR;
            }
            continue;
        }
        path_join(&a, data, spool_dirs[i][1]);
        if (copy_dir(a.data, b.data, 0700, &t) != 0) {
            fprintf(stderr, "wharf backup: %s: %s\n", a.data, strerror(errno));
            rc = EX_IOERR;
        }
    }
    /* the DKIM keys, as their owner (the mta reads them as the wharf user) */
    path_join(&a, data, "dkim");
    path_join(&b, dir, "dkim");
    if (rc == 0 && copy_dirs(a.data, b.data, &t) != 0) {
        fprintf(stderr, "wharf backup: %s: %s\n", a.data, strerror(errno));
        rc = EX_IOERR;
    }
    if (rc == 0) {
        path_join(&a, data, "directory/directory.db");
        path_join(&b, dir, "directory");
        mkdir(b.data, 0700);
        buf_append_cstr(&b, "/directory.db");
        if (access(a.data, F_OK) == 0 && sqlite_copy(a.data, b.data) != 0)
            rc = EX_IOERR;
    }
    if (rc == 0 && backup_store(data, dir, prev, &t) != 0)
        rc = EX_IOERR;
    if (rc == 0) {
        path_join(&b, dir, "MANIFEST");
        FILE *f = fopen(b.data, "we");
        if (f == NULL ||
            fprintf(f, "%s\ncreated %lld\ndata_directory %s\nincremental_from %s\n", BACKUP_FORMAT,
                    (long long)time(NULL), data, prev ? prev : "-") < 0 ||
            fclose(f) != 0)
            rc = EX_IOERR;
    }
    if (rc == 0 && sync_tree(dir) != 0)
        rc = EX_IOERR;
    if (rc == 0)
        printf("backup %s: %" PRIu64 " files copied (%.1f MB), %" PRIu64
               " segments linked from %s (%.1f MB)\n",
               dir, t.files, (double)t.bytes / 1e6, t.linked, prev ? prev : "-",
               (double)t.linked_bytes / 1e6);
    else
        fprintf(stderr, "wharf backup: failed; %s is incomplete (no MANIFEST)\n", dir);
    buf_free(&a);
    buf_free(&b);
    buf_free(&err);
    return rc;
}

int cmd_restore(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: wharf restore DIR\n");
        return EX_USAGE;
    }
    const char *dir = argv[1];
    const char *data = ctx->cfg->data_directory;
    struct buf a = BUF_INIT, b = BUF_INIT, err = BUF_INIT;
    int rc = 0;
    path_join(&a, dir, "MANIFEST");
    char head[64] = "";
    FILE *f = fopen(a.data, "re");
    if (f == NULL || fgets(head, sizeof(head), f) == NULL ||
        strncmp(head, BACKUP_FORMAT "\n", sizeof(BACKUP_FORMAT)) != 0) {
        fprintf(stderr, "wharf restore: %s is not a complete backup\n", dir);
        rc = EX_NOINPUT;
    }
    if (f)
        fclose(f);
    int fd = rc == 0 ? control_connect(ctx->cfg) : -1;
    if (fd >= 0) {
        close(fd);
        fprintf(stderr, "wharf restore: wharfd is running on %s; stop it first\n", data);
        rc = EX_TEMPFAIL;
    }
    static const char *const live[] = {"store/store.db", "directory/directory.db"};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        path_join(&a, data, live[i]);
        if (access(a.data, F_OK) == 0) {
            fprintf(stderr, "wharf restore: %s exists; restore only into a fresh data directory\n",
                    a.data);
            rc = EX_CANTCREAT;
        }
    }
    struct totals t = {0};
    if (rc == 0) {
        path_join(&b, data, "tls");
        path_join(&a, dir, "tls");
        mkdir(data, 0751);
        if (access(a.data, F_OK) == 0 && copy_dir(a.data, b.data, 0700, &t) != 0)
            fprintf(stderr, "wharf restore: %s not restored: %s\n", b.data, strerror(errno));
        if (datadir_prepare(ctx->cfg, &err) != 0) {
            fprintf(stderr, "wharf restore: %s\n", buf_cstr(&err));
            rc = EX_CANTCREAT;
        }
    }
    if (rc == 0) {
        /* the password hashes, as root, given to the auth user (DATA/auth) */
        path_join(&a, dir, "auth/credentials.db");
        path_join(&b, data, "auth/credentials.db");
        uid_t uid = geteuid();
        gid_t gid = getegid();
        int c = copy_file(a.data, b.data, &t);
        if (c < 0 || (c == 0 && ((geteuid() == 0 && datadir_auth_ids(ctx->cfg, &uid, &gid) &&
                                  chown(b.data, uid, gid) != 0) ||
                                 chmod(b.data, 0600) != 0))) {
            fprintf(stderr, "wharf restore: %s: %s\n", b.data, strerror(errno));
            rc = EX_IOERR;
        }
    }
    if (rc == 0) {
        component_drop_privileges(ctx->cfg);
        static const char *const dirs[] = {"store/blobs", "spool/queue", "spool/corrupt",
                                           "maildrop"};
        path_join(&b, data, "store/blobs");
        mkdir(b.data, 0700);
        for (size_t i = 0; i < 4 && rc == 0; i++) {
            path_join(&a, dir, dirs[i]);
            path_join(&b, data, dirs[i]);
            if (copy_dir(a.data, b.data, 0700, &t) != 0) {
                fprintf(stderr, "wharf restore: %s: %s\n", b.data, strerror(errno));
                rc = EX_IOERR;
            }
        }
        path_join(&a, dir, "dkim");
        path_join(&b, data, "dkim");
        if (rc == 0 && copy_dirs(a.data, b.data, &t) != 0) {
            fprintf(stderr, "wharf restore: %s: %s\n", b.data, strerror(errno));
            rc = EX_IOERR;
        }
        /* The databases last: a restore cut short leaves no store.db, so it can be rerun. */
        for (size_t i = 0; i < 2 && rc == 0; i++) {
            path_join(&a, dir, live[i]);
            path_join(&b, data, live[i]);
            if (copy_file(a.data, b.data, &t) < 0) {
                fprintf(stderr, "wharf restore: %s: %s\n", b.data, strerror(errno));
                rc = EX_IOERR;
            }
        }
        if (rc == 0 && sync_tree(data) != 0)
            rc = EX_IOERR;
    }
    if (rc == 0) {
        printf("restored %s into %s: %" PRIu64 " files (%.1f MB)\n", dir, data, t.files,
               (double)t.bytes / 1e6);
        path_join(&a, dir, "config/wharf.conf");
        if (access(a.data, F_OK) == 0)
            printf("the configuration of the backup is %s (not installed)\n", a.data);
    }
    buf_free(&a);
    buf_free(&b);
    buf_free(&err);
    return rc;
}
