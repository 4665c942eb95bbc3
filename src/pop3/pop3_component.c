/*
 * pop3_component.c - how wharfd knows the pop3 component.
 */
#include "pop3/pop3.h"

int pop3_main(struct component_ctx *ctx);

static const char *const pop3_sandbox_data[] = {"store", "run/pop3", NULL};

const struct component_def pop3_component = {
    .name = "pop3",
    .exchange_name = "POP3",
    .kind = COMPONENT_WORKERS,
    .main = pop3_main,
    .job = "mailbox download over POP3",
    .sandbox_data = pop3_sandbox_data, /* the store, and the maildrop locks */
};
