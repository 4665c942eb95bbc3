/*
 * installdirs.c - the default configuration of an installed program (see
 * installdirs.h). The directories come from meson (-D WHARF_*DIR).
 */
#include "base/installdirs.h"
#include "base/buf.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

#ifndef WHARF_SYSCONFDIR
#define WHARF_SYSCONFDIR "/etc"
#endif
#ifndef WHARF_BINDIR
#define WHARF_BINDIR "/usr/bin"
#endif
#ifndef WHARF_SBINDIR
#define WHARF_SBINDIR "/usr/sbin"
#endif
#ifndef WHARF_ADMINDIR
#define WHARF_ADMINDIR "/usr/libexec/wharf"
#endif

const char *installdirs_config_file(void)
{
    return WHARF_SYSCONFDIR "/wharf/wharf.conf";
}

/* The folder of this program into dir; false when unknown. */
static bool self_dir(char dir[PATH_MAX])
{
    ssize_t n = readlink("/proc/self/exe", dir, PATH_MAX - 1);
    if (n <= 0)
        return false;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    return true;
}

static bool installed(const char *dir)
{
    return strcmp(dir, WHARF_BINDIR) == 0 || strcmp(dir, WHARF_SBINDIR) == 0 ||
           strcmp(dir, WHARF_ADMINDIR) == 0;
}

const char *installdirs_default_config(void)
{
    char self[PATH_MAX];
    if (!self_dir(self) || !installed(self))
        return NULL;
    return access(installdirs_config_file(), F_OK) == 0 ? installdirs_config_file() : NULL;
}

void installdirs_admin_program(struct buf *out)
{
    char self[PATH_MAX];
    buf_reset(out);
    if (self_dir(self) && !installed(self))
        buf_printf(out, "%s/../cli/wharf-admin", self);
    else
        buf_append_cstr(out, WHARF_ADMINDIR "/wharf-admin");
}
