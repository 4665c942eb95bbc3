/*
 * pop3_component.c - how wharfd knows the pop3 component.
 */
#include "pop3/pop3.h"

const struct component_def pop3_component = {
    .name = "pop3",
    .exchange_name = "POP3",
    .kind = COMPONENT_WORKERS,
    .main = NULL, /* not built yet */
    .job = "mailbox download over POP3",
};
