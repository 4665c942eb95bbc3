/*
 * arc.h - verification of an Authenticated Received Chain (RFC 8617): the
 * ARC sets a forwarder added, their structure, the newest
 * ARC-Message-Signature and every ARC-Seal; and sealing (5.1): the set
 * Wharf adds when it forwards mail it received and checked. Both go
 * through the one DKIM kit (dkim.h): its parser, canonicalization and
 * signer.
 *
 * Pure, over a struct authdns like the other checks (authdns.h). Must never
 * report pass for a chain whose newest seal says it was already broken, nor
 * seal a chain so that it looks better than it was verified.
 */
#ifndef WHARF_MAILAUTH_ARC_H
#define WHARF_MAILAUTH_ARC_H

#include "mailauth/authdns.h"
#include "mailauth/dkim.h"

#define ARC_MAX_INSTANCES 50 /* RFC 8617 4.2.1 */

enum arc_result { ARC_NONE, ARC_PASS, ARC_FAIL };
const char *arc_result_name(enum arc_result r);

struct arc_outcome {
    bool done;
    enum arc_result result;
    unsigned instances;
    char reason[64];
};

void arc_check(const struct dkim_msg *m, struct authdns *dns, int64_t now, struct arc_outcome *out);

/* The cv= an Authentication-Results value of ours gives (its arc= result):
 * pass, fail, or none when it has none. */
enum arc_result arc_ar_cv(struct slice ar_value);

/*
 * Appends a new ARC set (ARC-Seal, ARC-Message-Signature and
 * ARC-Authentication-Results, top down, to go above m) sealed for domain d
 * with key k. ar_value is the value of our Authentication-Results field
 * (authserv-id and results), cv the chain's status as verified on arrival
 * (arc_ar_cv). i= is one above the chain's highest set; a structurally
 * broken chain is sealed with cv=fail over the new set only. Returns i, or
 * 0 with why when no set may be added (a chain ended by cv=fail, or 50
 * sets) or signing failed.
 */
unsigned arc_seal(const struct dkim_msg *m, struct slice ar_value, enum arc_result cv,
                  const char *d, const struct dkim_signer_key *k, int64_t now, struct buf *out,
                  const char **why_r);

#endif
