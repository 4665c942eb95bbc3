/*
 * client.c - a process's side of a unix-socket frame service (client.h):
 * the connection (an ipc_channel), the requests in flight and their timers.
 *
 * Must never call a done callback from inside the call that started the
 * request, nor twice for one request.
 */
#include "ipc/client.h"
#include "base/clock.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct ipc_request {
    struct ipc_request *prev, *next;
    struct ipc_client *c;
    uint64_t id;
    ipc_client_done_fn done;
    void *arg;
    struct event *timer; /* the timeout, or "now" for an early end */
    bool early;          /* ends when the timer fires, with early_status */
    enum ipc_client_status early_status;
};

struct ipc_client {
    struct event_base *base;
    struct ipc_client_params p;
    char *name, *peer, *path;
    struct ipc_channel *ch; /* NULL while not connected */
    struct event *retry;    /* keep_connected: reconnects while not connected */
    uint64_t next_id;
    struct ipc_request *head;
    size_t n_outstanding;
};

static void request_link(struct ipc_client *c, struct ipc_request *r)
{
    r->prev = NULL;
    r->next = c->head;
    if (r->next)
        r->next->prev = r;
    c->head = r;
    c->n_outstanding++;
}

static void request_unlink(struct ipc_client *c, struct ipc_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    c->n_outstanding--;
}

static void request_free(struct ipc_request *r)
{
    event_free(r->timer);
    free(r);
}

static void end_soon(struct ipc_request *r, enum ipc_client_status st)
{
    r->early = true;
    r->early_status = st;
    struct timeval now = {0, 0};
    evtimer_add(r->timer, &now);
}

static void retry_soon(struct ipc_client *c)
{
    struct timeval tv = {1, 0};
    if (c->p.keep_connected)
        evtimer_add(c->retry, &tv);
}

static void disconnect(struct ipc_client *c, const char *why)
{
    if (c->ch == NULL)
        return;
    if (c->head)
        log_warning("%s: %s; requests in flight answered tempfail", c->name, why);
    else
        log_debug("%s: %s", c->name, why);
    ipc_channel_free(c->ch); /* deferred when inside one of its callbacks */
    c->ch = NULL;
    retry_soon(c);
    for (struct ipc_request *r = c->head; r; r = r->next) {
        if (!r->early)
            end_soon(r, IPC_CLIENT_FAILED);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ipc_request *r = arg;
    struct ipc_client *c = r->c;
    enum ipc_client_status st = r->early ? r->early_status : IPC_CLIENT_FAILED;
    if (!r->early)
        log_warning("%s: no answer from %s within %lldms", c->name, c->peer,
                    (long long)c->p.timeout_ms);
    request_unlink(c, r);
    ipc_client_done_fn done = r->done;
    void *done_arg = r->arg;
    request_free(r);
    done(done_arg, st, NULL);
}

static void on_frame(void *arg, const struct ipc_frame *f)
{
    struct ipc_client *c = arg;
    struct ipc_reader rd;
    ipc_reader_init(&rd, f->payload, f->len);
    uint64_t id = ipc_get_u64(&rd);
    if (f->type != c->p.reply_type || rd.failed) {
        disconnect(c, "malformed reply");
        return;
    }
    struct ipc_request *r = c->head;
    while (r && (r->id != id || r->early))
        r = r->next;
    if (r == NULL)
        return; /* cancelled meanwhile */
    request_unlink(c, r);
    if (r->done(r->arg, IPC_CLIENT_REPLY, f) != 0) {
        request_link(c, r); /* it ends again, as failed */
        struct buf why = BUF_INIT;
        buf_printf(&why, "malformed reply from %s", c->peer);
        disconnect(c, buf_cstr(&why));
        buf_free(&why);
        return;
    }
    request_free(r);
}

static void on_close(void *arg)
{
    struct ipc_client *c = arg;
    struct buf why = BUF_INIT;
    buf_printf(&why, "%s closed the connection", c->peer);
    disconnect(c, buf_cstr(&why));
    buf_free(&why);
}

static int connect_now(struct ipc_client *c, bool quiet)
{
    if (c->ch)
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
        if (!quiet)
            log_warning("%s: cannot connect to %s: %s", c->name, c->path, strerror(errno));
        close(fd);
        return -1;
    }
    c->ch = ipc_channel_new(c->base, fd, c->p.max_reply, on_frame, on_close, c);
    return 0;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct ipc_client *c = arg;
    if (connect_now(c, true) != 0)
        retry_soon(c);
}

struct ipc_client *ipc_client_new(struct event_base *base, const char *path,
                                  const struct ipc_client_params *p)
{
    struct ipc_client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->p = *p;
    c->name = xstrdup(p->name);
    c->peer = xstrdup(p->peer);
    c->path = xstrdup(path);
    c->retry = evtimer_new(base, on_retry, c);
    if (p->keep_connected && connect_now(c, true) != 0)
        retry_soon(c);
    return c;
}

void ipc_client_free(struct ipc_client *c)
{
    if (c == NULL)
        return;
    ipc_channel_free(c->ch);
    event_free(c->retry);
    while (c->head) {
        struct ipc_request *r = c->head;
        request_unlink(c, r);
        request_free(r);
    }
    free(c->name);
    free(c->peer);
    free(c->path);
    free(c);
}

struct ipc_request *ipc_client_start(struct ipc_client *c, ipc_client_done_fn done, void *arg,
                                     uint64_t *id_r)
{
    struct ipc_request *r = xcalloc(1, sizeof(*r));
    r->c = c;
    r->id = ++c->next_id;
    r->done = done;
    r->arg = arg;
    r->timer = evtimer_new(c->base, on_timer, r);
    request_link(c, r);
    *id_r = r->id;
    return r;
}

void ipc_client_send(struct ipc_client *c, struct ipc_request *r, uint16_t type,
                     const void *payload, size_t len)
{
    if (c->p.max_outstanding > 0 && c->n_outstanding > c->p.max_outstanding) {
        log_warning("%s: %zu requests outstanding (%s); answering tempfail", c->name,
                    c->n_outstanding - 1,
                    c->p.max_outstanding_option ? c->p.max_outstanding_option : "max");
        end_soon(r, IPC_CLIENT_FAILED);
        return;
    }
    if (connect_now(c, false) != 0) {
        end_soon(r, IPC_CLIENT_FAILED);
        return;
    }
    ipc_channel_send(c->ch, type, payload, len);
    struct timeval tv = clock_timeval_ms(c->p.timeout_ms);
    evtimer_add(r->timer, &tv);
}

void ipc_client_later(struct ipc_client *c, struct ipc_request *r)
{
    end_soon(r, IPC_CLIENT_LOCAL);
}

void ipc_client_cancel(struct ipc_client *c, struct ipc_request *r)
{
    request_unlink(c, r);
    request_free(r);
}

size_t ipc_client_outstanding(const struct ipc_client *c)
{
    return c->n_outstanding;
}

bool ipc_client_any(const struct ipc_client *c, bool (*match)(void *arg, void *ctx), void *ctx)
{
    for (const struct ipc_request *r = c->head; r; r = r->next) {
        if (match(r->arg, ctx))
            return true;
    }
    return false;
}
