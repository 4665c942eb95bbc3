/*
 * auth_client.c - the workers' side of auth.sock (auth_client.h): one
 * connection per worker process, many checks in flight on it, matched to
 * their replies by id.
 *
 * Every check ends in exactly one callback: the reply, or AUTH_TEMPFAIL when
 * the auth process cannot be reached, goes away, or does not answer within
 * auth_client_timeout. Failures found before anything is sent are reported
 * from the event loop too, never from inside auth_client_check. A request
 * the auth process would refuse as malformed (a field over the limits) is
 * never sent: it would cost the whole connection, and every other session's
 * check on it. Never logs a password.
 */
#include "auth/auth_client.h"
#include "auth/auth_proto.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/channel.h"
#include "ipc/frame.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Largest reply accepted: an id, a result and an account name. */
#define AUTH_CLIENT_MAX_REPLY 4096

struct pending {
    struct pending *prev, *next;
    struct auth_client *c;
    uint64_t id;
    auth_client_cb cb;
    void *arg;
    struct event *timer;    /* the timeout, or "now" for an early answer */
    enum auth_result early; /* the answer when the timer fires early */
    bool answered_early;
};

struct auth_client {
    struct event_base *base;
    const struct wharf_config *cfg;
    char *path;
    struct bufferevent *bev; /* NULL while not connected */
    uint64_t next_id;
    struct pending *head;
};

static void pending_unlink(struct auth_client *c, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        c->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void pending_free(struct pending *p)
{
    event_free(p->timer);
    free(p);
}

/* Answers p from the loop soon (used for errors found outside a reply). */
static void pending_answer_soon(struct pending *p, enum auth_result r)
{
    p->answered_early = true;
    p->early = r;
    struct timeval now = {0, 0};
    evtimer_add(p->timer, &now);
}

static void disconnect(struct auth_client *c, const char *why)
{
    if (c->bev == NULL)
        return;
    if (why && c->head)
        log_warning("auth client: %s; checks in flight answered tempfail", why);
    else if (why)
        log_debug("auth client: %s", why);
    bufferevent_free(c->bev);
    c->bev = NULL;
    for (struct pending *p = c->head; p; p = p->next)
        pending_answer_soon(p, AUTH_TEMPFAIL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct auth_client *c = p->c;
    enum auth_result r = p->answered_early ? p->early : AUTH_TEMPFAIL;
    if (!p->answered_early)
        log_warning("auth client: no answer from the auth process within %lldms",
                    (long long)c->cfg->auth_client_timeout);
    pending_unlink(c, p);
    auth_client_cb cb = p->cb;
    void *cb_arg = p->arg;
    pending_free(p);
    cb(cb_arg, r, NULL);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct auth_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct ipc_frame f;
        size_t used;
        enum ipc_parse_result r = ipc_evbuffer_frame(in, AUTH_CLIENT_MAX_REPLY, &f, &used);
        if (r == IPC_PARSE_NEED_MORE)
            return;
        uint64_t id;
        enum auth_result res;
        struct slice account;
        if (r == IPC_PARSE_ERROR || f.type != IPC_AUTH_REPLY ||
            auth_proto_get_reply(f.payload, f.len, &id, &res, &account) != 0) {
            disconnect(c, "malformed reply from the auth process");
            return;
        }
        struct pending *p = c->head;
        while (p && (p->id != id || p->answered_early))
            p = p->next;
        char *acct = res == AUTH_OK ? slice_strdup(account) : NULL;
        evbuffer_drain(in, used);
        if (p != NULL) { /* else: cancelled meanwhile */
            pending_unlink(c, p);
            auth_client_cb cb = p->cb;
            void *cb_arg = p->arg;
            pending_free(p);
            cb(cb_arg, res, acct);
        }
        free(acct);
        if (c->bev != bev) /* a callback's new check reconnected after an error */
            return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct auth_client *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        disconnect(c, "the auth process closed the connection");
}

static int connect_now(struct auth_client *c)
{
    if (c->bev)
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t n = strlen(c->path);
    if (n >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, c->path, n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        log_warning("auth client: cannot connect to %s: %s", c->path, strerror(errno));
        close(fd);
        return -1;
    }
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, AUTH_CLIENT_MAX_REPLY + IPC_HEADER_SIZE);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return 0;
}

struct auth_client *auth_client_new(struct event_base *base, const struct wharf_config *cfg)
{
    struct auth_client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->cfg = cfg;
    c->path = config_data_path(cfg, "run/auth.sock");
    return c;
}

void auth_client_free(struct auth_client *c)
{
    if (c == NULL)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    while (c->head) {
        struct pending *p = c->head;
        pending_unlink(c, p);
        pending_free(p);
    }
    free(c->path);
    free(c);
}

static bool field_ok(const char *s, size_t max)
{
    return s == NULL || strlen(s) <= max;
}

void *auth_client_check(struct auth_client *c, const struct auth_request *req, auth_client_cb cb,
                        void *arg)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    p->c = c;
    p->id = ++c->next_id;
    p->cb = cb;
    p->arg = arg;
    p->timer = evtimer_new(c->base, on_timer, p);
    p->next = c->head;
    if (p->next)
        p->next->prev = p;
    c->head = p;

    size_t max = (size_t)c->cfg->auth_max_credential_length;
    if (!field_ok(req->username, max) || !field_ok(req->password, max) ||
        !field_ok(req->authzid, max) || !field_ok(req->service, AUTH_PROTO_MAX_SERVICE) ||
        !field_ok(req->mechanism, AUTH_PROTO_MAX_SERVICE) ||
        !field_ok(req->client_addr, AUTH_PROTO_MAX_ADDR)) {
        pending_answer_soon(p, AUTH_FAILED);
        return p;
    }
    if (connect_now(c) != 0) {
        pending_answer_soon(p, AUTH_TEMPFAIL);
        return p;
    }
    struct buf payload = BUF_INIT, frame = BUF_INIT;
    auth_proto_put_request(&payload, p->id, req);
    ipc_frame_encode(&frame, IPC_AUTH_REQUEST, payload.data, payload.len);
    bufferevent_write(c->bev, frame.data, frame.len);
    explicit_bzero(payload.data, payload.len);
    explicit_bzero(frame.data, frame.len);
    buf_free(&payload);
    buf_free(&frame);
    int64_t ms = c->cfg->auth_client_timeout;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
    return p;
}

void auth_client_cancel(struct auth_client *c, void *handle)
{
    struct pending *p = handle;
    pending_unlink(c, p);
    pending_free(p);
}
