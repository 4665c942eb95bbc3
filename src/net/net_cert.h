/*
 * net_cert.h - the one certificate generator: a fresh EC P-256 key and a
 * self-signed X.509 v3 server certificate for a host name, with the name in
 * subjectAltName (RFC 6125: clients match that, not the CN).
 *
 * Used for the stop-gap certificate made when none is configured (by wharfd
 * at first start and by a worker that finds none), and the one writer of a
 * PEM key or certificate file (those, and DKIM's keys). Must never log: the
 * callers say what they made.
 */
#ifndef WHARF_NET_NET_CERT_H
#define WHARF_NET_NET_CERT_H

#include "base/buf.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <sys/types.h>
#include <openssl/x509.h>

/* A new EC P-256 key, or NULL with the reason appended to err. */
EVP_PKEY *net_cert_keygen(struct buf *err);

/*
 * A certificate for hostname signed by key itself (SHA-256): a random
 * 127-bit serial, valid from an hour ago for valid_days, subject and issuer
 * CN=hostname, subjectAltName DNS:hostname, CA:FALSE, digitalSignature,
 * serverAuth. NULL with the reason appended to err.
 */
X509 *net_cert_selfsigned(EVP_PKEY *key, const char *hostname, int valid_days, struct buf *err);

/*
 * Writes key (when not NULL) or else cert to path as PEM, with mode, durably:
 * a temporary file beside it is written and fsynced, then renamed over path
 * (replace) or linked to it only if path does not exist yet (!replace, so a
 * key is never overwritten). Readers never see a half-written file. -1 with
 * the reason appended to err.
 */
int net_cert_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, bool replace,
                       struct buf *err);

#endif
