/*
 * imap_search.c - SEARCH and UID SEARCH over the selected mailbox: ALL,
 * flags (SEEN, UNSEEN, FLAGGED, ...), KEYWORD, UID, sequence sets, FROM, TO,
 * CC, BCC, SUBJECT, HEADER, BODY, TEXT, BEFORE, ON, SINCE, SENTBEFORE,
 * SENTON, SENTSINCE, LARGER, SMALLER, MODSEQ, NOT, OR, parenthesized groups
 * and "$"; RETURN (MIN MAX ALL COUNT SAVE) (RFC 4731, RFC 5182). IMAP4rev2
 * sessions always get ESEARCH. Header keys (FROM, TO, CC, BCC, SUBJECT,
 * HEADER of the fields the record holds) and SENT* read the search records
 * the store wrote at delivery (mime_cache.c); BODY, TEXT and the header keys
 * of 3 characters or more are answered by the store's full-text index (one
 * search per key, index_keys); messages are read (and MIME-parsed) only when
 * a key needs more of their content.
 * Must never: recurse deeper than the parser's list depth allows (NOT and OR
 * chains are bounded by IMAP_MAX_SEARCH_DEPTH).
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_context.h"
#include "imap/imap_int.h"
#include "mime/mime.h"
#include "base/date.h"

#include <stdlib.h>
#include <string.h>

/* NOT NOT NOT ... and OR OR OR ... nest without parentheses: a named limit. */
#define IMAP_MAX_SEARCH_DEPTH 64

enum skind {
    S_AND,
    S_NOT,
    S_OR,
    S_ALL,
    S_FLAG_SET,
    S_FLAG_UNSET,
    S_KEYWORD,
    S_UNKEYWORD,
    S_UID,
    S_SEQ,
    S_HEADER,
    S_BODY,
    S_TEXT,
    S_BEFORE,
    S_ON,
    S_SINCE,
    S_LARGER,
    S_SMALLER,
    S_MODSEQ,
    S_SAVED,
    S_SENTBEFORE,
    S_SENTON,
    S_SENTSINCE,
};

struct skey {
    enum skind kind;
    unsigned flag;
    struct slice a, b; /* HEADER name, value; KEYWORD, BODY, TEXT: a */
    int64_t date;
    uint64_t num;
    struct imap_seqset set;
    struct skey *sub; /* AND: children; NOT: 1; OR: 2 */
    size_t n_sub;
    /* BODY, TEXT and header keys the store's full-text index answered (index_keys) */
    bool indexed;
    uint32_t *hits; /* the UIDs the index names, ascending */
    bool *other;    /* hits[i] did not match, but has parts the index lacks: scan them */
    size_t n_hits;
};

struct sparser {
    const struct imap_arg *args;
    size_t n, pos;
    const char *error;
};

static void skey_free(struct skey *k)
{
    for (size_t i = 0; i < k->n_sub; i++)
        skey_free(&k->sub[i]);
    free(k->sub);
    free(k->hits);
    free(k->other);
    imap_seqset_free(&k->set);
}

static bool sfail(struct sparser *p, const char *e)
{
    if (p->error == NULL)
        p->error = e;
    return false;
}

static bool next_string(struct sparser *p, struct slice *out)
{
    if (p->pos >= p->n || !imap_arg_astring(&p->args[p->pos], out))
        return sfail(p, "Missing search argument");
    p->pos++;
    return true;
}

static bool parse_key(struct sparser *p, struct skey *k, unsigned depth);

static bool parse_keys(const struct imap_arg *args, size_t n, struct skey *k, unsigned depth,
                       const char **error_r)
{
    struct sparser p = {.args = args, .n = n};
    memset(k, 0, sizeof(*k));
    k->kind = S_AND;
    k->sub = xcalloc(n ? n : 1, sizeof(*k->sub));
    while (p.pos < p.n) {
        if (!parse_key(&p, &k->sub[k->n_sub++], depth)) {
            *error_r = p.error ? p.error : "Invalid search key";
            return false;
        }
    }
    if (k->n_sub == 0) {
        *error_r = "Missing search key";
        return false;
    }
    return true;
}

static bool parse_key(struct sparser *p, struct skey *k, unsigned depth)
{
    static const struct {
        const char *name;
        enum skind kind;
        unsigned flag;
    } simple[] = {
        {"ALL", S_ALL, 0},
        {"SEEN", S_FLAG_SET, STORE_FLAG_SEEN},
        {"UNSEEN", S_FLAG_UNSET, STORE_FLAG_SEEN},
        {"FLAGGED", S_FLAG_SET, STORE_FLAG_FLAGGED},
        {"UNFLAGGED", S_FLAG_UNSET, STORE_FLAG_FLAGGED},
        {"DELETED", S_FLAG_SET, STORE_FLAG_DELETED},
        {"UNDELETED", S_FLAG_UNSET, STORE_FLAG_DELETED},
        {"ANSWERED", S_FLAG_SET, STORE_FLAG_ANSWERED},
        {"UNANSWERED", S_FLAG_UNSET, STORE_FLAG_ANSWERED},
        {"DRAFT", S_FLAG_SET, STORE_FLAG_DRAFT},
        {"UNDRAFT", S_FLAG_UNSET, STORE_FLAG_DRAFT},
        /* \Recent: IMAP4rev1 sessions only (view_recent_mark); NEW is below. */
        {"RECENT", S_FLAG_SET, IMAP_MSG_RECENT},
        {"OLD", S_FLAG_UNSET, IMAP_MSG_RECENT},
    };
    static const char *const headers[] = {"FROM", "TO", "CC", "BCC", "SUBJECT"};
    memset(k, 0, sizeof(*k));
    if (depth > IMAP_MAX_SEARCH_DEPTH)
        return sfail(p, "Search keys nested too deeply");
    const struct imap_arg *a = &p->args[p->pos++];
    if (a->type == IMAP_ARG_LIST) {
        const char *e;
        if (!parse_keys(a->list, a->n_list, k, depth + 1, &e))
            return sfail(p, e);
        return true;
    }
    if (a->type != IMAP_ARG_ATOM)
        return sfail(p, "Invalid search key");
    struct slice w = a->str;
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (slice_eq_cstr_nocase(w, simple[i].name)) {
            k->kind = simple[i].kind;
            k->flag = simple[i].flag;
            return true;
        }
    }
    if (slice_eq_cstr_nocase(w, "NEW")) { /* RECENT UNSEEN */
        k->kind = S_AND;
        k->sub = xcalloc(2, sizeof(*k->sub));
        k->n_sub = 2;
        k->sub[0].kind = S_FLAG_SET;
        k->sub[0].flag = IMAP_MSG_RECENT;
        k->sub[1].kind = S_FLAG_UNSET;
        k->sub[1].flag = STORE_FLAG_SEEN;
        return true;
    }
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        if (slice_eq_cstr_nocase(w, headers[i])) {
            k->kind = S_HEADER;
            k->a = slice_from_cstr(headers[i]);
            return next_string(p, &k->b);
        }
    }
    if (slice_eq_cstr_nocase(w, "HEADER")) {
        k->kind = S_HEADER;
        return next_string(p, &k->a) && next_string(p, &k->b);
    }
    if (slice_eq_cstr_nocase(w, "BODY") || slice_eq_cstr_nocase(w, "TEXT")) {
        k->kind = slice_eq_cstr_nocase(w, "BODY") ? S_BODY : S_TEXT;
        return next_string(p, &k->a);
    }
    if (slice_eq_cstr_nocase(w, "KEYWORD") || slice_eq_cstr_nocase(w, "UNKEYWORD")) {
        k->kind = slice_eq_cstr_nocase(w, "KEYWORD") ? S_KEYWORD : S_UNKEYWORD;
        return next_string(p, &k->a);
    }
    static const struct {
        const char *name;
        enum skind kind;
    } dates[] = {{"BEFORE", S_BEFORE},         {"ON", S_ON},         {"SINCE", S_SINCE},
                 {"SENTBEFORE", S_SENTBEFORE}, {"SENTON", S_SENTON}, {"SENTSINCE", S_SENTSINCE}};
    size_t di = 0;
    while (di < sizeof(dates) / sizeof(dates[0]) && !slice_eq_cstr_nocase(w, dates[di].name))
        di++;
    if (di < sizeof(dates) / sizeof(dates[0])) {
        k->kind = dates[di].kind;
        struct slice d;
        if (!next_string(p, &d))
            return false;
        return date_imap_day_parse(d, &k->date) || sfail(p, "Invalid date");
    }
    if (slice_eq_cstr_nocase(w, "LARGER") || slice_eq_cstr_nocase(w, "SMALLER")) {
        k->kind = slice_eq_cstr_nocase(w, "LARGER") ? S_LARGER : S_SMALLER;
        struct slice num;
        if (!next_string(p, &num))
            return false;
        return imap_parse_number(num, UINT64_MAX, &k->num) || sfail(p, "Invalid number");
    }
    if (slice_eq_cstr_nocase(w, "MODSEQ")) { /* RFC 7162 3.1.5: MODSEQ [entry type] n */
        k->kind = S_MODSEQ;
        if (p->pos + 2 < p->n && p->args[p->pos].type == IMAP_ARG_STRING)
            p->pos += 2; /* per-flag entries: we keep one MODSEQ per message */
        struct slice num;
        if (!next_string(p, &num))
            return false;
        return imap_parse_number(num, INT64_MAX, &k->num) || sfail(p, "Invalid mod-sequence");
    }
    if (slice_eq_cstr_nocase(w, "UID")) {
        k->kind = S_UID;
        struct slice set;
        if (!next_string(p, &set))
            return false;
        if (imap_set_is_saved(set)) {
            k->kind = S_SAVED;
            return true;
        }
        return imap_seqset_parse(set, &k->set) || sfail(p, "Invalid UID set");
    }
    if (imap_set_is_saved(w)) { /* RFC 5182: the saved result, whichever numbering */
        k->kind = S_SAVED;
        return true;
    }
    if (slice_eq_cstr_nocase(w, "NOT") || slice_eq_cstr_nocase(w, "OR")) {
        bool or = slice_eq_cstr_nocase(w, "OR");
        k->kind = or ? S_OR : S_NOT;
        k->sub = xcalloc(2, sizeof(*k->sub));
        for (size_t i = 0; i < (or ? 2u : 1u); i++) {
            if (p->pos >= p->n)
                return sfail(p, "Missing search key");
            k->n_sub++;
            if (!parse_key(p, &k->sub[i], depth + 1))
                return false;
        }
        return true;
    }
    if (w.len > 0 && ((w.ptr[0] >= '0' && w.ptr[0] <= '9') || w.ptr[0] == '*')) {
        k->kind = S_SEQ;
        return imap_seqset_parse(w, &k->set) || sfail(p, "Invalid sequence set");
    }
    return sfail(p, "Unknown search key");
}

/* ---- evaluation ---- */

struct smsg {
    struct imap_session *s;
    const struct imap_msg *m;
    uint32_t msn, star_msn, star_uid;
    bool loaded, failed;
    int sent; /* 0: not looked at; 1: sent_day is the Date: field's day; -1: none or invalid */
    int64_t sent_day;
    struct buf data;
    struct mime_message mime;
    struct slice rec; /* the search record (the store's, or built here); ptr NULL: none yet */
    struct buf built; /* a record built here, for a message stored before records */
};

/* Unix time to the start of its day (UTC). */
static int64_t day_of(int64_t t)
{
    return t >= 0 ? t / 86400 * 86400 : -((-t + 86399) / 86400) * 86400;
}

static bool smsg_load(struct smsg *sm)
{
    if (!sm->loaded && !sm->failed) {
        struct buf err = BUF_INIT;
        if (store_message_read_id(sm->s->srv->store, sm->s->view.owner, sm->s->view.id, sm->m->uid,
                                  &sm->data, &err) != 0) {
            sm->failed = true;
        } else {
            struct mime_limits lim;
            mime_limits_from_config(&lim, sm->s->srv->cfg);
            mime_parse(&sm->mime, buf_slice(&sm->data), &lim);
            sm->loaded = true;
        }
        buf_free(&err);
    }
    return sm->loaded;
}

/* The message's search record: the store's, else built from the message (an
 * older message; imap_search_eval writes it back). */
static bool smsg_record(struct smsg *sm, struct slice *rest_r)
{
    if (sm->rec.ptr == NULL || !mime_cache_record_valid(sm->rec)) {
        if (!smsg_load(sm))
            return false;
        buf_reset(&sm->built);
        mime_cache_record(&sm->built, &sm->mime, sm->mime.root);
        sm->rec = buf_slice(&sm->built);
    }
    *rest_r = slice_make(sm->rec.ptr + 1, sm->rec.len - 1);
    return true;
}

/*
 * RFC 3501 6.4.4 / RFC 9051 6.4.4: a case-insensitive substring of the field
 * (unfolded, encoded-words decoded). Address fields also match on their
 * addresses with comments removed, as Dovecot does ("From: <a (c)@ (c) d>"
 * matches "a@d"). The fields the search record holds are read from it.
 */
static bool header_match(struct smsg *sm, struct slice name, struct slice value)
{
    struct slice rest, n, v;
    if (mime_cache_covers(name)) {
        if (!smsg_record(sm, &rest))
            return false;
        while (mime_cache_record_next(&rest, &n, &v))
            if (slice_eq_nocase(n, name) && slice_contains_nocase(v, value))
                return true;
        return false;
    }
    if (!smsg_load(sm))
        return false;
    const struct mime_part *root = sm->mime.root;
    bool found = false;
    struct buf t = BUF_INIT, d = BUF_INIT;
    for (size_t i = 0; i < root->field_count && !found; i++) {
        const struct mime_field *f = &sm->mime.fields[root->field_first + i];
        if (!slice_eq_nocase(mime_field_name(&sm->mime, f), name))
            continue;
        buf_reset(&t);
        buf_reset(&d);
        mime_unfold(mime_field_value(&sm->mime, f), &t);
        mime_decode_words(buf_slice(&t), &d);
        found = slice_contains_nocase(buf_slice(&d), value);
    }
    buf_free(&t);
    buf_free(&d);
    return found;
}

/* RFC 3501 6.4.4: the Date: field's day, "disregarding time and timezone". */
static bool sent_day(struct smsg *sm, int64_t *day_r)
{
    if (sm->sent == 0) {
        sm->sent = -1;
        int64_t t, zone;
        struct slice rest, n, v, date = {NULL, 0};
        if (smsg_record(sm, &rest)) /* the last Date: field, as ENVELOPE takes it */
            while (mime_cache_record_next(&rest, &n, &v))
                if (slice_eq_cstr_nocase(n, "date"))
                    date = v;
        if (date.ptr != NULL && date_rfc5322_parse(date, &t, &zone)) {
            sm->sent_day = day_of(t + zone);
            sm->sent = 1;
        }
    }
    *day_r = sm->sent_day;
    return sm->sent == 1;
}

/* Whether a leaf part of the message that is not text (an attachment, which
 * the index does not hold) has needle in its decoded content. */
static bool other_match(struct smsg *sm, const struct mime_part *p, struct slice needle)
{
    if (p->kind != MIME_LEAF) {
        for (const struct mime_part *c = p->children; c != NULL; c = c->next)
            if (other_match(sm, c, needle))
                return true;
        return false;
    }
    if (slice_eq_cstr_nocase(p->type, "text"))
        return false;
    struct buf text = BUF_INIT;
    mime_part_text(&sm->mime, p, &text);
    bool found = slice_contains_nocase(buf_slice(&text), needle);
    buf_free(&text);
    return found;
}

/* The body's text as the full-text index holds it (mime_body_text: the text
 * parts, HTML as text) and the parts it does not hold: a scan, for a needle
 * too short for the index. */
static bool body_match(struct smsg *sm, struct slice needle)
{
    struct buf text = BUF_INIT;
    mime_body_text(&sm->mime, &text);
    bool found =
        slice_contains_nocase(buf_slice(&text), needle) || other_match(sm, sm->mime.root, needle);
    buf_free(&text);
    return found;
}

/*
 * Asks the store's full-text index for the keys it answers (BODY, TEXT and
 * the header keys of the fields it holds, with text of 3 characters or
 * more): the UIDs of the mailbox that match, so that eval looks them up
 * instead of reading each message. A key the index does not answer (short
 * text, an error) is scanned as before.
 */
static void index_keys(struct imap_session *s, struct skey *k)
{
    static const struct {
        const char *name;
        unsigned field;
    } fields[] = {{"from", STORE_TEXT_FROM},
                  {"to", STORE_TEXT_TO},
                  {"cc", STORE_TEXT_CC},
                  {"bcc", STORE_TEXT_BCC},
                  {"subject", STORE_TEXT_SUBJECT}};
    for (size_t i = 0; i < k->n_sub; i++)
        index_keys(s, &k->sub[i]);
    unsigned f = 0;
    struct slice text = k->a;
    /* BODY and TEXT: the body is all its parts; the index holds the text ones
     * (and the header block), so the others of the messages that have any are scanned */
    if (k->kind == S_BODY)
        f = STORE_TEXT_BODY | STORE_TEXT_OTHER;
    else if (k->kind == S_TEXT)
        f = STORE_TEXT_HEADER | STORE_TEXT_BODY | STORE_TEXT_OTHER;
    else if (k->kind == S_HEADER) {
        text = k->b;
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (slice_eq_cstr_nocase(k->a, fields[i].name))
                f = fields[i].field;
    }
    if (f == 0 || !store_text_indexed(text))
        return;
    struct store_text_hit *v;
    size_t n;
    struct buf err = BUF_INIT;
    int rc = store_text_search(s->srv->store, s->view.owner, s->view.id, f, text, &v, &n, &err);
    if (rc < 0)
        log_warning("user=<%s>: text index: %s", s->account, buf_cstr(&err));
    buf_free(&err);
    if (rc != 0)
        return;
    k->indexed = true;
    k->hits = xcalloc(n ? n : 1, sizeof(*k->hits));
    k->other = xcalloc(n ? n : 1, sizeof(*k->other));
    for (size_t i = 0; i < n; i++) {
        k->other[k->n_hits] = v[i].other;
        k->hits[k->n_hits++] = v[i].uid; /* by UID: one mailbox */
    }
    free(v);
}

/* An indexed key on a message: named by the index, and a match in the text
 * it holds or in the other parts of the message (read only then). */
static bool hit(struct smsg *sm, const struct skey *k, uint32_t uid)
{
    size_t lo = 0, hi = k->n_hits;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (k->hits[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == k->n_hits || k->hits[lo] != uid)
        return false;
    return !k->other[lo] || (smsg_load(sm) && other_match(sm, sm->mime.root, k->a));
}

static bool keyword_has(const char *keywords, struct slice k)
{
    const char *p = keywords;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (slice_eq_nocase(slice_make(p, len), k))
            return true;
        p += len + (e ? 1 : 0);
    }
    return false;
}

static bool eval(struct smsg *sm, const struct skey *k)
{
    const struct imap_msg *m = sm->m;
    int64_t day = day_of(m->internaldate), sent;
    if (k->indexed)
        return hit(sm, k, m->uid);
    switch (k->kind) {
    case S_AND:
        for (size_t i = 0; i < k->n_sub; i++)
            if (!eval(sm, &k->sub[i]))
                return false;
        return true;
    case S_NOT:
        return !eval(sm, &k->sub[0]);
    case S_OR:
        return eval(sm, &k->sub[0]) || eval(sm, &k->sub[1]);
    case S_ALL:
        return true;
    case S_FLAG_SET:
        return (m->flags & k->flag) != 0;
    case S_FLAG_UNSET:
        return (m->flags & k->flag) == 0;
    case S_KEYWORD:
        return keyword_has(m->keywords, k->a);
    case S_UNKEYWORD:
        return !keyword_has(m->keywords, k->a);
    case S_UID:
        return imap_seqset_contains(&k->set, m->uid, sm->star_uid);
    case S_SEQ:
        return imap_seqset_contains(&k->set, sm->msn, sm->star_msn);
    case S_HEADER:
        return header_match(sm, k->a, k->b);
    case S_BODY:
        return smsg_load(sm) && body_match(sm, k->a);
    case S_TEXT:
        return smsg_load(sm) &&
               (slice_contains_nocase(mime_part_header(&sm->mime, sm->mime.root), k->a) ||
                body_match(sm, k->a));
    case S_BEFORE:
        return day < k->date;
    case S_ON:
        return day == k->date;
    case S_SINCE:
        return day >= k->date;
    case S_LARGER:
        return m->size > k->num;
    case S_SMALLER:
        return m->size < k->num;
    case S_MODSEQ:
        return m->modseq >= k->num;
    case S_SAVED:
        return imap_view_saved_has(&sm->s->view, m->uid);
    case S_SENTBEFORE: /* a message without a valid Date: matches none of the three */
        return sent_day(sm, &sent) && sent < k->date;
    case S_SENTON:
        return sent_day(sm, &sent) && sent == k->date;
    case S_SENTSINCE:
        return sent_day(sm, &sent) && sent >= k->date;
    }
    return false;
}

static bool uses_modseq(const struct skey *k)
{
    if (k->kind == S_MODSEQ)
        return true;
    for (size_t i = 0; i < k->n_sub; i++)
        if (uses_modseq(&k->sub[i]))
            return true;
    return false;
}

/* Whether some key reads the search record (header fields it holds, SENT*). */
static bool uses_record(const struct skey *k)
{
    if ((k->kind == S_HEADER && mime_cache_covers(k->a)) || k->kind == S_SENTBEFORE ||
        k->kind == S_SENTON || k->kind == S_SENTSINCE)
        return true;
    for (size_t i = 0; i < k->n_sub; i++)
        if (uses_record(&k->sub[i]))
            return true;
    return false;
}

enum search_return {
    RET_MIN = IMAP_RET_MIN, /* RETURN options: imap_context.c parses and answers them */
    RET_MAX = IMAP_RET_MAX,
    RET_ALL = IMAP_RET_ALL,
    RET_COUNT = IMAP_RET_COUNT,
    RET_SAVE = IMAP_RET_SAVE, /* RFC 5182 */
};

const char *imap_search_eval(struct imap_session *s, const struct imap_arg *args, size_t n,
                             bool **match_r, bool *modseq_r)
{
    struct skey root;
    const char *e;
    *match_r = NULL;
    if (!parse_keys(args, n, &root, 0, &e)) {
        skey_free(&root);
        return e;
    }
    const struct imap_view *v = &s->view;
    if (modseq_r != NULL)
        *modseq_r = uses_modseq(&root);
    bool *match = xcalloc(v->n ? v->n : 1, sizeof(*match));
    if (v->n > 0)
        index_keys(s, &root);
    /* Header keys read the search records: one statement for the mailbox. */
    struct store_records recs = {0};
    struct buf fill_data = BUF_INIT;
    uint32_t *fill_uids = NULL;
    size_t *fill_off = NULL, n_fill = 0, ri = 0;
    if (v->n > 0 && uses_record(&root)) {
        struct buf err = BUF_INIT;
        if (store_message_records_id(s->srv->store, v->owner, v->id, v->msgs[0].uid, &recs, &err) !=
            0)
            log_warning("user=<%s>: search records: %s", s->account, buf_cstr(&err));
        buf_free(&err);
        fill_uids = xcalloc(v->n, sizeof(*fill_uids));
        fill_off = xcalloc(v->n + 1, sizeof(*fill_off));
    }
    for (size_t i = 0; i < v->n; i++) {
        struct smsg sm = {.s = s,
                          .m = &v->msgs[i],
                          .msn = (uint32_t)(i + 1),
                          .star_msn = (uint32_t)v->n,
                          .star_uid = v->msgs[v->n - 1].uid};
        buf_init(&sm.data);
        buf_init(&sm.built);
        while (ri < recs.n && recs.v[ri].uid < sm.m->uid)
            ri++;
        bool stored = ri < recs.n && recs.v[ri].uid == sm.m->uid;
        if (stored)
            sm.rec = store_record_get(&recs, ri);
        match[i] = eval(&sm, &root);
        if (stored && sm.built.len > 0) { /* an older message: keep what was built */
            fill_uids[n_fill] = sm.m->uid;
            fill_off[n_fill++] = fill_data.len;
            buf_append_slice(&fill_data, buf_slice(&sm.built));
        }
        if (sm.loaded)
            mime_message_free(&sm.mime);
        buf_free(&sm.data);
        buf_free(&sm.built);
    }
    if (n_fill > 0) {
        struct slice *fill = xcalloc(n_fill, sizeof(*fill));
        fill_off[n_fill] = fill_data.len;
        for (size_t i = 0; i < n_fill; i++)
            fill[i] = slice_make(fill_data.data + fill_off[i], fill_off[i + 1] - fill_off[i]);
        struct buf err = BUF_INIT;
        if (store_message_set_records_id(s->srv->store, v->owner, v->id, fill_uids, fill, n_fill,
                                         &err) < 0)
            log_warning("user=<%s>: search records: %s", s->account, buf_cstr(&err));
        buf_free(&err);
        free(fill);
    }
    free(fill_uids);
    free(fill_off);
    buf_free(&fill_data);
    store_records_free(&recs);
    skey_free(&root);
    *match_r = match;
    return NULL;
}

bool imap_search_charset(struct imap_session *s, struct slice tag, const struct imap_arg *a)
{
    struct slice cs;
    if (!imap_arg_astring(a, &cs) ||
        (!slice_eq_cstr_nocase(cs, "UTF-8") && !slice_eq_cstr_nocase(cs, "US-ASCII"))) {
        imap_printf(s, "%.*s NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset", TAGF(tag));
        return false;
    }
    return true;
}

/*
 * RFC 5182 2.1 (RFC 9051 6.4.4.1): SAVE keeps every hit, unless MIN and/or
 * MAX come without ALL or COUNT: then only those. idx: view indexes, ascending.
 */
static void saved_set(struct imap_view *v, unsigned ret, const size_t *idx, size_t n)
{
    free(v->saved);
    v->saved = xcalloc(n ? n : 1, sizeof(*v->saved));
    v->n_saved = 0;
    bool ends_only = (ret & (RET_MIN | RET_MAX)) && !(ret & (RET_ALL | RET_COUNT));
    for (size_t i = 0; i < n; i++)
        if (!ends_only || (i == 0 && (ret & RET_MIN)) || (i == n - 1 && (ret & RET_MAX)))
            v->saved[v->n_saved++] = v->msgs[idx[i]].uid;
}

void imap_cmd_search(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    struct imap_return r = {0};
    if (n >= 2 && imap_arg_is_atom(&args[0], "RETURN")) {
        const char *e = imap_return_parse(s, tag, &args[1], false, &r);
        if (e != NULL) {
            imap_bad(s, tag, e);
            return;
        }
        args += 2;
        n -= 2;
    }
    unsigned ret = r.opts;
    if (n >= 2 && imap_arg_is_atom(&args[0], "CHARSET")) {
        if (!imap_search_charset(s, tag, &args[1])) {
            if (ret & RET_SAVE) /* a SAVE that ends in NO empties "$" */
                saved_set(&s->view, ret, NULL, 0);
            return;
        }
        args += 2;
        n -= 2;
    }
    bool *match, modseq;
    const char *e = imap_search_eval(s, args, n, &match, &modseq);
    if (e != NULL) {
        imap_bad(s, tag, e);
        return;
    }
    struct imap_view *v = &s->view;
    struct buf out = BUF_INIT;
    uint64_t highest = 0;
    if (modseq)
        imap_condstore_enable(s);
    uint32_t *hits = xcalloc(v->n ? v->n : 1, sizeof(*hits));
    size_t *idx = xcalloc(v->n ? v->n : 1, sizeof(*idx));
    size_t n_hits = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (match[i]) {
            idx[n_hits] = i;
            hits[n_hits++] = uid ? v->msgs[i].uid : (uint32_t)(i + 1);
            if (v->msgs[i].modseq > highest)
                highest = v->msgs[i].modseq;
        }
    }
    free(match);
    /* RFC 7162 3.1.5: with MIN/MAX alone, the MODSEQ of the messages returned. */
    if ((ret & (RET_MIN | RET_MAX)) && !(ret & (RET_ALL | RET_COUNT)) && n_hits > 0) {
        uint64_t lo = v->msgs[idx[0]].modseq, hi = v->msgs[idx[n_hits - 1]].modseq;
        highest = (ret & RET_MIN) ? lo : 0;
        if ((ret & RET_MAX) && hi > highest)
            highest = hi;
    }
    if (ret & RET_SAVE)
        saved_set(v, ret, idx, n_hits);
    imap_context_search_done(s, tag, uid, &r, args, n, idx, n_hits, &out); /* UPDATE */
    free(idx);
    if (ret == 0 && s->rev2)
        r.opts = ret = RET_ALL; /* RFC 9051 6.4.4: IMAP4rev2 answers ESEARCH, never SEARCH */
    if (ret & ~RET_SAVE) {
        imap_esearch_write(&out, tag, uid, &r, hits, n_hits, modseq ? highest : 0);
    } else if (ret == 0) {
        buf_append_cstr(&out, "* SEARCH");
        for (size_t i = 0; i < n_hits; i++)
            buf_printf(&out, " %u", hits[i]);
        if (modseq && highest > 0)
            buf_printf(&out, " (MODSEQ %llu)", (unsigned long long)highest);
        buf_append_cstr(&out, "\r\n");
    } /* SAVE alone: no ESEARCH (RFC 5182 2.4) */
    free(hits);
    buf_printf(&out, "%.*s OK %sSEARCH completed\r\n", TAGF(tag), uid ? "UID " : "");
    net_conn_write(s->conn, out.data, out.len);
    buf_free(&out);
}
