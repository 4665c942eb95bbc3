/*
 * nntp_groups.c - newsgroups as public folders; see nntp_groups.h.
 * Must never: name SQLite (the store API only), or map a folder to a group
 * name that is not a valid one.
 */
#include "nntp/nntp_groups.h"
#include "base/alloc.h"
#include "mime/mime.h"
#include "nntp/nntp_article.h"

#include <stdlib.h>
#include <string.h>

static int group_cmp(const void *a, const void *b)
{
    return strcmp(((const struct nntp_group *)a)->name, ((const struct nntp_group *)b)->name);
}

int nntp_groups_load(struct store *st, struct nntp_groups *g, struct buf *err)
{
    memset(g, 0, sizeof(*g));
    struct store_newsgroup_anchor *an;
    size_t nan;
    if (store_newsgroup_anchors(st, &an, &nan, err) != 0)
        return -1;
    struct store_mailbox *mb = NULL;
    size_t nmb = 0;
    if (nan > 0 && store_mailbox_list(st, STORE_PUBLIC_OWNER, &mb, &nmb, err) != 0) {
        store_newsgroup_anchors_free(an, nan);
        return -1;
    }
    size_t cap = 0;
    struct buf name = BUF_INIT;
    for (size_t i = 0; i < nmb; i++) {
        for (size_t k = 0; k < nan; k++) {
            size_t al = strlen(an[k].mailbox);
            if (strncmp(mb[i].name, an[k].mailbox, al) != 0 || mb[i].name[al] != STORE_DELIMITER ||
                mb[i].name[al + 1] == '\0')
                continue;
            buf_reset(&name);
            buf_printf(&name, "%s.%s", an[k].hierarchy, mb[i].name + al + 1);
            for (size_t c = 0; c < name.len; c++)
                if (name.data[c] == STORE_DELIMITER)
                    name.data[c] = '.';
            if (!nntp_group_name_valid(buf_slice(&name)))
                continue; /* a folder name a newsreader could not ask for */
            if (g->n == cap) {
                cap = cap ? cap * 2 : 8;
                g->v = xreallocarray(g->v, cap, sizeof(*g->v));
            }
            g->v[g->n++] = (struct nntp_group){.name = xstrdup(buf_cstr(&name)),
                                               .mailbox = xstrdup(mb[i].name),
                                               .id = mb[i].id,
                                               .created = an[k].created,
                                               .count = mb[i].messages};
        }
    }
    buf_free(&name);
    store_mailbox_list_free(mb, nmb);
    store_newsgroup_anchors_free(an, nan);
    if (g->n > 1)
        qsort(g->v, g->n, sizeof(*g->v), group_cmp);
    return 0;
}

void nntp_groups_free(struct nntp_groups *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].name);
        free(g->v[i].mailbox);
    }
    free(g->v);
    memset(g, 0, sizeof(*g));
}

const struct nntp_group *nntp_groups_find(const struct nntp_groups *g, struct slice name)
{
    for (size_t i = 0; i < g->n; i++)
        if (strlen(g->v[i].name) == name.len && memcmp(g->v[i].name, name.ptr, name.len) == 0)
            return &g->v[i];
    return NULL;
}

int nntp_group_rights(struct store *st, const struct nntp_group *grp, const char *user,
                      struct nntp_rights *r, struct buf *err)
{
    struct buf rights = BUF_INIT;
    /* "" is no identifier the store keeps: only "anyone"'s rights apply. */
    int rc = store_acl_rights(st, STORE_PUBLIC_OWNER, grp->mailbox, user ? user : "", &rights, err);
    const char *t = buf_cstr(&rights);
    r->list = rc == 0 && strchr(t, 'l') != NULL;
    r->read = rc == 0 && strchr(t, 'r') != NULL;
    r->post = rc == 0 && (strchr(t, 'p') != NULL || strchr(t, 'i') != NULL);
    buf_free(&rights);
    return rc < 0 ? -1 : 0;
}

int nntp_article_groups(const struct nntp_groups *g, struct slice newsgroups, bool transit,
                        const char *user, nntp_rights_fn rights, void *arg,
                        const struct nntp_group **out, size_t max, size_t *n_r, struct buf *why,
                        struct buf *err)
{
    struct slice rest = newsgroups, name;
    size_t n = 0;
    *n_r = 0;
    while (nntp_newsgroups_next(&rest, &name)) {
        const struct nntp_group *grp = nntp_groups_find(g, name);
        if (grp == NULL && transit)
            continue;
        if (grp == NULL) {
            buf_printf(why, "No such newsgroup: %.*s", (int)name.len, name.ptr);
            return 1;
        }
        if (!transit) {
            struct nntp_rights r;
            if (rights(arg, grp, user, &r, err) != 0)
                return -1;
            if (!r.post) {
                buf_printf(why, "Posting to %s is not allowed%s", grp->name,
                           user ? "" : " (authenticate first)");
                return 1;
            }
        }
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            seen |= out[i] == grp;
        if (seen)
            continue;
        if (n == max) {
            buf_append_cstr(why, "Too many newsgroups");
            return 1;
        }
        out[n++] = grp;
    }
    if (n == 0) {
        buf_append_cstr(why, "None of its newsgroups is carried here");
        return 1;
    }
    *n_r = n;
    return 0;
}

int nntp_listing_load(struct store *st, const struct nntp_group *grp, struct nntp_listing *l,
                      struct buf *err)
{
    memset(l, 0, sizeof(*l));
    struct store_changes c;
    if (store_message_changes_id(st, STORE_PUBLIC_OWNER, grp->id, 0, &c, err) != 0)
        return -1;
    l->num = xcalloc(c.n ? c.n : 1, sizeof(*l->num));
    l->size = xcalloc(c.n ? c.n : 1, sizeof(*l->size));
    l->date = xcalloc(c.n ? c.n : 1, sizeof(*l->date));
    for (size_t i = 0; i < c.n; i++) {
        l->num[i] = c.msgs[i].uid;
        l->size[i] = c.msgs[i].size;
        l->date[i] = c.msgs[i].internaldate;
    }
    l->n = c.n;
    store_changes_free(&c);
    return 0;
}

void nntp_listing_free(struct nntp_listing *l)
{
    free(l->num);
    free(l->size);
    free(l->date);
    memset(l, 0, sizeof(*l));
}

long nntp_listing_find(const struct nntp_listing *l, uint32_t num)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->num[mid] == num)
            return (long)mid;
        if (l->num[mid] < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int nntp_group_msgids(struct store *st, const struct nntp_group *grp, uint32_t from,
                      bool (*cb)(void *arg, uint32_t num, struct slice msgid), void *arg,
                      struct buf *err)
{
    struct store_records r;
    if (store_message_records_id(st, STORE_PUBLIC_OWNER, grp->id, from, &r, err) != 0)
        return -1;
    for (size_t i = 0; i < r.n; i++) {
        struct slice rec = store_record_get(&r, i), id;
        if (rec.ptr == NULL || !mime_cache_record_msgid(rec, &id))
            continue;
        if (!cb(arg, r.v[i].uid, id))
            break;
    }
    store_records_free(&r);
    return 0;
}

int nntp_groups_find_msgid(struct store *st, const struct nntp_groups *g, struct slice msgid,
                           bool (*ok)(void *arg, const struct nntp_group *grp), void *arg,
                           size_t *group_r, uint32_t *num_r, struct buf *err)
{
    struct store_msgid_hit *hits;
    size_t n;
    if (store_msgid_find(st, STORE_PUBLIC_OWNER, msgid, &hits, &n, err) != 0)
        return -1;
    int rc = 1;
    for (size_t h = 0; h < n && rc == 1; h++) {
        for (size_t i = 0; i < g->n; i++) {
            if (g->v[i].id != hits[h].mailbox_id || (ok && !ok(arg, &g->v[i])))
                continue;
            *group_r = i;
            *num_r = hits[h].uid;
            rc = 0;
            break;
        }
    }
    free(hits);
    return rc;
}

int nntp_xrefs_load(struct store *st, const struct nntp_group *grp, uint32_t lo, uint32_t hi,
                    struct nntp_xrefs *x, struct buf *err)
{
    memset(x, 0, sizeof(*x));
    return store_message_copies_id(st, STORE_PUBLIC_OWNER, grp->id, lo, hi, &x->copy, &x->n, err);
}

struct xref_loc {
    size_t group; /* index in the groups */
    uint32_t num;
};

static int loc_cmp(const void *a, const void *b)
{
    const struct xref_loc *p = a, *q = b;
    if (p->group != q->group)
        return p->group < q->group ? -1 : 1;
    return p->num < q->num ? -1 : p->num > q->num;
}

void nntp_xref(struct nntp_xrefs *x, const struct nntp_groups *g, const struct nntp_group *grp,
               uint32_t num, const char *host, bool (*ok)(void *arg, const struct nntp_group *grp),
               void *arg, struct buf *out)
{
    while (x->next < x->n && x->copy[x->next].uid < num)
        x->next++;
    size_t end = x->next;
    while (end < x->n && x->copy[end].uid == num)
        end++;
    struct xref_loc *loc = xcalloc(end - x->next + 1, sizeof(*loc));
    size_t n = 0;
    loc[n++] = (struct xref_loc){(size_t)(grp - g->v), num};
    if (end > x->next && x->seen == NULL)
        x->seen = xcalloc(g->n ? g->n : 1, sizeof(*x->seen));
    for (size_t k = x->next; k < end; k++) {
        size_t i = 0;
        while (i < g->n && g->v[i].id != x->copy[k].mailbox_id)
            i++;
        if (i == g->n) /* a public folder that is no group */
            continue;
        if (x->seen[i] == 0)
            x->seen[i] = &g->v[i] == grp || ok(arg, &g->v[i]) ? 1 : -1;
        if (x->seen[i] > 0)
            loc[n++] = (struct xref_loc){i, x->copy[k].copy_uid};
    }
    qsort(loc, n, sizeof(*loc), loc_cmp);
    buf_append_cstr(out, host);
    for (size_t k = 0; k < n; k++)
        buf_printf(out, " %s:%u", g->v[loc[k].group].name, loc[k].num);
    free(loc);
}

void nntp_xrefs_free(struct nntp_xrefs *x)
{
    free(x->copy);
    free(x->seen);
    memset(x, 0, sizeof(*x));
}

void nntp_view_make(struct nntp_xrefs *x, const struct nntp_groups *g, const struct nntp_group *grp,
                    uint32_t num, struct slice a, const char *host,
                    bool (*ok)(void *arg, const struct nntp_group *grp), void *arg,
                    struct nntp_view *v)
{
    size_t hlen, body;
    nntp_article_split(a, &hlen, &body);
    struct buf xref = BUF_INIT;
    nntp_xref(x, g, grp, num, host, ok, arg, &xref);
    buf_init(&v->header);
    nntp_article_reader_header(slice_make(a.ptr, hlen), host, grp->name, buf_slice(&xref),
                               &v->header);
    v->rest = slice_make(a.ptr + hlen, a.len - hlen);
    v->body = slice_make(a.ptr + body, a.len - body);
    v->bytes = nntp_article_bytes(buf_slice(&v->header), v->rest);
    buf_free(&xref);
}

void nntp_view_free(struct nntp_view *v)
{
    buf_free(&v->header);
}
