/*
 * dmarc.h - DMARC (RFC 7489): the policy record, the organizational domain
 * from the Public Suffix List packaged in Debian (publicsuffix,
 * /usr/share/publicsuffix/public_suffix_list.dat), identifier alignment of
 * SPF and DKIM with the From: domain, and the policy to apply (p=, sp=, pct=).
 *
 * Pure: DNS answers come from a struct authdns (see authdns.h), the list is
 * loaded once per process. Must never report pass without an aligned pass of
 * SPF or DKIM, nor a policy for a temporary DNS failure.
 */
#ifndef WHARF_MAILAUTH_DMARC_H
#define WHARF_MAILAUTH_DMARC_H

#include "base/buf.h"
#include "mailauth/authdns.h"

#include <stdbool.h>
#include <stddef.h>

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };

struct dmarc_record {
    enum dmarc_policy p, sp;
    bool adkim_strict, aspf_strict;
    unsigned pct; /* 0..100 */
};

/* Parses "v=DMARC1; p=...": false when it is not a valid DMARC record
 * (v= not first, p= missing or unknown: 6.6.3 treats it as absent). */
bool dmarc_record_parse(struct slice txt, struct dmarc_record *r);

/* ---- the Public Suffix List ---- */

struct psl;
/* NULL with err when the file cannot be read. */
struct psl *psl_load(const char *path, struct buf *err);
void psl_free(struct psl *l);
/* The organizational domain of domain (lower case) into out: the public
 * suffix plus one label (RFC 7489 3.2); domain itself when it is a suffix. */
void psl_org_domain(const struct psl *l, const char *domain, struct buf *out);

/* ---- the check ---- */

enum dmarc_result { DMARC_NONE, DMARC_PASS, DMARC_FAIL, DMARC_TEMPERROR, DMARC_PERMERROR };
const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

#define DMARC_DKIM_MAX 8

struct dmarc_input {
    const char *from_domain; /* RFC5322.From's domain, lower case; NULL: none or several */
    bool spf_pass;
    const char *spf_domain;                /* the domain SPF checked (MAIL FROM's, or HELO) */
    const char *dkim_pass[DMARC_DKIM_MAX]; /* d= of every passing signature */
    size_t n_dkim_pass;
    unsigned sample; /* 0..99, drawn by the caller for pct= */
};

struct dmarc_outcome {
    bool done;
    enum dmarc_result result;
    enum dmarc_policy policy; /* what the domain asks for this message (after sp=, pct=) */
    bool have_record;
    enum dmarc_policy published; /* p= (or sp=) as published, for the A-R comment */
    char reason[96];
};

void dmarc_check(const struct dmarc_input *in, const struct psl *psl, struct authdns *dns,
                 struct dmarc_outcome *out);

#endif
