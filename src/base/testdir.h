/*
 * testdir.h - a temporary data directory and a configuration that points at
 * it, for unit tests of the parts that write under DATA (spool, maildrop,
 * mta). Test support only: never linked into a program.
 */
#ifndef WHARF_BASE_TESTDIR_H
#define WHARF_BASE_TESTDIR_H

#include "base/config.h"

/*
 * Makes the directory from dir, a mkdtemp template ("/tmp/wharf-x-XXXXXX")
 * that it overwrites, and a finalized cfg with data_directory = dir.
 * Returns 0, or -1 with a message on stderr.
 */
int testdir_open(struct wharf_config *cfg, char *dir);

/* Removes the directory and everything under it, and frees cfg; 0 or -1. */
int testdir_close(struct wharf_config *cfg, const char *dir);

#endif
