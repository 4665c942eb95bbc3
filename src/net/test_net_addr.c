/*
 * test_net_addr.c - unit tests of network matching (mynetworks).
 */
#include "net/net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

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
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_networks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
