/*
 * cmd_config.c - wharf config (not built yet).
 */
#include "cli/cli.h"

int cmd_config(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("config");
}
