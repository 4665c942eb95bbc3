/*
 * http_h2.c - HTTP/2 (RFC 9113) on a 443 connection whose TLS handshake
 * chose "h2" by ALPN, with nghttp2 doing the framing, HPACK, flow control
 * and its own checks of every frame and header (all kept on: a malformed
 * message resets its stream, a broken connection ends with GOAWAY).
 *
 * Each stream becomes the request and response objects of http_route.h
 * (http_conn.h): its header list is turned into the HTTP/1.1 head it stands
 * for and read by the one request parser, so that routes, authentication
 * and every size limit are the same as over HTTP/1.1; the body is gathered
 * from DATA frames under http_max_body. Responses leave through nghttp2's
 * data providers, streams (EventSource) as long-lived DATA.
 *
 * Output is produced only while the connection's output is below its
 * high-water mark (net_conn_output_blocked) and resumed when it drains
 * (writable). nghttp2 is never called back into from its own callbacks:
 * answers given inside them are sent from a flush event.
 *
 * Must never: answer a request nghttp2 or the request parser refused other
 * than with an error, hold more than http2_max_concurrent_streams streams,
 * or free a stream's request and response while its handler still holds
 * them without telling it (on_close).
 */
#include "base/alloc.h"
#include "base/log.h"
#include "http/http_conn.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Per stream, what a streaming response may hold unsent before the writer is told to wait. */
#define H2_STREAM_HIGH_WATER (1024 * 1024)
/* ... and what it holds when the writer is told to go on (http_response_on_writable). */
#define H2_STREAM_LOW_WATER (H2_STREAM_HIGH_WATER / 4)
/* The window a stream and the connection grant for request bodies (RFC 9113 6.9.2). */
#define H2_WINDOW (1024 * 1024)

struct http_h2_stream {
    struct http_h2 *h;
    struct http_h2_stream *prev, *next;
    int32_t id;
    /* The header list as it comes (HPACK decoded), until the head is whole. */
    struct buf method, path, authority, host, fields, cookie;
    size_t n_fields, head_bytes;
    bool head_done; /* the request head went to the parser (later HEADERS: trailers) */
    bool too_big;   /* the header list passed the limits: 431 */
    bool started;   /* handed to the routes (or refused) */
    struct http_request *req;
    struct http_response *res;
    /* What the data provider sends: out from out_off; eof: the end after it. */
    struct buf out;
    size_t out_off;
    bool eof;
    size_t unacked; /* request body bytes received whose stream window is not given back */
};

struct http_h2 {
    struct http_conn *hc;
    struct net_conn *c;
    struct http_server *srv;
    nghttp2_session *session;
    struct event *flush; /* answers given from callbacks and timers leave from here */
    struct http_h2_stream *streams;
    bool flushing, goaway;
};

static void h2_flush(struct http_h2 *h);
static void h2_flush_cb(evutil_socket_t fd, short what, void *arg);

static void h2_schedule(struct http_h2 *h)
{
    event_active(h->flush, 0, 0);
}

/* ---- streams ---- */

static struct http_h2_stream *stream_new(struct http_h2 *h, int32_t id)
{
    struct http_h2_stream *st = xcalloc(1, sizeof(*st));
    st->h = h;
    st->id = id;
    buf_init(&st->method);
    buf_init(&st->path);
    buf_init(&st->authority);
    buf_init(&st->host);
    buf_init(&st->fields);
    buf_init(&st->cookie);
    buf_init(&st->out);
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    return st;
}

static void stream_free(struct http_h2_stream *st)
{
    struct http_h2 *h = st->h;
    if (st->res != NULL)
        http_exchange_gone(st->res);
    http_request_free(st->req);
    http_response_free(st->res);
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    buf_free(&st->method);
    buf_free(&st->path);
    buf_free(&st->authority);
    buf_free(&st->host);
    explicit_bzero(st->fields.data, st->fields.len); /* may hold credentials */
    buf_free(&st->fields);
    buf_free(&st->cookie);
    buf_free(&st->out);
    free(st);
}

/* The HTTP/1.1 head the stream's header list stands for, read by the one parser. */
static void stream_head(struct http_h2_stream *st)
{
    struct http_h2 *h = st->h;
    const struct http_parse_limits *lim = &h->srv->limits;
    int status = 0;
    const char *why = NULL;
    st->head_done = true;
    struct buf head = BUF_INIT;
    if (st->too_big) {
        status = st->path.len > lim->max_request_line ? 414 : 431;
        why = "header list over the limits";
    } else if (st->authority.len > 0 && st->host.len > 0 &&
               !slice_eq_nocase(buf_slice(&st->authority), buf_slice(&st->host))) {
        status = 400; /* RFC 9113 8.3.1: two different origins */
        why = ":authority and Host differ";
    } else {
        buf_printf(&head, "%s %s HTTP/1.1\r\n", st->method.data, st->path.data);
        if (st->authority.len > 0 || st->host.len > 0)
            buf_printf(&head, "Host: %s\r\n",
                       st->authority.len > 0 ? st->authority.data : st->host.data);
        buf_append(&head, st->fields.data, st->fields.len);
        if (st->cookie.len > 0) /* RFC 9113 8.2.3: one field again for HTTP/1.1 */
            buf_printf(&head, "Cookie: %s\r\n", st->cookie.data);
        buf_append_cstr(&head, "\r\n");
        st->req = http_request_new(h->hc, head.data, head.len, &status, &why);
    }
    explicit_bzero(head.data, head.len);
    buf_free(&head);
    if (st->req != NULL) {
        st->req->h2 = st;
        st->res = http_response_new(h->hc, st->req);
        return;
    }
    log_info("http: refused HTTP/2 request from %s: %d %s", net_conn_addr(h->c), status, why);
    st->started = true;
    st->res = http_response_new(h->hc, NULL);
    st->res->h2 = st;
    http_exchange_error(st->res, status, NULL);
}

/* The request is whole (END_STREAM): to the routes. */
static void stream_start(struct http_h2_stream *st)
{
    if (st->started || st->req == NULL)
        return;
    st->started = true;
    http_exchange_start(st->req, st->res);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *arg)
{
    struct http_h2 *h = arg;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct http_h2_stream *st = stream_new(h, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, st);
    return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    struct http_h2 *h = arg;
    (void)flags;
    struct http_h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st == NULL || st->head_done)
        return 0; /* trailers: checked by nghttp2, discarded (as over HTTP/1.1) */
    const struct http_parse_limits *lim = &h->srv->limits;
    st->head_bytes += namelen + valuelen + 4;
    st->n_fields++;
    if (st->head_bytes > 4 * lim->max_head)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* no answer for a flood: reset */
    if (st->too_big || st->head_bytes > lim->max_head || st->n_fields > lim->max_fields + 4) {
        st->too_big = true;
        return 0;
    }
    struct buf *into = NULL;
    if (name_is(name, namelen, ":method"))
        into = &st->method;
    else if (name_is(name, namelen, ":path"))
        into = &st->path;
    else if (name_is(name, namelen, ":authority"))
        into = &st->authority;
    else if (namelen > 0 && name[0] == ':')
        return 0; /* :scheme (nghttp2 checked it), :protocol is not enabled */
    else if (name_is(name, namelen, "host"))
        into = &st->host;
    if (into != NULL) {
        buf_append(into, value, valuelen);
        return 0;
    }
    if (name_is(name, namelen, "cookie")) {
        if (st->cookie.len > 0)
            buf_append_cstr(&st->cookie, "; ");
        buf_append(&st->cookie, value, valuelen);
        return 0;
    }
    buf_append(&st->fields, name, namelen);
    buf_append_cstr(&st->fields, ": ");
    buf_append(&st->fields, value, valuelen);
    buf_append_cstr(&st->fields, "\r\n");
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *arg)
{
    (void)arg;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct http_h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !st->head_done) {
        stream_head(st);
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && st->req != NULL &&
            http_request_body_early(st->req)) {
            st->req->flow = HTTP_FLOW_WAIT; /* to its route now, the body as it decides */
            stream_start(st);
        }
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (st->req != NULL && st->req->flow != HTTP_FLOW_READ)
            http_request_body_finish(st->req, 0);
        else
            stream_start(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *arg)
{
    struct http_h2 *h = arg;
    (void)flags;
    struct http_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    /* The connection's window is given back at once (one stream must not stall the
     * others); a stream's only once its bytes are taken (http_h2_body_ack). */
    nghttp2_session_consume_connection(s, len);
    if (st == NULL) {
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    st->unacked += len;
    if (st->req != NULL && st->req->flow != HTTP_FLOW_READ) {
        /* Read after its route decided: waits (within the window), gathers or streams. */
        http_request_body_feed(st->req, data, len);
        http_h2_body_ack(st->req);
        return 0;
    }
    nghttp2_session_consume_stream(s, id, st->unacked);
    st->unacked = 0;
    if (st->req == NULL || st->started)
        return 0; /* refused or answered already: dropped (the window is given back) */
    struct buf *body = &st->req->body;
    if (body->len + len > h->srv->limits.max_body) {
        log_info("http: refused HTTP/2 request from %s: 413 body over http_max_body",
                 net_conn_addr(h->c));
        st->started = true;
        http_exchange_error(st->res, 413, NULL);
        return 0;
    }
    buf_append(body, data, len);
    return 0;
}

/*
 * An answer whose last frame left before the request's body ended (401 or 413 early, a
 * proxied upload the back-end refused): RST_STREAM NO_ERROR, so that the client stops
 * sending (RFC 9113 8.1) rather than the rest being read and dropped.
 */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *arg)
{
    (void)arg;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        nghttp2_session_get_stream_remote_close(s, frame->hd.stream_id) != 0)
        return 0;
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *arg)
{
    (void)arg, (void)error_code;
    struct http_h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_free(st);
    }
    return 0;
}

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *to, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *arg)
{
    (void)s, (void)id, (void)arg;
    struct http_h2_stream *st = source->ptr;
    size_t n = st->out.len - st->out_off;
    if (n > length)
        n = length;
    memcpy(to, st->out.data + st->out_off, n);
    st->out_off += n;
    if (st->out_off == st->out.len) {
        buf_reset(&st->out);
        st->out_off = 0;
        if (st->eof)
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0)
            return NGHTTP2_ERR_DEFERRED; /* a stream: resumed by the next write */
    }
    return (ssize_t)n;
}

/* ---- the session ---- */

struct http_h2 *http_h2_new(struct http_conn *hc, struct net_conn *c, struct http_server *srv)
{
    struct http_h2 *h = xcalloc(1, sizeof(*h));
    h->hc = hc;
    h->c = c;
    h->srv = srv;
    h->flush = event_new(http_server_base(srv), -1, 0, h2_flush_cb, h);
    nghttp2_session_callbacks *cb;
    WHARF_ASSERT(nghttp2_session_callbacks_new(&cb) == 0); /* fails only out of memory */
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_option *opt;
    WHARF_ASSERT(nghttp2_option_new(&opt) == 0);
    /* Request bodies give their window back as they are taken (a back-end's pace). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    WHARF_ASSERT(nghttp2_session_server_new2(&h->session, cb, h, opt) == 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)srv->cfg->http2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)srv->limits.max_head},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW},
    };
    nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, H2_WINDOW);
    h2_flush(h);
    return h;
}

void http_h2_free(struct http_h2 *h)
{
    while (h->streams)
        stream_free(h->streams);
    nghttp2_session_del(h->session);
    event_free(h->flush);
    free(h);
}

/* Whether a handler holds a stream (deferred, streaming): the idle timeout waits. */
static bool h2_held(const struct http_h2 *h)
{
    for (const struct http_h2_stream *st = h->streams; st; st = st->next) {
        /* A body still coming that is not paused waits for the client, not for us. */
        const struct http_request *req = st->req;
        bool receiving = req != NULL && !req->body_ended && !req->body_paused &&
                         (req->flow == HTTP_FLOW_GATHER || req->flow == HTTP_FLOW_SINK);
        if (st->res != NULL && st->res->held && !st->res->done && !receiving)
            return true;
    }
    return false;
}

/* Streams whose writers wait for their output to drain (http_response_on_writable): now. */
static void h2_writable_streams(struct http_h2 *h)
{
    if (net_conn_output_blocked(h->c))
        return;
    for (struct http_h2_stream *st = h->streams; st; st = st->next) {
        struct http_response *res = st->res;
        /* It may write (a flush is scheduled) or end; a stream goes only in on_stream_close. */
        if (res != NULL && res->streaming && !res->done && res->on_writable != NULL &&
            st->out.len - st->out_off <= H2_STREAM_LOW_WATER)
            res->on_writable(res->on_writable_arg);
    }
}

static void h2_flush(struct http_h2 *h)
{
    if (h->flushing)
        return;
    h->flushing = true;
    while (!net_conn_output_blocked(h->c)) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->session, &data);
        if (n < 0) {
            log_info("http: HTTP/2 with %s: %s", net_conn_addr(h->c), nghttp2_strerror((int)n));
            h->flushing = false;
            net_conn_close(h->c, true);
            return;
        }
        if (n == 0)
            break;
        net_conn_write(h->c, data, (size_t)n);
    }
    h->flushing = false;
    h2_writable_streams(h);
    net_conn_set_timeout(h->c, h2_held(h) ? 0 : h->srv->cfg->http_idle_timeout);
    if ((!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session)) ||
        (h->goaway && h->streams == NULL))
        net_conn_close(h->c, true); /* the last thing: closed() may follow */
}

static void h2_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    h2_flush(arg);
}

void http_h2_readable(struct http_h2 *h)
{
    struct evbuffer *in = net_conn_input(h->c);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t n = nghttp2_session_mem_recv(h->session, v.iov_base, v.iov_len);
        if (n < 0) {
            log_info("http: HTTP/2 from %s: %s; disconnecting", net_conn_addr(h->c),
                     nghttp2_strerror((int)n));
            evbuffer_drain(in, evbuffer_get_length(in));
            nghttp2_session_terminate_session(h->session, NGHTTP2_PROTOCOL_ERROR);
            h2_flush(h);
            net_conn_close(h->c, true);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    h2_flush(h);
}

void http_h2_writable(struct http_h2 *h)
{
    h2_flush(h);
}

void http_h2_goaway(struct http_h2 *h, bool now)
{
    bool streaming = false;
    for (const struct http_h2_stream *st = h->streams; st; st = st->next)
        streaming = streaming ||
                    (st->res != NULL && st->res->streaming && !st->res->sized && !st->res->done);
    if (now || streaming) {
        /* A timeout, or a drain with streams that have no end of their own (EventSource). */
        nghttp2_session_terminate_session(h->session, NGHTTP2_NO_ERROR);
        h2_flush(h);
        net_conn_close(h->c, true);
        return;
    }
    h->goaway = true; /* answer what is under way, then close */
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    h2_flush(h);
}

/* ---- the response side ---- */

/* "Name: value\r\n" lines into header pairs, names in lower case (RFC 9113 8.2.2). */
static size_t fields_to_nv(struct buf *fields, const char *status, nghttp2_nv **nv_r)
{
    size_t cap = 1;
    for (size_t i = 0; i < fields->len; i++)
        cap += fields->data[i] == '\n';
    nghttp2_nv *nv = xcalloc(cap, sizeof(*nv));
    size_t n = 0;
    nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, strlen(status),
                           NGHTTP2_NV_FLAG_NONE};
    char *p = fields->data;
    while (*p) {
        char *eol = strstr(p, "\r\n");
        char *colon = memchr(p, ':', eol ? (size_t)(eol - p) : strlen(p));
        if (eol == NULL || colon == NULL)
            break;
        *eol = '\0';
        for (char *q = p; q < colon; q++)
            *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
        const char *value = colon + 1;
        while (*value == ' ')
            value++;
        size_t namelen = (size_t)(colon - p);
        /* Connection-specific fields have no place in HTTP/2 (RFC 9113 8.2.2). */
        bool skip = (namelen == 10 && memcmp(p, "connection", 10) == 0) ||
                    (namelen == 17 && memcmp(p, "transfer-encoding", 17) == 0) ||
                    (namelen == 10 && memcmp(p, "keep-alive", 10) == 0);
        if (!skip && n < cap)
            nv[n++] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)value, namelen, strlen(value),
                                   NGHTTP2_NV_FLAG_NONE};
        p = eol + 2;
    }
    *nv_r = nv;
    return n;
}

static void submit(struct http_response *res, struct buf *fields, bool body)
{
    struct http_h2_stream *st = res->h2;
    char status[8];
    snprintf(status, sizeof(status), "%d", res->status);
    nghttp2_nv *nv;
    size_t n = fields_to_nv(fields, status, &nv);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read};
    int rv = nghttp2_submit_response(st->h->session, st->id, nv, n, body ? &prd : NULL);
    if (rv != 0)
        log_warning("http: HTTP/2 response on stream %d: %s", st->id, nghttp2_strerror(rv));
    free(nv);
    h2_schedule(st->h);
}

void http_h2_respond(struct http_response *res, const struct buf *fields)
{
    struct http_h2_stream *st = res->h2;
    bool body = !res->head_only && res->status >= 200 && res->status != 204 && res->status != 304 &&
                res->body.len > 0;
    if (body) {
        struct buf tmp = st->out;
        st->out = res->body;
        res->body = tmp;
        st->out_off = 0;
    }
    st->eof = true;
    struct buf f = BUF_INIT;
    buf_append(&f, fields->data, fields->len);
    submit(res, &f, body);
    buf_free(&f);
}

void http_h2_stream_start(struct http_response *res, const struct buf *fields)
{
    struct buf f = BUF_INIT;
    buf_append(&f, fields->data, fields->len);
    submit(res, &f, !res->head_only);
    buf_free(&f);
}

void http_h2_stream_write(struct http_response *res, const void *data, size_t len)
{
    struct http_h2_stream *st = res->h2;
    if (st->out_off > 0 && st->out_off >= st->out.len / 2) {
        /* A long stream that never quite drains: what was sent goes (at most half moves). */
        memmove(st->out.data, st->out.data + st->out_off, st->out.len - st->out_off);
        st->out.len -= st->out_off;
        st->out_off = 0;
    }
    buf_append(&st->out, data, len);
    nghttp2_session_resume_data(st->h->session, st->id);
    h2_schedule(st->h);
}

size_t http_h2_stream_pending(const struct http_response *res)
{
    return res->h2->out.len; /* sent bytes not yet moved out included: what it holds */
}

void http_h2_stream_reset(struct http_response *res)
{
    struct http_h2_stream *st = res->h2;
    nghttp2_submit_rst_stream(st->h->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    h2_schedule(st->h);
}

bool http_h2_stream_blocked(const struct http_response *res)
{
    const struct http_h2_stream *st = res->h2;
    return st->out.len - st->out_off > H2_STREAM_HIGH_WATER || net_conn_output_blocked(st->h->c);
}

void http_h2_stream_end(struct http_response *res)
{
    struct http_h2_stream *st = res->h2;
    st->eof = true;
    nghttp2_session_resume_data(st->h->session, st->id);
    h2_schedule(st->h);
}

void http_h2_continue(struct http_request *req)
{
    struct http_h2_stream *st = req->h2;
    const nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE},
    };
    int rv = nghttp2_submit_headers(st->h->session, NGHTTP2_FLAG_NONE, st->id, NULL, nv, 1, NULL);
    if (rv != 0)
        log_warning("http: HTTP/2 100 Continue on stream %d: %s", st->id, nghttp2_strerror(rv));
    h2_schedule(st->h);
}

void http_h2_body_ack(struct http_request *req)
{
    struct http_h2_stream *st = req->h2;
    if (st->unacked == 0 || req->flow == HTTP_FLOW_WAIT ||
        (req->flow == HTTP_FLOW_SINK && req->body_paused))
        return;
    nghttp2_session_consume_stream(st->h->session, st->id, st->unacked);
    st->unacked = 0;
    h2_schedule(st->h); /* the WINDOW_UPDATE leaves from the flush */
}
