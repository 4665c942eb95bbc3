/*
 * smtp_policy.c - recipient, relay and sender decisions (see smtp_policy.h).
 *
 * Uses the directory (directory/directory.h). While the directory is not
 * built into this tree (WHARF_HAVE_DIRECTORY undefined), mydomains alone
 * decides what is local and every local address is taken as a user.
 */
#include "smtp/smtp_policy.h"

#include "base/alloc.h"
#include "base/log.h"
#ifdef WHARF_HAVE_DIRECTORY
#include "directory/directory.h"
#endif

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct smtp_policy {
    const struct wharf_config *cfg;
#ifdef WHARF_HAVE_DIRECTORY
    struct directory *dir;
#endif
};

struct smtp_policy *smtp_policy_new(const struct wharf_config *cfg)
{
    struct smtp_policy *p = xcalloc(1, sizeof(*p));
    p->cfg = cfg;
#ifdef WHARF_HAVE_DIRECTORY
    struct buf err = BUF_INIT;
    p->dir = directory_open(cfg, &err);
    if (p->dir == NULL)
        log_error("directory unavailable (recipients get 451 until it is): %s", buf_cstr(&err));
    buf_free(&err);
#else
    log_warning("built without the directory: every address in mydomains is accepted");
#endif
    return p;
}

void smtp_policy_free(struct smtp_policy *p)
{
#ifdef WHARF_HAVE_DIRECTORY
    if (p->dir)
        directory_close(p->dir);
#endif
    free(p);
}

__attribute__((unused)) static const char *domain_of(const char *address)
{
    const char *at = strrchr(address, '@');
    return at ? at + 1 : "";
}

enum smtp_rcpt_verdict smtp_policy_rcpt(struct smtp_policy *p, const char *address, bool may_relay)
{
#ifdef WHARF_HAVE_DIRECTORY
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
    directory_result_free(&r);
    if (kind == DIRECTORY_LOCAL)
        return SMTP_RCPT_LOCAL;
    if (kind == DIRECTORY_NO_SUCH_USER)
        return SMTP_RCPT_NO_SUCH_USER;
#else
    if (strlist_contains_nocase(&p->cfg->mydomains, domain_of(address)))
        return SMTP_RCPT_LOCAL;
#endif
    return may_relay ? SMTP_RCPT_RELAY : SMTP_RCPT_RELAY_DENIED;
}

int smtp_policy_sender_owned(struct smtp_policy *p, const char *sender, const char *account)
{
    if (sender[0] == '\0' || strcasecmp(sender, account) == 0)
        return 1;
#ifdef WHARF_HAVE_DIRECTORY
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
#else
    (void)domain_of;
    return 0;
#endif
}
