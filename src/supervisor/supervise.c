/*
 * supervise.c - starting, watching, restarting, reloading and stopping the
 * component processes, and relaying the bus.
 *
 * Runs as root in wharfd. Never reads from the network and never parses a
 * frame without the length and field checks of ipc/frame.h: a component that
 * sends garbage loses its channel, not the supervisor.
 */
#include "supervisor/supervise.h"
#include "base/clock.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/control.h"
#include "supervisor/portmap.h"
#include "supervisor/sdnotify.h"
#include "supervisor/services.h"
#include "supervisor/tlsgen.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

/* How long `wharf status` waits for the components' own figures. */
#define STATUS_REPLY_TIMEOUT_MS 1000
/* After a drain deadline, how long before a process that did not leave is killed. */
#define KILL_GRACE_MS 1000
/* The first restart delay; it doubles up to restart_backoff_max. */
#define RESTART_BACKOFF_MIN_MS 1000
/*
 * Rows of the connection table per process of the first generation: room for
 * the current generation and up to three reloads' generations still draining.
 */
#define CONNTAB_SLOTS_PER_PROC 4
#define CONNTAB_MIN_SLOTS 64

struct proc {
    struct sup *sup;
    const struct component_def *def;
    unsigned index, n;
    unsigned generation;
    int slot;  /* its row in s->conntab, -1: none (counts alone) */
    pid_t pid; /* 0: not running */
    struct ipc_channel *ch;
    bool hello;
    bool retiring; /* old generation (or stopping): drain, never restart */
    int64_t started_ms;
    unsigned restarts;
    int64_t backoff_ms;
    struct event *restart_ev;
    struct event *kill_ev;
    json_t *status;
    uint64_t status_seq;
    char last_exit[160];
    struct ipc_subscriptions subs; /* the events it asked for (ipc/event.h) */
    /* IPC_STATUS_ALL_REQUEST: the query under way and the ids that wait for it. */
    struct status_query *all_query;
    uint64_t *all_ids;
    size_t n_all_ids;
    struct proc_admin *admins; /* IPC_ADMIN_REQUEST: the requests under way */
};

struct proc_admin {
    struct proc_admin *next;
    struct proc *proc;
    uint64_t id;
    struct sup_admin_job *job;
    char *what; /* "user=<U> METHOD /admin/PATH" for the log line */
};

struct status_query {
    struct status_query *next;
    struct sup *sup;
    uint64_t seq;
    struct event *timer;
    sup_status_fn done;
    void *arg;
};

static void proc_start(struct proc *p);

static bool proc_is_current(const struct proc *p)
{
    return !p->retiring && p->generation == p->sup->generation;
}

/* ---- status queries ---- */

static bool query_complete(const struct status_query *q)
{
    struct sup *s = q->sup;
    for (size_t i = 0; i < s->n_procs; i++) {
        const struct proc *p = s->procs[i];
        if (p->pid != 0 && p->ch != NULL && p->hello && p->status_seq < q->seq)
            return false;
    }
    return true;
}

static json_t *proc_json(const struct proc *p, int64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "pid", json_integer(p->pid));
    json_object_set_new(o, "worker", json_integer(p->index));
    json_object_set_new(o, "generation", json_integer(p->generation));
    json_object_set_new(o, "state",
                        json_string(p->pid == 0   ? "restarting"
                                    : p->retiring ? "draining"
                                    : p->hello    ? "running"
                                                  : "starting"));
    json_object_set_new(o, "uptime", json_integer(p->pid ? (now - p->started_ms) / 1000 : 0));
    json_object_set_new(o, "restarts", json_integer(p->restarts));
    json_int_t conns = 0;
    if (p->status) {
        json_t *c = json_object_get(p->status, "connections");
        if (json_is_integer(c))
            conns = json_integer_value(c);
        json_object_set(o, "status", p->status);
    }
    json_object_set_new(o, "connections", json_integer(conns));
    return o;
}

/* The state of one component as `wharf status` and `wharf ports` show it. */
static const char *component_state(const struct sup *s, const struct component_def *d)
{
    if (d->main == NULL)
        return "not built yet";
    if (!component_enabled(s->cfg, d))
        return "disabled";
    if (s->stopping)
        return "stopping";
    bool starting = false, restarting = false;
    for (size_t i = 0; i < s->n_procs; i++) {
        const struct proc *p = s->procs[i];
        if (p->def != d || !proc_is_current(p))
            continue;
        if (p->pid == 0)
            restarting = true;
        else if (!p->hello)
            starting = true;
    }
    return restarting ? "restarting" : starting ? "starting" : "running";
}

/*
 * Current connections per inbound service, over every worker and generation:
 * "connections_by_service" in the status, "connections" in each port row.
 */
static void conntab_status(const struct conntab *t, json_t *root, json_t *ports)
{
    json_t *by = json_object();
    for (size_t i = 0; i < conntab_n_services(t); i++)
        json_object_set_new(by, conntab_service_name(t, i),
                            json_integer(conntab_service_total(t, (unsigned)i)));
    size_t i;
    json_t *row;
    json_array_foreach(ports, i, row)
    {
        json_t *n = json_object_get(by, json_string_value(json_object_get(row, "service")));
        if (n && json_object_get(row, "max_connections"))
            json_object_set(row, "connections", n);
    }
    json_object_set_new(root, "connections_by_service", by);
}

static json_t *status_build(struct sup *s)
{
    int64_t now = monotonic_ms();
    json_t *root = json_object();
    json_object_set_new(root, "ok", json_true());
    json_object_set_new(root, "pid", json_integer(getpid()));
    json_object_set_new(root, "uptime", json_integer((now - s->started_ms) / 1000));
    json_object_set_new(root, "generation", json_integer(s->generation));
    json_object_set_new(root, "reloads", json_integer(s->reloads));
    json_object_set_new(root, "config", s->config_path ? json_string(s->config_path) : json_null());
    json_object_set_new(root, "data_directory", json_string(s->cfg->data_directory));
    json_t *comps = json_array(), *states = json_object();
    for (size_t c = 0; c < n_components; c++) {
        const struct component_def *d = components[c];
        const char *state = component_state(s, d);
        json_object_set_new(states, d->name, json_string(state));
        json_t *o = json_object(), *procs = json_array();
        json_object_set_new(o, "name", json_string(d->name));
        json_object_set_new(o, "exchange_name", json_string(d->exchange_name));
        json_object_set_new(o, "job", json_string(d->job));
        json_object_set_new(o, "state", json_string(state));
        json_int_t restarts = 0, conns = 0, uptime = -1;
        const char *last_exit = NULL;
        for (size_t i = 0; i < s->n_procs; i++) {
            const struct proc *p = s->procs[i];
            if (p->def != d)
                continue;
            json_t *pj = proc_json(p, now);
            conns += json_integer_value(json_object_get(pj, "connections"));
            json_array_append_new(procs, pj);
            if (!proc_is_current(p))
                continue;
            restarts += p->restarts;
            if (p->last_exit[0])
                last_exit = p->last_exit;
            json_int_t up = p->pid ? (now - p->started_ms) / 1000 : 0;
            if (uptime < 0 || up < uptime)
                uptime = up;
        }
        json_object_set_new(o, "restarts", json_integer(restarts));
        json_object_set_new(o, "connections", json_integer(conns));
        json_object_set_new(o, "uptime", json_integer(uptime < 0 ? 0 : uptime));
        json_object_set_new(o, "last_exit", last_exit ? json_string(last_exit) : json_null());
        json_object_set_new(o, "processes", procs);
        json_array_append_new(comps, o);
    }
    json_object_set_new(root, "components", comps);
    json_t *ports = portmap_json(s->cfg, &s->listeners, states);
    if (s->conntab)
        conntab_status(s->conntab, root, ports);
    json_object_set_new(root, "ports", ports);
    json_decref(states);
    return root;
}

static void query_finish(struct status_query *q)
{
    struct sup *s = q->sup;
    for (struct status_query **pp = &s->queries; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    event_free(q->timer);
    json_t *st = status_build(s);
    sup_status_fn done = q->done;
    void *arg = q->arg;
    free(q);
    done(arg, st);
    json_decref(st);
}

static void queries_check(struct sup *s)
{
    struct status_query *q = s->queries;
    while (q) {
        struct status_query *next = q->next;
        if (query_complete(q))
            query_finish(q);
        q = next;
    }
}

static void query_timeout(evutil_socket_t fd, short what, void *arg)
{
    query_finish(arg);
}

struct status_query *sup_status_query(struct sup *s, sup_status_fn done, void *arg)
{
    struct status_query *q = xcalloc(1, sizeof(*q));
    q->sup = s;
    q->seq = ++s->status_seq;
    q->done = done;
    q->arg = arg;
    q->next = s->queries;
    s->queries = q;
    size_t asked = 0;
    for (size_t i = 0; i < s->n_procs; i++) {
        struct proc *p = s->procs[i];
        if (p->pid != 0 && p->ch != NULL && p->hello) {
            ipc_channel_send(p->ch, IPC_STATUS_REQUEST, NULL, 0);
            asked++;
        }
    }
    /* Completion is only ever signalled from the loop, never inside this call. */
    q->timer = evtimer_new(s->base, query_timeout, q);
    struct timeval tv = clock_timeval_ms(asked ? STATUS_REPLY_TIMEOUT_MS : 0);
    evtimer_add(q->timer, &tv);
    return q;
}

void sup_status_cancel(struct sup *s, struct status_query *q)
{
    for (struct status_query **pp = &s->queries; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            event_free(q->timer);
            free(q);
            return;
        }
    }
}

/* ---- the bus ---- */

void sup_relay_event(struct sup *s, const struct proc *from, const void *payload, size_t len,
                     const char *who)
{
    struct ipc_event ev;
    const char *why;
    if (ipc_event_decode(payload, len, &ev, &why) != 0) {
        log_warning("%s: malformed event dropped: %s", who, why);
        return;
    }
    size_t relayed = 0;
    for (size_t i = 0; i < s->n_procs; i++) {
        struct proc *p = s->procs[i];
        if (p != from && p->pid != 0 && p->ch != NULL && p->hello &&
            ipc_subscriptions_match(&p->subs, &ev)) {
            ipc_channel_send(p->ch, IPC_EVENT, payload, len);
            relayed++;
        }
    }
    log_debug("%s: %s event relayed to %zu processes", who, ipc_event_type_name(ev.type), relayed);
    ipc_event_clear(&ev);
}

/* ---- one child's control channel ---- */

/* The whole status (what `wharf status --json` prints) for every id the process asked with. */
static void proc_status_all_done(void *arg, json_t *status)
{
    struct proc *p = arg;
    p->all_query = NULL;
    char *text = json_dumps(status, JSON_COMPACT);
    for (size_t i = 0; p->ch != NULL && i < p->n_all_ids; i++) {
        struct buf b = BUF_INIT;
        ipc_put_u64(&b, p->all_ids[i]);
        ipc_put_str(&b, text);
        ipc_channel_send(p->ch, IPC_STATUS_ALL, b.data, b.len);
        buf_free(&b);
    }
    free(text);
    free(p->all_ids);
    p->all_ids = NULL;
    p->n_all_ids = 0;
}

static void proc_status_all_request(struct proc *p, struct ipc_reader *r)
{
    uint64_t id = ipc_get_u64(r);
    if (!ipc_reader_done(r) || p->n_all_ids >= 64) {
        log_warning("%s (pid %ld): malformed or too many status requests", p->def->name,
                    (long)p->pid);
        return;
    }
    p->all_ids = xreallocarray(p->all_ids, p->n_all_ids + 1, sizeof(*p->all_ids));
    p->all_ids[p->n_all_ids++] = id;
    if (p->all_query == NULL)
        p->all_query = sup_status_query(p->sup, proc_status_all_done, p);
}

static void proc_status_all_forget(struct proc *p)
{
    if (p->all_query)
        sup_status_cancel(p->sup, p->all_query);
    p->all_query = NULL;
    free(p->all_ids);
    p->all_ids = NULL;
    p->n_all_ids = 0;
}

/* ---- the admin API: requests of the http worker, run by admin.c ---- */

static void proc_admin_unlink(struct proc_admin *w)
{
    for (struct proc_admin **pp = &w->proc->admins; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
}

static void proc_admin_done(void *arg, json_t *reply)
{
    struct proc_admin *w = arg;
    struct proc *p = w->proc;
    char *text = json_dumps(reply, JSON_COMPACT);
    if (p->ch != NULL) {
        struct buf b = BUF_INIT;
        ipc_put_u64(&b, w->id);
        ipc_put_str(&b, text);
        ipc_channel_send(p->ch, IPC_ADMIN_REPLY, b.data, b.len);
        buf_free(&b);
    }
    free(text);
    /* One line per change an admin made or tried, as the wharf command's own lines. */
    log_info("admin api: %s: status %lld", w->what,
             (long long)json_integer_value(json_object_get(reply, "status")));
    proc_admin_unlink(w);
    free(w->what);
    free(w);
}

/* "user=<U> METHOD /admin/a/b" of a request, for the log (the JSON's strings, not trusted). */
static char *admin_what(struct slice req)
{
    json_error_t jerr;
    json_t *j = json_loadb(req.ptr, req.len, 0, &jerr);
    const char *user = json_string_value(json_object_get(j, "user"));
    const char *method = json_string_value(json_object_get(j, "method"));
    struct buf b = BUF_INIT;
    buf_printf(&b, "user=<%s> %s /admin", user ? user : "?", method ? method : "?");
    size_t i;
    json_t *seg;
    json_array_foreach(json_object_get(j, "path"), i, seg)
    {
        const char *s = json_string_value(seg);
        buf_printf(&b, "/%s", s ? s : "?");
    }
    json_decref(j);
    for (size_t k = 0; k < b.len; k++) /* one log line, whatever the names hold */
        if ((unsigned char)b.data[k] < 0x20 || b.data[k] == 0x7f)
            b.data[k] = '?';
    return buf_steal(&b, NULL);
}

static void proc_admin_request(struct proc *p, struct ipc_reader *r)
{
    uint64_t id = ipc_get_u64(r);
    struct slice req = ipc_get_bytes(r);
    /* Only the http worker serves /admin; any other asker is a bug or an intruder. */
    if (!ipc_reader_done(r) || strcmp(p->def->name, "http") != 0) {
        log_warning("%s (pid %ld): malformed or unexpected admin request refused", p->def->name,
                    (long)p->pid);
        return;
    }
    struct proc_admin *w = xcalloc(1, sizeof(*w));
    w->proc = p;
    w->id = id;
    w->what = admin_what(req);
    w->next = p->admins;
    p->admins = w;
    struct sup_admin_job *j = sup_admin_run(p->sup, req.ptr, req.len, proc_admin_done, w);
    if (j != NULL) /* NULL: already answered (and w freed) */
        w->job = j;
}

/* The asker is gone: the helpers finish their work, nobody hears the answers. */
static void proc_admin_forget(struct proc *p)
{
    while (p->admins) {
        struct proc_admin *w = p->admins;
        p->admins = w->next;
        sup_admin_cancel(w->job);
        free(w->what);
        free(w);
    }
}

static void proc_on_frame(void *arg, const struct ipc_frame *f)
{
    struct proc *p = arg;
    struct ipc_reader r;
    ipc_reader_init(&r, f->payload, f->len);
    switch (f->type) {
    case IPC_HELLO: {
        struct slice name = ipc_get_bytes(&r);
        uint64_t pid = ipc_get_u64(&r);
        if (!ipc_reader_done(&r) || !slice_eq(name, slice_from_cstr(p->def->name)) ||
            pid != (uint64_t)p->pid) {
            log_error("%s (pid %ld): bad hello; closing its control channel", p->def->name,
                      (long)p->pid);
            ipc_channel_free(p->ch);
            p->ch = NULL;
            return;
        }
        p->hello = true;
        log_debug("%s (worker %u/%u, pid %ld) is ready", p->def->name, p->index + 1, p->n,
                  (long)p->pid);
        break;
    }
    case IPC_STATUS: {
        json_error_t jerr;
        json_t *j = json_loadb(f->payload, f->len, 0, &jerr);
        if (!json_is_object(j)) {
            log_warning("%s (pid %ld): status is not a JSON object", p->def->name, (long)p->pid);
            json_decref(j);
            j = NULL;
        }
        json_decref(p->status);
        p->status = j;
        p->status_seq = p->sup->status_seq;
        queries_check(p->sup);
        break;
    }
    case IPC_EVENT:
        sup_relay_event(p->sup, p, f->payload, f->len, p->def->name);
        break;
    case IPC_STATUS_ALL_REQUEST:
        proc_status_all_request(p, &r);
        break;
    case IPC_ADMIN_REQUEST:
        proc_admin_request(p, &r);
        break;
    case IPC_SUBSCRIBE: {
        const char *why;
        if (ipc_subscriptions_apply(&p->subs, f->payload, f->len, &why) != 0)
            log_warning("%s (pid %ld): malformed subscription ignored: %s", p->def->name,
                        (long)p->pid, why);
        break;
    }
    default:
        log_warning("%s (pid %ld): unexpected frame type %u", p->def->name, (long)p->pid, f->type);
        break;
    }
}

static void proc_on_close(void *arg)
{
    struct proc *p = arg;
    ipc_channel_free(p->ch);
    p->ch = NULL;
    proc_status_all_forget(p);
    proc_admin_forget(p);
    queries_check(p->sup);
}

/* ---- starting and stopping processes ---- */

void sup_child_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
}

size_t sup_config_argv(const struct sup *s, char **argv, size_t a)
{
    if (s->config_path) {
        argv[a++] = "-c";
        argv[a++] = (char *)s->config_path;
    }
    for (size_t i = 0; i < s->n_assignments; i++) {
        argv[a++] = "-o";
        argv[a++] = s->assignments[i];
    }
    return a;
}

static void child_exec(struct proc *p, int ctl_fd)
{
    struct sup *s = p->sup;
    sup_child_signals();
    /* What a component writes under DATA (store, spool, directory) is the wharf user's alone. */
    umask(077);
    /* Lay out fds: 3 = control, 4.. = this component's listeners (base/component.h). */
    size_t n = s->listeners.n;
    int *srcs = xcalloc(n + 1, sizeof(int));
    /* Move sources above the target range first so that dup2 never clobbers one. */
    int ctl = fcntl(ctl_fd, F_DUPFD_CLOEXEC, 100);
    int tab = p->slot >= 0 ? fcntl(conntab_fd(s->conntab), F_DUPFD_CLOEXEC, 100) : -1;
    for (size_t i = 0; i < n; i++)
        srcs[i] = s->listeners.v[i].service->component == p->def
                      ? fcntl(s->listeners.v[i].fd, F_DUPFD_CLOEXEC, 100)
                      : -1;
    if (ctl < 0 || dup2(ctl, COMPONENT_CONTROL_FD) < 0)
        _exit(EX_OSERR);
    struct buf env = BUF_INIT;
    int next = COMPONENT_FIRST_LISTENER_FD;
    for (size_t i = 0; i < n; i++) {
        if (srcs[i] < 0)
            continue;
        if (dup2(srcs[i], next) < 0)
            _exit(EX_OSERR);
        buf_printf(&env, "%s%s=%d", env.len ? "," : "", s->listeners.v[i].service->name, next);
        next++;
    }
    setenv(COMPONENT_LISTENERS_ENV, buf_cstr(&env), 1);
    unsetenv(COMPONENT_CONNTAB_ENV);
    if (tab >= 0 && dup2(tab, next) >= 0) {
        buf_reset(&env);
        buf_printf(&env, "%d/%d", next, p->slot);
        setenv(COMPONENT_CONNTAB_ENV, buf_cstr(&env), 1);
    }
    if (s->foreground)
        setenv("WHARF_LOG_STDERR", "1", 1);
    else
        unsetenv("WHARF_LOG_STDERR");
    char worker[32];
    snprintf(worker, sizeof(worker), "%u/%u", p->index, p->n);
    char **argv = xcalloc(8 + 2 * s->n_assignments, sizeof(char *));
    size_t a = 0;
    argv[a++] = "wharfd";
    argv[a++] = "--component";
    argv[a++] = (char *)p->def->name;
    argv[a++] = "--worker";
    argv[a++] = worker;
    a = sup_config_argv(s, argv, a);
    argv[a] = NULL;
    execv(s->self_exe, argv);
    _exit(EX_OSERR);
}

static void proc_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    proc_start(arg);
}

static void proc_schedule_restart(struct proc *p, int64_t delay_ms)
{
    struct timeval tv = clock_timeval_ms(delay_ms);
    evtimer_add(p->restart_ev, &tv);
}

static void proc_start(struct proc *p)
{
    struct sup *s = p->sup;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_error("socketpair for %s: %s; retrying", p->def->name, strerror(errno));
        proc_schedule_restart(p, RESTART_BACKOFF_MIN_MS);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork for %s: %s; retrying", p->def->name, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        proc_schedule_restart(p, RESTART_BACKOFF_MIN_MS);
        return;
    }
    if (pid == 0) {
        close(sv[0]);
        child_exec(p, sv[1]);
    }
    close(sv[1]);
    p->pid = pid;
    p->hello = false;
    ipc_subscriptions_free(&p->subs); /* a new process asks anew */
    p->started_ms = monotonic_ms();
    json_decref(p->status);
    p->status = NULL;
    p->ch = ipc_channel_new(s->base, sv[0], (size_t)s->cfg->ipc_max_frame, proc_on_frame,
                            proc_on_close, p);
    log_info("started %s (worker %u/%u), pid %ld", p->def->name, p->index + 1, p->n, (long)pid);
}

static void proc_kill_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proc *p = arg;
    if (p->pid != 0) {
        log_warning("%s (pid %ld) did not finish by its deadline; killing it", p->def->name,
                    (long)p->pid);
        kill(p->pid, SIGKILL);
    }
}

/* Asks a process to stop accepting and drain by deadline; kills it after that. */
static void proc_retire(struct proc *p, int64_t deadline_ms)
{
    p->retiring = true;
    evtimer_del(p->restart_ev);
    if (p->pid == 0)
        return;
    if (p->ch != NULL && p->hello) {
        struct buf b = BUF_INIT;
        ipc_put_u64(&b, (uint64_t)deadline_ms);
        ipc_channel_send(p->ch, IPC_SHUTDOWN, b.data, b.len);
        buf_free(&b);
    } else {
        kill(p->pid, SIGTERM);
    }
    struct timeval tv = clock_timeval_ms(deadline_ms - monotonic_ms() + KILL_GRACE_MS);
    evtimer_add(p->kill_ev, &tv);
}

static bool serves_inbound(const struct component_def *d)
{
    for (size_t i = 0; i < n_services; i++) {
        if (services[i].component == d && services[i].direction == SERVICE_INBOUND)
            return true;
    }
    return false;
}

static struct proc *proc_new(struct sup *s, const struct component_def *d, unsigned index,
                             unsigned n)
{
    struct proc *p = xcalloc(1, sizeof(*p));
    p->sup = s;
    p->def = d;
    p->index = index;
    p->n = n;
    p->generation = s->generation;
    p->slot = -1;
    if (s->conntab && serves_inbound(d)) {
        p->slot = conntab_slot_claim(s->conntab);
        if (p->slot < 0)
            log_warning("%s (worker %u/%u): the connection table is full; this process counts "
                        "its connection limits alone",
                        d->name, index + 1, n);
    }
    p->backoff_ms = RESTART_BACKOFF_MIN_MS;
    p->restart_ev = evtimer_new(s->base, proc_restart_cb, p);
    p->kill_ev = evtimer_new(s->base, proc_kill_cb, p);
    s->procs = xreallocarray(s->procs, s->n_procs + 1, sizeof(*s->procs));
    s->procs[s->n_procs++] = p;
    return p;
}

static void proc_remove(struct proc *p)
{
    struct sup *s = p->sup;
    for (size_t i = 0; i < s->n_procs; i++) {
        if (s->procs[i] == p) {
            memmove(&s->procs[i], &s->procs[i + 1], (s->n_procs - i - 1) * sizeof(*s->procs));
            s->n_procs--;
            break;
        }
    }
    if (p->slot >= 0)
        conntab_slot_release(s->conntab, (unsigned)p->slot);
    ipc_channel_free(p->ch);
    event_free(p->restart_ev);
    event_free(p->kill_ev);
    json_decref(p->status);
    ipc_subscriptions_free(&p->subs);
    proc_status_all_forget(p);
    proc_admin_forget(p);
    free(p);
}

/* Creates and starts one generation: every process of every enabled component. */
static void generation_start(struct sup *s)
{
    for (size_t c = 0; c < n_components; c++) {
        const struct component_def *d = components[c];
        if (!component_enabled(s->cfg, d))
            continue;
        unsigned nw = component_worker_count(s->cfg, d);
        for (unsigned w = 0; w < nw; w++)
            proc_start(proc_new(s, d, w, nw));
    }
}

static void describe_exit(int status, char *out, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(out, len, "killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
}

static void proc_exited(struct proc *p, int status)
{
    struct sup *s = p->sup;
    char why[128];
    describe_exit(status, why, sizeof(why));
    pid_t pid = p->pid;
    p->pid = 0;
    p->hello = false;
    ipc_channel_free(p->ch);
    p->ch = NULL;
    evtimer_del(p->kill_ev);
    /* Its connections died with it: the places they held are free at once. */
    if (p->slot >= 0)
        conntab_slot_clear(s->conntab, (unsigned)p->slot);
    if (p->retiring || s->stopping) {
        log_info("%s (worker %u/%u, pid %ld) stopped: %s", p->def->name, p->index + 1, p->n,
                 (long)pid, why);
        proc_remove(p);
        return;
    }
    /* A process that ran for a good while before dying starts the back-off afresh. */
    if (monotonic_ms() - p->started_ms > s->cfg->restart_backoff_max)
        p->backoff_ms = RESTART_BACKOFF_MIN_MS;
    snprintf(p->last_exit, sizeof(p->last_exit), "pid %ld %s", (long)pid, why);
    log_warning("%s (worker %u/%u, pid %ld) %s; restarting in %lldms", p->def->name, p->index + 1,
                p->n, (long)pid, why, (long long)p->backoff_ms);
    p->restarts++;
    proc_schedule_restart(p, p->backoff_ms);
    p->backoff_ms *= 2;
    if (p->backoff_ms > s->cfg->restart_backoff_max)
        p->backoff_ms = s->cfg->restart_backoff_max;
}

static bool any_alive(const struct sup *s)
{
    for (size_t i = 0; i < s->n_procs; i++) {
        if (s->procs[i]->pid != 0)
            return true;
    }
    return false;
}

static void reap(struct sup *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < s->n_procs; i++) {
            if (s->procs[i]->pid == pid) {
                proc_exited(s->procs[i], status);
                break;
            }
        }
    }
    queries_check(s);
    if (s->stopping && !any_alive(s))
        event_base_loopexit(s->base, NULL);
}

/* ---- reload and shutdown ---- */

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static int sup_reload_config(struct sup *s, struct buf *err);

/* systemd hears RELOADING=1, then READY=1 whether the new configuration took or not. */
int sup_reload(struct sup *s, struct buf *err)
{
    if (!s->stopping)
        sdnotify_reloading();
    int r = sup_reload_config(s, err);
    if (!s->stopping)
        sdnotify("READY=1\nSTATUS=%s generation %u, %zu processes",
                 r == 0 ? "running" : "reload failed, kept", s->generation, s->n_procs);
    return r;
}

static int sup_reload_config(struct sup *s, struct buf *err)
{
    if (s->stopping) {
        buf_printf(err, "wharfd is stopping");
        return -1;
    }
    struct wharf_config *cfg = xcalloc(1, sizeof(*cfg));
    int r = config_read(cfg, s->config_path, s->assignments, s->n_assignments, err);
    if (r == 0) {
        static const struct {
            int id;
            const char *name;
        } fixed[] = {{OPTID_data_directory, "data_directory"},
                     {OPTID_control_socket, "control_socket"},
                     {OPTID_pid_file, "pid_file"},
                     {OPTID_wharf_user, "wharf_user"}};
        for (size_t i = 0; r == 0 && i < sizeof(fixed) / sizeof(fixed[0]); i++) {
            const struct config_option *o = &config_options[fixed[i].id];
            const char *a = *(char *const *)config_value(s->cfg, o);
            const char *b = *(char *const *)config_value(cfg, o);
            if (!same_str(a, b)) {
                buf_printf(err, "%s cannot change on reload; restart wharfd", fixed[i].name);
                r = -1;
            }
        }
    }
    if (r == 0)
        r = services_check_config(cfg, err);
    if (r == 0)
        r = tlsgen_ensure(cfg, err);
    struct listener_set fresh = {0};
    if (r == 0)
        r = listeners_rebind(cfg, &s->listeners, &fresh, err);
    if (r != 0) {
        config_free(cfg);
        free(cfg);
        return -1;
    }
    listeners_close_all(&s->listeners); /* those not reused; the old workers hold their own */
    s->listeners = fresh;
    config_free(s->cfg);
    free(s->cfg);
    s->cfg = cfg;
    log_set_debug(cfg->log_debug);

    int64_t deadline = monotonic_ms() + cfg->shutdown_timeout;
    size_t n_old = s->n_procs;
    struct proc **old = xmemdup(s->procs, n_old * sizeof(*old));
    for (size_t i = 0; i < n_old; i++) {
        if (old[i]->pid == 0) {
            evtimer_del(old[i]->restart_ev);
            proc_remove(old[i]);
        } else if (!old[i]->retiring) {
            proc_retire(old[i], deadline);
        }
    }
    free(old);
    s->generation++;
    s->reloads++;
    generation_start(s);
    log_info("reloaded configuration (generation %u); old processes drain until %llds from now",
             s->generation, (long long)(cfg->shutdown_timeout / 1000));
    return 0;
}

static void sup_stop(struct sup *s, const char *why)
{
    if (s->stopping)
        return;
    s->stopping = true;
    sdnotify("STOPPING=1\nSTATUS=stopping: sessions finish within %llds",
             (long long)(s->cfg->shutdown_timeout / 1000));
    sdnotify_watchdog_stop();
    log_info("%s: stopping; sessions may finish within %lldms", why,
             (long long)s->cfg->shutdown_timeout);
    listeners_close_all(&s->listeners);
    int64_t deadline = monotonic_ms() + s->cfg->shutdown_timeout;
    size_t n = s->n_procs;
    struct proc **all = xmemdup(s->procs, n * sizeof(*all));
    for (size_t i = 0; i < n; i++) {
        if (all[i]->pid == 0)
            proc_remove(all[i]);
        else
            proc_retire(all[i], deadline);
    }
    free(all);
    if (!any_alive(s))
        event_base_loopexit(s->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct sup *s = arg;
    switch (sig) {
    case SIGCHLD:
        reap(s);
        break;
    case SIGHUP: {
        struct buf err = BUF_INIT;
        log_info("SIGHUP: rereading %s", s->config_path ? s->config_path : "embedded defaults");
        if (sup_reload(s, &err) != 0)
            log_error("reload failed, keeping the running configuration: %s", buf_cstr(&err));
        buf_free(&err);
        break;
    }
    default:
        sup_stop(s, sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
}

/* Creates the connection table the workers share; without one, each counts alone. */
static void conntab_open(struct sup *s)
{
    const char *names[CONNTAB_MAX_SERVICES];
    size_t n = 0;
    unsigned procs = 0;
    for (size_t i = 0; i < n_services && n < CONNTAB_MAX_SERVICES; i++) {
        if (services[i].direction == SERVICE_INBOUND)
            names[n++] = services[i].name;
    }
    for (size_t c = 0; c < n_components; c++) {
        if (serves_inbound(components[c]))
            procs += component_worker_count(s->cfg, components[c]);
    }
    unsigned slots = procs * CONNTAB_SLOTS_PER_PROC;
    slots = slots < CONNTAB_MIN_SLOTS ? CONNTAB_MIN_SLOTS : slots;
    slots = slots > CONNTAB_MAX_SLOTS ? CONNTAB_MAX_SLOTS : slots;
    struct buf err = BUF_INIT;
    s->conntab = conntab_create(slots, names, n, &err);
    if (s->conntab == NULL)
        log_error("%s; each worker counts its connection limits alone", buf_cstr(&err));
    buf_free(&err);
}

int sup_run(struct sup *s)
{
    s->started_ms = monotonic_ms();
    signal(SIGPIPE, SIG_IGN);
    int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};
    struct event *evs[4];
    for (size_t i = 0; i < 4; i++) {
        evs[i] = evsignal_new(s->base, sigs[i], on_signal, s);
        evsignal_add(evs[i], NULL);
    }
    conntab_open(s);
    generation_start(s);
    /* A child that died before the handler was in place would go unnoticed. */
    reap(s);
    /* Every listener is bound, so clients are queued from here on. */
    sdnotify("READY=1\nMAINPID=%ld\nSTATUS=running generation %u, %zu processes", (long)getpid(),
             s->generation, s->n_procs);
    sdnotify_watchdog_start(s->base);
    event_base_dispatch(s->base);
    sdnotify_watchdog_stop();
    for (size_t i = 0; i < 4; i++)
        event_free(evs[i]);
    while (s->queries)
        query_finish(s->queries);
    while (s->n_procs)
        proc_remove(s->procs[0]);
    sup_admin_stop_all(s); /* after the processes: their waits cancel the jobs first */
    free(s->procs);
    conntab_free(s->conntab);
    s->conntab = NULL;
    log_info("stopped");
    return 0;
}
