/*
 * cmd_sendmail.c - wharf sendmail mailq (not built yet).
 */
#include "cli/cli.h"

int cmd_sendmail(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("sendmail");
}

int cmd_mailq(struct cli_ctx *ctx, int argc, char **argv)
{
    return cli_not_built("mailq");
}
