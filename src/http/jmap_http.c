/*
 * jmap_http.c - JMAP on the http worker's routes (http_route.h): the session
 * at /.well-known/jmap and on GET of the API URL, the API, blob upload and
 * download, the EventSource stream and the WebSocket (RFC 8887, whose
 * requests go to the same jmap_api and whose push is the same jmap_push),
 * over one engine per worker
 * (struct jmap) with its queue hand-over (jmap_queue) and push (jmap_push).
 *
 * Only glue: every JMAP rule is in the engine. The bus events of an account
 * come to this worker only while it holds a push stream of that account
 * (owner subscriptions), and the changes its own requests make are both
 * published (other processes) and handed to its own push streams (the bus
 * does not echo to the publisher). What the engine keeps between requests
 * (an account view, query results) goes when no request used it for
 * jmap_cache_idle, and once the worker has had no JMAP request that long,
 * the store's page cache and the heap's free pages go back too: one timer
 * per worker (cache_idle_cb). Must never answer a route without the
 * logged-in user the route layer checked.
 */
#include "http/jmap_http.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/log.h"
#include "http/http_proxy.h"
#include "http/jmap_int.h"
#include "http/jmap_push.h"
#include "http/jmap_queue.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct jmap_http {
    struct http_server *srv;
    struct jmap j;
    struct jmap_queue q;
    struct jmap_submit submit;
    struct directory_client *dir;
    struct jmap_push *push;
    struct event *idle_ev;   /* the worker's one cache timer (cache_idle_cb) */
    int64_t last_request_ms; /* the last JMAP request's start (monotonic_ms) */
    bool quiet;              /* the store's cache was given back since that request */
};

static struct jmap_http jh; /* one per worker process */

/* ---- what the engine keeps, given back when unused ---- */

/*
 * Frees what no request used for jmap_cache_idle, and comes back when the
 * next of what is left falls due; once nothing is left and no request came
 * for that long, gives back the store's page cache and the heap's free
 * pages, and sleeps until the next request (cache_used) wakes it.
 */
static bool listening(void *ctx, const char *user)
{
    (void)ctx;
    return jh.push != NULL && jmap_push_listening(jh.push, user);
}

static void cache_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    int64_t now = monotonic_ms(), idle = http_server_config(jh.srv)->jmap_cache_idle;
    int64_t next = jmap_release_idle(&jh.j, now, idle, listening, NULL);
    int64_t quiet_in = jh.last_request_ms + idle - now;
    if (quiet_in > 0 && (next < 0 || quiet_in < next))
        next = quiet_in;
    if (next >= 0) {
        struct timeval tv = clock_timeval_ms(next);
        event_add(jh.idle_ev, &tv);
        return;
    }
    if (!jh.quiet) {
        jh.quiet = true;
        store_release_memory(jh.j.store);
        net_worker_trim(http_server_worker(jh.srv));
    }
}

/* A JMAP request begins: the timer runs while the engine may keep something. */
static void cache_used(void)
{
    jh.last_request_ms = monotonic_ms();
    jh.quiet = false;
    if (jh.idle_ev && !event_pending(jh.idle_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv = clock_timeval_ms(http_server_config(jh.srv)->jmap_cache_idle);
        event_add(jh.idle_ev, &tv);
    }
}

/* ---- helpers ---- */

/* The value of name in a query string, decoded into out; false when absent or bad. */
static bool query_param(const char *query, const char *name, struct buf *out)
{
    size_t nlen = strlen(name);
    buf_reset(out);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
            return http_pct_decode(p + nlen + 1, len - nlen - 1, true, out);
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* Path segment i (0-based) after prefix, decoded into out; false when absent or bad. */
static bool path_segment(const char *path, const char *prefix, size_t i, struct buf *out)
{
    buf_reset(out);
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0)
        return false;
    const char *p = path + plen;
    for (; i > 0; i--) {
        p = strchr(p, '/');
        if (p == NULL)
            return false;
        p++;
    }
    size_t len = strcspn(p, "/");
    return len > 0 && http_pct_decode(p, len, false, out);
}

static void send_json(struct http_response *res, int status, json_t *o)
{
    http_response_status(res, status);
    http_response_content_type(res, status >= 400 && json_object_get(o, "type") &&
                                            json_object_get(o, "status")
                                        ? "application/problem+json"
                                        : "application/json; charset=utf-8");
    http_response_header(res, "Cache-Control", "no-cache, no-store, must-revalidate");
    char *s = json_dumps(o, JSON_COMPACT);
    buf_append_cstr(http_response_body(res), s);
    free(s);
    json_decref(o);
}

/* "https://Host" of the request (the URL the client used), else of myhostname. */
static void base_url(struct http_request *req, struct buf *out)
{
    const char *host = http_request_host(req);
    bool ok = host && *host;
    for (const char *p = host; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr(".-:[]", *p);
    buf_printf(out, "https://%s", ok ? host : http_server_config(jh.srv)->myhostname);
}

/* ---- routes ---- */

/* user's session resource (RFC 8620 2) as seen through req's URL; NULL on trouble. */
static json_t *session_of(struct http_request *req, const char *user)
{
    struct buf base = BUF_INIT;
    base_url(req, &base);
    cache_used();
    json_t *s;
    if (jmap_session_json(&jh.j, user, base.data, &s) != 0)
        s = NULL;
    buf_free(&base);
    return s;
}

static void session_route(struct http_request *req, struct http_response *res, void *arg)
{
    json_t *s = session_of(req, http_request_user(req));
    if (s != NULL)
        send_json(res, 200, s);
    else
        http_response_text(res, 500, "session unavailable");
}

void jmap_routes_start_info(struct http_request *req, const char *user, json_t *into)
{
    if (http_proxy_enabled())
        return; /* the home server's answers are the ones to give */
    json_t *s = session_of(req, user);
    if (s == NULL)
        return;
    json_object_set_new(into, "jmapSession", s);
    /* the list, not a lookup: a first sign-in makes the account's folders */
    struct buf err = BUF_INIT;
    struct store_mailbox *l;
    size_t n;
    if (store_mailbox_list(jh.j.store, user, &l, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(l[i].name, STORE_INBOX) == 0) {
                char sid[32];
                jmap_mailbox_id(l[i].id, sid);
                json_object_set_new(into, "inbox", json_string(sid));
                break;
            }
        store_mailbox_list_free(l, n);
    }
    buf_free(&err);
}

/* The answer to an API request, run now. */
static void api_run(struct http_request *req, struct http_response *res)
{
    struct slice body = http_request_body(req);
    json_t *out = NULL;
    int status = 500;
    cache_used();
    jmap_api(&jh.j, http_request_user(req), body.ptr, body.len, &out, &status);
    send_json(res, status, out);
    jmap_builder_start(&jh.j); /* a view the answer asked for: read now it is sent */
}

/*
 * EmailSubmission's sender rule asks the directory, which answers later: the
 * envelope senders a request's submissions will use (an envelope's mailFrom,
 * or the from/sender of an Email created in the same request; the email of
 * an Identity created) are looked up
 * first, so that the engine finds them in the worker's cache. At most this
 * many addresses are looked up ahead; others find the cache cold and get a
 * serverFail to retry.
 */
#define SENDERS_AHEAD 8

struct api_wait;
struct api_lookup {
    struct api_wait *w;
    void *handle; /* NULL once answered */
};
struct api_wait {
    struct http_request *req;
    struct http_response *res;
    struct api_lookup l[SENDERS_AHEAD];
    size_t n, left;
};

static void add_sender(json_t *addrs, json_t *list)
{
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        json_t *e = json_object_get(a, "email");
        if (json_is_string(e) && json_array_size(addrs) < SENDERS_AHEAD)
            json_array_append(addrs, e);
    }
}

/* The envelope senders the submissions of a request will need (a JSON array). */
static json_t *senders_ahead(struct slice body, const char *user)
{
    json_t *addrs = json_array();
    json_t *req = json_loadb(body.ptr, body.len, 0, NULL);
    json_t *calls = json_object_get(req, "methodCalls");
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call)
    {
        const char *name = json_string_value(json_array_get(call, 0));
        json_t *create = json_object_get(json_array_get(call, 1), "create");
        if (name == NULL || !json_is_object(create))
            continue;
        const char *k;
        json_t *o;
        json_object_foreach(create, k, o)
        {
            if (strcmp(name, "EmailSubmission/set") == 0) {
                json_t *mf = json_object_get(
                    json_object_get(json_object_get(o, "envelope"), "mailFrom"), "email");
                if (json_is_string(mf) && json_array_size(addrs) < SENDERS_AHEAD)
                    json_array_append(addrs, mf);
            } else if (strcmp(name, "Email/set") == 0) {
                add_sender(addrs, json_object_get(o, "sender"));
                add_sender(addrs, json_object_get(o, "from"));
            } else if (strcmp(name, "Identity/set") == 0) {
                json_t *email = json_object_get(o, "email");
                if (json_is_string(email) && json_array_size(addrs) < SENDERS_AHEAD)
                    json_array_append(addrs, email);
            }
        }
    }
    json_decref(req);
    /* the user's own address needs no lookup (jmap_queue_sender_ok) */
    for (size_t k = json_array_size(addrs); k-- > 0;)
        if (strcasecmp(json_string_value(json_array_get(addrs, k)), user) == 0)
            json_array_remove(addrs, k);
    return addrs;
}

static void api_wait_gone(void *arg)
{
    struct api_wait *w = arg;
    for (size_t i = 0; i < w->n; i++)
        if (w->l[i].handle)
            directory_client_cancel(jh.dir, w->l[i].handle);
    free(w);
}

static void sender_known(void *arg, const struct directory_answer *a)
{
    struct api_lookup *l = arg;
    struct api_wait *w = l->w;
    l->handle = NULL;
    if (--w->left > 0)
        return;
    /* every answer is in the worker's cache now: the engine's check finds it */
    api_run(w->req, w->res);
    http_response_finish(w->res);
    free(w);
}

static void api_route(struct http_request *req, struct http_response *res, void *arg)
{
    const char *ct = http_request_header(req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        send_json(res, 400,
                  jmap_problem("notJSON", 400, "the request's type is not application/json"));
        return;
    }
    struct slice body = http_request_body(req);
    json_t *addrs = NULL;
    if (body.len <= jh.j.limits.max_size_request &&
        (memmem(body.ptr, body.len, "EmailSubmission", 15) ||
         memmem(body.ptr, body.len, "Identity/set", 12)))
        addrs = senders_ahead(body, http_request_user(req));
    size_t n = 0;
    struct api_wait *w = NULL;
    for (size_t i = 0; addrs && i < json_array_size(addrs); i++) {
        struct directory_answer a;
        const char *addr = json_string_value(json_array_get(addrs, i));
        int fresh = directory_client_peek(jh.dir, DIRECTORY_Q_RECIPIENT, addr, &a);
        if (fresh >= 0)
            directory_answer_free(&a);
        if (fresh == 1)
            continue;
        if (w == NULL) {
            w = xcalloc(1, sizeof(*w));
            w->req = req;
            w->res = res;
        }
        n = w->n++;
        w->left++;
        w->l[n].w = w;
        w->l[n].handle =
            directory_client_lookup(jh.dir, DIRECTORY_Q_RECIPIENT, addr, sender_known, &w->l[n]);
    }
    json_decref(addrs);
    if (w == NULL) {
        api_run(req, res);
        return;
    }
    http_response_defer(res);
    http_response_on_close(res, api_wait_gone, w);
}

static void upload_route(struct http_request *req, struct http_response *res, void *arg)
{
    struct buf acc = BUF_INIT;
    if (!path_segment(http_request_path(req), "/jmap/upload/", 0, &acc)) {
        http_response_text(res, 404, "no such upload URL");
        buf_free(&acc);
        return;
    }
    const char *type = http_request_header(req, "Content-Type");
    json_t *out = NULL;
    int status = 500;
    cache_used();
    jmap_upload(&jh.j, http_request_user(req), acc.data, type, http_request_body(req), &out,
                &status);
    send_json(res, status, out);
    buf_free(&acc);
}

/* A media type safe to send back as Content-Type: type/subtype, token characters only. */
static bool media_type_ok(const char *t)
{
    const char *slash = strchr(t, '/');
    if (slash == NULL || slash == t || slash[1] == '\0' || strlen(t) > 127)
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$&^_.+-/", *p)))
            return false;
    return strchr(slash + 1, '/') == NULL;
}

static void download_route(struct http_request *req, struct http_response *res, void *arg)
{
    const char *path = http_request_path(req);
    struct buf acc = BUF_INIT, blob = BUF_INIT, name = BUF_INIT, type = BUF_INIT;
    if (!path_segment(path, "/jmap/download/", 0, &acc) ||
        !path_segment(path, "/jmap/download/", 1, &blob) ||
        !path_segment(path, "/jmap/download/", 2, &name)) {
        http_response_text(res, 404, "no such blob");
        goto out;
    }
    if (!query_param(http_request_query(req), "type", &type) || !media_type_ok(type.data))
        buf_append_cstr(&type, "application/octet-stream");
    struct buf *body = http_response_body(res);
    cache_used();
    int status = jmap_download(&jh.j, http_request_user(req), acc.data, blob.data, body);
    if (status != 200) {
        buf_reset(body);
        http_response_text(res, status, status == 404 ? "no such blob" : "blob unavailable");
        goto out;
    }
    http_response_status(res, 200);
    http_response_content_type(res, type.data);
    /* never rendered in our origin (doc/jmap.md, webmail design 4.4) */
    struct buf cd = BUF_INIT;
    buf_append_cstr(&cd, "attachment; filename*=UTF-8''");
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("!#$&+-.^_`|~", c))
            buf_append_byte(&cd, (char)c);
        else
            buf_printf(&cd, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
    http_response_header(res, "Content-Disposition", cd.data);
    http_response_header(res, "Content-Security-Policy", "sandbox; default-src 'none'");
    http_response_header(res, "Cache-Control", "private, immutable, max-age=604800");
    buf_free(&cd);
out:
    buf_free(&acc);
    buf_free(&blob);
    buf_free(&name);
    buf_free(&type);
}

/* ---- push ---- */

static void stream_write(void *ctx, const char *data, size_t len)
{
    http_response_stream_write(ctx, data, len);
}

static void stream_end(void *ctx)
{
    http_response_stream_end(ctx);
}

static const struct jmap_push_io stream_io = {stream_write, stream_end, false};

static void stream_gone(void *arg)
{
    jmap_push_close(arg);
}

static void eventsource_route(struct http_request *req, struct http_response *res, void *arg)
{
    const char *q = http_request_query(req);
    struct buf types = BUF_INIT, closeafter = BUF_INIT, ping = BUF_INIT, err = BUF_INIT;
    bool have = query_param(q, "types", &types);
    have = query_param(q, "closeafter", &closeafter) && have;
    have = query_param(q, "ping", &ping) && have;
    if (!have || !jmap_push_args_ok(types.data, closeafter.data, ping.data, &err)) {
        send_json(res, 400,
                  jmap_problem("invalidArguments", 400,
                               err.len ? err.data : "types, closeafter and ping are needed"));
        goto out;
    }
    http_response_status(res, 200);
    http_response_content_type(res, "text/event-stream");
    http_response_header(res, "Cache-Control", "no-cache");
    http_response_stream_start(res);
    struct jmap_push_stream *s =
        jmap_push_open(jh.push, http_request_user(req), types.data, closeafter.data, ping.data,
                       http_request_header(req, "Last-Event-ID"), &stream_io, res, &err);
    if (s) {
        http_response_on_close(res, stream_gone, s);
        http_request_release(req); /* the stream may last for hours: ~1 KiB less a stream */
    }
out:
    buf_free(&types);
    buf_free(&closeafter);
    buf_free(&ping);
    buf_free(&err);
}

/* ---- WebSocket (RFC 8887) ---- */

/* One socket: its user (the request that upgraded is gone) and its push, if enabled. */
struct ws_session {
    struct http_ws *ws;
    char *user;
    struct jmap_push_stream *push;
};

static void ws_send_json(struct ws_session *w, json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    http_ws_send(w->ws, text, strlen(text));
    free(text);
    json_decref(o);
}

static void ws_push_write(void *ctx, const char *data, size_t len)
{
    struct ws_session *w = ctx;
    http_ws_send(w->ws, data, len);
}

static void ws_push_end(void *ctx)
{
    struct ws_session *w = ctx;
    w->push = NULL; /* closeafter is never state here */
}

static const struct jmap_push_io ws_push_io = {ws_push_write, ws_push_end, true};

/* WebSocketPushEnable (RFC 8887 4.3.5): dataTypes (null: all) and pushState into a push. */
static void ws_push_enable(struct ws_session *w, json_t *msg)
{
    json_t *dt = json_object_get(msg, "dataTypes");
    struct buf types = BUF_INIT, err = BUF_INIT;
    size_t i;
    json_t *t;
    if (dt == NULL || json_is_null(dt))
        buf_append_cstr(&types, "*");
    json_array_foreach(dt, i, t)
    {
        if (json_is_string(t))
            buf_printf(&types, "%s%s", types.len ? "," : "", json_string_value(t));
    }
    jmap_push_close(w->push);
    w->push =
        jmap_push_open(jh.push, w->user, types.data, "no", "0",
                       json_string_value(json_object_get(msg, "pushState")), &ws_push_io, w, &err);
    if (w->push)
        http_ws_park_soon(w->ws); /* a push socket is quiet but for its events */
    buf_free(&types);
    buf_free(&err);
}

static void ws_message(void *arg, struct http_ws *ws, const char *data, size_t len)
{
    struct ws_session *w = arg;
    w->ws = ws;
    json_t *msg = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "@type"));
    json_t *id = json_object_get(msg, "id");
    if (type != NULL && strcmp(type, "Request") == 0) {
        /* answered as a POST to the API URL is (RFC 8887 4.3.3) */
        json_t *out = NULL;
        int status = 500;
        cache_used();
        jmap_api(&jh.j, w->user, data, len, &out, &status);
        json_object_set_new(out, "@type", json_string(status == 200 ? "Response" : "RequestError"));
        if (json_is_string(id))
            json_object_set(out, "requestId", id);
        ws_send_json(w, out);
        jmap_builder_start(&jh.j);
    } else if (type != NULL && strcmp(type, "WebSocketPushEnable") == 0) {
        ws_push_enable(w, msg);
    } else if (type != NULL && strcmp(type, "WebSocketPushDisable") == 0) {
        jmap_push_close(w->push);
        w->push = NULL;
    } else {
        json_t *e = jmap_problem("notRequest", 400, "not a JMAP WebSocket message");
        json_object_set_new(e, "@type", json_string("RequestError"));
        if (json_is_string(id))
            json_object_set(e, "requestId", id);
        ws_send_json(w, e);
    }
    json_decref(msg);
}

static void ws_closed(void *arg)
{
    struct ws_session *w = arg;
    jmap_push_close(w->push);
    free(w->user);
    free(w);
}

static const struct http_ws_handler ws_handler = {ws_message, ws_closed};

static void ws_route(struct http_request *req, struct http_response *res, void *arg)
{
    struct ws_session *w = xcalloc(1, sizeof(*w));
    w->user = xstrdup(http_request_user(req));
    if (!http_response_websocket(req, res, "jmap", &ws_handler, w)) {
        free(w->user);
        free(w);
    }
}

/* ---- the bus ---- */

static void publish(void *ctx, const struct ipc_event *ev)
{
    net_worker_publish(http_server_worker(jh.srv), ev);
    if (ev->type == IPC_EVENT_MAILBOX_CHANGED || ev->type == IPC_EVENT_MAILBOX_LIST)
        jmap_push_event(jh.push, ev); /* our own streams: the bus relays to others only */
}

static void on_event(void *arg, const struct ipc_event *ev)
{
    jmap_push_event(jh.push, ev);
}

static void watch(void *ctx, const char *owner, bool on)
{
    struct net_worker *w = http_server_worker(jh.srv);
    enum ipc_subscribe_op op = on ? IPC_SUBSCRIBE_OWNER : IPC_UNSUBSCRIBE_OWNER;
    net_worker_subscribe(w, IPC_EVENT_MAILBOX_CHANGED, op, owner);
    net_worker_subscribe(w, IPC_EVENT_MAILBOX_LIST, op, owner);
}

void jmap_routes_init(struct http_server *srv)
{
    const struct wharf_config *cfg = http_server_config(srv);
    jh.srv = srv;
    jh.j.store = http_server_store(srv);
    jmap_limits_from_config(&jh.j.limits, cfg);
    jh.j.hostname = cfg->myhostname;
    /* the view builder's own store connection, opened before the worker is confined */
    struct buf err = BUF_INIT;
    struct store *vs = store_open(cfg, &err);
    if (vs == NULL ||
        (jh.j.builder = jmap_builder_new(http_server_base(srv), &jh.j, vs, &err)) == NULL) {
        log_warning("jmap: no view builder: %s", buf_cstr(&err));
        if (vs)
            store_close(vs);
    }
    buf_free(&err);
    jh.dir = directory_client_new(http_server_base(srv), cfg);
    jh.q = (struct jmap_queue){.cfg = cfg, .dir = jh.dir, .publish = publish};
    jh.submit = (struct jmap_submit){jmap_queue_sender_ok, jmap_queue_enqueue, &jh.q};
    jh.j.submit = &jh.submit;
    jh.j.publish = publish;
    jh.push = jmap_push_new(http_server_base(srv), &jh.j, JMAP_PUSH_COALESCE_MS, watch, NULL);
    jh.idle_ev = evtimer_new(http_server_base(srv), cache_idle_cb, NULL);
    http_server_listen_events(srv, on_event, NULL);
    http_route_add("GET", "/.well-known/jmap", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOME, session_route,
                   NULL);
    http_route_add("GET", "/jmap/api", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOME, session_route, NULL);
    http_route_add("POST", "/jmap/api", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOME, api_route, NULL);
    http_route_add("POST", "/jmap/upload/", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOME, upload_route, NULL);
    http_route_add("GET", "/jmap/download/", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOME, download_route,
                   NULL);
    http_route_add("GET", "/jmap/eventsource", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOME, eventsource_route,
                   NULL);
    http_route_add("GET", "/jmap/ws", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOME, ws_route, NULL);
}

void jmap_routes_status(json_t *obj)
{
    jmap_stats_json(&jh.j, obj);
}

void jmap_routes_free(void)
{
    if (jh.idle_ev)
        event_free(jh.idle_ev);
    jmap_push_free(jh.push);
    directory_client_free(jh.dir);
    jmap_builder_free(jh.j.builder); /* a read under way finishes into jh.j, freed next */
    jmap_release(&jh.j);
    memset(&jh, 0, sizeof(jh));
}
