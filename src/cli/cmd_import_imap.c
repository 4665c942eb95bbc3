/*
 * cmd_import_imap.c - wharf import imap: placeholder.
 */
#include "cli/import.h"

#include <sysexits.h>

int import_imap(struct cli_ctx *ctx, struct store *s, const char *owner, int argc, char **argv)
{
    (void)ctx;
    (void)s;
    (void)owner;
    (void)argc;
    (void)argv;
    return cli_not_built("import imap");
}
