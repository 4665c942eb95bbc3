/*
 * pop3_component.c - the pop3 component: how wharfd knows it, and its worker
 * process, which serves 110 (STLS) and 995 (implicit TLS) on the network
 * worker skeleton (net_worker_new, ipc/component_loop.h).
 * Must never: bind a socket, or run as root past net_worker_new.
 */
#include "base/log.h"
#include "net/net_proxy.h"
#include "pop3/pop3.h"
#include "pop3/pop3_maildrop.h"
#include "pop3/pop3_session.h"

#include <sysexits.h>

static int pop3_main(struct component_ctx *ctx)
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
    srv.dir = directory_client_new(net_worker_base(w), cfg);
    struct net_service_limits limits = {
        .idle_timeout_ms = cfg->pop3_idle_timeout,
        .login_timeout_ms = cfg->pop3_login_timeout,
        .refuse_line = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
    };
    net_worker_serve(w, "pop3", NET_TLS_STARTTLS, &pop3_proto, &srv, &limits);
    net_worker_serve(w, "pop3s", NET_TLS_IMPLICIT, &pop3_proto, &srv, &limits);
    int rc = net_worker_run(w);
    auth_client_free(srv.auth);
    directory_client_free(srv.dir);
    store_close(srv.store);
    net_worker_free(w);
    buf_free(&err);
    return rc;
}

static const char *const pop3_sandbox_data[] = {"store", "run/pop3", NULL};

const struct component_def pop3_component = {
    .name = "pop3",
    .exchange_name = "POP3",
    .kind = COMPONENT_WORKERS,
    .main = pop3_main,
    .job = "mailbox download over POP3",
    .check_config = net_proxy_check_config, /* the front-end's options */
    .sandbox_data = pop3_sandbox_data,      /* the store, and the maildrop locks */
};
