/*
 * local.h - local delivery: envelope recipients -> directory -> store.
 *
 * The one code path by which mail reaches a mailbox, used by the mta (for
 * spool entries and for deliver.sock) and by `wharf deliver` when wharfd is
 * not running. A batch of messages is resolved with directory_resolve()
 * (users, aliases, catch-all, +detail) and stored with ONE store_deliver()
 * call: one body per distinct message, one fdatasync, one commit. With a
 * queue id, (queue id, account) is recorded in the same transaction, so a
 * redelivery after a crash is detected and not duplicated.
 * Never decides about remote recipients: they are reported NOT_LOCAL and
 * stay queued.
 */
#ifndef WHARF_MTA_LOCAL_H
#define WHARF_MTA_LOCAL_H

#include "base/buf.h"
#include "directory/directory.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

enum local_status {
    LOCAL_DELIVERED,        /* in every target mailbox (or already was: exactly once) */
    LOCAL_NOT_LOCAL,        /* another domain: stays queued for outbound delivery */
    LOCAL_NO_USER,          /* our domain, nobody there: permanent (5.1.1) */
    LOCAL_LOOP,             /* our domain, but its aliases only lead back to themselves (5.4.6) */
    LOCAL_TEMPFAIL,         /* directory or store trouble, quota: try again later (4.x.x) */
    LOCAL_FORWARDS_PENDING, /* its local targets are delivered (exactly once), but an alias
                               also forwards to other domains: `wharf deliver` does not relay;
                               the mta expands such aliases first (mta_expand.h) */
};

struct local_rcpt {
    const char *address; /* envelope recipient (or account name for `wharf deliver`) */
    bool account;        /* address is an account reached by alias expansion (mta_expand.h):
                            delivered to it alone, its aliases are not followed again */
    const char *folder;  /* with account: its +detail folder, or NULL */
    const char *orig_to; /* the alias it came from, for the log's orig_to=; or NULL */
    enum local_status status;
    struct buf detail; /* "delivered to mailbox", or why not (for logs and replies) */
    size_t n_local;    /* local accounts it reached */
    size_t n_remote;   /* forwards to other domains (directory_result.remote) */
};

struct local_message;
/* Called after the commit for each account a message was stored for (not
 * again for a redelivery the store recognised): rcpt, the envelope
 * recipient (the alias, for one expanded by the mta) that led there. */
typedef void (*local_stored_fn)(void *arg, const struct local_message *m, const char *rcpt,
                                const char *account);

struct local_message {
    const char *queue_id;   /* exactly-once key; NULL for none */
    const char *dedupe_id;  /* instead of queue_id as the key when not NULL: the route id of
                               mail that came over the organization (mta_out_route_id) */
    local_stored_fn stored; /* NULL: none (the mta's automatic replies, mta_queue.c) */
    void *stored_arg;
    struct slice data;  /* the message as stored: CRLF line ends */
    const char *folder; /* `wharf deliver -m`: instead of the +detail folder; NULL */
    int64_t arrival;    /* unix seconds, for delay= in the log; 0: now */
    struct local_rcpt *rcpts;
    size_t n_rcpts;
};

/* Called once per mailbox that received a message (to publish "mailbox changed"). */
typedef void (*local_changed_fn)(void *arg, const char *account, const char *mailbox);

/*
 * Delivers n messages in one store transaction and sets every recipient's
 * status and detail. Logs one Postfix-shaped line per local recipient
 * ("ID: to=<..>, relay=local, delay=N, dsn=2.0.0, status=sent (delivered to
 * mailbox)"; deferred and bounced alike).
 */
void local_deliver(struct store *s, struct directory *d, struct local_message *m, size_t n,
                   local_changed_fn changed, void *arg);

/*
 * Front-ends (doc/frontend.md) and the servers of an organization (doc/routing.md):
 * the recipient address is itself an account whose home server is another server this
 * one relays its mail to (net_proxy_wanted): true with that home server in home. Such a recipient
 * is never stored here; local_deliver leaves it LOCAL_NOT_LOCAL ("homed on HOME") and the mta sends
 * it to its home server over SMTP.
 */
bool local_home_elsewhere(struct directory *d, const char *address, struct buf *home);

void local_rcpt_init(struct local_rcpt *r, const char *address);
void local_rcpt_free(struct local_rcpt *r);

#endif
