/*
 * test_directory_client.c - unit tests for the workers' directory client
 * against a scripted directory process on a real unix socket: the cache
 * (positive and negative answers, never temporary failures), the bound on
 * outstanding lookups, timeouts, peek, and answers always from the loop.
 *
 * The peer answers by key: "silent@x" -> nothing; "nobody@x" -> NO_SUCH_USER;
 * anything else -> LOCAL with the key as its one target.
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

#include "base/alloc.h"
#include "directory/directory_client.h"
#include "ipc/channel.h"
#include "ipc/frame.h"

struct fixture {
    char dir[64];
    struct wharf_config cfg;
    struct event_base *base;
    struct evconnlistener *l;
    struct bufferevent *conn;
    unsigned requests; /* lookups the peer received */
    struct directory_client *client;
};

struct answer {
    int calls;
    enum directory_lookup_status status;
    enum directory_resolve_kind kind;
    char target[64];
};

static void on_answer(void *arg, const struct directory_answer *a)
{
    struct answer *r = arg;
    r->calls++;
    r->status = a->status;
    r->kind = a->kind;
    snprintf(r->target, sizeof(r->target), "%s", a->n_targets ? a->accounts[0] : "");
}

static void peer_read(struct bufferevent *bev, void *arg)
{
    struct fixture *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct ipc_frame fr;
    size_t used;
    while (ipc_evbuffer_frame(in, 4096, &fr, &used) == IPC_PARSE_OK) {
        uint64_t id;
        enum directory_query q;
        struct slice key;
        const char *why;
        assert_int_equal(fr.type, IPC_DIRECTORY_LOOKUP);
        assert_int_equal(directory_proto_get_lookup(fr.payload, fr.len, &id, &q, &key, &why), 0);
        char *k = slice_strdup(key);
        evbuffer_drain(in, used);
        f->requests++;
        if (strcmp(k, "silent@x") != 0) {
            struct directory_answer a = {0};
            char *folder = (char *)"";
            a.kind = strcmp(k, "nobody@x") == 0 ? DIRECTORY_NO_SUCH_USER : DIRECTORY_LOCAL;
            if (a.kind == DIRECTORY_LOCAL) {
                a.n_targets = 1;
                a.accounts = &k;
                a.folders = &folder;
            }
            struct buf p = BUF_INIT, out = BUF_INIT;
            directory_proto_put_answer(&p, id, &a);
            ipc_frame_encode(&out, IPC_DIRECTORY_ANSWER, p.data, p.len);
            bufferevent_write(bev, out.data, out.len);
            buf_free(&p);
            buf_free(&out);
        }
        free(k);
    }
}

static void peer_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int socklen, void *arg)
{
    struct fixture *f = arg;
    assert_null(f->conn);
    f->conn = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->conn, peer_read, NULL, NULL, f);
    bufferevent_enable(f->conn, EV_READ | EV_WRITE);
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/wharf-dircl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct buf path = BUF_INIT, text = BUF_INIT, err = BUF_INIT;
    buf_printf(&path, "%s/run", f->dir);
    assert_int_equal(mkdir(path.data, 0700), 0);
    buf_printf(&text,
               "data_directory = %s\ndirectory_client_timeout = 200ms\n"
               "directory_client_queue_max = 2\ndirectory_client_negative_ttl = 1h\n",
               f->dir);
    config_init(&f->cfg);
    assert_int_equal(config_load_string(&f->cfg, "test", text.data, &err), 0);
    assert_int_equal(config_finalize(&f->cfg, &err), 0);
    f->base = event_base_new();
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/run/directory.sock", f->dir);
    f->l = evconnlistener_new_bind(f->base, peer_accept, f, LEV_OPT_CLOSE_ON_FREE, 16,
                                   (struct sockaddr *)&sun, sizeof(sun));
    assert_non_null(f->l);
    f->client = directory_client_new(f->base, &f->cfg);
    buf_free(&path);
    buf_free(&text);
    buf_free(&err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    directory_client_free(f->client);
    if (f->conn)
        bufferevent_free(f->conn);
    evconnlistener_free(f->l);
    event_base_free(f->base);
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/run/directory.sock", f->dir);
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

/* Runs the loop until every answer has its call. */
static void run_until(struct fixture *f, struct answer *a, size_t n)
{
    for (int spins = 0; spins < 1000; spins++) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += a[i].calls > 0;
        if (done == n)
            return;
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    fail_msg("answers did not come");
}

static void test_answers_are_cached(void **state)
{
    struct fixture *f = *state;
    struct answer a[4] = {{0}};
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "alice@x", on_answer, &a[0]);
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "nobody@x", on_answer, &a[1]);
    run_until(f, a, 2);
    assert_int_equal(a[0].kind, DIRECTORY_LOCAL);
    assert_string_equal(a[0].target, "alice@x");
    assert_int_equal(a[1].kind, DIRECTORY_NO_SUCH_USER);
    assert_int_equal(f->requests, 2);
    /* From the cache, and still from the loop, never inside the call. */
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "alice@x", on_answer, &a[2]);
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "nobody@x", on_answer, &a[3]);
    assert_int_equal(a[2].calls + a[3].calls, 0);
    run_until(f, a + 2, 2);
    assert_int_equal(f->requests, 2);
    assert_string_equal(a[2].target, "alice@x");
    assert_int_equal(a[3].kind, DIRECTORY_NO_SUCH_USER);
    /* Another query on the same key is another answer. */
    struct answer b = {0};
    directory_client_lookup(f->client, DIRECTORY_Q_ACCOUNT, "alice@x", on_answer, &b);
    run_until(f, &b, 1);
    assert_int_equal(f->requests, 3);
}

static void test_tempfail_is_not_cached_and_the_queue_is_bounded(void **state)
{
    struct fixture *f = *state;
    struct answer a[3] = {{0}};
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "silent@x", on_answer, &a[0]);
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "silent@x", on_answer, &a[1]);
    /* directory_client_queue_max = 2: the third fails at once, unsent. */
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "bob@x", on_answer, &a[2]);
    run_until(f, a + 2, 1);
    assert_int_equal(a[2].status, DIRECTORY_LOOKUP_TEMPFAIL);
    assert_int_equal(a[0].calls + a[1].calls, 0);
    run_until(f, a, 2); /* the timeout */
    assert_int_equal(a[0].status, DIRECTORY_LOOKUP_TEMPFAIL);
    assert_int_equal(a[1].status, DIRECTORY_LOOKUP_TEMPFAIL);
    assert_int_equal(f->requests, 2);
    struct answer c = {0};
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "silent@x", on_answer, &c);
    run_until(f, &c, 1);
    assert_int_equal(f->requests, 3); /* asked again: failures are not kept */
}

static void test_peek_and_cancel(void **state)
{
    struct fixture *f = *state;
    struct directory_answer got;
    assert_int_equal(directory_client_peek(f->client, DIRECTORY_Q_ACCOUNT, "carol@x", &got), -1);
    directory_answer_free(&got);
    /* The peek asked; a cancelled lookup never calls back. */
    struct answer gone = {0}, a = {0};
    void *h = directory_client_lookup(f->client, DIRECTORY_Q_ACCOUNT, "dave@x", on_answer, &gone);
    directory_client_cancel(f->client, h);
    directory_client_lookup(f->client, DIRECTORY_Q_ACCOUNT, "carol@x", on_answer, &a);
    run_until(f, &a, 1);
    while (f->requests < 2)
        event_base_loop(f->base, EVLOOP_ONCE);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(gone.calls, 0);
    assert_int_equal(directory_client_peek(f->client, DIRECTORY_Q_ACCOUNT, "carol@x", &got), 1);
    assert_int_equal(got.kind, DIRECTORY_LOCAL);
    assert_string_equal(got.accounts[0], "carol@x");
    directory_answer_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers_are_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tempfail_is_not_cached_and_the_queue_is_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peek_and_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
