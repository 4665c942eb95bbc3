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

#include "base/alloc.h"
#include "base/clock.h"
#include "base/slab.h"

#include <event2/event.h>
#include <string.h>

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

static void fd_noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

/*
 * libevent keeps a small record for every socket number a base ever watched
 * (its evmap entry, 16 bytes with epoll), from the first event_add of that
 * number until the base is freed. Made by that first add, it came from malloc
 * in the middle of a burst's TLS handshakes, and each one then kept a page of
 * the heap resident after the handshakes were freed. Made here in the slab
 * instead, once per number and base: an add and a delete of a throw-away event.
 */
void net_slab_fd_record(struct event_base *base, evutil_socket_t fd)
{
    static _Thread_local struct event_base *seen_base;
    static _Thread_local uint8_t *seen; /* a bit per socket number recorded */
    static _Thread_local size_t seen_len;
    if (fd < 0)
        return;
    if (seen_base != base) { /* another base: its records are its own */
        free(seen);
        seen = NULL;
        seen_len = 0;
        seen_base = base;
    }
    size_t i = (size_t)fd / 8;
    if (i >= seen_len) {
        size_t n = seen_len ? seen_len : 256;
        while (n <= i)
            n *= 2;
        seen = xrealloc(seen, n);
        memset(seen + seen_len, 0, n - seen_len);
        seen_len = n;
    }
    uint8_t bit = (uint8_t)(1u << ((unsigned)fd % 8));
    if (seen[i] & bit)
        return;
    seen[i] |= bit;
    net_slab_enter();
    struct event *ev = event_new(base, fd, EV_READ, fd_noop_cb, NULL);
    if (ev != NULL) {
        if (event_add(ev, NULL) == 0)
            event_del(ev);
        event_free(ev);
    }
    net_slab_leave();
}
