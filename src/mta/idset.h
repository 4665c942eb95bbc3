/*
 * idset.h - a set of spool queue ids (strings shorter than IDSET_ID_MAX),
 * hashed: membership, insertion and removal in O(1) whatever the queue's size.
 * The mta keeps its in-flight, deferred and sending entries in these.
 */
#ifndef WHARF_MTA_IDSET_H
#define WHARF_MTA_IDSET_H

#include "base/strmap.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest id + 1 (spool ids are < 32 characters, spool_id_valid). */
#define IDSET_ID_MAX 32

struct idset {
    struct strmap map; /* keys: copies of the ids; walk it with strmap_next */
};

bool idset_has(const struct idset *s, const char *id);
/* Adds id (no-op when present); an id of IDSET_ID_MAX characters or more is cut. */
void idset_add(struct idset *s, const char *id);
void idset_del(struct idset *s, const char *id);
size_t idset_size(const struct idset *s);
void idset_free(struct idset *s);

#endif
