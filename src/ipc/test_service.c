/*
 * test_service.c - unit tests for the IPC service and client kits
 * (service.h, client.h), one against the other on a real unix socket:
 * replies matched by id (also out of order, also late), routing by type,
 * connections closed on unexpected or oversized frames, the connection cap,
 * client timeouts, the bound on outstanding requests, local answers and
 * cancel, and answers never from inside the call that started a request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "ipc/client.h"
#include "ipc/service.h"
#include "ipc/testpeer.h"

enum { T_ECHO = 1000, T_REPLY = 1001, T_LATER = 1002, T_REFUSE = 1003, T_SILENT = 1004 };

struct fixture {
    struct testpeer env; /* the directory, the configuration and the loop */
    char *path;
    struct ipc_service *srv;
    struct ipc_client *cl;
    struct ipc_conn *held; /* the connection of a T_LATER request */
    struct buf held_payload;
    unsigned opened, closed;
};

struct result {
    int calls;
    enum ipc_client_status st;
    char text[64]; /* the reply's payload after the id */
};

static int on_done(void *arg, enum ipc_client_status st, const struct ipc_frame *reply)
{
    struct result *r = arg;
    r->calls++;
    r->st = st;
    if (reply)
        snprintf(r->text, sizeof(r->text), "%.*s", (int)(reply->len - 8), reply->payload + 8);
    return 0;
}

static const char *route_echo(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    ipc_conn_send(c, T_REPLY, f->payload, f->len);
    return NULL;
}

static const char *route_later(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    struct fixture *fx = arg;
    ipc_conn_hold(c);
    fx->held = c;
    buf_reset(&fx->held_payload);
    buf_append(&fx->held_payload, f->payload, f->len);
    return NULL;
}

static const char *route_refuse(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    return "refused by the test";
}

static const char *route_silent(void *arg, struct ipc_conn *c, const struct ipc_frame *f)
{
    return NULL;
}

static void on_open(void *arg, struct ipc_conn *c)
{
    ((struct fixture *)arg)->opened++;
}

static void on_close(void *arg, struct ipc_conn *c)
{
    ((struct fixture *)arg)->closed++;
}

static const struct ipc_route routes[] = {
    {T_ECHO, route_echo},
    {T_LATER, route_later},
    {T_REFUSE, route_refuse},
    {T_SILENT, route_silent},
    {0, NULL},
};

static void client_new(struct fixture *f, size_t max_outstanding)
{
    ipc_client_free(f->cl);
    struct ipc_client_params cp = {.name = "test client",
                                   .peer = "the test service",
                                   .reply_type = T_REPLY,
                                   .max_reply = 256,
                                   .timeout_ms = 300,
                                   .max_outstanding = max_outstanding,
                                   .max_outstanding_option = "test_outstanding"};
    f->cl = ipc_client_new(f->env.base, f->path, &cp);
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    testpeer_setup(&f->env, NULL);
    struct buf p = BUF_INIT, err = BUF_INIT;
    buf_printf(&p, "%s/run/test.sock", f->env.dir);
    f->path = buf_steal(&p, NULL);
    int fd = ipc_service_listen(f->path, 0600, NULL, &err);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct ipc_service_params sp = {.name = "test",
                                    .path = f->path,
                                    .routes = routes,
                                    .max_frame = 64,
                                    .max_conns = 2,
                                    .max_conns_option = "test_max",
                                    .on_open = on_open,
                                    .on_close = on_close,
                                    .arg = f};
    f->srv = ipc_service_new(f->env.base, fd, &sp);
    client_new(f, 0);
    buf_free(&err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ipc_client_free(f->cl);
    ipc_service_free(f->srv);
    if (f->held)
        ipc_conn_release(f->held);
    buf_free(&f->held_payload);
    free(f->path);
    testpeer_teardown(&f->env);
    free(f);
    return 0;
}

/* Starts one request of type with text after the id. */
static struct ipc_request *ask(struct fixture *f, uint16_t type, const char *text, struct result *r)
{
    uint64_t id;
    struct ipc_request *req = ipc_client_start(f->cl, on_done, r, &id);
    struct buf p = BUF_INIT;
    ipc_put_u64(&p, id);
    buf_append_cstr(&p, text);
    ipc_client_send(f->cl, req, type, p.data, p.len);
    buf_free(&p);
    return req;
}

static bool called(void *ctx)
{
    return ((struct result *)ctx)->calls > 0;
}

static void wait_for(struct fixture *f, struct result *r)
{
    assert_true(testpeer_run_until(&f->env, called, r));
}

static void test_replies_matched_by_id(void **state)
{
    struct fixture *f = *state;
    struct result r[3] = {{0}};
    ask(f, T_ECHO, "one", &r[0]);
    ask(f, T_ECHO, "two", &r[1]);
    ask(f, T_ECHO, "three", &r[2]);
    assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 0); /* never from inside the call */
    wait_for(f, &r[2]);
    wait_for(f, &r[0]);
    assert_int_equal(r[0].st, IPC_CLIENT_REPLY);
    assert_string_equal(r[0].text, "one");
    assert_string_equal(r[1].text, "two");
    assert_string_equal(r[2].text, "three");
    assert_int_equal(f->opened, 1); /* one connection for all */
    assert_int_equal(ipc_client_outstanding(f->cl), 0);
}

static void test_late_reply_out_of_order(void **state)
{
    struct fixture *f = *state;
    struct result r[2] = {{0}};
    ask(f, T_LATER, "late", &r[0]);
    ask(f, T_ECHO, "early", &r[1]);
    wait_for(f, &r[1]);
    assert_int_equal(r[0].calls, 0);
    assert_non_null(f->held);
    ipc_conn_send(f->held, T_REPLY, f->held_payload.data, f->held_payload.len);
    wait_for(f, &r[0]);
    assert_string_equal(r[0].text, "late");
    assert_string_equal(r[1].text, "early");
}

static void test_refused_and_unknown_frames_close(void **state)
{
    struct fixture *f = *state;
    struct result r[3] = {{0}};
    ask(f, T_REFUSE, "x", &r[0]);
    wait_for(f, &r[0]);
    assert_int_equal(r[0].st, IPC_CLIENT_FAILED);
    assert_int_equal(f->closed, 1);
    ask(f, 4242, "x", &r[1]); /* a type nobody routes */
    wait_for(f, &r[1]);
    assert_int_equal(r[1].st, IPC_CLIENT_FAILED);
    assert_int_equal(f->closed, 2);
    /* The client reconnects for the next request. */
    ask(f, T_ECHO, "again", &r[2]);
    wait_for(f, &r[2]);
    assert_int_equal(r[2].st, IPC_CLIENT_REPLY);
    assert_int_equal(f->opened, 3);
}

static void test_oversized_frame_closes(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    char big[100];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ask(f, T_ECHO, big, &r);
    wait_for(f, &r);
    assert_int_equal(r.st, IPC_CLIENT_FAILED);
    assert_int_equal(f->closed, 1);
    assert_int_equal(ipc_service_connections(f->srv), 0);
}

static bool two_opened(void *ctx)
{
    struct fixture *f = ctx;
    return f->opened == 2;
}

static void test_connection_cap(void **state)
{
    struct fixture *f = *state;
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = ipc_connect(f->path);
        assert_true(fds[i] >= 0);
    }
    assert_true(testpeer_run_until(&f->env, two_opened, f));
    testpeer_run_for(&f->env, 50);
    assert_int_equal(ipc_service_connections(f->srv), 2); /* the third was refused */
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

static bool one_closed(void *ctx)
{
    return ((struct fixture *)ctx)->closed == 1;
}

static bool held_set(void *ctx)
{
    return ((struct fixture *)ctx)->held != NULL;
}

static void test_short_frame_and_held_connection(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    ask(f, T_LATER, "held", &r);
    assert_true(testpeer_run_until(&f->env, held_set, f));
    /* A frame cut short by EOF closes the connection. */
    int fd = ipc_connect(f->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\0\0\0\10\3\350\0\0abc", 11), 11);
    close(fd);
    assert_true(testpeer_run_until(&f->env, one_closed, f));
    /* The held connection is gone with the client: sending does nothing. */
    ipc_client_free(f->cl);
    f->cl = NULL;
    testpeer_run_for(&f->env, 50);
    assert_false(ipc_conn_is_open(f->held));
    ipc_conn_send(f->held, T_REPLY, "x", 1);
}

static void test_timeout_bound_local_and_cancel(void **state)
{
    struct fixture *f = *state;
    client_new(f, 2);
    struct result r[5] = {{0}};
    ask(f, T_SILENT, "a", &r[0]);
    struct ipc_request *gone = ask(f, T_SILENT, "b", &r[1]);
    ask(f, T_ECHO, "c", &r[2]); /* a third outstanding: refused, from the loop */
    assert_int_equal(r[2].calls, 0);
    wait_for(f, &r[2]);
    assert_int_equal(r[2].st, IPC_CLIENT_FAILED);
    ipc_client_cancel(f->cl, gone);
    uint64_t id;
    struct ipc_request *local = ipc_client_start(f->cl, on_done, &r[3], &id);
    ipc_client_later(f->cl, local);
    assert_int_equal(r[3].calls, 0);
    wait_for(f, &r[3]);
    assert_int_equal(r[3].st, IPC_CLIENT_LOCAL);
    wait_for(f, &r[0]); /* the timeout */
    assert_int_equal(r[0].st, IPC_CLIENT_FAILED);
    testpeer_run_for(&f->env, 50);
    assert_int_equal(r[1].calls, 0);
    assert_int_equal(ipc_client_outstanding(f->cl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replies_matched_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_reply_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_unknown_frames_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_frame_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_frame_and_held_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_bound_local_and_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
