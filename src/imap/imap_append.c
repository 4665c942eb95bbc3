/*
 * imap_append.c - APPEND with MULTIAPPEND (RFC 3502): one or more messages,
 * each with optional flags and date-time, stored all or none, answered with
 * one APPENDUID (RFC 4315) holding every new UID. A message may come as a
 * literal8 (~{n}, RFC 3516 BINARY), or as CATENATE (RFC 4469) parts: TEXT
 * literals and URLs (RFC 5092, imap_url.c) of messages or parts in
 * mailboxes the session may read, put together before anything is stored.
 *
 * All messages go to the store in one store_deliver call (one transaction).
 * The store keeps a status per message, so when some are refused (over
 * quota) the ones it kept are expunged again before the NO: the client sees
 * all or none (their UIDs are used up and appear in the expunge log).
 * Must never: append to a mailbox that does not exist (TRYCREATE), answer
 * OK when a message was not stored, or let a URL read a mailbox the session
 * has no "r" right on.
 */
#include "base/alloc.h"
#include "base/base64.h"
#include "base/log.h"
#include "imap/imap_int.h"
#include "mime/mime.h"
#include "base/date.h"

#include <stdlib.h>
#include <string.h>

/* Messages in one APPEND; each literal is limited by the reader, this bounds the bookkeeping. */
#define IMAP_MAX_APPEND_MESSAGES 64

struct append_msg {
    unsigned flags;
    struct buf keywords;
    int64_t date;
    const struct imap_arg *catenate; /* CATENATE's list of parts, or NULL */
    struct slice data;
    struct buf converted; /* data with binary parts in base64 (append_binary_convert) */
};

/* "(TEXT literal / URL url ...)": the syntax only (URLs are read later). */
static bool catenate_valid(const struct imap_arg *a)
{
    if (a->type != IMAP_ARG_LIST || a->n_list == 0 || a->n_list % 2 != 0)
        return false;
    for (size_t i = 0; i < a->n_list; i += 2) {
        const struct imap_arg *v = &a->list[i + 1];
        struct slice url;
        if (imap_arg_is_atom(&a->list[i], "TEXT")
                ? v->type != IMAP_ARG_STRING
                : !imap_arg_is_atom(&a->list[i], "URL") || !imap_arg_astring(v, &url))
            return false;
    }
    return true;
}

/* [flags] [date-time] message, repeated; NULL or the BAD text. */
static const char *append_parse(struct imap_session *s, const struct imap_arg *args, size_t n,
                                struct append_msg *v, size_t *n_r)
{
    size_t k = 0, i = 0;
    while (i < n) {
        if (k == IMAP_MAX_APPEND_MESSAGES)
            return "Too many messages in one APPEND";
        struct append_msg *m = &v[k++];
        if (args[i].type == IMAP_ARG_LIST) {
            if (!imap_flags_parse(&args[i], imap_keywords_max(s), &m->flags, &m->keywords))
                return "Invalid flags";
            i++;
        }
        /* a quoted string followed by the message is the date-time */
        if (i + 1 < n && args[i].type == IMAP_ARG_STRING && !args[i].literal &&
            (args[i + 1].type == IMAP_ARG_STRING || imap_arg_is_atom(&args[i + 1], "CATENATE"))) {
            if (!date_imap_parse(args[i].str, &m->date))
                return "Invalid date-time";
            i++;
        }
        if (i < n && imap_arg_is_atom(&args[i], "CATENATE")) {
            if (i + 1 == n || !catenate_valid(&args[i + 1]))
                return "Usage: CATENATE (TEXT literal / URL url ...)";
            m->catenate = &args[i + 1];
            i += 2;
            continue;
        }
        if (i == n || args[i].type != IMAP_ARG_STRING)
            return "Usage: APPEND mailbox [(flags)] [date-time] message ...";
        m->data = args[i++].str;
    }
    *n_r = k;
    return k > 0 ? NULL : "Usage: APPEND mailbox [(flags)] [date-time] message ...";
}

/*
 * RFC 3516 4.3: a message APPENDed as a literal8 may hold binary content,
 * NUL bytes included, which no BODY[] literal may carry (RFC 3501 4.3). Each
 * part whose body holds NUL is stored in base64 (its Content-Transfer-Encoding
 * says so), as Dovecot does: BODY[] sends it as text and BINARY[] decodes it
 * back to the bytes the client sent. false (out untouched): nothing to do.
 */
/* Part p and its descendants, in document order; *done: data copied to out so far. */
static void convert_part(const struct mime_message *msg, const struct mime_part *p, struct buf *out,
                         size_t *done)
{
    for (const struct mime_part *c = p->children; c != NULL; c = c->next)
        convert_part(msg, c, out, done);
    struct slice body = mime_part_body(msg, p);
    if (p->children != NULL || body.len == 0 || memchr(body.ptr, '\0', body.len) == NULL)
        return;
    const char *data = msg->data.ptr;
    const struct mime_field *f = mime_part_field(msg, p, "Content-Transfer-Encoding");
    size_t at = f ? f->value_start : p->hdr_start;
    buf_append(out, data + *done, at - *done);
    if (f != NULL) {
        buf_append_cstr(out, " base64");
        *done = f->value_start + f->value_len;
    } else {
        buf_append_cstr(out, "Content-Transfer-Encoding: base64\r\n");
        *done = at;
    }
    buf_append(out, data + *done, p->body_start - *done);
    base64_encode_lines(body.ptr, body.len, 76, "\r\n", out); /* RFC 2045 6.8 */
    *done = p->body_start + p->body_len;
}

static bool append_binary_convert(struct slice data, struct buf *out)
{
    if (data.len == 0 || memchr(data.ptr, '\0', data.len) == NULL)
        return false;
    struct mime_message msg;
    mime_parse(&msg, data, NULL);
    size_t done = 0;
    convert_part(&msg, msg.root, out, &done);
    buf_append(out, data.ptr + done, data.len - done);
    mime_message_free(&msg);
    return true;
}

/* Takes back what a refused batch stored (all or none, RFC 3502). */
static void append_undo(struct imap_session *s, const char *owner, const char *mailbox,
                        struct store_target *t, size_t n)
{
    uint32_t *uids = xcalloc(n, sizeof(*uids));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].status == STORE_OK)
            uids[k++] = t[i].uid;
    struct buf err = BUF_INIT;
    if (k > 0 && store_message_expunge(s->srv->store, owner, mailbox, uids, k, &err) != 0)
        log_error("user=<%s>: cannot take back a refused APPEND: %s", s->account, buf_cstr(&err));
    else if (k > 0)
        imap_mailbox_changed(s, owner,
                             mailbox); /* a session that saw them in between learns they went */
    buf_free(&err);
    free(uids);
}

/* RFC 4314 4: flags the session may not set are left out (\Seen "s", \Deleted "t", others "w"). */
static void append_rights_apply(struct append_msg *m, unsigned rights)
{
    if (!(rights & IMAP_RIGHT_S))
        m->flags &= ~(unsigned)STORE_FLAG_SEEN;
    if (!(rights & IMAP_RIGHT_T))
        m->flags &= ~(unsigned)STORE_FLAG_DELETED;
    if (!(rights & IMAP_RIGHT_W)) {
        m->flags &= STORE_FLAG_SEEN | STORE_FLAG_DELETED;
        buf_reset(&m->keywords);
    }
}

/* Puts a CATENATE message together into built (m->data); false when a NO was sent. */
static bool catenate_build(struct imap_session *s, struct slice tag, struct append_msg *m,
                           struct buf *built)
{
    const struct imap_arg *l = m->catenate->list;
    uint64_t max = s->srv->cfg->imap_max_literal_size;
    for (size_t i = 0; i < m->catenate->n_list; i += 2) {
        struct slice v;
        imap_arg_astring(&l[i + 1], &v);
        if (imap_arg_is_atom(&l[i], "TEXT")) {
            buf_append_slice(built, v);
        } else {
            int r = imap_url_fetch(s, v, built);
            if (r < 0) {
                imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
                return false;
            }
            if (r > 0) { /* RFC 4469 5: url-resp-text is TEXT-CHARs but "]" */
                struct buf u = BUF_INIT;
                for (size_t k = 0; k < v.len && k < 1024; k++)
                    if ((unsigned char)v.ptr[k] >= 0x20 && v.ptr[k] != ']' && v.ptr[k] != 0x7f)
                        buf_append_byte(&u, v.ptr[k]);
                imap_printf(s, "%.*s NO [BADURL %s] Invalid or unreadable URL", TAGF(tag),
                            u.len ? buf_cstr(&u) : "-");
                buf_free(&u);
                return false;
            }
        }
        if (built->len > max) {
            imap_printf(s, "%.*s NO [TOOBIG] Message too large", TAGF(tag));
            return false;
        }
    }
    m->data = buf_slice(built);
    return true;
}

void imap_cmd_append(struct imap_session *s, struct slice tag, bool uid,
                     const struct imap_arg *args, size_t n)
{
    (void)uid;
    char *name = n >= 2 ? imap_mailbox_arg(s, &args[0]) : NULL;
    size_t cap = n < IMAP_MAX_APPEND_MESSAGES ? n : IMAP_MAX_APPEND_MESSAGES;
    struct append_msg *msgs = xcalloc(cap ? cap : 1, sizeof(*msgs));
    for (size_t i = 0; i < cap; i++) {
        buf_init(&msgs[i].keywords);
        buf_init(&msgs[i].converted);
    }
    size_t k = 0;
    struct store_target *t = NULL;
    struct store_delivery *d = NULL;
    struct buf err = BUF_INIT;
    struct imap_mbref ref = {0};
    struct buf *built = NULL; /* CATENATE messages (RFC 4469), one per message */
    const char *bad = name == NULL ? "Usage: APPEND mailbox [(flags)] [date-time] message ..."
                                   : append_parse(s, args + 1, n - 1, msgs, &k);
    if (bad != NULL) {
        imap_bad(s, tag, bad);
        goto done;
    }
    for (size_t i = 0; i < k; i++) {
        if (msgs[i].data.len == 0 && msgs[i].catenate == NULL) {
            imap_printf(s, "%.*s NO Empty message", TAGF(tag));
            goto done;
        }
    }
    if (imap_mbref_resolve(s, name, &ref) != 0) {
        imap_printf(s, "%.*s NO [SERVERBUG] Internal error, try again later", TAGF(tag));
        goto done;
    }
    if (!imap_mbref_allowed(s, tag, &ref, IMAP_RIGHT_I, "[TRYCREATE] Mailbox does not exist"))
        goto done;
    for (size_t i = 0; i < k; i++) {
        if (msgs[i].catenate == NULL)
            continue;
        if (!ref.exists) { /* before any URL is looked at (RFC 4469 5) */
            imap_printf(s, "%.*s NO [TRYCREATE] Mailbox does not exist", TAGF(tag));
            goto done;
        }
        if (built == NULL) {
            built = xcalloc(k, sizeof(*built));
            for (size_t j = 0; j < k; j++)
                buf_init(&built[j]);
        }
        if (!catenate_build(s, tag, &msgs[i], &built[i]))
            goto done;
        if (msgs[i].data.len == 0) {
            imap_printf(s, "%.*s NO Empty message", TAGF(tag));
            goto done;
        }
    }
    /* binary parts in base64, CATENATE's TEXT parts included */
    for (size_t i = 0; i < k; i++)
        if (append_binary_convert(msgs[i].data, &msgs[i].converted))
            msgs[i].data = buf_slice(&msgs[i].converted);
    for (size_t i = 0; i < k; i++)
        append_rights_apply(&msgs[i], ref.rights);
    uint64_t qb, qm;
    if (imap_quota_limits(s, ref.owner, &qb, &qm) != 0) {
        imap_printf(s, "%.*s NO [UNAVAILABLE] Cannot check your quota, try again later", TAGF(tag));
        goto done;
    }
    t = xcalloc(k, sizeof(*t));
    d = xcalloc(k, sizeof(*d));
    for (size_t i = 0; i < k; i++) {
        t[i] = (struct store_target){.owner = ref.owner,
                                     .mailbox = ref.name,
                                     .must_exist = true,
                                     .quota_bytes = qb,
                                     .quota_messages = qm};
        d[i] = (struct store_delivery){
            .data = msgs[i].data,
            .internaldate = msgs[i].date,
            .flags = msgs[i].flags,
            .keywords = msgs[i].keywords.len ? buf_cstr(&msgs[i].keywords) : NULL,
            .targets = &t[i],
            .n_targets = 1,
        };
    }
    enum store_status status = STORE_OK;
    if (store_deliver(s->srv->store, d, k, &err) != 0) {
        status = STORE_FAILED; /* nothing of the batch is visible: nothing to undo */
    } else {
        for (size_t i = 0; i < k && status == STORE_OK; i++)
            status = t[i].status;
        if (status != STORE_OK)
            append_undo(s, ref.owner, ref.name, t, k);
    }
    switch (status) {
    case STORE_OK: {
        imap_mailbox_changed(s, ref.owner, ref.name);
        if (s->state == IMAP_SELECTED && strcmp(s->view.owner, ref.owner) == 0 &&
            strcmp(s->view.name, ref.name) == 0)
            imap_view_sync(s, false, NULL, 0); /* the new EXISTS before the tagged OK */
        struct buf code = BUF_INIT;
        uint32_t *uids = xcalloc(k, sizeof(*uids));
        for (size_t i = 0; i < k; i++)
            uids[i] = t[i].uid;
        imap_seqset_write(&code, uids, k);
        imap_printf(s, "%.*s OK [APPENDUID %u %s] APPEND completed", TAGF(tag), t[0].uidvalidity,
                    buf_cstr(&code));
        free(uids);
        buf_free(&code);
        break;
    }
    case STORE_NO_MAILBOX:
        imap_printf(s, "%.*s NO [TRYCREATE] Mailbox does not exist", TAGF(tag));
        break;
    case STORE_OVER_QUOTA:
        imap_printf(s, "%.*s NO [OVERQUOTA] Quota exceeded", TAGF(tag));
        break;
    default:
        imap_store_error(s, tag, "append", &err);
        break;
    }
done:
    for (size_t i = 0; i < cap; i++) {
        buf_free(&msgs[i].keywords);
        buf_free(&msgs[i].converted);
    }
    free(msgs);
    free(t);
    free(d);
    for (size_t i = 0; built != NULL && i < k; i++)
        buf_free(&built[i]);
    free(built);
    free(name);
    imap_mbref_free(&ref);
    buf_free(&err);
}
