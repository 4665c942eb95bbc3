/*
 * fuzz_login_cache.c - libFuzzer target for the login cache's file
 * (login_cache_parse: DATA/auth/login-cache, as the auth process reads it at
 * its start, after a reload or a restart).
 *
 * The input is a whole file. Into a cache that holds one login already: a
 * file refused leaves it as it was; a file taken holds no more than the cap,
 * and what it gives is written out and read back to the same text.
 */
#include "auth/login_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MONO 1000000000LL    /* the monotonic clock, in ms */
#define WALL 1800000000000LL /* the wall clock, in ms (2027) */
#define TTL (86400LL * 1000) /* a day */
#define MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct login_cache *c = login_cache_new(MAX, TTL);
    login_cache_put(c, "kept@example.test", "$y$j9T$salt$kept", MONO);
    uint64_t v = login_cache_version(c);
    struct buf err = BUF_INIT, text = BUF_INIT, again = BUF_INIT;
    size_t n = 0;
    if (login_cache_parse(c, (const char *)data, size, MONO, WALL, &n, &err) != 0) {
        if (err.len == 0 || login_cache_version(c) != v || login_cache_size(c) != 1)
            abort(); /* a refusal says why and takes nothing */
    } else {
        if (n > MAX || login_cache_size(c) > MAX)
            abort();
        /* What was taken is written as a file that reads back whole, to the same text. */
        login_cache_format(c, MONO, WALL, &text);
        struct login_cache *d = login_cache_new(MAX, TTL);
        if (login_cache_parse(d, text.data, text.len, MONO, WALL, NULL, &err) != 0)
            abort();
        login_cache_format(d, MONO, WALL, &again);
        if (again.len != text.len || memcmp(again.data, text.data, text.len) != 0)
            abort();
        login_cache_free(d);
    }
    login_cache_free(c);
    buf_free(&err);
    buf_free(&text);
    buf_free(&again);
    return 0;
}
