/*
 * net_proxy.c - the front-end proxy kit: TLS to the home server, the
 * hand-over's MAC on both sides, and the splice (see net_proxy.h).
 *
 * Everything runs on the worker's event loop: one bufferevent_openssl to the
 * back-end per session, the client's own connection on the other side, no
 * thread and no buffer of our own. Flow control both ways: the client is
 * paused while the back-end's output is above PROXY_HIGH_WATER, the back-end
 * is not read while the client's output is blocked (net_conn_output_blocked).
 * A local back-end (net_proxy_connect_local) is a unix socket in clear.
 *
 * Parking (net_tls_park.h, tls_park_idle): a TLS 1.3 connection to a back-end
 * that has been quiet that long with nothing pending either way, spliced or
 * carrying HTTP, gives its SSL and bufferevent_openssl back and goes on over a
 * plain socket bufferevent: what the back-end sends is opened into pin, what
 * we send is sealed (proxy_send). The hand-over's exporter comes from the
 * parked state then. A parked connection with nothing pending is asleep: no
 * bufferevent and no pin, only one read event on the socket (in the slab),
 * until the first byte either way makes them again (proxy_wake); the
 * worker's park timer sweeps the worker's proxies (net_proxy_park_sweep) as
 * it sweeps its connections, parking and putting back to sleep.
 * Must never: pass a byte to the back-end before the splice other than the
 * protocol's own hand-over lines, or name a back-end the caller did not.
 */
#include "net/net_proxy.h"
#include "net/dns.h"
#include "net/net_internal.h"
#include "net/net_pump.h"
#include "net/net_tls_client.h"
#include "net/net_tls_park.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/slab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Bytes queued towards the back-end before the client is paused. */
#define PROXY_HIGH_WATER (256 * 1024)
/* Longest line a back-end may send before the splice (its greeting, the hand-over reply). */
#define PROXY_MAX_LINE 8192

#define PROXY_LABEL "EXPORTER-wharf-proxy"
#define PROXY_MAC_CONTEXT "wharf-proxy v1"

struct net_proxy {
    struct net_worker *worker;
    struct net_conn *client; /* NULL: a pooled connection (net_proxy_open) */
    const struct wharf_config *cfg;
    struct bufferevent *bev;
    const struct net_proxy_ops *ops;
    void *arg;
    char *peer; /* "host:port" (or a socket's name), for logs; in the slab, its own length */
    char *host; /* the home server as given (SNI, the lookup), NULL for a local socket */
    unsigned port;
    /* A home server named by host name: its lookup in flight (the DNS kit's). */
    struct dns_addr *lookup;
    struct event *timer; /* frontend_connect_timeout over the lookup */
    bool spliced, client_paused, failed;
    bool timed_out; /* failed by its read timeout (net_proxy_timed_out) */
    bool local;     /* net_proxy_connect_local: a unix socket, no TLS */
    int in_cb;      /* inside a callback of the caller's: net_proxy_free only marks */
    bool doomed;    /* net_proxy_free was called inside one */
    const char *gone_line;
    /* TLS: the socket and the SSL are ours (the bufferevents own neither), so
     * that parking can change the bufferevent under them. */
    evutil_socket_t fd;
    SSL *ssl;                  /* NULL once parked */
    struct net_tls_park *park; /* watching the handshake; the record state once parked */
    struct evbuffer *pin;      /* parked and awake: what the back-end's records opened to */
    struct event *wake;        /* asleep: the socket's read event (and read timeout) */
    bool parked, asleep;
    bool park_closed;              /* parked and ended by close_notify, an alert or a bad record */
    int64_t io_ms;                 /* CLOCK_MONOTONIC: bytes last moved */
    int64_t timeout_ms;            /* the read timeout set (net_proxy_set_timeout), 0: none */
    struct net_pump *pump;         /* spliced over TLS and not parked: proxy_pump_start */
    struct net_proxy *prev, *next; /* the worker's proxies (net_worker_proxies) */
};

static bool proxy_pumping(const struct net_proxy *p)
{
    return p->pump != NULL && net_pump_started(p->pump);
}

bool net_proxy_home_is_here(const struct wharf_config *cfg, const char *home)
{
    if (home == NULL || home[0] == '\0')
        return true;
    for (size_t i = 0; i < cfg->home_server_names.n; i++) {
        if (strcasecmp(cfg->home_server_names.v[i], home) == 0)
            return true;
    }
    return false;
}

int net_proxy_check_config(const struct wharf_config *cfg, struct buf *err)
{
    unsigned char ip[16];
    const char *src = cfg->frontend_source_address;
    if (net_addr_check_networks(cfg, err) != 0)
        return -1;
    if (strcmp(cfg->role, "mailbox") != 0 && strcmp(cfg->role, "frontend") != 0)
        buf_printf(err, "role must be mailbox or frontend, not \"%s\"", cfg->role);
    else if ((strcmp(cfg->role, "frontend") == 0 || cfg->frontend_secret[0] != '\0') &&
             strlen(cfg->frontend_secret) < NET_PROXY_MIN_SECRET)
        buf_printf(err, "frontend_secret must have at least %d characters (openssl rand -hex 32)",
                   NET_PROXY_MIN_SECRET);
    else if (src[0] != '\0' && inet_pton(AF_INET, src, ip) != 1 &&
             inet_pton(AF_INET6, src, ip) != 1)
        buf_printf(err, "frontend_source_address %s is not an IP address", src);
    else
        return 0;
    return -1;
}

bool net_proxy_one_word(const char *account)
{
    for (const unsigned char *p = (const unsigned char *)account; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    }
    return account[0] != '\0';
}

bool net_proxy_is_frontend(const struct wharf_config *cfg)
{
    return strcmp(cfg->role, "frontend") == 0;
}

bool net_proxy_wanted(const struct wharf_config *cfg, const char *home)
{
    return !net_proxy_home_is_here(cfg, home) &&
           (net_proxy_is_frontend(cfg) || cfg->frontend_secret[0] != '\0');
}

/* HMAC-SHA256 of the hand-over on the channel whose exporter is ekm into mac (32 bytes). */
static bool handover_mac(const struct wharf_config *cfg, const unsigned char ekm[32],
                         const char *proto, const char *account, const char *client_addr,
                         unsigned char mac[32])
{
    size_t klen = strlen(cfg->frontend_secret);
    if (klen < NET_PROXY_MIN_SECRET)
        return false;
    struct buf msg = BUF_INIT;
    buf_append(&msg, PROXY_MAC_CONTEXT, sizeof(PROXY_MAC_CONTEXT)); /* with its NUL */
    buf_append(&msg, proto, strlen(proto) + 1);
    buf_append(&msg, account, strlen(account) + 1);
    buf_append(&msg, client_addr, strlen(client_addr) + 1);
    buf_append(&msg, ekm, 32);
    unsigned int len = 32;
    bool ok = HMAC(EVP_sha256(), cfg->frontend_secret, (int)klen, (unsigned char *)msg.data,
                   msg.len, mac, &len) != NULL &&
              len == 32;
    buf_free(&msg);
    return ok;
}

bool net_proxy_handover_mac(struct net_proxy *p, const char *proto, const char *account,
                            const char *client_addr, char out[NET_PROXY_MAC_HEX + 1])
{
    unsigned char ekm[32], mac[32];
    bool have = p->parked ? net_tls_park_export(p->park, PROXY_LABEL, ekm, sizeof(ekm))
                          : p->ssl != NULL &&
                                SSL_export_keying_material(p->ssl, ekm, sizeof(ekm), PROXY_LABEL,
                                                           strlen(PROXY_LABEL), NULL, 0, 0) == 1;
    if (!have || !handover_mac(p->cfg, ekm, proto, account, client_addr, mac))
        return false;
    hex_encode(mac, sizeof(mac), out);
    return true;
}

bool net_proxy_handover_check(struct net_conn *c, const char *proto, const char *account,
                              const char *client_addr, const char *mac_hex, struct buf *why)
{
    const struct wharf_config *cfg = net_worker_config(net_conn_worker(c));
    const char *peer = net_conn_peer_addr(c);
    if (strlen(cfg->frontend_secret) < NET_PROXY_MIN_SECRET) {
        buf_printf(why, "no frontend_secret (of at least %d characters) is configured",
                   NET_PROXY_MIN_SECRET);
        return false;
    }
    if (!net_addr_frontend(cfg, peer)) {
        buf_printf(why, "%s is not in frontend_networks", peer);
        return false;
    }
    if (!net_conn_is_tls(c)) {
        buf_printf(why, "not over TLS");
        return false;
    }
    unsigned char want[32], got[32], ekm[32];
    if (!hex_decode(mac_hex, got, sizeof(got))) {
        buf_printf(why, "malformed MAC");
        return false;
    }
    if (!net_conn_export(c, PROXY_LABEL, ekm, sizeof(ekm)) ||
        !handover_mac(cfg, ekm, proto, account, client_addr, want)) {
        buf_printf(why, "cannot compute the MAC on this connection");
        return false;
    }
    if (CRYPTO_memcmp(want, got, sizeof(want)) != 0) {
        buf_printf(why, "wrong MAC (another secret, or a hand-over made for another connection)");
        return false;
    }
    if (!net_conn_set_client(c, client_addr)) {
        buf_printf(why, "the client address is not an IP address");
        return false;
    }
    return true;
}

/* A string kept as long as the proxy, in the slab at its own length (not a
 * fixed array of the longest host name: a parked session keeps it for hours). */
static char *proxy_strdup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *proxy_strdup(const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *s = memcpy(slab_malloc(b.len + 1), buf_cstr(&b), b.len + 1);
    buf_free(&b);
    return s;
}

static void proxy_unlink(struct net_proxy *p)
{
    struct net_proxy **head = net_worker_proxies(p->worker);
    if (p->prev)
        p->prev->next = p->next;
    else if (*head == p)
        *head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* The pump's events and buffers go (parking, the end): the SSL and the socket stay. */
static void proxy_pump_drop(struct net_proxy *p)
{
    net_pump_free(p->pump);
    p->pump = NULL;
}

static void proxy_destroy(struct net_proxy *p)
{
    dns_addr_cancel(p->lookup);
    if (p->timer)
        event_free(p->timer);
    if (p->worker)
        proxy_unlink(p);
    if (p->parked && !p->park_closed && p->fd >= 0) {
        /* A clean end for the back-end (close_notify), best effort as SSL_shutdown's. */
        if (!net_tls_park_close_notify_now(p->park, p->fd))
            log_debug("proxy: close_notify to %s not sent", p->peer);
    }
    if (p->bev)
        bufferevent_free(p->bev);
    if (p->wake)
        event_free(p->wake);
    proxy_pump_drop(p);
    SSL_free(p->ssl);
    net_tls_park_free(p->park);
    if (p->pin)
        evbuffer_free(p->pin);
    if (p->fd >= 0)
        close(p->fd);
    slab_free(p->peer);
    slab_free(p->host);
    slab_free(p);
}

static void proxy_read_cb(struct bufferevent *bev, void *arg);
static void proxy_write_cb(struct bufferevent *bev, void *arg);
static void proxy_event_cb(struct bufferevent *bev, short what, void *arg);

/* A parked connection's bufferevent made (again): what is left of the read timeout. */
static void proxy_parked_bev(struct net_proxy *p, int64_t now, bool reading)
{
    p->bev = bufferevent_socket_new(net_worker_base(p->worker), p->fd, BEV_OPT_DEFER_CALLBACKS);
    bufferevent_setcb(p->bev, proxy_read_cb, proxy_write_cb, proxy_event_cb, p);
    if (p->spliced)
        bufferevent_setwatermark(p->bev, EV_WRITE, PROXY_HIGH_WATER / 2, 0);
    if (p->timeout_ms > 0) { /* a kept HTTP connection: what is left of its idle time */
        int64_t left = p->timeout_ms - (now - p->io_ms);
        struct timeval tv = clock_timeval_ms(left > 1 ? left : 1);
        bufferevent_set_timeouts(p->bev, &tv, NULL);
    }
    bufferevent_enable(p->bev, reading ? EV_READ | EV_WRITE : EV_WRITE);
}

/* Asleep: the bufferevent and pin made again (from malloc: they go at the next sleep). */
static void proxy_wake(struct net_proxy *p)
{
    if (!p->asleep)
        return;
    p->asleep = false;
    event_del(p->wake);
    p->pin = evbuffer_new();
    proxy_parked_bev(p, monotonic_ms(), true);
}

static void proxy_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_proxy *p = arg;
    (void)fd;
    proxy_wake(p); /* EV_READ: the bufferevent reads the records on the loop's next turn */
    if (what & EV_TIMEOUT)
        proxy_event_cb(p->bev, BEV_EVENT_TIMEOUT | BEV_EVENT_READING, p);
}

/* A parked connection, reading, with nothing pending: one read event instead
 * of the bufferevent and pin. Only from the loop's sweep. */
static void proxy_sleep(struct net_proxy *p)
{
    if (p->bev)
        bufferevent_free(p->bev); /* a socket bufferevent that does not own the socket */
    p->bev = NULL;
    if (p->pin)
        evbuffer_free(p->pin);
    p->pin = NULL;
    p->asleep = true;
    net_slab_sleep_arm(&p->wake, net_worker_base(p->worker), p->fd, proxy_wake_cb, p, p->timeout_ms,
                       p->io_ms);
}

/* What the back-end sent, in plaintext: the bufferevent's input, or what its
 * records opened to once parked. */
static struct evbuffer *proxy_in(struct net_proxy *p)
{
    proxy_wake(p);
    return p->pin ? p->pin : bufferevent_get_input(p->bev);
}

/* A seal failed (which only an allocation failure can do): the socket is shut,
 * so that the loop reports the back-end gone, never a byte unsealed. */
static void proxy_seal_failed(struct net_proxy *p)
{
    log_warning("proxy: cannot seal a TLS record to %s; closing", p->peer);
    p->park_closed = true;
    shutdown(p->fd, SHUT_RDWR);
}

/* Moves src's bytes to the back-end (sealed into records once parked). */
static void proxy_send_buffer(struct net_proxy *p, struct evbuffer *src)
{
    proxy_wake(p);
    struct evbuffer *out = bufferevent_get_output(p->bev);
    p->io_ms = monotonic_ms();
    if (p->pin == NULL) {
        evbuffer_add_buffer(out, src);
        return;
    }
    while (evbuffer_get_length(src) > 0) {
        size_t n = evbuffer_get_length(src);
        if (n > NET_TLS_PARK_MAX_PLAIN)
            n = NET_TLS_PARK_MAX_PLAIN;
        if (p->park_closed ||
            !net_tls_park_seal(p->park, evbuffer_pullup(src, (ev_ssize_t)n), n, out)) {
            evbuffer_drain(src, evbuffer_get_length(src));
            if (!p->park_closed)
                proxy_seal_failed(p);
            return;
        }
        evbuffer_drain(src, n);
    }
}

static void proxy_send(struct net_proxy *p, const void *data, size_t len)
{
    proxy_wake(p);
    if (p->pin == NULL) {
        p->io_ms = monotonic_ms();
        bufferevent_write(p->bev, data, len);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, len);
    proxy_send_buffer(p, b);
    evbuffer_free(b);
}

static void proxy_quiet(struct net_proxy *p)
{
    if (p->bev)
        bufferevent_disable(p->bev, EV_READ | EV_WRITE);
    if (p->wake)
        event_del(p->wake);
    if (p->pump)
        net_pump_stop(p->pump);
    if (p->timer)
        evtimer_del(p->timer);
    dns_addr_cancel(p->lookup);
    p->lookup = NULL;
}

/* Before the splice: reports once, and stops every further callback. */
static void proxy_fail(struct net_proxy *p, const char *why)
{
    if (p->failed)
        return;
    p->failed = true;
    proxy_quiet(p);
    p->ops->failed(p->arg, why); /* may net_proxy_free(p): then doomed */
}

static void proxy_read(struct net_proxy *p, struct bufferevent *bev);
static void proxy_event(struct net_proxy *p, struct bufferevent *bev, short what);
static void proxy_pump_start(struct net_proxy *p);
static void proxy_pump_gone(void *arg, bool clean);

/* Also from proxy_wake_cb and proxy_park_maybe, not only from bufferevents. */
static void proxy_read_cb(struct bufferevent *bev, void *arg)
{
    struct net_proxy *p = arg;
    p->in_cb++;
    proxy_read(p, bev);
    if (--p->in_cb == 0 && p->doomed)
        proxy_destroy(p);
}

static void proxy_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct net_proxy *p = arg;
    p->in_cb++;
    proxy_event(p, bev, what);
    if (--p->in_cb == 0 && p->doomed)
        proxy_destroy(p);
}

static void proxy_read_plain(struct net_proxy *p, struct bufferevent *bev);

static void proxy_read(struct net_proxy *p, struct bufferevent *bev)
{
    p->io_ms = monotonic_ms();
    if (p->pin == NULL || p->park_closed) {
        if (p->pin == NULL)
            proxy_read_plain(p, bev);
        return;
    }
    /* Parked: open the records, pass on what they held, then any end they said. */
    const char *err = NULL;
    enum net_tls_park_result r = net_tls_park_open(p->park, bufferevent_get_input(bev), p->pin,
                                                   SIZE_MAX, bufferevent_get_output(bev), &err);
    if (r != NET_TLS_PARK_OK) {
        p->park_closed = true;
        if (r == NET_TLS_PARK_ERROR)
            log_warning("proxy: TLS record error from %s: %s", p->peer, err);
    }
    if (evbuffer_get_length(p->pin) > 0)
        proxy_read_plain(p, bev);
    if (r != NET_TLS_PARK_OK && !p->doomed && !p->failed)
        proxy_event(p, bev,
                    BEV_EVENT_READING |
                        (r == NET_TLS_PARK_CLOSE ? BEV_EVENT_EOF : BEV_EVENT_ERROR));
}

static void proxy_read_plain(struct net_proxy *p, struct bufferevent *bev)
{
    struct evbuffer *in = proxy_in(p);
    if (p->spliced) {
        net_conn_write_buffer(p->client, in);
        if (net_conn_output_blocked(p->client))
            bufferevent_disable(bev, EV_READ); /* until the client reads (writable) */
        return;
    }
    if (p->ops->data != NULL) {
        if (!p->failed)
            p->ops->data(p->arg, in); /* may free p (then doomed) */
        return;
    }
    while (!p->failed && !p->spliced && !p->doomed) {
        size_t n;
        char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
        if (line == NULL) {
            if (evbuffer_get_length(in) > PROXY_MAX_LINE)
                proxy_fail(p, "the back-end sent a line too long");
            return;
        }
        if (n > PROXY_MAX_LINE || memchr(line, '\0', n) != NULL) {
            free(line);
            proxy_fail(p, "the back-end sent a malformed line");
            return;
        }
        p->ops->line(p->arg, line); /* may splice, or free p (then doomed) */
        free(line);
        if (p->doomed)
            return;
    }
}

static void proxy_write_cb(struct bufferevent *bev, void *arg)
{
    struct net_proxy *p = arg;
    p->io_ms = monotonic_ms();
    if (p->spliced && p->client_paused) {
        p->client_paused = false;
        net_conn_resume(p->client);
    }
    /* The splice's output sent: the pump may take over now (proxy_pump_take). */
    if (p->spliced && p->pump != NULL && !net_pump_started(p->pump) &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        net_pump_kick(p->pump);
    if (!p->spliced && p->ops->drained != NULL && !p->failed && !p->doomed) {
        p->in_cb++;
        p->ops->drained(p->arg); /* may free p (then doomed) */
        if (--p->in_cb == 0 && p->doomed)
            proxy_destroy(p);
    }
}

static void proxy_event(struct net_proxy *p, struct bufferevent *bev, short what)
{
    if ((what & BEV_EVENT_CONNECTED) && p->local) {
        bufferevent_set_timeouts(p->bev, NULL, NULL);
        p->ops->connected(p->arg); /* may splice, or free p (then doomed) */
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        struct buf why = BUF_INIT;
        enum net_tls_verify v =
            p->cfg->frontend_tls_verify ? NET_TLS_VERIFY_NAME : NET_TLS_VERIFY_NONE;
        if (!net_tls_client_check(p->ssl, v, &why)) {
            proxy_fail(p, buf_cstr(&why));
            buf_free(&why);
            return;
        }
        buf_free(&why);
        if (p->ops->connected != NULL)
            p->ops->connected(p->arg); /* may free p (then doomed) */
        return;
    }
    if (p->parked && !p->park_closed && (what & BEV_EVENT_EOF))
        what |= BEV_EVENT_ERROR; /* parked: the socket ended without close_notify */
    if (!p->spliced) {
        char why[256];
        unsigned long e = p->parked ? 0 : bufferevent_get_openssl_error(bev);
        /* NULL for what is not OpenSSL's own error (a refused connect comes as
         * SSL_ERROR_SYSCALL): then errno says it */
        const char *tls_why = e != 0 ? ERR_reason_error_string(e) : NULL;
        if (what & BEV_EVENT_TIMEOUT) {
            p->timed_out = true;
            snprintf(why, sizeof(why), "timed out (frontend_connect_timeout)");
        } else if (tls_why != NULL)
            snprintf(why, sizeof(why), "TLS: %s", tls_why);
        else if (what & BEV_EVENT_EOF)
            snprintf(why, sizeof(why), "closed the connection");
        else
            snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        proxy_fail(p, why);
        return;
    }
    /* Spliced: the back-end is gone; the client gets what it sent, then the end. */
    net_conn_write_buffer(p->client, proxy_in(p));
    bool clean = (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR);
    if (!clean && p->gone_line != NULL) {
        log_warning("proxy: back-end %s went away under user session of %s", p->peer,
                    net_conn_addr(p->client));
        net_conn_write(p->client, p->gone_line, strlen(p->gone_line));
    }
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    net_conn_close(p->client, true);
}

/*
 * The pump (net_pump.h): once spliced over TLS (not parked), the SSL and the
 * socket are driven without the bufferevent_openssl that carried the
 * hand-over. What the back-end sends goes to the client's output as it came
 * (its chains moved, not copied); the back-end is not read while the
 * client's output is blocked (net_proxy_client_writable reads on).
 */
static void proxy_pump_readable(void *arg, struct evbuffer *in)
{
    struct net_proxy *p = arg;
    p->io_ms = monotonic_ms();
    net_conn_write_buffer(p->client, in);
    if (!p->doomed && net_conn_output_blocked(p->client))
        net_pump_read(p->pump, false); /* until the client reads (writable) */
}

/* The back-end took what had blocked: the client may send again. */
static void proxy_pump_drained(void *arg)
{
    struct net_proxy *p = arg;
    p->io_ms = monotonic_ms();
    if (p->client_paused) {
        p->client_paused = false;
        net_conn_resume(p->client);
    }
}

/* The back-end is gone: the client gets what it sent, gone_line if it did
 * not end with a close_notify, then the end (as proxy_event, spliced). */
static void proxy_pump_gone(void *arg, bool clean)
{
    struct net_proxy *p = arg;
    net_pump_stop(p->pump);
    p->failed = true; /* no more pumping; the session's close frees p */
    if (!clean && p->gone_line != NULL) {
        log_warning("proxy: back-end %s went away under user session of %s", p->peer,
                    net_conn_addr(p->client));
        net_conn_write(p->client, p->gone_line, strlen(p->gone_line));
    }
    net_conn_close(p->client, true);
}

static const struct net_pump_ops proxy_pump_ops = {
    .readable = proxy_pump_readable,
    .drained = proxy_pump_drained,
    .gone = proxy_pump_gone,
};

/* The splice's SSL and socket leave the bufferevent for the pump, once what
 * it holds is passed on (its output sent, its input given to the client). */
static bool proxy_pump_take(struct net_proxy *p)
{
    if (proxy_pumping(p) || !p->spliced || p->ssl == NULL || p->bev == NULL || p->parked ||
        p->failed || p->doomed || evbuffer_get_length(bufferevent_get_output(p->bev)) != 0)
        return false;
    net_conn_write_buffer(p->client, bufferevent_get_input(p->bev));
    if (p->doomed)
        return false;
    bool reading = (bufferevent_get_enabled(p->bev) & EV_READ) != 0;
    bufferevent_free(p->bev); /* keeps the socket and the SSL (no BEV_OPT_CLOSE_ON_FREE) */
    p->bev = NULL;
    net_pump_start(p->pump);
    net_pump_read(p->pump, reading && !net_conn_output_blocked(p->client));
    return true;
}

static void proxy_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_proxy *p = arg;
    (void)fd;
    p->in_cb++;
    if (!proxy_pumping(p) && proxy_pump_take(p))
        what |= EV_READ; /* OpenSSL may hold records already */
    if (proxy_pumping(p) && !p->failed && !p->doomed)
        net_pump_run(p->pump, what, &proxy_pump_ops, p);
    if (--p->in_cb == 0 && p->doomed)
        proxy_destroy(p);
}

/* At the splice: the pump's events, and its start from the loop (not under
 * the bufferevent callback that may be splicing). */
static void proxy_pump_start(struct net_proxy *p)
{
    if (p->local || p->parked || p->ssl == NULL || p->pump != NULL)
        return;
    p->pump = net_pump_new(net_worker_base(p->worker), p->fd, p->ssl, proxy_pump_cb, p);
    net_pump_kick(p->pump);
}

/* frontend_source_address: where the back-ends' frontend_networks expect us. */
static bool bind_source(const struct wharf_config *cfg, evutil_socket_t fd, int family,
                        struct buf *why)
{
    const char *src = cfg->frontend_source_address;
    if (src[0] == '\0')
        return true;
    int r = net_addr_bind_source(fd, family, &src, 1, why);
    if (r == 0)
        buf_printf(why, "frontend_source_address %s is not an address of the home server's family",
                   src);
    return r > 0;
}

/* Connects p to its home server's address ss: false with the reason in why. */
static bool proxy_start(struct net_proxy *p, const struct sockaddr *sa, socklen_t len,
                        struct buf *why)
{
    struct net_worker *w = p->worker;
    const struct wharf_config *cfg = p->cfg;
    struct net_tls_client_peer peer = {
        .name = p->host, /* SNI and the certificate's name (or IP address) */
        .verify = cfg->frontend_tls_verify ? NET_TLS_VERIFY_NAME : NET_TLS_VERIFY_NONE,
    };
    p->ssl = net_tls_client_ssl_new(net_worker_proxy_tls(w), &peer, why);
    if (p->ssl == NULL)
        return false;
    if (cfg->tls_park_idle > 0)
        p->park = net_tls_park_attach(p->ssl);
    evutil_socket_t fd = p->fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (fd < 0 || evutil_make_socket_nonblocking(fd) != 0 ||
        evutil_make_socket_closeonexec(fd) != 0 || !bind_source(cfg, fd, sa->sa_family, why)) {
        if (why->len == 0)
            buf_printf(why, "socket: %s", strerror(errno));
        return false; /* the caller frees p, the socket and the SSL with it */
    }
    /* As on accepted sockets (net_worker.c): each command's bytes go at once, never held for
     * an ACK (Nagle), which a relay of small request-reply exchanges would meet at every hop. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    net_slab_fd_record(net_worker_base(w), fd); /* libevent's record of it in the slab */
    /* Not BEV_OPT_CLOSE_ON_FREE: the socket and the SSL outlive it when parked. */
    p->bev = bufferevent_openssl_socket_new(net_worker_base(w), fd, p->ssl,
                                            BUFFEREVENT_SSL_CONNECTING, BEV_OPT_DEFER_CALLBACKS);
    bufferevent_setcb(p->bev, proxy_read_cb, proxy_write_cb, proxy_event_cb, p);
    struct timeval tv = clock_timeval_ms(cfg->frontend_connect_timeout);
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    /* An immediate refusal comes back through proxy_event_cb, from the loop. */
    if (bufferevent_socket_connect(p->bev, sa, (int)len) != 0) {
        buf_printf(why, "cannot connect to %s", p->peer);
        return false;
    }
    return true;
}

/* The home server's address (or why there is none): the connection, or the client told. */
static void proxy_resolved(void *arg, const struct sockaddr *sa, socklen_t len, const char *why)
{
    struct net_proxy *p = arg;
    p->lookup = NULL;
    p->in_cb++;
    struct buf err = BUF_INIT;
    if (len > 0 && p->timer)
        evtimer_del(p->timer);
    if (len == 0)
        proxy_fail(p, why);
    else if (!proxy_start(p, sa, len, &err))
        proxy_fail(p, buf_cstr(&err));
    buf_free(&err);
    if (--p->in_cb == 0 && p->doomed)
        proxy_destroy(p);
}

static void proxy_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct net_proxy *p = arg;
    p->in_cb++;
    proxy_fail(p, "timed out looking up the home server (frontend_connect_timeout)");
    if (--p->in_cb == 0 && p->doomed)
        proxy_destroy(p);
}

static struct net_proxy *proxy_connect(struct net_worker *w, struct net_conn *client,
                                       const char *host, unsigned port,
                                       const struct net_proxy_ops *ops, void *arg, struct buf *why)
{
    const struct wharf_config *cfg = net_worker_config(w);
    if (net_worker_proxy_tls(w) == NULL) {
        buf_printf(why, "no TLS context for the back-ends (see the log at start)");
        return NULL;
    }
    if (strlen(cfg->frontend_secret) < NET_PROXY_MIN_SECRET) {
        buf_printf(why, "no frontend_secret of at least %d characters", NET_PROXY_MIN_SECRET);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len = dns_addr_literal(host, port, &ss);
    if (len == 0 && !dns_host_name_ok(host)) {
        buf_printf(why, "home server \"%s\" is neither an IP address nor a host name", host);
        return NULL;
    }
    struct net_proxy *p = slab_calloc(1, sizeof(*p)); /* kept while quiet: base/slab.h */
    p->worker = w;
    p->client = client;
    p->cfg = cfg;
    p->ops = ops;
    p->arg = arg;
    p->port = port;
    p->host = proxy_strdup("%s", host);
    p->peer = proxy_strdup(ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    p->fd = -1;
    p->io_ms = monotonic_ms();
    struct net_proxy **head = net_worker_proxies(w);
    if ((p->next = *head) != NULL)
        p->next->prev = p;
    *head = p;
    if (len > 0) {
        if (!proxy_start(p, (const struct sockaddr *)&ss, len, why)) {
            net_proxy_free(p);
            return NULL;
        }
        return p;
    }
    /* A host name: resolved on the loop (the DNS kit), never blocking it. */
    struct dns_resolver *dns = net_worker_proxy_dns(w, why);
    if (dns != NULL)
        p->lookup = dns_addr_lookup(dns, host, port, proxy_resolved, p, why);
    if (p->lookup == NULL) {
        net_proxy_free(p);
        return NULL;
    }
    p->timer = evtimer_new(net_worker_base(w), proxy_timer_cb, p);
    struct timeval tv = clock_timeval_ms(cfg->frontend_connect_timeout);
    evtimer_add(p->timer, &tv);
    return p;
}

struct net_proxy *net_proxy_connect_local(struct net_conn *client, const char *path,
                                          const struct net_proxy_ops *ops, void *arg,
                                          struct buf *why)
{
    struct net_worker *w = net_conn_worker(client);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        buf_printf(why, "%s: path too long for a unix socket", path);
        return NULL;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    struct net_proxy *p = slab_calloc(1, sizeof(*p));
    p->client = client;
    p->cfg = net_worker_config(w);
    p->ops = ops;
    p->arg = arg;
    p->fd = -1;
    p->local = true;
    p->peer = proxy_strdup("%s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    p->bev = bufferevent_socket_new(net_worker_base(w), -1,
                                    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    bufferevent_setcb(p->bev, proxy_read_cb, proxy_write_cb, proxy_event_cb, p);
    struct timeval tv = clock_timeval_ms(p->cfg->frontend_connect_timeout);
    bufferevent_set_timeouts(p->bev, &tv, &tv);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&sun, (int)sizeof(sun)) != 0) {
        buf_printf(why, "cannot connect to %s: %s", path, strerror(errno));
        net_proxy_free(p);
        return NULL;
    }
    return p;
}

struct net_proxy *net_proxy_connect(struct net_conn *client, const char *host, unsigned port,
                                    const struct net_proxy_ops *ops, void *arg, struct buf *why)
{
    return proxy_connect(net_conn_worker(client), client, host, port, ops, arg, why);
}

struct net_proxy *net_proxy_open(struct net_worker *w, const char *host, unsigned port,
                                 const struct net_proxy_ops *ops, void *arg, struct buf *why)
{
    return proxy_connect(w, NULL, host, port, ops, arg, why);
}

void net_proxy_set_arg(struct net_proxy *p, void *arg)
{
    p->arg = arg;
}

struct evbuffer *net_proxy_input(struct net_proxy *p)
{
    return proxy_in(p);
}

void net_proxy_attach(struct net_proxy *p, struct net_conn *client)
{
    p->client = client;
}

void net_proxy_write(struct net_proxy *p, const void *data, size_t len)
{
    proxy_send(p, data, len);
}

size_t net_proxy_output_length(struct net_proxy *p)
{
    if (proxy_pumping(p))
        return net_pump_pending(p->pump);
    return p->bev != NULL ? evbuffer_get_length(bufferevent_get_output(p->bev)) : 0;
}

void net_proxy_pause(struct net_proxy *p)
{
    proxy_wake(p); /* stays awake until read again (proxy_sleep_maybe) */
    if (p->bev != NULL)
        bufferevent_disable(p->bev, EV_READ);
}

void net_proxy_resume(struct net_proxy *p)
{
    if (p->asleep || p->bev == NULL || p->failed || p->doomed) /* asleep: reading */
        return;
    bufferevent_enable(p->bev, EV_READ);
    /* Received already: proxy_read_cb (which opens parked records too), from the loop. */
    if (evbuffer_get_length(proxy_in(p)) > 0 ||
        evbuffer_get_length(bufferevent_get_input(p->bev)) > 0)
        bufferevent_trigger(p->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void net_proxy_set_timeout(struct net_proxy *p, int64_t ms)
{
    p->timeout_ms = ms;
    proxy_wake(p);
    struct timeval tv = clock_timeval_ms(ms);
    bufferevent_set_timeouts(p->bev, ms > 0 ? &tv : NULL, NULL);
}

void net_proxy_send_line(struct net_proxy *p, const char *line)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\r\n", line);
    proxy_send_buffer(p, b);
    evbuffer_free(b);
}

void net_proxy_splice(struct net_proxy *p, const char *gone_line)
{
    proxy_wake(p);
    p->spliced = true;
    p->gone_line = gone_line;
    p->timeout_ms = 0;
    bufferevent_set_timeouts(p->bev, NULL, NULL); /* IDLE: the back-end keeps time */
    bufferevent_setwatermark(p->bev, EV_WRITE, PROXY_HIGH_WATER / 2, 0);
    /* What the back-end sent after its hand-over reply goes on to the client. */
    if (evbuffer_get_length(proxy_in(p)) > 0)
        net_conn_write_buffer(p->client, proxy_in(p));
    proxy_pump_start(p);
    if (p->client != NULL) /* the client's side too, if it can (net_conn_pump decides) */
        net_conn_pump(p->client);
}

void net_proxy_client_readable(struct net_proxy *p)
{
    if (proxy_pumping(p)) {
        if (p->failed || p->doomed) {
            evbuffer_drain(net_conn_input(p->client),
                           evbuffer_get_length(net_conn_input(p->client)));
            return;
        }
        evbuffer_add_buffer(net_pump_output(p->pump), net_conn_input(p->client));
        p->io_ms = monotonic_ms();
        net_pump_flush(p->pump); /* a failure comes back as gone, from the loop */
        if (net_pump_pending(p->pump) > PROXY_HIGH_WATER && !p->client_paused) {
            p->client_paused = true; /* until proxy_pump_drained: the back-end took it */
            net_conn_pause(p->client);
        }
        return;
    }
    proxy_wake(p);
    struct evbuffer *out = bufferevent_get_output(p->bev);
    proxy_send_buffer(p, net_conn_input(p->client));
    if (evbuffer_get_length(out) > PROXY_HIGH_WATER && !p->client_paused) {
        p->client_paused = true; /* until proxy_write_cb: the back-end took it */
        net_conn_pause(p->client);
    }
}

void net_proxy_client_writable(struct net_proxy *p)
{
    if (proxy_pumping(p)) {
        if (!p->failed && !p->doomed) /* read on (records OpenSSL holds: from the loop) */
            net_pump_read(p->pump, true);
        return;
    }
    if (p->spliced && !p->asleep && p->bev != NULL) /* asleep: reading already */
        bufferevent_enable(p->bev, EV_READ);
}

const char *net_proxy_peer(const struct net_proxy *p)
{
    return p->peer;
}

bool net_proxy_timed_out(const struct net_proxy *p)
{
    return p->timed_out;
}

void net_proxy_free(struct net_proxy *p)
{
    if (p == NULL)
        return;
    if (p->in_cb > 0) {
        p->doomed = true;
        proxy_quiet(p);
        return;
    }
    proxy_destroy(p);
}

/* Parks p (net_tls_park.h) if it is TLS 1.3, connected, spliced or carrying
 * HTTP, and quiet for idle_ms with nothing pending either way. */
/* A parked connection awake again and quiet for idle_ms, reading, with nothing
 * pending either way, goes back to sleep. */
static bool proxy_sleep_maybe(struct net_proxy *p, int64_t now, int64_t idle_ms)
{
    if (p->asleep || p->bev == NULL || p->failed || p->doomed || p->park_closed || p->in_cb > 0 ||
        now - p->io_ms < idle_ms || !(bufferevent_get_enabled(p->bev) & EV_READ) ||
        evbuffer_get_length(p->pin) != 0 ||
        evbuffer_get_length(bufferevent_get_output(p->bev)) != 0 ||
        evbuffer_get_length(bufferevent_get_input(p->bev)) != 0)
        return false;
    proxy_sleep(p);
    return true;
}

static bool proxy_park_maybe(struct net_proxy *p, int64_t now, int64_t idle_ms)
{
    if (p->parked)
        return proxy_sleep_maybe(p, now, idle_ms);
    if (p->park == NULL || p->ssl == NULL || (p->bev == NULL && !proxy_pumping(p)) || p->failed ||
        p->doomed || p->in_cb > 0 || !(p->spliced || p->ops->data != NULL) ||
        now - p->io_ms < idle_ms)
        return false;
    if (proxy_pumping(p) ? !net_pump_quiet(p->pump)
                         : evbuffer_get_length(bufferevent_get_output(p->bev)) != 0 ||
                               evbuffer_get_length(bufferevent_get_input(p->bev)) != 0)
        return false;
    bool never = false;
    const char *why = net_tls_park_check(p->park, p->ssl, &never);
    if (why != NULL) {
        if (never) { /* TLS 1.2, another suite...: stop watching */
            log_debug("proxy: not parking the connection to %s: %s", p->peer, why);
            net_tls_park_detach(p->park, p->ssl);
            p->park = NULL;
        }
        return false;
    }
    if (net_tls_park_begin(p->park, p->ssl, &why) != 0) {
        /* OpenSSL may hold half a KeyUpdate: this connection cannot go on. */
        log_warning("proxy: cannot park the connection to %s: %s; closing", p->peer, why);
        p->park_closed = true;
        if (proxy_pumping(p)) {
            p->in_cb++;
            proxy_pump_gone(p, false);
            if (--p->in_cb == 0 && p->doomed)
                proxy_destroy(p);
        } else {
            proxy_event_cb(p->bev, BEV_EVENT_ERROR, p);
        }
        return false;
    }
    bool reading = proxy_pumping(p) ? net_pump_reading(p->pump)
                                    : (bufferevent_get_enabled(p->bev) & EV_READ) != 0;
    if (p->bev != NULL)
        bufferevent_free(p->bev); /* keeps the socket and the SSL (no BEV_OPT_CLOSE_ON_FREE) */
    p->bev = NULL;
    proxy_pump_drop(p); /* the same, pumping */
    SSL_free(p->ssl);
    p->ssl = NULL;
    p->parked = true;
    if (reading) { /* nothing is pending: straight to the read event alone */
        proxy_sleep(p);
    } else { /* the client's output is blocked: awake until it reads */
        p->pin = evbuffer_new();
        proxy_parked_bev(p, now, false);
    }
    log_debug("proxy: parked the TLS connection to %s", p->peer);
    return true;
}

size_t net_proxy_park_sweep(struct net_worker *w, int64_t now, int64_t idle_ms)
{
    size_t parked = 0;
    for (struct net_proxy *p = *net_worker_proxies(w), *next; p; p = next) {
        next = p->next; /* a failed park frees p */
        parked += proxy_park_maybe(p, now, idle_ms);
    }
    return parked;
}

size_t net_proxy_parked(struct net_worker *w, size_t *asleep_r)
{
    size_t n = 0;
    *asleep_r = 0;
    for (const struct net_proxy *p = *net_worker_proxies(w); p; p = p->next) {
        n += p->parked;
        *asleep_r += p->asleep;
    }
    return n;
}

size_t net_proxy_pumped(struct net_worker *w, size_t *held_r)
{
    size_t n = 0;
    *held_r = 0;
    for (const struct net_proxy *p = *net_worker_proxies(w); p; p = p->next) {
        n += proxy_pumping(p);
        *held_r += proxy_pumping(p) && !net_pump_reading(p->pump) && !p->failed;
    }
    return n;
}
