/*
 * smtp_milter.h - the milter stage of the checks after end of data
 * (smtp_checks.h): the message goes to each configured mail filter in turn
 * (rspamd, OpenDKIM, ClamAV's milter...) over the Sendmail/Postfix milter
 * protocol (milter_proto.h), and their answers decide what the client is
 * told.
 *
 * The whole conversation of a message happens after its end of data, on the
 * worker's event loop, one connection per filter and message: connect,
 * HELO, MAIL, RCPT, the header fields and the body are sent then, and a
 * refusal at any step refuses the message (Wharf answers the end of data,
 * so no recipient was accepted yet that a filter could still refuse alone).
 *
 * What a filter may do: add, insert, change and delete header fields,
 * quarantine (the message goes to the Junk folder), reject, tempfail or
 * reply with its own code. Changing the body or the envelope is not offered.
 * DISCARD is turned into a rejection: Wharf never answers 250 for a message
 * it then drops.
 *
 * Must never block the loop, never call back from inside smtp_milter_run,
 * and never let a filter that is down, slow or broken lose a message: it
 * gets milter_default_action.
 */
#ifndef WHARF_SMTP_SMTP_MILTER_H
#define WHARF_SMTP_SMTP_MILTER_H

#include "base/buf.h"
#include "base/config.h"
#include "smtp/smtp_checks.h"

#include <stdbool.h>

struct event_base;
struct smtp_milters;
struct smtp_milter_job;

/* NULL with err on a bad milter address or option; a configuration
 * without milters gives an empty set (smtp_milters_apply is false). */
struct smtp_milters *smtp_milters_new(struct event_base *base, const struct wharf_config *cfg,
                                      struct buf *err);
void smtp_milters_free(struct smtp_milters *m);

/* True when mail of this listener ("smtp", "submission", "submissions")
 * goes through the milters. */
bool smtp_milters_apply(const struct smtp_milters *m, const char *service);

/* Runs the filters over m->message with fields (the checks' own header
 * fields, shown to the filters first). On return of the callback res
 * holds the verdict, res->header gains the fields the filters added, and
 * res->message the message as they left it when they changed a field of it
 * (res->replaced). Called later from the loop. */
typedef void smtp_milter_cb(void *arg, struct smtp_check_result *res);
struct smtp_milter_job *smtp_milter_run(struct smtp_milters *m, const struct smtp_check_msg *msg,
                                        struct slice fields, struct smtp_check_result *res,
                                        smtp_milter_cb *cb, void *arg);
void smtp_milter_cancel(struct smtp_milter_job *j);

#endif
