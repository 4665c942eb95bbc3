/*
 * jmap_mailbox.c - Mailbox/get, /changes, /query, /queryChanges and /set
 * (RFC 8621 2) over the store's mailboxes.
 *
 * A JMAP Mailbox is a store mailbox: id "m" + its store id, name the last
 * level of its hierarchical name (the whole name when its parent level does
 * not exist as a mailbox), role from its special-use flag. Never renames or
 * deletes INBOX, and never deletes a mailbox holding mail unless the client
 * said onDestroyRemoveEmails.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *role, *special_use;
} roles[] = {
    {"sent", "\\Sent"},       {"drafts", "\\Drafts"},       {"trash", "\\Trash"},
    {"junk", "\\Junk"},       {"archive", "\\Archive"},     {"all", "\\All"},
    {"flagged", "\\Flagged"}, {"important", "\\Important"},
};

static const char *mailbox_role(const struct store_mailbox *mb)
{
    if (strcmp(mb->name, STORE_INBOX) == 0)
        return "inbox";
    if (mb->special_use == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcasecmp(mb->special_use, roles[i].special_use) == 0)
            return roles[i].role;
    return NULL;
}

static const char *role_special_use(const char *role)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(role, roles[i].role) == 0)
            return roles[i].special_use;
    return NULL;
}

struct store_mailbox *jmap_mailboxes(struct jmap_req *r, size_t *n_r, struct buf *err)
{
    struct store_mailbox *v;
    if (store_mailbox_list(r->j->store, r->user, &v, n_r, err) != 0)
        return NULL;
    if (v == NULL)
        v = xcalloc(1, sizeof(*v));
    if (r->acl) { /* a shared account: only what login may list, the rest never named */
        size_t k = 0;
        for (size_t i = 0; i < *n_r; i++) {
            if (jmap_may(r, v[i].id, "l"))
                v[k++] = v[i];
            else
                store_mailbox_free(&v[i]);
        }
        *n_r = k;
    }
    return v;
}

const struct store_mailbox *jmap_mailbox_find(const struct store_mailbox *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

static const struct store_mailbox *find_name(const struct store_mailbox *v, size_t n,
                                             const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i].name) == len && strncmp(v[i].name, name, len) == 0)
            return &v[i];
    return NULL;
}

/* The parent mailbox (NULL: top level, or its parent level is no mailbox). */
static const struct store_mailbox *parent_of(const struct store_mailbox *v, size_t n,
                                             const struct store_mailbox *mb)
{
    const char *slash = strrchr(mb->name, STORE_DELIMITER);
    return slash ? find_name(v, n, mb->name, (size_t)(slash - mb->name)) : NULL;
}

/* Threads with a copy in a mailbox, and those with an unread one there (RFC 8621 2.1). */
struct thread_counts {
    uint64_t total, unread;
};

struct thread_copy {
    int64_t mailbox_id, thread;
    bool unseen;
};

static int thread_copy_cmp(const void *a, const void *b)
{
    const struct thread_copy *x = a, *y = b;
    if (x->mailbox_id != y->mailbox_id)
        return x->mailbox_id < y->mailbox_id ? -1 : 1;
    return x->thread < y->thread ? -1 : x->thread > y->thread;
}

/*
 * The thread counts of each of the n mailboxes v (an array parallel to v),
 * from the account's copies (the worker's account view, jmap_view.c): a
 * thread counts once per mailbox however many of its Emails are there. NULL
 * with *err_r on a store failure.
 */
static struct thread_counts *thread_counts(struct jmap_req *r, const struct store_mailbox *v,
                                           size_t n, json_t **err_r)
{
    uint64_t st;
    if (!jmap_state_now(r, &st, err_r))
        return NULL;
    const struct jmap_view *w = jmap_view_get(r, st, err_r);
    if (w == NULL)
        return NULL;
    size_t na = 0;
    struct thread_copy *c = xcalloc(w->n_copies + 1, sizeof(*c));
    for (size_t i = 0; i < w->n_emails; i++) /* the copies in use: the Emails' */
        for (size_t k = 0; k < w->emails[i].n; k++) {
            const struct store_account_message *a = &w->emails[i].c[k];
            c[na++] =
                (struct thread_copy){a->mailbox_id, a->thread, (a->m.flags & STORE_FLAG_SEEN) == 0};
        }
    qsort(c, na, sizeof(*c), thread_copy_cmp);
    struct thread_counts *tc = xcalloc(n + 1, sizeof(*tc));
    for (size_t i = 0, k = 0; i < na; i = k) {
        bool unseen = false;
        for (k = i; k < na && c[k].mailbox_id == c[i].mailbox_id && c[k].thread == c[i].thread; k++)
            unseen |= c[k].unseen;
        for (size_t m = 0; m < n; m++)
            if (v[m].id == c[i].mailbox_id) {
                tc[m].total++;
                tc[m].unread += unseen;
                break;
            }
    }
    free(c);
    return tc;
}

/* RFC 8621 2.1 MailboxRights from login's RFC 4314 rights on mb: in a shared
 * account Mailbox/set creates below it with "k" and renames or destroys it
 * with "x" (what IMAP's CREATE, RENAME and DELETE ask). */
static json_t *mailbox_rights(const struct jmap_req *r, const struct store_mailbox *mb)
{
    const char *have = jmap_rights(r, mb->id);
    bool own = r->acl == NULL, inbox = strcmp(mb->name, STORE_INBOX) == 0;
    bool x = strchr(have, 'x') != NULL;
    return json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "mayReadItems",
                     strchr(have, 'r') != NULL, "mayAddItems", strchr(have, 'i') != NULL,
                     "mayRemoveItems", jmap_may(r, mb->id, "te"), "maySetSeen",
                     strchr(have, 's') != NULL, "maySetKeywords", strchr(have, 'w') != NULL,
                     "mayCreateChild", strchr(have, 'k') != NULL, "mayRename", x && !inbox,
                     "mayDelete", x && !inbox, "maySubmit", own);
}

static json_t *mailbox_object(const struct jmap_req *r, const struct store_mailbox *v, size_t n,
                              const struct store_mailbox *mb, const struct thread_counts *tc,
                              json_t *props)
{
    /* without "r" a mailbox shows its name only, as IMAP's LIST-STATUS does */
    bool counted = jmap_may(r, mb->id, "r");
    char id[32];
    jmap_mailbox_id(mb->id, id);
    const struct store_mailbox *parent = parent_of(v, n, mb);
    const char *name = parent ? strrchr(mb->name, STORE_DELIMITER) + 1 : mb->name;
    if (strcmp(mb->name, STORE_INBOX) == 0)
        name = "Inbox";
    json_t *o = json_pack("{s:s}", "id", id);
    if (jmap_want(props, "name"))
        json_object_set_new(o, "name", json_string(name));
    if (jmap_want(props, "parentId")) {
        char pid[32];
        if (parent)
            jmap_mailbox_id(parent->id, pid);
        json_object_set_new(o, "parentId", parent ? json_string(pid) : json_null());
    }
    if (jmap_want(props, "role")) {
        const char *role = mailbox_role(mb);
        json_object_set_new(o, "role", role ? json_string(role) : json_null());
    }
    if (jmap_want(props, "sortOrder"))
        json_object_set_new(o, "sortOrder", json_integer(mailbox_role(mb) ? 0 : 10));
    if (jmap_want(props, "totalEmails"))
        json_object_set_new(o, "totalEmails", json_integer(counted ? (json_int_t)mb->messages : 0));
    if (jmap_want(props, "unreadEmails"))
        json_object_set_new(o, "unreadEmails", json_integer(counted ? (json_int_t)mb->unseen : 0));
    if (jmap_want(props, "totalThreads"))
        json_object_set_new(o, "totalThreads", json_integer(tc ? (json_int_t)tc[mb - v].total : 0));
    if (jmap_want(props, "unreadThreads"))
        json_object_set_new(o, "unreadThreads",
                            json_integer(tc ? (json_int_t)tc[mb - v].unread : 0));
    if (jmap_want(props, "myRights"))
        json_object_set_new(o, "myRights", mailbox_rights(r, mb));
    if (jmap_want(props, "isSubscribed"))
        json_object_set_new(o, "isSubscribed", json_boolean(mb->subscribed));
    return o;
}

json_t *jmap_mailbox_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *ids, *props;
    if (!jmap_check_account(r, args, err_r) || !jmap_get_ids(r, args, &ids, err_r) ||
        !jmap_get_properties(args, &props, err_r))
        return NULL;
    json_t *state = jmap_state(r);
    struct buf err = BUF_INIT;
    size_t n;
    struct store_mailbox *v = state ? jmap_mailboxes(r, &n, &err) : NULL;
    if (v == NULL) {
        json_decref(state);
        *err_r = jmap_server_fail("mailbox list", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    struct thread_counts *tc = NULL;
    if (jmap_want(props, "totalThreads") || jmap_want(props, "unreadThreads")) {
        tc = thread_counts(r, v, n, err_r);
        if (tc == NULL) {
            json_decref(state);
            store_mailbox_list_free(v, n);
            return NULL;
        }
    }
    json_t *list = json_array(), *not_found = json_array();
    if (ids == NULL) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, mailbox_object(r, v, n, &v[i], tc, props));
    } else {
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id)
        {
            const char *sid = jmap_resolve_id(r, json_string_value(id));
            const struct store_mailbox *mb =
                sid ? jmap_mailbox_find(v, n, jmap_mailbox_id_parse(sid)) : NULL;
            if (mb)
                json_array_append_new(list, mailbox_object(r, v, n, mb, tc, props));
            else
                json_array_append(not_found, id);
        }
    }
    free(tc);
    store_mailbox_list_free(v, n);
    return jmap_get_result(r, state, list, not_found);
}

/* The account's mailboxes and what went after since; NULL with *err_r. */
static struct store_mailbox *mailboxes_and_gone(struct jmap_req *r, uint64_t since, size_t *n_r,
                                                struct store_account_gone *g, json_t **err_r)
{
    struct buf err = BUF_INIT;
    struct store_mailbox *v = jmap_mailboxes(r, n_r, &err);
    if (v == NULL || store_account_gone(r->j->store, r->user, since, g, &err) != 0) {
        if (v)
            store_mailbox_list_free(v, *n_r);
        *err_r = jmap_server_fail("mailbox changes", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    return v;
}

json_t *jmap_mailbox_changes(struct jmap_req *r, json_t *args, json_t **err_r)
{
    uint64_t since, current;
    size_t max;
    if (!jmap_changes_args(r, args, &since, &max, &current, err_r))
        return NULL;
    size_t n;
    struct store_account_gone g;
    struct store_mailbox *v = mailboxes_and_gone(r, since, &n, &g, err_r);
    if (v == NULL)
        return NULL;
    struct jmap_change *c = xcalloc(n + g.n_mailboxes + 1, sizeof(*c));
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].state <= since)
            continue;
        jmap_mailbox_id(v[i].id, c[nc].id);
        c[nc].state = v[i].state;
        c[nc++].kind = v[i].created_state > since ? JMAP_CREATED : JMAP_UPDATED;
    }
    for (size_t i = 0; i < g.n_mailboxes; i++) {
        jmap_mailbox_id(g.mailboxes[i], c[nc].id);
        c[nc].state = g.mailbox_states[i];
        c[nc++].kind = JMAP_DESTROYED;
    }
    json_t *res = jmap_changes_result(r, c, nc, since, max, current);
    json_object_set_new(res, "updatedProperties", json_null());
    free(c);
    store_account_gone_free(&g);
    store_mailbox_list_free(v, n);
    return res;
}

static bool mailbox_matches(const struct store_mailbox *v, size_t n, const struct store_mailbox *mb,
                            json_t *filter)
{
    if (filter == NULL || json_is_null(filter))
        return true;
    json_t *x;
    if ((x = json_object_get(filter, "parentId"))) {
        const struct store_mailbox *p = parent_of(v, n, mb);
        if (json_is_null(x) ? p != NULL
                            : (p == NULL || p->id != jmap_mailbox_id_parse(json_string_value(x))))
            return false;
    }
    if ((x = json_object_get(filter, "name")) && json_is_string(x)) {
        const struct store_mailbox *p = parent_of(v, n, mb);
        const char *name = p ? strrchr(mb->name, STORE_DELIMITER) + 1 : mb->name;
        if (strcasestr(name, json_string_value(x)) == NULL)
            return false;
    }
    if ((x = json_object_get(filter, "role"))) {
        const char *role = mailbox_role(mb);
        if (json_is_null(x) ? role != NULL
                            : (role == NULL || strcmp(role, json_string_value(x)) != 0))
            return false;
    }
    if ((x = json_object_get(filter, "hasAnyRole")) && json_is_boolean(x) &&
        json_is_true(x) != (mailbox_role(mb) != NULL))
        return false;
    if ((x = json_object_get(filter, "isSubscribed")) && json_is_boolean(x) &&
        json_is_true(x) != mb->subscribed)
        return false;
    return true;
}

/* Checks a Mailbox/query filter; NULL when fine, else the error. */
static json_t *mailbox_filter_check(json_t *filter)
{
    if (filter == NULL || json_is_null(filter))
        return NULL;
    const char *k;
    json_t *x;
    if (!json_is_object(filter))
        return jmap_error("unsupportedFilter", "filter must be a FilterCondition");
    json_object_foreach(filter, k, x)
    {
        bool str = strcmp(k, "name") == 0,
             nul = strcmp(k, "parentId") == 0 || strcmp(k, "role") == 0,
             boo = strcmp(k, "hasAnyRole") == 0 || strcmp(k, "isSubscribed") == 0;
        if (!((str && json_is_string(x)) || (nul && (json_is_string(x) || json_is_null(x))) ||
              (boo && json_is_boolean(x))))
            return jmap_error("unsupportedFilter", k);
    }
    return NULL;
}

/* The ids of the mailboxes (v, n) filter selects, in the query's order:
 * by name, which is the tree order a client shows (the store lists so). */
static json_t *mailbox_results(const struct store_mailbox *v, size_t n, json_t *filter)
{
    json_t *all = json_array();
    for (size_t i = 0; i < n; i++) {
        if (mailbox_matches(v, n, &v[i], filter)) {
            char id[32];
            jmap_mailbox_id(v[i].id, id);
            json_array_append_new(all, json_string(id));
        }
    }
    return all;
}

json_t *jmap_mailbox_query(struct jmap_req *r, json_t *args, json_t **err_r)
{
    if (!jmap_check_account(r, args, err_r))
        return NULL;
    json_t *filter = json_object_get(args, "filter");
    if ((*err_r = mailbox_filter_check(filter)) != NULL)
        return NULL;
    json_t *sort = json_object_get(args, "sort");
    if (sort && !json_is_null(sort) && !json_is_array(sort)) {
        *err_r = jmap_invalid("sort must be an array");
        return NULL;
    }
    json_t *pos = json_object_get(args, "position"), *lim = json_object_get(args, "limit");
    if ((pos && !json_is_integer(pos)) || (lim && !json_is_null(lim) && !json_is_integer(lim)) ||
        (lim && json_is_integer(lim) && json_integer_value(lim) < 0)) {
        *err_r = jmap_invalid("position and limit must be integers");
        return NULL;
    }
    uint64_t st;
    if (!jmap_state_now(r, &st, err_r))
        return NULL;
    struct buf err = BUF_INIT;
    size_t n;
    struct store_mailbox *v = jmap_mailboxes(r, &n, &err);
    if (v == NULL) {
        *err_r = jmap_server_fail("mailbox list", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    json_t *all = mailbox_results(v, n, filter);
    store_mailbox_list_free(v, n);
    json_int_t total = (json_int_t)json_array_size(all);
    json_int_t p = pos ? json_integer_value(pos) : 0;
    if (p < 0)
        p = total + p < 0 ? 0 : total + p;
    json_int_t l = lim && json_is_integer(lim) ? json_integer_value(lim) : total;
    json_t *ids = json_array();
    for (json_int_t i = p; i < total && i < p + l; i++)
        json_array_append(ids, json_array_get(all, (size_t)i));
    json_decref(all);
    char qs[32];
    jmap_state_string(st, qs);
    return json_pack("{s:s, s:s, s:b, s:I, s:o, s:I}", "accountId", r->account_id.data,
                     "queryState", qs, "canCalculateChanges", 1, "position", p, "ids", ids, "total",
                     total);
}

/*
 * Mailbox/queryChanges (RFC 8620 5.6), as Email/queryChanges: every mailbox
 * changed since (its state: renamed, counts, subscription) is removed and
 * added again where it is now; deleted ones are removed. A filter on
 * parentId or name also depends on other mailboxes (a parent created or
 * deleted): when a mailbox came or went, every mailbox counts as changed.
 */
json_t *jmap_mailbox_query_changes(struct jmap_req *r, json_t *args, json_t **err_r)
{
    uint64_t since, current;
    size_t max;
    if (!jmap_query_changes_args(r, args, &since, &max, &current, err_r))
        return NULL;
    json_t *filter = json_object_get(args, "filter");
    if ((*err_r = mailbox_filter_check(filter)) != NULL)
        return NULL;
    size_t n;
    struct store_account_gone g;
    struct store_mailbox *v = mailboxes_and_gone(r, since, &n, &g, err_r);
    if (v == NULL)
        return NULL;
    bool tree = filter && (json_object_get(filter, "parentId") || json_object_get(filter, "name"));
    bool came_or_went = g.n_mailboxes > 0;
    for (size_t i = 0; i < n; i++)
        came_or_went = came_or_went || v[i].created_state > since;
    json_t *removed = json_array(), *added = json_array();
    json_t *results = mailbox_results(v, n, filter);
    for (size_t i = 0; i < g.n_mailboxes; i++) {
        char id[32];
        jmap_mailbox_id(g.mailboxes[i], id);
        json_array_append_new(removed, json_string(id));
    }
    json_t *changed = json_object();
    for (size_t i = 0; i < n; i++) {
        if (v[i].state <= since && !(tree && came_or_went))
            continue;
        char id[32];
        jmap_mailbox_id(v[i].id, id);
        json_array_append_new(removed, json_string(id));
        json_object_set_new(changed, id, json_true());
    }
    size_t i;
    json_t *x;
    json_array_foreach(results, i, x)
    {
        if (json_object_get(changed, json_string_value(x)))
            json_array_append_new(added, json_pack("{s:O, s:I}", "id", x, "index", (json_int_t)i));
    }
    json_t *res = NULL;
    if (json_array_size(removed) > max)
        *err_r = jmap_error("tooManyChanges", NULL);
    else {
        char old[32], now[32];
        jmap_state_string(since, old);
        jmap_state_string(current, now);
        res = json_pack("{s:s, s:s, s:s, s:O, s:O, s:I}", "accountId", r->account_id.data,
                        "oldQueryState", old, "newQueryState", now, "removed", removed, "added",
                        added, "total", (json_int_t)json_array_size(results));
    }
    json_decref(changed);
    json_decref(results);
    json_decref(removed);
    json_decref(added);
    store_account_gone_free(&g);
    store_mailbox_list_free(v, n);
    return res;
}

/* The full store name for name under parent id (0: top level) into out; NULL or an error. */
static json_t *full_name(const struct store_mailbox *v, size_t n, int64_t parent, const char *name,
                         struct buf *out)
{
    buf_reset(out);
    if (*name == '\0' || strchr(name, STORE_DELIMITER))
        return jmap_set_error("invalidProperties", "name is empty or holds '/'", "name");
    if (parent) {
        const struct store_mailbox *p = jmap_mailbox_find(v, n, parent);
        if (p == NULL)
            return jmap_set_error("invalidProperties", "no such parent", "parentId");
        buf_printf(out, "%s%c", p->name, STORE_DELIMITER);
    }
    buf_append_cstr(out, name);
    return NULL;
}

/* parentId of a create or update: 1 given (id in *parent_r, 0 for null), 0 absent, -1 bad. */
static int parent_arg(struct jmap_req *r, json_t *o, int64_t *parent_r)
{
    json_t *p = json_object_get(o, "parentId");
    *parent_r = 0;
    if (p == NULL)
        return 0;
    if (json_is_null(p))
        return 1;
    if (!json_is_string(p))
        return -1;
    const char *id = jmap_resolve_id(r, json_string_value(p));
    *parent_r = id ? jmap_mailbox_id_parse(id) : 0;
    return *parent_r ? 1 : -1;
}

/* The mailboxes a /set works on, and the one it names (id 0: none). */
struct mbset {
    struct store_mailbox *v;
    size_t n;
    const struct store_mailbox *mb;
};

/* Loads them; NULL, or the SetError (serverFail, notFound). */
static json_t *mbset_load(struct jmap_req *r, int64_t id, struct mbset *m)
{
    struct buf err = BUF_INIT;
    json_t *e = NULL;
    memset(m, 0, sizeof(*m));
    m->v = jmap_mailboxes(r, &m->n, &err);
    if (m->v == NULL)
        e = jmap_server_fail("mailbox list", &err);
    else if (id && (m->mb = jmap_mailbox_find(m->v, m->n, id)) == NULL)
        e = jmap_set_error("notFound", NULL, NULL);
    buf_free(&err);
    return e;
}

static void mbset_free(struct mbset *m)
{
    if (m->v)
        store_mailbox_list_free(m->v, m->n);
}

/* invalidProperties for the first property of o a client may not set, or NULL. */
static json_t *unsettable_property(json_t *o)
{
    const char *k;
    json_t *x;
    json_object_foreach(o, k, x)
    {
        if (strcmp(k, "name") && strcmp(k, "parentId") && strcmp(k, "role") &&
            strcmp(k, "isSubscribed") && strcmp(k, "sortOrder"))
            return jmap_set_error("invalidProperties", "a property that cannot be set", k);
    }
    return NULL;
}

/*
 * In a shared account: whether login may make the owner's mailbox name (a
 * create, a rename's new name): store_acl_may_create, the rule IMAP's CREATE
 * and RENAME ask ("k" on the parent). NULL, or the SetError.
 */
static json_t *may_create(struct jmap_req *r, const char *name)
{
    struct buf err = BUF_INIT;
    json_t *e = NULL;
    int rc = r->acl ? store_acl_may_create(r->j->store, r->user, name, r->login, &err) : 1;
    if (rc < 0)
        e = jmap_server_fail("mailbox rights", &err);
    else if (rc == 0)
        e = jmap_set_error("forbidden", "creating here needs the right k on the parent",
                           "parentId");
    buf_free(&err);
    return e;
}

/* In a shared account: subscriptions and roles are the owner's, never set by another. */
static json_t *owner_only(struct jmap_req *r, json_t *o, const struct store_mailbox *mb)
{
    json_t *sub = json_object_get(o, "isSubscribed"), *role = json_object_get(o, "role");
    if (r->acl == NULL)
        return NULL;
    if (sub && !json_is_null(sub) && json_is_true(sub) != (mb ? mb->subscribed : false))
        return jmap_set_error("forbidden", "subscriptions are the owner's", "isSubscribed");
    if (mb == NULL && role && !json_is_null(role))
        return jmap_set_error("forbidden", "roles are the owner's", "role");
    return NULL;
}

static json_t *mailbox_create(struct jmap_req *r, const char *cid, json_t *o, json_t *created)
{
    struct buf err = BUF_INIT, name = BUF_INIT;
    struct mbset m;
    json_t *e = mbset_load(r, 0, &m);
    struct store_mailbox *v = m.v;
    size_t n = m.n;
    if (e)
        goto out;
    json_t *jn = json_object_get(o, "name"), *role = json_object_get(o, "role"),
           *sub = json_object_get(o, "isSubscribed");
    if ((e = unsettable_property(o)) != NULL)
        goto out;
    int64_t parent;
    if (!json_is_string(jn)) {
        e = jmap_set_error("invalidProperties", "name must be a string", "name");
        goto out;
    }
    if (parent_arg(r, o, &parent) < 0) {
        e = jmap_set_error("invalidProperties", "no such parent", "parentId");
        goto out;
    }
    const char *su = NULL;
    if (role && !json_is_null(role) &&
        (!json_is_string(role) || (su = role_special_use(json_string_value(role))) == NULL)) {
        e = jmap_set_error("invalidProperties", "not a role this server gives", "role");
        goto out;
    }
    if ((e = owner_only(r, o, NULL)) != NULL ||
        (e = full_name(v, n, parent, json_string_value(jn), &name)) != NULL ||
        (e = may_create(r, name.data)) != NULL)
        goto out;
    int64_t id;
    if (find_name(v, n, name.data, name.len) ||
        store_mailbox_create(r->j->store, r->user, name.data, su, &err) != 0) {
        e = jmap_set_error("invalidProperties",
                           err.len ? buf_cstr(&err) : "a mailbox of that name exists", "name");
        goto out;
    }
    if (store_mailbox_resolve(r->j->store, r->user, name.data, &id, &err) != 0 ||
        (json_is_true(sub) && store_subscribe(r->j->store, r->user, name.data, true, &err) != 0)) {
        e = jmap_server_fail("mailbox create", &err);
        goto out;
    }
    jmap_publish_list(r, IPC_LIST_CREATED, name.data, NULL);
    if (json_is_true(sub))
        jmap_publish_list(r, IPC_LIST_SUBSCRIBED, name.data, NULL);
    char sid[32];
    jmap_mailbox_id(id, sid);
    jmap_created(r, cid, sid);
    /* Its rights are its parent's (the store copied the nearest ancestor's ACL to it), which
     * the request knows already; RFC 8621 2.5: the server-set properties come back. */
    struct store_mailbox made = {.id = parent > 0 ? parent : id, .name = name.data};
    json_object_set_new(created, cid,
                        json_pack("{s:s, s:i, s:i, s:i, s:i, s:b, s:o}", "id", sid, "totalEmails",
                                  0, "unreadEmails", 0, "totalThreads", 0, "unreadThreads", 0,
                                  "isSubscribed", json_is_true(sub), "myRights",
                                  mailbox_rights(r, &made)));
out:
    mbset_free(&m);
    buf_free(&err);
    buf_free(&name);
    return e;
}

static json_t *mailbox_update(struct jmap_req *r, int64_t id, json_t *o)
{
    struct buf err = BUF_INIT, name = BUF_INIT;
    struct mbset m;
    json_t *e = mbset_load(r, id, &m);
    struct store_mailbox *v = m.v;
    size_t n = m.n;
    const struct store_mailbox *mb = m.mb;
    if (e)
        goto out;
    if ((e = unsettable_property(o)) != NULL || (e = owner_only(r, o, mb)) != NULL)
        goto out;
    json_t *role = json_object_get(o, "role");
    if (role) {
        const char *cur = mailbox_role(mb);
        if (!(json_is_null(role) && cur == NULL) &&
            !(json_is_string(role) && cur && strcmp(cur, json_string_value(role)) == 0)) {
            e = jmap_set_error("invalidProperties", "roles are kept by the server", "role");
            goto out;
        }
    }
    json_t *jn = json_object_get(o, "name");
    int64_t parent;
    int pa = parent_arg(r, o, &parent);
    if (pa < 0 || (jn && !json_is_string(jn))) {
        e = jmap_set_error("invalidProperties", "bad name or parentId",
                           pa < 0 ? "parentId" : "name");
        goto out;
    }
    if (jn || pa > 0) {
        const struct store_mailbox *p = parent_of(v, n, mb);
        if (pa == 0)
            parent = p ? p->id : 0;
        const char *cur = p ? strrchr(mb->name, STORE_DELIMITER) + 1 : mb->name;
        if ((e = full_name(v, n, parent, jn ? json_string_value(jn) : cur, &name)) != NULL)
            goto out;
        /* a rename asks IMAP's RENAME rights: "x" here, "k" on the new parent */
        if (strcmp(name.data, mb->name) != 0 && !jmap_may(r, mb->id, "x")) {
            e = jmap_set_error("forbidden", "renaming needs the right x", "name");
            goto out;
        }
        if (strcmp(name.data, mb->name) != 0 && (e = may_create(r, name.data)) != NULL)
            goto out;
        if (strcmp(name.data, mb->name) != 0 &&
            (strcmp(mb->name, STORE_INBOX) == 0 ||
             store_mailbox_rename(r->j->store, r->user, mb->name, name.data, &err) != 0)) {
            e = jmap_set_error(strcmp(mb->name, STORE_INBOX) == 0 ? "forbidden"
                                                                  : "invalidProperties",
                               err.len ? buf_cstr(&err) : "INBOX keeps its name", "name");
            goto out;
        }
        if (strcmp(name.data, mb->name) != 0)
            jmap_publish_list(r, IPC_LIST_RENAMED, name.data, mb->name);
    } else
        buf_append_cstr(&name, mb->name);
    json_t *sub = json_object_get(o, "isSubscribed");
    if (sub && json_is_boolean(sub) && json_is_true(sub) != mb->subscribed &&
        store_subscribe(r->j->store, r->user, name.data, json_is_true(sub), &err) != 0)
        e = jmap_server_fail("subscribe", &err);
    else if (sub && json_is_boolean(sub) && json_is_true(sub) != mb->subscribed)
        jmap_publish_list(r, json_is_true(sub) ? IPC_LIST_SUBSCRIBED : IPC_LIST_UNSUBSCRIBED,
                          name.data, NULL);
out:
    mbset_free(&m);
    buf_free(&err);
    buf_free(&name);
    return e;
}

static json_t *mailbox_destroy(struct jmap_req *r, int64_t id, bool remove_emails)
{
    struct buf err = BUF_INIT;
    struct mbset m;
    json_t *e = mbset_load(r, id, &m);
    struct store_mailbox *v = m.v;
    size_t n = m.n;
    const struct store_mailbox *mb = m.mb;
    if (e)
        goto out;
    if (strcmp(mb->name, STORE_INBOX) == 0) {
        e = jmap_set_error("forbidden", "INBOX cannot be destroyed", NULL);
        goto out;
    }
    if (!jmap_may(r, mb->id, "x")) { /* IMAP's DELETE asks the same */
        e = jmap_set_error("forbidden", "destroying needs the right x", NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (parent_of(v, n, &v[i]) == mb) {
            e = jmap_set_error("mailboxHasChild", NULL, NULL);
            goto out;
        }
    }
    if (mb->messages > 0 && !remove_emails) {
        e = jmap_set_error("mailboxHasEmail", NULL, NULL);
        goto out;
    }
    if (store_mailbox_delete(r->j->store, r->user, mb->name, &err) != 0)
        e = jmap_server_fail("mailbox delete", &err);
    else
        jmap_publish_list(r, IPC_LIST_DELETED, mb->name, NULL);
out:
    mbset_free(&m);
    buf_free(&err);
    return e;
}

static json_t *mailbox_update_id(struct jmap_req *r, const char *id, json_t *patch)
{
    int64_t mid = jmap_mailbox_id_parse(id);
    return mid ? mailbox_update(r, mid, patch) : jmap_set_error("notFound", NULL, NULL);
}

static json_t *mailbox_destroy_id(struct jmap_req *r, const char *id, json_t *args)
{
    int64_t mid = jmap_mailbox_id_parse(id);
    bool remove = json_is_true(json_object_get(args, "onDestroyRemoveEmails"));
    return mid ? mailbox_destroy(r, mid, remove) : jmap_set_error("notFound", NULL, NULL);
}

json_t *jmap_mailbox_set(struct jmap_req *r, json_t *args, json_t **err_r)
{
    static const struct jmap_set_ops ops = {mailbox_create, mailbox_update_id, mailbox_destroy_id,
                                            NULL};
    return jmap_set_run(r, args, &ops, err_r);
}
