/*
 * service.c - unix-socket frame servers (service.h): the listening socket,
 * the connections, each an ipc_channel, and the routing of frames by type.
 *
 * A connection's memory lives while it is open or held; once closed it is
 * out of the service's list and never touches the service again, so a held
 * connection may outlive the service itself.
 */
#include "ipc/service.h"
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/log.h"
#include "ipc/channel.h"

#include <errno.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct ipc_conn {
    struct ipc_service *srv; /* NULL once closed */
    struct ipc_channel *ch;
    struct ipc_conn *prev, *next;
    unsigned refs; /* the open connection itself, plus each hold */
    uid_t uid;
    void *data;
};

struct ipc_service {
    struct ipc_service_params p;
    char *name, *path;
    struct evconnlistener *listener;
    bool paused;
    struct ipc_conn *conns;
    size_t n_conns;
};

int ipc_service_listen(const char *path, mode_t mode, const struct wharf_config *owner,
                       struct buf *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        buf_printf(err, "%s: path too long for a unix socket", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        buf_printf(err, "socket: %s", strerror(errno));
        return -1;
    }
    unlink(path); /* a stale socket of a previous run */
    /* Never reachable with a wider mode, not even between bind and chmod. */
    mode_t old = umask(~mode & 0777);
    int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r != 0 || chmod(path, mode) != 0 || listen(fd, 128) != 0) {
        buf_printf(err, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    uid_t uid;
    gid_t gid;
    if (owner != NULL && geteuid() == 0 &&
        (!datadir_wharf_ids(owner, &uid, &gid) || chown(path, uid, gid) != 0)) {
        buf_printf(err, "cannot give %s to %s: %s", path, owner->wharf_user, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- connections ---- */

void ipc_conn_hold(struct ipc_conn *c)
{
    c->refs++;
}

void ipc_conn_release(struct ipc_conn *c)
{
    if (--c->refs == 0)
        free(c);
}

bool ipc_conn_is_open(const struct ipc_conn *c)
{
    return c->srv != NULL;
}

void ipc_conn_close(struct ipc_conn *c)
{
    struct ipc_service *s = c->srv;
    if (s == NULL)
        return;
    c->srv = NULL;
    ipc_channel_free(c->ch); /* deferred when inside one of its callbacks */
    c->ch = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (s->n_conns-- == s->p.max_conns && s->p.max_conns_option == NULL && !s->paused &&
        s->listener)
        evconnlistener_enable(s->listener);
    if (s->p.on_close)
        s->p.on_close(s->p.arg, c);
    ipc_conn_release(c);
}

void ipc_conn_send(struct ipc_conn *c, uint16_t type, const void *payload, size_t len)
{
    if (c->srv != NULL)
        ipc_channel_send(c->ch, type, payload, len);
}

void ipc_conn_set_reading(struct ipc_conn *c, bool on)
{
    if (c->srv != NULL)
        ipc_channel_set_reading(c->ch, on);
}

uid_t ipc_conn_peer_uid(const struct ipc_conn *c)
{
    return c->uid;
}

void ipc_conn_set_data(struct ipc_conn *c, void *data)
{
    c->data = data;
}

void *ipc_conn_data(const struct ipc_conn *c)
{
    return c->data;
}

static void conn_on_frame(void *arg, const struct ipc_frame *f)
{
    struct ipc_conn *c = arg;
    struct ipc_service *s = c->srv;
    const char *why = "unexpected frame type";
    const struct ipc_route *r = s->p.routes;
    while (r->fn != NULL && r->type != f->type)
        r++;
    if (r->fn != NULL) {
        ipc_conn_hold(c);
        why = r->fn(s->p.arg, c, f);
        bool open = ipc_conn_is_open(c);
        ipc_conn_release(c);
        if (!open)
            return;
    }
    if (why != NULL) {
        log_warning("%s: closing client connection: %s (type %u)", s->name, why, f->type);
        ipc_conn_close(c);
    }
}

static void conn_on_close(void *arg)
{
    struct ipc_conn *c = arg;
    const char *why = ipc_channel_error(c->ch);
    if (why != NULL)
        log_warning("%s: closing client connection: %s", c->srv->name, why);
    ipc_conn_close(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct ipc_service *s = arg;
    if (s->n_conns >= s->p.max_conns) {
        log_warning("%s: %zu connections (%s); refusing one", s->name, s->n_conns,
                    s->p.max_conns_option ? s->p.max_conns_option : "max");
        close(fd);
        return;
    }
    struct ipc_conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->refs = 1;
    c->uid = (uid_t)-1;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
        c->uid = cred.uid;
    c->ch = ipc_channel_new(evconnlistener_get_base(l), fd, s->p.max_frame, conn_on_frame,
                            conn_on_close, c);
    ipc_channel_set_max_output(c->ch, s->p.max_output);
    if (s->p.idle_timeout_s > 0)
        ipc_channel_set_timeout(c->ch, s->p.idle_timeout_s);
    c->next = s->conns;
    if (c->next)
        c->next->prev = c;
    s->conns = c;
    if (++s->n_conns >= s->p.max_conns && s->p.max_conns_option == NULL)
        evconnlistener_disable(l); /* the next ones wait in the backlog */
    if (s->p.on_open)
        s->p.on_open(s->p.arg, c);
}

/* ---- the service ---- */

struct ipc_service *ipc_service_new(struct event_base *base, int fd,
                                    const struct ipc_service_params *p)
{
    struct ipc_service *s = xcalloc(1, sizeof(*s));
    s->p = *p;
    s->name = xstrdup(p->name);
    s->path = xstrdup(p->path);
    s->p.name = s->name;
    s->p.path = s->path;
    s->listener = evconnlistener_new(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (s->listener == NULL)
        abort();
    return s;
}

void ipc_service_pause(struct ipc_service *s)
{
    s->paused = true;
    if (s->listener)
        evconnlistener_disable(s->listener);
}

void ipc_service_unlisten(struct ipc_service *s, bool unlink_path)
{
    if (s->listener == NULL)
        return;
    evconnlistener_free(s->listener);
    s->listener = NULL;
    if (unlink_path)
        unlink(s->path);
}

size_t ipc_service_connections(const struct ipc_service *s)
{
    return s->n_conns;
}

void ipc_service_free(struct ipc_service *s)
{
    if (s == NULL)
        return;
    s->paused = true;
    ipc_service_unlisten(s, false);
    while (s->conns)
        ipc_conn_close(s->conns);
    free(s->name);
    free(s->path);
    free(s);
}
