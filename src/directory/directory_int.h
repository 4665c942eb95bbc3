/*
 * directory_int.h - what the directory's own files share: the handle and the
 * driver's lookups used by alias expansion.
 *
 * Never include this outside src/directory/: other components use directory.h.
 */
#ifndef WHARF_DIRECTORY_DIRECTORY_INT_H
#define WHARF_DIRECTORY_DIRECTORY_INT_H

#include "directory/directory.h"

#include <sqlite3.h>

enum directory_stmt {
    STMT_DOMAIN_GET,
    STMT_ACCOUNT_GET,
    STMT_ALIAS_TARGETS,
    STMT_FIRST_ACCOUNT,
    STMT__COUNT
};

struct directory {
    const struct wharf_config *cfg;
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT__COUNT]; /* prepared once, for the hot lookups */
    struct buf srs_secret;           /* read at the first SRS address (srs.key), else empty */
    const char *cred_table; /* "cred.credentials" (attached), "main.credentials", or NULL */
    bool cred_only;         /* the handle of the auth process: credentials.db alone */
};

/* Lookups for resolve: 1 yes, 0 no, -1 database error (message in err). */
int directory_db_domain_exists(struct directory *d, const char *domain, struct buf *err);
int directory_db_account_exists(struct directory *d, const char *address, struct buf *err);
/* The first account created on this server into out: 1, 0 when there is none, -1. */
int directory_db_first_account(struct directory *d, struct buf *out, struct buf *err);
/* Appends each target of the alias to *v (n_r updated); returns count, or -1. */
int directory_db_alias_targets(struct directory *d, const char *address, char ***v, size_t *n_r,
                               struct buf *err);

#endif
