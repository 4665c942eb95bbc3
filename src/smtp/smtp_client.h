/*
 * smtp_client.h - the SMTP client engine: one event-driven session
 * (libevent bufferevent; bufferevent_openssl for STARTTLS) that delivers one
 * or more transactions, each with one or more recipients, over one
 * connection to one server.
 *
 * It speaks EHLO (HELO as a fallback), STARTTLS by policy, AUTH PLAIN/LOGIN
 * (only over TLS), MAIL with SIZE/BODY/SMTPUTF8/RET/ENVID, RCPT with
 * NOTIFY/ORCPT, DATA with dot-stuffing or BDAT when CHUNKING is offered, and
 * pipelines MAIL/RCPT/DATA when PIPELINING is offered; for the routing
 * process, X-WHARF-LINKSTATE hands it the connection. Every result, per
 * recipient, comes back through the transaction callback: the server's code,
 * enhanced status and text, or a locally made 4xx (connection lost,
 * timeout, TLS required) marked `local`. The mta drives it on its event
 * loop; `wharf sendmail` on a loop of its own, for one transaction.
 *
 * It never decides about retries, bounces or the queue, never resolves names
 * (see mta/nexthop.h) and never reads files (the TLS context is the
 * caller's, net/net_tls_client.h); it must never send AUTH credentials in
 * clear text, nor treat anything the server sent before the TLS handshake as
 * said after it.
 */
#ifndef WHARF_SMTP_SMTP_CLIENT_H
#define WHARF_SMTP_SMTP_CLIENT_H

#include "base/buf.h"
#include "smtp/smtp_client_reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct ssl_ctx_st;

enum smtp_tls_policy {
    SMTP_TLS_NONE,    /* never STARTTLS */
    SMTP_TLS_MAY,     /* STARTTLS when offered; go on in clear text when not */
    SMTP_TLS_REQUIRE, /* fail (4.7.4) without TLS; any certificate */
    SMTP_TLS_VERIFY,  /* TLS with a certificate valid for tls_servername */
    /* DANE (RFC 7672). For the client: TLS authenticated by the host's
     * DNSSEC-validated TLSA records (params.tlsa). As a configured policy:
     * that where the next hop publishes usable TLSA records, `may` where it
     * securely has none (dane) or never without them (dane-only). */
    SMTP_TLS_DANE,
    SMTP_TLS_DANE_ONLY,
};

/* "none", "may", "require", "verify", "dane", "dane-only"; false if unknown. */
bool smtp_tls_policy_parse(const char *s, enum smtp_tls_policy *p_r);
/* The option's name of a policy ("dane-only"...). */
const char *smtp_tls_policy_name(enum smtp_tls_policy p);

struct smtp_client_params {
    const char *helo_name; /* our host name */
    enum smtp_tls_policy tls;
    struct ssl_ctx_st *tls_ctx; /* required unless tls == SMTP_TLS_NONE; not owned
                                 * (net_tls_client_ctx_new) */
    const char *tls_servername; /* SNI and, for VERIFY and DANE, the name checked */
    /* DANE: TLSA records as [u16 length][rdata: usage selector mtype data]...,
     * from DNSSEC-validated answers. With tls == SMTP_TLS_DANE, the handshake
     * succeeds only when one usable record matches the server's chain
     * (DANE-EE without name or expiry checks, DANE-TA with name checks). */
    const unsigned char *tlsa;
    size_t tlsa_len;
    const char *auth_user; /* AUTH to a smarthost when non-NULL (needs TLS) */
    const char *auth_pass;
    /* timeouts, milliseconds (RFC 5321 4.5.3.2); 0 picks the RFC's value */
    int64_t connect_timeout, greeting_timeout, command_timeout, data_init_timeout,
        data_block_timeout, data_done_timeout;
    size_t reply_line_max, reply_lines_max; /* 0: defaults */
    /* the local addresses to connect from (mta_source_address): the one of the peer's family
     * (net_addr_bind_source); none of it, or n_source 0: the system chooses */
    const char *const *source;
    size_t n_source;
};

/* The command a result answers (Postfix's "in reply to ... command"); a
 * local refusal names the command it stands in for (a bad recipient address:
 * RCPT; a message over the server's SIZE: MAIL). */
enum smtp_client_cmd {
    SMTP_CLIENT_CMD_NONE, /* none: made locally (lost connection, timeout, TLS policy) */
    SMTP_CLIENT_CMD_GREETING,
    SMTP_CLIENT_CMD_HELLO, /* EHLO or HELO */
    SMTP_CLIENT_CMD_STARTTLS,
    SMTP_CLIENT_CMD_AUTH,
    SMTP_CLIENT_CMD_MAIL,
    SMTP_CLIENT_CMD_RCPT,
    SMTP_CLIENT_CMD_DATA, /* DATA, the end of data, or BDAT */
    SMTP_CLIENT_CMD_RSET,
    SMTP_CLIENT_CMD_QUIT,
};

/* One result: the server's reply, or a locally made one. */
struct smtp_client_result {
    int code;     /* 0: no result yet */
    char enh[16]; /* "5.1.1" or "" */
    struct buf text;
    bool local; /* made by us (timeout, lost connection, TLS policy), not the server */
    enum smtp_client_cmd cmd; /* what it answers */
};

struct smtp_client_rcpt {
    const char *address;              /* without <> */
    const char *orcpt;                /* decoded "type;address", or NULL */
    unsigned notify;                  /* SPOOL_NOTIFY_* bits, 0 = not given */
    struct smtp_client_result result; /* filled by the client */
};

enum smtp_client_body { SMTP_CLIENT_7BIT, SMTP_CLIENT_8BITMIME, SMTP_CLIENT_BINARYMIME };

struct smtp_client_txn {
    const char *sender;  /* "" for <> */
    struct slice data;   /* the message, CRLF line ends; must live until the callback */
    struct slice prefix; /* header fields sent before data (a DKIM signature), or empty;
                          * whole CRLF-ended lines, lives as long as data */
    enum smtp_client_body body;
    bool smtputf8;
    bool ret_hdrs, ret_full; /* RET= (neither: not given) */
    const char *envid;       /* decoded ENVID or NULL */
    struct smtp_client_rcpt *rcpts;
    size_t n_rcpts;
    void *arg; /* for the caller */
    /* Every recipient or none (wharf sendmail: one answer for the whole
     * message): DATA waits for the RCPT replies and is sent only when all
     * were accepted; else RSET, and the accepted recipients get a local
     * result (cmd NONE) that says the message was not sent. */
    bool all_or_none;
    /* filled by the client: */
    bool peer_dsn;      /* the server took NOTIFY/ORCPT (else a SUCCESS notify becomes "relayed") */
    bool tls;           /* the transaction went over TLS */
    bool data_sent;     /* the message went out: the server may have it whatever happens next */
    int64_t started_ms; /* unix ms when MAIL (or a local refusal) began it: the
                         * session was ready (Postfix's delays= c/d split) */
    /* private */
    struct smtp_client_txn *next;
};

struct smtp_client;

/* Called once per transaction when every recipient has a result; the
 * transaction is the client's no more. */
typedef void smtp_client_txn_cb(struct smtp_client *c, struct smtp_client_txn *t, void *arg);
/* Called once when the session is over (QUIT answered, or failed); free the
 * client from here or later, not before. */
typedef void smtp_client_done_cb(struct smtp_client *c, void *arg);

struct smtp_client *smtp_client_new(struct event_base *base, const struct smtp_client_params *p,
                                    smtp_client_txn_cb *txn_cb, smtp_client_done_cb *done_cb,
                                    void *arg);
/* Connects to addr (non-blocking). Failures come back as local 4.4.1 results;
 * a failure detected at once (bad address family) calls the transaction
 * callbacks from inside this call. */
void smtp_client_connect(struct smtp_client *c, const struct sockaddr *addr, socklen_t len);
/* Uses an already connected socket (tests: a socketpair); the client owns fd. */
void smtp_client_attach_fd(struct smtp_client *c, int fd);
/* Queues a transaction; sent as soon as the session is ready. */
void smtp_client_send(struct smtp_client *c, struct smtp_client_txn *t);
/*
 * X-WHARF-LINKSTATE (doc/routing.md, "Link state over SMTP"): the line
 * ("X-WHARF-LINKSTATE 1 NAME") is sent once the session is ready (EHLO,
 * STARTTLS, AUTH as configured) and no transaction is queued or under way,
 * only over TLS, and only when the server's EHLO after STARTTLS offered the keyword (else the
 * session fails with a local 5.5.1 and the line is never sent). On its 2xx reply the connection,
 * TLS included, becomes the caller's: cb gets its bufferevent (no callbacks, no timeouts; the
 * caller frees it) and the session is over without an error (the done callback follows; free the
 * client there, never inside cb). Any other reply or failure ends the session through the done
 * callback, with the error.
 */
struct bufferevent;
typedef void smtp_client_takeover_cb(struct smtp_client *c, struct bufferevent *bev, void *arg);
void smtp_client_linkstate(struct smtp_client *c, const char *line, smtp_client_takeover_cb *cb);
/* QUIT once the queued transactions are done. */
void smtp_client_quit(struct smtp_client *c);
/* Frees the client; a transaction still queued is failed (local 4.3.0) first,
 * through its callback; the done callback is not called after this. Not from
 * inside a transaction callback. */
void smtp_client_free(struct smtp_client *c);

/* The session's own failure (connect, greeting, TLS, AUTH, timeout), or NULL
 * when none. A local 4.4.1 before any greeting means "try the next address". */
const struct smtp_client_result *smtp_client_error(const struct smtp_client *c);
/* The server's capabilities (after EHLO) and whether TLS is up. */
const struct smtp_caps *smtp_client_caps(const struct smtp_client *c);
bool smtp_client_tls_active(const struct smtp_client *c);
/* Releases a result's text (for reuse of a transaction). */
void smtp_client_result_clear(struct smtp_client_result *r);
/* Sets a result (cmd NONE): the caller's own results (no route, policy) read
 * as the client's do. */
void smtp_client_result_set(struct smtp_client_result *r, int code, const char *enh,
                            struct slice text, bool local);

#endif
