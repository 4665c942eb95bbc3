/*
 * nexthop.h - where the mta sends mail for a remote domain: the next hop.
 *
 * In order: the organization's route for an address space (DATA/routing/state.json,
 * doc/routing.md: the next server or the connector's smart host; none usable: a temporary
 * failure, the message waits), a per-domain route (transport_routes), the smarthost (relayhost),
 * else DNS: MX records by preference, hosts of equal preference in random
 * order, this server and every MX ranked below it left out (RFC 5321 5.1),
 * the domain's own A/AAAA when it has no MX (the implicit MX). A null MX
 * (RFC 7505), a domain that does not exist, or this server as the best MX
 * (a mail loop) is a permanent failure, a DNS failure a temporary one.
 * Lookups are asynchronous (libunbound, its fd on the mta's event loop) and
 * go to dns_resolver when set, so tests never touch live DNS.
 *
 * Under the dane and dane-only policies, with a DNSSEC trust anchor
 * (dns_trust_anchor_file), it also looks up each host's TLSA records
 * (RFC 7672 2.2) when the MX answer and the host's addresses are
 * DNSSEC-secure, and says per host what DANE asks of the connection.
 *
 * It never connects, never caches beyond libunbound's own cache, and must
 * never report a permanent failure for a temporary DNS problem.
 */
#ifndef WHARF_MTA_NEXTHOP_H
#define WHARF_MTA_NEXTHOP_H

#include "base/buf.h"
#include "base/config.h"
#include "smtp/smtp_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;

/* Most MX hosts tried for one domain, and most addresses per host: a hostile
 * zone cannot make one delivery try hundreds of servers (Postfix: 5 hosts). */
#define NEXTHOP_HOSTS_MAX 10
#define NEXTHOP_ADDRS_MAX 8

/* Where one route or the relayhost points. */
struct nexthop_dest {
    char *host;      /* a name, or an address literal without brackets */
    uint16_t port;   /* 25 unless given */
    bool no_mx;      /* [host]: take the host's A/AAAA, no MX lookup */
    bool is_literal; /* host is an IP address */
    bool policy_set;
    enum smtp_tls_policy tls; /* when policy_set, else the default policy */
};

struct nexthop_route {
    char *domain;
    struct nexthop_dest dest;
};

/* Parses "HOST", "HOST:PORT", "[HOST]:PORT", "[1.2.3.4]", "[::1]:25". */
bool nexthop_dest_parse(const char *s, struct nexthop_dest *d_r);
void nexthop_dest_free(struct nexthop_dest *d);

/* Parses transport_routes' words: DOMAIN=DEST, each optionally followed by a
 * word may|require|verify|none. Returns false with a reason in err. */
bool nexthop_routes_parse(const struct strlist *words, struct nexthop_route **routes_r, size_t *n_r,
                          struct buf *err);
void nexthop_routes_free(struct nexthop_route *routes, size_t n);

/* What DANE asks of the connection to one host (RFC 7672 2.2). */
enum nexthop_dane {
    NEXTHOP_DANE_NONE,    /* no secure TLSA records: the policy's fallback */
    NEXTHOP_DANE_VERIFY,  /* usable TLSA records: TLS authenticated by them */
    NEXTHOP_DANE_ENCRYPT, /* TLSA records, none usable: TLS, unauthenticated */
};

/* Most TLSA bytes kept per host (a few digests, or one full certificate). */
#define NEXTHOP_TLSA_MAX 4096

/* The answer: hosts in the order to try them, each with its addresses. */
struct nexthop_host {
    char *name; /* for logs (relay=name[addr]:port) and TLS verification */
    int pref;
    size_t n_addrs;
    struct sockaddr_storage addrs[NEXTHOP_ADDRS_MAX];
    socklen_t addr_lens[NEXTHOP_ADDRS_MAX];
    enum nexthop_dane dane;
    unsigned char *tlsa; /* [u16 length][rdata]... (smtp_client_params.tlsa), owned */
    size_t tlsa_len;
    /* DNSSEC state of the host's address answers, while resolving */
    bool addr_secure, addr_insecure;
};

/* Frees what a host owns (name, TLSA records) and zeroes those fields. */
void nexthop_host_clear(struct nexthop_host *h);
/* A deep copy of h into *to. */
void nexthop_host_copy(struct nexthop_host *to, const struct nexthop_host *h);

enum nexthop_status {
    NEXTHOP_OK,
    NEXTHOP_TEMPFAIL, /* DNS server failure or timeout: retry later (4.4.3) */
    NEXTHOP_PERMFAIL, /* no such domain, null MX, no address at all (5.1.2 / 5.1.10) */
};

struct nexthop_result {
    enum nexthop_status status;
    char enh[16];      /* for the recipients when not OK */
    struct buf reason; /* text for logs and DSNs */
    enum smtp_tls_policy tls;
    bool relay_auth; /* the relayhost: AUTH with the configured credentials */
    /* MTA-STS (RFC 8461 3.1): the id of the domain's one valid STSv1 TXT
     * record at _mta-sts.DOMAIN, "" when there is none (asked for MX-routed
     * domains when mta_sts is on; see mta_sts.h for the policy itself) */
    char sts_id[33];
    bool sts_applies; /* an MX-routed domain with mta_sts on (routes and the relayhost are the
                         admin's choice) */
    size_t n_hosts;
    struct nexthop_host hosts[NEXTHOP_HOSTS_MAX];
    /* When this server is in an organization (doc/routing.md, "Loops"): its
     * name and this server's group; the group of the next hop when the
     * organization routes the mail to one of its servers, else empty (the mail
     * leaves the organization there). All empty outside an organization. */
    struct buf org;
    struct buf org_group;
    struct buf org_next_group;
    struct buf org_self; /* this server's name in the organization */
    bool org_routed;     /* the organization's routes chose the next hop (or found none): a
                            change of routes may change it */    /* The queue the mail waits in when it waits (`wharf queue`, doc/mta-out.md): the next
     * hop as a name, also when the lookup failed: "org:GROUP/SERVER" (a server of the
     * organization), "smarthost:HOST:PORT" (an address space's connector on its bridgehead),
     * "unreachable:DEST" (no usable route to a group or address space), "route:HOST:PORT"
     * (transport_routes), "relayhost:HOST:PORT", "host:HOST:PORT" (a home server outside
     * the organization), "mx:DOMAIN". */
    struct buf hop;
};

/* A Wharf-Route field's value, "org=ORG; group=GROUP" in any order, other
 * items ignored (doc/routing.md, "Loops"): false unless both are there. The
 * slices point into value. */
bool nexthop_route_trace_parse(struct slice value, struct slice *org_r, struct slice *group_r);
/* The value of item name ("org", "group", "id") in a Wharf-Route field's value, the last
 * one when repeated; empty when absent. Points into value. */
struct slice nexthop_route_trace_item(struct slice value, const char *name);

struct nexthop_resolver;

/* Creates the resolver from the config (routes, relayhost, dns_resolver,
 * dns_trust_anchor_file, mta_smtp_tls_policy); NULL with a reason in err on
 * a bad option. */
struct nexthop_resolver *nexthop_resolver_new(struct event_base *base,
                                              const struct wharf_config *cfg, struct buf *err);
void nexthop_resolver_free(struct nexthop_resolver *r);

/* The result is the callback's only until it returns. */
typedef void nexthop_cb(const char *domain, const struct nexthop_result *res, void *arg);

/* Looks up the next hop for domain; cb is always called later from the event
 * loop (never from inside this call). */
void nexthop_lookup(struct nexthop_resolver *r, const char *domain, nexthop_cb *cb, void *arg);

/* Looks up the addresses of host (as a route "[host]:port" would): one
 * host in the result, no MX, no TLSA; an IP address is taken as it is.
 * cb is always called later. */
void nexthop_addrs(struct nexthop_resolver *r, const char *host, uint16_t port, nexthop_cb *cb,
                   void *arg);

/* Hex digits of a route id's MAC. */
#define NEXTHOP_ROUTE_MAC_HEX 16
/*
 * The content a route id is bound to (doc/routing.md, "Exactly once"): SHA-256 of the
 * message's author fields (From, Sender, Reply-To, To, Cc, Subject, Date, Message-ID,
 * In-Reply-To, References, MIME-Version, Content-Type, Content-Transfer-Encoding: every
 * occurrence, in order, as "lowercase-name:raw-value CRLF"), an empty line and the body.
 * The fields hops add (Received, Wharf-Route, ARC, DKIM-Signature ...) are left out, so
 * every hop computes the same digest; another message with a copied id does not.
 */
void nexthop_route_id_content(struct slice data, unsigned char md[32]);
/* The MAC of a route id's base ("QUEUEID.SERVER") and the message's content digest
 * (nexthop_route_id_content) under the organization's route-id key (state.json's
 * route_id_key, derived from the org key by the routing process): HMAC-SHA256 of BASE, LF,
 * the 32 digest bytes, cut to 16 hex digits. What makes a route id one a server of the
 * organization gave to this message. false when this server has no such key. */
bool nexthop_route_id_mac(struct nexthop_resolver *r, struct slice base, struct slice data,
                          char out[NEXTHOP_ROUTE_MAC_HEX + 1]);
/*
 * Where mail for an account homed on server home goes (doc/routing.md, "Mail for users
 * homed on another server"). When home is a server of this server's organization (its name
 * or its SMTP host): that server's SMTP address in our routing group, else the next hop of
 * the least-cost route to its group, with org, org_group and org_next_group set; no usable
 * route is a temporary failure (the message waits). Otherwise as nexthop_addrs(home, port).
 */
void nexthop_home(struct nexthop_resolver *r, const char *home, uint16_t port, nexthop_cb *cb,
                  void *arg);

/* The TXT records at name (each record's strings joined, at most 8 of
 * 1 KiB): ok false on a DNS failure (no answer is ok with n = 0). */
typedef void nexthop_txt_cb(void *arg, bool ok, const char *const *texts, size_t n);
/* Asks for them; cb later from the loop, or at once when the query cannot
 * start (then with ok false). */
void nexthop_txt(struct nexthop_resolver *r, const char *name, nexthop_txt_cb *cb, void *arg);

/* Reads relayhost_auth_file: one line "USER:PASSWORD" (the password may hold
 * colons). The caller frees both and should wipe the password. False with a
 * reason in err (never the file's content). */
bool nexthop_relay_auth_load(const char *path, char **user_r, char **pass_r, struct buf *err);

/* Classifies one TLSA rdata (usage selector mtype data): usable for SMTP
 * when DANE-TA(2) or DANE-EE(3), selector 0/1, matching type 0/1/2 with a
 * digest of the right size (RFC 7672 3.1, RFC 6698 2.1). */
bool nexthop_tlsa_usable(const unsigned char *rd, size_t len);

/* Sorts hosts by preference and shuffles each run of equal preference
 * (RFC 5321 5.1: spreads the load over equal MX hosts). */
void nexthop_mx_order(struct nexthop_host *hosts, size_t n);

/* Who "this server" is, for loop detection. */
struct nexthop_self {
    const char *hostname;                 /* myhostname */
    const struct strlist *listen;         /* smtp_listen ("*:25", "127.0.0.2:2525", "[::1]:25") */
    const struct sockaddr_storage *local; /* this machine's addresses (a "*" listener) */
    size_t n_local;
};

/* True when h is this server: its name is myhostname, or one of its
 * addresses and ports is one smtp_listen serves. */
bool nexthop_host_is_self(const struct nexthop_host *h, const struct nexthop_self *self);

/* On hosts ordered by preference: drops the first host that is this server
 * and every host whose preference is not better (RFC 5321 5.1), freeing
 * their names. Returns the number kept; *self_r tells whether one was this
 * server (0 kept with *self_r: the mail would loop, 5.4.6). */
size_t nexthop_mx_cut_self(struct nexthop_host *hosts, size_t n, const struct nexthop_self *self,
                           bool *self_r);

#endif
