/*
 * imap_component.c - the imap component: how wharfd knows it, and its worker
 * process, which serves 143 (STARTTLS) and 993 (implicit TLS) on the network
 * worker skeleton (net_worker_new, ipc/component_loop.h).
 * Must never: bind a socket, or run as root past net_worker_new.
 */
#include "base/log.h"
#include "net/net_proxy.h"
#include "directory/directory_client.h"
#include "imap/imap.h"
#include "imap/imap_int.h"
#include "imap/imap_session.h"

#include <jansson.h>
#include <sysexits.h>

/* `wharf status`: how many sessions the mailbox-changed events looked at. */
static void imap_status(void *arg, json_t *obj)
{
    const struct imap_server *srv = arg;
    json_object_set_new(obj, "mailbox_events", json_integer((json_int_t)srv->changed_events));
    json_object_set_new(obj, "mailbox_event_visits", json_integer((json_int_t)srv->changed_visits));
}

static int imap_main(struct component_ctx *ctx)
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
    net_worker_set_status(w, imap_status, &srv);
    net_worker_subscribe(w, IPC_EVENT_MAILBOX_CHANGED, IPC_SUBSCRIBE_ALL, NULL);
    net_worker_subscribe(w, IPC_EVENT_MAILBOX_LIST, IPC_SUBSCRIBE_ALL, NULL);
    struct net_service_limits limits = {
        .idle_timeout_ms = cfg->imap_idle_timeout,
        .login_timeout_ms = cfg->imap_login_timeout,
        .refuse_line = "* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
    };
    net_worker_serve(w, "imap", NET_TLS_STARTTLS, &imap_proto, &srv, &limits);
    net_worker_serve(w, "imaps", NET_TLS_IMPLICIT, &imap_proto, &srv, &limits);
    int rc = net_worker_run(w);
    auth_client_free(srv.auth);
    directory_client_free(srv.dir);
    store_close(srv.store);
    net_worker_free(w);
    buf_free(&err);
    return rc;
}

static const char *const imap_sandbox_data[] = {"store", NULL};

const struct component_def imap_component = {
    .name = "imap",
    .exchange_name = "IMAP4",
    .kind = COMPONENT_WORKERS,
    .main = imap_main,
    .job = "mailbox access over IMAP4rev2/rev1",
    .check_config = net_proxy_check_config, /* the front-end's options */
    .sandbox_data = imap_sandbox_data,      /* the store: metadata and blobs */
};
