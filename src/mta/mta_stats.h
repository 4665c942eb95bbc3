/*
 * mta_stats.h - the mta's delivery counters for `wharf status` and
 * /metrics: recipients delivered, deferred and bounced, and a histogram of
 * the time from arrival to delivery, counted where each verdict is logged
 * (local.c, mta_out.c), so the figures and the Postfix-shaped log lines are
 * the same events.
 *
 * Must never: be read from anything but the counters (no spool or store
 * scan); counters are atomic because local delivery runs on the batch's
 * worker thread.
 */
#ifndef WHARF_MTA_MTA_STATS_H
#define WHARF_MTA_MTA_STATS_H

#include <jansson.h>
#include <stdint.h>

enum mta_verdict {
    MTA_SENT,
    MTA_DEFERRED,
    MTA_BOUNCED,
};

/* Upper bounds (seconds) of the latency histogram's buckets; a last one is +Inf. */
#define MTA_LATENCY_BUCKETS 9
extern const int64_t mta_latency_bounds[MTA_LATENCY_BUCKETS];

/* One recipient's verdict; delay_s (arrival to now) feeds the histogram when sent. */
void mta_stats_count(enum mta_verdict v, int64_t delay_s);
/*
 * Adds "delivered", "deferred", "bounced" and "delivery_latency"
 * ({"bounds": [seconds], "le": [cumulative counts per bound, then +Inf],
 * "sum", "count"}) to obj.
 */
void mta_stats_status(json_t *obj);

#endif
