/*
 * imap_component.c - how wharfd knows the imap component.
 */
#include "imap/imap.h"

int imap_main(struct component_ctx *ctx);

static const char *const imap_sandbox_data[] = {"store", NULL};

const struct component_def imap_component = {
    .name = "imap",
    .exchange_name = "IMAP4",
    .kind = COMPONENT_WORKERS,
    .main = imap_main,
    .job = "mailbox access over IMAP4rev2/rev1",
    .sandbox_data = imap_sandbox_data, /* the store: metadata and blobs */
};
