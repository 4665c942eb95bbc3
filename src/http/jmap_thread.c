/*
 * jmap_thread.c - Thread/get and Thread/changes (RFC 8621 3).
 *
 * A thread is what the store assigned (store_account_message.thread,
 * src/store/sqlite/sq_thread.c): messages linked by In-Reply-To/References
 * with the same base subject. Thread "t" + the store's id; its emailIds are
 * the Emails (bodies) of the account in it, oldest receivedAt first.
 * Never changes anything, never names another account's Emails.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Copies by thread, then receivedAt, then arrival in the account (receivedAt is in whole
 * seconds: a reply often shares its parent's), then body. */
static int thread_order(const void *a, const void *b)
{
    const struct store_account_message *x = a, *y = b;
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    if (x->m.internaldate != y->m.internaldate)
        return x->m.internaldate < y->m.internaldate ? -1 : 1;
    if (x->created_state != y->created_state)
        return x->created_state < y->created_state ? -1 : 1;
    return strcmp(x->m.blob, y->m.blob);
}

/* Every copy of the account, sorted by thread_order; false with *err_r. */
static bool load(struct jmap_req *r, struct store_account_message **v_r, size_t *n_r,
                 json_t **err_r)
{
    struct buf err = BUF_INIT;
    if (jmap_account_messages(r, NULL, 0, v_r, n_r, &err) != 0) {
        *err_r = jmap_server_fail("threads", &err);
        buf_free(&err);
        return false;
    }
    buf_free(&err);
    if (*n_r > 1)
        qsort(*v_r, *n_r, sizeof(**v_r), thread_order);
    return true;
}

/* The first copy of thread t in v (sorted), n when none. */
static size_t thread_first(const struct store_account_message *v, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid].thread < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].thread == t ? lo : n;
}

static int int64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The thread ids asked for, parsed (the malformed left out) and sorted, into *want_r
 * (freed by the caller); how many. */
static size_t wanted_threads(json_t *ids, int64_t **want_r)
{
    size_t nw = 0, i;
    int64_t *want = xcalloc(json_array_size(ids) + 1, sizeof(*want));
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        int64_t t = jmap_thread_id_parse(json_string_value(id));
        if (t > 0)
            want[nw++] = t;
    }
    if (nw > 1)
        qsort(want, nw, sizeof(*want), int64_cmp);
    *want_r = want;
    return nw;
}

/* The copies in cold of the threads ids names, by thread_order, into *v_r (shallow: only
 * thread, date, arrival and body are read); how many. */
static size_t cold_threads(const struct jmap_cold *cold, json_t *ids,
                           struct store_account_message **v_r)
{
    size_t n = 0, cap = 0;
    int64_t *want;
    size_t nw = wanted_threads(ids, &want);
    struct store_account_message *v = NULL;
    for (size_t c = 0; c < cold->n_copies && nw > 0; c++) {
        const struct jmap_cold_copy *x = &cold->copies[c];
        if (bsearch(&x->thread, want, nw, sizeof(*want), int64_cmp) == NULL)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        struct store_account_message *a = &v[n++];
        memset(a, 0, sizeof(*a));
        a->thread = x->thread;
        a->mailbox_id = x->mailbox_id;
        a->created_state = x->created_state;
        a->m.internaldate = x->date;
        memcpy(a->m.blob, cold->blobs[c], 65);
    }
    free(want);
    if (n > 1)
        qsort(v, n, sizeof(*v), thread_order);
    *v_r = v;
    return n;
}

/* At most this many threads asked for are read one by one from the store's thread index. */
#define THREAD_INDEX_MAX 256

struct copies {
    struct store_account_message *v;
    size_t n;
};

static bool thread_row(void *ctx, const struct store_account_message *a)
{
    struct copies *c = ctx;
    c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
    c->v[c->n] = *a;
    c->v[c->n++].m.keywords = NULL; /* shallow, as cold_threads: thread, date, arrival, body */
    return true;
}

/* cold_threads' copies from the store's thread index, each thread asked for read alone (a
 * worker keeping no account: a first page's threads without reading the account); how
 * many, or SIZE_MAX on trouble (err). */
static size_t index_threads(struct jmap_req *r, json_t *ids, struct store_account_message **v_r,
                            struct buf *err)
{
    size_t i;
    int64_t *want;
    size_t nw = wanted_threads(ids, &want);
    struct copies c = {NULL, 0};
    for (i = 0; i < nw; i++) {
        if (i > 0 && want[i] == want[i - 1])
            continue;
        struct store_dates_ask ask = {STORE_DATES_THREAD, r->user, want[i], false, NULL, 0};
        if (store_dates(r->j->store, &ask, thread_row, &c, err) != 0) {
            free(want);
            free(c.v);
            return SIZE_MAX;
        }
    }
    free(want);
    if (c.n > 1)
        qsort(c.v, c.n, sizeof(*c.v), thread_order);
    *v_r = c.v;
    return c.n;
}

json_t *jmap_thread_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *ids, *props;
    if (!jmap_check_account(r, args, err_r) || !jmap_get_ids(r, args, &ids, err_r) ||
        !jmap_get_properties(args, &props, err_r))
        return NULL;
    if (ids == NULL) {
        *err_r = jmap_error("requestTooLarge", "give the thread ids");
        return NULL;
    }
    uint64_t st;
    if (!jmap_state_now(r, &st, err_r))
        return NULL;
    /* a cold worker (no view kept): the copies of the threads asked for, from the cold
     * account, in one pass */
    bool by_index = r->acl == NULL && json_array_size(ids) <= THREAD_INDEX_MAX &&
                    !jmap_view_held(r->j, r->view_key.data) &&
                    jmap_cold_kept(r->j, r->view_key.data, st) == NULL;
    const struct jmap_cold *cold = NULL;
    if (!by_index && (cold = jmap_cold_get(r, st, err_r)) == NULL && *err_r)
        return NULL;
    const struct jmap_view *v = cold || by_index ? NULL : jmap_view_get(r, st, err_r);
    if (v == NULL && cold == NULL && !by_index)
        return NULL;
    struct store_account_message *cc = NULL; /* cold: those copies, by thread_order */
    size_t ncc = 0;
    if (cold)
        ncc = cold_threads(cold, ids, &cc);
    else if (by_index) {
        struct buf err = BUF_INIT;
        ncc = index_threads(r, ids, &cc, &err);
        if (ncc == SIZE_MAX) {
            *err_r = jmap_server_fail("threads", &err);
            buf_free(&err);
            return NULL;
        }
        buf_free(&err);
        r->j->stats.index_answers++;
        jmap_view_build(r, st);
    }
    char sts[32];
    jmap_state_string(st, sts);
    json_t *list = json_array(), *not_found = json_array();
    struct store_account_message *tc = NULL; /* the thread's copies, by thread_order */
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        int64_t t = jmap_thread_id_parse(json_string_value(id));
        size_t n = 0;
        if ((cold || by_index) && t > 0) {
            size_t k = thread_first(cc, ncc, t);
            while (k + n < ncc && cc[k + n].thread == t)
                n++;
            tc = xreallocarray(tc, n + 1, sizeof(*tc));
            if (n)
                memcpy(tc, &cc[k], n * sizeof(*tc));
        } else if (t > 0) {
            size_t ne = 0, k = jmap_view_thread(v, t, &ne);
            for (size_t x = k; x < k + ne; x++)
                n += v->by_thread[x]->n;
            tc = xreallocarray(tc, n + 1, sizeof(*tc));
            n = 0;
            for (size_t x = k; x < k + ne; x++)
                for (size_t y = 0; y < v->by_thread[x]->n; y++)
                    tc[n++] = v->by_thread[x]->c[y]; /* shallow: the view owns the strings */
        }
        if (n == 0) {
            json_array_append(not_found, id);
            continue;
        }
        if (n > 1)
            qsort(tc, n, sizeof(*tc), thread_order);
        json_t *emails = json_array();
        const char *last = "";
        for (size_t k = 0; k < n; k++) {
            if (strcmp(tc[k].m.blob, last) == 0)
                continue; /* another copy of the same Email */
            char eid[70];
            snprintf(eid, sizeof(eid), "e%s", tc[k].m.blob);
            bool seen = false; /* copies of one body sort together unless dates differ */
            size_t j;
            json_t *x;
            json_array_foreach(emails, j, x) seen = seen || strcmp(json_string_value(x), eid) == 0;
            if (!seen)
                json_array_append_new(emails, json_string(eid));
            last = tc[k].m.blob;
        }
        json_t *o = json_pack("{s:O, s:o}", "id", id, "emailIds", emails);
        json_array_append_new(list, o);
    }
    free(tc);
    free(cc);
    return jmap_get_result(r, json_string(sts), list, not_found);
}

/*
 * A thread changed when one of its copies did (created, flagged, moved in),
 * or one left it (threads_touched): created when every copy it has now came
 * after since and none left it, destroyed when one left and none is there.
 */
json_t *jmap_thread_changes(struct jmap_req *r, json_t *args, json_t **err_r)
{
    uint64_t since, current;
    size_t max;
    if (!jmap_changes_args(r, args, &since, &max, &current, err_r))
        return NULL;
    struct store_account_message *v = NULL;
    size_t n = 0;
    if (!load(r, &v, &n, err_r))
        return NULL;
    struct store_account_gone g;
    struct buf err = BUF_INIT;
    if (store_account_gone(r->j->store, r->user, since, &g, &err) != 0) {
        store_account_messages_free(v, n);
        *err_r = jmap_server_fail("thread changes", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    struct jmap_change *c = xcalloc(n + g.n_threads + 1, sizeof(*c));
    size_t nc = 0;
    for (size_t i = 0; i < n;) {
        int64_t t = v[i].thread;
        uint64_t top = 0, created = UINT64_MAX;
        for (; i < n && v[i].thread == t; i++) {
            if (v[i].state > top)
                top = v[i].state;
            if (v[i].created_state < created)
                created = v[i].created_state;
        }
        bool touched = false;
        for (size_t k = 0; k < g.n_threads; k++)
            if (g.threads[k] == t) {
                touched = true;
                if (g.thread_states[k] > top)
                    top = g.thread_states[k];
            }
        if (top <= since)
            continue;
        jmap_thread_id(t, c[nc].id);
        c[nc].state = top;
        c[nc++].kind = created > since && !touched ? JMAP_CREATED : JMAP_UPDATED;
    }
    for (size_t k = 0; k < g.n_threads; k++) {
        if (thread_first(v, n, g.threads[k]) != n)
            continue;
        jmap_thread_id(g.threads[k], c[nc].id);
        c[nc].state = g.thread_states[k];
        c[nc++].kind = JMAP_DESTROYED;
    }
    json_t *res = jmap_changes_result(r, c, nc, since, max, current);
    free(c);
    store_account_gone_free(&g);
    store_account_messages_free(v, n);
    return res;
}
