/*
 * mta_expand.c - alias expansion recorded in the spool entry (see
 * mta_expand.h). Resolution itself (depth limit, loops, duplicates inside
 * one alias) is directory_resolve's; this file only turns its answer into
 * spool recipients. Never writes the spool: the caller does.
 */
#include "mta/mta_expand.h"
#include "base/alloc.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Same address: local part exactly (accounts.md), domain in any case. */
static bool same_address(const char *a, const char *b)
{
    const char *aa = strrchr(a, '@'), *ba = strrchr(b, '@');
    if (aa == NULL || ba == NULL)
        return strcmp(a, b) == 0;
    return aa - a == ba - b && strncmp(a, b, (size_t)(aa - a)) == 0 && strcasecmp(aa, ba) == 0;
}

static bool same_folder(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* True when the entry already holds this address (not counting expanded aliases). */
static bool entry_has(const struct spool_envelope *e, const char *address, bool account,
                      const char *folder)
{
    for (size_t i = 0; i < e->n_rcpts; i++) {
        const struct spool_rcpt *r = &e->rcpts[i];
        if (r->state != SPOOL_RCPT_EXPANDED && r->account == account &&
            same_address(r->address, address) && (!account || same_folder(r->folder, folder)))
            return true;
    }
    return false;
}

static void add_rcpt(struct spool_envelope *e, size_t orig, const char *address, bool account,
                     const char *folder)
{
    if (entry_has(e, address, account, folder))
        return;
    e->rcpts = xreallocarray(e->rcpts, e->n_rcpts + 1, sizeof(*e->rcpts));
    const struct spool_rcpt *o = &e->rcpts[orig]; /* after the realloc */
    struct buf orcpt = BUF_INIT;
    if (o->orcpt)
        buf_append_cstr(&orcpt, o->orcpt);
    else
        buf_printf(&orcpt, "rfc822;%s", o->address);
    e->rcpts[e->n_rcpts++] = (struct spool_rcpt){
        .address = xstrdup(address),
        .orcpt = buf_steal(&orcpt, NULL),
        .notify = o->notify,
        .state = SPOOL_RCPT_PENDING,
        .account = account,
        .folder = account && folder ? xstrdup(folder) : NULL,
    };
}

size_t mta_expand(struct directory *d, struct spool_message *sm)
{
    struct spool_envelope *e = &sm->env;
    size_t expanded = 0, n = e->n_rcpts; /* recipients added below are final: not visited */
    struct buf err = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (e->rcpts[i].state != SPOOL_RCPT_PENDING || e->rcpts[i].account)
            continue;
        struct directory_result dr;
        buf_reset(&err);
        if (directory_resolve(d, e->rcpts[i].address, &dr, &err) != 0)
            continue; /* local delivery meets the same trouble and defers it */
        if (dr.kind == DIRECTORY_LOCAL && dr.n_remote > 0) {
            if (e->n_rcpts + dr.n_targets + dr.n_remote > MTA_EXPAND_RCPTS_MAX) {
                log_warning("%s: to=<%s>: expansion would pass %d recipients in one entry "
                            "(MTA_EXPAND_RCPTS_MAX): deferred",
                            e->id, e->rcpts[i].address, MTA_EXPAND_RCPTS_MAX);
            } else {
                size_t before = e->n_rcpts;
                for (size_t k = 0; k < dr.n_targets; k++)
                    add_rcpt(e, i, dr.targets[k].account, true, dr.targets[k].folder);
                for (size_t k = 0; k < dr.n_remote; k++)
                    add_rcpt(e, i, dr.remote[k], false, NULL);
                e->rcpts[i].state = SPOOL_RCPT_EXPANDED;
                expanded++;
                log_info("%s: to=<%s>, status=expanded (alias to %zu local and %zu remote "
                         "address(es), %zu new recipient(s))",
                         e->id, e->rcpts[i].address, dr.n_targets, dr.n_remote,
                         e->n_rcpts - before);
            }
        }
        directory_result_free(&dr);
    }
    buf_free(&err);
    return expanded;
}

const char *mta_expand_orig_to(const char *orcpt)
{
    const char *semi = orcpt ? strchr(orcpt, ';') : NULL;
    return semi ? semi + 1 : orcpt;
}
