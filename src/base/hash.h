/*
 * FNV-1a, 64-bit: the one string/bytes hash of the code base, for the
 * in-memory tables (connection counts, caches, id sets) and the short
 * fingerprints that say "changed" (JMAP session state). Not a MAC: nothing
 * here may stand between an attacker and a decision (use HMAC for that).
 */
#ifndef WHARF_BASE_HASH_H
#define WHARF_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HASH_FNV1A_BASIS UINT64_C(14695981039346656037)

/* n bytes of p hashed onto h (HASH_FNV1A_BASIS to start). */
static inline uint64_t hash_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(1099511628211);
    return h;
}

/* A C string, without its NUL. */
static inline uint64_t hash_str(const char *s)
{
    return hash_fnv1a(HASH_FNV1A_BASIS, s, strlen(s));
}

#endif
