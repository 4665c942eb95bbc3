/*
 * http_server.h - one http worker's shared state (configuration, the event
 * loop, the store, the auth client, the bus) and the connection protocol
 * (struct net_proto) that serves 80 and 443 with it.
 *
 * Handlers reach it through http_request_server(req); the code that
 * registers routes gets it in http_routes_init(srv).
 *
 * Must never: hold per-request state (that lives in http_conn.c).
 */
#ifndef WHARF_HTTP_HTTP_SERVER_H
#define WHARF_HTTP_HTTP_SERVER_H

#include "auth/auth_client.h"
#include "http/http_parse.h"
#include "http/http_route.h"
#include "net/net.h"

#include <stdint.h>

struct store;

struct http_event_listener {
    void (*fn)(void *arg, const struct ipc_event *ev);
    void *arg;
};

struct http_server {
    struct net_worker *worker;
    const struct wharf_config *cfg;
    struct auth_client *auth;
    struct store *store;
    struct http_parse_limits limits;
    char *acme_dir;      /* http_acme_dir: where http-01 challenge files are */
    uint16_t https_port; /* of https_listen, for the redirect from 80 */
    struct http_event_listener *listeners;
    size_t n_listeners;
};

extern const struct net_proto http_proto;

/* Fills srv from the configuration (the caller sets worker, auth and store). */
void http_server_init(struct http_server *srv, const struct wharf_config *cfg);
void http_server_free(struct http_server *srv);

struct event_base *http_server_base(struct http_server *srv);
const struct wharf_config *http_server_config(const struct http_server *srv);
struct store *http_server_store(struct http_server *srv);
struct net_worker *http_server_worker(struct http_server *srv);
/*
 * Calls fn for each bus event this worker receives. Subscribe with
 * net_worker_subscribe(http_server_worker(srv), ...). Listeners are called
 * in the order they were added.
 */
void http_server_listen_events(struct http_server *srv,
                               void (*fn)(void *arg, const struct ipc_event *ev), void *arg);
/* The worker's one bus callback: hands ev to every listener. */
void http_server_event(void *arg, const struct ipc_event *ev);

/* Port 80's answer to any request: an ACME challenge file or a redirect to https. */
void http_plain_serve(struct http_server *srv, struct http_request *req, struct http_response *res);

/*
 * The route for method on path (http_route.c). False when none: then allow_r
 * (when not NULL) lists the methods the path has (405), empty when the path
 * has no route at all (404).
 */
bool http_route_find(const char *method, const char *path, http_handler_fn *fn_r, void **arg_r,
                     unsigned *flags_r, struct buf *allow_r);

/*
 * Registers every route of the worker (http_routes.c): the one function the
 * worker calls at start. Each feature adds one call there.
 */
void http_routes_init(struct http_server *srv);

#endif
