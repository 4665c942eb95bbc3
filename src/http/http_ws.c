/*
 * http_ws.c - WebSocket (RFC 6455) on an HTTP/1.1 connection: the opening
 * handshake a route asks for (http_response_websocket), then the framing
 * through wslay (masking, fragments, ping/pong, close, message size) with
 * whole text messages handed to the route's handler.
 *
 * The connection layer (http_conn.c) switches the connection over once the
 * 101 is written and feeds it here. Must never: upgrade a request whose
 * handshake fields are wrong or that does not offer the subprotocol, accept
 * an unmasked client frame (wslay refuses it), or hold a message longer
 * than http_max_body.
 */
#include "base/alloc.h"
#include "base/base64.h"
#include "base/log.h"
#include "http/http_conn.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

struct http_ws {
    struct net_conn *c;
    wslay_event_context_ptr ctx;
    const struct http_ws_handler *h;
    void *arg;
    int in_recv;
    bool closing;
};

/* A comma-separated field value holds token (any case). */
static bool has_token(const char *value, const char *token)
{
    while (value != NULL && *value) {
        size_t n = strcspn(value, ",");
        struct slice t = slice_trim(slice_make(value, n));
        if (slice_eq_cstr_nocase(t, token))
            return true;
        value += n;
        if (*value == ',')
            value++;
    }
    return false;
}

bool http_response_websocket(struct http_request *req, struct http_response *res,
                             const char *subprotocol, const struct http_ws_handler *h, void *arg)
{
    const char *version = http_request_header(req, "Sec-WebSocket-Version");
    const char *key = http_request_header(req, "Sec-WebSocket-Key");
    struct buf dec = BUF_INIT;
    if (req->h2 != NULL || (version != NULL && strcmp(version, "13") != 0)) {
        http_response_header(res, "Sec-WebSocket-Version", "13");
        http_response_text(res, 426, "Upgrade Required");
        return false;
    }
    bool ok = req->head.minor == 1 && version != NULL && key != NULL &&
              has_token(http_request_header(req, "Upgrade"), "websocket") &&
              has_token(http_request_header(req, "Connection"), "upgrade") &&
              base64_decode(slice_from_cstr(key), 16, &dec) == BASE64_OK && dec.len == 16;
    buf_free(&dec);
    if (!ok || !has_token(http_request_header(req, "Sec-WebSocket-Protocol"), subprotocol)) {
        http_response_text(res, 400,
                           ok ? "the subprotocol is not offered" : "not a WebSocket handshake");
        return false;
    }
    /* RFC 6455 4.2.2: base64(SHA-1(key + the GUID)). */
    struct buf k = BUF_INIT, accept = BUF_INIT;
    buf_printf(&k, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)k.data, k.len, md);
    base64_encode(md, sizeof(md), &accept);
    res->status = 101;
    http_response_header(res, "Upgrade", "websocket");
    http_response_header(res, "Connection", "Upgrade");
    http_response_header(res, "Sec-WebSocket-Accept", accept.data);
    http_response_header(res, "Sec-WebSocket-Protocol", subprotocol);
    buf_free(&k);
    buf_free(&accept);
    res->upgrade = xcalloc(1, sizeof(*res->upgrade));
    res->upgrade->h = h;
    res->upgrade->arg = arg;
    return true;
}

/* ---- wslay callbacks ---- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
    (void)flags;
    struct http_ws *ws = arg;
    int n = evbuffer_remove(net_conn_input(ws->c), buf, len);
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *arg)
{
    (void)flags;
    struct http_ws *ws = arg;
    if (net_conn_output_blocked(ws->c)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    net_conn_write(ws->c, data, len);
    return (ssize_t)len;
}

static void ws_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                       void *arg)
{
    struct http_ws *ws = arg;
    if (m->opcode == WSLAY_TEXT_FRAME)
        ws->h->message(ws->arg, ws, (const char *)m->msg, m->msg_length);
    else if (m->opcode == WSLAY_BINARY_FRAME)
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
}

/* Sends what wslay queued; closes when both sides said goodbye or the peer broke the rules. */
static void ws_pump(struct http_ws *ws)
{
    if (ws->in_recv > 0 || ws->closing)
        return;
    if (wslay_event_send(ws->ctx) != 0 ||
        (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx))) {
        ws->closing = true;
        net_conn_close(ws->c, true); /* the last thing: closed() may follow */
    }
}

struct http_ws *http_ws_start(struct http_ws *ws, struct net_conn *c, uint64_t max_message)
{
    static const struct wslay_event_callbacks cb = {
        .recv_callback = ws_recv,
        .send_callback = ws_send,
        .on_msg_recv_callback = ws_message,
    };
    ws->c = c;
    WHARF_ASSERT(wslay_event_context_server_init(&ws->ctx, &cb, ws) == 0);
    wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message);
    return ws;
}

void http_ws_readable(struct http_ws *ws)
{
    if (ws->closing)
        return;
    ws->in_recv++;
    int rv = wslay_event_recv(ws->ctx);
    ws->in_recv--;
    if (rv != 0) {
        log_info("http: WebSocket from %s: broken framing; disconnecting", net_conn_addr(ws->c));
        ws->closing = true;
        net_conn_close(ws->c, true);
        return;
    }
    ws_pump(ws);
}

void http_ws_writable(struct http_ws *ws)
{
    ws_pump(ws);
}

void http_ws_drain(struct http_ws *ws)
{
    wslay_event_queue_close(ws->ctx, WSLAY_CODE_GOING_AWAY, NULL, 0);
    ws_pump(ws);
}

void http_ws_free(struct http_ws *ws)
{
    if (ws == NULL)
        return;
    if (ws->h->closed)
        ws->h->closed(ws->arg);
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    free(ws);
}

void http_ws_park_soon(struct http_ws *ws)
{
    net_conn_park_soon(ws->c);
}

void http_ws_send(struct http_ws *ws, const char *data, size_t len)
{
    if (ws->closing)
        return;
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)data, len};
    wslay_event_queue_msg(ws->ctx, &msg);
    ws_pump(ws);
}
