/*
 * testdir.c - temporary data directories for unit tests (see testdir.h).
 * Removes with nftw, never through a shell.
 */
#include "base/testdir.h"
#include "base/buf.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int testdir_open(struct wharf_config *cfg, char *dir)
{
    struct buf err = BUF_INIT;
    int rc = 0;
    config_init(cfg);
    if (mkdtemp(dir) == NULL) {
        perror(dir);
        rc = -1;
    } else if (config_set(cfg, "data_directory", dir, "test", &err) != 0 ||
               config_finalize(cfg, &err) != 0) {
        fprintf(stderr, "test configuration: %s\n", buf_cstr(&err));
        rc = -1;
    }
    buf_free(&err);
    return rc;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

int testdir_close(struct wharf_config *cfg, const char *dir)
{
    int rc = nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    config_free(cfg);
    return rc == 0 ? 0 : -1;
}
