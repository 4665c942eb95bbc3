/*
 * mta_component.c - how wharfd knows the mta component.
 */
#include "mta/mta.h"

const struct component_def mta_component = {
    .name = "mta",
    .exchange_name = "Message Transfer Agent",
    .kind = COMPONENT_SINGLETON,
    .main = mta_main,
    .job = "queue, categorize, route, deliver, retry, bounce",
};
