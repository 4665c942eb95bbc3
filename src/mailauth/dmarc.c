/*
 * dmarc.c - DMARC records, the DNS Tree Walk, organizational domains and
 * alignment (dmarc.h).
 *
 * Must never read outside a record or a line of the suffix list, nor ask
 * more than DMARC_WALK_MAX questions for one walk.
 */
#include "mailauth/dmarc.h"

#include "base/alloc.h"
#include "mailauth/dkim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *dmarc_result_name(enum dmarc_result r)
{
    static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};
    return names[r];
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    static const char *const names[] = {"none", "quarantine", "reject"};
    return names[p];
}

static bool policy_parse(struct slice v, enum dmarc_policy *p)
{
    if (slice_eq_cstr_nocase(v, "none"))
        *p = DMARC_P_NONE;
    else if (slice_eq_cstr_nocase(v, "quarantine"))
        *p = DMARC_P_QUARANTINE;
    else if (slice_eq_cstr_nocase(v, "reject"))
        *p = DMARC_P_REJECT;
    else
        return false;
    return true;
}

bool dmarc_record_parse(struct slice txt, struct dmarc_record *r)
{
    struct dkim_tag tags[DKIM_TAGS_MAX];
    size_t n;
    memset(r, 0, sizeof(*r));
    r->pct = 100;
    /* the same tag-list grammar as DKIM (RFC 7489 6.4) */
    if (!dkim_taglist_parse(txt, tags, DKIM_TAGS_MAX, &n) || n == 0 ||
        !slice_eq(tags[0].name, slice_from_cstr("v")) ||
        !slice_eq(tags[0].value, slice_from_cstr("DMARC1")))
        return false;
    struct slice v;
    if (!dkim_tag_get(tags, n, "p", &v) || !policy_parse(v, &r->p))
        return false;
    r->sp = r->p;
    if (dkim_tag_get(tags, n, "sp", &v) && !policy_parse(v, &r->sp))
        r->sp = r->p; /* an unknown sp= is ignored (6.3) */
    if (dkim_tag_get(tags, n, "adkim", &v))
        r->adkim_strict = slice_eq_cstr_nocase(v, "s");
    if (dkim_tag_get(tags, n, "aspf", &v))
        r->aspf_strict = slice_eq_cstr_nocase(v, "s");
    if (dkim_tag_get(tags, n, "pct", &v)) {
        unsigned pct = 0;
        size_t i = 0;
        for (; i < v.len && i < 4 && isdigit((unsigned char)v.ptr[i]); i++)
            pct = pct * 10 + (unsigned)(v.ptr[i] - '0');
        if (i == v.len && i > 0 && pct <= 100)
            r->pct = pct;
    }
    if (dkim_tag_get(tags, n, "psd", &v)) /* u or unknown: the default */
        r->psd = slice_eq_cstr_nocase(v, "y")   ? DMARC_PSD_Y
                 : slice_eq_cstr_nocase(v, "n") ? DMARC_PSD_N
                                                : DMARC_PSD_U;
    return true;
}

/* ---- the Public Suffix List ---- */

struct psl {
    char **rules; /* sorted: "com", "*.ck", "!www.ck" */
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct psl *psl_load(const char *path, struct buf *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        buf_printf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct psl *l = xcalloc(1, sizeof(*l));
    size_t cap = 0;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strcspn(line, " \t\r\n");
        line[len] = '\0';
        if (len == 0 || (line[0] == '/' && line[1] == '/'))
            continue;
        for (size_t i = 0; i < len; i++)
            line[i] = (char)tolower((unsigned char)line[i]);
        if (l->n == cap) {
            cap = cap ? cap * 2 : 1024;
            l->rules = xreallocarray(l->rules, cap, sizeof(*l->rules));
        }
        l->rules[l->n++] = xstrdup(line);
    }
    fclose(f);
    qsort(l->rules, l->n, sizeof(*l->rules), cmp_str);
    return l;
}

void psl_free(struct psl *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->rules[i]);
    free(l->rules);
    free(l);
}

static bool has_rule(const struct psl *l, const char *r)
{
    return l != NULL && bsearch(&r, l->rules, l->n, sizeof(*l->rules), cmp_str) != NULL;
}

void psl_org_domain(const struct psl *l, const char *domain, struct buf *out)
{
    /* label starts, left to right */
    const char *labels[128];
    size_t n = 0;
    for (const char *p = domain; *p && n < 128;) {
        labels[n++] = p;
        const char *dot = strchr(p, '.');
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    size_t suffix = n ? n - 1 : 0; /* the default rule "*": the last label */
    struct buf tmp = BUF_INIT;
    for (size_t i = 0; i < n; i++) { /* longest candidate first */
        buf_reset(&tmp);
        buf_printf(&tmp, "!%s", labels[i]);
        if (has_rule(l, buf_cstr(&tmp))) {
            suffix = i + 1 < n ? i + 1 : i;
            break;
        }
        if (has_rule(l, labels[i])) {
            suffix = i;
            break;
        }
        if (i + 1 < n) {
            buf_reset(&tmp);
            buf_printf(&tmp, "*.%s", labels[i + 1]);
            if (has_rule(l, buf_cstr(&tmp))) {
                suffix = i;
                break;
            }
        }
    }
    buf_free(&tmp);
    size_t org = suffix > 0 ? suffix - 1 : 0;
    buf_append_cstr(out, n ? labels[org] : domain);
}

/* The one DMARC record at _dmarc.domain: 1 found, 0 none, -1 temperror, -2 need. */
static int fetch(struct authdns *dns, const char *domain, struct dmarc_record *r)
{
    struct buf name = BUF_INIT;
    buf_printf(&name, "_dmarc.%s", domain);
    const struct authdns_answer *a = authdns_get(dns, buf_cstr(&name), AUTHDNS_TXT);
    buf_free(&name);
    if (a == NULL)
        return -2;
    if (a->status == AUTHDNS_TEMPFAIL)
        return -1;
    int found = 0;
    for (size_t k = 0; k < a->n; k++) {
        struct dmarc_record tmp;
        struct slice t = authdns_record(a, k);
        if (t.len >= 8 && strncasecmp(t.ptr, "v=DMARC1", 8) == 0) {
            if (found++ == 0 && dmarc_record_parse(t, &tmp))
                *r = tmp;
            else
                found = 99;
        }
    }
    return found == 1 ? 1 : 0; /* several records: as if none (6.6.3) */
}

/* ---- the DNS Tree Walk ---- */

/* The walk's names and, for each, the index of its first label in domain. */
static size_t walk_names(const char *domain, const char *names[DMARC_WALK_MAX],
                         size_t idx[DMARC_WALK_MAX])
{
    size_t labels = 1;
    for (const char *p = domain; *p; p++)
        labels += *p == '.';
    /* more than 7 labels: jump from domain to its last 7 (DMARCbis 4.10 step 5) */
    size_t first = labels > DMARC_WALK_MAX ? labels - (DMARC_WALK_MAX - 1) : 1;
    size_t k = 0, i = 0;
    names[k] = domain, idx[k++] = 0;
    for (const char *p = domain; (p = strchr(p, '.')) != NULL;) {
        p++, i++;
        if (i >= first && *p != '\0' && k < DMARC_WALK_MAX)
            names[k] = p, idx[k++] = i;
    }
    return k;
}

size_t dmarc_walk_names(const char *domain, const char *names[DMARC_WALK_MAX])
{
    size_t idx[DMARC_WALK_MAX];
    return walk_names(domain, names, idx);
}

/* The suffix of domain that starts at label i. */
static const char *label_at(const char *domain, size_t i)
{
    const char *p = domain;
    for (; i > 0 && p != NULL; i--)
        if ((p = strchr(p, '.')) != NULL)
            p++;
    return p != NULL ? p : domain;
}

void dmarc_walk(struct authdns *dns, const char *domain, bool policy_only, struct dmarc_walk *w)
{
    memset(w, 0, sizeof(*w));
    w->org = domain;
    const char *names[DMARC_WALK_MAX];
    size_t idx[DMARC_WALK_MAX];
    size_t k = walk_names(domain, names, idx);
    const char *fewest = NULL; /* the last name with a record so far */
    bool fixed = false;
    for (size_t i = 0; i < k && !fixed; i++) {
        struct dmarc_record r;
        int rc = fetch(dns, names[i], &r);
        if (rc == -2 || rc == -1) {
            w->status = rc == -2 ? 0 : -1;
            return;
        }
        if (rc == 0)
            continue;
        if (!w->have_policy) {
            w->have_policy = true;
            w->policy_at_domain = i == 0;
            w->policy = r;
            if (policy_only)
                break;
        }
        if (r.psd == DMARC_PSD_Y) { /* a public suffix: one label below it */
            w->org = idx[i] > 0 ? label_at(domain, idx[i] - 1) : domain;
            fixed = true;
        } else if (r.psd == DMARC_PSD_N) {
            w->org = names[i];
            fixed = true;
        }
        fewest = names[i];
    }
    if (!fixed && fewest != NULL && !policy_only)
        w->org = fewest;
    w->status = 1;
}

/* ---- the check ---- */

static bool aligned(const struct psl *psl, const char *a, const char *from, bool strict)
{
    if (a == NULL || a[0] == '\0')
        return false;
    if (strcasecmp(a, from) == 0)
        return true;
    if (strict)
        return false;
    struct buf x = BUF_INIT, y = BUF_INIT;
    psl_org_domain(psl, a, &x);
    psl_org_domain(psl, from, &y);
    bool eq = strcasecmp(buf_cstr(&x), buf_cstr(&y)) == 0;
    buf_free(&x);
    buf_free(&y);
    return eq;
}

/* RFC 7489's discovery: _dmarc.FROM, else _dmarc.ORG from the list.
 * 1 found, 0 none, -1 temperror, -2 need. */
static int discover_psl(const struct psl *psl, struct authdns *dns, const char *from,
                        struct dmarc_record *rec, bool *at_domain)
{
    int rc = fetch(dns, from, rec);
    *at_domain = true;
    struct buf org = BUF_INIT;
    psl_org_domain(psl, from, &org);
    if (rc == 0 && strcasecmp(buf_cstr(&org), from) != 0) {
        rc = fetch(dns, buf_cstr(&org), rec);
        *at_domain = false;
    }
    buf_free(&org);
    return rc;
}

/* Relaxed alignment through the walk: both organizational domains the same.
 * 1 aligned, 0 not, -1 DNS failure, -2 need. */
static int aligned_walk(struct authdns *dns, const char *a, const char *from, const char *from_org,
                        bool strict)
{
    if (a == NULL || a[0] == '\0')
        return 0;
    if (strcasecmp(a, from) == 0)
        return 1;
    if (strict)
        return 0;
    struct dmarc_walk w;
    dmarc_walk(dns, a, false, &w);
    if (w.status != 1)
        return w.status == 0 ? -2 : -1;
    return strcasecmp(w.org, from_org) == 0;
}

/* Whether some identifier could only align in relaxed mode. */
static bool want_org(const struct dmarc_input *in, const struct dmarc_record *rec)
{
    bool want = !rec->aspf_strict && in->spf_pass && in->spf_domain != NULL &&
                strcasecmp(in->spf_domain, in->from_domain) != 0;
    for (size_t i = 0; i < in->n_dkim_pass && !rec->adkim_strict; i++)
        want |= strcasecmp(in->dkim_pass[i], in->from_domain) != 0;
    return want;
}

void dmarc_check(const struct dmarc_input *in, const struct psl *psl, struct authdns *dns,
                 struct dmarc_outcome *out)
{
    memset(out, 0, sizeof(*out));
    if (in->from_domain == NULL || in->from_domain[0] == '\0') {
        out->done = true;
        out->result = DMARC_PERMERROR;
        snprintf(out->reason, sizeof(out->reason), "no single From: domain");
        return;
    }
    struct dmarc_record rec;
    bool at_domain = true;
    int rc;
    struct dmarc_walk from_walk = {.status = 1, .org = in->from_domain};
    if (psl != NULL) {
        rc = discover_psl(psl, dns, in->from_domain, &rec, &at_domain);
    } else {
        struct dmarc_walk w;
        dmarc_walk(dns, in->from_domain, true, &w);
        rc = w.status == 0 ? -2 : w.status < 0 ? -1 : w.have_policy ? 1 : 0;
        rec = w.policy;
        at_domain = w.policy_at_domain;
        if (rc == 1 && want_org(in, &rec)) /* the From: domain's own organization */
            dmarc_walk(dns, in->from_domain, false, &from_walk);
        if (from_walk.status == 0)
            return;
        if (from_walk.status < 0)
            rc = -1;
    }
    if (rc == -2)
        return;
    int pass = 0, dns_fail = 0, need = 0;
    if (rc == 1) {
        const char *ids[1 + DMARC_DKIM_MAX];
        bool strict[1 + DMARC_DKIM_MAX];
        size_t n = 0;
        if (in->spf_pass)
            ids[n] = in->spf_domain, strict[n++] = rec.aspf_strict;
        for (size_t i = 0; i < in->n_dkim_pass && i < DMARC_DKIM_MAX; i++)
            ids[n] = in->dkim_pass[i], strict[n++] = rec.adkim_strict;
        for (size_t i = 0; i < n && !pass; i++) {
            int a = psl != NULL
                        ? aligned(psl, ids[i], in->from_domain, strict[i])
                        : aligned_walk(dns, ids[i], in->from_domain, from_walk.org, strict[i]);
            pass = a == 1, need |= a == -2, dns_fail |= a == -1;
        }
        if (!pass && need)
            return;
        if (!pass && dns_fail)
            rc = -1;
    }
    out->done = true;
    if (rc == -1) {
        out->result = DMARC_TEMPERROR;
        snprintf(out->reason, sizeof(out->reason), "DNS failure looking up the DMARC record");
        return;
    }
    if (rc == 0) {
        out->result = DMARC_NONE;
        return;
    }
    out->have_record = true;
    out->published = at_domain ? rec.p : rec.sp;
    out->result = pass ? DMARC_PASS : DMARC_FAIL;
    if (pass)
        return;
    out->policy = out->published;
    if (in->sample >= rec.pct) /* 6.6.4: outside pct=, one step milder */
        out->policy = out->policy == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}
