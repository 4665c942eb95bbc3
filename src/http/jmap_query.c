/*
 * jmap_query.c - Email/query, Email/queryChanges and Email/changes (RFC
 * 8621 4.4, 4.5, 4.3) over the account's copies.
 *
 * The copies of the account, grouped by body into Emails, are the worker's
 * account view (jmap_view.c), brought to the current state; a filter is
 * checked on the metadata first; its text conditions (text, body, subject,
 * from, to, cc, bcc) are answered by the store's full-text index (one
 * search per condition), and only text shorter than the index answers for
 * is looked for in the search records the store keeps (decoded header
 * fields) and in the messages' text. A query of one text condition (and
 * inMailbox) sorted by receivedAt, a mail client's search box, is answered
 * whole by the store, already sorted (text_fast): the account view is not
 * walked. Never changes anything.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- filters ---- */

struct qctx {
    struct jmap_req *r;
    /* the search records of each mailbox, loaded when a header filter needs them */
    struct {
        int64_t mailbox_id;
        struct store_records rec;
    } * recs;
    size_t nrecs;
    struct buf scratch;
    bool failed;
    /* the account: its Emails by thread for the thread filters */
    const struct jmap_view *view;
    /* the answers of the store's full-text index, one per (fields, text) asked */
    struct text_answer {
        unsigned fields;
        const char *text;
        bool indexed;                /* false: too short, scan */
        struct store_text_hit *hits; /* by blob */
        size_t n;
    } * texts;
    size_t ntexts;
};

/* How many Emails of e's thread have keyword kw (*total_r: how many it has). */
static size_t thread_keyword(const struct qctx *q, const struct jmap_view_email *e, const char *kw,
                             size_t *total_r);

static bool has_keyword(const struct jmap_view_email *e, const char *kw)
{
    return jmap_has_keyword(e->c[0].m.flags, e->c[0].m.keywords, kw);
}

static size_t thread_keyword(const struct qctx *q, const struct jmap_view_email *e, const char *kw,
                             size_t *total_r)
{
    size_t total, lo = jmap_view_thread(q->view, e->c[0].thread, &total), with = 0;
    for (size_t i = lo; i < lo + total; i++)
        with += has_keyword(q->view->by_thread[i], kw);
    *total_r = total;
    return with;
}

static bool in_mailbox(const struct jmap_view_email *e, int64_t id)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->c[i].mailbox_id == id)
            return true;
    return false;
}

/* The search record of the first copy of e into q->scratch. */
static bool record_of(struct qctx *q, const struct jmap_view_email *e)
{
    const struct store_account_message *c = &e->c[0];
    size_t k;
    for (k = 0; k < q->nrecs; k++)
        if (q->recs[k].mailbox_id == c->mailbox_id)
            break;
    if (k == q->nrecs) {
        struct buf err = BUF_INIT;
        q->recs = xreallocarray(q->recs, q->nrecs + 1, sizeof(*q->recs));
        memset(&q->recs[k], 0, sizeof(q->recs[k]));
        q->recs[k].mailbox_id = c->mailbox_id;
        if (store_message_records_id(q->r->j->store, q->r->user, c->mailbox_id, 1, &q->recs[k].rec,
                                     &err) != 0)
            q->failed = true;
        buf_free(&err);
        q->nrecs++;
    }
    const struct store_records *rs = &q->recs[k].rec;
    size_t lo = 0, hi = rs->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (rs->v[mid].uid < c->m.uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    buf_reset(&q->scratch);
    if (lo < rs->n && rs->v[lo].uid == c->m.uid && rs->v[lo].present) {
        buf_append_slice(&q->scratch, store_record_get(rs, lo));
        return true;
    }
    /* no record yet: make one from the message */
    struct buf data = BUF_INIT, err = BUF_INIT;
    bool ok = store_message_read_id(q->r->j->store, q->r->user, c->mailbox_id, c->m.uid, &data,
                                    &err) == 0;
    if (ok) {
        struct mime_message msg;
        mime_parse(&msg, buf_slice(&data), NULL);
        mime_cache_record(&q->scratch, &msg, msg.root);
        mime_message_free(&msg);
    }
    buf_free(&data);
    buf_free(&err);
    return ok;
}

static bool contains(struct slice hay, const char *needle)
{
    return slice_contains_nocase(hay, slice_from_cstr(needle));
}

/* Whether a header field of names (NULL-ended) in e's record holds text. */
static bool header_has(struct qctx *q, const struct jmap_view_email *e, const char *const *names,
                       const char *text)
{
    if (!record_of(q, e) || q->scratch.len == 0)
        return false;
    struct slice rest = slice_make(q->scratch.data + 1, q->scratch.len - 1), name, value;
    while (mime_cache_record_next(&rest, &name, &value)) {
        for (const char *const *n = names; *n; n++)
            if (slice_eq_cstr_nocase(name, *n) && contains(value, text))
                return true;
    }
    return false;
}

/* Whether the text of e's body parts (mime_body_text, as the index holds it) holds text: a
 * scan, for text too short for the index. */
static bool body_has(struct qctx *q, const struct jmap_view_email *e, const char *text)
{
    const struct store_account_message *c = &e->c[0];
    struct buf data = BUF_INIT, err = BUF_INIT, t = BUF_INIT;
    bool found = false;
    if (store_message_read_id(q->r->j->store, q->r->user, c->mailbox_id, c->m.uid, &data, &err) ==
        0) {
        struct mime_message msg;
        mime_parse(&msg, buf_slice(&data), NULL);
        mime_body_text(&msg, &t);
        found = contains(buf_slice(&t), text);
        mime_message_free(&msg);
    }
    buf_free(&data);
    buf_free(&err);
    buf_free(&t);
    return found;
}

static int hit_order(const void *a, const void *b)
{
    return strcmp(((const struct store_text_hit *)a)->blob,
                  ((const struct store_text_hit *)b)->blob);
}

/*
 * Whether the fields of e hold text, from the store's full-text index: one
 * search per (fields, text) of the query, its matches then looked up per
 * Email. -1 when the index does not answer for text (too short): scan.
 */
static int indexed_has(struct qctx *q, const struct jmap_view_email *e, unsigned fields,
                       const char *text)
{
    struct text_answer *a = NULL;
    for (size_t i = 0; i < q->ntexts && a == NULL; i++)
        if (q->texts[i].fields == fields && strcmp(q->texts[i].text, text) == 0)
            a = &q->texts[i];
    if (a == NULL) {
        q->texts = xreallocarray(q->texts, q->ntexts + 1, sizeof(*q->texts));
        a = &q->texts[q->ntexts++];
        memset(a, 0, sizeof(*a));
        a->fields = fields;
        a->text = text;
        struct buf err = BUF_INIT;
        int rc = store_text_search(q->r->j->store, q->r->user, 0, fields, slice_from_cstr(text),
                                   &a->hits, &a->n, &err);
        if (rc < 0)
            q->failed = true;
        buf_free(&err);
        a->indexed = rc == 0;
        if (a->n > 1)
            qsort(a->hits, a->n, sizeof(*a->hits), hit_order);
    }
    if (!a->indexed)
        return q->failed ? 0 : -1;
    struct store_text_hit key = {0};
    memcpy(key.blob, e->c[0].m.blob, sizeof(key.blob));
    return a->n && bsearch(&key, a->hits, a->n, sizeof(*a->hits), hit_order) != NULL;
}

static const char *const addr_names[][3] = {
    {"from", NULL, NULL}, {"to", NULL, NULL},      {"cc", NULL, NULL},
    {"bcc", NULL, NULL},  {"subject", NULL, NULL},
};
/* The index's field of each of addr_names. */
static const unsigned addr_fields[] = {STORE_TEXT_FROM, STORE_TEXT_TO, STORE_TEXT_CC,
                                       STORE_TEXT_BCC, STORE_TEXT_SUBJECT};

static bool condition(struct qctx *q, const struct jmap_view_email *e, json_t *f)
{
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v)
    {
        const char *s = json_string_value(v);
        bool ok = true;
        if (strcmp(k, "inMailbox") == 0) {
            const char *id = jmap_resolve_id(q->r, s);
            ok = id && in_mailbox(e, jmap_mailbox_id_parse(id));
        } else if (strcmp(k, "inMailboxOtherThan") == 0) {
            ok = false;
            for (size_t i = 0; i < e->n && !ok; i++) {
                bool listed = false;
                size_t j;
                json_t *x;
                json_array_foreach(v, j, x)
                {
                    const char *id = jmap_resolve_id(q->r, json_string_value(x));
                    listed = listed || (id && jmap_mailbox_id_parse(id) == e->c[i].mailbox_id);
                }
                ok = !listed;
            }
        } else if (strcmp(k, "before") == 0 || strcmp(k, "after") == 0) {
            int64_t t = 0;
            jmap_utc_date_parse(s, &t);
            ok = k[0] == 'b' ? e->c[0].m.internaldate < t : e->c[0].m.internaldate >= t;
        } else if (strcmp(k, "minSize") == 0)
            ok = (json_int_t)e->c[0].m.size >= json_integer_value(v);
        else if (strcmp(k, "maxSize") == 0)
            ok = (json_int_t)e->c[0].m.size < json_integer_value(v);
        else if (strcmp(k, "hasKeyword") == 0)
            ok = has_keyword(e, s);
        else if (strcmp(k, "notKeyword") == 0)
            ok = !has_keyword(e, s);
        else if (strcmp(k, "allInThreadHaveKeyword") == 0 ||
                 strcmp(k, "someInThreadHaveKeyword") == 0 ||
                 strcmp(k, "noneInThreadHaveKeyword") == 0) {
            size_t total, with = thread_keyword(q, e, s, &total);
            ok = k[0] == 'a' ? with == total : k[0] == 's' ? with > 0 : with == 0;
        } else if (strcmp(k, "text") == 0) {
            static const char *const all[] = {"from", "to", "cc", "bcc", "subject", NULL};
            int x = indexed_has(q, e,
                                STORE_TEXT_FROM | STORE_TEXT_TO | STORE_TEXT_CC | STORE_TEXT_BCC |
                                    STORE_TEXT_SUBJECT | STORE_TEXT_BODY,
                                s);
            ok = x >= 0 ? x : header_has(q, e, all, s) || body_has(q, e, s);
        } else if (strcmp(k, "body") == 0) {
            int x = indexed_has(q, e, STORE_TEXT_BODY, s);
            ok = x >= 0 ? x : body_has(q, e, s);
        } else {
            for (size_t i = 0; i < sizeof(addr_names) / sizeof(addr_names[0]); i++)
                if (strcmp(k, addr_names[i][0]) == 0) {
                    int x = indexed_has(q, e, addr_fields[i], s);
                    ok = x >= 0 ? x : header_has(q, e, addr_names[i], s);
                }
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool matches(struct qctx *q, const struct jmap_view_email *e, json_t *f)
{
    json_t *op = json_object_get(f, "operator");
    if (op == NULL)
        return condition(q, e, f);
    const char *o = json_string_value(op);
    json_t *conds = json_object_get(f, "conditions");
    size_t i;
    json_t *c;
    bool any = false, all = true;
    json_array_foreach(conds, i, c)
    {
        bool m = matches(q, e, c);
        any = any || m;
        all = all && m;
    }
    if (strcmp(o, "AND") == 0)
        return all;
    if (strcmp(o, "OR") == 0)
        return any;
    return !any; /* NOT */
}

/* Checks a filter's shape; NULL when fine, else the error. */
static json_t *filter_check(json_t *f, unsigned depth)
{
    if (depth > 16 || !json_is_object(f))
        return jmap_error("unsupportedFilter", "a filter must be an object (at most 16 deep)");
    json_t *op = json_object_get(f, "operator");
    if (op) {
        json_t *conds = json_object_get(f, "conditions");
        const char *o = json_string_value(op);
        if (o == NULL || (strcmp(o, "AND") && strcmp(o, "OR") && strcmp(o, "NOT")) ||
            !json_is_array(conds) || json_object_size(f) != 2)
            return jmap_error("unsupportedFilter", "bad FilterOperator");
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c)
        {
            json_t *e = filter_check(c, depth + 1);
            if (e)
                return e;
        }
        return NULL;
    }
    static const char *const strs[] = {"inMailbox",
                                       "before",
                                       "after",
                                       "hasKeyword",
                                       "notKeyword",
                                       "allInThreadHaveKeyword",
                                       "someInThreadHaveKeyword",
                                       "noneInThreadHaveKeyword",
                                       "text",
                                       "from",
                                       "to",
                                       "cc",
                                       "bcc",
                                       "subject",
                                       "body"};
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
            if (strcmp(k, strs[i]) == 0)
                ok = json_is_string(v);
        if (strcmp(k, "minSize") == 0 || strcmp(k, "maxSize") == 0)
            ok = json_is_integer(v);
        if (strcmp(k, "inMailboxOtherThan") == 0) {
            ok = json_is_array(v);
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) ok = ok && json_is_string(x);
        }
        if (!ok)
            return jmap_error("unsupportedFilter", k);
        int64_t t;
        if ((strcmp(k, "before") == 0 || strcmp(k, "after") == 0) &&
            !jmap_utc_date_parse(json_string_value(v), &t))
            return jmap_invalid("before and after are UTCDates");
    }
    return NULL;
}

/* ---- sort ---- */

struct sort_keys {
    struct {
        enum { S_RECEIVED, S_SIZE, S_FROM, S_SUBJECT } what;
        bool asc;
    } k[4];
    size_t n;
    bool textual; /* a from or subject key: struct jmap_view_email's key[] filled */
};

static int email_order(const void *a, const void *b, void *arg)
{
    const struct jmap_view_email *x = a, *y = b;
    const struct sort_keys *sk = arg;
    bool newest_first = false; /* receivedAt is in whole seconds: arrival breaks its ties */
    for (size_t i = 0; i < sk->n; i++) {
        if (sk->k[i].what == S_RECEIVED)
            newest_first = !sk->k[i].asc;
        if (sk->k[i].what == S_FROM || sk->k[i].what == S_SUBJECT) {
            size_t w = sk->k[i].what == S_SUBJECT;
            int c = strcasecmp(x->key[w] ? x->key[w] : "", y->key[w] ? y->key[w] : "");
            if (c)
                return (c < 0 ? -1 : 1) * (sk->k[i].asc ? 1 : -1);
            continue;
        }
        int64_t u = sk->k[i].what == S_RECEIVED ? x->c[0].m.internaldate : (int64_t)x->c[0].m.size;
        int64_t v = sk->k[i].what == S_RECEIVED ? y->c[0].m.internaldate : (int64_t)y->c[0].m.size;
        if (u != v)
            return (u < v ? -1 : 1) * (sk->k[i].asc ? 1 : -1);
    }
    /* ties: by arrival in the account (the order receivedAt was meant to give),
     * then by id, so that pages of one query never overlap */
    if (x->c[0].created_state != y->c[0].created_state)
        return (x->c[0].created_state < y->c[0].created_state ? -1 : 1) * (newest_first ? -1 : 1);
    return strcmp(x->c[0].m.blob, y->c[0].m.blob);
}

static json_t *sort_parse(json_t *sort, struct sort_keys *sk)
{
    sk->n = 0;
    sk->textual = false;
    if (sort == NULL || json_is_null(sort)) {
        sk->k[sk->n].what = S_RECEIVED;
        sk->k[sk->n++].asc = false;
        return NULL;
    }
    if (!json_is_array(sort) || json_array_size(sort) > 4)
        return jmap_invalid("sort must be an array of at most 4 Comparators");
    size_t i;
    json_t *c;
    json_array_foreach(sort, i, c)
    {
        const char *p = json_string_value(json_object_get(c, "property"));
        json_t *asc = json_object_get(c, "isAscending");
        if (p == NULL)
            return jmap_invalid("a Comparator needs a property");
        sk->k[sk->n].asc = asc == NULL || json_is_true(asc);
        if (strcmp(p, "receivedAt") == 0 || strcmp(p, "sentAt") == 0)
            sk->k[sk->n].what = S_RECEIVED;
        else if (strcmp(p, "size") == 0)
            sk->k[sk->n].what = S_SIZE;
        else if (strcmp(p, "from") == 0 || strcmp(p, "subject") == 0) {
            sk->k[sk->n].what = p[0] == 'f' ? S_FROM : S_SUBJECT;
            sk->textual = true;
        } else
            return jmap_error("unsupportedSort", p);
        sk->n++;
    }
    return NULL;
}

/*
 * The from and subject sort keys of e from its search record (RFC 8621
 * 4.4.2): the name of the first From address, else its address; the base
 * subject (RFC 5256, as IMAP SORT). Compared without case.
 */
static void sort_keys_fill(struct qctx *q, struct jmap_view_email *e)
{
    struct buf subj = BUF_INIT;
    e->key[0] = xstrdup("");
    e->key[1] = xstrdup("");
    if (!record_of(q, e) || q->scratch.len == 0)
        return;
    struct slice rest = slice_make(q->scratch.data + 1, q->scratch.len - 1), name, value;
    bool from = false, subject = false;
    while (mime_cache_record_next(&rest, &name, &value)) {
        if (!from && slice_eq_cstr_nocase(name, "from")) {
            from = true;
            struct mime_address_list al;
            mime_address_parse(value, &al);
            for (size_t i = 0; i < al.n; i++) {
                const struct mime_address *a = &al.v[i];
                if (a->host.ptr == NULL)
                    continue; /* a group's markers */
                free(e->key[0]);
                if (a->name.ptr && a->name.len)
                    e->key[0] = xstrndup(a->name.ptr, a->name.len);
                else {
                    struct buf b = BUF_INIT;
                    buf_printf(&b, "%.*s@%.*s", (int)a->mailbox.len,
                               a->mailbox.ptr ? a->mailbox.ptr : "", (int)a->host.len, a->host.ptr);
                    e->key[0] = xstrdup(buf_cstr(&b));
                    buf_free(&b);
                }
                break;
            }
            mime_address_list_free(&al);
        } else if (!subject && slice_eq_cstr_nocase(name, "subject")) {
            subject = true;
            mime_base_subject(value, &subj);
            free(e->key[1]);
            e->key[1] = xstrndup(subj.data ? subj.data : "", subj.len);
        }
    }
    buf_free(&subj);
}

/* collapseThreads: an Email's thread and its place in the sorted result */
struct tpos {
    int64_t thread;
    size_t pos;
};

static int tpos_order(const void *a, const void *b)
{
    const struct tpos *x = a, *y = b;
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* One run of a query: every Email of the account (all, by body), and the
 * ones the filter selects in the sort's order (e, nm), collapsed if asked. */
struct qrun {
    const struct jmap_view_email *all; /* the view's */
    struct jmap_view_email *e;
    size_t ne, nm;
    struct qctx q;
    struct sort_keys sk;
    json_t *filter;
    bool collapse;
};

static void query_free(struct qrun *qr)
{
    for (size_t i = 0; i < qr->q.nrecs; i++)
        store_records_free(&qr->q.recs[i].rec);
    free(qr->q.recs);
    for (size_t i = 0; i < qr->q.ntexts; i++)
        free(qr->q.texts[i].hits);
    free(qr->q.texts);
    buf_free(&qr->q.scratch);
    for (size_t i = 0; i < qr->nm; i++) {
        free(qr->e[i].key[0]);
        free(qr->e[i].key[1]);
    }
    free(qr->e);
    memset(qr, 0, sizeof(*qr));
}

/* Checks filter, sort and collapseThreads of args; NULL when fine, else the error. */
static json_t *query_args(json_t *args, struct qrun *qr)
{
    memset(qr, 0, sizeof(*qr));
    qr->filter = json_object_get(args, "filter");
    if (qr->filter && json_is_null(qr->filter))
        qr->filter = NULL;
    json_t *e;
    if (qr->filter && (e = filter_check(qr->filter, 0)) != NULL)
        return e;
    if ((e = sort_parse(json_object_get(args, "sort"), &qr->sk)) != NULL)
        return e;
    json_t *c = json_object_get(args, "collapseThreads");
    if (c && !json_is_boolean(c))
        return jmap_invalid("collapseThreads is a boolean");
    qr->collapse = json_is_true(c);
    return NULL;
}

/* The mailbox id a filter requires (inMailbox at its top or in a top AND), or -1. */
static int64_t filter_mailbox(struct jmap_req *r, json_t *f)
{
    if (f == NULL)
        return -1;
    json_t *op = json_object_get(f, "operator");
    const char *id = NULL;
    if (op == NULL)
        id = json_string_value(json_object_get(f, "inMailbox"));
    else if (strcmp(json_string_value(op), "AND") == 0) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(f, "conditions"), i, c)
        {
            if (json_object_get(c, "operator") == NULL &&
                (id = json_string_value(json_object_get(c, "inMailbox"))) != NULL)
                break;
        }
    }
    const char *rid = id ? jmap_resolve_id(r, id) : NULL;
    int64_t m = rid ? jmap_mailbox_id_parse(rid) : -1;
    return m >= 0 ? m : -1;
}

/*
 * A mail list's filter, checked without walking its JSON for each of
 * 100,000 Emails: a condition, or an AND of conditions, of inMailbox,
 * hasKeyword and notKeyword only. ok false: another shape (matches()).
 */
struct simple_filter {
    bool ok;
    int64_t mailbox; /* -1: any */
    size_t n;
    struct {
        const char *kw;
        bool want;
    } k[8];
};

static bool simple_condition(struct jmap_req *r, json_t *c, struct simple_filter *sf)
{
    const char *key;
    json_t *v;
    json_object_foreach(c, key, v)
    {
        const char *s = json_string_value(v);
        if (strcmp(key, "inMailbox") == 0 && sf->mailbox < 0) {
            const char *id = jmap_resolve_id(r, s);
            sf->mailbox = id ? jmap_mailbox_id_parse(id) : -1;
            if (sf->mailbox < 0)
                return false;
        } else if ((strcmp(key, "hasKeyword") == 0 || strcmp(key, "notKeyword") == 0) &&
                   sf->n < sizeof(sf->k) / sizeof(sf->k[0])) {
            sf->k[sf->n].kw = s;
            sf->k[sf->n++].want = key[0] == 'h';
        } else
            return false;
    }
    return true;
}

static void simple_filter_make(struct jmap_req *r, json_t *f, struct simple_filter *sf)
{
    memset(sf, 0, sizeof(*sf));
    sf->mailbox = -1;
    if (f == NULL)
        return;
    json_t *op = json_object_get(f, "operator");
    if (op == NULL) {
        sf->ok = simple_condition(r, f, sf);
        return;
    }
    if (strcmp(json_string_value(op), "AND") != 0)
        return;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(f, "conditions"), i, c)
    {
        if (json_object_get(c, "operator") || !simple_condition(r, c, sf))
            return;
    }
    sf->ok = true;
}

static bool simple_matches(const struct simple_filter *sf, const struct jmap_view_email *e)
{
    if (sf->mailbox >= 0 && !in_mailbox(e, sf->mailbox))
        return false;
    for (size_t i = 0; i < sf->n; i++)
        if (has_keyword(e, sf->k[i].kw) != sf->k[i].want)
            return false;
    return true;
}

/*
 * How far ahead query_by_date asks for the Emails it will reach. In date
 * order the Emails and their copies (both in body order) are all over 20 MB
 * of memory: a walk of 100,000 waited for two cache misses at each, most
 * of a first Inbox page's time (the run of equal dates compares each
 * Email's first copy). Asked for early, the misses overlap.
 */
#define WALK_AHEAD 8

/*
 * A query sorted by receivedAt alone (a mail list's), in the view's date
 * order: no sort, and collapseThreads keeps the first Email of each thread
 * met. email_order's order: receivedAt, then arrival (created_state) the
 * same way, then body ascending; so newest first walks the runs of equal
 * (receivedAt, arrival) from the end, each run forwards.
 */
static void query_by_date(struct qrun *qr, const struct jmap_view *v)
{
    bool asc = qr->sk.k[0].asc;
    bool *seen = qr->collapse ? xcalloc(v->n_threads + 1, sizeof(*seen)) : NULL;
    /* every Email, or those of the mailbox the filter requires (in date order too) */
    const struct jmap_view_email *const *list = v->by_date;
    size_t nm = 0, n = v->n_emails;
    int64_t mailbox = filter_mailbox(qr->q.r, qr->filter);
    struct simple_filter sf;
    simple_filter_make(qr->q.r, qr->filter, &sf);
    if (mailbox >= 0) {
        size_t first = jmap_view_mailbox(v, mailbox, &n);
        list = v->by_mailbox + first;
    }
    size_t pf_email = 0, pf_copy = 0; /* walk steps whose Email, whose first copy, asked for */
    for (size_t k = 0; k < n;) {
        /* the Emails 2 * WALK_AHEAD steps on; the first copies of those WALK_AHEAD on */
        for (; pf_email < n && pf_email < k + 2 * WALK_AHEAD; pf_email++)
            __builtin_prefetch(list[asc ? pf_email : n - 1 - pf_email]);
        for (; pf_copy < n && pf_copy < k + WALK_AHEAD; pf_copy++)
            __builtin_prefetch(&list[asc ? pf_copy : n - 1 - pf_copy]->c[0].m.internaldate);
        size_t a, b; /* the run [a, b) of list */
        if (asc) {
            a = k;
            b = k + 1;
        } else {
            b = n - k;
            a = b - 1;
            const struct store_account_message *x = &list[a]->c[0];
            while (a > 0 && list[a - 1]->c[0].m.internaldate == x->m.internaldate &&
                   list[a - 1]->c[0].created_state == x->created_state)
                a--;
        }
        k += b - a;
        for (size_t i = a; i < b; i++) {
            const struct jmap_view_email *e = list[i];
            if (i > 0 && list[i - 1] == e)
                continue; /* two copies of one body in the mailbox: one Email */
            if (qr->filter && !(sf.ok ? simple_matches(&sf, e) : matches(&qr->q, e, qr->filter)))
                continue;
            if (seen) {
                if (seen[e->thread_no])
                    continue;
                seen[e->thread_no] = true;
            }
            qr->e[nm++] = *e;
        }
    }
    free(seen);
    qr->nm = nm;
}

/* Runs the query query_args checked on the account at state st; NULL when
 * done, else the error (qr freed). */
static json_t *query_run(struct jmap_req *r, uint64_t st, struct qrun *qr)
{
    json_t *err;
    const struct jmap_view *v = jmap_view_get(r, st, &err);
    if (v == NULL)
        return err;
    qr->all = v->emails;
    qr->ne = v->n_emails;
    qr->q.r = r;
    qr->q.view = v;
    qr->e = xcalloc(qr->ne ? qr->ne : 1, sizeof(*qr->e));
    if (qr->sk.n == 1 && qr->sk.k[0].what == S_RECEIVED) {
        query_by_date(qr, v);
        if (qr->q.failed) {
            query_free(qr);
            return jmap_error("serverFail", "search records");
        }
        return NULL;
    }
    /* the thread filters look at every Email of a thread: e is filtered in place, so a copy */
    if (qr->ne)
        memcpy(qr->e, qr->all, qr->ne * sizeof(*qr->e));
    struct jmap_view_email *e = qr->e;
    size_t nm = 0;
    for (size_t i = 0; i < qr->ne; i++)
        if (qr->filter == NULL || matches(&qr->q, &e[i], qr->filter))
            e[nm++] = e[i];
    if (qr->sk.textual)
        for (size_t i = 0; i < nm; i++)
            sort_keys_fill(&qr->q, &e[i]);
    qsort_r(e, nm, sizeof(*e), email_order, &qr->sk);
    if (qr->collapse) {
        /* the first Email of each thread in the sorted result stands for it */
        struct tpos *tp = xcalloc(nm ? nm : 1, sizeof(*tp));
        for (size_t i = 0; i < nm; i++)
            tp[i] = (struct tpos){e[i].c[0].thread, i};
        if (nm > 1)
            qsort(tp, nm, sizeof(*tp), tpos_order);
        bool *keep = xcalloc(nm ? nm : 1, sizeof(*keep));
        for (size_t i = 0; i < nm; i++)
            keep[tp[i].pos] = i == 0 || tp[i].thread != tp[i - 1].thread;
        size_t nk = 0;
        for (size_t i = 0; i < nm; i++)
            if (keep[i])
                e[nk++] = e[i];
            else {
                free(e[i].key[0]);
                free(e[i].key[1]);
            }
        free(keep);
        free(tp);
        nm = nk;
    }
    qr->nm = nm;
    if (qr->q.failed) {
        query_free(qr);
        return jmap_error("serverFail", "search records");
    }
    return NULL;
}

/*
 * A mail list's query (sorted by receivedAt alone, a simple filter) on a
 * worker that keeps no view of the account (a first sign-in; the account
 * idle past jmap_cache_idle): answered from the cold account (jmap_cold_get),
 * with the view's answer: each Email's date, arrival, keywords and thread
 * are its first copy's (lowest mailbox, then UID), its mailboxes all its
 * copies', the order email_order's, and collapseThreads keeps the first
 * Email of each thread met. 1 when answered (*ids_r, *n_r: the whole result,
 * kept like query_run's), 0 when the view must answer, -1 (*err_r).
 */
struct cold_key {
    int64_t date;
    uint64_t created;
    uint64_t h[2];
    int64_t thread;
    uint32_t copy; /* the Email's first copy */
};

struct cold_sort {
    const struct jmap_cold *c;
    bool asc;
};

static int cold_key_order(const void *a, const void *b, void *arg)
{
    const struct cold_key *x = a, *y = b;
    const struct cold_sort *cs = arg;
    int dir = cs->asc ? 1 : -1;
    if (x->date != y->date)
        return (x->date < y->date ? -1 : 1) * dir;
    if (x->created != y->created) /* arrival breaks receivedAt's ties the same way */
        return (x->created < y->created ? -1 : 1) * dir;
    for (int k = 0; k < 2; k++) /* then body, ascending */
        if (x->h[k] != y->h[k])
            return x->h[k] < y->h[k] ? -1 : 1;
    return strcmp(cs->c->blobs[x->copy], cs->c->blobs[y->copy]);
}

/* simple_matches on a cold Email; sys[i]: the store flag of sf's keyword i (0: none) */
static bool cold_matches(const struct simple_filter *sf, const unsigned *sys,
                         const struct jmap_cold *c, const struct jmap_cold_email *e)
{
    if (sf->mailbox >= 0 && e->mailbox_id != sf->mailbox) {
        bool in = false;
        for (uint32_t k = 1; k < e->n && !in; k++)
            in = c->copies[c->order[e->first + k]].mailbox_id == sf->mailbox;
        if (!in)
            return false;
    }
    for (size_t i = 0; i < sf->n; i++) {
        bool has = sys[i] ? (e->flags & sys[i]) != 0
                          : e->keywords && jmap_has_keyword(0, e->keywords, sf->k[i].kw);
        if (has != sf->k[i].want)
            return false;
    }
    return true;
}

/* A set of thread ids (collapseThreads): open addressing, n at most cap / 2. */
struct thread_set {
    int64_t *id;
    bool *used;
    size_t mask;
};

/* Room for n ids; none when !on (a query that does not collapse: no set). */
static void thread_set_init(struct thread_set *t, bool on, size_t n)
{
    *t = (struct thread_set){NULL, NULL, 0};
    if (!on)
        return;
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    *t = (struct thread_set){xcalloc(cap, sizeof(*t->id)), xcalloc(cap, sizeof(*t->used)), cap - 1};
}

static void thread_set_free(struct thread_set *t)
{
    free(t->id);
    free(t->used);
}

static bool thread_set_add(struct thread_set *t, int64_t id)
{
    size_t i = ((uint64_t)id * 0x9E3779B97F4A7C15ull >> 20) & t->mask;
    while (t->used[i]) {
        if (t->id[i] == id)
            return false;
        i = (i + 1) & t->mask;
    }
    t->used[i] = true;
    t->id[i] = id;
    return true;
}

/* The store flag each keyword of sf is (jmap_has_keyword's answer for every flag set;
 * 0: a keyword of the list) into sys. */
static void keyword_flags(const struct simple_filter *sf, unsigned *sys)
{
    for (size_t i = 0; i < sf->n; i++) {
        sys[i] = 0;
        for (unsigned b = 0; b < 32 && sys[i] == 0; b++)
            if (jmap_has_keyword(1u << b, NULL, sf->k[i].kw))
                sys[i] = 1u << b;
    }
}

/* sf's keyword conditions as the store asks them (store_dates, store_mailbox_count) */
static void keyword_conds(const struct simple_filter *sf, const unsigned *sys,
                          struct store_keyword_cond *k)
{
    for (size_t i = 0; i < sf->n; i++)
        k[i] = (struct store_keyword_cond){sys[i], sf->k[i].kw, sf->k[i].want};
}

/*
 * A mail list's first pages on a worker that keeps no view of the account
 * (a first sign-in): neither the view nor the cold account (jmap_cold_get)
 * is read, only the rows the answer needs, from the store's indexes. Two
 * shapes are answered so, each with the view's answer:
 *
 * - the Emails of mailbox M, by receivedAt (walk_query): when M is the
 *   account's lowest mailbox id, the first copy of each body in M (lowest
 *   UID; the store keeps the others apart, message_dupes) is its Email's
 *   first copy (lowest mailbox, then UID), whose date, arrival, keywords and
 *   thread are the Email's. So those copies in the store's date order (receivedAt, arrival, body:
 * email_order's) are the result's Emails in its order: the first position + limit are walked (the
 * keyword conditions checked on each, collapseThreads keeping the first of each thread met, as
 * query_by_date does) and the total is counted in SQLite (copies, or the threads they are in, with
 * the keyword conditions in SQL). Not kept: only a prefix was read.
 * - few candidates (probe_query): a filter with a hasKeyword condition (only
 *   Emails whose first copy has the keyword can match, and every copy that
 *   has it is found by the date index), or one of a mailbox of at most
 *   PROBE_MAX copies (a folder switch): each candidate body's copies are
 *   read (as the view reads a changed body) and the Emails so made are
 *   filtered, sorted and collapsed by the view's own functions (the filter
 *   is a simple one: only the Email's own copies decide it). The whole
 *   result: kept like query_run's.
 *
 * 1 when answered (*ids_r, *n_r; *total_r the whole result's count, and
 * *complete_r whether ids is all of it), 0 when another path must answer,
 * -1 (*err_r).
 */
#define WALK_MAX 1000
#define PROBE_MAX 1000

struct walk {
    const struct simple_filter *sf;
    const unsigned *sys;
    struct thread_set ts;
    bool collapse;
    char (*ids)[65];
    size_t n, want;
};

static bool walk_row(void *ctx, const struct store_account_message *a)
{
    struct walk *w = ctx;
    for (size_t i = 0; i < w->sf->n; i++) {
        bool has = w->sys[i] ? (a->m.flags & w->sys[i]) != 0
                             : a->m.keywords && jmap_has_keyword(0, a->m.keywords, w->sf->k[i].kw);
        if (has != w->sf->k[i].want)
            return true;
    }
    if (w->collapse && !thread_set_add(&w->ts, a->thread))
        return true;
    memcpy(w->ids[w->n++], a->m.blob, 65);
    return w->n < w->want;
}

/* The lowest mailbox id of r's account, and *messages_r the copies of mailbox m; -1 on trouble */
static int64_t lowest_mailbox(struct jmap_req *r, int64_t m, uint64_t *messages_r, struct buf *err)
{
    struct store_mailbox *mb = NULL;
    size_t n = 0;
    if (store_mailbox_list(r->j->store, r->user, &mb, &n, err) != 0)
        return -1;
    int64_t low = INT64_MAX;
    *messages_r = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (mb[i].id < low)
            low = mb[i].id;
        if (mb[i].id == m)
            *messages_r = mb[i].messages;
    }
    store_mailbox_list_free(mb, n);
    return low;
}

static int walk_query(struct jmap_req *r, const struct qrun *qr, const struct simple_filter *sf,
                      const unsigned *sys, size_t need, char (**ids_r)[65], size_t *n_r,
                      size_t *total_r, struct buf *err)
{
    struct store_keyword_cond k[sizeof(sf->k) / sizeof(sf->k[0])];
    keyword_conds(sf, sys, k);
    uint64_t total = 0;
    int rc =
        store_mailbox_count(r->j->store, r->user, sf->mailbox, qr->collapse, k, sf->n, &total, err);
    if (rc != 0) /* 1: conditions the store cannot ask */
        return rc < 0 ? -1 : 0;
    struct walk w = {sf, sys, {NULL, NULL, 0}, qr->collapse, NULL, 0, need};
    w.ids = xcalloc(need + 1, sizeof(*w.ids));
    thread_set_init(&w.ts, qr->collapse, need);
    struct store_dates_ask ask = {STORE_DATES_MAILBOX, r->user, sf->mailbox,
                                  !qr->sk.k[0].asc,    NULL,    0};
    if (need > 0)
        rc = store_dates(r->j->store, &ask, walk_row, &w, err);
    thread_set_free(&w.ts);
    if (rc != 0) {
        free(w.ids);
        return -1;
    }
    *ids_r = w.ids;
    *n_r = w.n;
    *total_r = (size_t)total;
    return 1;
}

/* The candidate bodies of probe_query: distinct, at most PROBE_MAX (over: full) */
struct probe {
    char (*blob)[65];
    size_t n;
    bool full;
};

static int hash_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static bool probe_row(void *ctx, const struct store_account_message *a)
{
    struct probe *p = ctx;
    if (p->n == PROBE_MAX) {
        p->full = true;
        return false;
    }
    memcpy(p->blob[p->n++], a->m.blob, 65);
    return true;
}

static int probe_query(struct jmap_req *r, const struct qrun *qr, const struct simple_filter *sf,
                       const unsigned *sys, char (**ids_r)[65], size_t *n_r, struct buf *err)
{
    struct store_keyword_cond k[sizeof(sf->k) / sizeof(sf->k[0])];
    keyword_conds(sf, sys, k);
    size_t has = sf->n;
    for (size_t i = 0; i < sf->n; i++)
        if (sf->k[i].want)
            has = i;
    struct store_dates_ask ask = {STORE_DATES_MAILBOX, r->user, sf->mailbox, true, NULL, 0};
    if (has < sf->n) /* the Emails whose first copy has that keyword are among these */
        ask = (struct store_dates_ask){STORE_DATES_KEYWORD, r->user, 0, true, &k[has], 1};
    struct probe p = {xcalloc(PROBE_MAX + 1, sizeof(*p.blob)), 0, false};
    int rc = store_dates(r->j->store, &ask, probe_row, &p, err);
    if (rc != 0 || p.full) {
        free(p.blob);
        return rc < 0 ? -1 : 0;
    }
    if (p.n > 1)
        qsort(p.blob, p.n, sizeof(*p.blob), hash_cmp);
    size_t u = 0;
    for (size_t i = 0; i < p.n; i++)
        if (u == 0 || strcmp(p.blob[u - 1], p.blob[i]) != 0)
            memmove(p.blob[u++], p.blob[i], 65);
    /* each body's copies, by mailbox then UID (copy_order within a body): an Email as the
     * view has it */
    struct jmap_view_email *e = xcalloc(u + 1, sizeof(*e));
    struct store_account_message **copies = xcalloc(u + 1, sizeof(*copies));
    size_t *ncopies = xcalloc(u + 1, sizeof(*ncopies)), ne = 0;
    rc = 0;
    for (size_t i = 0; i < u && rc == 0; i++) {
        if (jmap_account_messages(r, p.blob[i], 0, &copies[i], &ncopies[i], err) != 0)
            rc = -1;
        else if (ncopies[i] > 0) {
            struct jmap_view_email x = {.c = copies[i], .n = ncopies[i]};
            if (simple_matches(sf, &x))
                e[ne++] = x;
        }
    }
    char(*ids)[65] = NULL;
    size_t nk = 0;
    if (rc == 0) {
        struct sort_keys sk = qr->sk;
        if (ne > 1)
            qsort_r(e, ne, sizeof(*e), email_order, &sk);
        ids = xcalloc(ne + 1, sizeof(*ids));
        struct thread_set ts;
        thread_set_init(&ts, qr->collapse, ne);
        for (size_t i = 0; i < ne; i++)
            if (!qr->collapse || thread_set_add(&ts, e[i].c[0].thread))
                memcpy(ids[nk++], e[i].c[0].m.blob, 65);
        thread_set_free(&ts);
    }
    for (size_t i = 0; i < u; i++)
        store_account_messages_free(copies[i], ncopies[i]);
    free(copies);
    free(ncopies);
    free(e);
    free(p.blob);
    if (rc != 0)
        return -1;
    *ids_r = ids;
    *n_r = nk;
    return 1;
}

static int index_query(struct jmap_req *r, uint64_t st, const struct qrun *qr, size_t need,
                       char (**ids_r)[65], size_t *n_r, size_t *total_r, bool *complete_r,
                       json_t **err_r)
{
    *err_r = NULL;
    if (r->acl != NULL || jmap_view_held(r->j, r->view_key.data) || qr->sk.n != 1 ||
        qr->sk.k[0].what != S_RECEIVED || qr->filter == NULL)
        return 0;
    struct simple_filter sf;
    simple_filter_make(r, qr->filter, &sf);
    if (!sf.ok || sf.n > STORE_DATES_KW)
        return 0;
    unsigned sys[sizeof(sf.k) / sizeof(sf.k[0])];
    keyword_flags(&sf, sys);
    bool has = false;
    for (size_t i = 0; i < sf.n; i++)
        has = has || sf.k[i].want;
    struct buf err = BUF_INIT;
    int rc = 0;
    uint64_t messages = UINT64_MAX;
    int64_t low = sf.mailbox >= 0 ? lowest_mailbox(r, sf.mailbox, &messages, &err) : 0;
    if (low < 0)
        rc = -1;
    else if (sf.mailbox >= 0 && sf.mailbox == low && need <= WALK_MAX &&
             (rc = walk_query(r, qr, &sf, sys, need, ids_r, n_r, total_r, &err)) != 0)
        *complete_r = *n_r == *total_r;
    else if (rc == 0 && (has || messages <= PROBE_MAX) &&
             (rc = probe_query(r, qr, &sf, sys, ids_r, n_r, &err)) > 0) {
        *total_r = *n_r;
        *complete_r = true;
    }
    if (rc < 0)
        *err_r = jmap_server_fail("account index", &err);
    else if (rc > 0) {
        r->j->stats.index_answers++;
        jmap_view_build(r, st); /* for the pages and queries the indexes do not answer */
    }
    buf_free(&err);
    return rc;
}

static int cold_query(struct jmap_req *r, uint64_t st, const struct qrun *qr, char (**ids_r)[65],
                      size_t *n_r, json_t **err_r)
{
    *err_r = NULL;
    if (qr->sk.n != 1 || qr->sk.k[0].what != S_RECEIVED)
        return 0;
    struct simple_filter sf;
    simple_filter_make(r, qr->filter, &sf);
    if (qr->filter && !sf.ok)
        return 0;
    const struct jmap_cold *c = jmap_cold_get(r, st, err_r);
    if (c == NULL)
        return *err_r ? -1 : 0;
    unsigned sys[sizeof(sf.k) / sizeof(sf.k[0])];
    keyword_flags(&sf, sys);
    struct cold_key *k = xcalloc(c->n_emails + 1, sizeof(*k));
    size_t n = 0;
    for (size_t i = 0; i < c->n_emails; i++) {
        const struct jmap_cold_email *e = &c->emails[i];
        if (qr->filter && !cold_matches(&sf, sys, c, e))
            continue;
        k[n++] =
            (struct cold_key){e->date, e->created_state, {e->h[0], e->h[1]}, e->thread, e->copy};
    }
    struct cold_sort cs = {c, qr->sk.k[0].asc};
    if (n > 1)
        qsort_r(k, n, sizeof(*k), cold_key_order, &cs);
    char(*ids)[65] = xcalloc(n + 1, sizeof(*ids));
    size_t nk = 0;
    struct thread_set ts;
    thread_set_init(&ts, qr->collapse, n);
    for (size_t i = 0; i < n; i++)
        if (!qr->collapse || thread_set_add(&ts, k[i].thread))
            memcpy(ids[nk++], c->blobs[k[i].copy], 65);
    thread_set_free(&ts);
    free(k);
    *ids_r = ids;
    *n_r = nk;
    return 1;
}

/*
 * A text query the store answers whole: a filter of one text condition
 * (text, body, subject, from, to, cc or bcc, of 3 characters or more), alone
 * or with inMailbox, sorted by receivedAt only (sentAt is receivedAt here),
 * not collapsed. store_text_emails returns the matching Emails already
 * sorted as email_order would, so the account's copies are never loaded nor
 * sorted (the common search of a mail client). 1 when answered (*ids_r,
 * *n_r), 0 when the query has another shape (query_run answers it, using the
 * index per condition), -1 on error.
 */
static int text_fast(struct jmap_req *r, const struct qrun *qr, char (**ids_r)[65], size_t *n_r)
{
    static const struct {
        const char *name;
        unsigned fields;
    } conds[] = {
        {"text", STORE_TEXT_FROM | STORE_TEXT_TO | STORE_TEXT_CC | STORE_TEXT_BCC |
                     STORE_TEXT_SUBJECT | STORE_TEXT_BODY},
        {"body", STORE_TEXT_BODY},
        {"subject", STORE_TEXT_SUBJECT},
        {"from", STORE_TEXT_FROM},
        {"to", STORE_TEXT_TO},
        {"cc", STORE_TEXT_CC},
        {"bcc", STORE_TEXT_BCC},
    };
    json_t *f = qr->filter;
    if (f == NULL || qr->collapse || qr->sk.n != 1 || qr->sk.k[0].what != S_RECEIVED ||
        json_object_get(f, "operator") != NULL)
        return 0;
    const char *text = NULL;
    unsigned fields = 0;
    int64_t in_mailbox = 0;
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++)
            if (strcmp(k, conds[i].name) == 0 && text == NULL) {
                text = json_string_value(v);
                fields = conds[i].fields;
                known = true;
            }
        if (strcmp(k, "inMailbox") == 0) {
            const char *id = jmap_resolve_id(r, json_string_value(v));
            in_mailbox = id ? jmap_mailbox_id_parse(id) : 0;
            known = in_mailbox > 0;
        }
        if (!known)
            return 0;
    }
    if (text == NULL || !store_text_indexed(slice_from_cstr(text)))
        return 0;
    /* a shared account: the store answers for one mailbox login may read, never
     * for the whole account (query_run filters the account view instead) */
    if (r->acl && (in_mailbox == 0 || !jmap_may(r, in_mailbox, "r")))
        return 0;
    struct buf err = BUF_INIT;
    int rc = store_text_emails(r->j->store, r->user, in_mailbox, fields, slice_from_cstr(text),
                               !qr->sk.k[0].asc, ids_r, n_r, &err);
    if (rc < 0)
        log_warning("user=<%s>: text index: %s", r->user, buf_cstr(&err));
    buf_free(&err);
    return rc < 0 ? -1 : rc == 0;
}

/*
 * The last QCACHE_MAX results kept per worker, the last used first: a mail
 * list pages through the same query (the same filter, sort and
 * collapseThreads) 50 Emails at a time, and each page would otherwise
 * filter and sort the whole account again; a client asks a few queries in
 * turn (the list, its settings message, a search), and one entry would make
 * each evict the other. The account state is part of the key, so any change
 * to the account (which moves the state) makes the next query run afresh:
 * the cache never answers for old data. An entry no request used in the
 * worker's jmap_cache_idle goes (jmap_release_idle).
 */
#define QCACHE_MAX 4

struct jmap_query_cache {
    char *user, *key;
    uint64_t state;
    char (*ids)[65];
    size_t n;
    int64_t used_ms; /* when a request last read it (monotonic_ms) */
    struct jmap_query_cache *next;
};

static void qcache_free(struct jmap_query_cache *c)
{
    while (c) {
        struct jmap_query_cache *next = c->next;
        free(c->user);
        free(c->key);
        free(c->ids);
        free(c);
        c = next;
    }
}

void jmap_stats_json(const struct jmap *j, json_t *obj)
{
    const struct jmap_stats *s = &j->stats;
    json_object_set_new(obj, "jmap_view_reads", json_integer((json_int_t)s->view_reads));
    json_object_set_new(obj, "jmap_cold_reads", json_integer((json_int_t)s->cold_reads));
    json_object_set_new(obj, "jmap_index_answers", json_integer((json_int_t)s->index_answers));
    json_object_set_new(obj, "jmap_view_builds", json_integer((json_int_t)s->view_builds));
    json_object_set_new(obj, "jmap_view_patches", json_integer((json_int_t)s->view_patches));
    json_object_set_new(obj, "jmap_view_in_place", json_integer((json_int_t)s->view_in_place));
    json_object_set_new(obj, "jmap_view_moves", json_integer((json_int_t)s->view_moves));
    json_object_set_new(obj, "jmap_query_kept", json_integer((json_int_t)s->query_kept));
    json_object_set_new(obj, "jmap_query_grown", json_integer((json_int_t)s->query_grown));
    json_object_set_new(obj, "jmap_query_runs", json_integer((json_int_t)s->query_runs));
    size_t views, queries;
    jmap_kept(j, &views, &queries);
    json_object_set_new(obj, "jmap_views", json_integer((json_int_t)views));
    json_object_set_new(obj, "jmap_queries", json_integer((json_int_t)queries));
}

void jmap_release(struct jmap *j)
{
    qcache_free(j->qcache);
    j->qcache = NULL;
    jmap_view_release(j);
}

int64_t jmap_release_idle(struct jmap *j, int64_t now_ms, int64_t idle_ms,
                          bool (*listening)(void *ctx, const char *user), void *ctx)
{
    int64_t cutoff = now_ms - idle_ms;
    int64_t last = jmap_view_release_idle(j, now_ms, cutoff, listening, ctx);
    for (struct jmap_query_cache **pp = &j->qcache; *pp;) {
        struct jmap_query_cache *c = *pp;
        if (c->used_ms > cutoff) {
            if (c->used_ms < last || last < 0)
                last = c->used_ms;
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        c->next = NULL;
        qcache_free(c);
    }
    return last < 0 ? -1 : last + idle_ms - now_ms;
}

void jmap_kept(const struct jmap *j, size_t *views_r, size_t *queries_r)
{
    *views_r = jmap_view_kept(j);
    *queries_r = 0;
    for (const struct jmap_query_cache *c = j->qcache; c; c = c->next)
        ++*queries_r;
}

/* The entry of (user, key) at state st, moved to the front; NULL when none. */
static struct jmap_query_cache *qcache_find(struct jmap *j, const char *user, const char *key,
                                            uint64_t st)
{
    for (struct jmap_query_cache **pp = &j->qcache; *pp; pp = &(*pp)->next) {
        struct jmap_query_cache *c = *pp;
        if (c->state == st && strcmp(c->user, user) == 0 && strcmp(c->key, key) == 0) {
            *pp = c->next;
            c->next = j->qcache;
            j->qcache = c;
            c->used_ms = monotonic_ms();
            return c;
        }
    }
    return NULL;
}

/* Puts c first; drops entries of older states and those past QCACHE_MAX. */
static void qcache_add(struct jmap *j, struct jmap_query_cache *c)
{
    c->used_ms = monotonic_ms();
    c->next = j->qcache;
    j->qcache = c;
    size_t n = 1;
    for (struct jmap_query_cache **pp = &c->next; *pp;) {
        struct jmap_query_cache *x = *pp;
        if (n < QCACHE_MAX && !(x->state < c->state && strcmp(x->user, c->user) == 0)) {
            n++;
            pp = &x->next;
            continue;
        }
        *pp = x->next;
        x->next = NULL;
        qcache_free(x);
    }
}

/* The index of body hash in v (body order), n when not there. */
static size_t email_find(const struct jmap_view_email *v, size_t n, const char *hash);

/* Most Emails of one thread looked at when a delivery's Email joins it (qcache_grow). */
#define GROW_THREAD_MAX 64

/*
 * The result of query (sorted by receivedAt alone, a simple filter) at st
 * brought forward from the one kept at the state the view grew from by a
 * delivery (jmap_view's grown): each Email added that the filter selects is
 * placed by a binary search (the Emails kept did not change, nor their
 * order), and with collapseThreads it stands for its thread only if it
 * comes first in it, taking the place of the thread's Email listed before.
 * A mail list after new mail then costs a few searches instead of a walk
 * of the account. NULL when the result cannot be brought forward.
 */
static struct jmap_query_cache *qcache_grow(struct jmap_req *r, struct qrun *qr, const char *key,
                                            uint64_t st)
{
    /* only a kept view can have grown: none (a cold worker) is no reason to read one */
    if (qr->sk.n != 1 || qr->sk.k[0].what != S_RECEIVED || !jmap_view_held(r->j, r->view_key.data))
        return NULL;
    json_t *err = NULL;
    const struct jmap_view *v = jmap_view_get(r, st, &err);
    if (v == NULL) {
        json_decref(err);
        return NULL;
    }
    if (v->grown_from == 0 || v->state != st)
        return NULL;
    struct simple_filter sf;
    simple_filter_make(r, qr->filter, &sf);
    if (qr->filter && !sf.ok)
        return NULL;
    struct jmap_query_cache *old = qcache_find(r->j, r->view_key.data, key, v->grown_from);
    if (old == NULL)
        return NULL;
    /* the kept result (first now, qcache_find) is of an older state, which
     * qcache_add would drop: its ids move over instead of being copied
     * (6.5 MB for 100,000), and it goes now, whatever follows */
    size_t n = old->n;
    char(*ids)[65] = xreallocarray(old->ids, n + v->n_grown + 1, sizeof(*ids));
    old->ids = NULL;
    r->j->qcache = old->next;
    old->next = NULL;
    qcache_free(old);
    for (size_t g = 0; g < v->n_grown; g++) {
        size_t at = email_find(v->emails, v->n_emails, v->grown[g]);
        if (at == v->n_emails || !simple_matches(&sf, &v->emails[at]))
            continue;
        const struct jmap_view_email *e = &v->emails[at];
        if (qr->collapse) {
            /* the thread's first Email the filter selects stands for it */
            size_t nt, lo = jmap_view_thread(v, e->c[0].thread, &nt);
            if (nt > GROW_THREAD_MAX) {
                free(ids);
                return NULL;
            }
            const struct jmap_view_email *first = NULL;
            for (size_t i = lo; i < lo + nt; i++) {
                const struct jmap_view_email *x = v->by_thread[i];
                if (simple_matches(&sf, x) && (first == NULL || email_order(x, first, &qr->sk) < 0))
                    first = x;
            }
            if (first != e)
                continue;
            /* the Email that stood for the thread goes */
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                bool other = false;
                for (size_t t = lo; t < lo + nt && !other; t++)
                    other =
                        v->by_thread[t] != e && strcmp(v->by_thread[t]->c[0].m.blob, ids[i]) == 0;
                if (!other)
                    memmove(ids[k++], ids[i], 65);
            }
            n = k;
        }
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            size_t x = email_find(v->emails, v->n_emails, ids[mid]);
            if (x == v->n_emails) { /* cannot be: every Email kept is still there */
                free(ids);
                return NULL;
            }
            if (email_order(&v->emails[x], e, &qr->sk) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(ids[lo + 1], ids[lo], (n - lo) * sizeof(*ids));
        memcpy(ids[lo], e->c[0].m.blob, 65);
        n++;
    }
    struct jmap_query_cache *qc = xcalloc(1, sizeof(*qc));
    qc->user = xstrdup(r->view_key.data);
    qc->key = xstrdup(key);
    qc->state = st;
    qc->ids = ids;
    qc->n = n;
    return qc;
}

/* The cache key of a query: its filter, sort and collapseThreads (canonical JSON). */
static char *qcache_key(json_t *args)
{
    json_t *k = json_pack("{s:O?, s:O?, s:O?}", "filter", json_object_get(args, "filter"), "sort",
                          json_object_get(args, "sort"), "collapse",
                          json_object_get(args, "collapseThreads"));
    char *s = k ? json_dumps(k, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    json_decref(k);
    return s;
}

json_t *jmap_email_query(struct jmap_req *r, json_t *args, json_t **err_r)
{
    if (!jmap_check_account(r, args, err_r))
        return NULL;
    struct qrun qr;
    if ((*err_r = query_args(args, &qr)) != NULL)
        return NULL;
    json_t *pos = json_object_get(args, "position"), *lim = json_object_get(args, "limit"),
           *anchor = json_object_get(args, "anchor"), *aoff = json_object_get(args, "anchorOffset");
    if ((pos && !json_is_integer(pos)) || (lim && !json_is_null(lim) && !json_is_integer(lim)) ||
        (lim && json_is_integer(lim) && json_integer_value(lim) < 0) ||
        (anchor && !json_is_null(anchor) && !json_is_string(anchor)) ||
        (aoff && !json_is_integer(aoff))) {
        *err_r = jmap_invalid("position, anchorOffset and limit are integers, anchor an id");
        return NULL;
    }
    uint64_t st;
    if (!jmap_state_now(r, &st, err_r))
        return NULL;
    char *key = qcache_key(args);
    struct jmap_query_cache *qc = key ? qcache_find(r->j, r->view_key.data, key, st) : NULL;
    if (qc)
        r->j->stats.query_kept++;
    if (qc == NULL && key && (qc = qcache_grow(r, &qr, key, st)) != NULL) {
        r->j->stats.query_grown++;
        qcache_add(r->j, qc);
    }
    /* a first page from the store's indexes, not all of the result (index_query) */
    char(*part)[65] = NULL;
    size_t npart = 0, ptotal = 0;
    if (qc == NULL) {
        r->j->stats.query_runs++;
        char(*found)[65] = NULL;
        size_t nfound = 0, ntotal = 0;
        bool complete = true;
        int fast = text_fast(r, &qr, &found, &nfound);
        if (fast < 0) {
            *err_r = jmap_error("serverFail", "text index");
            free(key);
            return NULL;
        }
        /* a first page with no view kept: from the store's indexes (a prefix of the result
         * when not complete, with its total: cut, not kept) */
        json_int_t p0 = pos ? json_integer_value(pos) : 0, l0 = lim && json_is_integer(lim)
                                                                    ? json_integer_value(lim)
                                                                    : JMAP_QUERY_LIMIT_MAX;
        if (l0 > JMAP_QUERY_LIMIT_MAX)
            l0 = JMAP_QUERY_LIMIT_MAX;
        if (fast == 0 && (anchor == NULL || json_is_null(anchor)) && p0 >= 0 &&
            (fast = index_query(r, st, &qr, (size_t)(p0 > WALK_MAX ? WALK_MAX + 1 : p0 + l0),
                                &found, &nfound, &ntotal, &complete, err_r)) < 0) {
            free(key);
            return NULL;
        }
        if (fast == 0 && (fast = cold_query(r, st, &qr, &found, &nfound, err_r)) < 0) {
            free(key);
            return NULL;
        }
        if (fast && !complete) {
            part = found;
            npart = nfound;
            ptotal = ntotal;
        } else if (fast == 0 && (*err_r = query_run(r, st, &qr)) != NULL) {
            free(key);
            return NULL;
        }
        if (part == NULL) {
            qc = xcalloc(1, sizeof(*qc));
            qc->user = xstrdup(r->view_key.data);
            qc->key = key ? key : xstrdup("");
            key = NULL;
            qc->state = st; /* key "" (no memory for one) never matches */
            if (fast) {
                qc->n = nfound;
                qc->ids = found ? found : xcalloc(1, sizeof(*qc->ids));
            } else {
                qc->n = qr.nm;
                qc->ids = xcalloc(qr.nm ? qr.nm : 1, sizeof(*qc->ids));
                for (size_t i = 0; i < qr.nm; i++)
                    memcpy(qc->ids[i], qr.e[i].c[0].m.blob, 65);
            }
            qcache_add(r->j, qc);
        }
    }
    free(key);
    const char(*hashes)[65] = (const char(*)[65])(part ? part : qc->ids);
    size_t nm = part ? npart : qc->n;
    json_int_t total = (json_int_t)(part ? ptotal : nm);
    json_int_t p = pos ? json_integer_value(pos) : 0;
    json_t *res = NULL;
    if (anchor && json_is_string(anchor)) {
        char hash[65];
        json_int_t at = -1;
        if (jmap_email_id_parse(json_string_value(anchor), hash))
            for (size_t i = 0; i < nm && at < 0; i++)
                if (strcmp(hashes[i], hash) == 0)
                    at = (json_int_t)i;
        if (at < 0) {
            *err_r = jmap_error("anchorNotFound", NULL);
            goto out;
        }
        p = at + (aoff ? json_integer_value(aoff) : 0);
        if (p < 0)
            p = 0;
    } else if (p < 0)
        p = total + p < 0 ? 0 : total + p;
    json_int_t l = lim && json_is_integer(lim) ? json_integer_value(lim) : JMAP_QUERY_LIMIT_MAX;
    if (l > JMAP_QUERY_LIMIT_MAX)
        l = JMAP_QUERY_LIMIT_MAX;
    json_t *ids = json_array();
    for (json_int_t i = p; i < (json_int_t)nm && i < p + l; i++) {
        char id[70];
        snprintf(id, sizeof(id), "e%s", hashes[i]);
        json_array_append_new(ids, json_string(id));
    }
    char qs[32];
    jmap_state_string(st, qs);
    res = json_pack("{s:s, s:s, s:b, s:I, s:o}", "accountId", r->account_id.data, "queryState", qs,
                    "canCalculateChanges", 1, "position", p > total ? total : p, "ids", ids);
    if (json_is_true(json_object_get(args, "calculateTotal")))
        json_object_set_new(res, "total", json_integer(total));
    if (lim && json_is_integer(lim) && json_integer_value(lim) > JMAP_QUERY_LIMIT_MAX)
        json_object_set_new(res, "limit", json_integer(JMAP_QUERY_LIMIT_MAX));
out:
    free(part);
    query_free(&qr);
    return res;
}

/* The index of body hash in v (body order), n when not there. */
static size_t email_find(const struct jmap_view_email *v, size_t n, const char *hash)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v[mid].c[0].m.blob, hash);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return n;
}

static int int64_order(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether filter looks only at what never changes in an Email (its body and
 * headers, receivedAt, size): then upToId may cut the changes short. */
static bool filter_immutable(json_t *f)
{
    if (f == NULL)
        return true;
    json_t *conds = json_object_get(f, "conditions");
    if (json_object_get(f, "operator")) {
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c) if (!filter_immutable(c)) return false;
        return true;
    }
    static const char *const mutable[] = {"inMailbox",
                                          "inMailboxOtherThan",
                                          "hasKeyword",
                                          "notKeyword",
                                          "allInThreadHaveKeyword",
                                          "someInThreadHaveKeyword",
                                          "noneInThreadHaveKeyword"};
    for (size_t i = 0; i < sizeof(mutable) / sizeof(mutable[0]); i++)
        if (json_object_get(f, mutable[i]))
            return false;
    return true;
}

static bool filter_threaded(json_t *f)
{
    if (f == NULL)
        return false;
    json_t *conds = json_object_get(f, "conditions");
    if (json_object_get(f, "operator")) {
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c) if (filter_threaded(c)) return true;
        return false;
    }
    return json_object_get(f, "allInThreadHaveKeyword") ||
           json_object_get(f, "someInThreadHaveKeyword") ||
           json_object_get(f, "noneInThreadHaveKeyword");
}

/*
 * Email/queryChanges (RFC 8620 5.6). The store knows what changed after a
 * state (each copy's state, the bodies and threads copies left), not where
 * an Email stood in the old result, so: every Email that changed since is
 * removed, and added again at its index in the result now if it is in it
 * (RFC 8620 allows removed to name ids that were not in the old result).
 * An Email that did not change keeps its place relative to the others
 * (every sort key is immutable) and its membership, unless the query looks
 * at threads (collapseThreads, *InThreadHaveKeyword): then a change to one
 * Email of a thread counts as a change to each.
 */
json_t *jmap_email_query_changes(struct jmap_req *r, json_t *args, json_t **err_r)
{
    uint64_t since, current;
    size_t max;
    if (!jmap_query_changes_args(r, args, &since, &max, &current, err_r))
        return NULL;
    struct qrun qr;
    if ((*err_r = query_args(args, &qr)) != NULL)
        return NULL;
    json_t *upto = json_object_get(args, "upToId");
    if (upto && !json_is_null(upto) && !json_is_string(upto)) {
        *err_r = jmap_invalid("upToId must be an id");
        return NULL;
    }
    struct store_account_gone g;
    struct buf err = BUF_INIT;
    if (store_account_gone(r->j->store, r->user, since, &g, &err) != 0) {
        *err_r = jmap_server_fail("email changes", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    if ((*err_r = query_run(r, current, &qr)) != NULL) {
        store_account_gone_free(&g);
        return NULL;
    }
    /* the Emails changed since: a copy changed or went (all is in body order) */
    bool *changed = xcalloc(qr.ne ? qr.ne : 1, sizeof(*changed));
    bool threaded = qr.collapse || filter_threaded(qr.filter);
    int64_t *threads = xcalloc(qr.ne + g.n_threads + 1, sizeof(*threads));
    size_t nt = 0;
    for (size_t k = 0; k < g.n_threads; k++)
        threads[nt++] = g.threads[k];
    json_t *removed = json_array(), *added = json_array();
    size_t count = 0;
    for (size_t k = 0; k < g.n_blobs; k++) {
        size_t at = email_find(qr.all, qr.ne, g.blobs[k]);
        if (at < qr.ne) {
            changed[at] = true;
            continue;
        }
        /* no copy left: removed, wherever it was */
        char id[70];
        snprintf(id, sizeof(id), "e%s", g.blobs[k]);
        json_array_append_new(removed, json_string(id));
        count++;
    }
    for (size_t i = 0; i < qr.ne; i++) {
        for (size_t k = 0; k < qr.all[i].n; k++)
            changed[i] = changed[i] || qr.all[i].c[k].state > since;
        if (changed[i])
            threads[nt++] = qr.all[i].c[0].thread;
    }
    if (threaded && nt > 0) {
        qsort(threads, nt, sizeof(*threads), int64_order);
        for (size_t i = 0; i < qr.ne; i++)
            changed[i] = changed[i] || bsearch(&qr.all[i].c[0].thread, threads, nt,
                                               sizeof(*threads), int64_order) != NULL;
    }
    free(threads);
    /* upToId: with a query on immutable properties, changes after it are left out */
    const struct jmap_view_email *cut = NULL;
    size_t cut_at = SIZE_MAX;
    char hash[65];
    if (upto && json_is_string(upto) && !threaded && !qr.sk.textual &&
        filter_immutable(qr.filter) && jmap_email_id_parse(json_string_value(upto), hash))
        for (size_t i = 0; i < qr.nm && cut == NULL; i++)
            if (strcmp(qr.e[i].c[0].m.blob, hash) == 0) {
                cut = &qr.e[i];
                cut_at = i;
            }
    for (size_t i = 0; i < qr.ne; i++) {
        if (!changed[i] || (cut && email_order(&qr.all[i], cut, &qr.sk) > 0))
            continue;
        char id[70];
        snprintf(id, sizeof(id), "e%s", qr.all[i].c[0].m.blob);
        json_array_append_new(removed, json_string(id));
        count++;
    }
    for (size_t i = 0; i < qr.nm && i <= cut_at; i++) {
        if (!changed[email_find(qr.all, qr.ne, qr.e[i].c[0].m.blob)])
            continue;
        char id[70];
        snprintf(id, sizeof(id), "e%s", qr.e[i].c[0].m.blob);
        json_array_append_new(added, json_pack("{s:s, s:I}", "id", id, "index", (json_int_t)i));
    }
    json_t *res = NULL;
    if (count > max)
        *err_r = jmap_error("tooManyChanges", NULL);
    else {
        char old[32], now[32];
        jmap_state_string(since, old);
        jmap_state_string(current, now);
        res =
            json_pack("{s:s, s:s, s:s, s:O, s:O}", "accountId", r->account_id.data, "oldQueryState",
                      old, "newQueryState", now, "removed", removed, "added", added);
        if (json_is_true(json_object_get(args, "calculateTotal")))
            json_object_set_new(res, "total", json_integer((json_int_t)qr.nm));
    }
    json_decref(removed);
    json_decref(added);
    free(changed);
    store_account_gone_free(&g);
    query_free(&qr);
    return res;
}

/* Email/changes (Thread/changes: jmap_thread.c). */
static json_t *changes(struct jmap_req *r, json_t *args, json_t **err_r, char prefix)
{
    uint64_t since, current;
    size_t max;
    if (!jmap_changes_args(r, args, &since, &max, &current, err_r))
        return NULL;
    struct buf err = BUF_INIT;
    struct store_account_gone g;
    const struct jmap_view *v = jmap_view_get(r, current, err_r);
    if (v == NULL)
        return NULL;
    if (store_account_gone(r->j->store, r->user, since, &g, &err) != 0) {
        *err_r = jmap_server_fail("email changes", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    size_t ne = v->n_emails;
    const struct jmap_view_email *e = v->emails;
    struct jmap_change *c = xcalloc(ne + g.n_blobs + 1, sizeof(*c));
    size_t nc = 0;
    for (size_t i = 0; i < ne; i++) {
        uint64_t top = 0, created = UINT64_MAX;
        for (size_t k = 0; k < e[i].n; k++) {
            if (e[i].c[k].state > top)
                top = e[i].c[k].state;
            if (e[i].c[k].created_state < created)
                created = e[i].c[k].created_state;
        }
        /* a copy that went (a move) changes the Email too, and says it was
         * there before: a moved Email is updated, never created again */
        bool moved = false;
        for (size_t k = 0; k < g.n_blobs; k++) {
            if (strcmp(g.blobs[k], e[i].c[0].m.blob) == 0) {
                moved = true;
                if (g.blob_states[k] > top)
                    top = g.blob_states[k];
            }
        }
        if (top <= since)
            continue;
        snprintf(c[nc].id, sizeof(c[nc].id), "%c%s", prefix, e[i].c[0].m.blob);
        c[nc].state = top;
        c[nc++].kind = created > since && !moved ? JMAP_CREATED : JMAP_UPDATED;
    }
    for (size_t k = 0; k < g.n_blobs; k++) {
        bool present = false;
        size_t lo = 0, hi = ne;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int cmp = strcmp(e[mid].c[0].m.blob, g.blobs[k]);
            if (cmp == 0) {
                present = true;
                break;
            }
            if (cmp < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (present)
            continue;
        snprintf(c[nc].id, sizeof(c[nc].id), "%c%s", prefix, g.blobs[k]);
        c[nc].state = g.blob_states[k];
        c[nc++].kind = JMAP_DESTROYED;
    }
    json_t *res = jmap_changes_result(r, c, nc, since, max, current);
    free(c);
    store_account_gone_free(&g);
    return res;
}

json_t *jmap_email_changes(struct jmap_req *r, json_t *args, json_t **err_r)
{
    return changes(r, args, err_r, 'e');
}
