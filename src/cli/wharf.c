/*
 * wharf.c - the admin command: dispatches `wharf [-c FILE] [-o k=v] CMD ...`.
 *
 * Invoked as `sendmail` or `mailq` (a link or copy of this program), it
 * behaves as those commands do for cron and scripts.
 */
#include "base/alloc.h"
#include "base/log.h"
#include "cli/cli.h"
#include "ipc/control.h"
#include "ipc/frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *help;
} commands[] = {
    {"ports", cmd_ports, "which component uses which port and why [--json|--nft|--check]"},
    {"status", cmd_status, "components, pids, uptime, restarts, connections [--json]"},
    {"config", cmd_config,
     "dump [--all] | doc | man | example: effective configuration, reference"},
    {"reload", cmd_reload, "reread the configuration and certificates (like SIGHUP)"},
    {"domain", cmd_domain, "add|list|del DOMAIN: local domains"},
    {"user", cmd_user, "add|list|del|passwd|quota USER: accounts"},
    {"alias", cmd_alias, "add|list|del ADDRESS TARGET...: aliases and catch-alls"},
    {"mailbox", cmd_mailbox, "list|stats USER: a user's folders"},
    {"public", cmd_public,
     "add|list|del|newsgroups|address NAME: public folders (newsgroups, addresses)"},
    {"acl", cmd_acl, "get|set|del OWNER MAILBOX [IDENTIFIER [RIGHTS]]: access rights (RFC 4314)"},
    {"dkim", cmd_dkim, "keygen|activate|records DOMAIN: DKIM signing keys and their DNS records"},
    {"deliver", cmd_deliver, "USER < MESSAGE: local delivery into INBOX"},
    {"sendmail", cmd_sendmail, "[-t] [-i] [-f FROM] RCPT...: submit a message"},
    {"mailq", cmd_mailq, "list the mail queue [--json]"},
    {"queue", cmd_queue, "[nexthops]|list|show|flush|hold|release|delete|requeue: queue control"},
    {"auth", cmd_auth, "bans [--json] | unban ADDRESS: login bans of client addresses"},
    {"token", cmd_token, "add USER | list [USER] [--json] | revoke ID: app passwords (Bearer)"},
    {"import", cmd_import, "maildir|mbox|imap|passwd-file ...: mail and accounts from elsewhere"},
    {"export", cmd_export, "maildir|mbox USER PATH: a user's mail for Dovecot or mutt"},
    {"backup", cmd_backup, "DIR [--incremental PREV]: a consistent copy while wharfd runs"},
    {"org", cmd_org, "create|join|group|server|connector|show|key: the organization (routing)"},
    {"routes", cmd_routes, "[--json|--explain ADDRESS]: the organization's routes (routing)"},
    {"restore", cmd_restore, "DIR: a backup into a fresh data directory"},
    {"api", cmd_api, "< REQUEST.json: one admin API request, answered in JSON (doc/admin-api.md)"},
};

cli_cmd_fn cli_command(const char *name)
{
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(commands[k].name, name) == 0)
            return commands[k].fn;
    }
    return NULL;
}

int cli_not_built(const char *what)
{
    fprintf(stderr, "wharf: %s: not built yet\n", what);
    return EX_UNAVAILABLE;
}

/* A reply to `status` is a few kilobytes per component; far below this. */
#define CLI_MAX_REPLY (16 * 1024 * 1024)

int cli_request(const struct cli_ctx *ctx, const char *cmd, json_t **reply_r)
{
    int fd = control_connect(ctx->cfg);
    if (fd < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            return 1;
        fprintf(stderr, "wharf: cannot connect to %s: %s\n", ctx->cfg->control_socket,
                strerror(errno));
        return -1;
    }
    json_t *req = json_pack("{s:s}", "cmd", cmd);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct buf reply = BUF_INIT;
    uint16_t type = 0;
    int r = ipc_send(fd, IPC_CTL_REQUEST, text, strlen(text));
    free(text);
    if (r == 0)
        r = ipc_recv(fd, CLI_MAX_REPLY, &type, &reply);
    close(fd);
    json_error_t jerr;
    json_t *j =
        r == 0 && type == IPC_CTL_REPLY ? json_loadb(reply.data, reply.len, 0, &jerr) : NULL;
    buf_free(&reply);
    if (!json_is_object(j)) {
        json_decref(j);
        fprintf(stderr, "wharf: no valid reply from wharfd on %s\n", ctx->cfg->control_socket);
        return -1;
    }
    if (!json_is_true(json_object_get(j, "ok"))) {
        const char *e = json_string_value(json_object_get(j, "error"));
        fprintf(stderr, "wharf: wharfd: %s\n", e ? e : "request failed");
        json_decref(j);
        return -1;
    }
    *reply_r = j;
    return 0;
}

void cli_print_json(json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(text);
    free(text);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: wharf [-c FILE] [-o name=value] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    log_init("cli", LOG_TO_STDERR);

    struct cli_ctx ctx = {0};
    int i = 0; /* sendmail and mailq: the subcommand sees the whole argv */
    const char *cmd = base;
    if (strcmp(base, "sendmail") == 0 || strcmp(base, "mailq") == 0)
        cli_args_parse(&ctx.args, 0, argv, 0);
    else {
        i = cli_args_parse(&ctx.args, argc, argv, 1);
        bool help = i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0);
        if (help || i >= argc || argv[i][0] == '-') {
            usage(help ? stdout : stderr);
            free(ctx.args.assignments);
            return help ? 0 : EX_USAGE;
        }
        cmd = argv[i];
    }
    ctx.cfg = xcalloc(1, sizeof(*ctx.cfg));
    if (cli_args_config(&ctx.args, ctx.cfg) != 0) {
        config_free(ctx.cfg);
        free(ctx.cfg);
        free(ctx.args.assignments);
        return EX_CONFIG;
    }
    cli_cmd_fn fn = cli_command(cmd);
    int rc = fn ? fn(&ctx, argc - i, argv + i) : -1;
    if (rc < 0) {
        fprintf(stderr, "wharf: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = EX_USAGE;
    }
    config_free(ctx.cfg);
    free(ctx.cfg);
    free(ctx.args.assignments);
    return rc;
}
