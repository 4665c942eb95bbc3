/*
 * imap_fetch.c - FETCH and UID FETCH: FLAGS, INTERNALDATE, RFC822.SIZE, UID,
 * ENVELOPE, BODY, BODYSTRUCTURE, BODY[section]<partial>, BODY.PEEK[...],
 * RFC822, RFC822.HEADER, RFC822.TEXT, BINARY[section]<partial>, BINARY.PEEK,
 * BINARY.SIZE (RFC 3516), and the macros ALL, FAST, FULL.
 * ENVELOPE, BODY and BODYSTRUCTURE are rendered from the parsed structure
 * the store keeps (src/mime's mime_struct); a message whose cache is missing
 * or of another version is parsed, and its structure written to the cache.
 * Must never: set \Seen in a mailbox opened with EXAMINE, or send a section
 * outside the message.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"
#include "mime/mime.h"
#include "base/date.h"

#include <stdlib.h>
#include <string.h>

enum fetch_kind {
    F_FLAGS,
    F_INTERNALDATE,
    F_RFC822_SIZE,
    F_UID,
    F_ENVELOPE,
    F_BODY,
    F_BODYSTRUCTURE,
    F_SECTION, /* BODY[...] / BODY.PEEK[...] */
    F_RFC822,
    F_RFC822_HEADER,
    F_RFC822_TEXT,
    F_MODSEQ, /* CONDSTORE */
    F_BINARY, /* BINARY[...] / BINARY.PEEK[...] (RFC 3516) */
    F_BINARY_SIZE,
};

struct fetch_item {
    enum fetch_kind kind;
    struct slice spec; /* F_SECTION: between the brackets */
    bool peek;
    bool partial;
    uint64_t origin, length;
};

struct fetch {
    struct fetch_item *v;
    size_t n, cap;
    bool sets_seen;
};

static void fetch_add(struct fetch *f, enum fetch_kind kind)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->v = xreallocarray(f->v, f->cap, sizeof(*f->v));
    }
    memset(&f->v[f->n], 0, sizeof(f->v[0]));
    f->v[f->n++].kind = kind;
}

static bool fetch_has(const struct fetch *f, enum fetch_kind kind)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].kind == kind)
            return true;
    return false;
}

/* BODY[spec]<origin.length> or BODY.PEEK[...]; validates the spec on an empty message. */
static const char *parse_section(struct fetch *f, struct slice item)
{
    const char *lb = memchr(item.ptr, '[', item.len);
    struct slice name = slice_make(item.ptr, (size_t)(lb - item.ptr));
    bool peek =
        slice_eq_cstr_nocase(name, "BODY.PEEK") || slice_eq_cstr_nocase(name, "BINARY.PEEK");
    enum fetch_kind kind = F_SECTION;
    if (slice_eq_cstr_nocase(name, "BINARY") || slice_eq_cstr_nocase(name, "BINARY.PEEK"))
        kind = F_BINARY;
    else if (slice_eq_cstr_nocase(name, "BINARY.SIZE"))
        kind = F_BINARY_SIZE;
    else if (!peek && !slice_eq_cstr_nocase(name, "BODY"))
        return "Unknown FETCH item";
    const char *end = item.ptr + item.len;
    const char *rb = memchr(lb, ']', (size_t)(end - lb));
    if (rb == NULL)
        return "Missing ']'";
    fetch_add(f, kind);
    struct fetch_item *it = &f->v[f->n - 1];
    it->spec = slice_make(lb + 1, (size_t)(rb - lb - 1));
    it->peek = peek;
    const char *p = rb + 1;
    if (p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (*p != '<' || end[-1] != '>' || dot == NULL ||
            !imap_parse_number(slice_make(p + 1, (size_t)(dot - p - 1)), UINT32_MAX, &it->origin) ||
            !imap_parse_number(slice_make(dot + 1, (size_t)(end - 1 - dot - 1)), UINT32_MAX,
                               &it->length) ||
            it->length == 0)
            return "Invalid partial range";
        it->partial = true;
    }
    if (kind != F_SECTION) {
        if (!imap_binary_spec_valid(it->spec) || (kind == F_BINARY_SIZE && it->partial))
            return "Invalid binary section";
        f->sets_seen = f->sets_seen || (kind == F_BINARY && !peek);
        return NULL;
    }
    struct mime_message empty;
    struct mime_section sec;
    buf_init(&sec.built);
    mime_parse(&empty, SLICE_LIT(""), NULL);
    enum mime_section_result r = mime_section_locate(&empty, it->spec, &sec);
    mime_message_free(&empty);
    buf_free(&sec.built);
    if (r == MIME_SECTION_BAD)
        return "Invalid section";
    if (!peek)
        f->sets_seen = true;
    return NULL;
}

static const char *parse_item(struct fetch *f, const struct imap_arg *a)
{
    if (a->type != IMAP_ARG_ATOM)
        return "Invalid FETCH item";
    struct slice s = a->str;
    if (memchr(s.ptr, '[', s.len) != NULL)
        return parse_section(f, s);
    if (slice_eq_cstr_nocase(s, "FLAGS"))
        fetch_add(f, F_FLAGS);
    else if (slice_eq_cstr_nocase(s, "INTERNALDATE"))
        fetch_add(f, F_INTERNALDATE);
    else if (slice_eq_cstr_nocase(s, "RFC822.SIZE"))
        fetch_add(f, F_RFC822_SIZE);
    else if (slice_eq_cstr_nocase(s, "UID"))
        fetch_add(f, F_UID);
    else if (slice_eq_cstr_nocase(s, "MODSEQ"))
        fetch_add(f, F_MODSEQ);
    else if (slice_eq_cstr_nocase(s, "ENVELOPE"))
        fetch_add(f, F_ENVELOPE);
    else if (slice_eq_cstr_nocase(s, "BODYSTRUCTURE"))
        fetch_add(f, F_BODYSTRUCTURE);
    else if (slice_eq_cstr_nocase(s, "BODY")) {
        fetch_add(f, F_BODY);
    } else if (slice_eq_cstr_nocase(s, "RFC822")) {
        fetch_add(f, F_RFC822);
        f->sets_seen = true;
    } else if (slice_eq_cstr_nocase(s, "RFC822.HEADER")) {
        fetch_add(f, F_RFC822_HEADER);
    } else if (slice_eq_cstr_nocase(s, "RFC822.TEXT")) {
        fetch_add(f, F_RFC822_TEXT);
        f->sets_seen = true;
    } else
        return "Unknown FETCH item";
    return NULL;
}

static const char *parse_items(struct fetch *f, const struct imap_arg *a)
{
    if (a->type == IMAP_ARG_ATOM) {
        bool all = slice_eq_cstr_nocase(a->str, "ALL"), full = slice_eq_cstr_nocase(a->str, "FULL");
        if (all || full || slice_eq_cstr_nocase(a->str, "FAST")) {
            fetch_add(f, F_FLAGS);
            fetch_add(f, F_INTERNALDATE);
            fetch_add(f, F_RFC822_SIZE);
            if (all || full)
                fetch_add(f, F_ENVELOPE);
            if (full) {
                fetch_add(f, F_BODY);
            }
            return NULL;
        }
        return parse_item(f, a);
    }
    if (a->type != IMAP_ARG_LIST || a->n_list == 0)
        return "Invalid FETCH items";
    for (size_t i = 0; i < a->n_list; i++) {
        const char *e = parse_item(f, &a->list[i]);
        if (e != NULL)
            return e;
    }
    return NULL;
}

/* One message's bytes and structure, read when first needed. */
struct loaded {
    bool have_data, parsed, have_struct;
    struct buf data;
    struct mime_message mime;
    struct mime_struct st; /* from the cache or from mime */
};

static int load(struct imap_session *s, const struct imap_msg *m, struct loaded *l, bool parse)
{
    if (!l->have_data) {
        struct buf err = BUF_INIT;
        int r =
            store_message_read_id(s->srv->store, s->view.owner, s->view.id, m->uid, &l->data, &err);
        if (r != 0) {
            if (r < 0)
                log_error("user=<%s>: read uid %u: %s", s->account, m->uid, buf_cstr(&err));
            buf_free(&err);
            return -1;
        }
        buf_free(&err);
        l->have_data = true;
    }
    if (parse && !l->parsed) {
        struct mime_limits lim;
        mime_limits_from_config(&lim, s->srv->cfg);
        mime_parse(&l->mime, buf_slice(&l->data), &lim);
        l->parsed = true;
    }
    return 0;
}

static void literal_write(struct buf *out, struct slice data)
{
    buf_printf(out, "{%zu}\r\n", data.len);
    buf_append_slice(out, data);
}

/*
 * The parsed structure (for ENVELOPE, BODY, BODYSTRUCTURE) from the store's
 * cache (c: this message's entry of the listing made for this FETCH, or
 * NULL) when it decodes, else from the message, then written to the cache.
 */
static int structure(struct imap_session *s, const struct imap_msg *m,
                     const struct store_message *c, struct loaded *l)
{
    if (l->have_struct)
        return 0;
    if (c != NULL && c->structure != NULL &&
        mime_struct_decode(slice_make(c->structure, c->structure_len), &l->st)) {
        l->have_struct = true;
        return 0;
    }
    if (load(s, m, l, true) != 0)
        return -1;
    mime_struct_from_message(&l->st, &l->mime);
    l->have_struct = true;
    struct buf err = BUF_INIT;
    if (store_message_set_cache_id(s->srv->store, s->view.owner, s->view.id, m->uid,
                                   buf_slice(&l->st.own), &err) != 0)
        log_warning("user=<%s>: cannot cache uid %u: %s", s->account, m->uid, buf_cstr(&err));
    buf_free(&err);
    return 0;
}

static int section_write(struct imap_session *s, struct imap_msg *m, struct loaded *l,
                         const struct fetch_item *it, struct buf *out)
{
    if (load(s, m, l, true) != 0)
        return -1;
    struct slice spec = it->spec;
    switch (it->kind) {
    case F_RFC822:
        spec = SLICE_LIT("");
        buf_append_cstr(out, "RFC822 ");
        break;
    case F_RFC822_HEADER:
        spec = SLICE_LIT("HEADER");
        buf_append_cstr(out, "RFC822.HEADER ");
        break;
    case F_RFC822_TEXT:
        spec = SLICE_LIT("TEXT");
        buf_append_cstr(out, "RFC822.TEXT ");
        break;
    default:
        buf_printf(out, "BODY[%.*s]", (int)spec.len, spec.ptr);
        if (it->partial)
            buf_printf(out, "<%llu>", (unsigned long long)it->origin);
        buf_append_byte(out, ' ');
        break;
    }
    struct mime_section sec;
    buf_init(&sec.built);
    struct slice data = SLICE_LIT("");
    switch (mime_section_locate(&l->mime, spec, &sec)) {
    case MIME_SECTION_RANGE:
        data = slice_make(l->data.data + sec.start, sec.len);
        break;
    case MIME_SECTION_BUILT:
        data = buf_slice(&sec.built);
        break;
    default:
        break;
    }
    if (it->partial) {
        if (it->origin >= data.len)
            data = SLICE_LIT("");
        else {
            size_t left = data.len - (size_t)it->origin;
            data = slice_make(data.ptr + it->origin, it->length < left ? (size_t)it->length : left);
        }
    }
    literal_write(out, data);
    buf_free(&sec.built);
    return 0;
}

/* BINARY[spec]<origin> and BINARY.SIZE[spec]; -2 for an unknown transfer encoding. */
static int binary_write(struct imap_session *s, struct imap_msg *m, struct loaded *l,
                        const struct fetch_item *it, struct buf *out)
{
    if (load(s, m, l, true) != 0)
        return -1;
    if (it->kind == F_BINARY_SIZE) {
        size_t size;
        if (imap_binary_size(&l->mime, it->spec, &size) == IMAP_BINARY_UNKNOWN_CTE)
            return -2;
        buf_printf(out, "BINARY.SIZE[%.*s] %zu", (int)it->spec.len, it->spec.ptr, size);
        return 0;
    }
    struct buf data = BUF_INIT;
    if (imap_binary_section(&l->mime, it->spec, &data) == IMAP_BINARY_UNKNOWN_CTE) {
        buf_free(&data);
        return -2;
    }
    struct slice d = buf_slice(&data);
    buf_printf(out, "BINARY[%.*s]", (int)it->spec.len, it->spec.ptr);
    if (it->partial) {
        buf_printf(out, "<%llu>", (unsigned long long)it->origin);
        if (it->origin >= d.len)
            d = SLICE_LIT("");
        else
            d = slice_make(d.ptr + it->origin, it->length < d.len - it->origin
                                                   ? (size_t)it->length
                                                   : d.len - (size_t)it->origin);
    }
    /* RFC 3516 4.2: content with NUL goes as a literal8. */
    buf_append_cstr(out, d.len > 0 && memchr(d.ptr, 0, d.len) != NULL ? " ~" : " ");
    literal_write(out, d);
    buf_free(&data);
    return 0;
}

/* Marks \Seen on the messages a non-PEEK body fetch reads (one store transaction). */
static void set_seen(struct imap_session *s, const size_t *idx, size_t k)
{
    uint32_t *uids = xcalloc(k ? k : 1, sizeof(*uids));
    size_t nu = 0;
    for (size_t i = 0; i < k; i++)
        if (!(s->view.msgs[idx[i]].flags & STORE_FLAG_SEEN))
            uids[nu++] = s->view.msgs[idx[i]].uid;
    if (nu > 0) {
        struct store_flags_result *res = xcalloc(nu, sizeof(*res));
        struct buf err = BUF_INIT;
        if (store_message_flags_id(s->srv->store, s->view.owner, s->view.id, uids, nu,
                                   STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, res, &err) != 0) {
            log_error("user=<%s>: set \\Seen: %s", s->account, buf_cstr(&err));
        } else {
            for (size_t i = 0, u = 0; i < k && u < nu; i++) {
                struct imap_msg *m = &s->view.msgs[idx[i]];
                if (m->uid != uids[u])
                    continue;
                if (res[u].outcome == STORE_FLAGS_CHANGED) {
                    m->flags = res[u].flags | (m->flags & IMAP_MSG_RECENT);
                    m->modseq = res[u].modseq;
                }
                u++;
            }
            imap_mailbox_changed(s, s->view.owner, s->view.name);
        }
        buf_free(&err);
        free(res);
    }
    free(uids);
}

/* "(CHANGEDSINCE m [VANISHED])" in any order (RFC 7162 3.1.4, 3.2.6); NULL or the BAD text. */
static const char *fetch_modifiers(struct imap_session *s, bool uid, const struct imap_arg *a,
                                   uint64_t *changedsince_r, bool *vanished_r)
{
    if (a->type != IMAP_ARG_LIST)
        return "Invalid FETCH modifier";
    for (size_t i = 0; i < a->n_list; i++) {
        const struct imap_arg *m = &a->list[i];
        if (imap_arg_is_atom(m, "CHANGEDSINCE") && *changedsince_r == 0 && i + 1 < a->n_list) {
            const struct imap_arg *v = &a->list[++i];
            if (v->type != IMAP_ARG_ATOM || !imap_parse_number(v->str, INT64_MAX, changedsince_r) ||
                *changedsince_r == 0)
                return "Invalid CHANGEDSINCE value";
        } else if (imap_arg_is_atom(m, "VANISHED") && !*vanished_r) {
            if (!uid || !s->qresync)
                return "VANISHED needs UID FETCH and ENABLE QRESYNC";
            *vanished_r = true;
        } else
            return "Invalid FETCH modifier (CHANGEDSINCE and VANISHED are supported)";
    }
    if (*changedsince_r == 0)
        return *vanished_r ? "VANISHED needs CHANGEDSINCE" : "Invalid FETCH modifier";
    return NULL;
}

/* "$" (RFC 5182) as a UID set, for VANISHED (EARLIER): the UIDs it still holds. */
static bool saved_seqset(const struct imap_view *v, struct imap_seqset *set)
{
    set->v = xcalloc(v->n_saved ? v->n_saved : 1, sizeof(*set->v));
    for (set->n = 0; set->n < v->n_saved; set->n++)
        set->v[set->n].lo = set->v[set->n].hi = v->saved[set->n];
    return true;
}

void imap_cmd_fetch(struct imap_session *s, struct slice tag, bool uid, const struct imap_arg *args,
                    size_t n)
{
    struct fetch f = {0};
    const char *e = NULL;
    uint64_t changedsince = 0;
    bool vanished = false;
    if ((n != 2 && n != 3) || args[0].type != IMAP_ARG_ATOM)
        e = "Usage: FETCH sequence-set items [(CHANGEDSINCE modseq [VANISHED])]";
    else if (n == 3)
        e = fetch_modifiers(s, uid, &args[2], &changedsince, &vanished);
    if (e == NULL)
        e = parse_items(&f, &args[1]);
    if (e == NULL && n == 3 && !fetch_has(&f, F_MODSEQ))
        fetch_add(&f, F_MODSEQ); /* RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ */
    if (e == NULL && fetch_has(&f, F_MODSEQ))
        imap_condstore_enable(s);
    if (e != NULL) {
        imap_bad(s, tag, e);
        free(f.v);
        return;
    }
    size_t *idx, k;
    if (!imap_view_select(s, tag, args[0].str, uid, &idx, &k)) {
        free(f.v);
        return;
    }
    struct buf out = BUF_INIT;
    if (vanished) {
        struct imap_seqset set = {0};
        bool ok = imap_set_is_saved(args[0].str) ? saved_seqset(&s->view, &set)
                                                 : imap_seqset_parse(args[0].str, &set);
        if (!ok || imap_vanished_earlier(s, changedsince, &set, &out) != 0) {
            imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
            if (ok)
                imap_seqset_free(&set);
            buf_free(&out);
            free(idx);
            free(f.v);
            return;
        }
        imap_seqset_free(&set);
        if (out.len > 0)
            net_conn_write(s->conn, out.data, out.len);
    }
    if (changedsince > 0) {
        size_t kept = 0;
        for (size_t i = 0; i < k; i++)
            if (s->view.msgs[idx[i]].modseq > changedsince)
                idx[kept++] = idx[i];
        k = kept;
    }
    bool add_flags = false;
    /* Without the right "s" a fetch that would set \Seen does not (RFC 4314 4). */
    if (f.sets_seen && !s->view.readonly && (s->view.rights & IMAP_RIGHT_S)) {
        set_seen(s, idx, k);
        add_flags = !fetch_has(&f, F_FLAGS);
    }
    bool add_uid = uid && !fetch_has(&f, F_UID);
    /* The view keeps no MIME cache (memory per session): one listing serves this FETCH. */
    struct store_message *cache = NULL;
    size_t n_cache = 0, ci = 0;
    if (k > 0 &&
        (fetch_has(&f, F_ENVELOPE) || fetch_has(&f, F_BODYSTRUCTURE) || fetch_has(&f, F_BODY))) {
        struct buf err = BUF_INIT;
        if (store_message_list_id(s->srv->store, s->view.owner, s->view.id,
                                  s->view.msgs[idx[0]].uid, &cache, &n_cache, &err) != 0)
            log_warning("user=<%s>: MIME cache: %s", s->account, buf_cstr(&err));
        buf_free(&err);
    }
    bool failed = false, unknown_cte = false;
    for (size_t i = 0; i < k && !failed; i++) {
        struct imap_msg *m = &s->view.msgs[idx[i]];
        while (ci < n_cache && cache[ci].uid < m->uid)
            ci++;
        struct store_message *c = ci < n_cache && cache[ci].uid == m->uid ? &cache[ci] : NULL;
        struct loaded l = {0};
        buf_init(&l.data);
        if (add_flags || fetch_has(&f, F_FLAGS))
            imap_view_keywords_announce(s, m->keywords);
        buf_reset(&out);
        buf_printf(&out, "* %zu FETCH (", idx[i] + 1);
        size_t start = out.len;
        if (add_uid)
            buf_printf(&out, "UID %u", m->uid);
        if (add_flags) { /* \Seen was just set: say so, before any literal */
            buf_append_cstr(&out, out.len > start ? " FLAGS " : "FLAGS ");
            imap_flags_write(&out, m->flags, m->keywords);
            if (s->condstore && !fetch_has(&f, F_MODSEQ))
                buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
        }
        for (size_t j = 0; j < f.n && !failed; j++) {
            const struct fetch_item *it = &f.v[j];
            if (out.len > start)
                buf_append_byte(&out, ' ');
            switch (it->kind) {
            case F_FLAGS:
                buf_append_cstr(&out, "FLAGS ");
                imap_flags_write(&out, m->flags, m->keywords);
                break;
            case F_INTERNALDATE:
                buf_append_cstr(&out, "INTERNALDATE \"");
                date_imap_append(m->internaldate, &out);
                buf_append_byte(&out, '"');
                break;
            case F_RFC822_SIZE:
                buf_printf(&out, "RFC822.SIZE %llu", (unsigned long long)m->size);
                break;
            case F_UID:
                buf_printf(&out, "UID %u", m->uid);
                break;
            case F_MODSEQ:
                buf_printf(&out, "MODSEQ (%llu)", (unsigned long long)m->modseq);
                break;
            case F_ENVELOPE:
                buf_append_cstr(&out, "ENVELOPE ");
                failed = structure(s, m, c, &l) != 0;
                if (!failed)
                    mime_imap_struct_envelope(&out, &l.st, 0);
                break;
            case F_BODYSTRUCTURE:
            case F_BODY:
                buf_append_cstr(&out, it->kind == F_BODY ? "BODY " : "BODYSTRUCTURE ");
                failed = structure(s, m, c, &l) != 0;
                if (!failed)
                    mime_imap_struct_bodystructure(&out, &l.st, 0, it->kind == F_BODYSTRUCTURE);
                break;
            case F_BINARY:
            case F_BINARY_SIZE: {
                int r = binary_write(s, m, &l, it, &out);
                unknown_cte = unknown_cte || r == -2;
                failed = r != 0;
                break;
            }
            default:
                failed = section_write(s, m, &l, it, &out) != 0;
                break;
            }
        }
        buf_append_cstr(&out, ")\r\n");
        if (!failed)
            net_conn_write(s->conn, out.data, out.len);
        if (l.parsed)
            mime_message_free(&l.mime);
        if (l.have_struct)
            mime_struct_free(&l.st);
        buf_free(&l.data);
    }
    if (unknown_cte)
        imap_printf(s, "%.*s NO [UNKNOWN-CTE] Cannot decode this part's transfer encoding",
                    TAGF(tag));
    else if (failed)
        /* Expunged meanwhile by another session (or store trouble, logged). */
        imap_printf(s, "%.*s NO Some messages could not be fetched", TAGF(tag));
    else
        imap_printf(s, "%.*s OK %sFETCH completed", TAGF(tag), uid ? "UID " : "");
    buf_free(&out);
    store_message_list_free(cache, n_cache);
    free(idx);
    free(f.v);
}
