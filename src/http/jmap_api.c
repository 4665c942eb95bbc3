/*
 * jmap_api.c - the JMAP request (RFC 8620 3): decode and check the Request
 * object, resolve back-references (3.7, with the '*' of JSON pointers), run
 * each call through the method table, and build the Response; the shared
 * argument checks, errors, ids and states of the methods.
 *
 * Request-level trouble (size, not JSON, not a Request, an unknown
 * capability, too many calls) is a problem object and no method runs; a bad
 * call is a method error in its place and the next calls go on. Never runs
 * a method of a capability the request did not name in "using".
 */
#include "http/jmap_int.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/date.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void jmap_limits_from_config(struct jmap_limits *l, const struct wharf_config *cfg)
{
    if (cfg == NULL) {
        *l = (struct jmap_limits){50u << 20, 4, 10u << 20, 4, 16, 500, 500};
        return;
    }
    l->max_size_upload = (size_t)cfg->jmap_max_size_upload;
    l->max_concurrent_upload = (size_t)cfg->jmap_max_concurrent_upload;
    l->max_size_request = (size_t)cfg->jmap_max_size_request;
    l->max_concurrent_requests = (size_t)cfg->jmap_max_concurrent_requests;
    l->max_calls_in_request = (size_t)cfg->jmap_max_calls_in_request;
    l->max_objects_in_get = (size_t)cfg->jmap_max_objects_in_get;
    l->max_objects_in_set = (size_t)cfg->jmap_max_objects_in_set;
}

void jmap_account_id(const char *user, struct buf *out)
{
    static const char hex[] = "0123456789abcdef";
    buf_reset(out);
    buf_append_byte(out, 'a');
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        buf_append_byte(out, hex[*p >> 4]);
        buf_append_byte(out, hex[*p & 15]);
    }
}

json_t *jmap_problem(const char *type_suffix, int status, const char *detail)
{
    char type[96];
    snprintf(type, sizeof(type), "urn:ietf:params:jmap:error:%s", type_suffix);
    return json_pack("{s:s, s:i, s:s}", "type", type, "status", status, "detail", detail);
}

static json_t *problem_limit(const char *limit, const char *detail)
{
    json_t *p = jmap_problem("limit", 400, detail);
    json_object_set_new(p, "limit", json_string(limit));
    return p;
}

json_t *jmap_error(const char *type, const char *description)
{
    json_t *e = json_pack("{s:s}", "type", type);
    if (description)
        json_object_set_new(e, "description", json_string(description));
    return e;
}

json_t *jmap_invalid(const char *what)
{
    return jmap_error("invalidArguments", what);
}

json_t *jmap_set_error(const char *type, const char *description, const char *property)
{
    json_t *e = jmap_error(type, description);
    if (property)
        json_object_set_new(e, "properties", json_pack("[s]", property));
    return e;
}

json_t *jmap_server_fail(const char *what, struct buf *err)
{
    log_warning("jmap: %s: %s", what, buf_cstr(err));
    return jmap_error("serverFail", what);
}

bool jmap_check_account(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *a = json_object_get(args, "accountId");
    if (!json_is_string(a)) {
        *err_r = jmap_invalid("accountId must be a string");
        return false;
    }
    struct buf err = BUF_INIT;
    int rc = jmap_account_select(r, json_string_value(a), &err);
    if (rc < 0)
        *err_r = jmap_server_fail("account rights", &err);
    else if (rc > 0)
        *err_r = jmap_error("accountNotFound", NULL);
    else if (r->acl && !r->shared_ok) {
        jmap_account_reset(r);
        *err_r = jmap_error("accountNotSupportedByMethod", NULL);
        rc = 1;
    }
    buf_free(&err);
    return rc == 0;
}

bool jmap_get_ids(struct jmap_req *r, json_t *args, json_t **ids_r, json_t **err_r)
{
    json_t *ids = json_object_get(args, "ids");
    *ids_r = NULL;
    if (ids == NULL || json_is_null(ids))
        return true;
    if (!json_is_array(ids)) {
        *err_r = jmap_invalid("ids must be an array or null");
        return false;
    }
    if (json_array_size(ids) > r->j->limits.max_objects_in_get) {
        *err_r = jmap_error("requestTooLarge", "more ids than maxObjectsInGet");
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (!json_is_string(v)) {
            *err_r = jmap_invalid("ids must be strings");
            return false;
        }
    }
    *ids_r = ids;
    return true;
}

bool jmap_get_properties(json_t *args, json_t **props_r, json_t **err_r)
{
    json_t *p = json_object_get(args, "properties");
    *props_r = NULL;
    if (p == NULL || json_is_null(p))
        return true;
    size_t i;
    json_t *v;
    if (!json_is_array(p)) {
        *err_r = jmap_invalid("properties must be an array or null");
        return false;
    }
    json_array_foreach(p, i, v)
    {
        if (!json_is_string(v)) {
            *err_r = jmap_invalid("properties must be strings");
            return false;
        }
    }
    *props_r = p;
    return true;
}

bool jmap_want(json_t *props, const char *prop)
{
    if (props == NULL)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(props, i, v)
    {
        if (strcmp(json_string_value(v), prop) == 0)
            return true;
    }
    return false;
}

const char *jmap_resolve_id(struct jmap_req *r, const char *id)
{
    if (id[0] != '#')
        return id;
    json_t *v = json_object_get(r->created_ids, id + 1);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void jmap_created(struct jmap_req *r, const char *cid, const char *id)
{
    json_object_set_new(r->created_ids, cid, json_string(id));
}

json_t *jmap_state(struct jmap_req *r)
{
    uint64_t st;
    struct buf err = BUF_INIT;
    if (store_account_state(r->j->store, r->user, &st, &err) != 0) {
        log_warning("jmap: state of %s: %s", r->user, buf_cstr(&err));
        buf_free(&err);
        return NULL;
    }
    buf_free(&err);
    char s[32];
    snprintf(s, sizeof(s), "%" PRIu64, st);
    return json_string(s);
}

bool jmap_state_parse(const char *s, uint64_t *v_r)
{
    if (*s < '0' || *s > '9' || strlen(s) > 19)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *v_r = v;
    return true;
}

json_t *jmap_get_result(struct jmap_req *r, json_t *state, json_t *list, json_t *not_found)
{
    return json_pack("{s:s, s:o, s:o, s:o}", "accountId", r->account_id.data, "state", state,
                     "list", list, "notFound", not_found);
}

/* /changes and /queryChanges: the state named (name) and maxChanges; a
 * state ahead of the account is refused for a query (query: true). */
static bool since_args(struct jmap_req *r, json_t *args, const char *name, bool query,
                       uint64_t *since_r, size_t *max_r, uint64_t *current_r, json_t **err_r)
{
    if (!jmap_check_account(r, args, err_r))
        return false;
    json_t *s = json_object_get(args, name);
    if (!json_is_string(s)) {
        *err_r = jmap_invalid(query ? "sinceQueryState must be a string"
                                    : "sinceState must be a string");
        return false;
    }
    json_t *m = json_object_get(args, "maxChanges");
    *max_r = SIZE_MAX;
    if (m && !json_is_null(m)) {
        if (!json_is_integer(m) || json_integer_value(m) <= 0) {
            *err_r = jmap_invalid("maxChanges must be a positive integer");
            return false;
        }
        *max_r = (size_t)json_integer_value(m);
    }
    bool known = jmap_state_parse(json_string_value(s), since_r);
    if (known && !jmap_state_now(r, current_r, err_r))
        return false;
    if (!known || (query && *since_r > *current_r)) {
        *err_r = jmap_error("cannotCalculateChanges", "not a state of this server");
        return false;
    }
    return true;
}

bool jmap_changes_args(struct jmap_req *r, json_t *args, uint64_t *since_r, size_t *max_r,
                       uint64_t *current_r, json_t **err_r)
{
    return since_args(r, args, "sinceState", false, since_r, max_r, current_r, err_r);
}

bool jmap_query_changes_args(struct jmap_req *r, json_t *args, uint64_t *since_r, size_t *max_r,
                             uint64_t *current_r, json_t **err_r)
{
    return since_args(r, args, "sinceQueryState", true, since_r, max_r, current_r, err_r);
}

void jmap_state_string(uint64_t st, char out[32])
{
    snprintf(out, 32, "%" PRIu64, st);
}

bool jmap_state_now(struct jmap_req *r, uint64_t *st_r, json_t **err_r)
{
    struct buf err = BUF_INIT;
    bool ok = store_account_state(r->j->store, r->user, st_r, &err) == 0;
    if (!ok)
        *err_r = jmap_server_fail("account state", &err);
    buf_free(&err);
    return ok;
}

bool jmap_if_in_state(struct jmap_req *r, json_t *args, json_t **err_r)
{
    json_t *want = json_object_get(args, "ifInState");
    if (want == NULL || json_is_null(want))
        return true;
    uint64_t st, w;
    if (!json_is_string(want)) {
        *err_r = jmap_invalid("ifInState must be a string");
        return false;
    }
    if (!jmap_state_now(r, &st, err_r))
        return false;
    if (!jmap_state_parse(json_string_value(want), &w) || w != st) {
        *err_r = jmap_error("stateMismatch", NULL);
        return false;
    }
    return true;
}

bool jmap_set_args(struct jmap_req *r, json_t *args, json_t **create_r, json_t **update_r,
                   json_t **destroy_r, json_t **err_r)
{
    json_t *c = json_object_get(args, "create"), *u = json_object_get(args, "update"),
           *d = json_object_get(args, "destroy");
    c = json_is_null(c) ? NULL : c;
    u = json_is_null(u) ? NULL : u;
    d = json_is_null(d) ? NULL : d;
    if ((c && !json_is_object(c)) || (u && !json_is_object(u)) || (d && !json_is_array(d))) {
        *err_r = jmap_invalid("create and update must be objects, destroy an array");
        return false;
    }
    size_t n = (c ? json_object_size(c) : 0) + (u ? json_object_size(u) : 0) +
               (d ? json_array_size(d) : 0);
    if (n > r->j->limits.max_objects_in_set) {
        *err_r = jmap_error("requestTooLarge", "more objects than maxObjectsInSet");
        return false;
    }
    size_t i;
    json_t *v;
    const char *k;
    if (d)
        json_array_foreach(d, i, v)
        {
            if (!json_is_string(v)) {
                *err_r = jmap_invalid("destroy must hold ids");
                return false;
            }
        }
    if (u)
        json_object_foreach(u, k, v)
        {
            if (!json_is_object(v)) {
                *err_r = jmap_invalid("each update must be an object");
                return false;
            }
        }
    if (c)
        json_object_foreach(c, k, v)
        {
            if (!json_is_object(v)) {
                *err_r = jmap_invalid("each create must be an object");
                return false;
            }
        }
    if (!jmap_if_in_state(r, args, err_r))
        return false;
    *create_r = c;
    *update_r = u;
    *destroy_r = d;
    return true;
}

void jmap_publish_changed(struct jmap_req *r, int64_t mailbox_id, const char *name)
{
    if (r->j->publish == NULL)
        return;
    struct buf err = BUF_INIT;
    struct store_mailbox *v = NULL;
    size_t n = 0;
    if (name == NULL) {
        v = jmap_mailboxes(r, &n, &err);
        const struct store_mailbox *mb = v ? jmap_mailbox_find(v, n, mailbox_id) : NULL;
        name = mb ? mb->name : NULL;
    }
    uint64_t st = 0;
    if (name && store_account_state(r->j->store, r->user, &st, &err) == 0) {
        struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_CHANGED,
                               .u.mailbox_changed = {r->user, name, st}};
        r->j->publish(r->j->publish_ctx, &ev);
    }
    if (v)
        store_mailbox_list_free(v, n);
    buf_free(&err);
}

void jmap_publish_list(struct jmap_req *r, enum ipc_mailbox_list_change change, const char *name,
                       const char *old_name)
{
    if (r->j->publish == NULL)
        return;
    struct buf err = BUF_INIT;
    uint64_t st = 0;
    if (store_account_state(r->j->store, r->user, &st, &err) == 0) {
        struct ipc_event ev = {.type = IPC_EVENT_MAILBOX_LIST,
                               .u.mailbox_list = {r->user, change, name, old_name, st}};
        r->j->publish(r->j->publish_ctx, &ev);
    }
    buf_free(&err);
}

json_t *jmap_set_response(struct jmap_req *r, uint64_t old)
{
    uint64_t now;
    json_t *ignored = NULL;
    if (!jmap_state_now(r, &now, &ignored)) {
        json_decref(ignored);
        now = old;
    }
    char os[32], ns[32];
    jmap_state_string(old, os);
    jmap_state_string(now, ns);
    return json_pack("{s:s, s:s, s:s}", "accountId", r->account_id.data, "oldState", os, "newState",
                     ns);
}

json_t *jmap_set_run(struct jmap_req *r, json_t *args, const struct jmap_set_ops *ops,
                     json_t **err_r)
{
    json_t *create, *update, *destroy;
    uint64_t old;
    if (!jmap_check_account(r, args, err_r) ||
        !jmap_set_args(r, args, &create, &update, &destroy, err_r) ||
        !jmap_state_now(r, &old, err_r))
        return NULL;
    json_t *created = json_object(), *not_created = json_object(), *updated = json_object(),
           *not_updated = json_object(), *destroyed = json_array(), *not_destroyed = json_object();
    const char *k;
    json_t *x;
    size_t i;
    if (create)
        json_object_foreach(create, k, x)
        {
            json_t *e = ops->create ? ops->create(r, k, x, created)
                                    : jmap_set_error("forbidden", NULL, NULL);
            if (e)
                json_object_set_new(not_created, k, e);
        }
    json_t *handled = json_object();
    if (update && ops->update_many)
        ops->update_many(r, update, handled);
    if (update)
        json_object_foreach(update, k, x)
        {
            if (json_object_get(handled, k)) {
                json_object_set_new(updated, k, json_null());
                continue;
            }
            const char *id = jmap_resolve_id(r, k);
            json_t *e = id == NULL    ? jmap_set_error("notFound", NULL, NULL)
                        : ops->update ? ops->update(r, id, x)
                                      : jmap_set_error("forbidden", NULL, NULL);
            if (e)
                json_object_set_new(not_updated, k, e);
            else
                json_object_set_new(updated, k, json_null());
        }
    if (destroy)
        json_array_foreach(destroy, i, x)
        {
            const char *id = jmap_resolve_id(r, json_string_value(x));
            json_t *e = id == NULL     ? jmap_set_error("notFound", NULL, NULL)
                        : ops->destroy ? ops->destroy(r, id, args)
                                       : jmap_set_error("forbidden", NULL, NULL);
            if (e)
                json_object_set_new(not_destroyed, json_string_value(x), e);
            else
                json_array_append(destroyed, x);
        }
    json_decref(handled);
    json_t *res = jmap_set_response(r, old);
    json_object_set_new(res, "created", created);
    json_object_set_new(res, "notCreated", not_created);
    json_object_set_new(res, "updated", updated);
    json_object_set_new(res, "notUpdated", not_updated);
    json_object_set_new(res, "destroyed", destroyed);
    json_object_set_new(res, "notDestroyed", not_destroyed);
    return res;
}

static int change_order(const void *a, const void *b)
{
    uint64_t x = ((const struct jmap_change *)a)->state, y = ((const struct jmap_change *)b)->state;
    return x < y ? -1 : x > y;
}

json_t *jmap_changes_result(struct jmap_req *r, struct jmap_change *v, size_t n, uint64_t since,
                            size_t max, uint64_t current)
{
    qsort(v, n, sizeof(*v), change_order);
    size_t take = n;
    bool more = false;
    if (n > max) {
        take = max;
        /* a state is given whole or not at all */
        while (take > 0 && v[take].state == v[take - 1].state)
            take--;
        if (take == 0) {
            take = max;
            while (take < n && v[take].state == v[take - 1].state)
                take++;
        }
        more = take < n;
    }
    char old_s[32], new_s[32];
    jmap_state_string(since, old_s);
    uint64_t ns = more ? v[take - 1].state : current;
    if (!more && take > 0 && v[take - 1].state > ns)
        ns = v[take - 1].state;
    jmap_state_string(ns, new_s);
    json_t *cr = json_array(), *up = json_array(), *de = json_array();
    for (size_t i = 0; i < take; i++)
        json_array_append_new(v[i].kind == JMAP_CREATED   ? cr
                              : v[i].kind == JMAP_UPDATED ? up
                                                          : de,
                              json_string(v[i].id));
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "accountId", r->account_id.data,
                     "oldState", old_s, "newState", new_s, "hasMoreChanges", more, "created", cr,
                     "updated", up, "destroyed", de);
}

/* prefix + a decimal number from 1 -> the number; 0 when id is not such. */
static int64_t number_id_parse(const char *id, char prefix)
{
    if (id == NULL || id[0] != prefix || id[1] < '1' || id[1] > '9' || strlen(id) > 19)
        return 0;
    int64_t v = 0;
    for (const char *p = id + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int64_t jmap_mailbox_id_parse(const char *id)
{
    return number_id_parse(id, 'm');
}

void jmap_mailbox_id(int64_t id, char out[32])
{
    snprintf(out, 32, "m%" PRId64, id);
}

int64_t jmap_thread_id_parse(const char *id)
{
    return number_id_parse(id, 't');
}

void jmap_thread_id(int64_t id, char out[32])
{
    snprintf(out, 32, "t%" PRId64, id);
}

void jmap_email_thread(struct jmap_req *r, const char *hash, char out[32])
{
    struct store_account_message *c = NULL;
    size_t n = 0;
    struct buf err = BUF_INIT;
    out[0] = '\0';
    if (jmap_account_messages(r, hash, 0, &c, &n, &err) == 0 && n > 0)
        jmap_thread_id(c[0].thread, out);
    store_account_messages_free(c, n);
    buf_free(&err);
}

bool jmap_email_id_parse(const char *id, char hash[65])
{
    if (id == NULL || id[0] != 'e' || strlen(id) != 65)
        return false;
    for (size_t i = 1; i < 65; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    memcpy(hash, id + 1, 65);
    return true;
}

void jmap_utc_date(int64_t t, struct buf *out)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    int64_t y;
    unsigned m, d;
    date_civil_from_days(days, &y, &m, &d);
    buf_printf(out, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02dZ", y, m, d, (int)(secs / 3600),
               (int)(secs / 60 % 60), (int)(secs % 60));
}

bool jmap_utc_date_parse(const char *s, int64_t *t_r)
{
    int y, mo, d, h, mi, se;
    char z;
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &y, &mo, &d, &h, &mi, &se, &z, &n) != 7 ||
        z != 'Z' || s[n] != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60 || h < 0 || mi < 0 || se < 0)
        return false;
    *t_r = date_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    return true;
}

static json_t *core_echo(struct jmap_req *r, json_t *args, json_t **err_r)
{
    return json_incref(args);
}

/* shared: the method works on a shared account (jmap_account.c), checking rights */
/* The calling thread's CPU time in microseconds (the per-method debug line). */
static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const struct method {
    const char *name;
    const char *capability;
    jmap_method_fn fn;
    bool shared;
} methods[] = {
    {"Core/echo", JMAP_CORE, core_echo, false},
    {"Mailbox/get", JMAP_MAIL, jmap_mailbox_get, true},
    {"Mailbox/changes", JMAP_MAIL, jmap_mailbox_changes, true},
    {"Mailbox/query", JMAP_MAIL, jmap_mailbox_query, true},
    {"Mailbox/queryChanges", JMAP_MAIL, jmap_mailbox_query_changes, true},
    {"Mailbox/set", JMAP_MAIL, jmap_mailbox_set, true},
    {"Email/get", JMAP_MAIL, jmap_email_get, true},
    {"Email/changes", JMAP_MAIL, jmap_email_changes, true},
    {"Email/query", JMAP_MAIL, jmap_email_query, true},
    {"Email/queryChanges", JMAP_MAIL, jmap_email_query_changes, true},
    {"Email/set", JMAP_MAIL, jmap_email_set, true},
    {"Email/import", JMAP_MAIL, jmap_email_import, false},
    {"Email/copy", JMAP_MAIL, jmap_email_copy, true},
    {"Email/parse", JMAP_MAIL, jmap_email_parse, false},
    {"Thread/get", JMAP_MAIL, jmap_thread_get, true},
    {"Thread/changes", JMAP_MAIL, jmap_thread_changes, true},
    {"SearchSnippet/get", JMAP_MAIL, jmap_snippet_get, true},
    {"Identity/get", JMAP_SUBMISSION, jmap_identity_get, false},
    {"Identity/changes", JMAP_SUBMISSION, jmap_identity_changes, false},
    {"Identity/set", JMAP_SUBMISSION, jmap_identity_set, false},
    {"EmailSubmission/get", JMAP_SUBMISSION, jmap_submission_get, false},
    {"EmailSubmission/set", JMAP_SUBMISSION, jmap_submission_set, false},
    {"VacationResponse/get", JMAP_VACATION, jmap_vacation_get, false},
    {"VacationResponse/set", JMAP_VACATION, jmap_vacation_set, false},
};

static const char *const capabilities[] = {JMAP_CORE, JMAP_MAIL, JMAP_SUBMISSION, JMAP_VACATION};

/* ---- back-references (RFC 8620 3.7) ---- */

/* One JSON pointer token, ~1 and ~0 undone. */
static char *pointer_token(const char **p)
{
    const char *s = *p;
    size_t len = strcspn(s, "/");
    struct buf t = BUF_INIT;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '~' && i + 1 < len && (s[i + 1] == '0' || s[i + 1] == '1')) {
            buf_append_byte(&t, s[i + 1] == '0' ? '~' : '/');
            i++;
        } else
            buf_append_byte(&t, s[i]);
    }
    *p = s + len;
    return buf_steal(&t, NULL);
}

/* Evaluates path (from after a '/') in v; NULL when it names nothing. A '*'
 * maps the rest over an array, flattening arrays it yields. Depth-bounded by
 * the pointer's length, which the request size bounds. */
static json_t *pointer_eval(json_t *v, const char *path)
{
    if (*path == '\0')
        return json_incref(v);
    if (*path != '/')
        return NULL;
    path++;
    char *tok = pointer_token(&path);
    json_t *res = NULL;
    if (strcmp(tok, "*") == 0 && json_is_array(v)) {
        res = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            json_t *x = pointer_eval(e, path);
            if (x == NULL) {
                json_decref(res);
                res = NULL;
                break;
            }
            if (json_is_array(x))
                json_array_extend(res, x);
            else
                json_array_append(res, x);
            json_decref(x);
        }
    } else if (json_is_object(v)) {
        json_t *c = json_object_get(v, tok);
        res = c ? pointer_eval(c, path) : NULL;
    } else if (json_is_array(v)) {
        char *end;
        unsigned long idx = strtoul(tok, &end, 10);
        json_t *c = *tok && *end == '\0' ? json_array_get(v, idx) : NULL;
        res = c ? pointer_eval(c, path) : NULL;
    }
    free(tok);
    return res;
}

/* Replaces every "#name" argument by the value its ResultReference names;
 * false with *err_r (invalidArguments or invalidResultReference). */
static bool resolve_refs(struct jmap_req *r, json_t *args, json_t **err_r)
{
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(args, tmp, key, val)
    {
        if (key[0] != '#')
            continue;
        if (json_object_get(args, key + 1)) {
            *err_r = jmap_invalid("an argument is given both plainly and as a reference");
            return false;
        }
        json_t *rc = json_object_get(val, "resultOf"), *nm = json_object_get(val, "name"),
               *pt = json_object_get(val, "path");
        if (!json_is_string(rc) || !json_is_string(nm) || !json_is_string(pt)) {
            *err_r = jmap_error("invalidResultReference", "not a ResultReference");
            return false;
        }
        json_t *found = NULL;
        size_t i;
        json_t *resp;
        json_array_foreach(r->responses, i, resp)
        {
            if (strcmp(json_string_value(json_array_get(resp, 2)), json_string_value(rc)) == 0) {
                if (strcmp(json_string_value(json_array_get(resp, 0)), json_string_value(nm)) == 0)
                    found = json_array_get(resp, 1);
                break;
            }
        }
        json_t *res = found ? pointer_eval(found, json_string_value(pt)) : NULL;
        if (res == NULL) {
            *err_r = jmap_error("invalidResultReference", "the reference names no result");
            return false;
        }
        char *plain = xstrdup(key + 1);
        json_object_del(args, key);
        json_object_set_new(args, plain, res);
        free(plain);
    }
    return true;
}

/* ---- the request ---- */

/*
 * Decodes and checks a Request object (RFC 8620 3.3): returns it, or NULL
 * with *problem_r. Pure: the fuzz target runs it (fuzz_jmap_request.c).
 */
json_t *jmap_request_decode(const char *body, size_t len, const struct jmap_limits *l,
                            json_t **problem_r);
json_t *jmap_request_decode(const char *body, size_t len, const struct jmap_limits *l,
                            json_t **problem_r)
{
    *problem_r = NULL;
    if (len > l->max_size_request) {
        *problem_r = problem_limit("maxSizeRequest", "the request is larger than maxSizeRequest");
        return NULL;
    }
    json_error_t jerr;
    /* I-JSON: no duplicate keys; the size bound above bounds jansson's depth too */
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (req == NULL) {
        *problem_r = jmap_problem("notJSON", 400, "the request did not parse as I-JSON");
        return NULL;
    }
    json_t *using = json_object_get(req, "using"), *calls = json_object_get(req, "methodCalls"),
           *cids = json_object_get(req, "createdIds");
    bool ok = json_is_object(req) && json_is_array(using) && json_is_array(calls) &&
              (cids == NULL || json_is_object(cids));
    size_t i;
    json_t *v;
    if (ok) {
        json_array_foreach(using, i, v) ok = ok && json_is_string(v);
        json_array_foreach(calls, i, v)
        {
            ok = ok && json_is_array(v) && json_array_size(v) == 3 &&
                 json_is_string(json_array_get(v, 0)) && json_is_object(json_array_get(v, 1)) &&
                 json_is_string(json_array_get(v, 2));
        }
    }
    if (ok && cids) {
        const char *k;
        json_object_foreach(cids, k, v) ok = ok && json_is_string(v);
    }
    if (!ok) {
        json_decref(req);
        *problem_r = jmap_problem("notRequest", 400, "the request is not a JMAP Request object");
        return NULL;
    }
    json_array_foreach(using, i, v)
    {
        bool known = false;
        for (size_t k = 0; k < sizeof(capabilities) / sizeof(capabilities[0]); k++)
            known = known || strcmp(json_string_value(v), capabilities[k]) == 0;
        if (!known) {
            json_decref(req);
            *problem_r = jmap_problem("unknownCapability", 400,
                                      "the request uses a capability this server does not have");
            return NULL;
        }
    }
    if (json_array_size(calls) > l->max_calls_in_request) {
        json_decref(req);
        *problem_r = problem_limit("maxCallsInRequest", "more method calls than maxCallsInRequest");
        return NULL;
    }
    return req;
}

static bool uses(json_t *using, const char *cap)
{
    size_t i;
    json_t *v;
    json_array_foreach(using, i, v)
    {
        if (strcmp(json_string_value(v), cap) == 0)
            return true;
    }
    return false;
}

void jmap_api(struct jmap *j, const char *user, const char *body, size_t len, json_t **out,
              int *http_status)
{
    json_t *problem;
    json_t *req = jmap_request_decode(body, len, &j->limits, &problem);
    if (req == NULL) {
        *out = problem;
        *http_status = 400;
        return;
    }
    json_t *using = json_object_get(req, "using");
    struct jmap_req r = {.j = j, .user = user, .login = user, .responses = json_array()};
    buf_init(&r.account_id);
    buf_init(&r.view_key);
    jmap_account_reset(&r);
    json_t *cids = json_object_get(req, "createdIds");
    r.created_ids = cids ? json_deep_copy(cids) : json_object();
    size_t i;
    json_t *call;
    json_array_foreach(json_object_get(req, "methodCalls"), i, call)
    {
        const char *name = json_string_value(json_array_get(call, 0));
        json_t *args = json_deep_copy(json_array_get(call, 1));
        json_t *cid = json_array_get(call, 2);
        const struct method *m = NULL;
        for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
            if (strcmp(methods[k].name, name) == 0)
                m = &methods[k];
        json_t *err = NULL, *res = NULL;
        if (m == NULL || !uses(using, m->capability))
            err = jmap_error("unknownMethod", NULL);
        else if (resolve_refs(&r, args, &err)) {
            jmap_account_reset(&r); /* each call names its account */
            r.shared_ok = m->shared;
            r.extra = json_array();
            /* each method's wall and CPU time at debug: where a slow request's time went */
            bool timed = log_debug_enabled();
            int64_t t0 = timed ? monotonic_us() : 0, c0 = timed ? thread_cpu_us() : 0;
            res = m->fn(&r, args, &err);
            if (timed)
                log_debug("jmap user=<%s> %s: %" PRId64 " us, cpu %" PRId64 " us", user, name,
                          monotonic_us() - t0, thread_cpu_us() - c0);
        }
        if (res)
            json_array_append_new(r.responses, json_pack("[s, o, O]", name, res, cid));
        else
            json_array_append_new(r.responses, json_pack("[s, o, O]", "error", err, cid));
        if (r.extra) {
            size_t k;
            json_t *x;
            json_array_foreach(r.extra, k, x)
            {
                json_array_append_new(r.responses, json_pack("[O, O, O]", json_array_get(x, 0),
                                                             json_array_get(x, 1), cid));
            }
            json_decref(r.extra);
            r.extra = NULL;
        }
        json_decref(args);
    }
    struct buf state = BUF_INIT;
    if (jmap_shared_accounts(j, user, NULL, NULL, &state) != 0)
        buf_append_cstr(&state, JMAP_SESSION_STATE);
    *out = json_pack("{s:o, s:s}", "methodResponses", r.responses, "sessionState", state.data);
    buf_free(&state);
    if (cids)
        json_object_set(*out, "createdIds", r.created_ids);
    json_decref(r.created_ids);
    jmap_req_free(&r);
    json_decref(req);
    *http_status = 200;
}
