/*
 * lda_client.c - the client half of `wharf deliver` (see lda.h): arguments,
 * the message on stdin, and its hand-over to the running mta over
 * DATA/run/deliver.sock. Needs libc and src/base only, so that the small
 * `wharf` front (src/cli/front.c) delivers without loading the libraries of
 * the whole server: with them, starting the process cost ~5 ms of CPU, which
 * bounded deliveries through `wharf deliver` to ~300/s on two cores.
 */
#include "base/alloc.h"
#include "base/fdio.h"
#include "ipc/frame.h"
#include "mta/lda.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#define LDA_REPLY_MAX 4096 /* a reply is a code and one line of text */

static int parse_args(int argc, char **argv, const char **user_r, const char **folder_r)
{
    int c;
    *folder_r = NULL;
    optind = 1;
    while ((c = getopt(argc, argv, "m:")) != -1) {
        if (c != 'm')
            break;
        *folder_r = optarg;
    }
    if (c != -1 || optind + 1 != argc) {
        fprintf(stderr, "usage: wharf deliver [-m FOLDER] USER < MESSAGE\n");
        return EX_USAGE;
    }
    *user_r = argv[optind];
    return 0;
}

static int read_message(const struct wharf_config *cfg, struct buf *msg)
{
    struct buf raw = BUF_INIT;
    if (fd_read_all(STDIN_FILENO, cfg->mta_deliver_message_max, &raw) != 0) {
        bool big = errno == EFBIG;
        fprintf(stderr, "wharf deliver: %s\n",
                big ? "message larger than mta_deliver_message_max" : strerror(errno));
        buf_free(&raw);
        return big ? EX_DATAERR : EX_IOERR;
    }
    lda_crlf(buf_slice(&raw), msg);
    buf_free(&raw);
    if (msg->len > cfg->mta_deliver_message_max) {
        fprintf(stderr, "wharf deliver: message larger than mta_deliver_message_max\n");
        return EX_DATAERR;
    }
    return 0;
}

/* 0 connected; -1 nobody listening (deliver in-process); -2 other error (errno). */
static int connect_mta(const struct wharf_config *cfg, int *fd_r)
{
    char *path = config_data_path(cfg, "run/deliver.sock");
    *fd_r = ipc_connect(path);
    free(path);
    if (*fd_r >= 0)
        return 0;
    return (errno == ENOENT || errno == ECONNREFUSED) ? -1 : -2;
}

static int via_mta(int fd, const char *user, const char *folder, struct slice msg)
{
    struct buf req = BUF_INIT, rep = BUF_INIT;
    lda_encode_request(&req, user, folder, msg);
    int code = EX_TEMPFAIL;
    uint16_t type;
    struct slice text;
    if (ipc_send(fd, IPC_DELIVER_REQUEST, req.data, req.len) != 0)
        fprintf(stderr, "wharf deliver: cannot send to the mta: %s\n", strerror(errno));
    else if (ipc_recv(fd, LDA_REPLY_MAX, &type, &rep) != 0 || type != IPC_DELIVER_REPLY ||
             lda_decode_reply(rep.data, rep.len, &code, &text) != 0) {
        fprintf(stderr, "wharf deliver: no valid reply from the mta\n");
        code = EX_TEMPFAIL;
    } else if (code != 0 || !slice_eq(text, SLICE_LIT("delivered to mailbox")))
        fprintf(stderr, "wharf deliver: %s: %.*s\n", user, (int)text.len, text.ptr);
    buf_free(&req);
    buf_free(&rep);
    return code;
}

int lda_client_deliver(const struct wharf_config *cfg, int argc, char **argv,
                       struct lda_request *rq)
{
    int fd = -1, code = parse_args(argc, argv, &rq->user, &rq->folder);
    if (code == 0)
        code = read_message(cfg, &rq->msg);
    if (code != 0)
        return code;
    int cr = connect_mta(cfg, &fd);
    if (cr == -1)
        return LDA_MTA_DOWN;
    if (cr != 0) {
        fprintf(stderr, "wharf deliver: cannot reach the mta: %s\n", strerror(errno));
        return errno == EACCES ? EX_NOPERM : EX_TEMPFAIL;
    }
    char *address = lda_user_address(cfg, rq->user);
    code = via_mta(fd, address, rq->folder, buf_slice(&rq->msg));
    free(address);
    close(fd);
    return code;
}
