/*
 * imap_message.c - commands that change messages: STORE, COPY, MOVE,
 * EXPUNGE and UID EXPUNGE (UIDPLUS: COPYUID). APPEND is in imap_append.c.
 * Every change is announced with imap_mailbox_changed so that other sessions
 * (IDLE) learn of it.
 * Must never: change anything in a mailbox selected with EXAMINE, or copy
 * to a mailbox of another account.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>

static bool keyword_valid(struct slice k)
{
    if (k.len == 0)
        return false;
    for (size_t i = 0; i < k.len; i++) {
        unsigned char c = (unsigned char)k.ptr[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
            return false;
    }
    return true;
}

static bool flag_parse(struct slice f, size_t keywords_max, unsigned *flags, struct buf *keywords)
{
    static const struct {
        const char *name;
        unsigned bit;
    } sys[] = {
        {"\\Seen", STORE_FLAG_SEEN},       {"\\Answered", STORE_FLAG_ANSWERED},
        {"\\Flagged", STORE_FLAG_FLAGGED}, {"\\Deleted", STORE_FLAG_DELETED},
        {"\\Draft", STORE_FLAG_DRAFT},
    };
    if (f.len > 0 && f.ptr[0] == '\\') {
        for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
            if (slice_eq_cstr_nocase(f, sys[i].name)) {
                *flags |= sys[i].bit;
                return true;
            }
        }
        return slice_eq_cstr_nocase(f, "\\Recent"); /* a session flag: ignored */
    }
    if (!keyword_valid(f) || keywords->len + f.len + 1 > keywords_max)
        return false;
    if (keywords->len > 0)
        buf_append_byte(keywords, ' ');
    buf_append_slice(keywords, f);
    return true;
}

size_t imap_keywords_max(const struct imap_session *s)
{
    return (size_t)s->srv->cfg->store_keywords_max;
}

bool imap_flags_parse(const struct imap_arg *a, size_t keywords_max, unsigned *flags_r,
                      struct buf *keywords)
{
    *flags_r = 0;
    if (a->type == IMAP_ARG_ATOM)
        return flag_parse(a->str, keywords_max, flags_r, keywords);
    if (a->type != IMAP_ARG_LIST)
        return false;
    for (size_t i = 0; i < a->n_list; i++)
        if (a->list[i].type != IMAP_ARG_ATOM ||
            !flag_parse(a->list[i].str, keywords_max, flags_r, keywords))
            return false;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The UIDs of view indexes (ascending, since the view is in UID order). */
static uint32_t *uids_of(const struct imap_session *s, const size_t *idx, size_t k)
{
    uint32_t *uids = xcalloc(k ? k : 1, sizeof(*uids));
    for (size_t i = 0; i < k; i++)
        uids[i] = s->view.msgs[idx[i]].uid;
    return uids;
}

/*
 * RFC 4314 4: \Seen needs "s", \Deleted "t", every other flag "w". +FLAGS
 * and -FLAGS leave out what the session may not change (the STORE fails
 * only when nothing is left); FLAGS replaces every flag, so it needs all
 * three. false when answered (keywords freed).
 */
static bool store_rights_apply(struct imap_session *s, struct slice tag, enum store_flags_op op,
                               unsigned *flags, struct buf *keywords)
{
    unsigned r = s->view.rights;
    const unsigned other = STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT;
    const unsigned all = IMAP_RIGHT_S | IMAP_RIGHT_T | IMAP_RIGHT_W;
    bool asked = *flags != 0 || keywords->len > 0;
    if (op == STORE_FLAGS_REPLACE) {
        if ((r & all) == all)
            return true;
    } else {
        if (!(r & IMAP_RIGHT_S))
            *flags &= ~(unsigned)STORE_FLAG_SEEN;
        if (!(r & IMAP_RIGHT_T))
            *flags &= ~(unsigned)STORE_FLAG_DELETED;
        if (!(r & IMAP_RIGHT_W)) {
            *flags &= ~other;
            buf_reset(keywords);
        }
        if (!asked || *flags != 0 || keywords->len > 0)
            return true;
    }
    imap_printf(s,
                "%.*s NO [NOPERM] Permission denied (\\Seen needs the right \"s\", \\Deleted "
                "\"t\", other flags \"w\"; FLAGS all three)",
                TAGF(tag));
    buf_free(keywords);
    return false;
}

void imap_cmd_store(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                    size_t n)
{
    /* STORE set [(UNCHANGEDSINCE modseq)] item flags (RFC 7162 3.1.3) */
    const struct imap_arg *set = &args[0], *mod = NULL;
    if (n >= 2 && args[1].type == IMAP_ARG_LIST) {
        mod = &args[1];
        args++;
        n--;
    }
    uint64_t unchangedsince = 0;
    if (mod != NULL && (mod->n_list != 2 || !imap_arg_is_atom(&mod->list[0], "UNCHANGEDSINCE") ||
                        mod->list[1].type != IMAP_ARG_ATOM ||
                        !imap_parse_number(mod->list[1].str, INT64_MAX, &unchangedsince))) {
        imap_bad(s, tag, "Invalid STORE modifier (only UNCHANGEDSINCE is supported)");
        return;
    }
    if (n < 3 || set->type != IMAP_ARG_ATOM || args[1].type != IMAP_ARG_ATOM) {
        imap_bad(s, tag,
                 "Usage: STORE sequence-set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] (flags)");
        return;
    }
    struct slice item = args[1].str;
    enum store_flags_op op = STORE_FLAGS_REPLACE;
    if (item.len > 0 && (item.ptr[0] == '+' || item.ptr[0] == '-')) {
        op = item.ptr[0] == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
        item = slice_make(item.ptr + 1, item.len - 1);
    }
    bool silent = slice_eq_cstr_nocase(item, "FLAGS.SILENT");
    if (!silent && !slice_eq_cstr_nocase(item, "FLAGS")) {
        imap_bad(s, tag, "Unknown STORE item");
        return;
    }
    unsigned flags = 0;
    struct buf keywords = BUF_INIT;
    for (size_t i = 2; i < n; i++) {
        unsigned f;
        if ((n > 3 && args[i].type == IMAP_ARG_LIST) ||
            !imap_flags_parse(&args[i], imap_keywords_max(s), &f, &keywords)) {
            imap_bad(s, tag, "Invalid flags");
            buf_free(&keywords);
            return;
        }
        flags |= f;
    }
    if (s->view.readonly) {
        imap_printf(s, "%.*s NO [READ-ONLY] Mailbox is read-only", TAGF(tag));
        buf_free(&keywords);
        return;
    }
    if (!store_rights_apply(s, tag, op, &flags, &keywords))
        return;
    size_t *idx, k;
    if (!imap_view_select(s, tag, set->str, uid, &idx, &k)) {
        buf_free(&keywords);
        return;
    }
    if (mod != NULL)
        imap_condstore_enable(s);
    uint32_t *uids = uids_of(s, idx, k);
    struct store_flags_result *res = xcalloc(k ? k : 1, sizeof(*res));
    struct buf err = BUF_INIT, modified = BUF_INIT;
    if (mod != NULL && unchangedsince == 0) {
        /* Every message has a MODSEQ above 0: nothing may change. */
        for (size_t i = 0; i < k; i++)
            res[i].outcome = STORE_FLAGS_MODIFIED_SINCE;
    } else if (k > 0 &&
               store_message_flags_id(s->srv->store, s->view.owner, s->view.id, uids, k, op, flags,
                                      buf_cstr(&keywords), unchangedsince, res, &err) != 0) {
        imap_store_error(s, tag, "store", &err);
        goto done;
    }
    bool changed = false;
    size_t n_ok = 0; /* uids[] keeps, in order, those the STORE applied to */
    for (size_t i = 0; i < k; i++) {
        struct imap_msg *m = &s->view.msgs[idx[i]];
        if (res[i].outcome == STORE_FLAGS_MODIFIED_SINCE) {
            buf_printf(&modified, "%s%u", modified.len ? "," : "",
                       uid ? m->uid : (uint32_t)idx[i] + 1);
        } else if (res[i].outcome == STORE_FLAGS_CHANGED ||
                   res[i].outcome == STORE_FLAGS_UNCHANGED) {
            changed = changed || res[i].outcome == STORE_FLAGS_CHANGED;
            uids[n_ok++] = m->uid;
            m->flags = res[i].flags | (m->flags & IMAP_MSG_RECENT);
            m->modseq = res[i].modseq;
        }
    }
    if (changed)
        imap_mailbox_changed(s, s->view.owner, s->view.name);
    /* Picks up keywords and other sessions' changes; ours are answered below. */
    imap_view_sync(s, false, uids, n_ok);
    /* With CONDSTORE the new MODSEQ is told even for .SILENT (RFC 7162 3.1.3). */
    if (!silent || s->condstore) {
        struct buf out = BUF_INIT;
        for (size_t i = 0; i < s->view.n; i++) {
            const struct imap_msg *m = &s->view.msgs[i];
            if (!bsearch(&m->uid, uids, n_ok, sizeof(*uids), cmp_u32))
                continue;
            if (!silent) /* written before out */
                imap_view_keywords_announce(s, m->keywords);
            buf_printf(&out, "* %zu FETCH (", i + 1);
            if (uid)
                buf_printf(&out, "UID %u ", m->uid);
            if (!silent) {
                buf_append_cstr(&out, "FLAGS ");
                imap_flags_write(&out, m->flags, m->keywords);
            }
            if (s->condstore)
                buf_printf(&out, "%sMODSEQ (%llu)", silent ? "" : " ",
                           (unsigned long long)m->modseq);
            buf_append_cstr(&out, ")\r\n");
        }
        net_conn_write(s->conn, out.data, out.len);
        buf_free(&out);
    }
    if (modified.len > 0)
        imap_printf(s, "%.*s OK [MODIFIED %s] Conditional STORE failed for some messages",
                    TAGF(tag), buf_cstr(&modified));
    else
        imap_printf(s, "%.*s OK %sSTORE completed", TAGF(tag), uid ? "UID " : "");
done:
    buf_free(&err);
    buf_free(&modified);
    buf_free(&keywords);
    free(res);
    free(uids);
    free(idx);
}

/* The entries of v whose keep[] is not 0, in order, as a set with ranges (COPYUID). */
static void uid_list_write(struct buf *out, const uint32_t *v, const uint32_t *keep, size_t n)
{
    uint32_t *kept = xcalloc(n ? n : 1, sizeof(*kept));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i] != 0)
            kept[k++] = v[i];
    imap_seqset_write(out, kept, k);
    free(kept);
}

static void copy_or_move(struct imap_session *s, struct slice tag, bool uid,
                         const struct imap_arg *args, size_t n, bool move)
{
    char *dest = n == 2 && args[0].type == IMAP_ARG_ATOM ? imap_mailbox_arg(s, &args[1]) : NULL;
    if (dest == NULL) {
        imap_bad(s, tag,
                 move ? "Usage: MOVE sequence-set mailbox" : "Usage: COPY sequence-set mailbox");
        return;
    }
    if (move && s->view.readonly) {
        imap_printf(s, "%.*s NO [READ-ONLY] Mailbox is read-only", TAGF(tag));
        free(dest);
        return;
    }
    /* RFC 6851 4.3 with RFC 4314: MOVE takes "t" and "e" on the source. */
    if (move && (s->view.rights & (IMAP_RIGHT_T | IMAP_RIGHT_E)) != (IMAP_RIGHT_T | IMAP_RIGHT_E)) {
        imap_printf(s,
                    "%.*s NO [NOPERM] Permission denied (MOVE needs the rights \"t\" and \"e\" "
                    "here)",
                    TAGF(tag));
        free(dest);
        return;
    }
    struct imap_mbref to;
    bool ok = imap_mbref_resolve(s, dest, &to) == 0;
    free(dest);
    if (!ok)
        imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
    size_t *idx, k;
    if (!ok ||
        !imap_mbref_allowed(s, tag, &to, IMAP_RIGHT_I, "[TRYCREATE] Mailbox does not exist") ||
        !imap_view_select(s, tag, args[0].str, uid, &idx, &k)) {
        imap_mbref_free(&to);
        return;
    }
    struct store_mailbox mb;
    struct buf err = BUF_INIT;
    uint32_t *uids = uids_of(s, idx, k);
    uint32_t *new_uids = xcalloc(k ? k : 1, sizeof(*new_uids));
    int r = store_mailbox_get(s->srv->store, to.owner, to.name, &mb, &err);
    if (r != 0) {
        if (r > 0)
            imap_printf(s, "%.*s NO [TRYCREATE] Mailbox does not exist", TAGF(tag));
        else
            imap_store_error(s, tag, "copy", &err);
        goto done;
    }
    uint32_t validity = mb.uidvalidity;
    store_mailbox_free(&mb);
    if (k > 0 && store_message_copy_to_id(s->srv->store, s->view.owner, s->view.id, uids, k,
                                          to.owner, mb.id, move, new_uids, &err) != 0) {
        imap_store_error(s, tag, move ? "move" : "copy", &err);
        goto done;
    }
    struct buf code = BUF_INIT;
    bool any = false;
    for (size_t i = 0; i < k; i++)
        any = any || new_uids[i] != 0;
    if (any) {
        buf_printf(&code, "[COPYUID %u ", validity);
        uid_list_write(&code, uids, new_uids, k);
        buf_append_byte(&code, ' ');
        uid_list_write(&code, new_uids, new_uids, k);
        buf_append_cstr(&code, "] ");
        imap_mailbox_changed(s, to.owner, to.name);
        if (!move && strcmp(s->view.owner, to.owner) == 0 && strcmp(s->view.name, to.name) == 0)
            imap_view_sync(s, false, NULL, 0);
    }
    if (move) {
        /* RFC 6851: COPYUID untagged, then the EXPUNGEs, then the tagged OK. */
        if (any) {
            imap_printf(s, "* OK %sMoved", buf_cstr(&code));
            imap_mailbox_changed(s, s->view.owner, s->view.name);
        }
        imap_view_sync(s, true, NULL, 0);
        imap_printf(s, "%.*s OK %sMOVE completed", TAGF(tag), uid ? "UID " : "");
    } else {
        imap_printf(s, "%.*s OK %s%sCOPY completed", TAGF(tag), buf_cstr(&code), uid ? "UID " : "");
    }
    buf_free(&code);
done:
    buf_free(&err);
    free(uids);
    free(new_uids);
    free(idx);
    imap_mbref_free(&to);
}

void imap_cmd_copy(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                   size_t n)
{
    copy_or_move(s, tag, uid, args, n, false);
}

void imap_cmd_move(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                   size_t n)
{
    copy_or_move(s, tag, uid, args, n, true);
}

void imap_cmd_expunge(struct imap_session *s, struct slice tag, bool uid,
                      const struct imap_arg *args, size_t n)
{
    if (uid ? (n != 1 || args[0].type != IMAP_ARG_ATOM) : n != 0) {
        imap_bad(s, tag, uid ? "Usage: UID EXPUNGE uid-set" : "EXPUNGE takes no arguments");
        return;
    }
    if (s->view.readonly) {
        imap_printf(s, "%.*s NO [READ-ONLY] Mailbox is read-only", TAGF(tag));
        return;
    }
    if (!(s->view.rights & IMAP_RIGHT_E)) {
        imap_printf(s, "%.*s NO [NOPERM] Permission denied (EXPUNGE needs the right \"e\")",
                    TAGF(tag));
        return;
    }
    size_t *idx = NULL, k = s->view.n;
    if (uid && !imap_view_select(s, tag, args[0].str, true, &idx, &k))
        return;
    uint32_t *uids = xcalloc(k ? k : 1, sizeof(*uids));
    size_t nu = 0;
    for (size_t i = 0; i < k; i++) {
        const struct imap_msg *m = &s->view.msgs[idx ? idx[i] : i];
        if (m->flags & STORE_FLAG_DELETED)
            uids[nu++] = m->uid;
    }
    struct buf err = BUF_INIT;
    if (nu > 0 &&
        store_message_expunge_id(s->srv->store, s->view.owner, s->view.id, uids, nu, &err) != 0) {
        imap_store_error(s, tag, "expunge", &err);
    } else {
        if (nu > 0)
            imap_mailbox_changed(s, s->view.owner, s->view.name);
        imap_view_sync(s, true, NULL, 0);
        if (s->qresync) /* RFC 7162 3.2.10 */
            imap_printf(s, "%.*s OK [HIGHESTMODSEQ %llu] %sEXPUNGE completed", TAGF(tag),
                        (unsigned long long)s->view.highestmodseq, uid ? "UID " : "");
        else
            imap_printf(s, "%.*s OK %sEXPUNGE completed", TAGF(tag), uid ? "UID " : "");
    }
    buf_free(&err);
    free(uids);
    free(idx);
}
