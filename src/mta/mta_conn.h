/*
 * mta_conn.h - the mta's outbound connections: a cache of SMTP sessions per
 * destination and the concurrency limits (Postfix's connection cache and
 * destination concurrency, in one place).
 *
 * A destination is one server address and port together with the TLS
 * policy, the TLS server name and whether AUTH is used: only a session that
 * matches all of them is reused. A request is one transaction (one message,
 * all its recipients for that server). It runs on an idle session of its
 * destination, or on a new one while the destination has fewer than
 * mta_destination_concurrency_limit sessions and the mta fewer than
 * mta_connection_limit; else it waits in memory, in arrival order, until a
 * session of its destination is free or any session closes. A session that
 * finished a transaction takes the next waiting request at once (no RSET
 * needed between transactions), or stays idle for
 * mta_smtp_connection_cache_time, and sends QUIT after
 * mta_smtp_connection_reuse_limit transactions.
 *
 * It never decides about retries or the next MX, never touches the spool,
 * and never reports a failure of a cached session that the peer closed while
 * idle: a request whose reused session failed before any reply of its own is
 * run once more on a fresh session.
 */
#ifndef WHARF_MTA_MTA_CONN_H
#define WHARF_MTA_MTA_CONN_H

#include "base/config.h"
#include "smtp/smtp_client.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct mta_conn_pool;
struct mta_conn_req;

/* The transaction of r is over: its recipients have their results, and
 * r->err the session's failure (code 0: none). */
typedef void mta_conn_done_fn(struct mta_conn_req *r);

struct mta_conn_req {
    /* set by the caller */
    struct smtp_client_txn *txn;
    mta_conn_done_fn *done;
    void *arg;
    /* filled in: unix ms when the request was queued, got a session, and
     * when its transaction started (0: never) and ended (delays=a/b/c/d) */
    int64_t t_submit, t_assign, t_start, t_end;
    unsigned conn_use; /* the transaction's number on its session (Postfix's conn_use=) */
    struct smtp_client_result err; /* clear it with smtp_client_result_clear */
    /* private */
    bool retried;
    struct mta_conn_req *next;
};

/* Reads the limits from cfg. */
struct mta_conn_pool *mta_conn_pool_new(struct event_base *base, const struct wharf_config *cfg);

/* Queues r for the server at addr with the session parameters p. p is
 * copied with tls_servername and tlsa; its other pointers (helo name, TLS context,
 * credentials) must outlive the pool. r and r->txn must live until r->done
 * is called, which is always later, from the event loop. */
void mta_conn_submit(struct mta_conn_pool *pool, struct mta_conn_req *r,
                     const struct smtp_client_params *p, const struct sockaddr *addr,
                     socklen_t addrlen);

/* The session failed before any recipient got an answer of its own: every
 * result is the same temporary session error, so the next address may do
 * better (RFC 5321 5.1). */
bool mta_conn_failed_early(const struct smtp_client_txn *t, const struct smtp_client_result *err);

/* Sessions open now (connecting, busy, idle or quitting). */
size_t mta_conn_open(const struct mta_conn_pool *pool);

/* Closes every session without calling any request back; the requests
 * (waiting or running) are the caller's to free. */
void mta_conn_pool_free(struct mta_conn_pool *pool);

#endif
