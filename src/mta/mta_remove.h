/*
 * mta_remove.h - removal of finished spool entries off the mta's event loop.
 * unlink() of a spool file can block for a millisecond or more (freeing the
 * inode and its blocks, a synchronous discard on some mounts); done in the
 * loop it stalls every outbound session. The loop only renames the entry out
 * of the queue (spool_retire), one thread removes; until it has, the id stays
 * "pending" and mta_queue_take() must not take it again.
 */
#ifndef WHARF_MTA_REMOVE_H
#define WHARF_MTA_REMOVE_H

#include "base/config.h"

#include <event2/event.h>
#include <stdbool.h>

struct mta_remove;

/* NULL (err set) when the thread cannot be started. Submits what a crash left
 * retired (spool_list_retired). */
struct mta_remove *mta_remove_new(struct event_base *base, const struct wharf_config *cfg,
                                  struct buf *err);
/* Retires queue entry id at once, removes it in the thread (neither durably, as
 * spool_remove) and logs "ID: removed". */
void mta_remove_submit(struct mta_remove *r, const char *id);
/* Submitted and not yet removed. */
bool mta_remove_pending(const struct mta_remove *r, const char *id);
/* Finishes the submitted removals, then stops the thread. */
void mta_remove_free(struct mta_remove *r);

#endif
