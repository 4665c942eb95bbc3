/*
 * directory.h - the directory (Active Directory Connector): domains,
 * accounts, aliases, quotas and which server is each mailbox's home.
 *
 * Embedded driver: SQLite at DATA_DIRECTORY/directory.db (an LDAP driver
 * follows, behind the same functions). The directory answers "who is this
 * address?"; it never stores mail (that is the store's job) and it never
 * gives a password hash to anyone but the auth process.
 */
#ifndef WHARF_DIRECTORY_DIRECTORY_H
#define WHARF_DIRECTORY_DIRECTORY_H

#include "base/buf.h"
#include "base/component.h"
#include "base/config.h"

#include <stdbool.h>
#include <stdint.h>

extern const struct component_def directory_component;

struct directory;

enum directory_resolve_kind {
    DIRECTORY_LOCAL,        /* delivered here to the accounts in result */
    DIRECTORY_NOT_LOCAL,    /* the domain is not ours: relay (or refuse) */
    DIRECTORY_NO_SUCH_USER, /* our domain, but nobody: 550 5.1.1 */
};

struct directory_target {
    char *account; /* canonical account name, e.g. "alice@example.org" */
    char *folder;  /* from +detail when it names an existing folder, else NULL (INBOX) */
};

struct directory_result {
    enum directory_resolve_kind kind;
    struct directory_target *targets; /* after alias expansion, duplicates removed */
    size_t n_targets;
};

/* Opens (creating and migrating if needed) the directory. NULL with err on failure. */
struct directory *directory_open(const struct wharf_config *cfg, struct buf *err);
void directory_close(struct directory *d);

/*
 * Resolves an envelope recipient: mydomains and the domain table, aliases
 * (recursively, with a bounded depth), catch-all, and user+detail@domain.
 * Returns 0, or -1 with err on a temporary failure (the caller answers 4xx).
 */
int directory_resolve(struct directory *d, const char *address, struct directory_result *r,
                      struct buf *err);
void directory_result_free(struct directory_result *r);

/* True when domain is one of ours (mydomains or the domain table). */
bool directory_is_local_domain(struct directory *d, const char *domain);

/* Quota of an account in bytes and messages; 0 means unlimited. -1 if no such account. */
int directory_quota(struct directory *d, const char *account, uint64_t *bytes_r,
                    uint64_t *messages_r);

#endif
