/*
 * mta_pickup.h - the mta's pickup: moves what `wharf sendmail` left in the
 * maildrop (spool/maildrop.h) into the spool, as Postfix's pickup does.
 *
 * At start, then every mta_pickup_interval, the pickup reads each file in
 * the maildrop, checks all of it again (the file is a local user's claim),
 * writes a spool entry durably and only then removes the file. The entry's
 * id is derived from the file's name and owner (maildrop_spool_id), so a
 * crash between the spool write and the removal is recognised at the next
 * start (mta_pickup_recover, before the spool is scanned) and the message is
 * queued once. A file that fails a check is moved to DATA/spool/corrupt/ and
 * logged; it never stops the files after it. At most MTA_PICKUP_PER_RUN
 * files are taken per turn of the event loop, so a flood of files delays
 * nothing else for long.
 *
 * mta_pickup_convert is the pure part (no I/O): the checks and the spool
 * entry, with the trace headers Wharf adds. `wharf sendmail` calls
 * mta_pickup_check before it writes a file, so a message the pickup would
 * refuse is refused at once, to the user, and never silently set aside.
 */
#ifndef WHARF_MTA_PICKUP_H
#define WHARF_MTA_PICKUP_H

#include "base/config.h"
#include "mta/mta_queue.h"
#include "spool/maildrop.h"
#include "spool/spool.h"

#include <event2/event.h>
#include <stdbool.h>
#include <time.h>

/* Files taken from the maildrop in one turn of the event loop (each costs
 * two fsyncs); more are taken on the next turn. */
#define MTA_PICKUP_PER_RUN 64

enum mta_pickup_verdict {
    MTA_PICKUP_OK,
    MTA_PICKUP_BAD_ADDRESS, /* sender or a recipient is not an address */
    MTA_PICKUP_BAD_MESSAGE, /* bare CR or LF, or a size, line or header limit passed */
};

/* Checks e's addresses and message against cfg's limits; *why_r (static text) says what failed. */
enum mta_pickup_verdict mta_pickup_check(const struct wharf_config *cfg,
                                         const struct maildrop_entry *e, const char **why_r);

/* Who submitted a maildrop file, as the kernel says (never as the file says). */
struct mta_pickup_origin {
    uid_t uid;
    const char *user; /* the user name of uid, or NULL when uid has none */
    bool trusted;     /* root or the wharf user: may set any sender without a warning */
    time_t arrival;   /* when the file was written */
};

/*
 * Checks e, then builds the spool entry id for it into sm_r: envelope from
 * e, "local" as client, BODY and SMTPUTF8 from the bytes, and the message
 * with a Received: line naming the uid, an X-Authentication-Warning: when
 * an untrusted user set a sender other than USER@myhostname (sendmail's
 * default, "nobody" for a uid without a name), and Date: and
 * Message-ID: when missing. Returns the verdict; sm_r is set only for OK.
 * *sender_set_r tells whether the sender is one the user chose.
 */
enum mta_pickup_verdict mta_pickup_convert(const struct wharf_config *cfg, const char *id,
                                           const struct maildrop_entry *e,
                                           const struct mta_pickup_origin *o,
                                           struct spool_message *sm_r, bool *sender_set_r,
                                           const char **why_r);

struct mta_pickup;

/* The pickup of cfg's maildrop, handing entries to q; NULL with err if the
 * maildrop cannot be opened. */
struct mta_pickup *mta_pickup_new(struct event_base *base, const struct wharf_config *cfg,
                                  struct mta_queue *q, struct buf *err);
/* At start, before the spool scan: removes every maildrop file whose spool
 * entry was already written (a pickup cut short by a crash). */
void mta_pickup_recover(struct mta_pickup *p);
/* Takes files now and keeps taking them every mta_pickup_interval. */
void mta_pickup_start(struct mta_pickup *p);
/* No more turns (shutdown). */
void mta_pickup_stop(struct mta_pickup *p);
/* Files waiting in the maildrop at the last look (for status). */
size_t mta_pickup_waiting(const struct mta_pickup *p);
void mta_pickup_free(struct mta_pickup *p);

#endif
