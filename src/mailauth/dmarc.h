/*
 * dmarc.h - DMARC (RFC 7489): the policy record, identifier alignment of
 * SPF and DKIM with the From: domain, and the policy to apply (p=, sp=, pct=).
 * Policy records and organizational domains are found by the DNS Tree Walk
 * of DMARC's revision (draft-ietf-dmarc-dmarcbis, RFC 9989 4.10: at most 8
 * _dmarc queries, psd=y/n), or, when the caller passes a list, from the
 * Public Suffix List packaged in Debian (publicsuffix) as RFC 7489 did.
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
/* psd= (DMARCbis 4.7): y a public suffix domain, n an organizational
 * domain, u (or absent, or unknown) neither said */
enum dmarc_psd { DMARC_PSD_U, DMARC_PSD_Y, DMARC_PSD_N };

struct dmarc_record {
    enum dmarc_policy p, sp;
    bool adkim_strict, aspf_strict;
    unsigned pct; /* 0..100 */
    enum dmarc_psd psd;
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

/* ---- the DNS Tree Walk (DMARCbis 4.10) ---- */

#define DMARC_WALK_MAX 8

/* The names a walk from domain queries (under _dmarc.), most labels first:
 * domain itself, then, from at most 7 labels, one label fewer each time.
 * Each is a pointer into domain; returns how many (1..DMARC_WALK_MAX). */
size_t dmarc_walk_names(const char *domain, const char *names[DMARC_WALK_MAX]);

struct dmarc_walk {
    int status;            /* 1 done, 0 need more answers, -1 DNS failure */
    bool have_policy;      /* a policy record: the first valid one met */
    bool policy_at_domain; /* it is domain's own (p=), not a parent's (sp=) */
    struct dmarc_record policy;
    const char *org; /* the organizational domain, a suffix of domain */
};

/* Walks from domain (any case): with policy_only, stops at the first
 * record (policy discovery, 4.10.1); else goes on to find the
 * organizational domain (4.10.2): where psd=n is, one label below psd=y,
 * else the name with fewest labels that has a record, else domain itself. */
void dmarc_walk(struct authdns *dns, const char *domain, bool policy_only, struct dmarc_walk *w);

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

/* psl NULL: the DNS Tree Walk for both the policy record and the
 * organizational domains of relaxed alignment; else RFC 7489's way. */
void dmarc_check(const struct dmarc_input *in, const struct psl *psl, struct authdns *dns,
                 struct dmarc_outcome *out);

#endif
