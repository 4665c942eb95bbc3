/*
 * smtp_policy.c - recipient, relay and sender decisions (see smtp_policy.h).
 *
 * Asks the directory process (directory/directory_client.h); when it cannot
 * answer, recipients get a temporary failure (451), never a rejection.
 */
#include "smtp/smtp_policy.h"

#include "base/alloc.h"
#include "base/log.h"
#include "directory/directory_client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct smtp_policy {
    const struct wharf_config *cfg;
    struct directory_client *dir;
};

struct policy_req {
    struct smtp_policy *p;
    void *handle;
    bool may_relay;
    char *account; /* sender checks: the authenticated account */
    smtp_rcpt_cb rcpt_cb;
    smtp_sender_cb sender_cb;
    smtp_home_cb home_cb;
    void *arg;
};

struct smtp_policy *smtp_policy_new(struct event_base *base, const struct wharf_config *cfg)
{
    struct smtp_policy *p = xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    p->dir = directory_client_new(base, cfg);
    return p;
}

void smtp_policy_free(struct smtp_policy *p)
{
    directory_client_free(p->dir);
    free(p);
}

static void req_free(struct policy_req *r)
{
    free(r->account);
    free(r);
}

static void rcpt_answer(void *arg, const struct directory_answer *a)
{
    struct policy_req *r = arg;
    enum smtp_rcpt_verdict v;
    if (a->status != DIRECTORY_LOOKUP_OK)
        v = SMTP_RCPT_TEMPFAIL;
    else if (a->kind == DIRECTORY_LOCAL)
        v = SMTP_RCPT_LOCAL;
    else if (a->kind == DIRECTORY_NO_SUCH_USER)
        v = a->loop ? SMTP_RCPT_LOOP : SMTP_RCPT_NO_SUCH_USER;
    else
        v = r->may_relay ? SMTP_RCPT_RELAY : SMTP_RCPT_RELAY_DENIED;
    smtp_rcpt_cb cb = r->rcpt_cb;
    void *cb_arg = r->arg;
    req_free(r);
    cb(cb_arg, v);
}

void *smtp_policy_rcpt(struct smtp_policy *p, const char *address, bool may_relay, smtp_rcpt_cb cb,
                       void *arg)
{
    struct policy_req *r = xcalloc(1, sizeof(*r));
    r->p = p;
    r->may_relay = may_relay;
    r->rcpt_cb = cb;
    r->arg = arg;
    r->handle = directory_client_lookup(p->dir, DIRECTORY_Q_RECIPIENT, address, rcpt_answer, r);
    return r;
}

static void sender_answer(void *arg, const struct directory_answer *a)
{
    struct policy_req *r = arg;
    int owned = 0;
    if (a->status != DIRECTORY_LOOKUP_OK)
        owned = -1;
    for (size_t i = 0; owned == 0 && a->kind == DIRECTORY_LOCAL && i < a->n_targets; i++) {
        if (strcasecmp(a->accounts[i], r->account) == 0)
            owned = 1;
    }
    smtp_sender_cb cb = r->sender_cb;
    void *cb_arg = r->arg;
    req_free(r);
    cb(cb_arg, owned);
}

void *smtp_policy_sender_owned(struct smtp_policy *p, const char *sender, const char *account,
                               smtp_sender_cb cb, void *arg)
{
    struct policy_req *r = xcalloc(1, sizeof(*r));
    r->p = p;
    r->account = xstrdup(account);
    r->sender_cb = cb;
    r->arg = arg;
    r->handle = directory_client_lookup(p->dir, DIRECTORY_Q_RECIPIENT, sender, sender_answer, r);
    return r;
}

static void home_answer(void *arg, const struct directory_answer *a)
{
    struct policy_req *r = arg;
    int status = a->status != DIRECTORY_LOOKUP_OK ? -1 : a->kind == DIRECTORY_LOCAL ? 1 : 0;
    smtp_home_cb cb = r->home_cb;
    void *cb_arg = r->arg;
    char *home = xstrdup(status == 1 && a->home ? a->home : "");
    req_free(r);
    cb(cb_arg, status, home);
    free(home);
}

void *smtp_policy_home(struct smtp_policy *p, const char *account, smtp_home_cb cb, void *arg)
{
    struct policy_req *r = xcalloc(1, sizeof(*r));
    r->p = p;
    r->home_cb = cb;
    r->arg = arg;
    r->handle = directory_client_lookup(p->dir, DIRECTORY_Q_ACCOUNT, account, home_answer, r);
    return r;
}

void smtp_policy_cancel(struct smtp_policy *p, void *handle)
{
    struct policy_req *r = handle;
    directory_client_cancel(p->dir, r->handle);
    req_free(r);
}

void smtp_policy_status(const struct smtp_policy *p, json_t *obj)
{
    directory_client_status(p->dir, obj);
}
