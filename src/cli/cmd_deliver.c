/*
 * cmd_deliver.c - wharf deliver [-m FOLDER] USER < MESSAGE: the local
 * delivery agent. The work is in src/mta/lda.c, next to the mta it talks to.
 */
#include "cli/cli.h"
#include "mta/lda.h"

int cmd_deliver(struct cli_ctx *ctx, int argc, char **argv)
{
    return lda_main(ctx->cfg, argc, argv);
}
