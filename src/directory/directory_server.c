/*
 * directory_server.c - the directory process (component "directory"):
 * answers IPC_DIRECTORY_LOOKUP frames on DATA_DIRECTORY/run/directory.sock
 * with IPC_DIRECTORY_ANSWER (formats in directory_proto.h).
 *
 * The network workers never open the directory database: they ask here, over
 * one connection each, without waiting (directory_client.h). This process
 * holds directory.db (domains, accounts, aliases, quotas, home servers; no
 * password hashes: those are the auth process's), and later the LDAP
 * connection: a slow LDAP server then slows this process's answers, never a
 * worker's event loop. It runs as the wharf user, unconfined by the workers'
 * sandbox, and is not reachable from the network.
 *
 * It must never: answer about password hashes, guess at a malformed frame
 * (the connection is closed and logged), or grow without bound (connections
 * and frame sizes are capped; answers are written as they are made).
 */
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/log.h"
#include "directory/directory.h"
#include "directory/directory_proto.h"
#include "ipc/channel.h"
#include "ipc/component_loop.h"
#include "ipc/frame.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

/* Largest lookup frame: an id, a query and a key. */
#define DIRECTORY_SERVER_MAX_REQUEST (DIRECTORY_PROTO_MAX_KEY + 64)
/* Past this much unsent output, a client's further lookups wait until it reads. */
#define DIRECTORY_SERVER_MAX_OUTPUT (4u << 20)

struct dconn {
    struct dserver *srv;
    struct bufferevent *bev;
    struct dconn *prev, *next;
};

struct dserver {
    const struct wharf_config *cfg;
    struct event_base *base;
    struct directory *dir;
    struct evconnlistener *listener;
    char *sock_path;
    struct dconn *conns;
    size_t n_conns;
    uint64_t answered, tempfails;
    struct component_loop *loop; /* the skeleton: privileges, loop, control, signals */
    bool draining;               /* shut down: answer the workers still connected, then exit */
};

static void dconn_close(struct dconn *c)
{
    struct dserver *srv = c->srv;
    bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    free(c);
    if (srv->draining && srv->n_conns == 0)
        event_base_loopexit(srv->base, NULL);
}

/* Fills a from the directory; a->status TEMPFAIL when it cannot say. */
static void lookup(struct dserver *srv, enum directory_query q, const char *key,
                   struct directory_answer *a)
{
    struct buf err = BUF_INIT;
    if (q == DIRECTORY_Q_RECIPIENT) {
        struct directory_result r = {0};
        if (directory_resolve(srv->dir, key, &r, &err) != 0) {
            log_warning("directory lookup of <%s> failed: %s", key, buf_cstr(&err));
            a->status = DIRECTORY_LOOKUP_TEMPFAIL;
        } else {
            a->kind = r.kind;
            a->loop = r.loop;
            a->n_targets = r.n_targets;
            a->accounts = xcalloc(r.n_targets ? r.n_targets : 1, sizeof(char *));
            a->folders = xcalloc(r.n_targets ? r.n_targets : 1, sizeof(char *));
            for (size_t i = 0; i < r.n_targets; i++) {
                a->accounts[i] = xstrdup(r.targets[i].account);
                a->folders[i] = xstrdup(r.targets[i].folder ? r.targets[i].folder : "");
            }
            a->n_remote = r.n_remote;
            a->remote = xcalloc(r.n_remote ? r.n_remote : 1, sizeof(char *));
            for (size_t i = 0; i < r.n_remote; i++)
                a->remote[i] = xstrdup(r.remote[i]);
        }
        directory_result_free(&r);
    } else {
        struct buf home = BUF_INIT;
        int rc =
            directory_account_info(srv->dir, key, &a->quota_bytes, &a->quota_messages, &home, &err);
        if (rc < 0) {
            log_warning("directory lookup of account <%s> failed: %s", key, buf_cstr(&err));
            a->status = DIRECTORY_LOOKUP_TEMPFAIL;
        } else if (rc == 0) {
            a->kind = DIRECTORY_NO_SUCH_USER;
        } else {
            a->kind = DIRECTORY_LOCAL;
            a->home = buf_steal(&home, NULL);
            a->n_targets = 1;
            a->accounts = xcalloc(1, sizeof(char *));
            a->folders = xcalloc(1, sizeof(char *));
            a->accounts[0] = directory_normalize_address(key, false);
            a->folders[0] = xstrdup("");
        }
        buf_free(&home);
    }
    buf_free(&err);
    if (a->status == DIRECTORY_LOOKUP_TEMPFAIL) {
        directory_answer_free(a);
        a->status = DIRECTORY_LOOKUP_TEMPFAIL;
    }
}

static void dconn_read(struct bufferevent *bev, void *arg);

static void dconn_write(struct bufferevent *bev, void *arg)
{
    /* The output drained below the mark: go on with lookups held back. */
    bufferevent_setcb(bev, dconn_read, NULL, NULL, arg);
    bufferevent_enable(bev, EV_READ);
    dconn_read(bev, arg);
}

static void dconn_event(struct bufferevent *bev, short what, void *arg);

static void dconn_read(struct bufferevent *bev, void *arg)
{
    struct dconn *c = arg;
    struct dserver *srv = c->srv;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) > DIRECTORY_SERVER_MAX_OUTPUT) {
            bufferevent_disable(bev, EV_READ);
            bufferevent_setwatermark(bev, EV_WRITE, DIRECTORY_SERVER_MAX_OUTPUT / 2, 0);
            bufferevent_setcb(bev, dconn_read, dconn_write, dconn_event, c);
            return;
        }
        struct ipc_frame f;
        size_t used;
        enum ipc_parse_result r = ipc_evbuffer_frame(in, DIRECTORY_SERVER_MAX_REQUEST, &f, &used);
        if (r == IPC_PARSE_NEED_MORE)
            return;
        const char *why = NULL;
        uint64_t id = 0;
        enum directory_query q = DIRECTORY_Q_RECIPIENT;
        struct slice key = {0};
        if (r == IPC_PARSE_ERROR)
            why = "oversized frame or non-zero flags";
        else if (f.type != IPC_DIRECTORY_LOOKUP)
            why = "unexpected frame type";
        else
            directory_proto_get_lookup(f.payload, f.len, &id, &q, &key, &why);
        if (why != NULL) {
            log_warning("directory: closing client connection: %s (type %u)", why,
                        r == IPC_PARSE_OK ? f.type : 0);
            dconn_close(c);
            return;
        }
        char *k = slice_strdup(key);
        evbuffer_drain(in, used);
        struct directory_answer a = {0};
        lookup(srv, q, k, &a);
        free(k);
        srv->answered++;
        if (a.status != DIRECTORY_LOOKUP_OK)
            srv->tempfails++;
        struct buf payload = BUF_INIT, frame = BUF_INIT;
        directory_proto_put_answer(&payload, id, &a);
        ipc_frame_encode(&frame, IPC_DIRECTORY_ANSWER, payload.data, payload.len);
        bufferevent_write(bev, frame.data, frame.len);
        buf_free(&payload);
        buf_free(&frame);
        directory_answer_free(&a);
    }
}

static void dconn_event(struct bufferevent *bev, short what, void *arg)
{
    struct dconn *c = arg;
    if (what & BEV_EVENT_EOF) {
        if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
            log_warning("directory: client closed the connection inside a frame (short frame)");
        dconn_close(c);
    } else if (what & BEV_EVENT_ERROR) {
        dconn_close(c);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct dserver *srv = arg;
    if (srv->n_conns >= (size_t)srv->cfg->directory_max_clients) {
        log_warning("directory: %zu connections (directory_max_clients); refusing one",
                    srv->n_conns);
        close(fd);
        return;
    }
    struct dconn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, dconn_read, NULL, dconn_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, DIRECTORY_SERVER_MAX_REQUEST + IPC_HEADER_SIZE);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    srv->n_conns++;
}

static int listen_socket(struct dserver *srv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(srv->sock_path) >= sizeof(sun.sun_path))
        log_fatal(EX_CONFIG, "directory socket path too long: %s", srv->sock_path);
    memcpy(sun.sun_path, srv->sock_path, strlen(srv->sock_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        log_fatal(EX_OSERR, "socket: %s", strerror(errno));
    unlink(srv->sock_path);
    /* 0600: only the wharf user's processes (the workers) may connect. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r != 0 || listen(fd, 128) != 0)
        log_fatal(EX_CANTCREAT, "cannot listen on %s: %s", srv->sock_path, strerror(errno));
    return fd;
}

static void status_cb(void *arg, json_t *obj)
{
    struct dserver *srv = arg;
    json_object_set_new(obj, "connections", json_integer((json_int_t)srv->n_conns));
    json_object_set_new(obj, "lookups", json_integer((json_int_t)srv->answered));
    json_object_set_new(obj, "tempfails", json_integer((json_int_t)srv->tempfails));
}

static void stop(struct dserver *srv)
{
    if (srv->listener) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
        unlink(srv->sock_path);
    }
    event_base_loopexit(srv->base, NULL);
}

static void shutdown_cb(void *arg, int64_t deadline_ms)
{
    /* Workers finishing their sessions still need answers (a RCPT during the
     * drain): every worker keeps a connection open while it lives, so serve
     * until they are all gone or the deadline passes. The socket's name is
     * left alone: a new generation may have bound it already. */
    struct dserver *srv = arg;
    if (srv->listener) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
    }
    srv->draining = true;
    int64_t left = deadline_ms - monotonic_ms();
    struct timeval tv = {left > 0 ? (time_t)(left / 1000) : 0,
                         left > 0 ? (suseconds_t)(left % 1000) * 1000 : 0};
    event_base_loopexit(srv->base, srv->n_conns ? &tv : NULL);
}

int directory_main(struct component_ctx *ctx)
{
    struct dserver srv_s = {.cfg = ctx->cfg}, *srv = &srv_s;
    const struct wharf_config *cfg = ctx->cfg;
    const struct component_hooks hooks = {.status = status_cb, .shutdown = shutdown_cb, .arg = srv};
    srv->loop = component_loop_start(ctx, &hooks);
    srv->base = srv->loop->base;
    struct buf err = BUF_INIT;
    srv->dir = directory_open(cfg, &err);
    if (srv->dir == NULL)
        log_fatal(EX_UNAVAILABLE, "%s", buf_cstr(&err));
    srv->sock_path = config_data_path(cfg, "run/directory.sock");
    int fd = listen_socket(srv);
    srv->listener = evconnlistener_new(srv->base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    log_info("directory: listening on %s", srv->sock_path);

    component_loop_run(srv->loop);

    log_info("directory: stopping");
    stop(srv);
    while (srv->conns)
        dconn_close(srv->conns);
    directory_close(srv->dir);
    free(srv->sock_path);
    component_loop_free(srv->loop);
    buf_free(&err);
    return EX_OK;
}
