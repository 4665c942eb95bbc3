/*
 * mta_dkim.h - DKIM signing of outbound mail, done by the mta as it relays.
 *
 * Why here and not in the smtp worker: the mta already holds the whole
 * message in memory to send it, so the body hash is one pass over bytes that
 * are there anyway and the signature travels as a prefix of the transaction
 * (smtp_client_txn.prefix): no copy of the message is made, the spool file
 * stays as accepted. And only the mta reads the private keys: the smtp
 * workers, which face the internet, never hold one. The price is one
 * signature per delivery attempt rather than per message (about a
 * millisecond for RSA-2048), and a rotated key takes effect at the next
 * attempt, which is what an admin expects.
 *
 * Also ARC sealing (mta_arc_seal) of the mail from other servers it forwards:
 * the same keys, the same moment, the same prefix.
 *
 * Must never DKIM-sign mail that did not come from us (authenticated submission,
 * mynetworks, local sendmail/pickup), nor sign for a domain that is not the
 * From: header's.
 */
#ifndef WHARF_MTA_MTA_DKIM_H
#define WHARF_MTA_MTA_DKIM_H

#include "base/buf.h"
#include "base/config.h"
#include "spool/spool.h"

#include <stdbool.h>
#include <stddef.h>

/* True when sm was submitted by one of ours (see above). */
bool mta_dkim_should_sign(const struct wharf_config *cfg, const struct spool_envelope *env);

/* The domain of the first address of the first From: field, lower case,
 * into out; false when there is none. */
bool mta_dkim_from_domain(struct slice data, struct buf *out);

/*
 * Appends the DKIM-Signature fields for sm (one per active key of its From
 * domain) to out. Returns how many; 0 when sm is not to be signed or its
 * domain has no keys. A damaged key store is logged and the mail goes
 * unsigned (a signature is worth less than the delivery).
 */
size_t mta_dkim_sign(const struct wharf_config *cfg, const struct spool_message *sm,
                     struct buf *out);

/*
 * ARC sealing (RFC 8617) of mail that came from another server, was checked
 * on arrival (our Authentication-Results field is in it) and is now
 * forwarded elsewhere: appends an ARC set to out, signed with the RSA key
 * of the domain seal_key picks (mta_dkim.c). Returns its instance, 0 when
 * nothing was added. Never for our own mail, which gets DKIM signatures.
 */
unsigned mta_arc_seal(const struct wharf_config *cfg, const struct spool_message *sm,
                      struct buf *out);

#endif
