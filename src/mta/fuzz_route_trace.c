/*
 * fuzz_route_trace.c - libFuzzer target: a Wharf-Route field's value (from a
 * message that anyone may send to port 25) through the route trace parser.
 * Must never crash or read out of bounds; what it finds lies inside the
 * input, and is found only with both items there. The same bytes as a whole message
 * through the route id's content digest (nexthop_route_id_content).
 */
#include "mta/nexthop.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(struct slice s, const uint8_t *data, size_t size)
{
    return s.len == 0 ||
           ((const uint8_t *)s.ptr >= data && (const uint8_t *)s.ptr + s.len <= data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice org, group;
    bool ok = nexthop_route_trace_parse(slice_make(data, size), &org, &group);
    if (!inside(org, data, size) || !inside(group, data, size))
        abort();
    if (ok != (org.len > 0 && group.len > 0))
        abort();
    struct slice id = nexthop_route_trace_item(slice_make(data, size), "id");
    if (!inside(id, data, size))
        abort();
    unsigned char md[32];
    nexthop_route_id_content(slice_make(data, size), md);
    return 0;
}
