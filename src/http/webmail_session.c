/*
 * webmail_session.c - the webmail's sign-in (doc/webmail.md): a form's
 * user and password, checked by the auth process through the connection's
 * login kit exactly as Basic is, for a session token that the browser keeps
 * in an HttpOnly, Secure, SameSite=Strict cookie; the CSRF token derived
 * from it; sign-out, which has the auth process revoke it. The tokens are
 * the auth process's (auth_tokens.h, kind "session", idle timeout
 * webmail_session_idle); this file never stores one.
 *
 *   POST /webmail/session   {"username", "password"} -> cookie, {"account", "csrf",
 *                           "jmapSession", "inbox"} (the last two: jmap_routes_start_info)
 *   GET  /webmail/session   (the cookie)             -> {"account", "csrf"}
 *   POST /webmail/signout   (cookie and CSRF)        -> the session revoked, cookie cleared
 *
 * and the user's own app passwords (the tokens of `wharf token add`, for
 * other clients), under the session only (never Basic or a token: an app
 * password does not make app passwords), through the admin API's own path
 * to wharfd (http_admin_forward) marked "self": `wharf api` then allows the
 * account's own tokens and nothing else, and a new one only while the
 * session is fresh (doc/webmail.md):
 *
 *   GET    /webmail/tokens       -> {"tokens": [{"id", "created", "kind"}]}
 *   POST   /webmail/tokens       -> 201 {"token", ...}: the secret, this once
 *   DELETE /webmail/tokens/ID    -> 204
 *
 * and the directory of the user's own domain, for address autocomplete (RFC
 * 8621 has no directory method, and Wharf serves no JSContact address book):
 *
 *   GET    /webmail/directory    -> {"domain", "addresses": [its users and aliases]}
 *
 * Must never: log, echo or keep a password; accept a sign-in or a cookie on
 * a state-changing request from another origin; answer with the session
 * token anywhere but in Set-Cookie.
 */
#include "http/webmail.h"

#include "auth/auth_tokens.h"
#include "base/alloc.h"
#include "http/http_admin.h"
#include "http/http_server.h"
#include "http/jmap_http.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

/* The session cookie's value in req's Cookie field, or a NULL slice. */
static struct slice cookie_value(const struct http_request *req)
{
    const char *c = http_request_header(req, "Cookie");
    size_t n = strlen(WEBMAIL_COOKIE);
    while (c != NULL && *c) {
        while (*c == ' ' || *c == ';')
            c++;
        size_t len = strcspn(c, ";");
        if (len > n && strncmp(c, WEBMAIL_COOKIE "=", n + 1) == 0)
            return slice_make(c + n + 1, len - n - 1);
        c += len;
    }
    return slice_make(NULL, 0);
}

void webmail_csrf(struct slice token, char out[65])
{
    /* A hash of the secret under a label of its own: unguessable without the cookie, which
     * scripts cannot read (HttpOnly); the app learns it from the sign-in or GET session. */
    unsigned char h[SHA256_DIGEST_LENGTH];
    struct buf in = BUF_INIT;
    buf_append_cstr(&in, "wharf webmail csrf\n");
    buf_append(&in, token.ptr, token.len);
    SHA256((const unsigned char *)in.data, in.len, h);
    OPENSSL_cleanse(in.data, in.len);
    buf_free(&in);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(h); i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[64] = '\0';
    OPENSSL_cleanse(h, sizeof(h));
}

/* Origin names this very host (scheme https, the Host field as sent). */
static bool same_origin(const struct http_request *req)
{
    const char *o = http_request_header(req, "Origin");
    return o != NULL && strncmp(o, "https://", 8) == 0 &&
           strcmp(o + 8, http_request_host(req)) == 0;
}

enum webmail_cookie_verdict webmail_cookie_token(const struct http_request *req,
                                                 struct slice *token_r)
{
    struct slice t = cookie_value(req);
    if (t.ptr == NULL)
        return WEBMAIL_COOKIE_NONE;
    const char *m = http_request_method(req);
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        const char *sent = http_request_header(req, WEBMAIL_CSRF_HEADER);
        char want[65];
        webmail_csrf(t, want);
        if (sent == NULL || strlen(sent) != 64 || CRYPTO_memcmp(sent, want, 64) != 0 ||
            !same_origin(req))
            return WEBMAIL_COOKIE_REFUSED;
    }
    *token_r = t;
    return WEBMAIL_COOKIE_OK;
}

bool webmail_request(const struct http_request *req)
{
    return cookie_value(req).ptr != NULL || http_request_header(req, WEBMAIL_CSRF_HEADER) != NULL;
}

static void send_json(struct http_response *res, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    http_response_status(res, status);
    http_response_content_type(res, "application/json");
    http_response_header(res, "Cache-Control", "no-store");
    buf_append_cstr(http_response_body(res), text);
    free(text);
}

/* The session's answer; with start (a sign-in), also what the page's first JMAP
 * request needs (jmap_routes_start_info): one request to the Inbox on screen. */
static void session_json(struct http_request *req, struct http_response *res, const char *account,
                         struct slice token, bool start)
{
    char csrf[65] = "";
    if (token.ptr != NULL)
        webmail_csrf(token, csrf);
    json_t *o = json_pack("{s:s, s:s}", "account", account, "csrf", csrf);
    if (start)
        jmap_routes_start_info(req, account, o);
    send_json(res, 200, o);
}

static const char *refusal(int status)
{
    return status == 429   ? "too many failed sign-ins: try again later"
           : status == 503 ? "the server cannot check passwords now: try again later"
                           : "wrong user name or password";
}

static void signed_in(struct http_request *req, struct http_response *res, int status,
                      const char *account, const char *session, void *arg)
{
    (void)arg;
    if (status != 200 || session == NULL) {
        send_json(res, status == 200 ? 503 : status,
                  json_pack("{s:s}", "error", refusal(status == 200 ? 503 : status)));
    } else {
        struct buf c = BUF_INIT;
        buf_printf(&c, WEBMAIL_COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict", session);
        http_response_header(res, "Set-Cookie", c.data);
        OPENSSL_cleanse(c.data, c.len);
        buf_free(&c);
        session_json(req, res, account, slice_from_cstr(session), true);
    }
    http_response_finish(res);
}

static void sign_in(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    if (!http_request_is_tls(req)) {
        http_response_text(res, 403, "https only");
        return;
    }
    if (!same_origin(req)) { /* login CSRF: another site signing the user in as someone else */
        http_response_text(res, 403, "cross-origin sign-in refused");
        return;
    }
    struct slice body = http_request_body(req);
    json_error_t jerr;
    json_t *j = json_loadb(body.ptr ? body.ptr : "", body.len, JSON_REJECT_DUPLICATES, &jerr);
    const char *user = NULL, *pass = NULL;
    if (j == NULL || json_unpack(j, "{s:s, s:s}", "username", &user, "password", &pass) != 0 ||
        *user == '\0' || *pass == '\0') {
        if (j && json_is_object(j)) {
            json_t *p = json_object_get(j, "password");
            if (json_is_string(p))
                OPENSSL_cleanse((char *)json_string_value(p), json_string_length(p));
        }
        json_decref(j);
        send_json(res, 400, json_pack("{s:s}", "error", "username and password are needed"));
        return;
    }
    http_response_defer(res);
    http_request_session_start(req, res, slice_from_cstr(user), slice_from_cstr(pass), signed_in,
                               NULL);
    OPENSSL_cleanse((char *)pass, strlen(pass));
    json_decref(j);
}

static void session_get(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    struct slice t = cookie_value(req);
    session_json(req, res, http_request_user(req),
                 http_request_header(req, "Authorization") ? slice_make(NULL, 0) : t, false);
}

static const char *const clear_cookie =
    WEBMAIL_COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0";

static void signed_out(struct http_request *req, struct http_response *res, int status,
                       const char *account, const char *session, void *arg)
{
    (void)req, (void)account, (void)session, (void)arg;
    http_response_header(res, "Set-Cookie", clear_cookie);
    if (status == 200 || status == 401)
        http_response_status(res, 204); /* gone either way */
    else
        send_json(res, status, json_pack("{s:s}", "error", refusal(status)));
    http_response_finish(res);
}

static void sign_out(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    struct slice t = cookie_value(req);
    if (t.ptr == NULL || http_request_header(req, "Authorization") != NULL) {
        http_response_text(res, 400, "no webmail session");
        return;
    }
    http_response_defer(res);
    http_request_session_end(req, res, t, signed_out, NULL);
}

/*
 * /webmail/tokens[/ID], /webmail/directory: the admin API's request for
 * /admin/tokens[/ID], /admin/directory, marked "self": for this account only.
 */
static void own(struct http_request *req, struct http_response *res, void *arg)
{
    struct http_server *srv = arg;
    struct slice t = cookie_value(req);
    if (t.ptr == NULL || http_request_header(req, "Authorization") != NULL) {
        http_response_text(res, 403, "a webmail session only (not Basic, not a token)");
        return;
    }
    struct buf path = BUF_INIT, session = BUF_INIT;
    buf_printf(&path, "/admin%s", http_request_path(req) + strlen("/webmail"));
    buf_append(&session, t.ptr, t.len);
    char sid[17];
    auth_tokens_id(buf_cstr(&session), sid);
    OPENSSL_cleanse(session.data, session.len);
    buf_free(&session);
    int status;
    const char *why;
    json_t *r = http_admin_request(http_request_user(req), http_request_method(req), path.data, "",
                                   http_request_body(req), &status, &why);
    buf_free(&path);
    if (r == NULL) {
        send_json(res, status, json_pack("{s:s}", "error", why));
        return;
    }
    json_object_set_new(r, "self", json_true());
    json_object_set_new(r, "session", json_string(sid));
    http_admin_forward(srv, res, r);
}

void webmail_session_routes_init(struct http_server *srv)
{
    http_route_add("POST", "/webmail/session", 0, sign_in, NULL);
    http_route_add("GET", "/webmail/session", HTTP_ROUTE_AUTH, session_get, NULL);
    http_route_add("POST", "/webmail/signout", HTTP_ROUTE_AUTH, sign_out, NULL);
    http_route_add(NULL, "/webmail/tokens", HTTP_ROUTE_AUTH, own, srv);
    http_route_add("GET", "/webmail/directory", HTTP_ROUTE_AUTH, own, srv);
}
