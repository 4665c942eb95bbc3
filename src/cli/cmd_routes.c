/*
 * cmd_routes.c - `wharf routes`: what the routing process (routing/routing_main.c)
 * knows: groups and their masters, connectors with state and since when, the
 * route to each destination, the peers; read from DATA/routing/state.json,
 * which the routing process rewrites on every change.
 *
 *   wharf routes [--json]
 *   wharf routes --explain ADDRESS   which connector mail to ADDRESS takes, and why not the others
 *
 * Reads only; never talks to the peers.
 */
#include "base/component.h"
#include "base/datadir.h"
#include "cli/cli.h"
#include "routing/org.h"
#include "routing/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

static void when(json_int_t ms, char *out, size_t len)
{
    if (ms <= 0) {
        snprintf(out, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%H:%M:%SZ", &tm);
}

static const char *str(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "-";
}

static void print_table(const json_t *st)
{
    printf("org %s  digest %.12s  config %lld  this %s (%s)%s\n", str(st, "org"), str(st, "digest"),
           (long long)json_integer_value(json_object_get(st, "config_serial")), str(st, "self"),
           str(st, "group"),
           json_is_true(json_object_get(st, "stale")) ? "  STALE (not synced yet)" : "");
    size_t i;
    json_t *o;
    printf("%-16s %-12s %-5s %-6s %s\n", "GROUP", "MASTER", "TERM", "SEQ", "MEMBERS UP");
    json_array_foreach(json_object_get(st, "groups"), i, o)
    {
        char *m = json_dumps(json_object_get(o, "members"), JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%-16s %-12s %-5lld %-6lld %s\n", str(o, "name"), str(o, "master"),
               (long long)json_integer_value(json_object_get(o, "term")),
               (long long)json_integer_value(json_object_get(o, "seq")), m ? m : "-");
        free(m);
    }
    printf("%-12s %-28s %-5s %-10s %s\n", "CONNECTOR", "FROM>TO", "COST", "STATE", "SINCE");
    json_array_foreach(json_object_get(st, "connectors"), i, o)
    {
        char fromto[128], since[32];
        snprintf(fromto, sizeof(fromto), "%s>%s", str(o, "from"),
                 json_object_get(o, "to") ? str(o, "to") : str(o, "space"));
        when(json_integer_value(json_object_get(o, "since")), since, sizeof(since));
        const json_t *held = json_object_get(o, "held_until");
        char until[32] = "";
        if (held)
            when(json_integer_value(held), until, sizeof(until));
        printf("%-12s %-28s %-5lld %-10s %s%s%s\n", str(o, "name"), fromto,
               (long long)json_integer_value(json_object_get(o, "cost")), str(o, "state"), since,
               held ? "  up again, held until " : "", until);
    }
    printf("%-24s %-5s %-22s %s\n", "DEST", "COST", "NEXT HOP", "PATH");
    json_array_foreach(json_object_get(st, "routes"), i, o)
    {
        if (!json_is_true(json_object_get(o, "reachable"))) {
            printf("%-24s %-5s %-22s %s\n", str(o, "dest"), "-", "-", "unreachable");
            continue;
        }
        char *p = json_dumps(json_object_get(o, "path"), JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%-24s %-5lld %-22s %s\n", str(o, "dest"),
               (long long)json_integer_value(json_object_get(o, "cost")), str(o, "next_hop"),
               p ? p : "[]");
        free(p);
    }
    printf("%-12s %-22s %-9s %-9s %s\n", "PEER", "ADDR", "DIRECTION", "TRANSPORT", "FULL SINCE");
    json_array_foreach(json_object_get(st, "peers"), i, o)
    {
        char since[32];
        when(json_integer_value(json_object_get(o, "since")), since, sizeof(since));
        printf("%-12s %-22s %-9s %-9s %s\n", str(o, "name"), str(o, "addr"), str(o, "direction"),
               str(o, "transport"), since);
    }
}

int cmd_routes(struct cli_ctx *ctx, int argc, char **argv)
{
    bool as_json = argc == 2 && strcmp(argv[1], "--json") == 0;
    const char *explain = argc == 3 && strcmp(argv[1], "--explain") == 0 ? argv[2] : NULL;
    if (argc > 1 && !as_json && !explain) {
        fprintf(stderr, "usage: wharf routes [--json | --explain ADDRESS]\n");
        return EX_USAGE;
    }
    int rc = cli_as_wharf_user(ctx);
    if (rc != 0)
        return rc;
    struct buf err = BUF_INIT;
    char *path = org_path(ctx->cfg, "state.json");
    json_error_t jerr;
    json_t *st = json_load_file(path, 0, &jerr);
    free(path);
    if (st == NULL) {
        fprintf(stderr, "wharf: no routing state yet (is this server in an organization, and "
                        "the routing process running?)\n");
        buf_free(&err);
        return EX_UNAVAILABLE;
    }
    if (as_json) {
        cli_print_json(st);
    } else if (explain) {
        unsigned char key[ORG_KEY_LEN];
        struct org_config oc = {0};
        if (org_key_load(ctx->cfg, key, &err))
            org_config_load(ctx->cfg, key, &oc, &err);
        struct buf out = BUF_INIT;
        route_explain(oc.cfg, json_object_get(st, "records"), str(st, "self"), explain, &out);
        fputs(buf_cstr(&out), stdout);
        buf_free(&out);
        org_config_free(&oc);
    } else {
        print_table(st);
    }
    json_decref(st);
    buf_free(&err);
    return rc;
}
