/*
 * password.h - password hashes: new ones in yescrypt, old ones checked.
 *
 * New passwords are hashed with yescrypt ($y$, libxcrypt's default cost).
 * Existing hashes imported from other systems are checked as they are:
 * $y$ (yescrypt), $6$ (SHA-512-crypt) and $2b$/$2y$/$2a$ (bcrypt). Nothing
 * weaker (DES, MD5-crypt) is accepted. Thread-safe: the auth process calls
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

#endif
