/*
 * jmap_http.h - JMAP's routes on the http worker (jmap_http.c): registered
 * once at worker start from http_routes_init, freed at worker exit.
 */
#ifndef WHARF_HTTP_JMAP_HTTP_H
#define WHARF_HTTP_JMAP_HTTP_H

#include "http/http_server.h"

void jmap_routes_init(struct http_server *srv);
void jmap_routes_free(void);
/* The JMAP engine's figures (jmap_stats_json) for the worker's status. */
void jmap_routes_status(json_t *obj);
/* For the webmail's sign-in answer: "jmapSession", user's session resource (as
 * /.well-known/jmap answers it), and "inbox", its Inbox's id, added to into, so that
 * the page's first JMAP request is its only one. Nothing added where another server
 * may hold user's mailbox (the front-end proxy is on) or on trouble: the page asks. */
void jmap_routes_start_info(struct http_request *req, const char *user, json_t *into);

#endif
