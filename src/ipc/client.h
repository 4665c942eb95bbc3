/*
 * client.h - the one pattern for a worker's side of a unix-socket frame
 * service (auth.sock, directory.sock, and the services to come): one
 * connection per process on its event loop, many requests in flight on it,
 * each matched to its reply by id.
 *
 * The convention every such protocol follows: a request's payload and its
 * reply's payload both begin with the request's id (a u64, ipc/frame.h),
 * which this kit chooses.
 *
 * Every request ends in exactly one call of its done callback, always from
 * the event loop, never from inside the call that started it:
 *   - IPC_CLIENT_REPLY with the reply frame;
 *   - IPC_CLIENT_LOCAL when the caller answered it itself (ipc_client_later:
 *     a cached answer, a request refused before it is sent);
 *   - IPC_CLIENT_FAILED when the service cannot be reached, goes away, sends
 *     something malformed, does not answer within the timeout, or when
 *     max_outstanding requests are already in flight.
 * It connects lazily and reconnects on the next request after an error;
 * with keep_connected it also keeps a connection open while it lives
 * (retrying every second), so that a service told to stop knows a client is
 * still there. It never sends a frame larger than the caller built, and never
 * holds more than max_outstanding requests.
 */
#ifndef WHARF_IPC_CLIENT_H
#define WHARF_IPC_CLIENT_H

#include "ipc/frame.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ipc_client;
struct ipc_request;

enum ipc_client_status {
    IPC_CLIENT_REPLY,
    IPC_CLIENT_LOCAL,
    IPC_CLIENT_FAILED,
};

/*
 * A request ended (reply is NULL unless IPC_CLIENT_REPLY; its payload is
 * valid during the call only). Returns -1 only when the reply does not
 * decode: the connection is dropped as malformed and the request ends again,
 * with IPC_CLIENT_FAILED; otherwise 0.
 */
typedef int (*ipc_client_done_fn)(void *arg, enum ipc_client_status st,
                                  const struct ipc_frame *reply);

struct ipc_client_params {
    const char *name; /* in log lines: "auth client" */
    const char *peer; /* in log lines: "the auth process" */
    uint16_t reply_type;
    size_t max_reply;
    int64_t timeout_ms;
    size_t max_outstanding;             /* 0: unbounded */
    const char *max_outstanding_option; /* named when a request is refused */
    bool keep_connected;
};

/* Never returns NULL. */
struct ipc_client *ipc_client_new(struct event_base *base, const char *path,
                                  const struct ipc_client_params *p);
/* Requests still outstanding end without a call. */
void ipc_client_free(struct ipc_client *c);

/* Starts a request; *id_r is the id its payload must begin with. */
struct ipc_request *ipc_client_start(struct ipc_client *c, ipc_client_done_fn done, void *arg,
                                     uint64_t *id_r);
/* Sends it and starts its timeout (or ends it with IPC_CLIENT_FAILED soon). */
void ipc_client_send(struct ipc_client *c, struct ipc_request *r, uint16_t type,
                     const void *payload, size_t len);
/* Ends it with IPC_CLIENT_LOCAL from the loop, without sending anything. */
void ipc_client_later(struct ipc_client *c, struct ipc_request *r);
/* Ends it without a call (the caller went away first). */
void ipc_client_cancel(struct ipc_client *c, struct ipc_request *r);

size_t ipc_client_outstanding(const struct ipc_client *c);
/* True when match(arg, ctx) holds for the arg of a request still outstanding. */
bool ipc_client_any(const struct ipc_client *c, bool (*match)(void *arg, void *ctx), void *ctx);

#endif
