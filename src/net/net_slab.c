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
