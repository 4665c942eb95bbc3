/*
 * cli_args.c - the options before a wharf command (see cli_args.h).
 */
#include "cli/cli_args.h"
#include "base/alloc.h"
#include "base/installdirs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

int cli_args_parse(struct cli_args *a, int argc, char **argv, int first)
{
    a->assignments = xcalloc((size_t)argc + 1, sizeof(char *));
    int i = first;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            a->config_path = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            a->assignments[a->n_assignments++] = argv[++i];
        else
            break;
    }
    if (a->config_path == NULL)
        a->config_path = getenv("WHARF_CONFIG");
    if (a->config_path == NULL)
        a->config_path = installdirs_default_config();
    return i;
}

int cli_args_config(const struct cli_args *a, struct wharf_config *cfg)
{
    struct buf err = BUF_INIT;
    int r = config_read(cfg, a->config_path, a->assignments, a->n_assignments, &err);
    if (r != 0)
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
    buf_free(&err);
    return r != 0 ? EX_CONFIG : 0;
}
