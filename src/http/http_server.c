/*
 * http_server.c - one http worker's shared state (http_server.h) and port
 * 80's whole job: a redirect to https for every request, and the ACME
 * http-01 challenge files (RFC 8555 8.3) from the webroot http_acme_dir.
 *
 * Must never: serve anything but challenge tokens on port 80, follow a
 * symbolic link or leave http_acme_dir for a token, or ask for credentials
 * over plain http.
 */
#include "http/http_server.h"

#include "base/alloc.h"
#include "base/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACME_PREFIX "/.well-known/acme-challenge/"
#define ACME_MAX_FILE 65536

void http_server_init(struct http_server *srv, const struct wharf_config *cfg)
{
    srv->cfg = cfg;
    srv->limits = (struct http_parse_limits){
        .max_request_line = (size_t)cfg->http_max_request_line,
        .max_head = (size_t)cfg->http_max_header_size,
        .max_fields = (size_t)cfg->http_max_header_fields,
        .max_body = cfg->http_max_body,
    };
    srv->acme_dir = xstrdup(cfg->http_acme_dir);
    srv->https_port = 443;
    struct listen_addr la;
    if (cfg->https_listen.n > 0 && config_parse_listen_addr(cfg->https_listen.v[0], &la))
        srv->https_port = la.port;
}

void http_server_free(struct http_server *srv)
{
    free(srv->acme_dir);
    free(srv->listeners);
    http_route_clear();
}

struct event_base *http_server_base(struct http_server *srv)
{
    return net_worker_base(srv->worker);
}

const struct wharf_config *http_server_config(const struct http_server *srv)
{
    return srv->cfg;
}

struct store *http_server_store(struct http_server *srv)
{
    return srv->store;
}

struct net_worker *http_server_worker(struct http_server *srv)
{
    return srv->worker;
}

void http_server_listen_events(struct http_server *srv,
                               void (*fn)(void *arg, const struct ipc_event *ev), void *arg)
{
    srv->listeners = xreallocarray(srv->listeners, srv->n_listeners + 1, sizeof(*srv->listeners));
    srv->listeners[srv->n_listeners++] = (struct http_event_listener){fn, arg};
}

void http_server_event(void *arg, const struct ipc_event *ev)
{
    struct http_server *srv = arg;
    for (size_t i = 0; i < srv->n_listeners; i++)
        srv->listeners[i].fn(srv->listeners[i].arg, ev);
}

/* ---- port 80 ---- */

/* An ACME token is base64url (RFC 8555 8.1): nothing that could name another file. */
static bool acme_token_ok(const char *t)
{
    if (t[0] == '\0' || strlen(t) > 256)
        return false;
    for (const char *p = t; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static void serve_acme(struct http_server *srv, const char *token, struct http_response *res)
{
    if (!acme_token_ok(token)) {
        http_response_text(res, 404, "Not Found");
        return;
    }
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s%s%s", srv->acme_dir, ACME_PREFIX, token);
    int fd = open(buf_cstr(&path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > ACME_MAX_FILE) {
        http_response_text(res, 404, "Not Found");
    } else {
        struct buf *b = http_response_body(res);
        buf_reserve(b, (size_t)st.st_size);
        ssize_t n = read(fd, b->data, (size_t)st.st_size);
        if (n < 0) {
            log_warning("http: cannot read %s: %m", buf_cstr(&path));
            http_response_text(res, 404, "Not Found");
        } else {
            b->len = (size_t)n;
            b->data[b->len] = '\0';
            http_response_content_type(res, "application/octet-stream");
        }
    }
    if (fd >= 0)
        close(fd);
    buf_free(&path);
}

/* The host part of a Host value (without its port); "" when empty. */
static void host_only(const char *host, struct buf *out)
{
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        buf_append(out, host, end ? (size_t)(end - host) + 1 : strlen(host));
        return;
    }
    const char *colon = strchr(host, ':');
    buf_append(out, host, colon ? (size_t)(colon - host) : strlen(host));
}

void http_plain_serve(struct http_server *srv, struct http_request *req, struct http_response *res)
{
    const char *method = http_request_method(req);
    const char *path = http_request_path(req);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (get && strncmp(path, ACME_PREFIX, strlen(ACME_PREFIX)) == 0) {
        serve_acme(srv, path + strlen(ACME_PREFIX), res);
        return;
    }
    struct buf loc = BUF_INIT;
    struct buf host = BUF_INIT;
    host_only(http_request_host(req), &host);
    if (host.len == 0)
        buf_append_cstr(&host, srv->cfg->myhostname);
    buf_printf(&loc, "https://%s", buf_cstr(&host));
    if (srv->https_port != 443)
        buf_printf(&loc, ":%u", srv->https_port);
    buf_append_cstr(&loc, path[0] == '/' ? path : "/");
    if (http_request_query(req)[0] != '\0')
        buf_printf(&loc, "?%s", http_request_query(req));
    /* 301 for GET and HEAD (what every browser knows), 308 keeps the method and body. */
    http_response_status(res, get ? 301 : 308);
    http_response_header(res, "Location", buf_cstr(&loc));
    http_response_content_type(res, "text/plain; charset=utf-8");
    buf_printf(http_response_body(res), "Moved to %s\n", buf_cstr(&loc));
    buf_free(&loc);
    buf_free(&host);
}
