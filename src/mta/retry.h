/*
 * retry.h - when the mta tries a deferred delivery again, when it gives up,
 * and when it warns the sender that a message is late.
 *
 * Pure functions of (policy, arrival time, attempts, now): no clock, no I/O,
 * no state of their own, so the queue loop can recompute a schedule after a
 * restart from what the spool remembers. Times are unix milliseconds.
 * Must never return a retry time in the past of `now` nor one after the
 * queue lifetime has run out (expired messages bounce instead).
 */
#ifndef WHARF_MTA_RETRY_H
#define WHARF_MTA_RETRY_H

#include "base/config.h"

#include <stdbool.h>
#include <stdint.h>

struct retry_policy {
    int64_t min_ms;           /* first back-off (mta_retry_min) */
    int64_t max_ms;           /* back-off ceiling (mta_retry_max) */
    int64_t lifetime_ms;      /* queue lifetime (mta_queue_lifetime) */
    int64_t delay_warning_ms; /* delay DSN after this long; 0 = never (mta_delay_warning) */
};

void retry_policy_from_config(const struct wharf_config *cfg, struct retry_policy *p_r);

/* Back-off after the attempts-th failed attempt (attempts >= 1): min * 2^(attempts-1),
 * capped at max. Never overflows. */
int64_t retry_backoff(const struct retry_policy *p, unsigned attempts);

/* The queue lifetime's end for a message that arrived at arrival_ms (for the DSN's
 * Will-Retry-Until field and for retry_next). */
int64_t retry_until(const struct retry_policy *p, int64_t arrival_ms);

enum retry_verdict {
    RETRY_LATER,   /* *next_r is when to try again */
    RETRY_EXPIRED, /* lifetime over: bounce (status 4.4.7 / the last 4xx reason) */
};

/* After the attempts-th failed attempt at now_ms. The next attempt is clamped
 * to the lifetime's end, so the last try happens at expiry rather than never. */
enum retry_verdict retry_next(const struct retry_policy *p, int64_t arrival_ms, int64_t now_ms,
                              unsigned attempts, int64_t *next_r);

/* True when a delay warning is owed now (not sent yet, warning on, late enough,
 * not yet expired). */
bool retry_warning_due(const struct retry_policy *p, int64_t arrival_ms, int64_t now_ms,
                       bool warned);

#endif
