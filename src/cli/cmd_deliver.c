/*
 * cmd_deliver.c - wharf deliver (not built yet).
 */
#include "cli/cli.h"

int cmd_deliver(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("deliver");
}
