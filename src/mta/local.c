/*
 * local.c - local delivery of a batch of messages (see local.h).
 *
 * Resolution happens before the store transaction (the directory is another
 * database); the store transaction then covers every message of the batch.
 * Never stores anything for a recipient the directory did not call local.
 */
#include "mta/mta_stats.h"
#include "mta/local.h"
#include "base/alloc.h"
#include "base/date.h"
#include "base/log.h"
#include "net/net_proxy.h"
#include "smtp/smtp_parse.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct owner_ref {
    size_t msg, rcpt; /* which recipient a store target serves */
};

void local_rcpt_init(struct local_rcpt *r, const char *address)
{
    r->address = address;
    r->account = false;
    r->folder = r->orig_to = NULL;
    r->status = LOCAL_TEMPFAIL;
    r->n_local = r->n_remote = 0;
    buf_init(&r->detail);
}

void local_rcpt_free(struct local_rcpt *r)
{
    buf_free(&r->detail);
}

static void log_rcpt(const struct local_message *m, const struct local_rcpt *r, int64_t now)
{
    const char *id = m->queue_id ? m->queue_id : "NOQUEUE";
    long long delay = m->arrival ? (long long)(now - m->arrival) : 0;
    if (delay < 0)
        delay = 0;
    const char *dsn, *status;
    enum mta_verdict v;
    switch (r->status) {
    case LOCAL_DELIVERED:
    case LOCAL_FORWARDS_PENDING:
        dsn = "2.0.0", status = "sent", v = MTA_SENT;
        break;
    case LOCAL_TEMPFAIL:
        dsn = "4.3.0", status = "deferred", v = MTA_DEFERRED;
        break;
    case LOCAL_NO_USER:
        dsn = "5.1.1", status = "bounced", v = MTA_BOUNCED;
        break;
    case LOCAL_LOOP:
        /* RFC 3463: routing loop detected */
        dsn = "5.4.6", status = "bounced", v = MTA_BOUNCED;
        break;
    case LOCAL_NOT_LOCAL:
    default:
        return;
    }
    mta_stats_count(v, delay);
    /* Postfix's shape; orig_to= names the alias an expanded recipient came from */
    log_info("%s: to=<%s>%s%s%s, relay=local, delay=%lld, dsn=%s, status=%s (%s)", id, r->address,
             r->orig_to ? ", orig_to=<" : "", r->orig_to ? r->orig_to : "", r->orig_to ? ">" : "",
             delay, dsn, status, r->detail.data);
}

/*
 * An account reached by alias expansion: it alone, with its folder, if it
 * is still an account (resolving it again must name it); never its aliases.
 */
static int resolve_account(struct directory *d, const struct local_rcpt *r,
                           struct directory_result *dr, struct buf *err)
{
    if (strcmp(r->address, STORE_PUBLIC_OWNER) == 0) {
        /* a public folder an alias led to: the store says whether it is still there */
        *dr = (struct directory_result){.kind = DIRECTORY_NO_SUCH_USER};
        if (r->folder == NULL)
            return 0;
        dr->kind = DIRECTORY_LOCAL;
        dr->targets = xcalloc(1, sizeof(*dr->targets));
        dr->targets[0].account = xstrdup(STORE_PUBLIC_OWNER);
        dr->targets[0].folder = xstrdup(r->folder);
        dr->n_targets = 1;
        return 0;
    }
    if (directory_resolve(d, r->address, dr, err) != 0)
        return -1;
    bool found = false;
    for (size_t k = 0; k < dr->n_targets && !found; k++)
        found = strcmp(dr->targets[k].account, r->address) == 0;
    directory_result_free(dr);
    if (!found) {
        dr->kind = DIRECTORY_NO_SUCH_USER;
        return 0;
    }
    dr->kind = DIRECTORY_LOCAL;
    dr->targets = xcalloc(1, sizeof(*dr->targets));
    dr->targets[0].account = xstrdup(r->address);
    dr->targets[0].folder = r->folder ? xstrdup(r->folder) : NULL;
    dr->n_targets = 1;
    return 0;
}

/* This server is in an organization (doc/routing.md): the routing process's table is there. */
static bool in_organization(const struct wharf_config *cfg)
{
    char *path = config_data_path(cfg, "routing/state.json");
    bool in = access(path, F_OK) == 0;
    free(path);
    return in;
}

bool local_home_elsewhere(struct directory *d, const char *address, struct buf *home)
{
    buf_reset(home);
    const struct wharf_config *cfg = d ? directory_config(d) : NULL;
    if (cfg == NULL ||
        (!net_proxy_is_frontend(cfg) && cfg->frontend_secret[0] == '\0' && !in_organization(cfg)))
        return false;
    struct directory_result dr;
    struct buf err = BUF_INIT;
    bool account = false;
    if (directory_resolve(d, address, &dr, &err) == 0) {
        account = dr.kind == DIRECTORY_LOCAL && dr.n_targets == 1 && dr.n_remote == 0 &&
                  strcasecmp(dr.targets[0].account, address) == 0;
        directory_result_free(&dr);
    }
    uint64_t qb = 0, qm = 0;
    bool elsewhere = account && directory_account_info(d, address, &qb, &qm, home, &err) == 1 &&
                     !net_proxy_home_is_here(cfg, buf_cstr(home));
    buf_free(&err);
    return elsewhere;
}

/*
 * A message bound for a public folder becomes a news article (doc/nntp.md),
 * which needs a Message-ID (to be found by it, and fed) and a Date (a peer
 * refuses an article without one: RFC 5536 3.1). Mail that came without
 * them (port 25 adds neither) gets them: the Message-ID made of the queue
 * id, so that a redelivery after a crash makes the same, the Date its
 * arrival. Into copy, which then holds the message; false when it has both.
 */
static bool add_news_fields(const struct local_message *m, const struct wharf_config *cfg,
                            int64_t now, struct buf *copy)
{
    bool msgid = smtp_header_present(m->data, "Message-ID"),
         date = smtp_header_present(m->data, "Date");
    if (msgid && date)
        return false;
    const char *id = m->queue_id ? m->queue_id : m->dedupe_id;
    static unsigned long long seq; /* `wharf deliver`: no queue id */
    if (!msgid && id)
        buf_printf(copy, "Message-ID: <%s.public@%s>\r\n", id, cfg->myhostname);
    else if (!msgid)
        buf_printf(copy, "Message-ID: <%lld.%ld.%llu.public@%s>\r\n", (long long)now,
                   (long)getpid(), ++seq, cfg->myhostname);
    if (!date) {
        buf_append_cstr(copy, "Date: ");
        date_rfc5322_append(m->arrival ? m->arrival : now, copy);
        buf_append_cstr(copy, "\r\n");
    }
    buf_append(copy, m->data.ptr, m->data.len);
    return true;
}

/* A public folder's target: the folder it names, under the name it has now (renamed since
 * its address was given, or since an alias or a queued entry named it). */
static void public_folder_now(struct store *s, struct directory_target *t)
{
    struct buf now = BUF_INIT, err = BUF_INIT;
    int r = t->folder ? store_public_folder_now(s, t->folder, &now, &err) : 1;
    if (r < 0) /* delivered under the name it was given: the store says what is wrong */
        log_warning("public folder %s: %s", t->folder, buf_cstr(&err));
    if (r == 0 && strcmp(now.data, t->folder) != 0) {
        log_info("public folder %s is called %s now", t->folder, now.data);
        free(t->folder);
        t->folder = buf_steal(&now, NULL);
    }
    buf_free(&now);
    buf_free(&err);
}

void local_deliver(struct store *s, struct directory *d, struct local_message *m, size_t n,
                   local_changed_fn changed, void *arg)
{
    struct store_delivery *dl = xcalloc(n ? n : 1, sizeof(*dl));
    struct owner_ref **refs = xcalloc(n ? n : 1, sizeof(*refs));
    struct directory_result **res = xcalloc(n ? n : 1, sizeof(*res));
    struct buf *copies = xcalloc(n ? n : 1, sizeof(*copies)); /* add_message_id's */
    struct buf err = BUF_INIT;
    int64_t now = (int64_t)time(NULL);

    for (size_t i = 0; i < n; i++) {
        dl[i].data = m[i].data;
        dl[i].internaldate = now;
        dl[i].dedupe_id = m[i].dedupe_id ? m[i].dedupe_id : m[i].queue_id;
        res[i] = xcalloc(m[i].n_rcpts ? m[i].n_rcpts : 1, sizeof(**res));
        for (size_t j = 0; j < m[i].n_rcpts; j++) {
            struct local_rcpt *r = &m[i].rcpts[j];
            struct directory_result *dr = &res[i][j];
            buf_reset(&r->detail);
            buf_reset(&err);
            r->n_local = r->n_remote = 0;
            if ((r->account ? resolve_account(d, r, dr, &err)
                            : directory_resolve(d, r->address, dr, &err)) != 0) {
                r->status = LOCAL_TEMPFAIL;
                buf_printf(&r->detail, "directory: %s", err.data);
                dr->n_targets = 0;
                continue;
            }
            if (dr->kind == DIRECTORY_NOT_LOCAL) {
                r->status = LOCAL_NOT_LOCAL;
                buf_append_cstr(&r->detail, "not a local domain");
                continue;
            }
            if (dr->kind == DIRECTORY_NO_SUCH_USER || dr->n_targets + dr->n_remote == 0) {
                r->status = dr->loop ? LOCAL_LOOP : LOCAL_NO_USER;
                buf_append_cstr(&r->detail, dr->loop ? "alias loop: its aliases lead back to "
                                                       "themselves"
                                                     : "unknown user");
                continue;
            }
            if (!r->account && dr->n_targets == 1 && dr->n_remote == 0 &&
                local_home_elsewhere(d, r->address, &err)) {
                r->status = LOCAL_NOT_LOCAL; /* the mta relays it to its home server */
                buf_printf(&r->detail, "homed on %s", buf_cstr(&err));
                continue;
            }
            r->n_local = dr->n_targets;
            r->n_remote = dr->n_remote;
            if (dr->n_targets == 0) {
                r->status = LOCAL_NOT_LOCAL;
                buf_printf(&r->detail, "forwarded to %zu address(es) in other domains",
                           dr->n_remote);
                continue;
            }
            /* Unless a target says otherwise below. */
            r->status = dr->n_remote ? LOCAL_FORWARDS_PENDING : LOCAL_DELIVERED;
            buf_append_cstr(&r->detail, "delivered to mailbox");
            if (dr->n_remote)
                buf_printf(&r->detail,
                           "; %zu forward(s) to other domains wait for outbound delivery",
                           dr->n_remote);
            dl[i].targets = xreallocarray(dl[i].targets, dl[i].n_targets + dr->n_targets,
                                          sizeof(*dl[i].targets));
            refs[i] = xreallocarray(refs[i], dl[i].n_targets + dr->n_targets, sizeof(**refs));
            for (size_t k = 0; k < dr->n_targets; k++) {
                struct store_target *t = &dl[i].targets[dl[i].n_targets];
                memset(t, 0, sizeof(*t));
                t->owner = dr->targets[k].account;
                t->mailbox = m[i].folder ? m[i].folder : dr->targets[k].folder;
                uint64_t qb = 0, qm = 0;
                if (strcmp(t->owner, STORE_PUBLIC_OWNER) == 0) {
                    /* A public folder has no INBOX to fall back to, nor a Junk: its
                     * folder, under its name now, or nothing (bounced below when it is
                     * gone). */
                    public_folder_now(s, &dr->targets[k]);
                    t->mailbox = dr->targets[k].folder;
                    t->must_exist = true;
                    const struct wharf_config *cfg = directory_config(d);
                    if (copies[i].len == 0 && cfg && add_news_fields(&m[i], cfg, now, &copies[i]))
                        dl[i].data = buf_slice(&copies[i]);
                } else if (directory_quota(d, t->owner, &qb, &qm) == 0) {
                    t->quota_bytes = qb;
                    t->quota_messages = qm;
                }
                refs[i][dl[i].n_targets] = (struct owner_ref){i, j};
                dl[i].n_targets++;
            }
        }
    }

    buf_reset(&err);
    int rc = store_deliver(s, dl, n, &err);
    for (size_t i = 0; i < n; i++) {
        const char *last_owner = NULL, *last_box = NULL;
        for (size_t k = 0; k < dl[i].n_targets; k++) {
            struct store_target *t = &dl[i].targets[k];
            struct local_rcpt *r = &m[refs[i][k].msg].rcpts[refs[i][k].rcpt];
            if (rc == 0 && t->status == STORE_OK && m[i].stored)
                m[i].stored(m[i].stored_arg, &m[i], r->orig_to ? r->orig_to : r->address, t->owner);
            if (rc == 0 && (t->status == STORE_OK || t->status == STORE_DUPLICATE)) {
                if (t->status == STORE_OK && changed &&
                    !(last_owner && strcmp(last_owner, t->owner) == 0 &&
                      strcmp(last_box, t->stored_in) == 0)) {
                    changed(arg, t->owner, t->stored_in);
                    last_owner = t->owner;
                    last_box = t->stored_in;
                }
                continue;
            }
            if (r->status == LOCAL_TEMPFAIL)
                continue; /* first reason wins; a later try may still bounce */
            if (rc == 0 && t->status == STORE_NO_MAILBOX) {
                /* only a public folder's target must exist: deleted or renamed since its
                 * address was given. Permanent: no other folder is right for it. */
                if (r->status != LOCAL_NO_USER) {
                    r->status = LOCAL_NO_USER;
                    buf_reset(&r->detail);
                    buf_printf(&r->detail, "no such public folder: %s", t->mailbox);
                }
                continue;
            }
            r->status = LOCAL_TEMPFAIL;
            buf_reset(&r->detail);
            if (rc != 0)
                buf_printf(&r->detail, "%s", err.data);
            else if (t->status == STORE_OVER_QUOTA)
                buf_printf(&r->detail, "mailbox of %s is over quota", t->owner);
            else
                buf_append_cstr(&r->detail, "store trouble");
        }
        for (size_t j = 0; j < m[i].n_rcpts; j++)
            log_rcpt(&m[i], &m[i].rcpts[j], now);
    }

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < m[i].n_rcpts; j++)
            directory_result_free(&res[i][j]);
        free(res[i]);
        free(refs[i]);
        free(dl[i].targets);
        buf_free(&copies[i]);
    }
    free(copies);
    free(res);
    free(refs);
    free(dl);
    buf_free(&err);
}
