/*
 * testtls.h - for unit tests: a server SSL_CTX with a fresh self-signed
 * certificate, and a client and a server SSL joined over a non-blocking
 * socketpair with their handshake done. The tests of the TLS record layers
 * (net_tls_park, net_pump) drive real OpenSSL peers this way.
 */
#ifndef WHARF_NET_TESTTLS_H
#define WHARF_NET_TESTTLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

/* A TLS server context with a new key and certificate (imap.example.test); NULL on failure. */
SSL_CTX *testtls_server_ctx(void);

/* True when r, returned by an SSL call on s, only asks to call again later. */
bool testtls_want_retry(SSL *s, int r);

/* Joins cli and srv (made by the caller, which may attach to them first) over a
 * non-blocking socketpair, *cfd and *sfd their ends, and runs the handshake to its
 * end (a cmocka failure if it does not finish). */
void testtls_connect(SSL *cli, SSL *srv, int *cfd, int *sfd);

#endif
