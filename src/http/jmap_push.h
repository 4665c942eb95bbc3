/*
 * jmap_push.h - JMAP push on a worker's event loop, transport-free:
 * EventSource (RFC 8620 7.3) and WebSocket (RFC 8887) share it. The http
 * worker opens a stream per GET of the event source URL or per
 * WebSocketPushEnable, hands every bus event it subscribed to (mailbox changed,
 * mailbox list) to jmap_push_event, and writes what the stream's io gets.
 * Never polls: a stream hears of a change only through the bus.
 */
#ifndef WHARF_HTTP_JMAP_PUSH_H
#define WHARF_HTTP_JMAP_PUSH_H

#include "http/jmap.h"

#include <event2/event.h>

/* Ping intervals are clamped to this range (RFC 8620 7.3 allows no minimum
 * above 30 s and no maximum below 300 s). */
#define JMAP_PUSH_PING_MIN 5
#define JMAP_PUSH_PING_MAX 3600
/* At most one state event per account in this many ms: the first change after a
 * quiet spell goes out at once, the rest of a burst at the end of the window. */
#define JMAP_PUSH_COALESCE_MS 20

struct jmap_push;
struct jmap_push_stream;

/* How a stream's bytes leave: write appends to the response body (text/event-stream);
 * end finishes the response (closeafter=state). end is called at most once, after
 * which the stream is gone. */
struct jmap_push_io {
    void (*write)(void *ctx, const char *data, size_t len);
    void (*end)(void *ctx);
    /* WebSocket (RFC 8887 4.3.5): each write is one StateChange object with its
     * pushState, no EventSource framing (pings are the transport's). */
    bool json;
};

/* watch (may be NULL) is told when the worker first needs an account's events
 * (on true: a stream of it opens, or a stream of a user it shares a
 * mailbox with) and when it no longer does (false): the worker subscribes to
 * that account's bus events only meanwhile. */
struct jmap_push *jmap_push_new(struct event_base *base, struct jmap *j, unsigned coalesce_ms,
                                void (*watch)(void *ctx, const char *owner, bool on),
                                void *watch_ctx);
/* Checks the event source query's arguments (what jmap_push_open refuses)
 * before the caller starts the response; false with err. */
bool jmap_push_args_ok(const char *types, const char *closeafter, const char *ping,
                       struct buf *err);
void jmap_push_free(struct jmap_push *p);
/*
 * Opens a stream of user for the event source query (types, closeafter,
 * ping as the URL gave them); it also hears of the accounts shared with user
 * at this moment (the store's ACLs), each change only when user may see the
 * changed mailbox, the event without an id (EventSource) or pushState (WS).
 * Last-Event-ID (NULL: none) is the user's own account's state.
 * NULL with err when an argument is bad (the caller answers 400), or when
 * the stream already ended (io->end was called: missed changes were sent to
 * a closeafter=state client). A stream that stays open was sent the current
 * state at once, unless the client said closeafter=state.
 */
struct jmap_push_stream *jmap_push_open(struct jmap_push *p, const char *user, const char *types,
                                        const char *closeafter, const char *ping,
                                        const char *last_event_id, const struct jmap_push_io *io,
                                        void *ctx, struct buf *err);
/* The transport went away: forget the stream (io is not called again). */
void jmap_push_close(struct jmap_push_stream *s);
/* A bus event: mailbox changed / mailbox list; others are ignored. */
void jmap_push_event(struct jmap_push *p, const struct ipc_event *ev);
/* Open streams (status). */
size_t jmap_push_streams(const struct jmap_push *p);
/* Whether owner's own account has a stream open in p. */
bool jmap_push_listening(const struct jmap_push *p, const char *owner);

#endif
