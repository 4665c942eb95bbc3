/*
 * net_pump.c - a TLS connection driven without a bufferevent (net_pump.h).
 *
 * rd (persistent) is on while the owner wants reading, or while a write
 * waits for a read (a KeyUpdate); wr only while a write would block, or a
 * read waits for a write. A wake-up reads what the socket has in one read
 * (read-ahead) and every record OpenSSL holds after it, up to PUMP_READ_MAX,
 * and hands it to the owner once. What is queued goes out with SSL_write at
 * once; a write that would block is retried with the same bytes (SSL_write's
 * rule) when the socket is writable. Errors are reported from the owner's
 * callback (net_pump_run), never from a flush under the owner's feet.
 * Must never: free the SSL or close the socket, or call back outside net_pump_run.
 */
#include "net/net_pump.h"
#include "net/net_tls_park.h"

#include "base/alloc.h"
#include "base/log.h"

#include <openssl/err.h>

/* Plaintext read in one wake-up before the loop serves the others. */
#define PUMP_READ_MAX (256 * 1024)

struct net_pump {
    struct event *rd, *wr;
    SSL *ssl;
    struct evbuffer *in, *out;
    int wlen; /* the length of an SSL_write to retry with the same bytes, 0: none */
    bool on, stopped;
    bool failed, clean, reported; /* gone: once, from net_pump_run */
    bool want_read;               /* net_pump_read */
    bool blocked;                 /* a write would have blocked since out was last empty */
    bool write_wants_read, read_wants_write;
    bool rd_on, wr_on;
};

struct net_pump *net_pump_new(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                              event_callback_fn cb, void *arg)
{
    struct net_pump *u = xcalloc(1, sizeof(*u));
    u->ssl = ssl;
    u->rd = event_new(base, fd, EV_READ | EV_PERSIST, cb, arg);
    u->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, cb, arg);
    u->in = evbuffer_new();
    u->out = evbuffer_new();
    u->want_read = true;
    return u;
}

void net_pump_free(struct net_pump *u)
{
    if (u == NULL)
        return;
    event_free(u->rd);
    event_free(u->wr);
    evbuffer_free(u->in);
    evbuffer_free(u->out);
    free(u);
}

void net_pump_kick(struct net_pump *u)
{
    event_active(u->rd, EV_READ, 0);
}

/* ev added or deleted as want says, *on recording which (no epoll_ctl when it stays). */
static void event_want(struct event *ev, bool *on, bool want)
{
    if (want == *on)
        return;
    if (want)
        event_add(ev, NULL);
    else
        event_del(ev);
    *on = want;
}

/* The events as the state asks. */
static void pump_arm(struct net_pump *u)
{
    bool live = u->on && !u->stopped && !u->failed;
    event_want(u->rd, &u->rd_on, live && (u->want_read || u->write_wants_read));
    event_want(u->wr, &u->wr_on,
               live && ((u->wlen > 0 && !u->write_wants_read) || u->read_wants_write));
}

void net_pump_start(struct net_pump *u)
{
    if (u->on)
        return;
    SSL_set_mode(u->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); /* out's bytes may move */
    SSL_set_read_ahead(u->ssl, 1); /* a record (or more) a read, not header then body */
    u->on = true;
    pump_arm(u);
}

bool net_pump_started(const struct net_pump *u)
{
    return u->on;
}

SSL *net_pump_ssl(const struct net_pump *u)
{
    return u->ssl;
}

/* Stopped by a failure (or the peer's end): reported from the loop. */
static void pump_fail(struct net_pump *u, bool clean)
{
    if (u->failed)
        return;
    u->failed = true;
    u->clean = clean;
    if (!clean) {
        unsigned long e = ERR_peek_last_error();
        if (e != 0)
            log_debug("pump: TLS: %s", ERR_reason_error_string(e));
    }
    ERR_clear_error();
    pump_arm(u);
    event_active(u->rd, EV_READ, 0);
}

void net_pump_flush(struct net_pump *u)
{
    if (!u->on || u->stopped || u->failed || u->write_wants_read)
        return;
    while (evbuffer_get_length(u->out) > 0) {
        size_t len = evbuffer_get_length(u->out);
        int n = u->wlen > 0 ? u->wlen
                            : (int)(len < NET_TLS_PARK_MAX_PLAIN ? len : NET_TLS_PARK_MAX_PLAIN);
        ERR_clear_error();
        int r = SSL_write(u->ssl, evbuffer_pullup(u->out, n), n);
        if (r > 0) {
            evbuffer_drain(u->out, (size_t)r);
            u->wlen = 0;
            continue;
        }
        int e = SSL_get_error(u->ssl, r);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
            pump_fail(u, false);
            return;
        }
        u->wlen = n;
        u->write_wants_read = e == SSL_ERROR_WANT_READ;
        u->blocked = true;
        break;
    }
    pump_arm(u);
}

/* Records to in until OpenSSL holds no more (or PUMP_READ_MAX: again from the loop). */
static void pump_read(struct net_pump *u)
{
    u->read_wants_write = false;
    size_t got = 0;
    while (u->want_read) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(u->in, NET_TLS_PARK_MAX_PLAIN, &v, 1) < 1)
            break;
        ERR_clear_error();
        int r = SSL_read(u->ssl, v.iov_base, (int)v.iov_len);
        if (r > 0) {
            v.iov_len = (size_t)r;
            evbuffer_commit_space(u->in, &v, 1);
            got += (size_t)r;
            if (!SSL_has_pending(u->ssl))
                break; /* more on the socket: the read event again (level-triggered) */
            if (got >= PUMP_READ_MAX) {
                net_pump_kick(u);
                break;
            }
            continue;
        }
        evbuffer_commit_space(u->in, NULL, 0);
        int e = SSL_get_error(u->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_WANT_WRITE) { /* a KeyUpdate's answer, blocked */
            u->read_wants_write = true;
            break;
        }
        pump_fail(u, e == SSL_ERROR_ZERO_RETURN);
        break;
    }
}

void net_pump_run(struct net_pump *u, short what, const struct net_pump_ops *ops, void *arg)
{
    if (!u->on || u->stopped)
        return;
    if (!u->failed && ((what & EV_WRITE) || ((what & EV_READ) && u->write_wants_read))) {
        u->write_wants_read = false;
        net_pump_flush(u);
        if (u->blocked && !u->failed && evbuffer_get_length(u->out) == 0) {
            u->blocked = false;
            ops->drained(arg);
            if (u->stopped)
                return;
        }
    }
    if (!u->failed && ((what & EV_READ) || ((what & EV_WRITE) && u->read_wants_write)))
        pump_read(u);
    if (evbuffer_get_length(u->in) > 0 && u->want_read) {
        ops->readable(arg, u->in);
        if (u->stopped)
            return;
    }
    if (u->failed && !u->reported) {
        u->reported = true;
        ops->gone(arg, u->clean);
        return;
    }
    pump_arm(u);
}

struct evbuffer *net_pump_input(struct net_pump *u)
{
    return u->in;
}

struct evbuffer *net_pump_output(struct net_pump *u)
{
    return u->out;
}

size_t net_pump_pending(const struct net_pump *u)
{
    return evbuffer_get_length(u->out);
}

void net_pump_read(struct net_pump *u, bool on)
{
    if (u->want_read == on)
        return;
    u->want_read = on;
    pump_arm(u);
    if (on && u->on && (SSL_has_pending(u->ssl) || evbuffer_get_length(u->in) > 0))
        net_pump_kick(u); /* nothing new on the socket may wake it */
}

bool net_pump_reading(const struct net_pump *u)
{
    return u->want_read;
}

void net_pump_stop(struct net_pump *u)
{
    u->stopped = true;
    pump_arm(u);
}

bool net_pump_quiet(const struct net_pump *u)
{
    return evbuffer_get_length(u->in) == 0 && evbuffer_get_length(u->out) == 0 && u->wlen == 0 &&
           !u->write_wants_read && !u->read_wants_write && !SSL_has_pending(u->ssl);
}
