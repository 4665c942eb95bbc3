/*
 * sqlite_snapshot.c - SQLite's online backup (see sqlite_snapshot.h).
 */
#include "base/sqlite_snapshot.h"

#include "base/sqlite_setup.h"

#include <sqlite3.h>

int sqlite_snapshot(const char *src, const char *dst, int busy_ms, struct buf *err)
{
    sqlite3 *s = NULL, *d = NULL;
    sqlite_setup();
    int rc = sqlite3_open_v2(src, &s, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_open_v2(dst, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s, busy_ms);
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
            /* a self-contained file: no -wal/-shm beside it (the driver turns WAL on again when it
             * opens it) */
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(d, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
        }
    }
    if (rc != SQLITE_OK)
        buf_printf(err, "%s: %s", src,
                   d && sqlite3_errcode(d) != SQLITE_OK ? sqlite3_errmsg(d)
                   : s                                  ? sqlite3_errmsg(s)
                                                        : sqlite3_errstr(rc));
    sqlite3_close(s);
    sqlite3_close(d);
    return rc == SQLITE_OK ? 0 : -1;
}
