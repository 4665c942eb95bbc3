/*
 * net_cert.h - the one certificate generator: a fresh EC P-256 key and a
 * self-signed X.509 v3 server certificate for a host name, with the name in
 * subjectAltName (RFC 6125: clients match that, not the CN).
 *
 * Used for the stop-gap certificate made when none is configured (by wharfd
 * at first start and by a worker that finds none). Must never write files or
 * log: the callers own the key's file and its mode.
 */
#ifndef WHARF_NET_NET_CERT_H
#define WHARF_NET_NET_CERT_H

#include "base/buf.h"

#include <openssl/evp.h>
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

#endif
