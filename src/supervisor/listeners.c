/*
 * listeners.c - opening the listening sockets named in the services table.
 */
#include "supervisor/listeners.h"
#include "base/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <unistd.h>

/* Pending connections the kernel may queue per listener. */
#define LISTEN_BACKLOG 1024

static int bind_one(const struct listen_addr *la, int *fd_r, int *errno_r)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int family;
    memset(&ss, 0, sizeof(ss));
    if (la->host[0] == '\0') {
        /* Wildcard: one dual-stack IPv6 socket, or IPv4 where IPv6 is absent. */
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_any;
        s6->sin6_port = htons(la->port);
        sslen = sizeof(*s6);
        family = AF_INET6;
    } else if (strchr(la->host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, la->host, &s6->sin6_addr) != 1) {
            *errno_r = EINVAL;
            return -1;
        }
        s6->sin6_port = htons(la->port);
        sslen = sizeof(*s6);
        family = AF_INET6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        if (inet_pton(AF_INET, la->host, &s4->sin_addr) != 1) {
            *errno_r = EINVAL;
            return -1;
        }
        s4->sin_port = htons(la->port);
        sslen = sizeof(*s4);
        family = AF_INET;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 && family == AF_INET6 && la->host[0] == '\0') {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        memset(&ss, 0, sizeof(ss));
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons(la->port);
        sslen = sizeof(*s4);
        family = AF_INET;
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    }
    if (fd < 0) {
        *errno_r = errno;
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, la->host[0] == '\0' ? &zero : &one, sizeof(int));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        *errno_r = errno;
        close(fd);
        return -1;
    }
    *fd_r = fd;
    return 0;
}

static const char *bind_advice(int err)
{
    switch (err) {
    case EADDRINUSE:
        return "another program holds this port (another mail server?): stop it, or set a "
               "different address in wharf.conf, or turn the listener off";
    case EACCES:
        return "ports below 1024 need wharfd to start as root (it drops privileges "
               "afterwards), or choose a port above 1023";
    case EADDRNOTAVAIL:
        return "this machine has no such address: fix the address in wharf.conf";
    default:
        return "check the address in wharf.conf";
    }
}

static void listener_add(struct listener_set *set, const struct service_def *s, const char *addr,
                         int fd)
{
    set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
    set->v[set->n++] = (struct bound_listener){.service = s, .address = xstrdup(addr), .fd = fd};
}

/* Takes the fd of (service, address) out of old, or returns -1. */
static int listener_take(struct listener_set *old, const struct service_def *s, const char *addr)
{
    for (size_t i = 0; old && i < old->n; i++) {
        if (old->v[i].service == s && old->v[i].fd >= 0 && strcmp(old->v[i].address, addr) == 0) {
            int fd = old->v[i].fd;
            old->v[i].fd = -1;
            return fd;
        }
    }
    return -1;
}

/* Gives the fds taken from old back to it and closes the rest (a failed rebind changes nothing). */
static void listener_untake(struct listener_set *old, struct listener_set *fresh)
{
    for (size_t i = 0; old && i < fresh->n; i++) {
        for (size_t j = 0; j < old->n; j++) {
            if (old->v[j].fd < 0 && old->v[j].service == fresh->v[i].service &&
                strcmp(old->v[j].address, fresh->v[i].address) == 0) {
                old->v[j].fd = fresh->v[i].fd;
                fresh->v[i].fd = -1;
                break;
            }
        }
    }
    listeners_close_all(fresh);
}

int listeners_rebind(const struct wharf_config *cfg, struct listener_set *old,
                     struct listener_set *set, struct buf *err)
{
    set->v = NULL;
    set->n = 0;
    for (size_t i = 0; i < n_services; i++) {
        const struct service_def *s = &services[i];
        if (s->direction != SERVICE_INBOUND || !component_enabled(cfg, s->component))
            continue;
        const struct strlist *addrs = service_listen(cfg, s);
        for (size_t j = 0; j < addrs->n; j++) {
            struct listen_addr la;
            int fd = listener_take(old, s, addrs->v[j]), e = 0;
            if (fd >= 0) {
                listener_add(set, s, addrs->v[j], fd);
                continue;
            }
            if (!config_parse_listen_addr(addrs->v[j], &la) || bind_one(&la, &fd, &e) != 0) {
                const char *optname = config_options[s->listen_option].name;
                buf_printf(err, "%s (%s): cannot listen on %s: %s; %s (%s)", s->component->name,
                           s->name, addrs->v[j], strerror(e ? e : EINVAL), bind_advice(e), optname);
                listener_untake(old, set);
                return -1;
            }
            listener_add(set, s, addrs->v[j], fd);
        }
    }
    return 0;
}

int listeners_bind_all(const struct wharf_config *cfg, struct listener_set *set, struct buf *err)
{
    return listeners_rebind(cfg, NULL, set, err);
}

void listeners_close_all(struct listener_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->v[i].fd >= 0)
            close(set->v[i].fd);
        free(set->v[i].address);
    }
    free(set->v);
    set->v = NULL;
    set->n = 0;
}
