/*
 * nntp_component.c - how wharfd knows the nntp component.
 */
#include "nntp/nntp.h"

const struct component_def nntp_component = {
    .name = "nntp",
    .exchange_name = "NNTP",
    .kind = COMPONENT_WORKERS,
    .main = NULL, /* not built yet */
    .job = "public folders as newsgroups; feeds to other news servers",
};
