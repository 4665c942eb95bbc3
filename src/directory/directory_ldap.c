/*
 * directory_ldap.c - the LDAP directory driver ("ldap", the directory_driver
 * table of directory_driver.h): accounts, their addresses, quotas and home
 * servers, and distribution groups read from an LDAP tree (OpenLDAP's
 * inetOrgPerson or Active Directory, options ldap_* in options.def).
 *
 * How it works (doc/directory.md):
 *   - The directory process (directory_attach_loop) reads the whole tree
 *     every ldap_sync_interval: asynchronous searches (ldap_search_ext, their
 *     msgids) whose replies are read when libevent says the connection's fd
 *     is readable; the connection itself (connect, StartTLS, bind) is made
 *     with ldap_timeout as its bound. Each entry goes through ldap_map_entry
 *     (ldap_map.c); groups become alias entries to their members' addresses.
 *   - The result is written as a new SQLite mirror, DATA/directory/ldap.db
 *     (the SQLite driver's schema; each account's DN where that driver keeps
 *     hashes), renamed into place when it differs from the last one. Every
 *     lookup of every process (the directory process, the mta, the wharf
 *     command) reads the mirror through the SQLite driver's ops, reopened
 *     when the file changes: nobody but the directory process talks to the
 *     LDAP servers to look things up, and a lookup never waits on the network.
 *   - When no server answers, the last mirror stays: mail keeps flowing with
 *     the tree as it was, and one log line says it is served stale (one more
 *     when a server answers again). Before the first successful read there
 *     is no mirror and lookups fail temporarily (4xx), never 5.1.1.
 *   - Passwords: the auth process binds as the account's DN (verify, from
 *     its crypt threads, on a small pool of connections that rebind).
 *
 * It must never: write to the tree, log a password, block a network worker
 * (they ask the directory process), or let a refresh that failed half-way
 * replace a good mirror. It is the only file that names a libldap type.
 */
#include "directory/directory_driver.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/fdio.h"
#include "base/log.h"
#include "directory/ldap_map.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIRROR "directory/ldap.db"
#define MIRROR_NEW "directory/ldap.db.new"
/* Most entries one search may return: a bound on the directory process's memory. */
#define LDAP_MAX_ENTRIES 1000000

/* The option values after the profile (ldap_profile) filled the empty ones. */
struct ldap_settings {
    const char *user_filter, *group_filter;
    const char *const *aliases;
    size_t n_aliases;
    struct ldap_map_names names;
    char **attrs; /* every attribute asked for, NULL-terminated */
};

struct records {
    struct ldap_record *v;
    size_t n, cap;
};

/* The refresh: only in the directory process. */
struct ldap_sync {
    struct directory *d;
    struct event_base *base;
    LDAP *ld;
    struct event *io, *timer;
    int msg_users, msg_groups; /* -1: done (or not started) */
    bool failed;               /* this round failed: the mirror is left as it is */
    struct records users, groups;
    size_t refused; /* entries without an address this round */
    bool down;      /* the last round failed (logged once) */
    bool reused;    /* this round runs on the last round's connection */
    struct berval *cookie_users, *cookie_groups; /* paged results: the next page */
    char *bind_password;                         /* from ldap_bind_password_file, read as root */
    unsigned char last[32];                      /* digest of the mirror written last */
    bool have_last;
    int64_t round_started;
};

/* Idle bind connections the auth process keeps (one per crypt thread is plenty). */
#define LDAP_BIND_POOL 8

struct ldap_dir {
    struct ldap_settings set;
    pthread_mutex_t pool_lock;
    LDAP *idle[LDAP_BIND_POOL];
    size_t n_idle;
    struct directory mirror; /* the SQLite driver's handle on ldap.db (priv NULL: closed) */
    dev_t dev;
    ino_t ino;
    struct ldap_sync *sync;
};

static struct ldap_dir *ldir(struct directory *d)
{
    return d->priv;
}

/* ---- settings ---- */

static const char *or_default(const char *value, const char *dflt)
{
    return value != NULL && value[0] != '\0' ? value : dflt;
}

static int settings_init(struct ldap_settings *s, const struct wharf_config *cfg, struct buf *err)
{
    static const char *const openldap_aliases[] = {"mailLocalAddress"};
    static const char *const ad_aliases[] = {"proxyAddresses"};
    bool ad = strcmp(cfg->ldap_profile, "ad") == 0;
    if (!ad && strcmp(cfg->ldap_profile, "openldap") != 0) {
        buf_printf(err, "ldap_profile: unknown profile '%s' (known: openldap, ad)",
                   cfg->ldap_profile);
        return -1;
    }
    s->user_filter =
        or_default(cfg->ldap_user_filter,
                   ad ? "(&(objectClass=user)(mail=*))" : "(&(objectClass=inetOrgPerson)(mail=*))");
    s->group_filter = or_default(cfg->ldap_group_filter, ad ? "(&(objectClass=group)(mail=*))"
                                                            : "(objectClass=groupOfNames)");
    if (strcmp(s->group_filter, "none") == 0)
        s->group_filter = NULL;
    if (cfg->ldap_alias_attributes.n > 0) {
        s->aliases = (const char *const *)cfg->ldap_alias_attributes.v;
        s->n_aliases = cfg->ldap_alias_attributes.n;
    } else {
        s->aliases = ad ? ad_aliases : openldap_aliases;
        s->n_aliases = 1;
    }
    s->names = (struct ldap_map_names){
        .mail = cfg->ldap_mail_attribute,
        .aliases = s->aliases,
        .n_aliases = s->n_aliases,
        .quota_bytes = cfg->ldap_quota_attribute,
        .quota_messages = cfg->ldap_quota_messages_attribute,
        .home = or_default(cfg->ldap_home_attribute, ad ? "" : "mailHost"),
        .member = cfg->ldap_member_attribute,
        .member_of = or_default(cfg->ldap_member_of_attribute, ad ? "memberOf" : ""),
        .login = or_default(cfg->ldap_login_attribute, ad ? "userPrincipalName" : ""),
    };
    const char *one[] = {s->names.mail, s->names.quota_bytes, s->names.quota_messages,
                         s->names.home, s->names.member,      s->names.member_of,
                         s->names.login};
    s->attrs = xcalloc(sizeof(one) / sizeof(one[0]) + s->n_aliases + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
        if (one[i] != NULL && one[i][0] != '\0')
            s->attrs[n++] = xstrdup(one[i]);
    }
    for (size_t i = 0; i < s->n_aliases; i++)
        s->attrs[n++] = xstrdup(s->aliases[i]);
    return 0;
}

static void settings_free(struct ldap_settings *s)
{
    for (size_t i = 0; s->attrs != NULL && s->attrs[i] != NULL; i++)
        free(s->attrs[i]);
    free(s->attrs);
}

/* ---- connections ---- */

/* The URIs as libldap takes them: space-separated, tried in order (failover). */
static char *uri_list(const struct wharf_config *cfg)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < cfg->ldap_uris.n; i++)
        buf_printf(&b, "%s%s", i ? " " : "", cfg->ldap_uris.v[i]);
    return buf_steal(&b, NULL);
}

/*
 * A connection to the first server of ldap_uris that answers, TLS checked
 * (LDAPS, or StartTLS when ldap_starttls), not bound yet (an ldap:// one
 * without StartTLS connects at its first operation). NULL with err.
 */
static LDAP *server_open(const struct wharf_config *cfg, struct buf *err)
{
    if (cfg->ldap_uris.n == 0) {
        buf_printf(err, "ldap: ldap_uris is empty");
        return NULL;
    }
    char *uris = uri_list(cfg);
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, uris);
    free(uris);
    if (rc != LDAP_SUCCESS) {
        buf_printf(err, "ldap: ldap_uris: %s", ldap_err2string(rc));
        return NULL;
    }
    int version = LDAP_VERSION3, hard = LDAP_OPT_X_TLS_HARD, zero = 0;
    struct timeval tv = {(time_t)(cfg->ldap_timeout / 1000),
                         (suseconds_t)(cfg->ldap_timeout % 1000) * 1000};
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &hard);
    if (cfg->ldap_tls_ca_file[0] != '\0')
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ldap_tls_ca_file);
    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
    if (cfg->ldap_starttls) {
        rc = ldap_start_tls_s(ld, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            buf_printf(err, "ldap: StartTLS: %s", ldap_err2string(rc));
            ldap_unbind_ext_s(ld, NULL, NULL);
            return NULL;
        }
    }
    return ld;
}

/* Binds ld as dn (NULL: anonymous). 0, or -1 with err and *bad_password_r when
 * the server said the credentials are wrong (a server that answered). */
static int server_bind(LDAP *ld, const char *dn, const char *password, bool *bad_password_r,
                       struct buf *err)
{
    struct berval cred = {password ? strlen(password) : 0, (char *)(password ? password : "")};
    int rc = ldap_sasl_bind_s(ld, dn ? dn : "", LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    *bad_password_r = rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH ||
                      rc == LDAP_UNWILLING_TO_PERFORM;
    if (rc == LDAP_SUCCESS)
        return 0;
    buf_printf(err, "ldap: bind%s%s: %s", dn ? " as " : "", dn ? dn : "", ldap_err2string(rc));
    return -1;
}

/* server_open and server_bind: the search connection of the directory process. */
static LDAP *server_connect(const struct wharf_config *cfg, const char *dn, const char *password,
                            struct buf *err)
{
    bool bad;
    LDAP *ld = server_open(cfg, err);
    if (ld != NULL && server_bind(ld, dn, password, &bad, err) != 0) {
        ldap_unbind_ext_s(ld, NULL, NULL);
        ld = NULL;
    }
    return ld;
}

/* ---- the mirror (every process) ---- */

static void mirror_close(struct ldap_dir *l)
{
    if (l->mirror.priv != NULL)
        directory_sqlite_driver.close(&l->mirror);
}

/* Opens the mirror as it is on disk now (again when it was replaced). 0, or -1 with err. */
static int mirror_fresh(struct directory *d, struct buf *err)
{
    struct ldap_dir *l = ldir(d);
    char *path = config_data_path(d->cfg, MIRROR);
    struct stat st;
    int r = stat(path, &st);
    free(path);
    if (r != 0) {
        mirror_close(l);
        buf_printf(err, "ldap: the directory has not been read from LDAP yet (%s: %s)", MIRROR,
                   strerror(errno));
        return -1;
    }
    if (l->mirror.priv != NULL && st.st_dev == l->dev && st.st_ino == l->ino)
        return 0;
    mirror_close(l);
    l->mirror.cfg = d->cfg;
    if (directory_sqlite_open_mirror(&l->mirror, MIRROR, false, err) != 0) {
        mirror_close(l);
        return -1;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    return 0;
}

/* ---- reading the tree (the directory process) ---- */

static void records_free(struct records *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        ldap_record_free(&rs->v[i]);
    free(rs->v);
    memset(rs, 0, sizeof(*rs));
}

static void cookies_free(struct ldap_sync *sy)
{
    if (sy->cookie_users != NULL)
        ber_bvfree(sy->cookie_users);
    if (sy->cookie_groups != NULL)
        ber_bvfree(sy->cookie_groups);
    sy->cookie_users = sy->cookie_groups = NULL;
}

/* A DN as compared: lower case, no spaces around ',', '=' and '+'. */
static char *dn_key(const char *dn)
{
    struct buf b = BUF_INIT;
    for (const char *p = dn; *p; p++) {
        if (*p == ' ' && (b.len == 0 || strchr(",=+", b.data[b.len - 1]) || strchr(",=+ ", p[1])))
            continue;
        buf_append_byte(&b, (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p));
    }
    if (b.len == 0)
        buf_append_cstr(&b, "");
    return buf_steal(&b, NULL);
}

/* Maps one entry of a search result into rs; entries without an address are counted. */
static void take_entry(struct ldap_sync *sy, LDAPMessage *msg, bool group)
{
    struct ldap_dir *l = ldir(sy->d);
    struct records *rs = group ? &sy->groups : &sy->users;
    if (rs->n >= LDAP_MAX_ENTRIES) {
        sy->failed = true;
        return;
    }
    char *dn = ldap_get_dn(sy->ld, msg);
    struct ldap_map_attr attrs[64];
    size_t n = 0;
    BerElement *ber = NULL;
    for (char *a = ldap_first_attribute(sy->ld, msg, &ber); a != NULL;
         a = ldap_next_attribute(sy->ld, msg, ber)) {
        struct berval **bv = ldap_get_values_len(sy->ld, msg, a);
        size_t nv = bv ? (size_t)ldap_count_values_len(bv) : 0;
        if (n < sizeof(attrs) / sizeof(attrs[0])) {
            char **v = xcalloc(nv + 1, sizeof(char *));
            for (size_t i = 0; i < nv; i++)
                v[i] = xstrndup(bv[i]->bv_val, bv[i]->bv_len);
            attrs[n++] = (struct ldap_map_attr){xstrdup(a), (const char *const *)v, nv};
        }
        ldap_value_free_len(bv);
        ldap_memfree(a);
    }
    if (ber != NULL)
        ber_free(ber, 0);
    struct ldap_map_entry e = {dn, attrs, n};
    struct ldap_record r;
    struct buf err = BUF_INIT;
    if (ldap_map_entry(&l->set.names, &e, group, &r, &err) == 0) {
        if (rs->n == rs->cap) {
            rs->cap = rs->cap ? rs->cap * 2 : 64;
            rs->v = xreallocarray(rs->v, rs->cap, sizeof(*rs->v));
        }
        rs->v[rs->n++] = r;
    } else {
        sy->refused++;
        log_debug("ldap: entry skipped: %s", buf_cstr(&err));
    }
    buf_free(&err);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < attrs[i].n_values; k++)
            free((char *)attrs[i].values[k]);
        free((void *)attrs[i].values);
        free((char *)attrs[i].name);
    }
    ldap_memfree(dn);
}

/* Every entry read this round by DN (dn_key), sorted: members are found by bsearch. */
struct dn_entry {
    char *key;
    const char *address;
};

struct dn_index {
    struct dn_entry *v;
    size_t n;
};

static int dn_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dn_entry *)a)->key, ((const struct dn_entry *)b)->key);
}

static void dn_index_build(struct dn_index *ix, const struct ldap_sync *sy)
{
    ix->n = 0;
    ix->v = xcalloc(sy->users.n + sy->groups.n + 1, sizeof(*ix->v));
    const struct records *sets[] = {&sy->users, &sy->groups};
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sets[s]->n; i++)
            ix->v[ix->n++] = (struct dn_entry){dn_key(sets[s]->v[i].dn), sets[s]->v[i].address};
    }
    qsort(ix->v, ix->n, sizeof(*ix->v), dn_entry_cmp);
}

static void dn_index_free(struct dn_index *ix)
{
    for (size_t i = 0; i < ix->n; i++)
        free(ix->v[i].key);
    free(ix->v);
}

/* The address a member DN stands for (an account's, or a nested group's), or NULL. */
static const char *member_address(const struct dn_index *ix, const char *member)
{
    struct dn_entry want = {dn_key(member), NULL};
    const struct dn_entry *e = bsearch(&want, ix->v, ix->n, sizeof(*ix->v), dn_entry_cmp);
    free(want.key);
    return e != NULL ? e->address : NULL;
}

/* The domain of an address, added once. */
static void add_domain(struct directory *m, const char *address, EVP_MD_CTX *md)
{
    const char *domain = strrchr(address, '@') + 1;
    struct buf err = BUF_INIT;
    if (directory_sqlite_driver.domain_add(m, domain, &err) == DIRECTORY_OK)
        EVP_DigestUpdate(md, domain, strlen(domain) + 1);
    buf_free(&err);
}

static void add_alias(struct directory *m, const char *address, const char *target, EVP_MD_CTX *md)
{
    struct buf err = BUF_INIT;
    char *t = (char *)target;
    add_domain(m, address, md);
    if (directory_sqlite_driver.alias_add(m, address, &t, 1, &err) == DIRECTORY_OK) {
        EVP_DigestUpdate(md, address, strlen(address) + 1);
        EVP_DigestUpdate(md, target, strlen(target) + 1);
    }
    buf_free(&err);
}

/* Writes the records read this round into m (a new, empty mirror); its digest into out. */
static int mirror_fill(struct ldap_sync *sy, struct directory *m, unsigned char out[32],
                       struct buf *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    int rc = 0; /* no journal, no sync: the file is synced once, before its rename */
    struct dn_index ix;
    dn_index_build(&ix, sy);
    for (size_t i = 0; rc == 0 && i < sy->users.n; i++) {
        const struct ldap_record *r = &sy->users.v[i];
        add_domain(m, r->address, md);
        if (directory_sqlite_driver.account_add(m, r->address, r->quota_bytes, r->quota_messages,
                                                err) != DIRECTORY_OK) {
            buf_reset(err); /* the same address twice: the first entry keeps it */
            log_warning("ldap: %s: the address %s is another entry's already", r->dn, r->address);
            continue;
        }
        char line[64];
        snprintf(line, sizeof(line), "%llu %llu", (unsigned long long)r->quota_bytes,
                 (unsigned long long)r->quota_messages);
        EVP_DigestUpdate(md, r->address, strlen(r->address) + 1);
        EVP_DigestUpdate(md, line, strlen(line) + 1);
        EVP_DigestUpdate(md, r->home, strlen(r->home) + 1);
        EVP_DigestUpdate(md, r->dn, strlen(r->dn) + 1);
        /* Who logs in as what: "account\nDN" under the address and the other login. */
        struct buf login = BUF_INIT;
        buf_printf(&login, "%s\n%s", r->address, r->dn);
        if ((r->home[0] != '\0' &&
             directory_sqlite_mirror_home(m, r->address, r->home, err) != 0) ||
            directory_sqlite_driver.credentials_set(m, r->address, login.data, err) !=
                DIRECTORY_OK ||
            (r->login != NULL &&
             directory_sqlite_driver.credentials_set(m, r->login, login.data, err) != DIRECTORY_OK))
            rc = -1;
        if (r->login != NULL)
            EVP_DigestUpdate(md, r->login, strlen(r->login) + 1);
        buf_free(&login);
    }
    for (size_t i = 0; rc == 0 && i < sy->users.n; i++) {
        const struct ldap_record *r = &sy->users.v[i];
        for (size_t k = 0; k < r->n_aliases; k++)
            add_alias(m, r->aliases[k], r->address, md);
        for (size_t k = 0; k < r->n_members; k++) { /* memberOf: the groups it is in */
            const char *group = member_address(&ix, r->members[k]);
            if (group != NULL)
                add_alias(m, group, r->address, md);
        }
    }
    for (size_t i = 0; rc == 0 && i < sy->groups.n; i++) {
        const struct ldap_record *g = &sy->groups.v[i];
        for (size_t k = 0; k < g->n_aliases; k++)
            add_alias(m, g->aliases[k], g->address, md);
        for (size_t k = 0; k < g->n_members; k++) {
            const char *target = member_address(&ix, g->members[k]);
            if (target != NULL && strcmp(target, g->address) != 0)
                add_alias(m, g->address, target, md);
        }
    }
    dn_index_free(&ix);
    unsigned len = 32;
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    return rc;
}

/* The round read everything: a new mirror, unless it is the one in place. */
static void round_done(struct ldap_sync *sy)
{
    struct directory *d = sy->d;
    struct directory m = {.cfg = d->cfg, .drv = &directory_sqlite_driver};
    struct buf err = BUF_INIT;
    char *tmp = config_data_path(d->cfg, MIRROR_NEW), *path = config_data_path(d->cfg, MIRROR);
    unlink(tmp);
    unsigned char digest[32];
    int rc = directory_sqlite_open_mirror(&m, MIRROR_NEW, true, &err);
    if (rc == 0)
        rc = mirror_fill(sy, &m, digest, &err);
    if (m.priv != NULL)
        directory_sqlite_driver.close(&m);
    bool same =
        rc == 0 && sy->have_last && memcmp(digest, sy->last, 32) == 0 && access(path, F_OK) == 0;
    if (rc == 0 && !same) {
        int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0 || rename(tmp, path) != 0) {
            buf_printf(&err, "ldap: cannot put %s in place: %s", MIRROR, strerror(errno));
            rc = -1;
        }
        if (fd >= 0)
            close(fd);
    }
    unlink(tmp);
    if (rc != 0) {
        log_error("%s", buf_cstr(&err));
    } else {
        if (sy->down || !same)
            log_info("ldap: directory %s: %zu accounts, %zu groups%s (%zu entries without an "
                     "address skipped)",
                     sy->down ? "read again, fresh" : "read", sy->users.n, sy->groups.n,
                     same ? ", unchanged" : "", sy->refused);
        memcpy(sy->last, digest, 32);
        sy->have_last = true;
        sy->down = false;
    }
    free(tmp);
    free(path);
    buf_free(&err);
}

static void round_end(struct ldap_sync *sy, const char *why)
{
    if (sy->io != NULL) {
        event_free(sy->io);
        sy->io = NULL;
    }
    if (why == NULL && !sy->failed) {
        round_done(sy);
    } else {
        if (sy->ld != NULL) {
            ldap_unbind_ext_s(sy->ld, NULL, NULL);
            sy->ld = NULL;
        }
        if (why != NULL && sy->reused) {
            /* The connection kept from the last round may have died with its
             * server: a new one now, which fails over along ldap_uris. */
            sy->msg_users = sy->msg_groups = -1;
            records_free(&sy->users);
            records_free(&sy->groups);
            cookies_free(sy);
            event_active(sy->timer, EV_TIMEOUT, 0);
            return;
        }
        if (!sy->down) {
            char *path = config_data_path(sy->d->cfg, MIRROR);
            bool have = access(path, F_OK) == 0;
            free(path);
            log_warning("ldap: no LDAP server answers (%s): %s", why ? why : "too many entries",
                        have ? "serving the directory as last read, stale, until one does"
                             : "lookups fail temporarily until one does");
        }
        sy->down = true;
    }
    sy->msg_users = sy->msg_groups = -1;
    records_free(&sy->users);
    records_free(&sy->groups);
    cookies_free(sy);
    struct timeval tv = {(time_t)(sy->d->cfg->ldap_sync_interval / 1000),
                         (suseconds_t)(sy->d->cfg->ldap_sync_interval % 1000) * 1000};
    evtimer_add(sy->timer, &tv);
}

/*
 * Starts (or goes on with: the cookie of the last page) the search of the
 * accounts or of the groups, in pages of ldap_page_size (RFC 2696: AD answers
 * at most 1000 entries otherwise, OpenLDAP its sizelimit).
 */
static int search(struct ldap_sync *sy, bool group)
{
    struct ldap_dir *l = ldir(sy->d);
    struct timeval tv = {(time_t)(sy->d->cfg->ldap_timeout / 1000), 0};
    LDAPControl *page = NULL, *ctrls[2] = {NULL, NULL};
    struct berval **cookie = group ? &sy->cookie_groups : &sy->cookie_users;
    int rc = LDAP_SUCCESS;
    if (sy->d->cfg->ldap_page_size > 0)
        rc = ldap_create_page_control(sy->ld, (ber_int_t)sy->d->cfg->ldap_page_size, *cookie, 0,
                                      &page);
    ctrls[0] = page;
    if (rc == LDAP_SUCCESS)
        rc = ldap_search_ext(sy->ld, sy->d->cfg->ldap_base_dn, LDAP_SCOPE_SUBTREE,
                             group ? l->set.group_filter : l->set.user_filter, l->set.attrs, 0,
                             ctrls, NULL, tv.tv_sec > 0 ? &tv : NULL, LDAP_NO_LIMIT,
                             group ? &sy->msg_groups : &sy->msg_users);
    if (page != NULL)
        ldap_control_free(page);
    return rc;
}

/* The cookie of the next page in a search's result, or none (the last page). */
static void take_cookie(struct ldap_sync *sy, LDAPControl **ctrls, bool group)
{
    struct berval **cookie = group ? &sy->cookie_groups : &sy->cookie_users;
    if (*cookie != NULL)
        ber_bvfree(*cookie);
    *cookie = NULL;
    LDAPControl *pc = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, NULL);
    struct berval c = {0, NULL};
    ber_int_t count = 0;
    if (pc != NULL && ldap_parse_pageresponse_control(sy->ld, pc, &count, &c) == LDAP_SUCCESS &&
        c.bv_len > 0)
        *cookie = ber_bvdup(&c);
    if (c.bv_val != NULL)
        ldap_memfree(c.bv_val);
}

/* The connection has something to read: every message it holds now. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct ldap_sync *sy = arg;
    (void)fd;
    if ((what & EV_TIMEOUT) != 0) {
        ldap_abandon_ext(sy->ld, sy->msg_users, NULL, NULL);
        round_end(sy, "a search took longer than ldap_timeout");
        return;
    }
    for (;;) {
        struct timeval zero = {0, 0};
        LDAPMessage *msg = NULL;
        int type = ldap_result(sy->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);
        if (type == 0)
            return; /* nothing more for now */
        if (type < 0) {
            int code = LDAP_OTHER;
            ldap_get_option(sy->ld, LDAP_OPT_RESULT_CODE, &code);
            char why[160];
            snprintf(why, sizeof(why), "reading a search: %s", ldap_err2string(code));
            round_end(sy, why);
            return;
        }
        int id = ldap_msgid(msg);
        bool group = id == sy->msg_groups;
        if (type == LDAP_RES_SEARCH_ENTRY) {
            take_entry(sy, msg, group);
        } else if (type == LDAP_RES_SEARCH_RESULT) {
            int code = LDAP_OTHER;
            LDAPControl **ctrls = NULL;
            ldap_parse_result(sy->ld, msg, &code, NULL, NULL, NULL, &ctrls, 0);
            if (code == LDAP_SUCCESS)
                take_cookie(sy, ctrls, group);
            ldap_controls_free(ctrls);
            bool more =
                code == LDAP_SUCCESS && (group ? sy->cookie_groups : sy->cookie_users) != NULL;
            if (group)
                sy->msg_groups = -1;
            else
                sy->msg_users = -1;
            /* The next page; after the accounts, the groups (one paged search at a
             * time per connection: OpenLDAP refuses a second one). */
            if (code == LDAP_SUCCESS && more)
                code = search(sy, group);
            else if (code == LDAP_SUCCESS && !group && ldir(sy->d)->set.group_filter != NULL)
                code = search(sy, true);
            if (code != LDAP_SUCCESS) {
                char why[160];
                snprintf(why, sizeof(why), "search: %s", ldap_err2string(code));
                ldap_msgfree(msg);
                round_end(sy, why);
                return;
            }
        }
        ldap_msgfree(msg);
        if (sy->msg_users < 0 && sy->msg_groups < 0) {
            round_end(sy, NULL);
            return;
        }
    }
}

/* Every ldap_sync_interval: (re)connect when needed and start the two searches. */
static void on_round(evutil_socket_t fd, short what, void *arg)
{
    struct ldap_sync *sy = arg;
    const struct wharf_config *cfg = sy->d->cfg;
    (void)fd;
    (void)what;
    struct buf err = BUF_INIT;
    sy->failed = false;
    sy->refused = 0;
    sy->round_started = monotonic_ms();
    sy->reused = sy->ld != NULL;
    if (sy->ld == NULL)
        sy->ld = server_connect(cfg, cfg->ldap_bind_dn[0] ? cfg->ldap_bind_dn : NULL,
                                sy->bind_password, &err);
    int rc = sy->ld == NULL ? -1 : search(sy, false); /* then the groups (on_readable) */
    int sock = -1;
    if (rc == LDAP_SUCCESS && ldap_get_option(sy->ld, LDAP_OPT_DESC, &sock) != LDAP_OPT_SUCCESS)
        rc = -1;
    if (rc != LDAP_SUCCESS) {
        if (err.len == 0)
            buf_printf(&err, "ldap: search: %s", ldap_err2string(rc == -1 ? LDAP_SERVER_DOWN : rc));
        round_end(sy, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    sy->io = event_new(sy->base, sock, EV_READ | EV_PERSIST, on_readable, sy);
    struct timeval tv = {(time_t)(cfg->ldap_timeout / 1000),
                         (suseconds_t)(cfg->ldap_timeout % 1000) * 1000};
    event_add(sy->io, &tv);
    on_readable(sock, 0, sy); /* libldap may hold replies already read */
    buf_free(&err);
}

static char *read_bind_password(const struct wharf_config *cfg, struct buf *err)
{
    if (cfg->ldap_bind_password_file[0] == '\0')
        return NULL;
    int fd = open(cfg->ldap_bind_password_file, O_RDONLY | O_CLOEXEC);
    struct buf b = BUF_INIT;
    if (fd < 0 || fd_read_all(fd, 4096, &b) != 0) {
        buf_printf(err, "ldap_bind_password_file: cannot read %s: %s", cfg->ldap_bind_password_file,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        buf_free(&b);
        return NULL;
    }
    close(fd);
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
        b.len--;
    buf_append_cstr(&b, "");
    return buf_steal(&b, NULL);
}

static int ldap_attach_loop(struct directory *d, struct event_base *base, struct buf *err)
{
    struct ldap_dir *l = ldir(d);
    struct ldap_sync *sy = xcalloc(1, sizeof(*sy));
    sy->d = d;
    sy->base = base;
    sy->msg_users = sy->msg_groups = -1;
    if (d->cfg->ldap_bind_password_file[0] != '\0' &&
        (sy->bind_password = read_bind_password(d->cfg, err)) == NULL) {
        free(sy);
        return -1;
    }
    sy->timer = evtimer_new(base, on_round, sy);
    l->sync = sy;
    event_active(sy->timer, EV_TIMEOUT, 0); /* the first round at once */
    return 0;
}

static void sync_free(struct ldap_sync *sy)
{
    if (sy == NULL)
        return;
    if (sy->io)
        event_free(sy->io);
    event_free(sy->timer);
    if (sy->ld)
        ldap_unbind_ext_s(sy->ld, NULL, NULL);
    records_free(&sy->users);
    records_free(&sy->groups);
    cookies_free(sy);
    if (sy->bind_password) {
        explicit_bzero(sy->bind_password, strlen(sy->bind_password));
        free(sy->bind_password);
    }
    free(sy);
}

/* ---- the driver's ops ---- */

static int ldap_open(struct directory *d, struct buf *err)
{
    struct ldap_dir *l = xcalloc(1, sizeof(*l));
    d->priv = l;
    pthread_mutex_init(&l->pool_lock, NULL);
    return settings_init(&l->set, d->cfg, err);
}

static int ldap_attach_credentials(struct directory *d, struct buf *err)
{
    (void)d;
    (void)err;
    return 0; /* no hashes: passwords are checked by bind */
}

static void ldap_close(struct directory *d)
{
    struct ldap_dir *l = ldir(d);
    if (l == NULL)
        return;
    sync_free(l->sync);
    mirror_close(l);
    while (l->n_idle > 0)
        ldap_unbind_ext_s(l->idle[--l->n_idle], NULL, NULL);
    pthread_mutex_destroy(&l->pool_lock);
    settings_free(&l->set);
    free(l);
    d->priv = NULL;
}

/* ---- the auth process's pool of bind connections ---- */

static LDAP *pool_take(struct ldap_dir *l)
{
    pthread_mutex_lock(&l->pool_lock);
    LDAP *ld = l->n_idle > 0 ? l->idle[--l->n_idle] : NULL;
    pthread_mutex_unlock(&l->pool_lock);
    return ld;
}

static void pool_put(struct ldap_dir *l, LDAP *ld)
{
    pthread_mutex_lock(&l->pool_lock);
    if (l->n_idle < LDAP_BIND_POOL) {
        l->idle[l->n_idle++] = ld;
        ld = NULL;
    }
    pthread_mutex_unlock(&l->pool_lock);
    if (ld != NULL)
        ldap_unbind_ext_s(ld, NULL, NULL);
}

/*
 * From the auth process's crypt threads: binds as dn on a connection of the
 * pool (each one rebinds as the next user), else a new one. A pooled
 * connection that fails otherwise than on the password may be one the server
 * closed: one more try on a new connection, which fails over along ldap_uris.
 */
static int ldap_verify(struct directory *d, const char *dn, const char *password, struct buf *err)
{
    struct ldap_dir *l = ldir(d);
    struct buf nobody = BUF_INIT;
    if (dn[0] == '\0') { /* an unknown user: the bind of a DN that is not in the tree */
        buf_printf(&nobody, "cn=wharf-no-such-user%s%s", d->cfg->ldap_base_dn[0] ? "," : "",
                   d->cfg->ldap_base_dn);
        dn = nobody.data;
    }
    int r = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        LDAP *ld = attempt == 0 ? pool_take(l) : NULL;
        bool pooled = ld != NULL, bad = false;
        if (ld == NULL && (ld = server_open(d->cfg, err)) == NULL)
            break;
        buf_reset(err);
        if (server_bind(ld, dn, password, &bad, err) == 0 || bad) {
            pool_put(l, ld);
            r = bad ? 0 : 1;
            break;
        }
        ldap_unbind_ext_s(ld, NULL, NULL);
        if (!pooled)
            break;
    }
    buf_free(&nobody);
    return r;
}

/* The lookups: the SQLite driver's, on the mirror as it is now. */
#define M(d) (&ldir(d)->mirror)

static int ldap_domain_exists(struct directory *d, const char *domain, struct buf *err)
{
    return mirror_fresh(d, err) ? -1 : directory_sqlite_driver.domain_exists(M(d), domain, err);
}

static int ldap_account_get(struct directory *d, const char *account, uint64_t *bytes_r,
                            uint64_t *messages_r, struct buf *home_r, struct buf *err)
{
    return mirror_fresh(d, err) ? -1
                                : directory_sqlite_driver.account_get(M(d), account, bytes_r,
                                                                      messages_r, home_r, err);
}

static int ldap_alias_targets(struct directory *d, const char *address, char ***v, size_t *n_r,
                              struct buf *err)
{
    return mirror_fresh(d, err) ? -1
                                : directory_sqlite_driver.alias_targets(M(d), address, v, n_r, err);
}

static int ldap_first_account(struct directory *d, struct buf *out, struct buf *err)
{
    return mirror_fresh(d, err) ? -1 : directory_sqlite_driver.first_account(M(d), out, err);
}

static enum directory_status ldap_domain_list(struct directory *d,
                                              void (*fn)(void *arg, const char *domain), void *arg,
                                              struct buf *err)
{
    return mirror_fresh(d, err) ? DIRECTORY_ERR_DB
                                : directory_sqlite_driver.domain_list(M(d), fn, arg, err);
}

static enum directory_status ldap_account_list(struct directory *d, const char *domain,
                                               void (*fn)(void *arg,
                                                          const struct directory_account *a),
                                               void *arg, struct buf *err)
{
    return mirror_fresh(d, err) ? DIRECTORY_ERR_DB
                                : directory_sqlite_driver.account_list(M(d), domain, fn, arg, err);
}

static enum directory_status ldap_alias_list(struct directory *d, const char *domain,
                                             void (*fn)(void *arg, const char *address,
                                                        const char *target),
                                             void *arg, struct buf *err)
{
    return mirror_fresh(d, err) ? DIRECTORY_ERR_DB
                                : directory_sqlite_driver.alias_list(M(d), domain, fn, arg, err);
}

static int ldap_domain_usage(struct directory *d, const char *domain, long long *accounts_r,
                             long long *aliases_r, struct buf *err)
{
    return mirror_fresh(d, err)
               ? -1
               : directory_sqlite_driver.domain_usage(M(d), domain, accounts_r, aliases_r, err);
}

/* The account a login name stands for and its DN (directory_login_dn), in hash_r. */
static enum directory_status ldap_credentials_get(struct directory *d, const char *login,
                                                  struct buf *account_r, struct buf *hash_r,
                                                  struct buf *err)
{
    struct buf row = BUF_INIT;
    enum directory_status s =
        mirror_fresh(d, err)
            ? DIRECTORY_ERR_DB
            : directory_sqlite_driver.credentials_get(M(d), login, account_r, &row, err);
    const char *nl = s == DIRECTORY_OK ? strchr(buf_cstr(&row), '\n') : NULL;
    if (nl != NULL) {
        buf_reset(account_r);
        buf_append(account_r, row.data, (size_t)(nl - row.data));
        buf_reset(hash_r);
        buf_append_cstr(hash_r, nl + 1);
    } else if (s == DIRECTORY_OK) {
        s = DIRECTORY_ERR_NOT_FOUND;
    }
    buf_free(&row);
    return s;
}

const struct directory_driver directory_ldap_driver = {
    .name = "ldap",
    .open = ldap_open,
    .open_credentials = ldap_open,
    .attach_credentials = ldap_attach_credentials,
    .close = ldap_close,
    .domain_exists = ldap_domain_exists,
    .account_get = ldap_account_get,
    .alias_targets = ldap_alias_targets,
    .first_account = ldap_first_account,
    .domain_list = ldap_domain_list,
    .account_list = ldap_account_list,
    .alias_list = ldap_alias_list,
    .domain_usage = ldap_domain_usage,
    .credentials_get = ldap_credentials_get,
    .attach_loop = ldap_attach_loop,
    .verify = ldap_verify,
};
