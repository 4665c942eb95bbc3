/*
 * imap_list.c - LIST and LSUB: the base form (RFC 3501), LIST-EXTENDED
 * (RFC 5258: selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH,
 * SPECIAL-USE; return options SUBSCRIBED, CHILDREN, SPECIAL-USE; several
 * patterns; \NonExistent, \Subscribed, CHILDINFO) and LIST-STATUS (RFC 5819:
 * RETURN (STATUS (...)), one STATUS after each selectable mailbox).
 *
 * One listing: the names that exist, the subscribed names and the missing
 * parents of existing mailboxes, sorted; each is then matched against the
 * patterns and the selection criteria.
 * Other owners' mailboxes come from imap_ns_list_shared, named in their
 * namespace, only those the session has the right "l" on.
 * Must never: list another account's mailbox without "l", or send an extended data
 * item (CHILDINFO) to a client that did not use the extended syntax.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>

/* Too many wildcards make matching exponential: a named limit. */
#define IMAP_MAX_PATTERN_WILDCARDS 16
/* Patterns in one LIST (RFC 5258 "(pat1 pat2 ...)"): each costs one match per mailbox. */
#define IMAP_MAX_LIST_PATTERNS 32

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

struct list_req {
    bool extended; /* selection or return options, or several patterns, were used */
    bool sel_subscribed, sel_special_use, recursive;
    bool ret_subscribed;
    const struct imap_arg *status; /* RETURN (STATUS (...)): the item list */
    char **patterns;
    size_t n_patterns;
    bool empty; /* one empty pattern: the delimiter and the root */
};

static void list_req_free(struct list_req *q)
{
    for (size_t i = 0; i < q->n_patterns; i++)
        free(q->patterns[i]);
    free(q->patterns);
}

static bool matches(const struct list_req *q, const char *name)
{
    /* "INBOX" is case-insensitive: "inbox" and "InBoX" name it too. */
    bool nocase = strcmp(name, STORE_INBOX) == 0;
    for (size_t i = 0; i < q->n_patterns; i++)
        if (pattern_match(q->patterns[i], name, nocase))
            return true;
    return false;
}

static const char *pattern_add(struct imap_session *s, struct list_req *q, struct slice ref,
                               struct slice pat)
{
    if (q->n_patterns == IMAP_MAX_LIST_PATTERNS)
        return "Too many patterns";
    struct buf raw = BUF_INIT, p = BUF_INIT;
    buf_append_slice(&raw, ref);
    buf_append_slice(&raw, pat);
    bool ok = imap_mailbox_decode(s, buf_slice(&raw), &p); /* names are matched in UTF-8 */
    buf_free(&raw);
    if (!ok) { /* no mailbox has a name in that spelling: the pattern matches nothing */
        buf_free(&p);
        s->name_error = NULL;
        return NULL;
    }
    size_t wild = 0;
    for (size_t i = 0; i < p.len; i++)
        if (p.data[i] == '*' || p.data[i] == '%')
            wild++;
    if (wild > IMAP_MAX_PATTERN_WILDCARDS || memchr(p.data, '\0', p.len)) {
        buf_free(&p);
        return "Pattern too complex";
    }
    q->patterns = xreallocarray(q->patterns, q->n_patterns + 1, sizeof(*q->patterns));
    q->patterns[q->n_patterns++] = xstrdup(buf_cstr(&p));
    buf_free(&p);
    return NULL;
}

static const char *selection_parse(struct list_req *q, const struct imap_arg *a)
{
    bool remote_only = true;
    for (size_t i = 0; i < a->n_list; i++) {
        const struct imap_arg *o = &a->list[i];
        if (imap_arg_is_atom(o, "SUBSCRIBED"))
            q->sel_subscribed = q->ret_subscribed = true; /* implies the return option */
        else if (imap_arg_is_atom(o, "SPECIAL-USE"))
            q->sel_special_use = true; /* RFC 6154 5.1 */
        else if (imap_arg_is_atom(o, "RECURSIVEMATCH"))
            q->recursive = true;
        else if (imap_arg_is_atom(o, "REMOTE"))
            continue; /* no remote mailboxes here: nothing more to show */
        else
            return "Unknown LIST selection option";
        if (!imap_arg_is_atom(o, "RECURSIVEMATCH"))
            remote_only = false;
    }
    if (q->recursive && remote_only)
        return "RECURSIVEMATCH needs another selection option";
    return NULL;
}

static const char *return_parse(struct imap_session *s, struct list_req *q,
                                const struct imap_arg *a)
{
    if (a->type != IMAP_ARG_LIST)
        return "Usage: LIST ... RETURN (options)";
    for (size_t i = 0; i < a->n_list; i++) {
        const struct imap_arg *o = &a->list[i];
        if (imap_arg_is_atom(o, "SUBSCRIBED"))
            q->ret_subscribed = true;
        else if (imap_arg_is_atom(o, "CHILDREN"))
            continue; /* \HasChildren / \HasNoChildren are always sent */
        else if (imap_arg_is_atom(o, "SPECIAL-USE"))
            continue; /* special-use attributes are always sent (RFC 6154 allows it) */
        else if (imap_arg_is_atom(o, "STATUS") && i + 1 < a->n_list && q->status == NULL) {
            q->status = &a->list[++i];
            /* Check the items now (RFC 5819: BAD before any LIST response). */
            struct store_mailbox none = {0};
            struct buf scratch = BUF_INIT;
            const char *e = imap_status_write(s, &scratch, "x", q->status, &none);
            buf_free(&scratch);
            if (e != NULL)
                return "Invalid STATUS items in LIST RETURN";
        } else
            return "Unknown LIST return option";
    }
    return NULL;
}

/* LIST [(selection)] reference (pattern | (patterns)) [RETURN (options)] */
static const char *list_parse(struct imap_session *s, const struct imap_arg *args, size_t n,
                              struct list_req *q)
{
    const char *usage = "Usage: LIST [(options)] reference pattern [RETURN (options)]";
    size_t i = 0;
    if (n > 0 && args[0].type == IMAP_ARG_LIST) {
        q->extended = true;
        const char *e = selection_parse(q, &args[i++]);
        if (e != NULL)
            return e;
    }
    struct slice ref, pat;
    if (n < i + 2 || !imap_arg_astring(&args[i], &ref))
        return usage;
    const struct imap_arg *p = &args[i + 1];
    i += 2;
    if (p->type == IMAP_ARG_LIST) {
        q->extended = true;
        if (p->n_list == 0)
            return usage;
        for (size_t k = 0; k < p->n_list; k++) {
            const char *e =
                imap_arg_astring(&p->list[k], &pat) ? pattern_add(s, q, ref, pat) : usage;
            if (e != NULL)
                return e;
        }
    } else {
        if (!imap_arg_astring(p, &pat))
            return usage;
        const char *e = pattern_add(s, q, ref, pat);
        if (e != NULL)
            return e;
        q->empty = pat.len == 0;
    }
    if (i < n) {
        if (n != i + 2 || !imap_arg_is_atom(&args[i], "RETURN"))
            return usage;
        q->extended = true;
        const char *e = return_parse(s, q, &args[i + 1]);
        if (e != NULL)
            return e;
    }
    return NULL;
}

/* One name the LIST may report. */
struct entry {
    char *name;
    const struct store_mailbox *mb; /* NULL: the mailbox does not exist */
    bool subscribed;
    bool children;  /* an existing mailbox below it */
    bool selected;  /* meets the selection criteria */
    bool childinfo; /* a descendant that meets them does not match the patterns */
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static struct entry *entry_find(struct entry *v, size_t n, const char *name)
{
    struct entry key = {.name = (char *)name};
    return bsearch(&key, v, n, sizeof(*v), entry_cmp);
}

static bool is_below(const char *child, const char *parent)
{
    size_t len = strlen(parent);
    return strncmp(child, parent, len) == 0 && child[len] == STORE_DELIMITER;
}

static struct entry *entry_push(struct entry **v, size_t *n, size_t *cap, char *name)
{
    if (*n == *cap)
        *v = xreallocarray(*v, *cap = *cap ? *cap * 2 : 16, sizeof(**v));
    struct entry *e = &(*v)[(*n)++];
    memset(e, 0, sizeof(*e));
    e->name = name;
    return e;
}

/* Existing mailboxes, subscribed names and missing parents of existing ones, sorted, unique. */
static struct entry *entries_build(const struct store_mailbox *mbs, size_t n_mb, char **subs,
                                   size_t n_subs, size_t *n_r)
{
    size_t cap = 0, n = 0;
    struct entry *v = NULL;
    for (size_t i = 0; i < n_mb; i++) {
        entry_push(&v, &n, &cap, xstrdup(mbs[i].name))->mb = &mbs[i];
        for (const char *p = strchr(mbs[i].name, STORE_DELIMITER); p != NULL;
             p = strchr(p + 1, STORE_DELIMITER))
            if (p != mbs[i].name)
                entry_push(&v, &n, &cap, xstrndup(mbs[i].name, (size_t)(p - mbs[i].name)));
    }
    for (size_t i = 0; i < n_subs; i++)
        entry_push(&v, &n, &cap, xstrdup(subs[i]))->subscribed = true;
    if (n > 1)
        qsort(v, n, sizeof(*v), entry_cmp);
    /* Merge duplicates: a name may be a mailbox, a parent and subscribed at once. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(v[k - 1].name, v[i].name) == 0) {
            v[k - 1].mb = v[k - 1].mb ? v[k - 1].mb : v[i].mb;
            v[k - 1].subscribed = v[k - 1].subscribed || v[i].subscribed;
            free(v[i].name);
            continue;
        }
        v[k++] = v[i];
    }
    /* Children: each existing mailbox below the name. */
    for (size_t i = 0; i < k; i++) {
        size_t len = strlen(v[i].name);
        for (size_t j = i + 1; j < k && !v[i].children; j++) {
            if (strncmp(v[j].name, v[i].name, len) != 0)
                break; /* the names starting with v[i].name are contiguous */
            v[i].children = v[j].mb != NULL && is_below(v[j].name, v[i].name);
        }
    }
    *n_r = k;
    return v;
}

static void entries_free(struct entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

static bool criteria(const struct list_req *q, const struct entry *e)
{
    if (q->sel_subscribed && !e->subscribed)
        return false;
    if (q->sel_special_use && (e->mb == NULL || e->mb->special_use == NULL))
        return false;
    if (q->sel_subscribed || q->sel_special_use)
        return true;
    /* No selection option: what exists, and the missing parents as \Noselect. */
    return e->mb != NULL || e->children;
}

static void entry_write(struct imap_session *s, const struct list_req *q, const struct entry *e,
                        struct buf *out)
{
    size_t start;
    buf_append_cstr(out, "* LIST (");
    start = out->len;
#define ATTR(cond, text)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            if (out->len > start)                                                                  \
                buf_append_byte(out, ' ');                                                         \
            buf_append_cstr(out, text);                                                            \
        }                                                                                          \
    } while (0)
    /* A missing parent is \Noselect in the base LIST (RFC 3501 clients know that one). */
    ATTR(e->mb == NULL, q->extended ? "\\NonExistent" : "\\Noselect");
    ATTR(true, e->children ? "\\HasChildren" : "\\HasNoChildren");
    ATTR(q->ret_subscribed && e->subscribed, "\\Subscribed");
    ATTR(e->mb != NULL && e->mb->special_use != NULL, e->mb ? e->mb->special_use : "");
#undef ATTR
    buf_printf(out, ") \"%c\" ", STORE_DELIMITER);
    imap_mailbox_name_write(s, out, e->name);
    if (e->childinfo) {
        buf_append_cstr(out, " (\"CHILDINFO\" (");
        if (q->sel_subscribed)
            buf_append_cstr(out, "\"SUBSCRIBED\"");
        if (q->sel_special_use)
            buf_append_cstr(out, q->sel_subscribed ? " \"SPECIAL-USE\"" : "\"SPECIAL-USE\"");
        buf_append_cstr(out, "))");
    }
    buf_append(out, "\r\n", 2);
    /* RFC 5819: STATUS right after the LIST of a selectable mailbox. */
    if (q->status != NULL && e->mb != NULL &&
        e->mb->uidvalidity != 0) /* 0: no "r" (imap_namespace.c) */
        (void)imap_status_write(s, out, e->name, q->status, e->mb);
}

void imap_cmd_list(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                   size_t n)
{
    (void)uid;
    struct list_req q = {0};
    struct buf err = BUF_INIT, out = BUF_INIT;
    struct store_mailbox *mbs = NULL;
    size_t n_mb = 0, n_subs = 0;
    char **subs = NULL;
    const char *e = list_parse(s, args, n, &q);
    if (e != NULL) {
        imap_bad(s, tag, e);
        goto done;
    }
    if (q.empty && !q.extended) { /* the delimiter and the root */
        imap_printf(s, "* LIST (\\Noselect) \"%c\" \"\"", STORE_DELIMITER);
        imap_printf(s, "%.*s OK LIST completed", TAGF(tag));
        goto done;
    }
    if (store_mailbox_list(s->srv->store, s->account, &mbs, &n_mb, &err) != 0 ||
        imap_ns_list_shared(s, &mbs, &n_mb, &err) != 0 ||
        ((q.sel_subscribed || q.ret_subscribed) &&
         store_subscriptions(s->srv->store, s->account, &subs, &n_subs, &err) != 0)) {
        imap_store_error(s, tag, "list", &err);
        goto done;
    }
    size_t n_e;
    struct entry *v = entries_build(mbs, n_mb, subs, n_subs, &n_e);
    for (size_t i = 0; i < n_e; i++)
        v[i].selected = criteria(&q, &v[i]);
    if (q.recursive) {
        /* RFC 5258 3.5: a parent learns of each selected descendant that the patterns miss. */
        for (size_t i = 0; i < n_e; i++) {
            if (!v[i].selected || matches(&q, v[i].name))
                continue;
            char *name = xstrdup(v[i].name);
            for (char *p = strrchr(name, STORE_DELIMITER); p != NULL && p != name;
                 p = strrchr(name, STORE_DELIMITER)) {
                *p = '\0';
                struct entry *parent = entry_find(v, n_e, name);
                if (parent != NULL)
                    parent->childinfo = true;
            }
            free(name);
        }
    }
    for (size_t i = 0; i < n_e; i++)
        if ((v[i].selected || v[i].childinfo) && matches(&q, v[i].name))
            entry_write(s, &q, &v[i], &out);
    entries_free(v, n_e);
    buf_printf(&out, "%.*s OK LIST completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
done:
    store_mailbox_list_free(mbs, n_mb);
    if (subs != NULL)
        store_names_free(subs, n_subs);
    list_req_free(&q);
    buf_free(&err);
    buf_free(&out);
}

void imap_cmd_lsub(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                   size_t n)
{
    (void)uid;
    struct list_req q = {0};
    struct buf err = BUF_INIT, out = BUF_INIT;
    const char *e = list_parse(s, args, n, &q);
    if (e != NULL || q.extended) {
        imap_bad(s, tag, e ? e : "Usage: LSUB reference pattern");
        goto done;
    }
    char **names;
    size_t nn;
    if (store_subscriptions(s->srv->store, s->account, &names, &nn, &err) != 0) {
        imap_store_error(s, tag, "lsub", &err);
        goto done;
    }
    /* RFC 3501 6.3.9: a parent the pattern matches, of a subscribed name it
     * does not, is listed \Noselect when not subscribed itself (once). */
    char **parents = NULL;
    size_t n_parents = 0;
    for (size_t i = 0; i < nn && !q.empty; i++) {
        if (matches(&q, names[i])) {
            buf_printf(&out, "* LSUB () \"%c\" ", STORE_DELIMITER);
            imap_mailbox_name_write(s, &out, names[i]);
            buf_append(&out, "\r\n", 2);
            continue;
        }
        for (char *d = strchr(names[i], STORE_DELIMITER); d != NULL;
             d = strchr(d + 1, STORE_DELIMITER)) {
            char *parent = xstrndup(names[i], (size_t)(d - names[i]));
            bool seen = !matches(&q, parent);
            for (size_t j = 0; j < nn && !seen; j++)
                seen = strcmp(names[j], parent) == 0;
            for (size_t j = 0; j < n_parents && !seen; j++)
                seen = strcmp(parents[j], parent) == 0;
            if (seen) {
                free(parent);
                continue;
            }
            buf_printf(&out, "* LSUB (\\Noselect) \"%c\" ", STORE_DELIMITER);
            imap_mailbox_name_write(s, &out, parent);
            buf_append(&out, "\r\n", 2);
            parents = xreallocarray(parents, n_parents + 1, sizeof(*parents));
            parents[n_parents++] = parent;
        }
    }
    for (size_t i = 0; i < n_parents; i++)
        free(parents[i]);
    free(parents);
    store_names_free(names, nn);
    buf_printf(&out, "%.*s OK LSUB completed\r\n", TAGF(tag));
    net_conn_write(s->conn, out.data, out.len);
done:
    list_req_free(&q);
    buf_free(&err);
    buf_free(&out);
}
