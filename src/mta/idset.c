/*
 * idset.c - hashed set of queue ids (see idset.h). Open addressing with
 * linear probing; removal shifts the following entries back so that no
 * tombstones accumulate while ids come and go for days.
 */
#include "mta/idset.h"
#include "base/alloc.h"
#include "base/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t idset_hash(const char *id)
{
    uint64_t h = hash_str(id);
    return (size_t)(h ^ (h >> 32));
}

/* Index of id's slot, or of the empty slot where it would go (cap > 0). */
static size_t idset_find(const struct idset *s, const char *id)
{
    size_t mask = s->cap - 1, i = idset_hash(id) & mask;
    while (s->slot[i][0] != '\0' && strcmp(s->slot[i], id) != 0)
        i = (i + 1) & mask;
    return i;
}

bool idset_has(const struct idset *s, const char *id)
{
    return s->cap > 0 && s->slot[idset_find(s, id)][0] != '\0';
}

static void idset_grow(struct idset *s)
{
    struct idset old = *s;
    s->cap = old.cap ? old.cap * 2 : 16;
    s->slot = xcalloc(s->cap, sizeof(*s->slot));
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i][0] != '\0')
            memcpy(s->slot[idset_find(s, old.slot[i])], old.slot[i], IDSET_ID_MAX);
    free(old.slot);
}

void idset_add(struct idset *s, const char *id)
{
    char key[IDSET_ID_MAX];
    size_t len = strnlen(id, IDSET_ID_MAX - 1);
    memcpy(key, id, len);
    key[len] = '\0';
    if (key[0] == '\0')
        return;
    if ((s->n + 1) * 2 > s->cap)
        idset_grow(s);
    size_t i = idset_find(s, key);
    if (s->slot[i][0] != '\0')
        return;
    memcpy(s->slot[i], key, len + 1);
    s->n++;
}

void idset_del(struct idset *s, const char *id)
{
    if (s->cap == 0 || id[0] == '\0')
        return;
    size_t mask = s->cap - 1, i = idset_find(s, id);
    if (s->slot[i][0] == '\0')
        return;
    s->n--;
    /* backward shift: move up every following entry whose home is not in (i, j] */
    for (size_t j = (i + 1) & mask; s->slot[j][0] != '\0'; j = (j + 1) & mask) {
        size_t home = idset_hash(s->slot[j]) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            memcpy(s->slot[i], s->slot[j], IDSET_ID_MAX);
            i = j;
        }
    }
    s->slot[i][0] = '\0';
}

void idset_free(struct idset *s)
{
    free(s->slot);
    *s = (struct idset){0};
}
