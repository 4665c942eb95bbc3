/*
 * smtp_policy.c - recipient, relay and sender decisions (see smtp_policy.h).
 *
 * Uses the directory (directory/directory.h); when it cannot be opened or
 * read, recipients get a temporary failure (451), never a rejection.
 */
#include "smtp/smtp_policy.h"

#include "base/alloc.h"
#include "base/log.h"
#include "directory/directory.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct smtp_policy {
    const struct wharf_config *cfg;
    struct directory *dir;
};

struct smtp_policy *smtp_policy_new(const struct wharf_config *cfg)
{
    struct smtp_policy *p = xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    struct buf err = BUF_INIT;
    p->dir = directory_open(cfg, &err);
    if (p->dir == NULL)
        log_error("directory unavailable (recipients get 451 until it is): %s", buf_cstr(&err));
    buf_free(&err);
    return p;
}

void smtp_policy_free(struct smtp_policy *p)
{
    if (p->dir)
        directory_close(p->dir);
    free(p);
}

enum smtp_rcpt_verdict smtp_policy_rcpt(struct smtp_policy *p, const char *address, bool may_relay)
{
    if (p->dir == NULL) {
        struct buf err = BUF_INIT;
        p->dir = directory_open(p->cfg, &err);
        buf_free(&err);
        if (p->dir == NULL)
            return SMTP_RCPT_TEMPFAIL;
    }
    struct directory_result r = {0};
    struct buf err = BUF_INIT;
    int rc = directory_resolve(p->dir, address, &r, &err);
    if (rc != 0) {
        log_warning("directory lookup of <%s> failed: %s", address, buf_cstr(&err));
        buf_free(&err);
        return SMTP_RCPT_TEMPFAIL;
    }
    buf_free(&err);
    enum directory_resolve_kind kind = r.kind;
    bool loop = r.loop;
    directory_result_free(&r);
    if (kind == DIRECTORY_LOCAL)
        return SMTP_RCPT_LOCAL;
    if (kind == DIRECTORY_NO_SUCH_USER)
        return loop ? SMTP_RCPT_LOOP : SMTP_RCPT_NO_SUCH_USER;
    return may_relay ? SMTP_RCPT_RELAY : SMTP_RCPT_RELAY_DENIED;
}

int smtp_policy_sender_owned(struct smtp_policy *p, const char *sender, const char *account)
{
    if (sender[0] == '\0' || strcasecmp(sender, account) == 0)
        return 1;
    if (p->dir == NULL)
        return -1;
    struct directory_result r = {0};
    struct buf err = BUF_INIT;
    int rc = directory_resolve(p->dir, sender, &r, &err);
    buf_free(&err);
    if (rc != 0)
        return -1;
    int owned = 0;
    for (size_t i = 0; r.kind == DIRECTORY_LOCAL && i < r.n_targets; i++) {
        if (strcasecmp(r.targets[i].account, account) == 0)
            owned = 1;
    }
    directory_result_free(&r);
    return owned;
}
