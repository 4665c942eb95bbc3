/*
 * directory.c - the directory's functions (directory.h) over its driver table
 * (directory_driver.h): chooses the driver named by the directory_driver
 * option, checks and normalizes every name before a driver sees it, words
 * the messages of the statuses a caller shows, and keeps an account and its
 * password hash together (an account added with a password that cannot be
 * stored is taken back; a deleted account loses its hash).
 *
 * It must never touch a database itself (that is the driver's job), nor let
 * a handle without the credential store read or write a hash.
 */
#include "directory/directory_driver.h"
#include "base/alloc.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

static const struct directory_driver *const drivers[] = {
    &directory_sqlite_driver,
    &directory_ldap_driver,
};

static const struct directory_driver *find_driver(const struct wharf_config *cfg, struct buf *err)
{
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        if (strcmp(drivers[i]->name, cfg->directory_driver) == 0)
            return drivers[i];
    }
    buf_printf(err, "directory_driver: unknown driver '%s' (known: sqlite, ldap)",
               cfg->directory_driver);
    return NULL;
}

static struct directory *handle_open(const struct wharf_config *cfg, bool credentials_only,
                                     struct buf *err)
{
    const struct directory_driver *drv = find_driver(cfg, err);
    if (drv == NULL)
        return NULL;
    struct directory *d = xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    d->drv = drv;
    d->credentials_only = credentials_only;
    buf_init(&d->srs_secret);
    if ((credentials_only ? drv->open_credentials(d, err) : drv->open(d, err)) != 0) {
        directory_close(d);
        return NULL;
    }
    d->credentials = credentials_only;
    return d;
}

struct directory *directory_open(const struct wharf_config *cfg, struct buf *err)
{
    return handle_open(cfg, false, err);
}

struct directory *directory_open_credentials(const struct wharf_config *cfg, struct buf *err)
{
    return handle_open(cfg, true, err);
}

const char *directory_driver_name(const struct directory *d)
{
    return d->drv->name;
}

int directory_attach_credentials(struct directory *d, struct buf *err)
{
    if (d->credentials)
        return 0;
    if (d->drv->attach_credentials(d, err) != 0)
        return -1;
    d->credentials = true;
    return 0;
}

void directory_close(struct directory *d)
{
    if (d == NULL)
        return;
    if (d->drv->close)
        d->drv->close(d);
    directory_close(d->pub);
    buf_free(&d->srs_secret);
    free(d);
}

int directory_upgrade_credentials(const struct wharf_config *cfg, struct buf *err)
{
    const struct directory_driver *drv = find_driver(cfg, err);
    if (drv == NULL)
        return -1;
    return drv->upgrade_credentials ? drv->upgrade_credentials(cfg, err) : 0;
}

/*
 * The driver that keeps a part's files: a driver without public folder
 * addresses (LDAP) keeps none of the accounts part, but directory.db holds
 * the addresses for it (pub_handle), which the SQLite driver copies.
 */
static const struct directory_driver *files_driver(const struct directory_driver *drv,
                                                   enum directory_part part)
{
    if (drv != NULL && drv->backup == NULL && drv->public_get == NULL &&
        part == DIRECTORY_PART_ACCOUNTS)
        return &directory_sqlite_driver;
    return drv;
}

int directory_backup(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                     struct buf *err)
{
    const struct directory_driver *drv = files_driver(find_driver(cfg, err), part);
    if (drv == NULL)
        return -1;
    return drv->backup ? drv->backup(cfg, part, dir, err) : 0;
}

bool directory_present(const struct wharf_config *cfg, enum directory_part part)
{
    struct buf err = BUF_INIT;
    const struct directory_driver *drv = files_driver(find_driver(cfg, &err), part);
    buf_free(&err);
    return drv != NULL && drv->present != NULL && drv->present(cfg, part);
}

int directory_restore(const struct wharf_config *cfg, enum directory_part part, const char *dir,
                      struct buf *err)
{
    const struct directory_driver *drv = files_driver(find_driver(cfg, err), part);
    if (drv == NULL)
        return -1;
    if (drv->present && drv->present(cfg, part)) {
        buf_printf(err, "the %s exist already; restore only into a fresh data directory",
                   part == DIRECTORY_PART_CREDENTIALS ? "credentials" : "accounts");
        return -1;
    }
    return drv->restore ? drv->restore(cfg, part, dir, err) : 0;
}

int directory_attach_loop(struct directory *d, struct event_base *base, struct buf *err)
{
    return d->drv->attach_loop ? d->drv->attach_loop(d, base, err) : 0;
}

bool directory_checks_passwords(const struct directory *d)
{
    return d->drv->verify != NULL;
}

bool directory_config_checks_passwords(const struct wharf_config *cfg)
{
    struct buf err = BUF_INIT;
    const struct directory_driver *drv = find_driver(cfg, &err);
    buf_free(&err);
    return drv != NULL && drv->verify != NULL;
}

int directory_verify_password(struct directory *d, const char *dn, const char *password,
                              struct buf *err)
{
    WHARF_ASSERT(d->drv->verify != NULL);
    return d->drv->verify(d, dn, password, err);
}

bool directory_config_reads_hashes(const struct wharf_config *cfg)
{
    struct buf err = BUF_INIT;
    const struct directory_driver *drv = find_driver(cfg, &err);
    buf_free(&err);
    return drv != NULL && drv->read_password != NULL &&
           strcmp(cfg->ldap_password_check, "hash") == 0;
}

int directory_read_password(struct directory *d, const char *dn, struct buf *hash_r,
                            struct buf *err)
{
    WHARF_ASSERT(d->drv->read_password != NULL);
    return d->drv->read_password(d, dn, hash_r, err);
}

int directory_check_config(const struct wharf_config *cfg, struct buf *err)
{
    const struct directory_driver *drv = find_driver(cfg, err);
    if (drv == NULL)
        return -1;
    return drv->check_config ? drv->check_config(cfg, err) : 0;
}

enum directory_status directory_login_dn(struct directory *d, const char *username,
                                         struct buf *account_r, struct buf *dn_r, struct buf *err)
{
    char *name = directory_normalize_address(username, false);
    if (name == NULL || d->drv->verify == NULL) {
        free(name);
        return DIRECTORY_ERR_NOT_FOUND;
    }
    enum directory_status s = d->drv->credentials_get(d, name, account_r, dn_r, err);
    free(name);
    return s;
}

/* An operation the driver does not offer. */
static enum directory_status unsupported(struct directory *d, const char *what, struct buf *err)
{
    buf_printf(err, "the %s directory cannot %s (change it where the directory is kept)",
               d->drv->name, what);
    return DIRECTORY_ERR_INVALID;
}

static enum directory_status no_credentials(struct buf *err)
{
    buf_printf(err, "directory: the password hashes are in the credential database, which this "
                    "process does not open");
    return DIRECTORY_ERR_DB;
}

/* ---- lookups ---- */

bool directory_is_local_domain(struct directory *d, const char *domain)
{
    char *norm = directory_normalize_domain(domain);
    if (norm == NULL)
        return false;
    bool local = strlist_contains_nocase(&d->cfg->mydomains, norm);
    if (!local) {
        struct buf err = BUF_INIT;
        int r = d->drv->domain_exists(d, norm, &err);
        if (r < 0)
            log_error("%s", buf_cstr(&err));
        local = r == 1;
        buf_free(&err);
    }
    free(norm);
    return local;
}

int directory_account_info(struct directory *d, const char *account, uint64_t *bytes_r,
                           uint64_t *messages_r, struct buf *home_r, struct buf *err)
{
    char *norm = directory_normalize_address(account, false);
    if (norm == NULL)
        return 0;
    buf_reset(home_r);
    int r = d->drv->account_get(d, norm, bytes_r, messages_r, home_r, err);
    free(norm);
    return r;
}

const struct wharf_config *directory_config(const struct directory *d)
{
    return d->cfg;
}

int directory_quota(struct directory *d, const char *account, uint64_t *bytes_r,
                    uint64_t *messages_r)
{
    struct buf err = BUF_INIT;
    int r = d->drv->account_get(d, account, bytes_r, messages_r, NULL, &err);
    if (r < 0)
        log_error("%s", buf_cstr(&err));
    buf_free(&err);
    return r == 1 ? 0 : -1;
}

enum directory_status directory_account_hash(struct directory *d, const char *username,
                                             struct buf *account_r, struct buf *hash_r,
                                             struct buf *err)
{
    if (!d->credentials)
        return no_credentials(err);
    char *name = directory_normalize_address(username, false);
    if (name == NULL)
        return DIRECTORY_ERR_NOT_FOUND;
    enum directory_status s = d->drv->credentials_get(d, name, account_r, hash_r, err);
    free(name);
    return s;
}

/* ---- domains ---- */

/*
 * The start of an operation on a name: refuses it when the driver cannot do
 * it (can false: the message says what), then checks and normalizes a domain
 * (or, when account, an address local@domain) into *norm_r. A NULL name
 * stays NULL (a listing of every domain).
 */
static enum directory_status name_arg(struct directory *d, bool can, const char *what,
                                      const char *name, bool account, char **norm_r,
                                      struct buf *err)
{
    *norm_r = NULL;
    if (!can)
        return unsupported(d, what, err);
    if (name == NULL)
        return DIRECTORY_OK;
    *norm_r = account ? directory_normalize_address(name, false) : directory_normalize_domain(name);
    if (*norm_r != NULL)
        return DIRECTORY_OK;
    buf_printf(err,
               account ? "'%s' is not a valid address (local@domain)"
                       : "'%s' is not a valid domain name",
               name);
    return DIRECTORY_ERR_INVALID;
}

enum directory_status directory_domain_add(struct directory *d, const char *domain, struct buf *err)
{
    char *norm;
    enum directory_status s =
        name_arg(d, d->drv->domain_add != NULL, "add a domain", domain, false, &norm, err);
    if (s == DIRECTORY_OK)
        s = d->drv->domain_add(d, norm, err);
    if (s == DIRECTORY_ERR_EXISTS)
        buf_printf(err, "domain %s already exists", norm);
    free(norm);
    return s;
}

enum directory_status directory_domain_del(struct directory *d, const char *domain, struct buf *err)
{
    char *norm;
    long long users, aliases;
    enum directory_status s =
        name_arg(d, d->drv->domain_del != NULL, "delete a domain", domain, false, &norm, err);
    if (s != DIRECTORY_OK) {
        /* the message is said */
    } else if (d->drv->domain_usage(d, norm, &users, &aliases, err) != 0) {
        s = DIRECTORY_ERR_DB;
    } else if (users + aliases > 0) {
        buf_printf(err,
                   "domain %s still has %lld accounts and %lld alias entries; delete them first",
                   norm, users, aliases);
        s = DIRECTORY_ERR_IN_USE;
    } else if ((s = d->drv->domain_del(d, norm, err)) == DIRECTORY_ERR_NOT_FOUND) {
        buf_printf(err, "no such domain: %s", norm);
    }
    free(norm);
    return s;
}

enum directory_status directory_domain_list(struct directory *d,
                                            void (*fn)(void *arg, const char *domain), void *arg,
                                            struct buf *err)
{
    return d->drv->domain_list(d, fn, arg, err);
}

static enum directory_status not_public(struct directory *d, const char *norm, struct buf *err);

/* ---- accounts ---- */

/* Normalizes address into *norm_r and checks that its domain is ours. */
static enum directory_status local_address(struct directory *d, const char *address,
                                           bool allow_catchall, char **norm_r, struct buf *err)
{
    char *norm = directory_normalize_address(address, allow_catchall);
    if (norm == NULL) {
        buf_printf(err, "'%s' is not a valid address (local@domain%s)", address,
                   allow_catchall ? " or @domain" : "");
        return DIRECTORY_ERR_INVALID;
    }
    const char *domain = strrchr(norm, '@') + 1;
    if (!directory_is_local_domain(d, domain)) {
        buf_printf(err, "unknown domain %s (add it with: wharf domain add %s)", domain, domain);
        free(norm);
        return DIRECTORY_ERR_UNKNOWN_DOMAIN;
    }
    *norm_r = norm;
    return DIRECTORY_OK;
}

/* The message of a change on an account that is not there. */
static enum directory_status account_status(enum directory_status s, const char *norm,
                                            struct buf *err)
{
    if (s == DIRECTORY_ERR_NOT_FOUND)
        buf_printf(err, "no such account: %s", norm);
    else if (s == DIRECTORY_ERR_EXISTS)
        buf_printf(err, "account %s already exists", norm);
    return s;
}

enum directory_status directory_account_add(struct directory *d, const char *address,
                                            const char *hash, uint64_t quota_bytes,
                                            uint64_t quota_messages, struct buf *err)
{
    if (hash != NULL && !d->credentials) {
        buf_printf(err, "directory: the credential database is not open");
        return DIRECTORY_ERR_DB;
    }
    if (d->drv->account_add == NULL)
        return unsupported(d, "add an account", err);
    char *norm;
    enum directory_status s = local_address(d, address, false, &norm, err);
    if (s != DIRECTORY_OK)
        return s;
    if ((s = not_public(d, norm, err)) != DIRECTORY_OK) {
        free(norm);
        return s;
    }
    s = account_status(d->drv->account_add(d, norm, quota_bytes, quota_messages, err), norm, err);
    if (s == DIRECTORY_OK && hash != NULL &&
        (s = d->drv->credentials_set(d, norm, hash, err)) != DIRECTORY_OK) {
        /* no account without the password it was added with */
        struct buf ignored = BUF_INIT;
        d->drv->account_del(d, norm, &ignored);
        buf_free(&ignored);
    }
    free(norm);
    return s;
}

enum directory_status directory_account_del(struct directory *d, const char *address,
                                            struct buf *err)
{
    char *norm;
    enum directory_status s =
        name_arg(d, d->drv->account_del != NULL, "delete an account", address, true, &norm, err);
    if (s == DIRECTORY_OK)
        s = account_status(d->drv->account_del(d, norm, err), norm, err);
    if (s == DIRECTORY_OK && d->credentials)
        s = d->drv->credentials_set(d, norm, NULL, err);
    free(norm);
    return s;
}

enum directory_status directory_account_set_hash(struct directory *d, const char *address,
                                                 const char *hash, struct buf *err)
{
    if (!d->credentials) {
        buf_printf(err, "directory: the credential database is not open");
        return DIRECTORY_ERR_DB;
    }
    char *norm;
    enum directory_status s = name_arg(d, true, NULL, address, true, &norm, err);
    uint64_t b, m;
    int r = s != DIRECTORY_OK ? 1 : d->drv->account_get(d, norm, &b, &m, NULL, err);
    if (r < 0)
        s = DIRECTORY_ERR_DB;
    else if (r == 0) /* the account must exist */
        s = account_status(DIRECTORY_ERR_NOT_FOUND, norm, err);
    else if (s == DIRECTORY_OK)
        s = d->drv->credentials_set(d, norm, hash, err);
    free(norm);
    return s;
}

enum directory_status directory_account_set_quota(struct directory *d, const char *address,
                                                  uint64_t quota_bytes, uint64_t quota_messages,
                                                  struct buf *err)
{
    char *norm;
    enum directory_status s =
        name_arg(d, d->drv->account_set_quota != NULL, "change a quota", address, true, &norm, err);
    if (s == DIRECTORY_OK)
        s = account_status(d->drv->account_set_quota(d, norm, quota_bytes, quota_messages, err),
                           norm, err);
    free(norm);
    return s;
}

enum directory_status directory_account_set_home(struct directory *d, const char *address,
                                                 const char *home, struct buf *err)
{
    char *norm;
    enum directory_status s = name_arg(d, d->drv->account_set_home != NULL, "change a home server",
                                       address, true, &norm, err);
    if (s == DIRECTORY_OK)
        s = account_status(d->drv->account_set_home(d, norm, home, err), norm, err);
    free(norm);
    return s;
}

enum directory_status directory_account_list(struct directory *d, const char *domain,
                                             void (*fn)(void *arg,
                                                        const struct directory_account *a),
                                             void *arg, struct buf *err)
{
    char *norm;
    enum directory_status s = name_arg(d, true, NULL, domain, false, &norm, err);
    if (s == DIRECTORY_OK)
        s = d->drv->account_list(d, norm, fn, arg, err);
    free(norm);
    return s;
}

/* ---- aliases ---- */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Normalizes n alias targets into *v_r (n entries, freed with free_strv). */
static enum directory_status targets_arg(char *const *targets, size_t n, char ***v_r,
                                         struct buf *err)
{
    char **v = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        if ((v[i] = directory_normalize_address(targets[i], false)) == NULL) {
            buf_printf(err, "target '%s' is not a valid address (local@domain)", targets[i]);
            free_strv(v, n);
            return DIRECTORY_ERR_INVALID;
        }
    }
    *v_r = v;
    return DIRECTORY_OK;
}

enum directory_status directory_alias_add(struct directory *d, const char *address,
                                          char *const *targets, size_t n_targets, struct buf *err)
{
    if (d->drv->alias_add == NULL)
        return unsupported(d, "add an alias", err);
    char *norm, **v = NULL;
    enum directory_status s = local_address(d, address, true, &norm, err);
    if (s != DIRECTORY_OK)
        return s;
    if (n_targets == 0) {
        buf_printf(err, "alias %s needs at least one target", norm);
        s = DIRECTORY_ERR_INVALID;
    } else if (norm[0] != '@' && (s = not_public(d, norm, err)) != DIRECTORY_OK) {
        /* the message is said */
    } else if ((s = targets_arg(targets, n_targets, &v, err)) == DIRECTORY_OK) {
        s = d->drv->alias_add(d, norm, v, n_targets, err);
        free_strv(v, n_targets);
    }
    free(norm);
    return s;
}

enum directory_status directory_alias_del(struct directory *d, const char *address,
                                          char *const *targets, size_t n_targets, struct buf *err)
{
    if (d->drv->alias_del == NULL)
        return unsupported(d, "delete an alias", err);
    char *norm = directory_normalize_address(address, true), **v = NULL;
    if (norm == NULL) {
        buf_printf(err, "'%s' is not a valid address (local@domain or @domain)", address);
        return DIRECTORY_ERR_INVALID;
    }
    enum directory_status s = targets_arg(targets, n_targets, &v, err);
    if (s == DIRECTORY_OK) {
        long long changes = d->drv->alias_del(d, norm, v, n_targets, err);
        if (changes < 0)
            s = DIRECTORY_ERR_DB;
        else if (changes == 0) {
            buf_printf(err, "no such alias%s: %s", n_targets ? " target" : "", norm);
            s = DIRECTORY_ERR_NOT_FOUND;
        }
        free_strv(v, n_targets);
    }
    free(norm);
    return s;
}

enum directory_status directory_alias_list(struct directory *d, const char *domain,
                                           void (*fn)(void *arg, const char *address,
                                                      const char *target),
                                           void *arg, struct buf *err)
{
    char *norm;
    enum directory_status s = name_arg(d, true, NULL, domain, false, &norm, err);
    if (s == DIRECTORY_OK)
        s = d->drv->alias_list(d, norm, fn, arg, err);
    free(norm);
    return s;
}

/* ---- addresses of public folders ---- */

/*
 * The handle that keeps them: d itself, or for a driver without them (an
 * LDAP tree has no place for them, and its mirror is rewritten whole)
 * directory.db with the SQLite driver, opened at the first use.
 */
static struct directory *pub_handle(struct directory *d, struct buf *err)
{
    if (d->drv->public_get != NULL)
        return d;
    if (d->pub == NULL) {
        struct directory *p = xcalloc(1, sizeof(*p));
        p->cfg = d->cfg;
        p->drv = &directory_sqlite_driver;
        buf_init(&p->srs_secret);
        if (p->drv->open(p, err) != 0) {
            directory_close(p);
            return NULL;
        }
        d->pub = p;
    }
    return d->pub;
}

int directory_public_folder(struct directory *d, const char *address, struct buf *folder_r,
                            struct buf *err)
{
    struct directory *p = pub_handle(d, err);
    return p == NULL ? -1 : p->drv->public_get(p, address, folder_r, err);
}

/* EXISTS (with the message) when norm is the address of a public folder. */
static enum directory_status not_public(struct directory *d, const char *norm, struct buf *err)
{
    struct buf folder = BUF_INIT;
    int r = directory_public_folder(d, norm, &folder, err);
    if (r > 0)
        buf_printf(err, "%s is the address of the public folder %s", norm, folder.data);
    buf_free(&folder);
    return r < 0 ? DIRECTORY_ERR_DB : r > 0 ? DIRECTORY_ERR_EXISTS : DIRECTORY_OK;
}

enum directory_status directory_public_address_add(struct directory *d, const char *address,
                                                   const char *folder, struct buf *err)
{
    char *norm;
    enum directory_status s = local_address(d, address, false, &norm, err);
    if (s != DIRECTORY_OK)
        return s;
    struct directory *p = pub_handle(d, err);
    char **v = NULL;
    size_t n = 0;
    int alias = p == NULL ? -1 : d->drv->alias_targets(d, norm, &v, &n, err);
    free_strv(v, n);
    uint64_t b, m;
    int account = alias != 0 ? alias : d->drv->account_get(d, norm, &b, &m, NULL, err);
    if (alias < 0 || account < 0) {
        s = DIRECTORY_ERR_DB;
    } else if (alias > 0 || account > 0) { /* one address, one meaning */
        buf_printf(err, "%s is already %s", norm, alias > 0 ? "an alias" : "an account");
        s = DIRECTORY_ERR_EXISTS;
    } else if ((s = p->drv->public_set(p, norm, folder, err)) == DIRECTORY_ERR_EXISTS) {
        struct buf other = BUF_INIT;
        if (p->drv->public_get(p, norm, &other, err) > 0)
            buf_printf(err, "%s is already the address of the public folder %s", norm, other.data);
        buf_free(&other);
    }
    free(norm);
    return s;
}

enum directory_status directory_public_address_del(struct directory *d, const char *address,
                                                   struct buf *err)
{
    char *norm;
    enum directory_status s = name_arg(d, true, NULL, address, true, &norm, err);
    struct directory *p = s == DIRECTORY_OK ? pub_handle(d, err) : NULL;
    if (s == DIRECTORY_OK && p == NULL)
        s = DIRECTORY_ERR_DB;
    else if (s == DIRECTORY_OK && (s = p->drv->public_del(p, norm, err)) == DIRECTORY_ERR_NOT_FOUND)
        buf_printf(err, "no public folder has the address %s", norm);
    free(norm);
    return s;
}

enum directory_status directory_public_address_list(struct directory *d, const char *domain,
                                                    void (*fn)(void *arg, const char *address,
                                                               const char *folder),
                                                    void *arg, struct buf *err)
{
    char *norm;
    enum directory_status s = name_arg(d, true, NULL, domain, false, &norm, err);
    struct directory *p = s == DIRECTORY_OK ? pub_handle(d, err) : NULL;
    if (s == DIRECTORY_OK)
        s = p == NULL ? DIRECTORY_ERR_DB : p->drv->public_list(p, norm, fn, arg, err);
    free(norm);
    return s;
}
