/*
 * webmail_static.c - the webmail's files on 443 (doc/webmail.md): read once
 * when the worker starts, from webmail_dir (or the installed copy, or the
 * source tree), and served under /webmail/ with their type, an ETag
 * (revalidated on each load: Cache-Control no-cache, 304 when unchanged)
 * and the app's Content-Security-Policy: scripts and styles from this
 * origin only, no inline script, nothing remote but images that a user
 * asked for in a message (the reading pane's frame inherits this policy,
 * see the design note in doc/webmail.md).
 *
 * Must never: read a file at request time (the sandbox and the event loop
 * forbid it; http_main loads them before net_worker_new confines it), serve a name that is not in
 * the table, or follow a link out of the folder.
 */
#include "http/webmail.h"

#include "base/alloc.h"
#include "base/fdio.h"
#include "base/log.h"
#include "http/http_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WHARF_WEBMAILDIR
#define WHARF_WEBMAILDIR "/usr/share/wharf/webmail"
#endif

/* Largest file taken (the whole app must load in 300 KB compressed). */
#define WEBMAIL_FILE_MAX (2u << 20)
#define WEBMAIL_FILES_MAX 64

/* DOMPurify, from npm: installed as vendor/purify.js, in the source tree under node_modules. */
#define PURIFY_NAME "vendor/purify.js"
#define PURIFY_NPM "node_modules/dompurify/dist/purify.es.mjs"

struct webmail_file {
    char *name; /* "index.html", "vendor/purify.js" */
    const char *type;
    struct buf body;
    char etag[24];
};

static struct {
    struct webmail_file v[WEBMAIL_FILES_MAX];
    size_t n;
} wf;

static const char *const webmail_csp =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob: https: http:; connect-src 'self'; frame-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

static const char *type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

static bool name_ok(const char *name)
{
    if (name[0] == '.' || name[0] == '\0')
        return false;
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    }
    return true;
}

static void load(const char *dir, const char *rel, const char *name)
{
    const char *type = type_of(name);
    if (type == NULL || wf.n >= WEBMAIL_FILES_MAX)
        return;
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s", dir, rel);
    int fd = open(path.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    struct webmail_file *f = &wf.v[wf.n];
    *f = (struct webmail_file){.name = xstrdup(name), .type = type};
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        fd_read_all(fd, WEBMAIL_FILE_MAX, &f->body) != 0) {
        log_warning("http: webmail: cannot read %s", path.data);
        free(f->name);
        buf_free(&f->body);
    } else {
        unsigned char h[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)f->body.data, f->body.len, h);
        snprintf(f->etag, sizeof(f->etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", h[0], h[1], h[2],
                 h[3], h[4], h[5], h[6], h[7]);
        wf.n++;
    }
    if (fd >= 0)
        close(fd);
    buf_free(&path);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void webmail_load(const struct wharf_config *cfg)
{
    const char *dir = cfg->webmail_dir;
    if (dir == NULL || *dir == '\0')
        dir = is_dir(WHARF_WEBMAILDIR) ? WHARF_WEBMAILDIR : WHARF_WEBMAIL_SRCDIR;
    DIR *d = opendir(dir);
    if (d == NULL) {
        log_warning("http: webmail: no folder %s (webmail_dir): /webmail/ answers 404", dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (name_ok(e->d_name))
            load(dir, e->d_name, e->d_name);
    }
    closedir(d);
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", dir, PURIFY_NAME);
    load(dir, access(p.data, R_OK) == 0 ? PURIFY_NAME : PURIFY_NPM, PURIFY_NAME);
    buf_free(&p);
}

static void serve(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    const char *name = http_request_path(req) + strlen("/webmail/");
    if (*name == '\0')
        name = "index.html";
    for (size_t i = 0; i < wf.n; i++) {
        struct webmail_file *f = &wf.v[i];
        if (strcmp(f->name, name) != 0)
            continue;
        http_response_header(res, "Content-Security-Policy", webmail_csp);
        http_response_header(res, "Cache-Control", "no-cache");
        http_response_header(res, "ETag", f->etag);
        const char *inm = http_request_header(req, "If-None-Match");
        if (inm && strstr(inm, f->etag)) {
            http_response_status(res, 304);
            return;
        }
        http_response_content_type(res, f->type);
        buf_append(http_response_body(res), f->body.data, f->body.len);
        return;
    }
    http_response_text(res, 404, "not found");
}

/* "/webmail": to the app ("/" is not routed: a prefix route there would turn every unknown
 * path's 404 into a 405 for other methods). */
static void to_app(struct http_request *req, struct http_response *res, void *arg)
{
    (void)arg;
    const char *p = http_request_path(req);
    if (strcmp(p, "/webmail") != 0 && strcmp(p, "/") != 0) {
        http_response_text(res, 404, "not found");
        return;
    }
    http_response_status(res, 302);
    http_response_header(res, "Location", "/webmail/");
}

void webmail_routes_init(struct http_server *srv)
{
    http_route_add("GET", "/webmail/", 0, serve, NULL);
    http_route_add("GET", "/webmail", 0, to_app, NULL);
    http_route_add("GET", "/", HTTP_ROUTE_EXACT, to_app, NULL); /* the site's root: the webmail */
    webmail_session_routes_init(srv);
}

void webmail_routes_free(void)
{
    for (size_t i = 0; i < wf.n; i++) {
        free(wf.v[i].name);
        buf_free(&wf.v[i].body);
    }
    wf.n = 0;
}
