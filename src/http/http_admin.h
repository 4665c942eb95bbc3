/*
 * http_admin.h - the admin API under /admin on 443 (doc/admin-api.md):
 * JSON in and out, for the accounts in admin_accounts.
 *
 * Must never: run an operation itself (the worker is unprivileged and
 * sandboxed: each request goes to wharfd, which runs it with the wharf
 * command's code), or answer a non-admin anything but 403.
 */
#ifndef WHARF_HTTP_HTTP_ADMIN_H
#define WHARF_HTTP_HTTP_ADMIN_H

#include "base/buf.h"

#include <jansson.h>

struct http_server;
struct http_response;

void http_admin_init(struct http_server *srv);

/*
 * The JSON request wharfd hands to `wharf api` (doc/admin-api.md): user,
 * method, the %-decoded segments of path after "/admin", the query's
 * fields and the body (a JSON object, or null). NULL with *status_r (400,
 * 413) and *why_r when the path, the query or the body is malformed.
 * Pure (fuzz_http_admin.c).
 */
json_t *http_admin_request(const char *user, const char *method, const char *path,
                           const char *query, struct slice body, int *status_r, const char **why_r);

/*
 * Hands request (http_admin_request's, taken) to wharfd and answers res
 * with what `wharf api` answered, later (res is deferred here). The webmail's
 * own app passwords (webmail_tokens.c) go the same way, marked "self".
 */
void http_admin_forward(struct http_server *srv, struct http_response *res, json_t *request);

#endif
