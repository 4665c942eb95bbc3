/*
 * mta_server.c - the deliver.sock listener and its connections (see
 * mta_server.h). A connection's memory is released only when no batch job
 * refers to it any more.
 */
#include "mta/mta_server.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/channel.h"
#include "ipc/frame.h"
#include "mta/lda.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A client that stops sending in the middle of a frame gives its slot back after this. */
#define MTA_DELIVER_IDLE_TIMEOUT_S 60

struct conn {
    struct mta_server *srv;
    struct bufferevent *bev;
    struct conn *prev, *next;
    bool busy;   /* a job of this connection is in the batch */
    bool closed; /* the peer went away while busy: free after the job */
    struct mta_job job;
    struct local_rcpt rcpt;
    char *user, *folder;
    struct buf msg;
};

struct mta_server {
    struct evconnlistener *lis;
    char *path;
    struct mta_batch *batch;
    size_t max_conns, n_conns;
    size_t max_frame;
    bool accepting;
    struct conn *conns;
};

static void conn_free(struct conn *c)
{
    struct mta_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->bev)
        bufferevent_free(c->bev);
    free(c->user);
    free(c->folder);
    buf_free(&c->msg);
    local_rcpt_free(&c->rcpt);
    free(c);
    if (srv->n_conns-- == srv->max_conns && srv->accepting && srv->lis)
        evconnlistener_enable(srv->lis);
}

static void conn_close(struct conn *c)
{
    if (c->busy) {
        c->closed = true; /* the batch still refers to c->job */
        if (c->bev) {
            bufferevent_free(c->bev);
            c->bev = NULL;
        }
        return;
    }
    conn_free(c);
}

static void on_read(struct bufferevent *bev, void *arg);

static void job_done(struct mta_job *job)
{
    struct conn *c = job->arg;
    c->busy = false;
    if (c->closed) {
        conn_free(c);
        return;
    }
    int code = lda_status_code(c->rcpt.status);
    struct buf payload = BUF_INIT, frame = BUF_INIT;
    lda_encode_reply(&payload, code, c->rcpt.detail.data);
    ipc_frame_encode(&frame, IPC_DELIVER_REPLY, payload.data, payload.len);
    bufferevent_write(c->bev, frame.data, frame.len);
    buf_free(&payload);
    buf_free(&frame);
    buf_reset(&c->msg);
    bufferevent_enable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        on_read(c->bev, c); /* a request that came in while we were busy */
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->busy)
        return;
    struct ipc_frame f;
    size_t used;
    struct slice user, folder, msg;
    enum ipc_parse_result r = ipc_evbuffer_frame(in, c->srv->max_frame, &f, &used);
    if (r == IPC_PARSE_NEED_MORE)
        return;
    if (r != IPC_PARSE_OK || f.type != IPC_DELIVER_REQUEST ||
        lda_decode_request(f.payload, f.len, &user, &folder, &msg) != 0 ||
        memchr(user.ptr, '\0', user.len) || memchr(folder.ptr, '\0', folder.len)) {
        log_warning("deliver.sock: %s request",
                    r == IPC_PARSE_OK ? "malformed" : "oversized or malformed");
        conn_close(c);
        return;
    }
    free(c->user);
    free(c->folder);
    c->user = slice_strdup(user);
    c->folder = folder.len ? slice_strdup(folder) : NULL;
    buf_reset(&c->msg);
    buf_append_slice(&c->msg, msg);
    evbuffer_drain(in, used);
    local_rcpt_free(&c->rcpt);
    local_rcpt_init(&c->rcpt, c->user);
    c->job = (struct mta_job){
        .msg = {.data = buf_slice(&c->msg), .folder = c->folder, .rcpts = &c->rcpt, .n_rcpts = 1},
        .done = job_done,
        .arg = c,
    };
    c->busy = true;
    bufferevent_disable(bev, EV_READ);
    mta_batch_add(c->srv->batch, &c->job);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        conn_close(arg);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct mta_server *srv = arg;
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    buf_init(&c->msg);
    local_rcpt_init(&c->rcpt, "");
    c->bev = bufferevent_socket_new(evconnlistener_get_base(lis), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    struct timeval idle = {MTA_DELIVER_IDLE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    if (++srv->n_conns >= srv->max_conns)
        evconnlistener_disable(lis);
}

struct mta_server *mta_server_start(struct event_base *base, const struct wharf_config *cfg,
                                    struct mta_batch *batch, struct buf *err)
{
    char *path = config_data_path(cfg, "run/deliver.sock");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        buf_printf(err, "%s: path too long for a unix socket", path);
        free(path);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path); /* a stale socket of a previous mta; we are the only mta (singleton) */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0660) != 0) {
        buf_printf(err, "cannot bind %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        return NULL;
    }
    struct mta_server *srv = xcalloc(1, sizeof(*srv));
    srv->path = path;
    srv->batch = batch;
    srv->max_conns = (size_t)cfg->mta_deliver_clients_max;
    srv->max_frame = (size_t)cfg->mta_deliver_message_max + 4096;
    srv->accepting = true;
    srv->lis = evconnlistener_new(base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE, 128, fd);
    if (srv->lis == NULL) {
        buf_printf(err, "cannot listen on %s", path);
        close(fd);
        mta_server_free(srv);
        return NULL;
    }
    return srv;
}

void mta_server_stop_accepting(struct mta_server *srv)
{
    srv->accepting = false;
    if (srv->lis)
        evconnlistener_disable(srv->lis);
}

size_t mta_server_connections(const struct mta_server *srv)
{
    return srv->n_conns;
}

void mta_server_free(struct mta_server *srv)
{
    if (srv == NULL)
        return;
    srv->accepting = false;
    if (srv->lis)
        evconnlistener_free(srv->lis);
    srv->lis = NULL;
    while (srv->conns) {
        srv->conns->busy = false; /* the batch was flushed before us */
        conn_free(srv->conns);
    }
    unlink(srv->path);
    free(srv->path);
    free(srv);
}
