/*
 * testpeer.c - the scripted unix-socket peer of the IPC client tests
 * (testpeer.h). Aborts the test on any setup failure.
 */
#include "ipc/testpeer.h"
#include "base/clock.h"
#include "base/alloc.h"
#include "base/testdir.h"
#include "ipc/channel.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "testpeer: %s failed\n", what);
        abort();
    }
}

void testpeer_setup(struct testpeer *p, const char *config)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/wharf-ipcpeer-XXXXXX");
    must(mkdtemp(p->dir) != NULL, "mkdtemp");
    struct buf path = BUF_INIT, text = BUF_INIT, err = BUF_INIT;
    buf_printf(&path, "%s/run", p->dir);
    must(mkdir(path.data, 0700) == 0, "mkdir run");
    buf_printf(&text, "data_directory = %s\n%s", p->dir, config ? config : "");
    config_init(&p->cfg);
    if (config_load_string(&p->cfg, "test", text.data, &err) != 0 ||
        config_finalize(&p->cfg, &err) != 0) {
        fprintf(stderr, "testpeer: configuration: %s\n", buf_cstr(&err));
        abort();
    }
    p->base = event_base_new();
    must(p->base != NULL, "event_base_new");
    buf_free(&path);
    buf_free(&text);
    buf_free(&err);
}

void testpeer_drop(struct testpeer *p, struct bufferevent *bev)
{
    for (size_t i = 0; i < p->n_conns; i++) {
        if (p->conns[i] == bev) {
            p->conns[i] = p->conns[--p->n_conns];
            break;
        }
    }
    if (p->on_drop)
        p->on_drop(p->arg, bev);
    bufferevent_free(bev);
}

static bool is_open(const struct testpeer *p, const struct bufferevent *bev)
{
    for (size_t i = 0; i < p->n_conns; i++) {
        if (p->conns[i] == bev)
            return true;
    }
    return false;
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    struct testpeer *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct ipc_frame f;
    size_t used;
    while (ipc_evbuffer_frame(in, 1u << 20, &f, &used) == IPC_PARSE_OK) {
        p->frames++;
        p->on_frame(p->arg, bev, &f);
        if (!is_open(p, bev))
            return;
        evbuffer_drain(in, used);
    }
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        testpeer_drop(arg, bev);
}

static void peer_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n,
                        void *arg)
{
    struct testpeer *p = arg;
    struct bufferevent *bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, peer_read, NULL, peer_event, p);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    must(p->n_conns < TESTPEER_MAX_CONNS, "too many connections");
    p->conns[p->n_conns++] = bev;
    p->accepted++;
}

void testpeer_listen(struct testpeer *p, const char *name, testpeer_frame_fn fn, void *arg)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/run/%s", p->dir, name);
    p->sock = buf_steal(&path, NULL);
    p->on_frame = fn;
    p->arg = arg;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    must(strlen(p->sock) < sizeof(sun.sun_path), "socket path length");
    memcpy(sun.sun_path, p->sock, strlen(p->sock) + 1);
    p->l = evconnlistener_new_bind(p->base, peer_accept, p, LEV_OPT_CLOSE_ON_FREE, 16,
                                   (struct sockaddr *)&sun, sizeof(sun));
    must(p->l != NULL, "listen");
}

void testpeer_send(struct bufferevent *bev, uint16_t type, const void *payload, size_t len)
{
    struct buf f = BUF_INIT;
    ipc_frame_encode(&f, type, payload, len);
    bufferevent_write(bev, f.data, f.len);
    buf_free(&f);
}

bool testpeer_run_until(struct testpeer *p, bool (*done)(void *ctx), void *ctx)
{
    for (int i = 0; i < 500 && !done(ctx); i++) {
        struct timeval tick = {0, 10000};
        event_base_loopexit(p->base, &tick);
        event_base_dispatch(p->base);
    }
    return done(ctx);
}

void testpeer_run_for(struct testpeer *p, int ms)
{
    struct timeval tv = clock_timeval_ms(ms);
    event_base_loopexit(p->base, &tv);
    event_base_dispatch(p->base);
}

void testpeer_teardown(struct testpeer *p)
{
    while (p->n_conns)
        testpeer_drop(p, p->conns[0]);
    if (p->l)
        evconnlistener_free(p->l);
    event_base_free(p->base);
    free(p->sock);
    testdir_close(&p->cfg, p->dir);
}
