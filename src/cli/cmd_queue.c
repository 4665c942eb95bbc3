/*
 * cmd_queue.c - wharf queue (not built yet).
 */
#include "cli/cli.h"

int cmd_queue(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("queue");
}
