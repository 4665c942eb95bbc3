/*
 * cmd_auth.c - `wharf auth bans [--json]` and `wharf auth unban ADDRESS`:
 * the auth process's address bans, read and lifted while wharfd runs; and
 * `wharf token add|list|revoke`: app passwords for HTTP Bearer, which only
 * the auth process stores (hashed).
 *
 * Asks the auth process itself over DATA_DIRECTORY/run/auth.sock with one
 * IPC_AUTH_ADMIN_REQUEST frame (JSON) and prints its IPC_AUTH_ADMIN_REPLY:
 * the bans live in that process's memory, nowhere else. The auth process
 * answers such frames only to root or its own user. Must never: send or print
 * anything about passwords (a new token is printed once, then only its id), or
 * guess at a malformed reply.
 */
#include "base/alloc.h"
#include "base/config.h"
#include "cli/cli.h"
#include "ipc/frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

/* A ban list of the largest auth_ratelimit_entries is far below this. */
#define AUTH_ADMIN_MAX_REPLY (64 * 1024 * 1024)

static void usage(void)
{
    fprintf(stderr, "usage: wharf auth bans [--json]\n"
                    "       wharf auth unban ADDRESS\n");
}

/* Sends req, returns the reply object ({"ok": true, ...}) or NULL after printing why. */
static json_t *auth_admin(const struct wharf_config *cfg, json_t *req, int *code_r)
{
    char *path = config_data_path(cfg, "run/auth.sock");
    int fd = ipc_connect(path);
    if (fd < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            fprintf(stderr, "wharf: the auth process is not running (no answer on %s)\n", path);
        else
            fprintf(stderr, "wharf: cannot connect to %s: %s (run as root or the wharf user)\n",
                    path, strerror(errno));
        free(path);
        *code_r = EX_UNAVAILABLE;
        return NULL;
    }
    char *text = json_dumps(req, JSON_COMPACT);
    struct buf reply = BUF_INIT;
    uint16_t type = 0;
    int r = ipc_send(fd, IPC_AUTH_ADMIN_REQUEST, text, strlen(text));
    free(text);
    if (r == 0)
        r = ipc_recv(fd, AUTH_ADMIN_MAX_REPLY, &type, &reply);
    close(fd);
    json_error_t jerr;
    json_t *j =
        r == 0 && type == IPC_AUTH_ADMIN_REPLY ? json_loadb(reply.data, reply.len, 0, &jerr) : NULL;
    buf_free(&reply);
    if (!json_is_object(j)) {
        json_decref(j);
        fprintf(stderr, "wharf: no valid reply from the auth process on %s\n", path);
        free(path);
        *code_r = EX_PROTOCOL;
        return NULL;
    }
    free(path);
    if (!json_is_true(json_object_get(j, "ok"))) {
        const char *e = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "wharf: auth: %s\n", e ? e : "request failed");
        json_decref(j);
        *code_r = EX_DATAERR;
        return NULL;
    }
    return j;
}

static int auth_bans(struct cli_ctx *ctx, bool as_json)
{
    int code = 0;
    json_t *req = json_pack("{s:s}", "cmd", "bans");
    json_t *r = auth_admin(ctx->cfg, req, &code);
    json_decref(req);
    if (r == NULL)
        return code;
    if (as_json) {
        cli_print_json(r);
        json_decref(r);
        return EX_OK;
    }
    json_t *bans = json_object_get(r, "bans");
    printf("%-42s %8s  %-20s %s\n", "ADDRESS", "FAILURES", "SINCE (UTC)", "LIFTED IN");
    size_t i;
    json_t *b;
    json_array_foreach(bans, i, b)
    {
        time_t since = (time_t)json_integer_value(json_object_get(b, "since"));
        struct tm tm;
        char when[32];
        gmtime_r(&since, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        printf("%-42s %8lld  %-20s %llds\n", json_string_value(json_object_get(b, "address")),
               (long long)json_integer_value(json_object_get(b, "failures")), when,
               (long long)json_integer_value(json_object_get(b, "expires_in")));
    }
    printf("%zu banned; an address is banned after %lld failed logins within %llds, for %llds "
           "(mynetworks and exempt_networks never are)\n",
           json_array_size(bans), (long long)json_integer_value(json_object_get(r, "ban_after")),
           (long long)json_integer_value(json_object_get(r, "window")),
           (long long)json_integer_value(json_object_get(r, "ban_time")));
    json_decref(r);
    return EX_OK;
}

static int auth_unban(struct cli_ctx *ctx, const char *addr)
{
    int code = 0;
    json_t *req = json_pack("{s:s, s:s}", "cmd", "unban", "address", addr);
    json_t *r = auth_admin(ctx->cfg, req, &code);
    json_decref(req);
    if (r == NULL)
        return code;
    const char *key = json_string_value(json_object_get(r, "address"));
    if (json_is_true(json_object_get(r, "was_banned")))
        printf("%s: ban lifted\n", key ? key : addr);
    else
        printf("%s: was not banned (its failure count is reset)\n", key ? key : addr);
    json_decref(r);
    return EX_OK;
}

int cmd_auth(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "bans") == 0)
        return auth_bans(ctx, false);
    if (argc == 3 && strcmp(argv[1], "bans") == 0 && strcmp(argv[2], "--json") == 0)
        return auth_bans(ctx, true);
    if (argc == 3 && strcmp(argv[1], "unban") == 0)
        return auth_unban(ctx, argv[2]);
    usage();
    return EX_USAGE;
}

/* ---- wharf token: app passwords for HTTP Bearer (auth/auth_tokens.h) ---- */

static void token_usage(void)
{
    fprintf(stderr, "usage: wharf token add USER [--scope admin]\n"
                    "       wharf token list [USER] [--json]\n"
                    "       wharf token revoke ID\n"
                    "       wharf token age ID SECONDS   (test_hooks only: ID made older)\n");
}

static int token_request(struct cli_ctx *ctx, json_t *req, json_t **reply_r)
{
    int code = 0;
    *reply_r = auth_admin(ctx->cfg, req, &code);
    json_decref(req);
    return *reply_r ? EX_OK : code;
}

int cmd_token(struct cli_ctx *ctx, int argc, char **argv)
{
    json_t *r = NULL;
    int code;
    bool scoped = argc == 5 && strcmp(argv[3], "--scope") == 0;
    if ((argc == 3 || scoped) && strcmp(argv[1], "add") == 0) {
        /* the auth process refuses any scope but "admin" */
        code = token_request(ctx,
                             json_pack("{s:s, s:s, s:s?}", "cmd", "token-add", "user", argv[2],
                                       "scope", scoped ? argv[4] : NULL),
                             &r);
        if (r == NULL)
            return code;
        /* The secret is shown this once: only its hash is kept. */
        printf("%s\n", json_string_value(json_object_get(r, "token")));
        fprintf(stderr,
                "token %s for %s: use it as \"Authorization: Bearer TOKEN\"; it is not "
                "shown again (revoke with: wharf token revoke %s)\n",
                json_string_value(json_object_get(r, "id")),
                json_string_value(json_object_get(r, "account")),
                json_string_value(json_object_get(r, "id")));
    } else if (argc >= 2 && argc <= 4 && strcmp(argv[1], "list") == 0) {
        bool as_json = strcmp(argv[argc - 1], "--json") == 0;
        const char *user = argc - as_json == 3 ? argv[2] : NULL;
        if (argc - as_json > 3 || (user && strcmp(user, "--json") == 0)) {
            token_usage();
            return EX_USAGE;
        }
        json_t *req = json_pack("{s:s}", "cmd", "token-list");
        if (user)
            json_object_set_new(req, "user", json_string(user));
        code = token_request(ctx, req, &r);
        if (r == NULL)
            return code;
        if (as_json) {
            cli_print_json(json_object_get(r, "tokens"));
        } else {
            printf("%-16s  %-20s  %s\n", "ID", "CREATED (UTC)", "ACCOUNT");
            size_t i;
            json_t *t;
            json_array_foreach(json_object_get(r, "tokens"), i, t)
            {
                time_t when = (time_t)json_integer_value(json_object_get(t, "created"));
                struct tm tm;
                char s[32];
                gmtime_r(&when, &tm);
                strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
                printf("%-16s  %-20s  %s\n", json_string_value(json_object_get(t, "id")), s,
                       json_string_value(json_object_get(t, "account")));
            }
        }
    } else if (argc == 3 && strcmp(argv[1], "revoke") == 0) {
        code =
            token_request(ctx, json_pack("{s:s, s:s}", "cmd", "token-revoke", "id", argv[2]), &r);
        if (r == NULL)
            return code;
        printf("token %s revoked\n", argv[2]);
    } else if (argc == 4 && strcmp(argv[1], "age") == 0) {
        /* the test suite's: the auth process refuses it without test_hooks */
        code = token_request(ctx,
                             json_pack("{s:s, s:s, s:I}", "cmd", "token-age", "id", argv[2],
                                       "seconds", (json_int_t)atoll(argv[3])),
                             &r);
        if (r == NULL)
            return code;
        printf("token %s made %s seconds older\n", argv[2], argv[3]);
    } else {
        token_usage();
        return EX_USAGE;
    }
    json_decref(r);
    return EX_OK;
}
