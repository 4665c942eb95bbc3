/*
 * net_conn.c - one client connection: a bufferevent (plain or TLS), the
 * bounded line reader, STARTTLS, pause/resume, timeouts and closing.
 *
 * A connection is freed only from the event loop, never inside a protocol
 * callback, so a protocol may call net_conn_close() anywhere. Must never:
 * feed bytes that arrived before a STARTTLS handshake to the protocol after
 * it, or block.
 */
#include "net/net_internal.h"

#include "base/alloc.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes buffered from a client before reading pauses until the protocol consumes them. */
#define NET_READ_HIGH_WATER (1024 * 1024)
/*
 * Replies buffered for a client that does not read them (pipelining without
 * reading) before we stop reading its input until they are sent: bounds the
 * memory a slow reader can make us hold.
 */
#define NET_WRITE_HIGH_WATER (1024 * 1024)

struct net_conn {
    struct net_worker *w;
    struct net_service *svc;
    const struct net_proto *proto;
    void *session;
    struct bufferevent *bev;
    evutil_socket_t fd;
    bool bev_owns_fd;
    struct sockaddr_storage sa;
    char addr[INET6_ADDRSTRLEN];
    struct event *kick;
    void *link; /* our entry in the worker's list */
    int64_t timeout_ms;
    int in_callback;
    bool opened, tls, starttls_pending, closing, flush_close, dead, paused, skipping;
    bool out_blocked; /* output above NET_WRITE_HIGH_WATER: not reading */
    char tls_version[32], tls_cipher[96];
    int tls_bits;
};

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
    if (c->bev)
        bufferevent_free(c->bev);
    if (!c->bev_owns_fd && c->fd >= 0)
        close(c->fd);
    event_free(c->kick);
    net_worker_link_remove(c->w, c->link);
    net_worker_conn_gone(c->w, c->svc, c->addr);
    free(c);
}

/* Frees now or, inside a protocol callback, as soon as the loop gets control. */
static void conn_kill(struct net_conn *c)
{
    c->dead = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    if (c->in_callback > 0)
        conn_schedule(c);
    else
        conn_free_now(c);
}

static void conn_apply_timeout(struct net_conn *c)
{
    if (c->bev == NULL)
        return;
    if (c->timeout_ms > 0) {
        struct timeval tv = {.tv_sec = c->timeout_ms / 1000,
                             .tv_usec = (c->timeout_ms % 1000) * 1000};
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

static void conn_start_tls(struct net_conn *c)
{
    SSL *ssl = SSL_new(net_worker_tls(c->w));
    c->bev = bufferevent_openssl_socket_new(net_worker_base(c->w), c->fd, ssl,
                                            BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    c->bev_owns_fd = true;
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    conn_setup_bev(c);
}

static void conn_call_readable(struct net_conn *c)
{
    if (c->dead || c->paused || c->closing || c->starttls_pending || !c->opened ||
        c->out_blocked)
        return;
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
        return;
    c->in_callback++;
    c->proto->readable(c->session);
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
    if (c->dead && c->in_callback == 0)
        conn_free_now(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct net_conn *c = arg;
    if (c->starttls_pending && !c->tls) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    conn_call_readable(c);
    if (c->dead && c->in_callback == 0)
        conn_free_now(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct net_conn *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (c->closing && c->flush_close) {
        conn_kill(c);
        return;
    }
    if (c->out_blocked) {
        c->out_blocked = false;
        if (!c->paused && !c->closing)
            bufferevent_enable(bev, EV_READ);
        conn_schedule(c);
    }
    if (c->starttls_pending && !c->tls)
        conn_switch_to_tls(c);
}

static void conn_note_tls(struct net_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    c->tls = true;
    snprintf(c->tls_version, sizeof(c->tls_version), "%s", SSL_get_version(ssl));
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    snprintf(c->tls_cipher, sizeof(c->tls_cipher), "%s", ci ? SSL_CIPHER_get_name(ci) : "?");
    c->tls_bits = ci ? SSL_CIPHER_get_bits(ci, NULL) : 0;
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
                              const struct sockaddr *sa, socklen_t salen)
{
    struct net_conn *c = xcalloc(1, sizeof(*c));
    c->w = w;
    c->svc = svc;
    c->fd = fd;
    memcpy(&c->sa, sa, salen < sizeof(c->sa) ? salen : sizeof(c->sa));
    net_addr_format(sa, c->addr, sizeof(c->addr));
    c->kick = event_new(net_worker_base(w), -1, 0, conn_kick_cb, c);
    c->timeout_ms = net_service_idle_ms(svc);
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
    return c->addr;
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
    return (const struct sockaddr *)&c->sa;
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
    return !c->tls && net_service_tls(c->svc) == NET_TLS_STARTTLS && net_worker_tls(c->w);
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

struct evbuffer *net_conn_input(struct net_conn *c)
{
    return bufferevent_get_input(c->bev);
}

enum net_line_result net_conn_read_line(struct net_conn *c, size_t max, struct buf *line_r)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
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

void net_conn_write(struct net_conn *c, const void *data, size_t len)
{
    if (c->dead || c->bev == NULL)
        return;
    bufferevent_write(c->bev, data, len);
    if (!c->out_blocked &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) > NET_WRITE_HIGH_WATER) {
        c->out_blocked = true;
        bufferevent_disable(c->bev, EV_READ);
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
}

void net_conn_pause(struct net_conn *c)
{
    c->paused = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
}

void net_conn_resume(struct net_conn *c)
{
    if (!c->paused || c->dead)
        return;
    c->paused = false;
    if (c->bev && !c->closing && !c->out_blocked)
        bufferevent_enable(c->bev, EV_READ);
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

void net_conn_close(struct net_conn *c, bool flush)
{
    if (c->dead)
        return;
    c->closing = true;
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
    if (flush && c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
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
