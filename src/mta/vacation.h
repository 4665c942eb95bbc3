/*
 * vacation.h - the automatic reply of an account whose vacation response
 * (JMAP VacationResponse, RFC 8621 8; store_vacation) is on, by the rules
 * of RFC 3834.
 *
 * The mta asks after each local delivery it committed (mta_queue.c); the
 * reply it gets goes into the spool with the null sender through the same
 * path as its bounces (mta_out_spool_notice). Never answers a message the
 * rules exclude (automatic or list mail, the null or a robot sender, a
 * message not addressed to the recipient), and never more than once per
 * sender and period.
 */
#ifndef WHARF_MTA_VACATION_H
#define WHARF_MTA_VACATION_H

#include "base/buf.h"
#include "store/store.h"

#include <stdint.h>

struct vacation_input {
    const char *sender;  /* envelope sender; "" or NULL: the null sender */
    const char *rcpt;    /* the envelope recipient that reached the account */
    const char *account; /* the account (its address) */
    struct slice data;   /* the message as delivered */
    int64_t now;         /* unix seconds */
};

/* RFC 3834 2 and 5: NULL when the message may be answered, else why not
 * (a static string, for the log). Reads only the message and the envelope. */
const char *vacation_refusal(const struct vacation_input *in);

/* The reply to in under response v into out: From the account, To the
 * sender, Auto-Submitted: auto-replied, In-Reply-To and References, the
 * subject (v's, else "Auto: " and the original's), the text and HTML bodies. */
void vacation_reply_build(const struct vacation_input *in, const struct store_vacation *v,
                          const char *myhostname, struct buf *out);

/*
 * The whole decision for one delivery: 1 with the reply in out when one is
 * to be sent to in->sender (recorded in the store as sent), 0 when not
 * (*why_r: the reason, NULL when the account has no vacation response on),
 * -1 with err on store trouble.
 */
int vacation_consider(struct store *s, const struct vacation_input *in, int64_t period,
                      const char *myhostname, struct buf *out, const char **why_r, struct buf *err);

#endif
