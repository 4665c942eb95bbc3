/*
 * event.h - the typed events of the supervisor's bus, and subscriptions.
 *
 * An event is one IPC_EVENT frame (ipc/frame.h) whose payload is
 *     u64 type        one of enum ipc_event_type
 *     fields          the type's fields, in the order of its struct below
 * (strings as ipc_put_str). The first field of an account's event (mailbox
 * changed, mailbox list) is its owner, the key of owner subscriptions.
 *
 * Who gets what: a component sends IPC_SUBSCRIBE frames (ipc_subscribe_encode,
 * through control_subscribe*) saying which types it wants, for every owner or
 * for some owners only; wharfd keeps one struct ipc_subscriptions per process
 * and relays an event only to the processes whose subscriptions match it
 * (never back to its publisher). A process that subscribed to nothing gets no
 * event at all.
 *
 * The decoder is strict: an unknown type, a missing, oversized or NUL-holding
 * field, an unknown enum value or a trailing byte rejects the whole event.
 * Publishers and receivers never build or parse the bytes themselves: they
 * fill and read the structs below. This file must never know a component's
 * internals (no store, spool or imap header): the fields are plain values.
 */
#ifndef WHARF_IPC_EVENT_H
#define WHARF_IPC_EVENT_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ipc_event_type {
    IPC_EVENT_NONE = 0,            /* never on the wire */
    IPC_EVENT_MAILBOX_CHANGED = 1, /* messages or flags of a mailbox changed */
    IPC_EVENT_MAILBOX_LIST = 2,    /* a mailbox was created, deleted, renamed, (un)subscribed */
    IPC_EVENT_SPOOL_NEW = 3,       /* a new queue entry is on disk (smtp -> mta) */
    IPC_EVENT_QUEUE_CTL = 4,       /* `wharf queue` asks the mta to act on entries */
    IPC_EVENT_TEST_HOOK = 5,       /* test suites only (option test_hooks), base/sandbox.h */
    IPC_EVENT_EVICT_IDLE = 6,      /* a full service asks one worker to evict an idle stranger */
};
#define IPC_EVENT_TYPE_MAX IPC_EVENT_EVICT_IDLE

/* Field caps of the decoder (the store's own caps are the same or lower). */
#define IPC_EVENT_OWNER_MAX 1024   /* bytes of an account name */
#define IPC_EVENT_MAILBOX_MAX 1024 /* bytes of a mailbox name (STORE_MAILBOX_NAME_MAX) */
#define IPC_EVENT_QUEUE_ID_MAX 31  /* a spool id: 1..31 letters and digits */
#define IPC_EVENT_WORD_MAX 256     /* a test hook's component or action */

struct ipc_event_mailbox_changed {
    const char *owner;
    const char *mailbox;
    /*
     * The owner's account-wide change counter after this change (JMAP's
     * state, the http push), or 0 when the publisher does not know it. A
     * receiver must treat 0 as "something changed, ask the store".
     */
    uint64_t account_state;
};

enum ipc_mailbox_list_change {
    IPC_LIST_CREATED,
    IPC_LIST_DELETED,
    IPC_LIST_RENAMED,
    IPC_LIST_SUBSCRIBED,
    IPC_LIST_UNSUBSCRIBED,
};

struct ipc_event_mailbox_list {
    const char *owner;
    enum ipc_mailbox_list_change change;
    const char *name;
    const char *old_name;   /* the name before, for IPC_LIST_RENAMED only; NULL otherwise */
    uint64_t account_state; /* as in ipc_event_mailbox_changed */
};

struct ipc_event_spool_new {
    const char *queue_id;
};

/* The first four match enum spool_ctl (spool/spool.h); the mta checks that at compile time. */
enum ipc_queue_action {
    IPC_QUEUE_FLUSH,
    IPC_QUEUE_HOLD,
    IPC_QUEUE_RELEASE,
    IPC_QUEUE_REQUEUE,
    IPC_QUEUE_DELETE,
};

struct ipc_event_queue_ctl {
    enum ipc_queue_action action;
    const char *queue_id; /* NULL: every entry of the queue */
};

struct ipc_event_test_hook {
    const char *component; /* the component that is to run action */
    const char *action;
};

/*
 * The service is full and the publishing worker has no idle stranger of its
 * own: the worker of conntab slot `slot` (base/conntab.h), which published the
 * idlest pre-login connection of the service, is asked to close it. `client`
 * is the newcomer's address, for the log line.
 */
struct ipc_event_evict_idle {
    const char *service;
    uint64_t slot;
    const char *client;
};

struct ipc_event {
    enum ipc_event_type type;
    union {
        struct ipc_event_mailbox_changed mailbox_changed;
        struct ipc_event_mailbox_list mailbox_list;
        struct ipc_event_spool_new spool_new;
        struct ipc_event_queue_ctl queue_ctl;
        struct ipc_event_test_hook test_hook;
        struct ipc_event_evict_idle evict_idle;
    } u;
    char *owned_; /* ipc_event_decode's copy of the strings; NULL for an event built by hand */
};

/* "mailbox-changed", ... for logs; "unknown" for anything else. */
const char *ipc_event_type_name(enum ipc_event_type type);
/* The account an event is about, or NULL for an event that is no account's. */
const char *ipc_event_owner(const struct ipc_event *ev);

/* Appends ev's payload (for an IPC_EVENT frame) to out. ev must be valid. */
void ipc_event_encode(struct buf *out, const struct ipc_event *ev);
/*
 * Decodes one IPC_EVENT payload strictly into ev (its strings are copies,
 * NUL-terminated, freed by ipc_event_clear). Returns 0, or -1 with *why_r
 * set and ev cleared.
 */
int ipc_event_decode(const void *payload, size_t len, struct ipc_event *ev, const char **why_r);
void ipc_event_clear(struct ipc_event *ev);

/* ---- subscriptions (the payload of IPC_SUBSCRIBE) ---- */

enum ipc_subscribe_op {
    IPC_SUBSCRIBE_NONE = 0,  /* drop every subscription to the type */
    IPC_SUBSCRIBE_ALL = 1,   /* the type, for every owner */
    IPC_SUBSCRIBE_OWNER = 2, /* the type, for this owner too */
    IPC_UNSUBSCRIBE_OWNER = 3,
};

/* IPC_SUBSCRIBE payload: u64 type, u64 op, str owner ("" unless op names one). */
void ipc_subscribe_encode(struct buf *out, enum ipc_event_type type, enum ipc_subscribe_op op,
                          const char *owner);

/* What one process subscribed to (kept by wharfd, one per component process). */
struct ipc_subscriptions {
    uint64_t all; /* bit t set: type t for every owner */
    struct ipc_owner_sub {
        enum ipc_event_type type;
        char *owner;
    } * owners;
    size_t n_owners;
};

/* Decodes one IPC_SUBSCRIBE payload strictly and applies it; -1 (nothing changed) if bad. */
int ipc_subscriptions_apply(struct ipc_subscriptions *subs, const void *payload, size_t len,
                            const char **why_r);
/* True when the process that holds subs is to get ev. */
bool ipc_subscriptions_match(const struct ipc_subscriptions *subs, const struct ipc_event *ev);
void ipc_subscriptions_free(struct ipc_subscriptions *subs);

#endif
