/*
 * net_slab.c - libevent's allocations into the slab (base/slab.h) while a
 * connection builds what it keeps while quiet: its events at accept, the
 * read event a parked connection sleeps on. Everything else libevent
 * allocates (buffer chains, lines it returns) comes from malloc as before.
 *
 * Must never: hand libevent a slab object outside net_slab_enter/leave (its
 * lines are freed with free() by their callers), or free a pointer with the
 * wrong heap (slab_free tells them apart by address).
 */
#include "net/net_internal.h"

#include "base/clock.h"
#include "base/slab.h"

#include <event2/event.h>

/* Per thread: only the event loop's thread enters (the slab is that thread's alone); an
 * offload thread allocating through libevent meanwhile gets malloc's memory. */
static _Thread_local int depth;

static void *ev_malloc(size_t n)
{
    return depth > 0 ? slab_malloc(n) : malloc(n);
}

static void *ev_realloc(void *p, size_t n)
{
    if (p == NULL)
        return ev_malloc(n);
    return slab_owns(p) ? slab_realloc(p, n) : realloc(p, n);
}

static void ev_free(void *p)
{
    slab_free(p);
}

void net_slab_install(void)
{
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
}

void net_slab_enter(void)
{
    depth++;
}

void net_slab_leave(void)
{
    depth--;
}

void net_slab_sleep_arm(struct event **ev, struct event_base *base, evutil_socket_t fd,
                        event_callback_fn cb, void *arg, int64_t timeout_ms, int64_t since_ms)
{
    if (*ev == NULL) {
        net_slab_enter();
        *ev = event_new(base, fd, EV_READ | EV_PERSIST, cb, arg);
        net_slab_leave();
    }
    if (timeout_ms <= 0) {
        event_add(*ev, NULL);
        return;
    }
    int64_t left = since_ms + timeout_ms - monotonic_ms();
    struct timeval tv = clock_timeval_ms(left > 1 ? left : 1);
    event_add(*ev, &tv);
}
