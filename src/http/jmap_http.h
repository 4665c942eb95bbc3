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

#endif
