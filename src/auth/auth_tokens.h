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
 * Sessions (the webmail's sign-in cookie) are tokens of a second kind in the
 * same table: "whs_" ID "_" SECRET, made by the auth process itself after a
 * password check (never by `wharf token add`), ended by sign-out or by
 * idle_timeout seconds without a check (the last use is kept in memory; a
 * restart counts from the restart).
 *
 * Admin tokens are app passwords of a third kind: "wha_" ID "_" SECRET
 * (`wharf token add USER --scope admin`). Only they act as an admin on the
 * admin API (an admin account's plain "wht_" token is refused there); the
 * prefix is covered by the hash, so a "wht_" token renamed "wha_" fails
 * the check, and whoever holds a checked token may trust its prefix.
 *
 * Must never: keep or log a token's secret, or leave the file half-written
 * (a new version is written beside it and renamed over it).
 */
#ifndef WHARF_AUTH_AUTH_TOKENS_H
#define WHARF_AUTH_AUTH_TOKENS_H

#include "base/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

/* The prefix of an admin-scoped token (the same length as the others). */
#define AUTH_TOKEN_ADMIN_PREFIX "wha_"
/* token is an admin token ("wha_"), well-formed or not: trust it only once checked. */
static inline bool auth_tokens_is_admin(const char *token)
{
    return strncmp(token, AUTH_TOKEN_ADMIN_PREFIX, strlen(AUTH_TOKEN_ADMIN_PREFIX)) == 0;
}

struct auth_tokens;

/* Loads path (a missing file is an empty table). NULL and err on a bad file. */
struct auth_tokens *auth_tokens_open(const char *path, struct buf *err);
void auth_tokens_free(struct auth_tokens *t);
/* Makes a token for account and saves the table; the token goes to token_r (shown once). */
int auth_tokens_add(struct auth_tokens *t, const char *account, struct buf *token_r,
                    struct buf *err);
/* An admin-scoped token for account (auth_tokens_add's contract). */
int auth_tokens_add_admin(struct auth_tokens *t, const char *account, struct buf *token_r,
                          struct buf *err);
/* A session token for account (auth_tokens_add's contract). */
int auth_tokens_add_session(struct auth_tokens *t, const char *account, struct buf *token_r,
                            struct buf *err);
/* Sessions unused for more than idle_s seconds expire (0: never). */
void auth_tokens_set_session_idle(struct auth_tokens *t, long long idle_s);
/* Test suites only (option test_hooks, checked by the caller): moves token
 * id's creation seconds back, in memory, so that a freshness rule on it can
 * be tested without waiting. 1: done, 0: no such id. */
int auth_tokens_age(struct auth_tokens *t, const char *id, long long seconds);
/* 1: revoked and saved, 0: no such id, -1: cannot save (err). */
int auth_tokens_revoke(struct auth_tokens *t, const char *id, struct buf *err);
/* [{"id", "account", "created", "kind": "app"|"admin"|"session"}] of account (NULL: every
 * account). */
json_t *auth_tokens_list(const struct auth_tokens *t, const char *account);
/*
 * The account of token, or NULL when it is none of ours (or malformed, or
 * an idle session: then it is revoked). A session's check is a use.
 */
const char *auth_tokens_check(struct auth_tokens *t, const char *token);
/* The same at wall-clock second now (the unit tests' clock). */
const char *auth_tokens_check_at(struct auth_tokens *t, const char *token, long long now);
/* token is a session token ("whs_"), well-formed or not. */
bool auth_tokens_is_session(const char *token);
/* The ID part of a well-formed token ("" otherwise), into out (17 bytes). */
void auth_tokens_id(const char *token, char out[17]);

#endif
