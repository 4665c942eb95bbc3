/*
 * strmap.h - the one in-memory hash table of the code base: C-string keys to
 * a pointer or an integer, open addressing with linear probing, kept at most
 * half full (it doubles), deletion by backward shift (no tombstones, so a
 * table that churns never slows down). Hashed with hash_str (base/hash.h).
 *
 * The map does not own its keys: a key must live as long as its entry
 * (typically it is a field of the value, or a copy the caller frees when it
 * deletes the entry or walks the map before strmap_free). That lets a set of
 * ids own copies, a cache point at its entries' own key, and a one-shot
 * index borrow strings that outlive it, with one mechanism.
 *
 * Must never: be read or changed from two threads without a lock; keep a
 * slot pointer across an add or a delete (either may move slots).
 */
#ifndef WHARF_BASE_STRMAP_H
#define WHARF_BASE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
    const char *key; /* NULL: an empty slot */
    union {
        void *ptr;
        int64_t num;
    } val;
};

struct strmap {
    struct strmap_slot *slot;
    size_t n, cap; /* cap: 0 or a power of two, n <= cap / 2 */
};

/* Room for n entries without growing (optional: a zeroed map is empty and valid). */
void strmap_reserve(struct strmap *m, size_t n);
/* key's slot, or NULL. */
struct strmap_slot *strmap_find(const struct strmap *m, const char *key);
/* key's slot; when it was not there (*added true), a new slot holding key itself
 * (not a copy) and a zero value. */
struct strmap_slot *strmap_add(struct strmap *m, const char *key, bool *added);
/* Removes key's entry: true, and a copy of the slot in *out (for its key and value)
 * when it was there. */
bool strmap_del(struct strmap *m, const char *key, struct strmap_slot *out);
/* Frees the table (not the keys nor the values); the map is empty and reusable. */
void strmap_free(struct strmap *m);

/* Each entry: for (struct strmap_slot *s = NULL; (s = strmap_next(m, s)) != NULL;). Not
 * across an add or a delete. */
struct strmap_slot *strmap_next(const struct strmap *m, struct strmap_slot *s);

#endif
