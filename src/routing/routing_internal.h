/*
 * routing_internal.h - the routing process's state, shared by its files:
 * routing_main.c (the peerings on 691, flooding, masters, routes) and
 * routing_smtp.c (the same peerings carried over the bridgeheads' SMTP
 * sessions, X-WHARF-LINKSTATE). Private to src/routing.
 *
 * Must never: be included outside src/routing.
 */
#ifndef WHARF_ROUTING_ROUTING_INTERNAL_H
#define WHARF_ROUTING_ROUTING_INTERNAL_H

#include "base/config.h"
#include "routing/org.h"
#include "routing/routing_proto.h"

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct bufferevent;
struct evconnlistener;
struct event_base;
struct event;
struct component_loop;
struct smtp_dial;

struct timers {
    int64_t tick, keepalive, hold, retransmit, up_hold, reconnect;
};

struct routing;

struct peer {
    struct routing *r;
    struct peer *next;
    struct bufferevent *bev;
    bool outbound, tls_up, authed, closing;
    bool via_smtp; /* link state over SMTP: spliced by the smtp worker (routing_smtp.c) */
    char addr[96]; /* the remote address, or the HOST:PORT dialled */
    char *name;    /* from HELLO */
    char *want;    /* outbound: the server dialled (NULL for a seed) */
    unsigned char nonce_mine[ROUTING_NONCE_LEN], nonce_theirs[ROUTING_NONCE_LEN];
    int64_t opened_ms, last_rx_ms, last_tx_ms, full_ms, full_wall_ms, retx_ms;
    json_t *unacked;  /* group -> record sent, waiting for its ACK */
    json_t *reported; /* its live peers (REPORT), when it is a member of our group */
};

struct routing {
    struct component_loop *loop;
    const struct wharf_config *cfg;
    struct event_base *base;
    SSL_CTX *server_ctx, *client_ctx;
    struct evconnlistener *listener;
    /* routing_listen's address when it names one: the source of our dials, so that peers
     * see this server at the address they know it by (empty: the system chooses) */
    char source[64];
    struct evconnlistener *local_listener; /* run/routing.sock: the smtp workers' splices */
    struct smtp_dial *smtp_dials;          /* SMTP sessions on their way to a peering */
    struct event *tick;
    struct timers t;
    unsigned char key[ORG_KEY_LEN];
    bool have_key;
    json_t *self;
    const char *me;
    struct org_config oc;
    struct stat org_st;
    json_t *records; /* group -> record */
    uint64_t my_seq;
    uint32_t my_term;       /* the highest term this server originated in */
    int64_t master_seen_ms; /* when its group's master was last this server or a live peer */
    char *master_logged;    /* the master last named in the log */
    bool is_master;         /* this server originates its group's record now */
    /* changes logged since start, for /metrics */
    long long route_changes, connector_changes, master_changes;
    struct peer *peers;
    size_t n_peers;
    long long max_conns;
    size_t per_ip;   /* inbound connections from one address, 0: no limit */
    json_t *dialled; /* HOST:PORT -> next attempt (monotonic ms) */
    json_t *damp;    /* connector -> {pub, since, up_since, ever_up} */
    json_t *last_report;
    char *last_state;
    json_t *last_routes; /* dest -> "path next_hop" for the log */
    bool stale;
};

/* routing_main.c */
struct peer *routing_peer_new(struct routing *r, struct bufferevent *bev, bool outbound,
                              const char *addr);
void routing_peer_free(struct peer *p, const char *why);
/* Inbound: the connection is refused (and logged) when the limits say so. */
bool routing_admit(struct routing *r, const char *addr, bool local);
/* Back-off of dials to addr: false while its next attempt is not due (else it is booked). */
bool routing_dial_due(struct routing *r, const char *addr);

/* "HOST:PORT" (an IP address literal, IPv6 in brackets) into ss. */
struct sockaddr_storage;
bool routing_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* routing_smtp.c */
/* 0: the peering of me and other runs on 691; 1: over SMTP, this server dials; -1: over SMTP,
 * the other one dials. */
int routing_smtp_pair(const json_t *cfg, const char *me, const char *other);
/* Dials server name over SMTP (its "smtp" address) unless a session to it is under way. */
void routing_smtp_dial(struct routing *r, const char *name);
/* run/routing.sock for the smtp workers: opened once this server is in an organization. */
void routing_smtp_listen(struct routing *r);
void routing_smtp_close(struct routing *r);

#endif
