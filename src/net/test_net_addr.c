/*
 * test_net_addr.c - unit tests of network matching (mynetworks).
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_networks(void **state)
{
    const char *nets[] = {"127.0.0.0/8", "[::1]/128", "192.0.2.128/25", "bogus/99", "10.1.2.3"};
    assert_true(net_addr_in_networks("127.1.2.3", nets, 5));
    assert_true(net_addr_in_networks("::1", nets, 5));
    assert_false(net_addr_in_networks("::2", nets, 5));
    assert_true(net_addr_in_networks("192.0.2.200", nets, 5));
    assert_false(net_addr_in_networks("192.0.2.100", nets, 5));
    assert_true(net_addr_in_networks("10.1.2.3", nets, 5));
    assert_false(net_addr_in_networks("10.1.2.4", nets, 5));
    assert_false(net_addr_in_networks("not an address", nets, 5));
    /* a slash with no prefix length is no network (it once matched every address, as /0) */
    const char *empty_prefix[] = {"10.0.0.0/"};
    assert_false(net_addr_in_networks("192.0.2.1", empty_prefix, 1));
}

/* The source address of an outgoing connection: the one of the socket's family. */
static void test_bind_source(void **state)
{
    (void)state;
    struct buf why = BUF_INIT;
    const char *const addrs[] = {"::1", "127.0.0.1"};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(net_addr_bind_source(fd, AF_INET, addrs, 2, &why), 1);
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    assert_int_equal(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(net_addr_bind_source(fd, AF_INET, addrs, 1, &why), 0); /* no IPv4 one */
    const char *const bad[] = {"mail.example"};
    assert_int_equal(net_addr_bind_source(fd, AF_INET, bad, 1, &why), -1);
    assert_non_null(strstr(buf_cstr(&why), "not an IP address"));
    close(fd);
    buf_free(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_networks),
                                       cmocka_unit_test(test_bind_source)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
