/*
 * mta_expand.c - alias expansion recorded in the spool entry (see
 * mta_expand.h). Resolution itself (depth limit, loops, duplicates inside
 * one alias) is directory_resolve's; this file only turns its answer into
 * spool recipients. Never writes the spool: the caller does.
 */
#include "mta/mta_expand.h"
#include "mta/local.h"
#include "base/alloc.h"
#include "base/strmap.h"
#include "base/log.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/*
 * The addresses an entry holds (expanded aliases aside), so that none is
 * added twice without a quadratic scan: a hash set (base/strmap.h) of
 * canonical keys, local part exact (accounts.md), domain in lower case, then
 * the account flag and folder; it owns its keys. At most MTA_EXPAND_RCPTS_MAX.
 */
struct keyset {
    struct strmap map;
    bool made;
};

static char *rcpt_key(const char *address, bool account, const char *folder)
{
    struct buf b = BUF_INIT;
    const char *at = strrchr(address, '@');
    size_t local = at ? (size_t)(at - address) : strlen(address);
    buf_append(&b, address, local);
    for (const char *p = address + local; *p; p++)
        buf_append_byte(&b, (char)tolower((unsigned char)*p));
    if (account)
        buf_printf(&b, "\x01%s", folder ? folder : ""); /* no address holds \x01 */
    return buf_steal(&b, NULL);
}

/* Adds key (taken); false when it was there already. */
static bool keyset_add(struct keyset *s, char *key)
{
    bool added;
    strmap_add(&s->map, key, &added);
    if (!added)
        free(key);
    return added;
}

static void keyset_init(struct keyset *s, const struct spool_envelope *e)
{
    s->made = true;
    strmap_reserve(&s->map, e->n_rcpts);
    for (size_t i = 0; i < e->n_rcpts; i++) {
        const struct spool_rcpt *r = &e->rcpts[i];
        if (r->state != SPOOL_RCPT_EXPANDED)
            keyset_add(s, rcpt_key(r->address, r->account, r->folder));
    }
}

static void keyset_free(struct keyset *s)
{
    for (struct strmap_slot *k = NULL; (k = strmap_next(&s->map, k)) != NULL;)
        free((char *)k->key);
    strmap_free(&s->map);
}

static void add_rcpt(struct spool_envelope *e, struct keyset *ks, size_t orig, const char *address,
                     bool account, const char *folder)
{
    if (!keyset_add(ks, rcpt_key(address, account, folder)))
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

/* An alias (not an account standing for itself) with an account homed on another server. */
static bool alias_homed_elsewhere(struct directory *d, const char *address,
                                  const struct directory_result *dr, struct buf *home)
{
    if (dr->n_targets == 1 && strcasecmp(dr->targets[0].account, address) == 0)
        return false;
    for (size_t k = 0; k < dr->n_targets; k++) {
        if (local_home_elsewhere(d, dr->targets[k].account, home))
            return true;
    }
    return false;
}

size_t mta_expand(struct directory *d, struct spool_message *sm)
{
    struct spool_envelope *e = &sm->env;
    size_t expanded = 0, n = e->n_rcpts; /* recipients added below are final: not visited */
    struct keyset ks = {0};              /* made at the first expansion: most entries need none */
    struct buf err = BUF_INIT, home = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (e->rcpts[i].state != SPOOL_RCPT_PENDING || e->rcpts[i].account)
            continue;
        struct directory_result dr;
        buf_reset(&err);
        if (directory_resolve(d, e->rcpts[i].address, &dr, &err) != 0)
            continue; /* local delivery meets the same trouble and defers it */
        if (dr.kind == DIRECTORY_LOCAL &&
            (dr.n_remote > 0 || alias_homed_elsewhere(d, e->rcpts[i].address, &dr, &home))) {
            if (e->n_rcpts + dr.n_targets + dr.n_remote > MTA_EXPAND_RCPTS_MAX) {
                log_warning("%s: to=<%s>: expansion would pass %d recipients in one entry "
                            "(MTA_EXPAND_RCPTS_MAX): deferred",
                            e->id, e->rcpts[i].address, MTA_EXPAND_RCPTS_MAX);
            } else {
                size_t before = e->n_rcpts;
                if (!ks.made)
                    keyset_init(&ks, e);
                for (size_t k = 0; k < dr.n_targets; k++) {
                    /* An account homed elsewhere: its address, which local delivery sends
                     * to its home server (local_home_elsewhere), not stored here. */
                    bool away = local_home_elsewhere(d, dr.targets[k].account, &home);
                    add_rcpt(e, &ks, i, dr.targets[k].account, !away,
                             away ? NULL : dr.targets[k].folder);
                }
                for (size_t k = 0; k < dr.n_remote; k++)
                    add_rcpt(e, &ks, i, dr.remote[k], false, NULL);
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
    keyset_free(&ks);
    buf_free(&err);
    buf_free(&home);
    return expanded;
}

const char *mta_expand_orig_to(const char *orcpt)
{
    const char *semi = orcpt ? strchr(orcpt, ';') : NULL;
    return semi ? semi + 1 : orcpt;
}
