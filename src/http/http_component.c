/*
 * http_component.c - how wharfd knows the http component.
 */
#include "http/http.h"

const struct component_def http_component = {
    .name = "http",
    .exchange_name = "Outlook Web Access",
    .kind = COMPONENT_WORKERS,
    .main = NULL, /* not built yet */
    .job = "webmail, JMAP API, admin API, /metrics",
};
