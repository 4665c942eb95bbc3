/*
 * cmd_mailbox.c - wharf mailbox (not built yet).
 */
#include "cli/cli.h"

int cmd_mailbox(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("mailbox");
}
