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
#include <sys/socket.h>
#include <sys/uio.h>

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
    bool paused;   /* the user stopped reading (ipc_channel_set_reading) */
    bool out_full; /* more than max_output unsent: frames wait until the peer reads */
    size_t max_output;
    const char *error; /* why the peer's side was refused, for the log */
};

/* Reads while neither the user nor a full output holds the channel back. */
static void channel_update_reading(struct ipc_channel *ch)
{
    if (ch->closed || ch->closing)
        return;
    if (ch->paused || ch->out_full)
        bufferevent_disable(ch->bev, EV_READ);
    else
        bufferevent_enable(ch->bev, EV_READ);
}

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
    while (!ch->closed && !ch->closing && !ch->paused) {
        if (ch->max_output > 0 &&
            evbuffer_get_length(bufferevent_get_output(ch->bev)) > ch->max_output) {
            /* The peer does not read its answers: ask no more until it has read half. */
            ch->out_full = true;
            bufferevent_setwatermark(ch->bev, EV_WRITE, ch->max_output / 2, 0);
            channel_update_reading(ch);
            return false;
        }
        struct ipc_frame f;
        size_t used;
        enum ipc_parse_result r = ipc_evbuffer_frame(in, ch->max_payload, &f, &used);
        if (r == IPC_PARSE_NEED_MORE)
            return false;
        if (r != IPC_PARSE_OK) {
            ch->error = "oversized frame or non-zero flags";
            return channel_fail(ch);
        }
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
    if (ch->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        channel_fail(ch);
        return;
    }
    if (ch->out_full && evbuffer_get_length(bufferevent_get_output(bev)) <= ch->max_output / 2) {
        ch->out_full = false;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        channel_update_reading(ch);
        channel_drain(ch); /* frames held back meanwhile */
    }
}

static void channel_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct ipc_channel *ch = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    /* Frames that arrived before the EOF are handled first. */
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        if (channel_drain(ch))
            return;
        if (!ch->closed && !ch->paused && !ch->out_full &&
            evbuffer_get_length(bufferevent_get_input(bev)) > 0)
            ch->error = "the peer closed the connection inside a frame (short frame)";
    }
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
    /* Never buffer more than one largest frame ahead. */
    bufferevent_setwatermark(ch->bev, EV_READ, 0, max_payload + IPC_HEADER_SIZE);
    bufferevent_enable(ch->bev, EV_READ | EV_WRITE);
    return ch;
}

/* The frame's header and payload to the bufferevent, from byte sent on (what
 * the socket took at once). */
static void channel_queue(struct ipc_channel *ch, const unsigned char *hdr, const void *payload,
                          size_t len, size_t sent)
{
    /* Header and payload go straight to the socket's buffer: no copy of the
     * payload (a password, a message) is left behind in ours. */
    if (sent < IPC_HEADER_SIZE)
        bufferevent_write(ch->bev, hdr + sent, IPC_HEADER_SIZE - sent);
    size_t off = sent > IPC_HEADER_SIZE ? sent - IPC_HEADER_SIZE : 0;
    if (off < len)
        bufferevent_write(ch->bev, (const unsigned char *)payload + off, len - off);
}

static void frame_header(unsigned char *hdr, uint16_t type, size_t len)
{
    hdr[0] = (unsigned char)(len >> 24);
    hdr[1] = (unsigned char)(len >> 16);
    hdr[2] = (unsigned char)(len >> 8);
    hdr[3] = (unsigned char)len;
    hdr[4] = (unsigned char)(type >> 8);
    hdr[5] = (unsigned char)type;
    hdr[6] = hdr[7] = 0;
}

void ipc_channel_send(struct ipc_channel *ch, uint16_t type, const void *payload, size_t len)
{
    if (ch->closed || ch->closing)
        return;
    unsigned char hdr[IPC_HEADER_SIZE];
    frame_header(hdr, type, len);
    channel_queue(ch, hdr, payload, len, 0);
}

void ipc_channel_send_now(struct ipc_channel *ch, uint16_t type, const void *payload, size_t len)
{
    if (ch->closed || ch->closing)
        return;
    unsigned char hdr[IPC_HEADER_SIZE];
    frame_header(hdr, type, len);
    size_t sent = 0;
    if (evbuffer_get_length(bufferevent_get_output(ch->bev)) == 0) {
        struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, len}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
        ssize_t n = sendmsg(bufferevent_getfd(ch->bev), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        sent = n > 0 ? (size_t)n : 0; /* an error: the bufferevent meets it on its write */
    }
    channel_queue(ch, hdr, payload, len, sent);
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

const char *ipc_channel_error(const struct ipc_channel *ch)
{
    return ch->error;
}

void ipc_channel_set_reading(struct ipc_channel *ch, bool on)
{
    if (ch->paused == !on)
        return;
    ch->paused = !on;
    channel_update_reading(ch);
    if (on) {
        ch->busy++;
        channel_drain(ch); /* frames that came in while paused */
        channel_release(ch);
    }
}

void ipc_channel_set_max_output(struct ipc_channel *ch, size_t max)
{
    ch->max_output = max;
}

void ipc_channel_set_timeout(struct ipc_channel *ch, int secs)
{
    struct timeval tv = {secs, 0};
    bufferevent_set_timeouts(ch->bev, secs > 0 ? &tv : NULL, secs > 0 ? &tv : NULL);
}
