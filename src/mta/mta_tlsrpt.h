/*
 * mta_tlsrpt.h - SMTP TLS reporting (RFC 8460) by the mta: the outcome of
 * every outbound session under an MTA-STS or DANE policy is recorded per
 * policy domain, and every tlsrpt_interval the aggregate report (RFC 8460
 * section 4, JSON, gzip'd) goes to the rua URIs of the domain's
 * `_smtp._tls` TXT record: to a mailto: address through the spool and the
 * queue like any mail the mta writes (mta_out_spool_notice), to an https:
 * URI as the body of a POST (RFC 8460 3, application/tlsrpt+gzip) by the
 * mta's HTTPS client (mta_https.h, the one MTA-STS fetches with), its
 * certificate verified for the host name; a failed POST is logged, not
 * retried (the next interval reports again).
 *
 * Records are lines appended to DATA/tlsrpt/records (the folder made by
 * datadir_prepare) with one write() each
 * and no fsync (an mta crash loses none; a machine crash may lose the last
 * seconds: a report is a statistic). At report time the file is renamed
 * to DATA/tlsrpt/sending, reported, and removed once every domain's report
 * is spooled.
 *
 * Off unless the tlsrpt option is on. Must never delay or fail a delivery:
 * a record that cannot be written is logged and dropped.
 */
#ifndef WHARF_MTA_MTA_TLSRPT_H
#define WHARF_MTA_MTA_TLSRPT_H

#include "base/buf.h"
#include "base/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mta_out;
struct nexthop_resolver;
struct ssl_ctx_st;

enum mta_tlsrpt_policy { MTA_TLSRPT_STS, MTA_TLSRPT_TLSA };

struct mta_tlsrpt;

/* NULL when tlsrpt is off. verify_ctx: the mta's client TLS context, for
 * https: reports; it and r must outlive t, and r is freed first (no
 * resolver callback after). */
struct mta_tlsrpt *mta_tlsrpt_new(struct event_base *base, const struct wharf_config *cfg,
                                  struct nexthop_resolver *r, struct mta_out *o,
                                  struct ssl_ctx_st *verify_ctx);
void mta_tlsrpt_free(struct mta_tlsrpt *t);

/* One session to mx for domain under policy: result NULL for a success,
 * else an RFC 8460 result-type ("certificate-host-mismatch", ...). */
void mta_tlsrpt_record(struct mta_tlsrpt *t, const char *domain, enum mta_tlsrpt_policy policy,
                       const char *mx, const char *result);

/* The RFC 8460 result-type of a TLS failure the SMTP client reported (its
 * enhanced code and text), or NULL when it was not a TLS failure. */
const char *mta_tlsrpt_result_type(const char *enh, struct slice text);

/* One reporting URI of a record's rua. */
struct mta_tlsrpt_rua {
    bool https;
    char to[256];   /* mailto: the address, percent-decoded, without a ?query */
    char host[256]; /* https: the host (a DNS name or IPv4 literal) ... */
    uint16_t port;  /* ... its port (443 unless given) ... */
    char path[512]; /* ... and the request target ("/" at least, the ?query kept) */
};

/*
 * Parses a `_smtp._tls` TXT record (RFC 8460 3: "v=TLSRPTv1; rua=URI,URI"):
 * false when it is not a TLSRPTv1 record; else its valid mailto: and https:
 * URIs (at most max; others skipped) into rua, their count into *n_r.
 */
bool mta_tlsrpt_txt_parse(const char *txt, struct mta_tlsrpt_rua *rua, size_t max, size_t *n_r);

/*
 * The aggregate report (RFC 8460 4.4) for domain from the lines of a
 * records file (only domain's are counted), for [start, end], appended to
 * out as JSON. False when the lines hold nothing for domain.
 */
bool mta_tlsrpt_report_json(struct slice records, const char *domain, const char *org,
                            const char *report_id, int64_t start, int64_t end, struct buf *out);

#endif
