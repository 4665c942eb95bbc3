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

void component_drop_privileges(const struct wharf_config *cfg)
{
    if (geteuid() != 0)
        return;
    struct passwd *pw = getpwnam(cfg->wharf_user);
    if (pw == NULL)
        log_fatal(EX_NOUSER, "user '%s' (wharf_user) does not exist", cfg->wharf_user);
    if (pw->pw_uid == 0)
        log_fatal(EX_CONFIG, "wharf_user '%s' must not be root", cfg->wharf_user);
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        log_fatal(EX_OSERR, "cannot switch to user '%s': %s", cfg->wharf_user, strerror(errno));
    if (setuid(0) == 0)
        log_panic("privileges were not dropped");
    /* setuid clears the dumpable flag; keep cores for crash reports. */
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}
