/*
 * channel.c - framing IPC messages on a bufferevent.
 *
 * Never guesses at a frame: anything ipc_frame_parse rejects ends the channel.
 * Freeing a channel from inside one of its callbacks is allowed; the read loop
 * notices and stops touching it.
 */
#include "ipc/channel.h"
#include "base/alloc.h"
#include "base/log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stdlib.h>

struct ipc_channel {
    struct bufferevent *bev;
    size_t max_payload;
    ipc_channel_frame_fn on_frame;
    ipc_channel_close_fn on_close;
    void *arg;
    unsigned busy; /* depth of callbacks running on this channel */
    bool dead;     /* freed while busy: destroyed when the last callback returns */
    bool closed;   /* on_close already called */
    bool closing;  /* close_after_flush pending */
};

static void channel_destroy(struct ipc_channel *ch)
{
    bufferevent_free(ch->bev); /* BEV_OPT_CLOSE_ON_FREE closes the fd */
    free(ch);
}

/* Ends a callback; true when the caller must not touch ch any more. */
static bool channel_release(struct ipc_channel *ch)
{
    ch->busy--;
    if (ch->dead && ch->busy == 0) {
        channel_destroy(ch);
        return true;
    }
    return ch->dead;
}

/* Calls on_close once; true when the caller must not touch ch any more. */
static bool channel_fail(struct ipc_channel *ch)
{
    if (ch->closed)
        return ch->dead;
    ch->closed = true;
    bufferevent_disable(ch->bev, EV_READ | EV_WRITE);
    ch->busy++;
    ch->on_close(ch->arg);
    return channel_release(ch);
}

enum ipc_parse_result ipc_evbuffer_frame(struct evbuffer *in, size_t max_payload,
                                         struct ipc_frame *frame, size_t *consumed_r)
{
    size_t avail = evbuffer_get_length(in);
    if (avail < IPC_HEADER_SIZE)
        return IPC_PARSE_NEED_MORE;
    const unsigned char *hdr = evbuffer_pullup(in, IPC_HEADER_SIZE);
    /* The header alone first, so that an oversized frame is never pulled up. */
    enum ipc_parse_result r = ipc_frame_parse(hdr, IPC_HEADER_SIZE, max_payload, frame, consumed_r);
    if (r != IPC_PARSE_NEED_MORE)
        return r;
    size_t need = IPC_HEADER_SIZE + (((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) |
                                     ((size_t)hdr[2] << 8) | hdr[3]);
    if (avail < need)
        return IPC_PARSE_NEED_MORE;
    return ipc_frame_parse(evbuffer_pullup(in, (ev_ssize_t)need), need, max_payload, frame,
                           consumed_r);
}

/* Hands every complete frame to on_frame; true when ch must not be touched. */
static bool channel_drain(struct ipc_channel *ch)
{
    struct evbuffer *in = bufferevent_get_input(ch->bev);
    while (!ch->closed && !ch->closing) {
        struct ipc_frame f;
        size_t used;
        enum ipc_parse_result r = ipc_evbuffer_frame(in, ch->max_payload, &f, &used);
        if (r == IPC_PARSE_NEED_MORE)
            return false;
        if (r != IPC_PARSE_OK)
            return channel_fail(ch);
        ch->busy++;
        ch->on_frame(ch->arg, &f);
        if (channel_release(ch))
            return true;
        evbuffer_drain(in, used);
    }
    return false;
}

static void channel_read_cb(struct bufferevent *bev, void *arg)
{
    channel_drain(arg);
}

static void channel_write_cb(struct bufferevent *bev, void *arg)
{
    struct ipc_channel *ch = arg;
    if (ch->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        channel_fail(ch);
}

static void channel_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct ipc_channel *ch = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    /* Frames that arrived before the EOF are handled first. */
    if (!(what & BEV_EVENT_ERROR) && channel_drain(ch))
        return;
    channel_fail(ch);
}

struct ipc_channel *ipc_channel_new(struct event_base *base, int fd, size_t max_payload,
                                    ipc_channel_frame_fn on_frame, ipc_channel_close_fn on_close,
                                    void *arg)
{
    struct ipc_channel *ch = xcalloc(1, sizeof(*ch));
    evutil_make_socket_nonblocking(fd);
    ch->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    WHARF_ASSERT(ch->bev != NULL);
    ch->max_payload = max_payload;
    ch->on_frame = on_frame;
    ch->on_close = on_close;
    ch->arg = arg;
    bufferevent_setcb(ch->bev, channel_read_cb, channel_write_cb, channel_event_cb, ch);
    bufferevent_enable(ch->bev, EV_READ | EV_WRITE);
    return ch;
}

void ipc_channel_send(struct ipc_channel *ch, uint16_t type, const void *payload, size_t len)
{
    if (ch->closed || ch->closing)
        return;
    struct buf b = BUF_INIT;
    ipc_frame_encode(&b, type, payload, len);
    bufferevent_write(ch->bev, b.data, b.len);
    buf_free(&b);
}

void ipc_channel_close_after_flush(struct ipc_channel *ch)
{
    if (ch->closed)
        return;
    ch->closing = true;
    bufferevent_disable(ch->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(ch->bev)) == 0)
        channel_fail(ch);
}

void ipc_channel_free(struct ipc_channel *ch)
{
    if (ch == NULL)
        return;
    if (ch->busy > 0) {
        ch->dead = true;
        return;
    }
    channel_destroy(ch);
}

int ipc_channel_fd(const struct ipc_channel *ch)
{
    return (int)bufferevent_getfd(ch->bev);
}
