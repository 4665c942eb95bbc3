/*
 * mta_out.h - outbound delivery of one spool entry's remote recipients:
 * next hop per domain, one SMTP transaction per domain, per-recipient
 * results recorded in the spool, bounces and delay warnings spooled as new
 * entries with the null sender.
 *
 * Order of durability: a DSN is spooled before the original entry records
 * the failure it reports, and the entry is updated (or removed) before the
 * caller hears that the attempt is over. Must never bounce a message with the
 * null sender, never drop a recipient without a final state, and never mark a
 * recipient DELIVERED before the peer's 2xx to the end of data.
 */
#ifndef WHARF_MTA_MTA_OUT_H
#define WHARF_MTA_MTA_OUT_H

#include "base/buf.h"
#include "base/config.h"
#include "spool/spool.h"

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct mta_out;

/* A DSN was spooled under id: deliver it like any other entry. */
typedef void mta_out_spooled_fn(void *arg, const char *id);
/* The attempt for entry id is over and recorded. next_attempt_ms > 0: some
 * remote recipients were deferred, try again then; 0: none is left waiting
 * for an outbound retry. org_since > 0 (unix ms, when the attempt began): a
 * deferred recipient's next hop came from the organization's routes, so a
 * change of routes since then may get it further (doc/routing.md, "Queues"). */
typedef void mta_out_done_fn(void *arg, const char *id, int64_t next_attempt_ms, int64_t org_since);

/* NULL with a reason in err on a bad option (routes, TLS). */
struct mta_out *mta_out_new(struct event_base *base, const struct wharf_config *cfg,
                            mta_out_spooled_fn *spooled, mta_out_done_fn *done, void *arg,
                            struct buf *err);

/*
 * Delivers the recipients i of sm with remote[i] true (their state must be
 * PENDING). Takes sm (allocated with malloc; its data without Return-Path)
 * and frees it; done is always called later, from the event loop. sender,
 * when not NULL, is the MAIL FROM sent instead of sm's (its SRS form; taken
 * and freed): reports still go to sm's own sender.
 */
void mta_out_deliver(struct mta_out *o, struct spool_message *sm, const bool *remote,
                     char *const *homes, char *sender);

/*
 * The message's route id across the organization's hops (doc/routing.md, "Exactly once"),
 * "route:ORG:ID" from its first Wharf-Route field with an id, into out: the key under
 * which the home server stores it once. false (out empty) when it has none, or one whose
 * MAC does not verify for data under the organization's route-id key (nexthop_route_id_mac:
 * the id of another message replayed on this one does not).
 */
bool mta_out_route_id(struct mta_out *o, struct slice data, struct buf *out);

/*
 * Spools a report (bounce) for recipients of sm that failed here, with
 * diag[i] the reason and enh[i] the enhanced status for those with
 * failed[i] true (e.g. no such local user, 5.1.1; an alias loop, 5.4.6).
 * Respects NOTIFY and never reports on a null-sender message.
 */
void mta_out_bounce_local(struct mta_out *o, const struct spool_message *sm, const bool *failed,
                          char *const *diag, const char *const *enh);

/*
 * Spools data, a message the mta composed, from the null sender to to (one
 * recipient, NOTIFY=NEVER: never a report about a report) and hands it to
 * the queue: the one way the mta sends mail of its own (bounces, delay
 * notices, vacation replies). eight_bit, smtputf8: its body needs them.
 * about: the queue id it is about, what: what it is (for the log).
 */
void mta_out_spool_notice(struct mta_out *o, const char *about, const char *to, struct slice data,
                          bool eight_bit, bool smtputf8, const char *what);

/* Entries in an outbound attempt right now (for status). */
size_t mta_out_active(const struct mta_out *o);

/* Outbound SMTP sessions open now, idle cached ones included (for status). */
size_t mta_out_sessions(const struct mta_out *o);

/* Cancels attempts in progress (their recipients stay PENDING) and frees. */
void mta_out_free(struct mta_out *o);

/* Finished entries are removed in rm's thread (required before the first delivery). */
struct mta_remove;
void mta_out_set_remove(struct mta_out *o, struct mta_remove *rm);

#endif
