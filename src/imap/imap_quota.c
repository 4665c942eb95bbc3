/*
 * imap_quota.c - QUOTA (RFC 9208): GETQUOTAROOT and GETQUOTA with the
 * resources STORAGE (KiB) and MESSAGE, over one quota root "" per account:
 * limits from the directory process (directory_client_peek: the worker's
 * cache, filled at login and refreshed in the background), usage from the store
 * (store_quota_usage). Also the limits APPEND passes to the store: those of
 * the target mailbox's owner (a shared mailbox: its owner's; public folders:
 * none). SETQUOTA is not offered (no QUOTASET): quotas are the administrator's.
 * Must never: report another account's quota, or apply any but the target owner's.
 */
#include "base/log.h"
#include "directory/directory_client.h"
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>

int imap_quota_limits(struct imap_session *s, const char *owner, uint64_t *bytes_r,
                      uint64_t *messages_r)
{
    struct imap_server *srv = s->srv;
    if (strcmp(owner, STORE_PUBLIC_OWNER) == 0) { /* public folders: no account, no quota */
        *bytes_r = *messages_r = 0;
        return 0;
    }
    /* Never waits: the last answer known, even expired (a refresh is then under way). */
    struct directory_answer a;
    int fresh = directory_client_peek(srv->dir, DIRECTORY_Q_ACCOUNT, owner, &a);
    int r = -1;
    if (fresh < 0)
        log_info("user=<%s>: quota not known yet, asked the directory", owner);
    else if (a.status != DIRECTORY_LOOKUP_OK || a.kind != DIRECTORY_LOCAL)
        log_warning("user=<%s>: no quota in the directory (account gone?)", owner);
    else {
        *bytes_r = a.quota_bytes;
        *messages_r = a.quota_messages;
        r = 0;
    }
    directory_answer_free(&a);
    return r;
}

/* "* QUOTA "" (STORAGE used limit MESSAGE used limit)" with the limited resources only. */
static bool quota_write(struct imap_session *s, struct slice tag)
{
    uint64_t qb, qm, bytes, messages;
    struct buf err = BUF_INIT;
    if (imap_quota_limits(s, s->account, &qb, &qm) != 0) {
        imap_printf(s, "%.*s NO [UNAVAILABLE] Quota unknown, try again later", TAGF(tag));
        return false;
    }
    if (store_quota_usage(s->srv->store, s->account, &bytes, &messages, &err) != 0) {
        imap_store_error(s, tag, "quota usage", &err);
        buf_free(&err);
        return false;
    }
    buf_free(&err);
    struct buf out = BUF_INIT;
    buf_append_cstr(&out, "* QUOTA \"\" (");
    if (qb != 0)
        buf_printf(&out, "STORAGE %llu %llu", (unsigned long long)((bytes + 1023) / 1024),
                   (unsigned long long)(qb / 1024));
    if (qm != 0)
        buf_printf(&out, "%sMESSAGE %llu %llu", qb ? " " : "", (unsigned long long)messages,
                   (unsigned long long)qm);
    buf_append_cstr(&out, ")");
    imap_printf(s, "%s", buf_cstr(&out));
    buf_free(&out);
    return true;
}

void imap_cmd_getquotaroot(struct imap_session *s, struct slice tag, bool uid,
                           const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n == 1 ? imap_mailbox_arg(s, &args[0]) : NULL;
    if (name == NULL) {
        imap_bad(s, tag, "Usage: GETQUOTAROOT mailbox");
        return;
    }
    /* Every mailbox of the account, existing or to be created, is under "". */
    struct buf out = BUF_INIT;
    buf_append_cstr(&out, "* QUOTAROOT ");
    imap_mailbox_name_write(s, &out, name);
    buf_append_cstr(&out, " \"\"");
    imap_printf(s, "%s", buf_cstr(&out));
    buf_free(&out);
    free(name);
    if (quota_write(s, tag))
        imap_printf(s, "%.*s OK GETQUOTAROOT completed", TAGF(tag));
}

void imap_cmd_getquota(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n)
{
    (void)uid;
    struct slice root;
    if (n != 1 || !imap_arg_astring(&args[0], &root)) {
        imap_bad(s, tag, "Usage: GETQUOTA root");
        return;
    }
    if (root.len != 0) {
        imap_printf(s, "%.*s NO [NONEXISTENT] No such quota root (yours is \"\")", TAGF(tag));
        return;
    }
    if (quota_write(s, tag))
        imap_printf(s, "%.*s OK GETQUOTA completed", TAGF(tag));
}
