/*
 * nntp_client.h - what the two client sides of the nntpfeed process share:
 * the outbound feeds (nntp_feed.c) and the NEWNEWS pulls (nntp_pull.c).
 * The check of a list of peer entries (nntp_peer_spec), the connection to a
 * peer (by IP address or host name; plain, or TLS from the start with the
 * peer's certificate checked for its name) and a command line written.
 * Must never: block on the network.
 */
#ifndef WHARF_NNTP_NNTP_CLIENT_H
#define WHARF_NNTP_NNTP_CLIENT_H

#include "base/buf.h"
#include "base/config.h"

#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stdint.h>

struct ssl_ctx_st;
struct dns_addr;
struct dns_resolver;
struct nntp_peer_spec;

/* Every entry of l (the option called option) is a peer spec, and none names a peer twice. */
int nntp_peer_list_check(const struct strlist *l, const char *option, struct buf *err);

/* What the connections of one process share: its loop, the TLS context that checks the
 * peers' certificates (the system's CAs and nntp_feed_tls_ca_file), the DNS kit for peers
 * named by host name (made at the first such connection), and the read/write timeout. */
struct nntp_dialer {
    struct event_base *base;
    struct ssl_ctx_st *tls;
    struct dns_resolver *dns;
    const struct wharf_config *cfg; /* dns_resolver, nntp_feed_timeout */
};

/* One peer's connection, made again after each close: the caller's (zeroed). */
struct nntp_link {
    struct bufferevent *bev; /* NULL while there is none (closed, or its host looked up) */
    struct dns_addr *lookup; /* the host name's lookup in flight */
    struct nntp_dialer *d;
    char *host; /* an IP address or a host name: the name TLS checks too */
    unsigned port;
    bool tls; /* TLS from the start, the certificate checked for host */
    bufferevent_data_cb readcb;
    bufferevent_event_cb eventcb;
    void *arg;
    char why[200]; /* why the last attempt failed before its connection (nntp_link_error) */
};

/* Makes a dialer, which takes tls: a client context (net_tls_client_ctx_new) of the
 * system's CAs and nntp_feed_tls_ca_file, made while still root (the component's as_root
 * hook: the CA file is the admin's to place). */
struct nntp_dialer *nntp_dialer_new(struct event_base *base, const struct wharf_config *cfg,
                                    struct ssl_ctx_st *tls);
void nntp_dialer_free(struct nntp_dialer *d);
/* Sets up l for the peer ps, with the callbacks its connections get. */
void nntp_link_init(struct nntp_link *l, struct nntp_dialer *d, const struct nntp_peer_spec *ps,
                    bufferevent_data_cb readcb, bufferevent_event_cb eventcb, void *arg);
/* Starts a connection: at once to an address, after the lookup for a host name (l->bev
 * stays NULL meanwhile; one that finds no address is eventcb(NULL, BEV_EVENT_ERROR)).
 * -1 with err when it cannot even start (the callbacks are then never called). */
int nntp_link_open(struct nntp_link *l, struct buf *err);
/* Ends the connection or the lookup; l can be opened again. */
void nntp_link_close(struct nntp_link *l);
void nntp_link_free(struct nntp_link *l);
/* Why the connection ended, for eventcb's what: the lookup, the TLS handshake or the
 * certificate, the timeout, the peer closing, or the socket's error (in out). */
const char *nntp_link_error(struct nntp_link *l, short what, struct buf *out);

/* Queues one command line (CRLF added). */
void nntp_peer_send(struct bufferevent *bev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
