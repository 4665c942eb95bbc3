/*
 * http_metrics.h - GET /metrics: the whole server's figures in the
 * Prometheus text exposition format (version 0.0.4), for the client
 * networks in http_metrics_networks.
 *
 * Must never: block the worker (the figures come from wharfd over the
 * control channel, answered later), or be served to an address outside
 * http_metrics_networks.
 */
#ifndef WHARF_HTTP_HTTP_METRICS_H
#define WHARF_HTTP_HTTP_METRICS_H

#include <jansson.h>

struct buf;
struct http_server;

void http_metrics_init(struct http_server *srv);
/* Renders wharfd's status (what `wharf status --json` prints) as Prometheus text. */
void http_metrics_render(json_t *status, struct buf *out);

#endif
