/*
 * nntp_component.c - the nntp component: how wharfd knows it, and its worker
 * process, which serves 119 (STARTTLS) and 563 (implicit TLS) on the network
 * worker skeleton (net_worker_new, ipc/component_loop.h).
 * Must never: bind a socket, or run as root past net_worker_new.
 */
#include "nntp/nntp.h"
#include "base/log.h"
#include "nntp/nntp_commit.h"
#include "nntp/nntp_session.h"

#include <sysexits.h>

static int nntp_main(struct component_ctx *ctx)
{
    struct net_worker *w = net_worker_new(ctx);
    const struct wharf_config *cfg = net_worker_config(w);
    struct buf err = BUF_INIT;
    struct nntp_server srv = {.worker = w, .cfg = cfg, .host = cfg->myhostname};
    srv.store = store_open(cfg, &err);
    if (srv.store == NULL)
        log_fatal(EX_TEMPFAIL, "cannot open the store: %s", buf_cstr(&err));
    srv.auth = auth_client_new(net_worker_base(w), cfg);
    srv.commit = nntp_commit_new(w, cfg, &err);
    if (srv.commit == NULL)
        log_fatal(EX_TEMPFAIL, "cannot start the article writer: %s", buf_cstr(&err));
    struct net_service_limits limits = {
        .idle_timeout_ms = cfg->nntp_idle_timeout,
        .refuse_line = "400 Too many connections, try again later\r\n",
    };
    net_worker_serve(w, "nntp", NET_TLS_STARTTLS, &nntp_proto, &srv, &limits);
    net_worker_serve(w, "nntps", NET_TLS_IMPLICIT, &nntp_proto, &srv, &limits);
    int rc = net_worker_run(w);
    nntp_commit_free(srv.commit);
    auth_client_free(srv.auth);
    store_close(srv.store);
    net_worker_free(w);
    buf_free(&err);
    return rc;
}

static const char *const nntp_sandbox_data[] = {"store", NULL};

const struct component_def nntp_component = {
    .name = "nntp",
    .exchange_name = "NNTP",
    .kind = COMPONENT_WORKERS,
    .main = nntp_main,
    .job = "public folders as newsgroups; feeds to other news servers",
    .sandbox_data = nntp_sandbox_data, /* the store */
};
