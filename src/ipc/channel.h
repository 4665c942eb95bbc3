/*
 * channel.h - IPC frames over a libevent bufferevent.
 *
 * One channel owns one connected stream socket and turns its bytes into
 * whole frames (ipc/frame.h) handed to a callback. Used by the component side
 * of the control protocol (control.c) and by wharfd for every child and every
 * control-socket client. It never interprets a frame: that is its user's job.
 * A malformed or oversized frame, EOF, a socket error or a timeout ends the
 * channel with one call of the close callback. It never buffers more than one
 * largest frame of input ahead. The unix-socket servers and clients build on
 * it through ipc/service.h and ipc/client.h.
 */
#ifndef WHARF_IPC_CHANNEL_H
#define WHARF_IPC_CHANNEL_H

#include "ipc/frame.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ipc_channel;

/* A frame arrived; the frame's payload is valid only during the call. */
typedef void (*ipc_channel_frame_fn)(void *arg, const struct ipc_frame *frame);
/* EOF, error or a bad frame: the channel is dead; free it (may be done here). */
typedef void (*ipc_channel_close_fn)(void *arg);

/* Takes ownership of fd (made non-blocking). Never returns NULL. */
struct ipc_channel *ipc_channel_new(struct event_base *base, int fd, size_t max_payload,
                                    ipc_channel_frame_fn on_frame, ipc_channel_close_fn on_close,
                                    void *arg);
/* Queues one frame; dropped silently when the channel is already closed. */
void ipc_channel_send(struct ipc_channel *ch, uint16_t type, const void *payload, size_t len);
/*
 * The same, sent to the socket at once when nothing is queued before it
 * (what the socket does not take goes the usual way), instead of on the
 * loop's next turn behind an epoll_ctl pair. Not for what must wait for the
 * loop to run: a component's hello, sent before its start-up work, means
 * "ready" only because it leaves once the loop runs.
 */
void ipc_channel_send_now(struct ipc_channel *ch, uint16_t type, const void *payload, size_t len);
/* Sends what is queued, then closes and calls on_close (used for last replies). */
void ipc_channel_close_after_flush(struct ipc_channel *ch);
/* Closes the socket and frees the channel; safe inside its own callbacks. */
void ipc_channel_free(struct ipc_channel *ch);
int ipc_channel_fd(const struct ipc_channel *ch);

/*
 * Why the channel ended when the peer broke the framing (an oversized or
 * malformed frame, or EOF inside a frame), for the log; NULL after a clean
 * EOF, a socket error, a timeout or a local close.
 */
const char *ipc_channel_error(const struct ipc_channel *ch);
/*
 * Stops (false) or resumes (true) handing frames over, for a peer that may
 * have one request in progress at a time. Resuming hands over the frames
 * that arrived meanwhile from inside this call.
 */
void ipc_channel_set_reading(struct ipc_channel *ch, bool on);
/*
 * Past max bytes of unsent output (0: no limit), further frames wait until
 * the peer has read half of it: a peer that never reads cannot make us
 * buffer answers without bound.
 */
void ipc_channel_set_max_output(struct ipc_channel *ch, size_t max);
/* Ends the channel when a read or a pending write makes no progress for secs (0: never). */
void ipc_channel_set_timeout(struct ipc_channel *ch, int secs);

/*
 * Looks for one complete frame at the start of a libevent input buffer, for
 * readers that keep their own bufferevent (the auth process and its clients,
 * deliver.sock). The header is checked before the payload is pulled up, so an
 * oversized frame is refused without copying it. On IPC_PARSE_OK the frame's
 * payload points into `in` until the caller drains *consumed_r bytes.
 */
struct evbuffer;
enum ipc_parse_result ipc_evbuffer_frame(struct evbuffer *in, size_t max_payload,
                                         struct ipc_frame *frame, size_t *consumed_r);

#endif
