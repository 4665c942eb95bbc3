/*
 * idset.c - hashed set of queue ids (see idset.h): the hash table kit
 * (base/strmap.h) holding a copy of each id.
 */
#include "mta/idset.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

bool idset_has(const struct idset *s, const char *id)
{
    return strmap_find(&s->map, id) != NULL;
}

void idset_add(struct idset *s, const char *id)
{
    size_t len = strnlen(id, IDSET_ID_MAX - 1);
    if (len == 0)
        return;
    char *key = xstrndup(id, len);
    bool added;
    strmap_add(&s->map, key, &added);
    if (!added)
        free(key);
}

void idset_del(struct idset *s, const char *id)
{
    struct strmap_slot out;
    if (strmap_del(&s->map, id, &out))
        free((char *)out.key);
}

size_t idset_size(const struct idset *s)
{
    return s->map.n;
}

void idset_free(struct idset *s)
{
    for (struct strmap_slot *e = NULL; (e = strmap_next(&s->map, e)) != NULL;)
        free((char *)e->key);
    strmap_free(&s->map);
}
