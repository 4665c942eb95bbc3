/*
 * test_net_slab.c - libevent's allocations in the slab (net_slab.c): the
 * record libevent keeps for each socket number is made there, once per number.
 */
#include "base/slab.h"
#include "net/net_internal.h"

#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static void noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

static void test_fd_record_in_slab(void **state)
{
    (void)state;
    net_slab_install();
    struct event_base *base = event_base_new();
    assert_non_null(base);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t before = slab_objects();
    net_slab_fd_record(base, sv[0]);
    size_t recorded = slab_objects();
    assert_true(recorded > before); /* the record (and the first time the map's array) */
    net_slab_fd_record(base, sv[0]);
    assert_int_equal(slab_objects(), recorded); /* once per socket number */
    /* The socket's events made later, outside the slab, find the record there. */
    struct event *ev = event_new(base, sv[0], EV_READ, noop_cb, NULL);
    assert_int_equal(event_add(ev, NULL), 0);
    assert_int_equal(slab_objects(), recorded);
    /* A socket number never recorded gets its record from malloc, as before. */
    struct event *other = event_new(base, sv[1], EV_READ, noop_cb, NULL);
    assert_int_equal(event_add(other, NULL), 0);
    assert_int_equal(slab_objects(), recorded);
    event_free(ev);
    event_free(other);
    event_base_free(base); /* gives the record back to the slab */
    assert_int_equal(slab_objects(), before);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_record_in_slab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
