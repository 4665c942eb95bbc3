/*
 * auth_ratelimit.c - failed-login counters in a chained hash table with a
 * size cap. Keys are copied; nothing here is logged.
 */
#include "auth/auth_ratelimit.h"
#include "base/alloc.h"
#include "base/hash.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    char *key;
    unsigned count;
    int64_t start_ms;
};

struct ratelimit {
    int64_t window_ms;
    size_t max_entries, n, n_buckets;
    struct entry **buckets;
};

static size_t hash_key(const char *s)
{
    return (size_t)hash_str(s);
}

struct ratelimit *ratelimit_new(int64_t window_ms, size_t max_entries)
{
    struct ratelimit *rl = xcalloc(1, sizeof(*rl));
    rl->window_ms = window_ms;
    rl->max_entries = max_entries;
    rl->n_buckets = 1024;
    while (rl->n_buckets < max_entries / 4 && rl->n_buckets < (1u << 20))
        rl->n_buckets *= 2;
    rl->buckets = xcalloc(rl->n_buckets, sizeof(*rl->buckets));
    return rl;
}

static void entry_free(struct entry *e)
{
    free(e->key);
    free(e);
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->n_buckets; i++) {
        for (struct entry *e = rl->buckets[i], *next; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    }
    free(rl->buckets);
    free(rl);
}

static struct entry **find(struct ratelimit *rl, const char *key)
{
    struct entry **pp = &rl->buckets[hash_key(key) & (rl->n_buckets - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void unlink_entry(struct ratelimit *rl, struct entry **pp)
{
    struct entry *e = *pp;
    *pp = e->next;
    entry_free(e);
    rl->n--;
}

/* Drops expired entries, then the oldest if still full. O(n), only when full. */
static void make_room(struct ratelimit *rl, int64_t now_ms)
{
    struct entry **oldest = NULL;
    for (size_t i = 0; i < rl->n_buckets; i++) {
        for (struct entry **pp = &rl->buckets[i]; *pp;) {
            if (now_ms - (*pp)->start_ms >= rl->window_ms) {
                unlink_entry(rl, pp);
                continue;
            }
            if (oldest == NULL || (*pp)->start_ms < (*oldest)->start_ms)
                oldest = pp;
            pp = &(*pp)->next;
        }
    }
    if (rl->n >= rl->max_entries && oldest)
        unlink_entry(rl, oldest);
}

unsigned ratelimit_count(struct ratelimit *rl, const char *key, int64_t now_ms)
{
    struct entry *e = *find(rl, key);
    if (e == NULL || now_ms - e->start_ms >= rl->window_ms)
        return 0;
    return e->count;
}

/* The entry of key, made (making room when full) if it is not there. */
static struct entry *get(struct ratelimit *rl, const char *key, int64_t now_ms)
{
    struct entry **pp = find(rl, key);
    if (*pp == NULL) {
        if (rl->n >= rl->max_entries) {
            make_room(rl, now_ms);
            pp = find(rl, key);
        }
        struct entry *e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(key);
        e->start_ms = now_ms;
        e->next = NULL;
        *pp = e;
        rl->n++;
    }
    return *pp;
}

unsigned ratelimit_fail(struct ratelimit *rl, const char *key, int64_t now_ms)
{
    struct entry *e = get(rl, key, now_ms);
    if (now_ms - e->start_ms >= rl->window_ms) {
        e->start_ms = now_ms;
        e->count = 0;
    }
    if (e->count < UINT32_MAX)
        e->count++;
    return e->count;
}

void ratelimit_reset(struct ratelimit *rl, const char *key)
{
    struct entry **pp = find(rl, key);
    if (*pp)
        unlink_entry(rl, pp);
}

size_t ratelimit_size(const struct ratelimit *rl)
{
    return rl->n;
}

void ratelimit_set(struct ratelimit *rl, const char *key, unsigned count, int64_t now_ms)
{
    struct entry *e = get(rl, key, now_ms);
    e->start_ms = now_ms;
    e->count = count;
}

void ratelimit_foreach(struct ratelimit *rl, int64_t now_ms,
                       void (*fn)(void *arg, const char *key, unsigned count, int64_t start_ms),
                       void *arg)
{
    for (size_t i = 0; i < rl->n_buckets; i++) {
        for (struct entry *e = rl->buckets[i]; e; e = e->next) {
            if (now_ms - e->start_ms < rl->window_ms)
                fn(arg, e->key, e->count, e->start_ms);
        }
    }
}

int64_t ratelimit_window(const struct ratelimit *rl)
{
    return rl->window_ms;
}
