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

#include "base/alloc.h"
#include "base/log.h"
#include "mailauth/mailauth.h"
#include "net/dns.h"
#include "smtp/smtp_milter.h"

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
    if (!cfg->mailauth_checks)
        return c;
    c->psl = psl_load(cfg->public_suffix_list, err);
    if (c->psl == NULL)
        goto fail;
    c->dns = dns_resolver_new(base, cfg->dns_resolver, NULL, err);
    if (c->dns == NULL)
        goto fail;
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
    struct timeval tv = {(time_t)(c->cfg->mailauth_dns_timeout / 1000),
                         (suseconds_t)(c->cfg->mailauth_dns_timeout % 1000) * 1000};
    event_add(j->timer, &tv);
    step(j); /* a result at once still comes through done_ev, from the loop */
    return j;
}
