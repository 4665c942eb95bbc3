/*
 * mailauth.h - the checks on one inbound message: DKIM signatures, SPF and
 * DMARC, and the one Authentication-Results: field (RFC 8601) that reports
 * them under this server's authserv-id.
 *
 * Pure and restartable: mailauth_check() runs over the message and the DNS
 * answers in a struct authdns; while result->done is false the caller looks
 * up the questions it left there and runs it again (see authdns.h). The
 * smtp worker drives it on its event loop (src/smtp/smtp_checks.c).
 *
 * Must never claim a pass the RFCs do not give, and never let an
 * Authentication-Results field from outside pass as ours.
 */
#ifndef WHARF_MAILAUTH_MAILAUTH_H
#define WHARF_MAILAUTH_MAILAUTH_H

#include "base/buf.h"
#include "mailauth/arc.h"
#include "mailauth/authdns.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"

#include <stdbool.h>
#include <stdint.h>

struct mailauth_input {
    struct slice message; /* as received: header and body, CRLF */
    const char *client_ip;
    const char *helo;
    const char *sender;   /* MAIL FROM, "" for <> */
    const char *receiver; /* myhostname */
    int64_t now;
    unsigned sample; /* 0..99, for DMARC's pct= */
};

struct mailauth_dkim {
    enum dkim_result result;
    char d[254], s[64], a[16], b[12]; /* b: the first 8 characters of b= */
    char reason[64];
};

struct mailauth_result {
    bool done;
    struct mailauth_dkim dkim[DKIM_VERIFY_MAX];
    size_t n_dkim;
    struct spf_outcome spf;
    struct dmarc_outcome dmarc;
    struct arc_outcome arc; /* verified only; reported, not acted on */
    char from_domain[254];  /* "" when there is not exactly one From: address */
};

void mailauth_check(const struct mailauth_input *in, const struct psl *psl, struct authdns *dns,
                    struct mailauth_result *res);

/* Appends "Authentication-Results: ID; dkim=...; spf=...; dmarc=...\r\n". */
void mailauth_ar_header(const struct mailauth_input *in, const struct mailauth_result *res,
                        const char *authserv_id, struct buf *out);

/* Appends message to out without the Authentication-Results: fields whose
 * authserv-id is ours (RFC 8601 5: a forgery, or ours from an earlier hop);
 * returns how many were dropped. */
size_t mailauth_strip_ours(struct slice message, const char *authserv_id, struct buf *out);

/* Our Authentication-Results field in m (the first whose authserv-id is
 * ours: the smtp worker removed any from outside), or NULL. */
const struct dkim_field *mailauth_ours(const struct dkim_msg *m, const char *authserv_id);

#endif
