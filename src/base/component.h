/*
 * component.h - the contract between wharfd and each component process.
 *
 * wharfd (the supervisor) binds every listener, then starts each component by
 * re-executing itself:
 *     wharfd --component NAME --worker I/N [-c FILE] [-o name=value ...]
 * with fd 3 a unix socket back to the supervisor (IPC frames, see ipc/frame.h)
 * and fds 4.. the listening sockets of the component's services, named in the
 * environment variable WHARF_LISTENERS as "service=fd,service=fd", and umask
 * 077 (files a component creates are private to the wharf user).
 * When wharfd shares its connection-count table (base/conntab.h) with the
 * process, WHARF_CONNTAB is "FD/SLOT": the table's memfd (after the listeners)
 * and the row this process writes.
 * The child reads the configuration itself, then drops privileges
 * (component_drop_privileges) before touching any input from the network.
 *
 * A component is one directory under src/ that defines a
 *     const struct component_def NAME_component;
 * whose main is NULL while the component is not built yet: wharfd then shows
 * it as "not built yet" and never binds its ports, so nothing is faked.
 */
#ifndef WHARF_BASE_COMPONENT_H
#define WHARF_BASE_COMPONENT_H

#include "base/config.h"
#include "base/conntab.h"

#include <stdbool.h>
#include <stddef.h>

#define COMPONENT_CONTROL_FD 3
#define COMPONENT_FIRST_LISTENER_FD 4
#define COMPONENT_LISTENERS_ENV "WHARF_LISTENERS"
#define COMPONENT_CONNTAB_ENV "WHARF_CONNTAB"

struct component_listener {
    const char *service; /* "smtp", "submission", ... (see supervisor/services.c) */
    int fd;
};

struct component_def;

struct component_ctx {
    const char *name;
    const struct component_def *def; /* NULL in unit tests */
    unsigned worker_index;           /* 0 .. n_workers-1 */
    unsigned n_workers;
    const struct wharf_config *cfg;
    int control_fd; /* IPC frames to and from the supervisor */
    size_t n_listeners;
    struct component_listener *listeners;
    struct conntab *conntab; /* shared connection counts, or NULL: count in this process */
    unsigned conntab_slot;   /* this process's row in it */
};

struct component_ctx;
typedef int (*component_main_fn)(struct component_ctx *ctx);

enum component_kind {
    COMPONENT_WORKERS,   /* N processes sharing the listening sockets */
    COMPONENT_SINGLETON, /* exactly one process */
};

struct component_def {
    const char *name;          /* "smtp" */
    const char *exchange_name; /* "SMTP", "Information Store", ... */
    enum component_kind kind;
    component_main_fn main; /* NULL: not built yet */
    const char *job;        /* one line for `wharf ports` and `wharf status` */
    /* Network workers: the DATA_DIRECTORY folders the worker reads and writes
     * once confined (base/sandbox.h), NULL-terminated; every other file under
     * DATA is out of its reach. */
    const char *const *sandbox_data;
    /* The options only this component reads, checked as its main would at
     * start but without starting anything (wharfd before it starts or takes a
     * reloaded configuration, `wharf config check`). NULL: none to check. */
    int (*check_config)(const struct wharf_config *cfg, struct buf *err);
};

/* Finds the fd passed for a service, or -1. */
int component_listener_fd(const struct component_ctx *ctx, const char *service);

/*
 * The connection limits of one of this process's services ("smtp", "imaps"):
 * <service>_max_connections and <service>_max_connections_per_ip, counted over
 * every worker through ctx->conntab. Without a table (a process started
 * alone), each worker takes its share of max_connections (divided by the
 * number of workers, rounded up) and counts per address by itself.
 * Returns false for a service without limits.
 */
bool component_connection_limits(const struct component_ctx *ctx, const char *service,
                                 unsigned *max_r, unsigned *per_ip_r);

/*
 * Switches to cfg->wharf_user when running as root (exits EX_NOUSER/EX_OSERR
 * on failure); a no-op for an unprivileged process.
 */
void component_drop_privileges(const struct wharf_config *cfg);
/* The same to another user: the auth process runs as cfg->auth_user. */
void component_drop_privileges_to(const char *user);

/*
 * Process titles, so that ps, top and systemd-cgls tell the processes apart
 * (as Postfix's "smtpd" and Dovecot's "imap-login" do):
 *     wharfd: supervisor
 *     wharf: smtp worker 1/2 [12 conns]
 *     wharf: mta
 * component_title_init must run first thing in main: it moves argv and the
 * environment to the heap (returning the new argv) so that the original
 * argv area can be overwritten. component_title_set writes the title there
 * (ps, /proc/PID/cmdline) and sets the short name top shows
 * (prctl PR_SET_NAME, 15 bytes: "wharf-smtp").
 */
void component_title_init(int argc, char ***argv_r);
void component_title_set(const char *comm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "wharf: NAME worker I/N" (workers) or "wharf: NAME" (a singleton). */
void component_title_start(const struct component_ctx *ctx, bool workers);
/* Appends " [N conns]" to the title component_title_start set. Cheap: no syscall. */
void component_title_connections(size_t n);

#endif
