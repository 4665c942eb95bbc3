/*
 * http_route.c - the route table of one http worker (see http_route.h):
 * registration and the longest-prefix lookup.
 *
 * Must never: match a prefix in the middle of a path segment ("/jmap" is
 * not "/jmapx").
 */
#include "http/http_server.h"

#include "base/alloc.h"
#include "base/hex.h"
#include "http/http_route.h"

#include <stdlib.h>
#include <string.h>

struct http_route {
    char *method; /* NULL: any */
    char *prefix;
    unsigned flags;
    http_handler_fn fn;
    void *arg;
};

static struct http_route *routes;
static size_t n_routes;

void http_route_add(const char *method, const char *path_prefix, unsigned flags, http_handler_fn fn,
                    void *arg)
{
    routes = xreallocarray(routes, n_routes + 1, sizeof(*routes));
    routes[n_routes++] = (struct http_route){
        .method = method ? xstrdup(method) : NULL,
        .prefix = xstrdup(path_prefix),
        .flags = flags,
        .fn = fn,
        .arg = arg,
    };
}

bool http_pct_decode(const char *s, size_t len, bool form, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            buf_append_byte(out, form && s[i] == '+' ? ' ' : s[i]);
            continue;
        }
        if (len - i < 3)
            return false;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return false;
        buf_append_byte(out, (char)(hi * 16 + lo));
        i += 2;
    }
    return true;
}

void http_route_clear(void)
{
    for (size_t i = 0; i < n_routes; i++) {
        free(routes[i].method);
        free(routes[i].prefix);
    }
    free(routes);
    routes = NULL;
    n_routes = 0;
}

static bool prefix_matches(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    if (strncmp(prefix, path, n) != 0)
        return false;
    return path[n] == '\0' || path[n] == '/' || (n > 0 && prefix[n - 1] == '/');
}

static bool route_matches(const struct http_route *r, const char *path)
{
    return (r->flags & HTTP_ROUTE_EXACT) ? strcmp(r->prefix, path) == 0
                                         : prefix_matches(r->prefix, path);
}

bool http_route_find(const char *method, const char *path, http_handler_fn *fn_r, void **arg_r,
                     unsigned *flags_r, struct buf *allow_r)
{
    const struct http_route *best = NULL;
    size_t best_len = 0;
    bool any = false;
    /* A GET route answers HEAD too. */
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (size_t i = 0; i < n_routes; i++) {
        const struct http_route *r = &routes[i];
        if (!route_matches(r, path))
            continue;
        size_t len = strlen(r->prefix);
        if (r->method != NULL && strcmp(r->method, method) != 0 && strcmp(r->method, m) != 0) {
            any = true;
            continue;
        }
        if (best == NULL || len > best_len) {
            best = r;
            best_len = len;
        }
    }
    if (best != NULL) {
        *fn_r = best->fn;
        *arg_r = best->arg;
        *flags_r = best->flags;
        return true;
    }
    if (any && allow_r != NULL) {
        /* 405's Allow: the methods of the routes that match the path. */
        for (size_t i = 0; i < n_routes; i++) {
            if (!route_matches(&routes[i], path) || routes[i].method == NULL)
                continue;
            if (allow_r->len > 0)
                buf_append_cstr(allow_r, ", ");
            buf_append_cstr(allow_r, routes[i].method);
            if (strcmp(routes[i].method, "GET") == 0)
                buf_append_cstr(allow_r, ", HEAD");
        }
    }
    return false;
}
