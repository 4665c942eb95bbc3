/*
 * route.c - least-cost routes from the configuration and the link-state
 * records (route.h): Dijkstra over groups with a deterministic tie-break,
 * address-space selection, the explanation `wharf routes --explain` prints,
 * and the organization digest.
 *
 * Must never: read a field of a record that route_record_valid did not check,
 * or depend on the order of a JSON object's keys.
 */
#include "routing/route.h"

#include "base/alloc.h"
#include "base/hex.h"
#include "routing/org.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

bool route_record_valid(const json_t *rec, struct buf *err)
{
    static const char *const keys[] = {"group",         "originator", "term",       "seq",
                                       "config_serial", "members",    "connectors", NULL};
    if (!json_is_object(rec)) {
        buf_append_cstr(err, "record: not an object");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rec, k, v)
    {
        bool ok = false;
        for (size_t i = 0; keys[i]; i++)
            ok = ok || strcmp(keys[i], k) == 0;
        if (!ok) {
            buf_printf(err, "record: unknown field '%s'", k);
            return false;
        }
    }
    const json_t *g = json_object_get(rec, "group"), *o = json_object_get(rec, "originator");
    const json_t *seq = json_object_get(rec, "seq"), *cs = json_object_get(rec, "config_serial");
    const json_t *m = json_object_get(rec, "members"), *c = json_object_get(rec, "connectors");
    if (!json_is_string(g) || !org_name_ok(json_string_value(g)) || !json_is_string(o) ||
        !org_name_ok(json_string_value(o)) || !json_is_integer(seq) ||
        json_integer_value(seq) < 1 || !json_is_integer(cs) || json_integer_value(cs) < 0 ||
        !json_is_array(m) || !json_is_array(c) || json_array_size(m) > 1024 ||
        json_array_size(c) > 1024) {
        buf_append_cstr(err, "record: group, originator, seq, config_serial, members and "
                             "connectors are needed");
        return false;
    }
    const json_t *term = json_object_get(rec, "term");
    if (term != NULL && (!json_is_integer(term) || json_integer_value(term) < 0 ||
                         json_integer_value(term) > UINT32_MAX)) {
        buf_append_cstr(err, "record: term is a number from 0 to 2^32-1");
        return false;
    }
    size_t i;
    json_array_foreach((json_t *)m, i, v)
    {
        if (!json_is_string(v) || !org_name_ok(json_string_value(v))) {
            buf_append_cstr(err, "record: a member is not a server name");
            return false;
        }
    }
    json_array_foreach((json_t *)c, i, v)
    {
        const json_t *n = json_object_get(v, "name"), *st = json_object_get(v, "state");
        const json_t *since = json_object_get(v, "since");
        const char *s = json_is_string(st) ? json_string_value(st) : "";
        if (!json_is_object(v) || json_object_size(v) != 3 || !json_is_string(n) ||
            !org_name_ok(json_string_value(n)) || !json_is_integer(since) ||
            (strcmp(s, "UP") != 0 && strcmp(s, "DOWN") != 0 && strcmp(s, "ADMIN_DOWN") != 0)) {
            buf_append_cstr(err, "record: a connector needs name, state and since");
            return false;
        }
    }
    return true;
}

uint32_t route_record_term(const json_t *rec)
{
    return (uint32_t)json_integer_value(json_object_get(rec, "term"));
}

/* An originator's place among its group's master candidates; past the end when not one. */
static size_t master_rank(const json_t *cfg, const json_t *rec)
{
    const char *g = json_string_value(json_object_get(rec, "group"));
    const char *o = json_string_value(json_object_get(rec, "originator"));
    const char *s;
    size_t i = 0;
    for (; cfg && g && o && (s = org_group_server(cfg, g, i)) != NULL; i++) {
        if (strcmp(s, o) == 0)
            return i;
    }
    return SIZE_MAX;
}

bool route_record_newer(const json_t *cfg, const json_t *a, const json_t *b)
{
    uint32_t terma = route_record_term(a), termb = route_record_term(b);
    if (terma != termb)
        return terma > termb;
    size_t ra = master_rank(cfg, a), rb = master_rank(cfg, b);
    if (ra != rb)
        return ra < rb;
    json_int_t sa = json_integer_value(json_object_get(a, "seq"));
    json_int_t sb = json_integer_value(json_object_get(b, "seq"));
    if (sa != sb)
        return sa > sb;
    char *ta = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
    char *tb = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    bool newer = ta && tb && strcmp(ta, tb) > 0;
    free(ta);
    free(tb);
    return newer;
}

/* The state of connector name in its source group's record, "DOWN" when unknown. */
static const char *conn_state(const json_t *records, const json_t *conn, int64_t *since_r)
{
    const json_t *rec = json_object_get(records, json_string_value(json_object_get(conn, "from")));
    const char *name = json_string_value(json_object_get(conn, "name"));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rec, "connectors"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0) {
            if (since_r)
                *since_r = json_integer_value(json_object_get(c, "since"));
            return json_string_value(json_object_get(c, "state"));
        }
    }
    if (since_r)
        *since_r = 0;
    return "DOWN";
}

static bool conn_usable(const json_t *records, const json_t *conn)
{
    return json_is_true(json_object_get(conn, "enabled")) &&
           strcmp(conn_state(records, conn, NULL), "UP") == 0;
}

static bool is_member(const json_t *records, const char *group, const char *server)
{
    return org_list_has(json_object_get(json_object_get(records, group), "members"), server);
}

/* Labels of the shortest-path tree: per group, cost, hops and the connectors' names. */
struct spf {
    size_t n;
    const char **name;
    uint64_t *cost;
    size_t *hops;
    json_t **path; /* NULL: unreachable */
};

static int label_cmp(uint64_t ca, size_t ha, const json_t *pa, uint64_t cb, size_t hb,
                     const json_t *pb)
{
    if (ca != cb)
        return ca < cb ? -1 : 1;
    if (ha != hb)
        return ha < hb ? -1 : 1;
    for (size_t i = 0; i < json_array_size(pa) && i < json_array_size(pb); i++) {
        int c = strcmp(json_string_value(json_array_get(pa, i)),
                       json_string_value(json_array_get(pb, i)));
        if (c != 0)
            return c;
    }
    return 0;
}

static ssize_t group_index(const struct spf *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->name[i], name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

static void spf_run(const json_t *cfg, const json_t *records, const char *own, struct spf *s)
{
    const json_t *groups = json_object_get(cfg, "groups");
    s->n = json_array_size(groups);
    s->name = xcalloc(s->n + 1, sizeof(*s->name));
    s->cost = xcalloc(s->n + 1, sizeof(*s->cost));
    s->hops = xcalloc(s->n + 1, sizeof(*s->hops));
    s->path = xcalloc(s->n + 1, sizeof(*s->path));
    bool *done = xcalloc(s->n + 1, sizeof(*done));
    for (size_t i = 0; i < s->n; i++)
        s->name[i] = json_string_value(json_object_get(json_array_get(groups, i), "name"));
    ssize_t src = own ? group_index(s, own) : -1;
    if (src >= 0)
        s->path[src] = json_array();
    for (;;) {
        ssize_t u = -1;
        for (size_t i = 0; i < s->n; i++) {
            if (done[i] || s->path[i] == NULL)
                continue;
            if (u < 0 || label_cmp(s->cost[i], s->hops[i], s->path[i], s->cost[u], s->hops[u],
                                   s->path[u]) < 0)
                u = (ssize_t)i;
        }
        if (u < 0)
            break;
        done[u] = true;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(cfg, "connectors"), i, c)
        {
            const json_t *to = json_object_get(c, "to");
            if (to == NULL || strcmp(json_string_value(json_object_get(c, "from")), s->name[u]) ||
                !conn_usable(records, c))
                continue;
            ssize_t v = group_index(s, json_string_value(to));
            if (v < 0 || done[v])
                continue;
            uint64_t cost = s->cost[u] + (uint64_t)json_integer_value(json_object_get(c, "cost"));
            json_t *path = json_copy(s->path[u]);
            json_array_append(path, json_object_get(c, "name"));
            if (s->path[v] == NULL ||
                label_cmp(cost, s->hops[u] + 1, path, s->cost[v], s->hops[v], s->path[v]) < 0) {
                json_decref(s->path[v]);
                s->path[v] = path;
                s->cost[v] = cost;
                s->hops[v] = s->hops[u] + 1;
            } else {
                json_decref(path);
            }
        }
    }
    free(done);
}

static void spf_free(struct spf *s)
{
    for (size_t i = 0; i < s->n; i++)
        json_decref(s->path[i]);
    free(s->name);
    free(s->cost);
    free(s->hops);
    free(s->path);
}

/* The server mail leaves this one for, along path (connector names) from self's group. */
/* The first bridgehead of list that its group's record shows up, else the first one. */
static const char *live_bridgehead(const json_t *records, const char *group, const json_t *list)
{
    size_t i;
    json_t *s;
    json_array_foreach((json_t *)list, i, s)
    {
        if (is_member(records, group, json_string_value(s)))
            return json_string_value(s);
    }
    return json_string_value(json_array_get(list, 0));
}

static const char *next_hop(const json_t *cfg, const json_t *records, const char *self,
                            const json_t *path)
{
    const json_t *c0 = org_find(cfg, "connectors", json_string_value(json_array_get(path, 0)));
    if (c0 == NULL)
        return NULL;
    const json_t *src = json_object_get(c0, "source");
    if (org_list_has(src, self))
        return live_bridgehead(records, json_string_value(json_object_get(c0, "to")),
                               json_object_get(c0, "target"));
    return live_bridgehead(records, json_string_value(json_object_get(c0, "from")), src);
}

/* The best usable connector for an address-space pattern, or NULL; why lines into out. */
static const json_t *best_space(const json_t *cfg, const json_t *records, const struct spf *s,
                                const char *pattern, uint64_t *cost_r, struct buf *out)
{
    const json_t *best = NULL;
    uint64_t best_cost = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(cfg, "connectors"), i, c)
    {
        const json_t *sp = json_object_get(c, "space");
        if (sp == NULL || strcmp(json_string_value(sp), pattern) != 0)
            continue;
        const char *name = json_string_value(json_object_get(c, "name"));
        ssize_t g = group_index(s, json_string_value(json_object_get(c, "from")));
        if (!conn_usable(records, c)) {
            if (out)
                buf_printf(out, "  %s (%s): not usable: %s\n", name, pattern,
                           json_is_true(json_object_get(c, "enabled"))
                               ? conn_state(records, c, NULL)
                               : "disabled");
            continue;
        }
        if (g < 0 || s->path[g] == NULL) {
            if (out)
                buf_printf(out, "  %s (%s): its group %s is unreachable\n", name, pattern,
                           s->name[g < 0 ? 0 : g]);
            continue;
        }
        uint64_t cost = s->cost[g] + (uint64_t)json_integer_value(json_object_get(c, "cost"));
        if (out)
            buf_printf(out, "  %s (%s): usable, cost %llu\n", name, pattern,
                       (unsigned long long)cost);
        if (best == NULL || cost < best_cost) {
            best = c;
            best_cost = cost;
        }
    }
    *cost_r = best_cost;
    return best;
}

/* One route object to a space connector c at cost. */
static json_t *space_route(const json_t *cfg, const json_t *records, const char *self,
                           const struct spf *s, const json_t *c, uint64_t cost)
{
    ssize_t g = group_index(s, json_string_value(json_object_get(c, "from")));
    json_t *path = json_copy(s->path[g]);
    json_array_append(path, json_object_get(c, "name"));
    const char *hop = org_list_has(json_object_get(c, "source"), self)
                          ? json_string_value(json_object_get(c, "smarthost"))
                          : next_hop(cfg, records, self, path);
    bool bridgehead = org_list_has(json_object_get(c, "source"), self);
    const json_t *srv = bridgehead || hop == NULL ? NULL : org_find(cfg, "servers", hop);
    const json_t *smtp =
        bridgehead ? json_object_get(c, "smarthost") : json_object_get(srv, "smtp");
    /* the next hop's group, for the mta's loop check (no next_group: it leaves the organization) */
    const char *next_group = srv ? org_server_group(cfg, hop) : NULL;
    return json_pack("{s:O, s:s, s:O, s:I, s:I, s:o, s:s?, s:O?, s:s?}", "dest",
                     json_object_get(c, "space"), "kind", "space", "connector",
                     json_object_get(c, "name"), "cost", (json_int_t)cost, "hops",
                     (json_int_t)json_array_size(path), "path", path, "next_hop", hop, "smtp", smtp,
                     "next_group", next_group);
}

json_t *route_table(const json_t *cfg, const json_t *records, const char *self)
{
    json_t *groups = json_array(), *conns = json_array(), *routes = json_array();
    const char *own = cfg ? org_server_group(cfg, self) : NULL;
    struct spf s;
    memset(&s, 0, sizeof(s));
    if (cfg == NULL)
        goto out;
    spf_run(cfg, records, own, &s);
    for (size_t i = 0; i < s.n; i++) {
        const json_t *rec = json_object_get(records, s.name[i]);
        json_array_append_new(
            groups, json_pack("{s:s, s:O?, s:I, s:I, s:O?, s:b}", "name", s.name[i], "master",
                              json_object_get(rec, "originator"), "term",
                              (json_int_t)route_record_term(rec), "seq",
                              (json_int_t)json_integer_value(json_object_get(rec, "seq")),
                              "members", json_object_get(rec, "members"), "record", rec != NULL));
        if (s.path[i] == NULL) {
            json_array_append_new(routes, json_pack("{s:s, s:s, s:b}", "dest", s.name[i], "kind",
                                                    "group", "reachable", false));
            continue;
        }
        const char *hop =
            json_array_size(s.path[i]) == 0 ? "local" : next_hop(cfg, records, self, s.path[i]);
        /* where the mta sends mail for a server of that group (doc/routing.md, "Mail for
         * users homed on another server"): the next hop's SMTP address and group */
        const json_t *srv =
            json_array_size(s.path[i]) == 0 || hop == NULL ? NULL : org_find(cfg, "servers", hop);
        json_array_append_new(
            routes, json_pack("{s:s, s:s, s:b, s:I, s:I, s:O, s:s?, s:O?, s:s?}", "dest", s.name[i],
                              "kind", "group", "reachable", true, "cost", (json_int_t)s.cost[i],
                              "hops", (json_int_t)s.hops[i], "path", s.path[i], "next_hop", hop,
                              "smtp", json_object_get(srv, "smtp"), "next_group",
                              srv ? org_server_group(cfg, hop) : NULL));
    }
    /* every server's group and SMTP address: the mta finds a home server's group here */
    json_t *servers = json_array();
    size_t k;
    json_t *sv;
    json_array_foreach(json_object_get(cfg, "servers"), k, sv)
    {
        json_array_append_new(
            servers, json_pack("{s:O, s:O, s:O?}", "name", json_object_get(sv, "name"), "group",
                               json_object_get(sv, "group"), "smtp", json_object_get(sv, "smtp")));
    }
    size_t i;
    json_t *c;
    json_t *seen = json_object();
    json_array_foreach(json_object_get(cfg, "connectors"), i, c)
    {
        int64_t since;
        const char *state = json_is_true(json_object_get(c, "enabled"))
                                ? conn_state(records, c, &since)
                                : "ADMIN_DOWN";
        if (!json_is_true(json_object_get(c, "enabled")))
            conn_state(records, c, &since);
        json_t *o =
            json_pack("{s:O, s:O, s:O, s:s, s:I, s:O, s:O?}", "name", json_object_get(c, "name"),
                      "from", json_object_get(c, "from"), "cost", json_object_get(c, "cost"),
                      "state", state, "since", (json_int_t)since, "source",
                      json_object_get(c, "source"), "target", json_object_get(c, "target"));
        json_t *to = json_object_get(c, "to");
        json_object_set(o, to ? "to" : "space", to ? to : json_object_get(c, "space"));
        json_array_append_new(conns, o);
        const json_t *sp = json_object_get(c, "space");
        if (sp == NULL || json_object_get(seen, json_string_value(sp)))
            continue;
        json_object_set_new(seen, json_string_value(sp), json_true());
        uint64_t cost;
        const json_t *best = best_space(cfg, records, &s, json_string_value(sp), &cost, NULL);
        json_array_append_new(routes, best ? space_route(cfg, records, self, &s, best, cost)
                                           : json_pack("{s:O, s:s, s:b}", "dest", sp, "kind",
                                                       "space", "reachable", false));
        if (best)
            json_object_set_new(json_array_get(routes, json_array_size(routes) - 1), "reachable",
                                json_true());
    }
    json_decref(seen);
    spf_free(&s);
    return json_pack("{s:o, s:o, s:o, s:o}", "groups", groups, "connectors", conns, "routes",
                     routes, "servers", servers);
out:
    return json_pack("{s:o, s:o, s:o, s:o}", "groups", groups, "connectors", conns, "routes",
                     routes, "servers", json_array());
}

/* How specific pattern is for domain: -1 no match, else higher is more specific. */
static int space_match(const char *pattern, const char *domain)
{
    if (strcmp(pattern, "*") == 0)
        return 0;
    if (strncmp(pattern, "*.", 2) == 0) {
        const char *suf = pattern + 2;
        size_t dl = strlen(domain), sl = strlen(suf);
        if (strcmp(domain, suf) == 0 ||
            (dl > sl && domain[dl - sl - 1] == '.' && strcmp(domain + dl - sl, suf) == 0))
            return (int)sl + 1;
        return -1;
    }
    return strcmp(pattern, domain) == 0 ? 100000 : -1;
}

void route_explain(const json_t *cfg, const json_t *records, const char *self, const char *address,
                   struct buf *out)
{
    const char *at = strrchr(address, '@');
    char *domain = xstrdup(at ? at + 1 : address);
    for (char *p = domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (cfg == NULL) {
        buf_append_cstr(out, "no organization configuration: routed by the mta's own rules\n");
        free(domain);
        return;
    }
    struct spf s;
    spf_run(cfg, records, org_server_group(cfg, self), &s);
    int best_spec = -1;
    const char *pattern = NULL;
    size_t i;
    json_t *c;
    buf_printf(out, "address %s, domain %s, from %s (group %s)\n", address, domain, self,
               org_server_group(cfg, self) ? org_server_group(cfg, self) : "?");
    json_array_foreach(json_object_get(cfg, "connectors"), i, c)
    {
        const json_t *sp = json_object_get(c, "space");
        if (sp == NULL)
            continue;
        int spec = space_match(json_string_value(sp), domain);
        if (spec < 0) {
            buf_printf(out, "  %s (%s): does not match\n",
                       json_string_value(json_object_get(c, "name")), json_string_value(sp));
        } else if (spec > best_spec) {
            best_spec = spec;
            pattern = json_string_value(sp);
        }
    }
    if (pattern == NULL) {
        buf_append_cstr(out, "result: NO_ROUTE (no address space matches)\n");
    } else {
        buf_printf(out, "most specific address space: %s (less specific ones are not used)\n",
                   pattern);
        uint64_t cost;
        const json_t *best = best_space(cfg, records, &s, pattern, &cost, out);
        if (best == NULL) {
            buf_append_cstr(out, "result: UNREACHABLE (mail waits until a connector is up)\n");
        } else {
            json_t *r = space_route(cfg, records, self, &s, best, cost);
            char *path = json_dumps(json_object_get(r, "path"), JSON_COMPACT);
            buf_printf(out, "result: connector %s, cost %llu, path %s, next hop %s\n",
                       json_string_value(json_object_get(best, "name")), (unsigned long long)cost,
                       path, json_string_value(json_object_get(r, "next_hop")));
            free(path);
            json_decref(r);
        }
    }
    spf_free(&s);
    free(domain);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void route_digest(const char *config_mac, const json_t *records, char out[65])
{
    size_t n = json_object_size(records), k = 0;
    const char **keys = xcalloc(n + 1, sizeof(*keys));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)records, key, v)
    {
        keys[k++] = key;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    struct buf in = BUF_INIT;
    buf_printf(&in, "%s\n", config_mac ? config_mac : "");
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_object_get(records, keys[i]);
        buf_printf(&in, "%s %s %lu %lld\n", keys[i],
                   json_string_value(json_object_get(r, "originator")),
                   (unsigned long)route_record_term(r),
                   (long long)json_integer_value(json_object_get(r, "seq")));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(in.data, in.len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, 32, out);
    buf_free(&in);
    free(keys);
}
