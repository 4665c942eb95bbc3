/*
 * mta_tlsrpt.c - TLS reporting (RFC 8460), see mta_tlsrpt.h.
 *
 * Must never block the mta's loop on anything but the small records file,
 * and never report a domain's sessions to an address its own DNS did not
 * name.
 */
#include "mta/mta_tlsrpt.h"

#include "base/alloc.h"
#include "base/base64.h"
#include "base/clock.h"
#include "base/date.h"
#include "base/fdio.h"
#include "base/log.h"
#include "mime/mime.h"
#include "mta/mta_https.h"
#include "mta/mta_out.h"
#include "mta/nexthop.h"
#include "net/net_compress.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECORDS_MAX (64u << 20) /* a records file larger than this is cut short */
#define POST_TIMEOUT_S 60       /* an https: report receiver's whole answer */

struct mta_tlsrpt {
    struct event_base *base;
    const struct wharf_config *cfg;
    struct nexthop_resolver *r;
    struct mta_out *o;
    struct mta_https *https; /* https: reports */
    struct event *timer;
    int64_t period_start;
    struct buf sending; /* the records being reported */
    size_t pending;     /* domains whose TXT answer is still to come */
};

struct domain_job {
    struct mta_tlsrpt *t;
    char domain[256];
};

static void path_of(const struct wharf_config *cfg, const char *name, struct buf *out)
{
    buf_printf(out, "%s/tlsrpt%s%s", cfg->data_directory, name[0] ? "/" : "", name);
}

/* ---- results ---- */

const char *mta_tlsrpt_result_type(const char *enh, struct slice why)
{
    if (enh == NULL || strncmp(enh, "4.7.", 4) != 0)
        return NULL;
    char text[512];
    snprintf(text, sizeof(text), "%.*s", (int)(why.len < 511 ? why.len : 511),
             why.ptr ? why.ptr : "");
    if (strcmp(enh, "4.7.4") == 0)
        return "starttls-not-supported";
    if (strcasestr(text, "hostname mismatch") || strcasestr(text, "not in the policy"))
        return "certificate-host-mismatch";
    if (strcasestr(text, "expired"))
        return "certificate-expired";
    if (strcasestr(text, "self-signed") || strcasestr(text, "self signed") ||
        strcasestr(text, "issuer"))
        return "certificate-not-trusted";
    if (strcasestr(text, "TLSA"))
        return "tlsa-invalid";
    return "validation-failure";
}

static bool field_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strlen(s) < 256 && strpbrk(s, "\t\r\n") == NULL;
}

void mta_tlsrpt_record(struct mta_tlsrpt *t, const char *domain, enum mta_tlsrpt_policy policy,
                       const char *mx, const char *result)
{
    if (t == NULL || !field_ok(domain) || !field_ok(mx) || (result && !field_ok(result)))
        return;
    struct buf line = BUF_INIT, path = BUF_INIT;
    buf_printf(&line, "%s\t%s\t%s\t%s\n", domain, policy == MTA_TLSRPT_STS ? "sts" : "tlsa", mx,
               result ? result : "-");
    path_of(t->cfg, "records", &path);
    int fd = open(buf_cstr(&path), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || fd_write_all(fd, line.data, line.len) != 0)
        log_warning("tlsrpt: cannot record a session: %s: %s", buf_cstr(&path), strerror(errno));
    if (fd >= 0)
        close(fd);
    buf_free(&line);
    buf_free(&path);
}

/* ---- the TXT record ---- */

static void pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned v;
        if (s[i] == '%' && i + 2 < n && sscanf(s + i + 1, "%2x", &v) == 1 && v > 0x20 && v < 0x7f) {
            out[o++] = (char)v;
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

/* mailto:ADDR[?query]: the address, percent-decoded, with one '@'. */
static bool mailto_parse(const char *u, size_t ul, struct mta_tlsrpt_rua *r)
{
    size_t al = strcspn(u, "?,");
    if (al > ul)
        al = ul;
    pct_decode(u, al, r->to, sizeof(r->to));
    const char *at = strchr(r->to, '@');
    return at != NULL && at != r->to && at[1] != '\0' && strchr(at + 1, '@') == NULL &&
           strpbrk(r->to, " \t<>\"") == NULL;
}

/* //HOST[:PORT][/PATH][?QUERY] (RFC 3986, no userinfo, no IP literal in
 * brackets): the host of letters, digits, '-' and '.', a port of 1-65535, a
 * request target of printable characters. */
static bool https_parse(const char *u, size_t ul, struct mta_tlsrpt_rua *r)
{
    if (ul < 3 || u[0] != '/' || u[1] != '/')
        return false;
    u += 2;
    ul -= 2;
    size_t hl = 0;
    while (hl < ul && (isalnum((unsigned char)u[hl]) || u[hl] == '-' || u[hl] == '.'))
        hl++;
    if (hl == 0 || hl >= sizeof(r->host) || u[0] == '.' || u[0] == '-')
        return false;
    memcpy(r->host, u, hl);
    r->host[hl] = '\0';
    size_t i = hl;
    r->port = 443;
    if (i < ul && u[i] == ':') {
        unsigned long port = 0;
        size_t d = ++i;
        while (i < ul && isdigit((unsigned char)u[i]) && port <= 65535)
            port = port * 10 + (unsigned long)(u[i++] - '0');
        if (i == d || port == 0 || port > 65535)
            return false;
        r->port = (uint16_t)port;
    }
    if (i < ul && u[i] != '/' && u[i] != '?')
        return false; /* userinfo, a bracket, or junk after the host */
    size_t pl = ul - i;
    if (pl + 2 > sizeof(r->path))
        return false;
    size_t o = 0;
    if (pl == 0 || u[i] == '?')
        r->path[o++] = '/';
    for (size_t k = i; k < ul; k++) {
        if ((unsigned char)u[k] <= 0x20 || (unsigned char)u[k] >= 0x7f)
            return false;
        r->path[o++] = u[k];
    }
    r->path[o] = '\0';
    return true;
}

bool mta_tlsrpt_txt_parse(const char *txt, struct mta_tlsrpt_rua *rua, size_t max, size_t *n_r)
{
    *n_r = 0;
    while (*txt == ' ' || *txt == '\t')
        txt++;
    if (strncmp(txt, "v=TLSRPTv1", 10) != 0 ||
        (txt[10] != ';' && txt[10] != '\0' && txt[10] != ' ' && txt[10] != '\t'))
        return false;
    const char *p = txt + 10;
    bool seen = false;
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, ";");
        if (len > 4 && strncmp(p, "rua=", 4) == 0 && !seen) {
            seen = true;
            const char *u = p + 4, *end = p + len;
            while (u < end) {
                while (u < end && (*u == ',' || *u == ' ' || *u == '\t'))
                    u++;
                size_t ul = 0;
                while (u + ul < end && u[ul] != ',' && u[ul] != ' ' && u[ul] != '\t')
                    ul++;
                if (*n_r < max) {
                    struct mta_tlsrpt_rua *r = &rua[*n_r];
                    memset(r, 0, sizeof(*r));
                    if (ul > 7 && strncasecmp(u, "mailto:", 7) == 0 &&
                        mailto_parse(u + 7, ul - 7, r))
                        (*n_r)++;
                    else if (ul > 6 && strncasecmp(u, "https:", 6) == 0 &&
                             https_parse(u + 6, ul - 6, r)) {
                        r->https = true;
                        (*n_r)++;
                    }
                }
                u += ul;
            }
        }
        p += len;
    }
    return seen;
}

/* ---- the report ---- */

struct count {
    char policy[8], mx[256], result[64];
    size_t n;
};

bool mta_tlsrpt_report_json(struct slice records, const char *domain, const char *org,
                            const char *report_id, int64_t start, int64_t end, struct buf *out)
{
    struct count *c = NULL;
    size_t nc = 0, cap = 0;
    size_t ok[2] = {0, 0}, bad[2] = {0, 0};
    bool seen[2] = {false, false};
    size_t i = 0;
    while (i < records.len) {
        const char *nl = memchr(records.ptr + i, '\n', records.len - i);
        size_t end_i = nl ? (size_t)(nl - records.ptr) : records.len;
        char line[1024];
        size_t ll = end_i - i < sizeof(line) - 1 ? end_i - i : sizeof(line) - 1;
        memcpy(line, records.ptr + i, ll);
        line[ll] = '\0';
        i = end_i + 1;
        char *f[4], *save = NULL;
        size_t nf = 0;
        for (char *tok = strtok_r(line, "\t", &save); tok && nf < 4;
             tok = strtok_r(NULL, "\t", &save))
            f[nf++] = tok;
        if (nf != 4 || strcasecmp(f[0], domain) != 0 || strlen(f[2]) >= 256 || strlen(f[3]) >= 64)
            continue;
        int pi = strcmp(f[1], "sts") == 0 ? 0 : strcmp(f[1], "tlsa") == 0 ? 1 : -1;
        if (pi < 0)
            continue;
        seen[pi] = true;
        if (strcmp(f[3], "-") == 0) {
            ok[pi]++;
            continue;
        }
        bad[pi]++;
        size_t k = 0;
        while (k < nc && !(strcmp(c[k].policy, f[1]) == 0 && strcmp(c[k].mx, f[2]) == 0 &&
                           strcmp(c[k].result, f[3]) == 0))
            k++;
        if (k == nc) {
            if (nc == cap) {
                cap = cap ? cap * 2 : 8;
                c = xreallocarray(c, cap, sizeof(*c));
            }
            memset(&c[nc], 0, sizeof(c[nc]));
            snprintf(c[nc].policy, sizeof(c[nc].policy), "%s", f[1]);
            snprintf(c[nc].mx, sizeof(c[nc].mx), "%s", f[2]);
            snprintf(c[nc].result, sizeof(c[nc].result), "%s", f[3]);
            nc++;
        }
        c[k].n++;
    }
    if (!seen[0] && !seen[1]) {
        free(c);
        return false;
    }
    struct buf t0 = BUF_INIT, t1 = BUF_INIT, contact = BUF_INIT;
    date_rfc3339_append(start, &t0);
    date_rfc3339_append(end, &t1);
    buf_printf(&contact, "mailto:postmaster@%s", org);
    json_t *policies = json_array();
    for (int pi = 0; pi < 2; pi++) {
        if (!seen[pi])
            continue;
        const char *type = pi == 0 ? "sts" : "tlsa";
        json_t *details = json_array();
        for (size_t k = 0; k < nc; k++)
            if (strcmp(c[k].policy, type) == 0)
                json_array_append_new(details,
                                      json_pack("{s:s, s:s, s:I}", "result-type", c[k].result,
                                                "receiving-mx-hostname", c[k].mx,
                                                "failed-session-count", (json_int_t)c[k].n));
        json_array_append_new(policies,
                              json_pack("{s:{s:s, s:[], s:s}, s:{s:I, s:I}, s:o}", "policy",
                                        "policy-type", type, "policy-string", "policy-domain",
                                        domain, "summary", "total-successful-session-count",
                                        (json_int_t)ok[pi], "total-failure-session-count",
                                        (json_int_t)bad[pi], "failure-details", details));
    }
    json_t *report =
        json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:o}", "organization-name", org, "date-range",
                  "start-datetime", buf_cstr(&t0), "end-datetime", buf_cstr(&t1), "contact-info",
                  buf_cstr(&contact), "report-id", report_id, "policies", policies);
    char *text = report ? json_dumps(report, JSON_COMPACT) : NULL;
    if (text != NULL)
        buf_append_cstr(out, text);
    free(text);
    json_decref(report);
    buf_free(&t0);
    buf_free(&t1);
    buf_free(&contact);
    free(c);
    return true;
}

/* RFC 8460 5.3: multipart/report; report-type="tlsrpt", the JSON gzip'd as
 * application/tlsrpt+gzip. */
static void compose(const struct mta_tlsrpt *t, const char *domain, const char *to,
                    const char *report_id, struct slice json, int64_t start, int64_t end,
                    struct buf *out)
{
    const char *org = t->cfg->myhostname;
    char boundary[40];
    mime_boundary_make(boundary);
    struct buf gz = BUF_INIT;
    net_gzip(json.ptr, json.len, &gz);
    buf_printf(out, "From: TLS reporting <postmaster@%s>\r\nTo: <%s>\r\nDate: ", org, to);
    date_rfc5322_append(end, out);
    buf_printf(out,
               "\r\nMessage-ID: <%s>\r\nSubject: Report Domain: %s Submitter: %s Report-ID: "
               "<%s>\r\nTLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n"
               "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"%s\"\r\n"
               "\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
               "The TLS report (RFC 8460) of %s for the sessions to %s is attached.\r\n"
               "\r\n--%s\r\nContent-Type: application/tlsrpt+gzip\r\n"
               "Content-Disposition: attachment;\r\n\tfilename=\"%s!%s!%lld!%lld.json.gz\"\r\n",
               report_id, domain, org, report_id, domain, org, boundary, boundary, org, domain,
               boundary, org, domain, (long long)start, (long long)end);
    buf_append_cstr(out, "Content-Transfer-Encoding: base64\r\n\r\n");
    struct buf b64 = BUF_INIT;
    base64_encode(gz.data, gz.len, &b64);
    for (size_t i = 0; i < b64.len; i += 76) {
        buf_append(out, b64.data + i, b64.len - i < 76 ? b64.len - i : 76);
        buf_append_cstr(out, "\r\n");
    }
    buf_printf(out, "\r\n--%s--\r\n", boundary);
    buf_free(&b64);
    buf_free(&gz);
}

/* An https: report in flight, for the log. */
struct post_job {
    char domain[256];
    char uri[800];
};

static void on_posted(void *arg, int status, struct slice body, const char *why)
{
    struct post_job *j = arg;
    (void)body;
    if (status >= 200 && status < 300) /* RFC 8460 5.4: 200 or 201, typically */
        log_info("tlsrpt: %s: report posted to %s (HTTP %d)", j->domain, j->uri, status);
    else if (status == 0)
        log_warning("tlsrpt: %s: cannot post the report to %s: %s", j->domain, j->uri, why);
    else
        log_warning("tlsrpt: %s: %s refused the report: HTTP status %d", j->domain, j->uri, status);
    free(j);
}

/* RFC 8460 3 and 5.4: the JSON gzip'd as the body of a POST,
 * application/tlsrpt+gzip. */
static void post(struct mta_tlsrpt *t, const char *domain, const struct mta_tlsrpt_rua *r,
                 struct slice json)
{
    struct post_job *j = xcalloc(1, sizeof(*j));
    snprintf(j->domain, sizeof(j->domain), "%s", domain);
    snprintf(j->uri, sizeof(j->uri), "https://%s:%u%s", r->host, (unsigned)r->port, r->path);
    struct buf gz = BUF_INIT;
    net_gzip(json.ptr, json.len, &gz);
    const struct mta_https_request rq = {.host = r->host,
                                         .port = r->port,
                                         .path = r->path,
                                         .content_type = "application/tlsrpt+gzip",
                                         .body = buf_slice(&gz),
                                         .max_body = 65536,
                                         .timeout_s = POST_TIMEOUT_S};
    mta_https_start(t->https, &rq, on_posted, j);
    buf_free(&gz);
}

static void sending_done(struct mta_tlsrpt *t)
{
    struct buf path = BUF_INIT;
    path_of(t->cfg, "sending", &path);
    if (unlink(buf_cstr(&path)) != 0 && errno != ENOENT)
        log_warning("tlsrpt: %s: %s", buf_cstr(&path), strerror(errno));
    buf_free(&path);
    buf_reset(&t->sending);
}

static void on_policy_txt(void *arg, bool ok, const char *const *texts, size_t n)
{
    struct domain_job *j = arg;
    struct mta_tlsrpt *t = j->t;
    struct mta_tlsrpt_rua rua[4];
    size_t nm = 0, records = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        if (mta_tlsrpt_txt_parse(texts[i], rua, 4, &k)) {
            records++;
            nm = k;
        }
    }
    if (!ok)
        log_info("tlsrpt: %s: no report (DNS failure on _smtp._tls)", j->domain);
    else if (records == 1 && nm > 0) {
        int64_t now = wallclock_ms() / 1000;
        struct buf id = BUF_INIT, json = BUF_INIT;
        buf_printf(&id, "%lld.%s@%s", (long long)now, j->domain, t->cfg->myhostname);
        if (mta_tlsrpt_report_json(buf_slice(&t->sending), j->domain, t->cfg->myhostname,
                                   buf_cstr(&id), t->period_start, now, &json))
            for (size_t i = 0; i < nm; i++) {
                if (rua[i].https) {
                    post(t, j->domain, &rua[i], buf_slice(&json));
                    continue;
                }
                struct buf msg = BUF_INIT;
                compose(t, j->domain, rua[i].to, buf_cstr(&id), buf_slice(&json), t->period_start,
                        now, &msg);
                mta_out_spool_notice(t->o, j->domain, rua[i].to, buf_slice(&msg), false, false,
                                     "TLS report");
                buf_free(&msg);
            }
        buf_free(&id);
        buf_free(&json);
    }
    free(j);
    if (--t->pending == 0) {
        sending_done(t);
        t->period_start = wallclock_ms() / 1000;
    }
}

/* Renames records to sending (unless an earlier run left one), reads it,
 * and asks each domain's _smtp._tls record. */
static void report_now(struct mta_tlsrpt *t)
{
    if (t->pending > 0)
        return; /* the last run is still waiting for DNS */
    struct buf rec = BUF_INIT, snd = BUF_INIT;
    path_of(t->cfg, "records", &rec);
    path_of(t->cfg, "sending", &snd);
    struct stat st;
    if (stat(buf_cstr(&snd), &st) != 0 && rename(buf_cstr(&rec), buf_cstr(&snd)) != 0) {
        buf_free(&rec);
        buf_free(&snd);
        return; /* nothing recorded */
    }
    buf_reset(&t->sending);
    int fd = open(buf_cstr(&snd), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fd_read_all(fd, RECORDS_MAX, &t->sending) < 0)
        log_warning("tlsrpt: cannot read %s: %s", buf_cstr(&snd), strerror(errno));
    if (fd >= 0)
        close(fd);
    buf_free(&rec);
    buf_free(&snd);
    /* the domains, each once */
    struct buf seen = BUF_INIT; /* "\ndomain\n" entries */
    buf_append_byte(&seen, '\n');
    size_t i = 0;
    struct slice s = buf_slice(&t->sending);
    t->pending = 1; /* held until every lookup has started */
    while (i < s.len) {
        const char *tab = memchr(s.ptr + i, '\t', s.len - i);
        const char *nl = memchr(s.ptr + i, '\n', s.len - i);
        if (tab == NULL || (nl != NULL && nl < tab) || tab - (s.ptr + i) >= 250) {
            i = nl ? (size_t)(nl - s.ptr) + 1 : s.len;
            continue;
        }
        char dom[256], key[260];
        snprintf(dom, sizeof(dom), "%.*s", (int)(tab - (s.ptr + i)), s.ptr + i);
        snprintf(key, sizeof(key), "\n%s\n", dom);
        i = nl ? (size_t)(nl - s.ptr) + 1 : s.len;
        buf_append_byte(&seen, '\0');
        seen.len--;
        if (strstr(seen.data, key) != NULL)
            continue;
        buf_printf(&seen, "%s\n", dom);
        struct domain_job *j = xcalloc(1, sizeof(*j));
        j->t = t;
        snprintf(j->domain, sizeof(j->domain), "%s", dom);
        char name[300];
        snprintf(name, sizeof(name), "_smtp._tls.%s", dom);
        t->pending++;
        nexthop_txt(t->r, name, on_policy_txt, j);
    }
    buf_free(&seen);
    if (--t->pending == 0) {
        sending_done(t);
        t->period_start = wallclock_ms() / 1000;
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    report_now(arg);
}

struct mta_tlsrpt *mta_tlsrpt_new(struct event_base *base, const struct wharf_config *cfg,
                                  struct nexthop_resolver *r, struct mta_out *o,
                                  struct ssl_ctx_st *verify_ctx)
{
    if (!cfg->tlsrpt)
        return NULL;
    struct mta_tlsrpt *t = xcalloc(1, sizeof(*t));
    t->base = base;
    t->cfg = cfg;
    t->r = r;
    t->o = o;
    t->https = mta_https_new(base, r, verify_ctx);
    t->period_start = wallclock_ms() / 1000;
    buf_init(&t->sending);
    t->timer = event_new(base, -1, EV_PERSIST, on_timer, t);
    struct timeval tv = clock_timeval_ms(cfg->tlsrpt_interval);
    event_add(t->timer, &tv);
    return t;
}

void mta_tlsrpt_free(struct mta_tlsrpt *t)
{
    if (t == NULL)
        return;
    event_free(t->timer);
    mta_https_free(t->https); /* posts in flight end without callbacks */
    buf_free(&t->sending);
    free(t);
}
