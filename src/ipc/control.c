/*
 * control.c - the component side of the supervisor protocol (control.h).
 *
 * Answers status requests, turns IPC_SHUTDOWN into the component's drain
 * callback, delivers bus events, and makes sure a component never outlives
 * wharfd. Must never block the component's event loop.
 */
#include "ipc/control.h"
#include "base/clock.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* After wharfd went away, how long a component may take to wind down before it leaves. */
#define CONTROL_ORPHAN_GRACE_MS 2000

struct control {
    struct event_base *base;
    struct ipc_channel *ch;
    struct control_callbacks cb;
    char *name;
    unsigned worker, n_workers;
    struct event *orphan_timer;
    uint64_t events_received, events_published;
    struct status_wait *waits; /* control_status_all requests */
    uint64_t next_wait;
};

struct status_wait {
    struct status_wait *next;
    uint64_t id;
    control_status_all_fn fn;
    void *arg;
};

/* Takes the wait with id out of the list (NULL when it is not there). */
static struct status_wait *wait_take(struct control *c, uint64_t id)
{
    for (struct status_wait **pp = &c->waits; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct status_wait *w = *pp;
            *pp = w->next;
            return w;
        }
    }
    return NULL;
}

static void status_all_reply(struct control *c, struct ipc_reader *r)
{
    uint64_t id = ipc_get_u64(r);
    struct slice text = ipc_get_bytes(r);
    if (!ipc_reader_done(r)) {
        log_error("malformed status frame from wharfd");
        return;
    }
    struct status_wait *w = wait_take(c, id);
    if (w == NULL)
        return; /* cancelled meanwhile */
    json_error_t jerr;
    json_t *j = json_loadb(text.ptr, text.len, 0, &jerr);
    w->fn(w->arg, json_is_object(j) ? j : NULL);
    json_decref(j);
    free(w);
}

/* wharfd is gone: every wait hears NULL. */
static void status_all_fail(struct control *c)
{
    while (c->waits) {
        struct status_wait *w = c->waits;
        c->waits = w->next;
        w->fn(w->arg, NULL);
        free(w);
    }
}

/* Queues a wait for a reply of wharfd and sends the request (u64 id, then text if any). */
static uint64_t wait_send(struct control *c, uint16_t type, const char *text,
                          control_status_all_fn fn, void *arg)
{
    struct status_wait *w = xcalloc(1, sizeof(*w));
    w->id = ++c->next_wait;
    w->fn = fn;
    w->arg = arg;
    w->next = c->waits;
    c->waits = w;
    if (c->ch != NULL) {
        struct buf b = BUF_INIT;
        ipc_put_u64(&b, w->id);
        if (text != NULL)
            ipc_put_str(&b, text);
        ipc_channel_send(c->ch, type, b.data, b.len);
        buf_free(&b);
    }
    return w->id;
}

uint64_t control_status_all(struct control *c, control_status_all_fn fn, void *arg)
{
    return wait_send(c, IPC_STATUS_ALL_REQUEST, NULL, fn, arg);
}

uint64_t control_admin(struct control *c, const char *request, control_status_all_fn fn, void *arg)
{
    return wait_send(c, IPC_ADMIN_REQUEST, request, fn, arg);
}

void control_status_all_cancel(struct control *c, uint64_t handle)
{
    free(wait_take(c, handle));
}

static void control_begin_shutdown(struct control *c, int64_t deadline_ms)
{
    if (c->cb.shutdown)
        c->cb.shutdown(c->cb.arg, deadline_ms);
    else
        event_base_loopexit(c->base, NULL);
}

static void control_reply_status(struct control *c)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "component", json_string(c->name));
    json_object_set_new(obj, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(obj, "worker", json_integer(c->worker));
    json_object_set_new(obj, "connections", json_integer(0));
    json_object_set_new(obj, "events_received", json_integer((json_int_t)c->events_received));
    json_object_set_new(obj, "events_published", json_integer((json_int_t)c->events_published));
    if (c->cb.status)
        c->cb.status(c->cb.arg, obj);
    char *text = json_dumps(obj, JSON_COMPACT);
    ipc_channel_send(c->ch, IPC_STATUS, text, strlen(text));
    free(text);
    json_decref(obj);
}

static void control_on_frame(void *arg, const struct ipc_frame *f)
{
    struct control *c = arg;
    struct ipc_reader r;
    ipc_reader_init(&r, f->payload, f->len);
    switch (f->type) {
    case IPC_STATUS_REQUEST:
        control_reply_status(c);
        break;
    case IPC_SHUTDOWN: {
        uint64_t deadline = ipc_get_u64(&r);
        if (!ipc_reader_done(&r)) {
            log_error("malformed shutdown frame from wharfd");
            deadline = (uint64_t)monotonic_ms();
        }
        control_begin_shutdown(c, (int64_t)deadline);
        break;
    }
    case IPC_EVENT: {
        struct ipc_event ev;
        const char *why;
        if (ipc_event_decode(f->payload, f->len, &ev, &why) != 0) {
            log_error("malformed event frame from wharfd: %s", why);
            break;
        }
        c->events_received++;
        if (c->cb.event)
            c->cb.event(c->cb.arg, &ev);
        ipc_event_clear(&ev);
        break;
    }
    case IPC_STATUS_ALL:
    case IPC_ADMIN_REPLY: /* the same shape: u64 id, a JSON object */
        status_all_reply(c, &r);
        break;
    default:
        log_warning("unexpected frame type %u from wharfd", f->type);
        break;
    }
}

static void control_orphan_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    log_warning("still running %dms after wharfd went away; leaving the event loop",
                CONTROL_ORPHAN_GRACE_MS);
    event_base_loopbreak(c->base);
}

static void control_on_close(void *arg)
{
    struct control *c = arg;
    ipc_channel_free(c->ch);
    c->ch = NULL;
    log_warning("wharfd went away; shutting down");
    status_all_fail(c);
    /* Never outlive the supervisor: cut sessions now, and leave the loop regardless soon. */
    struct timeval tv = clock_timeval_ms(CONTROL_ORPHAN_GRACE_MS);
    c->orphan_timer = evtimer_new(c->base, control_orphan_timeout, c);
    evtimer_add(c->orphan_timer, &tv);
    control_begin_shutdown(c, monotonic_ms());
}

struct control *control_open(struct event_base *base, const struct component_ctx *ctx,
                             const struct control_callbacks *cb)
{
    struct control *c = xcalloc(1, sizeof(*c));
    c->base = base;
    if (cb)
        c->cb = *cb;
    c->name = xstrdup(ctx->name);
    c->worker = ctx->worker_index;
    c->n_workers = ctx->n_workers;
    size_t max = ctx->cfg ? (size_t)ctx->cfg->ipc_max_frame : 64 * 1024 * 1024;
    c->ch = ipc_channel_new(base, ctx->control_fd, max, control_on_frame, control_on_close, c);
    struct buf b = BUF_INIT;
    ipc_put_str(&b, ctx->name);
    ipc_put_u64(&b, (uint64_t)getpid());
    ipc_channel_send(c->ch, IPC_HELLO, b.data, b.len);
    buf_free(&b);
    return c;
}

void control_subscribe(struct control *c, enum ipc_event_type type, enum ipc_subscribe_op op,
                       const char *owner)
{
    if (c->ch == NULL)
        return;
    struct buf b = BUF_INIT;
    ipc_subscribe_encode(&b, type, op, owner);
    ipc_channel_send(c->ch, IPC_SUBSCRIBE, b.data, b.len);
    buf_free(&b);
}

void control_publish(struct control *c, const struct ipc_event *ev)
{
    if (c->ch == NULL)
        return;
    struct buf b = BUF_INIT;
    ipc_event_encode(&b, ev);
    /* At once: a lone NNTP POST's group event cost an epoll_ctl pair and a
     * loop turn. Behind the hello while that still waits for the loop. */
    ipc_channel_send_now(c->ch, IPC_EVENT, b.data, b.len);
    buf_free(&b);
    c->events_published++;
}

void control_close(struct control *c)
{
    if (c == NULL)
        return;
    ipc_channel_free(c->ch);
    if (c->orphan_timer)
        event_free(c->orphan_timer);
    while (c->waits) {
        struct status_wait *w = c->waits;
        c->waits = w->next;
        free(w);
    }
    free(c->name);
    free(c);
}

int control_connect(const struct wharf_config *cfg)
{
    return ipc_connect(cfg->control_socket);
}

int control_notify(const struct wharf_config *cfg, const struct ipc_event *ev)
{
    int fd = control_connect(cfg);
    if (fd < 0)
        return -1;
    struct buf b = BUF_INIT;
    ipc_event_encode(&b, ev);
    int r = ipc_send(fd, IPC_EVENT, b.data, b.len);
    buf_free(&b);
    close(fd);
    return r;
}
