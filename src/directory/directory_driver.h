/*
 * directory_driver.h - the directory's driver table: what a directory
 * backend (SQLite today, LDAP next) must answer, and the handle the generic
 * directory code (directory.c, directory_resolve.c) works on.
 *
 * The generic code checks and normalizes every name before it calls a
 * driver (directory_names.c), writes the messages of the caller-visible
 * statuses (EXISTS, NOT_FOUND, IN_USE, INVALID), keeps the order of
 * account and password changes, and does the alias expansion; a driver only
 * stores and finds. Nothing here, nor in any header outside the driver's own
 * file, names a type of the driver's library.
 *
 * Password hashes are a separate store (for SQLite DATA/auth/credentials.db,
 * which only the auth user and root can open): a handle made by
 * directory_open has no access to them until attach_credentials, and the
 * auth process's handle (open_credentials) has nothing else.
 *
 * The ops are synchronous: the directory process (directory_server.c) and
 * the mta call them, never a network worker (those ask the directory process
 * over IPC). An LDAP driver answers them from its cache, refreshed on the
 * directory process's event loop, and a password it checks by LDAP bind
 * needs one more op (verify user, password) beside credentials_get: the
 * table grows then, with the auth process as its one caller.
 *
 * Never include this outside src/directory/: other components use directory.h.
 */
#ifndef WHARF_DIRECTORY_DIRECTORY_DRIVER_H
#define WHARF_DIRECTORY_DIRECTORY_DRIVER_H

#include "directory/directory.h"

struct event_base;

struct directory_driver;

struct directory {
    const struct wharf_config *cfg;
    const struct directory_driver *drv;
    void *priv;            /* the driver's state */
    bool credentials;      /* the password hashes can be read and written */
    bool credentials_only; /* the auth process's handle: nothing but the hashes */
    struct buf srs_secret; /* read at the first SRS address (srs.key), else empty */
    struct directory *pub; /* a driver without public folder addresses: directory.db's
                              (the SQLite driver), opened at first use; else NULL */
};

/*
 * Conventions: every name given to a driver is normalized (a domain in
 * lower case, an address local@domain or @domain for a catch-all). Lookups
 * return 1 found, 0 not found, -1 with err on trouble. Changes return
 * DIRECTORY_OK, DIRECTORY_ERR_EXISTS or DIRECTORY_ERR_NOT_FOUND with err
 * left empty (the generic code words the message), or DIRECTORY_ERR_DB with
 * err. An operation a driver cannot do (an LDAP tree the admin changes with
 * LDAP tools) is NULL: the generic code answers DIRECTORY_ERR_INVALID.
 */
struct directory_driver {
    const char *name; /* the value of the directory_driver option */

    /* ---- handles ---- */
    /* Opens d->priv for lookups and administration (creating and migrating). */
    int (*open)(struct directory *d, struct buf *err);
    /* Opens d->priv for the credential store alone (the auth process). */
    int (*open_credentials)(struct directory *d, struct buf *err);
    /* Adds the credential store to a handle made by open (as root, or as the auth user). */
    int (*attach_credentials)(struct directory *d, struct buf *err);
    /* As root at the auth process's start: moves hashes an older layout kept with the
     * accounts into the credential store. Optional. */
    int (*upgrade_credentials)(const struct wharf_config *cfg, struct buf *err);
    void (*close)(struct directory *d);

    /* ---- lookups (the hot path of resolve and of the directory process) ---- */
    int (*domain_exists)(struct directory *d, const char *domain, struct buf *err);
    /* Fills quota and home server (home_r may be NULL; "" is this server). */
    int (*account_get)(struct directory *d, const char *account, uint64_t *bytes_r,
                       uint64_t *messages_r, struct buf *home_r, struct buf *err);
    /* Appends each target of the alias to *v (*n_r updated); returns their count or -1. */
    int (*alias_targets)(struct directory *d, const char *address, char ***v, size_t *n_r,
                         struct buf *err);
    /* The first account made on this server (postmaster's default) into out. */
    int (*first_account)(struct directory *d, struct buf *out, struct buf *err);

    /* ---- enumeration (wharf user/alias/domain list; the sync of a cache) ---- */
    enum directory_status (*domain_list)(struct directory *d,
                                         void (*fn)(void *arg, const char *domain), void *arg,
                                         struct buf *err);
    /* domain NULL: every domain. has_password from the credential store when attached. */
    enum directory_status (*account_list)(struct directory *d, const char *domain,
                                          void (*fn)(void *arg, const struct directory_account *a),
                                          void *arg, struct buf *err);
    enum directory_status (*alias_list)(struct directory *d, const char *domain,
                                        void (*fn)(void *arg, const char *address,
                                                   const char *target),
                                        void *arg, struct buf *err);
    /* How many accounts and alias entries a domain still has. */
    int (*domain_usage)(struct directory *d, const char *domain, long long *accounts_r,
                        long long *aliases_r, struct buf *err);

    /* ---- administration (the wharf command) ---- */
    enum directory_status (*domain_add)(struct directory *d, const char *domain, struct buf *err);
    enum directory_status (*domain_del)(struct directory *d, const char *domain, struct buf *err);
    enum directory_status (*account_add)(struct directory *d, const char *account,
                                         uint64_t quota_bytes, uint64_t quota_messages,
                                         struct buf *err);
    enum directory_status (*account_del)(struct directory *d, const char *account, struct buf *err);
    enum directory_status (*account_set_quota)(struct directory *d, const char *account,
                                               uint64_t quota_bytes, uint64_t quota_messages,
                                               struct buf *err);
    /* home "": this server (doc/frontend.md) */
    enum directory_status (*account_set_home)(struct directory *d, const char *account,
                                              const char *home, struct buf *err);
    /* Adds the targets not yet there, all or none. */
    enum directory_status (*alias_add)(struct directory *d, const char *address,
                                       char *const *targets, size_t n_targets, struct buf *err);
    /* Removes the given targets (all of the alias when n_targets is 0); the number of
     * entries removed, or -1 with err. */
    long long (*alias_del)(struct directory *d, const char *address, char *const *targets,
                           size_t n_targets, struct buf *err);

    /* ---- addresses of public folders (directory.h). Optional: a driver without them
     * (LDAP) has the generic code keep them in directory.db with the SQLite driver. ---- */
    /* The public folder an address stands for, into folder_r. */
    int (*public_get)(struct directory *d, const char *address, struct buf *folder_r,
                      struct buf *err);
    enum directory_status (*public_set)(struct directory *d, const char *address,
                                        const char *folder, struct buf *err);
    enum directory_status (*public_del)(struct directory *d, const char *address, struct buf *err);
    /* domain NULL: every domain; by address. */
    enum directory_status (*public_list)(struct directory *d, const char *domain,
                                         void (*fn)(void *arg, const char *address,
                                                    const char *folder),
                                         void *arg, struct buf *err);

    /* ---- credentials (only with d->credentials) ---- */
    /* The canonical account name and hash; NOT_FOUND when none. */
    enum directory_status (*credentials_get)(struct directory *d, const char *account,
                                             struct buf *account_r, struct buf *hash_r,
                                             struct buf *err);
    /* Sets, or removes when hash is NULL, the hash of an account. */
    enum directory_status (*credentials_set)(struct directory *d, const char *account,
                                             const char *hash, struct buf *err);

    /* ---- backup (wharf backup): a consistent copy of one part into dir. Optional. ---- */
    int (*backup)(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                  struct buf *err);
    /* ---- restore (wharf restore): see directory_restore. Optional, with backup. ---- */
    bool (*present)(const struct wharf_config *cfg, enum directory_part part);
    int (*restore)(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                   struct buf *err);

    /* ---- for a driver that checks passwords itself (LDAP bind). Optional. ---- */
    /* Refreshes on the directory process's event loop (directory_attach_loop). */
    int (*attach_loop)(struct directory *d, struct event_base *base, struct buf *err);
    /* In the auth process, from a crypt thread: 1 the password is right, 0 wrong, -1
     * nobody could say (err). dn: the account's (from the directory process). */
    int (*verify)(struct directory *d, const char *dn, const char *password, struct buf *err);
    /* In the directory process, from a thread: the password value of dn, read with the
     * search account (directory_read_password). Optional. */
    int (*read_password)(struct directory *d, const char *dn, struct buf *hash_r, struct buf *err);
    /* The driver's settings, checked before anything runs (wharf config check). Optional. */
    int (*check_config)(const struct wharf_config *cfg, struct buf *err);
};

extern const struct directory_driver directory_sqlite_driver;
extern const struct directory_driver directory_ldap_driver;

/*
 * The SQLite driver's files for the LDAP driver's mirror of the tree
 * (DATA/directory/ldap.db): the same schema, each account's DN where the
 * SQLite driver keeps hashes (main.credentials). create: a new file to fill
 * (no journal, no sync: the caller syncs it and renames it into place),
 * else read-only. d->cfg
 * must be set; d->priv is the SQLite driver's and is closed by its close op.
 */
int directory_sqlite_open_mirror(struct directory *d, const char *relative, bool create,
                                 struct buf *err);
int directory_sqlite_mirror_home(struct directory *d, const char *account, const char *home,
                                 struct buf *err);

#endif
