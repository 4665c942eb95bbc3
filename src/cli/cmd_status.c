/*
 * cmd_status.c - wharf status (not built yet).
 */
#include "cli/cli.h"

int cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("status");
}
