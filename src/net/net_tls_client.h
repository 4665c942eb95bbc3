/*
 * net_tls_client.h - outbound TLS, the one kit for every client side: the
 * mta's SMTP client (STARTTLS to the next hop, with DANE), its MTA-STS
 * policy fetch, `wharf import imap`, and next the LDAP connector and the
 * front-end proxy.
 *
 * It makes the client context (trust store) and the connect-side SSL of one
 * connection (SNI, the name check, DANE), and says after the handshake
 * whether the peer is what was asked for. It does no I/O: the caller drives
 * the handshake (a bufferevent_openssl, or SSL_connect on a blocking fd).
 *
 * Must never: accept a protocol older than TLS 1.2; hand out an SSL that
 * is asked to verify without a name to verify (it would accept any valid
 * certificate); arm DANE with PKIX usages (RFC 7672 3.1: only DANE-TA and
 * DANE-EE mean anything for SMTP).
 */
#ifndef WHARF_NET_NET_TLS_CLIENT_H
#define WHARF_NET_NET_TLS_CLIENT_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;

/* How a connection authenticates the server. */
enum net_tls_verify {
    NET_TLS_VERIFY_NONE, /* encryption only: any certificate (opportunistic TLS) */
    NET_TLS_VERIFY_NAME, /* a chain to a trusted CA, valid for the name (RFC 6125, no partial
                          * wildcards); the handshake fails otherwise */
    NET_TLS_VERIFY_DANE, /* the chain matches one of the name's DNSSEC-validated TLSA records
                          * (RFC 7672): DANE-EE without name or expiry checks, DANE-TA with
                          * the name check; see net_tls_client_check */
};

/* One connection's server. */
struct net_tls_client_peer {
    const char *name; /* SNI and, for NAME and DANE, the name checked; NULL or "": none */
    enum net_tls_verify verify;
    /* DANE: TLSA records as [u16 length][rdata: usage selector mtype data]... */
    const unsigned char *tlsa;
    size_t tlsa_len;
};

/* A client context: TLS 1.2 or newer, the system's CA paths plus ca_file
 * (NULL or "": none), DANE ready. NULL with a reason in err on failure.
 * Free with SSL_CTX_free. */
struct ssl_ctx_st *net_tls_client_ctx_new(const char *ca_file, struct buf *err);

/* The connect-side SSL of one connection to peer. NULL with a reason in err
 * when NAME or DANE has no name, or DANE has no usable record (then the
 * caller falls back as its policy says, or fails). Free with SSL_free. */
struct ssl_st *net_tls_client_ssl_new(struct ssl_ctx_st *ctx,
                                      const struct net_tls_client_peer *peer, struct buf *err);

/* After the handshake: whether the server is authenticated as verify asks
 * (always true for NONE); the reason in why when not. */
bool net_tls_client_check(struct ssl_st *ssl, enum net_tls_verify verify, struct buf *why);

#endif
