/*
 * http_testroutes.c - the test_hooks routes under /_test/ (see
 * http_testroutes.h), which double as the worked example of the route API:
 *   /_test/echo    any method: method, path, query, Host, body length, body
 *   /_test/whoami  GET, HTTP_ROUTE_AUTH: the logged-in account
 *   /_test/later   GET: answered from a timer (http_response_defer/finish)
 *   /_test/stream  GET: three chunks from a timer, then the end (streaming)
 *
 * Must never: be reached without test_hooks.
 */
#include "http/http_testroutes.h"

#include "base/alloc.h"
#include "http/http_server.h"

#include <event2/event.h>
#include <stdlib.h>

static void echo(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    struct slice body = http_request_body(req);
    const char *ua = http_request_header(req, "X-Test");
    struct buf *b = http_response_body(res);
    buf_printf(b, "method=%s\npath=%s\nquery=%s\nhost=%s\nx-test=%s\nbody-length=%zu\n",
               http_request_method(req), http_request_path(req), http_request_query(req),
               http_request_host(req), ua ? ua : "(none)", body.len);
    buf_append_slice(b, body);
    http_response_content_type(res, "text/plain; charset=utf-8");
}

static void whoami(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    buf_printf(http_response_body(res), "%s\n", http_request_user(req));
    http_response_content_type(res, "text/plain; charset=utf-8");
}

struct held {
    struct http_response *res;
    struct event *timer;
    int left; /* chunks still to send (stream) */
};

static void held_free(struct held *h)
{
    event_free(h->timer);
    free(h);
}

/* The client went away first: drop the timer, never touch res again. */
static void held_gone(void *arg)
{
    held_free(arg);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct held *h = arg;
    struct http_response *res = h->res;
    held_free(h);
    buf_append_cstr(http_response_body(res), "later\n");
    http_response_finish(res);
}

static void later(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    struct held *h = xcalloc(1, sizeof(*h));
    h->res = res;
    h->timer = evtimer_new(http_server_base(http_request_server(req)), later_cb, h);
    struct timeval tv = {0, 50000};
    evtimer_add(h->timer, &tv);
    http_response_content_type(res, "text/plain; charset=utf-8");
    http_response_on_close(res, held_gone, h);
    http_response_defer(res);
}

static void stream_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct held *h = arg;
    struct http_response *res = h->res;
    if (h->left == 0) {
        held_free(h);
        http_response_stream_end(res);
        return;
    }
    struct buf line = BUF_INIT;
    buf_printf(&line, "data: %d\n\n", h->left--);
    http_response_stream_write(res, line.data, line.len);
    buf_free(&line);
    struct timeval tv = {0, 20000};
    evtimer_add(h->timer, &tv);
}

static void stream(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    struct held *h = xcalloc(1, sizeof(*h));
    h->res = res;
    h->left = 3;
    h->timer = evtimer_new(http_server_base(http_request_server(req)), stream_cb, h);
    http_response_content_type(res, "text/event-stream");
    http_response_header(res, "Cache-Control", "no-cache");
    http_response_on_close(res, held_gone, h);
    http_response_stream_start(res);
    event_active(h->timer, 0, 0);
}

void http_testroutes_init(struct http_server *srv)
{
    (void)srv;
    http_route_add(NULL, "/_test/echo", 0, echo, NULL);
    http_route_add("GET", "/_test/whoami", HTTP_ROUTE_AUTH, whoami, NULL);
    http_route_add("GET", "/_test/later", 0, later, NULL);
    http_route_add("GET", "/_test/stream", 0, stream, NULL);
}
