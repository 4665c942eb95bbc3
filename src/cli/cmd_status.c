/*
 * cmd_status.c - wharf status [--json] and wharf reload: what wharfd runs now.
 *
 * Only reads wharfd's answer; never guesses a state when wharfd is not
 * running (it says so and exits EX_UNAVAILABLE).
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

static void format_duration(long long s, char *out, size_t len)
{
    if (s >= 86400)
        snprintf(out, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, len, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(out, len, "%llds", s);
}

static void print_status(json_t *st)
{
    char up[32];
    format_duration(json_integer_value(json_object_get(st, "uptime")), up, sizeof(up));
    printf("wharfd pid %lld, up %s", (long long)json_integer_value(json_object_get(st, "pid")), up);
    printf(", configuration generation %lld (%lld reloads)\n\n",
           (long long)json_integer_value(json_object_get(st, "generation")),
           (long long)json_integer_value(json_object_get(st, "reloads")));
    printf("%-10s %-14s %-18s %-8s %-8s %-11s %s\n", "COMPONENT", "STATE", "PIDS", "UPTIME",
           "RESTARTS", "CONNECTIONS", "LAST EXIT");
    json_t *comps = json_object_get(st, "components"), *c;
    size_t i;
    json_array_foreach(comps, i, c)
    {
        const char *state = json_string_value(json_object_get(c, "state"));
        bool runs = strcmp(state, "not built yet") != 0 && strcmp(state, "disabled") != 0;
        printf("%-10s %-14s ", json_string_value(json_object_get(c, "name")), state);
        if (!runs) {
            printf("-\n");
            continue;
        }
        json_t *procs = json_object_get(c, "processes"), *p;
        size_t k;
        char pids[64] = "";
        size_t used = 0;
        json_array_foreach(procs, k, p)
        {
            int n = snprintf(pids + used, sizeof(pids) - used, "%s%lld", k ? "," : "",
                             (long long)json_integer_value(json_object_get(p, "pid")));
            if (n < 0 || (size_t)n >= sizeof(pids) - used)
                break;
            used += (size_t)n;
        }
        char cup[32];
        format_duration(json_integer_value(json_object_get(c, "uptime")), cup, sizeof(cup));
        const char *last = json_string_value(json_object_get(c, "last_exit"));
        printf("%-18s %-8s %-8lld %-11lld %s\n", pids, cup,
               (long long)json_integer_value(json_object_get(c, "restarts")),
               (long long)json_integer_value(json_object_get(c, "connections")), last ? last : "-");
    }
}

int cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else {
            fprintf(stderr, "usage: wharf status [--json]\n");
            return EX_USAGE;
        }
    }
    json_t *st = NULL;
    int r = cli_request(ctx, "status", &st);
    if (r == 1) {
        fprintf(stderr, "wharf: wharfd is not running (no answer on %s)\n",
                ctx->cfg->control_socket);
        return EX_UNAVAILABLE;
    }
    if (r != 0)
        return EX_UNAVAILABLE;
    json_object_del(st, "ports");
    if (as_json)
        cli_print_json(st);
    else
        print_status(st);
    json_decref(st);
    return 0;
}

int cmd_reload(struct cli_ctx *ctx, int argc, char **argv)
{
    json_t *reply = NULL;
    int r = cli_request(ctx, "reload", &reply);
    if (r == 1) {
        fprintf(stderr, "wharf: wharfd is not running (no answer on %s)\n",
                ctx->cfg->control_socket);
        return EX_UNAVAILABLE;
    }
    if (r != 0)
        return EX_CONFIG;
    printf("reloaded: configuration generation %lld\n",
           (long long)json_integer_value(json_object_get(reply, "generation")));
    json_decref(reply);
    return 0;
}
