/*
 * mta_sts.c - MTA-STS policies (RFC 8461): parsing, matching, and the
 * cache and HTTPS fetcher of mta_sts.h. Never follows a redirect, never
 * reads more than MTA_STS_BODY_MAX bytes, never forgets an unexpired policy
 * because a fetch failed.
 */
#include "mta/mta_sts.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/datadir.h"
#include "base/log.h"
#include "mta/mta_https.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- parsing ---- */

const char *mta_sts_mode_name(enum mta_sts_mode m)
{
    return m == MTA_STS_ENFORCE ? "enforce" : m == MTA_STS_TESTING ? "testing" : "none";
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

bool mta_sts_txt_parse(const char *txt, size_t len, bool *is_sts_r, char id_r[MTA_STS_ID_MAX + 1])
{
    const char *p = txt, *end = txt + len;
    *is_sts_r = false;
    /* 3.1: the record starts with "v=STSv1" and fields end in ';' */
    if (len < 7 || memcmp(p, "v=STSv1", 7) != 0 ||
        (len > 7 && p[7] != ';' && p[7] != ' ' && p[7] != '\t'))
        return false;
    *is_sts_r = true;
    p += 7;
    bool have_id = false;
    while (p < end) {
        p = skip_ws(p, end);
        if (p < end && *p == ';') {
            p++;
            continue;
        }
        if (p == end)
            break;
        const char *key = p;
        while (p < end && *p != '=' && *p != ';')
            p++;
        if (p == end || *p != '=')
            return false;
        size_t klen = (size_t)(p - key);
        const char *val = ++p;
        while (p < end && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t vlen = (size_t)(p - val);
        if (klen == 2 && memcmp(key, "id", 2) == 0) {
            if (vlen == 0 || vlen > MTA_STS_ID_MAX || have_id)
                return false;
            for (size_t i = 0; i < vlen; i++)
                if (!isalnum((unsigned char)val[i]))
                    return false;
            memcpy(id_r, val, vlen);
            id_r[vlen] = '\0';
            have_id = true;
        }
        /* other extension fields are ignored */
    }
    return have_id;
}

static bool valid_mx_pattern(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t i = 0;
    if (len > 2 && s[0] == '*' && s[1] == '.')
        i = 2;
    for (size_t label = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return s[len - 1] != '.';
}

bool mta_sts_policy_parse(const char *body, size_t len, struct mta_sts_policy *p, struct buf *err)
{
    memset(p, 0, sizeof(*p));
    bool have_version = false, have_mode = false, have_age = false;
    const char *s = body, *end = body + len;
    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        const char *line_end = eol ? eol : end;
        const char *le = line_end;
        if (le > s && le[-1] == '\r')
            le--;
        const char *colon = memchr(s, ':', (size_t)(le - s));
        if (le > s) {
            if (colon == NULL) {
                buf_printf(err, "a line without ':'");
                return false;
            }
            size_t klen = (size_t)(colon - s);
            const char *v = skip_ws(colon + 1, le);
            const char *ve = le;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vlen = (size_t)(ve - v);
            if (klen == 7 && memcmp(s, "version", 7) == 0) {
                if (vlen != 5 || memcmp(v, "STSv1", 5) != 0) {
                    buf_printf(err, "version is not STSv1");
                    return false;
                }
                have_version = true;
            } else if (klen == 4 && memcmp(s, "mode", 4) == 0) {
                if (vlen == 7 && memcmp(v, "enforce", 7) == 0)
                    p->mode = MTA_STS_ENFORCE;
                else if (vlen == 7 && memcmp(v, "testing", 7) == 0)
                    p->mode = MTA_STS_TESTING;
                else if (vlen == 4 && memcmp(v, "none", 4) == 0)
                    p->mode = MTA_STS_NONE;
                else {
                    buf_printf(err, "unknown mode");
                    return false;
                }
                have_mode = true;
            } else if (klen == 7 && memcmp(s, "max_age", 7) == 0) {
                int64_t age = 0;
                if (vlen == 0 || vlen > 10) {
                    buf_printf(err, "bad max_age");
                    return false;
                }
                for (size_t i = 0; i < vlen; i++) {
                    if (!isdigit((unsigned char)v[i])) {
                        buf_printf(err, "bad max_age");
                        return false;
                    }
                    age = age * 10 + (v[i] - '0');
                }
                p->max_age = age > MTA_STS_MAX_AGE_MAX ? MTA_STS_MAX_AGE_MAX : age;
                have_age = true;
            } else if (klen == 2 && memcmp(s, "mx", 2) == 0) {
                if (!valid_mx_pattern(v, vlen)) {
                    buf_printf(err, "bad mx pattern");
                    return false;
                }
                if (p->n_mx < MTA_STS_MX_MAX) {
                    memcpy(p->mx[p->n_mx], v, vlen);
                    p->mx[p->n_mx][vlen] = '\0';
                    p->n_mx++;
                }
            }
            /* other keys: extensions, ignored (3.2) */
        }
        s = eol ? eol + 1 : end;
    }
    if (!have_version || !have_mode || !have_age) {
        buf_printf(err, "missing %s", !have_version ? "version" : !have_mode ? "mode" : "max_age");
        return false;
    }
    if (p->mode != MTA_STS_NONE && p->n_mx == 0) {
        buf_printf(err, "no mx");
        return false;
    }
    return true;
}

bool mta_sts_mx_match(const struct mta_sts_policy *p, const char *host)
{
    size_t hl = strlen(host);
    if (hl > 0 && host[hl - 1] == '.')
        hl--;
    for (size_t i = 0; i < p->n_mx; i++) {
        const char *pat = p->mx[i];
        size_t pl = strlen(pat);
        if (pat[0] == '*' && pat[1] == '.') {
            /* "*.example.com" matches exactly one label before example.com */
            const char *dot = memchr(host, '.', hl);
            if (dot != NULL && dot > host && (size_t)(host + hl - dot) == pl - 1 &&
                strncasecmp(dot, pat + 1, pl - 1) == 0)
                return true;
        } else if (pl == hl && strncasecmp(host, pat, hl) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- the cache and fetcher ---- */

/* Longest wait for the policy host (RFC 8461 3.3 suggests a minute); the
 * address lookup has libunbound's own timeouts. */
#define MTA_STS_FETCH_TIMEOUT_S 60

struct waiter {
    struct waiter *next;
    mta_sts_cb *cb;
    void *arg;
};

struct entry {
    struct entry *next;
    struct mta_sts *s;
    char *domain;
    bool have; /* pol is a valid policy (perhaps expired) */
    struct mta_sts_policy pol;
    /* a fetch in flight */
    bool fetching;
    char want_id[MTA_STS_ID_MAX + 1];
    struct waiter *waiters;
};

struct mta_sts {
    struct event_base *base;
    struct mta_https *https;
    char *dir; /* DATA/mta-sts */
    uint16_t port;
    struct entry *entries;
};

static bool fresh(const struct entry *e)
{
    return e->have && e->pol.fetched + e->pol.max_age > wallclock_ms() / 1000;
}

/* A cache file: "id\nfetched\n" then the policy body as fetched. */
static void entry_save(const struct entry *e, const char *body, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", e->s->dir, e->domain);
    struct buf text = BUF_INIT;
    buf_printf(&text, "%s\n%lld\n", e->pol.id, (long long)e->pol.fetched);
    buf_append(&text, body, len);
    if (datadir_write_file(path, text.data, text.len, 0644) != 0)
        log_warning("mta-sts: cannot write %s: %s", path, strerror(errno));
    buf_free(&text);
}

static void entry_load(struct entry *e)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", e->s->dir, e->domain);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    char *data = xmalloc(MTA_STS_BODY_MAX + 128);
    size_t n = fread(data, 1, MTA_STS_BODY_MAX + 127, f);
    fclose(f);
    data[n] = '\0';
    char id[MTA_STS_ID_MAX + 2];
    long long fetched;
    int used = 0;
    struct buf err = BUF_INIT;
    if (sscanf(data, "%33[A-Za-z0-9]\n%lld\n%n", id, &fetched, &used) == 2 && used > 0 &&
        strlen(id) <= MTA_STS_ID_MAX &&
        mta_sts_policy_parse(data + used, n - (size_t)used, &e->pol, &err)) {
        memcpy(e->pol.id, id, strlen(id) + 1); /* at most MTA_STS_ID_MAX, checked */
        e->pol.fetched = fetched;
        e->have = true;
    }
    buf_free(&err);
    free(data);
}

/* A domain we would look a policy up for (it names a cache file too). */
static bool domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253 || d[0] == '.' || strstr(d, "..") != NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)d[i]) && d[i] != '-' && d[i] != '.' && d[i] != '_')
            return false;
    return true;
}

static struct entry *entry_get(struct mta_sts *s, const char *domain)
{
    for (struct entry *e = s->entries; e != NULL; e = e->next)
        if (strcasecmp(e->domain, domain) == 0)
            return e;
    struct entry *e = xcalloc(1, sizeof(*e));
    e->s = s;
    e->domain = xstrdup(domain);
    for (char *c = e->domain; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    e->next = s->entries;
    s->entries = e;
    entry_load(e);
    return e;
}

struct mta_sts *mta_sts_new(struct event_base *base, const struct wharf_config *cfg,
                            struct nexthop_resolver *resolver, struct ssl_ctx_st *verify_ctx,
                            struct buf *err)
{
    struct mta_sts *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->https = mta_https_new(base, resolver, verify_ctx);
    s->port = (uint16_t)cfg->mta_sts_https_port;
    s->dir = config_data_path(cfg, "mta-sts"); /* made by datadir_prepare */
    (void)err;
    return s;
}

void mta_sts_free(struct mta_sts *s)
{
    if (s == NULL)
        return;
    mta_https_free(s->https); /* fetches in flight end without callbacks */
    while (s->entries) {
        struct entry *e = s->entries;
        s->entries = e->next;
        while (e->waiters) {
            struct waiter *w = e->waiters;
            e->waiters = w->next;
            free(w);
        }
        free(e->domain);
        free(e);
    }
    free(s->dir);
    free(s);
}

/* Ends a fetch: answers every waiter. */
static void fetch_end(struct entry *e)
{
    e->fetching = false;
    const struct mta_sts_policy *p = fresh(e) ? &e->pol : NULL;
    struct waiter *w = e->waiters;
    e->waiters = NULL;
    while (w) {
        struct waiter *next = w->next;
        w->cb(e->domain, p, w->arg);
        free(w);
        w = next;
    }
}

static void fetch_failed(struct entry *e, const char *why)
{
    log_warning("mta-sts: %s: cannot fetch the policy: %s%s", e->domain, why,
                fresh(e) ? " (keeping the cached one)" : "");
    fetch_end(e);
}

static void on_response(void *arg, int code, struct slice body, const char *why)
{
    struct entry *e = arg;
    if (code == 0) {
        fetch_failed(e, why);
        return;
    }
    if (code != 200) {
        char text[64];
        snprintf(text, sizeof(text), "HTTP status %d (redirects are not followed)", code);
        fetch_failed(e, text);
        return;
    }
    struct mta_sts_policy p;
    struct buf err = BUF_INIT;
    if (body.len <= MTA_STS_BODY_MAX && mta_sts_policy_parse(body.ptr, body.len, &p, &err)) {
        snprintf(p.id, sizeof(p.id), "%s", e->want_id);
        p.fetched = wallclock_ms() / 1000;
        e->pol = p;
        e->have = true;
        entry_save(e, body.ptr, body.len);
        log_info("mta-sts: %s: policy %s, mode %s, max_age %lld, %zu mx", e->domain, p.id,
                 mta_sts_mode_name(p.mode), (long long)p.max_age, p.n_mx);
    } else {
        if (body.len > MTA_STS_BODY_MAX)
            buf_printf(&err, "too large");
        log_warning("mta-sts: %s: invalid policy: %s%s", e->domain, buf_cstr(&err),
                    fresh(e) ? " (keeping the cached one)" : "");
    }
    buf_free(&err);
    fetch_end(e);
}

/* One answer from the cache, delivered from the loop. */
struct later {
    mta_sts_cb *cb;
    void *arg;
    char *domain;
    bool have;
    struct mta_sts_policy pol;
};

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    (void)fd, (void)what;
    l->cb(l->domain, l->have ? &l->pol : NULL, l->arg);
    free(l->domain);
    free(l);
}

void mta_sts_get(struct mta_sts *s, const char *domain, const char *txt_id, mta_sts_cb *cb,
                 void *arg)
{
    struct entry *e = domain_ok(domain) ? entry_get(s, domain) : NULL;
    if (e != NULL &&
        (e->fetching || (txt_id != NULL && !(fresh(e) && strcmp(e->pol.id, txt_id) == 0)))) {
        struct waiter *w = xmalloc(sizeof(*w));
        *w = (struct waiter){e->waiters, cb, arg};
        e->waiters = w;
        if (!e->fetching) {
            e->fetching = true;
            snprintf(e->want_id, sizeof(e->want_id), "%s", txt_id);
            char host[300];
            snprintf(host, sizeof(host), "mta-sts.%s", e->domain);
            /* the policy host's certificate must be valid for its name (3.3) */
            const struct mta_https_request rq = {.host = host,
                                                 .port = s->port,
                                                 .path = "/.well-known/mta-sts.txt",
                                                 .max_body = MTA_STS_BODY_MAX,
                                                 .timeout_s = MTA_STS_FETCH_TIMEOUT_S};
            mta_https_start(s->https, &rq, on_response, e);
        }
        return;
    }
    /* the cache answers: a fresh policy (TXT gone or the same id), or none */
    struct later *l = xcalloc(1, sizeof(*l));
    l->cb = cb;
    l->arg = arg;
    l->domain = xstrdup(domain);
    if (e != NULL && fresh(e)) {
        l->have = true;
        l->pol = e->pol;
    }
    struct timeval zero = {0, 0};
    event_base_once(s->base, -1, EV_TIMEOUT, on_later, l, &zero);
}
