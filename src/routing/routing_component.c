/*
 * routing_component.c - how wharfd knows the routing component.
 */
#include "routing/routing.h"

const struct component_def routing_component = {
    .name = "routing",
    .exchange_name = "Routing Engine",
    .kind = COMPONENT_SINGLETON,
    .main = NULL, /* not built yet */
    .job = "link-state routing between the servers of an organization",
};
