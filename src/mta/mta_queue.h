/*
 * mta_queue.h - the mta's side of the spool: pick up entries, deliver their
 * local recipients through the batch, record the outcome.
 *
 * An entry is picked up when an smtp worker announces it ("spool-new"), at
 * start, and by the periodic safety scan. Aliases that forward to other
 * domains are first replaced by their expansion, written to the spool
 * before anything is delivered (mta_expand.h). After the batch's commit returned,
 * delivered recipients are marked SPOOL_RCPT_DELIVERED (unknown local users
 * SPOOL_RCPT_FAILED) with spool_update_rcpts, and the file is removed once
 * no recipient is pending (in mta_remove.h's thread when one is set; until
 * then the entry is not taken again). Recipients in other domains are
 * handed to the outbound hook (mta_out.h) when one is set, else they stay
 * pending; either way they are never dropped. An entry whose outbound
 * attempt was deferred waits for its next attempt time (kept in the spool,
 * so a restart keeps the schedule) and is then picked up again. A crash
 * between the commit and the spool update leads to a redelivery that the
 * store recognises by queue id (exactly once).
 */
#ifndef WHARF_MTA_QUEUE_H
#define WHARF_MTA_QUEUE_H

#include "base/config.h"
#include "mta/mta_batch.h"
#include "spool/spool.h"

struct mta_queue;

struct mta_queue *mta_queue_new(const struct wharf_config *cfg, struct mta_batch *batch);
/*
 * The outbound hook: gets the entry (malloc'd, its data without Return-Path;
 * the hook frees it) and remote[i] for each spool recipient to deliver to
 * another server; it must later call mta_queue_outbound_done. bounce gets
 * the entry and the recipients that failed here with a reason and an
 * enhanced status (NULL: none is reported). After a delivery, an account
 * whose vacation response is on answers through notice (mta/vacation.h). Without a hook, remote
 * recipients simply stay queued.
 */
struct mta_queue_outbound {
    void (*deliver)(void *arg, struct spool_message *sm, const bool *remote);
    void (*bounce)(void *arg, const struct spool_message *sm, const bool *failed, char *const *diag,
                   const char *const *enh);
    void *arg;
    /* spools data (a 7-bit message the mta composed: the vacation reply) from the null
     * sender to to; about: the queue id it answers, for the log. NULL: none is sent. */
    void (*notice)(void *arg, const char *about, const char *to, struct slice data,
                   const char *what);
    /* the message's exactly-once key across servers into out (mta_out_route_id), false when
     * it has none: local delivery keys on it instead of the queue id. NULL: none. */
    bool (*route_id)(void *arg, struct slice data, struct buf *out);
};
void mta_queue_set_outbound(struct mta_queue *q, const struct mta_queue_outbound *out);
/* Finished entries are then removed in rm's thread (see mta_remove.h). */
struct mta_remove;
void mta_queue_set_remove(struct mta_queue *q, struct mta_remove *rm);
/* The outbound attempt for id is over; next_attempt_ms > 0 is when to try again.
 * org_since > 0: it waits for the organization's routes (mta_out_done_fn); when they
 * changed since org_since, it is due at once. */
void mta_queue_outbound_done(struct mta_queue *q, const char *id, int64_t next_attempt_ms,
                             int64_t org_since);
/* The organization's routes changed (doc/routing.md, "Queues"): every entry that waits
 * for them is due now, to go to its new next hop (the same entry: moved, not copied).
 * Returns how many. */
size_t mta_queue_routes_changed(struct mta_queue *q);

/* Picks up one entry by queue id (ignored if already in the batch or waiting for outbound). */
void mta_queue_take(struct mta_queue *q, const char *id);
/*
 * `wharf queue` actions (IPC_EVENT_QUEUE_CTL, ipc/event.h) on entry id, or every entry when id is
 * NULL: delete (when action_delete) or spool_control(c). An entry in the
 * batch or in an outbound attempt is changed when that ends. Entries made due
 * are taken at once; held entries are skipped until released.
 */
void mta_queue_control(struct mta_queue *q, const char *id, bool action_delete, enum spool_ctl c);

/* Picks up every entry in the spool. */
void mta_queue_scan(struct mta_queue *q);
/* Entries waiting for outbound delivery (for status). */
size_t mta_queue_deferred(const struct mta_queue *q);
/* The arrival (unix seconds) of the oldest entry the mta holds (in a batch or deferred); 0: none.
 */
int64_t mta_queue_oldest(const struct mta_queue *q);
void mta_queue_free(struct mta_queue *q);

#endif
