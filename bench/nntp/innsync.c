/*
 * innsync.c - LD_PRELOAD for the bench's innd: fdatasync an article file of
 * the spool before innd closes it, i.e. INN with one sync per article, the
 * cost Wharf pays before it answers 240/239 (INN 2.7 has no option to sync
 * its spool: innd syncs nothing per article). Bench only, never installed.
 *
 * Built and used by bench/nntp/nntpbench.py when INN_SYNC=1:
 *   gcc -O2 -shared -fPIC -o innsync.so innsync.c -ldl
 * Must never: change what innd writes, or sync anything but spool article files.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int (*real_close)(int);

int close(int fd)
{
    if (real_close == NULL)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        char link[64], path[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof(path) - 1);
        if (n > 0) {
            path[n] = '\0';
            if (strstr(path, "/spool/articles/") != NULL)
                fdatasync(fd);
        }
    }
    return real_close(fd);
}
