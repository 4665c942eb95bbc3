/*
 * dns.h - the one DNS kit: a libunbound context whose file descriptor sits
 * on the caller's libevent loop, so every lookup is asynchronous.
 *
 * Used by the mta's next hop (MX, A, AAAA) and by the smtp workers' checks
 * on inbound mail (SPF, DKIM keys, DMARC: TXT and friends). Queries go to
 * dns_resolver when it is set (the tests' local authoritative server, the RFC
 * 6761 "test." names included), else to /etc/resolv.conf's servers.
 *
 * Must never block the loop: no synchronous ub_resolve anywhere, and a
 * callback always comes later from the loop, never from inside a call here.
 */
#ifndef WHARF_NET_DNS_H
#define WHARF_NET_DNS_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unbound.h>

struct event_base;
struct dns_resolver;

/* server: "ADDR" or "ADDR@PORT", or NULL/"" for resolv.conf. trust_anchors:
 * a file of DNSSEC trust anchors (DS or DNSKEY lines, unbound's format) to
 * validate answers with, so that ub_result's secure and bogus mean
 * something (DANE needs it), or NULL/"" for none. NULL with a reason in err
 * on failure. */
struct dns_resolver *dns_resolver_new(struct event_base *base, const char *server,
                                      const char *trust_anchors, struct buf *err);
/* Cancels the queries in flight (their callbacks are never called). */
void dns_resolver_free(struct dns_resolver *r);

/* Starts a query; cb(arg, err, result) later from the loop (free result
 * with ub_resolve_free). Returns the query id for dns_cancel, or -1 with
 * the libunbound error in *err_r. */
int dns_query(struct dns_resolver *r, const char *name, int rrtype, ub_callback_type cb, void *arg,
              int *err_r);
void dns_cancel(struct dns_resolver *r, int id);

/*
 * One server's address by name, for a client that connects to that one server (a
 * front-end's home server, a news feed's peer): its first A record, else its first
 * AAAA, with port. cb later from the loop with the address, or with len 0 and why
 * ("no address in DNS", or a temporary "the DNS lookup failed"). NULL with err when
 * the lookup cannot start (cb is then never called).
 */
struct dns_addr;
typedef void dns_addr_cb(void *arg, const struct sockaddr *sa, socklen_t len, const char *why);
struct dns_addr *dns_addr_lookup(struct dns_resolver *r, const char *host, unsigned port,
                                 dns_addr_cb *cb, void *arg, struct buf *err);
/* Stops a lookup in flight: cb is never called. */
void dns_addr_cancel(struct dns_addr *q);
/* An IP address literal (no brackets) with port into ss: its length, or 0 when host is none. */
socklen_t dns_addr_literal(const char *host, unsigned port, struct sockaddr_storage *ss);
/* Whether host may be looked up: letters, digits, '-' and '.' (RFC 1123), at most 253. */
bool dns_host_name_ok(const char *host);
/* Parses a domain name in rdata (uncompressed, as libunbound returns it)
 * into a dotted name without the final dot ("" for the root); *used_r is
 * how many octets it took. False if malformed or not printable. */
bool dns_name_parse(const unsigned char *rd, size_t len, size_t *used_r, struct buf *name_r);

/* Parses an MX record's rdata into pref and its host name ("" for the root:
 * a null MX, RFC 7505). False if malformed or followed by trailing bytes. */
bool dns_mx_rdata_parse(const unsigned char *rd, size_t len, int *pref_r, struct buf *name_r);

/* The name under which an address is looked up in a reverse zone: the
 * octets (IPv4, family AF_INET, 4 bytes) or nibbles (IPv6, 16 bytes)
 * reversed, then zone; zone NULL: in-addr.arpa or ip6.arpa. */
void dns_reverse_name(int family, const uint8_t *addr, const char *zone, struct buf *out);

#endif
