/*
 * smtp_commit.h - makes accepted messages durable in the spool, with group
 * commit: messages that finish while a sync is running share the next one.
 *
 * A writer thread takes every queued message at once, writes them with
 * spool_write_batch (one filesystem sync and one directory fsync for the
 * whole batch) and hands the results back to the event loop, where each
 * session gets its callback and only then answers 250. Must never: call a
 * callback before the file is durable, or call one for a cancelled job.
 */
#ifndef WHARF_SMTP_SMTP_COMMIT_H
#define WHARF_SMTP_SMTP_COMMIT_H

#include "base/config.h"
#include "spool/spool.h"

#include <event2/event.h>
#include <stdbool.h>

struct smtp_commit;
struct smtp_commit_job;

typedef void (*smtp_commit_cb)(void *arg, bool ok);

/* threaded = false: each message is written and synced in the loop itself. */
struct smtp_commit *smtp_commit_new(struct event_base *base, const struct wharf_config *cfg,
                                    bool threaded);
void smtp_commit_free(struct smtp_commit *c);

/* Takes ownership of msg. cb runs later, from the event loop, exactly once unless cancelled. */
struct smtp_commit_job *smtp_commit_submit(struct smtp_commit *c, struct spool_message *msg,
                                           smtp_commit_cb cb, void *arg);
/* The session went away: the message is still written, cb is not called. */
void smtp_commit_cancel(struct smtp_commit_job *job);

/* Batches written and messages committed so far (for status). */
void smtp_commit_stats(const struct smtp_commit *c, uint64_t *batches_r, uint64_t *messages_r);

#endif
