/*
 * net_conn.c - one client connection: a bufferevent (plain or TLS), the
 * bounded line reader, STARTTLS, the DEFLATE stage above the transport
 * (net_compress.c), pause/resume, timeouts and closing.
 *
 * Timeouts (slowloris): besides the bufferevent's byte timeouts, a guard
 * timer cuts a connection whose protocol has consumed nothing for its command
 * timeout (bytes that never make a whole line are no progress) and one that
 * has not logged in within the service's login timeout. While the server
 * itself holds the connection (paused for an auth check, output not yet
 * read by the client) the command clock does not run.
 *
 * A connection is freed only from the event loop, never inside a protocol
 * callback, so a protocol may call net_conn_close() anywhere.
 *
 * Parking (net_tls_park.h): a TLS 1.3 connection idle for tls_park_idle with
 * nothing pending either way gives its SSL and bufferevent_openssl back and
 * goes on over a plain socket bufferevent with net_tls_park's record layer
 * below everything else (the DEFLATE stage included): what the protocol
 * writes goes through conn_out() and is sealed before it reaches the socket.
 * A parked connection with nothing pending sleeps (conn_sleep): no bufferevent
 * and no plaintext buffers, one read event on the socket, until a byte either
 * way wakes it (conn_wake, from conn_raw_in/conn_out); the park sweep puts it
 * back to sleep when quiet again.
 *
 * Spliced (a front-end relaying the session, net_conn_pump): a TLS connection
 * leaves its bufferevent_openssl for the pump (net_pump.h) once what the
 * bufferevent holds is passed on: the protocol reads the pump's input and
 * writes its output (conn_raw_in/conn_out), reading stops with pause and
 * blocked output as before, and parking takes the SSL from the pump.
 *
 * Must never: feed bytes that arrived before a STARTTLS handshake to the
 * protocol after it, block, leave compressed output unflushed when control
 * returns to the event loop, or put a byte on a parked connection's socket
 * that net_tls_park did not seal.
 */
#include "net/net_compress.h"
#include "net/net_pump.h"
#include "net/net_tls_park.h"
#include "base/clock.h"
#include "net/net_internal.h"

#include "base/alloc.h"
#include "base/slab.h"
#include "base/log.h"
#include "ipc/control.h"

#include <arpa/inet.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes buffered from a client before reading pauses until the protocol consumes them. */
#define NET_READ_HIGH_WATER (1024 * 1024)
/*
 * Replies buffered for a client that does not read them (pipelining without
 * reading) before we stop reading its input until they are sent: bounds the
 * memory a slow reader can make us hold.
 */
#define NET_WRITE_HIGH_WATER (1024 * 1024)
/*
 * A compressed connection that has sent nothing for this long gives its
 * compressor's memory back (net_compress_release): a client in IDLE then
 * costs its decompressor only. The price is a fresh dictionary for the next
 * reply, so not much sooner than a client's pause between commands.
 */
#define NET_COMPRESS_QUIET_MS 5000

/* An IP peer's address (a unix socket's keeps its family alone): not a
 * sockaddr_storage of 128 bytes, twice per connection, for hours. */
union conn_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

struct net_conn {
    struct net_worker *w;
    struct net_service *svc;
    const struct net_proto *proto;
    void *session;
    struct bufferevent *bev;
    evutil_socket_t fd;
    bool bev_owns_fd;
    union conn_sockaddr sa;
    char addr[INET6_ADDRSTRLEN];
    /* After a front-end's hand-over (net_proxy_handover_check): the real
     * client, shown in logs and counted per (user, address); "" before. */
    char client[INET6_ADDRSTRLEN];
    union conn_sockaddr client_sa;
    struct conntab_hold hold;         /* its place in the shared connection counts */
    int64_t accepted_ms, progress_ms; /* CLOCK_MONOTONIC; progress: input last consumed */
    int64_t login_timeout_ms;
    struct event *guard; /* the command and login timeouts */
    bool logged_in;      /* net_conn_login: no login timeout, never evicted */
    uint64_t login_key;  /* (family, user, address), 0 before login */
    int login_cell;      /* its cell in the shared table, -1: none */
    struct event *kick;
    void *link; /* our entry in the worker's list */
    int64_t timeout_ms;
    int in_callback;
    bool opened, tls, starttls_pending, closing, flush_close, dead, paused, skipping;
    bool out_blocked; /* output above NET_WRITE_HIGH_WATER: not reading */
    bool park_failed; /* parked and ended by an error or the peer: no close_notify */
    bool close_flush; /* net_conn_close(c, true): a parked connection ends with close_notify */
    /* OpenSSL's own static names (SSL_get_version, SSL_CIPHER_get_name), not copies. */
    const char *tls_version, *tls_cipher;
    char alpn[32]; /* the ALPN protocol agreed on, "" when none */
    int tls_bits;
    /* The DEFLATE stage, from net_conn_start_compress on (all NULL before). */
    struct net_compress *z;
    struct evbuffer *zin; /* inflated bytes: what the protocol reads */
    struct event *zflush; /* flushes after a batch of output; releases when quiet */
    /* Parking: the record state (watching the handshake until parked), and
     * once parked and awake the plaintext read and the plaintext to seal. */
    struct net_tls_park *park;
    struct evbuffer *pin, *pout;
    /* Parked and quiet (conn_sleep): no bufferevent, no pin/pout, only this
     * read event on the socket (with the read timeout); the first byte either
     * way makes them again (conn_wake). */
    struct event *wake;
    bool parked, asleep;
    bool ssl_bev;       /* c->bev is a bufferevent_openssl (its SSL is ours to free) */
    bool park_soon;     /* net_conn_park_soon: park once the output is sent */
    bool write_through; /* net_conn_write_through: a lone reply goes out at once */
    int64_t io_ms;      /* CLOCK_MONOTONIC: bytes last read or written */
    /* net_conn_pump: made at the splice, started (the bufferevent gone) once
     * the bufferevent's output is sent; freed at parking. */
    struct net_pump *pump;
};

static bool conn_pumping(const struct net_conn *c)
{
    return c->pump != NULL && net_pump_started(c->pump);
}

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void conn_schedule(struct net_conn *c)
{
    event_active(c->kick, 0, 0);
}

static void conn_free_now(struct net_conn *c)
{
    if (c->opened && c->proto->closed)
        c->proto->closed(c->session);
    /* A clean TLS close (close_notify) after what was sent: the peer can tell
     * it from a crash (a front-end's proxy does, net_proxy.c). */
    SSL *ssl = conn_pumping(c)        ? net_pump_ssl(c->pump)
               : c->bev && c->ssl_bev ? bufferevent_openssl_get_ssl(c->bev)
                                      : NULL;
    if (c->parked && c->close_flush && !c->park_failed) {
        /* Best effort and straight to the socket, as SSL_shutdown does. */
        if (!net_tls_park_close_notify_now(c->park, c->fd))
            log_debug("close_notify to %s not sent", c->addr);
    }
    if (ssl && c->tls && c->flush_close)
        SSL_shutdown(ssl);
    if (c->bev)
        bufferevent_free(c->bev);
    net_pump_free(c->pump);
    SSL_free(ssl);
    net_tls_park_free(c->park);
    if (c->pin) {
        evbuffer_free(c->pin);
        evbuffer_free(c->pout);
    }
    if (!c->bev_owns_fd && c->fd >= 0)
        close(c->fd);
    event_free(c->kick);
    event_free(c->guard);
    if (c->wake)
        event_free(c->wake);
    if (c->login_key)
        net_worker_login_gone(c->w, c->login_cell);
    if (c->z) {
        net_compress_free(c->z);
        evbuffer_free(c->zin);
        event_free(c->zflush);
    }
    net_worker_link_remove(c->w, c->link);
    net_worker_conn_gone(c->w, c->svc, c->addr, &c->hold);
    slab_free(c);
}

/* Frees now or, inside a protocol callback, as soon as the loop gets control. */
static void conn_kill(struct net_conn *c)
{
    c->dead = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (c->pump)
        net_pump_stop(c->pump);
    if (c->wake)
        event_del(c->wake);
    if (c->in_callback > 0)
        conn_schedule(c);
    else
        conn_free_now(c);
}

static bool conn_reading(const struct net_conn *c);

/* Arms the guard for the nearer of the command and login deadlines. */
static void conn_guard_arm(struct net_conn *c)
{
    int64_t at = INT64_MAX;
    if (c->timeout_ms > 0)
        at = c->progress_ms + c->timeout_ms;
    if (!c->logged_in && c->login_timeout_ms > 0 && c->accepted_ms + c->login_timeout_ms < at)
        at = c->accepted_ms + c->login_timeout_ms;
    if (at == INT64_MAX) {
        evtimer_del(c->guard);
        return;
    }
    int64_t left = at - monotonic_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = clock_timeval_ms(left);
    evtimer_add(c->guard, &tv);
}

static void conn_progress(struct net_conn *c)
{
    c->progress_ms = monotonic_ms();
}

/* The protocol's goodbye, then close (flushing it). */
static void conn_time_out(struct net_conn *c, const char *why)
{
    log_info("%s: %s for unknown[%s]; disconnecting", net_service_name(c->svc), why, c->addr);
    c->in_callback++;
    if (c->opened && !c->closing && c->proto->timeout)
        c->proto->timeout(c->session);
    net_conn_close(c, true);
    c->in_callback--;
    if (c->dead)
        conn_free_now(c);
}

static void conn_guard_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    (void)fd, (void)what;
    if (c->dead || c->closing)
        return;
    int64_t now = monotonic_ms();
    if (c->opened && !conn_reading(c) && !c->starttls_pending)
        c->progress_ms = now; /* we hold it (auth check, unread output): not its fault */
    if (!c->logged_in && c->login_timeout_ms > 0 && now >= c->accepted_ms + c->login_timeout_ms) {
        conn_time_out(c, "no login within the login timeout");
        return;
    }
    if (c->timeout_ms > 0 && now >= c->progress_ms + c->timeout_ms) {
        conn_time_out(c, "no complete command within the command timeout");
        return;
    }
    conn_guard_arm(c);
}

static void conn_apply_timeout(struct net_conn *c)
{
    if (c->bev == NULL)
        return;
    if (c->timeout_ms > 0) {
        struct timeval tv = clock_timeval_ms(c->timeout_ms);
        bufferevent_set_timeouts(c->bev, &tv, &tv);
    } else {
        bufferevent_set_timeouts(c->bev, NULL, NULL);
    }
}

static void conn_setup_bev(struct net_conn *c)
{
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, NET_READ_HIGH_WATER);
    conn_apply_timeout(c);
    bufferevent_enable(c->bev, c->paused ? EV_WRITE : EV_READ | EV_WRITE);
}

/* The SSL's ex_data slot that leads net_conn_alpn_select to its connection. */
static int conn_ssl_index(void)
{
    static int idx = -1;
    if (idx < 0)
        idx = SSL_get_ex_new_index(0, "net_conn", NULL, NULL, NULL);
    return idx;
}

int net_conn_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                         const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    const struct net_conn *c = SSL_get_ex_data(ssl, conn_ssl_index());
    if (c == NULL || c->proto->alpn == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *sel = NULL;
    /* The server's list first: its order of preference decides. */
    if (SSL_select_next_proto(&sel, outlen, c->proto->alpn, (unsigned int)c->proto->alpn_len, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* nothing in common: on without ALPN (HTTP/1.1) */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static void conn_start_tls(struct net_conn *c)
{
    SSL *ssl = SSL_new(net_worker_tls(c->w));
    SSL_set_ex_data(ssl, conn_ssl_index(), c);
    if (net_worker_config(c->w)->tls_park_idle > 0)
        c->park = net_tls_park_attach(ssl);
    /* Not BEV_OPT_CLOSE_ON_FREE: the socket and the SSL outlive it when parked. */
    c->bev = bufferevent_openssl_socket_new(net_worker_base(c->w), c->fd, ssl,
                                            BUFFEREVENT_SSL_ACCEPTING, 0);
    c->bev_owns_fd = false;
    c->ssl_bev = true;
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    conn_setup_bev(c);
}

static void conn_wake_cb(evutil_socket_t fd, short what, void *arg);

/* An asleep connection's read event: on unless paused, with what is left of
 * the read timeout (counted from the last byte either way). */
static void conn_wake_arm(struct net_conn *c)
{
    net_slab_sleep_arm(&c->wake, net_worker_base(c->w), c->fd, conn_wake_cb, c, c->timeout_ms,
                       c->io_ms);
    if (c->paused)
        event_del(c->wake);
}

/*
 * A parked connection with nothing pending gives its bufferevent and plaintext
 * buffers back and waits on one read event (kept in the slab with the rest of
 * what it keeps). Only from the loop (never under the bufferevent it frees).
 */
static void conn_sleep(struct net_conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev); /* a socket bufferevent that does not own the socket */
    c->bev = NULL;
    if (c->pin) {
        evbuffer_free(c->pin);
        evbuffer_free(c->pout);
        c->pin = c->pout = NULL;
    }
    c->asleep = true;
    conn_wake_arm(c);
}

/* The bufferevent and plaintext buffers of an asleep connection made again
 * (from malloc: they go at the next sleep). */
static void conn_wake(struct net_conn *c)
{
    if (!c->asleep)
        return;
    c->asleep = false;
    event_del(c->wake);
    c->pin = evbuffer_new();
    c->pout = evbuffer_new();
    c->bev = bufferevent_socket_new(net_worker_base(c->w), c->fd, 0);
    conn_setup_bev(c);
}

static void conn_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    (void)fd;
    conn_wake(c); /* EV_READ: the bufferevent reads the bytes on the loop's next turn */
    if (what & EV_TIMEOUT)
        conn_event_cb(c->bev, BEV_EVENT_TIMEOUT | BEV_EVENT_READING, c);
}

/* What the transport gives: the socket's bytes, or what a parked connection opened. */
static struct evbuffer *conn_raw_in(struct net_conn *c)
{
    conn_wake(c);
    if (conn_pumping(c))
        return net_pump_input(c->pump);
    return c->pin ? c->pin : bufferevent_get_input(c->bev);
}

/* What the protocol reads: the transport's input, or what the DEFLATE stage made of it. */
static struct evbuffer *conn_in(struct net_conn *c)
{
    return c->z ? c->zin : conn_raw_in(c);
}

/* Where the transport's plaintext output goes; conn_out_done() seals it when parked. */
static struct evbuffer *conn_out(struct net_conn *c)
{
    conn_wake(c);
    if (conn_pumping(c))
        return net_pump_output(c->pump);
    return c->pout ? c->pout : bufferevent_get_output(c->bev);
}

/* Bytes queued for the socket, not yet sent. */
static size_t conn_out_len(const struct net_conn *c)
{
    if (conn_pumping(c))
        return net_pump_pending(c->pump);
    return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* Reading the socket on or off (pause, blocked output, closing). */
static void conn_read_on(struct net_conn *c, bool on)
{
    if (conn_pumping(c))
        net_pump_read(c->pump, on);
    else if (c->bev && on)
        bufferevent_enable(c->bev, EV_READ);
    else if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
}

static void conn_park_fail(struct net_conn *c, const char *why);

static void conn_out_done(struct net_conn *c)
{
    c->io_ms = monotonic_ms();
    if (conn_pumping(c)) {
        net_pump_flush(c->pump); /* a failure comes back as the pump's gone, from the loop */
        return;
    }
    if (c->pout == NULL || evbuffer_get_length(c->pout) == 0)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (evbuffer_get_length(c->pout) > 0) {
        size_t n = evbuffer_get_length(c->pout);
        if (n > NET_TLS_PARK_MAX_PLAIN)
            n = NET_TLS_PARK_MAX_PLAIN;
        if (!net_tls_park_seal(c->park, evbuffer_pullup(c->pout, (ev_ssize_t)n), n, out)) {
            evbuffer_drain(c->pout, evbuffer_get_length(c->pout));
            conn_park_fail(c, "cannot seal a record");
            return;
        }
        evbuffer_drain(c->pout, n);
    }
}

/*
 * Inflates what the transport received, up to the read high-water mark.
 * false: the stream is corrupt, the connection is closing.
 */
static bool conn_inflate(struct net_conn *c)
{
    const char *err;
    if (net_compress_read(c->z, conn_raw_in(c), c->zin, NET_READ_HIGH_WATER, &err))
        return true;
    log_warning("%s: corrupt compressed data from unknown[%s]: %s; disconnecting",
                net_service_name(c->svc), c->addr, err);
    net_conn_close(c, true);
    return false;
}

static bool conn_reading(const struct net_conn *c)
{
    return !(c->dead || c->paused || c->closing || c->starttls_pending || !c->opened ||
             c->out_blocked);
}

/* A parked connection that cannot go on: the alert is queued, close after it. */
static void conn_park_fail(struct net_conn *c, const char *why)
{
    log_info("%s: TLS record error from unknown[%s]: %s; disconnecting", net_service_name(c->svc),
             c->addr, why);
    c->park_failed = true;
    c->in_callback++; /* freed from the loop, never under a caller that goes on with c */
    net_conn_close(c, true);
    c->in_callback--;
}

/*
 * Opens the records a parked connection received, up to the read high-water
 * mark of plaintext. false: the connection is closing (the peer's close_notify
 * or alert, or a record that failed).
 */
static bool conn_park_read(struct net_conn *c)
{
    const char *err = NULL;
    c->io_ms = monotonic_ms();
    enum net_tls_park_result r =
        net_tls_park_open(c->park, bufferevent_get_input(c->bev), c->pin, NET_READ_HIGH_WATER,
                          bufferevent_get_output(c->bev), &err);
    if (r == NET_TLS_PARK_OK)
        return true;
    if (r == NET_TLS_PARK_CLOSE) {
        log_debug("%s: %s from unknown[%s]", net_service_name(c->svc), err, c->addr);
        c->park_failed = true; /* no close_notify of ours after theirs is needed */
        conn_kill(c);
    } else {
        conn_park_fail(c, err);
    }
    return false;
}

/*
 * Calls readable() once for what arrived. With the DEFLATE stage, again as
 * long as inflating the transport's input (which stops at the high-water
 * mark) gives the protocol bytes it has not seen; after NET_READ_HIGH_WATER
 * inflated bytes the loop yields to the other connections (a zip bomb is
 * cheap to send).
 */
static void conn_call_readable(struct net_conn *c)
{
    size_t left = SIZE_MAX; /* bytes the protocol left unread; SIZE_MAX: not called yet */
    size_t inflated = 0;
    if (c->asleep) /* nothing buffered */
        return;
    c->in_callback++;
    while (conn_reading(c)) {
        if (c->pin && !conn_park_read(c))
            break;
        if (c->z) {
            size_t had = evbuffer_get_length(c->zin);
            if (!conn_inflate(c))
                break;
            inflated += evbuffer_get_length(c->zin) - had;
        }
        size_t n = evbuffer_get_length(conn_in(c));
        if (n == 0 || n == left)
            break;
        c->proto->readable(c->session);
        if (evbuffer_get_length(conn_in(c)) < n)
            conn_progress(c);
        if (c->z == NULL && c->pin == NULL)
            break;
        /*
         * Again if inflating gives more: the transport may hold more than the
         * high-water mark let through, or bytes behind the command that just
         * started compression (those are compressed).
         */
        left = evbuffer_get_length(conn_in(c));
        if (inflated > NET_READ_HIGH_WATER) {
            conn_schedule(c);
            break;
        }
    }
    c->in_callback--;
}

static void conn_open(struct net_conn *c)
{
    void *arg;
    c->proto = net_service_proto(c->svc, &arg);
    c->opened = true;
    c->in_callback++;
    c->session = c->proto->open(c, arg);
    c->in_callback--;
    conn_call_readable(c);
}

/* The plaintext bufferevent is replaced; whatever it had read is thrown away. */
static void conn_switch_to_tls(struct net_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_free(c->bev);
    c->bev = NULL;
    conn_start_tls(c);
}

static void conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    if (c->dead) {
        conn_free_now(c);
        return;
    }
    if (c->starttls_pending && !c->tls &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_switch_to_tls(c);
        return;
    }
    conn_call_readable(c);
    if (c->dead && c->in_callback == 0) {
        conn_free_now(c);
        return;
    }
    /* from the loop, never under the bufferevent whose SSL this frees */
    if (c->park_soon && net_conn_park_maybe(c, monotonic_ms(), 0))
        net_worker_note_parked(c->w);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct net_conn *c = arg;
    c->io_ms = monotonic_ms();
    if (c->starttls_pending && !c->tls) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    conn_call_readable(c);
    if (c->dead && c->in_callback == 0)
        conn_free_now(c);
}

/* The output sent (from the bufferevent or the pump). false: c is gone or switched. */
static bool conn_drained(struct net_conn *c)
{
    if (c->closing && c->flush_close) {
        conn_kill(c);
        return false;
    }
    if (c->out_blocked) {
        c->out_blocked = false;
        if (!c->paused && !c->closing)
            conn_read_on(c, true);
        conn_schedule(c);
    }
    return true;
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct net_conn *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (!conn_drained(c))
        return;
    if (c->starttls_pending && !c->tls) {
        conn_switch_to_tls(c);
        return;
    }
    if (c->opened && !c->closing && c->proto->writable) {
        c->in_callback++;
        c->proto->writable(c->session);
        c->in_callback--;
        if (c->dead && c->in_callback == 0) {
            conn_free_now(c);
            return;
        }
    }
    if (c->park_soon && c->ssl_bev)
        conn_schedule(c); /* parks from conn_kick_cb */
    if (c->pump != NULL && !net_pump_started(c->pump))
        net_pump_kick(c->pump); /* the bufferevent's output sent: the pump may take over */
}

static void conn_note_tls(struct net_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    c->tls = true;
    c->tls_version = SSL_get_version(ssl);
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    c->tls_cipher = ci ? SSL_CIPHER_get_name(ci) : "?";
    c->tls_bits = ci ? SSL_CIPHER_get_bits(ci, NULL) : 0;
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len >= sizeof(c->alpn))
        alpn_len = 0;
    memcpy(c->alpn, alpn ? alpn : (const unsigned char *)"", alpn_len);
    c->alpn[alpn_len] = '\0';
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct net_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        conn_note_tls(c);
        if (!c->opened) {
            conn_open(c);
        } else if (c->starttls_pending) {
            c->starttls_pending = false;
            c->in_callback++;
            if (c->proto->tls_ready)
                c->proto->tls_ready(c->session);
            c->in_callback--;
            conn_call_readable(c);
        }
        if (c->dead && c->in_callback == 0)
            conn_free_now(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        c->in_callback++;
        if (c->opened && !c->closing && c->proto->timeout)
            c->proto->timeout(c->session);
        net_conn_close(c, true);
        /* The write timeout of a client that never reads ends it for good. */
        if (what & BEV_EVENT_WRITING)
            conn_kill(c);
        c->in_callback--;
        if (c->dead)
            conn_free_now(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if ((what & BEV_EVENT_ERROR) && !c->opened)
            log_debug("TLS handshake with %s failed", c->addr);
        conn_kill(c);
    }
}

struct net_conn *net_conn_new(struct net_worker *w, struct net_service *svc, int fd,
                              const struct sockaddr *sa, socklen_t salen,
                              const struct conntab_hold *hold)
{
    /* What lives as long as the connection comes from the slab (base/slab.h),
     * packed away from the TLS handshake's garbage, so that a quiet connection
     * holds few pages. */
    struct net_conn *c = slab_calloc(1, sizeof(*c));
    c->w = w;
    c->svc = svc;
    c->hold = *hold;
    c->fd = fd;
    memcpy(&c->sa, sa, salen < sizeof(c->sa) ? salen : sizeof(c->sa));
    net_addr_format(sa, c->addr, sizeof(c->addr));
    net_slab_enter();
    c->kick = event_new(net_worker_base(w), -1, 0, conn_kick_cb, c);
    c->timeout_ms = net_service_idle_ms(svc);
    c->login_timeout_ms = net_service_login_ms(svc);
    c->accepted_ms = c->progress_ms = c->io_ms = monotonic_ms();
    c->login_cell = -1;
    c->guard = evtimer_new(net_worker_base(w), conn_guard_cb, c);
    net_slab_leave();
    net_slab_fd_record(net_worker_base(w), fd);
    conn_guard_arm(c);
    c->link = net_worker_link_add(w, c);
    void *arg;
    c->proto = net_service_proto(svc, &arg);
    if (net_service_tls(svc) == NET_TLS_IMPLICIT) {
        conn_start_tls(c); /* open() follows the handshake */
    } else {
        c->bev = bufferevent_socket_new(net_worker_base(w), fd, 0);
        conn_setup_bev(c);
        conn_open(c);
        if (c->dead && c->in_callback == 0) {
            conn_free_now(c);
            return NULL;
        }
    }
    return c;
}

const char *net_conn_addr(const struct net_conn *c)
{
    return c->client[0] ? c->client : c->addr;
}

const char *net_conn_peer_addr(const struct net_conn *c)
{
    return c->addr;
}

bool net_conn_set_client(struct net_conn *c, const char *addr)
{
    union conn_sockaddr ss;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, addr, &ss.in4.sin_addr) == 1)
        ss.in4.sin_family = AF_INET;
    else if (inet_pton(AF_INET6, addr, &ss.in6.sin6_addr) == 1)
        ss.in6.sin6_family = AF_INET6;
    else
        return false;
    c->client_sa = ss;
    net_addr_format(&ss.sa, c->client, sizeof(c->client));
    return true;
}

bool net_conn_export(struct net_conn *c, const char *label, uint8_t *out, size_t len)
{
    if (c->parked) /* the exporter secret was kept */
        return net_tls_park_export(c->park, label, out, len);
    SSL *ssl = !c->tls                ? NULL
               : conn_pumping(c)      ? net_pump_ssl(c->pump)
               : c->bev && c->ssl_bev ? bufferevent_openssl_get_ssl(c->bev)
                                      : NULL;
    return ssl && SSL_export_keying_material(ssl, out, len, label, strlen(label), NULL, 0, 0) == 1;
}

const char *net_conn_host(const struct net_conn *c)
{
    return "unknown";
}

const char *net_conn_service(const struct net_conn *c)
{
    return net_service_name(c->svc);
}

const struct sockaddr *net_conn_sockaddr(const struct net_conn *c)
{
    return &c->sa.sa;
}

struct net_worker *net_conn_worker(struct net_conn *c)
{
    return c->w;
}

bool net_conn_is_tls(const struct net_conn *c)
{
    return c->tls;
}

bool net_conn_can_starttls(const struct net_conn *c)
{
    /* Never under compression: TLS must stay below it (RFC 4978 3). */
    return !c->tls && c->z == NULL && net_service_tls(c->svc) == NET_TLS_STARTTLS &&
           net_worker_tls(c->w);
}

const char *net_conn_tls_version(const struct net_conn *c)
{
    return c->tls ? c->tls_version : NULL;
}

const char *net_conn_tls_cipher(const struct net_conn *c)
{
    return c->tls ? c->tls_cipher : NULL;
}

int net_conn_tls_bits(const struct net_conn *c)
{
    return c->tls ? c->tls_bits : 0;
}

const char *net_conn_alpn(const struct net_conn *c)
{
    return c->alpn;
}

struct evbuffer *net_conn_input(struct net_conn *c)
{
    return conn_in(c);
}

enum net_line_result net_conn_read_line(struct net_conn *c, size_t max, struct buf *line_r)
{
    struct evbuffer *in = conn_in(c);
    if (c->skipping) {
        struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
        if (p.pos < 0) {
            evbuffer_drain(in, evbuffer_get_length(in));
            return NET_LINE_NEED_MORE;
        }
        evbuffer_drain(in, (size_t)p.pos + 1);
        c->skipping = false;
    }
    struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
    if (p.pos < 0) {
        if (evbuffer_get_length(in) > max) {
            evbuffer_drain(in, evbuffer_get_length(in));
            c->skipping = true;
            return NET_LINE_TOO_LONG;
        }
        return NET_LINE_NEED_MORE;
    }
    size_t len = (size_t)p.pos;
    if (len > max + 1) { /* + 1: the CR before the LF */
        evbuffer_drain(in, len + 1);
        return NET_LINE_TOO_LONG;
    }
    buf_reset(line_r);
    buf_reserve(line_r, len + 1);
    evbuffer_remove(in, line_r->data, len + 1);
    if (len > 0 && line_r->data[len - 1] == '\r')
        len--;
    if (len > max)
        return NET_LINE_TOO_LONG;
    line_r->len = len;
    line_r->data[len] = '\0';
    return NET_LINE_OK;
}

/* Output above NET_WRITE_HIGH_WATER: stop reading until it is sent. */
static void conn_check_output(struct net_conn *c)
{
    if (!c->out_blocked && conn_out_len(c) > NET_WRITE_HIGH_WATER) {
        c->out_blocked = true;
        conn_read_on(c, false);
    }
}

/*
 * Runs once the loop has finished what it was doing after a write (one batch
 * of output: a command's replies, an IDLE push) and flushes the compressor,
 * then again when nothing more was written for NET_COMPRESS_QUIET_MS.
 */
static void conn_zflush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    (void)fd, (void)what;
    if (c->dead)
        return;
    if (!net_compress_pending(c->z)) {
        net_compress_release(c->z);
        return;
    }
    net_compress_flush(c->z, conn_out(c));
    conn_out_done(c);
    conn_check_output(c);
    struct timeval tv = clock_timeval_ms(NET_COMPRESS_QUIET_MS);
    evtimer_add(c->zflush, &tv);
}

bool net_conn_output_blocked(const struct net_conn *c)
{
    return c->out_blocked;
}

size_t net_conn_output_length(struct net_conn *c)
{
    if (c->dead || (c->bev == NULL && !conn_pumping(c)))
        return 0;
    size_t n = conn_out_len(c);
    if (c->pout != NULL)
        n += evbuffer_get_length(c->pout);
    return n;
}

void net_conn_write_through(struct net_conn *c)
{
    c->write_through = true;
}

/*
 * A reply to a client that waits for it (nothing queued before it, nothing
 * more of the client's to read) on a plain connection: sent now. Through the
 * bufferevent it would leave on the loop's next turn, after an epoll_ctl to
 * watch for writability, an epoll_wait and another epoll_ctl to stop. What
 * the socket does not take at once goes the usual way. Bytes written while
 * more input waits (pipelined commands) still leave together in one writev.
 */
static size_t conn_write_now(struct net_conn *c, const void *data, size_t len)
{
    if (len == 0 || !c->write_through || c->ssl_bev || c->bev == NULL || c->pout || c->z ||
        c->closing || c->starttls_pending ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) != 0 ||
        evbuffer_get_length(bufferevent_get_input(c->bev)) != 0)
        return 0;
    ssize_t n = send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n > 0 ? (size_t)n : 0; /* an error: the bufferevent meets it on its write */
}

void net_conn_write(struct net_conn *c, const void *data, size_t len)
{
    if (c->dead)
        return;
    conn_wake(c);
    if (c->bev == NULL && !conn_pumping(c))
        return;
    struct evbuffer *out = conn_out(c);
    if (c->z == NULL) {
        size_t sent = conn_write_now(c, data, len);
        if (sent < len)
            evbuffer_add(out, (const char *)data + sent, len - sent);
    } else {
        bool was_pending = net_compress_pending(c->z);
        net_compress_write(c->z, data, len, out);
        if (c->closing) /* the connection may end as soon as out is sent */
            net_compress_flush(c->z, out);
        else if (!was_pending && len > 0)
            event_active(c->zflush, EV_TIMEOUT, 0);
    }
    conn_out_done(c);
    conn_check_output(c);
}

void net_conn_write_buffer(struct net_conn *c, struct evbuffer *src)
{
    if (!c->dead)
        conn_wake(c);
    if (c->dead || (c->bev == NULL && !conn_pumping(c))) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return;
    }
    if (c->z == NULL) {
        evbuffer_add_buffer(conn_out(c), src);
        conn_out_done(c);
        conn_check_output(c);
        return;
    }
    while (evbuffer_get_length(src) > 0) { /* through the DEFLATE stage */
        struct evbuffer_iovec v;
        if (evbuffer_peek(src, -1, NULL, &v, 1) < 1)
            break;
        net_conn_write(c, v.iov_base, v.iov_len);
        evbuffer_drain(src, v.iov_len);
    }
}

void net_conn_printf(struct net_conn *c, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    net_conn_write(c, b.data, b.len);
    buf_free(&b);
}

void net_conn_vreply(struct net_conn *c, const char *fmt, va_list ap)
{
    struct buf b = BUF_INIT;
    buf_vprintf(&b, fmt, ap);
    buf_append(&b, "\r\n", 2);
    net_conn_write(c, b.data, b.len);
    buf_free(&b);
}

void net_conn_set_timeout(struct net_conn *c, int64_t ms)
{
    if (c->timeout_ms == ms)
        return;
    c->timeout_ms = ms;
    conn_apply_timeout(c);
    if (c->asleep)
        conn_wake_arm(c);
    conn_guard_arm(c);
}

bool net_conn_login(struct net_conn *c, const char *family, const char *user,
                    unsigned max_per_user_addr)
{
    if (c->logged_in)
        return true;
    struct buf name = BUF_INIT;
    buf_printf(&name, "%s\n%s", family, user);
    const union conn_sockaddr *who = c->client[0] ? &c->client_sa : &c->sa;
    uint64_t key = conntab_key_named(name.data, &who->sa);
    buf_free(&name);
    if (!net_worker_login_admit(c->w, key, max_per_user_addr, &c->login_cell)) {
        log_warning("%s: refusing login of %s from unknown[%s]: %u connections of this user "
                    "from this address already",
                    net_service_name(c->svc), user, c->addr, max_per_user_addr);
        return false;
    }
    c->login_key = key;
    c->logged_in = true;
    conn_guard_arm(c);
    return true;
}

uint64_t net_conn_login_key(const struct net_conn *c)
{
    return c->login_key;
}

bool net_conn_evictable(const struct net_conn *c, int64_t *progress_r)
{
    *progress_r = c->progress_ms;
    return !c->logged_in && !c->dead && !c->closing;
}

struct net_service *net_conn_svc(const struct net_conn *c)
{
    return c->svc;
}

void net_conn_evict(struct net_conn *c, const char *newcomer)
{
    log_warning("%s: evicting unknown[%s], idle for %llds before login, to admit unknown[%s] "
                "(service or address full)",
                net_service_name(c->svc), c->addr,
                (long long)((monotonic_ms() - c->progress_ms) / 1000), newcomer);
    c->in_callback++;
    if (c->opened && c->proto->timeout)
        c->proto->timeout(c->session);
    c->in_callback--;
    /* Best effort for the goodbye: the place is needed now, not after a flush. */
    if (c->bev && !c->tls && c->z == NULL)
        evbuffer_write(bufferevent_get_output(c->bev), c->fd);
    conn_kill(c);
}

void net_conn_pause(struct net_conn *c)
{
    c->paused = true;
    conn_progress(c);
    conn_read_on(c, false);
    if (c->asleep)
        conn_wake_arm(c);
}

void net_conn_resume(struct net_conn *c)
{
    if (!c->paused || c->dead)
        return;
    c->paused = false;
    conn_progress(c);
    if (!c->closing && !c->out_blocked)
        conn_read_on(c, true);
    if (c->asleep)
        conn_wake_arm(c);
    conn_schedule(c); /* bytes already buffered raise no new read event */
}

bool net_conn_starttls(struct net_conn *c)
{
    if (!net_conn_can_starttls(c) || c->starttls_pending)
        return false;
    c->starttls_pending = true;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_schedule(c);
    return true;
}

bool net_conn_start_compress(struct net_conn *c)
{
    if (c->z || c->starttls_pending || c->dead || c->bev == NULL)
        return false;
    c->z = net_compress_new();
    c->zin = evbuffer_new();
    c->zflush = evtimer_new(net_worker_base(c->w), conn_zflush_cb, c);
    log_debug("%s: DEFLATE compression on for unknown[%s]", net_service_name(c->svc), c->addr);
    return true;
}

bool net_conn_is_compressed(const struct net_conn *c)
{
    return c->z != NULL;
}

size_t net_conn_compress_memory(const struct net_conn *c)
{
    return c->z ? net_compress_memory(c->z) : 0;
}

void net_conn_close(struct net_conn *c, bool flush)
{
    if (c->dead)
        return;
    c->closing = true;
    conn_read_on(c, false);
    if (flush && c->z && c->bev) {
        net_compress_flush(c->z, conn_out(c));
        conn_out_done(c);
    }
    if (flush)
        c->close_flush = true;
    if (flush && conn_out_len(c) > 0) {
        c->flush_close = true;
        return;
    }
    conn_kill(c);
}

void net_conn_drain(struct net_conn *c)
{
    if (c->opened && c->proto->drain && !c->closing) {
        c->in_callback++;
        c->proto->drain(c->session);
        c->in_callback--;
        if (c->dead && c->in_callback == 0)
            conn_free_now(c);
    } else if (!c->opened) {
        conn_kill(c);
    }
}

void net_conn_abort(struct net_conn *c)
{
    conn_kill(c);
}

bool net_conn_tls_parked(const struct net_conn *c)
{
    return c->parked;
}

bool net_conn_tls_asleep(const struct net_conn *c)
{
    return c->asleep;
}

void net_conn_park_soon(struct net_conn *c)
{
    if (c->park == NULL || (!c->ssl_bev && !conn_pumping(c)))
        return;
    c->park_soon = true;
    conn_schedule(c); /* the output may be sent already */
}

/* A parked connection awake (it moved bytes since it parked or last slept) and
 * quiet again for idle_ms with nothing pending anywhere goes back to sleep. */
static bool conn_sleep_maybe(struct net_conn *c, int64_t now, int64_t idle_ms)
{
    if (c->asleep || c->dead || c->closing || c->in_callback > 0 || c->out_blocked ||
        now - c->io_ms < idle_ms || evbuffer_get_length(c->pin) != 0 ||
        evbuffer_get_length(c->pout) != 0 ||
        evbuffer_get_length(bufferevent_get_output(c->bev)) != 0 ||
        evbuffer_get_length(bufferevent_get_input(c->bev)) != 0 ||
        (c->z && (evbuffer_get_length(c->zin) != 0 || net_compress_pending(c->z))))
        return false;
    conn_sleep(c);
    return true;
}

bool net_conn_park_maybe(struct net_conn *c, int64_t now, int64_t idle_ms)
{
    if (c->parked)
        return conn_sleep_maybe(c, now, idle_ms);
    if (c->park == NULL || !c->tls || !(c->ssl_bev || conn_pumping(c)) || c->dead || c->closing ||
        c->starttls_pending || c->in_callback > 0 || now - c->io_ms < idle_ms)
        return false;
    if (conn_pumping(c) ? !net_pump_quiet(c->pump)
                        : evbuffer_get_length(bufferevent_get_output(c->bev)) != 0 ||
                              evbuffer_get_length(bufferevent_get_input(c->bev)) != 0)
        return false;
    SSL *ssl = conn_pumping(c) ? net_pump_ssl(c->pump) : bufferevent_openssl_get_ssl(c->bev);
    bool never = false;
    const char *why = net_tls_park_check(c->park, ssl, &never);
    if (why != NULL) {
        if (never) { /* TLS 1.2, another suite...: stop watching */
            log_debug("%s: not parking %s: %s", net_service_name(c->svc), c->addr, why);
            net_tls_park_detach(c->park, ssl);
            c->park = NULL;
        }
        return false;
    }
    if (net_tls_park_begin(c->park, ssl, &why) != 0) {
        /* OpenSSL may hold half a KeyUpdate: this connection cannot go on. */
        log_warning("%s: cannot park the TLS connection of unknown[%s]: %s; disconnecting",
                    net_service_name(c->svc), c->addr, why);
        c->park_failed = true;
        conn_kill(c);
        return false;
    }
    /* The exporter is for the hand-over check (net_proxy_handover_check), which
     * only a front-end's connection meets: the others give its secret up. */
    const struct wharf_config *cfg = net_worker_config(c->w);
    if (!net_addr_frontend(cfg, c->addr))
        net_tls_park_drop_exporter(c->park);
    if (c->bev)
        bufferevent_free(c->bev); /* keeps the socket (no BEV_OPT_CLOSE_ON_FREE) */
    net_pump_free(c->pump);       /* the same, pumping; or one not started */
    c->pump = NULL;
    SSL_free(ssl);
    c->bev = NULL;
    c->ssl_bev = false;
    c->park_soon = false;
    c->parked = true;
    conn_sleep(c); /* nothing is pending: straight to the read event alone */
    log_debug("%s: parked the TLS connection of %s", net_service_name(c->svc), c->addr);
    return true;
}

/* The pump's plaintext: to the protocol, as a bufferevent's read. */
static void conn_pump_readable(void *arg, struct evbuffer *in)
{
    struct net_conn *c = arg;
    (void)in; /* conn_in(c) */
    c->io_ms = monotonic_ms();
    conn_call_readable(c);
}

static void conn_pump_drained(void *arg)
{
    struct net_conn *c = arg;
    if (!conn_drained(c) || c->dead)
        return;
    if (c->opened && !c->closing && c->proto->writable)
        c->proto->writable(c->session); /* under conn_pump_cb's in_callback */
    if (c->park_soon)
        conn_schedule(c); /* parks from conn_kick_cb */
}

static void conn_pump_gone(void *arg, bool clean)
{
    struct net_conn *c = arg;
    if (clean)
        c->park_failed = true; /* their close_notify: no need of ours */
    conn_kill(c);
}

static const struct net_pump_ops conn_pump_ops = {
    .readable = conn_pump_readable,
    .drained = conn_pump_drained,
    .gone = conn_pump_gone,
};

/* The bufferevent's SSL and socket to the pump, once its output is sent and
 * what it read is moved to the pump's input (read by the protocol as before). */
static bool conn_pump_take(struct net_conn *c)
{
    if (!c->ssl_bev || c->bev == NULL || c->parked || c->dead || c->closing || c->z ||
        c->timeout_ms > 0 || evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
        return false;
    evbuffer_add_buffer(net_pump_input(c->pump), bufferevent_get_input(c->bev));
    bufferevent_free(c->bev); /* keeps the socket and the SSL (no BEV_OPT_CLOSE_ON_FREE) */
    c->bev = NULL;
    c->ssl_bev = false;
    net_pump_start(c->pump);
    net_pump_read(c->pump, !c->paused && !c->out_blocked);
    return true;
}

static void conn_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    (void)fd;
    if (c->dead)
        return;
    c->in_callback++;
    if (!net_pump_started(c->pump) && conn_pump_take(c))
        what |= EV_READ; /* OpenSSL or the pump's input may hold bytes already */
    if (net_pump_started(c->pump))
        net_pump_run(c->pump, what, &conn_pump_ops, c);
    c->in_callback--;
    if (c->dead && c->in_callback == 0)
        conn_free_now(c);
}

void net_conn_pump(struct net_conn *c)
{
    if (c->pump != NULL || !c->ssl_bev || !c->tls || c->z || c->dead || c->closing || c->parked)
        return;
    c->pump = net_pump_new(net_worker_base(c->w), c->fd, bufferevent_openssl_get_ssl(c->bev),
                           conn_pump_cb, c);
    net_pump_kick(c->pump); /* from the loop, never under the caller's bufferevent */
}

bool net_conn_pumped(const struct net_conn *c)
{
    return conn_pumping(c);
}
