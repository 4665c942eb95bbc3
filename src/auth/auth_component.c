/*
 * auth_component.c - how wharfd knows the auth component.
 */
#include "auth/auth.h"

const struct component_def auth_component = {
    .name = "auth",
    .exchange_name = "Authentication",
    .kind = COMPONENT_SINGLETON,
    .main = auth_main,
    .job = "checks credentials for the workers; holds the password hashes",
};
