/*
 * auth_tokens.h - app passwords for HTTP Bearer authentication: random
 * tokens an admin makes for an account (`wharf token add USER`), kept only
 * as SHA-256 hashes in DATA/auth/tokens (the auth user's, like the password
 * hashes), listed and revoked by id.
 *
 * A token is "wht_" ID "_" SECRET: ID (16 hex digits) names it in lists and
 * revocations, SECRET (43 base64url characters, 256 random bits) is never
 * stored. High-entropy secrets need no slow hash: one SHA-256 and a
 * constant-time comparison per check.
 *
 * Must never: keep or log a token's secret, or leave the file half-written
 * (a new version is written beside it and renamed over it).
 */
#ifndef WHARF_AUTH_AUTH_TOKENS_H
#define WHARF_AUTH_AUTH_TOKENS_H

#include "base/buf.h"

#include <jansson.h>
#include <stdbool.h>

struct auth_tokens;

/* Loads path (a missing file is an empty table). NULL and err on a bad file. */
struct auth_tokens *auth_tokens_open(const char *path, struct buf *err);
void auth_tokens_free(struct auth_tokens *t);
/* Makes a token for account and saves the table; the token goes to token_r (shown once). */
int auth_tokens_add(struct auth_tokens *t, const char *account, struct buf *token_r,
                    struct buf *err);
/* 1: revoked and saved, 0: no such id, -1: cannot save (err). */
int auth_tokens_revoke(struct auth_tokens *t, const char *id, struct buf *err);
/* [{"id", "account", "created"}] of account (NULL: every account). */
json_t *auth_tokens_list(const struct auth_tokens *t, const char *account);
/* The account of token, or NULL when it is none of ours (or malformed). */
const char *auth_tokens_check(const struct auth_tokens *t, const char *token);
/* The ID part of a well-formed token ("" otherwise), into out (17 bytes). */
void auth_tokens_id(const char *token, char out[17]);

#endif
