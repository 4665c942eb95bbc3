/*
 * http_routes.c - every route of the https side, registered at worker
 * start: the one place that names them (each feature adds one call).
 *
 * Must never: do more than register (no I/O, no blocking work).
 */
#include "http/http_server.h"
#include "http/jmap_http.h"

#include "http/http_admin.h"
#include "http/http_autoconfig.h"
#include "http/http_metrics.h"
#include "http/webmail.h"

void http_routes_init(struct http_server *srv)
{
    http_metrics_init(srv);
    http_autoconfig_init(srv);
    http_admin_init(srv);     /* /admin (doc/admin-api.md) */
    jmap_routes_init(srv);    /* /.well-known/jmap, /jmap/... (doc/jmap.md) */
    webmail_routes_init(srv); /* /, /webmail/... (doc/webmail.md) */
}
