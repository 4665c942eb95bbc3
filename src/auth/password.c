/*
 * password.c - yescrypt hashing and checking of crypt(3) hashes, through
 * libxcrypt's reentrant functions.
 *
 * Every crypt_data lives on the heap (it is ~32 KiB) and is wiped after use
 * so that no password stays in memory longer than the check. Never log the
 * password or the hash. Values read from LDAP ({SCHEME}...) are parsed and
 * checked here too (password_ldap_*), the salted SHA digests with OpenSSL.
 */
#include "auth/password.h"
#include "base/alloc.h"
#include "base/base64.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The last one, SHA-256-crypt, only in LDAP's {CRYPT} values (slapd's -c '$5$%.16s'). */
static const char *const schemes[] = {"$y$", "$6$", "$2b$", "$2y$", "$2a$", "$5$"};
#define N_IMPORT_SCHEMES 5

static bool scheme_ok_in(const char *hash, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(hash, schemes[i], strlen(schemes[i])) == 0)
            return true;
    }
    return false;
}

static bool scheme_ok(const char *hash)
{
    return scheme_ok_in(hash, N_IMPORT_SCHEMES);
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

static bool crypt_verify(const char *password, const char *hash)
{
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *out = crypt_rn(password, hash, cd, sizeof(*cd));
    bool ok = out != NULL && out[0] != '*' && equal_ct(out, hash);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}

bool password_verify(const char *password, const char *hash)
{
    return scheme_ok(hash) && crypt_verify(password, hash);
}

/* libxcrypt takes the method and its settings (cheap: nothing is hashed). */
static bool crypt_method_ok(const char *hash)
{
    if (strlen(hash) >= CRYPT_OUTPUT_SIZE)
        return false;
    int r = crypt_checksalt(hash);
    return r == CRYPT_SALT_OK || r == CRYPT_SALT_METHOD_LEGACY || r == CRYPT_SALT_TOO_CHEAP;
}

static bool crypt_supported(const char *hash)
{
    if (!crypt_method_ok(hash))
        return false;
    /* A setting without the hash part would "verify" nothing: require the output shape. */
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    const char *out = crypt_rn("", hash, cd, sizeof(*cd));
    bool ok = out != NULL && out[0] != '*' && strlen(out) == strlen(hash);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}

bool password_hash_supported(const char *hash)
{
    return scheme_ok(hash) && crypt_supported(hash);
}

/* ---- LDAP values (RFC 2307) ---- */

struct ldap_scheme {
    const char *name; /* with its braces */
    enum password_ldap_scheme scheme;
    size_t digest_len;   /* SSHA*: the digest's */
    const char *refused; /* non-NULL: never checked, and why */
};

static const struct ldap_scheme ldap_schemes[] = {
    {"{CRYPT}", PASSWORD_LDAP_CRYPT, 0, NULL},
    {"{SSHA}", PASSWORD_LDAP_SSHA, 20, NULL},
    {"{SSHA256}", PASSWORD_LDAP_SSHA256, 32, NULL},
    {"{SSHA512}", PASSWORD_LDAP_SSHA512, 64, NULL},
    {"{CLEARTEXT}", 0, 0, "cleartext password ({CLEARTEXT}) refused"},
    {"{SHA}", 0, 0, "unsalted scheme {SHA} refused"},
    {"{SHA256}", 0, 0, "unsalted scheme {SHA256} refused"},
    {"{SHA512}", 0, 0, "unsalted scheme {SHA512} refused"},
    {"{MD5}", 0, 0, "unsalted scheme {MD5} refused"},
    {"{SMD5}", 0, 0, "weak scheme {SMD5} refused"},
};

int password_ldap_parse(const char *value, struct password_ldap_hash *h, const char **why_r)
{
    memset(h, 0, sizeof(*h));
    size_t len = strlen(value);
    if (len > PASSWORD_LDAP_MAX) {
        *why_r = "password value too long";
        return -1;
    }
    const char *end = value[0] == '{' ? strchr(value, '}') : NULL;
    if (end == NULL) {
        *why_r = "cleartext password (no {SCHEME} prefix) refused";
        return -1;
    }
    size_t name_len = (size_t)(end - value) + 1;
    const struct ldap_scheme *ls = NULL;
    for (size_t i = 0; i < sizeof(ldap_schemes) / sizeof(ldap_schemes[0]); i++) {
        if (strlen(ldap_schemes[i].name) == name_len &&
            strncasecmp(value, ldap_schemes[i].name, name_len) == 0)
            ls = &ldap_schemes[i];
    }
    if (ls == NULL) {
        *why_r = "unknown password scheme refused";
        return -1;
    }
    if (ls->refused != NULL) {
        *why_r = ls->refused;
        return -1;
    }
    const char *rest = value + name_len;
    h->scheme = ls->scheme;
    if (ls->scheme == PASSWORD_LDAP_CRYPT) {
        /* Not hashed here (a login hashes once): a bare setting never matches anyway. */
        if (!scheme_ok_in(rest, sizeof(schemes) / sizeof(schemes[0])) || !crypt_method_ok(rest)) {
            *why_r = "{CRYPT} hash of a weak or unsupported crypt(3) method refused";
            return -1;
        }
        h->crypt = rest;
        return 0;
    }
    struct buf raw = BUF_INIT;
    enum base64_status st = base64_decode((struct slice){rest, strlen(rest)},
                                          ls->digest_len + PASSWORD_LDAP_SALT_MAX, &raw);
    int r = -1;
    if (st != BASE64_OK) {
        *why_r = "salted digest: bad base64 or salt too long";
    } else if (raw.len < ls->digest_len + PASSWORD_LDAP_SALT_MIN) {
        *why_r = "salted digest: too short (a salt of 4 bytes at least)";
    } else {
        h->digest_len = ls->digest_len;
        memcpy(h->digest, raw.data, ls->digest_len);
        h->salt_len = raw.len - ls->digest_len;
        memcpy(h->salt, raw.data + ls->digest_len, h->salt_len);
        r = 0;
    }
    if (raw.data != NULL)
        explicit_bzero(raw.data, raw.len);
    buf_free(&raw);
    return r;
}

/* digest(password + salt) == h->digest, compared in constant time. */
static bool salted_verify(const char *password, const struct password_ldap_hash *h)
{
    const EVP_MD *md = h->scheme == PASSWORD_LDAP_SSHA      ? EVP_sha1()
                       : h->scheme == PASSWORD_LDAP_SSHA256 ? EVP_sha256()
                                                            : EVP_sha512();
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
              EVP_DigestUpdate(ctx, password, strlen(password)) == 1 &&
              EVP_DigestUpdate(ctx, h->salt, h->salt_len) == 1 &&
              EVP_DigestFinal_ex(ctx, out, &out_len) == 1 && out_len == h->digest_len &&
              CRYPTO_memcmp(out, h->digest, h->digest_len) == 0;
    EVP_MD_CTX_free(ctx);
    explicit_bzero(out, sizeof(out));
    return ok;
}

int password_ldap_verify(const char *password, const char *value, const char **why_r)
{
    struct password_ldap_hash h;
    if (password_ldap_parse(value, &h, why_r) != 0)
        return -1;
    bool ok = h.scheme == PASSWORD_LDAP_CRYPT ? crypt_verify(password, h.crypt)
                                              : salted_verify(password, &h);
    explicit_bzero(&h, sizeof(h));
    return ok ? 1 : 0;
}
