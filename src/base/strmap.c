/*
 * strmap.c - see strmap.h.
 */
#include "base/strmap.h"
#include "base/alloc.h"
#include "base/hash.h"

#include <stdlib.h>
#include <string.h>

static size_t home(const struct strmap *m, const char *key)
{
    uint64_t h = hash_str(key);
    return (size_t)(h ^ (h >> 32)) & (m->cap - 1);
}

/* Index of key's slot, or of the empty slot where it would go (cap > 0). */
static size_t probe(const struct strmap *m, const char *key)
{
    size_t mask = m->cap - 1, i = home(m, key);
    while (m->slot[i].key != NULL && strcmp(m->slot[i].key, key) != 0)
        i = (i + 1) & mask;
    return i;
}

static void grow(struct strmap *m, size_t cap)
{
    struct strmap old = *m;
    m->cap = cap;
    m->slot = xcalloc(cap, sizeof(*m->slot));
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i].key != NULL)
            m->slot[probe(m, old.slot[i].key)] = old.slot[i];
    free(old.slot);
}

void strmap_reserve(struct strmap *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 16;
    while (cap < 2 * n)
        cap *= 2;
    if (cap != m->cap)
        grow(m, cap);
}

struct strmap_slot *strmap_find(const struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    struct strmap_slot *s = &m->slot[probe(m, key)];
    return s->key != NULL ? s : NULL;
}

struct strmap_slot *strmap_add(struct strmap *m, const char *key, bool *added)
{
    if ((m->n + 1) * 2 > m->cap)
        grow(m, m->cap ? m->cap * 2 : 16);
    struct strmap_slot *s = &m->slot[probe(m, key)];
    *added = s->key == NULL;
    if (*added) {
        *s = (struct strmap_slot){.key = key};
        m->n++;
    }
    return s;
}

bool strmap_del(struct strmap *m, const char *key, struct strmap_slot *out)
{
    if (m->cap == 0)
        return false;
    size_t mask = m->cap - 1, i = probe(m, key);
    if (m->slot[i].key == NULL)
        return false;
    if (out != NULL)
        *out = m->slot[i];
    m->n--;
    /* backward shift: move up each following entry whose home is not in (i, j] */
    for (size_t j = (i + 1) & mask; m->slot[j].key != NULL; j = (j + 1) & mask) {
        size_t h = home(m, m->slot[j].key);
        if (((j - h) & mask) >= ((j - i) & mask)) {
            m->slot[i] = m->slot[j];
            i = j;
        }
    }
    m->slot[i] = (struct strmap_slot){0};
    return true;
}

void strmap_free(struct strmap *m)
{
    free(m->slot);
    *m = (struct strmap){0};
}

struct strmap_slot *strmap_next(const struct strmap *m, struct strmap_slot *s)
{
    s = s ? s + 1 : m->slot;
    for (; s != NULL && s < m->slot + m->cap; s++)
        if (s->key != NULL)
            return s;
    return NULL;
}
