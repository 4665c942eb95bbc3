/*
 * http_proxy.c - JMAP through a front-end (see http_proxy.h): the home
 * server's lookup, the request forwarded over a pooled TLS connection
 * (net/net_proxy.h) with the Wharf-Frontend field, the response read with
 * the one HTTP parser (http_parse_response_head, the chunked decoder) and
 * handed to the client as an ordinary response (whole, up to
 * PROXY_BUFFER_MAX) or as a stream (a larger body such as a blob download,
 * with its Content-Length when the back-end gave one; an EventSource), and
 * the back-end's check of that field.
 *
 * A stream is passed on as it arrives, under back-pressure: once the
 * client's output is above its transport's high-water mark
 * (http_response_stream_blocked) the back-end is not read any more, and it is
 * read again when that output has drained (http_response_on_writable). What
 * one exchange holds is then about one high-water mark, whatever the size of
 * the body and however slowly the client reads (`wharf status`:
 * proxy_held, proxy_held_peak).
 *
 * A request body (a blob upload) is forwarded as it comes too, once the
 * route is known from the head (http_request_body_sink): with the client's
 * Content-Length, else chunked. The client is not read any more while more
 * than PROXY_UPLOAD_HIGH_WATER wait for the back-end, and is read again once
 * the back-end took them all (HTTP/2: the stream's window is not given back
 * meanwhile). http_max_body is counted as the body comes (413).
 *
 * Connections to the home servers are kept per home server and reused, one
 * exchange at a time each (no pipelining); an idle one expires after half of
 * http_idle_timeout, before the back-end would close it. A GET that finds
 * its reused connection closed by the back-end is sent once more on a fresh
 * one; anything else gets 503 (nothing was answered), never a wrong mailbox.
 *
 * Must never: forward a request of a user other than the one the front-end
 * authenticated, or the client's Authorization, Cookie or Wharf-Frontend.
 */
#include "http/http_proxy.h"
#include "base/alloc.h"
#include "base/log.h"
#include "directory/directory_client.h"
#include "net/net_proxy.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest response head from a back-end. */
#define PROXY_MAX_HEAD (64 * 1024)
/* Idle connections kept per home server. */
#define PROXY_MAX_IDLE 8
/*
 * Largest response body gathered whole before it is sent (with the
 * front-end's compression, and a 502 if the back-end fails midway); a larger
 * one streams: a front-end must not hold a 50 MB download per client.
 */
#define PROXY_BUFFER_MAX (64 * 1024)
/*
 * Request body bytes queued to a back-end before the client is not read any
 * more (as a spliced session's, net_proxy.c): an upload costs the front-end
 * about this (plus the client's own read buffer or stream window), not its size.
 */
#define PROXY_UPLOAD_HIGH_WATER (256 * 1024)

enum fwd_state { F_LOOKUP, F_HEAD, F_BODY_LENGTH, F_BODY_CHUNKED };

struct backend;

/* One exchange forwarded (or waiting for the home server's name). */
struct fwd {
    struct http_request *req;
    struct http_response *res;
    struct backend *be;
    void *dir_handle;
    char *home;
    enum fwd_state st;
    uint64_t left;
    struct http_chunked chunked;
    bool streaming, retried, got_bytes, keep_alive, no_body;
    bool push;    /* an EventSource: a failure ends it (the client reconnects), never cuts it */
    bool paused;  /* the back-end is not read until the client's output drains */
    bool upgrade; /* a WebSocket handshake (HTTP/1.1): a 101 splices the connection */
    bool body;    /* the request body streams to the back-end (http_request_body_sink) */
    bool body_chunked; /* ... with chunked framing (the client gave no length) */
    bool up_paused;    /* the client is not read until the back-end took what waits for it */
};

/* One TLS connection to a home server's https service. */
struct backend {
    struct net_proxy *p;
    char host[NET_PROXY_MAX_HOST + 1];
    bool up, reused;
    struct fwd *x; /* the exchange it carries; NULL: idle */
    struct backend *next;
};

static size_t fwd_held(struct fwd *x);

static struct {
    struct http_server *srv;
    struct directory_client *dir; /* NULL: this server never proxies */
    struct backend *pool;
    size_t held_peak;       /* the most one exchange held at once (status: proxy_held_peak) */
    uint64_t upload_stalls; /* uploads ended with 504: the back-end took nothing for long */
} hp;

void http_proxy_init(struct http_server *srv)
{
    hp.srv = srv;
    const struct wharf_config *cfg = srv->cfg;
    if (net_proxy_is_frontend(cfg) || cfg->frontend_secret[0] != '\0')
        hp.dir = directory_client_new(http_server_base(srv), cfg);
}

bool http_proxy_enabled(void)
{
    return hp.dir != NULL;
}

void http_proxy_status(void *arg, json_t *obj)
{
    (void)arg;
    if (hp.dir == NULL)
        return; /* this server never proxies */
    size_t held = 0, paused = 0, up_paused = 0;
    for (struct backend *b = hp.pool; b; b = b->next) {
        held += b->x != NULL ? fwd_held(b->x) : 0;
        paused += b->x != NULL && b->x->paused;
        up_paused += b->x != NULL && b->x->up_paused;
    }
    json_object_set_new(obj, "proxy_held", json_integer((json_int_t)held));
    json_object_set_new(obj, "proxy_paused", json_integer((json_int_t)paused));
    json_object_set_new(obj, "proxy_uploads_paused", json_integer((json_int_t)up_paused));
    json_object_set_new(obj, "proxy_held_peak", json_integer((json_int_t)hp.held_peak));
    json_object_set_new(obj, "proxy_upload_stalls", json_integer((json_int_t)hp.upload_stalls));
}

static void backend_drop(struct backend *be)
{
    for (struct backend **pp = &hp.pool; *pp; pp = &(*pp)->next) {
        if (*pp == be) {
            *pp = be->next;
            break;
        }
    }
    net_proxy_free(be->p); /* inside its own callback: freed when that returns */
    free(be);
}

void http_proxy_free(void)
{
    while (hp.pool != NULL)
        backend_drop(hp.pool);
    if (hp.dir != NULL)
        directory_client_free(hp.dir);
    hp.dir = NULL;
}

/* ---- the back-end's side ---- */

bool http_proxy_handover(struct http_request *req, const char *value, char **account_r)
{
    struct net_conn *c = http_request_net_conn(req);
    struct buf why = BUF_INIT;
    /* "account client-address mac": three words, one space between. */
    char *copy = xstrdup(value);
    char *acc = copy, *addr = strchr(acc, ' '), *mac = addr ? strchr(addr + 1, ' ') : NULL;
    bool ok = false;
    if (mac == NULL || strchr(mac + 1, ' ') != NULL || addr == acc) {
        buf_printf(&why, "malformed %s field", HTTP_PROXY_FIELD);
    } else {
        *addr++ = '\0';
        *mac++ = '\0';
        ok = net_proxy_handover_check(c, "http", acc, addr, mac, &why);
    }
    if (!ok)
        log_warning("http: hand-over from %s refused: %s", net_conn_peer_addr(c), buf_cstr(&why));
    else
        *account_r = xstrdup(acc);
    free(copy);
    buf_free(&why);
    return ok;
}

/* ---- the front-end's side ---- */

static void fwd_free(struct fwd *x)
{
    if (x->dir_handle != NULL)
        directory_client_cancel(hp.dir, x->dir_handle);
    free(x->home);
    free(x);
}

/* x is done with res: res is no longer ours to touch after this. */
static struct http_response *fwd_release(struct fwd *x)
{
    struct http_response *res = x->res;
    res->on_close = NULL;
    res->on_writable = NULL;
    if (x->be != NULL)
        x->be->x = NULL;
    fwd_free(x);
    return res;
}

static void fwd_error(struct fwd *x, int status, const char *text)
{
    bool streaming = x->streaming, push = x->push;
    struct http_response *res = fwd_release(x);
    if (push) {
        http_response_stream_end(res); /* the client sees the stream end, and reconnects */
        return;
    }
    if (streaming) {
        http_response_stream_abort(res); /* a body cut short must not look whole */
        return;
    }
    buf_reset(&res->headers);
    res->compressible = res->encoded = false;
    if (status == 503)
        http_response_header(res, "Retry-After", "30");
    http_response_text(res, status, text);
    http_response_finish(res);
}

static void fwd_gone(void *arg)
{
    struct fwd *x = arg;
    if (x->body && x->be != NULL)
        log_info("proxy: user=<%s>, rip=%s: the client went away during the request; "
                 "closing the connection to %s",
                 x->req->user, http_request_remote_addr(x->req), net_proxy_peer(x->be->p));
    if (x->be != NULL)
        backend_drop(x->be); /* in the middle of an exchange: its state is unknown */
    x->be = NULL;
    fwd_free(x);
}

/* n is one of the n_names field names (any case). */
static bool named_in(struct slice n, const char *const *names, size_t n_names)
{
    for (size_t i = 0; i < n_names; i++) {
        if (slice_eq_cstr_nocase(n, names[i]))
            return true;
    }
    return false;
}

/* Fields never passed to a back-end: hop-by-hop, framing, the client's credentials. */
static bool request_field_dropped(struct slice n)
{
    static const char *const drop[] = {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
        "authorization",
        "cookie",
        "http2-settings",
        "proxy-authorization",
        HTTP_PROXY_FIELD,
    };
    return named_in(n, drop, sizeof(drop) / sizeof(drop[0]));
}

/* Fields of a back-end's response the front-end sets itself (http_response_fields, framing). */
static bool response_field_dropped(struct slice n)
{
    static const char *const drop[] = {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "trailer",
        "upgrade",
        "date",
        "server",
        "strict-transport-security",
        "x-content-type-options",
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
    };
    return named_in(n, drop, sizeof(drop) / sizeof(drop[0]));
}

static const struct http_body_sink fwd_body_sink;

static void send_request(struct fwd *x)
{
    struct http_request *req = x->req;
    struct backend *be = x->be;
    const struct wharf_config *cfg = hp.srv->cfg;
    const char *addr = http_request_remote_addr(req);
    char mac[NET_PROXY_MAC_HEX + 1];
    if (!net_proxy_handover_mac(be->p, "http", req->user, addr, mac)) {
        log_warning("proxy: user=<%s>, rip=%s: home server %s: cannot compute the hand-over MAC",
                    req->user, addr, net_proxy_peer(be->p));
        backend_drop(be);
        x->be = NULL;
        fwd_error(x, 503, "Your mailbox server is not available now, try again later");
        return;
    }
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s %s%s%s HTTP/1.1\r\nHost: %s\r\n", req->method, req->path,
               req->query[0] ? "?" : "", req->query, req->host[0] ? req->host : cfg->myhostname);
    for (size_t i = 0; i < req->head.n_fields; i++) {
        const struct http_field *f = &req->head.fields[i];
        if (request_field_dropped(f->name))
            continue;
        buf_append_slice(&b, f->name);
        buf_append_cstr(&b, ": ");
        buf_append_slice(&b, f->value);
        buf_append_cstr(&b, "\r\n");
    }
    buf_printf(&b, "%s: %s %s %s\r\n", HTTP_PROXY_FIELD, req->user, addr, mac);
    if (x->upgrade)
        buf_append_cstr(&b, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
    /* A body not read yet streams (its route was decided from the head). */
    bool stream = req->flow == HTTP_FLOW_WAIT;
    int64_t length = stream ? http_request_body_length(req) : -1;
    if (stream && length < 0)
        buf_append_cstr(&b, "Transfer-Encoding: chunked\r\n");
    else if (stream)
        buf_printf(&b, "Content-Length: %lld\r\n", (long long)length);
    else if (req->body.len > 0 || strcmp(req->method, "POST") == 0 ||
             strcmp(req->method, "PUT") == 0)
        buf_printf(&b, "Content-Length: %zu\r\n", req->body.len);
    buf_append_cstr(&b, "\r\n");
    net_proxy_write(be->p, b.data, b.len);
    if (!stream && req->body.len > 0)
        net_proxy_write(be->p, req->body.data, req->body.len);
    buf_free(&b);
    /* The back-end has as long to answer as a client has to send a request (once the
     * body is all there: a long upload is not its silence). */
    net_proxy_set_timeout(be->p, stream ? 0 : cfg->http_idle_timeout);
    x->st = F_HEAD;
    if (stream) {
        x->body = true;
        x->body_chunked = length < 0;
        http_request_body_sink(req, &fwd_body_sink, x); /* the last thing: may answer x */
    }
}

/* The request body's bytes to the back-end; the client waits while too many are queued. */
static void fwd_body_data(void *arg, const void *p, size_t n)
{
    struct fwd *x = arg;
    struct net_proxy *np = x->be->p;
    if (x->body_chunked) {
        char size[24];
        int len = snprintf(size, sizeof(size), "%zx\r\n", n);
        net_proxy_write(np, size, (size_t)len);
    }
    net_proxy_write(np, p, n);
    if (x->body_chunked)
        net_proxy_write(np, "\r\n", 2);
    size_t held = fwd_held(x);
    if (held > hp.held_peak)
        hp.held_peak = held;
    if (!x->up_paused && net_proxy_output_length(np) > PROXY_UPLOAD_HIGH_WATER) {
        x->up_paused = true;
        /* The client waits for the back-end now: as long as a client has to send a
         * request, then 504 (be_failed), rather than both held for ever. */
        net_proxy_set_timeout(np, hp.srv->cfg->http_idle_timeout);
        http_request_body_pause(x->req, true); /* until be_drained */
    }
}

/* The request body's end: whole (the back-end now has its time to answer), or refused
 * (over http_max_body, bad chunked framing): the back-end got half a request and goes. */
static void fwd_body_end(void *arg, int status)
{
    struct fwd *x = arg;
    if (status != 0) {
        log_info("proxy: user=<%s>, rip=%s: request body refused (%d)", x->req->user,
                 http_request_remote_addr(x->req), status);
        backend_drop(x->be);
        x->be = NULL;
        fwd_error(x, status, http_status_text(status));
        return;
    }
    if (x->body_chunked)
        net_proxy_write(x->be->p, "0\r\n\r\n", 5);
    net_proxy_set_timeout(x->be->p, hp.srv->cfg->http_idle_timeout);
}

static const struct http_body_sink fwd_body_sink = {
    .data = fwd_body_data,
    .end = fwd_body_end,
};

/* The back-end took every byte queued for it: an upload's client is read again. */
static void be_drained(void *arg)
{
    struct backend *be = arg;
    struct fwd *x = be->x;
    if (x == NULL || !x->up_paused)
        return;
    x->up_paused = false;
    if (x->req->flow == HTTP_FLOW_SINK)
        net_proxy_set_timeout(be->p, 0); /* the body is still coming: the client's time */
    http_request_body_pause(x->req, false);
}

static void forward(struct fwd *x, bool fresh);

/* The exchange is answered whole: the connection goes back to the pool, or away. */
static void exchange_complete(struct fwd *x)
{
    struct backend *be = x->be;
    bool keep = x->keep_alive && evbuffer_get_length(net_proxy_input(be->p)) == 0;
    bool streaming = x->streaming;
    struct http_response *res = fwd_release(x);
    if (streaming)
        http_response_stream_end(res);
    else
        http_response_finish(res);
    unsigned idle = 0;
    for (struct backend *b = hp.pool; b; b = b->next)
        idle += b != be && b->x == NULL && strcmp(b->host, be->host) == 0;
    if (!keep || idle >= PROXY_MAX_IDLE) {
        backend_drop(be);
        return;
    }
    net_proxy_set_timeout(be->p, hp.srv->cfg->http_idle_timeout / 2);
}

/* What x holds now: the body gathered, the back-end's bytes not yet read, and a stream's
 * output not yet sent to the client. */
static size_t fwd_held(struct fwd *x)
{
    size_t n = x->res->body.len;
    if (x->be != NULL)
        n += evbuffer_get_length(net_proxy_input(x->be->p)) + net_proxy_output_length(x->be->p);
    if (x->body && x->req != NULL)
        n += http_request_body_buffered(x->req);
    if (x->streaming)
        n += http_response_stream_pending(x->res);
    return n;
}

/* The client's output drained: the back-end is read again. */
static void fwd_writable(void *arg)
{
    struct fwd *x = arg;
    if (!x->paused || x->be == NULL || http_response_stream_blocked(x->res))
        return;
    x->paused = false;
    net_proxy_resume(x->be->p);
}

/* After bytes went to a stream: the back-end waits while the client's output is full. */
static void fwd_flow(struct fwd *x)
{
    size_t held = fwd_held(x);
    if (held > hp.held_peak)
        hp.held_peak = held;
    if (x->streaming && !x->paused && http_response_stream_blocked(x->res)) {
        x->paused = true;
        net_proxy_pause(x->be->p);
    }
}

/* From now on the body goes to the client as it comes (sized: with its Content-Length);
 * what was gathered so far goes first. */
static void fwd_stream(struct fwd *x, bool sized)
{
    struct http_response *res = x->res;
    x->streaming = true;
    http_response_on_writable(res, fwd_writable, x);
    if (sized)
        http_response_stream_start_length(res, x->left);
    else
        http_response_stream_start(res);
    http_response_stream_write(res, res->body.data, res->body.len);
    buf_free(&res->body);
}

/* The response head: status and fields into res; false when x is gone. */
static bool read_head(struct fwd *x, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    size_t n = len < PROXY_MAX_HEAD ? len : PROXY_MAX_HEAD;
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
    struct http_parse_limits lim = hp.srv->limits;
    lim.max_head = lim.max_request_line = PROXY_MAX_HEAD;
    lim.max_body = UINT64_MAX;
    struct http_head h;
    http_head_init(&h);
    int code = 0, status = 0;
    size_t used = 0;
    const char *why = NULL;
    enum http_parse_result r =
        http_parse_response_head(p, n, &lim, &h, &code, &used, &status, &why);
    if (r == HTTP_PARSE_NEED_MORE && len < PROXY_MAX_HEAD) {
        http_head_free(&h);
        return false;
    }
    bool switching = r == HTTP_PARSE_OK && code == 101 && x->upgrade;
    if (r != HTTP_PARSE_OK || (code < 200 && !switching)) { /* no Expect is passed on */
        log_warning("proxy: user=<%s>: home server %s: bad response (%s)", x->req->user,
                    net_proxy_peer(x->be->p),
                    r == HTTP_PARSE_OK ? "1xx"
                    : why              ? why
                                       : "too long");
        http_head_free(&h);
        backend_drop(x->be);
        x->be = NULL;
        fwd_error(x, 502, "Bad Gateway");
        return false;
    }
    struct http_response *res = x->res;
    http_response_status(res, code);
    struct buf name = BUF_INIT, value = BUF_INIT;
    bool event_stream = false;
    for (size_t i = 0; i < h.n_fields; i++) {
        if (response_field_dropped(h.fields[i].name) &&
            !(switching && (slice_eq_cstr_nocase(h.fields[i].name, "connection") ||
                            slice_eq_cstr_nocase(h.fields[i].name, "upgrade"))))
            continue;
        buf_reset(&name);
        buf_reset(&value);
        buf_append_slice(&name, h.fields[i].name);
        buf_append_slice(&value, h.fields[i].value);
        if (strcasecmp(buf_cstr(&name), "Content-Type") == 0 &&
            strncasecmp(buf_cstr(&value), "text/event-stream", 17) == 0)
            event_stream = true;
        http_response_header(res, buf_cstr(&name), buf_cstr(&value));
    }
    buf_free(&name);
    buf_free(&value);
    x->keep_alive = h.keep_alive;
    x->no_body = x->no_body || code == 204 || code == 304;
    enum http_body_kind body = x->no_body ? HTTP_BODY_NONE : h.body;
    x->left = h.content_length;
    http_head_free(&h);
    evbuffer_drain(in, used);
    if (switching) {
        /* The WebSocket: this connection leaves the pool and becomes the client's. */
        struct backend *be = x->be;
        struct net_proxy *np = be->p;
        for (struct backend **pp = &hp.pool; *pp; pp = &(*pp)->next) {
            if (*pp == be) {
                *pp = be->next;
                break;
            }
        }
        free(be);
        x->be = NULL;
        net_proxy_set_arg(np, NULL);
        net_proxy_set_timeout(np, 0);
        http_exchange_splice(fwd_release(x), np);
        return false;
    }
    if (body == HTTP_BODY_LENGTH) {
        x->st = F_BODY_LENGTH;
        if (x->left > PROXY_BUFFER_MAX)
            fwd_stream(x, true); /* a download: to the client as it comes, with its length */
        else
            buf_reserve(&res->body, (size_t)x->left);
    } else if (body == HTTP_BODY_CHUNKED) {
        x->st = F_BODY_CHUNKED;
        http_chunked_init(&x->chunked);
        if (event_stream) {
            /* A push stream: to the client as it comes; the back-end pings or stays quiet. */
            x->push = true;
            net_proxy_set_timeout(x->be->p, 0);
            fwd_stream(x, false);
            /* Quiet for hours, as a direct stream (http_request_release): the client's TLS
             * parks as soon as the head is out, not after tls_park_idle. Over HTTP/2 the
             * connection carries other streams: it parks when quiet, as any. */
            if (x->req->h2 == NULL)
                net_conn_park_soon(http_request_net_conn(x->req));
        }
    } else {
        exchange_complete(x);
        return false;
    }
    return true;
}

/* Body bytes; false when x is gone (answered or failed). */
static bool read_body(struct fwd *x, struct evbuffer *in)
{
    struct http_response *res = x->res;
    if (x->st == F_BODY_LENGTH) {
        struct evbuffer_iovec v;
        while (x->streaming && x->left > 0 && evbuffer_peek(in, -1, NULL, &v, 1) == 1 &&
               v.iov_len > 0) {
            size_t n = v.iov_len < x->left ? v.iov_len : (size_t)x->left;
            http_response_stream_write(res, v.iov_base, n);
            evbuffer_drain(in, n);
            x->left -= n;
        }
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < x->left ? avail : (size_t)x->left;
        if (n > 0) {
            buf_reserve(&res->body, n);
            evbuffer_remove(in, res->body.data + res->body.len, n);
            res->body.len += n;
            x->left -= n;
        }
        if (x->left > 0) {
            fwd_flow(x);
            return false;
        }
        exchange_complete(x);
        return false;
    }
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return false;
        struct buf out = BUF_INIT;
        size_t used = 0;
        int status = 0;
        const char *why = NULL;
        enum http_parse_result r = http_chunked_feed(&x->chunked, v.iov_base, v.iov_len, UINT64_MAX,
                                                     &out, &used, &status, &why);
        evbuffer_drain(in, used);
        if (out.len > 0) {
            if (x->streaming)
                http_response_stream_write(res, out.data, out.len);
            else
                buf_append(&res->body, out.data, out.len);
            if (!x->streaming && res->body.len > PROXY_BUFFER_MAX)
                fwd_stream(x, false); /* longer than we gather: chunked to the client */
        }
        buf_free(&out);
        if (r == HTTP_PARSE_OK) {
            exchange_complete(x);
            return false;
        }
        if (r == HTTP_PARSE_ERROR) {
            log_warning("proxy: user=<%s>: home server %s: bad chunked body (%s)", x->req->user,
                        net_proxy_peer(x->be->p), why);
            backend_drop(x->be);
            x->be = NULL;
            fwd_error(x, 502, "Bad Gateway");
            return false;
        }
        fwd_flow(x);
        if (x->paused)
            return false; /* the rest stays in the back-end's buffer until the client reads */
    }
}

static void be_data(void *arg, struct evbuffer *in)
{
    struct backend *be = arg;
    struct fwd *x = be->x;
    if (x == NULL || x->st == F_LOOKUP) {
        /* Bytes nobody asked for: this connection cannot be trusted with the next exchange. */
        if (evbuffer_get_length(in) > 0 && x == NULL)
            backend_drop(be);
        return;
    }
    x->got_bytes = true;
    if (x->st == F_HEAD && !read_head(x, in))
        return;
    read_body(x, in);
}

static void be_connected(void *arg)
{
    struct backend *be = arg;
    be->up = true;
    if (be->x != NULL)
        send_request(be->x);
}

static void be_failed(void *arg, const char *why)
{
    struct backend *be = arg;
    struct fwd *x = be->x;
    bool reused = be->reused, timed_out = net_proxy_timed_out(be->p);
    char peer[NET_PROXY_MAX_HOST + 8];
    snprintf(peer, sizeof(peer), "%s", net_proxy_peer(be->p));
    backend_drop(be);
    if (x == NULL)
        return; /* an idle connection expired or was closed */
    x->be = NULL;
    if (x->up_paused && timed_out) {
        /* It took nothing of the upload for http_idle_timeout while its client waited. */
        hp.upload_stalls++;
        log_warning("proxy: user=<%s>, rip=%s: home server %s took none of the request body "
                    "for http_idle_timeout; giving up",
                    x->req->user, http_request_remote_addr(x->req), peer);
        fwd_error(x, 504, "Gateway Timeout");
        return;
    }
    if (x->body) {
        /* Gone with (part of) the request: not sent again, and not "unavailable" either. */
        log_warning("proxy: user=<%s>, rip=%s: home server %s: %s during the request", x->req->user,
                    http_request_remote_addr(x->req), peer, why);
        fwd_error(x, 502, "Bad Gateway");
        return;
    }
    /* A reused connection the back-end had closed meanwhile: a GET goes once more. */
    if (reused && !x->got_bytes && !x->retried &&
        (strcmp(x->req->method, "GET") == 0 || strcmp(x->req->method, "HEAD") == 0)) {
        x->retried = true;
        forward(x, true);
        return;
    }
    log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", x->req->user,
                http_request_remote_addr(x->req), peer, why);
    fwd_error(x, 503, "Your mailbox server is not available now, try again later");
}

static const struct net_proxy_ops be_ops = {
    .failed = be_failed,
    .connected = be_connected,
    .data = be_data,
    .drained = be_drained,
};

static void forward(struct fwd *x, bool fresh)
{
    struct backend *be = NULL;
    for (struct backend *b = hp.pool; b && !fresh; b = b->next) {
        if (b->x == NULL && b->up && strcmp(b->host, x->home) == 0) {
            be = b;
            break;
        }
    }
    if (be != NULL) {
        be->reused = true;
        be->x = x;
        x->be = be;
        send_request(x);
        return;
    }
    struct buf why = BUF_INIT;
    struct net_proxy *p =
        net_proxy_open(http_server_worker(hp.srv), x->home,
                       (unsigned)hp.srv->cfg->frontend_https_port, &be_ops, NULL, &why);
    if (p == NULL) {
        log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", x->req->user,
                    http_request_remote_addr(x->req), x->home, buf_cstr(&why));
        buf_free(&why);
        fwd_error(x, 503, "Your mailbox server is not available now, try again later");
        return;
    }
    buf_free(&why);
    be = xcalloc(1, sizeof(*be));
    be->p = p;
    net_proxy_set_arg(p, be);
    snprintf(be->host, sizeof(be->host), "%s", x->home);
    be->x = x;
    x->be = be;
    x->st = F_HEAD; /* sent once connected */
    be->next = hp.pool;
    hp.pool = be;
}

static bool res_is_h2(const struct http_response *res)
{
    return res->h2 != NULL;
}

static void home_known(void *arg, const struct directory_answer *a)
{
    struct fwd *x = arg;
    x->dir_handle = NULL;
    const struct wharf_config *cfg = hp.srv->cfg;
    struct http_request *req = x->req;
    bool ok = a->status == DIRECTORY_LOOKUP_OK && a->kind == DIRECTORY_LOCAL;
    if (req->handover_user != NULL) {
        /* A front-end sent this account here: it must live here. */
        if (ok && net_proxy_home_is_here(cfg, a->home)) {
            http_exchange_run(fwd_release(x));
            return;
        }
        log_warning("http: user=<%s>, rip=%s: hand-over refused: %s", req->user,
                    http_request_remote_addr(req),
                    ok ? "the account's home server is another one" : "no such account here");
        fwd_error(x, 403, "This account's mailbox is not on this server");
        return;
    }
    if (ok && net_proxy_wanted(cfg, a->home)) {
        if (!net_proxy_one_word(req->user)) {
            fwd_error(x, 503, "Your mailbox server is not available now, try again later");
            return;
        }
        const char *up = http_request_header(req, "Upgrade");
        if (up != NULL) {
            if (res_is_h2(x->res) || strcasecmp(up, "websocket") != 0) {
                fwd_error(x, 426, "WebSocket needs HTTP/1.1");
                return;
            }
            x->upgrade = true;
        }
        x->home = xstrdup(a->home);
        x->no_body = strcmp(req->method, "HEAD") == 0;
        forward(x, false);
        return;
    }
    if (net_proxy_is_frontend(cfg)) {
        log_warning("http: user=<%s>, rip=%s: %s", req->user, http_request_remote_addr(req),
                    a->status != DIRECTORY_LOOKUP_OK ? "the directory is not available"
                                                     : "no home server for this account");
        fwd_error(x, 503, "Your mailbox server is not available now, try again later");
        return;
    }
    http_exchange_run(fwd_release(x));
}

bool http_proxy_route(struct http_request *req, struct http_response *res)
{
    if (hp.dir == NULL || req->user == NULL)
        return false;
    struct fwd *x = xcalloc(1, sizeof(*x));
    x->req = req;
    x->res = res;
    x->st = F_LOOKUP;
    http_response_defer(res);
    http_response_on_close(res, fwd_gone, x);
    x->dir_handle = directory_client_lookup(hp.dir, DIRECTORY_Q_ACCOUNT, req->user, home_known, x);
    return true;
}
