/*
 * jmap_vacation.c - VacationResponse/get and /set (RFC 8621 8): the one
 * object "singleton" of an account, kept in the store (store_vacation).
 *
 * Only stores the response: the automatic reply itself is the mta's, at
 * delivery (src/mta/vacation.h). Never creates or destroys the singleton
 * (RFC 8621 8: "singleton" SetError).
 */
#include "http/jmap_int.h"
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

#define SINGLETON "singleton"

static json_t *date_or_null(bool has, int64_t t)
{
    if (!has)
        return json_null();
    struct buf b = BUF_INIT;
    jmap_utc_date(t, &b);
    json_t *s = json_string(buf_cstr(&b));
    buf_free(&b);
    return s;
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *vacation_object(const struct store_vacation *v, json_t *props)
{
    json_t *o = json_pack("{s:s}", "id", SINGLETON);
    const struct {
        const char *name;
        json_t *value;
    } fields[] = {
        {"isEnabled", json_boolean(v->enabled)},
        {"fromDate", date_or_null(v->has_from, v->from_date)},
        {"toDate", date_or_null(v->has_to, v->to_date)},
        {"subject", string_or_null(v->subject)},
        {"textBody", string_or_null(v->text_body)},
        {"htmlBody", string_or_null(v->html_body)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (jmap_want(props, fields[i].name))
            json_object_set(o, fields[i].name, fields[i].value);
        json_decref(fields[i].value);
    }
    return o;
}

json_t *jmap_vacation_get(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *ids, *props;
    if (!jmap_check_account(r, args, err_r) || !jmap_get_ids(r, args, &ids, err_r) ||
        !jmap_get_properties(args, &props, err_r))
        return NULL;
    json_t *list = json_array(), *not_found = json_array();
    bool want = ids == NULL;
    size_t k;
    json_t *x;
    if (ids)
        json_array_foreach(ids, k, x)
        {
            if (strcmp(json_string_value(x), SINGLETON) == 0)
                want = true;
            else
                json_array_append(not_found, x);
        }
    json_t *state = jmap_state(r);
    struct store_vacation v;
    struct buf err = BUF_INIT;
    if (state == NULL || store_vacation_get(r->j->store, r->user, &v, &err) != 0) {
        json_decref(state);
        json_decref(list);
        json_decref(not_found);
        *err_r = jmap_server_fail("vacation response", &err);
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    if (want)
        json_array_append_new(list, vacation_object(&v, props));
    store_vacation_free(&v);
    return jmap_get_result(r, state, list, not_found);
}

/* A nullable string property of the patch into *dst (replaced). */
static json_t *patch_string(json_t *value, const char *prop, char **dst)
{
    if (!json_is_null(value) && !json_is_string(value))
        return jmap_set_error("invalidProperties", "a String or null", prop);
    free(*dst);
    *dst = json_is_string(value) ? xstrdup(json_string_value(value)) : NULL;
    return NULL;
}

static json_t *patch_date(json_t *value, const char *prop, bool *has, int64_t *t)
{
    if (json_is_null(value)) {
        *has = false;
        *t = 0;
        return NULL;
    }
    if (!json_is_string(value) || !jmap_utc_date_parse(json_string_value(value), t))
        return jmap_set_error("invalidProperties", "a UTCDate or null", prop);
    *has = true;
    return NULL;
}

static json_t *vacation_update(struct jmap_req *r, const char *id, json_t *patch)
{
    if (strcmp(id, SINGLETON) != 0)
        return jmap_set_error("notFound", NULL, NULL);
    if (!json_is_object(patch))
        return jmap_set_error("invalidPatch", "the update must be an object", NULL);
    struct store_vacation v;
    struct buf err = BUF_INIT;
    if (store_vacation_get(r->j->store, r->user, &v, &err) != 0) {
        json_t *e = jmap_set_error("serverFail", buf_cstr(&err), NULL);
        buf_free(&err);
        return e;
    }
    json_t *e = NULL;
    const char *k;
    json_t *x;
    json_object_foreach(patch, k, x)
    {
        if (e)
            break;
        if (strcmp(k, "id") == 0)
            e = json_is_string(x) && strcmp(json_string_value(x), SINGLETON) == 0
                    ? NULL
                    : jmap_set_error("invalidProperties", "id is immutable", k);
        else if (strcmp(k, "isEnabled") == 0) {
            if (json_is_boolean(x))
                v.enabled = json_is_true(x);
            else
                e = jmap_set_error("invalidProperties", "a Boolean", k);
        } else if (strcmp(k, "fromDate") == 0)
            e = patch_date(x, k, &v.has_from, &v.from_date);
        else if (strcmp(k, "toDate") == 0)
            e = patch_date(x, k, &v.has_to, &v.to_date);
        else if (strcmp(k, "subject") == 0)
            e = patch_string(x, k, &v.subject);
        else if (strcmp(k, "textBody") == 0)
            e = patch_string(x, k, &v.text_body);
        else if (strcmp(k, "htmlBody") == 0)
            e = patch_string(x, k, &v.html_body);
        else
            e = jmap_set_error("invalidProperties", "not a VacationResponse property", k);
    }
    if (e == NULL && v.subject && strpbrk(v.subject, "\r\n"))
        e = jmap_set_error("invalidProperties", "subject must be one line", "subject");
    if (e == NULL && store_vacation_set(r->j->store, r->user, &v, &err) != 0)
        e = jmap_set_error("serverFail", buf_cstr(&err), NULL);
    store_vacation_free(&v);
    buf_free(&err);
    return e;
}

static json_t *vacation_create(struct jmap_req *r, const char *cid, json_t *o, json_t *created)
{
    return jmap_set_error("singleton", "the VacationResponse exists: update it", NULL);
}

static json_t *vacation_destroy(struct jmap_req *r, const char *id, json_t *args)
{
    return jmap_set_error("singleton", "the VacationResponse cannot be destroyed", NULL);
}

json_t *jmap_vacation_set(struct jmap_req *r, json_t *args, json_t **err_r)
{
    static const struct jmap_set_ops ops = {vacation_create, vacation_update, vacation_destroy,
                                            NULL};
    return jmap_set_run(r, args, &ops, err_r);
}
