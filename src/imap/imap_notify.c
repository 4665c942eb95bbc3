/*
 * imap_notify.c - NOTIFY (RFC 5465): NOTIFY SET [STATUS] with SELECTED,
 * SELECTED-DELAYED, PERSONAL, INBOXES, SUBSCRIBED, SUBTREE and MAILBOXES;
 * the events MessageNew (with UID, FLAGS, MODSEQ, INTERNALDATE, RFC822.SIZE
 * for the selected mailbox: what the view holds, no message is read),
 * MessageExpunge, FlagChange, MailboxName and SubscriptionChange; NOTIFY
 * NONE and NOTIFICATIONOVERFLOW.
 *
 * Nothing polls. The mailbox-changed events the worker already receives
 * from the bus (deliveries, other sessions, other processes) and the
 * mailbox-list events CREATE/DELETE/RENAME/SUBSCRIBE publish reach
 * imap_notify_* from imap_session.c: the selected mailbox is synced at
 * once (its EXISTS/EXPUNGE/FETCH, and update contexts), another watched
 * mailbox gets a STATUS with what changed since the session last heard of
 * it (a per-session cache of counts), a mailbox name or subscription a LIST.
 * Inboxes are the personal mailboxes (RFC 5465 6.3 allows it); the
 * "other users" mailboxes a session may read are watched when named by
 * MAILBOXES or SUBTREE.
 * Must never: tell a session about a mailbox it has no "l" and "r" right on,
 * write to a connection whose output is already backed up (that is the
 * NOTIFICATIONOVERFLOW: notifications stop), or watch more than
 * IMAP_NOTIFY_MAX_MAILBOXES mailboxes.
 */
#include "imap/imap_notify.h"
#include "base/date.h"

#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"
#include "ipc/frame.h"

#include <stdlib.h>
#include <string.h>

/* Mailboxes one session may watch (beyond: NO [NOTIFICATIONOVERFLOW]). */
#define IMAP_NOTIFY_MAX_MAILBOXES 1000

enum notify_event {
    EV_NEW = 1 << 0,
    EV_EXPUNGE = 1 << 1,
    EV_FLAGS = 1 << 2,
    EV_NAME = 1 << 3,
    EV_SUBSCRIPTION = 1 << 4,
};
#define EV_MESSAGE (EV_NEW | EV_EXPUNGE | EV_FLAGS)

enum notify_spec {
    SPEC_PERSONAL,
    SPEC_INBOXES,
    SPEC_SUBSCRIBED,
    SPEC_SUBTREE,
    SPEC_MAILBOXES,
};

struct notify_group {
    enum notify_spec spec;
    char **names; /* SUBTREE, MAILBOXES: IMAP names (UTF-8) */
    size_t n_names;
    unsigned events;
};

/* What the session was last told (or knew) of a watched mailbox. */
struct notify_known {
    char *owner, *name;
    uint32_t uidvalidity, uidnext;
    uint64_t messages, unseen, highestmodseq;
};

struct imap_notify {
    bool has_selected, delayed;
    unsigned selected_events;
    /* MessageNew (...) for the selected mailbox: what the view holds */
    bool fetch_uid, fetch_flags, fetch_modseq, fetch_date, fetch_size;
    struct notify_group *groups;
    size_t n_groups;
    struct notify_known *known;
    size_t n_known;
};

static void notify_free(struct imap_notify *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n_groups; i++) {
        for (size_t j = 0; j < n->groups[i].n_names; j++)
            free(n->groups[i].names[j]);
        free(n->groups[i].names);
    }
    free(n->groups);
    for (size_t i = 0; i < n->n_known; i++) {
        free(n->known[i].owner);
        free(n->known[i].name);
    }
    free(n->known);
    free(n);
}

void imap_notify_free(struct imap_session *s)
{
    notify_free(s->notify);
    imap_notify_track(s, NULL);
}

/* ---- NOTIFY SET / NONE ---- */

static const char *const BADEVENT =
    "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]";

/* An events list: NULL, or the BAD text; *unsupported when a known but unsupported event came. */
static const char *parse_events(struct imap_notify *n, const struct imap_arg *a, bool selected,
                                unsigned *events_r, bool *unsupported)
{
    *events_r = 0;
    if (imap_arg_is_atom(a, "NONE"))
        return NULL;
    if (a->type != IMAP_ARG_LIST || a->n_list == 0)
        return "Events must be a list or NONE";
    for (size_t i = 0; i < a->n_list; i++) {
        const struct imap_arg *e = &a->list[i];
        if (imap_arg_is_atom(e, "MessageNew")) {
            *events_r |= EV_NEW;
            if (i + 1 < a->n_list && a->list[i + 1].type == IMAP_ARG_LIST) {
                if (!selected)
                    return "Fetch attributes only for SELECTED or SELECTED-DELAYED";
                const struct imap_arg *f = &a->list[++i];
                for (size_t k = 0; k < f->n_list; k++) {
                    if (imap_arg_is_atom(&f->list[k], "UID"))
                        n->fetch_uid = true;
                    else if (imap_arg_is_atom(&f->list[k], "FLAGS"))
                        n->fetch_flags = true;
                    else if (imap_arg_is_atom(&f->list[k], "MODSEQ"))
                        n->fetch_modseq = true;
                    else if (imap_arg_is_atom(&f->list[k], "INTERNALDATE"))
                        n->fetch_date = true;
                    else if (imap_arg_is_atom(&f->list[k], "RFC822.SIZE"))
                        n->fetch_size = true;
                    else
                        return "MessageNew takes UID, FLAGS, MODSEQ, INTERNALDATE, RFC822.SIZE";
                }
            }
        } else if (imap_arg_is_atom(e, "MessageExpunge")) {
            *events_r |= EV_EXPUNGE;
        } else if (imap_arg_is_atom(e, "FlagChange")) {
            *events_r |= EV_FLAGS;
        } else if (imap_arg_is_atom(e, "MailboxName") ||
                   imap_arg_is_atom(e, "SubscriptionChange")) {
            if (selected)
                return "SELECTED takes message events only";
            *events_r |= imap_arg_is_atom(e, "MailboxName") ? EV_NAME : EV_SUBSCRIPTION;
        } else if (e->type == IMAP_ARG_ATOM) {
            *unsupported = true; /* AnnotationChange, metadata, extensions */
        } else {
            return "Invalid event";
        }
    }
    return NULL;
}

/* One event group "(spec [mailboxes] events)" into n; NULL or the BAD text. */
static const char *parse_group(struct imap_session *s, struct imap_notify *n,
                               const struct imap_arg *g, bool *unsupported)
{
    if (g->type != IMAP_ARG_LIST || g->n_list < 2)
        return "Usage: NOTIFY SET [STATUS] (mailboxes events) ...";
    const struct imap_arg *spec = &g->list[0];
    bool sel = imap_arg_is_atom(spec, "SELECTED"),
         delayed = imap_arg_is_atom(spec, "SELECTED-DELAYED");
    if (sel || delayed) {
        if (n->has_selected)
            return "Only one of SELECTED and SELECTED-DELAYED";
        if (g->n_list != 2)
            return "Usage: (SELECTED events)";
        n->has_selected = true;
        n->delayed = delayed;
        return parse_events(n, &g->list[1], true, &n->selected_events, unsupported);
    }
    static const struct {
        const char *name;
        enum notify_spec spec;
        bool names;
    } specs[] = {{"PERSONAL", SPEC_PERSONAL, false},
                 {"INBOXES", SPEC_INBOXES, false},
                 {"SUBSCRIBED", SPEC_SUBSCRIBED, false},
                 {"SUBTREE", SPEC_SUBTREE, true},
                 {"MAILBOXES", SPEC_MAILBOXES, true}};
    size_t k = 0;
    while (k < sizeof(specs) / sizeof(specs[0]) && !imap_arg_is_atom(spec, specs[k].name))
        k++;
    if (k == sizeof(specs) / sizeof(specs[0]))
        return "Unknown mailbox specifier";
    if (g->n_list != (specs[k].names ? 3u : 2u))
        return specs[k].names ? "Usage: (SUBTREE/MAILBOXES mailbox-or-list events)"
                              : "Usage: (PERSONAL/INBOXES/SUBSCRIBED events)";
    n->groups = xreallocarray(n->groups, n->n_groups + 1, sizeof(*n->groups));
    struct notify_group *ng = &n->groups[n->n_groups++];
    memset(ng, 0, sizeof(*ng));
    ng->spec = specs[k].spec;
    if (specs[k].names) {
        const struct imap_arg *m = &g->list[1];
        const struct imap_arg *v = m->type == IMAP_ARG_LIST ? m->list : m;
        size_t nv = m->type == IMAP_ARG_LIST ? m->n_list : 1;
        if (nv == 0)
            return "Empty mailbox list";
        ng->names = xcalloc(nv, sizeof(*ng->names));
        for (size_t i = 0; i < nv; i++) {
            char *name = imap_mailbox_arg(s, &v[i]);
            if (name == NULL)
                return "Invalid mailbox name";
            /* "foo/" names the same subtree as "foo" */
            size_t len = strlen(name);
            while (len > 1 && name[len - 1] == STORE_DELIMITER)
                name[--len] = '\0';
            ng->names[ng->n_names++] = name;
        }
    }
    return parse_events(n, &g->list[g->n_list - 1], false, &ng->events, unsupported);
}

static bool subscribed(struct imap_session *s, const char *owner, const char *name)
{
    if (strcmp(owner, s->account) != 0)
        return false;
    struct store_mailbox mb = {0};
    struct buf err = BUF_INIT;
    bool r = store_mailbox_get(s->srv->store, owner, name, &mb, &err) == 0 && mb.subscribed;
    if (r || mb.name != NULL)
        store_mailbox_free(&mb);
    buf_free(&err);
    return r;
}

/* The events the groups ask for on owner's mailbox name (imap_name as the session says it). */
static unsigned match_events(struct imap_session *s, const struct imap_notify *n, const char *owner,
                             const char *name, const char *imap_name, bool is_subscribed_known,
                             bool is_subscribed)
{
    unsigned ev = 0;
    bool own = strcmp(owner, s->account) == 0;
    for (size_t i = 0; i < n->n_groups; i++) {
        const struct notify_group *g = &n->groups[i];
        bool hit = false;
        switch (g->spec) {
        case SPEC_PERSONAL:
        case SPEC_INBOXES:
            hit = own;
            break;
        case SPEC_SUBSCRIBED:
            hit = is_subscribed_known ? is_subscribed : subscribed(s, owner, name);
            break;
        case SPEC_MAILBOXES:
        case SPEC_SUBTREE:
            for (size_t k = 0; k < g->n_names && !hit; k++) {
                size_t len = strlen(g->names[k]);
                hit = strcmp(imap_name, g->names[k]) == 0 ||
                      (g->spec == SPEC_SUBTREE && strncmp(imap_name, g->names[k], len) == 0 &&
                       imap_name[len] == STORE_DELIMITER);
            }
            break;
        }
        if (hit)
            ev |= g->events;
    }
    return ev;
}

static bool is_selected(const struct imap_session *s, const char *owner, const char *name)
{
    return s->state == IMAP_SELECTED && strcmp(s->view.owner, owner) == 0 &&
           strcmp(s->view.name, name) == 0;
}

static struct notify_known *known_find(struct imap_notify *n, const char *owner, const char *name)
{
    for (size_t i = 0; i < n->n_known; i++)
        if (strcmp(n->known[i].owner, owner) == 0 && strcmp(n->known[i].name, name) == 0)
            return &n->known[i];
    return NULL;
}

static void known_set(struct notify_known *k, const struct store_mailbox *mb)
{
    k->uidvalidity = mb->uidvalidity;
    k->uidnext = mb->uidnext;
    k->messages = mb->messages;
    k->unseen = mb->unseen;
    k->highestmodseq = mb->highestmodseq;
}

/* A watched mailbox at SET time: remembered, and with STATUS its initial STATUS (RFC 5465 3.1). */
static bool watch(struct imap_session *s, struct imap_notify *n, const char *owner,
                  const struct store_mailbox *mb, bool status, struct buf *out)
{
    char *imap_name = imap_ns_name(s->account, owner, mb->name);
    unsigned ev = match_events(s, n, owner, mb->name, imap_name, strcmp(owner, s->account) == 0,
                               mb->subscribed) &
                  EV_MESSAGE;
    bool ok = true;
    if (ev != 0 && !is_selected(s, owner, mb->name) && known_find(n, owner, mb->name) == NULL) {
        if (n->n_known == IMAP_NOTIFY_MAX_MAILBOXES) {
            ok = false;
        } else {
            n->known = xreallocarray(n->known, n->n_known + 1, sizeof(*n->known));
            struct notify_known *k = &n->known[n->n_known++];
            k->owner = xstrdup(owner);
            k->name = xstrdup(mb->name);
            known_set(k, mb);
            if (status) {
                buf_append_cstr(out, "* STATUS ");
                imap_mailbox_name_write(s, out, imap_name);
                const char *sp = "";
                buf_append_cstr(out, " (");
                if (ev & (EV_NEW | EV_EXPUNGE)) {
                    buf_printf(out, "MESSAGES %llu", (unsigned long long)mb->messages);
                    sp = " ";
                }
                if (ev & EV_NEW) {
                    buf_printf(out, "%sUIDNEXT %u UIDVALIDITY %u", sp, mb->uidnext,
                               mb->uidvalidity);
                    sp = " ";
                }
                if (ev & EV_FLAGS) {
                    if (!(ev & EV_NEW))
                        buf_printf(out, "%sUIDVALIDITY %u", sp, mb->uidvalidity);
                    buf_printf(out, " HIGHESTMODSEQ %llu", (unsigned long long)mb->highestmodseq);
                }
                buf_append_cstr(out, ")\r\n");
            }
        }
    }
    free(imap_name);
    return ok;
}

/* Every mailbox the groups name that the session may read; false on too many (or store trouble). */
static bool watch_all(struct imap_session *s, struct imap_notify *n, bool status, struct buf *out,
                      bool *overflow)
{
    struct store_mailbox *list = NULL;
    size_t nl = 0;
    struct buf err = BUF_INIT;
    *overflow = false;
    if (store_mailbox_list(s->srv->store, s->account, &list, &nl, &err) != 0) {
        log_error("user=<%s>: NOTIFY: %s", s->account, buf_cstr(&err));
        buf_free(&err);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < nl && ok; i++)
        ok = watch(s, n, s->account, &list[i], status, out);
    store_mailbox_list_free(list, nl);
    /* other owners' mailboxes: only by name */
    for (size_t g = 0; g < n->n_groups && ok; g++) {
        for (size_t k = 0; k < n->groups[g].n_names && ok; k++) {
            struct imap_mbref ref;
            if (imap_mbref_resolve(s, n->groups[g].names[k], &ref) == 0 && !ref.own && ref.exists &&
                ref.name != NULL &&
                (ref.rights & (IMAP_RIGHT_L | IMAP_RIGHT_R)) == (IMAP_RIGHT_L | IMAP_RIGHT_R)) {
                struct store_mailbox mb;
                if (store_mailbox_get(s->srv->store, ref.owner, ref.name, &mb, &err) == 0) {
                    ok = watch(s, n, ref.owner, &mb, status, out);
                    store_mailbox_free(&mb);
                }
            }
            imap_mbref_free(&ref);
        }
    }
    buf_free(&err);
    *overflow = !ok;
    return ok;
}

void imap_cmd_notify(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n == 1 && imap_arg_is_atom(&args[0], "NONE")) {
        imap_notify_free(s);
        imap_notify_track(s, xcalloc(1, sizeof(*s->notify))); /* set, watching nothing */
        imap_printf(s, "%.*s OK NOTIFY completed", TAGF(tag));
        return;
    }
    if (n < 2 || !imap_arg_is_atom(&args[0], "SET")) {
        imap_bad(s, tag, "Usage: NOTIFY SET [STATUS] (mailboxes events) ... or NOTIFY NONE");
        return;
    }
    size_t i = 1;
    bool status = imap_arg_is_atom(&args[1], "STATUS");
    if (status)
        i++;
    if (i == n) {
        imap_bad(s, tag, "NOTIFY SET needs at least one event group");
        return;
    }
    struct imap_notify *nt = xcalloc(1, sizeof(*nt));
    bool unsupported = false;
    const char *e = NULL;
    for (; i < n && e == NULL; i++)
        e = parse_group(s, nt, &args[i], &unsupported);
    if (e != NULL) {
        notify_free(nt);
        imap_bad(s, tag, e);
        return;
    }
    if (unsupported) { /* RFC 5465 3.1: NO with BADEVENT, not BAD */
        notify_free(nt);
        imap_printf(s, "%.*s NO %s Unsupported event", TAGF(tag), BADEVENT);
        return;
    }
    struct buf out = BUF_INIT;
    bool overflow;
    if (!watch_all(s, nt, status, &out, &overflow)) {
        notify_free(nt);
        buf_free(&out);
        if (overflow)
            imap_printf(s, "%.*s NO [NOTIFICATIONOVERFLOW] Too many mailboxes to watch", TAGF(tag));
        else
            imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
        return;
    }
    imap_notify_free(s);
    imap_notify_track(s, nt);
    /* RFC 5465 3.1: an implicit NOOP */
    if (s->state == IMAP_SELECTED)
        imap_view_sync(s, true, NULL, 0);
    if (out.len > 0)
        net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
    imap_printf(s, "%.*s OK NOTIFY completed", TAGF(tag));
}

/* ---- events ---- */

/* RFC 5465 5.8: a connection that does not read its notifications gets no more. */
static bool overflowed(struct imap_session *s)
{
    if (!net_conn_output_blocked(s->conn))
        return false;
    imap_notify_free(s);
    imap_notify_track(s, xcalloc(1, sizeof(*s->notify))); /* as if NOTIFY NONE */
    imap_printf(s, "* OK [NOTIFICATIONOVERFLOW] Notifications stopped, the client is not reading");
    return true;
}

bool imap_notify_selected_changed(struct imap_session *s)
{
    struct imap_notify *n = s->notify;
    if (n == NULL)
        return false; /* the default: IDLE decides */
    if (!n->has_selected || (s->wait != IMAP_WAIT_NONE && s->wait != IMAP_WAIT_IDLE) ||
        overflowed(s))
        return true;
    struct imap_view *v = &s->view;
    uint32_t last = v->n ? v->msgs[v->n - 1].uid : 0;
    bool expunge = s->wait == IMAP_WAIT_IDLE || (!n->delayed && (n->selected_events & EV_EXPUNGE));
    imap_view_sync(s, expunge, NULL, 0);
    if (!(n->fetch_uid || n->fetch_flags || n->fetch_modseq || n->fetch_date || n->fetch_size))
        return true;
    struct buf out = BUF_INIT; /* RFC 5465 5.2: FETCH after EXISTS for the new messages */
    for (size_t i = 0; i < v->n; i++) {
        const struct imap_msg *m = &v->msgs[i];
        if (m->uid <= last)
            continue;
        buf_printf(&out, "* %zu FETCH (UID %u", i + 1, m->uid);
        if (n->fetch_flags) {
            buf_append_cstr(&out, " FLAGS ");
            imap_flags_write(&out, m->flags, m->keywords);
        }
        if (n->fetch_modseq)
            buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
        if (n->fetch_date) {
            buf_append_cstr(&out, " INTERNALDATE \"");
            date_imap_append(m->internaldate, &out);
            buf_append_byte(&out, '"');
        }
        if (n->fetch_size)
            buf_printf(&out, " RFC822.SIZE %llu", (unsigned long long)m->size);
        buf_append_cstr(&out, ")\r\n");
    }
    if (out.len > 0)
        net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
    return true;
}

void imap_notify_mailbox_changed(struct imap_session *s, const char *owner, const char *mailbox)
{
    struct imap_notify *n = s->notify;
    if (n == NULL || n->n_groups == 0 || is_selected(s, owner, mailbox) || s->account == NULL)
        return;
    char *imap_name = imap_ns_name(s->account, owner, mailbox);
    unsigned ev = match_events(s, n, owner, mailbox, imap_name, false, false) & EV_MESSAGE;
    struct imap_mbref ref = {0};
    struct store_mailbox mb = {0};
    struct buf err = BUF_INIT, out = BUF_INIT;
    if (ev == 0 || overflowed(s))
        goto done;
    if (strcmp(owner, s->account) != 0 &&
        (imap_mbref_resolve(s, imap_name, &ref) != 0 ||
         (ref.rights & (IMAP_RIGHT_L | IMAP_RIGHT_R)) != (IMAP_RIGHT_L | IMAP_RIGHT_R)))
        goto done; /* RFC 5465 5: "l" and "r" on every observed mailbox */
    if (store_mailbox_get(s->srv->store, owner, mailbox, &mb, &err) != 0)
        goto done; /* gone: MailboxName tells that */
    struct notify_known *k = known_find(n, owner, mailbox);
    struct notify_known fresh = {0};
    bool first = k == NULL;
    if (first)
        k = &fresh;
    const char *sp = "";
    if (first || k->uidvalidity != mb.uidvalidity) {
        buf_printf(&out, "UIDVALIDITY %u", mb.uidvalidity);
        sp = " ";
    }
    if ((ev & (EV_NEW | EV_EXPUNGE)) &&
        (first || k->messages != mb.messages || k->uidnext != mb.uidnext)) {
        buf_printf(&out, "%sMESSAGES %llu UIDNEXT %u", sp, (unsigned long long)mb.messages,
                   mb.uidnext);
        sp = " ";
    }
    if ((ev & EV_FLAGS) && !s->condstore && (first || k->unseen != mb.unseen)) {
        buf_printf(&out, "%sUNSEEN %llu", sp, (unsigned long long)mb.unseen);
        sp = " ";
    }
    /* with CONDSTORE/QRESYNC enabled the MODSEQ tells what changed (RFC 5465 5.1-5.3) */
    if (s->condstore && out.len > 0)
        buf_printf(&out, " HIGHESTMODSEQ %llu", (unsigned long long)mb.highestmodseq);
    else if (s->condstore && (ev & EV_FLAGS) && k->highestmodseq != mb.highestmodseq)
        buf_printf(&out, "UIDVALIDITY %u HIGHESTMODSEQ %llu", mb.uidvalidity,
                   (unsigned long long)mb.highestmodseq);
    if (!first)
        known_set(k, &mb);
    else if (n->n_known < IMAP_NOTIFY_MAX_MAILBOXES) {
        n->known = xreallocarray(n->known, n->n_known + 1, sizeof(*n->known));
        k = &n->known[n->n_known++];
        k->owner = xstrdup(owner);
        k->name = xstrdup(mailbox);
        known_set(k, &mb);
    }
    if (out.len > 0) {
        struct buf line = BUF_INIT;
        buf_append_cstr(&line, "* STATUS ");
        imap_mailbox_name_write(s, &line, imap_name);
        buf_printf(&line, " (%s)\r\n", buf_cstr(&out));
        net_conn_write(s->conn, line.data, line.len);
        buf_free(&line);
    }
done:
    if (mb.name != NULL)
        store_mailbox_free(&mb);
    imap_mbref_free(&ref);
    buf_free(&err);
    buf_free(&out);
    free(imap_name);
}

/* ---- mailbox names and subscriptions ---- */

/* The kind letters of list_event, by enum ipc_mailbox_list_change: created, deleted,
 * renamed, subscribed, unsubscribed. */
static const char list_kinds[] = {'c', 'd', 'r', 's', 'u'};

/* What one mailbox-list event means to one session: a LIST response, or nothing. */
static void list_event(struct imap_session *s, const char *owner, char kind, const char *name,
                       const char *old)
{
    struct imap_notify *n = s->notify;
    if (n == NULL || n->n_groups == 0 || s->account == NULL || overflowed(s))
        return;
    bool own = strcmp(owner, s->account) == 0;
    bool sub = kind == 's' || kind == 'u';
    if (sub && !own)
        return; /* subscriptions are the user's own */
    char *imap_name = imap_ns_name(s->account, owner, name);
    char *old_name = old && old[0] ? imap_ns_name(s->account, owner, old) : NULL;
    unsigned ev = match_events(s, n, owner, name, imap_name, sub, kind == 's');
    if (old_name != NULL)
        ev |= match_events(s, n, owner, old, old_name, false, false);
    bool visible = own;
    if (!own && kind != 'd') {
        struct imap_mbref ref;
        visible = imap_mbref_resolve(s, imap_name, &ref) == 0 && (ref.rights & IMAP_RIGHT_L);
        imap_mbref_free(&ref);
    }
    if (visible && (ev & (sub ? EV_SUBSCRIPTION : EV_NAME))) {
        struct buf out = BUF_INIT;
        buf_printf(&out, "* LIST (%s) \"%c\" ",
                   kind == 'd'   ? "\\NonExistent"
                   : kind == 's' ? "\\Subscribed"
                                 : "",
                   STORE_DELIMITER);
        imap_mailbox_name_write(s, &out, imap_name);
        if (old_name != NULL) {
            buf_append_cstr(&out, " (\"OLDNAME\" (");
            imap_mailbox_name_write(s, &out, old_name);
            buf_append_cstr(&out, "))");
        }
        buf_append_cstr(&out, "\r\n");
        net_conn_write(s->conn, out.data, out.len);
        buf_free(&out);
    }
    free(imap_name);
    free(old_name);
}

void imap_notify_list_changed(struct imap_session *s, enum ipc_mailbox_list_change change,
                              const char *owner, const char *name, const char *old)
{
    char kind = list_kinds[change];
    struct ipc_event ev = {
        .type = IPC_EVENT_MAILBOX_LIST,
        .u.mailbox_list = {.owner = owner, .change = change, .name = name, .old_name = old}};
    net_worker_publish(s->srv->worker, &ev);
    /* The bus relays to the other processes only; the session itself is not told (RFC 5465 5). */
    for (struct imap_session *o = s->srv->sessions; o != NULL; o = o->next) {
        if (change == IPC_LIST_RENAMED)
            imap_view_renamed(o, owner, name, old);
        if (o != s)
            list_event(o, owner, kind, name, old);
    }
}

void imap_notify_list_event(struct imap_server *srv, const struct ipc_event_mailbox_list *ev)
{
    char kind = list_kinds[ev->change];
    for (struct imap_session *o = srv->sessions; o != NULL; o = o->next) {
        if (ev->change == IPC_LIST_RENAMED)
            imap_view_renamed(o, ev->owner, ev->name, ev->old_name);
        list_event(o, ev->owner, kind, ev->name, ev->old_name);
    }
}
