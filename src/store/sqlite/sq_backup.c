/*
 * sq_backup.c - the SQLite store driver's backup (store_backup, wharf
 * backup): a consistent copy of DATA/store taken while wharfd runs and
 * takes mail.
 *
 * From the store's durability order (doc/store.md): the segments are copied
 * AFTER the metadata snapshot (SQLite's online backup API, one read snapshot,
 * writers go on): a committed row names bytes that were fdatasync'd before
 * its commit, and segments only grow, so the files hold at least what the
 * snapshot refers to. The one thing that removes bytes is store_gc unlinking
 * a compacted segment; the segment files are therefore opened BEFORE the
 * snapshot (an unlinked file stays readable through its fd), and the copy
 * checks every (segment, offset + size) the snapshot names against what it
 * copied, retrying if a segment made and compacted within the snapshot
 * window escaped it. Incremental: segment files are append-only and never
 * renamed or reused; one with the same name and size in PREV is hard-linked.
 * Never writes under the live store.
 *
 * Restore (wharf restore, into a data directory without a store): the
 * segments first, store.db last, so a restore cut short leaves no store.db
 * and can be run again.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/sqlite_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Retries of the snapshot when a segment escaped it (see above). */
#define BACKUP_SNAPSHOT_TRIES 5

/* ---- the segments ---- */

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
        buf_reset(&p);
        buf_printf(&p, "%s/%s", blobs, e->d_name);
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
static int segs_check(struct segs *s, const char *db, struct buf *err)
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
        sqlite3_prepare_v2(
            d, "SELECT segment, max(offset + size) FROM blobs WHERE segment >= 0 GROUP BY segment",
            -1, &st, NULL) != SQLITE_OK) {
        buf_printf(err, "%s: %s", db, sqlite3_errmsg(d));
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
        buf_printf(err, "%s: %s", db, sqlite3_errmsg(d));
        rc = -1;
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(d);
    return rc;
}

int sq_backup(const char *store, const char *dir, const char *prev, struct store_backup_stats *t,
              struct buf *err)
{
    struct buf blobs = BUF_INIT, db = BUF_INIT, out = BUF_INIT, p = BUF_INIT;
    buf_printf(&blobs, "%s/blobs", store);
    buf_printf(&out, "%s/store", dir);
    if (mkdir(out.data, 0700) != 0) {
        buf_printf(err, "%s: %s", out.data, strerror(errno));
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
        buf_printf(&db, "%s/store.db", store);
        if (segs_open(&segs, blobs.data) != 0 ||
            sqlite_snapshot(db.data, out.data, 30000, err) != 0 ||
            segs_open(&segs, blobs.data) != 0)
            goto done;
        rc = segs_check(&segs, out.data, err);
        if (rc <= 0)
            break;
        segs_close(&segs); /* a segment escaped: take a new snapshot */
        rc = -1;
    }
    if (rc != 0) {
        if (rc > 0)
            buf_printf(err, "no consistent store snapshot after %d tries", BACKUP_SNAPSHOT_TRIES);
        rc = -1;
        goto done;
    }
    buf_reset(&out);
    buf_printf(&out, "%s/store/blobs", dir);
    if (mkdir(out.data, 0700) != 0) {
        buf_printf(err, "%s: %s", out.data, strerror(errno));
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < segs.n && rc == 0; i++) {
        buf_reset(&out);
        buf_printf(&out, "%s/store/blobs/%s", dir, segs.v[i].name);
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
        if (datadir_copy_fd(segs.v[i].fd, segs.v[i].size, out.data, 0600) != 0) {
            buf_printf(err, "%s: %s", out.data, strerror(errno));
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

/* ---- restore ---- */

bool sq_present(const char *dir)
{
    struct buf db = BUF_INIT;
    buf_printf(&db, "%s/store.db", dir);
    bool r = access(db.data, F_OK) == 0;
    buf_free(&db);
    return r;
}

/* One file of the backup into the store folder, counted. */
static int restore_file(const char *from, const char *to, struct store_backup_stats *st,
                        struct buf *err)
{
    uint64_t bytes = 0;
    int r = datadir_copy_file(from, to, &bytes);
    if (r < 0) {
        buf_printf(err, "%s: %s", to, strerror(errno));
        return -1;
    }
    if (r == 1) {
        buf_printf(err, "%s: missing from the backup", from);
        return -1;
    }
    st->files++;
    st->bytes += bytes;
    return 0;
}

int sq_restore(const char *from, const char *dir, struct store_backup_stats *st, struct buf *err)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    buf_printf(&a, "%s/store/blobs", from);
    buf_printf(&b, "%s/blobs", dir);
    int rc = 0;
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
        (mkdir(b.data, 0700) != 0 && errno != EEXIST)) {
        buf_printf(err, "%s: %s", b.data, strerror(errno));
        rc = -1;
    }
    DIR *d = rc == 0 ? opendir(a.data) : NULL;
    if (rc == 0 && d == NULL && errno != ENOENT) {
        buf_printf(err, "%s: %s", a.data, strerror(errno));
        rc = -1;
    }
    for (struct dirent *e; d != NULL && rc == 0 && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        buf_reset(&a);
        buf_reset(&b);
        buf_printf(&a, "%s/store/blobs/%s", from, e->d_name);
        buf_printf(&b, "%s/blobs/%s", dir, e->d_name);
        rc = restore_file(a.data, b.data, st, err);
    }
    if (d)
        closedir(d);
    buf_reset(&a);
    buf_reset(&b);
    buf_printf(&a, "%s/store/store.db", from);
    buf_printf(&b, "%s/store.db", dir);
    if (rc == 0)
        rc = restore_file(a.data, b.data, st, err);
    buf_free(&a);
    buf_free(&b);
    return rc;
}
