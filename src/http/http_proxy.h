/*
 * http_proxy.h - JMAP (and the webmail's JMAP) on a front-end and on a
 * back-end (doc/frontend.md, "HTTP"). The connection layer (http_conn.c)
 * calls it for routes flagged HTTP_ROUTE_HOME once the request's user is
 * known:
 *   - a front-end (or a back-end with frontend_secret) forwards the request
 *     of an account homed elsewhere to that home server's https service over
 *     TLS (net/net_proxy.h, connections kept and reused per home server),
 *     with a Wharf-Frontend field that proves, as the XWHARFPROXY hand-over
 *     does, that a configured front-end authenticated the account for this
 *     client address on this very TLS connection; the answer (a whole body,
 *     or a stream such as EventSource) goes back to the client;
 *   - a back-end takes a Wharf-Frontend field only from frontend_networks,
 *     over TLS, with the right MAC, and only for an account homed here.
 *
 * Must never: let the client name the back-end, pass a client's own
 * Wharf-Frontend field (or its credentials) to a back-end, or run a HOME
 * route locally on a front-end.
 */
#ifndef WHARF_HTTP_HTTP_PROXY_H
#define WHARF_HTTP_HTTP_PROXY_H

#include "http/http_conn.h"

#define HTTP_PROXY_FIELD "Wharf-Frontend"

/* At worker start: a directory client when this server may proxy (front-end or secret). */
void http_proxy_init(struct http_server *srv);
void http_proxy_free(void);

/* This server may proxy (a front-end, or a back-end with frontend_secret): a HOME route's
 * request body is then read after its route decided (http_request_body_early). */
bool http_proxy_enabled(void);

/*
 * A request that carries HTTP_PROXY_FIELD: checks it (see the top of this
 * file). True with the account in *account_r (malloc'd) when a front-end
 * vouches for it; else false, and the reason is logged.
 */
bool http_proxy_handover(struct http_request *req, const char *value, char **account_r);

/*
 * A HOME route's request with its user known: true when this module took it
 * (forwarded, refused, or waiting for the directory); false when the handler
 * is to run here at once. When it later decides the handler runs here, it
 * calls http_exchange_run(res).
 */
bool http_proxy_route(struct http_request *req, struct http_response *res);

/* `wharf status` of a worker that proxies: proxy_held, the bytes its proxied exchanges
 * hold now (gathered bodies, back-end bytes not yet read, streams' unsent output,
 * request bodies read from the client and not yet taken by the back-end), proxy_paused,
 * the streams whose back-end is not read until their client reads,
 * proxy_uploads_paused, the uploads whose client is not read until their back-end takes
 * what waits for it, and proxy_held_peak, the most one exchange held at once since the
 * worker started. */
void http_proxy_status(void *arg, json_t *obj);

/* The route's handler, now (http_conn.c). */
void http_exchange_run(struct http_response *res);

#endif
