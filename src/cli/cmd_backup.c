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
 * backup API: one read snapshot each, writers go on; the directory's part by
 * its driver, directory_backup), auth/credentials.db (the password hashes:
 * copied as root and kept root's), dkim/ (the DKIM keys), store/blobs/ (the
 * segment files), and MANIFEST.
 *
 * Consistency, from the store's durability order (doc/store.md):
 *   - The spool is copied BEFORE the store snapshot. The mta removes a spool
 *     file only after the commit that stored its message; so a message
 *     acknowledged before the backup began is either still in the spool when
 *     the copy reaches it, or already committed before the snapshot. Both
 *     copies may hold it: on restore the mta's exactly-once record (queue id,
 *     account) in the snapshot makes the redelivery a no-op.
 *   - The store itself (metadata snapshot, then the segments it names;
 *     incremental: unchanged segments hard-linked from PREV) is copied by
 *     its driver: store_backup (src/store/sqlite/sq_backup.c says how).
 * Never writes under the live data directory during a backup; restore never
 * overwrites a store or directory that exists, nor runs beside a live wharfd.
 * The store and the directory put back their own files, as their drivers
 * took them (store_restore, directory_restore).
 */
#include "base/alloc.h"
#include "base/component.h"
#include "base/datadir.h"
#include "cli/cli.h"
#include "directory/directory.h"
#include "ipc/control.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define BACKUP_FORMAT "wharf-backup 1"

struct totals {
    uint64_t files, bytes, linked, linked_bytes;
};

static void path_join(struct buf *out, const char *a, const char *b)
{
    buf_reset(out);
    buf_printf(out, "%s/%s", a, b);
}

/* Copies a file if it (still) exists: 0 copied, 1 gone, -1 error. */
static int copy_file(const char *from, const char *to, struct totals *t)
{
    uint64_t bytes = 0;
    int rc = datadir_copy_file(from, to, &bytes);
    if (rc == 0) {
        t->files++;
        t->bytes += bytes;
    }
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
        mode_t old = umask(077);
        if (directory_backup(ctx->cfg, DIRECTORY_PART_CREDENTIALS, dir, &err) != 0) {
            fprintf(stderr, "wharf backup: %s\n", buf_cstr(&err));
            rc = EX_IOERR;
        }
        umask(old);
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
    if (rc == 0 && directory_backup(ctx->cfg, DIRECTORY_PART_ACCOUNTS, dir, &err) != 0) {
        fprintf(stderr, "wharf backup: %s\n", buf_cstr(&err));
        rc = EX_IOERR;
    }
    if (rc == 0) {
        struct store_backup_stats st = {0};
        buf_reset(&err);
        if (store_backup(ctx->cfg, dir, prev, &st, &err) != 0) {
            fprintf(stderr, "wharf backup: %s\n", buf_cstr(&err));
            rc = EX_IOERR;
        }
        t.files += st.files;
        t.bytes += st.bytes;
        t.linked += st.linked;
        t.linked_bytes += st.linked_bytes;
    }
    if (rc == 0) {
        path_join(&b, dir, "MANIFEST");
        FILE *f = fopen(b.data, "we");
        if (f == NULL ||
            fprintf(f, "%s\ncreated %lld\ndata_directory %s\nincremental_from %s\n", BACKUP_FORMAT,
                    (long long)time(NULL), data, prev ? prev : "-") < 0 ||
            fclose(f) != 0)
            rc = EX_IOERR;
    }
    if (rc == 0 && datadir_syncfs(dir) != 0)
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
    if (rc == 0 &&
        (store_present(ctx->cfg) || directory_present(ctx->cfg, DIRECTORY_PART_ACCOUNTS))) {
        fprintf(stderr,
                "wharf restore: %s holds a store or accounts; restore only into a fresh data "
                "directory\n",
                data);
        rc = EX_CANTCREAT;
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
        if (directory_restore(ctx->cfg, DIRECTORY_PART_CREDENTIALS, dir, &err) != 0) {
            fprintf(stderr, "wharf restore: %s\n", buf_cstr(&err));
            rc = EX_IOERR;
        }
    }
    if (rc == 0) {
        component_drop_privileges(ctx->cfg);
        static const char *const dirs[] = {"spool/queue", "spool/corrupt", "maildrop"};
        for (size_t i = 0; i < 3 && rc == 0; i++) {
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
        /* The accounts, then the store by its driver (its metadata last): a
         * restore cut short leaves no store, so it can be rerun. */
        struct store_backup_stats st = {0};
        if (rc == 0 && (directory_restore(ctx->cfg, DIRECTORY_PART_ACCOUNTS, dir, &err) != 0 ||
                        store_restore(ctx->cfg, dir, &st, &err) != 0)) {
            fprintf(stderr, "wharf restore: %s\n", buf_cstr(&err));
            rc = EX_IOERR;
        }
        t.files += st.files;
        t.bytes += st.bytes;
        if (rc == 0 && datadir_syncfs(data) != 0)
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
