/*
 * portmap.h - the port map: the services table joined with the configuration
 * and, when wharfd runs, with what it really bound.
 *
 * The one place that turns the table into rows, used by wharfd's status reply
 * and by `wharf ports` when wharfd is not running, so both print the same.
 */
#ifndef WHARF_SUPERVISOR_PORTMAP_H
#define WHARF_SUPERVISOR_PORTMAP_H

#include "supervisor/listeners.h"

#include <jansson.h>

/*
 * One JSON object per row: exchange_name, component, service, port, protocol,
 * tls, direction, address, state, why, and for inbound rows max_connections
 * and max_connections_per_ip (wharfd adds "connections", the current total
 * over all workers, to live inbound rows). live is the bound listener set and
 * states maps component name to its state (from wharfd); both NULL for a
 * configuration-only map. Row states: "listening", "failed" (bound, but its
 * component is not running), "disabled", "not built yet", "not running"
 * (configuration only), or the component's state for outbound rows.
 */
json_t *portmap_json(const struct wharf_config *cfg, const struct listener_set *live,
                     json_t *states);

/* Appends the rows as an aligned text table with a header line. */
void portmap_format_table(json_t *rows, struct buf *out);

#endif
