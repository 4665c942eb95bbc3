/*
 * front.c - the `wharf` program as users and scripts start it. It runs
 * `wharf deliver` itself while the mta listens on deliver.sock, and hands
 * every other command (and a delivery while wharfd is down) to wharf-admin,
 * the full program (wharf.c), with execv and the same argv.
 *
 * Why: wharf-admin links every library of the server (OpenSSL, SQLite,
 * libevent, libunbound and theirs, 15 in all); loading and relocating them
 * cost ~5 ms of CPU per process against ~0.7 ms for this one (libc and
 * src/base only), and a mail filter (procmail, fetchmail, maildrop) starts
 * one `wharf deliver` per message. Keep it that way: front.c must not use
 * anything outside src/base, src/ipc/frame.c and src/mta/lda_client.c.
 */
#include "base/alloc.h"
#include "base/fdio.h"
#include "cli/cli_args.h"
#include "mta/lda.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sysexits.h>
#include <unistd.h>

#ifndef WHARF_LIBEXECDIR
#define WHARF_LIBEXECDIR "/usr/local/libexec/wharf"
#endif
#define ADMIN_NAME "wharf-admin"

/* wharf-admin next to this program (the build tree), else the installed one. */
static void exec_admin(char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + sizeof(ADMIN_NAME)];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            slash[1] = '\0';
            snprintf(path, sizeof(path), "%s%s", self, ADMIN_NAME);
            if (access(path, X_OK) == 0)
                execv(path, argv);
        }
    }
    execv(WHARF_LIBEXECDIR "/" ADMIN_NAME, argv);
    fprintf(stderr, "wharf: cannot run %s/%s: %s\n", WHARF_LIBEXECDIR, ADMIN_NAME, strerror(errno));
}

/* The message becomes wharf-admin's stdin, for its in-process delivery. */
static int stdin_from(struct slice msg)
{
    int fd = memfd_create("wharf-deliver", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fd_write_all(fd, msg.ptr, msg.len) != 0) {
        close(fd);
        return -1;
    }
    int r = lseek(fd, 0, SEEK_SET) == 0 && dup2(fd, STDIN_FILENO) == STDIN_FILENO ? 0 : -1;
    close(fd);
    return r;
}

int main(int argc, char **argv)
{
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    struct cli_args args = {0};
    int i = strcmp(base, "sendmail") == 0 || strcmp(base, "mailq") == 0
                ? argc
                : cli_args_parse(&args, argc, argv, 1);
    if (i >= argc || strcmp(argv[i], "deliver") != 0) {
        free(args.assignments);
        exec_admin(argv);
        return EX_OSERR;
    }
    struct wharf_config cfg = {0};
    int code = cli_args_config(&args, &cfg);
    struct lda_request rq = {.msg = BUF_INIT};
    if (code == 0)
        code = lda_client_deliver(&cfg, argc - i, argv + i, &rq);
    if (code == LDA_MTA_DOWN) {
        if (stdin_from(buf_slice(&rq.msg)) == 0)
            exec_admin(argv);
        else
            fprintf(stderr, "wharf deliver: cannot pass the message on: %s\n", strerror(errno));
        code = EX_TEMPFAIL;
    }
    buf_free(&rq.msg);
    config_free(&cfg);
    free(args.assignments);
    return code;
}
