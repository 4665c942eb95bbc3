/*
 * sq_schema.h - schema migrations of the SQLite store driver (internal).
 */
#ifndef WHARF_STORE_SQ_SCHEMA_H
#define WHARF_STORE_SQ_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

/* The schema version a fully migrated database has. */
size_t sq_schema_count(void);
/* SQL that migrates from from_version to from_version + 1, or NULL. */
const char *sq_schema_migration(size_t from_version);

struct store;
struct buf;
/* A step in C that a migration needs (what SQL cannot compute: parsing the
 * messages), run after its SQL in the same transaction; NULL: none. Found by
 * the migration's text, not its number, so renumbering keeps it. */
typedef int sq_schema_step_fn(struct store *s, struct buf *err);
sq_schema_step_fn *sq_schema_after(size_t from_version);
/* Whether a database at this version has blobs.body (bodies kept in their row), so
 * that a C step of an older migration reads bodies without naming it. */
bool sq_schema_blob_body(size_t version);
/* Whether a store at version keeps its in-database bodies in blob_bodies (17 -> 18). */
bool sq_schema_blob_rows(size_t version);

#endif
