/*
 * component_loop.h - the one skeleton of every component process (workers
 * and singletons): what each process does between wharfd's exec and its own
 * job, and how it stops.
 *
 * component_loop_start, in this order: prepares DATA (base/datadir.h), runs
 * the as_root hook (bind a unix socket, read a key: still root when wharfd
 * runs as root), drops privileges (to run_as, else wharf_user), ignores
 * SIGPIPE, makes the event loop, opens the control channel to wharfd
 * (ipc/control.h: status, shutdown, events), turns SIGTERM and SIGINT into
 * the same shutdown wharfd asks for, and -- for network workers -- enters the
 * sandbox (base/sandbox.h). The component then sets up its own job on
 * loop->base, subscribes to the events it wants (control_subscribe), runs
 * component_loop_run, frees its own events and ends with component_loop_free.
 *
 * Reload needs nothing here: wharfd starts a new generation and asks the old
 * one to drain (the shutdown hook). Must never: read input from the network
 * before component_loop_start returned (privileges are dropped there), or
 * know a particular component.
 */
#ifndef WHARF_IPC_COMPONENT_LOOP_H
#define WHARF_IPC_COMPONENT_LOOP_H

#include "base/component.h"
#include "ipc/control.h"

#include <event2/event.h>
#include <stdbool.h>

struct component_hooks {
    /* Before privileges are dropped (still root under wharfd). May be NULL. */
    void (*as_root)(void *arg);
    const char *run_as; /* the user to become; NULL: cfg->wharf_user */
    int priorities;     /* event priorities of the loop (event_base_priority_init); 0: one */
    bool sandbox;       /* confine the process (network workers: base/sandbox.h) */
    /* The control callbacks (control.h): status figures, drain, events. */
    void (*status)(void *arg, json_t *obj);
    /*
     * Stop accepting and finish by deadline_ms, then leave the loop. Called for
     * wharfd's IPC_SHUTDOWN, when wharfd goes away, and for SIGTERM or SIGINT
     * (deadline: now + shutdown_timeout). NULL: the loop is left at once.
     */
    void (*shutdown)(void *arg, int64_t deadline_ms);
    void (*event)(void *arg, const struct ipc_event *ev);
    void *arg;
};

struct component_loop {
    struct component_ctx *ctx;
    const struct wharf_config *cfg;
    struct event_base *base;
    struct control *control;
    /* private */
    struct component_hooks hooks;
    struct event *sig_term, *sig_int;
};

/* Everything above, then returns the running skeleton; exits on failure. */
struct component_loop *component_loop_start(struct component_ctx *ctx,
                                            const struct component_hooks *hooks);
/* Runs the event loop until the component leaves it; returns EX_OK. */
int component_loop_run(struct component_loop *loop);
/* Closes the control channel and frees the loop (the component's events first). */
void component_loop_free(struct component_loop *loop);

#endif
