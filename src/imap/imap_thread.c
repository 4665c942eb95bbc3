/*
 * imap_thread.c - THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT and
 * REFERENCES (section 3, steps 1-6: links from References/In-Reply-To,
 * dummies pruned, roots merged by base subject, siblings by sent date).
 * Must never: link a message below its own descendant (a loop), or keep
 * more than IMAP_MAX_THREAD_REFS references of one message.
 */
#include "base/alloc.h"
#include "base/strmap.h"
#include "imap/imap_int.h"
#include "imap/imap_sort.h"
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* References kept per message: a hostile header may list thousands. */
#define IMAP_MAX_THREAD_REFS 256
/*
 * Levels of one thread: the steps recurse once per level and a link checks
 * the ancestry for loops, so 100,000 mails each answering the one before
 * must not cost 100,000 stack frames or quadratic time. Deeper messages
 * start a thread of their own.
 */
#define IMAP_MAX_THREAD_DEPTH 500

/* The Message-ID and subject indexes: base/strmap.h with node numbers as values; each
 * owns its keys (index_free). */
static void index_free(struct strmap *m)
{
    for (struct strmap_slot *e = NULL; (e = strmap_next(m, e)) != NULL;)
        free((char *)e->key);
    strmap_free(m);
}

/* ---- the tree ---- */

struct node {
    int msg; /* index into the sortinfo array, -1 for a dummy */
    int parent;
    int *kids;
    size_t nk, kcap;
};

struct tree {
    struct node *v;
    size_t n, cap;
    const struct imap_sortinfo *info;
};

static int node_new(struct tree *t, int msg)
{
    if (t->n == t->cap)
        t->v = xreallocarray(t->v, t->cap = t->cap ? t->cap * 2 : 64, sizeof(*t->v));
    t->v[t->n] = (struct node){.msg = msg, .parent = -1};
    return (int)t->n++;
}

static void kid_add(struct tree *t, int parent, int kid)
{
    struct node *p = &t->v[parent];
    if (p->nk == p->kcap)
        p->kids = xreallocarray(p->kids, p->kcap = p->kcap ? p->kcap * 2 : 4, sizeof(*p->kids));
    p->kids[p->nk++] = kid;
    t->v[kid].parent = parent;
}

static void unlink_node(struct tree *t, int c)
{
    int p = t->v[c].parent;
    if (p < 0)
        return;
    struct node *pn = &t->v[p];
    for (size_t i = 0; i < pn->nk; i++) {
        if (pn->kids[i] == c) {
            memmove(pn->kids + i, pn->kids + i + 1, (pn->nk - i - 1) * sizeof(*pn->kids));
            pn->nk--;
            break;
        }
    }
    t->v[c].parent = -1;
}

/* p may become c's parent: not c itself, nor below it, nor too deep. */
static bool link_ok(const struct tree *t, int p, int c)
{
    size_t depth = 0;
    for (int a = p; a >= 0; a = t->v[a].parent)
        if (a == c || ++depth >= IMAP_MAX_THREAD_DEPTH)
            return false;
    return true;
}

/* Nodes deeper than IMAP_MAX_THREAD_DEPTH below the root move up to it (breadth first, no
 * recursion). */
static void depth_cut(struct tree *t, int root)
{
    int *queue = xcalloc(t->n, sizeof(*queue));
    size_t *depth = xcalloc(t->n, sizeof(*depth));
    size_t head = 0, tail = 0;
    queue[tail++] = root;
    while (head < tail) {
        int n = queue[head++];
        for (size_t i = 0; i < t->v[n].nk;) {
            int c = t->v[n].kids[i];
            if (depth[n] + 1 >= IMAP_MAX_THREAD_DEPTH) {
                unlink_node(t, c); /* the next kid is now at i */
                kid_add(t, root, c);
                depth[c] = 1;
            } else {
                depth[c] = depth[n] + 1;
                i++;
            }
            if (tail < t->n)
                queue[tail++] = c;
        }
    }
    free(queue);
    free(depth);
}

/* The node of a Message ID, created as a dummy when new. */
static int id_node(struct tree *t, struct strmap *ids, const char *id)
{
    struct strmap_slot *e = strmap_find(ids, id);
    if (e != NULL)
        return (int)e->val.num;
    int n = node_new(t, -1);
    bool added;
    strmap_add(ids, xstrdup(id), &added)->val.num = n;
    return n;
}

/* The date of a node for sorting: its message's, or (a dummy) its first child's. */
static const struct imap_sortinfo *node_info(const struct tree *t, int n)
{
    while (t->v[n].msg < 0 && t->v[n].nk > 0)
        n = t->v[n].kids[0];
    return t->v[n].msg >= 0 ? &t->info[t->v[n].msg] : NULL;
}

static const struct tree *cmp_tree; /* qsort has no context argument; one command at a time */

static int node_cmp(const void *pa, const void *pb)
{
    const struct imap_sortinfo *a = node_info(cmp_tree, *(const int *)pa);
    const struct imap_sortinfo *b = node_info(cmp_tree, *(const int *)pb);
    if (a == NULL || b == NULL)
        return (a == NULL) - (b == NULL);
    if (a->date != b->date)
        return a->date < b->date ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Step 6: siblings by sent date, the youngest generation first. */
static void sort_all(struct tree *t, int *kids, size_t nk)
{
    for (size_t i = 0; i < nk; i++)
        sort_all(t, t->v[kids[i]].kids, t->v[kids[i]].nk);
    cmp_tree = t;
    if (nk > 1)
        qsort(kids, nk, sizeof(*kids), node_cmp);
}

/* Step 3: dummies without children go; others give their children to their level. */
static void prune(struct tree *t, int parent, bool root)
{
    struct node *p = &t->v[parent];
    for (size_t i = 0; i < p->nk;) {
        int c = p->kids[i];
        prune(t, c, false);
        p = &t->v[parent];
        struct node *cn = &t->v[c];
        if (cn->msg >= 0 || (root && cn->nk > 1)) {
            i++;
            continue;
        }
        /* splice c's children in its place */
        size_t k = cn->nk;
        int *kids = cn->kids;
        cn->kids = NULL;
        cn->nk = cn->kcap = 0;
        size_t need = p->nk - 1 + k;
        if (need > p->kcap)
            p->kids = xreallocarray(p->kids, p->kcap = need, sizeof(*p->kids));
        memmove(p->kids + i + k, p->kids + i + 1, (p->nk - i - 1) * sizeof(*p->kids));
        for (size_t j = 0; j < k; j++) {
            p->kids[i + j] = kids[j];
            t->v[kids[j]].parent = parent;
        }
        p->nk = need;
        free(kids);
        /* the promoted children are pruned already: step past them */
        i += k;
    }
}

static const char *thread_subject(const struct tree *t, int n)
{
    const struct imap_sortinfo *in = node_info(t, n);
    return in ? in->subject : "";
}

static char *subject_key(const char *s)
{
    char *k = xstrdup(s);
    for (char *p = k; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 32);
    return k;
}

/* Step 5: roots with the same base subject come together. */
static void merge_subjects(struct tree *t, int root)
{
    struct strmap subj = {0};
    strmap_reserve(&subj, t->v[root].nk);
    for (size_t i = 0; i < t->v[root].nk; i++) {
        int c = t->v[root].kids[i];
        char *key = subject_key(thread_subject(t, c));
        if (key[0] == '\0') {
            free(key);
            continue;
        }
        bool added;
        struct strmap_slot *e = strmap_add(&subj, key, &added);
        if (added) {
            e->val.num = c;
            continue;
        }
        free(key);
        int o = (int)e->val.num;
        if (t->v[o].msg >= 0 &&
            (t->v[c].msg < 0 || (t->info[t->v[o].msg].reply && !t->info[t->v[c].msg].reply)))
            e->val.num = c;
    }
    for (size_t i = 0; i < t->v[root].nk;) {
        int c = t->v[root].kids[i];
        char *key = subject_key(thread_subject(t, c));
        struct strmap_slot *e = strmap_find(&subj, key);
        free(key);
        int o = e != NULL ? (int)e->val.num : c;
        if (o == c) {
            i++;
            continue;
        }
        bool cd = t->v[c].msg < 0, od = t->v[o].msg < 0;
        unlink_node(t, c); /* c leaves the root: the next root child is now at i */
        if (cd && od) {
            for (size_t k = 0; k < t->v[c].nk; k++)
                kid_add(t, o, t->v[c].kids[k]);
            t->v[c].nk = 0;
        } else if (od || (!cd && t->info[t->v[c].msg].reply && !t->info[t->v[o].msg].reply)) {
            kid_add(t, o, c);
        } else {
            int d = node_new(t, -1);
            size_t at = 0;
            while (t->v[root].kids[at] != o)
                at++;
            t->v[root].kids[at] = d; /* the dummy takes o's place */
            t->v[d].parent = root;
            t->v[o].parent = -1;
            kid_add(t, d, o);
            kid_add(t, d, c);
            e->val.num = d; /* e: o's entry, so not NULL here */
        }
    }
    index_free(&subj);
}

/* A node and what is below it; a chain of only children is walked, not recursed. */
static void chain_write(const struct tree *t, int n, bool uid, const struct imap_session *s,
                        struct buf *out)
{
    for (;;) {
        const struct node *nd = &t->v[n];
        if (nd->msg >= 0) {
            size_t idx = t->info[nd->msg].idx;
            buf_printf(out, "%u", uid ? s->view.msgs[idx].uid : (unsigned)(idx + 1));
        }
        if (nd->nk == 0)
            return;
        if (nd->msg >= 0)
            buf_append_byte(out, ' ');
        if (nd->nk == 1 && nd->msg >= 0) {
            n = nd->kids[0];
            continue;
        }
        for (size_t i = 0; i < nd->nk; i++) {
            buf_append_byte(out, '(');
            chain_write(t, nd->kids[i], uid, s, out);
            buf_append_byte(out, ')');
        }
        return;
    }
}

static void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].kids);
    free(t->v);
}

static void thread_references(struct tree *t, const struct imap_sortinfo *v, size_t n)
{
    struct strmap ids = {0};
    strmap_reserve(&ids, n * 2);
    int root = node_new(t, -1);
    char *refs[IMAP_MAX_THREAD_REFS];
    for (size_t i = 0; i < n; i++) {
        /* (1) the message's own node: a unique one when its ID is missing or taken */
        char *own[1];
        int me = -1;
        if (mime_msgids_parse(slice_from_cstr(v[i].message_id), own, 1) == 1) {
            bool added;
            struct strmap_slot *e = strmap_add(&ids, own[0], &added);
            if (added) {
                me = node_new(t, (int)i);
                e->val.num = me;
            } else {
                if (t->v[e->val.num].msg < 0)
                    me = (int)e->val.num;
                free(own[0]);
            }
        }
        if (me < 0)
            me = node_new(t, (int)i);
        t->v[me].msg = (int)i;
        size_t nr = mime_msgids_parse(slice_from_cstr(v[i].references), refs, IMAP_MAX_THREAD_REFS);
        if (nr == 0)
            nr = mime_msgids_parse(slice_from_cstr(v[i].in_reply_to), refs, 1);
        /* (1A) each reference the parent of the next, unless linked already or a loop */
        int prev = -1;
        for (size_t k = 0; k < nr; k++) {
            int cur = id_node(t, &ids, refs[k]);
            if (prev >= 0 && t->v[cur].parent < 0 && link_ok(t, prev, cur))
                kid_add(t, prev, cur);
            prev = cur;
            free(refs[k]);
        }
        /* (1B) the last reference is the parent */
        unlink_node(t, me);
        if (prev >= 0 && link_ok(t, prev, me))
            kid_add(t, prev, me);
    }
    index_free(&ids);
    /* (2) the roots */
    for (size_t i = 1; i < t->n; i++)
        if (t->v[i].parent < 0)
            kid_add(t, root, (int)i);
    depth_cut(t, root);
    prune(t, root, true);                        /* (3) */
    sort_all(t, t->v[root].kids, t->v[root].nk); /* (4) */
    merge_subjects(t, root);                     /* (5) */
    sort_all(t, t->v[root].kids, t->v[root].nk); /* (6) */
}

static int subject_cmp(const void *pa, const void *pb)
{
    const struct imap_sortinfo *a = pa, *b = pb;
    int c = strcasecmp(a->subject, b->subject);
    if (c != 0)
        return c;
    if (a->date != b->date)
        return a->date < b->date ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* ORDEREDSUBJECT: per base subject, the first message with the others as its children. */
static void thread_orderedsubject(struct tree *t, struct imap_sortinfo *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), subject_cmp);
    int root = node_new(t, -1);
    int head = -1;
    for (size_t i = 0; i < n; i++) {
        int me = node_new(t, (int)i);
        if (head >= 0 && strcasecmp(v[t->v[head].msg].subject, v[i].subject) == 0) {
            kid_add(t, head, me);
        } else {
            kid_add(t, root, me);
            head = me;
        }
    }
    cmp_tree = t;
    if (t->v[root].nk > 1)
        qsort(t->v[root].kids, t->v[root].nk, sizeof(int), node_cmp);
}

void imap_cmd_thread(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    bool refs = n >= 1 && imap_arg_is_atom(&args[0], "REFERENCES");
    if (!refs && !(n >= 1 && imap_arg_is_atom(&args[0], "ORDEREDSUBJECT"))) {
        imap_bad(s, tag, "Usage: THREAD (ORDEREDSUBJECT | REFERENCES) charset criteria");
        return;
    }
    struct imap_sortinfo *v;
    size_t nv;
    if (imap_sortinfo_select(s, tag, args + 1, n - 1, &v, &nv) != 0)
        return;
    struct tree t = {.info = v};
    if (refs)
        thread_references(&t, v, nv);
    else
        thread_orderedsubject(&t, v, nv);
    struct buf out = BUF_INIT;
    buf_append_cstr(&out, "* THREAD");
    const struct node *root = &t.v[0];
    if (root->nk > 0)
        buf_append_byte(&out, ' ');
    for (size_t i = 0; i < root->nk; i++) {
        buf_append_byte(&out, '(');
        chain_write(&t, root->kids[i], uid, s, &out);
        buf_append_byte(&out, ')');
    }
    buf_printf(&out, "\r\n%.*s OK %sTHREAD completed\r\n", TAGF(tag), uid ? "UID " : "");
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
    tree_free(&t);
    imap_sortinfo_free(v, nv);
}
