/*
 * portmap.c - building the rows of the port map from the services table.
 *
 * Pure: reads the table, the configuration and the listener set; never binds,
 * never talks to a process.
 */
#include "supervisor/portmap.h"
#include "supervisor/services.h"

#include <string.h>

static json_t *row_new(const struct wharf_config *cfg, const struct service_def *s, unsigned port,
                       const char *address, const char *state)
{
    json_t *r = json_object();
    json_object_set_new(r, "exchange_name", json_string(s->component->exchange_name));
    json_object_set_new(r, "component", json_string(s->component->name));
    json_object_set_new(r, "service", json_string(s->name));
    json_object_set_new(r, "port", json_integer(port));
    json_object_set_new(r, "protocol", json_string(s->protocol));
    json_object_set_new(r, "tls", json_string(service_tls_name(service_tls(cfg, s))));
    json_object_set_new(r, "direction", json_string(service_direction_name(s->direction)));
    json_object_set_new(r, "address", json_string(address));
    json_object_set_new(r, "state", json_string(state));
    if (s->direction == SERVICE_INBOUND) {
        json_object_set_new(r, "max_connections", json_integer(service_max_connections(cfg, s)));
        json_object_set_new(r, "max_connections_per_ip",
                            json_integer(service_max_connections_per_ip(cfg, s)));
    }
    json_object_set_new(r, "why", json_string(s->why));
    return r;
}

static bool is_bound(const struct listener_set *live, const struct service_def *s,
                     const char *address)
{
    for (size_t i = 0; i < live->n; i++) {
        if (live->v[i].service == s && live->v[i].fd >= 0 &&
            strcmp(live->v[i].address, address) == 0)
            return true;
    }
    return false;
}

static const char *component_state_of(json_t *states, const struct component_def *c)
{
    const char *st = json_string_value(json_object_get(states, c->name));
    return st ? st : "not running";
}

json_t *portmap_json(const struct wharf_config *cfg, const struct listener_set *live,
                     json_t *states)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < n_services; i++) {
        const struct service_def *s = &services[i];
        bool built = s->component->main != NULL;
        if (s->direction == SERVICE_OUTBOUND) {
            struct buf targets = BUF_INIT;
            bool used = service_outbound_used(cfg, s, &targets);
            const char *st = !built  ? "not built yet"
                             : !used ? "not configured"
                             : live  ? component_state_of(states, s->component)
                                     : "not running";
            json_array_append_new(rows, row_new(cfg, s, service_outbound_port(cfg, s),
                                                targets.len ? targets.data : "-", st));
            buf_free(&targets);
            continue;
        }
        const struct strlist *addrs = service_listen(cfg, s);
        if (addrs->n == 0) {
            json_array_append_new(
                rows, row_new(cfg, s, s->port, "-", built ? "disabled" : "not built yet"));
            continue;
        }
        for (size_t j = 0; j < addrs->n; j++) {
            struct listen_addr la;
            unsigned port = config_parse_listen_addr(addrs->v[j], &la) ? la.port : s->port;
            const char *st = "not built yet";
            if (built && live == NULL)
                st = "not running";
            else if (built && !is_bound(live, s, addrs->v[j]))
                st = "failed";
            else if (built) {
                const char *cs = component_state_of(states, s->component);
                st = strcmp(cs, "restarting") == 0 ? "failed" : "listening";
            }
            json_array_append_new(rows, row_new(cfg, s, port, addrs->v[j], st));
        }
    }
    return rows;
}

void portmap_format_table(json_t *rows, struct buf *out)
{
    static const char *const head[] = {"EXCHANGE", "COMPONENT", "SERVICE",   "PORT",
                                       "PROTOCOL", "TLS",       "DIRECTION", "ADDRESS",
                                       "LIMIT",    "CONNS",     "STATE"};
    /* CONNS: "connections", which wharfd adds to live rows only. */
    static const char *const key[] = {
        "exchange_name", "component", "service", "port",        "protocol", "tls",
        "direction",     "address",   NULL,      "connections", "state"};
    enum { NCOL = sizeof(head) / sizeof(head[0]) };
    size_t width[NCOL];
    for (size_t c = 0; c < NCOL; c++)
        width[c] = strlen(head[c]);
    size_t n = json_array_size(rows);
    struct buf cell = BUF_INIT;
    /* Two passes: measure, then print. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (size_t c = 0; c < NCOL; c++)
                buf_printf(out, "%-*s%s", c + 1 < NCOL ? (int)width[c] : 0, head[c],
                           c + 1 < NCOL ? "  " : "\n");
        }
        for (size_t i = 0; i < n; i++) {
            json_t *row = json_array_get(rows, i);
            for (size_t c = 0; c < NCOL; c++) {
                json_t *v = key[c] ? json_object_get(row, key[c]) : NULL;
                buf_reset(&cell);
                if (key[c] == NULL) {
                    json_t *mx = json_object_get(row, "max_connections");
                    if (mx)
                        buf_printf(&cell, "%lld, %lld/ip", (long long)json_integer_value(mx),
                                   (long long)json_integer_value(
                                       json_object_get(row, "max_connections_per_ip")));
                    else
                        buf_append_cstr(&cell, "-");
                } else if (json_is_integer(v))
                    buf_printf(&cell, "%lld", (long long)json_integer_value(v));
                else
                    buf_append_cstr(&cell, json_string_value(v) ? json_string_value(v) : "-");
                if (pass == 0 && cell.len > width[c])
                    width[c] = cell.len;
                if (pass == 1)
                    buf_printf(out, "%-*s%s", c + 1 < NCOL ? (int)width[c] : 0, buf_cstr(&cell),
                               c + 1 < NCOL ? "  " : "\n");
            }
        }
    }
    buf_free(&cell);
}
