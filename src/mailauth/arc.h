/*
 * arc.h - verification of an Authenticated Received Chain (RFC 8617): the
 * ARC sets a forwarder added, their structure, the newest
 * ARC-Message-Signature and every ARC-Seal. Sealing is not built yet.
 *
 * Pure, over a struct authdns like the other checks (authdns.h). Must never
 * report pass for a chain whose newest seal says it was already broken.
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

#endif
