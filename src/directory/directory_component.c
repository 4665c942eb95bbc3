/*
 * directory_component.c - how wharfd knows the directory component.
 */
#include "directory/directory.h"

const struct component_def directory_component = {
    .name = "directory",
    .exchange_name = "Active Directory Connector",
    .kind = COMPONENT_SINGLETON,
    .main = NULL, /* not built yet */
    .job = "accounts and home servers from LDAP",
};
