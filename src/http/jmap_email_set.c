/*
 * jmap_email_set.c - Email/set and Email/import (RFC 8621 4.6, 4.8): an
 * Email composed from its JSON parts (and uploaded blobs), imported from a
 * blob, its keywords and mailboxes changed on every copy, or destroyed.
 *
 * Writes go through store_deliver (new messages, one transaction for all
 * the mailboxes of one Email), store_message_flags_id, store_message_copy_to_id
 * and store_message_expunge_id only; the account state moves with each.
 * Never composes a header with a bare CR or LF from client text, nor an
 * address it could not parse back.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"
#include "base/date.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- storing ---- */

/* The store names of the mailboxes in ids (an object id -> true); NULL and
 * *bad_r on an unknown id or an empty set. */
static char **mailbox_names(struct jmap_req *r, json_t *ids, size_t *n_r, bool *trouble_r,
                            struct buf *err)
{
    *n_r = 0;
    *trouble_r = false;
    if (!json_is_object(ids) || json_object_size(ids) == 0)
        return NULL;
    size_t n;
    struct store_mailbox *v = jmap_mailboxes(r, &n, err);
    if (v == NULL) {
        *trouble_r = true;
        return NULL;
    }
    char **names = xcalloc(json_object_size(ids), sizeof(*names));
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(ids, key, val)
    {
        const char *id = jmap_resolve_id(r, key);
        const struct store_mailbox *mb =
            id && json_is_true(val) ? jmap_mailbox_find(v, n, jmap_mailbox_id_parse(id)) : NULL;
        if (mb == NULL) {
            store_names_free(names, k);
            store_mailbox_list_free(v, n);
            return NULL;
        }
        names[k++] = xstrdup(mb->name);
    }
    store_mailbox_list_free(v, n);
    *n_r = k;
    return names;
}

/* Whether login may add Emails ("i") to every mailbox of ids (unknown ones
 * are mailbox_names' to refuse). */
static bool may_add(struct jmap_req *r, json_t *ids)
{
    const char *key;
    json_t *val;
    if (r->acl && json_is_object(ids))
        json_object_foreach(ids, key, val)
        {
            const char *id = jmap_resolve_id(r, key);
            if (id && !jmap_may(r, jmap_mailbox_id_parse(id), "i"))
                return false;
        }
    return true;
}

/*
 * The rights a change of the copies c (one Email) needs (RFC 4314 as IMAP
 * asks them): "s" to change $seen, "w" any other keyword, "i" on each
 * mailbox it enters, "t" and "e" on each it leaves; NULL when login holds
 * them, else the SetError.
 */
static json_t *update_allowed(struct jmap_req *r, const struct store_account_message *c, size_t n,
                              bool kw_changed, unsigned flags, const char *kw, bool mb_changed,
                              json_t *boxes)
{
    if (r->acl == NULL)
        return NULL;
    for (size_t i = 0; kw_changed && i < n; i++) {
        const char *old = c[i].m.keywords ? c[i].m.keywords : "";
        if (((c[i].m.flags ^ flags) & STORE_FLAG_SEEN) && !jmap_may(r, c[i].mailbox_id, "s"))
            return jmap_set_error("forbidden", "no right to change $seen (s)", "keywords");
        if ((((c[i].m.flags ^ flags) & ~(unsigned)STORE_FLAG_SEEN) || strcmp(old, kw) != 0) &&
            !jmap_may(r, c[i].mailbox_id, "w"))
            return jmap_set_error("forbidden", "no right to change keywords (w)", "keywords");
    }
    if (!mb_changed)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(boxes, k, v)
    {
        int64_t id = jmap_mailbox_id_parse(k);
        bool have = false;
        for (size_t i = 0; i < n; i++)
            have = have || c[i].mailbox_id == id;
        if (!have && !jmap_may(r, id, "i"))
            return jmap_set_error("forbidden", "no right to add to a mailbox (i)", "mailboxIds");
    }
    for (size_t i = 0; i < n; i++) {
        char id[32];
        jmap_mailbox_id(c[i].mailbox_id, id);
        if (json_object_get(boxes, id) == NULL && !jmap_may(r, c[i].mailbox_id, "te"))
            return jmap_set_error("forbidden", "no right to remove from a mailbox (t, e)",
                                  "mailboxIds");
    }
    return NULL;
}

int jmap_email_store(struct jmap_req *r, struct slice data, json_t *mailbox_ids, json_t *keywords,
                     int64_t received_at, char hash_r[65], json_t **err_r)
{
    struct buf err = BUF_INIT, kw = BUF_INIT;
    unsigned flags = 0;
    if (data.len > r->j->limits.max_size_upload) {
        *err_r = jmap_set_error("tooLarge", "the message is larger than maxSizeUpload", NULL);
        return 1;
    }
    if (keywords && !json_is_null(keywords) && !jmap_keywords_to_flags(keywords, &flags, &kw)) {
        *err_r = jmap_set_error("invalidProperties", "bad keywords", "keywords");
        buf_free(&kw);
        return 1;
    }
    if (!may_add(r, mailbox_ids)) {
        *err_r = jmap_set_error("forbidden", "no right to add to a mailbox (i)", "mailboxIds");
        buf_free(&kw);
        return 1;
    }
    size_t n;
    bool trouble;
    char **names = mailbox_names(r, mailbox_ids, &n, &trouble, &err);
    if (names == NULL) {
        *err_r = trouble ? jmap_server_fail("mailbox list", &err)
                         : jmap_set_error("invalidProperties", "mailboxIds name no mailbox",
                                          "mailboxIds");
        buf_free(&err);
        buf_free(&kw);
        return trouble ? -1 : 1;
    }
    struct store_target *t = xcalloc(n, sizeof(*t));
    for (size_t i = 0; i < n; i++)
        t[i] = (struct store_target){.owner = r->user, .mailbox = names[i], .must_exist = true};
    struct store_delivery d = {
        .data = data,
        .internaldate = received_at,
        .flags = flags,
        .keywords = kw.len ? kw.data : NULL,
        .targets = t,
        .n_targets = n,
    };
    int rc = 0;
    if (store_deliver(r->j->store, &d, 1, &err) != 0) {
        *err_r = jmap_server_fail("store", &err);
        rc = -1;
    } else {
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (t[i].status == STORE_OVER_QUOTA) {
                *err_r = jmap_set_error("overQuota", NULL, NULL);
                rc = 1;
            } else if (t[i].status != STORE_OK) {
                *err_r = jmap_set_error("invalidProperties", "no such mailbox", "mailboxIds");
                rc = 1;
            }
        }
        for (size_t i = 0; i < n; i++)
            if (t[i].status == STORE_OK)
                jmap_publish_changed(r, 0, names[i]);
    }
    store_body_id(data, hash_r);
    free(t);
    store_names_free(names, n);
    buf_free(&err);
    buf_free(&kw);
    return rc;
}

/* ---- composing (create) ---- */

static bool header_safe(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '\0')
            return false;
    return true;
}

/* "Name <a@b>, ..." of an EmailAddress[]; false when one is not usable. */
static bool addresses_write(json_t *list, struct buf *out)
{
    if (!json_is_array(list))
        return false;
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *email = json_string_value(json_object_get(a, "email"));
        json_t *jn = json_object_get(a, "name");
        const char *name = json_string_value(jn);
        if (email == NULL || !header_safe(email) || strchr(email, '@') == NULL ||
            strpbrk(email, "<>, \t\"") || (jn && !json_is_null(jn) && name == NULL) ||
            (name && !header_safe(name)))
            return false;
        if (i)
            buf_append_cstr(out, ",\r\n ");
        if (name && *name) {
            bool special = strpbrk(name, "()<>[]:;@\\,.\"") != NULL;
            size_t before = out->len;
            mime_header_encode(slice_from_cstr(name), out);
            bool encoded = out->len - before != strlen(name) ||
                           memcmp(out->data + before, name, strlen(name)) != 0;
            if (special && !encoded) {
                out->len = before;
                buf_append_byte(out, '"');
                for (const char *p = name; *p; p++) {
                    if (*p == '"' || *p == '\\')
                        buf_append_byte(out, '\\');
                    buf_append_byte(out, *p);
                }
                buf_append_byte(out, '"');
            }
            buf_append_byte(out, ' ');
        }
        buf_printf(out, "<%s>", email);
    }
    return true;
}

static bool ids_write(json_t *list, struct buf *out)
{
    if (!json_is_array(list))
        return false;
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *s = json_string_value(a);
        if (s == NULL || !header_safe(s) || strpbrk(s, "<> \t"))
            return false;
        buf_printf(out, "%s<%s>", i ? " " : "", s);
    }
    return true;
}

/* One leaf of a body: its content into body (decoded), type, name, cid. */
struct leaf {
    struct buf body;
    char *type, *name, *cid, *disposition;
};

static void leaf_free(struct leaf *l)
{
    buf_free(&l->body);
    free(l->type);
    free(l->name);
    free(l->cid);
    free(l->disposition);
}

/* Fills a leaf from an EmailBodyPart of the create: partId (a bodyValues
 * key) or blobId (an upload or a part). NULL, or the SetError. */
static json_t *leaf_load(struct jmap_req *r, json_t *part, json_t *values, const char *def_type,
                         struct leaf *l)
{
    memset(l, 0, sizeof(*l));
    json_t *pid = json_object_get(part, "partId"), *bid = json_object_get(part, "blobId"),
           *type = json_object_get(part, "type"), *name = json_object_get(part, "name"),
           *cid = json_object_get(part, "cid"), *disp = json_object_get(part, "disposition");
    const char *t = json_is_string(type) ? json_string_value(type) : def_type;
    if (t == NULL || !header_safe(t) || strchr(t, '/') == NULL || strpbrk(t, " ;\"") ||
        (name && !json_is_null(name) &&
         (!json_is_string(name) || !header_safe(json_string_value(name)))) ||
        (cid && !json_is_null(cid) &&
         (!json_is_string(cid) || !header_safe(json_string_value(cid)))) ||
        (disp && !json_is_null(disp) &&
         (!json_is_string(disp) || !header_safe(json_string_value(disp)) ||
          strpbrk(json_string_value(disp), " ;\""))))
        return jmap_set_error("invalidProperties", "bad part type, name, cid or disposition",
                              "bodyStructure");
    if (json_is_string(pid)) {
        json_t *v = json_object_get(json_object_get(values, json_string_value(pid)), "value");
        if (!json_is_string(v) || bid)
            return jmap_set_error("invalidProperties", "partId names no bodyValue", "bodyValues");
        buf_init(&l->body);
        buf_append(&l->body, json_string_value(v), json_string_length(v));
        if (strncmp(t, "text/", 5) != 0)
            return jmap_set_error("invalidProperties", "a bodyValue part must be text",
                                  "bodyStructure");
    } else if (json_is_string(bid)) {
        struct buf err = BUF_INIT;
        buf_init(&l->body);
        int rc = jmap_blob_read(r->j, r->login, json_string_value(bid), &l->body, &err);
        buf_free(&err);
        if (rc != 0)
            return jmap_set_error("blobNotFound", NULL, NULL);
    } else
        return jmap_set_error("invalidProperties", "a part needs a partId or a blobId",
                              "bodyStructure");
    l->type = xstrdup(t);
    l->name = json_is_string(name) ? xstrdup(json_string_value(name)) : NULL;
    l->cid = json_is_string(cid) ? xstrdup(json_string_value(cid)) : NULL;
    l->disposition = json_is_string(disp) ? xstrdup(json_string_value(disp)) : NULL;
    return NULL;
}

/* in_multipart: a delimiter follows (mime_part_body_write keeps a final line break). */
static void leaf_write(const struct leaf *l, bool in_multipart, struct buf *out)
{
    buf_printf(out, "Content-Type: %s", l->type);
    if (strncmp(l->type, "text/", 5) == 0)
        buf_append_cstr(out, "; charset=utf-8");
    if (l->name) {
        buf_append_cstr(out, ";\r\n name=\"");
        mime_header_encode(slice_from_cstr(l->name), out);
        buf_append_byte(out, '"');
    }
    buf_append_cstr(out, "\r\n");
    if (l->disposition || l->name) {
        buf_printf(out, "Content-Disposition: %s", l->disposition ? l->disposition : "attachment");
        if (l->name) {
            buf_append_cstr(out, ";\r\n filename=\"");
            mime_header_encode(slice_from_cstr(l->name), out);
            buf_append_byte(out, '"');
        }
        buf_append_cstr(out, "\r\n");
    }
    if (l->cid)
        buf_printf(out, "Content-ID: <%s>\r\n", l->cid);
    (in_multipart ? mime_part_body_write : mime_body_write)(buf_slice(&l->body),
                                                            strncmp(l->type, "text/", 5) == 0, out);
}

/* The leaves of textBody, htmlBody and attachments, laid out as
 * mixed(alternative(text, html), attachments...). */
static json_t *body_write(struct jmap_req *r, json_t *o, struct buf *out)
{
    json_t *values = json_object_get(o, "bodyValues");
    json_t *text = json_object_get(o, "textBody"), *html = json_object_get(o, "htmlBody"),
           *att = json_object_get(o, "attachments"), *bs = json_object_get(o, "bodyStructure");
    if ((text && !json_is_array(text)) || (html && !json_is_array(html)) ||
        (att && !json_is_array(att)) || json_array_size(text) > 1 || json_array_size(html) > 1 ||
        (values && !json_is_object(values)))
        return jmap_set_error("invalidProperties", "textBody and htmlBody hold one part each",
                              "textBody");
    if (bs && (text || html || att))
        return jmap_set_error("invalidProperties", "bodyStructure or the body lists, not both",
                              "bodyStructure");
    struct leaf body[2];
    size_t nbody = 0;
    struct leaf *atts = xcalloc(json_array_size(att) + 1, sizeof(*atts));
    size_t natt = 0;
    json_t *e = NULL;
    if (bs && !json_is_object(bs))
        e = jmap_set_error("invalidProperties", "bodyStructure must be an object", "bodyStructure");
    else if (bs && json_object_get(bs, "subParts"))
        e = jmap_set_error("invalidProperties",
                           "give multipart bodies as textBody, htmlBody and "
                           "attachments",
                           "bodyStructure");
    else if (bs)
        e = leaf_load(r, bs, values, "text/plain", &body[nbody++]);
    if (!e && json_array_size(text))
        e = leaf_load(r, json_array_get(text, 0), values, "text/plain", &body[nbody++]);
    if (!e && json_array_size(html))
        e = leaf_load(r, json_array_get(html, 0), values, "text/html", &body[nbody++]);
    size_t i;
    json_t *a;
    json_array_foreach(att, i, a)
    {
        if (e)
            break;
        e = leaf_load(r, a, values, "application/octet-stream", &atts[natt++]);
    }
    if (e == NULL) {
        char outer[40], inner[40];
        mime_boundary_make(outer);
        mime_boundary_make(inner);
        if (natt)
            buf_printf(out, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", outer,
                       outer);
        if (nbody == 2) {
            buf_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", inner);
            for (size_t k = 0; k < 2; k++) {
                buf_printf(out, "--%s\r\n", inner);
                leaf_write(&body[k], true, out);
            }
            buf_printf(out, "--%s--\r\n", inner);
        } else if (nbody == 1)
            leaf_write(&body[0], natt > 0, out);
        else
            buf_append_cstr(out, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
        for (size_t k = 0; k < natt; k++) {
            buf_printf(out, "--%s\r\n", outer);
            leaf_write(&atts[k], true, out);
        }
        if (natt)
            buf_printf(out, "--%s--\r\n", outer);
    }
    for (size_t k = 0; k < nbody; k++)
        leaf_free(&body[k]);
    for (size_t k = 0; k < natt; k++)
        leaf_free(&atts[k]);
    free(atts);
    return e;
}

static const char *const create_props[] = {
    "mailboxIds", "keywords",    "receivedAt", "from",          "to",
    "cc",         "bcc",         "replyTo",    "sender",        "subject",
    "sentAt",     "messageId",   "inReplyTo",  "references",    "textBody",
    "htmlBody",   "attachments", "bodyValues", "bodyStructure",
};

/* The RFC 5322 message of an Email create into out; NULL or the SetError. */
static json_t *compose(struct jmap_req *r, json_t *o, struct buf *out)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(create_props) / sizeof(create_props[0]); i++)
            ok = ok || strcmp(k, create_props[i]) == 0;
        if (!ok)
            return jmap_set_error("invalidProperties", "a property that cannot be set", k);
    }
    static const struct {
        const char *prop, *field;
    } addrs[] = {{"from", "From"}, {"sender", "Sender"}, {"replyTo", "Reply-To"},
                 {"to", "To"},     {"cc", "Cc"},         {"bcc", "Bcc"}};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        json_t *a = json_object_get(o, addrs[i].prop);
        if (a == NULL || json_is_null(a))
            continue;
        buf_printf(out, "%s: ", addrs[i].field);
        if (!addresses_write(a, out))
            return jmap_set_error("invalidProperties", "not an EmailAddress list", addrs[i].prop);
        buf_append_cstr(out, "\r\n");
    }
    json_t *subj = json_object_get(o, "subject");
    if (subj && !json_is_null(subj)) {
        if (!json_is_string(subj) || !header_safe(json_string_value(subj)))
            return jmap_set_error("invalidProperties", "subject must be a line", "subject");
        buf_append_cstr(out, "Subject: ");
        mime_header_encode(slice_from_cstr(json_string_value(subj)), out);
        buf_append_cstr(out, "\r\n");
    }
    json_t *sent = json_object_get(o, "sentAt");
    int64_t t = (int64_t)time(NULL);
    if (sent && !json_is_null(sent)) {
        /* a Date with an offset: keep the instant */
        const char *s = json_string_value(sent);
        struct buf z = BUF_INIT;
        bool ok = s && strlen(s) >= 20;
        int64_t off = 0;
        if (ok && s[strlen(s) - 1] != 'Z' && strlen(s) >= 25) {
            const char *zp = s + strlen(s) - 6;
            int hh = 0, mm = 0;
            ok = (zp[0] == '+' || zp[0] == '-') && sscanf(zp + 1, "%2d:%2d", &hh, &mm) == 2;
            off = (hh * 3600 + mm * 60) * (zp[0] == '-' ? -1 : 1);
            buf_append(&z, s, (size_t)(zp - s));
            buf_append_byte(&z, 'Z');
        } else if (ok)
            buf_append_cstr(&z, s);
        ok = ok && jmap_utc_date_parse(z.data, &t);
        buf_free(&z);
        if (!ok)
            return jmap_set_error("invalidProperties", "sentAt must be a Date", "sentAt");
        t -= off;
    }
    buf_append_cstr(out, "Date: ");
    date_rfc5322_append(t, out);
    buf_append_cstr(out, "\r\n");
    json_t *mid = json_object_get(o, "messageId");
    if (mid && !json_is_null(mid)) {
        buf_append_cstr(out, "Message-ID: ");
        if (json_array_size(mid) != 1 || !ids_write(mid, out))
            return jmap_set_error("invalidProperties", "messageId holds one id", "messageId");
        buf_append_cstr(out, "\r\n");
    } else {
        char b[40];
        mime_boundary_make(b);
        buf_printf(out, "Message-ID: <%s@%s>\r\n", b + 8,
                   r->j->hostname && *r->j->hostname ? r->j->hostname : "localhost");
    }
    static const struct {
        const char *prop, *field;
    } refs[] = {{"inReplyTo", "In-Reply-To"}, {"references", "References"}};
    for (size_t i = 0; i < 2; i++) {
        json_t *x = json_object_get(o, refs[i].prop);
        if (x == NULL || json_is_null(x))
            continue;
        buf_printf(out, "%s: ", refs[i].field);
        if (!ids_write(x, out))
            return jmap_set_error("invalidProperties", "not a list of message ids", refs[i].prop);
        buf_append_cstr(out, "\r\n");
    }
    buf_append_cstr(out, "MIME-Version: 1.0\r\n");
    return body_write(r, o, out);
}

/* created[cid] for an Email stored from size bytes of body hash (create, import, copy). */
static void stored_created(struct jmap_req *r, const char *cid, const char *hash, size_t size,
                           json_t *created)
{
    char id[70], blob[70], thread[32];
    snprintf(id, sizeof(id), "e%s", hash);
    snprintf(blob, sizeof(blob), "b%s", hash);
    jmap_email_thread(r, hash, thread);
    jmap_created(r, cid, id);
    json_object_set_new(created, cid,
                        json_pack("{s:s, s:s, s:s, s:I}", "id", id, "blobId", blob, "threadId",
                                  thread, "size", (json_int_t)size));
}

static json_t *email_create(struct jmap_req *r, const char *cid, json_t *o, json_t *created)
{
    struct buf msg = BUF_INIT;
    json_t *e = compose(r, o, &msg);
    int64_t received = 0;
    json_t *ra = json_object_get(o, "receivedAt");
    if (!e && ra && !json_is_null(ra) &&
        (!json_is_string(ra) || !jmap_utc_date_parse(json_string_value(ra), &received)))
        e = jmap_set_error("invalidProperties", "receivedAt must be a UTCDate", "receivedAt");
    char hash[65];
    if (!e && jmap_email_store(r, buf_slice(&msg), json_object_get(o, "mailboxIds"),
                               json_object_get(o, "keywords"), received, hash, &e) == 0)
        stored_created(r, cid, hash, msg.len, created);
    buf_free(&msg);
    return e;
}

/* ---- update and destroy ---- */

/* Expunges every copy in copies that lies in mailbox mb (all if mb 0). */
static int expunge_copies(struct jmap_req *r, const struct store_account_message *c, size_t n,
                          int64_t mb, struct buf *err)
{
    for (size_t i = 0; i < n; i++) {
        if (mb && c[i].mailbox_id != mb)
            continue;
        if (store_message_expunge_id(r->j->store, r->user, c[i].mailbox_id, &c[i].m.uid, 1, err) !=
            0)
            return -1;
        jmap_publish_changed(r, c[i].mailbox_id, NULL);
    }
    return 0;
}

static json_t *email_update(struct jmap_req *r, const char *hash, json_t *patch)
{
    struct buf err = BUF_INIT, kw = BUF_INIT;
    struct store_account_message *c = NULL;
    size_t n = 0;
    json_t *e = NULL, *keywords = NULL, *boxes = json_object();
    if (jmap_account_messages(r, hash, 0, &c, &n, &err) != 0) {
        e = jmap_server_fail("email update", &err);
        goto out;
    }
    if (n == 0) {
        e = jmap_set_error("notFound", NULL, NULL);
        goto out;
    }
    keywords = jmap_flags_to_keywords(c[0].m.flags, c[0].m.keywords);
    bool kw_changed = false, mb_changed = false;
    for (size_t i = 0; i < n; i++) {
        char id[32];
        jmap_mailbox_id(c[i].mailbox_id, id);
        json_object_set_new(boxes, id, json_true());
    }
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        if (strcmp(k, "keywords") == 0) {
            json_decref(keywords);
            keywords = json_is_object(v) ? json_deep_copy(v) : json_null();
            kw_changed = true;
        } else if (strncmp(k, "keywords/", 9) == 0) {
            if (json_is_true(v))
                json_object_set_new(keywords, k + 9, json_true());
            else if (json_is_null(v))
                json_object_del(keywords, k + 9);
            else {
                e = jmap_set_error("invalidPatch", NULL, k);
                goto out;
            }
            kw_changed = true;
        } else if (strcmp(k, "mailboxIds") == 0) {
            json_decref(boxes);
            boxes = json_object();
            const char *mk;
            json_t *mv;
            if (!json_is_object(v)) {
                e = jmap_set_error("invalidProperties", "mailboxIds must be an object", k);
                goto out;
            }
            json_object_foreach(v, mk, mv)
            {
                const char *id = jmap_resolve_id(r, mk);
                if (id == NULL || !json_is_true(mv)) {
                    e = jmap_set_error("invalidProperties", "bad mailbox id", "mailboxIds");
                    goto out;
                }
                json_object_set_new(boxes, id, json_true());
            }
            mb_changed = true;
        } else if (strncmp(k, "mailboxIds/", 11) == 0) {
            const char *id = jmap_resolve_id(r, k + 11);
            if (id == NULL || !(json_is_true(v) || json_is_null(v))) {
                e = jmap_set_error("invalidPatch", NULL, k);
                goto out;
            }
            if (json_is_true(v))
                json_object_set_new(boxes, id, json_true());
            else
                json_object_del(boxes, id);
            mb_changed = true;
        } else {
            e = jmap_set_error("invalidProperties", "only keywords and mailboxIds can change", k);
            goto out;
        }
    }
    unsigned flags = 0;
    if (kw_changed && !jmap_keywords_to_flags(keywords, &flags, &kw)) {
        e = jmap_set_error("invalidProperties", "bad keywords", "keywords");
        goto out;
    }
    size_t nmb = 0;
    char **names = NULL;
    if (mb_changed) {
        bool trouble;
        names = mailbox_names(r, boxes, &nmb, &trouble, &err);
        if (names == NULL) {
            e = trouble ? jmap_server_fail("mailbox list", &err)
                        : jmap_set_error("invalidProperties", "mailboxIds name no mailbox",
                                         "mailboxIds");
            goto out;
        }
        store_names_free(names, nmb);
    }
    if ((e = update_allowed(r, c, n, kw_changed, flags, kw.data ? kw.data : "", mb_changed,
                            boxes)) != NULL)
        goto out;
    /* keywords first: copies made below take the new ones */
    for (size_t i = 0; kw_changed && i < n; i++) {
        if (store_message_flags_id(r->j->store, r->user, c[i].mailbox_id, &c[i].m.uid, 1,
                                   STORE_FLAGS_REPLACE, flags, kw.data ? kw.data : "", 0, NULL,
                                   &err) != 0) {
            e = jmap_server_fail("flags", &err);
            goto out;
        }
        jmap_publish_changed(r, c[i].mailbox_id, NULL);
    }
    if (mb_changed) {
        json_object_foreach(boxes, k, v)
        {
            int64_t id = jmap_mailbox_id_parse(k);
            bool have = false;
            for (size_t i = 0; i < n; i++)
                have = have || c[i].mailbox_id == id;
            uint32_t new_uid;
            if (!have &&
                store_message_copy_to_id(r->j->store, r->user, c[0].mailbox_id, &c[0].m.uid, 1,
                                         r->user, id, false, &new_uid, &err) != 0) {
                e = jmap_server_fail("copy", &err);
                goto out;
            }
            if (!have)
                jmap_publish_changed(r, id, NULL);
        }
        for (size_t i = 0; i < n; i++) {
            char id[32];
            jmap_mailbox_id(c[i].mailbox_id, id);
            if (json_object_get(boxes, id) == NULL &&
                expunge_copies(r, &c[i], 1, c[i].mailbox_id, &err) != 0) {
                e = jmap_server_fail("expunge", &err);
                goto out;
            }
        }
    }
out:
    store_account_messages_free(c, n);
    json_decref(keywords);
    json_decref(boxes);
    buf_free(&err);
    buf_free(&kw);
    return e;
}

static json_t *email_destroy(struct jmap_req *r, const char *hash)
{
    struct buf err = BUF_INIT;
    struct store_account_message *c = NULL;
    size_t n = 0;
    json_t *e = NULL;
    if (jmap_account_messages(r, hash, 0, &c, &n, &err) != 0)
        e = jmap_server_fail("email destroy", &err);
    else if (n == 0)
        e = jmap_set_error("notFound", NULL, NULL);
    for (size_t i = 0; e == NULL && i < n; i++)
        if (!jmap_may(r, c[i].mailbox_id, "te"))
            e = jmap_set_error("forbidden", "no right to remove from a mailbox (t, e)", NULL);
    if (e == NULL && expunge_copies(r, c, n, 0, &err) != 0)
        e = jmap_server_fail("expunge", &err);
    store_account_messages_free(c, n);
    buf_free(&err);
    return e;
}

static json_t *email_update_id(struct jmap_req *r, const char *id, json_t *patch)
{
    char hash[65];
    return jmap_email_id_parse(id, hash) ? email_update(r, hash, patch)
                                         : jmap_set_error("notFound", NULL, NULL);
}

static json_t *email_destroy_id(struct jmap_req *r, const char *id, json_t *args)
{
    char hash[65];
    return jmap_email_id_parse(id, hash) ? email_destroy(r, hash)
                                         : jmap_set_error("notFound", NULL, NULL);
}

/* One copy to change: its mailbox and UID, and the client's id of its Email. */
struct kw_copy {
    int64_t mailbox_id;
    uint32_t uid;
    const char *key;
};

static int kw_copy_cmp(const void *a, const void *b)
{
    const struct kw_copy *x = a, *y = b;
    if (x->mailbox_id != y->mailbox_id)
        return x->mailbox_id < y->mailbox_id ? -1 : 1;
    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/*
 * The patch as keywords to add and to remove, when it is nothing but
 * "keywords/K": true or null (what a mail list sends to flag or mark read);
 * false for any other patch, or a keyword the store cannot hold.
 */
static bool keyword_patch(json_t *patch, unsigned *add, struct buf *add_kw, unsigned *del,
                          struct buf *del_kw)
{
    json_t *on = json_object(), *off = json_object(), *v;
    const char *k;
    bool ok = json_object_size(patch) > 0;
    json_object_foreach(patch, k, v)
    {
        if (strncmp(k, "keywords/", 9) != 0 || !(json_is_true(v) || json_is_null(v)) ||
            strchr(k + 9, '/') != NULL) {
            ok = false;
            break;
        }
        json_object_set_new(json_is_true(v) ? on : off, k + 9, json_true());
    }
    ok = ok && jmap_keywords_to_flags(on, add, add_kw) && jmap_keywords_to_flags(off, del, del_kw);
    json_decref(on);
    json_decref(off);
    return ok;
}

/*
 * Keyword-only updates (jmap_set_ops.update_many), grouped by patch: the
 * copies of every Email with the same patch change in one store transaction
 * per mailbox (STORE_FLAGS_ADD and _REMOVE, as IMAP's STORE +FLAGS/-FLAGS),
 * not one transaction (and one fsync) per Email; each mailbox's change is
 * published once. Anything else, an Email not found, or a store failure is
 * left to email_update, which reports it.
 */
static void email_update_many(struct jmap_req *r, json_t *update, json_t *handled)
{
    if (r->acl) /* a shared account: email_update checks the rights of each one */
        return;
    json_t *groups = json_object(); /* the patch's canonical JSON -> [client ids] */
    const char *k;
    json_t *patch;
    json_object_foreach(update, k, patch)
    {
        char *canon = json_dumps(patch, JSON_SORT_KEYS | JSON_COMPACT);
        if (canon == NULL || !json_is_object(patch)) {
            free(canon);
            continue;
        }
        json_t *g = json_object_get(groups, canon);
        if (g == NULL)
            json_object_set_new(groups, canon, g = json_array());
        json_array_append_new(g, json_string(k));
        free(canon);
    }
    json_t *ids;
    json_object_foreach(groups, k, ids)
    {
        struct buf add_kw = BUF_INIT, del_kw = BUF_INIT, err = BUF_INIT;
        unsigned add = 0, del = 0;
        size_t ni = json_array_size(ids);
        if (ni < 2 ||
            !keyword_patch(json_object_get(update, json_string_value(json_array_get(ids, 0))), &add,
                           &add_kw, &del, &del_kw)) {
            buf_free(&add_kw);
            buf_free(&del_kw);
            continue;
        }
        struct kw_copy *cp = NULL;
        size_t n = 0, cap = 0, i;
        json_t *idv;
        bool fail = false;
        json_array_foreach(ids, i, idv)
        {
            char hash[65];
            const char *key = json_string_value(idv), *id = jmap_resolve_id(r, key);
            struct store_account_message *c = NULL;
            size_t nc = 0;
            if (id == NULL || !jmap_email_id_parse(id, hash))
                continue;
            if (jmap_account_messages(r, hash, 0, &c, &nc, &err) != 0) {
                fail = true;
                break;
            }
            for (size_t j = 0; j < nc; j++) {
                if (n == cap)
                    cp = xreallocarray(cp, cap = cap ? cap * 2 : 64, sizeof(*cp));
                cp[n++] = (struct kw_copy){c[j].mailbox_id, c[j].m.uid, key};
            }
            store_account_messages_free(c, nc);
        }
        if (!fail && n > 0) {
            qsort(cp, n, sizeof(*cp), kw_copy_cmp);
            uint32_t *uids = xcalloc(n, sizeof(*uids));
            for (size_t a = 0, b; a < n && !fail; a = b) {
                size_t nu = 0;
                for (b = a; b < n && cp[b].mailbox_id == cp[a].mailbox_id; b++)
                    uids[nu++] = cp[b].uid;
                if ((add_kw.len || add) &&
                    store_message_flags_id(r->j->store, r->user, cp[a].mailbox_id, uids, nu,
                                           STORE_FLAGS_ADD, add, add_kw.data ? add_kw.data : "", 0,
                                           NULL, &err) != 0)
                    fail = true;
                if (!fail && (del_kw.len || del) &&
                    store_message_flags_id(r->j->store, r->user, cp[a].mailbox_id, uids, nu,
                                           STORE_FLAGS_REMOVE, del, del_kw.data ? del_kw.data : "",
                                           0, NULL, &err) != 0)
                    fail = true;
                if (!fail)
                    jmap_publish_changed(r, cp[a].mailbox_id, NULL);
            }
            free(uids);
            /* on a failure none of the group is done: email_update does each
             * again (replacing the keywords: the same result) or reports it */
            for (size_t c = 0; c < n && !fail; c++)
                json_object_set_new(handled, cp[c].key, json_true());
        }
        free(cp);
        buf_free(&add_kw);
        buf_free(&del_kw);
        buf_free(&err);
    }
    json_decref(groups);
}

json_t *jmap_email_set(struct jmap_req *r, json_t *args, json_t **err_r)
{
    static const struct jmap_set_ops ops = {email_create, email_update_id, email_destroy_id,
                                            email_update_many};
    return jmap_set_run(r, args, &ops, err_r);
}

json_t *jmap_email_import(struct jmap_req *r, json_t *args, json_t **err_r)
{
    uint64_t old;
    json_t *emails = json_object_get(args, "emails");
    if (!jmap_check_account(r, args, err_r))
        return NULL;
    if (!json_is_object(emails)) {
        *err_r = jmap_invalid("emails must be an object");
        return NULL;
    }
    if (json_object_size(emails) > r->j->limits.max_objects_in_set) {
        *err_r = jmap_error("requestTooLarge", "more emails than maxObjectsInSet");
        return NULL;
    }
    if (!jmap_if_in_state(r, args, err_r) || !jmap_state_now(r, &old, err_r))
        return NULL;
    json_t *created = json_object(), *not_created = json_object();
    const char *k;
    json_t *o;
    json_object_foreach(emails, k, o)
    {
        json_t *bid = json_object_get(o, "blobId"), *ra = json_object_get(o, "receivedAt");
        int64_t received = 0;
        json_t *e = NULL;
        struct buf data = BUF_INIT, err = BUF_INIT;
        if (!json_is_object(o) || !json_is_string(bid))
            e = jmap_set_error("invalidProperties", "blobId must be a string", "blobId");
        else if (ra && !json_is_null(ra) &&
                 (!json_is_string(ra) || !jmap_utc_date_parse(json_string_value(ra), &received)))
            e = jmap_set_error("invalidProperties", "receivedAt must be a UTCDate", "receivedAt");
        else {
            const char *b = jmap_resolve_id(r, json_string_value(bid));
            int rc = b ? jmap_blob_read(r->j, r->user, b, &data, &err) : 1;
            if (rc < 0)
                e = jmap_server_fail("blob", &err);
            else if (rc > 0)
                e = jmap_set_error("blobNotFound", NULL, NULL);
        }
        char hash[65];
        if (e == NULL && jmap_email_store(r, buf_slice(&data), json_object_get(o, "mailboxIds"),
                                          json_object_get(o, "keywords"), received, hash, &e) == 0)
            stored_created(r, k, hash, data.len, created);
        if (e)
            json_object_set_new(not_created, k, e);
        buf_free(&data);
        buf_free(&err);
    }
    json_t *res = jmap_set_response(r, old);
    json_object_set_new(res, "created", created);
    json_object_set_new(res, "notCreated", not_created);
    return res;
}

/* Properties an Email/copy create may give (RFC 8621 4.7): the rest are the original's. */
static json_t *copy_unknown_property(json_t *o)
{
    const char *k;
    json_t *x;
    json_object_foreach(o, k, x)
    {
        if (strcmp(k, "id") && strcmp(k, "mailboxIds") && strcmp(k, "keywords") &&
            strcmp(k, "receivedAt"))
            return jmap_set_error("invalidProperties", "a property Email/copy cannot set", k);
    }
    return NULL;
}

/* One Email/copy create: the Email o names in from (where login has "r" on a
 * copy of it: jmap_account_messages) stored in r's account, with o's
 * mailboxIds and its keywords and receivedAt, or the original's. NULL with
 * the new Email in created, or the SetError. */
static json_t *copy_one(struct jmap_req *r, struct jmap_req *from, const char *cid, json_t *o,
                        json_t *created)
{
    char hash[65], nhash[65];
    const char *id = json_is_object(o) ? json_string_value(json_object_get(o, "id")) : NULL;
    json_t *e = NULL, *orig = NULL;
    struct store_account_message *c = NULL;
    size_t n = 0;
    struct buf data = BUF_INIT, err = BUF_INIT, blob = BUF_INIT;
    if (id == NULL)
        return jmap_set_error("invalidProperties", "id must be a string", "id");
    if ((e = copy_unknown_property(o)) != NULL)
        return e;
    if (json_object_get(o, "mailboxIds") == NULL)
        return jmap_set_error("invalidProperties", "mailboxIds must be given", "mailboxIds");
    id = jmap_resolve_id(r, id);
    if (id == NULL || !jmap_email_id_parse(id, hash))
        return jmap_set_error("notFound", NULL, NULL);
    if (jmap_account_messages(from, hash, 0, &c, &n, &err) != 0) {
        e = jmap_server_fail("email copy", &err);
        goto out;
    }
    if (n == 0) { /* none, or none in a mailbox login may read: the same answer */
        e = jmap_set_error("notFound", NULL, NULL);
        goto out;
    }
    json_t *props = json_pack("[s, s]", "keywords", "receivedAt");
    orig = jmap_email_object(from, c, n, props, NULL, &e);
    json_decref(props);
    if (orig == NULL)
        goto out;
    json_t *kw = json_object_get(o, "keywords"), *ra = json_object_get(o, "receivedAt");
    if (kw == NULL)
        kw = json_object_get(orig, "keywords");
    if (ra == NULL)
        ra = json_object_get(orig, "receivedAt");
    int64_t received = 0;
    if (ra && !json_is_null(ra) &&
        (!json_is_string(ra) || !jmap_utc_date_parse(json_string_value(ra), &received))) {
        e = jmap_set_error("invalidProperties", "receivedAt must be a UTCDate", "receivedAt");
        goto out;
    }
    buf_printf(&blob, "b%s", hash);
    int rc = jmap_blob_read(r->j, from->user, blob.data, &data, &err);
    if (rc != 0) {
        e = rc < 0 ? jmap_server_fail("blob", &err) : jmap_set_error("notFound", NULL, NULL);
        goto out;
    }
    if (jmap_email_store(r, buf_slice(&data), json_object_get(o, "mailboxIds"), kw, received, nhash,
                         &e) == 0)
        stored_created(r, cid, nhash, data.len, created);
out:
    json_decref(orig);
    store_account_messages_free(c, n);
    buf_free(&data);
    buf_free(&err);
    buf_free(&blob);
    return e;
}

/*
 * RFC 8621 4.7: Emails of one of login's accounts (fromAccountId) into
 * another (accountId): out of a shared account into login's own, or out of
 * login's own (or a shared one) into a shared one, where each mailbox of
 * mailboxIds asks "i" as Email/set's create does (jmap_email_store). An
 * Email is found only through a copy in a mailbox login holds "r" on,
 * exactly as Email/get finds it; with onSuccessDestroyOriginal the originals
 * go through an implicit Email/set on fromAccountId, which asks its rights
 * ("t" and "e") as any Email/set there does.
 */
json_t *jmap_email_copy(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *from = json_object_get(args, "fromAccountId"),
           *create = json_object_get(args, "create");
    if (!jmap_check_account(r, args, err_r))
        return NULL;
    if (!json_is_string(from)) {
        *err_r = jmap_invalid("fromAccountId must be a string");
        return NULL;
    }
    if (strcmp(json_string_value(from), r->account_id.data) == 0) {
        *err_r = jmap_invalid("fromAccountId must differ from accountId: use Email/set");
        return NULL;
    }
    struct jmap_req src = {.j = r->j, .login = r->login};
    struct buf err = BUF_INIT;
    json_t *res = NULL, *destroy = json_array();
    int rc = jmap_account_select(&src, json_string_value(from), &err);
    json_t *if_from = json_pack("{s:O?}", "ifInState", json_object_get(args, "ifFromInState"));
    uint64_t old;
    json_t *bad = NULL;
    if (rc < 0)
        bad = jmap_server_fail("account rights", &err);
    else if (rc > 0)
        bad = jmap_error("fromAccountNotFound", NULL);
    else if (!json_is_object(create))
        bad = jmap_invalid("create must be an object");
    else if (json_object_size(create) > r->j->limits.max_objects_in_set)
        bad = jmap_error("requestTooLarge", "more creates than maxObjectsInSet");
    if (bad != NULL)
        *err_r = bad;
    if (bad != NULL || !jmap_if_in_state(&src, if_from, err_r) ||
        !jmap_if_in_state(r, args, err_r) || !jmap_state_now(r, &old, err_r))
        goto out;
    json_t *created = json_object(), *not_created = json_object(), *o;
    const char *k;
    json_object_foreach(create, k, o)
    {
        json_t *e = copy_one(r, &src, k, o, created);
        if (e)
            json_object_set_new(not_created, k, e);
        else
            json_array_append(destroy, json_object_get(o, "id"));
    }
    res = jmap_set_response(r, old);
    json_object_set(res, "fromAccountId", from);
    json_object_set_new(res, "created", created);
    json_object_set_new(res, "notCreated", not_created);
    if (json_is_true(json_object_get(args, "onSuccessDestroyOriginal")) &&
        json_array_size(destroy) > 0) {
        json_t *eargs = json_pack("{s:O, s:O, s:O?}", "accountId", from, "destroy", destroy,
                                  "ifInState", json_object_get(args, "destroyFromIfInState"));
        json_t *e = NULL;
        bool shared_ok = r->shared_ok;
        r->shared_ok = true; /* the original's account is a shared one */
        json_t *sres = jmap_email_set(r, eargs, &e);
        r->shared_ok = shared_ok;
        json_array_append_new(r->extra, sres ? json_pack("[s, o]", "Email/set", sres)
                                             : json_pack("[s, o]", "error", e));
        json_decref(eargs);
    }
out:
    json_decref(if_from);
    json_decref(destroy);
    jmap_req_free(&src);
    buf_free(&err);
    return res;
}
