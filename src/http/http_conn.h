/*
 * http_conn.h - the connection layer's own header: the request and response
 * objects of http_route.h, which both transports fill alike (HTTP/1.1 in
 * http_conn.c, HTTP/2 in http_h2.c), and the calls between the two. A route
 * never sees which transport carried its request.
 *
 * An HTTP/2 request is handed over as the HTTP/1.1 head it stands for
 * (request line, Host from :authority, the fields, cookies joined) and read
 * by the one request parser (http_parse.c), so that both transports refuse
 * the same things with the same status and the same size limits.
 *
 * Must never: be included by a route (routes see http_route.h only).
 */
#ifndef WHARF_HTTP_HTTP_CONN_H
#define WHARF_HTTP_HTTP_CONN_H

#include "auth/auth_login.h"
#include "http/http_server.h"

struct http_conn;
struct http_h2;
struct net_proxy;
struct http_h2_stream;

/*
 * What becomes of a request's body. Every request is read whole before its
 * handler runs (HTTP_FLOW_READ), except one with a body for a HOME route on a
 * server that proxies, or one that expects 100 Continue on any route of 443
 * (http_request_body_early): that one is authenticated and routed from its
 * head alone, and its route then takes the body as it comes (a front-end
 * forwarding it, HTTP_FLOW_SINK) or has it read whole before the handler runs
 * here (http_exchange_run, HTTP_FLOW_GATHER). 100 Continue goes out when the
 * body is first wanted; a refusal (401, 403, 404) comes without it.
 */
enum http_body_flow {
    HTTP_FLOW_READ,   /* read whole before the handler */
    HTTP_FLOW_WAIT,   /* the handler ran with it unread; nobody reads it yet */
    HTTP_FLOW_GATHER, /* read whole, then http_exchange_run(flow_res) */
    HTTP_FLOW_SINK,   /* each piece to the sink as it comes */
    HTTP_FLOW_DROP,   /* the exchange was answered without it: discarded */
    HTTP_FLOW_DONE,   /* read to its end (or refused) and handed on */
};

/* Where a streamed request body goes (http_request_body_sink). */
struct http_body_sink {
    /* Decoded body bytes (chunked framing or DATA frames removed), in order. */
    void (*data)(void *arg, const void *p, size_t n);
    /* The end: 0 when the body is whole; else the 4xx that refuses it (413 over
     * http_max_body, 400 bad framing): the sink answers it. */
    void (*end)(void *arg, int status);
};

struct http_request {
    struct http_conn *conn;
    struct http_h2_stream *h2; /* NULL: HTTP/1.1 */
    struct http_head head;
    struct buf raw;  /* the head's bytes; head's slices point here */
    struct buf body; /* decoded */
    char *method;    /* NUL-terminated copies */
    char *path, *query, *host;
    const char *user;    /* the connection's, after authentication */
    char *handover_user; /* this request's, vouched for by a front-end (http_proxy.c) */
    enum http_body_flow flow;
    struct http_response *flow_res; /* HTTP_FLOW_GATHER: the exchange run once it is whole */
    const struct http_body_sink *sink;
    void *sink_arg;
    uint64_t body_seen; /* decoded body bytes so far (http_max_body, counted as they come) */
    int body_status;    /* once its end came: 0 whole, else the 4xx that refused it */
    bool body_ended;    /* its end came (HTTP_FLOW_WAIT remembers it for later) */
    bool body_paused;   /* the sink asked for no more for now */
    bool continued;     /* Expect: 100-continue dealt with (100 sent, or not needed) */
};

struct http_response {
    struct http_conn *conn;
    struct http_h2_stream *h2; /* NULL: HTTP/1.1 */
    struct http_request *req;
    int status;
    struct buf headers; /* "Name: value\r\n"... */
    struct buf body;
    bool deferred, streaming, done, head_only, chunked;
    bool sized; /* a stream with its Content-Length: it ends by itself (a drain waits for it) */
    bool compressible; /* its Content-Type is text-like (compression pays off) */
    bool encoded;      /* the handler set its own Content-Encoding */
    bool held;         /* a handler holds it (ran and did not answer at once) */
    http_handler_fn fn;
    void *fn_arg;
    unsigned route_flags;            /* enum http_route_flags of the route found */
    struct http_response *auth_next; /* waiting for the login kit (HTTP/2) */
    http_session_fn session_fn;      /* a webmail sign-in or sign-out at the login kit */
    void *session_arg;
    struct buf session_cred; /* user NUL password, or the session token; wiped */
    bool session_end;        /* a sign-out */
    struct http_ws *upgrade; /* a WebSocket handshake answered: 101, then frames */
    void (*on_close)(void *arg);
    void *on_close_arg;
    void (*on_writable)(void *arg); /* a stream's output drained (http_response_on_writable) */
    void *on_writable_arg;
};

/*
 * A request from its complete head (up to and including the empty line),
 * parsed on a copy of its own. NULL with *status_r and *why_r when the
 * parser refuses it.
 */
struct http_request *http_request_new(struct http_conn *hc, const char *head, size_t len,
                                      int *status_r, const char **why_r);
void http_request_free(struct http_request *req);
struct http_response *http_response_new(struct http_conn *hc, struct http_request *req);
void http_response_free(struct http_response *res);

/* The connection a request came on (the proxy's channel binding). */
struct net_conn *http_request_net_conn(const struct http_request *req);

/*
 * HTTP/1.1: res is a 101 from a home server (http_proxy.c): its head goes to
 * the client, and from then on the connection is spliced to p byte for byte
 * (a WebSocket through a front-end); p is the connection's to free.
 */
void http_exchange_splice(struct http_response *res, struct net_proxy *p);

/* ---- request bodies after the handler ran (see enum http_body_flow) ---- */

/* The request (its head just read, a body to follow) goes to its route now, its body
 * unread (HTTP_FLOW_WAIT): a HOME route on a server that may proxy. */
bool http_request_body_early(const struct http_request *req);
/* HTTP_FLOW_WAIT: the body's length when the client gave one, else -1 (chunked, or an
 * HTTP/2 body without content-length). */
int64_t http_request_body_length(const struct http_request *req);
/* HTTP_FLOW_WAIT: from now on the body goes to sink as it comes (what came already
 * first, maybe at once); its end follows. */
void http_request_body_sink(struct http_request *req, const struct http_body_sink *sink, void *arg);
/* The sink wants no more for now (its peer's output is full) / again. HTTP/1.1 stops
 * reading the connection; HTTP/2 stops giving the stream's window back. */
void http_request_body_pause(struct http_request *req, bool pause);
/* What the transport holds of the body not yet handed to the sink. */
size_t http_request_body_buffered(const struct http_request *req);
/* From the transports: body bytes, and the body's end (0, or the 4xx that refuses it). */
void http_request_body_feed(struct http_request *req, const void *p, size_t n);
void http_request_body_finish(struct http_request *req, int status);

/* Routes a whole request (HTTP/2): 404/405, authentication, the handler. */
void http_exchange_start(struct http_request *req, struct http_response *res);
/* The stream of res is going away: out of the login kit's queue, on_close told. */
void http_exchange_gone(struct http_response *res);
/* Answers status with a short text (and extra "Name: value\r\n" lines). */
void http_exchange_error(struct http_response *res, int status, const char *extra);
/* The fields every response has, the handler's, then framing: "Name: value\r\n" lines. */
void http_response_fields(struct http_response *res, const char *framing, struct buf *out);
/* Compression when it pays and the client takes it; the framing lines it adds. */
void http_response_encode(struct http_response *res, struct buf *framing);

/* ---- HTTP/2 (http_h2.c) ---- */

/* A session on a connection whose handshake chose h2: sends the server's SETTINGS. */
struct http_h2 *http_h2_new(struct http_conn *hc, struct net_conn *c, struct http_server *srv);
/* Ends every stream (on_close), frees the session. */
void http_h2_free(struct http_h2 *h);
void http_h2_readable(struct http_h2 *h);
void http_h2_writable(struct http_h2 *h);
/* Drain and timeout: GOAWAY, then close once the streams under way are answered. */
void http_h2_goaway(struct http_h2 *h, bool now);

/* The response side for a stream (res->h2 set): fields as http_response_fields made them. */
void http_h2_respond(struct http_response *res, const struct buf *fields);
void http_h2_stream_start(struct http_response *res, const struct buf *fields);
void http_h2_stream_write(struct http_response *res, const void *data, size_t len);
bool http_h2_stream_blocked(const struct http_response *res);
/* What the stream holds unsent (its own buffer, not the connection's). */
size_t http_h2_stream_pending(const struct http_response *res);
/* RST_STREAM (INTERNAL_ERROR): a body that cannot be completed. */
void http_h2_stream_reset(struct http_response *res);
void http_h2_stream_end(struct http_response *res);
/* Expect: 100-continue on a stream whose body is wanted: a 100 HEADERS frame. */
void http_h2_continue(struct http_request *req);
/* The stream's window given back for the body bytes taken, unless its sink paused. */
void http_h2_body_ack(struct http_request *req);

/* ---- WebSocket (http_ws.c) ---- */

/* The connection switches to WebSocket framing once the 101 is written. */
struct http_ws *http_ws_start(struct http_ws *ws, struct net_conn *c, uint64_t max_message);
void http_ws_readable(struct http_ws *ws);
void http_ws_writable(struct http_ws *ws);
/* Drain: a close frame (1001), then the connection closes. */
void http_ws_drain(struct http_ws *ws);
/* Tells the handler (closed), frees. NULL is ignored. */
void http_ws_free(struct http_ws *ws);

#endif
