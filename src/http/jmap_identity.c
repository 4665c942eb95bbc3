/*
 * jmap_identity.c - Identity/get, /changes and /set (RFC 8621 6), and the
 * identity an EmailSubmission names (jmap_identity_email).
 *
 * Two kinds of identity: "i" + index, each address the directory gives the
 * account (the addresses SMTP submission lets it send from; fixed: neither
 * updated nor destroyed here), and "c" + the store's id, those the user
 * made with /set (store_identity). Never stores an identity whose email the
 * account may not send from (the sender rule of SMTP submission,
 * jmap_submit.sender_ok).
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The account's directory addresses (at least its own name). */
static void default_addresses(struct jmap_req *r, char ***addrs_r, size_t *n_r)
{
    if (r->j->addresses == NULL ||
        r->j->addresses(r->j->addresses_ctx, r->user, addrs_r, n_r) != 0) {
        *addrs_r = xcalloc(1, sizeof(**addrs_r));
        (*addrs_r)[0] = xstrdup(r->user);
        *n_r = 1;
    }
}

/* "c123" -> 123; 0 when not a made identity's id. */
static int64_t made_id_parse(const char *id)
{
    if (id[0] != 'c' || id[1] < '1' || id[1] > '9')
        return 0;
    char *end;
    unsigned long long v = strtoull(id + 1, &end, 10);
    return *end == '\0' && v < INT64_MAX ? (int64_t)v : 0;
}

/* "i3" -> 3; -1 when not a directory identity's id. */
static long default_index_parse(const char *id)
{
    if (id[0] != 'i' || id[1] < '0' || id[1] > '9' || (id[1] == '0' && id[2]))
        return -1;
    char *end;
    unsigned long v = strtoul(id + 1, &end, 10);
    return *end == '\0' && v < 1000000 ? (long)v : -1;
}

static json_t *json_text_or_null(const char *s)
{
    json_t *v = s ? json_loads(s, 0, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *identity_object(const char *id, const char *email, const struct store_identity *d,
                               json_t *props)
{
    json_t *o = json_pack("{s:s}", "id", id);
    const struct {
        const char *name;
        json_t *value;
    } fields[] = {
        {"name", json_string(d && d->name ? d->name : "")},
        {"email", json_string(email)},
        {"replyTo", json_text_or_null(d ? d->reply_to : NULL)},
        {"bcc", json_text_or_null(d ? d->bcc : NULL)},
        {"textSignature", json_string(d && d->text_signature ? d->text_signature : "")},
        {"htmlSignature", json_string(d && d->html_signature ? d->html_signature : "")},
        {"mayDelete", json_boolean(d != NULL)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (jmap_want(props, fields[i].name))
            json_object_set(o, fields[i].name, fields[i].value);
        json_decref(fields[i].value);
    }
    return o;
}

static bool wanted(json_t *ids, const char *id)
{
    if (ids == NULL)
        return true;
    size_t k;
    json_t *x;
    json_array_foreach(ids, k, x) if (strcmp(json_string_value(x), id) == 0) return true;
    return false;
}

json_t *jmap_identity_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *ids, *props;
    if (!jmap_check_account(r, args, err_r) || !jmap_get_ids(r, args, &ids, err_r) ||
        !jmap_get_properties(args, &props, err_r))
        return NULL;
    json_t *state = jmap_state(r);
    struct store_identity *made = NULL;
    size_t n_made = 0;
    struct buf err = BUF_INIT;
    if (state == NULL || store_identity_list(r->j->store, r->user, 0, &made, &n_made, &err) != 0) {
        json_decref(state);
        *err_r = jmap_server_fail("identities", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    char **addrs;
    size_t n;
    default_addresses(r, &addrs, &n);
    json_t *list = json_array(), *found = json_object();
    for (size_t i = 0; i < n; i++) {
        char id[24];
        snprintf(id, sizeof(id), "i%zu", i);
        if (wanted(ids, id)) {
            json_array_append_new(list, identity_object(id, addrs[i], NULL, props));
            json_object_set_new(found, id, json_true());
        }
    }
    for (size_t i = 0; i < n_made; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c%" PRId64, made[i].id);
        if (wanted(ids, id)) {
            json_array_append_new(list, identity_object(id, made[i].email, &made[i], props));
            json_object_set_new(found, id, json_true());
        }
    }
    json_t *not_found = json_array();
    size_t k;
    json_t *x;
    if (ids)
        json_array_foreach(ids, k, x) if (!json_object_get(found, json_string_value(x)))
            json_array_append(not_found, x);
    json_decref(found);
    store_names_free(addrs, n);
    store_identity_list_free(made, n_made);
    return jmap_get_result(r, state, list, not_found);
}

json_t *jmap_identity_changes(struct jmap_req *r, json_t *args, json_t **err_r)
{
    uint64_t since, current;
    size_t max;
    if (!jmap_changes_args(r, args, &since, &max, &current, err_r))
        return NULL;
    struct buf err = BUF_INIT;
    struct store_identity *v = NULL;
    size_t n = 0, n_gone = 0;
    int64_t *gone = NULL;
    uint64_t *gone_states = NULL;
    if (store_identity_list(r->j->store, r->user, since, &v, &n, &err) != 0 ||
        store_identity_gone(r->j->store, r->user, since, &gone, &gone_states, &n_gone, &err) != 0) {
        store_identity_list_free(v, n);
        *err_r = jmap_server_fail("identity changes", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    struct jmap_change *c = xcalloc(n + n_gone + 1, sizeof(*c));
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(c[nc].id, sizeof(c[nc].id), "c%" PRId64, v[i].id);
        c[nc].state = v[i].state;
        c[nc++].kind = v[i].created_state > since ? JMAP_CREATED : JMAP_UPDATED;
    }
    for (size_t i = 0; i < n_gone; i++) {
        snprintf(c[nc].id, sizeof(c[nc].id), "c%" PRId64, gone[i]);
        c[nc].state = gone_states[i];
        c[nc++].kind = JMAP_DESTROYED;
    }
    json_t *res = jmap_changes_result(r, c, nc, since, max, current);
    free(c);
    free(gone);
    free(gone_states);
    store_identity_list_free(v, n);
    return res;
}

bool jmap_identity_email(struct jmap_req *r, const char *id, struct buf *email_r)
{
    buf_reset(email_r);
    long k = default_index_parse(id);
    if (k >= 0) {
        char **addrs;
        size_t n;
        default_addresses(r, &addrs, &n);
        if ((size_t)k < n)
            buf_append_cstr(email_r, addrs[k]);
        store_names_free(addrs, n);
        return (size_t)k < n;
    }
    int64_t made = made_id_parse(id);
    struct store_identity *v = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT;
    if (made && store_identity_list(r->j->store, r->user, 0, &v, &n, &err) == 0)
        for (size_t i = 0; i < n; i++)
            if (v[i].id == made)
                buf_append_cstr(email_r, v[i].email);
    store_identity_list_free(v, n);
    buf_free(&err);
    return email_r->len > 0;
}

/* ---- /set ---- */

/* An EmailAddress[] or null (replyTo, bcc) as JSON text into *dst (NULL for null). */
static json_t *addresses_prop(json_t *value, const char *prop, char **dst)
{
    bool ok = json_is_null(value) || json_is_array(value);
    size_t i;
    json_t *a;
    json_array_foreach(value, i, a)
    {
        json_t *name = json_object_get(a, "name");
        ok = ok && json_is_object(a) && json_is_string(json_object_get(a, "email")) &&
             (name == NULL || json_is_null(name) || json_is_string(name));
    }
    if (!ok)
        return jmap_set_error("invalidProperties", "an EmailAddress list or null", prop);
    free(*dst);
    *dst = json_is_null(value) ? NULL : json_dumps(value, JSON_COMPACT);
    return NULL;
}

static json_t *string_prop(json_t *value, const char *prop, char **dst)
{
    if (!json_is_string(value))
        return jmap_set_error("invalidProperties", "a String", prop);
    free(*dst);
    *dst = xstrdup(json_string_value(value));
    return NULL;
}

/* Applies the settable properties of o to d (email only when creating). */
static json_t *identity_apply(json_t *o, struct store_identity *d, bool create)
{
    const char *k;
    json_t *x;
    json_object_foreach(o, k, x)
    {
        json_t *e = NULL;
        if (strcmp(k, "name") == 0)
            e = string_prop(x, k, &d->name);
        else if (strcmp(k, "textSignature") == 0)
            e = string_prop(x, k, &d->text_signature);
        else if (strcmp(k, "htmlSignature") == 0)
            e = string_prop(x, k, &d->html_signature);
        else if (strcmp(k, "replyTo") == 0)
            e = addresses_prop(x, k, &d->reply_to);
        else if (strcmp(k, "bcc") == 0)
            e = addresses_prop(x, k, &d->bcc);
        else if (strcmp(k, "email") == 0 && create)
            e = string_prop(x, k, &d->email);
        else if (strcmp(k, "email") == 0)
            e = json_is_string(x) && strcasecmp(json_string_value(x), d->email) == 0
                    ? NULL
                    : jmap_set_error("invalidProperties", "email is immutable", k);
        else
            e = jmap_set_error("invalidProperties", "not a settable Identity property", k);
        if (e)
            return e;
    }
    return NULL;
}

static void identity_clear(struct store_identity *d)
{
    store_identity_list_free(d, 1);
}

static json_t *identity_create(struct jmap_req *r, const char *cid, json_t *o, json_t *created)
{
    if (!json_is_object(o))
        return jmap_set_error("invalidProperties", "an Identity object", NULL);
    struct store_identity *d = xcalloc(1, sizeof(*d));
    json_t *e = identity_apply(o, d, true);
    const struct jmap_submit *sub = r->j->submit;
    int owned = 0;
    if (e == NULL && d->email == NULL)
        e = jmap_set_error("invalidProperties", "email is required", "email");
    else if (e == NULL &&
             (sub == NULL || (owned = sub->sender_ok(sub->ctx, r->user, d->email)) == 0))
        e = jmap_set_error("forbiddenFrom", "the user may not send from this address", "email");
    else if (e == NULL && owned < 0)
        e = jmap_set_error("serverFail", "the sender check is not done yet: try again", NULL);
    struct buf err = BUF_INIT;
    if (e == NULL && store_identity_put(r->j->store, r->user, d, &err) != 0)
        e = jmap_set_error("serverFail", buf_cstr(&err), NULL);
    if (e == NULL) {
        char id[32];
        snprintf(id, sizeof(id), "c%" PRId64, d->id);
        jmap_created(r, cid, id);
        json_object_set_new(created, cid, json_pack("{s:s, s:b}", "id", id, "mayDelete", 1));
    }
    buf_free(&err);
    identity_clear(d);
    return e;
}

/* owner's made identity id into *d (0), 1 when none, -1 with *e. */
static int made_find(struct jmap_req *r, int64_t id, struct store_identity *d, json_t **e)
{
    struct store_identity *v = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT;
    if (store_identity_list(r->j->store, r->user, 0, &v, &n, &err) != 0) {
        *e = jmap_set_error("serverFail", buf_cstr(&err), NULL);
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    int rc = 1;
    for (size_t i = 0; i < n && rc; i++)
        if (v[i].id == id) {
            *d = v[i];
            memset(&v[i], 0, sizeof(v[i]));
            rc = 0;
        }
    store_identity_list_free(v, n);
    return rc;
}

static json_t *identity_update(struct jmap_req *r, const char *id, json_t *patch)
{
    if (default_index_parse(id) >= 0)
        return jmap_set_error("forbidden",
                              "the account's own addresses are fixed: create an identity to name "
                              "or sign with one",
                              NULL);
    int64_t made = made_id_parse(id);
    struct store_identity *d = xcalloc(1, sizeof(*d));
    json_t *e = NULL;
    int rc = made ? made_find(r, made, d, &e) : 1;
    if (rc == 1)
        e = jmap_set_error("notFound", NULL, NULL);
    else if (rc == 0 && !json_is_object(patch))
        e = jmap_set_error("invalidPatch", "the update must be an object", NULL);
    else if (rc == 0)
        e = identity_apply(patch, d, false);
    struct buf err = BUF_INIT;
    if (rc == 0 && e == NULL && store_identity_put(r->j->store, r->user, d, &err) != 0)
        e = jmap_set_error("serverFail", buf_cstr(&err), NULL);
    buf_free(&err);
    identity_clear(d);
    return e;
}

static json_t *identity_destroy(struct jmap_req *r, const char *id, json_t *args)
{
    if (default_index_parse(id) >= 0)
        return jmap_set_error("forbidden", "the account's own addresses are fixed", NULL);
    int64_t made = made_id_parse(id);
    struct buf err = BUF_INIT;
    int rc = made ? store_identity_delete(r->j->store, r->user, made, &err) : 1;
    json_t *e = rc == 1   ? jmap_set_error("notFound", NULL, NULL)
                : rc != 0 ? jmap_set_error("serverFail", buf_cstr(&err), NULL)
                          : NULL;
    buf_free(&err);
    return e;
}

json_t *jmap_identity_set(struct jmap_req *r, json_t *args, json_t **err_r)
{
    static const struct jmap_set_ops ops = {identity_create, identity_update, identity_destroy,
                                            NULL};
    return jmap_set_run(r, args, &ops, err_r);
}
