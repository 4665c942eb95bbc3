/*
 * http_conn.c - one HTTP connection on the network kit (net_proto):
 * reading HTTP/1.1 requests with the strict parser (keep-alive, pipelining,
 * one request at a time, in order), Basic authentication through the login
 * kit, dispatch to the routes, and the response side of http_route.h (at
 * once, deferred, streamed). A TLS connection whose handshake chose h2 is
 * handed to http_h2.c, which brings its streams back here as the same
 * request and response objects (http_conn.h). Port 80 only redirects to
 * https and serves ACME http-01 challenges (http_plain.c's job, called from
 * here).
 *
 * Must never: answer a request whose framing the parser refused other than
 * with its 4xx and a close, read the next request before the current one is
 * answered, send a password anywhere but to the auth process, or touch a
 * connection after net_conn_close (closed() may free it at once).
 */
#include "http/http_conn.h"
#include "base/alloc.h"
#include "http/http_proxy.h"
#include "base/base64.h"
#include "base/clock.h"
#include "base/date.h"
#include "base/log.h"
#include "http/webmail.h"
#include "net/net_compress.h"
#include "net/net_proxy.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Smaller bodies are sent as they are: a coding's framing eats the gain. */
#define HTTP_COMPRESS_MIN 256

enum conn_state {
    ST_HEAD,    /* reading a request head */
    ST_BODY,    /* reading its body */
    ST_AUTH,    /* its credentials are at the auth process */
    ST_HANDLER, /* a handler holds it (deferred or streaming) */
    ST_DONE,    /* answered with close: nothing more is read */
};

struct http_conn {
    struct http_server *srv;
    struct net_conn *c;
    bool plain; /* port 80 */
    enum conn_state state;
    bool close_after;         /* the current exchange is the last one */
    int in_process;           /* inside process(): it goes on by itself after an answer */
    struct http_request *req; /* HTTP/1.1: the exchange under way */
    struct http_response *res;
    struct http_h2 *h2;       /* HTTP/2 (ALPN h2): the session, which owns its exchanges */
    struct http_ws *ws;       /* after a WebSocket upgrade: frames, no more requests */
    struct net_proxy *splice; /* after a home server's 101 (a front-end): bytes both ways */
    size_t scanned;           /* head bytes known to hold no LF yet */
    uint64_t body_left;
    struct http_chunked chunked;
    struct auth_login *login;
    struct http_response *auth_res;   /* the exchange whose credentials are being checked */
    struct http_response *auth_queue; /* HTTP/2: exchanges waiting for the login kit */
    char *auth_header; /* the Authorization value that logged in on this connection */
    char *user;
    unsigned requests;
};

/* ---- requests ---- */

void http_request_free(struct http_request *req)
{
    if (req == NULL)
        return;
    http_head_free(&req->head);
    explicit_bzero(req->raw.data, req->raw.len); /* may hold credentials */
    buf_free(&req->raw);
    buf_free(&req->body);
    free(req->method);
    free(req->path);
    free(req->query);
    free(req->host);
    free(req->handover_user);
    free(req);
}

/* The webmail's sign-in password or session token, gone from memory. */
static void session_cred_free(struct http_response *res)
{
    if (res->session_cred.cap > 0)
        explicit_bzero(res->session_cred.data, res->session_cred.len);
    buf_free(&res->session_cred);
}

void http_response_free(struct http_response *res)
{
    if (res == NULL)
        return;
    http_ws_free(res->upgrade); /* a handshake answered but never sent */
    session_cred_free(res);
    buf_free(&res->headers);
    buf_free(&res->body);
    free(res);
}

const char *http_request_method(const struct http_request *req)
{
    return req->method;
}

const char *http_request_path(const struct http_request *req)
{
    return req->path;
}

const char *http_request_query(const struct http_request *req)
{
    return req->query;
}

const char *http_request_host(const struct http_request *req)
{
    return req->host;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    struct slice v = http_head_field(&req->head, name);
    if (v.ptr == NULL)
        return NULL;
    /* The value is followed by OWS or CR in raw: NUL-terminate a copy there. */
    struct http_request *r = (struct http_request *)req;
    size_t off = (size_t)(v.ptr - r->raw.data);
    if (off + v.len < r->raw.len &&
        (r->raw.data[off + v.len] == '\r' || r->raw.data[off + v.len] == ' ' ||
         r->raw.data[off + v.len] == '\t' || r->raw.data[off + v.len] == '\0')) {
        r->raw.data[off + v.len] = '\0';
        return v.ptr;
    }
    return "";
}

struct slice http_request_body(const struct http_request *req)
{
    return buf_slice(&req->body);
}

const char *http_request_remote_addr(const struct http_request *req)
{
    return net_conn_addr(req->conn->c);
}

struct net_conn *http_request_net_conn(const struct http_request *req)
{
    return req->conn->c;
}

bool http_request_is_tls(const struct http_request *req)
{
    return net_conn_is_tls(req->conn->c);
}

const char *http_request_user(const struct http_request *req)
{
    return req->user;
}

struct http_server *http_request_server(const struct http_request *req)
{
    return req->conn->srv;
}

/* ---- responses ---- */

void http_response_status(struct http_response *res, int status)
{
    res->status = status;
}

/* Text-like media types: what compression shrinks (not images, archives, octet streams). */
static bool compressible_type(const char *type)
{
    static const char *const text[] = {"text/", "application/json", "application/xml",
                                       "application/javascript", "image/svg+xml"};
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        if (strncasecmp(type, text[i], strlen(text[i])) == 0)
            return true;
    }
    const char *semi = strchr(type, ';');
    size_t n = semi ? (size_t)(semi - type) : strlen(type);
    return (n > 5 && strncasecmp(type + n - 5, "+json", 5) == 0) ||
           (n > 4 && strncasecmp(type + n - 4, "+xml", 4) == 0);
}

/* A qvalue (RFC 9110 12.4.2) in thousandths; -1 when malformed. */
static int qvalue(struct slice q)
{
    if (q.len == 0 || q.len > 5 || (q.ptr[0] != '0' && q.ptr[0] != '1') ||
        (q.len > 1 && q.ptr[1] != '.'))
        return -1;
    int v = (q.ptr[0] - '0') * 1000;
    for (size_t i = 2, scale = 100; i < q.len; i++, scale /= 10) {
        if (q.ptr[i] < '0' || q.ptr[i] > '9')
            return -1;
        v += (q.ptr[i] - '0') * (int)scale;
    }
    return v > 1000 ? -1 : v;
}

/*
 * The content coding for a response to a request with this Accept-Encoding
 * (RFC 9110 12.5.3): the one with the highest q above 0 among those we have,
 * a coding not named taking the q of "*"; on a tie our order (zstd, br,
 * gzip: fastest for the same size first). Identity when none.
 */
static enum net_coding choose_coding(const char *ae)
{
    static const struct {
        const char *name;
        enum net_coding c;
    } ours[] = {{"zstd", NET_CODING_ZSTD},
                {"br", NET_CODING_BROTLI},
                {"gzip", NET_CODING_GZIP},
                {"x-gzip", NET_CODING_GZIP}};
    enum { N = sizeof(ours) / sizeof(ours[0]) };
    int q[N], star = -1;
    for (size_t i = 0; i < N; i++)
        q[i] = -1; /* not named */
    while (ae != NULL && *ae) {
        size_t n = strcspn(ae, ",");
        struct slice item = slice_trim(slice_make(ae, n));
        const char *semi = memchr(item.ptr, ';', item.len);
        struct slice coding =
            slice_trim(slice_make(item.ptr, semi ? (size_t)(semi - item.ptr) : item.len));
        int v = 1000;
        if (semi) {
            struct slice param =
                slice_trim(slice_make(semi + 1, item.len - (size_t)(semi + 1 - item.ptr)));
            if (slice_startswith_nocase(param, "q="))
                v = qvalue(slice_make(param.ptr + 2, param.len - 2));
        }
        if (v >= 0) { /* a malformed q drops the item */
            if (slice_eq_cstr_nocase(coding, "*"))
                star = v;
            for (size_t i = 0; i < N; i++)
                if (slice_eq_cstr_nocase(coding, ours[i].name))
                    q[i] = v;
        }
        ae += n;
        if (*ae == ',')
            ae++;
    }
    enum net_coding best = NET_CODING_IDENTITY;
    int best_q = 0;
    for (size_t i = 0; i < N; i++) {
        int v = q[i] >= 0 ? q[i] : star;
        if (v > best_q) {
            best = ours[i].c;
            best_q = v;
        }
    }
    return best;
}

static bool header_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

void http_response_header(struct http_response *res, const char *name, const char *value)
{
    if (!header_safe(name) || !header_safe(value)) {
        log_error("http: refusing a response header with CR or LF (%s)", name);
        return;
    }
    if (strcasecmp(name, "Content-Type") == 0)
        res->compressible = compressible_type(value);
    else if (strcasecmp(name, "Content-Encoding") == 0)
        res->encoded = true;
    buf_printf(&res->headers, "%s: %s\r\n", name, value);
}

void http_response_content_type(struct http_response *res, const char *type)
{
    http_response_header(res, "Content-Type", type);
}

struct buf *http_response_body(struct http_response *res)
{
    return &res->body;
}

void http_response_text(struct http_response *res, int status, const char *text)
{
    res->status = status;
    http_response_content_type(res, "text/plain; charset=utf-8");
    buf_reset(&res->body);
    buf_append_cstr(&res->body, text);
    buf_append_byte(&res->body, '\n');
}

void http_response_fields(struct http_response *res, const char *framing, struct buf *h)
{
    struct http_conn *hc = res->conn;
    buf_append_cstr(h, "Date: ");
    date_http_append(wallclock_ms() / 1000, h);
    buf_append_cstr(h, "\r\nServer: Wharf\r\n");
    if (net_conn_is_tls(hc->c))
        buf_printf(h, "Strict-Transport-Security: max-age=%lld\r\n",
                   (long long)(hc->srv->cfg->http_hsts_max_age / 1000));
    buf_append_cstr(h, "X-Content-Type-Options: nosniff\r\n"
                       "Content-Security-Policy: frame-ancestors 'none'\r\n"
                       "X-Frame-Options: DENY\r\n"
                       "Referrer-Policy: no-referrer\r\n");
    buf_append(h, res->headers.data, res->headers.len);
    if (framing)
        buf_append_cstr(h, framing);
}

/* A request whose handler ran before its body was read, and whose body was not read to
 * its end (HTTP/1.1: the connection cannot go on to a next request). */
static bool body_unread(const struct http_request *req)
{
    return req != NULL && req->flow != HTTP_FLOW_READ &&
           !(req->flow == HTTP_FLOW_DONE && req->body_status == 0);
}

/* HTTP/1.1: the status line, the fields, the connection's own. */
static void write_head(struct http_conn *hc, struct http_response *res, const char *framing)
{
    struct buf h = BUF_INIT;
    const char *text = http_status_text(res->status);
    buf_printf(&h, "HTTP/1.1 %d %s\r\n", res->status, text[0] ? text : "Unknown");
    http_response_fields(res, framing, &h);
    if (body_unread(hc->req))
        hc->close_after = true; /* what is left of it would be read as the next request */
    if (hc->close_after)
        buf_append_cstr(&h, "Connection: close\r\n");
    else if (hc->req != NULL && hc->req->head.minor == 0)
        buf_append_cstr(&h, "Connection: keep-alive\r\n"); /* HTTP/1.0 closes unless told */
    buf_append_cstr(&h, "\r\n");
    net_conn_write(hc->c, h.data, h.len);
    buf_free(&h);
}

static void process(struct http_conn *hc);
static void login_drop(struct http_conn *hc);
static void body_drop(struct http_request *req);
static void cred_forget(struct http_conn *hc);

/* The exchange is over: next request, or close. */
static void exchange_done(struct http_conn *hc)
{
    http_request_free(hc->req);
    http_response_free(hc->res);
    hc->req = NULL;
    hc->res = NULL;
    if (hc->close_after) {
        hc->state = ST_DONE;
        net_conn_close(hc->c, true); /* the last thing: closed() may follow */
        return;
    }
    hc->state = ST_HEAD;
    net_conn_set_timeout(hc->c, hc->srv->cfg->http_idle_timeout);
    if (hc->in_process == 0) {
        /* Outside readable(): let the loop call it for bytes already here. */
        net_conn_pause(hc->c);
        net_conn_resume(hc->c);
    }
}

static bool no_body_status(int status)
{
    return status == 204 || status == 304 || status < 200;
}

void http_response_encode(struct http_response *res, struct buf *framing)
{
    /* Compressed when it pays and the client takes it (RFC 9110 8.4); Vary either way. */
    if (no_body_status(res->status) || !res->compressible || res->encoded)
        return;
    buf_append_cstr(framing, "Vary: Accept-Encoding\r\n");
    if (res->body.len < HTTP_COMPRESS_MIN || res->req == NULL)
        return;
    enum net_coding c = choose_coding(http_request_header(res->req, "Accept-Encoding"));
    struct buf z = BUF_INIT;
    if (c != NET_CODING_IDENTITY && net_content_encode(c, res->body.data, res->body.len, &z) &&
        z.len < res->body.len) {
        buf_free(&res->body);
        res->body = z;
        buf_printf(framing, "Content-Encoding: %s\r\n", net_coding_name(c));
    } else {
        buf_free(&z);
    }
}

/*
 * After a 101 (a WebSocket here, or a splice to a home server): no more HTTP
 * on this connection. The exchange is freed, no timeout (an idle socket
 * waits for pushes; a home server keeps its own time), and the loop reads
 * what already came.
 */
static void leave_http(struct http_conn *hc)
{
    http_request_free(hc->req);
    http_response_free(hc->res);
    hc->req = NULL;
    hc->res = NULL;
    hc->state = ST_DONE;
    login_drop(hc); /* no more requests: no more logins */
    net_conn_set_timeout(hc->c, 0);
    if (hc->in_process == 0) {
        net_conn_pause(hc->c);
        net_conn_resume(hc->c);
    }
}

static void send_response(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    struct buf framing = BUF_INIT;
    bool no_body = no_body_status(res->status);
    body_drop(res->req); /* answered: a body still coming is not wanted any more */
    http_response_encode(res, &framing);
    if (!no_body)
        buf_printf(&framing, "Content-Length: %zu\r\n", res->body.len);
    if (res->h2 != NULL) {
        struct buf fields = BUF_INIT;
        http_response_fields(res, framing.data, &fields);
        buf_free(&framing);
        res->done = true;
        http_h2_respond(res, &fields); /* the stream frees res when it closes */
        buf_free(&fields);
        return;
    }
    if (res->upgrade != NULL && res->status == 101) {
        /* RFC 6455: no body, and from here on the connection carries frames. */
        write_head(hc, res, NULL);
        buf_free(&framing);
        res->done = true;
        hc->ws = http_ws_start(res->upgrade, hc->c, hc->srv->limits.max_body);
        res->upgrade = NULL;
        leave_http(hc);
        return;
    }
    write_head(hc, res, framing.data);
    buf_free(&framing);
    if (!no_body && !res->head_only && res->body.len > 0)
        net_conn_write(hc->c, res->body.data, res->body.len);
    res->done = true;
    exchange_done(hc);
}

void http_exchange_splice(struct http_response *res, struct net_proxy *p)
{
    struct http_conn *hc = res->conn;
    WHARF_ASSERT(res->h2 == NULL && hc->res == res);
    write_head(hc, res, NULL);
    res->done = true;
    hc->splice = p;
    net_proxy_attach(p, hc->c);
    net_proxy_splice(p, NULL); /* what the home server sent after its 101 goes on */
    leave_http(hc);
}

void http_response_defer(struct http_response *res)
{
    res->deferred = true;
}

void http_response_finish(struct http_response *res)
{
    if (res->done || res->streaming)
        return;
    send_response(res);
}

/* The head of a stream: with its length when known (a Content-Length), else chunked. */
static void stream_begin(struct http_response *res, const char *length)
{
    struct http_conn *hc = res->conn;
    if (res->streaming || res->done)
        return;
    res->streaming = true;
    if (res->h2 != NULL) {
        struct buf fields = BUF_INIT;
        http_response_fields(res, length, &fields);
        http_h2_stream_start(res, &fields);
        buf_free(&fields);
        return;
    }
    res->sized = length != NULL;
    if (length != NULL) {
        write_head(hc, res, length); /* the body's end is its length: keep-alive goes on */
        return;
    }
    res->chunked = hc->req->head.minor == 1 && !res->head_only;
    if (!res->chunked)
        hc->close_after = true; /* HTTP/1.0 (or HEAD): the body ends with the connection */
    write_head(hc, res, res->chunked ? "Transfer-Encoding: chunked\r\n" : NULL);
}

void http_response_stream_start(struct http_response *res)
{
    stream_begin(res, NULL);
}

void http_response_stream_start_length(struct http_response *res, uint64_t length)
{
    char framing[48];
    snprintf(framing, sizeof(framing), "Content-Length: %llu\r\n", (unsigned long long)length);
    stream_begin(res, framing);
}

void http_response_on_writable(struct http_response *res, void (*fn)(void *arg), void *arg)
{
    res->on_writable = fn;
    res->on_writable_arg = arg;
}

size_t http_response_stream_pending(const struct http_response *res)
{
    size_t n = net_conn_output_length(res->conn->c);
    if (res->h2 != NULL)
        n += http_h2_stream_pending(res);
    return n;
}

void http_response_stream_abort(struct http_response *res)
{
    if (!res->streaming || res->done)
        return;
    res->done = true;
    body_drop(res->req);
    if (res->h2 != NULL) {
        http_h2_stream_reset(res); /* the stream frees res when it closes */
        return;
    }
    struct http_conn *hc = res->conn;
    hc->close_after = true;
    hc->state = ST_DONE;
    net_conn_close(hc->c, true); /* no last chunk, or short of its length: cut; closed() frees */
}

void http_response_stream_write(struct http_response *res, const void *data, size_t len)
{
    if (!res->streaming || res->done || len == 0 || res->head_only)
        return;
    if (res->h2 != NULL) {
        http_h2_stream_write(res, data, len);
        return;
    }
    if (res->chunked)
        net_conn_printf(res->conn->c, "%zx\r\n", len);
    net_conn_write(res->conn->c, data, len);
    if (res->chunked)
        net_conn_write(res->conn->c, "\r\n", 2);
}

bool http_response_stream_blocked(const struct http_response *res)
{
    if (res->h2 != NULL)
        return http_h2_stream_blocked(res);
    return net_conn_output_blocked(res->conn->c);
}

void http_response_stream_end(struct http_response *res)
{
    if (!res->streaming || res->done)
        return;
    struct http_conn *hc = res->conn;
    res->done = true;
    body_drop(res->req);
    if (res->h2 != NULL) {
        http_h2_stream_end(res); /* the stream frees res when it closes */
        return;
    }
    if (res->chunked)
        net_conn_write(hc->c, "0\r\n\r\n", 5);
    exchange_done(hc);
}

void http_request_release(struct http_request *req)
{
    struct http_conn *hc = req->conn;
    if (req->h2 != NULL)
        return;
    struct http_response *res = hc->res;
    WHARF_ASSERT(hc->req == req && res != NULL && res->req == req && res->streaming);
    res->req = NULL;
    hc->req = NULL;
    http_request_free(req);
    /* the head is sent: what the handler set for it is not needed either */
    buf_free(&res->headers);
    buf_free(&res->body);
    login_drop(hc);
    cred_forget(hc);           /* the stream is all the connection does for hours */
    net_conn_park_soon(hc->c); /* quiet from here on: its TLS state goes too */
}

void http_response_on_close(struct http_response *res, void (*fn)(void *arg), void *arg)
{
    res->on_close = fn;
    res->on_close_arg = arg;
}

/* ---- request bodies after the handler ran ---- */

bool http_request_body_early(const struct http_request *req)
{
    if (req->conn->plain)
        return false;
    /* A client waiting for 100 Continue hears it only once its request is authenticated
     * and routed (body_wanted); a refusal comes before it sends a byte of its body. */
    if (req->head.expect_continue)
        return true;
    if (!http_proxy_enabled())
        return false;
    http_handler_fn fn;
    void *arg;
    unsigned flags = 0;
    struct buf allow = BUF_INIT;
    bool found = http_route_find(req->method, req->path, &fn, &arg, &flags, &allow);
    buf_free(&allow);
    return found && (flags & HTTP_ROUTE_AUTH) && (flags & HTTP_ROUTE_HOME);
}

int64_t http_request_body_length(const struct http_request *req)
{
    return req->head.body == HTTP_BODY_LENGTH ? (int64_t)req->head.content_length : -1;
}

/* Its end to whoever waits for it: the sink, or the handler (a 4xx instead when refused). */
static void body_end(struct http_request *req)
{
    enum http_body_flow was = req->flow;
    req->flow = HTTP_FLOW_DONE;
    if (req->h2 == NULL)
        net_conn_set_timeout(req->conn->c, 0); /* the handler holds the exchange again */
    if (was == HTTP_FLOW_SINK) {
        req->sink->end(req->sink_arg, req->body_status);
    } else if (was == HTTP_FLOW_GATHER) {
        if (req->body_status != 0)
            http_exchange_error(req->flow_res, req->body_status, NULL);
        else
            http_exchange_run(req->flow_res);
    }
}

/* Expect: 100-continue, the body wanted now: the client may send it (RFC 9110 10.1.1),
 * once, and not when it began sending already. */
static void body_continue(struct http_request *req)
{
    if (!req->head.expect_continue || req->continued)
        return;
    req->continued = true;
    if (req->h2 != NULL) {
        if (req->body_seen == 0 && req->body.len == 0)
            http_h2_continue(req);
        return;
    }
    /* RFC 9110 10.1.1: an HTTP/1.0 client's expectation is ignored */
    if (req->head.minor > 0 && evbuffer_get_length(net_conn_input(req->conn->c)) == 0)
        net_conn_write(req->conn->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/* Somebody takes the body now (a sink, a gather, a sink that paused and goes on). */
static void body_wanted(struct http_request *req)
{
    if (req->body_ended) {
        body_end(req);
        return;
    }
    body_continue(req);
    if (req->h2 != NULL) {
        http_h2_body_ack(req);
        return;
    }
    if (req->body_paused)
        return;
    struct http_conn *hc = req->conn;
    /* A client that stops sending in the middle of its body times out as between requests. */
    net_conn_set_timeout(hc->c, hc->srv->cfg->http_idle_timeout);
    /* From the loop: readable() for the bytes already here, whoever called us. */
    net_conn_pause(hc->c);
    net_conn_resume(hc->c);
}

/* The exchange was answered: the rest of its body is discarded (HTTP/1.1 closes). */
static void body_drop(struct http_request *req)
{
    if (req == NULL || req->flow == HTTP_FLOW_READ || req->flow == HTTP_FLOW_DONE ||
        req->flow == HTTP_FLOW_DROP)
        return;
    req->flow = HTTP_FLOW_DROP;
    buf_free(&req->body);
    if (req->h2 != NULL)
        http_h2_body_ack(req);
}

void http_request_body_sink(struct http_request *req, const struct http_body_sink *sink, void *arg)
{
    WHARF_ASSERT(req->flow == HTTP_FLOW_WAIT);
    req->flow = HTTP_FLOW_SINK;
    req->sink = sink;
    req->sink_arg = arg;
    if (req->body.len > 0) { /* HTTP/2: what came while its route was being found */
        struct buf b = req->body;
        buf_init(&req->body);
        sink->data(arg, b.data, b.len);
        buf_free(&b);
    }
    body_wanted(req);
}

void http_request_body_pause(struct http_request *req, bool pause)
{
    if (req->body_paused == pause)
        return;
    req->body_paused = pause;
    if (req->flow != HTTP_FLOW_SINK)
        return;
    if (!pause) {
        body_wanted(req);
        return;
    }
    if (req->h2 == NULL) {
        net_conn_set_timeout(req->conn->c, 0); /* we stopped reading, not the client */
        net_conn_pause(req->conn->c);
    }
}

size_t http_request_body_buffered(const struct http_request *req)
{
    if (req->h2 != NULL)
        return req->body.len;
    if (req->flow == HTTP_FLOW_READ || req->flow == HTTP_FLOW_DONE)
        return 0;
    return evbuffer_get_length(net_conn_input(req->conn->c));
}

void http_request_body_feed(struct http_request *req, const void *p, size_t n)
{
    if (req->flow == HTTP_FLOW_DROP || req->flow == HTTP_FLOW_DONE || req->body_ended || n == 0)
        return;
    if (req->body_seen + n > req->conn->srv->limits.max_body) {
        log_info("http: refused request body from %s: 413 body over http_max_body",
                 net_conn_addr(req->conn->c));
        http_request_body_finish(req, 413);
        return;
    }
    req->body_seen += n;
    if (req->flow == HTTP_FLOW_SINK)
        req->sink->data(req->sink_arg, p, n);
    else
        buf_append(&req->body, p, n);
}

void http_request_body_finish(struct http_request *req, int status)
{
    if (req->flow == HTTP_FLOW_READ || req->flow == HTTP_FLOW_DROP || req->flow == HTTP_FLOW_DONE ||
        req->body_ended)
        return;
    req->body_ended = true;
    req->body_status = status;
    if (req->flow != HTTP_FLOW_WAIT)
        body_end(req);
}

/* ---- errors before a handler ---- */

struct http_response *http_response_new(struct http_conn *hc, struct http_request *req)
{
    struct http_response *res = xcalloc(1, sizeof(*res));
    res->conn = hc;
    res->req = req;
    res->h2 = req ? req->h2 : NULL;
    res->status = 200;
    res->head_only = req != NULL && strcmp(req->method, "HEAD") == 0;
    return res;
}

void http_exchange_error(struct http_response *res, int status, const char *extra)
{
    buf_reset(&res->headers);
    res->compressible = res->encoded = false;
    if (extra)
        buf_append_cstr(&res->headers, extra);
    http_response_text(res, status, http_status_text(status));
    send_response(res);
}

/* HTTP/1.1: answers status with a short text (and extra header lines), then closes if close. */
static void respond_error(struct http_conn *hc, int status, const char *extra, bool close)
{
    if (hc->res == NULL)
        hc->res = http_response_new(hc, hc->req);
    if (close)
        hc->close_after = true;
    http_exchange_error(hc->res, status, extra);
}

/* ---- dispatch ---- */

void http_exchange_run(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    struct http_request *req = res->req;
    if (req != NULL && req->flow == HTTP_FLOW_WAIT) {
        /* The handler runs here after all: its body is read whole first (then here again). */
        req->flow = HTTP_FLOW_GATHER;
        req->flow_res = res;
        body_wanted(req);
        return;
    }
    res->deferred = false;
    res->on_close = NULL;
    res->fn(req, res, res->fn_arg);
    /* HTTP/1.1 frees an answered exchange at once; an HTTP/2 stream only from the loop. */
    if ((res->h2 != NULL || hc->res == res) && !res->deferred && !res->streaming && !res->done)
        send_response(res);
}

static void run_handler(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    struct http_request *req = res->req;
    req->user = req->handover_user != NULL ? req->handover_user : hc->user;
    res->held = true;
    if (res->h2 == NULL) {
        hc->state = ST_HANDLER;
        /* A held request is not the client's delay: no command timeout meanwhile. */
        net_conn_set_timeout(hc->c, 0);
    }
    /* Mailbox data of an account homed elsewhere goes there (a front-end). */
    if ((res->route_flags & HTTP_ROUTE_HOME) && http_proxy_route(req, res))
        return;
    http_exchange_run(res);
}

static const char *const www_authenticate =
    "WWW-Authenticate: Basic realm=\"Wharf\", charset=\"UTF-8\"\r\n"
    "WWW-Authenticate: Bearer realm=\"Wharf\"\r\n";

static void authenticate(struct http_response *res);
static void session_begin(struct http_response *res);

/* The challenges of a 401; none for the webmail's own requests (a browser would prompt). */
static const char *challenge(const struct http_response *res)
{
    return webmail_request(res->req) ? NULL : www_authenticate;
}

static void auth_done(void *arg, const struct auth_login_result *r);

/* The connection's login kit, made at its first check (and again after a long-lived
 * stream dropped it: http_request_release). */
static struct auth_login *login_kit(struct http_conn *hc)
{
    if (hc->login != NULL)
        return hc->login;
    const struct wharf_config *cfg = hc->srv->cfg;
    struct auth_login_params lp = {
        .service = "http",
        .continuation = "",
        .mechs = AUTH_MECH_PLAIN,
        .plaintext = false, /* never over port 80 */
        .max_credential = (size_t)cfg->auth_max_credential_length,
        .max_per_user_addr = 0, /* browsers open many connections */
        .failure_delay_ms = cfg->http_auth_failure_delay,
        .base = net_worker_base(net_conn_worker(hc->c)),
    };
    hc->login = auth_login_new(hc->srv->auth, hc->c, &lp, auth_done, hc);
    return hc->login;
}

/* The credentials the connection logged in with, wiped and forgotten: its
 * next request is checked afresh. */
static void cred_forget(struct http_conn *hc)
{
    xfree_secret(hc->auth_header);
    free(hc->user);
    hc->auth_header = hc->user = NULL;
}

/* No check under way or waiting: the login kit goes (~0.5 KiB a connection; it may be
 * in its done callback: it goes when that returns). */
static void login_drop(struct http_conn *hc)
{
    if (hc->auth_res == NULL && hc->auth_queue == NULL) {
        auth_login_free(hc->login);
        hc->login = NULL;
    }
}

/* HTTP/2: one check at a time per connection; the others wait their turn. */
static void auth_enqueue(struct http_conn *hc, struct http_response *res)
{
    struct http_response **pp = &hc->auth_queue;
    while (*pp)
        pp = &(*pp)->auth_next;
    *pp = res;
}

/* The login kit is free again: the next HTTP/2 exchange waiting for it. */
static void auth_next(struct http_conn *hc)
{
    while (hc->auth_res == NULL && hc->auth_queue != NULL) {
        struct http_response *res = hc->auth_queue;
        hc->auth_queue = res->auth_next;
        res->auth_next = NULL;
        if (res->session_fn != NULL)
            session_begin(res);
        else
            authenticate(res);
    }
}

/* The verdict of http_request_session_start/end, to the handler that asked. */
static void session_done(struct http_response *res, const struct auth_login_result *r)
{
    struct http_conn *hc = res->conn;
    http_session_fn fn = res->session_fn;
    res->session_fn = NULL;
    session_cred_free(res);
    int status = r->status == AUTH_LOGIN_OK                                                    ? 200
                 : r->status == AUTH_LOGIN_RATELIMIT || r->status == AUTH_LOGIN_USER_ADDR_FULL ? 429
                 : r->status == AUTH_LOGIN_TEMPFAIL                                            ? 503
                                                    : 401;
    if (status == 200)
        log_info("http: webmail %s: user=<%s>, rip=%s", r->session ? "sign-in" : "sign-out",
                 r->account, net_conn_addr(hc->c));
    fn(res->req, res, status, status == 200 ? r->account : NULL, r->session, res->session_arg);
}

/* A sign-in (user NUL password) or sign-out (token) at the login kit, now that it is free. */
static void session_begin(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    hc->auth_res = res; /* the handler holds the exchange: the connection state stays */
    struct slice cred = slice_make(res->session_cred.data, res->session_cred.len);
    if (res->session_end) {
        (void)auth_login_end_session(login_kit(hc), cred); /* auth_done follows */
        return;
    }
    const char *nul = memchr(cred.ptr, '\0', cred.len);
    WHARF_ASSERT(nul != NULL);
    struct slice user = slice_make(cred.ptr, (size_t)(nul - cred.ptr));
    (void)auth_login_session(login_kit(hc), user,
                             slice_make(nul + 1, cred.len - user.len - 1)); /* auth_done follows */
}

static void session_ask(struct http_response *res, bool end, struct slice a, struct slice b,
                        http_session_fn fn, void *arg)
{
    struct http_conn *hc = res->conn;
    WHARF_ASSERT(res->session_fn == NULL);
    res->session_fn = fn;
    res->session_arg = arg;
    res->session_end = end;
    buf_append_slice(&res->session_cred, a);
    if (!end) {
        buf_append_byte(&res->session_cred, '\0');
        buf_append_slice(&res->session_cred, b);
    }
    if (hc->auth_res != NULL)
        auth_enqueue(hc, res);
    else
        session_begin(res);
}

void http_request_session_start(struct http_request *req, struct http_response *res,
                                struct slice user, struct slice pass, http_session_fn fn, void *arg)
{
    (void)req;
    session_ask(res, false, user, pass, fn, arg);
}

void http_request_session_end(struct http_request *req, struct http_response *res,
                              struct slice token, http_session_fn fn, void *arg)
{
    (void)req;
    session_ask(res, true, token, slice_make(NULL, 0), fn, arg);
}

static void auth_done(void *arg, const struct auth_login_result *r)
{
    struct http_conn *hc = arg;
    struct http_response *res = hc->auth_res;
    hc->auth_res = NULL;
    /* The kit paused the connection for the check; the loop resumes it later. */
    net_conn_resume(hc->c);
    if (res != NULL && res->session_fn != NULL) {
        session_done(res, r);
        if (hc->h2 != NULL)
            auth_next(hc);
        return;
    }
    if (hc->h2 == NULL)
        hc->state = ST_BODY;
    if (res == NULL) {
        auth_next(hc); /* its stream went away meanwhile */
        return;
    }
    switch (r->status) {
    case AUTH_LOGIN_OK:
        cred_forget(hc);
        /* Basic credentials are remembered for the connection; a token (or a webmail session
         * cookie) is checked each time (so that a revocation holds at once). */
        const char *authz = http_request_header(res->req, "Authorization");
        hc->auth_header =
            authz == NULL || strncasecmp(authz, "Bearer ", 7) == 0 ? NULL : xstrdup(authz);
        hc->user = xstrdup(r->account);
        log_info("http: login: user=<%s>, rip=%s", hc->user, net_conn_addr(hc->c));
        run_handler(res);
        break;
    case AUTH_LOGIN_USER_ADDR_FULL:
    case AUTH_LOGIN_RATELIMIT:
        http_exchange_error(res, 429, "Retry-After: 60\r\n");
        break;
    case AUTH_LOGIN_TEMPFAIL:
        http_exchange_error(res, 503, "Retry-After: 30\r\n");
        break;
    case AUTH_LOGIN_FAILED:
    case AUTH_LOGIN_CANCELLED:
    case AUTH_LOGIN_MALFORMED:
        http_exchange_error(res, 401, challenge(res));
        break;
    }
    if (hc->h2 != NULL)
        auth_next(hc);
}

/* HTTP Basic (RFC 7617), a Bearer token or the webmail's session cookie, over TLS only,
 * checked by the auth process. */
static void authenticate(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    const char *authz = http_request_header(res->req, "Authorization");
    if (!net_conn_is_tls(hc->c)) {
        http_exchange_error(res, 403, NULL);
        return;
    }
    /* A front-end vouches for this request's user (never a client: refused, and logged). */
    const char *fe = http_request_header(res->req, HTTP_PROXY_FIELD);
    if (fe != NULL) {
        char *account = NULL;
        if (!http_proxy_handover(res->req, fe, &account)) {
            http_exchange_error(res, 403, NULL);
            return;
        }
        res->req->handover_user = account;
        log_info("http: login: user=<%s>, rip=%s, via front-end %s", account, net_conn_addr(hc->c),
                 net_conn_peer_addr(hc->c));
        run_handler(res);
        return;
    }
    struct slice cookie = slice_make(NULL, 0);
    bool bearer = authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0;
    if (authz == NULL) { /* the webmail: a session cookie, and its CSRF token */
        switch (webmail_cookie_token(res->req, &cookie)) {
        case WEBMAIL_COOKIE_OK:
            break;
        case WEBMAIL_COOKIE_REFUSED:
            http_exchange_error(res, 403, NULL);
            return;
        case WEBMAIL_COOKIE_NONE:
            http_exchange_error(res, 401, challenge(res));
            return;
        }
    } else if (!bearer && strncasecmp(authz, "Basic ", 6) != 0) {
        http_exchange_error(res, 401, challenge(res));
        return;
    } else if (hc->auth_header != NULL && strcmp(authz, hc->auth_header) == 0) {
        run_handler(res); /* the credentials this connection logged in with */
        return;
    }
    if (hc->auth_res != NULL) {
        auth_enqueue(hc, res);
        return;
    }
    if (hc->h2 == NULL)
        hc->state = ST_AUTH;
    hc->auth_res = res;
    if (authz == NULL) {
        auth_login_token(login_kit(hc), cookie);
        return;
    }
    if (bearer) {
        /* An app password (RFC 6750 b64token): `wharf token add`. */
        const char *t = authz + 7;
        while (*t == ' ')
            t++;
        auth_login_token(login_kit(hc), slice_from_cstr(t));
        return;
    }
    struct buf dec = BUF_INIT;
    const char *p = authz + 6;
    while (*p == ' ')
        p++;
    size_t max = (size_t)hc->srv->cfg->auth_max_credential_length * 2 + 1;
    const char *colon;
    if (base64_decode(slice_from_cstr(p), max, &dec) != BASE64_OK ||
        (colon = memchr(dec.data, ':', dec.len)) == NULL) {
        explicit_bzero(dec.data, dec.len);
        buf_free(&dec);
        hc->auth_res = NULL;
        if (hc->h2 == NULL)
            hc->state = ST_BODY;
        http_exchange_error(res, 401, challenge(res));
        return;
    }
    struct slice user = slice_make(dec.data, (size_t)(colon - dec.data));
    struct slice pass = slice_make(colon + 1, dec.len - user.len - 1);
    enum auth_login_step st = auth_login_password(login_kit(hc), user, pass);
    (void)st; /* CHECKING: auth_done follows; DONE: it has run */
    explicit_bzero(dec.data, dec.len);
    buf_free(&dec);
}

void http_exchange_gone(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    if (hc->auth_res == res)
        hc->auth_res = NULL; /* auth_done finds nobody and goes on with the queue */
    for (struct http_response **pp = &hc->auth_queue; *pp; pp = &(*pp)->auth_next) {
        if (*pp == res) {
            *pp = res->auth_next;
            break;
        }
    }
    if (!res->done && res->on_close != NULL)
        res->on_close(res->on_close_arg);
}

void http_exchange_start(struct http_request *req, struct http_response *res)
{
    struct http_conn *hc = res->conn;
    hc->requests++;
    if (hc->plain) {
        http_plain_serve(hc->srv, req, res);
        send_response(res);
        return;
    }
    struct buf allow = BUF_INIT;
    unsigned flags = 0;
    if (!http_route_find(req->method, req->path, &res->fn, &res->fn_arg, &flags, &allow)) {
        if (allow.len > 0) {
            struct buf extra = BUF_INIT;
            buf_printf(&extra, "Allow: %s\r\n", buf_cstr(&allow));
            http_exchange_error(res, 405, extra.data);
            buf_free(&extra);
        } else {
            http_exchange_error(res, 404, NULL);
        }
        buf_free(&allow);
        return;
    }
    buf_free(&allow);
    res->route_flags = flags;
    if (flags & HTTP_ROUTE_AUTH)
        authenticate(res);
    else
        run_handler(res);
}

static void dispatch(struct http_conn *hc)
{
    hc->res = http_response_new(hc, hc->req);
    http_exchange_start(hc->req, hc->res);
}

/* ---- reading ---- */

struct http_request *http_request_new(struct http_conn *hc, const char *head, size_t len,
                                      int *status_r, const char **why_r)
{
    struct http_request *req = xcalloc(1, sizeof(*req));
    req->conn = hc;
    buf_append(&req->raw, head, len);
    http_head_init(&req->head);
    size_t used;
    /* On our own copy, so that the slices point into it. */
    enum http_parse_result r = http_parse_head(req->raw.data, req->raw.len, &hc->srv->limits,
                                               &req->head, &used, status_r, why_r);
    if (r != HTTP_PARSE_OK || used != len) {
        if (r != HTTP_PARSE_ERROR) {
            *status_r = 400;
            *why_r = "incomplete head";
        }
        http_request_free(req);
        return NULL;
    }
    req->method = slice_strdup(req->head.method);
    req->path = slice_strdup(req->head.path);
    req->query = req->head.query.ptr ? slice_strdup(req->head.query) : xstrdup("");
    req->host = slice_strdup(req->head.host);
    return req;
}

static void request_from_head(struct http_conn *hc, const char *p, size_t len)
{
    int status;
    const char *why;
    struct http_request *req = http_request_new(hc, p, len, &status, &why);
    WHARF_ASSERT(req != NULL); /* parsed fine once already */
    hc->req = req;
    if (!req->head.keep_alive)
        hc->close_after = true;
}

static void refuse(struct http_conn *hc, int status, const char *why)
{
    log_info("http: refused request from %s: %d %s", net_conn_addr(hc->c), status, why);
    respond_error(hc, status, NULL, true);
}

/* Reads a head; true when a request is ready for its body. */
static bool read_head(struct http_conn *hc)
{
    struct evbuffer *in = net_conn_input(hc->c);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return false;
    const struct http_parse_limits *lim = &hc->srv->limits;
    size_t cap = 2 * lim->max_head + 8;
    /* Parse again only when a line ended since the last try (or over the limits). */
    if (len <= lim->max_request_line && len <= lim->max_head) {
        struct evbuffer_ptr from;
        evbuffer_ptr_set(in, &from, hc->scanned, EVBUFFER_PTR_SET);
        if (hc->scanned < len && evbuffer_search(in, "\n", 1, &from).pos < 0) {
            hc->scanned = len;
            return false;
        }
    }
    size_t n = len < cap ? len : cap;
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
    struct http_head h;
    http_head_init(&h);
    size_t head_len = 0;
    int status = 0;
    const char *why = NULL;
    enum http_parse_result r = http_parse_head(p, n, lim, &h, &head_len, &status, &why);
    http_head_free(&h);
    if (r == HTTP_PARSE_NEED_MORE) {
        hc->scanned = len;
        return false;
    }
    if (r == HTTP_PARSE_ERROR) {
        evbuffer_drain(in, len);
        refuse(hc, status, why);
        return false;
    }
    hc->state = ST_BODY;
    request_from_head(hc, p, head_len);
    evbuffer_drain(in, head_len);
    hc->scanned = 0;
    struct http_head *hd = &hc->req->head;
    hc->body_left = hd->body == HTTP_BODY_LENGTH ? hd->content_length : 0;
    http_chunked_init(&hc->chunked);
    /* Port 80 reads every body before its answer; on 443 a request that expects 100
     * Continue goes to its route from its head, and hears 100 once it is let in
     * (http_request_body_early, body_continue). */
    if (hc->plain && hd->expect_continue && hd->body != HTTP_BODY_NONE &&
        evbuffer_get_length(in) == 0)
        net_conn_write(hc->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return true;
}

/* Reads body bytes; true when the body is whole. */
static bool read_body(struct http_conn *hc)
{
    struct evbuffer *in = net_conn_input(hc->c);
    struct http_request *req = hc->req;
    if (req->head.body == HTTP_BODY_NONE)
        return true;
    if (req->head.body == HTTP_BODY_LENGTH) {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < hc->body_left ? avail : (size_t)hc->body_left;
        if (n > 0) {
            buf_reserve(&req->body, n);
            evbuffer_remove(in, req->body.data + req->body.len, n);
            req->body.len += n;
            req->body.data[req->body.len] = '\0';
            hc->body_left -= n;
        }
        return hc->body_left == 0;
    }
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return false;
        size_t used = 0;
        int status = 0;
        const char *why = NULL;
        enum http_parse_result r =
            http_chunked_feed(&hc->chunked, v.iov_base, v.iov_len, hc->srv->limits.max_body,
                              &req->body, &used, &status, &why);
        evbuffer_drain(in, used);
        if (r == HTTP_PARSE_OK)
            return true;
        if (r == HTTP_PARSE_ERROR) {
            evbuffer_drain(in, evbuffer_get_length(in));
            refuse(hc, status, why);
            return false;
        }
    }
}

/* A body read after its handler ran (HTTP_FLOW_GATHER, HTTP_FLOW_SINK), as it comes. */
static void read_body_late(struct http_conn *hc)
{
    struct http_request *req = hc->req;
    struct evbuffer *in = net_conn_input(hc->c);
    while (hc->req == req && !req->body_paused &&
           (req->flow == HTTP_FLOW_GATHER || req->flow == HTTP_FLOW_SINK)) {
        bool sized = req->head.body == HTTP_BODY_LENGTH;
        if (sized && hc->body_left == 0) {
            http_request_body_finish(req, 0);
            return;
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return;
        if (sized) {
            size_t n = v.iov_len < hc->body_left ? v.iov_len : (size_t)hc->body_left;
            hc->body_left -= n;
            http_request_body_feed(req, v.iov_base, n);
            evbuffer_drain(in, n);
            continue;
        }
        struct buf out = BUF_INIT;
        size_t used = 0;
        int status = 0;
        const char *why = NULL;
        enum http_parse_result r =
            http_chunked_feed(&hc->chunked, v.iov_base, v.iov_len, hc->srv->limits.max_body, &out,
                              &used, &status, &why);
        evbuffer_drain(in, used);
        if (out.len > 0)
            http_request_body_feed(req, out.data, out.len);
        buf_free(&out);
        if (hc->req != req)
            return;
        if (r == HTTP_PARSE_OK) {
            http_request_body_finish(req, 0);
            return;
        }
        if (r == HTTP_PARSE_ERROR) {
            evbuffer_drain(in, evbuffer_get_length(in));
            log_info("http: refused request body from %s: %d %s", net_conn_addr(hc->c), status,
                     why);
            http_request_body_finish(req, status);
            return;
        }
        if (used == 0)
            return;
    }
}

static void process(struct http_conn *hc)
{
    if (hc->splice != NULL) {
        net_proxy_client_readable(hc->splice);
        return;
    }
    for (;;) {
        if (hc->ws != NULL) {
            http_ws_readable(hc->ws);
            return;
        }
        if (hc->state == ST_DONE)
            return;
        if (hc->state == ST_HEAD) {
            if (net_conn_output_blocked(hc->c))
                return; /* a pipelining client that does not read: wait */
            if (!read_head(hc))
                return;
            if (hc->req->head.body != HTTP_BODY_NONE && http_request_body_early(hc->req)) {
                hc->req->flow = HTTP_FLOW_WAIT; /* to its route now, the body as it decides */
                dispatch(hc);
                return;
            }
        }
        if (hc->req == NULL)
            return;
        if (hc->res != NULL) {
            /* answered or held: nothing more is read meanwhile, but a body its route takes */
            if (hc->req->flow != HTTP_FLOW_GATHER && hc->req->flow != HTTP_FLOW_SINK)
                return;
            read_body_late(hc);
            if (hc->req != NULL || hc->state != ST_HEAD)
                return;
            continue; /* the exchange is over: the next request */
        }
        if (!read_body(hc))
            return;
        if (hc->res != NULL)
            return;
        dispatch(hc);
        if (hc->req != NULL || hc->res != NULL)
            return; /* held (auth, deferred, streaming, released) or closing */
    }
}

/* ALPN on 443: h2 first, then http/1.1 (RFC 9113 3.2, RFC 7301). */
static const unsigned char http_alpn[] = "\x02h2\x08http/1.1";

static void *http_open(struct net_conn *c, void *proto_arg)
{
    struct http_conn *hc = xcalloc(1, sizeof(*hc));
    hc->srv = proto_arg;
    hc->c = c;
    hc->plain = !net_conn_is_tls(c);
    hc->state = ST_HEAD;
    if (strcmp(net_conn_alpn(c), "h2") == 0)
        hc->h2 = http_h2_new(hc, c, hc->srv);
    return hc;
}

static void http_readable(void *arg)
{
    struct http_conn *hc = arg;
    if (hc->h2 != NULL) {
        http_h2_readable(hc->h2);
        return;
    }
    hc->in_process++;
    process(hc);
    hc->in_process--;
}

static void http_tls_ready(void *arg)
{
    (void)arg; /* no STARTTLS in HTTP */
}

static void http_writable(void *arg)
{
    struct http_conn *hc = arg;
    if (hc->h2 != NULL)
        http_h2_writable(hc->h2);
    else if (hc->splice != NULL)
        net_proxy_client_writable(hc->splice);
    else if (hc->ws != NULL)
        http_ws_writable(hc->ws);
    else if (hc->res != NULL && hc->res->streaming && !hc->res->done &&
             hc->res->on_writable != NULL)
        hc->res->on_writable(hc->res->on_writable_arg); /* its output is sent */
}

static void http_timeout(void *arg)
{
    struct http_conn *hc = arg;
    if (hc->h2 != NULL) {
        http_h2_goaway(hc->h2, true);
        return;
    }
    /* A request begun and not finished gets 408 (a body its route takes as it comes too,
     * before any answer: the route hears on_close); an idle keep-alive just closes. */
    bool body_stalled = hc->req != NULL && hc->res != NULL && !hc->res->streaming &&
                        !hc->res->done && !hc->req->body_ended &&
                        (hc->req->flow == HTTP_FLOW_SINK || hc->req->flow == HTTP_FLOW_GATHER);
    if ((hc->state == ST_HEAD && evbuffer_get_length(net_conn_input(hc->c)) > 0) ||
        (hc->state == ST_BODY && hc->res == NULL) || body_stalled) {
        hc->close_after = true;
        struct http_response res = {.conn = hc, .status = 408};
        http_response_text(&res, 408, "Request Timeout");
        write_head(hc, &res, "Content-Length: 16\r\n");
        net_conn_write(hc->c, res.body.data, res.body.len);
        buf_free(&res.headers);
        buf_free(&res.body);
    }
}

static void http_drain(void *arg)
{
    struct http_conn *hc = arg;
    if (hc->h2 != NULL) {
        http_h2_goaway(hc->h2, false);
        return;
    }
    if (hc->ws != NULL) {
        http_ws_drain(hc->ws);
        return;
    }
    if (hc->splice != NULL) {
        net_conn_close(hc->c, true);
        return;
    }
    if (hc->state == ST_HEAD && evbuffer_get_length(net_conn_input(hc->c)) == 0) {
        net_conn_close(hc->c, true);
        return;
    }
    if (hc->res != NULL && hc->res->streaming && !hc->res->sized) {
        /* A stream has no end of its own: end it now (the handler hears on_close). */
        net_conn_close(hc->c, true);
        return;
    }
    hc->close_after = true; /* answer what is under way, then close */
}

static void http_closed(void *arg)
{
    struct http_conn *hc = arg;
    if (hc->res != NULL && !hc->res->done && hc->res->on_close != NULL)
        hc->res->on_close(hc->res->on_close_arg);
    if (hc->h2 != NULL)
        http_h2_free(hc->h2);
    http_ws_free(hc->ws);
    net_proxy_free(hc->splice);
    auth_login_free(hc->login);
    http_request_free(hc->req);
    http_response_free(hc->res);
    cred_forget(hc);
    free(hc);
}

const struct net_proto http_proto = {
    .open = http_open,
    .readable = http_readable,
    .tls_ready = http_tls_ready,
    .timeout = http_timeout,
    .drain = http_drain,
    .closed = http_closed,
    .writable = http_writable,
    .alpn = http_alpn,
    .alpn_len = sizeof(http_alpn) - 1,
};
