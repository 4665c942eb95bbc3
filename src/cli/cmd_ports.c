/*
 * cmd_ports.c - wharf ports (not built yet).
 */
#include "cli/cli.h"

int cmd_ports(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("ports");
}
