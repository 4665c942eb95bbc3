/*
 * directory_resolve.c - who is this recipient? Alias expansion with loop
 * detection and bounded depth and fan-out, catch-alls and +detail.
 *
 * postmaster@ every local domain (RFC 5321 4.5.1: it MUST be accepted) and,
 * when abuse_address is set, abuse@ every local domain (RFC 2142) reach the
 * address named by postmaster_address / abuse_address, or for postmaster the
 * first account created, whenever no alias or account of that name exists:
 * here, so that smtp RCPT and the mta's delivery always agree.
 *
 * Works only through the driver table's lookups (directory_driver.h), so
 * the LDAP driver shares it. It must never expand without bound: the depth and
 * the number of targets are limited by options, and an address met again on
 * its own expansion path stops there.
 */
#include "directory/directory_driver.h"
#include "base/alloc.h"
#include "base/datadir.h"
#include "directory/srs.h"
#include "store/store.h" /* STORE_PUBLIC_OWNER: the owner of the public folders */

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct expand {
    struct directory *d;
    char **path; /* addresses being expanded, outermost first */
    size_t path_n;
    struct directory_result *r;
    struct buf *err;
};

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Adds a local account (remote false) or a remote address, once. */
static int add_target(struct expand *e, const char *account, const char *folder, bool remote)
{
    struct directory_result *r = e->r;
    for (size_t i = 0; !remote && i < r->n_targets; i++) {
        if (strcmp(r->targets[i].account, account) == 0 && same_str(r->targets[i].folder, folder))
            return 0;
    }
    for (size_t i = 0; remote && i < r->n_remote; i++) {
        if (strcmp(r->remote[i], account) == 0)
            return 0;
    }
    if (r->n_targets + r->n_remote >= (size_t)e->d->cfg->directory_alias_max_targets) {
        buf_printf(e->err,
                   "alias expansion of %s gives more than %lld addresses "
                   "(directory_alias_max_targets)",
                   e->path_n ? e->path[0] : account, e->d->cfg->directory_alias_max_targets);
        return -1;
    }
    if (remote) {
        r->remote = xreallocarray(r->remote, r->n_remote + 1, sizeof(*r->remote));
        r->remote[r->n_remote++] = xstrdup(account);
        return 0;
    }
    r->targets = xreallocarray(r->targets, r->n_targets + 1, sizeof(*r->targets));
    r->targets[r->n_targets++] = (struct directory_target){
        .account = xstrdup(account),
        .folder = folder && *folder ? xstrdup(folder) : NULL,
    };
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int expand(struct expand *e, const char *addr, long long depth);

/* 1 when address is an account, 0 if not, -1 on error. */
static int account_exists(struct directory *d, const char *address, struct buf *err)
{
    uint64_t bytes, messages;
    return d->drv->account_get(d, address, &bytes, &messages, NULL, err);
}

/* Expands every target of an alias; 1 when the alias exists, 0 if not, -1 on error. */
static int expand_alias(struct expand *e, const char *alias, long long depth)
{
    char **v = NULL;
    size_t n = 0;
    int found = e->d->drv->alias_targets(e->d, alias, &v, &n, e->err);
    int r = found > 0 ? 1 : found;
    for (size_t i = 0; i < n && r > 0; i++) {
        if (expand(e, v[i], depth + 1) != 0)
            r = -1;
    }
    free_strv(v, n);
    return r;
}

/*
 * postmaster@ and abuse@ a local domain that is neither an alias nor an
 * account: 1 when handled (targets added), 0 when addr is no such role
 * address (or there is nobody to give it to), -1 on error.
 */
static int role_address(struct expand *e, const char *addr, long long depth)
{
    const char *at = strrchr(addr, '@');
    size_t local = (size_t)(at - addr);
    const char *target;
    if (local == 10 && strncasecmp(addr, "postmaster", 10) == 0)
        target = e->d->cfg->postmaster_address;
    else if (local == 5 && strncasecmp(addr, "abuse", 5) == 0 && *e->d->cfg->abuse_address)
        target = e->d->cfg->abuse_address;
    else
        return 0;
    struct buf first = BUF_INIT;
    if (*target == '\0') { /* the default: the first account created */
        int r = e->d->drv->first_account(e->d, &first, e->err);
        if (r <= 0) {
            buf_free(&first);
            return r;
        }
        target = first.data;
    }
    char *norm = directory_normalize_address(target, false);
    int r = 0;
    if (norm != NULL) {
        size_t before = e->r->n_targets + e->r->n_remote;
        r = expand(e, norm, depth + 1) != 0 ? -1 : e->r->n_targets + e->r->n_remote > before;
    }
    free(norm);
    buf_free(&first);
    return r;
}

/*
 * A public folder's address: its one target, the folder of STORE_PUBLIC_OWNER;
 * 1 when addr is one, 0 if not, -1 on error. Like an alias, it is not
 * resolved further.
 */
static int public_folder(struct expand *e, const char *addr)
{
    struct buf folder = BUF_INIT;
    int r = directory_public_folder(e->d, addr, &folder, e->err);
    if (r > 0 && add_target(e, STORE_PUBLIC_OWNER, folder.data, false) != 0)
        r = -1;
    buf_free(&folder);
    return r;
}

/* The lookup order of directory.h for one local address. */
static int lookup(struct expand *e, const char *addr, long long depth)
{
    int r = expand_alias(e, addr, depth);
    if (r == 0)
        r = public_folder(e, addr);
    if (r != 0)
        return r < 0 ? -1 : 0;
    r = account_exists(e->d, addr, e->err);
    if (r != 0)
        return r < 0 ? -1 : add_target(e, addr, NULL, false);

    const char *at = strrchr(addr, '@');
    const char *delims = e->d->cfg->recipient_delimiter;
    size_t cut = strcspn(addr, delims);
    if (*delims && addr + cut < at && cut > 0) {
        struct buf base = BUF_INIT;
        buf_append(&base, addr, cut);
        buf_append_cstr(&base, at);
        char *detail = xstrndup(addr + cut + 1, (size_t)(at - addr) - cut - 1);
        r = expand_alias(e, base.data, depth);
        if (r == 0)
            r = public_folder(e, base.data);
        if (r == 0) {
            r = account_exists(e->d, base.data, e->err);
            if (r > 0)
                r = add_target(e, base.data, detail, false) == 0 ? 1 : -1;
        }
        free(detail);
        buf_free(&base);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    r = role_address(e, addr, depth);
    if (r != 0)
        return r < 0 ? -1 : 0;
    r = expand_alias(e, at, depth); /* the catch-all "@domain" */
    return r < 0 ? -1 : 0;
}

static int expand(struct expand *e, const char *addr, long long depth)
{
    const char *at = strrchr(addr, '@');
    if (!directory_is_local_domain(e->d, at + 1))
        return add_target(e, addr, NULL, true);
    for (size_t i = 0; i < e->path_n; i++) {
        if (strcmp(e->path[i], addr) == 0) {
            /* A loop, or "a -> a, b": stop here; deliver if it is an account. */
            int r = account_exists(e->d, addr, e->err);
            e->r->loop |= r == 0;
            return r < 0 ? -1 : r > 0 ? add_target(e, addr, NULL, false) : 0;
        }
    }
    if (depth > e->d->cfg->directory_alias_max_depth) {
        buf_printf(e->err, "alias chain from %s deeper than %lld (directory_alias_max_depth)",
                   e->path[0], e->d->cfg->directory_alias_max_depth);
        return -1;
    }
    e->path = xreallocarray(e->path, e->path_n + 1, sizeof(char *));
    e->path[e->path_n++] = (char *)addr;
    int r = lookup(e, addr, depth);
    e->path_n--;
    return r;
}

static bool is_srs_domain(const struct directory *d, const char *domain)
{
    return *d->cfg->srs_domain && strcasecmp(domain, d->cfg->srs_domain) == 0;
}

/* The SRS parameters, the secret read (or made) at the first use. */
static int srs_params(struct directory *d, struct srs *s, struct buf *err)
{
    if (d->srs_secret.len == 0) {
        char *path = config_data_path(d->cfg, "directory/srs.key");
        uid_t uid = 0;
        gid_t gid = 0;
        datadir_wharf_ids(d->cfg, &uid, &gid);
        int rc = srs_key_load(path, uid, gid, &d->srs_secret, err);
        free(path);
        if (rc != 0)
            return -1;
    }
    *s = (struct srs){.secret = d->srs_secret.data,
                      .secret_len = d->srs_secret.len,
                      .domain = d->cfg->srs_domain,
                      .max_age_days = d->cfg->srs_max_age / (86400 * 1000)};
    return 0;
}

/*
 * An address at srs_domain: 1 when it is no SRS address (resolve it as any
 * other), 0 when r holds the answer, -1 on error. An SRS1 address that
 * leads to an SRS0 one at srs_domain (two forwards through this server) is
 * reversed once more.
 */
static int resolve_srs(struct directory *d, const char *address, struct directory_result *r,
                       struct buf *err)
{
    struct srs s;
    if (srs_params(d, &s, err) != 0)
        return -1;
    time_t now = time(NULL);
    struct buf orig = BUF_INIT, again = BUF_INIT;
    enum srs_status st = srs_reverse(&s, address, now, &orig);
    if (st == SRS_OK && is_srs_domain(d, strrchr(orig.data, '@') + 1)) {
        enum srs_status st2 = srs_reverse(&s, orig.data, now, &again);
        if (st2 != SRS_NOT_SRS) {
            st = st2;
            buf_reset(&orig);
            buf_append(&orig, again.data, again.len);
        }
    }
    buf_free(&again);
    if (st == SRS_OK) {
        r->kind = DIRECTORY_LOCAL;
        r->remote = xcalloc(1, sizeof(*r->remote));
        r->remote[r->n_remote++] = buf_steal(&orig, NULL);
    }
    buf_free(&orig);
    return st == SRS_NOT_SRS ? 1 : 0; /* forged, expired, malformed: NO_SUCH_USER */
}

int directory_srs_forward(struct directory *d, const char *sender, struct buf *out, struct buf *err)
{
    const char *at = strrchr(sender, '@');
    if (!*d->cfg->srs_domain || at == NULL || is_srs_domain(d, at + 1) ||
        strlist_contains_nocase(&d->cfg->srs_exclude_domains, at + 1) ||
        directory_is_local_domain(d, at + 1))
        return 0;
    struct srs s;
    if (srs_params(d, &s, err) != 0)
        return -1;
    return srs_forward(&s, sender, time(NULL), out) ? 1 : 0;
}

int directory_resolve(struct directory *d, const char *address, struct directory_result *r,
                      struct buf *err)
{
    *r = (struct directory_result){.kind = DIRECTORY_NO_SUCH_USER};
    const char *at = strrchr(address, '@');
    if (at == NULL)
        return 0;
    if (is_srs_domain(d, at + 1)) {
        int rc = resolve_srs(d, address, r, err);
        if (rc <= 0)
            return rc;
    }
    if (!directory_is_local_domain(d, at + 1)) {
        r->kind = DIRECTORY_NOT_LOCAL;
        return 0;
    }
    char *norm = directory_normalize_address(address, false);
    if (norm == NULL)
        return 0;
    struct expand e = {.d = d, .r = r, .err = err};
    int rc = expand(&e, norm, 0);
    free(e.path);
    free(norm);
    if (rc != 0) {
        directory_result_free(r);
        return -1;
    }
    if (r->n_targets + r->n_remote > 0)
        r->kind = DIRECTORY_LOCAL;
    return 0;
}

void directory_result_free(struct directory_result *r)
{
    for (size_t i = 0; i < r->n_targets; i++) {
        free(r->targets[i].account);
        free(r->targets[i].folder);
    }
    free(r->targets);
    r->targets = NULL;
    r->n_targets = 0;
    for (size_t i = 0; i < r->n_remote; i++)
        free(r->remote[i]);
    free(r->remote);
    r->remote = NULL;
    r->n_remote = 0;
}
