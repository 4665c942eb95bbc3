/*
 * mta_https.h - the mta's HTTPS client: one request (GET or POST) to
 * https://HOST:PORT/PATH on the mta's event loop, the host's addresses from
 * nexthop's resolver, its certificate verified for its name (net_tls_client
 * over the mta's client TLS context), libevent's HTTP client over an OpenSSL
 * bufferevent. MTA-STS fetches its policies with it (mta_sts.c) and TLS
 * reporting posts its reports to https: rua URIs (mta_tlsrpt.c).
 *
 * Never follows a redirect, never reads more than the caller's body limit,
 * never retries (the caller decides); must never block the loop.
 */
#ifndef WHARF_MTA_HTTPS_H
#define WHARF_MTA_HTTPS_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ssl_ctx_st;
struct nexthop_resolver;

struct mta_https;

/* verify_ctx (the system's CAs plus mta_smtp_tls_ca_file) and resolver
 * must outlive it. */
struct mta_https *mta_https_new(struct event_base *base, struct nexthop_resolver *resolver,
                                struct ssl_ctx_st *verify_ctx);
/* Ends every request still in flight, without calling its callback. */
void mta_https_free(struct mta_https *h);

/* The outcome: status 0 when there was no HTTP answer (why says what
 * failed: DNS, connection, TLS, timeout), else the HTTP status and the
 * body, the callback's only until it returns. */
typedef void mta_https_cb(void *arg, int status, struct slice body, const char *why);

struct mta_https_request {
    const char *host; /* name to connect to and verify; also the Host field */
    uint16_t port;
    const char *path;         /* "/.well-known/mta-sts.txt" */
    const char *content_type; /* NULL: a GET; else a POST of body */
    struct slice body;
    size_t max_body; /* of the response */
    int timeout_s;
};

/* Starts a request (every field is copied); cb is always called later from
 * the event loop, exactly once, unless mta_https_free comes first. */
void mta_https_start(struct mta_https *h, const struct mta_https_request *rq, mta_https_cb *cb,
                     void *arg);

#endif
