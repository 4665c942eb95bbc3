/*
 * password.h - password hashes: new ones in yescrypt, old ones checked.
 *
 * New passwords are hashed with yescrypt ($y$, libxcrypt's default cost).
 * Existing hashes imported from other systems are checked as they are:
 * $y$ (yescrypt), $6$ (SHA-512-crypt) and $2b$/$2y$/$2a$ (bcrypt). Nothing
 * weaker (DES, MD5-crypt) is accepted. Hashes read from an LDAP tree
 * (ldap_password_check = hash) come in RFC 2307 form, {SCHEME}value:
 * password_ldap_parse reads them and password_ldap_verify checks them.
 * Thread-safe: the auth process calls
 * password_verify from its crypt threads. Never log a password or a hash.
 */
#ifndef WHARF_AUTH_PASSWORD_H
#define WHARF_AUTH_PASSWORD_H

#include "base/buf.h"

#include <stdbool.h>

/* Longest password accepted by the wharf command (auth uses its own option). */
#define PASSWORD_MAX_LENGTH 1024

/* Hashes password into hash_r (reset first). Returns 0, or -1 with err. */
int password_hash(const char *password, struct buf *hash_r, struct buf *err);

/* True when password matches hash; the comparison runs in constant time. */
bool password_verify(const char *password, const char *hash);

/* True when hash uses a supported scheme and libxcrypt accepts its settings. */
bool password_hash_supported(const char *hash);

/*
 * An LDAP password value (RFC 2307 userPassword, as slapd and slappasswd
 * write them): {CRYPT} with a crypt(3) hash of the schemes above or $5$
 * (SHA-256-crypt), {SSHA} (SHA-1), {SSHA256} and {SSHA512} (slapd's pw-sha2
 * module): base64 of the digest of password + salt, then the salt (4 to 64
 * bytes). Scheme names are case-insensitive. Refused, with a reason:
 * cleartext (no scheme, {CLEARTEXT}), unsalted digests ({SHA}, {MD5},
 * {SHA256}, {SHA512}), {SMD5}, weak crypt(3) methods, unknown schemes
 * ({ARGON2}, {PBKDF2}...), and anything malformed.
 */
#define PASSWORD_LDAP_SALT_MIN 4
#define PASSWORD_LDAP_SALT_MAX 64
#define PASSWORD_LDAP_MAX 1024 /* longest value read */

enum password_ldap_scheme {
    PASSWORD_LDAP_CRYPT,
    PASSWORD_LDAP_SSHA,
    PASSWORD_LDAP_SSHA256,
    PASSWORD_LDAP_SSHA512,
};

struct password_ldap_hash {
    enum password_ldap_scheme scheme;
    const char *crypt; /* CRYPT: the crypt(3) hash, inside the parsed value */
    unsigned char digest[64], salt[PASSWORD_LDAP_SALT_MAX];
    size_t digest_len, salt_len; /* SSHA*: digest_len is the scheme's (20, 32, 64) */
};

/* Reads value into *h. 0, or -1 with *why_r (static text naming no secret). */
int password_ldap_parse(const char *value, struct password_ldap_hash *h, const char **why_r);

/* Checks password against an LDAP password value: 1 it matches, 0 it does not,
 * -1 the value is refused (*why_r as for password_ldap_parse). Constant time
 * in the comparison of the digests. */
int password_ldap_verify(const char *password, const char *value, const char **why_r);

#endif
