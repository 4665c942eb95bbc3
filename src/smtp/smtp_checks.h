/*
 * smtp_checks.h - the checks a message from another server goes through
 * after its end of data and before the answer, so that a refusal is a 5xx
 * to the sender (not a bounce) and the "250 only once on disk" rule holds:
 * the spool write starts only when the checks are over.
 *
 * Stages run in order, each asynchronous on the worker's event loop, none
 * ever blocking it: mail authentication (SPF, DKIM, DMARC through
 * src/mailauth and the DNS kit src/net/dns.h), which yields the
 * Authentication-Results field, then the milters (smtp_milter.h), which see
 * that field and may add their own, change fields, quarantine or reject.
 * Before the greeting, the client's address may be looked up in DNS block
 * and allow lists (smtp_checks_connect).
 *
 * Must never hold a message past mailauth_dns_timeout, nor turn a DNS
 * failure into a permanent refusal.
 */
#ifndef WHARF_SMTP_SMTP_CHECKS_H
#define WHARF_SMTP_SMTP_CHECKS_H

#include "base/buf.h"
#include "base/config.h"

#include <stdbool.h>

struct event_base;
struct smtp_checks;
struct smtp_check_job;

/* NULL with err on a bad option or an unreadable suffix list. */
struct smtp_checks *smtp_checks_new(struct event_base *base, const struct wharf_config *cfg,
                                    struct buf *err);
void smtp_checks_free(struct smtp_checks *c);

/* The authserv-id of this server's Authentication-Results fields. */
const char *smtp_checks_authserv_id(const struct smtp_checks *c);

enum smtp_verdict {
    SMTP_VERDICT_ACCEPT,
    SMTP_VERDICT_QUARANTINE, /* accept, deliver to the Junk folder */
    SMTP_VERDICT_REJECT,     /* reply holds the 5xx */
};

struct smtp_check_result {
    enum smtp_verdict verdict;
    char reply[512];    /* "550 5.7.1 ..." or "451 4.7.1 ..." for REJECT */
    char log[512];      /* why, for the log line */
    struct buf header;  /* fields to put on top of the message */
    bool replaced;      /* a milter changed a field: message replaces the data */
    struct buf message; /* the callback may take it (swap and leave it empty) */
};

struct smtp_check_msg {
    const char *id;
    const char *client_ip;
    const char *helo;
    const char *sender;
    const char *auth_user;    /* NULL when not authenticated */
    const char *service;      /* the listener: "smtp", "submission", "submissions" */
    const char *const *rcpts; /* n_rcpts addresses */
    size_t n_rcpts;
    bool mailauth;        /* run SPF, DKIM, DMARC (mail from another server) */
    struct slice message; /* must live until the callback */
};

/* True when a message of this listener has any check to go through
 * (mailauth: it comes from another server and mailauth_checks is on). */
bool smtp_checks_wanted(const struct smtp_checks *c, const char *service, bool mailauth);

/* The result is the callback's only until it returns. Always called
 * later from the loop, never from inside smtp_checks_run. */
typedef void smtp_checks_cb(void *arg, struct smtp_check_result *res);

struct smtp_check_job *smtp_checks_run(struct smtp_checks *c, const struct smtp_check_msg *m,
                                       smtp_checks_cb *cb, void *arg);
/* The callback is not called after this. */
void smtp_checks_cancel(struct smtp_check_job *j);

/* ---- at connect: DNS block and allow lists (dnsbl_zones, dnswl_zones) ---- */

struct smtp_connect_job;
/* True when a client at this address is to be looked up (lists configured,
 * the address neither in mynetworks nor exempt_networks). */
bool smtp_checks_connect_wanted(const struct smtp_checks *c, const char *client_ip);
/* listed: the block list zone that lists the client, NULL when none does
 * (or an allow list does). Always called later from the loop. */
typedef void smtp_connect_cb(void *arg, const char *listed);
struct smtp_connect_job *smtp_checks_connect(struct smtp_checks *c, const char *client_ip,
                                             smtp_connect_cb *cb, void *arg);
/* The callback is not called after this. */
void smtp_checks_connect_cancel(struct smtp_connect_job *j);

#endif
