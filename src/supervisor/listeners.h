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
/*
 * The same for a reload: a listener whose service and address are unchanged
 * keeps its socket (taken out of old, so established connections and the
 * accept queue survive); others are bound afresh. On failure old is left as
 * it was and -1 returned with err.
 */
int listeners_rebind(const struct wharf_config *cfg, struct listener_set *old,
                     struct listener_set *set, struct buf *err);
/* Closes every socket still held (fd >= 0) and frees the set. */
void listeners_close_all(struct listener_set *set);

#endif
