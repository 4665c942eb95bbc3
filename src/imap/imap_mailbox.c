/*
 * imap_mailbox.c - mailbox commands (SELECT, EXAMINE, CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, STATUS, NAMESPACE, CHECK, CLOSE, UNSELECT) and
 * the selected-mailbox view with its updates (EXISTS, EXPUNGE or VANISHED,
 * FETCH FLAGS). LIST and LSUB are in imap_list.c.
 * Must never: pass the store another owner's mailbox before imap_mbref_allowed
 * said the session has the rights for it (imap_namespace.c).
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_context.h"
#include "imap/imap_int.h"
#include "imap/imap_notify.h"
#include "mime/mutf7.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The answer for a mailbox that does not exist, or that the session may not see. */
#define MISSING "[NONEXISTENT] Mailbox does not exist"

/* The one place names from the client are decoded (RFC 3501 5.1.3, RFC 9051 5.1). */
bool imap_mailbox_decode(struct imap_session *s, struct slice name, struct buf *out)
{
    size_t start = out->len;
    if (s->rev2 ? !mutf7_utf8_valid(name) : !mutf7_decode(name, out)) {
        s->name_error = s->rev2 ? "Mailbox name is not valid UTF-8"
                                : "Mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)";
        return false;
    }
    if (s->rev2)
        buf_append_slice(out, name);
    /* One spelling per name in the store, whichever revision made it. */
    if (!mutf7_net_unicode(slice_make(out->data + start, out->len - start))) {
        s->name_error = "Mailbox name is not Net-Unicode (RFC 9051 5.1: NFC, no controls)";
        return false;
    }
    return true;
}

char *imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a)
{
    struct slice raw;
    struct buf name = BUF_INIT;
    if (!imap_arg_astring(a, &raw) || raw.len == 0 || memchr(raw.ptr, '\0', raw.len) != NULL ||
        !imap_mailbox_decode(s, raw, &name) || name.len > STORE_MAILBOX_NAME_MAX) {
        buf_free(&name);
        return NULL;
    }
    if (slice_eq_cstr_nocase(buf_slice(&name), STORE_INBOX)) {
        buf_free(&name);
        return xstrdup(STORE_INBOX);
    }
    return buf_steal(&name, NULL);
}

/*
 * The one place names to the client are encoded: an atom when every byte is
 * an ASTRING-CHAR (as Dovecot writes INBOX), else a string; IMAP4rev2 quotes
 * UTF-8 (RFC 9051 QUOTED-CHAR). A stored name that is not UTF-8 (made before
 * names were decoded) goes as it is.
 */
void imap_mailbox_name_write(const struct imap_session *s, struct buf *out, const char *name)
{
    struct buf utf7 = BUF_INIT;
    if (!s->rev2 && mutf7_encode(slice_from_cstr(name), &utf7))
        name = buf_cstr(&utf7);
    bool atom = name[0] != '\0' && strcasecmp(name, "NIL") != 0, quoted = s->rev2;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        atom = atom && *p > 0x20 && *p < 0x7f && !strchr("(){%*\"\\", *p);
        quoted = quoted && *p >= 0x20 && *p != 0x7f;
    }
    if (atom) {
        buf_append_cstr(out, name);
    } else if (quoted && mutf7_utf8_valid(slice_from_cstr(name))) {
        buf_append_byte(out, '"');
        for (const char *p = name; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_append_byte(out, '\\');
            buf_append_byte(out, *p);
        }
        buf_append_byte(out, '"');
    } else {
        mime_imap_string(out, slice_from_cstr(name));
    }
    buf_free(&utf7);
}

void imap_flags_write(struct buf *out, unsigned flags, const char *keywords)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {STORE_FLAG_ANSWERED, "\\Answered"}, {STORE_FLAG_FLAGGED, "\\Flagged"},
        {STORE_FLAG_DELETED, "\\Deleted"},   {STORE_FLAG_SEEN, "\\Seen"},
        {STORE_FLAG_DRAFT, "\\Draft"},
    };
    buf_append_byte(out, '(');
    size_t start = out->len;
    if (flags & IMAP_MSG_RECENT)
        buf_append_cstr(out, "\\Recent");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (flags & names[i].bit) {
            if (out->len > start)
                buf_append_byte(out, ' ');
            buf_append_cstr(out, names[i].name);
        }
    }
    if (keywords != NULL && keywords[0] != '\0') {
        if (out->len > start)
            buf_append_byte(out, ' ');
        buf_append_cstr(out, keywords);
    }
    buf_append_byte(out, ')');
}

static char no_keywords[] = ""; /* shared by every view message without keywords */

/* Takes the keywords of a store row (the row keeps NULL). */
static char *keywords_take(struct store_message *m)
{
    char *k = m->keywords;
    m->keywords = NULL;
    if (k[0] != '\0')
        return k;
    free(k);
    return no_keywords;
}

static void keywords_free(char *k)
{
    if (k != no_keywords)
        free(k);
}

/* A view entry from a store row (its keywords move over). */
static struct imap_msg view_msg(struct store_message *m)
{
    return (struct imap_msg){.uid = m->uid,
                             .flags = m->flags,
                             .modseq = m->modseq,
                             .internaldate = m->internaldate,
                             .size = m->size,
                             .keywords = keywords_take(m)};
}

/* Appends the store rows list[from..n) to the view. */
static void view_append(struct imap_view *v, struct store_message *list, size_t from, size_t n)
{
    if (from >= n)
        return;
    v->msgs = xreallocarray(v->msgs, v->n + (n - from), sizeof(*v->msgs));
    for (size_t i = from; i < n; i++)
        v->msgs[v->n++] = view_msg(&list[i]);
}

/* Adds the keywords (space-separated) the view did not know yet; true when one was new. */
static bool view_keywords_add(struct imap_view *v, const char *keywords)
{
    bool added = false;
    for (const char *p = keywords; *p != '\0';) {
        size_t len = strcspn(p, " ");
        bool known = len == 0;
        for (size_t i = 0; i < v->n_kw && !known; i++)
            known = strncasecmp(v->kw[i], p, len) == 0 && v->kw[i][len] == '\0';
        if (!known) {
            v->kw = xreallocarray(v->kw, v->n_kw + 1, sizeof(*v->kw));
            v->kw[v->n_kw++] = xstrndup(p, len);
            added = true;
        }
        p += len;
        while (*p == ' ')
            p++;
    }
    return added;
}

/* "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" as this session knows the mailbox. */
static void flags_lines_write(const struct imap_view *v, struct buf *out)
{
    buf_append_cstr(out, "* FLAGS (" IMAP_SYSTEM_FLAGS);
    for (size_t i = 0; i < v->n_kw; i++) {
        buf_append_byte(out, ' ');
        buf_append_cstr(out, v->kw[i]);
    }
    /* Read-only (EXAMINE, or no right to change anything): no flag can be
     * changed, as in RFC 3501 6.3.2's example; else RFC 4314: what this user may change. */
    buf_append_cstr(out, ")\r\n* OK [PERMANENTFLAGS (");
    if (!v->readonly)
        imap_rights_flags_write(out, v->rights, v->kw, v->n_kw);
    buf_append_cstr(out, ")] Flags permitted\r\n");
}

void imap_view_keywords_announce(struct imap_session *s, const char *keywords)
{
    if (keywords == NULL || !view_keywords_add(&s->view, keywords))
        return;
    struct buf out = BUF_INIT;
    flags_lines_write(&s->view, &out);
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
}

/*
 * RFC 3501 2.3.2 \Recent for the view's messages from index from on: an
 * IMAP4rev1 session with the mailbox selected read-write takes the ones no
 * session took before (the first session told of a message gets it); a
 * read-only one sees as recent those nobody took yet. IMAP4rev2 has none.
 */
static void view_recent_mark(struct imap_session *s, size_t from)
{
    struct imap_view *v = &s->view;
    if (s->rev2 || from >= v->n)
        return;
    uint32_t first;
    struct buf err = BUF_INIT;
    if (store_mailbox_recent_claim(s->srv->store, v->owner, v->name, v->msgs[v->n - 1].uid,
                                   !v->readonly, &first, &err) < 0)
        log_warning("user=<%s>: recent %s: %s", s->account, v->name, buf_cstr(&err));
    buf_free(&err);
    for (size_t i = from; i < v->n; i++) {
        if (v->msgs[i].uid >= first) {
            v->msgs[i].flags |= IMAP_MSG_RECENT;
            v->n_recent++;
        }
    }
}

void imap_condstore_enable(struct imap_session *s)
{
    if (s->condstore)
        return;
    s->condstore = true;
    if (s->state == IMAP_SELECTED)
        imap_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest",
                    (unsigned long long)s->view.highestmodseq);
}

void imap_view_free(struct imap_view *v)
{
    imap_context_free_all(v);
    free(v->owner);
    free(v->name);
    free(v->saved);
    for (size_t i = 0; i < v->n_kw; i++)
        free(v->kw[i]);
    free(v->kw);
    for (size_t i = 0; i < v->n; i++)
        keywords_free(v->msgs[i].keywords);
    free(v->msgs);
    memset(v, 0, sizeof(*v));
}

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uids[mid] == uid)
            return true;
        if (uids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool imap_view_saved_has(const struct imap_view *v, uint32_t uid)
{
    return uid_in(v->saved, v->n_saved, uid);
}

/* RFC 5182 2.1: an expunged message leaves the saved search result. */
static void saved_prune(struct imap_view *v)
{
    size_t k = 0;
    for (size_t i = 0, j = 0; i < v->n_saved; i++) {
        while (j < v->n && v->msgs[j].uid < v->saved[i])
            j++;
        if (j < v->n && v->msgs[j].uid == v->saved[i])
            v->saved[k++] = v->saved[i];
    }
    v->n_saved = k;
}

/* Index of uid in the view, or v->n when it is not there. */
static size_t view_find(const struct imap_view *v, uint32_t uid)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->msgs[mid].uid == uid)
            return mid;
        if (v->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return v->n;
}

/*
 * The view indexes the store's changes expunge (ascending) into *gone_r; all
 * of them when the mailbox was deleted and created again (another
 * UIDVALIDITY: every message of the view went).
 */
static size_t view_gone(const struct imap_view *v, const struct store_changes *c, bool reset,
                        size_t **gone_r)
{
    size_t *gone = xcalloc(reset ? v->n + 1 : c->n_expunged + 1, sizeof(*gone));
    size_t k = 0;
    for (size_t i = 0; reset && i < v->n; i++)
        gone[k++] = i;
    for (size_t i = 0; !reset && i < c->n_expunged; i++) {
        size_t at = view_find(v, c->expunged[i]);
        if (at < v->n)
            gone[k++] = at; /* ascending: both lists are in UID order */
    }
    *gone_r = gone;
    return k;
}

void imap_view_renamed(struct imap_session *s, const char *owner, const char *name, const char *old)
{
    struct imap_view *v = &s->view;
    size_t n = strlen(old);
    if (v->name == NULL || strcmp(v->owner, owner) != 0 || strncmp(v->name, old, n) != 0 ||
        (v->name[n] != '\0' && v->name[n] != STORE_DELIMITER))
        return;
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s%s", name, v->name + n);
    bool linked = s->sel != NULL;
    imap_selected_unlink(s); /* the index is keyed by the name */
    free(v->name);
    v->name = buf_steal(&b, NULL);
    if (linked)
        imap_selected_link(s);
}

void imap_view_sync(struct imap_session *s, bool allow_expunge, const uint32_t *quiet_uids,
                    size_t n_quiet)
{
    struct imap_view *v = &s->view;
    struct store_changes c;
    struct buf err = BUF_INIT;
    /* One snapshot: the changes past the view's MODSEQ and the mailbox's HIGHESTMODSEQ. */
    int rc = imap_store_changes(s, v->synced_modseq, &c, &err);
    bool reset = rc == 0 && c.uidvalidity != v->uidvalidity;
    if (reset) {
        store_changes_free(&c);
        rc = store_message_changes_id(s->srv->store, v->owner, v->id, 0, &c, &err);
    }
    if (rc != 0) {
        log_error("user=<%s>: cannot sync %s: %s", s->account, v->name, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    size_t *gone;
    size_t removed = view_gone(v, &c, reset, &gone);
    if (removed > 0 && !allow_expunge) {
        free(gone);
        store_changes_free(&c);
        struct buf upd = BUF_INIT; /* our own STOREs are in the view already */
        imap_context_refresh(s, &upd);
        if (upd.len > 0)
            net_conn_write(s->conn, upd.data, upd.len);
        buf_free(&upd);
        return; /* still dirty */
    }
    v->dirty = false;
    /* RFC 5267 4.3.4: REMOVEFROM before the EXPUNGEs, numbered as the client sees them now */
    struct buf removefrom = BUF_INIT;
    if (removed > 0)
        imap_context_expunging(s, gone, removed, &removefrom);
    /*
     * EXPUNGEs and FETCHes in UID order, each numbered after the EXPUNGEs
     * before it; QRESYNC (RFC 7162 3.2.10): one VANISHED, before the FETCHes.
     */
    struct buf out = BUF_INIT, vanished = BUF_INIT;
    uint32_t last = v->n && !reset ? v->msgs[v->n - 1].uid : 0;
    size_t g = 0, k = 0;
    for (; k < c.n && c.msgs[k].uid <= last; k++) {
        struct store_message *cur = &c.msgs[k];
        size_t at = view_find(v, cur->uid);
        if (at == v->n)
            continue; /* cannot happen: new messages have larger UIDs */
        for (; g < removed && gone[g] < at; g++)
            if (!s->qresync)
                buf_printf(&out, "* %zu EXPUNGE\r\n", gone[g] - g + 1);
        if (g < removed && gone[g] == at)
            continue;
        struct imap_msg *old = &v->msgs[at];
        unsigned recent = old->flags & IMAP_MSG_RECENT;
        if ((cur->flags != (old->flags & ~IMAP_MSG_RECENT) ||
             strcmp(cur->keywords, old->keywords) != 0) &&
            !uid_in(quiet_uids, n_quiet, cur->uid)) {
            imap_view_keywords_announce(s, cur->keywords); /* before out: written first */
            buf_printf(&out, "* %zu FETCH (UID %u FLAGS ", at - g + 1, cur->uid);
            imap_flags_write(&out, cur->flags | recent, cur->keywords);
            if (s->condstore)
                buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)cur->modseq);
            buf_append_cstr(&out, ")\r\n");
        }
        keywords_free(old->keywords);
        *old = view_msg(cur);
        old->flags |= recent;
    }
    for (; g < removed; g++)
        if (!s->qresync)
            buf_printf(&out, "* %zu EXPUNGE\r\n", gone[g] - g + 1);
    if (s->qresync && removed > 0) {
        uint32_t *uids = xcalloc(removed, sizeof(*uids));
        for (size_t i = 0; i < removed; i++)
            uids[i] = v->msgs[gone[i]].uid;
        buf_append_cstr(&vanished, "* VANISHED ");
        imap_seqset_write(&vanished, uids, removed);
        buf_append_cstr(&vanished, "\r\n");
        free(uids);
    }
    /* Drop the expunged entries, then take the new messages (their keywords move over). */
    size_t n = 0;
    for (size_t i = 0, j = 0; i < v->n; i++) {
        if (j < removed && gone[j] == i) {
            j++;
            if (v->msgs[i].flags & IMAP_MSG_RECENT)
                v->n_recent--;
            keywords_free(v->msgs[i].keywords);
        } else
            v->msgs[n++] = v->msgs[i];
    }
    free(gone);
    v->n = n;
    size_t recent_before = v->n_recent;
    view_append(v, c.msgs, k, c.n);
    view_recent_mark(s, n);
    if (v->n != n)
        buf_printf(&out, "* %zu EXISTS\r\n", v->n);
    if (!s->rev2 && (v->n != n || v->n_recent != recent_before))
        buf_printf(&out, "* %zu RECENT\r\n", v->n_recent);
    if (removed > 0)
        saved_prune(v);
    if (reset)
        v->uidvalidity = c.uidvalidity;
    if (v->n > 0 && v->msgs[v->n - 1].uid >= v->uidnext)
        v->uidnext = v->msgs[v->n - 1].uid + 1;
    /* QRESYNC wants the mailbox's HIGHESTMODSEQ after an EXPUNGE (RFC 7162 3.2.10), expunges
     * included. */
    if (s->qresync && allow_expunge && c.highestmodseq > v->highestmodseq)
        v->highestmodseq = c.highestmodseq;
    for (size_t i = 0; i < c.n; i++)
        if (c.msgs[i].modseq > v->highestmodseq)
            v->highestmodseq = c.msgs[i].modseq;
    v->synced_modseq = c.highestmodseq;
    store_changes_free(&c);
    imap_context_refresh(s, &out); /* ADDTO after EXISTS (RFC 5267 4.3.3) */
    if (removefrom.len > 0)
        net_conn_write(s->conn, removefrom.data, removefrom.len);
    buf_free(&removefrom);
    if (vanished.len > 0)
        net_conn_write(s->conn, vanished.data, vanished.len);
    if (out.len > 0)
        net_conn_write(s->conn, out.data, out.len);
    buf_free(&vanished);
    buf_free(&out);
}

bool imap_set_is_saved(struct slice set)
{
    return set.len == 1 && set.ptr[0] == '$';
}

bool imap_view_select(struct imap_session *s, struct slice tag, struct slice set, bool uid,
                      size_t **idx_r, size_t *n_r)
{
    struct imap_seqset seq = {0};
    bool saved = imap_set_is_saved(set);
    *idx_r = NULL;
    *n_r = 0;
    if (!saved && !imap_seqset_parse(set, &seq)) {
        imap_bad(s, tag, "Invalid sequence set");
        return false;
    }
    const struct imap_view *v = &s->view;
    if (!uid) {
        for (size_t i = 0; i < seq.n; i++) {
            if ((seq.v[i].lo > v->n) || (seq.v[i].hi > v->n)) {
                imap_seqset_free(&seq);
                imap_bad(s, tag, "Invalid message sequence number");
                return false;
            }
        }
    }
    uint32_t star = uid ? (v->n ? v->msgs[v->n - 1].uid : 0) : (uint32_t)v->n;
    size_t *idx = xcalloc(v->n ? v->n : 1, sizeof(*idx));
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) {
        uint32_t num = uid ? v->msgs[i].uid : (uint32_t)(i + 1);
        if (saved ? imap_view_saved_has(v, v->msgs[i].uid) : imap_seqset_contains(&seq, num, star))
            idx[k++] = i;
    }
    imap_seqset_free(&seq);
    *idx_r = idx;
    *n_r = k;
    return true;
}

/* ---- SELECT / EXAMINE ---- */

static void deselect(struct imap_session *s)
{
    imap_selected_unlink(s);
    imap_view_free(&s->view);
    s->state = IMAP_AUTHENTICATED;
}

/*
 * Resolves name and reads its mailbox row for a command that needs the `r`
 * right (SELECT, EXAMINE, STATUS). 0: *ref_r and *mb_r filled; else the
 * command has been answered (missing or not visible, no right, store error).
 * *ref_r is always to be freed.
 */
static int mailbox_get_readable(struct imap_session *s, struct slice tag, const char *what,
                                const char *name, struct imap_mbref *ref_r,
                                struct store_mailbox *mb_r, struct buf *err)
{
    int r = imap_mbref_resolve(s, name, ref_r);
    if (r == 0 && !imap_mbref_allowed(s, tag, ref_r, IMAP_RIGHT_R, MISSING))
        return 2; /* answered */
    if (r == 0)
        r = store_mailbox_get(s->srv->store, ref_r->owner, ref_r->name, mb_r, err);
    if (r == 1)
        imap_printf(s, "%.*s NO " MISSING, TAGF(tag));
    else if (r < 0)
        imap_store_error(s, tag, what, err);
    return r;
}

static void select_or_examine(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                              size_t n, bool readonly)
{
    bool condstore = false;
    struct imap_qresync q = {0};
    const char *e = NULL;
    if (n == 2)
        e = imap_select_params(s, &args[1], &condstore, &q);
    char *name = (n == 1 || n == 2) && e == NULL ? imap_mailbox_arg(s, &args[0]) : NULL;
    if (name == NULL) {
        imap_bad(s, tag,
                 e          ? e
                 : readonly ? "Usage: EXAMINE mailbox [(CONDSTORE | QRESYNC (...))]"
                            : "Usage: SELECT mailbox [(CONDSTORE | QRESYNC (...))]");
        imap_qresync_free(&q);
        return;
    }
    if (condstore)
        s->condstore = true;
    if (s->state == IMAP_SELECTED) {
        deselect(s);
        /* RFC 7162 3.2.11: the boundary between the old mailbox's responses and the new one's. */
        imap_printf(s, "* OK [CLOSED] Previous mailbox closed");
    }
    struct store_mailbox mb;
    struct buf err = BUF_INIT;
    struct imap_mbref ref;
    if (mailbox_get_readable(s, tag, "select", name, &ref, &mb, &err) != 0) {
        imap_mbref_free(&ref);
        buf_free(&err);
        imap_qresync_free(&q);
        free(name);
        return;
    }
    struct imap_view *v = &s->view;
    struct store_changes all;
    if (store_message_changes_id(s->srv->store, ref.owner, mb.id, 0, &all, &err) != 0) {
        imap_store_error(s, tag, "select", &err);
        store_mailbox_free(&mb);
        imap_mbref_free(&ref);
        buf_free(&err);
        imap_qresync_free(&q);
        free(name);
        return;
    }
    view_append(v, all.msgs, 0, all.n); /* the light listing: what every command needs */
    v->synced_modseq = all.highestmodseq;
    store_changes_free(&all);
    v->owner = ref.owner;
    v->name = ref.name;
    v->id = mb.id;
    v->rights = ref.rights;
    /* RFC 4314 5.2: READ-ONLY without any right to change the mailbox. */
    v->readonly =
        readonly ||
        !(ref.rights & (IMAP_RIGHT_I | IMAP_RIGHT_E | IMAP_RIGHT_S | IMAP_RIGHT_W | IMAP_RIGHT_T));
    view_recent_mark(s, 0);
    v->uidvalidity = mb.uidvalidity;
    v->uidnext = mb.uidnext;
    v->highestmodseq = mb.highestmodseq;
    for (size_t i = 0; i < v->n; i++) /* the listing may be newer than mb */
        if (v->msgs[i].modseq > v->highestmodseq)
            v->highestmodseq = v->msgs[i].modseq;
    struct buf list = BUF_INIT; /* RFC 9051 6.3.2: IMAP4rev2 gets a LIST for the mailbox */
    if (s->rev2) {
        buf_printf(&list, "* LIST (%s) \"%c\" ", mb.special_use ? mb.special_use : "",
                   STORE_DELIMITER);
        imap_mailbox_name_write(s, &list, name);
        buf_append_cstr(&list, "\r\n");
    }
    free(name);
    store_mailbox_free(&mb);
    s->state = IMAP_SELECTED;
    imap_selected_link(s);
    struct buf resync = BUF_INIT;
    if (imap_qresync_select(s, &q, &resync) != 0) {
        /* Without the expunge log the client would believe nothing vanished. */
        imap_qresync_free(&q);
        buf_free(&list);
        buf_free(&resync);
        buf_free(&err);
        deselect(s);
        imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
        return;
    }
    imap_qresync_free(&q);
    size_t first_unseen = 0;
    for (size_t i = 0; i < v->n && first_unseen == 0; i++)
        if (!(v->msgs[i].flags & STORE_FLAG_SEEN))
            first_unseen = i + 1;
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < v->n; i++) /* every keyword a message of the mailbox has */
        if (v->msgs[i].keywords[0] != '\0')
            view_keywords_add(v, v->msgs[i].keywords);
    flags_lines_write(v, &out);
    buf_append(&out, list.data, list.len);
    buf_free(&list);
    /* RECENT and UNSEEN are gone from IMAP4rev2 (RFC 9051 Appendix E 11, 12). */
    buf_printf(&out, "* %zu EXISTS\r\n", v->n);
    if (!s->rev2)
        buf_printf(&out, "* %zu RECENT\r\n", v->n_recent);
    if (first_unseen && !s->rev2)
        buf_printf(&out, "* OK [UNSEEN %zu] First unseen\r\n", first_unseen);
    buf_printf(&out, "* OK [UIDVALIDITY %u] UIDs valid\r\n", v->uidvalidity);
    buf_printf(&out, "* OK [UIDNEXT %u] Predicted next UID\r\n", v->uidnext);
    buf_printf(&out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n", (unsigned long long)v->highestmodseq);
    buf_append(&out, resync.data, resync.len);
    buf_free(&resync);
    buf_printf(&out, "%.*s OK [%s] %s completed\r\n", TAGF(tag),
               v->readonly ? "READ-ONLY" : "READ-WRITE", readonly ? "EXAMINE" : "SELECT");
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
    buf_free(&err);
}

void imap_cmd_select(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    select_or_examine(s, tag, args, n, false);
}

void imap_cmd_examine(struct imap_session *s, struct slice tag, bool uid,
                      const struct imap_arg *args, size_t n)
{
    (void)uid;
    select_or_examine(s, tag, args, n, true);
}

void imap_cmd_close(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                    size_t n)
{
    (void)uid, (void)args, (void)n;
    struct imap_view *v = &s->view;
    if (!v->readonly && (v->rights & IMAP_RIGHT_E)) {
        /* CLOSE expunges silently (no EXPUNGE responses); without "e" it only closes (RFC 4314 4).
         */
        uint32_t *uids = xcalloc(v->n ? v->n : 1, sizeof(*uids));
        size_t k = 0;
        for (size_t i = 0; i < v->n; i++)
            if (v->msgs[i].flags & STORE_FLAG_DELETED)
                uids[k++] = v->msgs[i].uid;
        struct buf err = BUF_INIT;
        if (k > 0) {
            if (store_message_expunge_id(s->srv->store, v->owner, v->id, uids, k, &err) != 0)
                log_error("user=<%s>: CLOSE expunge: %s", s->account, buf_cstr(&err));
            else
                imap_mailbox_changed(s, v->owner, v->name);
        }
        buf_free(&err);
        free(uids);
    }
    deselect(s);
    imap_printf(s, "%.*s OK CLOSE completed", TAGF(tag));
}

void imap_cmd_unselect(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args, (void)n;
    deselect(s);
    imap_printf(s, "%.*s OK UNSELECT completed", TAGF(tag));
}

void imap_cmd_check(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                    size_t n)
{
    (void)uid, (void)args, (void)n;
    imap_view_sync(s, true, NULL, 0);
    imap_printf(s, "%.*s OK CHECK completed", TAGF(tag));
}

/* ---- CREATE / DELETE / RENAME / SUBSCRIBE ---- */

static bool mailbox_exists(struct imap_session *s, const char *name, int *r_store)
{
    struct store_mailbox mb;
    struct buf err = BUF_INIT;
    int r = store_mailbox_get(s->srv->store, s->account, name, &mb, &err);
    if (r == 0)
        store_mailbox_free(&mb);
    else if (r < 0)
        log_error("user=<%s>: %s", s->account, buf_cstr(&err));
    buf_free(&err);
    *r_store = r;
    return r == 0;
}

/* The answer when mailbox_exists said no (r: its store result). */
static void no_such_mailbox(struct imap_session *s, struct slice tag, int r)
{
    if (r < 0)
        imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
    else
        imap_printf(s, "%.*s NO [NONEXISTENT] Mailbox does not exist", TAGF(tag));
}

/* RFC 9051 6.3.4: CREATE a/b/c creates a and a/b when they are missing. */
static int create_parents(struct imap_session *s, char *name, struct buf *err)
{
    for (char *p = strchr(name, STORE_DELIMITER); p != NULL; p = strchr(p + 1, STORE_DELIMITER)) {
        if (p == name)
            continue;
        *p = '\0';
        int r;
        int rc = 0;
        if (!mailbox_exists(s, name, &r))
            rc = r < 0 ? -1 : store_mailbox_create(s->srv->store, s->account, name, NULL, err);
        *p = STORE_DELIMITER;
        if (rc != 0)
            return -1;
    }
    return 0;
}

/*
 * A new name (CREATE, RENAME's target): one's own, or another owner's below
 * an existing mailbox on which the session has "k" (RFC 4314 4; no missing
 * parents are made there). The answer never depends on what the session
 * may not see. false when answered.
 */
static bool create_allowed(struct imap_session *s, struct slice tag, const struct imap_mbref *to)
{
    if (to->name == NULL) {
        imap_printf(s, "%.*s NO [CANNOT] That is a namespace level, not a mailbox name", TAGF(tag));
        return false;
    }
    struct buf err = BUF_INIT;
    int r = store_acl_may_create(s->srv->store, to->owner, to->name, s->account, &err);
    if (r < 0)
        imap_store_error(s, tag, "create", &err);
    buf_free(&err);
    if (r != 0)
        return r > 0;
    imap_printf(s,
                "%.*s NO [NOPERM] Permission denied (creating here needs the right \"k\" on "
                "an existing parent; public folders are made with wharf public add)",
                TAGF(tag));
    return false;
}

void imap_cmd_create(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n == 1 ? imap_mailbox_arg(s, &args[0]) : NULL;
    if (name == NULL) {
        imap_bad(s, tag, "Usage: CREATE mailbox");
        return;
    }
    /* "foo/" announces that foo will hold children: it creates foo. */
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == STORE_DELIMITER)
        name[--len] = '\0';
    struct imap_mbref ref;
    struct buf err = BUF_INIT;
    if (imap_mbref_resolve(s, name, &ref) != 0)
        imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
    else if (ref.exists && (ref.rights & IMAP_RIGHT_L))
        imap_printf(s, "%.*s NO [ALREADYEXISTS] Mailbox already exists", TAGF(tag));
    else if (strpbrk(name, "*%") != NULL)
        imap_printf(s, "%.*s NO [CANNOT] Mailbox names may not contain * or %%", TAGF(tag));
    else if (!create_allowed(s, tag, &ref))
        ; /* answered */
    else if ((ref.own && create_parents(s, ref.name, &err) != 0) ||
             store_mailbox_create(s->srv->store, ref.owner, ref.name, NULL, &err) != 0)
        imap_printf(s, "%.*s NO [CANNOT] %s", TAGF(tag), buf_cstr(&err));
    else {
        imap_notify_list_changed(s, IPC_LIST_CREATED, ref.owner, ref.name, NULL);
        imap_printf(s, "%.*s OK CREATE completed", TAGF(tag));
    }
    imap_mbref_free(&ref);
    buf_free(&err);
    free(name);
}

void imap_cmd_delete(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n == 1 ? imap_mailbox_arg(s, &args[0]) : NULL;
    if (name == NULL) {
        imap_bad(s, tag, "Usage: DELETE mailbox");
        return;
    }
    struct imap_mbref ref;
    struct buf err = BUF_INIT;
    if (imap_mbref_resolve(s, name, &ref) != 0)
        no_such_mailbox(s, tag, -1);
    else if (!imap_mbref_allowed(s, tag, &ref, IMAP_RIGHT_X, MISSING))
        ; /* answered */
    else if (ref.own && strcmp(ref.name, STORE_INBOX) == 0)
        imap_printf(s, "%.*s NO [CANNOT] INBOX cannot be deleted", TAGF(tag));
    else if (!ref.exists)
        no_such_mailbox(s, tag, 1);
    else if (store_mailbox_delete(s->srv->store, ref.owner, ref.name, &err) != 0)
        imap_printf(s, "%.*s NO [CANNOT] %s", TAGF(tag), buf_cstr(&err));
    else {
        if (s->state == IMAP_SELECTED && strcmp(s->view.owner, ref.owner) == 0 &&
            strcmp(s->view.name, ref.name) == 0)
            deselect(s);
        imap_mailbox_changed(s, ref.owner, ref.name);
        imap_notify_list_changed(s, IPC_LIST_DELETED, ref.owner, ref.name, NULL);
        imap_printf(s, "%.*s OK DELETE completed", TAGF(tag));
    }
    imap_mbref_free(&ref);
    buf_free(&err);
    free(name);
}

/*
 * RFC 9051 6.3.6: renaming INBOX moves all its messages to a new mailbox and
 * leaves INBOX empty (the store keeps INBOX itself).
 */
static void rename_inbox(struct imap_session *s, struct slice tag, char *to)
{
    int r;
    struct buf err = BUF_INIT;
    struct store_message *list = NULL;
    size_t n = 0;
    if (mailbox_exists(s, to, &r)) {
        imap_printf(s, "%.*s NO [ALREADYEXISTS] Target mailbox already exists", TAGF(tag));
        goto done;
    }
    if (r < 0 || strpbrk(to, "*%") != NULL || create_parents(s, to, &err) != 0 ||
        store_mailbox_create(s->srv->store, s->account, to, NULL, &err) != 0) {
        imap_printf(s, "%.*s NO [CANNOT] Cannot create the target mailbox", TAGF(tag));
        goto done;
    }
    if (store_message_list(s->srv->store, s->account, STORE_INBOX, 1, &list, &n, &err) != 0) {
        imap_store_error(s, tag, "rename INBOX", &err);
        goto done;
    }
    uint32_t *uids = xcalloc(n ? n : 1, sizeof(*uids));
    for (size_t i = 0; i < n; i++)
        uids[i] = list[i].uid;
    if (n > 0 && store_message_copy(s->srv->store, s->account, STORE_INBOX, uids, n, to, true, NULL,
                                    &err) != 0) {
        imap_store_error(s, tag, "rename INBOX", &err);
    } else {
        if (n > 0) {
            imap_mailbox_changed(s, s->account, STORE_INBOX);
            imap_mailbox_changed(s, s->account, to);
        }
        imap_printf(s, "%.*s OK RENAME completed", TAGF(tag));
    }
    free(uids);
done:
    store_message_list_free(list, n);
    buf_free(&err);
}

void imap_cmd_rename(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *from = n == 2 ? imap_mailbox_arg(s, &args[0]) : NULL;
    char *to = n == 2 ? imap_mailbox_arg(s, &args[1]) : NULL;
    struct buf err = BUF_INIT;
    struct imap_mbref a = {0}, b = {0};
    if (from == NULL || to == NULL)
        imap_bad(s, tag, "Usage: RENAME from to");
    else if (imap_mbref_resolve(s, from, &a) != 0 || imap_mbref_resolve(s, to, &b) != 0)
        no_such_mailbox(s, tag, -1);
    else if (!imap_mbref_allowed(s, tag, &a, IMAP_RIGHT_X, MISSING))
        ; /* answered */
    else if (!a.exists)
        no_such_mailbox(s, tag, 1);
    else if (strcmp(a.owner, b.owner) != 0)
        imap_printf(s, "%.*s NO [CANNOT] A mailbox cannot move to another namespace or owner",
                    TAGF(tag));
    else if (a.own && strcmp(a.name, STORE_INBOX) == 0 && b.name != NULL)
        rename_inbox(s, tag, b.name);
    else if (b.exists && (b.rights & IMAP_RIGHT_L))
        imap_printf(s, "%.*s NO [ALREADYEXISTS] Target mailbox already exists", TAGF(tag));
    else if (strpbrk(to, "*%") != NULL)
        imap_printf(s, "%.*s NO [CANNOT] Mailbox names may not contain * or %%", TAGF(tag));
    else if (!create_allowed(s, tag, &b))
        ; /* answered */
    else if ((a.own && create_parents(s, b.name, &err) != 0) ||
             store_mailbox_rename(s->srv->store, a.owner, a.name, b.name, &err) != 0)
        imap_printf(s, "%.*s NO [CANNOT] %s", TAGF(tag), buf_cstr(&err));
    else {
        imap_notify_list_changed(s, IPC_LIST_RENAMED, a.owner, b.name, a.name);
        imap_printf(s, "%.*s OK RENAME completed", TAGF(tag));
    }
    imap_mbref_free(&a);
    imap_mbref_free(&b);
    buf_free(&err);
    free(from);
    free(to);
}

static void subscribe(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                      size_t n, bool on)
{
    char *name = n == 1 ? imap_mailbox_arg(s, &args[0]) : NULL;
    struct buf err = BUF_INIT;
    if (name == NULL)
        imap_bad(s, tag, on ? "Usage: SUBSCRIBE mailbox" : "Usage: UNSUBSCRIBE mailbox");
    else if (store_subscribe(s->srv->store, s->account, name, on, &err) != 0)
        imap_store_error(s, tag, "subscribe", &err);
    else {
        imap_notify_list_changed(s, on ? IPC_LIST_SUBSCRIBED : IPC_LIST_UNSUBSCRIBED, s->account,
                                 name, NULL);
        imap_printf(s, "%.*s OK %s completed", TAGF(tag), on ? "SUBSCRIBE" : "UNSUBSCRIBE");
    }
    buf_free(&err);
    free(name);
}

void imap_cmd_subscribe(struct imap_session *s, struct slice tag, bool uid,
                        const struct imap_arg *args, size_t n)
{
    (void)uid;
    subscribe(s, tag, args, n, true);
}

void imap_cmd_unsubscribe(struct imap_session *s, struct slice tag, bool uid,
                          const struct imap_arg *args, size_t n)
{
    (void)uid;
    subscribe(s, tag, args, n, false);
}

/* ---- STATUS / NAMESPACE ---- */

/* RFC 9208 STATUS DELETED / DELETED-STORAGE: messages with \Deleted and their bytes. */
static void count_deleted(struct imap_session *s, const char *name, uint64_t *n_r,
                          uint64_t *bytes_r)
{
    struct store_changes all;
    struct buf err = BUF_INIT;
    struct imap_mbref ref;
    *n_r = *bytes_r = 0;
    memset(&all, 0, sizeof(all));
    if (imap_mbref_resolve(s, name, &ref) == 0 && ref.name != NULL &&
        store_message_changes(s->srv->store, ref.owner, ref.name, 0, &all, &err) != 0)
        log_error("user=<%s>: cannot list %s: %s", s->account, name, buf_cstr(&err));
    imap_mbref_free(&ref);
    for (size_t i = 0; i < all.n; i++) {
        if (all.msgs[i].flags & STORE_FLAG_DELETED) {
            (*n_r)++;
            *bytes_r += all.msgs[i].size;
        }
    }
    store_changes_free(&all);
    buf_free(&err);
}

const char *imap_status_write(struct imap_session *s, struct buf *out, const char *name,
                              const struct imap_arg *items, const struct store_mailbox *mb)
{
    if (items->type != IMAP_ARG_LIST || items->n_list == 0)
        return "Usage: STATUS mailbox (items)";
    bool counted = false;
    uint64_t deleted = 0, deleted_bytes = 0;
    size_t start = out->len;
    buf_append_cstr(out, "* STATUS ");
    imap_mailbox_name_write(s, out, name);
    buf_append_cstr(out, " (");
    for (size_t i = 0; i < items->n_list; i++) {
        const struct imap_arg *a = &items->list[i];
        unsigned long long v;
        if (imap_arg_is_atom(a, "MESSAGES"))
            v = mb->messages;
        else if (imap_arg_is_atom(a, "UIDNEXT"))
            v = mb->uidnext;
        else if (imap_arg_is_atom(a, "UIDVALIDITY"))
            v = mb->uidvalidity;
        else if (imap_arg_is_atom(a, "UNSEEN"))
            v = mb->unseen;
        else if (imap_arg_is_atom(a, "SIZE"))
            v = mb->bytes;
        else if (imap_arg_is_atom(a, "HIGHESTMODSEQ")) {
            v = mb->highestmodseq;
            imap_condstore_enable(s);
        } else if (imap_arg_is_atom(a, "RECENT"))
            v = mb->recent; /* nobody took them yet (RFC 3501 2.3.2, view_recent_mark) */
        else if (imap_arg_is_atom(a, "DELETED") || imap_arg_is_atom(a, "DELETED-STORAGE")) {
            if (!counted && mb->id != 0) /* id 0: only checking the items */
                count_deleted(s, name, &deleted, &deleted_bytes);
            counted = true;
            v = imap_arg_is_atom(a, "DELETED") ? deleted : deleted_bytes;
        } else {
            out->len = start;
            return "Unknown STATUS item";
        }
        buf_printf(out, "%s%.*s %llu", i ? " " : "", (int)a->str.len, a->str.ptr, v);
    }
    buf_append_cstr(out, ")\r\n");
    return NULL;
}

void imap_cmd_status(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n == 2 ? imap_mailbox_arg(s, &args[0]) : NULL;
    if (name == NULL || args[1].type != IMAP_ARG_LIST || args[1].n_list == 0) {
        imap_bad(s, tag, "Usage: STATUS mailbox (items)");
        free(name);
        return;
    }
    struct store_mailbox mb;
    struct buf err = BUF_INIT, out = BUF_INIT;
    struct imap_mbref ref;
    int r = mailbox_get_readable(s, tag, "status", name, &ref, &mb, &err);
    imap_mbref_free(&ref);
    if (r != 0)
        goto done;
    const char *e = imap_status_write(s, &out, name, &args[1], &mb);
    if (e != NULL) {
        imap_bad(s, tag, e);
        store_mailbox_free(&mb);
        goto done;
    }
    store_mailbox_free(&mb);
    buf_printf(&out, "%.*s OK STATUS completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
done:
    free(name);
    buf_free(&err);
    buf_free(&out);
}

void imap_cmd_namespace(struct imap_session *s, struct slice tag, bool uid,
                        const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args;
    if (n != 0) {
        imap_bad(s, tag, "NAMESPACE takes no arguments");
        return;
    }
    struct buf out = BUF_INIT;
    imap_ns_write(&out);
    buf_printf(&out, "%.*s OK NAMESPACE completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
}
