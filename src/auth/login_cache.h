/*
 * login_cache.h - the yescrypt hashes (password.h) of the passwords LDAP last
 * accepted, per account, for ldap_login_cache_ttl: while no LDAP server
 * answers, a user who logged in lately still can (doc/directory.md, "Logins").
 *
 * In memory, a map (base/strmap.h) from account to entry, the entries also in
 * a list from the newest login to the oldest: a lookup is one probe, and when
 * max entries are held the oldest goes first. Times are monotonic
 * milliseconds; the caller passes the clocks in (nothing here reads one).
 *
 * The file (DATA/auth/login-cache, written by the auth process alone, 0600 in
 * the auth user's folder) is text, so that a reload or a restart of wharfd
 * during an outage keeps the logins:
 *
 *     wharf-login-cache 1\n
 *     WALL-SECONDS TAB ACCOUNT TAB HASH\n     one line per entry, oldest first
 *
 * WALL-SECONDS is the login's wall-clock time (a monotonic time means nothing
 * after a restart). A file is taken whole or not at all: one malformed line,
 * or a last line without its newline (cut short), and nothing of it is used.
 * A file's entry never replaces a later one of the same account, be it a login
 * or a refusal: the mark login_cache_refused leaves where LDAP refused the
 * password the cache held (changed in LDAP since), which answers nothing and
 * is not written, so that an older process's file cannot bring the hash back.
 *
 * Not thread-safe: the auth process's event loop alone uses a cache (the text
 * of a file, once made, may be written from any thread). Must never: hold
 * more than max entries, answer with an entry older than the TTL, write or
 * take a line it could not read back (a control byte in an account), or put a
 * hash or an account in an error message.
 */
#ifndef WHARF_AUTH_LOGIN_CACHE_H
#define WHARF_AUTH_LOGIN_CACHE_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Longest account and hash kept: longer ones are neither cached nor read. An
 * address is at most 254 bytes (RFC 5321 4.5.3.1.3); a yescrypt hash ~ 80. */
#define LOGIN_CACHE_ACCOUNT_MAX 512
#define LOGIN_CACHE_HASH_MAX 256

struct login_cache;

/* max: entries held at most; ttl_ms: how long an entry answers. With either 0
 * the cache keeps nothing. */
struct login_cache *login_cache_new(size_t max, int64_t ttl_ms);
void login_cache_free(struct login_cache *c);

/* Keeps hash as account's, from a login at now_ms: it becomes the newest entry
 * (an entry of account already there is replaced). */
void login_cache_put(struct login_cache *c, const char *account, const char *hash, int64_t now_ms);
/* LDAP refused, at now_ms, the password whose hash this is: it was changed there, so
 * the entry of account that holds hash (none that holds another) answers nothing from
 * now on, and no older entry from a file takes its place. */
void login_cache_refused(struct login_cache *c, const char *account, const char *hash,
                         int64_t now_ms);
/* A copy of account's hash if it logged in within the TTL before now_ms, or NULL. */
char *login_cache_get(struct login_cache *c, const char *account, int64_t now_ms);
/* Entries held (refusals, and until the next get or put some past the TTL, included). */
size_t login_cache_size(const struct login_cache *c);
/* Grows at every change: a file written at one version is out of date at another. */
uint64_t login_cache_version(const struct login_cache *c);

/* The file's text into out (reset first): every entry within the TTL at mono_ms,
 * dated by the wall clock wall_ms (the same instant). Returns the lines written. */
size_t login_cache_format(struct login_cache *c, int64_t mono_ms, int64_t wall_ms, struct buf *out);
/*
 * Takes the entries of a file's text within the TTL at mono_ms (wall_ms: the
 * same instant by the wall clock; a login dated after it counts as made now).
 * An account c holds from a later login keeps its own. 0 with *n_r (may be
 * NULL) the entries taken, or -1 with err (nothing taken).
 */
int login_cache_parse(struct login_cache *c, const char *text, size_t len, int64_t mono_ms,
                      int64_t wall_ms, size_t *n_r, struct buf *err);
/* login_cache_parse of the file at path: 1 when there is none, 0, or -1 with err. */
int login_cache_load(struct login_cache *c, const char *path, int64_t mono_ms, int64_t wall_ms,
                     size_t *n_r, struct buf *err);

#endif
