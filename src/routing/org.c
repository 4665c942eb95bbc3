/*
 * org.c - the organization configuration: validation, the signed record,
 * and its files (org.h).
 *
 * Must never: trust a field before org_config_validate passed, or compare
 * MACs other than in constant time.
 */
#include "routing/org.h"

#include "base/alloc.h"
#include "base/fdio.h"
#include "base/hex.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ORG_MAX_ITEMS 1024
static const char mac_label[] = "wharf-org v1"; /* with its NUL */

bool org_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ORG_NAME_MAX)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* HOST:PORT with a port 1..65535 and a host of name characters (or a bracketed IPv6). */
static bool hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || strlen(s) > 255)
        return false;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
        return false;
    for (const char *p = s; p < colon; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

/* "*", "*.domain" or "domain", lower-case name characters. */
static bool space_ok(const char *s)
{
    if (strcmp(s, "*") == 0)
        return true;
    const char *d = strncmp(s, "*.", 2) == 0 ? s + 2 : s;
    if (*d == '\0' || strlen(d) > 253)
        return false;
    for (; *d; d++) {
        char c = *d;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool keys_only(const json_t *o, const char *const *allowed, const char *what,
                      struct buf *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok = ok || strcmp(k, allowed[i]) == 0;
        if (!ok) {
            buf_printf(err, "%s: unknown field '%s'", what, k);
            return false;
        }
    }
    return true;
}

static const char *name_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) && org_name_ok(json_string_value(v)) ? json_string_value(v) : NULL;
}

json_t *org_find(const json_t *cfg, const char *kind, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(cfg, kind), i, o)
    {
        const json_t *n = json_object_get(o, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return o;
    }
    return NULL;
}

const char *org_server_group(const json_t *cfg, const char *server)
{
    json_t *s = org_find(cfg, "servers", server);
    return s ? json_string_value(json_object_get(s, "group")) : NULL;
}

const char *org_group_server(const json_t *cfg, const char *group, size_t rank)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(cfg, "servers"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "group")), group) == 0 && rank-- == 0)
            return json_string_value(json_object_get(s, "name"));
    }
    return NULL;
}

bool org_list_has(const json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return true;
    }
    return false;
}

/* A non-empty array of distinct server names, all of group. */
static bool bridgeheads_ok(const json_t *cfg, const json_t *list, const char *group,
                           const char *what, struct buf *err)
{
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > ORG_MAX_ITEMS) {
        buf_printf(err, "%s: a non-empty list of servers is needed", what);
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)list, i, v)
    {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        const char *g = s ? org_server_group(cfg, s) : NULL;
        if (g == NULL || strcmp(g, group) != 0) {
            buf_printf(err, "%s: '%s' is not a server of group %s", what, s ? s : "?", group);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_array_get(list, j)), s) == 0) {
                buf_printf(err, "%s: '%s' twice", what, s);
                return false;
            }
        }
    }
    return true;
}

/* Each item of cfg[kind] is an object with a unique valid name and only the allowed keys. */
static bool items_ok(const json_t *cfg, const char *kind, const char *const *allowed,
                     struct buf *err)
{
    const json_t *arr = json_object_get(cfg, kind);
    if (!json_is_array(arr) || json_array_size(arr) > ORG_MAX_ITEMS) {
        buf_printf(err, "'%s' must be a list of at most %d items", kind, ORG_MAX_ITEMS);
        return false;
    }
    size_t i;
    json_t *o;
    json_array_foreach((json_t *)arr, i, o)
    {
        const char *name = json_is_object(o) ? name_of(o, "name") : NULL;
        if (name == NULL) {
            buf_printf(err, "%s #%zu: a name of letters, digits, '.', '_', '-' is needed", kind,
                       i + 1);
            return false;
        }
        if (!keys_only(o, allowed, name, err))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_object_get(json_array_get(arr, j), "name")), name) ==
                0) {
                buf_printf(err, "%s: '%s' is defined twice", kind, name);
                return false;
            }
        }
    }
    return true;
}

static bool connector_ok(const json_t *cfg, const json_t *c, struct buf *err)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *from = name_of(c, "from");
    const json_t *cost = json_object_get(c, "cost");
    const json_t *en = json_object_get(c, "enabled");
    if (from == NULL || org_find(cfg, "groups", from) == NULL) {
        buf_printf(err, "connector %s: 'from' must name a group", name);
        return false;
    }
    if (!json_is_integer(cost) || json_integer_value(cost) < 1 || json_integer_value(cost) > 100) {
        buf_printf(err, "connector %s: cost must be 1 to 100", name);
        return false;
    }
    if (!json_is_boolean(en)) {
        buf_printf(err, "connector %s: 'enabled' must be true or false", name);
        return false;
    }
    if (!bridgeheads_ok(cfg, json_object_get(c, "source"), from, name, err))
        return false;
    const json_t *to = json_object_get(c, "to"), *space = json_object_get(c, "space");
    if ((to == NULL) == (space == NULL)) {
        buf_printf(err, "connector %s: either 'to' (a group) or 'space' (an address space)", name);
        return false;
    }
    if (to) {
        const char *tg = name_of(c, "to");
        if (tg == NULL || org_find(cfg, "groups", tg) == NULL || strcmp(tg, from) == 0) {
            buf_printf(err, "connector %s: 'to' must name another group", name);
            return false;
        }
        if (json_object_get(c, "smarthost")) {
            buf_printf(err, "connector %s: a smart host belongs to an address space", name);
            return false;
        }
        const json_t *lt = json_object_get(c, "ls_transport");
        if (lt && (!json_is_string(lt) || (strcmp(json_string_value(lt), "691") != 0 &&
                                           strcmp(json_string_value(lt), "smtp") != 0))) {
            buf_printf(err, "connector %s: ls_transport must be 691 or smtp", name);
            return false;
        }
        return bridgeheads_ok(cfg, json_object_get(c, "target"), tg, name, err);
    }
    const json_t *sh = json_object_get(c, "smarthost");
    if (!json_is_string(space) || !space_ok(json_string_value(space))) {
        buf_printf(err, "connector %s: space must be '*', '*.domain' or 'domain'", name);
        return false;
    }
    if (!json_is_string(sh) || !hostport_ok(json_string_value(sh))) {
        buf_printf(err, "connector %s: an address space needs smarthost HOST:PORT", name);
        return false;
    }
    if (json_object_get(c, "target") || json_object_get(c, "ls_transport")) {
        buf_printf(err,
                   "connector %s: target bridgeheads and ls_transport belong to a connector "
                   "between groups",
                   name);
        return false;
    }
    return true;
}

bool org_config_validate(const json_t *cfg, struct buf *err)
{
    static const char *const top[] = {"org", "serial", "groups", "servers", "connectors", NULL};
    static const char *const gkeys[] = {"name", NULL};
    static const char *const skeys[] = {"name", "group", "address", "smtp", NULL};
    static const char *const ckeys[] = {"name",      "from",         "to",     "space",
                                        "smarthost", "cost",         "source", "target",
                                        "enabled",   "ls_transport", NULL};
    if (!json_is_object(cfg)) {
        buf_append_cstr(err, "the configuration must be an object");
        return false;
    }
    if (!keys_only(cfg, top, "configuration", err))
        return false;
    const json_t *serial = json_object_get(cfg, "serial");
    if (name_of(cfg, "org") == NULL) {
        buf_append_cstr(err, "'org' must be a name");
        return false;
    }
    if (!json_is_integer(serial) || json_integer_value(serial) < 1) {
        buf_append_cstr(err, "'serial' must be a positive integer");
        return false;
    }
    if (!items_ok(cfg, "groups", gkeys, err) || !items_ok(cfg, "servers", skeys, err) ||
        !items_ok(cfg, "connectors", ckeys, err))
        return false;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(cfg, "servers"), i, o)
    {
        const char *g = name_of(o, "group");
        const json_t *a = json_object_get(o, "address");
        const char *name = json_string_value(json_object_get(o, "name"));
        if (g == NULL || org_find(cfg, "groups", g) == NULL) {
            buf_printf(err, "server %s: 'group' must name a group", name);
            return false;
        }
        if (!json_is_string(a) || !hostport_ok(json_string_value(a))) {
            buf_printf(err, "server %s: 'address' must be HOST:PORT", name);
            return false;
        }
        const json_t *smtp = json_object_get(o, "smtp");
        if (smtp && (!json_is_string(smtp) || !hostport_ok(json_string_value(smtp)))) {
            buf_printf(err, "server %s: 'smtp' must be HOST:PORT", name);
            return false;
        }
    }
    json_array_foreach(json_object_get(cfg, "connectors"), i, o)
    {
        if (!connector_ok(cfg, o, err))
            return false;
    }
    return true;
}

static bool mac_of(const json_t *cfg, const unsigned char key[ORG_KEY_LEN],
                   char hex[ORG_MAC_HEX + 1])
{
    char *canon = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    if (canon == NULL)
        return false;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct buf in = BUF_INIT;
    buf_append(&in, mac_label, sizeof(mac_label));
    buf_append_cstr(&in, canon);
    free(canon);
    bool ok = HMAC(EVP_sha256(), key, ORG_KEY_LEN, (const unsigned char *)in.data, in.len, md,
                   &mdlen) != NULL &&
              mdlen == 32;
    buf_free(&in);
    if (ok)
        hex_encode(md, 32, hex);
    return ok;
}

bool org_record_parse(const char *data, size_t len, const unsigned char key[ORG_KEY_LEN],
                      struct org_config *oc, struct buf *err)
{
    memset(oc, 0, sizeof(*oc));
    if (len > ORG_RECORD_MAX) {
        buf_append_cstr(err, "configuration record too large");
        return false;
    }
    json_error_t jerr;
    json_t *rec = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (rec == NULL) {
        buf_printf(err, "configuration record: %s", jerr.text);
        return false;
    }
    static const char *const keys[] = {"config", "mac", NULL};
    json_t *cfg = json_object_get(rec, "config");
    const json_t *mac = json_object_get(rec, "mac");
    char want[ORG_MAC_HEX + 1];
    bool ok = json_is_object(rec) && keys_only(rec, keys, "configuration record", err);
    if (ok && (!json_is_string(mac) || strlen(json_string_value(mac)) != ORG_MAC_HEX)) {
        buf_append_cstr(err, "configuration record: no MAC");
        ok = false;
    } else if (ok && !org_config_validate(cfg, err)) {
        ok = false;
    } else if (ok && !mac_of(cfg, key, want)) {
        buf_append_cstr(err, "configuration record: cannot compute the MAC");
        ok = false;
    } else if (ok && CRYPTO_memcmp(want, json_string_value(mac), ORG_MAC_HEX) != 0) {
        buf_append_cstr(err, "configuration record: the MAC does not verify (another org key?)");
        ok = false;
    } else if (!ok && err->len == 0) {
        buf_append_cstr(err, "configuration record: not an object");
    }
    if (ok) {
        oc->cfg = json_incref(cfg);
        memcpy(oc->mac, want, sizeof(want));
        oc->serial = (uint64_t)json_integer_value(json_object_get(cfg, "serial"));
    }
    json_decref(rec);
    return ok;
}

bool org_record_make(json_t *cfg, const unsigned char key[ORG_KEY_LEN], struct buf *out,
                     struct org_config *oc, struct buf *err)
{
    memset(oc, 0, sizeof(*oc));
    if (!org_config_validate(cfg, err))
        return false;
    char hex[ORG_MAC_HEX + 1];
    if (!mac_of(cfg, key, hex)) {
        buf_append_cstr(err, "cannot compute the MAC");
        return false;
    }
    json_t *rec = json_pack("{s:O, s:s}", "config", cfg, "mac", hex);
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(rec);
    buf_append_cstr(out, text);
    free(text);
    oc->cfg = json_incref(cfg);
    memcpy(oc->mac, hex, sizeof(hex));
    oc->serial = (uint64_t)json_integer_value(json_object_get(cfg, "serial"));
    return true;
}

void org_config_free(struct org_config *oc)
{
    json_decref(oc->cfg);
    memset(oc, 0, sizeof(*oc));
}

bool org_config_newer(const struct org_config *a, const struct org_config *b)
{
    if (a->cfg == NULL)
        return false;
    if (b->cfg == NULL || a->serial != b->serial)
        return b->cfg == NULL || a->serial > b->serial;
    return strcmp(a->mac, b->mac) > 0;
}

char *org_path(const struct wharf_config *cfg, const char *name)
{
    struct buf p = BUF_INIT;
    buf_printf(&p, "routing/%s", name);
    char *r = config_data_path(cfg, buf_cstr(&p));
    buf_free(&p);
    return r;
}

static bool read_small(const char *path, struct buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fd_read_all(fd, ORG_RECORD_MAX, out) == 0;
    close(fd);
    return ok;
}

bool org_key_load(const struct wharf_config *cfg, unsigned char key[ORG_KEY_LEN], struct buf *err)
{
    char *path = org_path(cfg, "org.key");
    struct buf b = BUF_INIT;
    bool ok = read_small(path, &b);
    if (!ok) {
        buf_printf(err, "%s: %s (not part of an organization: wharf org create or join)", path,
                   strerror(errno));
    } else {
        char hex[2 * ORG_KEY_LEN + 1] = "";
        if (b.len >= 2 * ORG_KEY_LEN && b.len <= 2 * ORG_KEY_LEN + 1)
            memcpy(hex, b.data, 2 * ORG_KEY_LEN);
        ok = (b.len == 2 * ORG_KEY_LEN || b.data[2 * ORG_KEY_LEN] == '\n') &&
             hex_decode(hex, key, ORG_KEY_LEN);
        if (!ok)
            buf_printf(err, "%s: not a key of 64 hex digits", path);
    }
    buf_free(&b);
    free(path);
    return ok;
}

bool org_config_load(const struct wharf_config *cfg, const unsigned char key[ORG_KEY_LEN],
                     struct org_config *oc, struct buf *err)
{
    memset(oc, 0, sizeof(*oc));
    char *path = org_path(cfg, "org.json");
    struct buf b = BUF_INIT;
    bool ok = read_small(path, &b);
    if (ok && !org_record_parse(b.data, b.len, key, oc, err)) {
        ok = false;
    }
    buf_free(&b);
    free(path);
    return ok;
}

json_t *org_self_load(const struct wharf_config *cfg, struct buf *err)
{
    char *path = org_path(cfg, "self.json");
    json_error_t jerr;
    json_t *self = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (self == NULL) {
        buf_printf(err, "%s: %s", path, jerr.text);
    } else if (name_of(self, "server") == NULL || !json_is_array(json_object_get(self, "peers"))) {
        buf_printf(err, "%s: needs a server name and a list of peers", path);
        json_decref(self);
        self = NULL;
    }
    free(path);
    return self;
}
