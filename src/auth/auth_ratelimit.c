/*
 * auth_ratelimit.c - failed-login counters in the hash table kit
 * (base/strmap.h) with a size cap. Keys are copied; nothing here is logged.
 */
#include "auth/auth_ratelimit.h"
#include "base/alloc.h"
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    char *key; /* the map's key too */
    unsigned count;
    int64_t start_ms;
};

struct ratelimit {
    int64_t window_ms;
    size_t max_entries;
    struct strmap map; /* key -> struct entry */
};

struct ratelimit *ratelimit_new(int64_t window_ms, size_t max_entries)
{
    struct ratelimit *rl = xcalloc(1, sizeof(*rl));
    rl->window_ms = window_ms;
    rl->max_entries = max_entries;
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
    for (struct strmap_slot *s = NULL; (s = strmap_next(&rl->map, s)) != NULL;)
        entry_free(s->val.ptr);
    strmap_free(&rl->map);
    free(rl);
}

static struct entry *find(const struct ratelimit *rl, const char *key)
{
    struct strmap_slot *s = strmap_find(&rl->map, key);
    return s ? s->val.ptr : NULL;
}

static void drop(struct ratelimit *rl, struct entry *e)
{
    strmap_del(&rl->map, e->key, NULL);
    entry_free(e);
}

/* Drops expired entries, then the oldest if still full. O(n), only when full. */
static void make_room(struct ratelimit *rl, int64_t now_ms)
{
    struct entry **gone = xcalloc(rl->map.n + 1, sizeof(*gone)), *oldest = NULL;
    size_t n = 0;
    for (struct strmap_slot *s = NULL; (s = strmap_next(&rl->map, s)) != NULL;) {
        struct entry *e = s->val.ptr;
        if (now_ms - e->start_ms >= rl->window_ms)
            gone[n++] = e; /* dropped after the walk: a delete moves slots */
        else if (oldest == NULL || e->start_ms < oldest->start_ms)
            oldest = e;
    }
    for (size_t i = 0; i < n; i++)
        drop(rl, gone[i]);
    free(gone);
    if (rl->map.n >= rl->max_entries && oldest)
        drop(rl, oldest);
}

unsigned ratelimit_count(struct ratelimit *rl, const char *key, int64_t now_ms)
{
    struct entry *e = find(rl, key);
    if (e == NULL || now_ms - e->start_ms >= rl->window_ms)
        return 0;
    return e->count;
}

/* The entry of key, made (making room when full) if it is not there. */
static struct entry *get(struct ratelimit *rl, const char *key, int64_t now_ms)
{
    struct entry *e = find(rl, key);
    if (e == NULL) {
        if (rl->map.n >= rl->max_entries)
            make_room(rl, now_ms);
        e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(key);
        e->start_ms = now_ms;
        bool added;
        strmap_add(&rl->map, e->key, &added)->val.ptr = e;
    }
    return e;
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
    struct entry *e = find(rl, key);
    if (e)
        drop(rl, e);
}

size_t ratelimit_size(const struct ratelimit *rl)
{
    return rl->map.n;
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
    for (struct strmap_slot *s = NULL; (s = strmap_next(&rl->map, s)) != NULL;) {
        const struct entry *e = s->val.ptr;
        if (now_ms - e->start_ms < rl->window_ms)
            fn(arg, e->key, e->count, e->start_ms);
    }
}

int64_t ratelimit_window(const struct ratelimit *rl)
{
    return rl->window_ms;
}
