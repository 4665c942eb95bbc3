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

struct http_server;

void http_admin_init(struct http_server *srv);

#endif
