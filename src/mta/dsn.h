/*
 * dsn.h - delivery status notifications (RFC 3461/3462/3464): the bounce,
 * delay and success reports the mta sends back to an envelope sender.
 *
 * dsn_build writes a complete RFC 5322 message (CRLF line ends):
 * multipart/report; report-type=delivery-status with a human-readable part,
 * a message/delivery-status part (per-message and per-recipient fields) and
 * the original message (RET=FULL, up to a size limit) or its headers
 * (RET=HDRS, or when too big). The caller spools it with the NULL sender <>,
 * so a report about a report is impossible: dsn_wanted is false for the null
 * sender, and the report itself has that sender.
 * Must never copy peer text (diagnostics) unsanitised into a header: CR, LF
 * and other controls become spaces, and lines are bounded.
 */
#ifndef WHARF_MTA_DSN_H
#define WHARF_MTA_DSN_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dsn_action {
    DSN_ACTION_FAILED,
    DSN_ACTION_DELAYED,
    DSN_ACTION_DELIVERED,
    DSN_ACTION_RELAYED, /* handed to a server that does not speak DSN */
    DSN_ACTION_EXPANDED,
};

struct dsn_rcpt {
    const char *address; /* the envelope recipient (Final-Recipient) */
    const char *orcpt;   /* decoded ORCPT "type;address", or NULL */
    enum dsn_action action;
    const char *status;       /* enhanced status "5.1.1"; NULL: 5.0.0 / 4.0.0 / 2.0.0 by action */
    const char *remote_mta;   /* host name of the server that answered, or NULL */
    const char *diagnostic;   /* the server's reply "550 5.1.1 no such user", or NULL */
    int64_t last_attempt;     /* unix seconds, 0: none */
    int64_t will_retry_until; /* unix seconds, for DELAYED; 0: none */
};

struct dsn_report {
    const char *reporting_mta;    /* our host name (myhostname) */
    const char *queue_id;         /* the original's queue id */
    const char *sender;           /* the original's envelope sender: the report's recipient */
    const char *envid;            /* decoded ENVID, or NULL */
    int64_t arrival;              /* unix seconds */
    int64_t now;                  /* unix seconds: Date: of the report */
    bool ret_hdrs;                /* RET=HDRS */
    size_t return_max;            /* mta_dsn_return_max: larger originals return headers only */
    struct slice original;        /* the original message, CRLF line ends */
    const struct dsn_rcpt *rcpts; /* the recipients this report is about (all one kind
                                     of report: failures, delays or successes) */
    size_t n_rcpts;
};

/* Whether a recipient's NOTIFY (SPOOL_NOTIFY_* bits, 0 = not given) asks for a
 * report of this action. Never for the null sender "". Not given means
 * FAILURE,DELAY (RFC 3461 4.1). */
bool dsn_wanted(const char *sender, unsigned notify, enum dsn_action action);

/* Appends the report message to out. Returns 0, or -1 (nothing written) for the
 * null sender or no recipients. Spool the result with sender "" and the single
 * recipient r->sender, body 8BITMIME when the original was. */
int dsn_build(const struct dsn_report *r, struct buf *out);

#endif
