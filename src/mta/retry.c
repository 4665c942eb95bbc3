/*
 * retry.c - the retry schedule of deferred deliveries (see retry.h).
 * Pure arithmetic on the policy; never reads the clock or the spool.
 */
#include "mta/retry.h"

void retry_policy_from_config(const struct wharf_config *cfg, struct retry_policy *p_r)
{
    p_r->min_ms = cfg->mta_retry_min;
    p_r->max_ms = cfg->mta_retry_max < cfg->mta_retry_min ? cfg->mta_retry_min : cfg->mta_retry_max;
    p_r->lifetime_ms = cfg->mta_queue_lifetime;
    p_r->delay_warning_ms = cfg->mta_delay_warning;
}

int64_t retry_backoff(const struct retry_policy *p, unsigned attempts)
{
    int64_t d = p->min_ms > 0 ? p->min_ms : 1;
    for (unsigned i = 1; i < attempts && d < p->max_ms; i++)
        d = d > p->max_ms / 2 ? p->max_ms : d * 2;
    return d > p->max_ms ? p->max_ms : d;
}

int64_t retry_until(const struct retry_policy *p, int64_t arrival_ms)
{
    return arrival_ms + p->lifetime_ms;
}

enum retry_verdict retry_next(const struct retry_policy *p, int64_t arrival_ms, int64_t now_ms,
                              unsigned attempts, int64_t *next_r)
{
    int64_t until = retry_until(p, arrival_ms);
    if (now_ms >= until)
        return RETRY_EXPIRED;
    int64_t next = now_ms + retry_backoff(p, attempts ? attempts : 1);
    *next_r = next > until ? until : next;
    return RETRY_LATER;
}

bool retry_warning_due(const struct retry_policy *p, int64_t arrival_ms, int64_t now_ms,
                       bool warned)
{
    if (warned || p->delay_warning_ms <= 0)
        return false;
    return now_ms >= arrival_ms + p->delay_warning_ms && now_ms < retry_until(p, arrival_ms);
}
