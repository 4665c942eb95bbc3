/*
 * listeners.h - binding the inbound rows of the services table.
 */
#ifndef WHARF_SUPERVISOR_LISTENERS_H
#define WHARF_SUPERVISOR_LISTENERS_H

#include "base/buf.h"
#include "supervisor/services.h"

struct bound_listener {
    const struct service_def *service;
    char *address; /* as configured: "*:25", "127.0.0.1:2525" */
    int fd;
};

struct listener_set {
    struct bound_listener *v;
    size_t n;
};

/*
 * Binds every listener of every built component. On failure closes what it
 * bound and returns -1 with a message naming the component, the address and
 * what to do.
 */
int listeners_bind_all(const struct wharf_config *cfg, struct listener_set *set, struct buf *err);
void listeners_close_all(struct listener_set *set);

#endif
