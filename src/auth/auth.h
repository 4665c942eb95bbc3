/*
 * auth.h - the auth component (Authentication): checks credentials for the workers; holds the
 * password hashes.
 */
#ifndef WHARF_AUTH_AUTH_H
#define WHARF_AUTH_AUTH_H

#include "base/component.h"

extern const struct component_def auth_component;

/* The auth process (auth_server.c): serves DATA_DIRECTORY/run/auth.sock. */
int auth_main(struct component_ctx *ctx);

#endif
