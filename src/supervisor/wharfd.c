/*
 * wharfd.c - the supervisor (System Attendant): start-up and shut-down.
 *
 * Started as root, it reads the configuration, prepares DATA_DIRECTORY (and
 * the wharf user), makes the self-signed certificate on first start, opens
 * the control socket, binds every listener of the services table, and then
 * runs the supervision loop (supervise.c) until SIGTERM. Every start-up
 * failure is reported on stderr before it daemonizes, with a sysexits code.
 * `wharfd --component NAME` is the other half of this multi-call binary
 * (child.c). wharfd itself never reads from the network.
 */
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/fdio.h"
#include "base/installdirs.h"
#include "base/log.h"
#include "supervisor/child.h"
#include "supervisor/portmap.h"
#include "supervisor/sdnotify.h"
#include "supervisor/services.h"
#include "supervisor/supervise.h"
#include "supervisor/tlsgen.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: wharfd [-f|-D] [-c FILE] [-o name=value ...]\n"
                    "  -f   stay in the foreground and log to stderr\n"
                    "  -D   stay in the foreground and log to syslog (systemd)\n"
                    "  -c   configuration file (default: /etc/wharf/wharf.conf for an\n"
                    "       installed wharfd, else the embedded defaults)\n"
                    "  -o   override one option\n");
    exit(EX_USAGE);
}

static void __attribute__((noreturn)) die(int code, const char *msg)
{
    fprintf(stderr, "wharfd: %s\n", msg);
    if (log_get_target() == LOG_TO_SYSLOG)
        log_error("%s", msg);
    exit(code);
}

/*
 * Detaches from the terminal. The parent waits until the daemon says it is
 * up (daemon_ready: the pid file is written), so that whoever started wharfd
 * (a script, an init system) finds the pid file when the command returns.
 */
static int ready_fd = -1;

static void daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die(EX_OSERR, "pipe failed");
    pid_t pid = fork();
    if (pid < 0)
        die(EX_OSERR, "fork failed");
    if (pid > 0) {
        close(p[1]);
        char c;
        _exit(fd_read_exact(p[0], &c, 1) == 0 ? 0 : EX_OSERR);
    }
    close(p[0]);
    ready_fd = p[1];
    setsid();
    pid = fork();
    if (pid < 0)
        die(EX_OSERR, "fork failed");
    if (pid > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
}

/* Lets the parent of daemonize() exit 0. */
static void daemon_ready(void)
{
    if (ready_fd < 0)
        return;
    ssize_t n = write(ready_fd, "1", 1);
    (void)n;
    close(ready_fd);
    ready_fd = -1;
}

static int write_pid_file(const char *path)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    return datadir_write_file(path, text, (size_t)n, 0644);
}

/*
 * The folder of the pid file and the control socket, when they live outside
 * DATA/run (an installed wharf.conf puts them in /run/wharf, a tmpfs that
 * starts empty at boot): created root-owned, group wharf_user, mode 0750, so
 * that members of the group can reach the control socket.
 */
static int run_dir_prepare(const struct wharf_config *cfg, const char *file, struct buf *err)
{
    char *dir = xstrdup(file);
    char *slash = strrchr(dir, '/');
    int r = 0;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0750) == 0) {
            uid_t uid;
            gid_t gid;
            if (geteuid() == 0 && datadir_wharf_ids(cfg, &uid, &gid) && chown(dir, 0, gid) != 0)
                log_warning("cannot chown %s: %s", dir, strerror(errno));
        } else if (errno != EEXIST) {
            buf_printf(err, "cannot create %s: %s", dir, strerror(errno));
            r = -1;
        }
    }
    free(dir);
    return r;
}

/* Prints the port map of what was just bound (the `make run` greeting). */
static void print_port_map(struct sup *s)
{
    json_t *states = json_object();
    for (size_t i = 0; i < n_components; i++)
        json_object_set_new(
            states, components[i]->name,
            json_string(component_enabled(s->cfg, components[i]) ? "starting" : "disabled"));
    json_t *rows = portmap_json(s->cfg, &s->listeners, states);
    struct buf out = BUF_INIT;
    buf_printf(&out, "Wharf %s on %s, data in %s, control socket %s\n", WHARF_VERSION,
               s->cfg->myhostname, s->cfg->data_directory, s->cfg->control_socket);
    portmap_format_table(rows, &out);
    fwrite(out.data, 1, out.len, stdout);
    fflush(stdout);
    buf_free(&out);
    json_decref(rows);
    json_decref(states);
}

int main(int argc, char **argv)
{
    component_title_init(argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--component") == 0)
            child_run(argc, argv);
    }
    static struct sup sup;
    char **assignments = xcalloc((size_t)argc, sizeof(char *));
    size_t n_assign = 0;
    const char *config_arg = NULL;
    bool foreground = false, no_detach = false;
    int c;
    while ((c = getopt(argc, argv, "fDc:o:h")) != -1) {
        switch (c) {
        case 'f':
            foreground = true;
            break;
        case 'D':
            no_detach = true;
            break;
        case 'c':
            config_arg = optarg;
            break;
        case 'o':
            assignments[n_assign++] = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    if (config_arg == NULL)
        config_arg = installdirs_default_config();
    sdnotify_init();
    log_init("wharfd", foreground ? LOG_TO_STDERR : LOG_TO_SYSLOG);
    struct wharf_config *cfg = xcalloc(1, sizeof(*cfg));
    struct buf err = BUF_INIT;
    if (config_read(cfg, config_arg, assignments, n_assign, &err) != 0 ||
        services_check_config(cfg, &err) != 0)
        die(EX_CONFIG, buf_cstr(&err));
    log_set_debug(cfg->log_debug);

    char *config_path = NULL;
    if (config_arg && (config_path = realpath(config_arg, NULL)) == NULL)
        die(EX_CONFIG, "cannot resolve the configuration file's path");
    ssize_t n = readlink("/proc/self/exe", sup.self_exe, sizeof(sup.self_exe) - 1);
    if (n <= 0)
        die(EX_OSERR, "cannot find own executable in /proc/self/exe");
    sup.self_exe[n] = '\0';
    sup.cfg = cfg;
    sup.config_path = config_path;
    sup.assignments = assignments;
    sup.n_assignments = n_assign;
    sup.foreground = foreground;

    if (datadir_prepare(cfg, &err) != 0)
        die(EX_CANTCREAT, buf_cstr(&err));
    if (tlsgen_ensure(cfg, &err) != 0)
        die(EX_CONFIG, buf_cstr(&err));
    if (run_dir_prepare(cfg, cfg->pid_file, &err) != 0 ||
        run_dir_prepare(cfg, cfg->control_socket, &err) != 0)
        die(EX_CANTCREAT, buf_cstr(&err));
    sup.base = event_base_new();
    if (sup.base == NULL)
        die(EX_OSERR, "cannot create the event loop");
    if (ctlsock_open(&sup, &err) != 0)
        die(EX_UNAVAILABLE, buf_cstr(&err));
    if (listeners_bind_all(cfg, &sup.listeners, &err) != 0) {
        ctlsock_close(&sup);
        die(EX_UNAVAILABLE, buf_cstr(&err));
    }
    if (foreground) {
        print_port_map(&sup);
    } else if (!no_detach) {
        daemonize();
        if (event_reinit(sup.base) != 0)
            log_fatal(EX_OSERR, "cannot re-initialise the event loop after fork");
    }
    /* the title before the pid file and the ready signal: whoever reads the pid
     * file once the command returned finds the process already named */
    component_title_set("wharfd", "wharfd: supervisor");
    if (write_pid_file(cfg->pid_file) != 0)
        log_warning("cannot write pid file %s: %s", cfg->pid_file, strerror(errno));
    daemon_ready();
    log_info("wharfd %s starting, data in %s", WHARF_VERSION, cfg->data_directory);

    int rc = sup_run(&sup);

    ctlsock_close(&sup);
    listeners_close_all(&sup.listeners);
    unlink(sup.cfg->pid_file);
    config_free(sup.cfg);
    free(sup.cfg);
    event_base_free(sup.base);
    free(config_path);
    free(assignments);
    buf_free(&err);
    return rc;
}
