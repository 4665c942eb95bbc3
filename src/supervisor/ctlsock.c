/*
 * ctlsock.c - wharfd's control socket: requests from the wharf command and
 * events from processes that are not components.
 *
 * The socket (DATA/run/control.sock) is mode 0660, group of wharf_user. It
 * answers IPC_CTL_REQUEST frames carrying JSON {"cmd": "status"|"reload"}
 * with one IPC_CTL_REPLY each, and relays IPC_EVENT frames (ipc/event.h) to
 * the components subscribed to them. Must never block: a client that stops reading only fills its
 * own buffer.
 */
#include "base/alloc.h"
#include "base/datadir.h"
#include "base/log.h"
#include "ipc/control.h"
#include "supervisor/supervise.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Requests are a line of JSON and events a few hundred bytes; nothing bigger is legitimate. */
#define CTL_MAX_FRAME (1024 * 1024)

struct ctl_client {
    struct ctl_client *next;
    struct sup *sup;
    struct ipc_channel *ch;
    struct status_query *query;
};

struct ctlsock {
    int fd;
    char *path;
    struct event *ev;
    struct ctl_client *clients;
};

static void ctl_reply(struct ctl_client *c, json_t *reply)
{
    char *text = json_dumps(reply, JSON_COMPACT);
    ipc_channel_send(c->ch, IPC_CTL_REPLY, text, strlen(text));
    free(text);
}

static void ctl_reply_error(struct ctl_client *c, const char *msg)
{
    json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
    ctl_reply(c, r);
    json_decref(r);
}

static void ctl_status_done(void *arg, json_t *status)
{
    struct ctl_client *c = arg;
    c->query = NULL;
    ctl_reply(c, status);
}

static void ctl_request(struct ctl_client *c, const struct ipc_frame *f)
{
    json_error_t jerr;
    json_t *req = json_loadb(f->payload, f->len, 0, &jerr);
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (cmd == NULL) {
        ctl_reply_error(c, "request is not a JSON object with a \"cmd\" string");
    } else if (strcmp(cmd, "status") == 0) {
        if (c->query != NULL)
            ctl_reply_error(c, "a status request is already pending");
        else
            c->query = sup_status_query(c->sup, ctl_status_done, c);
    } else if (strcmp(cmd, "reload") == 0) {
        struct buf err = BUF_INIT;
        if (sup_reload(c->sup, &err) == 0) {
            json_t *r = json_pack("{s:b, s:i}", "ok", 1, "generation", (int)c->sup->generation);
            ctl_reply(c, r);
            json_decref(r);
        } else {
            log_error("reload requested over the control socket failed: %s", buf_cstr(&err));
            ctl_reply_error(c, buf_cstr(&err));
        }
        buf_free(&err);
    } else {
        ctl_reply_error(c, "unknown command");
    }
    json_decref(req);
}

static void ctl_on_frame(void *arg, const struct ipc_frame *f)
{
    struct ctl_client *c = arg;
    if (f->type == IPC_CTL_REQUEST) {
        ctl_request(c, f);
    } else if (f->type == IPC_EVENT) {
        sup_relay_event(c->sup, NULL, f->payload, f->len, "control socket");
    } else {
        ctl_reply_error(c, "unexpected frame type");
    }
}

static void ctl_client_free(struct ctl_client *c)
{
    struct ctlsock *cs = c->sup->ctl;
    for (struct ctl_client **pp = &cs->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (c->query)
        sup_status_cancel(c->sup, c->query);
    ipc_channel_free(c->ch);
    free(c);
}

static void ctl_on_close(void *arg)
{
    ctl_client_free(arg);
}

static void ctl_accept(evutil_socket_t fd, short what, void *arg)
{
    struct sup *s = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warning("control socket: accept: %s", strerror(errno));
        return;
    }
    struct ctl_client *c = xcalloc(1, sizeof(*c));
    c->sup = s;
    c->ch = ipc_channel_new(s->base, cfd, CTL_MAX_FRAME, ctl_on_frame, ctl_on_close, c);
    c->next = s->ctl->clients;
    s->ctl->clients = c;
}

int ctlsock_open(struct sup *s, struct buf *err)
{
    const char *path = s->cfg->control_socket;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        buf_printf(err, "control_socket: %s is longer than %zu bytes", path,
                   sizeof(sun.sun_path) - 1);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int probe = control_connect(s->cfg);
    if (probe >= 0) {
        close(probe);
        buf_printf(err,
                   "another wharfd already answers on %s; stop it first (wharfd is "
                   "already running with this data_directory)",
                   path);
        return -1;
    }
    unlink(path); /* a stale socket from a wharfd that died */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0117);
    int r = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r != 0 || listen(fd, 64) != 0) {
        buf_printf(err, "control_socket: cannot listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uid_t uid;
    gid_t gid;
    if (geteuid() == 0 && datadir_wharf_ids(s->cfg, &uid, &gid) && chown(path, 0, gid) != 0)
        log_warning("cannot chown %s: %s", path, strerror(errno));
    s->ctl = xcalloc(1, sizeof(*s->ctl));
    s->ctl->fd = fd;
    s->ctl->path = xstrdup(path);
    s->ctl->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, ctl_accept, s);
    event_add(s->ctl->ev, NULL);
    return 0;
}

void ctlsock_close(struct sup *s)
{
    struct ctlsock *cs = s->ctl;
    if (cs == NULL)
        return;
    while (cs->clients)
        ctl_client_free(cs->clients);
    event_free(cs->ev);
    close(cs->fd);
    unlink(cs->path);
    free(cs->path);
    free(cs);
    s->ctl = NULL;
}
