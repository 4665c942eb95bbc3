/*
 * cmd_accounts.c - wharf domain user alias (not built yet).
 */
#include "cli/cli.h"

int cmd_domain(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("domain");
}

int cmd_user(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("user");
}

int cmd_alias(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("alias");
}
