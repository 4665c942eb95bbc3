/*
 * supervise.h - wharfd's event loop: component processes, reload, shutdown, bus.
 *
 * One struct sup per wharfd. The loop runs on libevent: signals arrive as
 * evsignal events (SIGCHLD, SIGHUP, SIGTERM, SIGINT), each child's control
 * channel and each control-socket client is an ipc_channel.
 */
#ifndef WHARF_SUPERVISOR_SUPERVISE_H
#define WHARF_SUPERVISOR_SUPERVISE_H

#include "base/config.h"
#include "ipc/channel.h"
#include "supervisor/listeners.h"

#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct proc;
struct status_query;
struct sup_admin_job;

struct sup {
    struct event_base *base;
    struct wharf_config *cfg; /* the running configuration */
    const char *config_path;  /* absolute, or NULL for embedded defaults */
    char **assignments;       /* -o name=value, passed on to every child */
    size_t n_assignments;
    bool foreground;
    char self_exe[PATH_MAX];
    struct listener_set listeners;
    struct proc **procs;
    size_t n_procs;
    unsigned generation; /* bumped by every successful reload */
    unsigned reloads;
    bool stopping;
    int64_t started_ms;
    uint64_t status_seq;
    struct status_query *queries;
    struct ctlsock *ctl;     /* the control socket and its clients */
    struct conntab *conntab; /* connection counts shared with the workers (base/conntab.h) */
    struct sup_admin_job *admin_jobs; /* admin API requests running (admin.c) */
};

/* Starts one generation of processes and runs until SIGTERM/SIGINT has drained them. */
int sup_run(struct sup *s);

/*
 * Rereads the configuration and certificates and starts a new generation of
 * processes on the (re)bound listeners; the old one drains. On a bad
 * configuration nothing changes and err says why.
 */
int sup_reload(struct sup *s, struct buf *err);

/*
 * Decodes an IPC_EVENT payload strictly (a malformed one is logged with who
 * sent it and dropped) and relays it to every component process subscribed
 * to it, except from (may be NULL).
 */
void sup_relay_event(struct sup *s, const struct proc *from, const void *payload, size_t len,
                     const char *who);

/*
 * Asks every process for its status and calls done with the whole status
 * object once all have answered (or after a short timeout). The returned
 * handle may be cancelled until then.
 */
typedef void (*sup_status_fn)(void *arg, json_t *status);
struct status_query *sup_status_query(struct sup *s, sup_status_fn done, void *arg);
void sup_status_cancel(struct sup *s, struct status_query *q);

/* In a child wharfd forked, before exec: default signal dispositions, nothing blocked. */
void sup_child_signals(void);
/* Appends "-c CONFIG" and each "-o name=value" wharfd was given to argv at a; the new a. */
size_t sup_config_argv(const struct sup *s, char **argv, size_t a);

/*
 * The admin API (admin.c, doc/admin-api.md): runs request (JSON text) as
 * `wharf-admin api` in a child and calls done once with its answer
 * ({"status": N, "body": ...}), from the loop -- or at once, with an error
 * answer, when it cannot start one (then NULL is returned).
 */
typedef void (*sup_admin_fn)(void *arg, json_t *reply);
struct sup_admin_job *sup_admin_run(struct sup *s, const char *request, size_t len,
                                    sup_admin_fn done, void *arg);
/* done is never called; the helper finishes its work unheard. */
void sup_admin_cancel(struct sup_admin_job *j);
/* wharfd exits: forgets every job (the helpers finish on their own). */
void sup_admin_stop_all(struct sup *s);

/* Control socket (ctlsock.c). */
int ctlsock_open(struct sup *s, struct buf *err);
void ctlsock_close(struct sup *s);

#endif
