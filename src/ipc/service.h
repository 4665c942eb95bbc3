/*
 * service.h - the one pattern for a unix-socket frame server of Wharf (the
 * auth process's auth.sock, the directory's directory.sock, the mta's
 * deliver.sock, and the servers to come).
 *
 * ipc_service_listen binds the socket with the right mode and owner; an
 * ipc_service accepts on it (at most max_conns connections: beyond, it
 * refuses with a warning, or holds the next ones in the backlog), reads each
 * connection's frames through an ipc_channel (strict length checks: an
 * oversized frame, a non-zero flags field or EOF inside a frame closes the
 * connection and is logged), and hands each frame to the handler routed by
 * its type; a frame of any other type, or one its handler refuses, closes
 * the connection with one log line:
 *     NAME: closing client connection: WHY (type N)
 * Replies may be sent at once or later (ipc_conn_hold keeps the connection's
 * memory while an answer is being worked out; sending to a closed one does
 * nothing). A connection's unsent output is bounded (max_output), and a
 * connection may be paused while one request is in progress.
 *
 * It never interprets a payload (the routes do), never guesses at a frame,
 * and never grows without bound.
 */
#ifndef WHARF_IPC_SERVICE_H
#define WHARF_IPC_SERVICE_H

#include "base/config.h"
#include "ipc/frame.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct ipc_service;
struct ipc_conn;

/*
 * A frame of the routed type arrived; its payload is valid during the call
 * only. Returns NULL to go on, or why the frame is refused (the connection is
 * then closed and logged).
 */
typedef const char *(*ipc_service_frame_fn)(void *arg, struct ipc_conn *c,
                                            const struct ipc_frame *f);

struct ipc_route {
    uint16_t type;
    ipc_service_frame_fn fn;
};

struct ipc_service_params {
    const char *name;               /* in log lines: "auth", "directory", "deliver.sock" */
    const char *path;               /* the socket's name, unlinked by ipc_service_unlisten */
    const struct ipc_route *routes; /* ends with {0, NULL} */
    size_t max_frame;               /* largest payload accepted */
    size_t max_conns;
    /* The option named when a connection is refused because max_conns are open;
     * NULL: do not refuse, leave further connections in the backlog until one closes. */
    const char *max_conns_option;
    size_t max_output;  /* per connection, 0: unbounded (see ipc_channel_set_max_output) */
    int idle_timeout_s; /* 0: none */
    /* Optional: a connection was accepted / is closed (no frame comes after this). */
    void (*on_open)(void *arg, struct ipc_conn *c);
    void (*on_close)(void *arg, struct ipc_conn *c);
    void *arg;
};

/*
 * Binds and listens on a unix socket at path (replacing a stale one), with
 * the given mode, given to the wharf user when owner is non-NULL and we run
 * as root. Returns the fd, or -1 with err.
 */
int ipc_service_listen(const char *path, mode_t mode, const struct wharf_config *owner,
                       struct buf *err);

/* Serves the listening socket fd (owned from now on). Never returns NULL. */
struct ipc_service *ipc_service_new(struct event_base *base, int fd,
                                    const struct ipc_service_params *p);
/* Stops accepting; the socket stays bound, so clients wait in the backlog. */
void ipc_service_pause(struct ipc_service *s);
/* Closes the listening socket, and removes its name when unlink_path is true. */
void ipc_service_unlisten(struct ipc_service *s, bool unlink_path);
size_t ipc_service_connections(const struct ipc_service *s);
/* Closes every connection (on_close for each) and the listening socket, without unlinking. */
void ipc_service_free(struct ipc_service *s);

/* Queues one frame; does nothing once the connection is closed. */
void ipc_conn_send(struct ipc_conn *c, uint16_t type, const void *payload, size_t len);
/* Closes the connection now (on_close is called); its memory lives while held. */
void ipc_conn_close(struct ipc_conn *c);
bool ipc_conn_is_open(const struct ipc_conn *c);
/* Keeps the connection's memory (not the socket) for an answer worked out later. */
void ipc_conn_hold(struct ipc_conn *c);
void ipc_conn_release(struct ipc_conn *c);
/* Stops or resumes handing over frames (see ipc_channel_set_reading). */
void ipc_conn_set_reading(struct ipc_conn *c, bool on);
/* The peer's user id (SO_PEERCRED), (uid_t)-1 when unknown. */
uid_t ipc_conn_peer_uid(const struct ipc_conn *c);
void ipc_conn_set_data(struct ipc_conn *c, void *data);
void *ipc_conn_data(const struct ipc_conn *c);

#endif
