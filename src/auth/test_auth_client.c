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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_client.h"
#include "auth/auth_proto.h"
#include "base/alloc.h"
#include "ipc/frame.h"
#include "ipc/testpeer.h"

struct fixture {
    struct testpeer peer;
    struct buf held; /* a reply held back until the next request ("fail" waits for one more) */
    struct bufferevent *held_bev;
    struct auth_client *client;
};

struct answer {
    int calls;
    enum auth_result result;
    char account[64];
};

static void on_answer(void *arg, enum auth_result r, const char *account, const char *session)
{
    (void)session;
    struct answer *a = arg;
    a->calls++;
    a->result = r;
    snprintf(a->account, sizeof(a->account), "%s", account ? account : "");
}

static void peer_reply(struct bufferevent *bev, uint64_t id, enum auth_result r, const char *acct)
{
    struct buf p = BUF_INIT;
    auth_proto_put_reply(&p, id, r, acct, NULL);
    testpeer_send(bev, IPC_AUTH_REPLY, p.data, p.len);
    buf_free(&p);
}

static void peer_dropped(void *arg, struct bufferevent *bev)
{
    struct fixture *f = arg;
    if (f->held_bev == bev)
        f->held_bev = NULL;
}

static void peer_frame(void *arg, struct bufferevent *bev, const struct ipc_frame *fr)
{
    struct fixture *f = arg;
    struct auth_wire_request w;
    const char *why;
    assert_int_equal(fr->type, IPC_AUTH_REQUEST);
    assert_int_equal(auth_proto_get_request(fr->payload, fr->len, 1024, &w, &why), 0);
    char *user = slice_strdup(w.username);
    uint64_t id = w.id;
    if (f->held_bev == bev) { /* the held "fail" goes after this request's answer */
        if (strcmp(user, "ok") == 0)
            peer_reply(bev, id, AUTH_OK, "ok@example.org");
        bufferevent_write(bev, f->held.data, f->held.len);
        f->held_bev = NULL;
    } else if (strcmp(user, "ok") == 0) {
        peer_reply(bev, id, AUTH_OK, "ok@example.org");
    } else if (strcmp(user, "fail") == 0) {
        struct buf p = BUF_INIT;
        buf_reset(&f->held);
        auth_proto_put_reply(&p, id, AUTH_FAILED, "", NULL);
        ipc_frame_encode(&f->held, IPC_AUTH_REPLY, p.data, p.len);
        buf_free(&p);
        f->held_bev = bev;
    } else if (strcmp(user, "close") == 0) {
        testpeer_drop(&f->peer, bev);
    } else if (strcmp(user, "garbage") == 0) {
        bufferevent_write(bev, "\0\0\0\4\0\1\0\0xxxx", 12); /* a HELLO, not a reply */
    }                                                       /* "silent": nothing */
    free(user);
}

static void peer_listen(struct fixture *f)
{
    testpeer_listen(&f->peer, "auth.sock", peer_frame, f);
    f->peer.on_drop = peer_dropped;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    testpeer_setup(&f->peer, "auth_client_timeout = 1s\n");
    f->client = auth_client_new(f->peer.base, &f->peer.cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    auth_client_free(f->client);
    testpeer_teardown(&f->peer);
    buf_free(&f->held);
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

struct answers {
    struct answer *a;
    size_t n;
};

static bool all_answered(void *ctx)
{
    struct answers *w = ctx;
    for (size_t k = 0; k < w->n; k++) {
        if (w->a[k].calls == 0)
            return false;
    }
    return true;
}

/* Runs the loop until every answer has come or 5 s have passed. */
static void run_until(struct fixture *f, struct answer *a, size_t n)
{
    struct answers w = {a, n};
    testpeer_run_until(&f->peer, all_answered, &w);
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
    testpeer_run_for(&f->peer, 100);
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
