/*
 * http_conn.c - one HTTP/1.1 connection on the network kit (net_proto):
 * reading requests with the strict parser (keep-alive, pipelining, one
 * request at a time, in order), Basic authentication through the login
 * kit, dispatch to the routes, and the response side of http_route.h (at
 * once, deferred, streamed). Port 80 only redirects to https and serves
 * ACME http-01 challenges (http_plain.c's job, called from here).
 *
 * Must never: answer a request whose framing the parser refused other than
 * with its 4xx and a close, read the next request before the current one is
 * answered, send a password anywhere but to the auth process, or touch a
 * connection after net_conn_close (closed() may free it at once).
 */
#include "auth/auth_login.h"
#include "base/alloc.h"
#include "base/base64.h"
#include "base/clock.h"
#include "base/date.h"
#include "base/log.h"
#include "http/http_server.h"
#include "http/webmail.h"
#include "net/net_compress.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Smaller bodies are sent as they are: gzip's header and trailer eat the gain. */
#define HTTP_GZIP_MIN 256

enum conn_state {
    ST_HEAD,    /* reading a request head */
    ST_BODY,    /* reading its body */
    ST_AUTH,    /* its credentials are at the auth process */
    ST_HANDLER, /* a handler holds it (deferred or streaming) */
    ST_DONE,    /* answered with close: nothing more is read */
};

struct http_request {
    struct http_conn *conn;
    struct http_head head;
    struct buf raw;  /* the head's bytes; head's slices point here */
    struct buf body; /* decoded */
    char *method;    /* NUL-terminated copies */
    char *path, *query, *host;
    struct buf values; /* NUL-terminated field values handed out (offsets in vals) */
    const char *user;  /* the connection's, after authentication */
};

struct http_response {
    struct http_conn *conn;
    int status;
    struct buf headers; /* "Name: value\r\n"... */
    struct buf body;
    bool deferred, streaming, done, head_only, chunked;
    bool compressible; /* its Content-Type is text-like (gzip pays off) */
    bool encoded;      /* the handler set its own Content-Encoding */
    void (*on_close)(void *arg);
    void *on_close_arg;
};

struct http_conn {
    struct http_server *srv;
    struct net_conn *c;
    bool plain; /* port 80 */
    enum conn_state state;
    bool close_after; /* the current exchange is the last one */
    int in_process;   /* inside process(): it goes on by itself after an answer */
    struct http_request *req;
    struct http_response *res;
    size_t scanned; /* head bytes known to hold no LF yet */
    uint64_t body_left;
    struct http_chunked chunked;
    http_handler_fn fn;
    void *fn_arg;
    struct auth_login *login;
    char *auth_header; /* the Authorization value that logged in on this connection */
    char *user;
    unsigned requests;
    http_session_fn session_fn; /* a webmail sign-in or sign-out at the auth process */
    void *session_arg;
};

/* ---- requests ---- */

static void request_free(struct http_request *req)
{
    if (req == NULL)
        return;
    http_head_free(&req->head);
    explicit_bzero(req->raw.data, req->raw.len); /* may hold credentials */
    buf_free(&req->raw);
    buf_free(&req->body);
    buf_free(&req->values);
    free(req->method);
    free(req->path);
    free(req->query);
    free(req->host);
    free(req);
}

static void response_free(struct http_response *res)
{
    if (res == NULL)
        return;
    buf_free(&res->headers);
    buf_free(&res->body);
    free(res);
}

const char *http_request_method(const struct http_request *req)
{
    return req->method;
}

const char *http_request_path(const struct http_request *req)
{
    return req->path;
}

const char *http_request_query(const struct http_request *req)
{
    return req->query;
}

const char *http_request_host(const struct http_request *req)
{
    return req->host;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    struct slice v = http_head_field(&req->head, name);
    if (v.ptr == NULL)
        return NULL;
    /* The value is followed by OWS or CR in raw: NUL-terminate a copy there. */
    struct http_request *r = (struct http_request *)req;
    size_t off = (size_t)(v.ptr - r->raw.data);
    if (off + v.len < r->raw.len &&
        (r->raw.data[off + v.len] == '\r' || r->raw.data[off + v.len] == ' ' ||
         r->raw.data[off + v.len] == '\t' || r->raw.data[off + v.len] == '\0')) {
        r->raw.data[off + v.len] = '\0';
        return v.ptr;
    }
    return "";
}

struct slice http_request_body(const struct http_request *req)
{
    return buf_slice(&req->body);
}

const char *http_request_remote_addr(const struct http_request *req)
{
    return net_conn_addr(req->conn->c);
}

bool http_request_is_tls(const struct http_request *req)
{
    return net_conn_is_tls(req->conn->c);
}

const char *http_request_user(const struct http_request *req)
{
    return req->user;
}

struct http_server *http_request_server(const struct http_request *req)
{
    return req->conn->srv;
}

/* ---- responses ---- */

void http_response_status(struct http_response *res, int status)
{
    res->status = status;
}

/* Text-like media types: what gzip shrinks (not images, archives, octet streams). */
static bool compressible_type(const char *type)
{
    static const char *const text[] = {"text/", "application/json", "application/xml",
                                       "application/javascript", "image/svg+xml"};
    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        if (strncasecmp(type, text[i], strlen(text[i])) == 0)
            return true;
    }
    const char *semi = strchr(type, ';');
    size_t n = semi ? (size_t)(semi - type) : strlen(type);
    return (n > 5 && strncasecmp(type + n - 5, "+json", 5) == 0) ||
           (n > 4 && strncasecmp(type + n - 4, "+xml", 4) == 0);
}

/* Accept-Encoding (RFC 9110 12.5.3) names gzip (or *) with a q above 0. */
static bool accepts_gzip(const char *ae)
{
    if (ae == NULL)
        return false;
    bool yes = false;
    while (*ae) {
        size_t n = strcspn(ae, ",");
        struct slice item = slice_trim(slice_make(ae, n));
        const char *semi = memchr(item.ptr, ';', item.len);
        struct slice coding =
            slice_trim(slice_make(item.ptr, semi ? (size_t)(semi - item.ptr) : item.len));
        bool zero = false;
        if (semi) {
            struct slice param =
                slice_trim(slice_make(semi + 1, item.len - (size_t)(semi + 1 - item.ptr)));
            if (slice_startswith_nocase(param, "q=")) {
                zero = true; /* "q=0", "q=0.", "q=0.000" */
                for (size_t i = 2; i < param.len; i++) {
                    if (param.ptr[i] != '0' && param.ptr[i] != '.')
                        zero = false;
                }
            }
        }
        if (slice_eq_cstr_nocase(coding, "gzip") || slice_eq_cstr_nocase(coding, "x-gzip"))
            return !zero;
        if (slice_eq_cstr_nocase(coding, "*"))
            yes = !zero;
        ae += n;
        if (*ae == ',')
            ae++;
    }
    return yes;
}

static bool header_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

void http_response_header(struct http_response *res, const char *name, const char *value)
{
    if (!header_safe(name) || !header_safe(value)) {
        log_error("http: refusing a response header with CR or LF (%s)", name);
        return;
    }
    if (strcasecmp(name, "Content-Type") == 0)
        res->compressible = compressible_type(value);
    else if (strcasecmp(name, "Content-Encoding") == 0)
        res->encoded = true;
    buf_printf(&res->headers, "%s: %s\r\n", name, value);
}

void http_response_content_type(struct http_response *res, const char *type)
{
    http_response_header(res, "Content-Type", type);
}

struct buf *http_response_body(struct http_response *res)
{
    return &res->body;
}

void http_response_text(struct http_response *res, int status, const char *text)
{
    res->status = status;
    http_response_content_type(res, "text/plain; charset=utf-8");
    buf_reset(&res->body);
    buf_append_cstr(&res->body, text);
    buf_append_byte(&res->body, '\n');
}

/* Status line, the fields every response has, then the handler's. */
static void write_head(struct http_conn *hc, struct http_response *res, const char *framing)
{
    struct buf h = BUF_INIT;
    const char *text = http_status_text(res->status);
    buf_printf(&h, "HTTP/1.1 %d %s\r\nDate: ", res->status, text[0] ? text : "Unknown");
    date_http_append(wallclock_ms() / 1000, &h);
    buf_append_cstr(&h, "\r\nServer: Wharf\r\n");
    if (net_conn_is_tls(hc->c))
        buf_printf(&h, "Strict-Transport-Security: max-age=%lld\r\n",
                   (long long)(hc->srv->cfg->http_hsts_max_age / 1000));
    buf_append_cstr(&h, "X-Content-Type-Options: nosniff\r\n"
                        "Content-Security-Policy: frame-ancestors 'none'\r\n"
                        "X-Frame-Options: DENY\r\n"
                        "Referrer-Policy: no-referrer\r\n");
    buf_append(&h, res->headers.data, res->headers.len);
    if (framing)
        buf_append_cstr(&h, framing);
    if (hc->close_after)
        buf_append_cstr(&h, "Connection: close\r\n");
    else if (hc->req != NULL && hc->req->head.minor == 0)
        buf_append_cstr(&h, "Connection: keep-alive\r\n"); /* HTTP/1.0 closes unless told */
    buf_append_cstr(&h, "\r\n");
    net_conn_write(hc->c, h.data, h.len);
    buf_free(&h);
}

static void process(struct http_conn *hc);

/* The exchange is over: next request, or close. */
static void exchange_done(struct http_conn *hc)
{
    request_free(hc->req);
    response_free(hc->res);
    hc->req = NULL;
    hc->res = NULL;
    if (hc->close_after) {
        hc->state = ST_DONE;
        net_conn_close(hc->c, true); /* the last thing: closed() may follow */
        return;
    }
    hc->state = ST_HEAD;
    net_conn_set_timeout(hc->c, hc->srv->cfg->http_idle_timeout);
    if (hc->in_process == 0) {
        /* Outside readable(): let the loop call it for bytes already here. */
        net_conn_pause(hc->c);
        net_conn_resume(hc->c);
    }
}

static void send_response(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    struct buf framing = BUF_INIT;
    bool no_body = res->status == 204 || res->status == 304 || res->status < 200;
    /* gzip when it pays and the client takes it (RFC 9110 8.4); Vary either way. */
    if (!no_body && res->compressible && !res->encoded) {
        buf_append_cstr(&framing, "Vary: Accept-Encoding\r\n");
        struct buf z = BUF_INIT;
        if (res->body.len >= HTTP_GZIP_MIN && hc->req != NULL &&
            accepts_gzip(http_request_header(hc->req, "Accept-Encoding")) &&
            net_gzip(res->body.data, res->body.len, &z) && z.len < res->body.len) {
            buf_free(&res->body);
            res->body = z;
            buf_append_cstr(&framing, "Content-Encoding: gzip\r\n");
        } else {
            buf_free(&z);
        }
    }
    if (!no_body)
        buf_printf(&framing, "Content-Length: %zu\r\n", res->body.len);
    write_head(hc, res, framing.data);
    buf_free(&framing);
    if (!no_body && !res->head_only && res->body.len > 0)
        net_conn_write(hc->c, res->body.data, res->body.len);
    res->done = true;
    exchange_done(hc);
}

void http_response_defer(struct http_response *res)
{
    res->deferred = true;
}

void http_response_finish(struct http_response *res)
{
    if (res->done || res->streaming)
        return;
    send_response(res);
}

void http_response_stream_start(struct http_response *res)
{
    struct http_conn *hc = res->conn;
    if (res->streaming || res->done)
        return;
    res->streaming = true;
    res->chunked = hc->req->head.minor == 1 && !res->head_only;
    if (!res->chunked)
        hc->close_after = true; /* HTTP/1.0 (or HEAD): the body ends with the connection */
    write_head(hc, res, res->chunked ? "Transfer-Encoding: chunked\r\n" : NULL);
}

void http_response_stream_write(struct http_response *res, const void *data, size_t len)
{
    if (!res->streaming || res->done || len == 0 || res->head_only)
        return;
    if (res->chunked)
        net_conn_printf(res->conn->c, "%zx\r\n", len);
    net_conn_write(res->conn->c, data, len);
    if (res->chunked)
        net_conn_write(res->conn->c, "\r\n", 2);
}

bool http_response_stream_blocked(const struct http_response *res)
{
    return net_conn_output_blocked(res->conn->c);
}

void http_response_stream_end(struct http_response *res)
{
    if (!res->streaming || res->done)
        return;
    struct http_conn *hc = res->conn;
    if (res->chunked)
        net_conn_write(hc->c, "0\r\n\r\n", 5);
    res->done = true;
    exchange_done(hc);
}

void http_response_on_close(struct http_response *res, void (*fn)(void *arg), void *arg)
{
    res->on_close = fn;
    res->on_close_arg = arg;
}

/* ---- errors before a handler ---- */

static struct http_response *response_new(struct http_conn *hc)
{
    struct http_response *res = xcalloc(1, sizeof(*res));
    res->conn = hc;
    res->status = 200;
    return res;
}

/* Answers status with a short text (and extra header lines), then closes if close. */
static void respond_error(struct http_conn *hc, int status, const char *extra, bool close)
{
    if (hc->res == NULL)
        hc->res = response_new(hc);
    struct http_response *res = hc->res;
    if (hc->req && strcmp(hc->req->method, "HEAD") == 0)
        res->head_only = true;
    if (close)
        hc->close_after = true;
    buf_reset(&res->headers);
    if (extra)
        buf_append_cstr(&res->headers, extra);
    http_response_text(res, status, http_status_text(status));
    send_response(res);
}

/* ---- dispatch ---- */

static void run_handler(struct http_conn *hc)
{
    struct http_response *res = hc->res;
    hc->req->user = hc->user;
    hc->state = ST_HANDLER;
    /* A held request is not the client's delay: no command timeout meanwhile. */
    net_conn_set_timeout(hc->c, 0);
    hc->fn(hc->req, res, hc->fn_arg);
    if (hc->res == res && !res->deferred && !res->streaming && !res->done)
        send_response(res);
}

static const char *const www_authenticate =
    "WWW-Authenticate: Basic realm=\"Wharf\", charset=\"UTF-8\"\r\n"
    "WWW-Authenticate: Bearer realm=\"Wharf\"\r\n";

/* The challenges of a 401; none for the webmail's own requests (a browser would prompt). */
static const char *challenge(const struct http_conn *hc)
{
    return webmail_request(hc->req) ? NULL : www_authenticate;
}

/* The verdict of http_request_session_start/end, to the handler that asked. */
static void session_done(struct http_conn *hc, const struct auth_login_result *r)
{
    http_session_fn fn = hc->session_fn;
    hc->session_fn = NULL;
    net_conn_resume(hc->c); /* the kit paused it for the check; the handler still holds it */
    int status = r->status == AUTH_LOGIN_OK                                                    ? 200
                 : r->status == AUTH_LOGIN_RATELIMIT || r->status == AUTH_LOGIN_USER_ADDR_FULL ? 429
                 : r->status == AUTH_LOGIN_TEMPFAIL                                            ? 503
                                                    : 401;
    if (status == 200)
        log_info("http: webmail %s: user=<%s>, rip=%s", r->session ? "sign-in" : "sign-out",
                 r->account, net_conn_addr(hc->c));
    fn(hc->req, hc->res, status, status == 200 ? r->account : NULL, r->session, hc->session_arg);
}

static void session_ask(struct http_request *req, http_session_fn fn, void *arg)
{
    struct http_conn *hc = req->conn;
    WHARF_ASSERT(hc->session_fn == NULL && hc->state == ST_HANDLER);
    hc->session_fn = fn;
    hc->session_arg = arg;
}

void http_request_session_start(struct http_request *req, struct http_response *res,
                                struct slice user, struct slice pass, http_session_fn fn, void *arg)
{
    (void)res;
    session_ask(req, fn, arg);
    (void)auth_login_session(req->conn->login, user, pass); /* session_done follows */
}

void http_request_session_end(struct http_request *req, struct http_response *res,
                              struct slice token, http_session_fn fn, void *arg)
{
    (void)res;
    session_ask(req, fn, arg);
    (void)auth_login_end_session(req->conn->login, token);
}

static void auth_done(void *arg, const struct auth_login_result *r)
{
    struct http_conn *hc = arg;
    if (hc->session_fn != NULL) {
        session_done(hc, r);
        return;
    }
    hc->state = ST_BODY;
    /* The kit paused the connection for the check; the loop resumes it later. */
    net_conn_resume(hc->c);
    switch (r->status) {
    case AUTH_LOGIN_OK:
        free(hc->auth_header);
        free(hc->user);
        /* Basic credentials are remembered for the connection; a token (or a webmail session
         * cookie) is checked each time (so that a revocation holds at once). */
        const char *authz = http_request_header(hc->req, "Authorization");
        hc->auth_header =
            authz == NULL || strncasecmp(authz, "Bearer ", 7) == 0 ? NULL : xstrdup(authz);
        hc->user = xstrdup(r->account);
        log_info("http: login: user=<%s>, rip=%s", hc->user, net_conn_addr(hc->c));
        run_handler(hc);
        break;
    case AUTH_LOGIN_USER_ADDR_FULL:
    case AUTH_LOGIN_RATELIMIT:
        respond_error(hc, 429, "Retry-After: 60\r\n", false);
        break;
    case AUTH_LOGIN_TEMPFAIL:
        respond_error(hc, 503, "Retry-After: 30\r\n", false);
        break;
    case AUTH_LOGIN_FAILED:
    case AUTH_LOGIN_CANCELLED:
    case AUTH_LOGIN_MALFORMED:
        respond_error(hc, 401, challenge(hc), false);
        break;
    }
}

/* HTTP Basic (RFC 7617) over TLS only, checked by the auth process. */
static void authenticate(struct http_conn *hc)
{
    const char *authz = http_request_header(hc->req, "Authorization");
    if (!net_conn_is_tls(hc->c)) {
        respond_error(hc, 403, NULL, false);
        return;
    }
    struct slice cookie;
    if (authz == NULL) { /* the webmail: a session cookie, and its CSRF token */
        switch (webmail_cookie_token(hc->req, &cookie)) {
        case WEBMAIL_COOKIE_OK:
            hc->state = ST_AUTH;
            auth_login_token(hc->login, cookie);
            return;
        case WEBMAIL_COOKIE_REFUSED:
            respond_error(hc, 403, NULL, false);
            return;
        case WEBMAIL_COOKIE_NONE:
            break;
        }
    }
    bool bearer = authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0;
    if (authz == NULL || (!bearer && strncasecmp(authz, "Basic ", 6) != 0)) {
        respond_error(hc, 401, challenge(hc), false);
        return;
    }
    if (hc->auth_header != NULL && strcmp(authz, hc->auth_header) == 0) {
        run_handler(hc); /* the credentials this connection logged in with */
        return;
    }
    if (bearer) {
        /* An app password (RFC 6750 b64token): `wharf token add`. */
        const char *t = authz + 7;
        while (*t == ' ')
            t++;
        hc->state = ST_AUTH;
        auth_login_token(hc->login, slice_from_cstr(t));
        return;
    }
    struct buf dec = BUF_INIT;
    const char *p = authz + 6;
    while (*p == ' ')
        p++;
    size_t max = (size_t)hc->srv->cfg->auth_max_credential_length * 2 + 1;
    const char *colon;
    if (base64_decode(slice_from_cstr(p), max, &dec) != BASE64_OK ||
        (colon = memchr(dec.data, ':', dec.len)) == NULL) {
        explicit_bzero(dec.data, dec.len);
        buf_free(&dec);
        respond_error(hc, 401, challenge(hc), false);
        return;
    }
    struct slice user = slice_make(dec.data, (size_t)(colon - dec.data));
    struct slice pass = slice_make(colon + 1, dec.len - user.len - 1);
    hc->state = ST_AUTH;
    enum auth_login_step st = auth_login_password(hc->login, user, pass);
    (void)st; /* CHECKING: auth_done follows; DONE: it has run */
    explicit_bzero(dec.data, dec.len);
    buf_free(&dec);
}

static void dispatch(struct http_conn *hc)
{
    struct http_request *req = hc->req;
    hc->res = response_new(hc);
    hc->res->head_only = strcmp(req->method, "HEAD") == 0;
    hc->requests++;
    if (hc->plain) {
        http_plain_serve(hc->srv, req, hc->res);
        send_response(hc->res);
        return;
    }
    struct buf allow = BUF_INIT;
    unsigned flags = 0;
    if (!http_route_find(req->method, req->path, &hc->fn, &hc->fn_arg, &flags, &allow)) {
        if (allow.len > 0) {
            struct buf extra = BUF_INIT;
            buf_printf(&extra, "Allow: %s\r\n", buf_cstr(&allow));
            respond_error(hc, 405, extra.data, false);
            buf_free(&extra);
        } else {
            respond_error(hc, 404, NULL, false);
        }
        buf_free(&allow);
        return;
    }
    buf_free(&allow);
    if (flags & HTTP_ROUTE_AUTH)
        authenticate(hc);
    else
        run_handler(hc);
}

/* ---- reading ---- */

static void request_from_head(struct http_conn *hc, const char *p, size_t len)
{
    struct http_request *req = xcalloc(1, sizeof(*req));
    req->conn = hc;
    buf_append(&req->raw, p, len);
    http_head_init(&req->head);
    size_t used;
    int status;
    const char *why;
    /* Again on our own copy, so that the slices point into it (parsed fine once). */
    enum http_parse_result r = http_parse_head(req->raw.data, req->raw.len, &hc->srv->limits,
                                               &req->head, &used, &status, &why);
    WHARF_ASSERT(r == HTTP_PARSE_OK);
    req->method = slice_strdup(req->head.method);
    req->path = slice_strdup(req->head.path);
    req->query = req->head.query.ptr ? slice_strdup(req->head.query) : xstrdup("");
    req->host = slice_strdup(req->head.host);
    hc->req = req;
    if (!req->head.keep_alive)
        hc->close_after = true;
}

static void refuse(struct http_conn *hc, int status, const char *why)
{
    log_info("http: refused request from %s: %d %s", net_conn_addr(hc->c), status, why);
    respond_error(hc, status, NULL, true);
}

/* Reads a head; true when a request is ready for its body. */
static bool read_head(struct http_conn *hc)
{
    struct evbuffer *in = net_conn_input(hc->c);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return false;
    const struct http_parse_limits *lim = &hc->srv->limits;
    size_t cap = 2 * lim->max_head + 8;
    /* Parse again only when a line ended since the last try (or over the limits). */
    if (len <= lim->max_request_line && len <= lim->max_head) {
        struct evbuffer_ptr from;
        evbuffer_ptr_set(in, &from, hc->scanned, EVBUFFER_PTR_SET);
        if (hc->scanned < len && evbuffer_search(in, "\n", 1, &from).pos < 0) {
            hc->scanned = len;
            return false;
        }
    }
    size_t n = len < cap ? len : cap;
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
    struct http_head h;
    http_head_init(&h);
    size_t head_len = 0;
    int status = 0;
    const char *why = NULL;
    enum http_parse_result r = http_parse_head(p, n, lim, &h, &head_len, &status, &why);
    http_head_free(&h);
    if (r == HTTP_PARSE_NEED_MORE) {
        hc->scanned = len;
        return false;
    }
    if (r == HTTP_PARSE_ERROR) {
        evbuffer_drain(in, len);
        refuse(hc, status, why);
        return false;
    }
    hc->state = ST_BODY;
    request_from_head(hc, p, head_len);
    evbuffer_drain(in, head_len);
    hc->scanned = 0;
    struct http_head *hd = &hc->req->head;
    hc->body_left = hd->body == HTTP_BODY_LENGTH ? hd->content_length : 0;
    http_chunked_init(&hc->chunked);
    if (hd->expect_continue && hd->body != HTTP_BODY_NONE && evbuffer_get_length(in) == 0)
        net_conn_write(hc->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return true;
}

/* Reads body bytes; true when the body is whole. */
static bool read_body(struct http_conn *hc)
{
    struct evbuffer *in = net_conn_input(hc->c);
    struct http_request *req = hc->req;
    if (req->head.body == HTTP_BODY_NONE)
        return true;
    if (req->head.body == HTTP_BODY_LENGTH) {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < hc->body_left ? avail : (size_t)hc->body_left;
        if (n > 0) {
            buf_reserve(&req->body, n);
            evbuffer_remove(in, req->body.data + req->body.len, n);
            req->body.len += n;
            req->body.data[req->body.len] = '\0';
            hc->body_left -= n;
        }
        return hc->body_left == 0;
    }
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return false;
        size_t used = 0;
        int status = 0;
        const char *why = NULL;
        enum http_parse_result r =
            http_chunked_feed(&hc->chunked, v.iov_base, v.iov_len, hc->srv->limits.max_body,
                              &req->body, &used, &status, &why);
        evbuffer_drain(in, used);
        if (r == HTTP_PARSE_OK)
            return true;
        if (r == HTTP_PARSE_ERROR) {
            evbuffer_drain(in, evbuffer_get_length(in));
            refuse(hc, status, why);
            return false;
        }
    }
}

static void process(struct http_conn *hc)
{
    for (;;) {
        if (hc->state == ST_DONE)
            return;
        if (hc->state == ST_HEAD) {
            if (net_conn_output_blocked(hc->c))
                return; /* a pipelining client that does not read: wait */
            if (!read_head(hc))
                return;
        }
        if (hc->req == NULL)
            return;
        if (hc->res != NULL)
            return; /* answered or held: nothing more is read meanwhile */
        if (!read_body(hc))
            return;
        if (hc->res != NULL)
            return;
        dispatch(hc);
        if (hc->req != NULL)
            return; /* held (auth, deferred, streaming) or closing */
    }
}

static void *http_open(struct net_conn *c, void *proto_arg)
{
    struct http_conn *hc = xcalloc(1, sizeof(*hc));
    hc->srv = proto_arg;
    hc->c = c;
    hc->plain = !net_conn_is_tls(c);
    hc->state = ST_HEAD;
    const struct wharf_config *cfg = hc->srv->cfg;
    struct auth_login_params lp = {
        .service = "http",
        .continuation = "",
        .mechs = AUTH_MECH_PLAIN,
        .plaintext = false, /* never over port 80 */
        .max_credential = (size_t)cfg->auth_max_credential_length,
        .max_per_user_addr = 0, /* browsers open many connections */
        .failure_delay_ms = cfg->http_auth_failure_delay,
        .base = net_worker_base(net_conn_worker(c)),
    };
    hc->login = auth_login_new(hc->srv->auth, c, &lp, auth_done, hc);
    return hc;
}

static void http_readable(void *arg)
{
    struct http_conn *hc = arg;
    hc->in_process++;
    process(hc);
    hc->in_process--;
}

static void http_tls_ready(void *arg)
{
    (void)arg; /* no STARTTLS in HTTP */
}

static void http_timeout(void *arg)
{
    struct http_conn *hc = arg;
    /* A request begun and not finished gets 408; an idle keep-alive just closes. */
    if ((hc->state == ST_HEAD && evbuffer_get_length(net_conn_input(hc->c)) > 0) ||
        (hc->state == ST_BODY && hc->res == NULL)) {
        hc->close_after = true;
        struct http_response res = {.conn = hc, .status = 408};
        http_response_text(&res, 408, "Request Timeout");
        write_head(hc, &res, "Content-Length: 16\r\n");
        net_conn_write(hc->c, res.body.data, res.body.len);
        buf_free(&res.headers);
        buf_free(&res.body);
    }
}

static void http_drain(void *arg)
{
    struct http_conn *hc = arg;
    if (hc->state == ST_HEAD && evbuffer_get_length(net_conn_input(hc->c)) == 0) {
        net_conn_close(hc->c, true);
        return;
    }
    if (hc->res != NULL && hc->res->streaming) {
        /* A stream has no end of its own: end it now (the handler hears on_close). */
        net_conn_close(hc->c, true);
        return;
    }
    hc->close_after = true; /* answer what is under way, then close */
}

static void http_closed(void *arg)
{
    struct http_conn *hc = arg;
    if (hc->res != NULL && !hc->res->done && hc->res->on_close != NULL)
        hc->res->on_close(hc->res->on_close_arg);
    auth_login_free(hc->login);
    request_free(hc->req);
    response_free(hc->res);
    if (hc->auth_header)
        explicit_bzero(hc->auth_header, strlen(hc->auth_header));
    free(hc->auth_header);
    free(hc->user);
    free(hc);
}

const struct net_proto http_proto = {
    .open = http_open,
    .readable = http_readable,
    .tls_ready = http_tls_ready,
    .timeout = http_timeout,
    .drain = http_drain,
    .closed = http_closed,
};
