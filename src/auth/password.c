/*
 * password.c - yescrypt hashing and checking of crypt(3) hashes, through
 * libxcrypt's reentrant functions.
 *
 * Every crypt_data lives on the heap (it is ~32 KiB) and is wiped after use
 * so that no password stays in memory longer than the check. Never log the
 * password or the hash.
 */
#include "auth/password.h"
#include "base/alloc.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

static const char *const schemes[] = {"$y$", "$6$", "$2b$", "$2y$", "$2a$"};

static bool scheme_ok(const char *hash)
{
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strncmp(hash, schemes[i], strlen(schemes[i])) == 0)
            return true;
    }
    return false;
}

/* Constant-time comparison of two strings of public length. */
static bool equal_ct(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int password_hash(const char *password, struct buf *hash_r, struct buf *err)
{
    char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
    if (setting == NULL) {
        buf_printf(err, "cannot make a yescrypt salt (libxcrypt without yescrypt?)");
        return -1;
    }
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *out = crypt_rn(password, setting, cd, sizeof(*cd));
    free(setting);
    int r = 0;
    if (out == NULL || out[0] == '*') {
        buf_printf(err, "yescrypt hashing failed");
        r = -1;
    } else {
        buf_reset(hash_r);
        buf_append_cstr(hash_r, out);
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return r;
}

bool password_verify(const char *password, const char *hash)
{
    if (!scheme_ok(hash))
        return false;
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *out = crypt_rn(password, hash, cd, sizeof(*cd));
    bool ok = out != NULL && out[0] != '*' && equal_ct(out, hash);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}

bool password_hash_supported(const char *hash)
{
    if (!scheme_ok(hash) || strlen(hash) >= CRYPT_OUTPUT_SIZE)
        return false;
    int r = crypt_checksalt(hash);
    if (r != CRYPT_SALT_OK && r != CRYPT_SALT_METHOD_LEGACY && r != CRYPT_SALT_TOO_CHEAP)
        return false;
    /* A setting without the hash part would "verify" nothing: require the output shape. */
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *out = crypt_rn("", hash, cd, sizeof(*cd));
    bool ok = out != NULL && out[0] != '*' && strlen(out) == strlen(hash);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}
