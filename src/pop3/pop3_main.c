/*
 * pop3_main.c - a pop3 worker process: serves 110 (STLS) and 995 (implicit TLS).
 */
#include "base/log.h"
#include "pop3/pop3.h"
#include "pop3/pop3_maildrop.h"
#include "pop3/pop3_session.h"

#include <sysexits.h>

int pop3_main(struct component_ctx *ctx);

int pop3_main(struct component_ctx *ctx)
{
    struct net_worker *w = net_worker_new(ctx);
    const struct wharf_config *cfg = net_worker_config(w);
    struct buf err = BUF_INIT;
    struct pop3_server srv = {.worker = w, .cfg = cfg, .greeting_host = cfg->myhostname};
    if (pop3_maildrop_init(cfg, &err) != 0)
        log_fatal(EX_CANTCREAT, "%s", buf_cstr(&err));
    srv.store = store_open(cfg, &err);
    if (srv.store == NULL)
        log_fatal(EX_TEMPFAIL, "cannot open the store: %s", buf_cstr(&err));
    srv.auth = auth_client_new(net_worker_base(w), cfg);
    struct net_service_limits limits = {
        .idle_timeout_ms = cfg->pop3_idle_timeout,
        .login_timeout_ms = cfg->pop3_login_timeout,
        .refuse_line = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
    };
    /* Connection limits come from the services table (<service>_max_connections). */
    component_connection_limits(ctx, "pop3", &limits.max_conns, &limits.max_conns_per_client);
    net_worker_serve(w, "pop3", NET_TLS_STARTTLS, &pop3_proto, &srv, &limits);
    component_connection_limits(ctx, "pop3s", &limits.max_conns, &limits.max_conns_per_client);
    net_worker_serve(w, "pop3s", NET_TLS_IMPLICIT, &pop3_proto, &srv, &limits);
    int rc = net_worker_run(w);
    auth_client_free(srv.auth);
    store_close(srv.store);
    net_worker_free(w);
    buf_free(&err);
    return rc;
}
