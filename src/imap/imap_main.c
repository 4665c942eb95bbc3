/*
 * imap_main.c - an imap worker process: serves 143 (STARTTLS) and 993 (implicit TLS).
 */
#include "base/log.h"
#include "imap/imap.h"
#include "imap/imap_int.h"
#include "imap/imap_session.h"
#include "directory/directory_client.h"

#include <sysexits.h>

int imap_main(struct component_ctx *ctx);

int imap_main(struct component_ctx *ctx)
{
    struct net_worker *w = net_worker_new(ctx);
    const struct wharf_config *cfg = net_worker_config(w);
    struct buf err = BUF_INIT;
    struct imap_server srv = {.worker = w, .cfg = cfg, .greeting_host = cfg->myhostname};
    srv.store = store_open(cfg, &err);
    if (srv.store == NULL)
        log_fatal(EX_TEMPFAIL, "cannot open the store: %s", buf_cstr(&err));
    srv.auth = auth_client_new(net_worker_base(w), cfg);
    srv.dir = directory_client_new(net_worker_base(w), cfg);
    net_worker_on_event(w, imap_server_event, &srv);
    struct net_service_limits limits = {
        .idle_timeout_ms = cfg->imap_idle_timeout,
        .login_timeout_ms = cfg->imap_login_timeout,
        .refuse_line = "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
    };
    /* Connection limits come from the services table (<service>_max_connections). */
    component_connection_limits(ctx, "imap", &limits.max_conns, &limits.max_conns_per_client);
    net_worker_serve(w, "imap", NET_TLS_STARTTLS, &imap_proto, &srv, &limits);
    component_connection_limits(ctx, "imaps", &limits.max_conns, &limits.max_conns_per_client);
    net_worker_serve(w, "imaps", NET_TLS_IMPLICIT, &imap_proto, &srv, &limits);
    int rc = net_worker_run(w);
    auth_client_free(srv.auth);
    directory_client_free(srv.dir);
    store_close(srv.store);
    net_worker_free(w);
    buf_free(&err);
    return rc;
}
