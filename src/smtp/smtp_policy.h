/*
 * smtp_policy.h - who may send what to whom: recipient lookup in the
 * directory, relay permission, and the submission sender check.
 *
 * Lookups go to the directory process over IPC (directory/directory_client.h),
 * never to its database: each call starts one and its verdict comes back
 * through the callback, from the event loop, never from inside the call.
 *
 * Must never: let an unauthenticated client outside mynetworks relay, or turn
 * a temporary lookup failure into a permanent rejection.
 */
#ifndef WHARF_SMTP_SMTP_POLICY_H
#define WHARF_SMTP_SMTP_POLICY_H

#include "base/config.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

struct smtp_policy;

enum smtp_rcpt_verdict {
    SMTP_RCPT_LOCAL,        /* one of our users */
    SMTP_RCPT_RELAY,        /* remote, and this client may relay */
    SMTP_RCPT_NO_SUCH_USER, /* 550 5.1.1 */
    SMTP_RCPT_LOOP,         /* 550 5.4.6: an alias that only leads back to itself */
    SMTP_RCPT_RELAY_DENIED, /* 554 5.7.1 */
    SMTP_RCPT_TEMPFAIL,     /* 451 4.3.0 */
};

struct smtp_policy *smtp_policy_new(struct event_base *base, const struct wharf_config *cfg);
void smtp_policy_free(struct smtp_policy *p);

typedef void (*smtp_rcpt_cb)(void *arg, enum smtp_rcpt_verdict v);
/* 1: account may use sender; 0: it may not; -1: temporary failure. */
typedef void (*smtp_sender_cb)(void *arg, int owned);

/* Each returns a handle for smtp_policy_cancel (then the callback is never called). */
void *smtp_policy_rcpt(struct smtp_policy *p, const char *address, bool may_relay, smtp_rcpt_cb cb,
                       void *arg);
void *smtp_policy_sender_owned(struct smtp_policy *p, const char *sender, const char *account,
                               smtp_sender_cb cb, void *arg);
/* The home server of an account (doc/frontend.md): status 1 with home ("" : this
 * server), 0 no such account, -1 temporary failure. */
typedef void (*smtp_home_cb)(void *arg, int status, const char *home);
void *smtp_policy_home(struct smtp_policy *p, const char *account, smtp_home_cb cb, void *arg);
void smtp_policy_cancel(struct smtp_policy *p, void *handle);
/* The directory client's figures, for the worker's status. */
void smtp_policy_status(const struct smtp_policy *p, json_t *obj);

#endif
