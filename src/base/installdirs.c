/*
 * installdirs.c - the default configuration of an installed program (see
 * installdirs.h). The directories come from meson (-D WHARF_*DIR).
 */
#include "base/installdirs.h"

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

const char *installdirs_default_config(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    if (strcmp(self, WHARF_BINDIR) != 0 && strcmp(self, WHARF_SBINDIR) != 0 &&
        strcmp(self, WHARF_ADMINDIR) != 0)
        return NULL;
    return access(installdirs_config_file(), F_OK) == 0 ? installdirs_config_file() : NULL;
}
