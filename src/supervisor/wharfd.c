/*
 * wharfd.c - the supervisor (System Attendant): binds every listener, starts
 * and watches every component.
 *
 * Started as root, it reads the configuration, binds the listeners of the
 * services table, and re-executes itself once per component process with the
 * sockets that process serves (base/component.h). It restarts a component
 * that dies, with back-off, and stops them all on SIGTERM.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "supervisor/child.h"
#include "supervisor/listeners.h"
#include "supervisor/services.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

struct proc {
    const struct component_def *def;
    unsigned index, n;
    pid_t pid;
    int control_fd; /* supervisor's end of the control socket */
    unsigned restarts;
    int64_t backoff_ms;
    int64_t next_start_ms; /* when a dead process may start again */
};

static struct {
    const struct wharf_config *cfg;
    const char *config_path;
    char **assignments;
    size_t n_assignments;
    bool foreground;
    struct listener_set listeners;
    struct proc *procs;
    size_t n_procs;
    char self_exe[4096];
} sup;

static volatile sig_atomic_t got_term, got_chld;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
    if (sig == SIGCHLD)
        got_chld = 1;
    else
        got_term = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: wharfd [-f] [-c FILE] [-o name=value ...]\n"
                    "  -f   stay in the foreground and log to stderr\n"
                    "  -c   configuration file (default: embedded defaults)\n"
                    "  -o   override one option\n");
    exit(EX_USAGE);
}

static void start_proc(struct proc *p)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        log_fatal(EX_OSERR, "socketpair: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork for %s: %s", p->def->name, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        p->next_start_ms = now_ms() + 1000;
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        /* Lay out fds: 3 = control, 4.. = this component's listeners. */
        struct buf env = BUF_INIT;
        int next = COMPONENT_FIRST_LISTENER_FD;
        int *srcs = xcalloc(sup.listeners.n + 1, sizeof(int));
        size_t n_srcs = 0;
        for (size_t i = 0; i < sup.listeners.n; i++) {
            if (sup.listeners.v[i].service->component == p->def)
                srcs[n_srcs++] = sup.listeners.v[i].fd;
        }
        /* Move sources out of the way first so dup2 never clobbers one. */
        int ctl = fcntl(sv[1], F_DUPFD, 100);
        for (size_t i = 0; i < n_srcs; i++)
            srcs[i] = fcntl(srcs[i], F_DUPFD, 100);
        dup2(ctl, COMPONENT_CONTROL_FD);
        size_t k = 0;
        for (size_t i = 0; i < sup.listeners.n; i++) {
            if (sup.listeners.v[i].service->component != p->def)
                continue;
            dup2(srcs[k++], next);
            buf_printf(&env, "%s%s=%d", env.len ? "," : "", sup.listeners.v[i].service->name,
                       next);
            next++;
        }
        setenv(COMPONENT_LISTENERS_ENV, buf_cstr(&env), 1);
        if (sup.foreground)
            setenv("WHARF_LOG_STDERR", "1", 1);
        char worker[32];
        snprintf(worker, sizeof(worker), "%u/%u", p->index, p->n);
        char **argv = xcalloc(8 + 2 * sup.n_assignments, sizeof(char *));
        size_t a = 0;
        argv[a++] = "wharfd";
        argv[a++] = "--component";
        argv[a++] = (char *)p->def->name;
        argv[a++] = "--worker";
        argv[a++] = worker;
        if (sup.config_path) {
            argv[a++] = "-c";
            argv[a++] = (char *)sup.config_path;
        }
        for (size_t i = 0; i < sup.n_assignments; i++) {
            argv[a++] = "-o";
            argv[a++] = sup.assignments[i];
        }
        argv[a] = NULL;
        execv(sup.self_exe, argv);
        _exit(EX_OSERR);
    }
    close(sv[1]);
    p->pid = pid;
    p->control_fd = sv[0];
    log_info("started %s (worker %u/%u), pid %ld", p->def->name, p->index + 1, p->n, (long)pid);
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < sup.n_procs; i++) {
            struct proc *p = &sup.procs[i];
            if (p->pid != pid)
                continue;
            close(p->control_fd);
            p->control_fd = -1;
            p->pid = 0;
            if (got_term)
                break;
            if (WIFSIGNALED(status))
                log_warning("%s (pid %ld) killed by signal %d; restarting in %lldms",
                            p->def->name, (long)pid, WTERMSIG(status), (long long)p->backoff_ms);
            else
                log_warning("%s (pid %ld) exited with status %d; restarting in %lldms",
                            p->def->name, (long)pid, WEXITSTATUS(status),
                            (long long)p->backoff_ms);
            p->restarts++;
            p->next_start_ms = now_ms() + p->backoff_ms;
            p->backoff_ms *= 2;
            if (p->backoff_ms > sup.cfg->restart_backoff_max)
                p->backoff_ms = sup.cfg->restart_backoff_max;
        }
    }
}

static int supervise(void)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (size_t i = 0; i < sup.n_procs; i++)
        start_proc(&sup.procs[i]);
    while (!got_term) {
        int64_t now = now_ms(), wait_ms = 1000;
        for (size_t i = 0; i < sup.n_procs; i++) {
            struct proc *p = &sup.procs[i];
            if (p->pid == 0 && p->next_start_ms <= now)
                start_proc(p);
            if (p->pid == 0 && p->next_start_ms - now < wait_ms)
                wait_ms = p->next_start_ms - now;
        }
        struct timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000};
        sigset_t waitset = old;
        sigdelset(&waitset, SIGCHLD);
        sigdelset(&waitset, SIGTERM);
        sigdelset(&waitset, SIGINT);
        pselect(0, NULL, NULL, NULL, &ts, &waitset);
        if (got_chld) {
            got_chld = 0;
            reap();
        }
    }
    log_info("terminating on signal");
    listeners_close_all(&sup.listeners);
    for (size_t i = 0; i < sup.n_procs; i++) {
        if (sup.procs[i].pid > 0)
            kill(sup.procs[i].pid, SIGTERM);
    }
    int64_t deadline = now_ms() + sup.cfg->shutdown_timeout;
    for (;;) {
        reap();
        bool alive = false;
        for (size_t i = 0; i < sup.n_procs; i++)
            alive |= sup.procs[i].pid > 0;
        if (!alive)
            break;
        if (now_ms() >= deadline) {
            for (size_t i = 0; i < sup.n_procs; i++) {
                if (sup.procs[i].pid > 0)
                    kill(sup.procs[i].pid, SIGKILL);
            }
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
        sigset_t waitset = old;
        sigdelset(&waitset, SIGCHLD);
        pselect(0, NULL, NULL, NULL, &ts, &waitset);
    }
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--component") == 0)
            child_run(argc, argv);
    }
    char **assignments = xcalloc((size_t)argc, sizeof(char *));
    size_t n_assign = 0;
    const char *config_path = NULL;
    bool foreground = false;
    int c;
    while ((c = getopt(argc, argv, "fc:o:h")) != -1) {
        switch (c) {
        case 'f':
            foreground = true;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'o':
            assignments[n_assign++] = optarg;
            break;
        default:
            usage();
        }
    }
    log_init("wharfd", foreground ? LOG_TO_STDERR : LOG_TO_SYSLOG);
    struct wharf_config *cfg = xcalloc(1, sizeof(*cfg));
    struct buf err = BUF_INIT;
    if (config_read(cfg, config_path, assignments, n_assign, &err) != 0) {
        fprintf(stderr, "wharfd: %s\n", buf_cstr(&err));
        return EX_CONFIG;
    }
    log_set_debug(cfg->log_debug);
    ssize_t n = readlink("/proc/self/exe", sup.self_exe, sizeof(sup.self_exe) - 1);
    if (n <= 0)
        log_fatal(EX_OSERR, "cannot find own executable: %s", strerror(errno));
    sup.self_exe[n] = '\0';
    sup.cfg = cfg;
    sup.config_path = config_path;
    sup.assignments = assignments;
    sup.n_assignments = n_assign;
    sup.foreground = foreground;

    if (mkdir(cfg->data_directory, 0750) != 0 && errno != EEXIST)
        log_fatal(EX_CANTCREAT, "cannot create data_directory %s: %s", cfg->data_directory,
                  strerror(errno));
    if (listeners_bind_all(cfg, &sup.listeners, &err) != 0) {
        fprintf(stderr, "wharfd: %s\n", buf_cstr(&err));
        return EX_UNAVAILABLE;
    }
    for (size_t i = 0; i < n_components; i++) {
        const struct component_def *d = components[i];
        if (d->main == NULL)
            continue;
        unsigned nw = component_worker_count(cfg, d);
        for (unsigned w = 0; w < nw; w++) {
            sup.procs = xreallocarray(sup.procs, sup.n_procs + 1, sizeof(*sup.procs));
            sup.procs[sup.n_procs++] = (struct proc){
                .def = d, .index = w, .n = nw, .control_fd = -1, .backoff_ms = 1000};
        }
    }
    log_info("starting with %zu component processes, data in %s", sup.n_procs,
             cfg->data_directory);
    return supervise();
}
