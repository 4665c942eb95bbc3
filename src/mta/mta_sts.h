/*
 * mta_sts.h - MTA-STS (RFC 8461): a recipient domain's promise, published
 * over HTTPS, that its MX hosts speak TLS with certificates valid for
 * their names. The mta reads the TXT record `_mta-sts.DOMAIN` with its MX
 * lookup (nexthop.c), and this module fetches, checks and caches the
 * policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt.
 *
 * The parsers are pure (fuzzed: fuzz_mta_sts.c). The fetcher runs on the
 * mta's event loop (the mta's HTTPS client, mta_https.h: addresses from
 * nexthop's resolver), never follows a redirect, reads at
 * most MTA_STS_BODY_MAX bytes, and keeps policies in memory and under
 * DATA/mta-sts/ until max_age runs out, so neither a restart nor a
 * stripped TXT record downgrades a domain that had a policy.
 *
 * It must never turn a fetch failure into "no policy" while a cached,
 * unexpired policy exists (RFC 8461 5.1).
 */
#ifndef WHARF_MTA_STS_H
#define WHARF_MTA_STS_H

#include "base/buf.h"
#include "base/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ssl_ctx_st;
struct nexthop_resolver;

/* RFC 8461 3.3: policies are small; 64 KiB is the RFC's own bound. */
#define MTA_STS_BODY_MAX 65536
/* Most mx patterns kept from one policy. */
#define MTA_STS_MX_MAX 16
/* RFC 8461 3.2: max_age is at most 31557600 (a year). */
#define MTA_STS_MAX_AGE_MAX 31557600
/* The id of the TXT record: 1-32 letters and digits (3.1). */
#define MTA_STS_ID_MAX 32

enum mta_sts_mode { MTA_STS_NONE, MTA_STS_TESTING, MTA_STS_ENFORCE };

struct mta_sts_policy {
    enum mta_sts_mode mode;
    int64_t max_age; /* seconds */
    size_t n_mx;
    char mx[MTA_STS_MX_MAX][256]; /* "mail.example.com" or "*.example.net" */
    char id[MTA_STS_ID_MAX + 1];  /* the TXT id it was fetched under */
    int64_t fetched;              /* unix seconds */
};

/* Parses one TXT record's text. True with the id when it is an STSv1
 * record with a valid id; false when it is not STSv1 at all (*is_sts_r
 * false) or is a malformed STSv1 record (*is_sts_r true). */
bool mta_sts_txt_parse(const char *txt, size_t len, bool *is_sts_r, char id_r[MTA_STS_ID_MAX + 1]);

/* Parses a policy body (3.2: "key: value" lines ending in CRLF or LF;
 * version STSv1, mode, max_age and, unless mode is none, at least one mx;
 * unknown keys ignored). False with a reason in err. */
bool mta_sts_policy_parse(const char *body, size_t len, struct mta_sts_policy *p, struct buf *err);

/* True when host (an MX host name, no final dot) matches one of the
 * policy's mx patterns (4.1: exact, or "*." standing for one label). */
bool mta_sts_mx_match(const struct mta_sts_policy *p, const char *host);

/* The name of a mode, for logs. */
const char *mta_sts_mode_name(enum mta_sts_mode m);

struct mta_sts;

/* The cache and fetcher. verify_ctx is the mta's client TLS context (the
 * system's CAs plus mta_smtp_tls_ca_file); resolver gives the addresses
 * of mta-sts.DOMAIN. Both must outlive it. NULL with a reason in err. */
struct mta_sts *mta_sts_new(struct event_base *base, const struct wharf_config *cfg,
                            struct nexthop_resolver *resolver, struct ssl_ctx_st *verify_ctx,
                            struct buf *err);
void mta_sts_free(struct mta_sts *s);

/* The policy (NULL: none) is the callback's only until it returns. */
typedef void mta_sts_cb(const char *domain, const struct mta_sts_policy *p, void *arg);

/* The policy of domain, given the TXT id nexthop found (NULL: no valid
 * STSv1 record). Fetches when the cache has none, or one under another id;
 * concurrent requests for a domain share one fetch. cb is always called
 * later from the event loop. */
void mta_sts_get(struct mta_sts *s, const char *domain, const char *txt_id, mta_sts_cb *cb,
                 void *arg);

#endif
