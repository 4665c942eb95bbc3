/*
 * http_admin.c - /admin (see http_admin.h): checks that the logged-in
 * account is an admin, turns the request into one JSON object (method, the
 * %-decoded path segments after /admin, the query's fields, the body) and
 * hands it to wharfd (control_admin), which answers {"status": N, "body": ...}
 * from `wharf-admin api`; that becomes the response.
 *
 * Must never: answer before wharfd did (a deferred response), keep the
 * response after its client left (on_close cancels the wait), or pass on a
 * body that is not JSON.
 */
#include "http/http_admin.h"

#include "auth/auth_tokens.h"
#include "base/alloc.h"
#include "base/log.h"
#include "http/http_server.h"
#include "ipc/control.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A request body: a user, an alias with its targets, an ACL entry. Far below wharfd's cap. */
#define ADMIN_MAX_BODY (32 * 1024)

struct admin_wait {
    struct http_server *srv;
    struct http_response *res;
    uint64_t handle;
};

static void json_answer(struct http_response *res, int status, json_t *body)
{
    http_response_status(res, status);
    http_response_content_type(res, "application/json");
    http_response_header(res, "Cache-Control", "no-store");
    char *text = json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS);
    buf_append_cstr(http_response_body(res), text);
    buf_append_byte(http_response_body(res), '\n');
    free(text);
}

static void json_error(struct http_response *res, int status, const char *msg)
{
    json_t *b = json_pack("{s:s}", "error", msg);
    json_answer(res, status, b);
    json_decref(b);
}

/* "/admin/users/a%40b" -> ["users", "a@b"]; NULL on a bad escape or an empty segment. */
static json_t *path_segments(const char *path)
{
    json_t *segs = json_array();
    const char *p = path + strlen("/admin");
    while (*p == '/' && p[1] != '\0') {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        struct buf b = BUF_INIT;
        /* json_stringn refuses what is not UTF-8: such a name is refused, never dropped. */
        json_t *v =
            len > 0 && http_pct_decode(p, len, false, &b) ? json_stringn(b.data, b.len) : NULL;
        bool ok = v != NULL && json_array_append_new(segs, v) == 0;
        buf_free(&b);
        if (!ok || json_array_size(segs) > 8) {
            json_decref(segs);
            return NULL;
        }
        p += len;
    }
    return segs;
}

/* "a=1&b=x%40y" -> {"a": "1", "b": "x@y"}; NULL on a bad escape. */
static json_t *query_fields(const char *query)
{
    json_t *q = json_object();
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        struct buf k = BUF_INIT, v = BUF_INIT;
        size_t klen = eq ? (size_t)(eq - p) : len;
        bool ok = http_pct_decode(p, klen, true, &k) &&
                  (eq == NULL || http_pct_decode(eq + 1, len - klen - 1, true, &v));
        if (ok && k.len > 0)
            ok = json_object_setn_new(q, k.data, k.len, json_stringn(v.data, v.len)) == 0;
        buf_free(&k);
        buf_free(&v);
        if (!ok) {
            json_decref(q);
            return NULL;
        }
        p = amp ? amp + 1 : NULL;
    }
    return q;
}

static void admin_gone(void *arg)
{
    struct admin_wait *w = arg;
    control_status_all_cancel(net_worker_control(w->srv->worker), w->handle);
    free(w);
}

static void admin_done(void *arg, json_t *reply)
{
    struct admin_wait *w = arg;
    struct http_response *res = w->res;
    free(w);
    json_t *status = json_object_get(reply, "status");
    json_t *body = json_object_get(reply, "body");
    if (!json_is_integer(status) || json_integer_value(status) < 200 ||
        json_integer_value(status) > 599)
        json_error(res, 503, "wharfd did not answer");
    else if (json_integer_value(status) == 204)
        http_response_status(res, 204);
    else
        json_answer(res, (int)json_integer_value(status), body ? body : json_null());
    http_response_finish(res);
}

json_t *http_admin_request(const char *user, const char *method, const char *path,
                           const char *query, struct slice body, int *status_r, const char **why_r)
{
    *status_r = 400;
    if (body.len > ADMIN_MAX_BODY) {
        *status_r = 413;
        *why_r = "request body too large";
        return NULL;
    }
    json_error_t jerr;
    json_t *jbody = body.len > 0 ? json_loadb(body.ptr, body.len, 0, &jerr) : NULL;
    if (body.len > 0 && !json_is_object(jbody)) {
        json_decref(jbody);
        *why_r = "the body is not a JSON object";
        return NULL;
    }
    json_t *segs = strncmp(path, "/admin", 6) == 0 ? path_segments(path) : NULL;
    json_t *fields = query_fields(query);
    if (segs == NULL || fields == NULL) {
        json_decref(segs);
        json_decref(fields);
        json_decref(jbody);
        *why_r = "malformed path or query";
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "user", user, "method", method, "path", segs,
                     "query", fields, "body", jbody ? jbody : json_null());
}

static void admin(struct http_request *req, struct http_response *res, void *arg)
{
    struct http_server *srv = arg;
    const char *user = http_request_user(req);
    if (user == NULL || !strlist_contains_nocase(&srv->cfg->admin_accounts, user)) {
        json_error(res, 403, "not an admin account (admin_accounts)");
        return;
    }
    /* An admin's password acts as admin; of its tokens, only an admin-scoped one (checked by
     * the auth process for this request, prefix included); never the webmail's cookie. */
    const char *authz = http_request_header(req, "Authorization");
    if (authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0) {
        const char *t = authz + 7;
        while (*t == ' ')
            t++;
        if (!auth_tokens_is_admin(t)) {
            json_error(res, 403, "this token has no admin scope (wharf token add --scope admin)");
            return;
        }
    } else if (authz == NULL || strncasecmp(authz, "Basic ", 6) != 0) {
        json_error(res, 403, "the admin API takes a password or an admin-scoped token");
        return;
    }
    int status;
    const char *why;
    json_t *r = http_admin_request(user, http_request_method(req), http_request_path(req),
                                   http_request_query(req), http_request_body(req), &status, &why);
    if (r == NULL) {
        json_error(res, status, why);
        return;
    }
    http_admin_forward(srv, res, r);
}

void http_admin_forward(struct http_server *srv, struct http_response *res, json_t *request)
{
    char *text = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    struct admin_wait *w = xcalloc(1, sizeof(*w));
    w->srv = srv;
    w->res = res;
    http_response_defer(res);
    http_response_on_close(res, admin_gone, w);
    w->handle = control_admin(net_worker_control(srv->worker), text, admin_done, w);
    free(text);
}

void http_admin_init(struct http_server *srv)
{
    http_route_add(NULL, "/admin", HTTP_ROUTE_AUTH, admin, srv);
}
