/*
 * imap_context.c - what SEARCH and SORT answer beyond a plain list: the
 * RETURN options (RFC 4731 ESEARCH, RFC 5182 SAVE, RFC 5267 ESORT, PARTIAL,
 * UPDATE, CONTEXT), the ESEARCH response, and the update contexts of
 * CONTEXT=SEARCH and CONTEXT=SORT with CANCELUPDATE.
 *
 * An update context keeps its criteria (copied out of the command) and its
 * result as UIDs in the requested order (SORT contexts also keep each
 * member's sort facts). The view sync (imap_view_sync) drives it: before
 * EXPUNGEs it removes the expunged members (REMOVEFROM, numbered as the
 * client still sees them), after the view took the changes it evaluates the
 * criteria again over the messages whose MODSEQ grew (new ones included) and
 * sends ADDTO/REMOVEFROM for those whose match changed. Nothing polls.
 * Must never: evaluate criteria over messages that did not change (a body
 * search would read the whole mailbox at every flag change), outlive the
 * selected mailbox, or hold more than IMAP_MAX_UPDATE_CONTEXTS contexts.
 */
#include "imap/imap_context.h"

#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"
#include "imap/imap_sort.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Update contexts per session (RFC 5267 4.3.1: more get NO [NOUPDATE]). */
#define IMAP_MAX_UPDATE_CONTEXTS 16

struct imap_context {
    struct imap_context *next;
    char *tag;
    bool uid;                  /* UIDs in updates, else message numbers */
    struct imap_arg *criteria; /* copied: the command's buffer is gone */
    size_t n_criteria;
    uint64_t modseq; /* messages with a greater MODSEQ are evaluated again */
    uint32_t *uids;  /* the result, in the requested order */
    size_t n;
    struct imap_sortinfo *info;  /* SORT: member i's facts (info[i].idx is its view index) */
    struct imap_sort_keys *keys; /* SORT: the sort program; NULL for SEARCH */
};

/* ---- RETURN options and the ESEARCH response ---- */

static bool partial_parse(const struct imap_arg *a, uint32_t *lo_r, uint32_t *hi_r)
{
    if (a->type != IMAP_ARG_ATOM)
        return false;
    const char *colon = memchr(a->str.ptr, ':', a->str.len);
    if (colon == NULL)
        return false;
    struct slice l = slice_make(a->str.ptr, (size_t)(colon - a->str.ptr));
    struct slice h = slice_make(colon + 1, a->str.len - l.len - 1);
    uint64_t lo, hi;
    if (!imap_parse_number(l, UINT32_MAX, &lo) || !imap_parse_number(h, UINT32_MAX, &hi) ||
        lo == 0 || hi == 0)
        return false;
    *lo_r = (uint32_t)(lo < hi ? lo : hi); /* 500:400 is 400:500 */
    *hi_r = (uint32_t)(lo < hi ? hi : lo);
    return true;
}

static struct imap_context *context_find(const struct imap_view *v, struct slice tag)
{
    for (struct imap_context *c = v->contexts; c != NULL; c = c->next)
        if (slice_eq(slice_from_cstr(c->tag), tag))
            return c;
    return NULL;
}

const char *imap_return_parse(struct imap_session *s, struct slice tag, const struct imap_arg *a,
                              bool sort, struct imap_return *r)
{
    static const struct {
        const char *name;
        unsigned bit;
    } opts[] = {{"MIN", IMAP_RET_MIN},         {"MAX", IMAP_RET_MAX},
                {"ALL", IMAP_RET_ALL},         {"COUNT", IMAP_RET_COUNT},
                {"SAVE", IMAP_RET_SAVE},       {"UPDATE", IMAP_RET_UPDATE},
                {"CONTEXT", IMAP_RET_CONTEXT}, {"PARTIAL", IMAP_RET_PARTIAL}};
    memset(r, 0, sizeof(*r));
    if (a->type != IMAP_ARG_LIST)
        return "RETURN needs a list of options";
    for (size_t i = 0; i < a->n_list; i++) {
        unsigned bit = 0;
        for (size_t j = 0; j < sizeof(opts) / sizeof(opts[0]); j++)
            if (imap_arg_is_atom(&a->list[i], opts[j].name))
                bit = opts[j].bit;
        if (bit == 0 || (sort && bit == IMAP_RET_SAVE))
            return sort ? "Unknown RETURN option (MIN MAX ALL COUNT PARTIAL UPDATE CONTEXT)"
                        : "Unknown RETURN option (MIN MAX ALL COUNT SAVE PARTIAL UPDATE CONTEXT)";
        if (bit == IMAP_RET_PARTIAL) {
            if (r->opts & IMAP_RET_PARTIAL)
                return "PARTIAL twice";
            if (i + 1 == a->n_list ||
                !partial_parse(&a->list[i + 1], &r->partial_lo, &r->partial_hi))
                return "PARTIAL needs a range n:m of non-zero numbers";
            i++;
        }
        r->opts |= bit;
    }
    /* RFC 5267 4.4: one PARTIAL or one ALL */
    if ((r->opts & IMAP_RET_PARTIAL) && (r->opts & IMAP_RET_ALL))
        return "PARTIAL and ALL together";
    /* RFC 4731: () means ALL; CONTEXT is only a hint */
    if ((r->opts & ~(unsigned)IMAP_RET_CONTEXT) == 0)
        r->opts |= IMAP_RET_ALL;
    if ((r->opts & IMAP_RET_UPDATE) && context_find(&s->view, tag) != NULL)
        return "Tag reuse: an update context has this tag";
    return NULL;
}

/* v as a sequence set in the given order: ascending runs become ranges ("3:4,2"). */
static void ordered_set_write(struct buf *out, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        buf_printf(out, i ? ",%u" : "%u", v[i]);
        if (j > i)
            buf_printf(out, ":%u", v[j]);
        i = j + 1;
    }
}

void imap_esearch_write(struct buf *out, struct slice tag, bool uid, const struct imap_return *r,
                        const uint32_t *v, size_t n, uint64_t modseq)
{
    unsigned ret = r->opts;
    buf_printf(out, "* ESEARCH (TAG \"%.*s\")%s", TAGF(tag), uid ? " UID" : "");
    if ((ret & IMAP_RET_MIN) && n > 0)
        buf_printf(out, " MIN %u", v[0]);
    if ((ret & IMAP_RET_MAX) && n > 0)
        buf_printf(out, " MAX %u", v[n - 1]);
    if ((ret & IMAP_RET_ALL) && n > 0) {
        buf_append_cstr(out, " ALL ");
        ordered_set_write(out, v, n);
    }
    if (ret & IMAP_RET_COUNT)
        buf_printf(out, " COUNT %zu", n);
    if (ret & IMAP_RET_PARTIAL) {
        buf_printf(out, " PARTIAL (%u:%u ", r->partial_lo, r->partial_hi);
        if (r->partial_lo > n) {
            buf_append_cstr(out, "NIL");
        } else {
            size_t hi = r->partial_hi < n ? r->partial_hi : n;
            ordered_set_write(out, v + r->partial_lo - 1, hi - (r->partial_lo - 1));
        }
        buf_append_byte(out, ')');
    }
    if (modseq > 0 && n > 0)
        buf_printf(out, " MODSEQ %llu", (unsigned long long)modseq);
    buf_append_cstr(out, "\r\n");
}

/* ---- update contexts ---- */

/* A deep copy of an argument tree (strings included). */
static struct imap_arg *args_dup(const struct imap_arg *a, size_t n)
{
    struct imap_arg *r = xcalloc(n ? n : 1, sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        r[i] = a[i];
        if (a[i].type == IMAP_ARG_LIST) {
            r[i].list = args_dup(a[i].list, a[i].n_list);
        } else {
            r[i].str =
                slice_make(xmemdup(a[i].str.ptr, a[i].str.len ? a[i].str.len : 1), a[i].str.len);
            r[i].list = NULL;
        }
    }
    return r;
}

static void args_free(struct imap_arg *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].type == IMAP_ARG_LIST)
            args_free(a[i].list, a[i].n_list);
        else
            free((char *)a[i].str.ptr);
    }
    free(a);
}

static void context_free(struct imap_context *c)
{
    args_free(c->criteria, c->n_criteria);
    if (c->info != NULL)
        imap_sortinfo_free(c->info, c->n);
    free(c->keys);
    free(c->uids);
    free(c->tag);
    free(c);
}

void imap_context_free_all(struct imap_view *v)
{
    while (v->contexts != NULL) {
        struct imap_context *c = v->contexts;
        v->contexts = c->next;
        context_free(c);
    }
}

static uint64_t view_max_modseq(const struct imap_view *v)
{
    uint64_t m = 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->msgs[i].modseq > m)
            m = v->msgs[i].modseq;
    return m;
}

static size_t context_count(const struct imap_view *v)
{
    size_t n = 0;
    for (const struct imap_context *c = v->contexts; c != NULL; c = c->next)
        n++;
    return n;
}

/* A new context, or NULL (and NOUPDATE into out) when the session has too many. */
static struct imap_context *context_new(struct imap_session *s, struct slice tag, bool uid,
                                        const struct imap_arg *criteria, size_t n_criteria,
                                        struct buf *out)
{
    if (context_count(&s->view) >= IMAP_MAX_UPDATE_CONTEXTS) {
        buf_printf(out, "* NO [NOUPDATE \"%.*s\"] Too many update contexts\r\n", TAGF(tag));
        return NULL;
    }
    struct imap_context *c = xcalloc(1, sizeof(*c));
    c->tag = slice_strdup(tag);
    c->uid = uid;
    c->criteria = args_dup(criteria, n_criteria);
    c->n_criteria = n_criteria;
    c->modseq = view_max_modseq(&s->view);
    c->next = s->view.contexts;
    s->view.contexts = c;
    return c;
}

void imap_context_search_done(struct imap_session *s, struct slice tag, bool uid,
                              const struct imap_return *r, const struct imap_arg *criteria,
                              size_t n_criteria, const size_t *idx, size_t n_idx, struct buf *out)
{
    if (!(r->opts & IMAP_RET_UPDATE))
        return;
    struct imap_context *c = context_new(s, tag, uid, criteria, n_criteria, out);
    if (c == NULL)
        return;
    c->uids = xcalloc(n_idx ? n_idx : 1, sizeof(*c->uids));
    for (size_t i = 0; i < n_idx; i++)
        c->uids[c->n++] = s->view.msgs[idx[i]].uid;
}

void imap_context_sort_done(struct imap_session *s, struct slice tag, bool uid,
                            const struct imap_return *r, const struct imap_sort_keys *keys,
                            const struct imap_arg *criteria, size_t n_criteria,
                            struct imap_sortinfo *v, size_t nv)
{
    uint32_t *nums = xcalloc(nv ? nv : 1, sizeof(*nums));
    for (size_t i = 0; i < nv; i++)
        nums[i] = uid ? s->view.msgs[v[i].idx].uid : (uint32_t)(v[i].idx + 1);
    struct buf out = BUF_INIT;
    imap_esearch_write(&out, tag, uid, r, nums, nv, 0);
    struct imap_context *c =
        r->opts & IMAP_RET_UPDATE ? context_new(s, tag, uid, criteria, n_criteria, &out) : NULL;
    if (c != NULL) {
        c->info = v;
        c->n = nv;
        c->keys = xmemdup(keys, sizeof(*keys));
        c->uids = xcalloc(nv ? nv : 1, sizeof(*c->uids));
        for (size_t i = 0; i < nv; i++)
            c->uids[i] = s->view.msgs[v[i].idx].uid;
    } else {
        imap_sortinfo_free(v, nv);
    }
    free(nums);
    buf_printf(&out, "%.*s OK %sSORT completed\r\n", TAGF(tag), uid ? "UID " : "");
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
}

void imap_cmd_cancelupdate(struct imap_session *s, struct slice tag, bool uid,
                           const struct imap_arg *args, size_t n)
{
    (void)uid;
    struct slice t;
    if (n == 0) {
        imap_bad(s, tag, "Usage: CANCELUPDATE \"tag\" ...");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!imap_arg_astring(&args[i], &t) || context_find(&s->view, t) == NULL) {
            imap_bad(s, tag, "Unknown update context");
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        imap_arg_astring(&args[i], &t);
        for (struct imap_context **p = &s->view.contexts; *p != NULL; p = &(*p)->next) {
            if (slice_eq(slice_from_cstr((*p)->tag), t)) {
                struct imap_context *c = *p;
                *p = c->next;
                context_free(c);
                break;
            }
        }
    }
    imap_printf(s, "%.*s OK No further updates", TAGF(tag));
}

/* ---- updates ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_msg_uid(const void *key, const void *m)
{
    uint32_t x = *(const uint32_t *)key, y = ((const struct imap_msg *)m)->uid;
    return x < y ? -1 : x > y;
}

/* The view index of uid; v->n when not there. */
static size_t view_index(const struct imap_view *v, uint32_t uid)
{
    const struct imap_msg *m = bsearch(&uid, v->msgs, v->n, sizeof(*v->msgs), cmp_msg_uid);
    return m ? (size_t)(m - v->msgs) : v->n;
}

/* What a context's updates call member uid now: its UID or its message number. */
static uint32_t number_of(const struct imap_view *v, const struct imap_context *c, uint32_t uid)
{
    return c->uid ? uid : (uint32_t)(view_index(v, uid) + 1);
}

/*
 * Pairs "pos set" for a SORT context: runs of members at one position
 * (removals) or at consecutive positions (additions) make one pair.
 */
struct pairs {
    struct buf text;
    uint32_t pos, next_pos; /* of the open pair; 0: none */
    uint32_t *nums;
    size_t n, cap;
};

static void pairs_flush(struct pairs *p)
{
    if (p->n == 0)
        return;
    buf_printf(&p->text, "%s%u ", p->text.len ? " " : "", p->pos);
    ordered_set_write(&p->text, p->nums, p->n);
    p->n = 0;
}

/* Adds num at pos; same_pos: a removal (the next one stays at pos). */
static void pairs_add(struct pairs *p, uint32_t pos, uint32_t num, bool same_pos)
{
    if (p->n > 0 && pos != p->next_pos)
        pairs_flush(p);
    if (p->n == 0)
        p->pos = pos;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->nums = xreallocarray(p->nums, p->cap, sizeof(*p->nums));
    }
    p->nums[p->n++] = num;
    p->next_pos = same_pos ? pos : pos + 1;
}

static void pairs_free(struct pairs *p)
{
    buf_free(&p->text);
    free(p->nums);
}

static void update_write(struct buf *out, const struct imap_context *c, const char *item,
                         const struct buf *pairs)
{
    buf_printf(out, "* ESEARCH (TAG \"%s\")%s %s (%s)\r\n", c->tag, c->uid ? " UID" : "", item,
               buf_cstr((struct buf *)pairs));
}

/* Removes member i of a context. */
static void member_remove(struct imap_context *c, size_t i)
{
    if (c->info != NULL) {
        imap_sortinfo_free(xmemdup(&c->info[i], sizeof(c->info[i])), 1);
        memmove(&c->info[i], &c->info[i + 1], (c->n - i - 1) * sizeof(*c->info));
    }
    memmove(&c->uids[i], &c->uids[i + 1], (c->n - i - 1) * sizeof(*c->uids));
    c->n--;
}

void imap_context_expunging(struct imap_session *s, const size_t *gone, size_t n_gone,
                            struct buf *out)
{
    const struct imap_view *v = &s->view;
    for (struct imap_context *c = v->contexts; c != NULL; c = c->next) {
        struct pairs p = {.text = BUF_INIT};
        for (size_t i = 0; i < c->n;) {
            size_t at = view_index(v, c->uids[i]);
            if (at == v->n || bsearch(&at, gone, n_gone, sizeof(*gone), cmp_size) == NULL) {
                i++;
                continue;
            }
            /* SEARCH: position 0, mailbox order (the members are in it) */
            pairs_add(&p, c->keys ? (uint32_t)(i + 1) : 0, c->uid ? c->uids[i] : (uint32_t)(at + 1),
                      true);
            member_remove(c, i);
        }
        pairs_flush(&p);
        if (p.text.len > 0)
            update_write(out, c, "REMOVEFROM", &p.text);
        pairs_free(&p);
        /* the survivors' view indexes after the expunges (SORT ties use them) */
        for (size_t i = 0; c->info != NULL && i < c->n; i++) {
            size_t below = 0, lo = 0, hi = n_gone;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (gone[mid] < c->info[i].idx)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            below = lo;
            c->info[i].idx -= below;
        }
    }
}

/* The criteria again over the messages changed since c->modseq; updates into out. */
static void context_refresh(struct imap_session *s, struct imap_context *c, struct buf *out)
{
    struct imap_view *v = &s->view;
    uint64_t now = view_max_modseq(v);
    if (now <= c->modseq)
        return;
    char since[24];
    snprintf(since, sizeof(since), "%llu", (unsigned long long)c->modseq + 1);
    struct imap_arg a[3] = {
        {.type = IMAP_ARG_ATOM, .str = SLICE_LIT("MODSEQ")},
        {.type = IMAP_ARG_ATOM, .str = slice_from_cstr(since)},
        {.type = IMAP_ARG_LIST, .list = c->criteria, .n_list = c->n_criteria},
    };
    bool *match;
    const char *e = imap_search_eval(s, a, 3, &match, NULL);
    if (e != NULL) { /* it parsed when the context was made */
        log_error("user=<%s>: update context %s: %s", s->account, c->tag, e);
        return;
    }
    uint64_t old = c->modseq;
    c->modseq = now;
    uint32_t *members = xmemdup(c->uids, (c->n ? c->n : 1) * sizeof(*c->uids));
    qsort(members, c->n, sizeof(*members), cmp_u32);
    uint32_t *removed = xcalloc(v->n ? v->n : 1, sizeof(*removed)); /* UIDs, ascending */
    size_t *added = xcalloc(v->n ? v->n : 1, sizeof(*added));       /* view indexes, ascending */
    size_t n_removed = 0, n_added = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->msgs[i].modseq <= old)
            continue; /* unchanged: its match is what it was */
        bool in = bsearch(&v->msgs[i].uid, members, c->n, sizeof(*members), cmp_u32) != NULL;
        if (match[i] && !in)
            added[n_added++] = i;
        else if (!match[i] && in)
            removed[n_removed++] = v->msgs[i].uid;
    }
    free(match);
    free(members);
    struct pairs p = {.text = BUF_INIT};
    /* REMOVEFROM: SEARCH at position 0 in mailbox order; SORT where each one is */
    for (size_t i = 0; i < c->n && n_removed > 0;) {
        if (bsearch(&c->uids[i], removed, n_removed, sizeof(*removed), cmp_u32) == NULL) {
            i++;
            continue;
        }
        if (c->keys == NULL)
            pairs_add(&p, 0, number_of(v, c, c->uids[i]), true);
        else
            pairs_add(&p, (uint32_t)(i + 1), number_of(v, c, c->uids[i]), true);
        member_remove(c, i);
    }
    pairs_flush(&p);
    if (p.text.len > 0)
        update_write(out, c, "REMOVEFROM", &p.text);
    buf_reset(&p.text);
    if (n_added > 0) {
        c->uids = xreallocarray(c->uids, c->n + n_added, sizeof(*c->uids));
        if (c->keys != NULL)
            c->info = xreallocarray(c->info, c->n + n_added, sizeof(*c->info));
        uint32_t *fresh = xcalloc(n_added, sizeof(*fresh)); /* UIDs, ascending */
        size_t n_fresh = 0;
        for (size_t k = 0; k < n_added; k++) {
            if (c->keys != NULL && imap_sortinfo_load(s, added[k], &c->info[c->n]) != 0)
                continue; /* unreadable: logged; it stays out */
            fresh[n_fresh++] = v->msgs[added[k]].uid;
            c->uids[c->n++] = v->msgs[added[k]].uid;
        }
        if (c->keys != NULL) {
            imap_sort_apply(c->keys, c->info, c->n);
            for (size_t i = 0; i < c->n; i++)
                c->uids[i] = v->msgs[c->info[i].idx].uid;
        } else {
            qsort(c->uids, c->n, sizeof(*c->uids), cmp_u32);
        }
        /* ADDTO: SEARCH at position 0 in mailbox order; SORT at each one's place */
        for (size_t i = 0; i < c->n; i++) {
            if (bsearch(&c->uids[i], fresh, n_fresh, sizeof(*fresh), cmp_u32) == NULL)
                continue;
            pairs_add(&p, c->keys ? (uint32_t)(i + 1) : 0, number_of(v, c, c->uids[i]),
                      c->keys == NULL);
        }
        pairs_flush(&p);
        if (p.text.len > 0)
            update_write(out, c, "ADDTO", &p.text);
        free(fresh);
    }
    pairs_free(&p);
    free(removed);
    free(added);
}

void imap_context_refresh(struct imap_session *s, struct buf *out)
{
    for (struct imap_context *c = s->view.contexts; c != NULL; c = c->next)
        context_refresh(s, c, out);
}
