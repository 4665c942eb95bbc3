/*
 * routing_main.c - the routing process (Exchange's Routing Engine), a
 * singleton on the component skeleton (ipc/component_loop.h).
 *
 * It peers over TLS on 691 with the servers of its group and with the other
 * end of every connector it bridges (the lower server name dials), proves the
 * org key bound to each TLS session (routing_proto.h), replicates the
 * organization configuration (newest serial wins, org.h), and floods one
 * link-state record per routing group, originated by the group's master from
 * its own peerings and its members' REPORTs, with sequence numbers,
 * acknowledgements and retransmission. The master is the originator of the
 * group's newest record; when it has not been a live peer for routing's hold
 * time, the best-ranked live server of the group claims with a higher term
 * (records of a higher term are newer; at equal terms the better-ranked
 * originator wins, so after a partition one master remains). A server that
 * comes back does not take the role back (no preemption). Connectors going
 * down are published at once; one coming back only after routing_up_hold
 * (damping). Records are saved (DATA/routing/lsdb.json) so a restarted
 * server routes on its last table; the routes (route.h) are written to
 * DATA/routing/state.json for `wharf routes`, one log line per change.
 *
 * Must never: act on a frame before the peer's AUTH verified, trust a record
 * from a server outside its group, or block the loop (everything here is
 * non-blocking; files are small and written by rename).
 */
#include "routing/routing.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/datadir.h"
#include "base/hex.h"
#include "base/log.h"
#include "ipc/channel.h"
#include "ipc/component_loop.h"
#include "net/net.h"
#include "net/net_tls_client.h"
#include "routing/org.h"
#include "routing/route.h"
#include "routing/routing_proto.h"
#include "routing/routing_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>

/* up_hold is routing_up_hold in both profiles (the tests set 2 s) */
static const struct timers timers_normal = {500, 5000, 20000, 5000, 0, 5000};
static const struct timers timers_test = {50, 100, 5000, 300, 0, 100};

/* ---- peers: sending, closing ---- */

static void peer_send(struct peer *p, const struct buf *frames)
{
    if (p->closing || p->bev == NULL)
        return;
    bufferevent_write(p->bev, frames->data, frames->len);
    p->last_tx_ms = monotonic_ms();
}

void routing_peer_free(struct peer *p, const char *why)
{
    struct routing *r = p->r;
    for (struct peer **pp = &r->peers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    r->n_peers--;
    if (p->authed)
        log_info("routing: peer %s (%s) DOWN: %s", p->name, p->addr, why);
    else
        log_info("routing: connection %s %s closed: %s", p->outbound ? "to" : "from", p->addr, why);
    if (p->bev)
        bufferevent_free(p->bev);
    json_decref(p->unacked);
    json_decref(p->reported);
    free(p->name);
    free(p->want);
    free(p);
}

static void on_flushed(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    if (p->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        routing_peer_free(p, "closed after an error");
}

/* Says ERROR code (none when NULL) and closes once it is sent (or at a tick past a second). */
static void peer_fail(struct peer *p, const char *code, const char *text)
{
    if (p->closing)
        return;
    if (code == NULL) {
        log_info("routing: closing the connection with %s (%s): %s", p->name, p->addr, text);
    } else {
        log_warning("routing: %s %s: %s (%s), closing", p->name ? p->name : "connection", p->addr,
                    code, text);
        struct buf f = BUF_INIT;
        routing_put_error(&f, code, text);
        peer_send(p, &f);
        buf_free(&f);
    }
    p->closing = true;
    p->opened_ms = monotonic_ms(); /* the flush deadline counts from here */
    bufferevent_disable(p->bev, EV_READ);
    bufferevent_setwatermark(p->bev, EV_WRITE, 0, 0);
}

static struct peer *peer_named(struct routing *r, const char *name, const struct peer * not )
{
    for (struct peer *p = r->peers; p; p = p->next) {
        if (p != not &&!p->closing && ((p->name && strcmp(p->name, name) == 0) ||
                                       (p->want && !p->name && strcmp(p->want, name) == 0)))
            return p;
    }
    return NULL;
}

static bool peer_full(const struct peer *p)
{
    return p && p->authed && !p->closing;
}

/* One frame of type carrying v as compact JSON. */
static void send_json(struct peer *p, uint16_t type, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT);
    struct buf f = BUF_INIT;
    routing_put_str(&f, type, text);
    peer_send(p, &f);
    buf_free(&f);
    free(text);
}

static void send_records(struct peer *p, json_t *list)
{
    send_json(p, ROUTING_UPDATE, list);
    size_t i;
    json_t *rec;
    json_array_foreach(list, i, rec)
    {
        json_object_set(p->unacked, json_string_value(json_object_get(rec, "group")), rec);
    }
    p->retx_ms = monotonic_ms();
}

/* Sends every record of recs (group -> record), if any, as one UPDATE. */
static void send_all(struct peer *p, json_t *recs)
{
    if (json_object_size(recs) == 0)
        return;
    json_t *list = json_array();
    const char *g;
    json_t *rec;
    json_object_foreach(recs, g, rec)
    {
        json_array_append(list, rec);
    }
    send_records(p, list);
    json_decref(list);
}

static void send_config(struct routing *r, struct peer *p)
{
    json_t *o = json_pack("{s:O, s:s}", "config", r->oc.cfg, "mac", r->oc.mac);
    send_json(p, ROUTING_CONFIG, o);
    json_decref(o);
}

/* ---- the link-state database ---- */

static void lsdb_save(struct routing *r)
{
    char *text = json_dumps(r->records, JSON_INDENT(1) | JSON_SORT_KEYS);
    char *path = org_path(r->cfg, "lsdb.json");
    if (datadir_write_file(path, text, strlen(text), 0600) != 0)
        log_error("routing: cannot save %s: %m", path);
    free(path);
    free(text);
}

static void flood(struct routing *r, json_t *rec, const struct peer *except)
{
    json_t *list = json_pack("[O]", rec);
    for (struct peer *p = r->peers; p; p = p->next) {
        if (p != except && peer_full(p))
            send_records(p, list);
    }
    json_decref(list);
}

static void flood_config(struct routing *r, const struct peer *except)
{
    for (struct peer *p = r->peers; p; p = p->next) {
        if (p != except && peer_full(p))
            send_config(r, p);
    }
}

static void install_record(struct routing *r, json_t *rec)
{
    const char *g = json_string_value(json_object_get(rec, "group"));
    json_object_set(r->records, g, rec);
    lsdb_save(r);
}

/* Drops the records of groups the configuration no longer has. */
static void lsdb_prune(struct routing *r)
{
    const char *g;
    json_t *v, *tmp;
    json_object_foreach_safe(r->records, tmp, g, v)
    {
        if (r->oc.cfg == NULL || org_find(r->oc.cfg, "groups", g) == NULL)
            json_object_del(r->records, g);
    }
}

static void install_config(struct routing *r, struct org_config *oc, const struct peer *from,
                           bool write)
{
    log_info("routing: configuration serial %llu%s%s", (unsigned long long)oc->serial,
             from ? " from " : " (local change)", from ? from->name : "");
    org_config_free(&r->oc);
    r->oc = *oc;
    memset(oc, 0, sizeof(*oc));
    if (write) {
        json_t *o = json_pack("{s:O, s:s}", "config", r->oc.cfg, "mac", r->oc.mac);
        char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        char *path = org_path(r->cfg, "org.json");
        if (datadir_write_file(path, text, strlen(text), 0600) != 0)
            log_error("routing: cannot save %s: %m", path);
        stat(path, &r->org_st);
        free(path);
        free(text);
        json_decref(o);
    }
    lsdb_prune(r);
    flood_config(r, from);
}

/* ---- handling frames ---- */

static bool compute_mac(struct peer *p, bool sender_is_client, unsigned char out[ROUTING_MAC_LEN])
{
    SSL *ssl = bufferevent_openssl_get_ssl(p->bev);
    unsigned char ekm[32];
    static const char label[] = "EXPORTER-wharf-ls";
    if (ssl == NULL || SSL_export_keying_material(ssl, ekm, sizeof(ekm), label, sizeof(label) - 1,
                                                  NULL, 0, 0) != 1)
        return false;
    const unsigned char *cn = p->outbound ? p->nonce_mine : p->nonce_theirs;
    const unsigned char *sn = p->outbound ? p->nonce_theirs : p->nonce_mine;
    const char *client = p->outbound ? p->r->me : p->name;
    const char *server = p->outbound ? p->name : p->r->me;
    struct buf in = BUF_INIT;
    buf_append(&in, "wharf-ls v1", 12);
    buf_append(&in, ekm, sizeof(ekm));
    buf_append(&in, cn, ROUTING_NONCE_LEN);
    buf_append(&in, sn, ROUTING_NONCE_LEN);
    buf_append(&in, client, strlen(client) + 1);
    buf_append(&in, server, strlen(server) + 1);
    buf_append_byte(&in, sender_is_client ? 'C' : 'S');
    unsigned int len = 0;
    bool ok = HMAC(EVP_sha256(), p->r->key, ORG_KEY_LEN, (const unsigned char *)in.data, in.len,
                   out, &len) != NULL &&
              len == ROUTING_MAC_LEN;
    buf_free(&in);
    return ok;
}

static const char *org_name(const struct routing *r)
{
    return r->oc.cfg ? json_string_value(json_object_get(r->oc.cfg, "org"))
                     : json_string_value(json_object_get(r->self, "org"));
}

static void send_hello(struct peer *p)
{
    RAND_bytes(p->nonce_mine, sizeof(p->nonce_mine));
    struct buf f = BUF_INIT;
    routing_put_hello(&f, org_name(p->r), p->r->me, p->nonce_mine, p->r->oc.serial);
    peer_send(p, &f);
    buf_free(&f);
}

static void peer_became_full(struct routing *r, struct peer *p)
{
    struct peer *dup = peer_named(r, p->name, p);
    if (dup)
        routing_peer_free(dup, "replaced by a newer connection");
    p->authed = true;
    p->full_ms = monotonic_ms();
    if (p->outbound)
        json_object_del(r->dialled, p->addr);
    p->full_wall_ms = wallclock_ms();
    r->stale = false;
    log_info("routing: peer %s (%s) FULL, %s", p->name, p->addr,
             p->outbound ? "outbound" : "inbound");
    if (r->oc.cfg)
        send_config(r, p);
    send_all(p, r->records);
    json_decref(r->last_report);
    r->last_report = NULL; /* report again to the master */
}

static void handle_update(struct routing *r, struct peer *p, json_t *list)
{
    size_t i;
    json_t *rec;
    json_array_foreach(list, i, rec)
    {
        const char *g = json_string_value(json_object_get(rec, "group"));
        const char *orig = json_string_value(json_object_get(rec, "originator"));
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
        if (r->oc.cfg == NULL)
            return; /* not acknowledged: sent again once the configuration is here */
        struct buf f = BUF_INIT;
        routing_put_ack(&f, g, seq);
        peer_send(p, &f);
        buf_free(&f);
        const char *og = org_server_group(r->oc.cfg, orig);
        if (og == NULL || strcmp(og, g) != 0) {
            log_warning("routing: record of %s from %s refused: %s is not its master", g, p->name,
                        orig);
            continue;
        }
        json_t *ours = json_object_get(r->records, g);
        if (ours == NULL || route_record_newer(r->oc.cfg, rec, ours)) {
            if (strcmp(orig, r->me) == 0) {
                /* ours from before a restart: originate above it (RFC 2328 13.4) */
                r->my_seq = seq;
                if (route_record_term(rec) > r->my_term)
                    r->my_term = route_record_term(rec);
            }
            install_record(r, rec);
            flood(r, rec, p);
        } else if (route_record_newer(r->oc.cfg, ours, rec)) {
            json_t *back = json_pack("[O]", ours);
            send_records(p, back); /* an older copy: answer with ours */
            json_decref(back);
        }
    }
}

static void handle_frame(struct routing *r, struct peer *p, const struct ipc_frame *f)
{
    struct routing_msg m;
    struct buf err = BUF_INIT;
    if (!routing_msg_decode(f, &m, &err)) {
        peer_fail(p, "BAD_FRAME", buf_cstr(&err));
        goto out;
    }
    p->last_rx_ms = monotonic_ms();
    if (m.type == ROUTING_ERROR) {
        log_warning("routing: %s says %.*s: %.*s", p->name ? p->name : p->addr, (int)m.a.len,
                    m.a.ptr, (int)m.b.len, m.b.ptr);
        p->closing = true;
        goto out;
    }
    if (!p->authed && m.type == ROUTING_HELLO && p->name == NULL) {
        char *org = slice_strdup(m.a);
        p->name = slice_strdup(m.b);
        memcpy(p->nonce_theirs, m.nonce, sizeof(m.nonce));
        if (org_name(r) == NULL || strcmp(org, org_name(r)) != 0)
            peer_fail(p, "WRONG_ORG", "another organization");
        else if (strcmp(p->name, r->me) == 0 || (p->want && strcmp(p->name, p->want) != 0))
            peer_fail(p, "BAD_PEER", "not the server expected");
        free(org);
        unsigned char mac[ROUTING_MAC_LEN];
        if (!p->closing && compute_mac(p, p->outbound, mac)) {
            struct buf out = BUF_INIT;
            routing_put_auth(&out, mac);
            peer_send(p, &out);
            buf_free(&out);
        }
        goto out;
    }
    if (!p->authed && m.type == ROUTING_AUTH && p->name) {
        unsigned char want[ROUTING_MAC_LEN];
        if (!compute_mac(p, !p->outbound, want) || CRYPTO_memcmp(want, m.mac, sizeof(want)) != 0)
            peer_fail(p, "AUTH_FAILED", "the proof of the org key does not verify");
        else
            peer_became_full(r, p);
        goto out;
    }
    if (!p->authed) {
        peer_fail(p, "BAD_FRAME", "HELLO and AUTH come first");
        goto out;
    }
    struct org_config oc;
    switch (m.type) {
    case ROUTING_KEEPALIVE:
        break;
    case ROUTING_ACK: {
        char *g = slice_strdup(m.a);
        const json_t *sent = json_object_get(p->unacked, g);
        if (sent && (uint64_t)json_integer_value(json_object_get(sent, "seq")) <= m.u)
            json_object_del(p->unacked, g);
        free(g);
        break;
    }
    case ROUTING_UPDATE:
        handle_update(r, p, m.json);
        break;
    case ROUTING_REPORT:
        json_decref(p->reported);
        p->reported = json_incref(m.json);
        break;
    case ROUTING_CONFIG:
        if (!org_record_parse(m.a.ptr, m.a.len, r->key, &oc, &err)) {
            peer_fail(p, "BAD_CONFIG", buf_cstr(&err));
        } else if (org_config_newer(&oc, &r->oc)) {
            install_config(r, &oc, p, true);
        } else {
            if (org_config_newer(&r->oc, &oc))
                send_config(r, p);
            org_config_free(&oc);
        }
        break;
    default:
        peer_fail(p, "BAD_FRAME", "unexpected frame");
    }
out:
    routing_msg_clear(&m);
    buf_free(&err);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!p->closing) {
        struct ipc_frame f;
        size_t used;
        enum ipc_parse_result res = ipc_evbuffer_frame(in, ROUTING_MAX_FRAME, &f, &used);
        if (res == IPC_PARSE_NEED_MORE)
            break;
        if (res == IPC_PARSE_ERROR) {
            peer_fail(p, "BAD_FRAME", "oversized or malformed frame header");
            break;
        }
        handle_frame(p->r, p, &f);
        evbuffer_drain(in, used);
    }
    if (p->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        routing_peer_free(p, "closed");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        p->tls_up = true;
        send_hello(p);
        return;
    }
    if (what & BEV_EVENT_EOF)
        routing_peer_free(p, p->tls_up ? "the peer closed" : "closed during the TLS handshake");
    else
        routing_peer_free(p, p->tls_up ? "connection error" : "TLS handshake failed");
}

struct peer *routing_peer_new(struct routing *r, struct bufferevent *bev, bool outbound,
                              const char *addr)
{
    struct peer *p = xcalloc(1, sizeof(*p));
    p->r = r;
    p->bev = bev;
    p->outbound = outbound;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    p->opened_ms = p->last_rx_ms = monotonic_ms();
    p->unacked = json_object();
    p->next = r->peers;
    r->peers = p;
    r->n_peers++;
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    bufferevent_setcb(bev, on_read, on_flushed, on_event, p);
    bufferevent_setwatermark(bev, EV_READ, 0, ROUTING_MAX_FRAME + IPC_HEADER_SIZE);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return p;
}

/* Relayed by the smtp workers and not yet authenticated, at most (any SMTP client can start one).
 */
#define ROUTING_SMTP_PENDING_MAX 8

bool routing_admit(struct routing *r, const char *addr, bool local)
{
    size_t from_addr = 0, pending = 0;
    for (struct peer *p = r->peers; p; p = p->next) {
        from_addr += !p->outbound && strcmp(p->addr, addr) == 0;
        pending += !p->outbound && p->via_smtp && !p->authed;
    }
    const char *refuse =
        !r->have_key                            ? "not in an organization"
        : (long long)r->n_peers >= r->max_conns ? "routing_max_connections reached"
        : local && pending >= ROUTING_SMTP_PENDING_MAX
            ? "too many connections over SMTP waiting for their authentication"
        : !local && r->per_ip && from_addr >= r->per_ip && !net_addr_exempt(r->cfg, addr)
            ? "routing_max_connections_per_ip reached"
            : NULL;
    if (refuse)
        log_warning("routing: connection from %s refused: %s", addr, refuse);
    return refuse == NULL;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct routing *r = arg;
    (void)l;
    char addr[NI_MAXHOST] = "?";
    if (getnameinfo(sa, (socklen_t)len, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(addr, sizeof(addr), "?");
    if (!routing_admit(r, addr, false)) {
        evutil_closesocket(fd);
        return;
    }
    SSL *ssl = SSL_new(r->server_ctx);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        r->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    routing_peer_new(r, bev, false, addr);
}

bool routing_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    int port = atoi(colon + 1);
    memset(ss, 0, sizeof(*ss));
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = '\0';
        h++;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof(*in4);
        return true;
    }
    if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return true;
    }
    return false;
}

bool routing_dial_due(struct routing *r, const char *addr)
{
    /* back-off: reconnect, doubled after each attempt up to a minute; reset once FULL */
    int64_t now = monotonic_ms();
    json_t *d = json_object_get(r->dialled, addr);
    if (d && json_integer_value(json_object_get(d, "next")) > now)
        return false;
    int64_t delay = d ? json_integer_value(json_object_get(d, "delay")) * 2 : r->t.reconnect;
    if (delay > 60000)
        delay = 60000;
    json_object_set_new(
        r->dialled, addr,
        json_pack("{s:I, s:I}", "next", (json_int_t)(now + delay), "delay", (json_int_t)delay));
    return true;
}

/* The address the listener is bound to, unless it is the wildcard. */
static void listen_source(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    out[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        if (s4->sin_addr.s_addr != htonl(INADDR_ANY))
            inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)size);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)size);
    }
}

static void dial(struct routing *r, const char *addr, const char *want)
{
    if (!routing_dial_due(r, addr))
        return;
    struct sockaddr_storage ss;
    socklen_t len;
    struct buf err = BUF_INIT;
    struct net_tls_client_peer np = {.name = NULL, .verify = NET_TLS_VERIFY_NONE};
    SSL *ssl;
    if (!routing_parse_hostport(addr, &ss, &len) ||
        (ssl = net_tls_client_ssl_new(r->client_ctx, &np, &err)) == NULL) {
        log_warning("routing: cannot dial %s %s", addr, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    evutil_socket_t fd = -1;
    if (r->source[0] != '\0') {
        const char *src = r->source;
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || net_addr_bind_source(fd, ss.ss_family, &src, 1, &err) < 0) {
            log_warning("routing: cannot dial %s from %s: %s", addr, src,
                        fd < 0 ? strerror(errno) : buf_cstr(&err));
            if (fd >= 0)
                evutil_closesocket(fd);
            SSL_free(ssl);
            buf_free(&err);
            return;
        }
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        r->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    struct peer *p = routing_peer_new(r, bev, true, addr);
    p->want = want ? xstrdup(want) : NULL;
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, (int)len) != 0)
        routing_peer_free(p, "connect failed");
}

/* ---- what this server does each tick ---- */

static bool wanted_peer(const json_t *cfg, const char *me, const char *other)
{
    const char *g1 = org_server_group(cfg, me), *g2 = org_server_group(cfg, other);
    if (g1 && g2 && strcmp(g1, g2) == 0)
        return true;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(cfg, "connectors"), i, c)
    {
        const json_t *s = json_object_get(c, "source"), *t = json_object_get(c, "target");
        if ((org_list_has(s, me) && org_list_has(t, other)) ||
            (org_list_has(t, me) && org_list_has(s, other)))
            return true;
    }
    return false;
}

static void dial_wanted(struct routing *r)
{
    if (r->oc.cfg == NULL) {
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(r->self, "peers"), i, a)
        {
            bool busy = false;
            for (struct peer *p = r->peers; p; p = p->next)
                busy = busy || (p->outbound && strcmp(p->addr, json_string_value(a)) == 0);
            if (!busy)
                dial(r, json_string_value(a), NULL);
        }
        return;
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(r->oc.cfg, "servers"), i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!wanted_peer(r->oc.cfg, r->me, name) || peer_named(r, name, NULL))
            continue;
        int via = routing_smtp_pair(r->oc.cfg, r->me, name);
        if (via > 0)
            routing_smtp_dial(r, name);
        else if (via == 0 && strcmp(name, r->me) < 0)
            dial(r, json_string_value(json_object_get(s, "address")), name);
    }
}

/* The servers live with server s: its FULL peers (ours, or what it REPORTed). */
static bool live_between(struct routing *r, const char *s, const char *t)
{
    if (strcmp(s, r->me) == 0)
        return peer_full(peer_named(r, t, NULL));
    struct peer *ps = peer_named(r, s, NULL);
    return peer_full(ps) && org_list_has(ps->reported, t);
}

static bool member_live(struct routing *r, const char *s)
{
    return strcmp(s, r->me) == 0 || peer_full(peer_named(r, s, NULL));
}

/* The connector's published state after damping (routing_up_hold for a returning one). */
static const char *damped(struct routing *r, const char *name, const char *raw, int64_t *since_r)
{
    int64_t now = monotonic_ms(), wall = wallclock_ms();
    json_t *d = json_object_get(r->damp, name);
    if (d == NULL) {
        d = json_pack("{s:s, s:I, s:I, s:b}", "pub", "DOWN", "since", (json_int_t)wall, "up_since",
                      (json_int_t)0, "ever_up", false);
        json_object_set_new(r->damp, name, d);
    }
    const char *pub = json_string_value(json_object_get(d, "pub"));
    const char *next = pub;
    if (strcmp(raw, "UP") != 0) {
        json_object_set_new(d, "up_since", json_integer(0));
        next = raw;
    } else if (strcmp(pub, "UP") != 0) {
        json_int_t up = json_integer_value(json_object_get(d, "up_since"));
        if (up == 0) {
            json_object_set_new(d, "up_since", json_integer(up = now));
            /* what `wharf routes` shows on this server while the connector is held */
            json_object_set_new(d, "held_until", json_integer(wall + r->t.up_hold));
        }
        if (!json_is_true(json_object_get(d, "ever_up")) || now - up >= r->t.up_hold)
            next = "UP";
    }
    if (strcmp(next, "UP") == 0 || strcmp(raw, "UP") != 0)
        json_object_del(d, "held_until");
    if (strcmp(next, pub) != 0) {
        json_object_set_new(d, "pub", json_string(next));
        json_object_set_new(d, "since", json_integer(wall));
        if (strcmp(next, "UP") == 0)
            json_object_set_new(d, "ever_up", json_true());
    }
    *since_r = json_integer_value(json_object_get(d, "since"));
    return json_string_value(json_object_get(d, "pub"));
}

/* The master's view of its group: members up and the state of each connector sourced here. */
static void originate(struct routing *r, const char *group)
{
    json_t *members = json_array(), *conns = json_array();
    const char *s;
    for (size_t i = 0; (s = org_group_server(r->oc.cfg, group, i)) != NULL; i++) {
        if (member_live(r, s))
            json_array_append_new(members, json_string(s));
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r->oc.cfg, "connectors"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "from")), group) != 0)
            continue;
        const char *raw = "DOWN";
        size_t j, k;
        json_t *src, *tgt;
        json_array_foreach(json_object_get(c, "source"), j, src)
        {
            const char *sn = json_string_value(src);
            if (!org_list_has(members, sn))
                continue;
            if (json_object_get(c, "space"))
                raw = "UP";
            json_array_foreach(json_object_get(c, "target"), k, tgt)
            {
                if (live_between(r, sn, json_string_value(tgt)))
                    raw = "UP";
            }
        }
        if (!json_is_true(json_object_get(c, "enabled")))
            raw = "ADMIN_DOWN";
        int64_t since;
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *st = damped(r, name, raw, &since);
        json_array_append_new(conns, json_pack("{s:s, s:s, s:I}", "name", name, "state", st,
                                               "since", (json_int_t)since));
    }
    json_t *ours = json_object_get(r->records, group);
    bool mine = ours && strcmp(json_string_value(json_object_get(ours, "originator")), r->me) == 0;
    uint32_t term = mine ? route_record_term(ours) : 0;
    if (!mine) { /* a claim: above every term seen in this group */
        term =
            (ours && route_record_term(ours) > r->my_term ? route_record_term(ours) : r->my_term) +
            1;
        r->my_term = term;
        log_info("routing: %s claims the master role of %s, term %lu", r->me, group,
                 (unsigned long)term);
    }
    bool same =
        mine && json_equal(json_object_get(ours, "members"), members) &&
        json_equal(json_object_get(ours, "connectors"), conns) &&
        (uint64_t)json_integer_value(json_object_get(ours, "config_serial")) == r->oc.serial;
    if (same) {
        json_decref(members);
        json_decref(conns);
        return;
    }
    uint64_t seq = r->my_seq;
    if (mine && (uint64_t)json_integer_value(json_object_get(ours, "seq")) > seq)
        seq = (uint64_t)json_integer_value(json_object_get(ours, "seq"));
    r->my_seq = seq + 1;
    json_t *rec =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "group", group, "originator", r->me,
                  "term", (json_int_t)term, "seq", (json_int_t)r->my_seq, "config_serial",
                  (json_int_t)r->oc.serial, "members", members, "connectors", conns);
    /* one log line per connector state change */
    json_array_foreach(conns, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *before = "none";
        size_t j;
        json_t *o;
        json_array_foreach(json_object_get(ours, "connectors"), j, o)
        {
            if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
                before = json_string_value(json_object_get(o, "state"));
        }
        if (strcmp(before, json_string_value(json_object_get(c, "state"))) != 0) {
            r->connector_changes++;
            log_info("routing: connector %s %s (was %s); %s seq %llu", name,
                     json_string_value(json_object_get(c, "state")), before, group,
                     (unsigned long long)r->my_seq);
        }
    }
    install_record(r, rec);
    flood(r, rec, NULL);
    json_decref(rec);
}

/*
 * The master of this server's group: the originator of the group's newest record while it is
 * this server or a live peer, and for routing's hold time after that; then the best-ranked live
 * server of the group. NULL while there is none to follow yet (this server waits for the
 * group's first record, unless it is the first candidate).
 */
static const char *group_master(struct routing *r, const char *group, int64_t now)
{
    const json_t *rec = json_object_get(r->records, group);
    const char *orig = rec ? json_string_value(json_object_get(rec, "originator")) : NULL;
    if (orig && member_live(r, orig)) {
        r->master_seen_ms = now;
        return orig;
    }
    const char *first = org_group_server(r->oc.cfg, group, 0);
    if (orig == NULL && first && strcmp(first, r->me) == 0)
        return r->me;
    if (now - r->master_seen_ms < r->t.hold)
        return orig;
    const char *s;
    for (size_t i = 0; (s = org_group_server(r->oc.cfg, group, i)) != NULL; i++) {
        if (member_live(r, s))
            return s;
    }
    return NULL;
}

/* A member tells its master which peers it has, when that changes. */
static void report(struct routing *r, const char *master)
{
    struct peer *mp = peer_named(r, master, NULL);
    if (!peer_full(mp))
        return;
    json_t *live = json_array();
    for (struct peer *p = r->peers; p; p = p->next) {
        if (peer_full(p))
            json_array_append_new(live, json_string(p->name));
    }
    if (r->last_report && json_equal(live, r->last_report)) {
        json_decref(live);
        return;
    }
    send_json(mp, ROUTING_REPORT, live);
    json_decref(r->last_report);
    r->last_report = live;
}

static void write_state(struct routing *r)
{
    json_t *t = route_table(r->oc.cfg, r->records, r->me);
    char digest[65];
    route_digest(r->oc.cfg ? r->oc.mac : NULL, r->records, digest);
    json_t *peers = json_array();
    for (struct peer *p = r->peers; p; p = p->next) {
        if (peer_full(p))
            json_array_append_new(peers, json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", p->name,
                                                   "addr", p->addr, "direction",
                                                   p->outbound ? "outbound" : "inbound",
                                                   "transport", p->via_smtp ? "smtp" : "691",
                                                   "since", (json_int_t)p->full_wall_ms));
    }
    json_object_set_new(t, "org", org_name(r) ? json_string(org_name(r)) : json_null());
    json_object_set_new(t, "self", json_string(r->me));
    if (r->have_key) {
        /* the mta's key for route ids (doc/routing.md, "Exactly once"): derived, so the
         * org key itself stays in this process */
        static const char label[] = "wharf route id";
        unsigned char md[32];
        unsigned int md_len = sizeof(md);
        char hex[65];
        if (HMAC(EVP_sha256(), r->key, ORG_KEY_LEN, (const unsigned char *)label, sizeof(label) - 1,
                 md, &md_len) != NULL) {
            hex_encode(md, md_len, hex);
            json_object_set_new(t, "route_id_key", json_string(hex));
        }
        OPENSSL_cleanse(md, sizeof(md));
    }
    json_object_set_new(t, "group",
                        r->oc.cfg && org_server_group(r->oc.cfg, r->me)
                            ? json_string(org_server_group(r->oc.cfg, r->me))
                            : json_null());
    json_object_set_new(t, "config_serial", json_integer((json_int_t)r->oc.serial));
    json_object_set_new(t, "digest", json_string(digest));
    json_object_set_new(t, "stale", json_boolean(r->stale));
    json_object_set_new(t, "peers", peers);
    json_object_set(t, "records", r->records);
    /* a returning connector this server holds down (damping): when it will be published UP */
    size_t ci;
    json_t *co;
    json_array_foreach(json_object_get(t, "connectors"), ci, co)
    {
        json_t *d = json_object_get(r->damp, json_string_value(json_object_get(co, "name")));
        json_t *held = d ? json_object_get(d, "held_until") : NULL;
        if (held && json_is_true(json_object_get(d, "ever_up")))
            json_object_set(co, "held_until", held);
    }
    /* one log line per route change */
    json_t *now = json_object();
    size_t i;
    json_t *rt;
    json_array_foreach(json_object_get(t, "routes"), i, rt)
    {
        const char *dest = json_string_value(json_object_get(rt, "dest"));
        char *path = json_dumps(json_object_get(rt, "path"), JSON_COMPACT | JSON_ENCODE_ANY);
        struct buf line = BUF_INIT;
        if (json_is_true(json_object_get(rt, "reachable")))
            buf_printf(&line, "via %s, path %s, cost %lld",
                       json_string_value(json_object_get(rt, "next_hop")), path ? path : "[]",
                       (long long)json_integer_value(json_object_get(rt, "cost")));
        else
            buf_append_cstr(&line, "unreachable");
        free(path);
        const char *before = json_string_value(json_object_get(r->last_routes, dest));
        if (before == NULL || strcmp(before, buf_cstr(&line)) != 0) {
            r->route_changes++;
            log_info("routing: route to %s %s", dest, buf_cstr(&line));
        }
        json_object_set_new(now, dest, json_string(buf_cstr(&line)));
        buf_free(&line);
    }
    json_decref(r->last_routes);
    r->last_routes = now;
    char *text = json_dumps(t, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(t);
    if (r->last_state == NULL || strcmp(text, r->last_state) != 0) {
        char *path = org_path(r->cfg, "state.json");
        if (datadir_write_file(path, text, strlen(text), 0600) != 0)
            log_error("routing: cannot write %s: %m", path);
        free(path);
        free(r->last_state);
        r->last_state = text;
    } else {
        free(text);
    }
}

/* A configuration written by `wharf org` on this server. */
static void check_org_file(struct routing *r)
{
    char *path = org_path(r->cfg, "org.json");
    struct stat st;
    if (stat(path, &st) == 0 &&
        (st.st_mtim.tv_sec != r->org_st.st_mtim.tv_sec ||
         st.st_mtim.tv_nsec != r->org_st.st_mtim.tv_nsec || st.st_ino != r->org_st.st_ino ||
         st.st_size != r->org_st.st_size)) {
        r->org_st = st;
        struct org_config oc;
        struct buf err = BUF_INIT;
        if (!r->have_key)
            r->have_key = org_key_load(r->cfg, r->key, &err);
        if (r->have_key && org_config_load(r->cfg, r->key, &oc, &err)) {
            if (org_config_newer(&oc, &r->oc))
                install_config(r, &oc, NULL, false);
            else
                org_config_free(&oc);
        } else if (err.len) {
            log_warning("routing: %s", buf_cstr(&err));
        }
        buf_free(&err);
    }
    free(path);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct routing *r = arg;
    (void)fd;
    (void)what;
    int64_t now = monotonic_ms();
    if (r->me == NULL) {
        struct buf err = BUF_INIT;
        r->self = org_self_load(r->cfg, &err);
        r->me = r->self ? json_string_value(json_object_get(r->self, "server")) : NULL;
        buf_free(&err);
        if (r->me == NULL)
            return;
    }
    if (!r->have_key) {
        struct buf err = BUF_INIT;
        r->have_key = org_key_load(r->cfg, r->key, &err);
        buf_free(&err);
    }
    check_org_file(r);
    for (struct peer *p = r->peers, *next; p; p = next) {
        next = p->next;
        if (p->closing) {
            if (now - p->opened_ms > 1000)
                routing_peer_free(p, "closed after an error");
        } else if (!p->authed && now - p->opened_ms > r->t.hold) {
            routing_peer_free(p, "no authentication in time");
        } else if (p->authed && now - p->last_rx_ms > r->t.hold) {
            routing_peer_free(p, "dead timer expired");
        } else if (p->authed && r->oc.cfg && !wanted_peer(r->oc.cfg, r->me, p->name) &&
                   json_object_size(p->unacked) == 0 && now - p->full_ms > r->t.retransmit) {
            /* a seed of `wharf org join`: the configuration is across, the peering ends */
            peer_fail(p, NULL, "not a peer of this server in the configuration");
        } else if (p->authed) {
            if (now - p->last_tx_ms >= r->t.keepalive) {
                struct buf f = BUF_INIT;
                routing_put_empty(&f, ROUTING_KEEPALIVE);
                peer_send(p, &f);
                buf_free(&f);
            }
            if (now - p->retx_ms >= r->t.retransmit)
                send_all(p, p->unacked);
        }
    }
    if (r->have_key) {
        routing_smtp_listen(r);
        dial_wanted(r);
    }
    const char *group = r->oc.cfg ? org_server_group(r->oc.cfg, r->me) : NULL;
    const char *master = group ? group_master(r, group, now) : NULL;
    if (master && (r->master_logged == NULL || strcmp(master, r->master_logged) != 0)) {
        log_info("routing: the master of %s is %s", group, master);
        r->master_changes += r->master_logged != NULL; /* the first is no change */
        free(r->master_logged);
        r->master_logged = xstrdup(master);
    }
    r->is_master = master && strcmp(master, r->me) == 0;
    if (r->is_master)
        originate(r, group);
    else if (master)
        report(r, master);
    if (r->have_key)
        write_state(r);
}

static void as_root(void *arg)
{
    struct routing *r = arg;
    struct buf err = BUF_INIT;
    r->server_ctx = net_tls_server_ctx_new(r->cfg, &err);
    if (r->server_ctx == NULL)
        log_fatal(EX_CONFIG, "routing: %s", buf_cstr(&err));
    buf_free(&err);
}

static void on_status(void *arg, json_t *obj)
{
    struct routing *r = arg;
    size_t full = 0, smtp = 0;
    for (struct peer *p = r->peers; p; p = p->next) {
        full += peer_full(p);
        smtp += peer_full(p) && p->via_smtp;
    }
    json_object_set_new(obj, "connections", json_integer((json_int_t)r->n_peers));
    json_object_set_new(obj, "peers_full", json_integer((json_int_t)full));
    json_object_set_new(obj, "peers_smtp", json_integer((json_int_t)smtp));
    json_object_set_new(obj, "records", json_integer((json_int_t)json_object_size(r->records)));
    json_object_set_new(obj, "config_serial", json_integer((json_int_t)r->oc.serial));
    json_object_set_new(obj, "master", json_integer(r->is_master));
    size_t reachable = 0;
    const char *dest;
    json_t *line;
    json_object_foreach(r->last_routes, dest, line)
    {
        reachable += strcmp(json_string_value(line), "unreachable") != 0;
    }
    json_object_set_new(obj, "routes_reachable", json_integer((json_int_t)reachable));
    json_object_set_new(obj, "routes_unreachable",
                        json_integer((json_int_t)(json_object_size(r->last_routes) - reachable)));
    json_object_set_new(obj, "route_changes", json_integer(r->route_changes));
    json_object_set_new(obj, "connector_changes", json_integer(r->connector_changes));
    json_object_set_new(obj, "master_changes", json_integer(r->master_changes));
}

static void load_lsdb(struct routing *r)
{
    char *path = org_path(r->cfg, "lsdb.json");
    json_t *db = json_load_file(path, 0, NULL);
    free(path);
    const char *g;
    json_t *rec;
    json_object_foreach(db, g, rec)
    {
        struct buf err = BUF_INIT;
        if (route_record_valid(rec, &err) &&
            strcmp(json_string_value(json_object_get(rec, "group")), g) == 0) {
            json_object_set(r->records, g, rec);
            if (r->me &&
                strcmp(json_string_value(json_object_get(rec, "originator")), r->me) == 0) {
                r->my_seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
                r->my_term = route_record_term(rec);
            }
        }
        buf_free(&err);
    }
    json_decref(db);
    r->stale = json_object_size(r->records) > 0;
    lsdb_prune(r);
}

static int routing_main(struct component_ctx *ctx)
{
    struct routing r = {.cfg = ctx->cfg};
    r.t = ctx->cfg->routing_test_timers ? timers_test : timers_normal;
    r.t.up_hold = ctx->cfg->routing_up_hold;
    r.records = json_object();
    r.dialled = json_object();
    r.damp = json_object();
    r.master_seen_ms = monotonic_ms(); /* a restarted server gives its master time to appear */
    const struct component_hooks hooks = {.as_root = as_root, .status = on_status, .arg = &r};
    r.loop = component_loop_start(ctx, &hooks);
    r.base = r.loop->base;
    struct buf err = BUF_INIT;
    r.client_ctx = net_tls_client_ctx_new(NULL, &err);
    if (r.client_ctx == NULL)
        log_fatal(EX_SOFTWARE, "routing: %s", buf_cstr(&err));
    unsigned max_conns = 0, per_ip = 0;
    component_connection_limits(ctx, "routing", &max_conns, &per_ip);
    r.max_conns = max_conns ? max_conns : 64;
    r.per_ip = per_ip;
    r.have_key = org_key_load(r.cfg, r.key, &err);
    r.self = org_self_load(r.cfg, &err);
    r.me = r.self ? json_string_value(json_object_get(r.self, "server")) : NULL;
    if (r.have_key) {
        buf_reset(&err);
        char *path = org_path(r.cfg, "org.json");
        stat(path, &r.org_st);
        free(path);
        if (!org_config_load(r.cfg, r.key, &r.oc, &err) && err.len)
            log_warning("routing: %s", buf_cstr(&err));
        load_lsdb(&r);
        log_info("routing: server %s of organization %s, configuration serial %llu, %zu records",
                 r.me ? r.me : "?", org_name(&r) ? org_name(&r) : "?",
                 (unsigned long long)r.oc.serial, json_object_size(r.records));
    } else {
        log_info("routing: not part of an organization yet (wharf org create or join)");
    }
    buf_free(&err);
    int fd = component_listener_fd(ctx, "routing");
    if (fd >= 0) {
        r.listener = evconnlistener_new(r.base, on_accept, &r, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        listen_source(fd, r.source, sizeof(r.source));
    }
    r.tick = event_new(r.base, -1, EV_PERSIST, on_tick, &r);
    struct timeval tv = {r.t.tick / 1000, (r.t.tick % 1000) * 1000};
    event_add(r.tick, &tv);
    int rc = component_loop_run(r.loop);
    event_free(r.tick);
    if (r.listener)
        evconnlistener_free(r.listener);
    routing_smtp_close(&r);
    while (r.peers)
        routing_peer_free(r.peers, "shutting down");
    SSL_CTX_free(r.server_ctx);
    SSL_CTX_free(r.client_ctx);
    org_config_free(&r.oc);
    json_decref(r.records);
    json_decref(r.dialled);
    json_decref(r.damp);
    json_decref(r.self);
    json_decref(r.last_report);
    json_decref(r.last_routes);
    free(r.last_state);
    free(r.master_logged);
    component_loop_free(r.loop);
    return rc;
}

const struct component_def routing_component = {
    .name = "routing",
    .exchange_name = "Routing Engine",
    .kind = COMPONENT_SINGLETON,
    .main = routing_main,
    .job = "link-state routing between the servers of an organization",
};
