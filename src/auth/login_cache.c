/*
 * login_cache.c - the hashes of the last LDAP logins (login_cache.h): a map
 * for the lookups, a list from newest to oldest for the TTL and the cap, and
 * the file's text. Hashes are wiped when dropped; nothing here logs.
 */
#include "auth/login_cache.h"

#include "base/alloc.h"
#include "base/fdio.h"
#include "base/strmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_HEADER "wharf-login-cache 1\n"
/* The latest date a line may hold (12 digits: the year 33658). */
#define WALL_SECONDS_MAX 999999999999LL
/* A line at most, without its newline: the date, the account, the hash and two tabs. */
#define LINE_MAX_LEN (12 + LOGIN_CACHE_ACCOUNT_MAX + LOGIN_CACHE_HASH_MAX + 2)

struct login_entry {
    struct login_entry *newer, *older;
    char *account; /* the map's key too */
    char *hash;    /* NULL: refused by LDAP (login_cache_refused), never written */
    int64_t at;    /* the login (or the refusal), in monotonic milliseconds */
};

struct login_cache {
    struct strmap map;                   /* account -> struct login_entry */
    struct login_entry *newest, *oldest; /* ordered by at */
    size_t max;
    int64_t ttl;
    uint64_t version;
};

struct login_cache *login_cache_new(size_t max, int64_t ttl_ms)
{
    struct login_cache *c = xcalloc(1, sizeof(*c));
    c->max = max;
    c->ttl = ttl_ms;
    return c;
}

static void unlink_entry(struct login_cache *c, struct login_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

/* Links e in its place by at: after every entry newer than it. Looked for from the
 * newest end, where logins come in, so that putting one costs nothing, unless e is
 * older than all (a file read into a cache that holds newer logins). */
static void link_entry(struct login_cache *c, struct login_entry *e)
{
    struct login_entry *newer = NULL, *older = c->newest;
    if (c->oldest != NULL && c->oldest->at > e->at) {
        newer = c->oldest;
        older = NULL;
    }
    while (older != NULL && older->at > e->at) {
        newer = older;
        older = older->older;
    }
    e->newer = newer;
    e->older = older;
    if (newer)
        newer->older = e;
    else
        c->newest = e;
    if (older)
        older->newer = e;
    else
        c->oldest = e;
}

static void drop(struct login_cache *c, struct login_entry *e)
{
    unlink_entry(c, e);
    strmap_del(&c->map, e->account, NULL);
    free(e->account);
    xfree_secret(e->hash);
    free(e);
}

static void expire(struct login_cache *c, int64_t now_ms)
{
    while (c->oldest != NULL && now_ms - c->oldest->at > c->ttl)
        drop(c, c->oldest);
}

void login_cache_free(struct login_cache *c)
{
    if (c == NULL)
        return;
    while (c->oldest != NULL)
        drop(c, c->oldest);
    strmap_free(&c->map);
    free(c);
}

/* Keeps hash (NULL: a refusal) for account as of at, unless the entry there is newer. */
static void put_at(struct login_cache *c, const char *account, const char *hash, int64_t at)
{
    if (c->ttl <= 0 || c->max == 0 || strlen(account) > LOGIN_CACHE_ACCOUNT_MAX ||
        (hash != NULL && strlen(hash) > LOGIN_CACHE_HASH_MAX))
        return;
    struct strmap_slot *s = strmap_find(&c->map, account);
    struct login_entry *e = s ? s->val.ptr : NULL;
    if (e != NULL && e->at > at)
        return;
    if (e != NULL) {
        unlink_entry(c, e);
        xfree_secret(e->hash);
    } else {
        e = xcalloc(1, sizeof(*e));
        e->account = xstrdup(account);
        bool added;
        strmap_add(&c->map, e->account, &added)->val.ptr = e;
    }
    e->hash = hash ? xstrdup(hash) : NULL;
    e->at = at;
    link_entry(c, e);
    while (c->map.n > c->max)
        drop(c, c->oldest);
    c->version++;
}

void login_cache_put(struct login_cache *c, const char *account, const char *hash, int64_t now_ms)
{
    expire(c, now_ms);
    put_at(c, account, hash, now_ms);
}

void login_cache_refused(struct login_cache *c, const char *account, const char *hash,
                         int64_t now_ms)
{
    expire(c, now_ms);
    struct strmap_slot *s = strmap_find(&c->map, account);
    const struct login_entry *e = s ? s->val.ptr : NULL;
    if (e == NULL || (e->hash != NULL && strcmp(e->hash, hash) == 0))
        put_at(c, account, NULL, now_ms);
}

char *login_cache_get(struct login_cache *c, const char *account, int64_t now_ms)
{
    expire(c, now_ms);
    struct strmap_slot *s = strmap_find(&c->map, account);
    const struct login_entry *e = s ? s->val.ptr : NULL;
    return e && e->hash ? xstrdup(e->hash) : NULL;
}

size_t login_cache_size(const struct login_cache *c)
{
    return c->map.n;
}

uint64_t login_cache_version(const struct login_cache *c)
{
    return c->version;
}

/* An account a line can hold and give back: no tab, newline or other control byte. */
static bool account_ok(const char *s, size_t n)
{
    if (n == 0 || n > LOGIN_CACHE_ACCOUNT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

/* A yescrypt hash, as password_hash makes them: "$y$" then crypt(3)'s alphabet. */
static bool hash_ok(const char *s, size_t n)
{
    if (n <= 3 || n > LOGIN_CACHE_HASH_MAX || memcmp(s, "$y$", 3) != 0)
        return false;
    for (size_t i = 3; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '/' || ch == '$'))
            return false;
    }
    return true;
}

size_t login_cache_format(struct login_cache *c, int64_t mono_ms, int64_t wall_ms, struct buf *out)
{
    size_t n = 0;
    buf_reset(out);
    buf_append_cstr(out, FILE_HEADER);
    expire(c, mono_ms);
    for (const struct login_entry *e = c->oldest; e != NULL; e = e->newer) {
        int64_t sec = (wall_ms - (mono_ms - e->at)) / 1000;
        if (e->hash == NULL || sec < 0 || sec > WALL_SECONDS_MAX ||
            !account_ok(e->account, strlen(e->account)) || !hash_ok(e->hash, strlen(e->hash)))
            continue; /* a refusal, or not one a line could give back */
        buf_printf(out, "%lld\t%s\t%s\n", (long long)sec, e->account, e->hash);
        n++;
    }
    return n;
}

/* One line (without its newline) into tmp; false with err. */
static bool parse_line(struct login_cache *tmp, const char *p, size_t n, int64_t mono_ms,
                       int64_t wall_ms, unsigned lineno, struct buf *err)
{
    const char *tab1 = memchr(p, '\t', n);
    const char *tab2 = tab1 ? memchr(tab1 + 1, '\t', n - (size_t)(tab1 + 1 - p)) : NULL;
    if (tab2 == NULL) {
        buf_printf(err, "line %u: not three fields", lineno);
        return false;
    }
    /* At most 12 digits (WALL_SECONDS_MAX): their milliseconds cannot overflow. */
    bool date_ok = tab1 > p && tab1 - p <= 12;
    int64_t sec = 0;
    for (const char *d = p; date_ok && d < tab1; d++) {
        date_ok = *d >= '0' && *d <= '9';
        sec = sec * 10 + (*d - '0');
    }
    if (!date_ok) {
        buf_printf(err, "line %u: not a date", lineno);
        return false;
    }
    const char *acct = tab1 + 1, *hash = tab2 + 1;
    size_t acct_len = (size_t)(tab2 - acct), hash_len = n - (size_t)(hash - p);
    if (!account_ok(acct, acct_len)) {
        buf_printf(err, "line %u: not an account name", lineno);
        return false;
    }
    if (!hash_ok(hash, hash_len)) {
        buf_printf(err, "line %u: not a yescrypt hash", lineno);
        return false;
    }
    int64_t age = wall_ms - sec * 1000;
    if (age < 0) /* dated after now: the clock was set back since */
        age = 0;
    if (age > tmp->ttl)
        return true; /* past the TTL: skipped */
    char *a = xstrndup(acct, acct_len), *h = xstrndup(hash, hash_len);
    put_at(tmp, a, h, mono_ms - age);
    free(a);
    xfree_secret(h);
    return true;
}

int login_cache_parse(struct login_cache *c, const char *text, size_t len, int64_t mono_ms,
                      int64_t wall_ms, size_t *n_r, struct buf *err)
{
    size_t hl = strlen(FILE_HEADER);
    if (len < hl || memcmp(text, FILE_HEADER, hl) != 0) {
        buf_printf(err, "not a login cache (no \"wharf-login-cache 1\" line)");
        return -1;
    }
    /* Read whole into a cache of its own first: a bad line leaves c as it was. */
    struct login_cache *tmp = login_cache_new(c->max, c->ttl);
    unsigned lineno = 1;
    for (size_t off = hl; off < len;) {
        lineno++;
        const char *p = text + off, *nl = memchr(p, '\n', len - off);
        if (nl == NULL) {
            buf_printf(err, "line %u: cut short (no newline)", lineno);
            login_cache_free(tmp);
            return -1;
        }
        size_t n = (size_t)(nl - p);
        if (n > LINE_MAX_LEN)
            buf_printf(err, "line %u: longer than %d bytes", lineno, LINE_MAX_LEN);
        if (n > LINE_MAX_LEN || !parse_line(tmp, p, n, mono_ms, wall_ms, lineno, err)) {
            login_cache_free(tmp);
            return -1;
        }
        off += n + 1;
    }
    if (n_r)
        *n_r = tmp->map.n;
    for (const struct login_entry *e = tmp->oldest; e != NULL; e = e->newer) {
        struct strmap_slot *s = strmap_find(&c->map, e->account);
        if (s == NULL || ((const struct login_entry *)s->val.ptr)->at < e->at)
            put_at(c, e->account, e->hash, e->at); /* c's own, as late or later, stays */
    }
    login_cache_free(tmp);
    return 0;
}

int login_cache_load(struct login_cache *c, const char *path, int64_t mono_ms, int64_t wall_ms,
                     size_t *n_r, struct buf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0) {
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* What c->max lines may take: a bigger file is no file this process wrote. */
    size_t max = c->max > (SIZE_MAX - sizeof(FILE_HEADER)) / (LINE_MAX_LEN + 1)
                     ? SIZE_MAX
                     : sizeof(FILE_HEADER) + c->max * (LINE_MAX_LEN + 1);
    struct buf text = BUF_INIT, why = BUF_INIT;
    int rc = fd_read_all(fd, max, &text);
    int e = errno;
    close(fd);
    if (rc != 0) {
        buf_printf(err, "cannot read %s: %s", path, strerror(e));
    } else if (login_cache_parse(c, text.data, text.len, mono_ms, wall_ms, n_r, &why) != 0) {
        buf_printf(err, "%s: %s", path, buf_cstr(&why));
        rc = -1;
    }
    explicit_bzero(text.data, text.len);
    buf_free(&text);
    buf_free(&why);
    return rc;
}
