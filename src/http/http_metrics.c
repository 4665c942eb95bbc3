/*
 * http_metrics.c - GET /metrics (see http_metrics.h). The figures are those
 * wharfd already gathers for `wharf status`: component states and restarts,
 * connections per service (the shared connection table), the mta's queue
 * figures and delivery counters (mta_stats.h), the smtp workers' accepted
 * messages, the auth process's verdict counts and bans; and the store's
 * size from its own counters (store_totals), read by this worker.
 *
 * Must never: answer before wharfd did (a deferred response), or keep the
 * response after its client left (on_close cancels the wait).
 */
#include "http/http_metrics.h"

#include "base/alloc.h"
#include "http/http_server.h"
#include "ipc/control.h"
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

struct metrics_wait {
    struct http_server *srv;
    struct http_response *res;
    uint64_t handle;
};

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static json_int_t int_of(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* The sum of key over every process status of component name. */
static json_int_t sum_status(json_t *status, const char *name, const char *key)
{
    json_int_t n = 0;
    size_t i, j;
    json_t *c, *p;
    json_array_foreach(json_object_get(status, "components"), i, c)
    {
        const char *comp = json_string_value(json_object_get(c, "name"));
        if (comp == NULL || strcmp(comp, name) != 0)
            continue;
        json_array_foreach(json_object_get(c, "processes"), j, p)
        {
            n += int_of(json_object_get(p, "status"), key);
        }
    }
    return n;
}

/* Label values here are component and service names: [a-z0-9-] only, nothing to escape. */
static void per_component(struct buf *out, json_t *status, const char *name, const char *type,
                          const char *help, const char *key, bool state)
{
    family(out, name, type, help);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(status, "components"), i, c)
    {
        const char *comp = json_string_value(json_object_get(c, "name"));
        const char *st = json_string_value(json_object_get(c, "state"));
        if (comp == NULL)
            continue;
        json_int_t v = state ? (st && strcmp(st, "running") == 0) : int_of(c, key);
        buf_printf(out, "%s{component=\"%s\"} %lld\n", name, comp, (long long)v);
    }
}

/* Bounds of a latency histogram the mta reports (mta_stats.h), at most this many. */
#define METRICS_MAX_BUCKETS 32

/* The mta's delivery latency (cumulative counts per bound, then +Inf) as a histogram. */
static void latency_histogram(struct buf *out, json_t *status)
{
    json_t *bounds = NULL;
    json_int_t le[METRICS_MAX_BUCKETS + 1] = {0}, sum = 0, count = 0;
    size_t i, j, nb = 0;
    json_t *c, *p;
    json_array_foreach(json_object_get(status, "components"), i, c)
    {
        const char *comp = json_string_value(json_object_get(c, "name"));
        if (comp == NULL || strcmp(comp, "mta") != 0)
            continue;
        json_array_foreach(json_object_get(c, "processes"), j, p)
        {
            json_t *h = json_object_get(json_object_get(p, "status"), "delivery_latency");
            json_t *b = json_object_get(h, "bounds"), *arr = json_object_get(h, "le");
            if (bounds == NULL && json_array_size(b) <= METRICS_MAX_BUCKETS) {
                bounds = b;
                nb = json_array_size(b);
            }
            if (bounds == NULL || !json_equal(b, bounds) || json_array_size(arr) != nb + 1)
                continue;
            for (size_t k = 0; k <= nb; k++)
                le[k] += json_integer_value(json_array_get(arr, k));
            sum += int_of(h, "sum");
            count += int_of(h, "count");
        }
    }
    family(out, "wharf_delivery_latency_seconds", "histogram",
           "Time from arrival in the queue to delivery (local or relayed), per recipient; whole "
           "seconds, as the log's delay=.");
    for (size_t k = 0; k < nb; k++)
        buf_printf(out, "wharf_delivery_latency_seconds_bucket{le=\"%lld\"} %lld\n",
                   (long long)json_integer_value(json_array_get(bounds, k)), (long long)le[k]);
    buf_printf(out, "wharf_delivery_latency_seconds_bucket{le=\"+Inf\"} %lld\n", (long long)le[nb]);
    buf_printf(out, "wharf_delivery_latency_seconds_sum %lld\n", (long long)sum);
    buf_printf(out, "wharf_delivery_latency_seconds_count %lld\n", (long long)count);
}

void http_metrics_render(json_t *status, struct buf *out)
{
    family(out, "wharf_up", "gauge", "1 when wharfd answered.");
    buf_append_cstr(out, "wharf_up 1\n");
    family(out, "wharf_uptime_seconds", "gauge", "Seconds since wharfd started.");
    buf_printf(out, "wharf_uptime_seconds %lld\n", (long long)int_of(status, "uptime"));
    family(out, "wharf_reloads_total", "counter", "Configuration reloads since start.");
    buf_printf(out, "wharf_reloads_total %lld\n", (long long)int_of(status, "reloads"));
    per_component(out, status, "wharf_component_running", "gauge",
                  "1 when the component runs, 0 when disabled, restarting or not built.", NULL,
                  true);
    per_component(out, status, "wharf_component_restarts_total", "counter",
                  "Restarts of the component's processes since start.", "restarts", false);
    per_component(out, status, "wharf_component_connections", "gauge",
                  "Open connections the component's processes report.", "connections", false);
    family(out, "wharf_connections", "gauge",
           "Open inbound connections per service, over every worker (the shared table).");
    const char *svc;
    json_t *n;
    json_object_foreach(json_object_get(status, "connections_by_service"), svc, n)
    {
        buf_printf(out, "wharf_connections{service=\"%s\"} %lld\n", svc,
                   (long long)(json_is_integer(n) ? json_integer_value(n) : 0));
    }
    /* The figures of one component's status, as families (NULL label: one plain sample). */
    static const struct {
        const char *name, *type, *help, *label, *value, *component, *key;
    } figures[] = {
        {"wharf_queue_messages", "gauge",
         "Messages the mta holds: maildrop (waiting for pickup), deferred (waiting for a retry), "
         "sending (on the wire now).",
         "state", "maildrop", "mta", "maildrop"},
        {"wharf_queue_messages", NULL, NULL, "state", "deferred", "mta", "waiting_outbound"},
        {"wharf_queue_messages", NULL, NULL, "state", "sending", "mta", "sending"},
        {"wharf_mta_outbound_sessions", "gauge", "Open outbound SMTP sessions.", NULL, NULL, "mta",
         "outbound_sessions"},
        {"wharf_auth_logins_total", "counter",
         "Credential checks by the auth process since it started, by verdict (failed includes "
         "rate-limit refusals).",
         "result", "ok", "auth", "logins_ok"},
        {"wharf_auth_logins_total", NULL, NULL, "result", "failed", "auth", "logins_failed"},
        {"wharf_auth_logins_total", NULL, NULL, "result", "tempfail", "auth", "logins_tempfail"},
        {"wharf_auth_bans", "gauge", "Client addresses banned now for failed logins.", NULL, NULL,
         "auth", "bans"},
        {"wharf_queue_oldest_age_seconds", "gauge",
         "Age of the oldest message the mta holds (in delivery or deferred); 0 when none.", NULL,
         NULL, "mta", "oldest_age"},
        {"wharf_messages_received_total", "counter",
         "Messages the smtp workers accepted into the queue (250 after DATA/BDAT) since they "
         "started.",
         NULL, NULL, "smtp", "queued"},
        {"wharf_deliveries_total", "counter",
         "Delivery verdicts per recipient since the mta started, as its status= log lines: "
         "delivered (sent), deferred, bounced.",
         "result", "delivered", "mta", "delivered"},
        {"wharf_deliveries_total", NULL, NULL, "result", "deferred", "mta", "deferred"},
        {"wharf_deliveries_total", NULL, NULL, "result", "bounced", "mta", "bounced"},
        {"wharf_routing_peers", "gauge",
         "Servers of the organization this routing process has an authenticated peering with "
         "(on 691 or over SMTP).",
         NULL, NULL, "routing", "peers_full"},
        {"wharf_routing_peers_smtp", "gauge",
         "Of these peerings, those carried over the bridgeheads' SMTP sessions "
         "(X-WHARF-LINKSTATE, ls_transport = smtp).",
         NULL, NULL, "routing", "peers_smtp"},
        {"wharf_routing_config_serial", "gauge",
         "Serial of the organization configuration this server holds (equal everywhere once "
         "replicated).",
         NULL, NULL, "routing", "config_serial"},
        {"wharf_routing_master", "gauge",
         "1 while this server is the master of its routing group (originates its record).", NULL,
         NULL, "routing", "master"},
        {"wharf_routing_routes", "gauge",
         "Destinations (groups, address spaces) in this server's routing table, by state.", "state",
         "reachable", "routing", "routes_reachable"},
        {"wharf_routing_routes", NULL, NULL, "state", "unreachable", "routing",
         "routes_unreachable"},
        {"wharf_routing_changes_total", "counter",
         "Changes logged by the routing process since it started: a route, a connector's "
         "published state (on a master), the group's master.",
         "what", "route", "routing", "route_changes"},
        {"wharf_routing_changes_total", NULL, NULL, "what", "connector", "routing",
         "connector_changes"},
        {"wharf_routing_changes_total", NULL, NULL, "what", "master", "routing", "master_changes"},
    };
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        if (figures[i].type != NULL)
            family(out, figures[i].name, figures[i].type, figures[i].help);
        buf_append_cstr(out, figures[i].name);
        if (figures[i].label != NULL)
            buf_printf(out, "{%s=\"%s\"}", figures[i].label, figures[i].value);
        buf_printf(out, " %lld\n",
                   (long long)sum_status(status, figures[i].component, figures[i].key));
    }
    latency_histogram(out, status);
}

static void metrics_gone(void *arg)
{
    struct metrics_wait *w = arg;
    control_status_all_cancel(net_worker_control(w->srv->worker), w->handle);
    free(w);
}

/* The store's own counters (store_totals: one row per account, no scan). */
static void store_figures(struct store *st, struct buf *out)
{
    struct store_totals t;
    struct buf err = BUF_INIT;
    if (st == NULL || store_totals(st, &t, &err) != 0) {
        buf_free(&err);
        return; /* left out rather than shown as 0 */
    }
    buf_free(&err);
    family(out, "wharf_store_accounts", "gauge", "Accounts (and the public folders) in the store.");
    buf_printf(out, "wharf_store_accounts %llu\n", (unsigned long long)t.accounts);
    family(out, "wharf_store_messages", "gauge",
           "Messages in the store's mailboxes (each copy counts, as in quotas).");
    buf_printf(out, "wharf_store_messages %llu\n", (unsigned long long)t.messages);
    family(out, "wharf_store_bytes", "gauge",
           "Bytes of those messages (each copy counts, as in quotas; bodies are stored once).");
    buf_printf(out, "wharf_store_bytes %llu\n", (unsigned long long)t.bytes);
}

static void metrics_done(void *arg, json_t *status)
{
    struct metrics_wait *w = arg;
    struct http_response *res = w->res;
    struct store *st = w->srv->store;
    free(w);
    if (status == NULL) {
        http_response_text(res, 503, "wharfd did not answer");
    } else {
        http_response_content_type(res, "text/plain; version=0.0.4; charset=utf-8");
        http_response_header(res, "Cache-Control", "no-store");
        http_metrics_render(status, http_response_body(res));
        store_figures(st, http_response_body(res));
    }
    http_response_finish(res);
}

static void metrics(struct http_request *req, struct http_response *res, void *arg)
{
    struct http_server *srv = arg;
    const struct strlist *nets = &srv->cfg->http_metrics_networks;
    if (!net_addr_in_networks(http_request_remote_addr(req), (const char *const *)nets->v,
                              nets->n)) {
        http_response_text(res, 403, "Forbidden (http_metrics_networks)");
        return;
    }
    struct metrics_wait *w = xcalloc(1, sizeof(*w));
    w->srv = srv;
    w->res = res;
    http_response_defer(res);
    http_response_on_close(res, metrics_gone, w);
    w->handle = control_status_all(net_worker_control(srv->worker), metrics_done, w);
}

void http_metrics_init(struct http_server *srv)
{
    http_route_add("GET", "/metrics", 0, metrics, srv);
}
