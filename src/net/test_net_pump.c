/*
 * test_net_pump.c - unit tests of the pump (net_pump.h): a real OpenSSL
 * client over a socketpair to a server SSL driven by a pump on an event loop:
 * several records read in one wake-up and handed over once, a write the
 * socket cannot take retried and reported drained, reading held and resumed
 * (records OpenSSL holds read from the loop), the client's close_notify
 * reported as a clean end and a cut socket as an unclean one.
 */
#include "net/net_pump.h"

#include "base/buf.h"
#include "net/testtls.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static SSL_CTX *server_ctx, *client_ctx;

static int setup(void **state)
{
    (void)state;
    server_ctx = testtls_server_ctx();
    client_ctx = SSL_CTX_new(TLS_client_method());
    return server_ctx && client_ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    return 0;
}

struct t {
    struct event_base *base;
    SSL *cli, *srv;
    int cfd, sfd;
    struct net_pump *u;
    struct buf got;
    int readable, drained, gone, clean;
    bool take; /* readable takes what came */
};

static void t_readable(void *arg, struct evbuffer *in)
{
    struct t *t = arg;
    t->readable++;
    if (!t->take)
        return;
    size_t n = evbuffer_get_length(in);
    buf_reserve(&t->got, n);
    evbuffer_remove(in, t->got.data + t->got.len, n);
    t->got.len += n;
}

static void t_drained(void *arg)
{
    ((struct t *)arg)->drained++;
}

static void t_gone(void *arg, bool clean)
{
    struct t *t = arg;
    t->gone++;
    t->clean = clean;
}

static const struct net_pump_ops t_ops = {t_readable, t_drained, t_gone};

static void t_cb(evutil_socket_t fd, short what, void *arg)
{
    struct t *t = arg;
    (void)fd;
    net_pump_run(t->u, what, &t_ops, t);
}

static void t_open(struct t *t)
{
    memset(t, 0, sizeof(*t));
    t->take = true;
    t->cli = SSL_new(client_ctx);
    t->srv = SSL_new(server_ctx);
    testtls_connect(t->cli, t->srv, &t->cfd, &t->sfd);
    t->base = event_base_new();
    t->u = net_pump_new(t->base, t->sfd, t->srv, t_cb, t);
    net_pump_start(t->u);
}

static void t_close(struct t *t)
{
    net_pump_free(t->u);
    SSL_free(t->cli);
    SSL_free(t->srv);
    close(t->cfd);
    close(t->sfd);
    event_base_free(t->base);
    buf_free(&t->got);
}

static void loop_once(struct t *t)
{
    event_base_loop(t->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/* What the client reads now (its own SSL, non-blocking), appended to b. */
static size_t client_read(struct t *t, struct buf *b)
{
    size_t n = 0;
    char chunk[16384];
    int r;
    while ((r = SSL_read(t->cli, chunk, sizeof(chunk))) > 0) {
        buf_append(b, chunk, (size_t)r);
        n += (size_t)r;
    }
    return n;
}

static void test_records_in_one_wakeup(void **state)
{
    (void)state;
    struct t t;
    t_open(&t);
    /* Three records on the socket: one wake-up reads them all, one hand-over. */
    assert_int_equal(SSL_write(t.cli, "a1 NOOP\r\n", 9), 9);
    assert_int_equal(SSL_write(t.cli, "a2 NOOP\r\n", 9), 9);
    assert_int_equal(SSL_write(t.cli, "a3 NOOP\r\n", 9), 9);
    loop_once(&t);
    assert_int_equal(t.readable, 1);
    assert_int_equal(t.got.len, 27);
    assert_memory_equal(t.got.data, "a1 NOOP\r\na2 NOOP\r\na3 NOOP\r\n", 27);
    /* A reply goes out at once, no event needed. */
    evbuffer_add(net_pump_output(t.u), "a1 OK\r\n", 7);
    net_pump_flush(t.u);
    assert_int_equal(net_pump_pending(t.u), 0);
    struct buf b = BUF_INIT;
    assert_int_equal(client_read(&t, &b), 7);
    assert_memory_equal(b.data, "a1 OK\r\n", 7);
    assert_int_equal(t.drained, 0); /* never blocked */
    buf_free(&b);
    assert_true(net_pump_quiet(t.u));
    t_close(&t);
}

static void test_blocked_write_then_drained(void **state)
{
    (void)state;
    struct t t;
    t_open(&t);
    size_t big = 4 * 1024 * 1024;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    evbuffer_add(net_pump_output(t.u), data, big);
    net_pump_flush(t.u);
    assert_true(net_pump_pending(t.u) > 0); /* the socketpair took part of it */
    assert_false(net_pump_quiet(t.u));
    struct buf b = BUF_INIT;
    for (int i = 0; i < 100000 && b.len < big; i++) {
        client_read(&t, &b);
        loop_once(&t);
    }
    assert_int_equal(b.len, big);
    assert_memory_equal(b.data, data, big);
    assert_int_equal(net_pump_pending(t.u), 0);
    assert_int_equal(t.drained, 1);
    assert_int_equal(t.gone, 0);
    buf_free(&b);
    free(data);
    t_close(&t);
}

static void test_hold_and_resume(void **state)
{
    (void)state;
    struct t t;
    t_open(&t);
    net_pump_read(t.u, false);
    assert_int_equal(SSL_write(t.cli, "held\r\n", 6), 6);
    loop_once(&t);
    assert_int_equal(t.readable, 0);
    assert_int_equal(t.got.len, 0);
    /* On again: the bytes already on the socket come from the loop. */
    net_pump_read(t.u, true);
    loop_once(&t);
    assert_int_equal(t.got.len, 6);
    /* Records OpenSSL read ahead while the owner held: a kick, not the socket, wakes it. */
    t.take = false;
    assert_int_equal(SSL_write(t.cli, "x1\r\n", 4), 4);
    assert_int_equal(SSL_write(t.cli, "x2\r\n", 4), 4);
    loop_once(&t);
    assert_int_equal(evbuffer_get_length(net_pump_input(t.u)), 8);
    t.take = true;
    net_pump_read(t.u, false);
    net_pump_read(t.u, true);
    loop_once(&t);
    assert_int_equal(t.got.len, 14);
    assert_memory_equal(t.got.data, "held\r\nx1\r\nx2\r\n", 14);
    t_close(&t);
}

static void test_close_notify_and_cut(void **state)
{
    (void)state;
    struct t t;
    t_open(&t);
    assert_int_equal(SSL_write(t.cli, "bye\r\n", 5), 5);
    SSL_shutdown(t.cli);
    for (int i = 0; i < 10 && t.gone == 0; i++)
        loop_once(&t);
    assert_int_equal(t.got.len, 5); /* what came before the end is handed over first */
    assert_int_equal(t.gone, 1);
    assert_true(t.clean);
    loop_once(&t);
    assert_int_equal(t.gone, 1); /* once */
    t_close(&t);

    t_open(&t);
    shutdown(t.cfd, SHUT_RDWR); /* no close_notify */
    for (int i = 0; i < 10 && t.gone == 0; i++)
        loop_once(&t);
    assert_int_equal(t.gone, 1);
    assert_false(t.clean);
    t_close(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as in the server: a write to a cut socket is an error */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_in_one_wakeup),
        cmocka_unit_test(test_blocked_write_then_drained),
        cmocka_unit_test(test_hold_and_resume),
        cmocka_unit_test(test_close_notify_and_cut),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
