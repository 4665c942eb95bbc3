/*
 * dkim_keys.h - the DKIM signing keys of the domains this server signs for.
 *
 * Layout: DATA/dkim/ (0700, the wharf user), one folder per domain holding
 * SELECTOR.key (the private key, PEM PKCS#8, 0600) per selector and a file
 * `active` naming the selectors to sign with, one per line. `wharf dkim
 * keygen` makes a pair (Ed25519 and RSA-2048, selectors PREFIX-ed25519 and
 * PREFIX-rsa) and activates it only when the domain has no active pair yet;
 * `wharf dkim activate` switches: that is how a key is rotated (doc/mail-auth.md).
 *
 * Only the mta signs, so only the mta (and the admin command) opens these
 * files; the network-facing smtp workers never read a private key. Keys are
 * looked up when a message is signed (`active` read, each key file stat'd;
 * a key is decoded again only when its file changed), so a rotation needs no
 * reload. Must never
 * accept a domain or selector that could name a path outside DATA/dkim.
 */
#ifndef WHARF_MAILAUTH_DKIM_KEYS_H
#define WHARF_MAILAUTH_DKIM_KEYS_H

#include "base/buf.h"
#include "base/config.h"
#include "mailauth/dkim.h"

#include <stdbool.h>
#include <stddef.h>

/* Active selectors per domain: two (Ed25519 + RSA) in normal use, four
 * while both pairs of a rotation sign. */
#define DKIM_KEYS_MAX 4

/* A domain name or selector safe as a file name: [a-z0-9-_.], no "..",
 * no leading dot, at most 253 octets. */
bool dkim_name_ok(const char *s);

struct dkim_keyset {
    size_t n;
    char selector[DKIM_KEYS_MAX][64];
    struct dkim_signer_key keys[DKIM_KEYS_MAX];
};

/*
 * Loads the active keys of domain (lower case). Returns 1 with keys, 0 when
 * the domain has none (not a domain we sign for), -1 with err on a damaged
 * key store.
 */
int dkim_keys_load(const struct wharf_config *cfg, const char *domain, struct dkim_keyset *ks,
                   struct buf *err);
void dkim_keyset_free(struct dkim_keyset *ks);

/* The DNS TXT record text publishing key (v=DKIM1; k=...; p=...). */
bool dkim_key_record(EVP_PKEY *key, struct buf *out);

/*
 * Generates an Ed25519 and an RSA-2048 key for domain under selectors
 * PREFIX-ed25519 and PREFIX-rsa, refusing to overwrite one; activates them
 * when the domain has no active selector. Appends the zone-file lines to
 * publish to records. 0, or -1 with err.
 */
int dkim_keygen(const struct wharf_config *cfg, const char *domain, const char *prefix,
                struct buf *records, bool *activated_r, struct buf *err);

/* Makes the selectors named PREFIX-* (those of one keygen) the active ones. */
int dkim_activate(const struct wharf_config *cfg, const char *domain, const char *prefix,
                  struct buf *err);

/* Appends the zone-file lines for every key of domain, active ones marked. */
int dkim_records(const struct wharf_config *cfg, const char *domain, struct buf *out,
                 struct buf *err);

#endif
