/*
 * jmap_view.c - the account as Email/query and Thread/get read it: every
 * copy of every mailbox of one account, grouped by body into Emails and
 * indexed by thread, kept by the worker at an account state.
 *
 * Reading and grouping 100,000 copies costs far more than filtering and
 * sorting them, and a mail list asks again after every change. So the view
 * is kept (one account per worker, the last one asked for) and brought to
 * the state asked for from the store's own change records: the copies
 * changed after the view's state and the bodies a copy left
 * (store_account_gone, as Email/changes reads them) name the bodies to read
 * again, each through the store's body index; a deleted mailbox or a large
 * change reads the whole account afresh. The view is labelled with a state
 * read before its rows, so a change racing the read is read again next time
 * (reading a body's copies again is idempotent), and never answers for an
 * older state than the one asked for.
 *
 * Never changes the store; never holds more than one account.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

/* More bodies changed than this since the view's state: read the whole account. */
#define VIEW_PATCH_MAX 2000

struct jmap_view_cache {
    struct jmap_view v;
};

static int copy_order(const void *a, const void *b)
{
    const struct store_account_message *x = a, *y = b;
    int c = strcmp(x->m.blob, y->m.blob);
    if (c)
        return c;
    return x->mailbox_id < y->mailbox_id ? -1 : x->mailbox_id > y->mailbox_id;
}

static void view_clear(struct jmap_view *v)
{
    free(v->user);
    store_account_messages_free(v->copies, v->n_copies);
    free(v->emails);
    free(v->by_thread);
    free(v->by_date);
    free(v->by_mailbox);
    free(v->by_mailbox_id);
    free(v->grown);
    memset(v, 0, sizeof(*v));
}

/*
 * The sort keys of the indexes, held in the entries themselves: comparing
 * through pointers into 100,000 Emails misses the cache at each step, and
 * the indexes are built again after every change. idx: an Email's place in
 * v->emails (by_mailbox: its place in by_date).
 */
struct key_entry {
    int64_t a;
    uint64_t b;
    uint32_t idx;
};

static int key_order(const void *x, const void *y, void *arg)
{
    const struct key_entry *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    if (arg == NULL) /* by_thread, by_mailbox: unique with b */
        return p->idx < q->idx ? -1 : p->idx > q->idx;
    const struct jmap_view_email *e = arg; /* by_date: then body */
    return strcmp(e[p->idx].c[0].m.blob, e[q->idx].c[0].m.blob);
}

static void keys_sort(struct key_entry *k, size_t n, void *arg)
{
    if (n > 1)
        qsort_r(k, n, sizeof(*k), key_order, arg);
}

/* The sorted runs a and b merged into out (na + nb entries). */
static void keys_merge(const struct key_entry *a, size_t na, const struct key_entry *b, size_t nb,
                       void *arg, struct key_entry *out)
{
    size_t i = 0, j = 0, n = 0;
    while (i < na && j < nb)
        out[n++] = key_order(&b[j], &a[i], arg) < 0 ? b[j++] : a[i++];
    while (i < na)
        out[n++] = a[i++];
    while (j < nb)
        out[n++] = b[j++];
}

/* The three indexes, built in this order (by_mailbox's keys are places in by_date). */
enum view_index { BY_THREAD, BY_DATE, BY_MAILBOX };

/* The keys of Email i of v in index x into k (by_mailbox: one per copy); how many. */
static size_t email_keys(const struct jmap_view *v, enum view_index x, size_t i,
                         struct key_entry *k)
{
    const struct jmap_view_email *e = &v->emails[i];
    switch (x) {
    case BY_THREAD:
        k[0] = (struct key_entry){e->c[0].thread, 0, (uint32_t)i};
        return 1;
    case BY_DATE: /* receivedAt, arrival, body */
        k[0] = (struct key_entry){e->c[0].m.internaldate, e->c[0].created_state, (uint32_t)i};
        return 1;
    case BY_MAILBOX: /* mailbox, then date */
        for (size_t c = 0; c < e->n; c++)
            k[c] = (struct key_entry){e->c[c].mailbox_id, e->date_no, (uint32_t)e->date_no};
        return e->n;
    }
    return 0;
}

/* Index x of v from its n keys k, sorted. */
static void index_set(struct jmap_view *v, enum view_index x, const struct key_entry *k, size_t n)
{
    struct jmap_view_email *e = v->emails;
    if (x == BY_THREAD) {
        free(v->by_thread);
        v->by_thread = xcalloc(n ? n : 1, sizeof(*v->by_thread));
        size_t nt = 0;
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && k[i].a != k[i - 1].a)
                nt++;
            e[k[i].idx].thread_no = nt;
            v->by_thread[i] = &e[k[i].idx];
        }
        v->n_threads = n ? nt + 1 : 0;
    } else if (x == BY_DATE) {
        free(v->by_date);
        v->by_date = xcalloc(n ? n : 1, sizeof(*v->by_date));
        for (size_t i = 0; i < n; i++) {
            e[k[i].idx].date_no = i;
            v->by_date[i] = &e[k[i].idx];
        }
    } else {
        free(v->by_mailbox);
        free(v->by_mailbox_id);
        v->by_mailbox = xcalloc(n ? n : 1, sizeof(*v->by_mailbox));
        v->by_mailbox_id = xcalloc(n ? n : 1, sizeof(*v->by_mailbox_id));
        for (size_t i = 0; i < n; i++) {
            v->by_mailbox[i] = v->by_date[k[i].idx];
            v->by_mailbox_id[i] = k[i].a;
        }
    }
}

/* v->emails from v->copies (sorted by copy_order): one per run of copies of a body. */
static void emails_build(struct jmap_view *v)
{
    free(v->emails);
    v->emails = xcalloc(v->n_copies ? v->n_copies : 1, sizeof(*v->emails));
    size_t ne = 0;
    for (size_t i = 0; i < v->n_copies; i++) {
        if (ne && strcmp(v->emails[ne - 1].c[0].m.blob, v->copies[i].m.blob) == 0)
            v->emails[ne - 1].n++;
        else
            v->emails[ne++] = (struct jmap_view_email){.c = &v->copies[i], .n = 1};
    }
    v->n_emails = ne;
}

/* The Emails, the thread, date and mailbox indexes of v->copies (sorted by copy_order). */
static void view_index(struct jmap_view *v)
{
    emails_build(v);
    struct key_entry *k = xcalloc(v->n_copies + 1, sizeof(*k));
    for (enum view_index x = BY_THREAD; x <= BY_MAILBOX; x++) {
        size_t n = 0;
        for (size_t i = 0; i < v->n_emails; i++)
            n += email_keys(v, x, i, &k[n]);
        keys_sort(k, n, x == BY_DATE ? v->emails : NULL);
        index_set(v, x, k, n);
    }
    free(k);
}

static int hash_order(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The Email of body hash in v, or NULL. */
static struct jmap_view_email *email_of(struct jmap_view *v, const char *hash)
{
    size_t lo = 0, hi = v->n_emails;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v->emails[mid].c[0].m.blob, hash);
        if (c == 0)
            return &v->emails[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * The view's indexes before a change (view_reindex): the Emails they point
 * to, and where each went (SIZE_MAX: its body was read again).
 */
struct view_before {
    struct jmap_view_email *emails;
    size_t n_emails, n_copies;
    const struct jmap_view_email **by_thread, **by_date, **by_mailbox;
    int64_t *by_mailbox_id;
    size_t *moved; /* per old Email: its place in the new v->emails */
};

static void view_before_free(struct view_before *b)
{
    free(b->emails);
    free(b->by_thread);
    free(b->by_date);
    free(b->by_mailbox);
    free(b->by_mailbox_id);
    free(b->moved);
}

/*
 * The indexes of v (its copies changed for the nb bodies only) from those
 * before, without sorting the account again: an Email whose body was not
 * read again keeps its keys, so the old order of the others, renumbered,
 * is still sorted; the few Emails read again are sorted and merged in.
 * A delivery to 100,000 messages costs a walk, not three sorts.
 */
static void view_reindex(struct jmap_view *v, struct view_before *b, const char (*bodies)[65],
                         size_t nb)
{
    emails_build(v);
    /* where each old Email went: both are in body order */
    b->moved = xcalloc(b->n_emails + 1, sizeof(*b->moved));
    for (size_t i = 0, j = 0; i < b->n_emails; i++) {
        const char *h = b->emails[i].c[0].m.blob;
        if (nb && bsearch(h, bodies, nb, sizeof(*bodies), hash_order)) {
            b->moved[i] = SIZE_MAX;
            continue;
        }
        while (strcmp(v->emails[j].c[0].m.blob, h) != 0)
            j++;
        b->moved[i] = j++;
    }
    /* the Emails read again (their new places, ascending) */
    size_t *fresh = xcalloc(nb + 1, sizeof(*fresh)), nf = 0, nfc = 0;
    for (size_t i = 0; i < nb; i++) {
        const struct jmap_view_email *e = email_of(v, bodies[i]);
        if (e) {
            fresh[nf++] = (size_t)(e - v->emails);
            nfc += e->n;
        }
    }
    size_t most = b->n_copies > v->n_copies ? b->n_copies : v->n_copies;
    struct key_entry *old = xcalloc(most + 1, sizeof(*old));
    struct key_entry *add = xcalloc(nfc + 1, sizeof(*add));
    struct key_entry *k = xcalloc(v->n_copies + 1, sizeof(*k));
    for (enum view_index x = BY_THREAD; x <= BY_MAILBOX; x++) {
        const struct jmap_view_email **was = x == BY_THREAD ? b->by_thread
                                             : x == BY_DATE ? b->by_date
                                                            : b->by_mailbox;
        size_t nwas = x == BY_MAILBOX ? b->n_copies : b->n_emails, no = 0, na = 0;
        for (size_t i = 0; i < nwas; i++) {
            size_t to = b->moved[was[i] - b->emails];
            if (to == SIZE_MAX)
                continue;
            const struct jmap_view_email *e = &v->emails[to];
            if (x == BY_MAILBOX) /* one entry per copy: its mailbox, as before */
                old[no++] =
                    (struct key_entry){b->by_mailbox_id[i], e->date_no, (uint32_t)e->date_no};
            else
                no += email_keys(v, x, to, &old[no]);
        }
        for (size_t i = 0; i < nf; i++)
            na += email_keys(v, x, fresh[i], &add[na]);
        void *arg = x == BY_DATE ? v->emails : NULL;
        keys_sort(add, na, arg);
        keys_merge(old, no, add, na, arg, k);
        index_set(v, x, k, no + na);
    }
    free(k);
    free(add);
    free(old);
    free(fresh);
}

size_t jmap_view_mailbox(const struct jmap_view *v, int64_t mailbox, size_t *n_r)
{
    size_t lo = 0, hi = v->n_copies;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->by_mailbox_id[mid] < mailbox)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < v->n_copies && v->by_mailbox_id[end] == mailbox)
        end++;
    *n_r = end - lo;
    return lo;
}

static int copy_index_order(const void *a, const void *b, void *arg)
{
    const struct store_account_message *v = arg;
    return copy_order(&v[*(const size_t *)a], &v[*(const size_t *)b]);
}

/* Sorts v by copy_order through an index: a copy is ~170 bytes, which the
 * sort would otherwise move about a million times for 100,000 of them. */
static void copies_sort(struct store_account_message *v, size_t n)
{
    size_t *ix = xcalloc(n, sizeof(*ix));
    for (size_t i = 0; i < n; i++)
        ix[i] = i;
    qsort_r(ix, n, sizeof(*ix), copy_index_order, v);
    struct store_account_message *tmp = xcalloc(n, sizeof(*tmp));
    for (size_t i = 0; i < n; i++)
        tmp[i] = v[ix[i]];
    memcpy(v, tmp, n * sizeof(*v));
    free(tmp);
    free(ix);
}

static int view_load(struct jmap_req *r, struct jmap_view *v, uint64_t st, struct buf *err)
{
    view_clear(v);
    if (jmap_account_messages(r, NULL, 0, &v->copies, &v->n_copies, err) != 0)
        return -1;
    if (v->n_copies > 1) /* NULL for an empty account: qsort's argument must not be */
        copies_sort(v->copies, v->n_copies);
    v->user = xstrdup(r->view_key.data); /* a shared account's view: only what login may read */
    v->state = st;
    view_index(v);
    return 0;
}

/*
 * The common change (flags, keywords: a message read, flagged) leaves every
 * body with the same copies in the same mailboxes, threads, dates and
 * arrival: then the copies read again (fresh, by copy_order) replace the
 * view's in place and no index moves. False, and v untouched, otherwise
 * (a copy new, gone or moved). On true, fresh's strings belong to v.
 */
static bool patch_in_place(struct jmap_view *v, const char (*bodies)[65], size_t nb,
                           struct store_account_message *fresh, size_t nfresh)
{
    size_t f = 0;
    for (size_t i = 0; i < nb; i++) {
        const struct jmap_view_email *e = email_of(v, bodies[i]);
        if (e == NULL)
            return false;
        for (size_t k = 0; k < e->n; k++, f++) {
            const struct store_account_message *o = &e->c[k], *x = &fresh[f];
            if (f >= nfresh || strcmp(x->m.blob, o->m.blob) != 0 ||
                x->mailbox_id != o->mailbox_id || x->thread != o->thread ||
                x->m.internaldate != o->m.internaldate || x->created_state != o->created_state)
                return false;
        }
    }
    if (f != nfresh)
        return false;
    f = 0;
    for (size_t i = 0; i < nb; i++) {
        struct jmap_view_email *e = email_of(v, bodies[i]);
        for (size_t k = 0; k < e->n; k++, f++) {
            struct store_account_message *o = &v->copies[&e->c[k] - v->copies];
            free(o->m.keywords);
            free(o->m.structure);
            *o = fresh[f];
        }
    }
    return true;
}

/* Brings v (of r's user) from its state to st; 1 when the whole account must be read. */
static int view_patch(struct jmap_req *r, struct jmap_view *v, uint64_t st, struct buf *err)
{
    struct store_account_gone g;
    if (store_account_gone(r->j->store, r->user, v->state, &g, err) != 0)
        return -1;
    struct store_account_message *ch = NULL, *fresh = NULL;
    size_t nch = 0, nfresh = 0;
    char(*bodies)[65] = NULL;
    int rc = 1;
    if (g.n_mailboxes > 0 || g.n_blobs > VIEW_PATCH_MAX)
        goto out;
    if (jmap_account_messages(r, NULL, v->state, &ch, &nch, err) != 0) {
        rc = -1;
        goto out;
    }
    if (nch + g.n_blobs > VIEW_PATCH_MAX)
        goto out;
    /* the bodies to read again: changed or left */
    size_t nb = 0;
    bodies = xcalloc(nch + g.n_blobs + 1, sizeof(*bodies));
    for (size_t i = 0; i < nch; i++)
        memcpy(bodies[nb++], ch[i].m.blob, 65);
    for (size_t i = 0; i < g.n_blobs; i++)
        memcpy(bodies[nb++], g.blobs[i], 65);
    if (nb > 1)
        qsort(bodies, nb, sizeof(*bodies), hash_order);
    size_t u = 0;
    for (size_t i = 0; i < nb; i++)
        if (u == 0 || strcmp(bodies[u - 1], bodies[i]) != 0)
            memmove(bodies[u++], bodies[i], 65);
    nb = u;
    for (size_t i = 0; i < nb; i++) {
        struct store_account_message *c = NULL;
        size_t n = 0;
        if (jmap_account_messages(r, bodies[i], 0, &c, &n, err) != 0) {
            rc = -1;
            goto out;
        }
        fresh = xreallocarray(fresh, nfresh + n + 1, sizeof(*fresh));
        if (n)
            memcpy(&fresh[nfresh], c, n * sizeof(*c));
        nfresh += n;
        free(c); /* its strings now belong to fresh */
    }
    if (nfresh > 1)
        qsort(fresh, nfresh, sizeof(*fresh), copy_order);
    /* only new bodies and nothing gone: the change added Emails and touched no other */
    bool grown = g.n_blobs == 0;
    for (size_t i = 0; i < nb && grown; i++)
        grown = email_of(v, bodies[i]) == NULL;
    uint64_t from = v->state;
    free(v->grown);
    v->grown = NULL;
    v->n_grown = 0;
    v->grown_from = 0;
    if (patch_in_place(v, bodies, nb, fresh, nfresh)) {
        free(fresh);
        fresh = NULL;
        nfresh = 0;
        v->state = st;
        rc = 0;
        goto out;
    }
    /* merge: the view's copies of other bodies, and the bodies read again; the old
     * Emails and indexes stay until view_reindex has read their order */
    struct view_before before = {v->emails,  v->n_emails,   v->n_copies,      v->by_thread,
                                 v->by_date, v->by_mailbox, v->by_mailbox_id, NULL};
    v->emails = NULL;
    v->by_thread = v->by_date = v->by_mailbox = NULL;
    v->by_mailbox_id = NULL;
    struct store_account_message *out = xcalloc(v->n_copies + nfresh + 1, sizeof(*out));
    size_t no = 0, f = 0;
    for (size_t i = 0; i < v->n_copies; i++) {
        struct store_account_message *c = &v->copies[i];
        if (nb && bsearch(c->m.blob, bodies, nb, sizeof(*bodies), hash_order)) {
            free(c->m.keywords);
            free(c->m.structure);
            continue;
        }
        while (f < nfresh && copy_order(&fresh[f], c) < 0)
            out[no++] = fresh[f++];
        out[no++] = *c;
    }
    while (f < nfresh)
        out[no++] = fresh[f++];
    struct store_account_message *was = v->copies; /* the old Emails point into it */
    free(fresh);
    fresh = NULL;
    nfresh = 0;
    v->copies = out;
    v->n_copies = no;
    v->state = st;
    view_reindex(v, &before, (const char(*)[65])bodies, nb);
    view_before_free(&before);
    free(was);
    if (grown && nb > 0) {
        v->grown_from = from;
        v->grown = bodies;
        v->n_grown = nb;
        bodies = NULL;
    }
    rc = 0;
out:
    store_account_messages_free(fresh, nfresh);
    store_account_messages_free(ch, nch);
    store_account_gone_free(&g);
    free(bodies);
    return rc;
}

const struct jmap_view *jmap_view_get(struct jmap_req *r, uint64_t st, json_t **err_r)
{
    if (r->j->view == NULL)
        r->j->view = xcalloc(1, sizeof(*r->j->view));
    struct jmap_view *v = &r->j->view->v;
    struct buf err = BUF_INIT;
    int rc = 1;
    if (v->user && strcmp(v->user, r->view_key.data) == 0) {
        if (v->state == st)
            return v;
        if (v->state < st)
            rc = view_patch(r, v, st, &err);
    }
    if (rc == 1)
        rc = view_load(r, v, st, &err);
    if (rc != 0) {
        view_clear(v);
        *err_r = jmap_server_fail("account view", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    return v;
}

size_t jmap_view_thread(const struct jmap_view *v, int64_t thread, size_t *n_r)
{
    size_t lo = 0, hi = v->n_emails;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->by_thread[mid]->c[0].thread < thread)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < v->n_emails && v->by_thread[end]->c[0].thread == thread)
        end++;
    *n_r = end - lo;
    return lo;
}

void jmap_view_release(struct jmap *j)
{
    if (j->view)
        view_clear(&j->view->v);
    free(j->view);
    j->view = NULL;
}
