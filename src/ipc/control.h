/*
 * control.h - the component side of the supervisor protocol, and the bus.
 *
 * Every component process holds fd 3 (COMPONENT_CONTROL_FD), a unix stream
 * socket to wharfd carrying IPC frames (ipc/frame.h). Over it:
 *   - the component says IPC_HELLO once at start (control_open does it);
 *   - wharfd asks IPC_STATUS_REQUEST, the component answers IPC_STATUS with a
 *     JSON object: control.c fills component, pid, worker, connections (0),
 *     events_received and events_published, then the status callback adds
 *     or overrides its own figures ({"connections": N, ...});
 *   - wharfd says IPC_SHUTDOWN(deadline): stop accepting, let sessions finish
 *     until the deadline, then exit 0 (used for SIGTERM and for the old
 *     generation of workers on SIGHUP);
 *   - the component says IPC_SUBSCRIBE for each event type it wants
 *     (control_subscribe), for every owner or for some accounts only;
 *   - either side sends IPC_EVENT (a typed event, ipc/event.h): wharfd relays
 *     an event from one component to every other process subscribed to it
 *     (the bus that carries "mailbox changed" to IMAP IDLE sessions).
 * If wharfd goes away (EOF on fd 3), the component shuts down at once: it
 * must never outlive its supervisor.
 */
#ifndef WHARF_IPC_CONTROL_H
#define WHARF_IPC_CONTROL_H

#include "base/buf.h"
#include "base/clock.h" /* deadlines are monotonic_ms() values */
#include "base/component.h"
#include "ipc/event.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

struct control;

struct control_callbacks {
    /* Adds the component's live figures to obj (at least "connections"). May be NULL. */
    void (*status)(void *arg, json_t *obj);
    /*
     * Stop accepting now (close the listening sockets, so that new clients are
     * refused rather than left in the backlog); finish open sessions by
     * deadline_ms (CLOCK_MONOTONIC milliseconds), then leave the event loop.
     * Also called, with a deadline of now, when wharfd goes away. NULL: the
     * loop is left at once.
     */
    void (*shutdown)(void *arg, int64_t deadline_ms);
    /*
     * An event published by another process, of a type this one subscribed
     * to (already decoded strictly; ev is valid only during the call). May be NULL.
     */
    void (*event)(void *arg, const struct ipc_event *ev);
    void *arg;
};

/* Starts reading fd 3 on base and says hello. Never returns NULL. */
struct control *control_open(struct event_base *base, const struct component_ctx *ctx,
                             const struct control_callbacks *cb);
/*
 * Tells wharfd which events to relay to this process: op IPC_SUBSCRIBE_ALL
 * (every owner), IPC_SUBSCRIBE_OWNER / IPC_UNSUBSCRIBE_OWNER (owner's events
 * only) or IPC_SUBSCRIBE_NONE (none of type). owner is NULL unless op names one.
 */
void control_subscribe(struct control *c, enum ipc_event_type type, enum ipc_subscribe_op op,
                       const char *owner);
/* Publishes an event on the bus (delivered to every other process subscribed to it). */
void control_publish(struct control *c, const struct ipc_event *ev);

/*
 * Asks wharfd for the whole server's status (what `wharf status --json`
 * prints: every component's figures, connections per service, the ports);
 * fn gets it later from the loop, or NULL when wharfd went away. Returns a
 * handle for control_status_all_cancel (the asker went away first).
 */
typedef void (*control_status_all_fn)(void *arg, json_t *status);
uint64_t control_status_all(struct control *c, control_status_all_fn fn, void *arg);
void control_status_all_cancel(struct control *c, uint64_t handle);
/*
 * Sends one admin API request (JSON text: doc/admin-api.md) to wharfd, which
 * runs it with the wharf command's code and answers {"status": N, "body": ...};
 * fn gets that object later from the loop, or NULL when wharfd went away.
 * Only the http component may ask. Cancel with control_status_all_cancel.
 */
uint64_t control_admin(struct control *c, const char *request, control_status_all_fn fn, void *arg);
void control_close(struct control *c);

/*
 * For processes that are not components (the wharf command, `wharf deliver`):
 * connects to the control socket named by cfg, publishes one event, closes.
 * Returns 0, or -1 when wharfd is not running (not an error for the caller:
 * nobody is listening for the event then).
 */
int control_notify(const struct wharf_config *cfg, const struct ipc_event *ev);

/*
 * Connects to wharfd's control socket (cfg->control_socket). Returns the fd,
 * or -1 with errno (ENOENT or ECONNREFUSED: wharfd is not running). Requests
 * are IPC_CTL_REQUEST frames ({"cmd": "status"} or {"cmd": "reload"}),
 * answered by one IPC_CTL_REPLY; an IPC_EVENT frame is relayed to the
 * component processes subscribed to it and not answered.
 */
int control_connect(const struct wharf_config *cfg);

#endif
