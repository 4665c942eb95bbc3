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

static int by_thread_order(const void *a, const void *b)
{
    const struct jmap_view_email *x = *(const struct jmap_view_email *const *)a,
                                 *y = *(const struct jmap_view_email *const *)b;
    if (x->c[0].thread != y->c[0].thread)
        return x->c[0].thread < y->c[0].thread ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void view_clear(struct jmap_view *v)
{
    free(v->user);
    store_account_messages_free(v->copies, v->n_copies);
    free(v->emails);
    free(v->by_thread);
    memset(v, 0, sizeof(*v));
}

/* The Emails and the thread index of v->copies (sorted by copy_order). */
static void view_index(struct jmap_view *v)
{
    free(v->emails);
    free(v->by_thread);
    v->emails = xcalloc(v->n_copies ? v->n_copies : 1, sizeof(*v->emails));
    size_t ne = 0;
    for (size_t i = 0; i < v->n_copies; i++) {
        if (ne && strcmp(v->emails[ne - 1].c[0].m.blob, v->copies[i].m.blob) == 0)
            v->emails[ne - 1].n++;
        else
            v->emails[ne++] = (struct jmap_view_email){.c = &v->copies[i], .n = 1};
    }
    v->n_emails = ne;
    v->by_thread = xcalloc(ne ? ne : 1, sizeof(*v->by_thread));
    for (size_t i = 0; i < ne; i++)
        v->by_thread[i] = &v->emails[i];
    if (ne > 1)
        qsort(v->by_thread, ne, sizeof(*v->by_thread), by_thread_order);
}

static int view_load(struct jmap_req *r, struct jmap_view *v, uint64_t st, struct buf *err)
{
    view_clear(v);
    if (store_account_messages(r->j->store, r->user, NULL, 0, false, &v->copies, &v->n_copies,
                               err) != 0)
        return -1;
    if (v->n_copies > 1) /* NULL for an empty account: qsort's argument must not be */
        qsort(v->copies, v->n_copies, sizeof(*v->copies), copy_order);
    v->user = xstrdup(r->user);
    v->state = st;
    view_index(v);
    return 0;
}

static int hash_order(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
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
    if (store_account_messages(r->j->store, r->user, NULL, v->state, false, &ch, &nch, err) != 0) {
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
        if (store_account_messages(r->j->store, r->user, bodies[i], 0, false, &c, &n, err) != 0) {
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
    /* merge: the view's copies of other bodies, and the bodies read again */
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
    free(v->copies);
    free(fresh);
    fresh = NULL;
    nfresh = 0;
    v->copies = out;
    v->n_copies = no;
    v->state = st;
    view_index(v);
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
    if (v->user && strcmp(v->user, r->user) == 0) {
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
