/*
 * route.h - least-cost routes computed at the source from the organization
 * configuration (org.h) and the link-state records of the groups.
 *
 * A link-state record (one per routing group, originated by the group's
 * master, flooded by routing_main.c) is JSON:
 *     {"group", "originator", "term": u32 (0 when absent), "seq": u64 >= 1, "config_serial",
 *      "members": [servers up], "connectors": [{"name", "state": "UP"|"DOWN"|"ADMIN_DOWN",
 *                                               "since": unix ms}]}
 *
 * The graph's nodes are groups, its edges connectors; an edge is usable when
 * it is enabled and UP in its source group's record. Dijkstra from this
 * server's group orders paths by cost, then hops, then the list of connector
 * names (so every server picks the same path and tests can predict it).
 * Address spaces: the most specific matching pattern wins (Exchange), then the
 * cheapest usable connector of that pattern; no fallback to less specific ones.
 *
 * Pure functions of their inputs: no I/O, no clock, no global state.
 */
#ifndef WHARF_ROUTING_ROUTE_H
#define WHARF_ROUTING_ROUTE_H

#include "base/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ROUTE_MAX_RECORD (64 * 1024)

/* Checks a record's fields (unknown fields refused); false with err. */
bool route_record_valid(const json_t *rec, struct buf *err);
/*
 * True when a is newer than b, two records of one group: the higher master term; at equal
 * terms, the originator ranked first in the group (cfg's server order; the other master steps
 * down); from one originator, the higher seq; then the canonical text as the tie-break.
 */
bool route_record_newer(const json_t *cfg, const json_t *a, const json_t *b);
/* A record's master term (0 for a record from before terms). */
uint32_t route_record_term(const json_t *rec);

/*
 * The table for server self: {"groups": [...], "connectors": [...], "routes": [...],
 * "servers": [{"name", "group", "smtp"}]} (doc/routing.md); a reachable route names the
 * next hop's "smtp" address and "next_group" (what the mta sends to). records is an object
 * group -> record. Never NULL.
 */
json_t *route_table(const json_t *cfg, const json_t *records, const char *self);

/* Which route mail to address takes and why the other candidates lose (text lines). */
void route_explain(const json_t *cfg, const json_t *records, const char *self, const char *address,
                   struct buf *out);

/* The organization's digest: SHA-256 hex over the config MAC and every record's
 * (group, originator, term, seq). */
void route_digest(const char *config_mac, const json_t *records, char out[65]);

#endif
