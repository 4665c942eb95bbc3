/*
 * sqlite_snapshot.h - SQLite's online backup of one database file into a
 * new file: a single read snapshot while writers go on, written out as a
 * self-contained file (rollback journal, no -wal/-shm beside it).
 *
 * Shared by the SQLite drivers of the store and the directory for
 * `wharf backup`; nothing else may use SQLite (tests/check_sqlite_symbols.py).
 */
#ifndef WHARF_BASE_SQLITE_SNAPSHOT_H
#define WHARF_BASE_SQLITE_SNAPSHOT_H

#include "base/buf.h"

/* 0, or -1 with "SRC: why" in err. busy_ms: how long to wait for a writer's lock. */
int sqlite_snapshot(const char *src, const char *dst, int busy_ms, struct buf *err);

#endif
