/*
 * auth.h - the auth component (Authentication): checks credentials for the workers; holds the password hashes.
 */
#ifndef WHARF_AUTH_AUTH_H
#define WHARF_AUTH_AUTH_H

#include "base/component.h"

extern const struct component_def auth_component;

#endif
