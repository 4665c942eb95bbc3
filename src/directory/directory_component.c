/*
 * directory_component.c - how wharfd knows the directory component.
 */
#include "directory/directory.h"

const struct component_def directory_component = {
    .name = "directory",
    .exchange_name = "Active Directory Connector",
    .kind = COMPONENT_SINGLETON,
    .main = directory_main,
    .check_config = directory_check_config,
    .job = "directory lookups for the workers (recipients, aliases, quotas, home servers)",
};
