/*
 * imap_int.h - what the files of the imap worker share: the server and
 * session structs, reply helpers and the selected-mailbox view.
 * Must never: be included outside src/imap.
 */
#ifndef WHARF_IMAP_IMAP_INT_H
#define WHARF_IMAP_IMAP_INT_H

#include "auth/auth_login.h"
#include "directory/directory_client.h"
#include "imap/imap_parse.h"
#include "net/lineproto.h"
#include "net/net.h"
#include "net/net_proxy.h"
#include "store/store.h"

/* Largest literal before login (a user name or password): an unauthenticated
 * client never makes us buffer imap_max_literal_size bytes. */
#define IMAP_MAX_PREAUTH_LITERAL 4096
/* Flags as one FLAGS list; the store keeps keywords as a space-separated string. */
#define IMAP_SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

struct imap_session;
struct imap_context;
struct imap_notify;

/* printf arguments for a tag slice: "%.*s". */
#define TAGF(tag) (int)(tag).len, (tag).ptr

/* What every session of one worker process shares. */
struct imap_server {
    struct net_worker *worker;
    const struct wharf_config *cfg;
    struct store *store;
    struct auth_client *auth;
    struct directory_client *dir; /* quotas, from the directory process */
    const char *greeting_host;
    struct imap_session *sessions;  /* every open session (mailbox list events, drain) */
    struct imap_changes_memo *memo; /* set while one event wakes sessions (imap_store_changes) */
    /*
     * What a mailbox-changed event wakes: the sessions that have that mailbox
     * selected (a tsearch(3) tree of (owner, name) -> their list) and those with
     * NOTIFY set, never every connection (10,000 IDLE ones over 100 users: a
     * delivery looks at ~100 sessions, not 10,000).
     */
    void *selected;
    struct imap_session *notifying;
    uint64_t changed_events; /* mailbox-changed events handled (`wharf status`) */
    uint64_t changed_visits; /* sessions those events looked at */
};

/*
 * store_message_changes for the session's selected mailbox. While one
 * mailbox-changed event wakes the IDLE sessions of a mailbox, those that
 * synced to the same MODSEQ share one store read (a copy each) instead of
 * one read per session.
 */
int imap_store_changes(struct imap_session *s, uint64_t since, struct store_changes *c,
                       struct buf *err);

enum imap_state {
    IMAP_NOT_AUTHENTICATED,
    IMAP_AUTHENTICATED,
    IMAP_SELECTED,
    IMAP_LOGOUT,
};

enum imap_wait {
    IMAP_WAIT_NONE,
    IMAP_WAIT_SASL,  /* sent "+ " for AUTHENTICATE, a response line comes next */
    IMAP_WAIT_AUTH,  /* the auth process is checking credentials (reading paused) */
    IMAP_WAIT_IDLE,  /* in IDLE until "DONE" */
    IMAP_WAIT_TLS,   /* STARTTLS answered, handshake pending */
    IMAP_WAIT_PROXY, /* a front-end's session spliced to its home server (imap_proxy.c) */
};

/*
 * One message of a view: what the commands read without going to the store
 * (40 bytes; the store's row also has the body hash and the MIME cache).
 * keywords is never NULL; "" is shared (imap_view frees the others).
 */
struct imap_msg {
    uint32_t uid;
    unsigned flags; /* enum store_flag bits */
    uint64_t modseq;
    int64_t internaldate;
    uint64_t size;
    char *keywords; /* space-separated */
};

/* In imap_msg.flags, never in the store: the session's \Recent (RFC 3501 2.3.2). */
#define IMAP_MSG_RECENT (1u << 31)

/* The selected mailbox as this session knows it: message i has MSN i + 1. */
struct imap_view {
    char *owner; /* whose mailbox: the session's account, another one, or STORE_PUBLIC_OWNER */
    char *name;  /* the store's name of it (not the IMAP name: see imap_namespace.c) */
    /* The store's id of it, resolved once at SELECT: every store call on the
     * selected mailbox uses it, so another session's RENAME does not cut this
     * session off (it goes on with the same mailbox, as Dovecot's do) and a
     * DELETE makes its calls fail as "no such mailbox". */
    int64_t id;
    unsigned rights; /* the session's rights on it when selected (IMAP_RIGHT_*) */
    bool readonly;
    bool dirty; /* a mailbox-changed event came since the last complete sync */
    struct imap_context
        *contexts; /* RFC 5267 update contexts (imap_context.c); end with the view */
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;
    uint64_t synced_modseq; /* the store's HIGHESTMODSEQ the view is in step with */
    struct imap_msg *msgs;
    size_t n;
    uint32_t *saved; /* SEARCHRES "$" (RFC 5182): UIDs, ascending; reset with the view */
    size_t n_saved;
    /* Keywords this session was told of in FLAGS/PERMANENTFLAGS (RFC 3501 7.2.6):
     * only grows while the mailbox is selected. */
    char **kw;
    size_t n_kw;
    size_t n_recent; /* messages with IMAP_MSG_RECENT */
};

struct imap_session {
    struct imap_server *srv;
    struct net_conn *conn;
    struct imap_session *prev, *next;
    enum imap_state state;
    enum imap_wait wait;
    struct imap_reader reader;
    struct buf line; /* SASL responses and IDLE's DONE */
    char *tag;       /* of the command waiting (AUTHENTICATE, IDLE) */
    char *account;
    struct auth_login *login;   /* the login kit (auth_login.h) */
    void *dir_handle;           /* the account's quota asked at login, before the OK */
    struct line_session ls;     /* replies, malformed commands in a row (lineproto.h) */
    bool condstore;             /* CONDSTORE enabled (RFC 7162 3.1): MODSEQ in FETCH responses */
    bool qresync;               /* QRESYNC enabled (RFC 7162 3.2): VANISHED instead of EXPUNGE */
    bool rev2;                  /* IMAP4rev2 enabled (RFC 9051): ESEARCH, UTF-8 names, no RECENT */
    const char *name_error;     /* why imap_mailbox_arg refused a name; imap_bad says it */
    struct imap_notify *notify; /* NOTIFY in effect (RFC 5465, imap_notify.c); NULL: never used */
    struct imap_view view;
    /* In the server's index of selected mailboxes while SELECTED (imap_selected_link). */
    struct imap_selected *sel;
    struct imap_session *sel_prev, *sel_next;
    /* In the server's list of NOTIFY sessions while notify != NULL. */
    struct imap_session *ntf_prev, *ntf_next;
    struct net_proxy *proxy; /* front-end: the session's home server (imap_proxy.c) */
    int proxy_stage;         /* 0: waiting for its greeting, 1: hand-over sent */
    bool handover;           /* back-end: signed in by a front-end's hand-over */
};

/* ---- front-end proxy (imap_proxy.c, net/net_proxy.h) ---- */
/* After the login's directory answer (imap_session.c): true when the session
 * was taken over here (proxied, or refused on a front-end); it answers then. */
bool imap_proxy_login(struct imap_session *s, const struct directory_answer *a);
/* XWHARFPROXY "account" client-address mac: a front-end's hand-over. */
void imap_cmd_handover(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n);
/* The login is undone (a failed hand-over or proxy): the session is not authenticated. */
void imap_login_undo(struct imap_session *s);
/* Signed in as account (the login kit's OK or a hand-over): asks the directory, then OK. */
void imap_login_accepted(struct imap_session *s, const char *account, const char *via);

/* ---- replies (imap_session.c) ---- */
void imap_printf(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "<tag> BAD <text>"; counts towards imap_max_errors. */
void imap_bad(struct imap_session *s, struct slice tag, const char *text);
/* "<tag> NO [SERVERBUG] ..." after logging a store error. */
void imap_store_error(struct imap_session *s, struct slice tag, const char *what, struct buf *err);
/* Tell every session (here and, through the bus, in other processes) that owner's mailbox changed.
 */
void imap_mailbox_changed(struct imap_session *s, const char *owner, const char *mailbox);
/*
 * The server's index of who cares about a mailbox-changed event. link after
 * view.owner/view.name are set (SELECT, a RENAME of the selected mailbox),
 * unlink before they change or are freed; both are no-ops when already so.
 */
void imap_selected_link(struct imap_session *s);
void imap_selected_unlink(struct imap_session *s);
/* Set s->notify (NULL: none) and keep the server's list of NOTIFY sessions. */
void imap_notify_track(struct imap_session *s, struct imap_notify *n);

/* ---- mailboxes (imap_mailbox.c) ---- */
typedef void imap_handler(struct imap_session *s, struct slice tag, bool uid,
                          const struct imap_arg *args, size_t n);
imap_handler imap_cmd_select, imap_cmd_examine, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
    imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list, imap_cmd_lsub, imap_cmd_status,
    imap_cmd_namespace, imap_cmd_close, imap_cmd_unselect, imap_cmd_check;
/*
 * Mailbox name argument: an astring, modified UTF-7 from an IMAP4rev1
 * session and UTF-8 from an IMAP4rev2 one, returned in UTF-8 (the store's
 * form); "INBOX" in any case becomes "INBOX". NULL when invalid (an encoding
 * error also sets s->name_error, which the next imap_bad sends).
 */
char *imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a);
/* A LIST reference or pattern (wildcards allowed) into UTF-8, as imap_mailbox_arg. */
bool imap_mailbox_decode(struct imap_session *s, struct slice name, struct buf *out);
void imap_view_free(struct imap_view *v);
/*
 * A CONDSTORE-enabling command (RFC 7162 3.1): turns CONDSTORE on; the first
 * time while a mailbox is selected it sends "* OK [HIGHESTMODSEQ n]".
 */
void imap_condstore_enable(struct imap_session *s);
/*
 * Brings the view up to date with the store (what changed since
 * view.synced_modseq: the caller decides when; between commands only when
 * view.dirty) and says what changed:
 * EXPUNGE (only when allow_expunge; else nothing is done while expunges are
 * pending), FETCH FLAGS (except for quiet_uid ... sorted), EXISTS.
 */
/* A RENAME of owner's mailbox old (and its children) to name: the selected
 * view follows it, so its events and logs carry the new name. */
void imap_view_renamed(struct imap_session *s, const char *owner, const char *name,
                       const char *old);
void imap_view_sync(struct imap_session *s, bool allow_expunge, const uint32_t *quiet_uids,
                    size_t n_quiet);
/* A mailbox name (UTF-8; modified UTF-7 to IMAP4rev1): an atom when it can be, else a string. */
void imap_mailbox_name_write(const struct imap_session *s, struct buf *out, const char *name);
/*
 * "* STATUS name (items)\r\n" for mb; NULL, or the BAD text (nothing
 * written) when an item is unknown. Used by STATUS and LIST-STATUS.
 */
const char *imap_status_write(struct imap_session *s, struct buf *out, const char *name,
                              const struct imap_arg *items, const struct store_mailbox *mb);
/* Appends "(\Seen keyword ...)". */
void imap_flags_write(struct buf *out, unsigned flags, const char *keywords);
/*
 * Before a FETCH FLAGS response with keywords (space-separated): sends the
 * untagged FLAGS and PERMANENTFLAGS again when one of them is new to the
 * session (RFC 3501 7.2.6, RFC 9051 7.3.5), so no keyword is used unannounced.
 */
void imap_view_keywords_announce(struct imap_session *s, const char *keywords);

/* ---- messages (imap_fetch.c, imap_message.c, imap_search.c) ---- */
imap_handler imap_cmd_fetch, imap_cmd_store, imap_cmd_copy, imap_cmd_move, imap_cmd_expunge,
    imap_cmd_append, imap_cmd_search, imap_cmd_sort, imap_cmd_thread;

/* ---- IMAP URLs (imap_url.c) ---- */
/*
 * Appends what an IMAP URL (RFC 5092) names to out: 0; 1 when it names
 * nothing this session may read (a bad URL, another server or user, no "r"
 * right, a wrong UIDVALIDITY, no such message or part); -1 on store trouble
 * (logged).
 */
int imap_url_fetch(struct imap_session *s, struct slice url, struct buf *out);

/* ---- COMPRESS=DEFLATE (imap_compress.c) ---- */
imap_handler imap_cmd_compress;

/* ---- QUOTA (imap_quota.c) ---- */
imap_handler imap_cmd_getquota, imap_cmd_getquotaroot;
/* owner's limits from the directory (0: unlimited; public folders have none); -1 when unknown
 * (logged). */
int imap_quota_limits(struct imap_session *s, const char *owner, uint64_t *bytes_r,
                      uint64_t *messages_r);
/*
 * Resolves a sequence set (MSNs, or UIDs when uid) against the view into
 * view indexes, ascending. false (and a BAD sent) when the set is invalid.
 */
bool imap_view_select(struct imap_session *s, struct slice tag, struct slice set, bool uid,
                      size_t **idx_r, size_t *n_r);
/* A sequence-set argument is "$", the saved search result (RFC 5182). */
bool imap_set_is_saved(struct slice set);
/* The saved search result holds uid. */
bool imap_view_saved_has(const struct imap_view *v, uint32_t uid);
/*
 * Evaluates SEARCH keys (after CHARSET) over the view: (*match_r)[i] for view
 * index i (free it). NULL, or the BAD text. modseq_r (may be NULL): a MODSEQ key was used.
 */
const char *imap_search_eval(struct imap_session *s, const struct imap_arg *args, size_t n,
                             bool **match_r, bool *modseq_r);
/* A CHARSET argument we know (UTF-8, US-ASCII); else NO [BADCHARSET] is sent. */
bool imap_search_charset(struct imap_session *s, struct slice tag, const struct imap_arg *a);
/* Parses a flag list "(\Seen foo)" into system flags + keywords (at most
 * keywords_max bytes, the store's limit); false when invalid. */
bool imap_flags_parse(const struct imap_arg *a, size_t keywords_max, unsigned *flags_r,
                      struct buf *keywords);
/* The store's keyword list limit (store_keywords_max). */
size_t imap_keywords_max(const struct imap_session *s);

/* ---- namespaces and rights (imap_namespace.c), ACL commands (imap_acl.c) ---- */
#define IMAP_NS_OTHER "Other Users"     /* + "/" + account + "/" + mailbox */
#define IMAP_NS_PUBLIC "Public Folders" /* + "/" + public folder */
#define IMAP_RIGHTS "lrswipkxtea"       /* RFC 4314, bit i is IMAP_RIGHTS[i] */
enum imap_right {
    IMAP_RIGHT_L = 1u << 0,  /* lookup: LIST, and knowing that it exists */
    IMAP_RIGHT_R = 1u << 1,  /* read: SELECT, EXAMINE, STATUS, FETCH */
    IMAP_RIGHT_S = 1u << 2,  /* keep \Seen */
    IMAP_RIGHT_W = 1u << 3,  /* write flags but \Seen and \Deleted */
    IMAP_RIGHT_I = 1u << 4,  /* insert: APPEND, COPY/MOVE into */
    IMAP_RIGHT_P = 1u << 5,  /* post (no SMTP submission to folders: kept, not used) */
    IMAP_RIGHT_K = 1u << 6,  /* create mailboxes below */
    IMAP_RIGHT_X = 1u << 7,  /* delete or rename the mailbox */
    IMAP_RIGHT_T = 1u << 8,  /* \Deleted */
    IMAP_RIGHT_E = 1u << 9,  /* expunge */
    IMAP_RIGHT_A = 1u << 10, /* administer: SETACL, GETACL, LISTRIGHTS */
};
#define IMAP_RIGHTS_ALL 0x7ffu
/* A mailbox name resolved: whose, which, and what this session may do with it. */
struct imap_mbref {
    char *owner;
    char *name;      /* the store's name; NULL: a namespace level ("Other Users/bob"), no mailbox */
    unsigned rights; /* every right on one's own names; 0 on another owner's missing mailbox */
    bool own;        /* owner is the session's account */
    bool exists;     /* the mailbox exists */
};
/* 0, or -1 on store trouble (logged). Free with imap_mbref_free either way. */
int imap_mbref_resolve(struct imap_session *s, const char *imap_name, struct imap_mbref *r);
void imap_mbref_free(struct imap_mbref *r);
/*
 * true when r names a mailbox and the session has every right of need; else
 * answers "NO [NOPERM]" to a user who may see the mailbox ("l"), and
 * "NO <missing>" (the text for a mailbox that does not exist) to the others.
 */
bool imap_mbref_allowed(struct imap_session *s, struct slice tag, const struct imap_mbref *r,
                        unsigned need, const char *missing);
/*
 * An IMAP name as account sees it into the owner (account, another one, or
 * STORE_PUBLIC_OWNER) and the store's name, NULL for a namespace level
 * ("Other Users", "Other Users/bob@example.org"); a first level "inbox" in
 * any case is "INBOX". Free both.
 */
void imap_ns_split(const char *account, const char *imap_name, char **owner_r, char **name_r);
/* The reverse: the IMAP name of owner's mailbox name as account sees it (free it). */
char *imap_ns_name(const char *account, const char *owner, const char *name);
/* The "* NAMESPACE ..." response line. */
void imap_ns_write(struct buf *out);
/* Appends to mbs the other owners' mailboxes this session may see ("l"), named for LIST. */
int imap_ns_list_shared(struct imap_session *s, struct store_mailbox **mbs, size_t *n,
                        struct buf *err);
/* RFC 4314 rights letters (also the obsolete "c" and "d") into bits; false on an unknown letter. */
bool imap_rights_parse(struct slice text, unsigned *bits_r);
/* Rights as letters ("" when none), with "c" and "d" when virtual_rights (RFC 4314 2.1.1). */
void imap_rights_write(struct buf *out, unsigned bits, bool virtual_rights);
/* The flags rights let a session change, for PERMANENTFLAGS ("\\*" with "w",
 * after the n_kw keywords kw, which "w" also lets it change). */
void imap_rights_flags_write(struct buf *out, unsigned rights, char *const *kw, size_t n_kw);
imap_handler imap_cmd_setacl, imap_cmd_deleteacl, imap_cmd_getacl, imap_cmd_listrights,
    imap_cmd_myrights;

/* ---- QRESYNC (imap_qresync.c) ---- */
/* The QRESYNC SELECT/EXAMINE parameter (RFC 7162 3.2.5). */
struct imap_qresync {
    bool on;
    uint32_t uidvalidity;
    uint64_t modseq;
    bool has_known;
    struct imap_seqset known; /* known-uids, when has_known */
};
/*
 * Parses SELECT/EXAMINE's parameter list "(CONDSTORE QRESYNC (...))"; NULL,
 * or the BAD text (QRESYNC without ENABLE QRESYNC is one).
 */
const char *imap_select_params(struct imap_session *s, const struct imap_arg *params,
                               bool *condstore_r, struct imap_qresync *q);
void imap_qresync_free(struct imap_qresync *q);
/* After the select responses: VANISHED (EARLIER) and FETCH of what changed since q->modseq. */
int imap_qresync_select(struct imap_session *s, const struct imap_qresync *q, struct buf *out);
/* "* VANISHED (EARLIER) uids" of the UIDs expunged since modseq (within the set, if any). */
int imap_vanished_earlier(struct imap_session *s, uint64_t modseq, const struct imap_seqset *within,
                          struct buf *out);

/* ---- BINARY (imap_binary.c) ---- */
enum imap_binary_result {
    IMAP_BINARY_OK,
    IMAP_BINARY_NONE,        /* no such part: an empty string */
    IMAP_BINARY_UNKNOWN_CTE, /* NO [UNKNOWN-CTE] */
};
struct mime_message;
/* A section-binary ("" or "1.2.3"). */
bool imap_binary_spec_valid(struct slice spec);
/* The decoded content of BINARY[spec] into out (reset first). */
enum imap_binary_result imap_binary_section(const struct mime_message *msg, struct slice spec,
                                            struct buf *out);
/* Its length (BINARY.SIZE[spec]), counted without decoding. */
enum imap_binary_result imap_binary_size(const struct mime_message *msg, struct slice spec,
                                         size_t *size_r);

#endif
