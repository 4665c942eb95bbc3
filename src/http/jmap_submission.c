/*
 * jmap_submission.c - EmailSubmission/set and /get (RFC 8621 7): an Email
 * of the account handed to the queue through the caller's jmap_submit (the
 * spool and the mta, as SMTP submission does), after the same sender rule
 * (the envelope sender must be an address of the user, and the address of
 * the Identity the submission names), with its Bcc field
 * removed; then the onSuccess* changes to the Email as an implicit Email/set.
 *
 * Submissions are final once queued (undoStatus "final"): the queue, not
 * this engine, owns them, so /get finds none afterwards. Never queues a
 * message from a sender the rule refused, nor one with no recipient.
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Appends the addresses of every field name of the message's header to rcpts. */
static void header_rcpts(const struct mime_message *msg, const char *name, json_t *rcpts)
{
    for (size_t i = 0; i < msg->root->field_count; i++) {
        const struct mime_field *f = &msg->fields[msg->root->field_first + i];
        if (!slice_eq_cstr_nocase(mime_field_name(msg, f), name))
            continue;
        struct mime_address_list l;
        mime_address_parse(mime_field_value(msg, f), &l);
        for (size_t k = 0; k < l.n; k++) {
            if (l.v[k].host.ptr == NULL || l.v[k].mailbox.ptr == NULL)
                continue;
            struct buf a = BUF_INIT;
            buf_append_slice(&a, l.v[k].mailbox);
            buf_append_byte(&a, '@');
            buf_append_slice(&a, l.v[k].host);
            json_t *s = json_stringn(a.data, a.len);
            if (s)
                json_array_append_new(rcpts, s);
            buf_free(&a);
        }
        mime_address_list_free(&l);
    }
}

/* The message without its Bcc fields (RFC 8621 7.5). */
static void strip_bcc(const struct mime_message *msg, struct buf *out)
{
    size_t at = 0;
    for (size_t i = 0; i < msg->root->field_count; i++) {
        const struct mime_field *f = &msg->fields[msg->root->field_first + i];
        if (!slice_eq_cstr_nocase(mime_field_name(msg, f), "Bcc"))
            continue;
        size_t end = f->value_start + f->value_len;
        /* the line break after the value */
        if (end < msg->data.len && msg->data.ptr[end] == '\r')
            end++;
        if (end < msg->data.len && msg->data.ptr[end] == '\n')
            end++;
        buf_append(out, msg->data.ptr + at, f->start - at);
        at = end;
    }
    buf_append(out, msg->data.ptr + at, msg->data.len - at);
}

static bool address_ok(const char *a)
{
    const char *at = strchr(a, '@');
    return at && at != a && at[1] && !strpbrk(a, " <>\r\n\t,\"");
}

static json_t *submission_create(struct jmap_req *r, const char *cid, json_t *o, json_t *created)
{
    json_t *email_ids = r->submitted;
    const struct jmap_submit *sub = r->j->submit;
    if (sub == NULL)
        return jmap_set_error("forbidden", "submission is not enabled here", NULL);
    json_t *eid = json_object_get(o, "emailId"), *env = json_object_get(o, "envelope");
    const char *id = json_is_string(eid) ? jmap_resolve_id(r, json_string_value(eid)) : NULL;
    char hash[65];
    if (id == NULL || !jmap_email_id_parse(id, hash))
        return jmap_set_error("invalidProperties", "emailId names no Email", "emailId");
    json_t *iid = json_object_get(o, "identityId");
    if (!json_is_string(iid))
        return jmap_set_error("invalidProperties", "identityId must be a string", "identityId");
    struct buf err = BUF_INIT, data = BUF_INIT, sent = BUF_INIT, qid = BUF_INIT, ident = BUF_INIT;
    const char *iids = jmap_resolve_id(r, json_string_value(iid));
    if (iids == NULL || !jmap_identity_email(r, iids, &ident)) {
        buf_free(&ident);
        return jmap_set_error("invalidProperties", "identityId names no Identity", "identityId");
    }
    json_t *e = NULL, *rcpts = json_array();
    char *from = NULL;
    struct store_account_message *c = NULL;
    size_t n = 0;
    if (jmap_account_messages(r, hash, 0, &c, &n, &err) != 0) {
        e = jmap_server_fail("submission", &err);
        goto out;
    }
    if (n == 0) {
        e = jmap_set_error("invalidProperties", "emailId names no Email", "emailId");
        goto out;
    }
    if (store_message_read_id(r->j->store, r->user, c[0].mailbox_id, c[0].m.uid, &data, &err) !=
        0) {
        e = jmap_server_fail("read message", &err);
        goto out;
    }
    struct mime_message msg;
    mime_parse(&msg, buf_slice(&data), NULL);
    if (env && !json_is_null(env)) {
        json_t *mf = json_object_get(json_object_get(env, "mailFrom"), "email"),
               *rt = json_object_get(env, "rcptTo");
        size_t i;
        json_t *x;
        bool ok = json_is_string(mf) && json_is_array(rt);
        json_array_foreach(rt, i, x)
        {
            json_t *a = json_object_get(x, "email");
            ok = ok && json_is_string(a);
            if (ok)
                json_array_append(rcpts, a);
        }
        if (!ok) {
            mime_message_free(&msg);
            e = jmap_set_error("invalidProperties", "bad envelope", "envelope");
            goto out;
        }
        from = xstrdup(json_string_value(mf));
    } else {
        json_t *f = json_array();
        header_rcpts(&msg, "Sender", f);
        if (json_array_size(f) == 0)
            header_rcpts(&msg, "From", f);
        from = json_array_size(f) == 1 ? xstrdup(json_string_value(json_array_get(f, 0))) : NULL;
        json_decref(f);
        header_rcpts(&msg, "To", rcpts);
        header_rcpts(&msg, "Cc", rcpts);
        header_rcpts(&msg, "Bcc", rcpts);
    }
    strip_bcc(&msg, &sent);
    mime_message_free(&msg);
    if (from == NULL || !address_ok(from)) {
        e = jmap_set_error("invalidEmail", "no single sender address", "envelope");
        goto out;
    }
    if (json_array_size(rcpts) == 0) {
        e = jmap_set_error("noRecipients", NULL, NULL);
        goto out;
    }
    const char **rv = xcalloc(json_array_size(rcpts), sizeof(*rv));
    size_t i;
    json_t *x;
    bool bad = false;
    int owned = 0;
    json_array_foreach(rcpts, i, x)
    {
        rv[i] = json_string_value(x);
        bad = bad || !address_ok(rv[i]);
    }
    if (bad)
        e = jmap_set_error("invalidRecipients", "a recipient is not an address", NULL);
    else if (strcasecmp(from, buf_cstr(&ident)) != 0)
        e = jmap_set_error("forbiddenFrom", "the sender is not the identity's address", NULL);
    else if ((owned = sub->sender_ok(sub->ctx, r->user, from)) == 0)
        e = jmap_set_error("forbiddenFrom", "the user may not send from this address", NULL);
    else if (owned < 0)
        e = jmap_error("serverFail", "the sender check is not done yet: try again");
    else if (sub->enqueue(sub->ctx, r->user, from, rv, json_array_size(rcpts), buf_slice(&sent),
                          &qid, &err) != 0)
        e = jmap_server_fail("enqueue", &err);
    free(rv);
    if (e == NULL) {
        char sid[48];
        snprintf(sid, sizeof(sid), "s%s", qid.data ? qid.data : "");
        jmap_created(r, cid, sid);
        json_object_set_new(
            created, cid,
            json_pack("{s:s, s:s, s:s}", "id", sid, "threadId", "", "undoStatus", "final"));
        char tid[32];
        jmap_email_thread(r, hash, tid);
        json_object_set_new(json_object_get(created, cid), "threadId", json_string(tid));
        char full[70];
        snprintf(full, sizeof(full), "e%s", hash);
        json_object_set_new(email_ids, sid, json_string(full));
    }
out:
    free(from);
    json_decref(rcpts);
    store_account_messages_free(c, n);
    buf_free(&err);
    buf_free(&data);
    buf_free(&sent);
    buf_free(&qid);
    buf_free(&ident);
    return e;
}

/* onSuccessUpdateEmail / onSuccessDestroyEmail: "#cid" names a submission
 * created here; the changes run as an implicit Email/set (RFC 8621 7.5). */
static void on_success(struct jmap_req *r, json_t *args, json_t *email_ids)
{
    json_t *upd = json_object_get(args, "onSuccessUpdateEmail"),
           *des = json_object_get(args, "onSuccessDestroyEmail");
    if (!json_is_object(upd) && !json_is_array(des))
        return;
    json_t *eargs = json_pack("{s:s}", "accountId", r->account_id.data);
    json_t *u = json_object(), *d = json_array();
    const char *k;
    json_t *v;
    if (json_is_object(upd))
        json_object_foreach(upd, k, v)
        {
            const char *sid = k[0] == '#' ? jmap_resolve_id(r, k) : k;
            json_t *eid = sid ? json_object_get(email_ids, sid) : NULL;
            if (eid)
                json_object_set(u, json_string_value(eid), v);
        }
    size_t i;
    if (json_is_array(des))
        json_array_foreach(des, i, v)
        {
            const char *s = json_string_value(v);
            const char *sid = s && s[0] == '#' ? jmap_resolve_id(r, s) : s;
            json_t *eid = sid ? json_object_get(email_ids, sid) : NULL;
            if (eid)
                json_array_append(d, eid);
        }
    json_object_set_new(eargs, "update", u);
    json_object_set_new(eargs, "destroy", d);
    json_t *err = NULL;
    json_t *res = jmap_email_set(r, eargs, &err);
    json_array_append_new(r->extra, res ? json_pack("[s, o]", "Email/set", res)
                                        : json_pack("[s, o]", "error", err));
    json_decref(eargs);
}

/* queued submissions belong to the queue: nothing here to change or undo */
static json_t *submission_gone(struct jmap_req *r, const char *id, json_t *x)
{
    return jmap_set_error("notFound", NULL, NULL);
}

json_t *jmap_submission_set(struct jmap_req *r, json_t *args, json_t **err_r)
{
    static const struct jmap_set_ops ops = {submission_create, submission_gone, submission_gone,
                                            NULL};
    r->submitted = json_object();
    json_t *res = jmap_set_run(r, args, &ops, err_r);
    if (res)
        on_success(r, args, r->submitted);
    json_decref(r->submitted);
    r->submitted = NULL;
    return res;
}

json_t *jmap_submission_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *ids, *props;
    if (!jmap_check_account(r, args, err_r) || !jmap_get_ids(r, args, &ids, err_r) ||
        !jmap_get_properties(args, &props, err_r))
        return NULL;
    json_t *not_found = ids ? json_deep_copy(ids) : json_array();
    return json_pack("{s:s, s:s, s:[], s:o}", "accountId", r->account_id.data, "state", "0", "list",
                     "notFound", not_found);
}
