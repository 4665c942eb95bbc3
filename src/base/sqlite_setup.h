/*
 * sqlite_setup.h - SQLite's process-wide settings, made once before a
 * process's first database is opened (both SQLite drivers call it first).
 *
 * Memory statistics are off: with them on, every allocation SQLite makes
 * takes one mutex shared by all threads of the process, and a worker whose
 * loop and offload threads (the JMAP view builder, the store's writer) run
 * SQLite at once spent most of a query waiting on it. Nothing in Wharf reads
 * those statistics nor sets a heap limit.
 */
#ifndef WHARF_BASE_SQLITE_SETUP_H
#define WHARF_BASE_SQLITE_SETUP_H

/* Idempotent and thread-safe; a no-op once SQLite is initialised by someone else. */
void sqlite_setup(void);

#endif
