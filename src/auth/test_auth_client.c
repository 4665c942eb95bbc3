/*
 * test_auth_client.c - unit tests for the workers' auth client against a
 * scripted peer on a real unix socket: answers (out of order), timeouts,
 * a peer that goes away or talks nonsense, cancel, reconnect, and requests
 * refused before they are sent.
 *
 * The peer answers by user name: "ok" -> AUTH_OK, "fail" -> AUTH_FAILED after
 * "late" replies, "silent" -> nothing, "close" -> closes the connection,
 * "garbage" -> writes a malformed frame.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth/auth_client.h"
#include "auth/auth_proto.h"
#include "base/alloc.h"
#include "ipc/frame.h"

struct peer {
    struct event_base *base;
    struct evconnlistener *l;
    struct bufferevent *conns[8];
    size_t n_conns;
    unsigned accepted;
    struct buf held; /* a reply held back until the next request ("fail" waits for one more) */
    struct bufferevent *held_bev;
};

struct fixture {
    char dir[64];
    struct wharf_config cfg;
    struct event_base *base;
    struct peer peer;
    struct auth_client *client;
};

struct answer {
    int calls;
    enum auth_result result;
    char account[64];
};

static void on_answer(void *arg, enum auth_result r, const char *account)
{
    struct answer *a = arg;
    a->calls++;
    a->result = r;
    snprintf(a->account, sizeof(a->account), "%s", account ? account : "");
}

static void peer_reply(struct bufferevent *bev, uint64_t id, enum auth_result r, const char *acct)
{
    struct buf p = BUF_INIT, f = BUF_INIT;
    auth_proto_put_reply(&p, id, r, acct);
    ipc_frame_encode(&f, IPC_AUTH_REPLY, p.data, p.len);
    bufferevent_write(bev, f.data, f.len);
    buf_free(&p);
    buf_free(&f);
}

static void peer_drop(struct peer *pe, struct bufferevent *bev)
{
    for (size_t i = 0; i < pe->n_conns; i++) {
        if (pe->conns[i] == bev) {
            pe->conns[i] = pe->conns[--pe->n_conns];
            break;
        }
    }
    if (pe->held_bev == bev)
        pe->held_bev = NULL;
    bufferevent_free(bev);
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    struct peer *pe = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        const unsigned char *data = evbuffer_pullup(in, (ev_ssize_t)len);
        struct ipc_frame f;
        size_t used;
        if (len < IPC_HEADER_SIZE || ipc_frame_parse(data, len, 65536, &f, &used) != IPC_PARSE_OK)
            return;
        struct auth_wire_request w;
        const char *why;
        assert_int_equal(f.type, IPC_AUTH_REQUEST);
        assert_int_equal(auth_proto_get_request(f.payload, f.len, 1024, &w, &why), 0);
        char *user = slice_strdup(w.username);
        uint64_t id = w.id;
        evbuffer_drain(in, used);
        if (pe->held_bev == bev) { /* the held "fail" goes after this request's answer */
            if (strcmp(user, "ok") == 0)
                peer_reply(bev, id, AUTH_OK, "ok@example.org");
            bufferevent_write(bev, pe->held.data, pe->held.len);
            pe->held_bev = NULL;
            free(user);
            continue;
        }
        if (strcmp(user, "ok") == 0) {
            peer_reply(bev, id, AUTH_OK, "ok@example.org");
        } else if (strcmp(user, "fail") == 0) {
            struct buf p = BUF_INIT;
            buf_reset(&pe->held);
            auth_proto_put_reply(&p, id, AUTH_FAILED, "");
            ipc_frame_encode(&pe->held, IPC_AUTH_REPLY, p.data, p.len);
            buf_free(&p);
            pe->held_bev = bev;
        } else if (strcmp(user, "close") == 0) {
            free(user);
            peer_drop(pe, bev);
            return;
        } else if (strcmp(user, "garbage") == 0) {
            bufferevent_write(bev, "\0\0\0\4\0\1\0\0xxxx", 12); /* a HELLO, not a reply */
        }                                                       /* "silent": nothing */
        free(user);
    }
}

static void peer_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        peer_drop(arg, bev);
}

static void peer_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n,
                        void *arg)
{
    struct peer *pe = arg;
    struct bufferevent *bev = bufferevent_socket_new(pe->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, peer_read, NULL, peer_event, pe);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    assert_true(pe->n_conns < 8);
    pe->conns[pe->n_conns++] = bev;
    pe->accepted++;
}

static void peer_listen(struct fixture *f)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/run/auth.sock", f->dir);
    f->peer.base = f->base;
    f->peer.l = evconnlistener_new_bind(f->base, peer_accept, &f->peer,
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                        (struct sockaddr *)&sun, sizeof(sun));
    assert_non_null(f->peer.l);
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/wharf-authcl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct buf path = BUF_INIT, text = BUF_INIT, err = BUF_INIT;
    buf_printf(&path, "%s/run", f->dir);
    assert_int_equal(mkdir(path.data, 0700), 0);
    buf_printf(&text, "data_directory = %s\nauth_client_timeout = 1s\n", f->dir);
    config_init(&f->cfg);
    assert_int_equal(config_load_string(&f->cfg, "test", text.data, &err), 0);
    assert_int_equal(config_finalize(&f->cfg, &err), 0);
    f->base = event_base_new();
    f->client = auth_client_new(f->base, &f->cfg);
    buf_free(&path);
    buf_free(&text);
    buf_free(&err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    auth_client_free(f->client);
    while (f->peer.n_conns)
        peer_drop(&f->peer, f->peer.conns[0]);
    if (f->peer.l)
        evconnlistener_free(f->peer.l);
    buf_free(&f->peer.held);
    event_base_free(f->base);
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/run/auth.sock", f->dir);
    unlink(p.data);
    buf_reset(&p);
    buf_printf(&p, "%s/run", f->dir);
    rmdir(p.data);
    rmdir(f->dir);
    buf_free(&p);
    config_free(&f->cfg);
    free(f);
    return 0;
}

static void *ask(struct fixture *f, const char *user, struct answer *a)
{
    struct auth_request req = {.service = "smtp",
                               .mechanism = "PLAIN",
                               .authzid = "",
                               .username = user,
                               .password = "pw",
                               .client_addr = "192.0.2.1",
                               .secure = true};
    return auth_client_check(f->client, &req, on_answer, a);
}

/* Runs the loop until every answer has come or 5 s have passed. */
static void run_until(struct fixture *f, struct answer *a, size_t n)
{
    for (int i = 0; i < 500; i++) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++)
            done += a[k].calls > 0;
        if (done == n)
            return;
        struct timeval tick = {0, 10000};
        event_base_loopexit(f->base, &tick);
        event_base_dispatch(f->base);
    }
}

static void test_answers_out_of_order(void **state)
{
    struct fixture *f = *state;
    peer_listen(f);
    struct answer a[2] = {0};
    ask(f, "fail", &a[0]);
    ask(f, "ok", &a[1]);
    run_until(f, a, 2);
    assert_int_equal(a[0].calls, 1);
    assert_int_equal(a[0].result, AUTH_FAILED);
    assert_string_equal(a[0].account, "");
    assert_int_equal(a[1].calls, 1);
    assert_int_equal(a[1].result, AUTH_OK);
    assert_string_equal(a[1].account, "ok@example.org");
    assert_int_equal(f->peer.accepted, 1); /* one connection for both */
}

static void test_unreachable_is_tempfail_never_synchronous(void **state)
{
    struct fixture *f = *state; /* nobody listens */
    struct answer a = {0};
    ask(f, "ok", &a);
    assert_int_equal(a.calls, 0); /* not from inside auth_client_check */
    run_until(f, &a, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.result, AUTH_TEMPFAIL);
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    peer_listen(f);
    struct answer a = {0};
    ask(f, "silent", &a);
    run_until(f, &a, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.result, AUTH_TEMPFAIL);
}

static void test_peer_closes_then_reconnect(void **state)
{
    struct fixture *f = *state;
    peer_listen(f);
    struct answer a[3] = {0};
    ask(f, "silent", &a[0]);
    ask(f, "close", &a[1]);
    run_until(f, a, 2);
    assert_int_equal(a[0].result, AUTH_TEMPFAIL);
    assert_int_equal(a[1].result, AUTH_TEMPFAIL);
    assert_int_equal(a[0].calls + a[1].calls, 2);
    ask(f, "ok", &a[2]);
    run_until(f, &a[2], 1);
    assert_int_equal(a[2].result, AUTH_OK);
    assert_int_equal(f->peer.accepted, 2);
}

static void test_garbage_reply(void **state)
{
    struct fixture *f = *state;
    peer_listen(f);
    struct answer a = {0};
    ask(f, "garbage", &a);
    run_until(f, &a, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.result, AUTH_TEMPFAIL);
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    peer_listen(f);
    struct answer a[2] = {0};
    void *h = ask(f, "ok", &a[0]);
    ask(f, "ok", &a[1]);
    auth_client_cancel(f->client, h);
    run_until(f, &a[1], 1);
    /* Let the cancelled one's reply arrive too. */
    struct timeval tick = {0, 100000};
    event_base_loopexit(f->base, &tick);
    event_base_dispatch(f->base);
    assert_int_equal(a[0].calls, 0);
    assert_int_equal(a[1].calls, 1);
    assert_int_equal(a[1].result, AUTH_OK);
}

static void test_oversized_request_not_sent(void **state)
{
    struct fixture *f = *state;
    peer_listen(f);
    char *big = xmalloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    struct answer a = {0};
    ask(f, big, &a);
    run_until(f, &a, 1);
    assert_int_equal(a.result, AUTH_FAILED);
    assert_int_equal(f->peer.accepted, 0);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_is_tempfail_never_synchronous, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_closes_then_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_request_not_sent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
