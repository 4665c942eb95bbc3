/*
 * lda.c - `wharf deliver` (see lda.h): read the message, hand it to the
 * running mta over deliver.sock, or deliver it in-process when wharfd is
 * not running. Never writes under DATA as root: privileges are dropped
 * (after datadir_prepare) before the store is opened.
 */
#include "mta/lda.h"
#include "base/alloc.h"
#include "base/component.h"
#include "base/datadir.h"
#include "base/log.h"
#include "ipc/control.h"
#include "ipc/frame.h"
#include "mta/local.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#define LDA_REPLY_MAX 4096 /* a reply is a code and one line of text */

static int read_all(int fd, uint64_t max, struct buf *out)
{
    for (;;) {
        buf_reserve(out, 65536);
        ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        out->len += (size_t)n;
        out->data[out->len] = '\0';
        if (out->len > max)
            return 1;
    }
    return 0;
}

/* 0 connected; -1 nobody listening (deliver in-process); -2 other error (errno). */
static int connect_mta(const struct wharf_config *cfg, int *fd_r)
{
    char *path = config_data_path(cfg, "run/deliver.sock");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        free(path);
        errno = ENAMETOOLONG;
        return -2;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    free(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -2;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return (e == ENOENT || e == ECONNREFUSED) ? -1 : -2;
    }
    *fd_r = fd;
    return 0;
}

static int via_mta(const struct wharf_config *cfg, int fd, const char *user, const char *folder,
                   struct slice msg)
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
    close(fd);
    buf_free(&req);
    buf_free(&rep);
    return code;
}

struct notify_ctx {
    const struct wharf_config *cfg;
};

static void notify_changed(void *arg, const char *account, const char *mailbox)
{
    struct notify_ctx *n = arg;
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s\t%s", account, mailbox);
    control_notify(n->cfg, IPC_EVENT_MAILBOX_CHANGED, p.data, p.len);
    buf_free(&p);
}

static int in_process(const struct wharf_config *cfg, const char *user, const char *folder,
                      struct slice msg)
{
    struct buf err = BUF_INIT;
    if (datadir_prepare(cfg, &err) != 0) {
        fprintf(stderr, "wharf deliver: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_TEMPFAIL;
    }
    component_drop_privileges(cfg);
    struct store *s = store_open(cfg, &err);
    struct directory *d = s ? directory_open(cfg, &err) : NULL;
    if (d == NULL) {
        fprintf(stderr, "wharf deliver: %s\n", buf_cstr(&err));
        store_close(s);
        buf_free(&err);
        return EX_TEMPFAIL;
    }
    struct local_rcpt r;
    local_rcpt_init(&r, user);
    struct local_message m = {.data = msg, .folder = folder, .rcpts = &r, .n_rcpts = 1};
    struct notify_ctx n = {cfg};
    local_deliver(s, d, &m, 1, notify_changed, &n);
    int code = lda_status_code(r.status);
    if (code != EX_OK || r.status == LOCAL_FORWARDS_PENDING)
        fprintf(stderr, "wharf deliver: %s: %s\n", user, buf_cstr(&r.detail));
    local_rcpt_free(&r);
    directory_close(d);
    store_close(s);
    buf_free(&err);
    return code;
}

int lda_main(const struct wharf_config *cfg, int argc, char **argv)
{
    const char *folder = NULL;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "m:")) != -1) {
        if (c == 'm')
            folder = optarg;
        else {
            fprintf(stderr, "usage: wharf deliver [-m FOLDER] USER < MESSAGE\n");
            return EX_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: wharf deliver [-m FOLDER] USER < MESSAGE\n");
        return EX_USAGE;
    }
    struct buf raw = BUF_INIT, msg = BUF_INIT;
    int r = read_all(STDIN_FILENO, cfg->mta_deliver_message_max, &raw);
    if (r != 0) {
        fprintf(stderr, "wharf deliver: %s\n",
                r > 0 ? "message larger than mta_deliver_message_max" : strerror(errno));
        buf_free(&raw);
        return r > 0 ? EX_DATAERR : EX_IOERR;
    }
    lda_crlf(buf_slice(&raw), &msg);
    buf_free(&raw);
    if (msg.len > cfg->mta_deliver_message_max) {
        fprintf(stderr, "wharf deliver: message larger than mta_deliver_message_max\n");
        buf_free(&msg);
        return EX_DATAERR;
    }
    char *user = lda_user_address(cfg, argv[optind]);
    int fd = -1, code;
    int cr = connect_mta(cfg, &fd);
    if (cr == 0)
        code = via_mta(cfg, fd, user, folder, buf_slice(&msg));
    else if (cr == -1)
        code = in_process(cfg, user, folder, buf_slice(&msg));
    else {
        fprintf(stderr, "wharf deliver: cannot reach the mta: %s\n", strerror(errno));
        code = errno == EACCES ? EX_NOPERM : EX_TEMPFAIL;
    }
    free(user);
    buf_free(&msg);
    return code;
}
