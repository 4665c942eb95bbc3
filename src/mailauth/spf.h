/*
 * spf.h - Sender Policy Framework (RFC 7208): check_host() for a client
 * address, HELO name and MAIL FROM, over the DNS answers in a struct authdns.
 *
 * Every mechanism and modifier of the RFC (all, include, a, mx, ptr, ip4,
 * ip6, exists, redirect; exp is parsed and ignored: the reason of a reject is
 * ours to write), macros (section 7), the limit of 10 DNS-querying terms
 * (include loops end there), of 10 MX or PTR names per term, and of 2 void
 * lookups (4.6.4). A DNS failure is temperror; a syntax error, an exceeded
 * limit or a missing included record is permerror.
 *
 * Must never read outside a record, recurse deeper than the lookup limit
 * allows, or turn a temporary DNS failure into a fail.
 */
#ifndef WHARF_MAILAUTH_SPF_H
#define WHARF_MAILAUTH_SPF_H

#include "mailauth/authdns.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define SPF_LOOKUP_LIMIT 10 /* RFC 7208 4.6.4 */
#define SPF_VOID_LIMIT 2    /* RFC 7208 4.6.4, the recommended default */
#define SPF_NAMES_LIMIT 10  /* MX or PTR names looked at per term (4.6.4) */

enum spf_result {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR,
};

const char *spf_result_name(enum spf_result r);

struct spf_ip {
    int family; /* AF_INET or AF_INET6 (v4-mapped addresses are given as AF_INET) */
    uint8_t addr[16];
};

/* Parses a textual address (IPv4-mapped IPv6 becomes IPv4). */
bool spf_ip_parse(const char *s, struct spf_ip *ip_r);

struct spf_input {
    struct spf_ip ip;
    const char *helo;     /* EHLO/HELO name */
    const char *sender;   /* MAIL FROM without <>; "" for the null sender */
    const char *receiver; /* this server's name, for the %{r} macro */
};

struct spf_outcome {
    enum spf_result result;
    bool done;        /* false: answers are missing (authdns has the questions) */
    char domain[256]; /* the domain checked: the sender's, or the HELO name */
    char reason[128]; /* why, for logs and the Authentication-Results comment */
};

/*
 * Runs check_host for the MAIL FROM identity (the HELO identity when the
 * sender is null, RFC 7208 2.4). Call again after filling the answers while
 * out->done is false.
 */
void spf_check(const struct spf_input *in, struct authdns *dns, struct spf_outcome *out);

/*
 * Parses an SPF record into terms, syntax only (for the fuzz target and
 * tests): true when every term is well-formed.
 */
bool spf_record_valid(struct slice record);

#endif
