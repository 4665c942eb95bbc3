/*
 * http_component.c - the http component: how wharfd knows it, and its
 * worker process, which serves 80 (redirect to https, ACME http-01) and 443
 * (the routes of http_routes.c) on the network worker skeleton
 * (net_worker_new, ipc/component_loop.h).
 * Must never: bind a socket, or run as root past net_worker_new.
 */
#include "base/log.h"
#include "http/http.h"
#include "http/http_proxy.h"
#include "http/http_server.h"
#include "http/http_testroutes.h"
#include "http/jmap_http.h"
#include "http/webmail.h"
#include "store/store.h"

#include <sysexits.h>

/* The worker's figures for `wharf status`: the proxy's and the JMAP engine's. */
static void http_status(void *arg, json_t *obj)
{
    http_proxy_status(arg, obj);
    jmap_routes_status(obj);
}

static int http_main(struct component_ctx *ctx)
{
    webmail_load(ctx->cfg); /* before the sandbox: webmail_dir may be anywhere */
    struct net_worker *w = net_worker_new(ctx);
    const struct wharf_config *cfg = net_worker_config(w);
    struct buf err = BUF_INIT;
    struct http_server srv = {.worker = w};
    http_server_init(&srv, cfg);
    srv.store = store_open(cfg, &err);
    if (srv.store == NULL)
        log_fatal(EX_TEMPFAIL, "cannot open the store: %s", buf_cstr(&err));
    srv.auth = auth_client_new(net_worker_base(w), cfg);
    net_worker_on_event(w, http_server_event, &srv);
    http_routes_init(&srv);
    http_proxy_init(&srv);
    net_worker_set_status(w, http_status, NULL);
    if (cfg->test_hooks)
        http_testroutes_init(&srv);
    struct net_service_limits limits = {
        .idle_timeout_ms = cfg->http_idle_timeout,
        .refuse_line = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                       "Content-Length: 0\r\nRetry-After: 10\r\n\r\n",
    };
    net_worker_serve(w, "http", NET_TLS_NONE, &http_proto, &srv, &limits);
    net_worker_serve(w, "https", NET_TLS_IMPLICIT, &http_proto, &srv, &limits);
    int rc = net_worker_run(w);
    jmap_routes_free();
    webmail_routes_free();
    http_proxy_free();
    auth_client_free(srv.auth);
    store_close(srv.store);
    http_server_free(&srv);
    net_worker_free(w);
    buf_free(&err);
    return rc;
}

/* The store (JMAP), the worker's temporary files, ACME challenge files (read only in use),
 * and the queue JMAP's EmailSubmission writes to. */
static const char *const http_sandbox_data[] = {"run/http", "store", "acme-challenge", "spool",
                                                NULL};

const struct component_def http_component = {
    .name = "http",
    .exchange_name = "Outlook Web Access",
    .kind = COMPONENT_WORKERS,
    .main = http_main,
    .job = "webmail, JMAP API, admin API, /metrics",
    .sandbox_data = http_sandbox_data,
};
