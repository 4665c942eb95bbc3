/*
 * org.h - the organization configuration (Exchange's Site Replication
 * Service row): routing groups, servers, connectors, one document with a
 * serial, authenticated with the organization's key and replicated by the
 * routing process to every server (newest serial wins).
 *
 * The document is JSON, signed as a record:
 *     {"config": {...}, "mac": "<hex HMAC-SHA256(org key, "wharf-org v1\0" || canonical)>"}
 * where canonical is the config object dumped compactly with sorted keys.
 * The config object (every key checked, unknown keys refused):
 *     org          name of the organization
 *     serial       u64 >= 1, one more at every change
 *     groups       [{"name"}]   a group's master candidates are its servers in order
 *     servers      [{"name", "group", "address": "HOST:PORT" of its 691 listener,
 *                    "smtp": "HOST:PORT" where the others relay mail to it (optional)}]
 *     connectors   [{"name", "from", "cost": 1..100, "enabled", "source": [servers of from],
 *                    and either "to" + "target": [servers of to]
 *                    or "space": "*.partner.test" + "smarthost": "HOST:PORT";
 *                   "ls_transport": "691" (default) or "smtp": how its bridgeheads peer —
 *                   "smtp" when only port 25 is open between the groups (routing_smtp.c)}]
 *
 * Files, under DATA/routing/ (owned by the wharf user, 0600):
 *     org.key    the key, 64 hex digits
 *     self.json  {"server": NAME, "peers": ["HOST:PORT", ...]}  who this server is, seeds
 *     org.json   the newest record this server has
 *
 * Must never: accept a record whose MAC does not verify, a config that names
 * something it does not define, or a cost outside 1..100.
 */
#ifndef WHARF_ROUTING_ORG_H
#define WHARF_ROUTING_ORG_H

#include "base/buf.h"
#include "base/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORG_KEY_LEN 32
#define ORG_MAC_HEX 64
#define ORG_NAME_MAX 64
#define ORG_RECORD_MAX (256 * 1024)

/* A checked, authenticated configuration. */
struct org_config {
    json_t *cfg;               /* the config object (validated) */
    char mac[ORG_MAC_HEX + 1]; /* its MAC in hex: the tie-break and the digest input */
    uint64_t serial;
};

/* A name of a group, server or connector: [A-Za-z0-9._-], 1..64. */
bool org_name_ok(const char *s);

/* Checks every field of a config object; false with err. */
bool org_config_validate(const json_t *cfg, struct buf *err);
/* Parses and verifies a record with key; false with err. On success fills oc (org_config_free). */
bool org_record_parse(const char *data, size_t len, const unsigned char key[ORG_KEY_LEN],
                      struct org_config *oc, struct buf *err);
/* Signs cfg (validated first) into a record text in out and fills oc; false with err. */
bool org_record_make(json_t *cfg, const unsigned char key[ORG_KEY_LEN], struct buf *out,
                     struct org_config *oc, struct buf *err);
void org_config_free(struct org_config *oc);
/* True when a is newer than b (serial, then MAC); an empty b (serial 0) is older than anything. */
bool org_config_newer(const struct org_config *a, const struct org_config *b);

/* Lookups in a validated config (NULL when absent). */
json_t *org_find(const json_t *cfg, const char *kind, const char *name);
const char *org_server_group(const json_t *cfg, const char *server);
/* The master candidate of a group by rank (its servers in config order), NULL past the end. */
const char *org_group_server(const json_t *cfg, const char *group, size_t rank);
bool org_list_has(const json_t *list, const char *name);

/* ---- files under DATA/routing ---- */
/* "DATA/routing/NAME" (free it). */
char *org_path(const struct wharf_config *cfg, const char *name);
/* Reads the key; false with err when absent or malformed. */
bool org_key_load(const struct wharf_config *cfg, unsigned char key[ORG_KEY_LEN], struct buf *err);
/* Loads org.json with key; false (err set only when the file exists but is bad). */
bool org_config_load(const struct wharf_config *cfg, const unsigned char key[ORG_KEY_LEN],
                     struct org_config *oc, struct buf *err);
/* Loads self.json; NULL when absent or bad (err says). */
json_t *org_self_load(const struct wharf_config *cfg, struct buf *err);

#endif
