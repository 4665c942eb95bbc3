/*
 * cli_args.h - the options before a wharf command (-c FILE, -o name=value),
 * shared by the `wharf` front (front.c) and the full program (wharf.c).
 */
#ifndef WHARF_CLI_CLI_ARGS_H
#define WHARF_CLI_CLI_ARGS_H

#include "base/config.h"

#include <stddef.h>

struct cli_args {
    const char *config_path; /* -c, else $WHARF_CONFIG, else the installed
                              * wharf.conf (base/installdirs.h), else NULL: defaults */
    char **assignments;      /* -o name=value, in order */
    size_t n_assignments;
};

/*
 * Reads the options from argv[first] on; returns the index of the first
 * argument that is not one of them (argc when none is left). Free
 * a->assignments afterwards.
 */
int cli_args_parse(struct cli_args *a, int argc, char **argv, int first);

/* Reads the configuration into cfg; on error prints it and returns EX_CONFIG. */
int cli_args_config(const struct cli_args *a, struct wharf_config *cfg);

#endif
