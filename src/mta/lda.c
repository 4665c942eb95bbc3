/*
 * lda.c - `wharf deliver` (see lda.h): lda_client.c reads the message and
 * hands it to the running mta over deliver.sock; when wharfd is not running
 * it is delivered here, in-process. Never writes under DATA as root:
 * privileges are dropped (after datadir_prepare) before the store is opened.
 */
#include "mta/lda.h"
#include "base/alloc.h"
#include "base/component.h"
#include "base/datadir.h"
#include "base/log.h"
#include "ipc/control.h"
#include "ipc/frame.h"
#include "mta/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

struct notify_ctx {
    const struct wharf_config *cfg;
};

static void notify_changed(void *arg, const char *account, const char *mailbox)
{
    struct notify_ctx *n = arg;
    struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                           .u.mailbox_changed = {.owner = account, .mailbox = mailbox}};
    control_notify(n->cfg, &ev);
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
    struct lda_request rq = {.msg = BUF_INIT};
    int code = lda_client_deliver(cfg, argc, argv, &rq);
    if (code == LDA_MTA_DOWN) {
        char *user = lda_user_address(cfg, rq.user);
        code = in_process(cfg, user, rq.folder, buf_slice(&rq.msg));
        free(user);
    }
    buf_free(&rq.msg);
    return code;
}
