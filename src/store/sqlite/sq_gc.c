/*
 * sq_gc.c - reclaiming blob space, statistics, and expiry of the
 * exactly-once records (SQLite driver).
 *
 * A segment byte is live when a blobs row names it. Dead bytes come from
 * expunged bodies (their row went at refcount zero, once the expunge log
 * stopped holding them: release_held) and from crashes between
 * a blob append and its commit. sq_gc rolls the current segment over
 * when it holds dead bytes, rewrites the live bodies of segments that are at
 * least half dead into the current segment (fdatasync, then commit), and
 * unlinks segments with nothing live only after that commit. Never unlinks a
 * segment a committed row still names.
 */
#include "store/sqlite/sq_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct seg_use {
    int64_t seg;
    uint64_t live; /* bytes incl. record headers */
    uint64_t size; /* file size */
};

static int segment_live(struct store *s, int64_t seg, uint64_t *live_r, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s,
                               "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM blobs"
                               " WHERE segment = ?1 AND segment >= 0",
                               err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, seg);
    if (sqlite3_step(st) != SQLITE_ROW)
        return sq_db_error(s, "gc", err);
    *live_r = (uint64_t)sqlite3_column_int64(st, 0) +
              (uint64_t)sqlite3_column_int64(st, 1) * BLOB_HEADER_SIZE;
    sqlite3_reset(st);
    return 0;
}

/* Moves every live body of seg to segment dst (rows updated in this transaction). */
static int move_segment(struct store *s, int64_t seg, int64_t dst, struct buf *err)
{
    sqlite3_stmt *st =
        sq_stmt(s, "SELECT hash, offset, size FROM blobs WHERE segment = ?1 AND segment >= 0", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, seg);
    struct mv {
        char hash[BLOB_HASH_HEX];
        uint64_t off, size;
    } *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        memset(v[n].hash, 0, sizeof(v[n].hash));
        memcpy(v[n].hash, sqlite3_column_text(st, 0), 64);
        v[n].off = (uint64_t)sqlite3_column_int64(st, 1);
        v[n].size = (uint64_t)sqlite3_column_int64(st, 2);
        n++;
    }
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, "gc", err);
    struct buf body = BUF_INIT;
    for (size_t i = 0; i < n && result == 0; i++) {
        uint64_t off;
        result = blob_read(&sq(s)->blobs, seg, v[i].off, v[i].size, &body, err);
        if (result == 0)
            result = blob_append(&sq(s)->blobs, dst, buf_slice(&body), v[i].hash, &off, err);
        if (result != 0)
            break;
        st = sq_stmt(s, "UPDATE blobs SET segment = ?, offset = ? WHERE hash = ?", err);
        if (st == NULL) {
            result = -1;
            break;
        }
        sqlite3_bind_int64(st, 1, dst);
        sqlite3_bind_int64(st, 2, (int64_t)off);
        sqlite3_bind_text(st, 3, v[i].hash, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            result = sq_db_error(s, "gc", err);
    }
    buf_free(&body);
    free(v);
    return result;
}

int sq_unref_rows(struct store *s, sqlite3_stmt *st, const char *what, struct buf *err)
{
    char **hashes = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        hashes = xreallocarray(hashes, n + 1, sizeof(*hashes));
        hashes[n++] = sq_col_text(st, 0);
    }
    sqlite3_reset(st);
    int result = rc == SQLITE_DONE ? 0 : sq_db_error(s, what, err);
    for (size_t i = 0; i < n; i++) {
        if (result == 0)
            result = sq_blob_unref(s, hashes[i], err);
        free(hashes[i]);
    }
    free(hashes);
    return result;
}

/* Drops the references the expunge log held longer than expunge_hold (in a write transaction). */
static int release_held(struct store *s, struct buf *err)
{
    int64_t cutoff = (int64_t)time(NULL) - s->opt.expunge_hold;
    sqlite3_stmt *st =
        sq_stmt(s, "SELECT blob FROM expunged WHERE blob IS NOT NULL AND at <= ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, cutoff);
    if (sq_unref_rows(s, st, "gc", err) != 0)
        return -1;
    st = sq_stmt(s, "UPDATE expunged SET blob = NULL WHERE blob IS NOT NULL AND at <= ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, cutoff);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "gc", err);
}

int sq_gc(struct store *s, struct buf *err)
{
    int64_t *segs = NULL;
    size_t n = 0;
    if (sq_begin(s, true, err) != 0)
        return -1;
    if (release_held(s, err) != 0 || sq_uploads_expire(s, err) != 0)
        goto rollback;
    int64_t cur = sq_meta_get(s, "segment_current", err);
    if (cur < 0 || blob_segments(&sq(s)->blobs, &segs, &n, err) != 0)
        goto rollback;
    struct seg_use *use = xcalloc(n ? n : 1, sizeof(*use));
    size_t n_dead = 0;
    bool roll = false;
    for (size_t i = 0; i < n; i++) {
        struct seg_use u = {segs[i], 0, blob_segment_size(&sq(s)->blobs, segs[i])};
        if (segment_live(s, segs[i], &u.live, err) != 0) {
            free(use);
            goto rollback;
        }
        /* Candidates: nothing live, or at least half dead. */
        if (u.size > 0 && (u.live == 0 || u.live * 2 <= u.size)) {
            if (u.seg == cur)
                roll = true;
            use[n_dead++] = u;
        }
    }
    if (roll) {
        int64_t max = cur;
        for (size_t i = 0; i < n; i++)
            if (segs[i] > max)
                max = segs[i];
        cur = max + 1;
        if (sq_meta_set(s, "segment_current", cur, err) != 0) {
            free(use);
            goto rollback;
        }
    }
    for (size_t i = 0; i < n_dead; i++) {
        if (use[i].live > 0 && move_segment(s, use[i].seg, cur, err) != 0) {
            free(use);
            goto rollback;
        }
    }
    if (blob_sync(&sq(s)->blobs, err) != 0 || sq_commit(s, err) != 0) {
        free(use);
        goto rollback;
    }
    for (size_t i = 0; i < n_dead; i++)
        blob_segment_remove(&sq(s)->blobs, use[i].seg);
    free(use);
    free(segs);
    return 0;
rollback:
    sq_rollback(s);
    blob_release(&sq(s)->blobs);
    free(segs);
    return -1;
}

int sq_blob_stats(struct store *s, struct store_blob_stats *out, struct buf *err)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = sq_stmt(s, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs", err);
    if (st == NULL)
        return -1;
    if (sqlite3_step(st) != SQLITE_ROW)
        return sq_db_error(s, "stats", err);
    out->blobs = (uint64_t)sqlite3_column_int64(st, 0);
    out->blob_bytes = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    int64_t *segs;
    size_t n;
    if (blob_segments(&sq(s)->blobs, &segs, &n, err) != 0)
        return -1;
    out->segments = n;
    for (size_t i = 0; i < n; i++)
        out->segment_bytes += blob_segment_size(&sq(s)->blobs, segs[i]);
    free(segs);
    return 0;
}

int sq_dedupe_expire(struct store *s, int64_t max_age_seconds, struct buf *err)
{
    sqlite3_stmt *st = sq_stmt(s, "DELETE FROM delivered WHERE at < ?", err);
    if (st == NULL)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL) - max_age_seconds);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_error(s, "dedupe expiry", err);
}
