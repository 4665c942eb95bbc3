/*
 * component.c - helpers shared by every component process.
 */
#include "base/component.h"
#include "base/log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
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
