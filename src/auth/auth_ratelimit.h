/*
 * auth_ratelimit.h - counting failed logins per key (a client address or an
 * account name) over a fixed window, in bounded memory.
 *
 * Used by the auth process's event loop only (not thread-safe). The table
 * never holds more than max_entries keys: when full, the entry whose window
 * started first is forgotten, so a flood of addresses costs memory once.
 */
#ifndef WHARF_AUTH_AUTH_RATELIMIT_H
#define WHARF_AUTH_AUTH_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

struct ratelimit *ratelimit_new(int64_t window_ms, size_t max_entries);
void ratelimit_free(struct ratelimit *rl);
/* Failures counted for key in its current window (0 when unknown or expired). */
unsigned ratelimit_count(struct ratelimit *rl, const char *key, int64_t now_ms);
/* Counts one more failure; returns the new count. */
unsigned ratelimit_fail(struct ratelimit *rl, const char *key, int64_t now_ms);
/* Forgets key (after a successful login). */
void ratelimit_reset(struct ratelimit *rl, const char *key);
/* Starts a new window for key at now_ms holding count (a ban, a remembered login). */
void ratelimit_set(struct ratelimit *rl, const char *key, unsigned count, int64_t now_ms);
/* Calls fn for every key whose window is still open at now_ms (any order). */
void ratelimit_foreach(struct ratelimit *rl, int64_t now_ms,
                       void (*fn)(void *arg, const char *key, unsigned count, int64_t start_ms),
                       void *arg);
int64_t ratelimit_window(const struct ratelimit *rl);
size_t ratelimit_size(const struct ratelimit *rl);

#endif
