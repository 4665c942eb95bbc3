/*
 * component.c - helpers shared by every component process.
 */
#include "base/component.h"
#include "base/alloc.h"
#include "base/log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sysexits.h>
#include <unistd.h>

int component_listener_fd(const struct component_ctx *ctx, const char *service)
{
    for (size_t i = 0; i < ctx->n_listeners; i++) {
        if (strcmp(ctx->listeners[i].service, service) == 0)
            return ctx->listeners[i].fd;
    }
    return -1;
}

static bool limit_option(const struct wharf_config *cfg, const char *service, const char *suffix,
                         long long *v_r)
{
    struct buf name = BUF_INIT;
    buf_printf(&name, "%s%s", service, suffix);
    const struct config_option *o = config_find(buf_cstr(&name));
    buf_free(&name);
    if (o == NULL || o->type != CONFIG_INT)
        return false;
    *v_r = *(const long long *)config_value(cfg, o);
    return true;
}

bool component_connection_limits(const struct component_ctx *ctx, const char *service,
                                 unsigned *max_r, unsigned *per_ip_r)
{
    long long max, per_ip;
    if (!limit_option(ctx->cfg, service, "_max_connections", &max) ||
        !limit_option(ctx->cfg, service, "_max_connections_per_ip", &per_ip))
        return false;
    unsigned n = ctx->conntab == NULL && ctx->n_workers ? ctx->n_workers : 1;
    *max_r = (unsigned)((max + n - 1) / n);
    *per_ip_r = (unsigned)per_ip;
    return true;
}

void component_drop_privileges(const struct wharf_config *cfg)
{
    component_drop_privileges_to(cfg->wharf_user);
}

void component_drop_privileges_to(const char *user)
{
    if (geteuid() != 0)
        return;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL)
        log_fatal(EX_NOUSER, "user '%s' does not exist", user);
    if (pw->pw_uid == 0)
        log_fatal(EX_CONFIG, "user '%s' must not be root", user);
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        log_fatal(EX_OSERR, "cannot switch to user '%s': %s", user, strerror(errno));
    if (setuid(0) == 0)
        log_panic("privileges were not dropped");
    /* setuid clears the dumpable flag; keep cores for crash reports. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* The argv area (and the environment strings right after it) the kernel shows as cmdline. */
static char *title_area;
static size_t title_cap;
static char **title_argv;    /* the heap copy of argv, kept reachable */
static char **title_env;     /* the copied strings, reachable even after unsetenv drops one */
static char **title_environ; /* the array environ pointed to, reachable after setenv replaces it */
static size_t title_len = (size_t)-1; /* of the title shown; -1: the area still holds argv */
static char title_base[96];
static size_t title_conns = (size_t)-1;

void component_title_init(int argc, char ***argv_r)
{
    extern char **environ;
    char **argv = *argv_r;
    if (argc <= 0 || argv[0] == NULL || title_area != NULL)
        return;
    char *end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; i++) {
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    }
    size_t n_env = 0;
    while (environ[n_env] != NULL)
        n_env++;
    char **env = xcalloc(n_env + 1, sizeof(char *));
    title_env = xcalloc(n_env + 1, sizeof(char *));
    for (size_t i = 0; i < n_env; i++) {
        if (environ[i] == end)
            end = environ[i] + strlen(environ[i]) + 1;
        env[i] = title_env[i] = xstrdup(environ[i]);
    }
    environ = title_environ = env;
    title_argv = xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++)
        title_argv[i] = xstrdup(argv[i]);
    *argv_r = title_argv;
    title_area = argv[0];
    title_cap = (size_t)(end - argv[0]);
}

void component_title_set(const char *comm, const char *fmt, ...)
{
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (comm != NULL)
        prctl(PR_SET_NAME, (unsigned long)comm, 0, 0, 0);
    if (title_area == NULL || title_cap < 2)
        return;
    size_t len = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
    len = len < title_cap - 1 ? len : title_cap - 1;
    memcpy(title_area, text, len);
    /* clear what the previous title (or, the first time, argv and environ) left */
    size_t old = title_len == (size_t)-1 ? title_cap - 1 : title_len;
    memset(title_area + len, 0, (old > len ? old - len : 0) + 1);
    title_len = len;
}

void component_title_start(const struct component_ctx *ctx, bool workers)
{
    char comm[16];
    snprintf(comm, sizeof(comm), "wharf-%s", ctx->name);
    if (workers)
        snprintf(title_base, sizeof(title_base), "wharf: %s worker %u/%u", ctx->name,
                 ctx->worker_index + 1, ctx->n_workers);
    else
        snprintf(title_base, sizeof(title_base), "wharf: %s", ctx->name);
    title_conns = (size_t)-1;
    component_title_set(comm, "%s", title_base);
}

void component_title_connections(size_t n)
{
    if (title_base[0] == '\0' || n == title_conns)
        return;
    title_conns = n;
    component_title_set(NULL, "%s [%zu conn%s]", title_base, n, n == 1 ? "" : "s");
}
