/*
 * mta_queue.h - the mta's side of the spool: pick up entries, deliver their
 * local recipients through the batch, record the outcome.
 *
 * An entry is picked up when an smtp worker announces it ("spool-new"), at
 * start, and by the periodic safety scan. After the batch's commit returned,
 * delivered recipients are marked SPOOL_RCPT_DELIVERED (unknown local users
 * SPOOL_RCPT_FAILED) with spool_update_rcpts, and the file is removed with
 * spool_remove once no recipient is pending. Recipients in other domains stay
 * pending: they are never dropped (outbound delivery comes later). A crash
 * between the commit and the spool update leads to a redelivery that the
 * store recognises by queue id (exactly once).
 */
#ifndef WHARF_MTA_QUEUE_H
#define WHARF_MTA_QUEUE_H

#include "base/config.h"
#include "mta/mta_batch.h"

struct mta_queue;

struct mta_queue *mta_queue_new(const struct wharf_config *cfg, struct mta_batch *batch);
/* Picks up one entry by queue id (ignored if already in the batch or waiting for outbound). */
void mta_queue_take(struct mta_queue *q, const char *id);
/* Picks up every entry in the spool. */
void mta_queue_scan(struct mta_queue *q);
/* Entries waiting for outbound delivery (for status). */
size_t mta_queue_deferred(const struct mta_queue *q);
void mta_queue_free(struct mta_queue *q);

#endif
