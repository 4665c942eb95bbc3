/*
 * mta_stats.c - the mta's delivery counters (see mta_stats.h).
 */
#include "mta/mta_stats.h"

#include <stdatomic.h>

const int64_t mta_latency_bounds[MTA_LATENCY_BUCKETS] = {1,   5,    15,    60,   300,
                                                         900, 3600, 14400, 86400};

static atomic_uint_fast64_t verdicts[3];
static atomic_uint_fast64_t buckets[MTA_LATENCY_BUCKETS + 1]; /* not cumulative; last: +Inf */
static atomic_uint_fast64_t latency_sum;

void mta_stats_count(enum mta_verdict v, int64_t delay_s)
{
    atomic_fetch_add(&verdicts[v], 1);
    if (v != MTA_SENT)
        return;
    if (delay_s < 0)
        delay_s = 0;
    size_t b = 0;
    while (b < MTA_LATENCY_BUCKETS && delay_s > mta_latency_bounds[b])
        b++;
    atomic_fetch_add(&buckets[b], 1);
    atomic_fetch_add(&latency_sum, (uint_fast64_t)delay_s);
}

void mta_stats_status(json_t *obj)
{
    json_object_set_new(obj, "delivered", json_integer((json_int_t)atomic_load(&verdicts[0])));
    json_object_set_new(obj, "deferred", json_integer((json_int_t)atomic_load(&verdicts[1])));
    json_object_set_new(obj, "bounced", json_integer((json_int_t)atomic_load(&verdicts[2])));
    json_t *le = json_array(), *bounds = json_array();
    for (size_t b = 0; b < MTA_LATENCY_BUCKETS; b++)
        json_array_append_new(bounds, json_integer(mta_latency_bounds[b]));
    uint64_t cum = 0;
    for (size_t b = 0; b <= MTA_LATENCY_BUCKETS; b++) {
        cum += atomic_load(&buckets[b]);
        json_array_append_new(le, json_integer((json_int_t)cum));
    }
    json_object_set_new(obj, "delivery_latency",
                        json_pack("{s:o, s:o, s:I, s:I}", "bounds", bounds, "le", le, "sum",
                                  (json_int_t)atomic_load(&latency_sum), "count", (json_int_t)cum));
}
