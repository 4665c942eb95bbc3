/*
 * routing.h - the routing component (Routing Engine): link-state routing between the servers of an
 * organization.
 */
#ifndef WHARF_ROUTING_ROUTING_H
#define WHARF_ROUTING_ROUTING_H

#include "base/component.h"

extern const struct component_def routing_component;

#endif
