/*
 * mta_server.c - the deliver.sock service (see mta_server.h), on the IPC
 * service kit (ipc/service.h). A request's memory is released only when the
 * batch no longer refers to it, even when its connection went away first.
 */
#include "mta/mta_server.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/frame.h"
#include "ipc/service.h"
#include "mta/lda.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A client that stops sending in the middle of a frame gives its slot back after this. */
#define MTA_DELIVER_IDLE_TIMEOUT_S 60

/* One connection's request: at most one in the batch at a time. */
struct req {
    struct ipc_conn *conn; /* NULL once the connection is closed */
    bool busy;             /* the job is in the batch */
    struct mta_job job;
    struct local_rcpt rcpt;
    char *user, *folder;
    struct buf msg;
};

struct mta_server {
    struct ipc_service *service;
    char *path;
    struct mta_batch *batch;
    bool freeing;
};

static void req_free(struct req *q)
{
    free(q->user);
    free(q->folder);
    buf_free(&q->msg);
    local_rcpt_free(&q->rcpt);
    free(q);
}

static void job_done(struct mta_job *job)
{
    struct req *q = job->arg;
    q->busy = false;
    if (q->conn == NULL) {
        req_free(q);
        return;
    }
    int code = lda_status_code(q->rcpt.status);
    struct buf payload = BUF_INIT;
    lda_encode_reply(&payload, code, q->rcpt.detail.data);
    ipc_conn_send(q->conn, IPC_DELIVER_REPLY, payload.data, payload.len);
    buf_free(&payload);
    buf_reset(&q->msg);
    ipc_conn_set_reading(q->conn, true); /* a request that came in while we were busy */
}

static const char *on_request(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    struct mta_server *srv = arg;
    struct req *q = ipc_conn_data(c);
    struct slice user, folder, msg;
    if (lda_decode_request(f->payload, f->len, &user, &folder, &msg) != 0 ||
        memchr(user.ptr, '\0', user.len) || memchr(folder.ptr, '\0', folder.len))
        return "malformed request";
    free(q->user);
    free(q->folder);
    q->user = slice_strdup(user);
    q->folder = folder.len ? slice_strdup(folder) : NULL;
    buf_reset(&q->msg);
    buf_append_slice(&q->msg, msg);
    local_rcpt_free(&q->rcpt);
    local_rcpt_init(&q->rcpt, q->user);
    q->job = (struct mta_job){
        .msg = {.data = buf_slice(&q->msg), .folder = q->folder, .rcpts = &q->rcpt, .n_rcpts = 1},
        .done = job_done,
        .arg = q,
    };
    q->busy = true;
    ipc_conn_set_reading(c, false);
    mta_batch_add(srv->batch, &q->job);
    return NULL;
}

static void on_open(void *arg, struct ipc_conn *c)
{
    struct req *q = xcalloc(1, sizeof(*q));
    q->conn = c;
    buf_init(&q->msg);
    local_rcpt_init(&q->rcpt, "");
    ipc_conn_set_data(c, q);
}

static void on_close(void *arg, struct ipc_conn *c)
{
    struct mta_server *srv = arg;
    struct req *q = ipc_conn_data(c);
    q->conn = NULL;
    /* The batch still refers to a busy request, unless it was flushed before us. */
    if (!q->busy || srv->freeing)
        req_free(q);
}

static const struct ipc_route mta_routes[] = {
    {IPC_DELIVER_REQUEST, on_request},
    {0, NULL},
};

struct mta_server *mta_server_start(struct event_base *base, const struct wharf_config *cfg,
                                    struct mta_batch *batch, struct buf *err)
{
    char *path = config_data_path(cfg, "run/deliver.sock");
    /* 0660 in DATA/run: root and the wharf group may hand mail in; we are the only mta. */
    int fd = ipc_service_listen(path, 0660, NULL, err);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    struct mta_server *srv = xcalloc(1, sizeof(*srv));
    srv->path = path;
    srv->batch = batch;
    struct ipc_service_params sp = {
        .name = "deliver.sock",
        .path = path,
        .routes = mta_routes,
        .max_frame = (size_t)cfg->mta_deliver_message_max + 4096,
        .max_conns = (size_t)cfg->mta_deliver_clients_max,
        .max_conns_option = NULL, /* more clients wait in the backlog */
        .idle_timeout_s = MTA_DELIVER_IDLE_TIMEOUT_S,
        .on_open = on_open,
        .on_close = on_close,
        .arg = srv,
    };
    srv->service = ipc_service_new(base, fd, &sp);
    return srv;
}

void mta_server_stop_accepting(struct mta_server *srv)
{
    ipc_service_pause(srv->service);
}

size_t mta_server_connections(const struct mta_server *srv)
{
    return ipc_service_connections(srv->service);
}

void mta_server_free(struct mta_server *srv)
{
    if (srv == NULL)
        return;
    srv->freeing = true;
    ipc_service_free(srv->service);
    unlink(srv->path);
    free(srv->path);
    free(srv);
}
