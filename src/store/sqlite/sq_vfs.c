/*
 * sq_vfs.c - a VFS over SQLite's default one that writes a commit's WAL frames
 * in one pwrite instead of two per frame.
 *
 * SQLite appends each WAL frame as two writes (its 24-byte header, then the
 * page): a one-article commit of ~15 frames was ~30 pwrite64 calls on the
 * answer path of an NNTP POST (bench/README.md). This VFS gathers the
 * contiguous writes to a WAL file in memory and hands them to the real file
 * in one write before anything can look at the file: before a sync, a read, a
 * size query or change, a file control and close. Every other file (the
 * database, its -shm) is the default VFS's own, untouched.
 *
 * Only for stores with synchronous = FULL (sq_vfs_name): there SQLite syncs
 * the WAL at every commit before it publishes the commit's frames in the
 * wal-index, so no other connection can be told of a frame still in this
 * buffer. With synchronous = OFF it publishes without a sync, and another
 * connection would read frames not yet written: never used there.
 *
 * A write error surfaces from the call that flushes (the commit's sync, in
 * practice), which SQLite handles as the failure of that commit.
 */
#include "store/sqlite/sq_int.h"

#include <pthread.h>
#include <string.h>

/* Gathered bytes past which they are written: the unix VFS writes at most
 * 0x1ffff bytes a call (seekAndWriteFd masks the length with it, and a write it
 * cut to 0 is SQLITE_FULL), so a write is kept below that: 31 frames of 4 KiB. */
#define WALBUF_MAX 0x1ffff

struct walbuf {
    sqlite3_file base; /* pMethods = &walbuf_methods */
    sqlite3_file *real;
    unsigned char *buf;
    size_t len, cap;
    sqlite3_int64 off; /* the file offset of buf[0] */
};

static sqlite3_vfs vfs;
static sqlite3_vfs *real_vfs;
static const sqlite3_io_methods walbuf_methods;

/* Where the real file lives: after ours, in the memory SQLite gave xOpen. */
#define REAL_AT ((sizeof(struct walbuf) + 15) & ~(size_t)15)

static int flush(struct walbuf *w)
{
    if (w->len == 0)
        return SQLITE_OK;
    int rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->off);
    w->len = 0;
    return rc;
}

static int wb_close(sqlite3_file *f)
{
    struct walbuf *w = (struct walbuf *)f;
    int rc = flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    sqlite3_free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off)
{
    struct walbuf *w = (struct walbuf *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, amt, off);
}

static int wb_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
    struct walbuf *w = (struct walbuf *)f;
    if (w->len > 0 &&
        (off != w->off + (sqlite3_int64)w->len || w->len + (size_t)amt > WALBUF_MAX)) {
        int rc = flush(w); /* not contiguous, or enough gathered */
        if (rc != SQLITE_OK)
            return rc;
    }
    if ((size_t)amt > WALBUF_MAX)
        return w->real->pMethods->xWrite(w->real, p, amt, off);
    if (w->len + (size_t)amt > w->cap) {
        size_t cap = w->cap ? w->cap : 64 * 1024;
        while (cap < w->len + (size_t)amt)
            cap *= 2;
        unsigned char *b = sqlite3_realloc64(w->buf, cap);
        if (b == NULL) { /* write it through rather than fail */
            int rc = flush(w);
            return rc != SQLITE_OK ? rc : w->real->pMethods->xWrite(w->real, p, amt, off);
        }
        w->buf = b;
        w->cap = cap;
    }
    if (w->len == 0)
        w->off = off;
    memcpy(w->buf + w->len, p, (size_t)amt);
    w->len += (size_t)amt;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct walbuf *w = (struct walbuf *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wb_sync(sqlite3_file *f, int flags)
{
    struct walbuf *w = (struct walbuf *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wb_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct walbuf *w = (struct walbuf *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wb_lock(sqlite3_file *f, int level)
{
    struct walbuf *w = (struct walbuf *)f;
    return w->real->pMethods->xLock(w->real, level);
}

static int wb_unlock(sqlite3_file *f, int level)
{
    struct walbuf *w = (struct walbuf *)f;
    return w->real->pMethods->xUnlock(w->real, level);
}

static int wb_check_reserved(sqlite3_file *f, int *out)
{
    struct walbuf *w = (struct walbuf *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wb_file_control(sqlite3_file *f, int op, void *arg)
{
    struct walbuf *w = (struct walbuf *)f;
    int rc = flush(w); /* a size hint, a chunk size...: on the file as SQLite wrote it */
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wb_sector_size(sqlite3_file *f)
{
    struct walbuf *w = (struct walbuf *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int wb_device_characteristics(sqlite3_file *f)
{
    struct walbuf *w = (struct walbuf *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* Version 1: SQLite neither maps a WAL file nor keeps shared memory on it. */
static const sqlite3_io_methods walbuf_methods = {
    .iVersion = 1,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
};

/* A WAL file behind a walbuf; any other file is the real VFS's, in place. */
static int vfs_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    (void)v;
    if (!(flags & SQLITE_OPEN_WAL))
        return real_vfs->xOpen(real_vfs, name, f, flags, out);
    struct walbuf *w = (struct walbuf *)f;
    memset(w, 0, sizeof(*w));
    /* REAL_AT is a multiple of 16 and SQLite allocates szOsFile bytes 8-aligned */
    w->real = (sqlite3_file *)(void *)((char *)f + REAL_AT);
    int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out);
    if (rc != SQLITE_OK) {
        if (w->real->pMethods)
            w->real->pMethods->xClose(w->real);
        w->base.pMethods = NULL;
        return rc;
    }
    w->base.pMethods = &walbuf_methods;
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync)
{
    (void)v;
    return real_vfs->xDelete(real_vfs, name, sync);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *vfs_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void vfs_dlerror(sqlite3_vfs *v, int n, char *msg)
{
    (void)v;
    real_vfs->xDlError(real_vfs, n, msg);
}

static void (*vfs_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void vfs_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    real_vfs->xDlClose(real_vfs, h);
}

static int vfs_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return real_vfs->xSleep(real_vfs, us);
}

static int vfs_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int vfs_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int vfs_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static int registered = SQLITE_ERROR;

static void vfs_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL || real_vfs->iVersion < 2 || real_vfs->xCurrentTimeInt64 == NULL)
        return;
    vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)(REAL_AT + (size_t)real_vfs->szOsFile),
        .mxPathname = real_vfs->mxPathname,
        .zName = "wharf-walbuf",
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_full_pathname,
        .xDlOpen = vfs_dlopen,
        .xDlError = vfs_dlerror,
        .xDlSym = vfs_dlsym,
        .xDlClose = vfs_dlclose,
        .xRandomness = vfs_randomness,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_current_time,
        .xGetLastError = vfs_last_error,
        .xCurrentTimeInt64 = vfs_current_time64,
    };
    registered = sqlite3_vfs_register(&vfs, 0);
}

const char *sq_vfs_name(bool synced)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (!synced)
        return NULL;
    pthread_once(&once, vfs_register);
    return registered == SQLITE_OK ? vfs.zName : NULL;
}
