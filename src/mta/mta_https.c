/*
 * mta_https.c - the mta's HTTPS client of mta_https.h (MTA-STS policy
 * fetches, TLS report posts). Never follows a redirect, never reads more
 * than the request's body limit, never blocks the loop.
 */
#include "mta/mta_https.h"

#include "base/alloc.h"
#include "base/log.h"
#include "mta/nexthop.h"
#include "net/net_tls_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct req {
    struct req *next, *prev;
    struct mta_https *h;
    char *host, *path, *content_type;
    uint16_t port;
    struct buf body;
    size_t max_body;
    int timeout_s;
    mta_https_cb *cb;
    void *arg;
    struct evhttp_connection *conn;
};

struct mta_https {
    struct event_base *base;
    struct nexthop_resolver *resolver;
    SSL_CTX *ctx;
    struct req *reqs; /* in flight */
};

struct mta_https *mta_https_new(struct event_base *base, struct nexthop_resolver *resolver,
                                struct ssl_ctx_st *verify_ctx)
{
    struct mta_https *h = xcalloc(1, sizeof(*h));
    h->base = base;
    h->resolver = resolver;
    h->ctx = verify_ctx;
    return h;
}

static void req_free(struct req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        q->h->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    free(q->host);
    free(q->path);
    free(q->content_type);
    buf_free(&q->body);
    free(q);
}

void mta_https_free(struct mta_https *h)
{
    if (h == NULL)
        return;
    while (h->reqs) {
        struct req *q = h->reqs;
        if (q->conn)
            evhttp_connection_free(q->conn); /* its request goes without a callback */
        req_free(q);
    }
    free(h);
}

static void on_conn_free(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    evhttp_connection_free(arg);
}

/* Answers the caller and forgets the request; its connection is freed from
 * the loop when inside its own request callback (libevent still uses it on
 * return). */
static void finish(struct req *q, bool in_callback, int status, struct slice body, const char *why)
{
    if (q->conn) {
        struct timeval zero = {0, 0};
        if (!in_callback ||
            event_base_once(q->h->base, -1, EV_TIMEOUT, on_conn_free, q->conn, &zero) != 0)
            evhttp_connection_free(q->conn);
        q->conn = NULL;
    }
    q->cb(q->arg, status, body, why);
    req_free(q);
}

static void on_response(struct evhttp_request *r, void *arg)
{
    struct req *q = arg;
    int code = r ? evhttp_request_get_response_code(r) : 0;
    if (code == 0) {
        struct bufferevent *bev = q->conn ? evhttp_connection_get_bufferevent(q->conn) : NULL;
        unsigned long ssl_err = bev ? bufferevent_get_openssl_error(bev) : 0;
        finish(q, true, 0, (struct slice){"", 0},
               ssl_err ? ERR_reason_error_string(ssl_err) : "connection, TLS or timeout");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    finish(q, true, code, (struct slice){body, len}, NULL);
}

static void on_addrs(const char *host, const struct nexthop_result *res, void *arg)
{
    struct req *q = arg;
    struct mta_https *h = q->h;
    char addr[NI_MAXHOST];
    const struct slice none = {"", 0};
    if (res->status != NEXTHOP_OK || res->n_hosts == 0 || res->hosts[0].n_addrs == 0 ||
        getnameinfo((const struct sockaddr *)&res->hosts[0].addrs[0], res->hosts[0].addr_lens[0],
                    addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0) {
        finish(q, false, 0, none, "no address for the host");
        return;
    }
    /* the host's certificate must be valid for its name */
    const struct net_tls_client_peer peer = {.name = host, .verify = NET_TLS_VERIFY_NAME};
    struct buf why = BUF_INIT;
    SSL *ssl = net_tls_client_ssl_new(h->ctx, &peer, &why);
    if (ssl == NULL) {
        finish(q, false, 0, none, buf_cstr(&why));
        buf_free(&why);
        return;
    }
    buf_free(&why);
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(h->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl);
        finish(q, false, 0, none, "cannot create the TLS connection");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    q->conn = evhttp_connection_base_bufferevent_new(h->base, NULL, bev, addr, q->port);
    evhttp_connection_set_timeout(q->conn, q->timeout_s);
    evhttp_connection_set_max_body_size(q->conn, (ev_ssize_t)q->max_body);
    evhttp_connection_set_retries(q->conn, 0);
    struct evhttp_request *r = evhttp_request_new(on_response, q);
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(r);
    evhttp_add_header(hdr, "Host", q->host);
    evhttp_add_header(hdr, "Connection", "close");
    if (q->content_type) {
        evhttp_add_header(hdr, "Content-Type", q->content_type);
        evbuffer_add(evhttp_request_get_output_buffer(r), q->body.data, q->body.len);
    }
    if (evhttp_make_request(q->conn, r, q->content_type ? EVHTTP_REQ_POST : EVHTTP_REQ_GET,
                            q->path) != 0)
        finish(q, false, 0, none, "cannot send the request"); /* libevent freed r */
}

void mta_https_start(struct mta_https *h, const struct mta_https_request *rq, mta_https_cb *cb,
                     void *arg)
{
    struct req *q = xcalloc(1, sizeof(*q));
    q->h = h;
    q->host = xstrdup(rq->host);
    q->path = xstrdup(rq->path);
    q->content_type = rq->content_type ? xstrdup(rq->content_type) : NULL;
    q->port = rq->port;
    buf_init(&q->body);
    buf_append(&q->body, rq->body.ptr, rq->body.len);
    q->max_body = rq->max_body;
    q->timeout_s = rq->timeout_s;
    q->cb = cb;
    q->arg = arg;
    q->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = q;
    h->reqs = q;
    nexthop_addrs(h->resolver, q->host, q->port, on_addrs, q);
}
