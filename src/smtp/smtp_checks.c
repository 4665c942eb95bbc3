/*
 * smtp_checks.c - the asynchronous checks after end of data (see
 * smtp_checks.h): runs src/mailauth's pure checks, asks the DNS kit the
 * questions they leave in a struct authdns, all at once, and runs them again
 * when the answers are in, until they are done or the time is up.
 *
 * Must never block the loop, never outlive its session (cancel frees every
 * query in flight), and never call back from inside smtp_checks_run.
 */
#include "smtp/smtp_checks.h"
#include "base/clock.h"

#include "base/alloc.h"
#include "base/log.h"
#include "mailauth/mailauth.h"
#include "mailauth/spf.h"
#include "net/dns.h"
#include "net/net.h"
#include "smtp/smtp_milter.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum action { ACT_ANNOTATE, ACT_QUARANTINE, ACT_REJECT, ACT_HONOUR };

struct smtp_checks {
    struct event_base *base;
    const struct wharf_config *cfg;
    struct dns_resolver *dns;
    struct psl *psl;
    const char *authserv_id;
    enum action spf, dkim, dmarc;
    struct smtp_milters *milters;
    struct list_zone *zones; /* dnswl_zones, then dnsbl_zones */
    size_t n_zones;
};

/* One entry of dnsbl_zones or dnswl_zones. */
struct list_zone {
    char *zone;
    bool allow;      /* from dnswl_zones */
    bool any;        /* no =ADDRESS: any listing code counts */
    uint8_t want[4]; /* the =ADDRESS */
};

struct query {
    struct smtp_check_job *job;
    size_t idx; /* in job->dns */
    int id;
};

struct smtp_check_job {
    struct smtp_checks *c;
    struct mailauth_input in;
    struct smtp_check_msg msg; /* its strings are the job's copies */
    char *id, *client_ip, *helo, *sender, *auth_user, *service;
    char **rcpts;
    struct smtp_check_result r;
    struct smtp_milter_job *milter;
    struct authdns dns;
    struct mailauth_result res;
    struct query **q; /* in flight */
    size_t n_q, cap_q;
    struct event *timer, *done_ev;
    smtp_checks_cb *cb;
    void *arg;
};

static bool action_parse(const char *s, bool honour_ok, enum action *a)
{
    if (strcmp(s, "annotate") == 0)
        *a = ACT_ANNOTATE;
    else if (strcmp(s, "quarantine") == 0)
        *a = ACT_QUARANTINE;
    else if (strcmp(s, "reject") == 0 && !honour_ok)
        *a = ACT_REJECT;
    else if ((strcmp(s, "honour") == 0 || strcmp(s, "honor") == 0) && honour_ok)
        *a = ACT_HONOUR;
    else
        return false;
    return true;
}

static bool zones_parse(struct smtp_checks *c, const struct strlist *l, bool allow, struct buf *err)
{
    for (size_t i = 0; i < l->n; i++) {
        c->zones = xreallocarray(c->zones, c->n_zones + 1, sizeof(*c->zones));
        struct list_zone *z = &c->zones[c->n_zones++];
        memset(z, 0, sizeof(*z));
        z->allow = allow;
        z->zone = xstrdup(l->v[i]);
        char *eq = strchr(z->zone, '=');
        z->any = eq == NULL;
        if (eq != NULL) {
            *eq = '\0';
            if (inet_pton(AF_INET, eq + 1, z->want) != 1) {
                buf_printf(err, "%s: %s is not an IPv4 address",
                           allow ? "dnswl_zones" : "dnsbl_zones", eq + 1);
                return false;
            }
        }
        if (z->zone[0] == '\0' || strlen(z->zone) > 180) {
            buf_printf(err, "%s: bad zone %s", allow ? "dnswl_zones" : "dnsbl_zones", l->v[i]);
            return false;
        }
    }
    return true;
}

struct smtp_checks *smtp_checks_new(struct event_base *base, const struct wharf_config *cfg,
                                    struct buf *err)
{
    struct smtp_checks *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->cfg = cfg;
    c->authserv_id = cfg->authserv_id[0] ? cfg->authserv_id : cfg->myhostname;
    if (!action_parse(cfg->spf_fail_action, false, &c->spf)) {
        buf_printf(err, "spf_fail_action must be reject, quarantine or annotate");
        goto fail;
    }
    if (!action_parse(cfg->dkim_fail_action, false, &c->dkim)) {
        buf_printf(err, "dkim_fail_action must be reject, quarantine or annotate");
        goto fail;
    }
    if (!action_parse(cfg->dmarc_action, true, &c->dmarc)) {
        buf_printf(err, "dmarc_action must be honour, quarantine or annotate");
        goto fail;
    }
    c->milters = smtp_milters_new(base, cfg, err);
    if (c->milters == NULL)
        goto fail;
    if (!zones_parse(c, &cfg->dnswl_zones, true, err) ||
        !zones_parse(c, &cfg->dnsbl_zones, false, err))
        goto fail;
    if (strcmp(cfg->dmarc_discovery, "treewalk") != 0 && strcmp(cfg->dmarc_discovery, "psl") != 0) {
        buf_printf(err, "dmarc_discovery must be treewalk or psl");
        goto fail;
    }
    /* the list only for RFC 7489's discovery; NULL makes DMARC walk the DNS */
    if (cfg->mailauth_checks && strcmp(cfg->dmarc_discovery, "psl") == 0) {
        c->psl = psl_load(cfg->public_suffix_list, err);
        if (c->psl == NULL)
            goto fail;
    }
    if (cfg->mailauth_checks || c->n_zones > 0) {
        c->dns = dns_resolver_new(base, cfg->dns_resolver, NULL, err);
        if (c->dns == NULL)
            goto fail;
    }
    return c;
fail:
    smtp_checks_free(c);
    return NULL;
}

void smtp_checks_free(struct smtp_checks *c)
{
    if (c == NULL)
        return;
    dns_resolver_free(c->dns);
    psl_free(c->psl);
    smtp_milters_free(c->milters);
    for (size_t i = 0; i < c->n_zones; i++)
        free(c->zones[i].zone);
    free(c->zones);
    free(c);
}

bool smtp_checks_wanted(const struct smtp_checks *c, const char *service, bool mailauth)
{
    return (mailauth && c->cfg->mailauth_checks) || smtp_milters_apply(c->milters, service);
}

const char *smtp_checks_authserv_id(const struct smtp_checks *c)
{
    return c->authserv_id;
}

static void job_free(struct smtp_check_job *j)
{
    smtp_milter_cancel(j->milter);
    buf_free(&j->r.header);
    buf_free(&j->r.message);
    for (size_t i = 0; i < j->n_q; i++) {
        dns_cancel(j->c->dns, j->q[i]->id);
        free(j->q[i]);
    }
    free(j->q);
    if (j->timer)
        event_free(j->timer);
    if (j->done_ev)
        event_free(j->done_ev);
    authdns_free(&j->dns);
    free(j->id);
    free(j->client_ip);
    free(j->helo);
    free(j->sender);
    free(j->auth_user);
    free(j->service);
    for (size_t i = 0; i < j->msg.n_rcpts; i++)
        free(j->rcpts[i]);
    free(j->rcpts);
    free(j);
}

void smtp_checks_cancel(struct smtp_check_job *j)
{
    if (j != NULL)
        job_free(j);
}

/* The verdict from the results and the actions configured. */
static void decide(struct smtp_check_job *j, struct smtp_check_result *r)
{
    const struct smtp_checks *c = j->c;
    const struct mailauth_result *m = &j->res;
    r->verdict = SMTP_VERDICT_ACCEPT;
    enum action a = ACT_ANNOTATE;
    if (m->dmarc.result == DMARC_FAIL) {
        if (c->dmarc == ACT_HONOUR)
            a = m->dmarc.policy == DMARC_P_REJECT       ? ACT_REJECT
                : m->dmarc.policy == DMARC_P_QUARANTINE ? ACT_QUARANTINE
                                                        : ACT_ANNOTATE;
        else if (c->dmarc == ACT_QUARANTINE && m->dmarc.policy != DMARC_P_NONE)
            a = ACT_QUARANTINE;
        if (a == ACT_REJECT) {
            r->verdict = SMTP_VERDICT_REJECT;
            snprintf(r->reply, sizeof(r->reply), "550 5.7.1 Email rejected per DMARC policy for %s",
                     m->from_domain);
            snprintf(r->log, sizeof(r->log), "dmarc=fail (p=reject) header.from=%s",
                     m->from_domain);
            return;
        }
        if (a == ACT_QUARANTINE) {
            r->verdict = SMTP_VERDICT_QUARANTINE;
            snprintf(r->log, sizeof(r->log), "dmarc=fail (p=quarantine) header.from=%s",
                     m->from_domain);
        }
    }
    if (m->spf.result == SPF_FAIL && c->spf != ACT_ANNOTATE) {
        if (c->spf == ACT_REJECT) {
            r->verdict = SMTP_VERDICT_REJECT;
            snprintf(r->reply, sizeof(r->reply),
                     "550 5.7.23 SPF check failed: %s is not allowed to send for %s", j->client_ip,
                     m->spf.domain);
            snprintf(r->log, sizeof(r->log), "spf=fail for %s", m->spf.domain);
            return;
        }
        r->verdict = SMTP_VERDICT_QUARANTINE;
        snprintf(r->log, sizeof(r->log), "spf=fail for %s", m->spf.domain);
    }
    bool any_pass = false, any_fail = false;
    for (size_t i = 0; i < m->n_dkim; i++) {
        any_pass |= m->dkim[i].result == DKIM_PASS;
        any_fail |= m->dkim[i].result == DKIM_FAIL;
    }
    if (any_fail && !any_pass && c->dkim != ACT_ANNOTATE) {
        if (c->dkim == ACT_REJECT) {
            r->verdict = SMTP_VERDICT_REJECT;
            snprintf(r->reply, sizeof(r->reply), "550 5.7.20 No valid DKIM signature");
            snprintf(r->log, sizeof(r->log), "dkim=fail");
            return;
        }
        r->verdict = SMTP_VERDICT_QUARANTINE;
        snprintf(r->log, sizeof(r->log), "dkim=fail");
    }
}

static void report(struct smtp_check_job *j)
{
    j->milter = NULL;
    j->cb(j->arg, &j->r);
    job_free(j);
}

static void milter_done(void *arg, struct smtp_check_result *res)
{
    (void)res; /* j->r */
    report(arg);
}

/* Mail authentication is over (or was not wanted): its verdict, then the
 * milters unless it is a refusal already. */
static void finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_check_job *j = arg;
    if (j->msg.mailauth) {
        mailauth_ar_header(&j->in, &j->res, j->c->authserv_id, &j->r.header);
        decide(j, &j->r);
    }
    if (j->r.verdict == SMTP_VERDICT_REJECT || !smtp_milters_apply(j->c->milters, j->service)) {
        report(j);
        return;
    }
    j->milter =
        smtp_milter_run(j->c->milters, &j->msg, buf_slice(&j->r.header), &j->r, milter_done, j);
}

static void on_answer(void *arg, int err, struct ub_result *ur);

/* Runs the checks; asks what they still need; finishes when they are done. */
static void step(struct smtp_check_job *j)
{
    for (int round = 0; round <= AUTHDNS_MAX; round++) {
        mailauth_check(&j->in, j->c->psl, &j->dns, &j->res);
        if (j->res.done) {
            if (j->timer)
                event_del(j->timer);
            event_active(j->done_ev, EV_TIMEOUT, 0);
            return;
        }
        bool asked = false;
        for (size_t i = 0; i < j->dns.n; i++) {
            struct authdns_answer *a = &j->dns.a[i];
            if (a->status != AUTHDNS_WANTED || a->asked)
                continue;
            a->asked = true;
            struct query *q = xcalloc(1, sizeof(*q));
            q->job = j;
            q->idx = i;
            int rc = 0;
            q->id = dns_query(j->c->dns, a->name, a->type, on_answer, q, &rc);
            if (q->id < 0) {
                free(q);
                authdns_set(&j->dns, i, AUTHDNS_TEMPFAIL);
                continue;
            }
            if (j->n_q == j->cap_q) {
                j->cap_q = j->cap_q ? 2 * j->cap_q : 8;
                j->q = xreallocarray(j->q, j->cap_q, sizeof(*j->q));
            }
            j->q[j->n_q++] = q;
            asked = true;
        }
        if (asked || j->n_q > 0)
            return; /* on_answer runs the checks again */
        /* every question failed at once: run again with those failures */
    }
    event_active(j->timer, EV_TIMEOUT, 0); /* no progress: end as on a timeout */
}

static void on_answer(void *arg, int err, struct ub_result *ur)
{
    struct query *q = arg;
    struct smtp_check_job *j = q->job;
    enum authdns_status st;
    if (err != 0 || ur == NULL || (ur->rcode != 0 && ur->rcode != 3))
        st = AUTHDNS_TEMPFAIL;
    else if (ur->rcode == 3 || ur->nxdomain)
        st = AUTHDNS_NXDOMAIN;
    else
        st = AUTHDNS_OK;
    if (st == AUTHDNS_OK && ur->havedata)
        for (int i = 0; ur->data[i] != NULL; i++)
            authdns_add(&j->dns, q->idx, ur->data[i], (size_t)ur->len[i]);
    authdns_set(&j->dns, q->idx, st);
    if (ur != NULL)
        ub_resolve_free(ur);
    for (size_t i = 0; i < j->n_q; i++)
        if (j->q[i] == q) {
            j->q[i] = j->q[--j->n_q];
            break;
        }
    free(q);
    if (j->n_q == 0)
        step(j);
}

/* Time is up: what has not come is a temporary error. */
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_check_job *j = arg;
    log_info("%s: DNS answers for the checks did not come in time", j->id);
    for (size_t i = 0; i < j->n_q; i++) {
        dns_cancel(j->c->dns, j->q[i]->id);
        free(j->q[i]);
    }
    j->n_q = 0;
    for (int round = 0; round <= AUTHDNS_MAX; round++) {
        for (size_t i = 0; i < j->dns.n; i++)
            if (j->dns.a[i].status == AUTHDNS_WANTED)
                authdns_set(&j->dns, i, AUTHDNS_TEMPFAIL);
        mailauth_check(&j->in, j->c->psl, &j->dns, &j->res);
        if (j->res.done)
            break;
    }
    j->res.done = true;
    event_active(j->done_ev, EV_TIMEOUT, 0);
}

struct smtp_check_job *smtp_checks_run(struct smtp_checks *c, const struct smtp_check_msg *m,
                                       smtp_checks_cb *cb, void *arg)
{
    struct smtp_check_job *j = xcalloc(1, sizeof(*j));
    j->c = c;
    j->cb = cb;
    j->arg = arg;
    j->id = xstrdup(m->id);
    j->client_ip = xstrdup(m->client_ip);
    j->helo = xstrdup(m->helo ? m->helo : "");
    j->sender = xstrdup(m->sender ? m->sender : "");
    j->auth_user = m->auth_user ? xstrdup(m->auth_user) : NULL;
    j->service = xstrdup(m->service ? m->service : "smtp");
    j->rcpts = xcalloc(m->n_rcpts + 1, sizeof(*j->rcpts));
    for (size_t i = 0; i < m->n_rcpts; i++)
        j->rcpts[i] = xstrdup(m->rcpts[i]);
    j->msg = (struct smtp_check_msg){
        .id = j->id,
        .client_ip = j->client_ip,
        .helo = j->helo,
        .sender = j->sender,
        .auth_user = j->auth_user,
        .service = j->service,
        .rcpts = (const char *const *)j->rcpts,
        .n_rcpts = m->n_rcpts,
        .mailauth = m->mailauth && c->cfg->mailauth_checks,
        .message = m->message,
    };
    buf_init(&j->r.header);
    buf_init(&j->r.message);
    unsigned char rnd = 0;
    RAND_bytes(&rnd, 1);
    j->in = (struct mailauth_input){
        .message = m->message,
        .client_ip = j->client_ip,
        .helo = j->helo,
        .sender = j->sender,
        .receiver = c->cfg->myhostname,
        .now = (int64_t)time(NULL),
        .sample = rnd % 100,
    };
    authdns_init(&j->dns);
    j->done_ev = event_new(c->base, -1, 0, finish, j);
    j->timer = event_new(c->base, -1, 0, on_timeout, j);
    if (!j->msg.mailauth) {
        event_active(j->done_ev, EV_TIMEOUT, 0);
        return j;
    }
    struct timeval tv = clock_timeval_ms(c->cfg->mailauth_dns_timeout);
    event_add(j->timer, &tv);
    step(j); /* a result at once still comes through done_ev, from the loop */
    return j;
}

/* ---- at connect: DNS block and allow lists ---- */

struct connect_query {
    struct smtp_connect_job *j;
    size_t zone;
    int id;
};

struct smtp_connect_job {
    struct smtp_checks *c;
    struct connect_query **q; /* per zone: the query in flight, or NULL */
    bool *listed;             /* per zone: answered, and listed */
    size_t pending;           /* queries in flight */
    struct event *timer, *done_ev;
    smtp_connect_cb *cb;
    void *arg;
    char ip[64];
};

bool smtp_checks_connect_wanted(const struct smtp_checks *c, const char *client_ip)
{
    return c->n_zones > 0 && c->dns != NULL && !net_addr_exempt(c->cfg, client_ip);
}

/* An allow list that lists the client wins; else the first block list that does. */
static const char *connect_verdict(const struct smtp_connect_job *j)
{
    for (size_t i = 0; i < j->c->n_zones; i++)
        if (j->listed[i] && j->c->zones[i].allow)
            return NULL;
    for (size_t i = 0; i < j->c->n_zones; i++)
        if (j->listed[i] && !j->c->zones[i].allow)
            return j->c->zones[i].zone;
    return NULL;
}

void smtp_checks_connect_cancel(struct smtp_connect_job *j)
{
    if (j == NULL)
        return;
    for (size_t i = 0; i < j->c->n_zones; i++)
        if (j->q[i] != NULL) {
            dns_cancel(j->c->dns, j->q[i]->id);
            free(j->q[i]);
        }
    event_free(j->timer);
    event_free(j->done_ev);
    free(j->q);
    free(j->listed);
    free(j);
}

static void connect_finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_connect_job *j = arg;
    if (what & EV_TIMEOUT && j->pending > 0)
        log_info("%s: the DNS lists did not all answer in time", j->ip);
    const char *listed = connect_verdict(j);
    smtp_connect_cb *cb = j->cb;
    void *cb_arg = j->arg;
    char zone[200] = "";
    if (listed != NULL)
        snprintf(zone, sizeof(zone), "%s", listed);
    smtp_checks_connect_cancel(j);
    cb(cb_arg, listed ? zone : NULL);
}

/* Is this answer of a list a listing? RFC 5782 2.1: 127.0.0.0/8; the
 * well-known lists answer 127.255.255.0/24 for their own errors. */
static bool is_listing(const struct list_zone *z, const struct ub_result *ur)
{
    if (ur == NULL || !ur->havedata)
        return false;
    for (int i = 0; ur->data[i] != NULL; i++) {
        const uint8_t *a = (const uint8_t *)ur->data[i];
        if (ur->len[i] != 4)
            continue;
        if (z->any ? (a[0] == 127 && !(a[1] == 255 && a[2] == 255)) : memcmp(a, z->want, 4) == 0)
            return true;
    }
    return false;
}

static void on_list_answer(void *arg, int err, struct ub_result *ur)
{
    struct connect_query *q = arg;
    struct smtp_connect_job *j = q->j;
    size_t zi = q->zone;
    free(q);
    j->q[zi] = NULL;
    j->pending--;
    j->listed[zi] = err == 0 && is_listing(&j->c->zones[zi], ur);
    if (ur != NULL)
        ub_resolve_free(ur);
    if (j->pending == 0 || (j->listed[zi] && j->c->zones[zi].allow)) {
        event_del(j->timer);
        event_active(j->done_ev, 0, 0);
    }
}

struct smtp_connect_job *smtp_checks_connect(struct smtp_checks *c, const char *client_ip,
                                             smtp_connect_cb *cb, void *arg)
{
    struct smtp_connect_job *j = xcalloc(1, sizeof(*j));
    j->c = c;
    j->cb = cb;
    j->arg = arg;
    snprintf(j->ip, sizeof(j->ip), "%s", client_ip);
    j->q = xcalloc(c->n_zones, sizeof(*j->q));
    j->listed = xcalloc(c->n_zones, sizeof(*j->listed));
    j->timer = event_new(c->base, -1, 0, connect_finish, j);
    j->done_ev = event_new(c->base, -1, 0, connect_finish, j);
    struct spf_ip ip;
    bool parsed = spf_ip_parse(client_ip, &ip);
    struct buf name = BUF_INIT;
    for (size_t i = 0; i < c->n_zones && parsed; i++) {
        buf_reset(&name);
        dns_reverse_name(ip.family, ip.addr, c->zones[i].zone, &name);
        struct connect_query *q = xcalloc(1, sizeof(*q));
        q->j = j;
        q->zone = i;
        int rc = 0;
        q->id = dns_query(c->dns, buf_cstr(&name), 1 /* A */, on_list_answer, q, &rc);
        if (q->id < 0) {
            free(q);
            continue;
        }
        j->q[i] = q;
        j->pending++;
    }
    buf_free(&name);
    if (j->pending == 0) {
        event_active(j->done_ev, 0, 0);
    } else {
        int64_t ms = c->cfg->dnsbl_timeout;
        struct timeval tv = clock_timeval_ms(ms);
        event_add(j->timer, &tv);
    }
    return j;
}
