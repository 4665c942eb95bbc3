/*
 * directory_ldap.c - the LDAP directory driver ("ldap", the directory_driver
 * table of directory_driver.h): accounts, their addresses, quotas and home
 * servers, and distribution groups read from an LDAP tree (OpenLDAP's
 * inetOrgPerson or Active Directory, options ldap_* in options.def).
 *
 * How it works (doc/directory.md):
 *   - The directory process (directory_attach_loop) keeps the tree in memory
 *     (struct ents: each entry mapped by ldap_map_entry, ldap_map.c) and
 *     follows its changes, on one connection whose fd libevent watches; every
 *     request is asynchronous (ldap_search_ext, its msgid; replies read with a
 *     zero timeout when the fd is readable), only the connection itself
 *     (connect, StartTLS, bind) is made with ldap_timeout as its bound.
 *   - With syncrepl (RFC 4533, ldap_sync_mode auto where the root DSE lists
 *     the control, or syncrepl): one refreshAndPersist search per filter
 *     (accounts, groups), entries keyed by entryUUID. The refresh gives the
 *     tree (or, with the cookie of the last connection, what changed since);
 *     then the server sends each add, modify and delete as it happens. The
 *     values are decoded by ldap_syncmsg.c.
 *   - Polling (ldap_sync_mode poll, or auto without the control): every
 *     ldap_sync_interval the entries whose modifyTimestamp (ad: whenChanged)
 *     is at least the newest seen, then a listing of the DNs alone (attribute
 *     1.1) for deletions; the whole tree the first time, after a failure,
 *     when the listing names an entry never read, and every 60th round.
 *     Entries keyed by DN; searches paged (ldap_page_size).
 *   - The tree in memory is written as a new SQLite mirror,
 *     DATA/directory/ldap.db (the SQLite driver's schema; each account's DN
 *     where that driver keeps hashes), renamed into place when it differs
 *     from the last one: after a refresh or a polling round, and 100 ms after
 *     the first of a burst of syncrepl changes (one write per burst). Every
 *     lookup of every process (the directory process, the mta, the wharf
 *     command) reads the mirror through the SQLite driver's ops, reopened
 *     when the file changes: nobody but the directory process talks to the
 *     LDAP servers to look things up, and a lookup never waits on the network.
 *   - When no server answers, the last mirror stays: mail keeps flowing with
 *     the tree as it was, and one log line says it is served stale (one more
 *     when a server answers again). Before the first successful read there
 *     is no mirror and lookups fail temporarily (4xx), never 5.1.1.
 *   - Passwords (ldap_password_check): bind, the auth process binds as the
 *     account's DN (verify, from its crypt threads, on a small pool of
 *     connections that rebind); or hash, the directory process reads the
 *     account's ldap_password_attribute with the search account
 *     (read_password, from a thread of its own, on the same kind of pool,
 *     bound as the search account) when the auth process asks for it, and
 *     the auth process checks it (auth/password.h). The value never enters
 *     the tree in memory nor the mirror: only those two processes see it.
 *
 * It must never: write to the tree, log a password, block a network worker
 * (they ask the directory process), or let a refresh that failed half-way
 * replace a good mirror. It is the only file that names a libldap type.
 */
#include "directory/directory_driver.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/fdio.h"
#include "base/strmap.h"
#include "base/log.h"
#include "directory/ldap_map.h"
#include "directory/ldap_syncmsg.h"

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
/* Most entries the tree may hold: a bound on the directory process's memory. */
#define LDAP_MAX_ENTRIES 1000000
/* Polling: every this many rounds, the whole tree (what a timestamp may miss). */
#define LDAP_FULL_EVERY 60
/* Syncrepl: how long a burst of changes gathers before the mirror is written. */
#define LDAP_FLUSH_MS 100
/* First wait before reconnecting; doubles up to ldap_sync_interval. */
#define LDAP_RETRY_MS 1000

enum sync_mode { MODE_AUTO, MODE_SYNCREPL, MODE_POLL };

/* The option values after the profile (ldap_profile) filled the empty ones. */
struct ldap_settings {
    const char *user_filter, *group_filter;
    const char *const *aliases;
    size_t n_aliases;
    struct ldap_map_names names;
    const char *timestamp; /* polling: modifyTimestamp, or AD's whenChanged */
    enum sync_mode mode;
    char **attrs; /* every attribute asked for, NULL-terminated */
};

/* One entry of the tree as last read, by entryUUID (syncrepl) or DN (polling). */
struct ent {
    char *key; /* 'u' (accounts' search) or 'g' (groups'), then the UUID in hex or the DN */
    bool group, ok, seen;
    struct ldap_record r; /* ok: mapped; else an entry without an address, kept as known */
};

struct ents {
    struct strmap map; /* key -> struct ent (base/strmap.h) */
};

enum sync_phase { PH_IDLE, PH_ROOTDSE, PH_POLL, PH_SYNC };

/* Following the tree: only in the directory process. */
struct ldap_sync {
    struct directory *d;
    struct event_base *base;
    LDAP *ld;
    struct event *io, *timer, *flush;
    enum sync_phase phase;
    int msg[2];             /* the searches running: accounts [0], groups [1]; -1: none */
    int msg_rootdse;        /* -1: none */
    bool failed;            /* this round failed: the mirror is left as it is */
    struct ents state;      /* the tree: what the mirror is written from */
    bool down;              /* the last round failed (logged once) */
    bool refused;           /* this round failed at the search account's bind: wrong credentials */
    bool reused;            /* this round runs on a connection that already served */
    char *bind_password;    /* from ldap_bind_password_file, read as root */
    unsigned char last[32]; /* digest of the mirror written last */
    bool have_last;
    unsigned retry_ms;
    /* polling */
    int step;  /* 0, 1: the entries of accounts, groups; 2, 3: their DNs */
    bool full; /* this round reads the whole tree */
    bool need_full;
    unsigned rounds;
    struct ents fresh;  /* this round's entries: the tree (full) or those changed */
    struct ents listed; /* this round's DN listing (not full) */
    struct berval *page_cookie;
    char last_ts[64], round_ts[64]; /* newest timestamp seen: before, during the round */
    /* syncrepl */
    struct buf cookie[2];
    bool have_cookie[2];
    bool refreshing[2];     /* the search's refresh is not over */
    bool refreshed;         /* both were over once on this connection */
    bool offered;           /* the root DSE lists the control */
    bool resumed;           /* this connection's refresh started from cookies */
    size_t refresh_entries; /* entries (added or changed) the refresh sent */
};

/* Idle connections: the auth process's bind connections (one per crypt thread is
 * plenty), or the directory process's for reading password values (read_password). */
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
    bool ad = strcmp(cfg->ldap_profile, "ad") == 0,
         hash = strcmp(cfg->ldap_password_check, "hash") == 0;
    if (!ad && strcmp(cfg->ldap_profile, "openldap") != 0) {
        buf_printf(err, "ldap_profile: unknown profile '%s' (known: openldap, ad)",
                   cfg->ldap_profile);
        return -1;
    }
    if (!hash && strcmp(cfg->ldap_password_check, "bind") != 0) {
        buf_printf(err, "ldap_password_check: unknown value '%s' (known: bind, hash)",
                   cfg->ldap_password_check);
        return -1;
    }
    if (hash && ad) {
        buf_printf(err, "ldap_password_check = hash cannot work with ldap_profile = ad: Active "
                        "Directory never lets an account read password hashes (unicodePwd); "
                        "use ldap_password_check = bind");
        return -1;
    }
    if (hash && cfg->ldap_password_attribute[0] == '\0') {
        buf_printf(err, "ldap_password_attribute is empty (ldap_password_check = hash)");
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
    s->timestamp = ad ? "whenChanged" : "modifyTimestamp";
    if (strcmp(cfg->ldap_sync_mode, "auto") == 0) {
        s->mode = MODE_AUTO;
    } else if (strcmp(cfg->ldap_sync_mode, "syncrepl") == 0) {
        s->mode = MODE_SYNCREPL;
    } else if (strcmp(cfg->ldap_sync_mode, "poll") == 0) {
        s->mode = MODE_POLL;
    } else {
        buf_printf(err, "ldap_sync_mode: unknown mode '%s' (known: auto, syncrepl, poll)",
                   cfg->ldap_sync_mode);
        return -1;
    }
    const char *one[] = {s->names.mail,  s->names.quota_bytes, s->names.quota_messages,
                         s->names.home,  s->names.member,      s->names.member_of,
                         s->names.login, s->timestamp};
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
    /* A server gone without a word (a cut cable) ends a quiet persistent
     * search too: TCP keepalives after a minute, 3 probes 10 s apart. */
    int idle = 60, probes = 3, probe_interval = 10;
    ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_IDLE, &idle);
    ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_PROBES, &probes);
    ldap_set_option(ld, LDAP_OPT_X_KEEPALIVE_INTERVAL, &probe_interval);
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

/* server_open and server_bind: the search connection of the directory process.
 * *refused_r (may be NULL): the server answered, and refused dn's credentials. */
static LDAP *server_connect(const struct wharf_config *cfg, const char *dn, const char *password,
                            bool *refused_r, struct buf *err)
{
    bool bad = false;
    LDAP *ld = server_open(cfg, err);
    if (ld != NULL && server_bind(ld, dn, password, &bad, err) != 0) {
        ldap_unbind_ext_s(ld, NULL, NULL);
        ld = NULL;
    }
    if (refused_r != NULL)
        *refused_r = ld == NULL && bad;
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

static void ent_free(struct ent *e)
{
    free(e->key);
    ldap_record_free(&e->r);
    free(e);
}

static struct ent *ents_get(const struct ents *t, const char *key)
{
    struct strmap_slot *s = strmap_find(&t->map, key);
    return s ? s->val.ptr : NULL;
}

/* Puts e in t, in place of the entry of the same key. */
static void ents_put(struct ents *t, struct ent *e)
{
    bool added;
    struct strmap_slot *s = strmap_add(&t->map, e->key, &added);
    if (!added)
        ent_free(s->val.ptr);
    s->key = e->key; /* the same text: the old entry's is freed */
    s->val.ptr = e;
}

static bool ents_del(struct ents *t, const char *key)
{
    struct strmap_slot out;
    if (!strmap_del(&t->map, key, &out))
        return false;
    ent_free(out.val.ptr);
    return true;
}

/* Empties t; free_ents: the entries too (else they have moved elsewhere). */
static void ents_empty(struct ents *t, bool free_ents)
{
    for (struct strmap_slot *s = NULL; free_ents && (s = strmap_next(&t->map, s)) != NULL;)
        ent_free(s->val.ptr);
    strmap_free(&t->map);
}

static void ents_clear(struct ents *t)
{
    ents_empty(t, true);
}

#define ENTS_EACH(t, e)                                                                            \
    for (struct strmap_slot *e##_s = NULL; (e##_s = strmap_next(&(t)->map, e##_s)) != NULL;)       \
        for (struct ent *e = e##_s->val.ptr; e != NULL; e = NULL)

/* Removes the entries of one search (group) that fail keep(); their number. */
static size_t ents_sweep(struct ents *t, bool group, bool (*keep)(struct ent *, void *), void *arg)
{
    struct ent **gone = xcalloc(t->map.n + 1, sizeof(*gone));
    size_t n = 0;
    ENTS_EACH(t, e)
    {
        if (e->group == group && !keep(e, arg))
            gone[n++] = e; /* removed after the walk: a delete moves slots */
    }
    for (size_t i = 0; i < n; i++)
        ents_del(t, gone[i]->key);
    free(gone);
    return n;
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

/* The key of an entry: the search it came from, and its UUID or its DN. */
static char *ent_key(bool group, const unsigned char *uuid, const char *dn)
{
    struct buf b = BUF_INIT;
    buf_append_byte(&b, group ? 'g' : 'u');
    if (uuid != NULL) {
        for (size_t i = 0; i < LSYNC_UUID_LEN; i++)
            buf_printf(&b, "%02x", uuid[i]);
    } else {
        char *k = dn_key(dn);
        buf_append_cstr(&b, k);
        free(k);
    }
    return buf_steal(&b, NULL);
}

/* A timestamp as a filter may hold it: GeneralizedTime's characters only. */
static bool timestamp_ok(const char *v, size_t n)
{
    if (n == 0 || n >= sizeof(((struct ldap_sync *)0)->last_ts))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789.,Z+-", v[i]))
            return false;
    }
    return true;
}

/* One entry of a search result mapped (key: its UUID when not NULL, else its DN). */
static struct ent *take_entry(struct ldap_sync *sy, LDAPMessage *msg, bool group,
                              const unsigned char *uuid)
{
    struct ldap_dir *l = ldir(sy->d);
    char *dn = ldap_get_dn(sy->ld, msg);
    struct ldap_map_attr attrs[64];
    size_t n = 0;
    BerElement *ber = NULL;
    for (char *a = ldap_first_attribute(sy->ld, msg, &ber); a != NULL;
         a = ldap_next_attribute(sy->ld, msg, ber)) {
        struct berval **bv = ldap_get_values_len(sy->ld, msg, a);
        size_t nv = bv ? (size_t)ldap_count_values_len(bv) : 0;
        if (strcasecmp(a, l->set.timestamp) == 0 && nv > 0 &&
            timestamp_ok(bv[0]->bv_val, bv[0]->bv_len) &&
            (sy->round_ts[0] == '\0' || strlen(sy->round_ts) < bv[0]->bv_len ||
             (strlen(sy->round_ts) == bv[0]->bv_len &&
              memcmp(sy->round_ts, bv[0]->bv_val, bv[0]->bv_len) < 0))) {
            memcpy(sy->round_ts, bv[0]->bv_val, bv[0]->bv_len);
            sy->round_ts[bv[0]->bv_len] = '\0';
        }
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
    struct ent *e = xcalloc(1, sizeof(*e));
    e->key = ent_key(group, uuid, dn ? dn : "");
    e->group = group;
    e->seen = true;
    struct ldap_map_entry me = {dn, attrs, n};
    struct buf err = BUF_INIT;
    e->ok = ldap_map_entry(&l->set.names, &me, group, &e->r, &err) == 0;
    if (!e->ok)
        log_debug("ldap: entry skipped: %s", buf_cstr(&err));
    buf_free(&err);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < attrs[i].n_values; k++)
            free((char *)attrs[i].values[k]);
        free((void *)attrs[i].values);
        free((char *)attrs[i].name);
    }
    ldap_memfree(dn);
    return e;
}

/* Every entry of the tree by DN (dn_key), sorted: members are found by bsearch. */
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

static void dn_index_build(struct dn_index *ix, const struct ents *t)
{
    ix->n = 0;
    ix->v = xcalloc(t->map.n + 1, sizeof(*ix->v));
    ENTS_EACH(t, e)
    {
        if (e->ok)
            ix->v[ix->n++] = (struct dn_entry){dn_key(e->r.dn), e->r.address};
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

static int record_cmp(const void *a, const void *b)
{
    const struct ldap_record *x = *(const struct ldap_record *const *)a;
    const struct ldap_record *y = *(const struct ldap_record *const *)b;
    return strcmp(x->dn, y->dn);
}

/* The mapped entries of one search, by DN: the mirror is the same for the same tree. */
static const struct ldap_record **records_of(const struct ents *t, bool group, size_t *n_r)
{
    const struct ldap_record **v = xcalloc(t->map.n + 1, sizeof(*v));
    size_t n = 0;
    ENTS_EACH(t, e)
    {
        if (e->ok && e->group == group)
            v[n++] = &e->r;
    }
    qsort(v, n, sizeof(*v), record_cmp);
    *n_r = n;
    return v;
}

/* Writes the tree into m (a new, empty mirror); its digest into out. */
static int mirror_fill(struct ldap_sync *sy, struct directory *m, size_t *accounts_r,
                       size_t *groups_r, unsigned char out[32], struct buf *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    int rc = 0; /* no journal, no sync: the file is synced once, before its rename */
    struct dn_index ix;
    dn_index_build(&ix, &sy->state);
    size_t n_users, n_groups;
    const struct ldap_record **users = records_of(&sy->state, false, &n_users);
    const struct ldap_record **groups = records_of(&sy->state, true, &n_groups);
    for (size_t i = 0; rc == 0 && i < n_users; i++) {
        const struct ldap_record *r = users[i];
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
    for (size_t i = 0; rc == 0 && i < n_users; i++) {
        const struct ldap_record *r = users[i];
        for (size_t k = 0; k < r->n_aliases; k++)
            add_alias(m, r->aliases[k], r->address, md);
        for (size_t k = 0; k < r->n_members; k++) { /* memberOf: the groups it is in */
            const char *group = member_address(&ix, r->members[k]);
            if (group != NULL)
                add_alias(m, group, r->address, md);
        }
    }
    for (size_t i = 0; rc == 0 && i < n_groups; i++) {
        const struct ldap_record *g = groups[i];
        for (size_t k = 0; k < g->n_aliases; k++)
            add_alias(m, g->aliases[k], g->address, md);
        for (size_t k = 0; k < g->n_members; k++) {
            const char *target = member_address(&ix, g->members[k]);
            if (target != NULL && strcmp(target, g->address) != 0)
                add_alias(m, g->address, target, md);
        }
    }
    dn_index_free(&ix);
    free(users);
    free(groups);
    *accounts_r = n_users;
    *groups_r = n_groups;
    unsigned len = 32;
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    return rc;
}

/* Writes the tree as the new mirror, unless it is the one in place (verb: for the log). */
static void mirror_write(struct ldap_sync *sy, const char *verb)
{
    struct directory *d = sy->d;
    struct directory m = {.cfg = d->cfg, .drv = &directory_sqlite_driver};
    struct buf err = BUF_INIT;
    char *tmp = config_data_path(d->cfg, MIRROR_NEW), *path = config_data_path(d->cfg, MIRROR);
    unlink(tmp);
    unsigned char digest[32];
    size_t accounts = 0, groups = 0;
    int rc = directory_sqlite_open_mirror(&m, MIRROR_NEW, true, &err);
    if (rc == 0)
        rc = mirror_fill(sy, &m, &accounts, &groups, digest, &err);
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
                     sy->down ? "read again, fresh" : verb, accounts, groups,
                     same ? ", unchanged" : "", sy->state.map.n - accounts - groups);
        memcpy(sy->last, digest, 32);
        sy->have_last = true;
        sy->down = false;
    }
    free(tmp);
    free(path);
    buf_free(&err);
}

static void schedule(struct ldap_sync *sy, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(sy->timer, &tv);
}

/* The connection and what ran on it are gone; the tree in memory stays. */
static void conn_drop(struct ldap_sync *sy)
{
    if (sy->io != NULL) {
        event_free(sy->io);
        sy->io = NULL;
    }
    if (sy->ld != NULL) {
        ldap_unbind_ext_s(sy->ld, NULL, NULL);
        sy->ld = NULL;
    }
    sy->msg[0] = sy->msg[1] = sy->msg_rootdse = -1;
    sy->phase = PH_IDLE;
    sy->refreshed = false;
    if (sy->page_cookie != NULL)
        ber_bvfree(sy->page_cookie);
    sy->page_cookie = NULL;
    ents_clear(&sy->fresh);
    ents_clear(&sy->listed);
}

static bool in_listed(struct ent *e, void *arg)
{
    return ents_get(arg, e->key) != NULL;
}

/* A polling round read everything it asked for: into the tree. */
static void poll_apply(struct ldap_sync *sy)
{
    if (sy->full) {
        ents_clear(&sy->state);
        sy->state = sy->fresh;
        memset(&sy->fresh, 0, sizeof(sy->fresh));
    } else {
        ENTS_EACH(&sy->fresh, e)
        ents_put(&sy->state, e);
        ents_empty(&sy->fresh, false); /* its entries are the tree's now */
        /* Deleted, or out of the filter: not listed any more. */
        ents_sweep(&sy->state, false, in_listed, &sy->listed);
        ents_sweep(&sy->state, true, in_listed, &sy->listed);
        ENTS_EACH(&sy->listed, e)
        {
            if (ents_get(&sy->state, e->key) == NULL)
                sy->need_full = true; /* an entry whose timestamp was older than ours */
        }
    }
    ents_clear(&sy->listed);
    if (strlen(sy->round_ts) > strlen(sy->last_ts) ||
        (strlen(sy->round_ts) == strlen(sy->last_ts) && strcmp(sy->round_ts, sy->last_ts) > 0))
        memcpy(sy->last_ts, sy->round_ts, sizeof(sy->last_ts));
    if (sy->last_ts[0] == '\0')
        sy->need_full = true; /* no timestamps from this server: only whole reads work */
    /* The tree no longer is what a syncrepl cookie stands for. */
    sy->have_cookie[0] = sy->have_cookie[1] = false;
}

/*
 * The end of a polling round (why NULL: it read everything) or of the
 * connection (why: what failed). A failure leaves the mirror as it is.
 */
static void round_end(struct ldap_sync *sy, const char *why)
{
    int64_t interval = sy->d->cfg->ldap_sync_interval;
    if (why == NULL) {
        poll_apply(sy);
        mirror_write(sy, "read");
        sy->retry_ms = 0;
        sy->phase = PH_IDLE;
        sy->rounds++;
        if (sy->io != NULL) { /* the connection stays for the next round */
            event_free(sy->io);
            sy->io = NULL;
        }
        schedule(sy, interval);
        return;
    }
    bool reused = sy->reused;
    conn_drop(sy);
    sy->need_full = true; /* another server may come next: its timestamps are its own */
    if (reused) {
        /* The connection that served before may have died with its server: a
         * new one now, which fails over along ldap_uris. */
        log_debug("ldap: reconnecting (%s)", why);
        sy->reused = false;
        event_active(sy->timer, EV_TIMEOUT, 0);
        return;
    }
    if (!sy->down) {
        char *path = config_data_path(sy->d->cfg, MIRROR);
        bool have = access(path, F_OK) == 0;
        free(path);
        const char *then = have ? "serving the directory as last read, stale, until one does"
                                : "lookups fail temporarily until one does";
        if (sy->refused) /* not an outage: the admin's to fix */
            log_warning("ldap: the LDAP server refuses the search account (%s; check "
                        "ldap_bind_dn and ldap_bind_password_file): %s",
                        why, then);
        else
            log_warning("ldap: no LDAP server answers (%s): %s", why, then);
    }
    sy->refused = false;
    sy->down = true;
    sy->retry_ms = sy->retry_ms == 0 ? LDAP_RETRY_MS : sy->retry_ms * 2;
    if ((int64_t)sy->retry_ms > interval)
        sy->retry_ms = (unsigned)interval;
    schedule(sy, sy->retry_ms);
}

/* ---- polling ---- */

/* The filter of a search, with the timestamp condition of a round that is not full. */
static char *poll_filter(struct ldap_sync *sy, const char *filter, bool changed)
{
    struct buf b = BUF_INIT;
    bool paren = filter[0] == '(';
    if (changed)
        buf_printf(&b, "(&%s%s%s(%s>=%s))", paren ? "" : "(", filter, paren ? "" : ")",
                   ldir(sy->d)->set.timestamp, sy->last_ts);
    else
        buf_append_cstr(&b, filter);
    return buf_steal(&b, NULL);
}

/*
 * Starts (or goes on with: the cookie of the last page) the search of this
 * step of the round, in pages of ldap_page_size (RFC 2696: AD answers at
 * most 1000 entries otherwise, OpenLDAP its sizelimit). One at a time:
 * OpenLDAP refuses a second paged search on a connection.
 */
static int poll_search(struct ldap_sync *sy)
{
    struct ldap_dir *l = ldir(sy->d);
    bool group = sy->step % 2 == 1, listing = sy->step >= 2;
    struct timeval tv = {(time_t)(sy->d->cfg->ldap_timeout / 1000), 0};
    LDAPControl *page = NULL, *ctrls[2] = {NULL, NULL};
    static char one_one[] = "1.1"; /* no attribute: the DNs alone */
    char *no_attrs[] = {one_one, NULL};
    int rc = LDAP_SUCCESS;
    if (sy->d->cfg->ldap_page_size > 0)
        rc = ldap_create_page_control(sy->ld, (ber_int_t)sy->d->cfg->ldap_page_size,
                                      sy->page_cookie, 0, &page);
    ctrls[0] = page;
    char *filter =
        poll_filter(sy, group ? l->set.group_filter : l->set.user_filter, !sy->full && !listing);
    if (rc == LDAP_SUCCESS)
        rc = ldap_search_ext(sy->ld, sy->d->cfg->ldap_base_dn, LDAP_SCOPE_SUBTREE, filter,
                             listing ? no_attrs : l->set.attrs, 0, ctrls, NULL,
                             tv.tv_sec > 0 ? &tv : NULL, LDAP_NO_LIMIT, &sy->msg[group]);
    free(filter);
    if (page != NULL)
        ldap_control_free(page);
    return rc;
}

/* The next step of the round that applies (a full round lists nothing; no
 * group filter, no group searches). false: the round is over. */
static bool poll_next_step(struct ldap_sync *sy)
{
    for (sy->step++; sy->step < 4; sy->step++) {
        if (sy->step % 2 == 1 && ldir(sy->d)->set.group_filter == NULL)
            continue;
        if (sy->step >= 2 && sy->full)
            continue;
        return true;
    }
    return false;
}

static void poll_start(struct ldap_sync *sy)
{
    sy->phase = PH_POLL;
    sy->full = sy->need_full || sy->last_ts[0] == '\0' || sy->rounds % LDAP_FULL_EVERY == 0;
    sy->need_full = false;
    sy->step = 0;
    memcpy(sy->round_ts, sy->last_ts, sizeof(sy->round_ts));
    ents_clear(&sy->fresh);
    ents_clear(&sy->listed);
    int rc = poll_search(sy);
    if (rc != LDAP_SUCCESS) {
        char why[160];
        snprintf(why, sizeof(why), "search: %s", ldap_err2string(rc));
        round_end(sy, why);
    }
}

/* The cookie of the next page in a search's result, or none (the last page). */
static void take_page_cookie(struct ldap_sync *sy, LDAPControl **ctrls)
{
    if (sy->page_cookie != NULL)
        ber_bvfree(sy->page_cookie);
    sy->page_cookie = NULL;
    LDAPControl *pc = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, NULL);
    struct berval c = {0, NULL};
    ber_int_t count = 0;
    if (pc != NULL && ldap_parse_pageresponse_control(sy->ld, pc, &count, &c) == LDAP_SUCCESS &&
        c.bv_len > 0)
        sy->page_cookie = ber_bvdup(&c);
    if (c.bv_val != NULL)
        ldap_memfree(c.bv_val);
}

/* One message of a polling round. 0, or -1 when round_end was called. */
static int poll_message(struct ldap_sync *sy, int type, LDAPMessage *msg)
{
    if (type == LDAP_RES_SEARCH_ENTRY) {
        struct ents *t = sy->step >= 2 ? &sy->listed : &sy->fresh;
        if (t->map.n >= LDAP_MAX_ENTRIES) {
            round_end(sy, "too many entries");
            return -1;
        }
        struct ent *e;
        if (sy->step >= 2) {
            char *dn = ldap_get_dn(sy->ld, msg);
            e = xcalloc(1, sizeof(*e));
            e->key = ent_key(sy->step == 3, NULL, dn ? dn : "");
            e->group = sy->step == 3;
            ldap_memfree(dn);
        } else {
            e = take_entry(sy, msg, sy->step == 1, NULL);
        }
        ents_put(t, e);
        return 0;
    }
    if (type != LDAP_RES_SEARCH_RESULT)
        return 0; /* referrals, intermediate responses: not followed */
    int code = LDAP_OTHER;
    LDAPControl **ctrls = NULL;
    ldap_parse_result(sy->ld, msg, &code, NULL, NULL, NULL, &ctrls, 0);
    if (code == LDAP_SUCCESS)
        take_page_cookie(sy, ctrls);
    ldap_controls_free(ctrls);
    sy->msg[0] = sy->msg[1] = -1;
    if (code == LDAP_SUCCESS && sy->page_cookie == NULL && !poll_next_step(sy)) {
        round_end(sy, NULL);
        return -1;
    }
    if (code == LDAP_SUCCESS)
        code = poll_search(sy); /* the next page, or the next step */
    if (code != LDAP_SUCCESS) {
        char why[160];
        snprintf(why, sizeof(why), "search: %s", ldap_err2string(code));
        round_end(sy, why);
        return -1;
    }
    return 0;
}

/* ---- syncrepl (RFC 4533) ---- */

static void cookie_take(struct ldap_sync *sy, int g, struct lsync_bytes c)
{
    if (c.p == NULL)
        return;
    buf_reset(&sy->cookie[g]);
    buf_append(&sy->cookie[g], c.p, c.n);
    sy->have_cookie[g] = true;
}

static bool keep_none(struct ent *e, void *arg)
{
    (void)e;
    (void)arg;
    return false;
}

static bool keep_seen(struct ent *e, void *arg)
{
    (void)arg;
    return e->seen;
}

/* Starts the refreshAndPersist search of accounts (g 0) or groups (g 1). */
static int sync_search(struct ldap_sync *sy, int g)
{
    struct ldap_dir *l = ldir(sy->d);
    struct buf v = BUF_INIT;
    if (sy->have_cookie[g]) {
        ENTS_EACH(&sy->state, e)
        {
            if (e->group == (g == 1))
                e->seen = false; /* a present phase names what is still there */
        }
        lsync_request(&v, 3, sy->cookie[g].data, sy->cookie[g].len);
    } else {
        /* The refresh sends it all: what is here (DN-keyed from polling, or an
         * older tree) goes; the mirror stays as it is until the refresh ends. */
        ents_sweep(&sy->state, g == 1, keep_none, NULL);
        lsync_request(&v, 3, NULL, 0);
    }
    struct berval bv = {v.len, v.data};
    LDAPControl *c = NULL;
    int rc = ldap_control_create(LSYNC_OID_REQUEST, 1, &bv, 1, &c);
    LDAPControl *ctrls[] = {c, NULL};
    if (rc == LDAP_SUCCESS)
        rc = ldap_search_ext(sy->ld, sy->d->cfg->ldap_base_dn, LDAP_SCOPE_SUBTREE,
                             g ? l->set.group_filter : l->set.user_filter, l->set.attrs, 0, ctrls,
                             NULL, NULL, LDAP_NO_LIMIT, &sy->msg[g]);
    if (c != NULL)
        ldap_control_free(c);
    buf_free(&v);
    sy->refreshing[g] = rc == LDAP_SUCCESS;
    return rc;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mirror_write(arg, "updated");
}

static void on_readable(evutil_socket_t fd, short what, void *arg);

static void sync_start(struct ldap_sync *sy)
{
    sy->phase = PH_SYNC;
    sy->refreshing[0] = sy->refreshing[1] = false;
    sy->resumed = sy->have_cookie[0];
    sy->refresh_entries = 0;
    int rc = sync_search(sy, 0);
    if (rc == LDAP_SUCCESS && ldir(sy->d)->set.group_filter != NULL)
        rc = sync_search(sy, 1);
    if (rc != LDAP_SUCCESS) {
        char why[160];
        snprintf(why, sizeof(why), "syncrepl search: %s", ldap_err2string(rc));
        round_end(sy, why);
        return;
    }
    /* A persistent search may stay quiet for days: no timeout. A new event
     * (libevent re-arms a persistent event with the timeout it was first
     * added with, whatever event_add says later). */
    evutil_socket_t sock = event_get_fd(sy->io);
    event_free(sy->io);
    sy->io = event_new(sy->base, sock, EV_READ | EV_PERSIST, on_readable, sy);
    event_add(sy->io, NULL);
}

/* The UUID of an entry from its syncStateValue control. 0, or -1. */
static int entry_state(struct ldap_sync *sy, LDAPMessage *msg, struct lsync_state_value *st, int g)
{
    LDAPControl **ctrls = NULL;
    int r = -1;
    if (ldap_get_entry_controls(sy->ld, msg, &ctrls) == LDAP_SUCCESS) {
        LDAPControl *c = ldap_control_find(LSYNC_OID_STATE, ctrls, NULL);
        if (c != NULL && lsync_parse_state(c->ldctl_value.bv_val, c->ldctl_value.bv_len, st) == 0) {
            cookie_take(sy, g, st->cookie);
            r = 0;
        }
    }
    ldap_controls_free(ctrls);
    return r;
}

/* One message of the syncrepl searches. 0, or -1 when round_end was called. */
static int sync_message(struct ldap_sync *sy, int type, LDAPMessage *msg, int g)
{
    bool changed = false;
    char why[200];
    if (type == LDAP_RES_SEARCH_ENTRY) {
        struct lsync_state_value st;
        if (entry_state(sy, msg, &st, g) != 0) {
            round_end(sy, "a syncrepl entry without a valid syncStateValue");
            return -1;
        }
        char *key = ent_key(g == 1, st.uuid, NULL);
        struct ent *e = ents_get(&sy->state, key);
        log_debug("ldap: syncrepl %s: entry %s state %d cookie %zu", g ? "groups" : "accounts", key,
                  (int)st.state, st.cookie.n);
        if (st.state == LSYNC_DELETE) {
            changed = ents_del(&sy->state, key);
        } else if (st.state == LSYNC_PRESENT) {
            if (e != NULL)
                e->seen = true;
        } else if (e == NULL && sy->state.map.n >= LDAP_MAX_ENTRIES) {
            free(key);
            round_end(sy, "too many entries");
            return -1;
        } else {
            ents_put(&sy->state, take_entry(sy, msg, g == 1, st.uuid));
            changed = true;
            sy->refresh_entries += !sy->refreshed;
        }
        free(key);
    } else if (type == LDAP_RES_INTERMEDIATE) {
        char *oid = NULL;
        struct berval *data = NULL;
        struct lsync_info info;
        if (ldap_parse_intermediate(sy->ld, msg, &oid, &data, NULL, 0) == LDAP_SUCCESS &&
            oid != NULL && strcmp(oid, LSYNC_OID_INFO) == 0 && data != NULL &&
            lsync_parse_info(data->bv_val, data->bv_len, &info) == 0) {
            cookie_take(sy, g, info.cookie);
            log_debug("ldap: syncrepl %s: info %d done %d deletes %d uuids %zu cookie %zu",
                      g ? "groups" : "accounts", (int)info.kind, info.refresh_done,
                      info.refresh_deletes, info.n_uuids, info.cookie.n);
            if (info.kind == LSYNC_REFRESH_PRESENT) {
                /* The end of a present phase: what it did not name is gone. */
                changed = ents_sweep(&sy->state, g == 1, keep_seen, NULL) > 0;
                ENTS_EACH(&sy->state, e)
                {
                    if (e->group == (g == 1)) /* the other search's phase is its own */
                        e->seen = false;
                }
            }
            if ((info.kind == LSYNC_REFRESH_PRESENT || info.kind == LSYNC_REFRESH_DELETE) &&
                info.refresh_done)
                sy->refreshing[g] = false;
            for (size_t i = 0; info.kind == LSYNC_ID_SET && i < info.n_uuids; i++) {
                unsigned char u[LSYNC_UUID_LEN];
                lsync_uuid_at(&info, i, u);
                char *key = ent_key(g == 1, u, NULL);
                if (info.refresh_deletes) {
                    changed |= ents_del(&sy->state, key);
                } else {
                    struct ent *e = ents_get(&sy->state, key);
                    if (e != NULL)
                        e->seen = true;
                }
                free(key);
            }
        }
        ldap_memfree(oid);
        if (data != NULL)
            ber_bvfree(data);
    } else if (type == LDAP_RES_SEARCH_RESULT) {
        int code = LDAP_OTHER;
        LDAPControl **ctrls = NULL;
        ldap_parse_result(sy->ld, msg, &code, NULL, NULL, NULL, &ctrls, 0);
        LDAPControl *c = ldap_control_find(LSYNC_OID_DONE, ctrls, NULL);
        struct lsync_bytes cookie;
        bool deletes;
        if (c != NULL &&
            lsync_parse_done(c->ldctl_value.bv_val, c->ldctl_value.bv_len, &cookie, &deletes) == 0)
            cookie_take(sy, g, cookie);
        ldap_controls_free(ctrls);
        sy->msg[g] = -1;
        if (code == LSYNC_REFRESH_REQUIRED) {
            /* The cookie is too old for the server: the whole refresh again. */
            log_info("ldap: the server asks for a full syncrepl refresh of the %s",
                     g ? "groups" : "accounts");
            sy->have_cookie[g] = false;
            code = sync_search(sy, g);
            if (code == LDAP_SUCCESS)
                return 0;
        }
        snprintf(why, sizeof(why), "the syncrepl search ended: %s", ldap_err2string(code));
        round_end(sy, why);
        return -1;
    }
    if (!sy->refreshed && !sy->refreshing[0] && !sy->refreshing[1]) {
        sy->refreshed = true; /* the tree is whole: the mirror, and from now on each change */
        log_info("ldap: syncrepl refresh done, %s: %zu entries sent",
                 sy->resumed ? "resumed from the last connection's cookie" : "the whole tree",
                 sy->refresh_entries);
        sy->reused = true;
        sy->retry_ms = 0;
        mirror_write(sy, "read");
    } else if (sy->refreshed && changed && !evtimer_pending(sy->flush, NULL)) {
        struct timeval tv = {0, LDAP_FLUSH_MS * 1000};
        evtimer_add(sy->flush, &tv);
    }
    return 0;
}

/* ---- the connection ---- */

static enum sync_mode last_logged_mode = MODE_AUTO;

static void log_mode(struct ldap_sync *sy, enum sync_mode m, const char *why)
{
    if (m == last_logged_mode)
        return;
    last_logged_mode = m;
    if (m == MODE_SYNCREPL)
        log_info("ldap: following the tree's changes by syncrepl (RFC 4533 refreshAndPersist)");
    else
        log_info("ldap: polling the tree for changes every %lld ms (%s)",
                 (long long)sy->d->cfg->ldap_sync_interval, why);
}

/* The root DSE's answer: does the server offer the Content Synchronization control? */
static int rootdse_message(struct ldap_sync *sy, int type, LDAPMessage *msg)
{
    if (type == LDAP_RES_SEARCH_ENTRY) {
        struct berval **bv = ldap_get_values_len(sy->ld, msg, "supportedControl");
        for (int i = 0; bv != NULL && bv[i] != NULL; i++) {
            if (bv[i]->bv_len == strlen(LSYNC_OID_REQUEST) &&
                memcmp(bv[i]->bv_val, LSYNC_OID_REQUEST, bv[i]->bv_len) == 0)
                sy->offered = true;
        }
        ldap_value_free_len(bv);
        return 0;
    }
    if (type != LDAP_RES_SEARCH_RESULT)
        return 0;
    sy->msg_rootdse = -1;
    bool sync = sy->offered;
    sy->offered = false;
    if (sync) {
        log_mode(sy, MODE_SYNCREPL, NULL);
        sync_start(sy);
    } else {
        log_mode(sy, MODE_POLL, "the server does not offer syncrepl");
        poll_start(sy);
    }
    return sy->ld == NULL ? -1 : 0;
}

/* The connection has something to read: every message it holds now. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct ldap_sync *sy = arg;
    (void)fd;
    if ((what & EV_TIMEOUT) != 0) {
        round_end(sy, "a search took longer than ldap_timeout");
        return;
    }
    while (sy->ld != NULL && sy->phase != PH_IDLE) {
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
        int id = ldap_msgid(msg), r = 0;
        if (sy->phase == PH_ROOTDSE && id == sy->msg_rootdse)
            r = rootdse_message(sy, type, msg);
        else if (sy->phase == PH_POLL && (id == sy->msg[0] || id == sy->msg[1]))
            r = poll_message(sy, type, msg);
        else if (sy->phase == PH_SYNC && (id == sy->msg[0] || id == sy->msg[1]))
            r = sync_message(sy, type, msg, id == sy->msg[1]);
        ldap_msgfree(msg);
        if (r != 0)
            return;
    }
}

/* (Re)connects when needed, then polls, or starts syncrepl (asking the root
 * DSE first in auto mode). */
static void on_round(evutil_socket_t fd, short what, void *arg)
{
    struct ldap_sync *sy = arg;
    const struct wharf_config *cfg = sy->d->cfg;
    enum sync_mode mode = ldir(sy->d)->set.mode;
    (void)fd;
    (void)what;
    struct buf err = BUF_INIT;
    bool fresh_conn = sy->ld == NULL;
    sy->reused = !fresh_conn;
    if (sy->ld == NULL)
        sy->ld = server_connect(cfg, cfg->ldap_bind_dn[0] ? cfg->ldap_bind_dn : NULL,
                                sy->bind_password, &sy->refused, &err);
    int sock = -1;
    if (sy->ld == NULL || ldap_get_option(sy->ld, LDAP_OPT_DESC, &sock) != LDAP_OPT_SUCCESS) {
        if (err.len == 0)
            buf_printf(&err, "ldap: %s", ldap_err2string(LDAP_SERVER_DOWN));
        round_end(sy, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    sy->io = event_new(sy->base, sock, EV_READ | EV_PERSIST, on_readable, sy);
    struct timeval tv = {(time_t)(cfg->ldap_timeout / 1000),
                         (suseconds_t)(cfg->ldap_timeout % 1000) * 1000};
    event_add(sy->io, &tv);
    if (!fresh_conn || mode == MODE_POLL) {
        log_mode(sy, MODE_POLL, "ldap_sync_mode = poll");
        poll_start(sy);
    } else if (mode == MODE_SYNCREPL) {
        log_mode(sy, MODE_SYNCREPL, NULL);
        sync_start(sy);
    } else {
        static char supported[] = "supportedControl";
        char *attrs[] = {supported, NULL};
        sy->phase = PH_ROOTDSE;
        int rc = ldap_search_ext(sy->ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL,
                                 NULL, NULL, 1, &sy->msg_rootdse);
        if (rc != LDAP_SUCCESS) {
            char why[160];
            snprintf(why, sizeof(why), "reading the root DSE: %s", ldap_err2string(rc));
            round_end(sy, why);
            return;
        }
    }
    if (sy->io != NULL)
        on_readable(sock, 0, sy); /* libldap may hold replies already read */
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
    sy->msg[0] = sy->msg[1] = sy->msg_rootdse = -1;
    sy->need_full = true;
    buf_init(&sy->cookie[0]);
    buf_init(&sy->cookie[1]);
    if (d->cfg->ldap_bind_password_file[0] != '\0' &&
        (sy->bind_password = read_bind_password(d->cfg, err)) == NULL) {
        free(sy);
        return -1;
    }
    sy->timer = evtimer_new(base, on_round, sy);
    sy->flush = evtimer_new(base, on_flush, sy);
    l->sync = sy;
    event_active(sy->timer, EV_TIMEOUT, 0); /* the first round at once */
    return 0;
}

static void sync_free(struct ldap_sync *sy)
{
    if (sy == NULL)
        return;
    conn_drop(sy);
    event_free(sy->timer);
    event_free(sy->flush);
    ents_clear(&sy->state);
    buf_free(&sy->cookie[0]);
    buf_free(&sy->cookie[1]);
    xfree_secret(sy->bind_password);
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

/* dn, or for an unknown user (dn ""), a DN nobody has, made in nobody: its bind or
 * search costs what a known user's does. */
static const char *unknown_user_dn(const struct wharf_config *cfg, const char *dn,
                                   struct buf *nobody)
{
    if (dn[0] != '\0')
        return dn;
    buf_printf(nobody, "cn=wharf-no-such-user%s%s", cfg->ldap_base_dn[0] ? "," : "",
               cfg->ldap_base_dn);
    return nobody->data;
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
    dn = unknown_user_dn(d->cfg, dn, &nobody); /* the bind of a DN that is not in the tree */
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

/*
 * In the directory process, from its password threads (ldap_password_check =
 * hash): the password value of dn, by a base search as the search account on
 * a pooled connection (bound once, never rebound), else a new one; a pooled
 * one that fails may be one the server closed: one more try on a new one.
 */
static int ldap_read_password(struct directory *d, const char *dn, struct buf *hash_r,
                              struct buf *err)
{
    struct ldap_dir *l = ldir(d);
    const struct wharf_config *cfg = d->cfg;
    struct buf nobody = BUF_INIT;
    dn = unknown_user_dn(cfg, dn, &nobody); /* the same search, of a DN not in the tree */
    char *attrs[] = {(char *)cfg->ldap_password_attribute, NULL};
    struct timeval tv = {(time_t)(cfg->ldap_timeout / 1000),
                         (suseconds_t)(cfg->ldap_timeout % 1000) * 1000};
    int r = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        LDAP *ld = attempt == 0 ? pool_take(l) : NULL;
        bool pooled = ld != NULL;
        buf_reset(err);
        if (ld == NULL && (ld = server_connect(cfg, cfg->ldap_bind_dn[0] ? cfg->ldap_bind_dn : NULL,
                                               l->sync != NULL ? l->sync->bind_password : NULL,
                                               NULL, err)) == NULL)
            break;
        LDAPMessage *res = NULL;
        int rc = ldap_search_ext_s(ld, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
                                   &tv, 1, &res);
        if (rc == LDAP_SUCCESS || rc == LDAP_NO_SUCH_OBJECT) {
            LDAPMessage *e = rc == LDAP_SUCCESS ? ldap_first_entry(ld, res) : NULL;
            struct berval **v = e ? ldap_get_values_len(ld, e, cfg->ldap_password_attribute) : NULL;
            r = 0;
            /* The first value (an entry may hold several: the others are not tried). */
            if (v != NULL && v[0] != NULL) {
                if (v[0]->bv_len == 0 || memchr(v[0]->bv_val, '\0', v[0]->bv_len) != NULL) {
                    buf_printf(err, "the value of %s is empty or holds a NUL",
                               cfg->ldap_password_attribute);
                } else {
                    buf_reset(hash_r);
                    buf_append(hash_r, v[0]->bv_val, v[0]->bv_len);
                    explicit_bzero(v[0]->bv_val, v[0]->bv_len);
                    r = 1;
                }
            } else if (rc == LDAP_SUCCESS && e != NULL) {
                buf_printf(err, "no %s readable by the search account (ldap_bind_dn)",
                           cfg->ldap_password_attribute);
            }
            ldap_value_free_len(v);
            ldap_msgfree(res);
            pool_put(l, ld);
            break;
        }
        buf_printf(err, "ldap: reading %s: %s", cfg->ldap_password_attribute, ldap_err2string(rc));
        ldap_msgfree(res);
        ldap_unbind_ext_s(ld, NULL, NULL);
        if (!pooled)
            break;
    }
    buf_free(&nobody);
    return r;
}

/* wharf config check (the directory component's): what every process would refuse at open. */
static int ldap_check_config(const struct wharf_config *cfg, struct buf *err)
{
    struct ldap_settings set = {0};
    int r = settings_init(&set, cfg, err);
    settings_free(&set);
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
    .read_password = ldap_read_password,
    .check_config = ldap_check_config,
};
