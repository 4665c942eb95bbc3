/*
 * jmap_int.h - what the JMAP engine's files share (src/http/jmap_*.c only):
 * the per-request context, the method table's shape, argument checks,
 * ids and states.
 *
 * Ids: a Mailbox is "m" + its store id (store_mailbox.id, never reused); an
 * Email is "e" + its body's SHA-256 hex (the copies of one body in the
 * account are one Email); its Thread is "t" + the same; a blob is "b" + the
 * body hash, a part of an Email "b" + hash + "." + part index. States are
 * the store's account-wide change counter in decimal.
 */
#ifndef WHARF_HTTP_JMAP_INT_H
#define WHARF_HTTP_JMAP_INT_H

#include "http/jmap.h"
#include "mime/mime.h"

#define JMAP_CORE "urn:ietf:params:jmap:core"
#define JMAP_MAIL "urn:ietf:params:jmap:mail"
#define JMAP_SUBMISSION "urn:ietf:params:jmap:submission"
#define JMAP_VACATION "urn:ietf:params:jmap:vacationresponse"

/* The session state's first part: the build and its options; a hash of the
 * shared accounts and the rights on them follows (jmap_shared_accounts). */
#define JMAP_SESSION_STATE "1"

/* Longest Email/query result window a client may ask for at once. */
#define JMAP_QUERY_LIMIT_MAX 5000

/* One mailbox of a shared account and the caller's effective rights on it. */
struct jmap_acl {
    int64_t mailbox_id;
    char rights[16]; /* RFC 4314 letters, "lrswipkxtea" order */
};

struct jmap_req {
    struct jmap *j;
    /* the owner of the account the current call works on (the store's key):
     * login for the personal account, another user or STORE_PUBLIC_OWNER for
     * a shared one (jmap_check_account switches it); reset before each call */
    const char *user;
    const char *login; /* the authenticated user, always */
    struct buf account_id;
    /* A shared account: login's rights on each of its mailboxes (those with
     * none are absent); NULL for the personal account, where every right is
     * login's. Checked by jmap_may on every read and write. */
    struct jmap_acl *acl;
    size_t n_acl;
    char *owner;         /* the owner of a shared account (r->user points here) */
    bool shared_ok;      /* the current method works on shared accounts */
    struct buf view_key; /* what the worker's caches (view, queries) are keyed by */
    json_t *created_ids; /* creation id -> id, over the whole request */
    json_t *responses;   /* methodResponses so far (back-references) */
    json_t *extra;       /* responses a method adds after its own (implicit Email/set) */
    json_t *submitted;   /* EmailSubmission/set: the Email id of each submission made */
    bool using_mail, using_submission;
};

/* A method: the response arguments, or NULL with *err_r a method error. */
typedef json_t *(*jmap_method_fn)(struct jmap_req *r, json_t *args, json_t **err_r);

/* A method error object {type, description} (description may be NULL). */
json_t *jmap_error(const char *type, const char *description);
/* invalidArguments naming what is wrong. */
json_t *jmap_invalid(const char *what);
/* A SetError {type, description, properties?}. */
json_t *jmap_set_error(const char *type, const char *description, const char *property);

/* Checks accountId and makes it the call's account: the user's own, or an
 * account shared with the user (jmap_account.c) when the method allows it
 * (accountNotSupportedByMethod else); accountNotFound for any other
 * (one the user may see nothing of included); false with *err_r. */
bool jmap_check_account(struct jmap_req *r, json_t *args, json_t **err_r);

/* ---- shared accounts (jmap_account.c) ---- */
/* Makes account_id the call's account when login may see it (r->user,
 * r->account_id, r->acl, r->view_key set): 0; 1 when it is no account of
 * login's; -1 on store trouble (err). */
int jmap_account_select(struct jmap_req *r, const char *account_id, struct buf *err);
/* Back to login's own account (the start of each call). */
void jmap_account_reset(struct jmap_req *r);
/* login's rights on the mailbox of the call's account ("" when none). */
const char *jmap_rights(const struct jmap_req *r, int64_t mailbox_id);
/* Whether login holds every right of need (RFC 4314 letters) on the mailbox. */
bool jmap_may(const struct jmap_req *r, int64_t mailbox_id, const char *need);
/* store_account_messages of the call's account, without the copies in
 * mailboxes login may not read ("r"): the one way the methods read Emails. */
int jmap_account_messages(struct jmap_req *r, const char *hash, uint64_t since,
                          struct store_account_message **list_r, size_t *n_r, struct buf *err);
void jmap_req_free(struct jmap_req *r);
/* Adds to accounts (when not NULL) an account object for each owner sharing
 * a mailbox login may list, with the mail capability caps (jmap_session.c),
 * and writes the session state, which changes whenever they or their rights
 * do, into state. -1 on store trouble. */
int jmap_shared_accounts(struct jmap *j, const char *user, json_t *accounts, json_t *caps,
                         struct buf *state);
/* "ids": NULL (absent or null: every object) or an array of strings of at most
 * max_objects_in_get entries; false with *err_r (invalidArguments, requestTooLarge). */
bool jmap_get_ids(struct jmap_req *r, json_t *args, json_t **ids_r, json_t **err_r);
/* "properties": NULL (all) or an array of strings; false with *err_r. */
bool jmap_get_properties(json_t *args, json_t **props_r, json_t **err_r);
/* Whether prop is asked for (props NULL: all). */
bool jmap_want(json_t *props, const char *prop);
/* An id that may be a creation reference "#cid" (RFC 8620 5.3); NULL when unknown. */
const char *jmap_resolve_id(struct jmap_req *r, const char *id);
/* Records a creation id. */
void jmap_created(struct jmap_req *r, const char *cid, const char *id);

/* The account state as a string; NULL on store trouble. */
json_t *jmap_state(struct jmap_req *r);
/* A state string back to its number; false when it is not one of ours. */
bool jmap_state_parse(const char *s, uint64_t *v_r);
/* A /changes call's start: the accountId checked, sinceState and maxChanges read, and the
 * account state now (read before the changes are); false with *err_r. */
bool jmap_changes_args(struct jmap_req *r, json_t *args, uint64_t *since_r, size_t *max_r,
                       uint64_t *current_r, json_t **err_r);
/* A /get response (takes state, list and not_found). */
json_t *jmap_get_result(struct jmap_req *r, json_t *state, json_t *list, json_t *not_found);

/* /changes: one changed object (callers give each id once). */
enum jmap_change_kind { JMAP_CREATED, JMAP_UPDATED, JMAP_DESTROYED };
struct jmap_change {
    char id[72];
    uint64_t state;
    enum jmap_change_kind kind;
};
/* The /changes response for the changes v (sorted here) found after since,
 * cut at max (hasMoreChanges, newState the last state given); current: the
 * account state read before the changes were. */
json_t *jmap_changes_result(struct jmap_req *r, struct jmap_change *v, size_t n, uint64_t since,
                            size_t max, uint64_t current);
/* The arguments every /queryChanges shares (sinceQueryState, maxChanges;
 * a query state is the account state): false with *err_r. */
bool jmap_query_changes_args(struct jmap_req *r, json_t *args, uint64_t *since_r, size_t *max_r,
                             uint64_t *current_r, json_t **err_r);
/* The account state as a number; false on store trouble (*err_r serverFail). */
bool jmap_state_now(struct jmap_req *r, uint64_t *st_r, json_t **err_r);
/* ifInState of a /set: false with *err_r stateMismatch when it is not current. */
bool jmap_if_in_state(struct jmap_req *r, json_t *args, json_t **err_r);
/* "create", "update", "destroy" of a /set checked for type and against
 * maxObjectsInSet; false with *err_r. */
bool jmap_set_args(struct jmap_req *r, json_t *args, json_t **create_r, json_t **update_r,
                   json_t **destroy_r, json_t **err_r);
void jmap_state_string(uint64_t st, char out[32]);

/* One type's /set (RFC 8620 5.3): each op returns NULL on success or the SetError.
 * create adds its object to created; update and destroy get the id with any
 * creation reference resolved (NULL ops: that part is refused with forbidden). */
struct jmap_set_ops {
    json_t *(*create)(struct jmap_req *r, const char *cid, json_t *o, json_t *created);
    json_t *(*update)(struct jmap_req *r, const char *id, json_t *patch);
    json_t *(*destroy)(struct jmap_req *r, const char *id, json_t *args);
    /* Optional, before the updates one by one: carries out those of update it
     * can do together (cheaper: one transaction for many), setting each one
     * done in handled (id as the client gave it -> true); the rest go to
     * update one by one, which also reports every error. */
    void (*update_many)(struct jmap_req *r, json_t *update, json_t *handled);
};
/* Checks the arguments, runs creates, then updates, then destroys, and
 * answers with old and new state; NULL with *err_r for a method error. */
json_t *jmap_set_run(struct jmap_req *r, json_t *args, const struct jmap_set_ops *ops,
                     json_t **err_r);
/* The /set response's states: oldState old, newState the account's state now. */
json_t *jmap_set_response(struct jmap_req *r, uint64_t old);

/* Publishes a mailbox-changed event for the mailbox id (name looked up
 * when NULL) or a mailbox-list event, with the account state after it. */
void jmap_publish_changed(struct jmap_req *r, int64_t mailbox_id, const char *name);
void jmap_publish_list(struct jmap_req *r, enum ipc_mailbox_list_change change, const char *name,
                       const char *old_name);

/* serverFail with the store's message (logged). */
json_t *jmap_server_fail(const char *what, struct buf *err);

/* ---- ids ---- */
/* "m123" -> 123; 0 when not a mailbox id. */
int64_t jmap_mailbox_id_parse(const char *id);
void jmap_mailbox_id(int64_t id, char out[32]);
/* "t123" -> 123 (the store's thread id); 0 when not a thread id. */
int64_t jmap_thread_id_parse(const char *id);
void jmap_thread_id(int64_t id, char out[32]);
/* The thread id of the Email of body hash into out ("" when none). */
void jmap_email_thread(struct jmap_req *r, const char *hash, char out[32]);
/* "e<64 hex>" -> the hash; false when not an email id. */
bool jmap_email_id_parse(const char *id, char hash[65]);

/* ---- methods (one file each) ---- */
json_t *jmap_mailbox_get(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_mailbox_changes(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_mailbox_query(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_mailbox_query_changes(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_mailbox_set(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_get(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_changes(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_query(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_query_changes(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_set(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_import(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_copy(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_email_parse(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_thread_get(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_thread_changes(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_identity_get(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_identity_changes(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_identity_set(struct jmap_req *r, json_t *args, json_t **err_r);
/* The email of the user's identity id into email_r; false when there is no such identity. */
bool jmap_identity_email(struct jmap_req *r, const char *id, struct buf *email_r);
json_t *jmap_submission_set(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_submission_get(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_vacation_get(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_vacation_set(struct jmap_req *r, json_t *args, json_t **err_r);
json_t *jmap_snippet_get(struct jmap_req *r, json_t *args, json_t **err_r);

/* ---- what the Email files share ---- */
/* The Email object of the copies of one body (n >= 1, same blob), with the
 * properties asked for; body read only when a property needs it. */
/* The decoded subject (*has_subject false: none) and the body text a preview
 * starts with (white space collapsed) of a message, appended to the buffers. */
void jmap_email_text(struct slice data, struct buf *subject, bool *has_subject, struct buf *body);
json_t *jmap_email_object(struct jmap_req *r, const struct store_account_message *copies, size_t n,
                          json_t *props, json_t *args, json_t **err_r);
/* The Email object of a message not in the store (Email/parse). */
json_t *jmap_email_from_bytes(struct slice data, json_t *props, json_t *args);
/* Reads blob id ("b<hash>" or "b<hash>.<part>") of user into out (decoded
 * part); 1 when not found, -1 on store trouble. */
int jmap_blob_read(struct jmap *j, const char *user, const char *blob_id, struct buf *out,
                   struct buf *err);
/* Stores data as the Email of r's user in the given mailboxes (ids) with
 * keywords; hash_r its body. 0 ok; 1 over quota / no mailbox (*err_r set); -1 trouble. */
int jmap_email_store(struct jmap_req *r, struct slice data, json_t *mailbox_ids, json_t *keywords,
                     int64_t received_at, char hash_r[65], json_t **err_r);
/*
 * The account as Email/query and Thread/get read it (jmap_view.c): every
 * copy, the Emails (runs of copies of one body, by mailbox id; the Emails
 * in body order), the Emails by thread and by date (a mail list's order). Kept by the worker at an
 * account state; valid until the next jmap_view_get.
 */
struct jmap_view_email {
    const struct store_account_message *c;
    size_t n;
    char *key[2];     /* Email/query's from and subject sort keys; NULL in the view */
    size_t thread_no; /* its thread's number in the view, 0 .. n_threads - 1 */
    size_t date_no;   /* its place in by_date */
};
struct jmap_view {
    char *user;
    uint64_t state;
    /* The copies, each Email's a run; not in any order: a change appends the
     * copies it read at copies_used (no copy of the array while there is
     * room) and leaves the slots of those it replaced empty (strings NULL),
     * until the array is full and its live copies move to a new one.
     * n_copies: the live ones (by_mailbox's length). */
    struct store_account_message *copies;
    size_t n_copies, copies_used, copies_cap;
    struct jmap_view_email *emails;
    size_t n_emails;
    const struct jmap_view_email **by_thread;
    size_t n_threads;
    /* the Emails by receivedAt, then arrival in the account (created_state), then body */
    const struct jmap_view_email **by_date;
    /* the Emails of each mailbox in by_date's order: one per copy, by mailbox id (parallel) */
    const struct jmap_view_email **by_mailbox;
    int64_t *by_mailbox_id;
    /* When the last change brought forward only added Emails (a delivery): the state it
     * came from and the bodies added (jmap_query.c brings a kept result forward with
     * them); grown_from 0 otherwise. */
    uint64_t grown_from;
    char (*grown)[65];
    size_t n_grown;
};
/* The slots of the copies array of a view of n copies: room for the next changes'. */
size_t jmap_view_copies_room(size_t n);
/* r's account at state st (read just before), or NULL with *err_r. */
const struct jmap_view *jmap_view_get(struct jmap_req *r, uint64_t st, json_t **err_r);
/*
 * A cold worker's account (jmap_view.c): what Email/query's mail-list
 * queries and Thread/get read of each copy (store_account_dates), grouped
 * by body, without the view's indexes. The view's read (~580-660 ms of CPU
 * for 100,000 copies) was most of a first sign-in's wait; this one reads a
 * narrow index and sorts once. Kept until the account's state moves (then
 * the view is read, and later changes patch it).
 */
struct jmap_cold_copy {
    uint64_t h[2]; /* the body hash's first 16 bytes, big-endian: its order */
    int64_t mailbox_id, thread, date;
    uint64_t created_state;
    char *keywords; /* NULL: none */
    unsigned flags;
    uint32_t uid;
};
struct jmap_cold_email {
    /* its first copy's (lowest mailbox, then UID): the Email's date, keywords and thread */
    int64_t date, thread, mailbox_id;
    uint64_t created_state;
    uint64_t h[2];
    const char *keywords;
    unsigned flags;
    uint32_t copy;     /* that copy's index in copies (and blobs) */
    uint32_t first, n; /* all its copies: order[first .. first + n) */
};
struct jmap_cold {
    char *user;
    uint64_t state;
    struct jmap_cold_copy *copies;
    char (*blobs)[65]; /* each copy's body hash (parallel to copies) */
    size_t n_copies, cap;
    uint32_t *order; /* the copies by body, then mailbox, then UID (the view's copy order) */
    struct jmap_cold_email *emails;
    size_t n_emails;
};
/* The cold account of r at st when the worker keeps no view of it (read now
 * unless kept at st); NULL with *err_r NULL when the view is to be used
 * instead (kept, a shared account, or the cold one is of an older state);
 * NULL with *err_r on store trouble. */
const struct jmap_cold *jmap_cold_get(struct jmap_req *r, uint64_t st, json_t **err_r);
/* After an answer from the store's indexes: r's account to be read in the builder's thread
 * (jmap_builder_new) once the request is answered (jmap_builder_start), labelled st (read
 * before), unless a view is kept or being read. */
void jmap_view_build(struct jmap_req *r, uint64_t st);
/* When the builder's thread is reading the account of view key key: waits for it and takes
 * the view, as a request that would read it itself does (jmap_view_get, jmap_cold_get). */
void jmap_view_build_take(struct jmap *j, const char *key);
/* The cold account of view key key that j keeps at state st, or NULL (nothing read). */
const struct jmap_cold *jmap_cold_kept(const struct jmap *j, const char *key, uint64_t st);
/* Whether j keeps the view of the account of view key key. */
bool jmap_view_held(const struct jmap *j, const char *key);
/* The Emails of mailbox in v: the index of the first in v->by_mailbox, *n_r of them. */
size_t jmap_view_mailbox(const struct jmap_view *v, int64_t mailbox, size_t *n_r);
/* The Emails of thread in v: the index of the first in v->by_thread, *n_r of them. */
size_t jmap_view_thread(const struct jmap_view *v, int64_t thread, size_t *n_r);
void jmap_view_release(struct jmap *j);
/* Frees j's view when no request asked for it after cutoff_ms (monotonic_ms)
 * and keep (may be NULL) is false for its account: -1 then (or when there is
 * none); else the time it was last asked for (now_ms when keep held it). */
int64_t jmap_view_release_idle(struct jmap *j, int64_t now_ms, int64_t cutoff_ms,
                               bool (*keep)(void *ctx, const char *user), void *ctx);
/* How many account views j holds (0 or 1). */
size_t jmap_view_kept(const struct jmap *j);
/* Whether a copy with store flags and keywords has the JMAP keyword kw (no case). */
bool jmap_has_keyword(unsigned flags, const char *keywords, const char *kw);
/* Keywords (JMAP object) to store flags and a space-separated keyword list. */
bool jmap_keywords_to_flags(json_t *kw, unsigned *flags_r, struct buf *list);
/* Store flags and keywords to a JMAP keywords object. */
json_t *jmap_flags_to_keywords(unsigned flags, const char *keywords);
/* The mailboxes of the call's account that login may list ("l"; all of the
 * personal account's) (id -> name): the list, or NULL on trouble (err). */
struct store_mailbox *jmap_mailboxes(struct jmap_req *r, size_t *n_r, struct buf *err);
const struct store_mailbox *jmap_mailbox_find(const struct store_mailbox *v, size_t n, int64_t id);
/* UTC date-time "2024-01-02T03:04:05Z" and back. */
void jmap_utc_date(int64_t t, struct buf *out);
bool jmap_utc_date_parse(const char *s, int64_t *t_r);

#endif
