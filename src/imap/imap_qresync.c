/*
 * imap_qresync.c - QRESYNC (RFC 7162 section 3.2): SELECT/EXAMINE parameters
 * (CONDSTORE, QRESYNC (uidvalidity modseq [known-uids] [seq-match-data])),
 * the resynchronisation a QRESYNC SELECT sends (VANISHED (EARLIER) from the
 * store's expunge log, then FETCH of what changed), and VANISHED (EARLIER)
 * for UID FETCH (CHANGEDSINCE m VANISHED).
 * The store keeps the whole expunge log (store_expunged_since), so the
 * sequence match data is checked for syntax and not needed for the answer.
 * Must never: report a UID outside the set the client named, or send a
 * VANISHED/FETCH before the select responses it follows.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>

void imap_qresync_free(struct imap_qresync *q)
{
    if (q->has_known)
        imap_seqset_free(&q->known);
    memset(q, 0, sizeof(*q));
}

static bool seqset_valid(const struct imap_arg *a)
{
    struct imap_seqset set;
    if (a->type != IMAP_ARG_ATOM || !imap_seqset_parse(a->str, &set))
        return false;
    imap_seqset_free(&set);
    return true;
}

/* "(uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])" */
static const char *qresync_parse(const struct imap_arg *a, struct imap_qresync *q)
{
    uint64_t validity, modseq;
    if (a->type != IMAP_ARG_LIST || a->n_list < 2 || a->n_list > 4 ||
        a->list[0].type != IMAP_ARG_ATOM || a->list[1].type != IMAP_ARG_ATOM ||
        !imap_parse_number(a->list[0].str, UINT32_MAX, &validity) || validity == 0 ||
        !imap_parse_number(a->list[1].str, INT64_MAX, &modseq))
        return "Usage: QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)])";
    size_t i = 2;
    if (i < a->n_list && a->list[i].type == IMAP_ARG_ATOM) {
        if (!imap_seqset_parse(a->list[i].str, &q->known))
            return "Invalid known-uids in QRESYNC";
        q->has_known = true;
        i++;
    }
    if (i < a->n_list) {
        const struct imap_arg *m = &a->list[i++];
        if (m->type != IMAP_ARG_LIST || m->n_list != 2 || !seqset_valid(&m->list[0]) ||
            !seqset_valid(&m->list[1]))
            return "Invalid sequence match data in QRESYNC";
    }
    if (i != a->n_list)
        return "Usage: QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)])";
    q->on = true;
    q->uidvalidity = (uint32_t)validity;
    q->modseq = modseq;
    return NULL;
}

const char *imap_select_params(struct imap_session *s, const struct imap_arg *params,
                               bool *condstore_r, struct imap_qresync *q)
{
    memset(q, 0, sizeof(*q));
    *condstore_r = false;
    if (params->type != IMAP_ARG_LIST || params->n_list == 0)
        return "Usage: SELECT mailbox [(CONDSTORE | QRESYNC (...))]";
    for (size_t i = 0; i < params->n_list; i++) {
        const struct imap_arg *a = &params->list[i];
        const char *e = NULL;
        if (imap_arg_is_atom(a, "CONDSTORE"))
            *condstore_r = true;
        else if (imap_arg_is_atom(a, "QRESYNC") && !q->on && i + 1 < params->n_list) {
            /* RFC 7162 3.2.5: BAD unless ENABLE QRESYNC came first. */
            e = !s->qresync ? "QRESYNC is not enabled (ENABLE QRESYNC first)"
                            : qresync_parse(&params->list[++i], q);
        } else
            e = "Unknown SELECT parameter";
        if (e != NULL) {
            imap_qresync_free(q);
            return e;
        }
    }
    return NULL;
}

int imap_vanished_earlier(struct imap_session *s, uint64_t modseq, const struct imap_seqset *within,
                          struct buf *out)
{
    uint32_t *uids = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT;
    if (store_expunged_since_id(s->srv->store, s->view.owner, s->view.id, modseq, &uids, &n,
                                &err) != 0) {
        log_error("user=<%s>: expunge log of %s: %s", s->account, s->view.name, buf_cstr(&err));
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    /* "*" in a UID set is the largest UID in use; expunged ones are all below UIDNEXT. */
    uint32_t star = s->view.uidnext > 1 ? s->view.uidnext - 1 : 1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (within == NULL || imap_seqset_contains(within, uids[i], star))
            uids[k++] = uids[i];
    if (k > 0) {
        buf_append_cstr(out, "* VANISHED (EARLIER) ");
        imap_seqset_write(out, uids, k);
        buf_append_cstr(out, "\r\n");
    }
    free(uids);
    return 0;
}

int imap_qresync_select(struct imap_session *s, const struct imap_qresync *q, struct buf *out)
{
    const struct imap_view *v = &s->view;
    /* 3.2.5: another UIDVALIDITY: behave as if nothing changed. */
    if (!q->on || q->uidvalidity != v->uidvalidity)
        return 0;
    const struct imap_seqset *known = q->has_known ? &q->known : NULL;
    if (imap_vanished_earlier(s, q->modseq, known, out) != 0)
        return -1;
    uint32_t star = v->n ? v->msgs[v->n - 1].uid : 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct imap_msg *m = &v->msgs[i];
        if (m->modseq <= q->modseq || (known && !imap_seqset_contains(known, m->uid, star)))
            continue;
        buf_printf(out, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
        imap_flags_write(out, m->flags, m->keywords);
        buf_printf(out, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
    }
    return 0;
}
