/*
 * directory.h - the directory (Active Directory Connector): domains,
 * accounts, aliases, quotas and which server is each mailbox's home.
 *
 * The functions below are the same for every driver (directory_driver.h):
 * the option directory_driver chooses one, "sqlite" (DATA_DIRECTORY/
 * directory/directory.db) today, LDAP next. The directory answers "who is
 * this address?"; it never stores mail (that is the store's job) and it never
 * gives a password hash to anyone but the auth process (and the wharf command
 * that sets it).
 *
 * Names: domains are case-insensitive and kept in lower case; local parts are
 * kept and matched exactly as given (RFC 5321 2.4: only the receiving host may
 * interpret them), so "Alice@Example.ORG" is the account "Alice@example.org",
 * not "alice@example.org". Addresses are ASCII (no SMTPUTF8 yet).
 *
 * A directory handle is not thread-safe: one per thread.
 */
#ifndef WHARF_DIRECTORY_DIRECTORY_H
#define WHARF_DIRECTORY_DIRECTORY_H

#include "base/buf.h"
#include "base/component.h"
#include "base/config.h"

#include <stdbool.h>
#include <stdint.h>

extern const struct component_def directory_component;

/* The directory process (directory_server.c): serves DATA_DIRECTORY/run/directory.sock. */
int directory_main(struct component_ctx *ctx);

struct directory;

enum directory_resolve_kind {
    DIRECTORY_LOCAL,        /* delivered here to the accounts in result */
    DIRECTORY_NOT_LOCAL,    /* the domain is not ours: relay (or refuse) */
    DIRECTORY_NO_SUCH_USER, /* our domain, but nobody: 550 5.1.1 */
};

struct directory_target {
    char *account; /* canonical account name, e.g. "alice@example.org" */
    char *folder;  /* the +detail of the address, or NULL (INBOX); the store delivers to
                      INBOX when no folder of that name exists */
};

struct directory_result {
    enum directory_resolve_kind kind;
    struct directory_target *targets; /* local accounts, after alias expansion, no duplicates */
    size_t n_targets;
    char **remote; /* addresses outside our domains that aliases forward to: relay them */
    size_t n_remote;
    bool loop; /* an alias led back to an address on its own path that is not an account
                  (dropped there); with no target at all, the recipient is a pure loop */
};

/*
 * Opens (creating and migrating if needed) the directory. NULL with err on
 * failure. This handle has no password hashes: they live in
 * DATA/auth/credentials.db, which only the auth user (and root) can open.
 * Network workers never call this: they ask the directory process
 * (directory/directory_client.h).
 */
struct directory *directory_open(const struct wharf_config *cfg, struct buf *err);
/* The name of the driver of a handle ("sqlite"). */
const char *directory_driver_name(const struct directory *d);
/*
 * For the directory process: hands the driver its event loop, on which a
 * driver that reads a remote directory (LDAP) keeps its copy fresh. 0, or -1
 * with err. Nothing to do for SQLite.
 */
struct event_base;
int directory_attach_loop(struct directory *d, struct event_base *base, struct buf *err);
/* True when the directory checks passwords itself (LDAP bind) instead of hashes. */
bool directory_checks_passwords(const struct directory *d);
/* The same from the configuration, before any handle is open. */
bool directory_config_checks_passwords(const struct wharf_config *cfg);
/*
 * With such a directory, the canonical account and the DN a login name binds
 * as (the directory process answers it to the auth process). NOT_FOUND when
 * there is none, or the directory keeps hashes.
 */
enum directory_status directory_login_dn(struct directory *d, const char *username,
                                         struct buf *account_r, struct buf *dn_r, struct buf *err);
/*
 * For the auth process's crypt threads (a handle of their own, or a
 * thread-safe driver): checks password by binding as dn ("": a DN nobody
 * has, for an unknown user, so that it costs what a wrong password costs).
 * 1 right, 0 wrong, -1 no server could say (err).
 */
int directory_verify_password(struct directory *d, const char *dn, const char *password,
                              struct buf *err);
/*
 * True when the directory's passwords are checked against hashes it reads
 * (LDAP, ldap_password_check = hash) instead of by bind: the directory
 * process reads them (directory_read_password) for the auth process alone.
 */
bool directory_config_reads_hashes(const struct wharf_config *cfg);
/*
 * In the directory process, from a thread of its own (never the loop, never
 * a worker's question): the password value of the entry dn as the tree holds
 * it (RFC 2307 {SCHEME}value), read with the search account. dn "": a DN
 * nobody has (an unknown user costs the same search). 1 with hash_r, 0 the
 * entry has none (or is not there), -1 no server could say (err).
 */
int directory_read_password(struct directory *d, const char *dn, struct buf *hash_r,
                            struct buf *err);
/* The directory component's config check: the driver's settings. 0, or -1 with err. */
int directory_check_config(const struct wharf_config *cfg, struct buf *err);
/*
 * For the auth process: a handle on the credential database alone. Only
 * directory_account_hash may be called on it.
 */
struct directory *directory_open_credentials(const struct wharf_config *cfg, struct buf *err);
/*
 * For the wharf command (and the auth process at start, as root): attaches
 * the credential database to a directory handle, so that account_add,
 * set_hash, del and list handle passwords, and moves any hash an older Wharf
 * left in directory.db into it. As root, call it before dropping privileges.
 * Returns 0, or -1 with err.
 */
int directory_attach_credentials(struct directory *d, struct buf *err);
void directory_close(struct directory *d);
/*
 * For the auth process at start, as root: moves password hashes an older
 * Wharf kept with the accounts into the credential database (a no-op when
 * there are none). Returns 0, or -1 with err.
 */
int directory_upgrade_credentials(const struct wharf_config *cfg, struct buf *err);

/* The two parts of the directory's data, which have different owners. */
enum directory_part {
    DIRECTORY_PART_ACCOUNTS,    /* domains, accounts, aliases (the wharf user's) */
    DIRECTORY_PART_CREDENTIALS, /* the password hashes (the auth user's; copy as root) */
};
/*
 * For wharf backup: writes a consistent copy of one part into the folder dir
 * (made by the caller), taken while the directory is in use; the copy is
 * made with the caller's umask. A part the driver does not keep (an LDAP
 * tree is backed up with LDAP's tools) is skipped. 0, or -1 with err.
 */
int directory_backup(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                     struct buf *err);
/* Whether DATA_DIRECTORY holds that part already (wharf restore never overwrites it). */
bool directory_present(const struct wharf_config *cfg, enum directory_part part);
/*
 * For wharf restore: one part of the backup folder dir (as directory_backup
 * wrote it) into DATA_DIRECTORY, which does not hold it. The credentials are
 * made readable by the auth user only (given to that user when run as
 * root). A part the backup does not hold is left absent. 0, or -1 with err.
 */
int directory_restore(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                      struct buf *err);

/*
 * Resolves an envelope recipient: mydomains and the domain table, aliases
 * (recursively, with a bounded depth), catch-all, and user+detail@domain.
 * Lookup order for one address local@domain (domain case-insensitive):
 *   1. an alias of exactly local@domain;
 *   1b. the public folder whose address is local@domain (target:
 *      STORE_PUBLIC_OWNER with that folder, which the store must not replace
 *      by an INBOX);
 *   2. the account local@domain;
 *   3. with local = base+detail: an alias of base@domain, else the public
 *      folder of base@domain (the detail dropped, as for an alias), else the
 *      account base@domain with folder = detail;
 *   4. postmaster@ and abuse@ (doc/accounts.md);
 *   5. the catch-all alias @domain.
 * Alias targets in our domains are resolved again the same way; an address
 * met again on its own expansion path (a loop, or "a -> a, b") is not
 * expanded further: it is delivered if it is an account, else dropped.
 * Targets outside our domains come back in remote[], never in targets[].
 * kind is LOCAL when the domain is ours and the address leads somewhere
 * (n_targets + n_remote > 0), NO_SUCH_USER when the domain is ours but
 * nothing matched, NOT_LOCAL else.
 * Returns 0, or -1 with err on a temporary failure (database trouble, alias
 * chains deeper than directory_alias_max_depth or wider than
 * directory_alias_max_targets): the caller answers 4xx.
 */
int directory_resolve(struct directory *d, const char *address, struct directory_result *r,
                      struct buf *err);
void directory_result_free(struct directory_result *r);

/*
 * The Sender Rewriting Scheme (directory/srs.h), on when srs_domain is set.
 * directory_resolve answers an SRS0/SRS1 address at srs_domain itself: a
 * valid one is LOCAL with one remote target (the address it stands for), a
 * forged, expired or malformed one NO_SUCH_USER. This one makes the SRS
 * sender for a message relayed to another domain: 1 with the address in
 * *out, 0 when sender stays as it is (SRS off, the null sender, a sender in
 * our domains, srs_domain or srs_exclude_domains, too long), -1 with err when
 * the secret (DATA/directory/srs.key, made at first use) cannot be read.
 */
int directory_srs_forward(struct directory *d, const char *sender, struct buf *out,
                          struct buf *err);

/* True when domain is one of ours (mydomains or the domain table). */
bool directory_is_local_domain(struct directory *d, const char *domain);

/*
 * Quota (0: unlimited) and home server ("" : this one) of an account.
 * 1 found, 0 no such account, -1 with err on database trouble.
 */
int directory_account_info(struct directory *d, const char *account, uint64_t *bytes_r,
                           uint64_t *messages_r, struct buf *home_r, struct buf *err);

/* The configuration the directory was opened with. */
const struct wharf_config *directory_config(const struct directory *d);

/* Quota of an account in bytes and messages; 0 means unlimited. -1 if no such account. */
int directory_quota(struct directory *d, const char *account, uint64_t *bytes_r,
                    uint64_t *messages_r);

/* ---- administration (the wharf command) and the auth process ---- */

enum directory_status {
    DIRECTORY_OK = 0,
    DIRECTORY_ERR_INVALID,        /* malformed address, domain or value */
    DIRECTORY_ERR_EXISTS,         /* already there */
    DIRECTORY_ERR_NOT_FOUND,      /* no such domain, account or alias */
    DIRECTORY_ERR_UNKNOWN_DOMAIN, /* the address's domain is not one of ours */
    DIRECTORY_ERR_IN_USE,         /* a domain that still has accounts or aliases */
    DIRECTORY_ERR_DB,             /* database trouble (message in err) */
};

/* Every function below fills err with a one-line message when it fails. */
enum directory_status directory_domain_add(struct directory *d, const char *domain,
                                           struct buf *err);
enum directory_status directory_domain_del(struct directory *d, const char *domain,
                                           struct buf *err);
/* Calls fn for each domain of the table, in name order. */
enum directory_status directory_domain_list(struct directory *d,
                                            void (*fn)(void *arg, const char *domain), void *arg,
                                            struct buf *err);

struct directory_account {
    const char *name;                     /* local@domain */
    uint64_t quota_bytes, quota_messages; /* 0: unlimited */
    bool has_password;
    const char *home; /* home server of the mailbox; "": this one */
};

/* hash: a crypt(3) string made by the caller (auth/password.h), or NULL; a
 * hash needs the credential database attached (directory_attach_credentials). */
enum directory_status directory_account_add(struct directory *d, const char *address,
                                            const char *hash, uint64_t quota_bytes,
                                            uint64_t quota_messages, struct buf *err);
enum directory_status directory_account_del(struct directory *d, const char *address,
                                            struct buf *err);
enum directory_status directory_account_set_hash(struct directory *d, const char *address,
                                                 const char *hash, struct buf *err);
enum directory_status directory_account_set_quota(struct directory *d, const char *address,
                                                  uint64_t quota_bytes, uint64_t quota_messages,
                                                  struct buf *err);
/* The server holding the account's mailbox ("": this one), for front-ends (doc/frontend.md). */
enum directory_status directory_account_set_home(struct directory *d, const char *address,
                                                 const char *home, struct buf *err);
/* Calls fn for each account (of domain, or all when domain is NULL), in name order. */
enum directory_status directory_account_list(struct directory *d, const char *domain,
                                             void (*fn)(void *arg,
                                                        const struct directory_account *a),
                                             void *arg, struct buf *err);
/*
 * For the auth process only (directory_open_credentials): the canonical name
 * and password hash of the account named by username (local@domain).
 * NOT_FOUND when there is no such account or it has no password.
 */
enum directory_status directory_account_hash(struct directory *d, const char *username,
                                             struct buf *account_r, struct buf *hash_r,
                                             struct buf *err);

/* address: local@domain, or @domain for a catch-all. Adds the targets not yet there. */
enum directory_status directory_alias_add(struct directory *d, const char *address,
                                          char *const *targets, size_t n_targets, struct buf *err);
/* Removes the given targets, or the whole alias when n_targets is 0. */
enum directory_status directory_alias_del(struct directory *d, const char *address,
                                          char *const *targets, size_t n_targets, struct buf *err);
/* Calls fn once per (address, target), ordered by address. domain NULL: all. */
enum directory_status directory_alias_list(struct directory *d, const char *domain,
                                           void (*fn)(void *arg, const char *address,
                                                      const char *target),
                                           void *arg, struct buf *err);

/*
 * Mail-enabled public folders (doc/accounts.md): an address of one of our
 * domains that stands for a public folder (owner STORE_PUBLIC_OWNER, e.g.
 * "News/dev"). directory_resolve answers it as an alias would, with the
 * one target (STORE_PUBLIC_OWNER, folder). An address is an alias, an
 * account or a public folder's, never two of them: each add refuses
 * (EXISTS) an address that is already one of the others. Kept in
 * directory.db whichever the driver (an LDAP tree has no place for them).
 */
/* The folder of a public folder address into folder_r: 1, 0 none, -1 with err. */
int directory_public_folder(struct directory *d, const char *address, struct buf *folder_r,
                            struct buf *err);
/* folder: the public folder's name; the caller checks it exists (the store is not ours). */
enum directory_status directory_public_address_add(struct directory *d, const char *address,
                                                   const char *folder, struct buf *err);
enum directory_status directory_public_address_del(struct directory *d, const char *address,
                                                   struct buf *err);
/* Calls fn once per (address, folder), by address. domain NULL: all. */
enum directory_status directory_public_address_list(struct directory *d, const char *domain,
                                                    void (*fn)(void *arg, const char *address,
                                                               const char *folder),
                                                    void *arg, struct buf *err);

/*
 * Checks and normalizes an address: local@domain (domain lower-cased), or
 * @domain when allow_catchall. Returns a new string (caller frees) or NULL.
 */
char *directory_normalize_address(const char *address, bool allow_catchall);
/* Checks and lower-cases a domain name. Returns a new string or NULL. */
char *directory_normalize_domain(const char *domain);

#endif
