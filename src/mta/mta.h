/*
 * mta.h - the mta component (Message Transfer Agent): queue, categorize, route, deliver, retry,
 * bounce.
 */
#ifndef WHARF_MTA_MTA_H
#define WHARF_MTA_MTA_H

#include "base/component.h"

extern const struct component_def mta_component;

/* The mta process (mta_main.c). */
int mta_main(struct component_ctx *ctx);

#endif
