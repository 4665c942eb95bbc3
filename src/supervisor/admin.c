/*
 * admin.c - wharfd's side of the admin API (doc/admin-api.md): runs one
 * request of the http worker as `wharf-admin api`, the wharf command's own
 * code, in a child process, and hands back what it printed.
 *
 * The http worker is unprivileged and sandboxed: it may not open the
 * directory or the credentials, nor exec anything. wharfd, root, starts the
 * wharf command exactly as an admin's shell would (no shell: execv with a
 * fixed argv; the request goes on stdin, never on the command line), so one
 * implementation serves `wharf` and `/admin`, with the command's own
 * privilege drop. The child runs beside the loop: wharfd never waits on it
 * (pipes on the event loop, a deadline, SIGCHLD reaps it with the rest).
 *
 * Must never: block the loop, put request bytes in argv, run more than
 * ADMIN_MAX_JOBS helpers at once, or keep reading a helper past its deadline.
 */
#include "base/alloc.h"
#include "base/clock.h"
#include "base/installdirs.h"
#include "base/log.h"
#include "supervisor/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/* Helpers running at once; an admin API is driven by a person or a playbook, not a crowd. */
#define ADMIN_MAX_JOBS 8
/* A request that takes longer (a hash, a few SQLite writes, a status round) is stuck. */
#define ADMIN_DEADLINE_MS 60000
/* Requests are a small JSON object (the http worker caps bodies below this); fits a pipe. */
#define ADMIN_MAX_REQUEST (60 * 1024)

struct sup_admin_job {
    struct sup_admin_job *next;
    struct sup *sup;
    pid_t pid;
    int out_fd;
    struct event *read_ev, *timer;
    struct buf out;
    sup_admin_fn done; /* NULL once cancelled: the helper finishes, nobody hears */
    void *arg;
};

static void job_free(struct sup_admin_job *j)
{
    for (struct sup_admin_job **pp = &j->sup->admin_jobs; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    event_free(j->read_ev);
    event_free(j->timer);
    if (j->out_fd >= 0)
        close(j->out_fd);
    buf_free(&j->out);
    free(j);
}

static size_t jobs_running(const struct sup *s)
{
    size_t n = 0;
    for (const struct sup_admin_job *j = s->admin_jobs; j; j = j->next)
        n++;
    return n;
}

/* Answers with what the helper printed, or with a JSON error of status. */
static void job_finish(struct sup_admin_job *j, int status, const char *error)
{
    json_error_t jerr;
    json_t *reply = error ? NULL : json_loadb(j->out.data, j->out.len, 0, &jerr);
    if (!json_is_object(reply) || !json_is_integer(json_object_get(reply, "status"))) {
        json_decref(reply);
        if (error == NULL) {
            log_error("admin api: wharf-admin (pid %ld) gave no valid answer", (long)j->pid);
            error = "the admin command failed";
        }
        reply = json_pack("{s:i, s:{s:s}}", "status", status, "body", "error", error);
    }
    if (j->done)
        j->done(j->arg, reply);
    json_decref(reply);
    job_free(j);
}

static void job_readable(evutil_socket_t fd, short what, void *arg)
{
    struct sup_admin_job *j = arg;
    char tmp[16384];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0) {
        if (j->out.len + (size_t)n > (size_t)j->sup->cfg->ipc_max_frame / 2) {
            kill(j->pid, SIGKILL);
            job_finish(j, 500, "the answer is too large");
            return;
        }
        buf_append(&j->out, tmp, (size_t)n);
        return;
    }
    job_finish(j, 500, NULL); /* EOF: the helper is done */
}

static void job_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sup_admin_job *j = arg;
    log_error("admin api: wharf-admin (pid %ld) did not answer within %ds; killed", (long)j->pid,
              ADMIN_DEADLINE_MS / 1000);
    kill(j->pid, SIGKILL);
    job_finish(j, 504, "the admin command did not answer in time");
}

/* The child: stdin the request, stdout the pipe back, then the wharf command. */
static void job_exec(struct sup *s, const char *prog, int in_fd, int out_fd)
{
    sup_child_signals();
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0)
        _exit(EX_OSERR);
    char **argv = xcalloc(6 + 2 * s->n_assignments, sizeof(char *));
    size_t a = 0;
    argv[a++] = "wharf-admin";
    a = sup_config_argv(s, argv, a);
    argv[a++] = "api";
    argv[a] = NULL;
    execv(prog, argv);
    log_error("admin api: cannot run %s: %s", prog, strerror(errno));
    _exit(EX_OSERR);
}

struct sup_admin_job *sup_admin_run(struct sup *s, const char *request, size_t len,
                                    sup_admin_fn done, void *arg)
{
    json_t *busy = NULL;
    if (len > ADMIN_MAX_REQUEST)
        busy = json_pack("{s:i, s:{s:s}}", "status", 413, "body", "error", "request too large");
    else if (jobs_running(s) >= ADMIN_MAX_JOBS)
        busy = json_pack("{s:i, s:{s:s}}", "status", 503, "body", "error",
                         "too many admin requests at once; try again");
    if (busy) {
        done(arg, busy);
        json_decref(busy);
        return NULL;
    }
    struct buf prog = BUF_INIT;
    installdirs_admin_program(&prog);
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    pid_t pid = -1;
    if (pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0)
        pid = fork();
    if (pid == 0)
        job_exec(s, buf_cstr(&prog), in[0], out[1]);
    buf_free(&prog);
    if (in[0] >= 0)
        close(in[0]);
    if (out[1] >= 0)
        close(out[1]);
    if (pid < 0) {
        log_error("admin api: cannot start wharf-admin: %s", strerror(errno));
        if (in[1] >= 0)
            close(in[1]);
        if (out[0] >= 0)
            close(out[0]);
        json_t *r = json_pack("{s:i, s:{s:s}}", "status", 503, "body", "error",
                              "cannot start the admin command");
        done(arg, r);
        json_decref(r);
        return NULL;
    }
    /* Below the pipe's capacity: written whole at once, never waited on. */
    if (write(in[1], request, len) != (ssize_t)len)
        log_error("admin api: cannot hand the request to wharf-admin: %s", strerror(errno));
    close(in[1]);
    struct sup_admin_job *j = xcalloc(1, sizeof(*j));
    j->sup = s;
    j->pid = pid;
    j->out_fd = out[0];
    j->done = done;
    j->arg = arg;
    evutil_make_socket_nonblocking(j->out_fd);
    j->read_ev = event_new(s->base, j->out_fd, EV_READ | EV_PERSIST, job_readable, j);
    event_add(j->read_ev, NULL);
    j->timer = evtimer_new(s->base, job_timeout, j);
    struct timeval tv = clock_timeval_ms(ADMIN_DEADLINE_MS);
    evtimer_add(j->timer, &tv);
    j->next = s->admin_jobs;
    s->admin_jobs = j;
    return j;
}

void sup_admin_cancel(struct sup_admin_job *j)
{
    if (j != NULL)
        j->done = NULL;
}

void sup_admin_stop_all(struct sup *s)
{
    while (s->admin_jobs)
        job_free(s->admin_jobs);
}
