/*
 * http_route.h - what the rest of Wharf's web side (JMAP, the admin API,
 * /metrics, autoconfiguration) registers with the http worker, and the
 * request and response a handler sees.
 *
 * A handler is registered for a method and a path prefix at worker start
 * (http_routes_init in http_routes.c, the one place that names them all).
 * For each request on 443 the longest matching prefix wins; a path that
 * matches but not with this method gets 405. HTTP_ROUTE_AUTH routes see a
 * logged-in user (HTTP Basic over TLS, checked by the auth process) or the
 * client gets 401 and the handler never runs.
 *
 * Three ways to answer:
 *   - at once: set status, headers and body, and return; the response is
 *     sent when the handler returns;
 *   - later: http_response_defer(res) before returning, then
 *     http_response_finish(res) from any callback (an IPC reply, a timer);
 *   - streaming: http_response_stream_start(res) (sends the head with
 *     Transfer-Encoding: chunked), then http_response_stream_write() any
 *     number of times from callbacks, then http_response_stream_end(res).
 * For the last two, register http_response_on_close(): when the client goes
 * away (or the worker drains a stream), fn is called once and req and res
 * are freed right after it returns -- never touch them again.
 *
 * Requests on one connection are answered in order: while one is deferred
 * or streaming, the next pipelined request waits.
 *
 * Must never: be called from another thread; keep req or res past
 * http_response_finish, http_response_stream_end or the on_close callback.
 */
#ifndef WHARF_HTTP_HTTP_ROUTE_H
#define WHARF_HTTP_HTTP_ROUTE_H

#include "base/buf.h"
#include "base/config.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct http_request;
struct http_response;
struct http_server;

typedef void (*http_handler_fn)(struct http_request *req, struct http_response *res, void *arg);

enum http_route_flags {
    HTTP_ROUTE_AUTH = 1 << 0,  /* needs a logged-in user (401 with WWW-Authenticate otherwise) */
    HTTP_ROUTE_EXACT = 1 << 1, /* this path only, not a prefix (e.g. "/" for the site's root) */
    /* (with AUTH) the user's mailbox data: served at the account's home server, to which a
     * front-end forwards the request (http_proxy.h) */
    HTTP_ROUTE_HOME = 1 << 2,
};

/*
 * Registers fn for method ("GET", "POST", ...; NULL: any method) on every
 * path equal to path_prefix or below it ("/jmap" matches "/jmap" and
 * "/jmap/upload/x", not "/jmapx"; a prefix ending in '/' matches anything
 * after it). A GET route also answers HEAD (the body is not sent).
 */
void http_route_add(const char *method, const char *path_prefix, unsigned flags, http_handler_fn fn,
                    void *arg);
/* Forgets every route (worker exit, tests). */
void http_route_clear(void);

/* ---- the request ---- */

const char *http_request_method(const struct http_request *req); /* "GET" */
const char *http_request_path(const struct http_request *req);   /* "/jmap/api", still %-encoded */
const char *http_request_query(const struct http_request *req);  /* after '?', "" when none */
/* The first field called name (any case), NUL-terminated; NULL when absent. */
const char *http_request_header(const struct http_request *req, const char *name);
const char *http_request_host(const struct http_request *req); /* Host, "" when none */
/* The body, whole (Content-Length or chunked, decoded); len 0 when none. */
struct slice http_request_body(const struct http_request *req);
const char *http_request_remote_addr(const struct http_request *req); /* "192.0.2.1" */
bool http_request_is_tls(const struct http_request *req);
/* The account logged in for this request (canonical name), NULL when none. */
const char *http_request_user(const struct http_request *req);
/*
 * Appends s[0..len) %-decoded to out ('+' is a space when form is true: a
 * query's value); false on a bad escape or an encoded NUL.
 */
bool http_pct_decode(const char *s, size_t len, bool form, struct buf *out);
/* The worker's server: configuration, event loop, bus (http_server.h). */
struct http_server *http_request_server(const struct http_request *req);

/*
 * The webmail's sign-in and sign-out (webmail_session.c), on the
 * connection's own login kit so that a form's password is checked exactly
 * as Basic's (rate limits, bans, failure delay): http_request_session_start
 * checks user and password and has the auth process make a session token;
 * http_request_session_end checks a session token and revokes it. Call
 * from a handler that deferred res; fn runs once with the verdict: 200 (and
 * account, and session for a start), 401, 429 or 503; then the handler
 * finishes res.
 */
typedef void (*http_session_fn)(struct http_request *req, struct http_response *res, int status,
                                const char *account, const char *session, void *arg);
void http_request_session_start(struct http_request *req, struct http_response *res,
                                struct slice user, struct slice pass, http_session_fn fn,
                                void *arg);
void http_request_session_end(struct http_request *req, struct http_response *res,
                              struct slice token, http_session_fn fn, void *arg);

/* ---- the response ---- */

void http_response_status(struct http_response *res, int status); /* default 200 */
/* Adds a header field (no CR or LF in either; the caller's own, never framing fields). */
void http_response_header(struct http_response *res, const char *name, const char *value);
void http_response_content_type(struct http_response *res, const char *type);
/* The body, appended to by the handler (sent with Content-Length). */
struct buf *http_response_body(struct http_response *res);
/* Status, a text/plain body "text\n", in one call (errors). */
void http_response_text(struct http_response *res, int status, const char *text);

/* Answer later: the handler returns without an answer, finish sends it. */
void http_response_defer(struct http_response *res);
void http_response_finish(struct http_response *res);

/* Streaming (chunked): sends status and headers now (no body buffer). */
void http_response_stream_start(struct http_response *res);
void http_response_stream_write(struct http_response *res, const void *data, size_t len);
/* The same with a known length (Content-Length instead of chunked): a proxied download. */
void http_response_stream_start_length(struct http_response *res, uint64_t length);
/* The client reads slower than we write: hold off until it catches up. */
bool http_response_stream_blocked(const struct http_response *res);
/*
 * fn is called (from the loop) whenever the stream's output has drained
 * enough to write again: after stream_blocked said true, that is the time to
 * go on (HTTP/1.1: the output is sent; HTTP/2: the stream holds less than a
 * quarter of its high-water mark). It may be called when nothing was blocked.
 */
void http_response_on_writable(struct http_response *res, void (*fn)(void *arg), void *arg);
/* Bytes written to the stream and not yet sent (its share of what a slow reader costs). */
size_t http_response_stream_pending(const struct http_response *res);
/*
 * The body cannot be completed (its source went away): the client must not
 * take what it got for the whole. HTTP/1.1 closes the connection, HTTP/2
 * resets the stream. Like stream_end, res is gone after this.
 */
void http_response_stream_abort(struct http_response *res);
/* The last chunk; the connection goes on with the next request. */
void http_response_stream_end(struct http_response *res);
/*
 * A stream that may last for hours (an event source) is set up and its
 * handler is done with req: the request (head, body, the copies) is freed
 * now rather than with the response, and the connection's login state with
 * it (the login kit, and the credentials it logged in with: a later request
 * on the connection is checked afresh); the connection's
 * TLS parks once what was written is sent (net_conn_park_soon). req is gone
 * after this call: never touch it again; res goes on. HTTP/2 keeps its
 * request until its stream closes (nothing is freed, nothing parks early).
 */
void http_request_release(struct http_request *req);

/* For deferred and streaming responses: called once if the connection ends first. */
void http_response_on_close(struct http_response *res, void (*fn)(void *arg), void *arg);

/* ---- WebSocket (RFC 6455), over HTTP/1.1 ---- */

struct http_ws;
struct http_ws_handler {
    /* A whole text message (UTF-8 checked by the framing layer). */
    void (*message)(void *arg, struct http_ws *ws, const char *data, size_t len);
    /* The socket is gone (closed by either side, or the worker drains): forget ws. */
    void (*closed)(void *arg);
};
/*
 * Answers this GET with the RFC 6455 handshake when it is a valid upgrade
 * offering subprotocol (Sec-WebSocket-Protocol): 101, and from then on the
 * connection carries messages to h (text only, each at most http_max_body).
 * False, with the answer set (400, or 426 for a version other than 13), when
 * it is not; over HTTP/2 always false (426).
 */
bool http_response_websocket(struct http_request *req, struct http_response *res,
                             const char *subprotocol, const struct http_ws_handler *h, void *arg);
/* Queues a text message. */
void http_ws_send(struct http_ws *ws, const char *data, size_t len);
/* The socket is to stay quiet for long (a push): its TLS parks as soon as
 * what was sent is out (net_conn_park_soon). */
void http_ws_park_soon(struct http_ws *ws);

#endif
