/*
 * jmap.h - the JMAP engine (RFC 8620 core, RFC 8621 mail), transport-free:
 * the http worker hands it an authenticated user and a request body and
 * writes back what it returns. The engine reads and writes the store through
 * store.h only (an Email is a body of the account: store_account_messages)
 * and knows nothing of sockets, TLS or HTTP framing.
 *
 * Every limit the session resource advertises (struct jmap_limits, from the
 * jmap_* options) is enforced here, except the concurrency ones, which the
 * caller counts (jmap_limits.max_concurrent_*). It never trusts a byte of
 * the request: sizes are checked before parsing, and every method argument
 * is checked for type before use (invalidArguments otherwise).
 */
#ifndef WHARF_HTTP_JMAP_H
#define WHARF_HTTP_JMAP_H

#include "base/buf.h"
#include "ipc/event.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wharf_config;
struct event_base;
struct jmap_builder;

struct jmap_limits {
    size_t max_size_upload;
    size_t max_concurrent_upload;
    size_t max_size_request;
    size_t max_concurrent_requests;
    size_t max_calls_in_request;
    size_t max_objects_in_get;
    size_t max_objects_in_set;
};
/* The jmap_* options (cfg NULL: their defaults). */
void jmap_limits_from_config(struct jmap_limits *l, const struct wharf_config *cfg);

/* How EmailSubmission/set hands a message over to the queue (the same path
 * and sender rules as SMTP submission); NULL: EmailSubmission is refused
 * with forbidden. */
struct jmap_submit {
    /* Whether user may send as the envelope sender from (the submission
     * rule of smtp: the directory resolves from to user): 1 yes, 0 no
     * (forbiddenFrom), -1 not known yet (serverFail: try again). */
    int (*sender_ok)(void *ctx, const char *user, const char *from);
    /* Queues data from envelope sender from to the n recipients, durably;
     * id_r gets the queue id. 0, or -1 with err. */
    int (*enqueue)(void *ctx, const char *user, const char *from, const char *const *rcpts,
                   size_t n, struct slice data, struct buf *id_r, struct buf *err);
    void *ctx;
};

struct jmap {
    struct store *store;
    struct jmap_limits limits;
    const struct jmap_submit *submit; /* may be NULL */
    const char *hostname;             /* right side of the Message-IDs it makes */
    /* the user's identities for Identity/get: the addresses it may send as
     * (NULL: the user name alone, when it is an address) */
    int (*addresses)(void *ctx, const char *user, char ***list_r, size_t *n_r);
    void *addresses_ctx;
    /* Tells the other processes (IMAP IDLE, push) of each change a method
     * made: mailbox changed or mailbox list events; NULL: nobody to tell. */
    void (*publish)(void *ctx, const struct ipc_event *ev);
    void *publish_ctx;
    /* the last Email/query's result (jmap_query.c): the next page of the same
     * query at the same account state is cut from it; zero-initialised */
    struct jmap_query_cache *qcache;
    /* the last account Email/query or Thread/get read, at a state (jmap_view.c) */
    struct jmap_view_cache *view;
    /* reads an account's view in a thread after an answer from the store's indexes
     * (jmap_builder_new); NULL: only requests read views */
    struct jmap_builder *builder;
    /* how the view and the query results were brought to each state asked for
     * (the http worker's status: which path a mail list after new mail took) */
    struct jmap_stats {
        uint64_t view_reads;    /* the whole account read (a first read, a large change) */
        uint64_t cold_reads;    /* read cold instead: no view kept (jmap_cold_get) */
        uint64_t index_answers; /* answered from the store's indexes, neither read (no view) */
        uint64_t view_builds;   /* a view read in the builder's thread, taken by the worker */
        uint64_t view_patches;  /* brought forward from the change records */
        uint64_t view_in_place; /* of those: flags changed in place, no index moved */
        uint64_t view_moves;    /* of those: the copies moved to a larger array (no room left) */
        uint64_t query_kept;    /* an Email/query answered from a kept result */
        uint64_t query_grown;   /* a kept result brought forward over a delivery (qcache_grow) */
        uint64_t query_runs;    /* an Email/query run over the view (or the text index) */
    } stats;
};

/*
 * The view builder of j: one thread with store, its own connection (opened
 * for it, closed by jmap_builder_free). After a worker answers from the
 * store's indexes (a first sign-in: no view kept), the thread reads that
 * account's view, and the worker takes it when no view is kept by then, so
 * that the next query the indexes cannot answer (a scroll far down, a sort
 * by size) does not read the account while the user waits. NULL with err.
 */
struct jmap_builder *jmap_builder_new(struct event_base *base, struct jmap *j, struct store *store,
                                      struct buf *err);
/* Starts the read an answer of the request just answered asked for (jmap_api's end: the
 * thread does not compete with the request's own work). */
void jmap_builder_start(struct jmap *j);
/* Finishes a read under way (the worker may take it), stops the thread, closes its store. */
void jmap_builder_free(struct jmap_builder *b);
/* Frees what j keeps between requests (the query cache, the account view). */
void jmap_release(struct jmap *j);
/* j->stats as the worker's status figures ("jmap_view_reads", ...) into obj. */
void jmap_stats_json(const struct jmap *j, json_t *obj);

/*
 * Frees what j keeps between requests that no request used in the idle_ms
 * before now_ms (monotonic_ms): the account view, each kept Email/query
 * result. The view of an account for which listening (may be NULL) is true
 * stays, as used now: a client holding a push stream open (the webmail, all
 * day) comes back to it at the next change or click, and must not wait for
 * the whole account to be read again after every quiet spell. Returns the ms
 * until the next of what is left falls due, or -1 when j keeps nothing (the
 * worker's jmap_cache_idle timer, jmap_http.c).
 */
int64_t jmap_release_idle(struct jmap *j, int64_t now_ms, int64_t idle_ms,
                          bool (*listening)(void *ctx, const char *user), void *ctx);
/* How many account views and Email/query results j keeps (the worker's status). */
void jmap_kept(const struct jmap *j, size_t *views_r, size_t *queries_r);

/* The account id JMAP shows for user (its name in hex after 'a': Ids allow no '@'). */
void jmap_account_id(const char *user, struct buf *out);

/*
 * The session resource (RFC 8620 2) of user: capabilities with every limit,
 * the one personal account, and ABSOLUTE URLs built on base_url
 * ("https://host:port", no trailing slash). 0, or -1 on store trouble.
 */
int jmap_session_json(struct jmap *j, const char *user, const char *base_url, json_t **out);

/*
 * One API request (RFC 8620 3.3) → the response object. *http_status: 200
 * with *out the Response; or 400 with *out a problem details object
 * (RFC 7807: notJSON, notRequest, unknownCapability, limit) — requestTooLarge
 * is checked against len before parsing. Method errors are per call (200).
 */
void jmap_api(struct jmap *j, const char *user, const char *body, size_t len, json_t **out,
              int *http_status);

/* Upload (RFC 8620 6.1): the blob is stored for user; *out is the response
 * object. *http_status 201, or 413 (too large) / 500 with a problem object. */
void jmap_upload(struct jmap *j, const char *user, const char *account_id, const char *type,
                 struct slice data, json_t **out, int *http_status);

/* Download (RFC 8620 6.2) of blob_id into data: 200; 404 when user may not
 * read it or it does not exist; 500 on store trouble. */
int jmap_download(struct jmap *j, const char *user, const char *account_id, const char *blob_id,
                  struct buf *data);

/* The problem details object (RFC 7807) of a request-level error. */
json_t *jmap_problem(const char *type_suffix, int status, const char *detail);

#endif
