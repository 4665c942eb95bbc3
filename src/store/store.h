/*
 * store.h - the Information Store: mailboxes, messages, flags, the expunge
 * log, quotas usage, public folders and ACLs, over content-addressed blobs.
 *
 * This header is the driver boundary: callers (mta, imap, pop3, http, the
 * wharf command) see only these functions and plain structs. store.c
 * dispatches each call to the driver the store_driver option names, through
 * the table in store_driver.h: the SQLite (WAL) driver is src/store/sqlite/,
 * and a PostgreSQL driver fills the same table. Nothing here names a type of
 * a database library. The store is keyed by account name strings ("alice@example.org");
 * accounts live in the directory, and the store never reads password data.
 *
 * Rules the store keeps (and tests pin):
 *   - UIDs are strictly increasing and never reused within a UIDVALIDITY,
 *     across expunges, restarts and deleted-then-recreated mailboxes (a
 *     recreated mailbox gets a new UIDVALIDITY).
 *   - Every change to a message (append, flags, expunge) takes a new MODSEQ,
 *     strictly increasing per mailbox; HIGHESTMODSEQ is the latest one.
 *   - A message body is stored once (SHA-256 of the raw bytes) however many
 *     messages refer to it, and is durable on disk before any commit that
 *     refers to it. Bodies are returned byte for byte as stored.
 *   - Mailbox names use "/" as hierarchy delimiter (STORE_DELIMITER); "INBOX"
 *     is case-insensitive, every other name case-sensitive.
 *   - Public folders belong to the owner STORE_PUBLIC_OWNER, which can never
 *     be an account name (accounts contain '@' or are plain words).
 *
 * Every function returns 0 on success or -1 with a message in err (store
 * trouble: callers treat it as a temporary failure), unless stated otherwise.
 * A struct store is used by one thread at a time.
 */
#ifndef WHARF_STORE_STORE_H
#define WHARF_STORE_STORE_H

#include "base/buf.h"
#include "base/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_DELIMITER '/'
#define STORE_INBOX "INBOX"
#define STORE_PUBLIC_OWNER "#public"

/* Named limits; the options in options.def ("store" section) may lower them. */
#define STORE_MAILBOX_NAME_MAX 1024 /* bytes of a mailbox name */
#define STORE_MAILBOX_DEPTH_MAX 32  /* levels of hierarchy */
#define STORE_KEYWORDS_MAX 4096     /* bytes of a message's keyword list (hard cap) */

/* System flags (\Recent is a session notion, not stored). */
enum store_flag {
    STORE_FLAG_SEEN = 1u << 0,
    STORE_FLAG_ANSWERED = 1u << 1,
    STORE_FLAG_FLAGGED = 1u << 2,
    STORE_FLAG_DELETED = 1u << 3,
    STORE_FLAG_DRAFT = 1u << 4,
};

struct store;

struct store_options {
    uint64_t segment_size;   /* roll blob segments over past this many bytes */
    bool fsync;              /* false only for throw-away test stores */
    size_t mailbox_name_max; /* <= STORE_MAILBOX_NAME_MAX */
    size_t mailbox_depth_max;
    size_t keywords_max; /* <= STORE_KEYWORDS_MAX */
    /* Seconds an expunged body stays readable (store_message_read) for the
     * sessions not yet told of the expunge (RFC 2180 4.1.1); 0: dropped at once. */
    int64_t expunge_hold;
    /* Bodies of at most this many bytes are kept in the metadata database (made
     * durable by the commit's own sync) instead of a segment file; 0: none. */
    uint64_t inline_max;
};
/* The default expunge_hold: longer than any session goes without a NOOP or IDLE in practice. */
#define STORE_EXPUNGE_HOLD 3600

/* Opens DATA_DIRECTORY/store (created if needed) with the store_driver option's driver,
 * migrating the schema. */
struct store *store_open(const struct wharf_config *cfg, struct buf *err);
/* Opens a store of the default driver (sqlite) in dir; NULL opt: defaults. */
struct store *store_open_dir(const char *dir, const struct store_options *opt, struct buf *err);
/* An in-memory store over a temporary blob folder, removed by store_close (unit tests). */
struct store *store_open_temporary(struct buf *err);
void store_close(struct store *s);

/* ---- mailboxes ---- */

struct store_mailbox {
    int64_t id;
    char *name;
    char *special_use; /* "\\Sent", ... or NULL (RFC 6154) */
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;
    bool subscribed;
    uint64_t messages; /* counts, for STATUS and `wharf mailbox` */
    uint64_t unseen;
    uint64_t bytes;
    uint32_t recent_uid;    /* RFC 3501 \Recent: the first UID no session has claimed */
    uint64_t recent;        /* messages from recent_uid on (STATUS RECENT) */
    uint64_t state;         /* the account state of its last change (JMAP Mailbox/changes) */
    uint64_t created_state; /* the account state that created it */
};

/*
 * Lists owner's mailboxes ordered by name; creates the default folders
 * (INBOX, Drafts, Sent, Trash, Junk, Archive with special-use flags) on the
 * first use of an account.
 */
int store_mailbox_list(struct store *s, const char *owner, struct store_mailbox **list_r,
                       size_t *n_r, struct buf *err);
void store_mailbox_list_free(struct store_mailbox *list, size_t n);
/* Fills mb for one mailbox; returns 1 (not -1) when there is no such mailbox. */
int store_mailbox_get(struct store *s, const char *owner, const char *name,
                      struct store_mailbox *mb, struct buf *err);
void store_mailbox_free(struct store_mailbox *mb);
/*
 * RFC 3501 2.3.2 \Recent, "the first session to be notified": with claim,
 * takes for the caller every message up to UID upto that no session took
 * before; without, only looks. *first_r: the first UID not taken before this
 * call (the caller's recent messages are those from *first_r to upto).
 */
int store_mailbox_recent_claim(struct store *s, const char *owner, const char *name, uint32_t upto,
                               bool claim, uint32_t *first_r, struct buf *err);
/* special_use may be NULL. Fails if the name is taken or invalid. */
int store_mailbox_create(struct store *s, const char *owner, const char *name,
                         const char *special_use, struct buf *err);
/*
 * Imports (wharf import): gives the mailbox (created if missing, with
 * special_use) the source server's UIDVALIDITY and raises its UIDNEXT to at
 * least uidnext, so that clients that synced against the old server keep
 * their UIDs. The UIDVALIDITY may change only while the mailbox has never held
 * a message (UIDNEXT 1): a mailbox with messages under another UIDVALIDITY is
 * refused, never renumbered. uidvalidity 0 keeps the current one.
 */
int store_mailbox_set_uids(struct store *s, const char *owner, const char *name,
                           const char *special_use, uint32_t uidvalidity, uint32_t uidnext,
                           struct buf *err);
/* Deletes the mailbox and its messages (not INBOX). */
int store_mailbox_delete(struct store *s, const char *owner, const char *name, struct buf *err);
/* Renames (and its children); keeps UIDVALIDITY. Renaming INBOX is refused. */
int store_mailbox_rename(struct store *s, const char *owner, const char *from, const char *to,
                         struct buf *err);
/* Subscriptions may name mailboxes that do not exist (RFC 3501 LSUB). */
int store_subscribe(struct store *s, const char *owner, const char *name, bool on, struct buf *err);
int store_subscriptions(struct store *s, const char *owner, char ***names_r, size_t *n_r,
                        struct buf *err);
void store_names_free(char **names, size_t n);

/*
 * The account's change state (JMAP's state and /changes, the http push): a
 * counter that grows in the same transaction as every change to any mailbox
 * of owner that a client can see (a message delivered, appended, copied,
 * flagged or expunged; a mailbox created, renamed, deleted or (un)subscribed).
 * Two equal reads mean nothing changed in between. 0 for an account never seen.
 */
int store_account_state(struct store *s, const char *owner, uint64_t *state_r, struct buf *err);

/*
 * Resolves owner's mailbox name once to its id (store_mailbox.id); the _id
 * forms of the message calls below take it and keep addressing that mailbox
 * whatever its name becomes (one deleted meanwhile is "no such mailbox"; one
 * created again under the name has another id). The forms that take a name
 * resolve it at each call. Returns 1 (*id_r 0) when there is no such
 * mailbox, -1 when the name is not valid.
 */
int store_mailbox_resolve(struct store *s, const char *owner, const char *name, int64_t *id_r,
                          struct buf *err);
/*
 * The name now of the public folder that was called name (a public folder's address
 * names its folder in the directory, which a RENAME in the store does not reach): name itself while
 * a public folder has it, else the name of the folder last renamed away from it (the store keeps a
 * public folder's former names until it is deleted, or another folder takes the name). 0 with now_r
 * set; 1 when no folder has or had that name; -1 on error (an invalid name).
 */
int store_public_folder_now(struct store *s, const char *name, struct buf *now_r, struct buf *err);

/* ---- messages ---- */

struct store_message {
    uint32_t uid;
    uint64_t modseq;
    unsigned flags;       /* enum store_flag bits */
    char *keywords;       /* space-separated, "" when none */
    int64_t internaldate; /* unix seconds */
    uint64_t size;        /* bytes as stored (CRLF line ends) */
    char blob[65];        /* hex SHA-256 */
    /* the MIME layer's parsed structure (mime_struct_encode), written at
     * delivery; NULL: none. Bytes of another version (older stores kept IMAP
     * text) are refused by mime_struct_decode: parse and set_cache again. */
    unsigned char *structure;
    size_t structure_len;
};

/* Messages with uid >= uid_min in UID order. */
int store_message_list(struct store *s, const char *owner, const char *mailbox, uint32_t uid_min,
                       struct store_message **list_r, size_t *n_r, struct buf *err);
int store_message_list_id(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid_min,
                          struct store_message **list_r, size_t *n_r, struct buf *err);
void store_message_list_free(struct store_message *list, size_t n);
/* The raw message into out (reset first); returns 1 when there is no such UID.
 * An expunged UID still reads while the expunge log holds its body
 * (store_options.expunge_hold): a view may not have been told yet. */
int store_message_read(struct store *s, const char *owner, const char *mailbox, uint32_t uid,
                       struct buf *out, struct buf *err);
int store_message_read_id(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                          struct buf *out, struct buf *err);
enum store_flags_op {
    STORE_FLAGS_REPLACE, /* FLAGS */
    STORE_FLAGS_ADD,     /* +FLAGS */
    STORE_FLAGS_REMOVE,  /* -FLAGS */
};

enum store_flags_outcome {
    STORE_FLAGS_CHANGED,        /* new flags, new MODSEQ */
    STORE_FLAGS_UNCHANGED,      /* nothing to change: MODSEQ kept */
    STORE_FLAGS_MODIFIED_SINCE, /* CONDSTORE: MODSEQ > unchangedsince, left alone */
    STORE_FLAGS_NO_UID,         /* no such message (expunged meanwhile) */
};

struct store_flags_result {
    enum store_flags_outcome outcome;
    uint64_t modseq; /* the message's MODSEQ after the call */
    unsigned flags;  /* its system flags after the call */
};

/*
 * STORE: changes system flags and keywords (space-separated, may be NULL)
 * of the given UIDs in ONE transaction; every message that changes takes its
 * own new MODSEQ. With unchangedsince != 0 (CONDSTORE), a message whose MODSEQ
 * is greater is left alone. results (n entries) may be NULL.
 */
int store_message_flags(struct store *s, const char *owner, const char *mailbox,
                        const uint32_t *uids, size_t n, enum store_flags_op op, unsigned flags,
                        const char *keywords, uint64_t unchangedsince,
                        struct store_flags_result *results, struct buf *err);
int store_message_flags_id(struct store *s, const char *owner, int64_t mailbox_id,
                           const uint32_t *uids, size_t n, enum store_flags_op op, unsigned flags,
                           const char *keywords, uint64_t unchangedsince,
                           struct store_flags_result *results, struct buf *err);
/* Replaces the MIME cache (struct store_message.structure) of a message (no
 * MODSEQ change: not a change a client sees). */
int store_message_set_cache(struct store *s, const char *owner, const char *mailbox, uint32_t uid,
                            struct slice structure, struct buf *err);
int store_message_set_cache_id(struct store *s, const char *owner, int64_t mailbox_id, uint32_t uid,
                               struct slice structure, struct buf *err);
/*
 * Search records (src/mime's mime_cache_record: the searchable header fields,
 * decoded), written at delivery and APPEND. One statement reads those of the
 * messages with uid >= uid_min, in UID order; a message stored before
 * records existed has none (present false) until store_message_set_records
 * gives it one.
 */
struct store_record {
    uint32_t uid;
    bool present;
    size_t off, len; /* in data */
};
struct store_records {
    struct store_record *v;
    size_t n;
    struct buf data;
};
int store_message_records(struct store *s, const char *owner, const char *mailbox, uint32_t uid_min,
                          struct store_records *r, struct buf *err);
int store_message_records_id(struct store *s, const char *owner, int64_t mailbox_id,
                             uint32_t uid_min, struct store_records *r, struct buf *err);
/* Record i as a slice of r->data (ptr NULL when absent). */
struct slice store_record_get(const struct store_records *r, size_t i);
void store_records_free(struct store_records *r);

/* A message of an account found by its Message-ID. */
struct store_msgid_hit {
    int64_t mailbox_id;
    uint32_t uid;
};
/*
 * The messages of owner whose Message-ID (the first Message-ID field of
 * their search record, trimmed, compared byte for byte) is msgid, by mailbox
 * id then UID: an index probe, whatever the number of messages (a news
 * server's history). Messages stored without a search record are found once
 * their record is written (store_message_set_records).
 */
int store_msgid_find(struct store *s, const char *owner, struct slice msgid,
                     struct store_msgid_hit **list_r, size_t *n_r, struct buf *err);
/* A message of mailbox_id and another copy of its body (the same blob) in a mailbox of
 * the same account: a cross-posted article's row in another group. */
struct store_copy {
    uint32_t uid;       /* the message of the mailbox asked about */
    int64_t mailbox_id; /* where the copy is (may be that mailbox: another UID of it) */
    uint32_t copy_uid;
};
/*
 * The other copies in owner's mailboxes of the bodies of the messages of mailbox_id
 * with uid_min <= UID <= uid_max, by uid, then mailbox id and copy_uid; a message
 * with none has no entry. One statement for the range, through the messages_blob
 * index (a news reader's overview of a group: its articles' Xref).
 */
int store_message_copies_id(struct store *s, const char *owner, int64_t mailbox_id,
                            uint32_t uid_min, uint32_t uid_max, struct store_copy **list_r,
                            size_t *n_r, struct buf *err);
/*
 * The full-text index (doc/store.md "Full-text index"): per body (blob), the
 * decoded subject, from, to, cc, bcc, the header block and the body text
 * (mime_body_text). Filled lazily, never by delivery: each search first
 * indexes what the mailboxes it looks in received since (so it never misses
 * a message delivered before it), and store_text_topup indexes the rest when
 * the server is idle. A search is a case-insensitive substring search
 * (Unicode case folding), exact for text of at least STORE_TEXT_MIN
 * characters; shorter text is not indexed (the caller scans).
 */
enum store_text_field {
    STORE_TEXT_SUBJECT = 1 << 0,
    STORE_TEXT_FROM = 1 << 1,
    STORE_TEXT_TO = 1 << 2,
    STORE_TEXT_CC = 1 << 3,
    STORE_TEXT_BCC = 1 << 4,
    STORE_TEXT_HEADER = 1 << 5, /* the top-level header block, as it is */
    STORE_TEXT_BODY = 1 << 6,
    /* not a field: store_text_search also returns (other = true) the copies that do
     * not match but whose body has leaf parts that are not text, for the caller to scan */
    STORE_TEXT_OTHER = 1 << 7,
};
#define STORE_TEXT_FIELDS 0x7fu
#define STORE_TEXT_MIN 3
/* Whether store_text_search answers for text (at least STORE_TEXT_MIN characters). */
bool store_text_indexed(struct slice text);
/* A message found by store_text_search. */
struct store_text_hit {
    int64_t mailbox_id;
    uint32_t uid;
    char blob[65];
    bool other; /* STORE_TEXT_OTHER: no match in the index, parts it lacks to scan */
};
/*
 * The messages of owner (mailbox_id 0: in all its mailboxes; else in that
 * mailbox only, which the caller may read: a shared folder) of which one of
 * fields (enum store_text_field, or-ed) holds text, by mailbox id then UID.
 * 1 (nothing returned) when text is too short for the index.
 */
int store_text_search(struct store *s, const char *owner, int64_t mailbox_id, unsigned fields,
                      struct slice text, struct store_text_hit **list_r, size_t *n_r,
                      struct buf *err);
/*
 * JMAP's Emails (bodies of owner's account) of which one of fields holds
 * text, with a copy in mailbox in_mailbox (0: anywhere), sorted by
 * receivedAt (newest first or oldest first), ties by arrival then id, as
 * Email/query sorts them: *hashes_r (free()) holds their body hashes. 1 when
 * text is too short for the index.
 */
int store_text_emails(struct store *s, const char *owner, int64_t in_mailbox, unsigned fields,
                      struct slice text, bool newest_first, char (**hashes_r)[65], size_t *n_r,
                      struct buf *err);
/* Indexes bodies not indexed yet, about max messages' worth (0: all); *n_r: how many
 * messages were looked at (less than max: nothing is left). */
int store_text_topup(struct store *s, size_t max, size_t *n_r, struct buf *err);
/*
 * A number that changes whenever another handle (another process, or another thread's
 * handle) has committed to the store since it was last read on s; s's own commits leave
 * it as it is. Two equal readings a while apart: nobody else wrote meanwhile (the mta's
 * index top-up waits for that, so as not to compete with a stream of deliveries).
 */
int store_data_version(struct store *s, int64_t *v_r, struct buf *err);
/*
 * The reads on s from here to store_read_end see one snapshot and share one read
 * transaction, where each call otherwise opens its own (each with SQLite's locks on
 * the WAL index, and each the first after another handle's commit re-reading the
 * pages it needs): for a run of lookups on a hot path (an NNTP article's checks).
 * Reads only: a write started meanwhile ends the snapshot first. Not nested; -1 when
 * the transaction cannot start (the reads then run as usual, and store_read_end is
 * still called).
 */
int store_read_begin(struct store *s, struct buf *err);
void store_read_end(struct store *s);
/*
 * For a handle whose commits are answered to someone waiting (the NNTP article
 * writer): its commits no longer copy the log into the database themselves once the
 * log is long (SQLite's automatic checkpoint, every ~1,000 pages, a database sync
 * included, inside the commit that crossed the mark); store_checkpoint does it when
 * the caller has answered. Other handles keep theirs.
 */
void store_checkpoint_deferred(struct store *s);
/* On such a handle: the checkpoint its commits put off, if the log is past the mark
 * (else nothing). Never blocks writers (SQLite's PASSIVE checkpoint). */
int store_checkpoint(struct store *s, struct buf *err);
/* Writes the records of n messages in one transaction (no MODSEQ change). */
int store_message_set_records(struct store *s, const char *owner, const char *mailbox,
                              const uint32_t *uids, const struct slice *recs, size_t n,
                              struct buf *err);
int store_message_set_records_id(struct store *s, const char *owner, int64_t mailbox_id,
                                 const uint32_t *uids, const struct slice *recs, size_t n,
                                 struct buf *err);
/*
 * COPY (move = false) or MOVE (move = true, RFC 6851) of the given UIDs to
 * dest, same owner, in ONE transaction; bodies are shared, not copied.
 * new_uids_r (n entries, may be NULL) gets each new UID, 0 for a UID that did
 * not exist. Fails when dest does not exist.
 */
int store_message_copy(struct store *s, const char *owner, const char *mailbox,
                       const uint32_t *uids, size_t n, const char *dest, bool move,
                       uint32_t *new_uids_r, struct buf *err);
/* The same into dest_owner's mailbox dest (shared folders: the quota charged is dest_owner's). */
int store_message_copy_to(struct store *s, const char *owner, const char *mailbox,
                          const uint32_t *uids, size_t n, const char *dest_owner, const char *dest,
                          bool move, uint32_t *new_uids_r, struct buf *err);
int store_message_copy_to_id(struct store *s, const char *owner, int64_t mailbox_id,
                             const uint32_t *uids, size_t n, const char *dest_owner,
                             int64_t dest_id, bool move, uint32_t *new_uids_r, struct buf *err);
/* Expunges the given UIDs (missing ones are ignored), logging each in the expunge log. */
int store_message_expunge(struct store *s, const char *owner, const char *mailbox,
                          const uint32_t *uids, size_t n, struct buf *err);
int store_message_expunge_id(struct store *s, const char *owner, int64_t mailbox_id,
                             const uint32_t *uids, size_t n, struct buf *err);
/*
 * What changed in a mailbox since MODSEQ since, read in one snapshot: the
 * light listing a selected-mailbox view keeps (no body hash, no MIME cache).
 * since 0: every message and no expunges (SELECT); else the messages whose
 * MODSEQ is greater (appended or flags changed) and the UIDs expunged with a
 * greater MODSEQ (the expunge log). A caller whose uidvalidity differs from
 * the one returned is looking at another mailbox of the same name.
 */
struct store_changes {
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;     /* the mailbox's, in the same snapshot */
    struct store_message *msgs; /* UID order; blob "", structure NULL */
    size_t n;
    uint32_t *expunged; /* ascending */
    size_t n_expunged;
};
int store_message_changes(struct store *s, const char *owner, const char *mailbox, uint64_t since,
                          struct store_changes *c, struct buf *err);
int store_message_changes_id(struct store *s, const char *owner, int64_t mailbox_id, uint64_t since,
                             struct store_changes *c, struct buf *err);
void store_changes_free(struct store_changes *c);
/* UIDs expunged with MODSEQ > modseq (QRESYNC VANISHED, JMAP changes), ascending. */
int store_expunged_since(struct store *s, const char *owner, const char *mailbox, uint64_t modseq,
                         uint32_t **uids_r, size_t *n_r, struct buf *err);
int store_expunged_since_id(struct store *s, const char *owner, int64_t mailbox_id, uint64_t modseq,
                            uint32_t **uids_r, size_t *n_r, struct buf *err);

/* ---- delivery and append ---- */

enum store_status {
    STORE_OK,         /* stored (uid set) */
    STORE_DUPLICATE,  /* dedupe_id (or unique_msgid's Message-ID) already there: nothing done */
    STORE_OVER_QUOTA, /* temporary: would exceed the account's quota */
    STORE_FAILED,     /* temporary: store trouble for this target */
    STORE_NO_MAILBOX, /* must_exist was set and the mailbox does not exist (APPEND: TRYCREATE) */
};

struct store_target {
    const char *owner;   /* account */
    const char *mailbox; /* NULL: INBOX; a missing folder also means INBOX ... */
    bool must_exist;     /* ... unless this is set (IMAP APPEND): then STORE_NO_MAILBOX */
    uint64_t quota_bytes, quota_messages; /* 0: unlimited (from directory_quota) */
    uint32_t want_uid; /* 0: the next UID; else (imports keeping a source's UIDs) this UID,
                          which must be >= UIDNEXT (the batch fails otherwise); UIDNEXT
                          becomes want_uid + 1 */
    /* results */
    enum store_status status;
    uint32_t uid;
    uint32_t uidvalidity;
    const char *stored_in; /* the mailbox actually used (points at mailbox or STORE_INBOX) */
};

struct store_delivery {
    struct slice data;    /* the message, stored byte for byte */
    int64_t internaldate; /* 0: now */
    unsigned flags;       /* initial flags (APPEND); 0 for delivery */
    const char *keywords; /* NULL: none */
    const char
        *dedupe_id; /* spool queue id: (dedupe_id, owner) is delivered once; NULL: no check */
    /* A history (NNTP): a target whose account already holds a message with this
     * message's Message-ID, committed or earlier in the same batch, is
     * STORE_DUPLICATE; checked inside the write lock, before any target of this
     * delivery is stored (a cross-post is one message). No Message-ID: no check. */
    bool unique_msgid;
    struct store_target *targets;
    size_t n_targets;
};

/*
 * Stores n deliveries in ONE transaction: every distinct body is appended
 * once to the blob segment, one fdatasync covers all of them, then one
 * commit. Targets get their own status; a target over quota does not stop
 * the others. Returns -1 (every target not OK is then a temporary failure)
 * when the batch could not be committed; nothing of it is then visible.
 */
int store_deliver(struct store *s, struct store_delivery *d, size_t n, struct buf *err);

/* ---- the account as JMAP sees it ---- */

/*
 * JMAP (RFC 8621) names an Email by its body: the copies of one body (blob
 * hash) in the mailboxes of an account are one Email whose mailboxIds are
 * those mailboxes. These calls read across every mailbox of owner.
 */
struct store_account_message {
    int64_t mailbox_id;
    uint64_t state;         /* the account state of this copy's last change */
    uint64_t created_state; /* the account state that created this copy */
    int64_t thread;         /* its JMAP thread (RFC 8621 3): the same for every copy of a body;
                               0 only in a store not migrated yet */
    struct store_message m; /* blob always; structure only when asked for; keywords NULL
                               when the copy has none (most: an account view of 100,000
                               copies held 100,000 one-byte strings, 3 MB of heap) */
};
/*
 * Copies in every mailbox of owner, by mailbox id then UID: blob NULL: all,
 * else only the copies of that body; only those changed after account state
 * since (0: all); with_structure: m.structure filled.
 */
int store_account_messages(struct store *s, const char *owner, const char *blob, uint64_t since,
                           bool with_structure, struct store_account_message **list_r, size_t *n_r,
                           struct buf *err);
void store_account_messages_free(struct store_account_message *list, size_t n);
/*
 * Every copy of owner as a worker with no account view reads it (a first
 * sign-in), one row call each, in no promised order: m.uid, m.flags,
 * m.keywords (NULL when none; both valid during the call only),
 * m.internaldate, m.blob, mailbox_id, created_state and thread (m.modseq,
 * m.size, state 0; no structure). Read from the messages_date index alone,
 * not from the message rows, which carry the envelope, body structure and
 * search record (~500 bytes each), and into no array of its own.
 */
typedef void store_account_row_fn(void *ctx, const struct store_account_message *a);
int store_account_dates(struct store *s, const char *owner, store_account_row_fn *row, void *ctx,
                        struct buf *err);
/*
 * A few copies of owner read like store_account_dates' (the same fields,
 * from an index, each valid during its call only), row called for each
 * until it returns false: STORE_DATES_MAILBOX: those of mailbox id that are
 * the first (lowest UID) of their body in it, so one per Email it holds, in
 * a mail list's order (receivedAt, then arrival, newest first when desc;
 * then body ascending), read as they are asked for, so that a first page
 * costs its rows, not the mailbox's; STORE_DATES_KEYWORD: those with every
 * keyword condition of k (at most STORE_DATES_KW; 1, no row, when more or
 * a word with a space), in no order; STORE_DATES_THREAD: those of thread id,
 * in no order. 0, or -1 on trouble.
 */
#define STORE_DATES_KW 4
struct store_keyword_cond {
    unsigned flag;    /* a store flag (STORE_FLAG_*), or 0: word */
    const char *word; /* a keyword (no case) when flag is 0 */
    bool want;        /* has it (hasKeyword) or not (notKeyword) */
};
struct store_dates_ask {
    enum { STORE_DATES_MAILBOX, STORE_DATES_KEYWORD, STORE_DATES_THREAD } by;
    const char *owner;
    int64_t id; /* the mailbox, or the thread */
    bool desc;
    const struct store_keyword_cond *k;
    size_t nk;
};
typedef bool store_account_walk_fn(void *ctx, const struct store_account_message *a);
int store_dates(struct store *s, const struct store_dates_ask *q, store_account_walk_fn *row,
                void *ctx, struct buf *err);
/*
 * The copies of mailbox (of owner) with every keyword condition of k (as
 * STORE_DATES_KEYWORD) that are the first of their body in it (as
 * STORE_DATES_MAILBOX), counted in the store: *n_r copies, or (threads) the
 * threads they are in. 0; 1 when k cannot be asked (as store_dates); -1 on trouble.
 */
int store_mailbox_count(struct store *s, const char *owner, int64_t mailbox, bool threads,
                        const struct store_keyword_cond *k, size_t nk, uint64_t *n_r,
                        struct buf *err);
/* What went after account state since: mailbox ids deleted, bodies of
 * which a copy was expunged or moved (the body may still have other copies),
 * and the threads such a copy was in (the thread may still have others). */
struct store_account_gone {
    int64_t *mailboxes;
    uint64_t *mailbox_states; /* the account state each went at */
    size_t n_mailboxes;
    char (*blobs)[65];
    uint64_t *blob_states;
    size_t n_blobs;
    int64_t *threads; /* threads a copy left (expunge, move): changed or gone */
    uint64_t *thread_states;
    size_t n_threads;
};
int store_account_gone(struct store *s, const char *owner, uint64_t since,
                       struct store_account_gone *g, struct buf *err);
void store_account_gone_free(struct store_account_gone *g);

/* The id the store gives a body: its SHA-256 in hex (store_message.blob). */
void store_body_id(struct slice data, char hex_r[65]);

/* Seconds an upload no message refers to is kept (RFC 8620 6.1: at least an hour). */
#define STORE_UPLOAD_HOLD 3600
/*
 * Stores data as an upload of owner (durable when it returns); hash_r gets
 * its hex SHA-256, the blob id. The same bytes uploaded again share the body
 * and renew the hold; store_gc drops uploads older than STORE_UPLOAD_HOLD.
 */
int store_upload(struct store *s, const char *owner, struct slice data, char hash_r[65],
                 struct buf *err);
/* The body hash into out (reset first) when owner may read it: a copy in one of
 * its mailboxes or one of its uploads. Returns 1 when not (or no such body). */
int store_account_blob_read(struct store *s, const char *owner, const char *hash, struct buf *out,
                            struct buf *err);

/* ---- the vacation response (JMAP VacationResponse, RFC 8621 8) ---- */

/*
 * One per account; the mta sends the automatic reply it describes
 * (src/mta/vacation.h). An account that never set one has it disabled.
 */
struct store_vacation {
    bool enabled;
    bool has_from, has_to;      /* without: no bound on that side */
    int64_t from_date, to_date; /* unix seconds */
    char *subject;              /* NULL: none (the reply says "Auto: " + the subject) */
    char *text_body, *html_body;
};
int store_vacation_get(struct store *s, const char *owner, struct store_vacation *v,
                       struct buf *err);
/* Replaces owner's vacation response in one transaction: the account state
 * grows (JMAP's VacationResponse state), and the senders already answered
 * are forgotten (the new response goes to them too). */
int store_vacation_set(struct store *s, const char *owner, const struct store_vacation *v,
                       struct buf *err);
void store_vacation_free(struct store_vacation *v);
/*
 * RFC 3834 2: whether owner's automatic reply may go to sender (compared as
 * given: callers lowercase it) at unix time now. Returns 1 when sender got
 * none after now - period seconds, and records now as its reply (durably,
 * in the same statement: two deliveries never both get 1); 0 when it did.
 */
int store_vacation_claim(struct store *s, const char *owner, const char *sender, int64_t now,
                         int64_t period, struct buf *err);

/* ---- identities (JMAP Identity, RFC 8621 6) ---- */

/*
 * The identities an account made (its directory addresses are identities
 * the caller adds without a row). The store keeps the fields as given: the
 * caller checks that the account may send from email.
 */
struct store_identity {
    int64_t id; /* given by the store, never reused */
    char *email, *name;
    char *reply_to, *bcc; /* JMAP EmailAddress[] as JSON text (opaque here); NULL: none */
    char *text_signature, *html_signature;
    uint64_t state;         /* the account state of its last change */
    uint64_t created_state; /* the account state that created it */
};
/* owner's identities changed after account state since (0: all), by id. */
int store_identity_list(struct store *s, const char *owner, uint64_t since,
                        struct store_identity **list_r, size_t *n_r, struct buf *err);
void store_identity_list_free(struct store_identity *list, size_t n);
/* Creates (v->id 0: v->id set) or replaces owner's identity v->id; the
 * account state grows. Returns 1 when v->id is not one of owner's. */
int store_identity_put(struct store *s, const char *owner, struct store_identity *v,
                       struct buf *err);
/* Deletes owner's identity id (the account state grows); 1 when there is none. */
int store_identity_delete(struct store *s, const char *owner, int64_t id, struct buf *err);
/* The identities of owner deleted after account state since: ids and the state each went at. */
int store_identity_gone(struct store *s, const char *owner, uint64_t since, int64_t **ids_r,
                        uint64_t **states_r, size_t *n_r, struct buf *err);

/* ---- quotas, public folders, ACLs ---- */

/* The whole store's figures (/metrics): accounts, messages (each copy) and
 * their bytes, summed from the quota counters (one row per account, kept
 * in the same transaction as every change): never a scan of the messages. */
struct store_totals {
    uint64_t accounts, messages, bytes;
};
int store_totals(struct store *s, struct store_totals *t, struct buf *err);

/* Current usage of an account (sum over its mailboxes). */
int store_quota_usage(struct store *s, const char *owner, uint64_t *bytes_r, uint64_t *messages_r,
                      struct buf *err);

/* RFC 4314 rights: any of "lrswipkxtea"; set replaces, "" removes. The
 * identifier is an account, "anyone", or one of them after "-" (negative rights). */
int store_acl_set(struct store *s, const char *owner, const char *mailbox, const char *identifier,
                  const char *rights, struct buf *err);
/* Rights of identifier on the mailbox into rights_r ("" when none). */
int store_acl_get(struct store *s, const char *owner, const char *mailbox, const char *identifier,
                  struct buf *rights_r, struct buf *err);
struct store_acl_entry {
    char *identifier;
    char *rights;
};
int store_acl_list(struct store *s, const char *owner, const char *mailbox,
                   struct store_acl_entry **list_r, size_t *n_r, struct buf *err);
void store_acl_list_free(struct store_acl_entry *list, size_t n);
/*
 * The effective rights of user on owner's mailbox into rights_r: every right
 * for the owner; else the rights of user and "anyone" minus those of the
 * negative identifiers "-user" and "-anyone". Returns 1 when there is no such
 * mailbox (or the name is not valid).
 */
int store_acl_rights(struct store *s, const char *owner, const char *mailbox, const char *user,
                     struct buf *rights_r, struct buf *err);
/*
 * Whether user may create owner's mailbox (a full name, also a RENAME's
 * target; RFC 4314 4): always in their own account; in another owner's only
 * below an existing mailbox on which user's effective rights hold "k" (no
 * parents are made there, nothing at the top level). 1 yes, 0 no, -1 store
 * trouble. The one rule IMAP's CREATE and RENAME and JMAP's Mailbox/set ask.
 */
int store_acl_may_create(struct store *s, const char *owner, const char *mailbox, const char *user,
                         struct buf *err);
/* A mailbox of another owner and user's effective rights on it (never ""). */
struct store_acl_share {
    char *owner;
    char *mailbox;
    char *rights;
};
/* Every mailbox not user's own on which user has some right, ordered by owner and name. */
int store_acl_shared(struct store *s, const char *user, struct store_acl_share **list_r,
                     size_t *n_r, struct buf *err);
void store_acl_shared_free(struct store_acl_share *list, size_t n);

/* ---- newsgroup hierarchies (NNTP) ---- */

/*
 * A public folder may anchor a newsgroup hierarchy: its subfolders are the
 * groups under that name (public folder "News" anchoring "comp.wharf" makes
 * "News/dev" the group "comp.wharf.dev"). hierarchy "" removes the anchor;
 * a hierarchy another folder anchors is refused. Fails when the public
 * folder does not exist.
 */
int store_newsgroup_anchor_set(struct store *s, const char *mailbox, const char *hierarchy,
                               struct buf *err);
struct store_newsgroup_anchor {
    char *mailbox;   /* the public folder */
    char *hierarchy; /* "comp.wharf" */
    int64_t created; /* unix seconds the anchor was set */
};
/* Every anchor, ordered by hierarchy (folders deleted since are left out). */
int store_newsgroup_anchors(struct store *s, struct store_newsgroup_anchor **list_r, size_t *n_r,
                            struct buf *err);
void store_newsgroup_anchors_free(struct store_newsgroup_anchor *list, size_t n);

/* ---- outbound news feeds (NNTP) ---- */

/*
 * A durable queue per feed peer (its Path name) of the articles it is to be
 * offered, and a cursor per peer and fed public folder: the highest UID
 * already looked at for it. store_feed_enqueue adds the entries and moves the
 * cursor in one transaction, so an article committed to a folder is queued
 * for a peer exactly once however the feeder crashes (it looks again from
 * the cursor); an entry leaves the queue only by store_feed_done, once the
 * peer has answered for it. An article queued twice for a peer (cross-posted
 * to two fed folders) is one entry. A deleted folder takes its entries along.
 */
struct store_feed_item {
    char *msgid;        /* "<...>" */
    int64_t mailbox_id; /* where the article is read from */
    uint32_t uid;
    uint32_t attempts; /* answers that said "later" so far */
    int64_t due;       /* unix milliseconds of the next try */
};
/* The cursor of peer for the folder (0 when none yet). */
int store_feed_cursor(struct store *s, const char *peer, int64_t mailbox_id, uint32_t *uid_r,
                      struct buf *err);
/* Queues items (due now) and sets the cursor of peer for the folder to cursor. */
int store_feed_enqueue(struct store *s, const char *peer, int64_t mailbox_id, uint32_t cursor,
                       const struct store_feed_item *items, size_t n, struct buf *err);
/* At most max entries of peer, the soonest due first; *total_r (may be NULL): all its entries. */
int store_feed_pending(struct store *s, const char *peer, size_t max,
                       struct store_feed_item **list_r, size_t *n_r, uint64_t *total_r,
                       struct buf *err);
void store_feed_items_free(struct store_feed_item *list, size_t n);
/* Removes the entries of peer named by msgids (answered), in one transaction. */
int store_feed_done(struct store *s, const char *peer, char *const *msgids, size_t n,
                    struct buf *err);
/* An entry to try again at due (attempts counted up). */
int store_feed_retry(struct store *s, const char *peer, const char *msgid, int64_t due,
                     struct buf *err);

/* NEWNEWS pulls: when the last successful pull from peer began (the peer's clock,
 * seconds since the epoch; 0: never), kept across restarts. */
int store_pull_since(struct store *s, const char *peer, int64_t *since_r, struct buf *err);
int store_pull_set(struct store *s, const char *peer, int64_t since, struct buf *err);

/* ---- maintenance and statistics ---- */

struct store_blob_stats {
    uint64_t blobs;         /* distinct live bodies */
    uint64_t blob_bytes;    /* their size */
    uint64_t segments;      /* segment files on disk */
    uint64_t segment_bytes; /* their size (live + dead + orphaned) */
};
int store_blob_stats(struct store *s, struct store_blob_stats *st, struct buf *err);

/*
 * Reclaims space: bodies no message refers to, and segment tails left by a
 * crash between blob write and commit. Rewrites the live bodies of mostly
 * dead segments into the current one (fdatasync, commit), then unlinks them.
 */
int store_gc(struct store *s, struct buf *err);

/* Forgets dedupe records older than max_age_seconds (their spool files are long gone). */
int store_dedupe_expire(struct store *s, int64_t max_age_seconds, struct buf *err);

/* Gives back the memory the store keeps to read faster (the database pages its
 * connection caches): for a process gone quiet; the next reads fetch them again. */
void store_release_memory(struct store *s);

struct store_backup_stats {
    uint64_t files, bytes;         /* copied */
    uint64_t linked, linked_bytes; /* hard-linked from the previous backup */
};
/*
 * wharf backup: a consistent copy of the store of DATA_DIRECTORY (the
 * store_driver option's driver) into the new folder dest/store, taken while
 * wharfd goes on writing: one snapshot of the metadata, then the bodies it
 * names. prev (may be NULL): an earlier backup folder whose unchanged body
 * files are hard-linked instead of copied.
 */
int store_backup(const struct wharf_config *cfg, const char *dest, const char *prev,
                 struct store_backup_stats *st, struct buf *err);
/* Whether DATA_DIRECTORY holds a store of the configured driver. */
bool store_present(const struct wharf_config *cfg);
/*
 * wharf restore: the store of the backup folder from (store_backup's dest)
 * into DATA_DIRECTORY, which holds none (store_present false). The bodies go
 * first and the metadata last, so a restore cut short holds no store and can
 * be run again.
 */
int store_restore(const struct wharf_config *cfg, const char *from, struct store_backup_stats *st,
                  struct buf *err);

/*
 * Test hook: called at named points of store_deliver ("blob-synced": bodies
 * durable, not committed; "committed": commit done, not yet returned). Tests
 * fork and _exit() there to inject a crash. NULL: none (always in product use).
 */
void store_set_fault_hook(void (*hook)(const char *point));
void store_fault_point(const char *point);

#endif
