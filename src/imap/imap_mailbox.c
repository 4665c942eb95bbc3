/*
 * imap_mailbox.c - mailbox commands (SELECT, EXAMINE, CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, NAMESPACE, CHECK, CLOSE,
 * UNSELECT) and the selected-mailbox view with its updates (EXISTS, EXPUNGE,
 * FETCH FLAGS).
 * Must never: pass any owner but the session's own account to the store.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>


char *imap_mailbox_arg(const struct imap_arg *a)
{
    struct slice name;
    if (!imap_arg_astring(a, &name) || name.len == 0 || name.len > STORE_MAILBOX_NAME_MAX ||
        memchr(name.ptr, '\0', name.len) != NULL)
        return NULL;
    if (slice_eq_cstr_nocase(name, STORE_INBOX))
        return xstrdup(STORE_INBOX);
    return slice_strdup(name);
}

/* An atom when every byte is an ASTRING-CHAR (as Dovecot writes INBOX), else a string. */
static void mailbox_name_write(struct buf *out, const char *name)
{
    bool atom = name[0] != '\0' && strcasecmp(name, "NIL") != 0;
    for (const char *p = name; *p && atom; p++)
        atom = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f && !strchr("(){%*\"\\", *p);
    if (atom)
        buf_append_cstr(out, name);
    else
        mime_imap_string(out, slice_from_cstr(name));
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

/* The view keeps what every command needs; the MIME cache is read by FETCH when asked for. */
static void view_compact(struct store_message *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].envelope);
        free(list[i].bodystructure);
        list[i].envelope = list[i].bodystructure = NULL;
    }
}

void imap_view_free(struct imap_view *v)
{
    free(v->name);
    store_message_list_free(v->msgs, v->n);
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

void imap_view_sync(struct imap_session *s, bool allow_expunge, const uint32_t *quiet_uids,
                    size_t n_quiet)
{
    struct imap_view *v = &s->view;
    struct store_message *list = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT;
    if (store_message_list(s->srv->store, s->account, v->name, 1, &list, &n, &err) != 0) {
        log_error("user=<%s>: cannot list %s: %s", s->account, v->name, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    view_compact(list, n);
    /* Both lists are in UID order: one merge finds expunges and flag changes. */
    size_t i = 0, j = 0, expunged = 0;
    for (; i < v->n; i++) {
        while (j < n && list[j].uid < v->msgs[i].uid)
            j++; /* cannot happen: new messages have larger UIDs */
        if (j == n || list[j].uid != v->msgs[i].uid)
            expunged++;
        else
            j++;
    }
    if (expunged > 0 && !allow_expunge) {
        store_message_list_free(list, n);
        return; /* still dirty */
    }
    v->dirty = false;
    struct buf out = BUF_INIT;
    size_t removed = 0;
    j = 0;
    for (i = 0; i < v->n; i++) {
        const struct store_message *old = &v->msgs[i];
        while (j < n && list[j].uid < old->uid)
            j++;
        if (j == n || list[j].uid != old->uid) {
            buf_printf(&out, "* %zu EXPUNGE\r\n", i - removed + 1);
            removed++;
            continue;
        }
        const struct store_message *cur = &list[j++];
        if ((cur->flags != old->flags || strcmp(cur->keywords, old->keywords) != 0) &&
            !uid_in(quiet_uids, n_quiet, cur->uid)) {
            buf_printf(&out, "* %zu FETCH (UID %u FLAGS ", i - removed + 1, cur->uid);
            imap_flags_write(&out, cur->flags, cur->keywords);
            if (s->condstore)
                buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)cur->modseq);
            buf_append_cstr(&out, ")\r\n");
        }
    }
    if (n != v->n - removed)
        buf_printf(&out, "* %zu EXISTS\r\n", n);
    store_message_list_free(v->msgs, v->n);
    v->msgs = list;
    v->n = n;
    if (n > 0 && list[n - 1].uid >= v->uidnext)
        v->uidnext = list[n - 1].uid + 1;
    for (size_t k = 0; k < n; k++)
        if (list[k].modseq > v->highestmodseq)
            v->highestmodseq = list[k].modseq;
    if (out.len > 0)
        net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
}

bool imap_view_select(struct imap_session *s, struct slice tag, struct slice set, bool uid,
                      size_t **idx_r, size_t *n_r)
{
    struct imap_seqset seq;
    *idx_r = NULL;
    *n_r = 0;
    if (!imap_seqset_parse(set, &seq)) {
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
        if (imap_seqset_contains(&seq, num, star))
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
    imap_view_free(&s->view);
    s->state = IMAP_AUTHENTICATED;
}

static void select_or_examine(struct imap_session *s, struct slice tag,
                              const struct imap_arg *args, size_t n, bool readonly)
{
    /* The only select parameter we know: (CONDSTORE), RFC 7162 3.1.8. */
    bool params_ok = n == 1 || (n == 2 && args[1].type == IMAP_ARG_LIST &&
                                args[1].n_list == 1 && imap_arg_is_atom(&args[1].list[0], "CONDSTORE"));
    char *name = n >= 1 && params_ok ? imap_mailbox_arg(&args[0]) : NULL;
    if (name == NULL) {
        imap_bad(s, tag, readonly ? "Usage: EXAMINE mailbox [(CONDSTORE)]"
                                  : "Usage: SELECT mailbox [(CONDSTORE)]");
        return;
    }
    if (n == 2)
        s->condstore = true;
    if (s->state == IMAP_SELECTED)
        deselect(s);
    struct store_mailbox mb;
    struct buf err = BUF_INIT;
    int r = store_mailbox_get(s->srv->store, s->account, name, &mb, &err);
    if (r != 0) {
        if (r > 0)
            imap_printf(s, "%.*s NO [NONEXISTENT] Mailbox does not exist", TAGF(tag));
        else
            imap_store_error(s, tag, "select", &err);
        free(name);
        buf_free(&err);
        return;
    }
    struct imap_view *v = &s->view;
    if (store_message_list(s->srv->store, s->account, name, 1, &v->msgs, &v->n, &err) != 0) {
        imap_store_error(s, tag, "select", &err);
        store_mailbox_free(&mb);
        free(name);
        buf_free(&err);
        return;
    }
    view_compact(v->msgs, v->n);
    v->name = name;
    v->readonly = readonly;
    v->uidvalidity = mb.uidvalidity;
    v->uidnext = mb.uidnext;
    v->highestmodseq = mb.highestmodseq;
    store_mailbox_free(&mb);
    s->state = IMAP_SELECTED;
    size_t first_unseen = 0;
    for (size_t i = 0; i < v->n && first_unseen == 0; i++)
        if (!(v->msgs[i].flags & STORE_FLAG_SEEN))
            first_unseen = i + 1;
    struct buf out = BUF_INIT;
    buf_printf(&out, "* FLAGS (%s)\r\n", IMAP_SYSTEM_FLAGS);
    buf_printf(&out, "* OK [PERMANENTFLAGS (%s%s)] Flags permitted\r\n", IMAP_SYSTEM_FLAGS,
               readonly ? "" : " \\*");
    buf_printf(&out, "* %zu EXISTS\r\n* 0 RECENT\r\n", v->n);
    if (first_unseen)
        buf_printf(&out, "* OK [UNSEEN %zu] First unseen\r\n", first_unseen);
    buf_printf(&out, "* OK [UIDVALIDITY %u] UIDs valid\r\n", v->uidvalidity);
    buf_printf(&out, "* OK [UIDNEXT %u] Predicted next UID\r\n", v->uidnext);
    buf_printf(&out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
               (unsigned long long)v->highestmodseq);
    buf_printf(&out, "%.*s OK [%s] %s completed\r\n", TAGF(tag),
               readonly ? "READ-ONLY" : "READ-WRITE", readonly ? "EXAMINE" : "SELECT");
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

void imap_cmd_close(struct imap_session *s, struct slice tag, bool uid,
                    const struct imap_arg *args, size_t n)
{
    (void)uid, (void)args, (void)n;
    struct imap_view *v = &s->view;
    if (!v->readonly) {
        /* CLOSE expunges silently (no EXPUNGE responses). */
        uint32_t *uids = xcalloc(v->n ? v->n : 1, sizeof(*uids));
        size_t k = 0;
        for (size_t i = 0; i < v->n; i++)
            if (v->msgs[i].flags & STORE_FLAG_DELETED)
                uids[k++] = v->msgs[i].uid;
        struct buf err = BUF_INIT;
        if (k > 0) {
            if (store_message_expunge(s->srv->store, s->account, v->name, uids, k, &err) != 0)
                log_error("user=<%s>: CLOSE expunge: %s", s->account, buf_cstr(&err));
            else
                imap_mailbox_changed(s, v->name);
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

void imap_cmd_check(struct imap_session *s, struct slice tag, bool uid,
                    const struct imap_arg *args, size_t n)
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

void imap_cmd_create(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n == 1 ? imap_mailbox_arg(&args[0]) : NULL;
    if (name == NULL) {
        imap_bad(s, tag, "Usage: CREATE mailbox");
        return;
    }
    /* "foo/" announces that foo will hold children: it creates foo. */
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == STORE_DELIMITER)
        name[--len] = '\0';
    int r;
    struct buf err = BUF_INIT;
    if (mailbox_exists(s, name, &r))
        imap_printf(s, "%.*s NO [ALREADYEXISTS] Mailbox already exists", TAGF(tag));
    else if (r < 0)
        imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
    else if (strpbrk(name, "*%") != NULL)
        imap_printf(s, "%.*s NO [CANNOT] Mailbox names may not contain * or %%", TAGF(tag));
    else if (create_parents(s, name, &err) != 0 ||
             store_mailbox_create(s->srv->store, s->account, name, NULL, &err) != 0)
        imap_printf(s, "%.*s NO [CANNOT] %s", TAGF(tag), buf_cstr(&err));
    else
        imap_printf(s, "%.*s OK CREATE completed", TAGF(tag));
    buf_free(&err);
    free(name);
}

void imap_cmd_delete(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n == 1 ? imap_mailbox_arg(&args[0]) : NULL;
    if (name == NULL) {
        imap_bad(s, tag, "Usage: DELETE mailbox");
        return;
    }
    int r;
    struct buf err = BUF_INIT;
    if (strcmp(name, STORE_INBOX) == 0)
        imap_printf(s, "%.*s NO [CANNOT] INBOX cannot be deleted", TAGF(tag));
    else if (!mailbox_exists(s, name, &r))
        no_such_mailbox(s, tag, r);
    else if (store_mailbox_delete(s->srv->store, s->account, name, &err) != 0)
        imap_printf(s, "%.*s NO [CANNOT] %s", TAGF(tag), buf_cstr(&err));
    else {
        if (s->state == IMAP_SELECTED && strcmp(s->view.name, name) == 0)
            deselect(s);
        imap_mailbox_changed(s, name);
        imap_printf(s, "%.*s OK DELETE completed", TAGF(tag));
    }
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
    if (n > 0 && store_message_copy(s->srv->store, s->account, STORE_INBOX, uids, n, to, true,
                                    NULL, &err) != 0) {
        imap_store_error(s, tag, "rename INBOX", &err);
    } else {
        if (n > 0) {
            imap_mailbox_changed(s, STORE_INBOX);
            imap_mailbox_changed(s, to);
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
    char *from = n == 2 ? imap_mailbox_arg(&args[0]) : NULL;
    char *to = n == 2 ? imap_mailbox_arg(&args[1]) : NULL;
    int r;
    struct buf err = BUF_INIT;
    if (from == NULL || to == NULL)
        imap_bad(s, tag, "Usage: RENAME from to");
    else if (strcmp(from, STORE_INBOX) == 0)
        rename_inbox(s, tag, to);
    else if (!mailbox_exists(s, from, &r))
        no_such_mailbox(s, tag, r);
    else if (mailbox_exists(s, to, &r))
        imap_printf(s, "%.*s NO [ALREADYEXISTS] Target mailbox already exists", TAGF(tag));
    else if (strpbrk(to, "*%") != NULL)
        imap_printf(s, "%.*s NO [CANNOT] Mailbox names may not contain * or %%", TAGF(tag));
    else if (create_parents(s, to, &err) != 0 ||
             store_mailbox_rename(s->srv->store, s->account, from, to, &err) != 0)
        imap_printf(s, "%.*s NO [CANNOT] %s", TAGF(tag), buf_cstr(&err));
    else
        imap_printf(s, "%.*s OK RENAME completed", TAGF(tag));
    buf_free(&err);
    free(from);
    free(to);
}

static void subscribe(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                      size_t n, bool on)
{
    char *name = n == 1 ? imap_mailbox_arg(&args[0]) : NULL;
    struct buf err = BUF_INIT;
    if (name == NULL)
        imap_bad(s, tag, on ? "Usage: SUBSCRIBE mailbox" : "Usage: UNSUBSCRIBE mailbox");
    else if (store_subscribe(s->srv->store, s->account, name, on, &err) != 0)
        imap_store_error(s, tag, "subscribe", &err);
    else
        imap_printf(s, "%.*s OK %s completed", TAGF(tag), on ? "SUBSCRIBE" : "UNSUBSCRIBE");
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

/* ---- LIST / LSUB ---- */

/* RFC 9051 6.3.9: "*" matches anything, "%" anything but the delimiter. */
static bool pattern_match(const char *pat, const char *name, bool nocase)
{
    for (;;) {
        if (*pat == '\0')
            return *name == '\0';
        if (*pat == '*' || *pat == '%') {
            bool star = *pat == '*';
            pat++;
            for (const char *p = name;; p++) {
                if (pattern_match(pat, p, nocase))
                    return true;
                if (*p == '\0' || (!star && *p == STORE_DELIMITER))
                    return false;
            }
        }
        char a = *pat, b = *name;
        if (nocase) {
            a = (a >= 'a' && a <= 'z') ? (char)(a - 32) : a;
            b = (b >= 'a' && b <= 'z') ? (char)(b - 32) : b;
        }
        if (b == '\0' || a != b)
            return false;
        pat++;
        name++;
    }
}

static bool name_matches(const char *pattern, const char *name)
{
    /* "INBOX" is case-insensitive: "inbox" and "InBoX" name it too. */
    return pattern_match(pattern, name, strcmp(name, STORE_INBOX) == 0);
}

/* Too many wildcards make matching exponential: a named limit. */
#define IMAP_MAX_PATTERN_WILDCARDS 16

static bool list_args(struct imap_session *s, struct slice tag, const struct imap_arg *args,
                      size_t n, struct buf *pattern, bool *empty_r)
{
    struct slice ref, pat;
    if (n != 2 || !imap_arg_astring(&args[0], &ref) || !imap_arg_astring(&args[1], &pat)) {
        imap_bad(s, tag, "Usage: LIST reference pattern");
        return false;
    }
    buf_append_slice(pattern, ref);
    buf_append_slice(pattern, pat);
    size_t wild = 0;
    for (size_t i = 0; i < pattern->len; i++)
        if (pattern->data[i] == '*' || pattern->data[i] == '%')
            wild++;
    if (wild > IMAP_MAX_PATTERN_WILDCARDS || memchr(pattern->data, '\0', pattern->len)) {
        imap_bad(s, tag, "Pattern too complex");
        return false;
    }
    *empty_r = pat.len == 0;
    return true;
}

static bool mailbox_listed(const struct store_mailbox *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return true;
    return false;
}

/* Parents that do not exist but have children: "\Noselect \HasChildren" (RFC 9051 6.3.9). */
static void list_missing_parents(const struct store_mailbox *list, size_t n, const char *pat,
                                 struct buf *out)
{
    char **seen = NULL;
    size_t n_seen = 0;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = strchr(list[i].name, STORE_DELIMITER); p != NULL;
             p = strchr(p + 1, STORE_DELIMITER)) {
            char *parent = xstrndup(list[i].name, (size_t)(p - list[i].name));
            bool skip = parent[0] == '\0' || mailbox_listed(list, n, parent) ||
                        !name_matches(pat, parent);
            for (size_t j = 0; j < n_seen && !skip; j++)
                skip = strcmp(seen[j], parent) == 0;
            if (skip) {
                free(parent);
                continue;
            }
            buf_printf(out, "* LIST (\\Noselect \\HasChildren) \"%c\" ", STORE_DELIMITER);
            mailbox_name_write(out, parent);
            buf_append(out, "\r\n", 2);
            seen = xreallocarray(seen, n_seen + 1, sizeof(*seen));
            seen[n_seen++] = parent;
        }
    }
    for (size_t j = 0; j < n_seen; j++)
        free(seen[j]);
    free(seen);
}

void imap_cmd_list(struct imap_session *s, struct slice tag, bool uid,
                   const struct imap_arg *args, size_t n)
{
    (void)uid;
    struct buf pattern = BUF_INIT, err = BUF_INIT, out = BUF_INIT;
    bool empty;
    if (!list_args(s, tag, args, n, &pattern, &empty))
        goto done;
    if (empty) { /* the delimiter and the root */
        imap_printf(s, "* LIST (\\Noselect) \"%c\" \"\"", STORE_DELIMITER);
        imap_printf(s, "%.*s OK LIST completed", TAGF(tag));
        goto done;
    }
    struct store_mailbox *list;
    size_t nl;
    if (store_mailbox_list(s->srv->store, s->account, &list, &nl, &err) != 0) {
        imap_store_error(s, tag, "list", &err);
        goto done;
    }
    const char *pat = buf_cstr(&pattern);
    for (size_t i = 0; i < nl; i++) {
        if (!name_matches(pat, list[i].name))
            continue;
        size_t len = strlen(list[i].name);
        bool children = false;
        for (size_t j = 0; j < nl && !children; j++)
            children = strncmp(list[j].name, list[i].name, len) == 0 &&
                       list[j].name[len] == STORE_DELIMITER;
        buf_printf(&out, "* LIST (%s%s%s) \"%c\" ", children ? "\\HasChildren" : "\\HasNoChildren",
                   list[i].special_use ? " " : "", list[i].special_use ? list[i].special_use : "",
                   STORE_DELIMITER);
        mailbox_name_write(&out, list[i].name);
        buf_append(&out, "\r\n", 2);
    }
    list_missing_parents(list, nl, pat, &out);
    store_mailbox_list_free(list, nl);
    buf_printf(&out, "%.*s OK LIST completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
done:
    buf_free(&pattern);
    buf_free(&err);
    buf_free(&out);
}

void imap_cmd_lsub(struct imap_session *s, struct slice tag, bool uid,
                   const struct imap_arg *args, size_t n)
{
    (void)uid;
    struct buf pattern = BUF_INIT, err = BUF_INIT, out = BUF_INIT;
    bool empty;
    if (!list_args(s, tag, args, n, &pattern, &empty))
        goto done;
    char **names;
    size_t nn;
    if (store_subscriptions(s->srv->store, s->account, &names, &nn, &err) != 0) {
        imap_store_error(s, tag, "lsub", &err);
        goto done;
    }
    const char *pat = buf_cstr(&pattern);
    for (size_t i = 0; i < nn && !empty; i++) {
        if (!name_matches(pat, names[i]))
            continue;
        buf_printf(&out, "* LSUB () \"%c\" ", STORE_DELIMITER);
        mailbox_name_write(&out, names[i]);
        buf_append(&out, "\r\n", 2);
    }
    store_names_free(names, nn);
    buf_printf(&out, "%.*s OK LSUB completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
done:
    buf_free(&pattern);
    buf_free(&err);
    buf_free(&out);
}

/* ---- STATUS / NAMESPACE ---- */

void imap_cmd_status(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n == 2 ? imap_mailbox_arg(&args[0]) : NULL;
    if (name == NULL || args[1].type != IMAP_ARG_LIST || args[1].n_list == 0) {
        imap_bad(s, tag, "Usage: STATUS mailbox (items)");
        free(name);
        return;
    }
    struct store_mailbox mb;
    struct buf err = BUF_INIT, out = BUF_INIT;
    int r = store_mailbox_get(s->srv->store, s->account, name, &mb, &err);
    if (r != 0) {
        if (r > 0)
            imap_printf(s, "%.*s NO [NONEXISTENT] Mailbox does not exist", TAGF(tag));
        else
            imap_store_error(s, tag, "status", &err);
        goto done;
    }
    buf_append_cstr(&out, "* STATUS ");
    mailbox_name_write(&out, name);
    buf_append_cstr(&out, " (");
    for (size_t i = 0; i < args[1].n_list; i++) {
        const struct imap_arg *a = &args[1].list[i];
        unsigned long long v;
        if (imap_arg_is_atom(a, "MESSAGES"))
            v = mb.messages;
        else if (imap_arg_is_atom(a, "UIDNEXT"))
            v = mb.uidnext;
        else if (imap_arg_is_atom(a, "UIDVALIDITY"))
            v = mb.uidvalidity;
        else if (imap_arg_is_atom(a, "UNSEEN"))
            v = mb.unseen;
        else if (imap_arg_is_atom(a, "SIZE"))
            v = mb.bytes;
        else if (imap_arg_is_atom(a, "HIGHESTMODSEQ")) {
            v = mb.highestmodseq;
            s->condstore = true;
        }
        else if (imap_arg_is_atom(a, "RECENT"))
            v = 0;
        else {
            imap_bad(s, tag, "Unknown STATUS item");
            store_mailbox_free(&mb);
            goto done;
        }
        buf_printf(&out, "%s%.*s %llu", i ? " " : "", (int)a->str.len, a->str.ptr, v);
    }
    store_mailbox_free(&mb);
    buf_printf(&out, ")\r\n%.*s OK STATUS completed\r\n", TAGF(tag));
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
    /* Other users' and public folders come with ACL (doc/imap.md: not yet). */
    imap_printf(s, "* NAMESPACE ((\"\" \"%c\")) NIL NIL", STORE_DELIMITER);
    imap_printf(s, "%.*s OK NAMESPACE completed", TAGF(tag));
}
