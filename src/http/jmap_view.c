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
 * A view no request asked for in the worker's jmap_cache_idle is dropped
 * (jmap_view_release_idle, from the worker's one timer): a quiet worker
 * does not hold a big account's copies and indexes for hours, and the
 * next request reads it afresh, as after a change too large to patch.
 * While the account has a push stream open in the worker it stays: that
 * client is still there.
 *
 * Never changes the store; never holds more than one account.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/offload.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* More bodies changed than this since the view's state: read the whole account. */
#define VIEW_PATCH_MAX 2000
/* The room for copies a change appends (copies_room), at least: a delivery's few. */
#define VIEW_ROOM_MIN 256

struct jmap_view_cache {
    struct jmap_view v;
    struct jmap_cold cold; /* while v holds no account: a cold one (jmap_cold_get) */
    int64_t used_ms;       /* when a request last asked for it (monotonic_ms) */
};

/* The order of copies, for the view and the cold read alike: by body hash, then
 * mailbox, then (two copies in one mailbox) the lower UID first, whatever order they
 * came in. An Email's first copy in this order gives its date, keywords and thread. */
static int copy_cmp(const char *blob_x, int64_t mailbox_x, uint32_t uid_x, const char *blob_y,
                    int64_t mailbox_y, uint32_t uid_y)
{
    int c = strcmp(blob_x, blob_y);
    if (c)
        return c;
    if (mailbox_x != mailbox_y)
        return mailbox_x < mailbox_y ? -1 : 1;
    return uid_x < uid_y ? -1 : uid_x > uid_y;
}

static int copy_order(const void *a, const void *b)
{
    const struct store_account_message *x = a, *y = b;
    return copy_cmp(x->m.blob, x->mailbox_id, x->m.uid, y->m.blob, y->mailbox_id, y->m.uid);
}

/* The sort keys' order (struct copy_key's h): 0 when they cannot tell. */
static int hash_prefix_cmp(const uint64_t x[2], const uint64_t y[2])
{
    for (int k = 0; k < 2; k++)
        if (x[k] != y[k])
            return x[k] < y[k] ? -1 : 1;
    return 0;
}

static void view_clear(struct jmap_view *v)
{
    free(v->user);
    store_account_messages_free(v->copies, v->copies_used);
    free(v->emails);
    free(v->by_thread);
    free(v->by_date);
    free(v->by_mailbox);
    free(v->by_mailbox_id);
    free(v->grown);
    memset(v, 0, sizeof(*v));
}

static void cold_clear(struct jmap_cold *c)
{
    free(c->user);
    for (size_t i = 0; i < c->n_copies; i++)
        free(c->copies[i].keywords);
    free(c->copies);
    free(c->blobs);
    free(c->order);
    free(c->emails);
    memset(c, 0, sizeof(*c));
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

/* The Email of body hash among the n Emails e (body order), or NULL. */
static struct jmap_view_email *email_in(struct jmap_view_email *e, size_t n, const char *hash)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(e[mid].c[0].m.blob, hash);
        if (c == 0)
            return &e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The Email of body hash in v, or NULL. */
static struct jmap_view_email *email_of(struct jmap_view *v, const char *hash)
{
    return email_in(v->emails, v->n_emails, hash);
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
 * The indexes of v (its Emails changed for the nb bodies only; b->moved
 * filled) from those before, without sorting the account again: an Email
 * whose body was not read again keeps its keys, so the old order of the
 * others, renumbered, is still sorted; the few Emails read again are sorted
 * and merged in. A delivery to 100,000 messages costs a walk, not three sorts.
 */
static void view_reindex(struct jmap_view *v, struct view_before *b, const char (*bodies)[65],
                         size_t nb)
{
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

/*
 * A copy's place in copy_order, as a sort key held in the entry: the first
 * 16 bytes of its body's hash, big-endian (so that comparing them as numbers
 * compares the strings), and the copy's index. Sorting 100,000 copies
 * through their index, each comparison read two copies ~170 bytes apart in
 * a 17 MB array, a cache miss at almost every step; entries equal in both
 * words (copies of one body, or a rare shared prefix) fall back to
 * copy_order.
 */
struct copy_key {
    uint64_t h[2];
    size_t i;
};

static uint64_t be64(const char *p)
{
    uint64_t x = 0;
    for (int k = 0; k < 8; k++)
        x = x << 8 | (unsigned char)p[k];
    return x;
}

static int copy_key_order(const void *a, const void *b, void *arg)
{
    const struct copy_key *x = a, *y = b;
    const struct store_account_message *v = arg;
    int c = hash_prefix_cmp(x->h, y->h);
    return c ? c : copy_order(&v[x->i], &v[y->i]);
}

/* The slots of an array of n live copies: a quarter more for the copies the
 * next changes append (a delivery's), so that they seldom move the array. */
size_t jmap_view_copies_room(size_t n)
{
    return n + n / 4 + VIEW_ROOM_MIN;
}

/* v->copies (with room) from the n copies c (taken over), sorted by
 * copy_order through keys (struct copy_key): a copy is ~170 bytes, which
 * the sort would otherwise move about a million times for 100,000 of them.
 * The copies then move once each, in place (cycles of the permutation):
 * a second 17 MB array would cost its copy and its page faults. */
static void copies_sorted(struct jmap_view *v, struct store_account_message *c, size_t n)
{
    struct copy_key *ix = xcalloc(n + 1, sizeof(*ix));
    for (size_t i = 0; i < n; i++) /* blob[65]: 16 bytes and more, NUL-padded */
        ix[i] = (struct copy_key){{be64(c[i].m.blob), be64(c[i].m.blob + 8)}, i};
    if (n > 1) /* NULL for an empty account: qsort's argument must not be */
        qsort_r(ix, n, sizeof(*ix), copy_key_order, c);
    /* copy ix[j].i goes to j; SIZE_MAX: j done */
    for (size_t s = 0; s < n; s++) {
        if (ix[s].i == SIZE_MAX)
            continue;
        struct store_account_message first = c[s];
        size_t j = s;
        while (ix[j].i != s) {
            size_t from = ix[j].i;
            c[j] = c[from];
            ix[j].i = SIZE_MAX;
            j = from;
        }
        c[j] = first;
        ix[j].i = SIZE_MAX;
    }
    free(ix);
    v->copies_cap = jmap_view_copies_room(n);
    v->copies = xreallocarray(c, v->copies_cap, sizeof(*c)); /* the room: not touched yet */
    v->n_copies = v->copies_used = n;
}

static int view_load(struct jmap_req *r, struct jmap_view *v, uint64_t st, struct buf *err)
{
    view_clear(v);
    struct store_account_message *c = NULL;
    size_t n = 0;
    if (jmap_account_messages(r, NULL, 0, &c, &n, err) != 0)
        return -1;
    copies_sorted(v, c, n);
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

/*
 * The Emails of v after a change to the nb bodies (sorted), whose copies
 * were read again into fresh (by copy_order): the copies the bodies had
 * leave their slots (strings freed), fresh's are appended after the last
 * used slot, and the new Emails (b's not read again, and fresh's runs) are
 * merged in body order into v->emails, b->moved telling where each of b's
 * went. Only when the array is full do the live copies move, to one with
 * room (jmap_view_copies_room): a delivery to 100,000 messages copies its
 * own copies, not the account's 17 MB. The number of live copies.
 */
static size_t view_append(struct jmap_req *r, struct jmap_view *v, struct view_before *b,
                          const char (*bodies)[65], size_t nb, struct store_account_message *fresh,
                          size_t nfresh)
{
    /* the Emails whose bodies were read again (b->moved SIZE_MAX), found by
     * body: not a search of the bodies for each of the account's Emails */
    b->moved = xcalloc(b->n_emails + 1, sizeof(*b->moved));
    size_t gone = 0;
    for (size_t i = 0; i < nb; i++) {
        const struct jmap_view_email *e = email_in(b->emails, b->n_emails, bodies[i]);
        if (e == NULL)
            continue;
        b->moved[e - b->emails] = SIZE_MAX;
        for (size_t k = 0; k < e->n; k++) {
            struct store_account_message *o = &v->copies[&e->c[k] - v->copies];
            free(o->m.keywords);
            free(o->m.structure);
            o->m.keywords = NULL; /* an empty slot: nothing for view_clear to free */
            o->m.structure = NULL;
        }
        gone += e->n;
    }
    size_t live = b->n_copies - gone + nfresh;
    struct store_account_message *was = NULL, *to = v->copies;
    size_t at = v->copies_used;
    if (at + nfresh > v->copies_cap) { /* full: the live copies move */
        r->j->stats.view_moves++;
        was = v->copies;
        v->copies_cap = jmap_view_copies_room(live);
        to = xcalloc(v->copies_cap, sizeof(*to));
        at = 0;
    }
    struct jmap_view_email *ne = xcalloc(b->n_emails + nfresh + 1, sizeof(*ne));
    size_t n = 0, f = 0;
    for (size_t i = 0;; i++) {
        const struct jmap_view_email *o = i < b->n_emails ? &b->emails[i] : NULL;
        /* fresh's Emails before this one (a body read again sorts before the next) */
        while (f < nfresh && (o == NULL || strcmp(fresh[f].m.blob, o->c[0].m.blob) <= 0)) {
            size_t run = 1;
            while (f + run < nfresh && strcmp(fresh[f + run].m.blob, fresh[f].m.blob) == 0)
                run++;
            memcpy(&to[at], &fresh[f], run * sizeof(*to));
            ne[n++] = (struct jmap_view_email){.c = &to[at], .n = run};
            at += run;
            f += run;
        }
        if (o == NULL)
            break;
        if (b->moved[i] == SIZE_MAX)
            continue;
        const struct store_account_message *c = o->c;
        if (was) {
            memcpy(&to[at], o->c, o->n * sizeof(*to));
            c = &to[at];
            at += o->n;
        }
        b->moved[i] = n;
        ne[n++] = (struct jmap_view_email){.c = c, .n = o->n};
    }
    free(was); /* its live copies' strings moved to "to"; b's Emails are not read through it */
    v->copies = to;
    v->copies_used = at;
    v->emails = ne;
    v->n_emails = n;
    return live;
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
        r->j->stats.view_in_place++;
        free(fresh);
        fresh = NULL;
        nfresh = 0;
        v->state = st;
        rc = 0;
        goto out;
    }
    struct view_before before = {v->emails,  v->n_emails,   v->n_copies,      v->by_thread,
                                 v->by_date, v->by_mailbox, v->by_mailbox_id, NULL};
    v->emails = NULL;
    v->by_thread = v->by_date = v->by_mailbox = NULL;
    v->by_mailbox_id = NULL;
    v->n_copies = view_append(r, v, &before, (const char(*)[65])bodies, nb, fresh, nfresh);
    free(fresh); /* its strings now belong to v */
    fresh = NULL;
    nfresh = 0;
    v->state = st;
    view_reindex(v, &before, (const char(*)[65])bodies, nb);
    view_before_free(&before);
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
    jmap_view_build_take(r->j, r->view_key.data); /* being read: wait, not read it again */
    struct jmap_view *v = &r->j->view->v;
    r->j->view->used_ms = monotonic_ms();
    struct buf err = BUF_INIT;
    int rc = 1;
    if (v->user && strcmp(v->user, r->view_key.data) == 0) {
        if (v->state == st)
            return v;
        if (v->state < st && (rc = view_patch(r, v, st, &err)) == 0)
            r->j->stats.view_patches++;
    }
    if (rc == 1 && (rc = view_load(r, v, st, &err)) == 0) {
        r->j->stats.view_reads++;
        cold_clear(&r->j->view->cold);
    }
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

size_t jmap_view_kept(const struct jmap *j)
{
    return j->view != NULL && (j->view->v.user != NULL || j->view->cold.user != NULL);
}

bool jmap_view_held(const struct jmap *j, const char *key)
{
    return j->view != NULL && j->view->v.user != NULL && strcmp(j->view->v.user, key) == 0;
}

static void cold_row(void *ctx, const struct store_account_message *a)
{
    struct jmap_cold *c = ctx;
    if (c->n_copies == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->copies = xreallocarray(c->copies, c->cap, sizeof(*c->copies));
        c->blobs = xreallocarray(c->blobs, c->cap, sizeof(*c->blobs));
    }
    memcpy(c->blobs[c->n_copies], a->m.blob, 65);
    c->copies[c->n_copies++] = (struct jmap_cold_copy){
        .h = {be64(a->m.blob), be64(a->m.blob + 8)},
        .mailbox_id = a->mailbox_id,
        .thread = a->thread,
        .date = a->m.internaldate,
        .created_state = a->created_state,
        .keywords = a->m.keywords ? xstrdup(a->m.keywords) : NULL,
        .flags = a->m.flags,
        .uid = a->m.uid,
    };
}

/* copy_order on the cold copies, through keys that hold the hash's first 16 bytes:
 * comparing through the copies, all over 6 MB, missed the cache at each step */
static int cold_copy_order(const void *a, const void *b, void *arg)
{
    const struct jmap_cold *c = arg;
    const struct copy_key *p = a, *q = b;
    int d = hash_prefix_cmp(p->h, q->h);
    if (d)
        return d;
    const struct jmap_cold_copy *x = &c->copies[p->i], *y = &c->copies[q->i];
    return copy_cmp(c->blobs[p->i], x->mailbox_id, x->uid, c->blobs[q->i], y->mailbox_id, y->uid);
}

static int cold_load(struct jmap_req *r, struct jmap_cold *c, uint64_t st, struct buf *err)
{
    cold_clear(c);
    /* sized from the mailboxes' counts: growing 13 MB of arrays by doubling copied and
     * faulted in their pages twice over (a count off by a racing delivery still grows) */
    struct store_mailbox *mb = NULL;
    size_t nmb = 0;
    if (store_mailbox_list(r->j->store, r->user, &mb, &nmb, err) != 0)
        return -1;
    for (size_t i = 0; i < nmb; i++)
        c->cap += mb[i].messages;
    store_mailbox_list_free(mb, nmb);
    c->cap += 64;
    c->copies = xreallocarray(NULL, c->cap, sizeof(*c->copies));
    c->blobs = xreallocarray(NULL, c->cap, sizeof(*c->blobs));
    if (store_account_dates(r->j->store, r->user, cold_row, c, err) != 0)
        return -1;
    size_t n = c->n_copies;
    struct copy_key *k = xcalloc(n + 1, sizeof(*k));
    for (size_t i = 0; i < n; i++)
        k[i] = (struct copy_key){{c->copies[i].h[0], c->copies[i].h[1]}, i};
    if (n > 1)
        qsort_r(k, n, sizeof(*k), cold_copy_order, c);
    c->order = xcalloc(n + 1, sizeof(*c->order));
    c->emails = xcalloc(n + 1, sizeof(*c->emails));
    for (size_t i = 0; i < n; i++) {
        c->order[i] = (uint32_t)k[i].i;
        struct jmap_cold_email *e = c->n_emails ? &c->emails[c->n_emails - 1] : NULL;
        if (e && k[i].h[0] == e->h[0] && k[i].h[1] == e->h[1] &&
            strcmp(c->blobs[e->copy], c->blobs[k[i].i]) == 0) {
            e->n++;
            continue;
        }
        const struct jmap_cold_copy *x = &c->copies[k[i].i];
        c->emails[c->n_emails++] = (struct jmap_cold_email){
            .date = x->date,
            .thread = x->thread,
            .mailbox_id = x->mailbox_id,
            .created_state = x->created_state,
            .h = {x->h[0], x->h[1]},
            .keywords = x->keywords,
            .flags = x->flags,
            .copy = (uint32_t)k[i].i,
            .first = (uint32_t)i,
            .n = 1,
        };
    }
    free(k);
    c->user = xstrdup(r->view_key.data);
    c->state = st;
    return 0;
}

const struct jmap_cold *jmap_cold_kept(const struct jmap *j, const char *key, uint64_t st)
{
    const struct jmap_cold *c = j->view ? &j->view->cold : NULL;
    return c && c->user && c->state == st && strcmp(c->user, key) == 0 ? c : NULL;
}

const struct jmap_cold *jmap_cold_get(struct jmap_req *r, uint64_t st, json_t **err_r)
{
    *err_r = NULL;
    /* a shared account: the store's rows are not filtered by login's rights */
    if (r->acl != NULL)
        return NULL;
    jmap_view_build_take(r->j, r->view_key.data); /* being read: wait for it, the view */
    if (jmap_view_held(r->j, r->view_key.data))
        return NULL;
    struct jmap_view_cache *vc = r->j->view;
    if (vc && vc->cold.user && strcmp(vc->cold.user, r->view_key.data) == 0) {
        if (vc->cold.state != st) /* changed since: the view, which later changes patch */
            return NULL;
        vc->used_ms = monotonic_ms();
        return &vc->cold;
    }
    if (vc == NULL)
        vc = r->j->view = xcalloc(1, sizeof(*r->j->view));
    view_clear(&vc->v); /* another account's: one account per worker */
    vc->used_ms = monotonic_ms();
    struct buf err = BUF_INIT;
    if (cold_load(r, &vc->cold, st, &err) != 0) {
        cold_clear(&vc->cold);
        *err_r = jmap_server_fail("account", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    r->j->stats.cold_reads++;
    return &vc->cold;
}

int64_t jmap_view_release_idle(struct jmap *j, int64_t now_ms, int64_t cutoff_ms,
                               bool (*keep)(void *ctx, const char *user), void *ctx)
{
    const char *user = j->view ? (j->view->v.user ? j->view->v.user : j->view->cold.user) : NULL;
    if (user == NULL) {
        jmap_view_release(j);
        return -1;
    }
    if (j->view->used_ms <= cutoff_ms && keep != NULL && keep(ctx, user))
        j->view->used_ms = now_ms;
    if (j->view->used_ms > cutoff_ms)
        return j->view->used_ms;
    jmap_view_release(j);
    return -1;
}

void jmap_view_release(struct jmap *j)
{
    if (j->view) {
        view_clear(&j->view->v);
        cold_clear(&j->view->cold);
    }
    free(j->view);
    j->view = NULL;
}

/* ---- the view builder (jmap_builder_new) ---- */

/* The builder thread's nice value: the loop's answers go first. */
#define BUILDER_NICE 19

struct jmap_builder {
    struct offload *o;
    struct store *store; /* the thread's own connection */
    struct jmap *j;
    struct build_job *job;     /* submitted, its done not run yet: one at a time */
    struct build_job *pending; /* to submit once the request is answered (jmap_builder_start) */
    bool niced;                /* the thread's: its priority lowered */
    /* a request that needs the view being read waits for it (jmap_view_build_take)
     * rather than read the account a second time beside the thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

struct build_job {
    struct offload_job oj;
    char *owner, *key;
    struct jmap_view v; /* v.user: the view key; v.state: the state read before */
    struct buf err;
    bool failed;
    bool finished; /* under mu: run is over */
    bool taken;    /* a request took it before its done ran */
};

static void job_free(struct build_job *job)
{
    view_clear(&job->v);
    buf_free(&job->err);
    free(job->owner);
    free(job->key);
    free(job);
}

/* In the thread: the account's copies, sorted and indexed as view_load does. */
static void build_run(void *arg, struct offload_job *list)
{
    struct jmap_builder *b = arg;
    struct build_job *job = OFFLOAD_CONTAINER(list, struct build_job, oj);
    if (!b->niced) { /* behind the loop (and a browser on the same machine): it may wait */
        b->niced = true;
        if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BUILDER_NICE) != 0)
            log_warning("jmap: view builder priority: %m");
    }
    struct store_account_message *c = NULL;
    size_t n = 0;
    if (store_account_messages(b->store, job->owner, NULL, 0, false, &c, &n, &job->err) != 0)
        job->failed = true;
    else {
        char *user = job->v.user;
        uint64_t st = job->v.state;
        copies_sorted(&job->v, c, n);
        job->v.user = user;
        job->v.state = st;
        view_index(&job->v);
    }
    pthread_mutex_lock(&b->mu);
    job->finished = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* The finished job's view into j when it keeps no view and no other account's cold one
 * (the user's own cold one it replaces, as a view read by a request does). */
static void build_install(struct jmap *j, struct build_job *job)
{
    struct jmap_view_cache *vc = j->view;
    if (job->failed)
        log_warning("jmap: account view of %s: %s", job->owner, buf_cstr(&job->err));
    else if (vc == NULL || (vc->v.user == NULL &&
                            (vc->cold.user == NULL || strcmp(vc->cold.user, job->key) == 0))) {
        if (vc == NULL)
            vc = j->view = xcalloc(1, sizeof(*j->view));
        cold_clear(&vc->cold);
        vc->v = job->v;
        memset(&job->v, 0, sizeof(job->v));
        vc->used_ms = monotonic_ms();
        j->stats.view_builds++;
    }
    view_clear(&job->v);
}

void jmap_view_build_take(struct jmap *j, const char *key)
{
    struct jmap_builder *b = j->builder;
    if (b != NULL && b->pending != NULL && strcmp(b->pending->key, key) == 0) {
        job_free(b->pending); /* not started: this request reads the account itself */
        b->pending = NULL;
    }
    if (b == NULL || b->job == NULL || b->job->taken || strcmp(b->job->key, key) != 0)
        return;
    pthread_mutex_lock(&b->mu);
    while (!b->job->finished)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    b->job->taken = true;
    build_install(j, b->job);
}

/* In the loop: the job's view taken (unless a request took it already), the job freed. */
static void build_done(void *arg, struct offload_job *oj)
{
    struct jmap_builder *b = arg;
    struct build_job *job = OFFLOAD_CONTAINER(oj, struct build_job, oj);
    b->job = NULL;
    if (!job->taken)
        build_install(b->j, job);
    job_free(job);
}

struct jmap_builder *jmap_builder_new(struct event_base *base, struct jmap *j, struct store *store,
                                      struct buf *err)
{
    struct jmap_builder *b = xcalloc(1, sizeof(*b));
    b->store = store;
    b->j = j;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    struct offload_params p = {.name = "account view",
                               .threads = 1,
                               .max_queued = 1,
                               .run = build_run,
                               .done = build_done,
                               .arg = b};
    if ((b->o = offload_new(base, &p, err)) == NULL) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        free(b);
        return NULL;
    }
    return b;
}

void jmap_builder_free(struct jmap_builder *b)
{
    if (b == NULL)
        return;
    if (b->pending)
        job_free(b->pending);
    offload_free(b->o);
    store_close(b->store);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

void jmap_view_build(struct jmap_req *r, uint64_t st)
{
    struct jmap_builder *b = r->j->builder;
    if (b == NULL || b->job != NULL || b->pending != NULL || r->acl != NULL ||
        jmap_view_held(r->j, r->view_key.data))
        return;
    struct build_job *job = xcalloc(1, sizeof(*job));
    job->owner = xstrdup(r->user);
    job->key = xstrdup(r->view_key.data);
    job->v.user = xstrdup(r->view_key.data);
    job->v.state = st;
    buf_init(&job->err);
    b->pending = job;
}

void jmap_builder_start(struct jmap *j)
{
    struct jmap_builder *b = j->builder;
    if (b == NULL || b->pending == NULL)
        return;
    struct build_job *job = b->pending;
    b->pending = NULL;
    if (jmap_view_held(j, job->key) || !offload_submit(b->o, &job->oj)) {
        job_free(job);
        return;
    }
    b->job = job;
}
