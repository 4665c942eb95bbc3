/*
 * cli.h - the wharf command: what every subcommand receives.
 */
#ifndef WHARF_CLI_CLI_H
#define WHARF_CLI_CLI_H

#include "base/config.h"
#include "cli/cli_args.h"

#include <jansson.h>

struct cli_ctx {
    struct cli_args args;     /* -c FILE, -o name=value */
    struct wharf_config *cfg; /* read before the subcommand runs */
};

/* argv[0] is the subcommand's name; return a sysexits code. */
typedef int (*cli_cmd_fn)(struct cli_ctx *ctx, int argc, char **argv);

int cmd_ports(struct cli_ctx *ctx, int argc, char **argv);
int cmd_status(struct cli_ctx *ctx, int argc, char **argv);
int cmd_config(struct cli_ctx *ctx, int argc, char **argv);
int cmd_reload(struct cli_ctx *ctx, int argc, char **argv);
int cmd_domain(struct cli_ctx *ctx, int argc, char **argv);
int cmd_user(struct cli_ctx *ctx, int argc, char **argv);
int cmd_alias(struct cli_ctx *ctx, int argc, char **argv);
int cmd_mailbox(struct cli_ctx *ctx, int argc, char **argv);
int cmd_deliver(struct cli_ctx *ctx, int argc, char **argv);
int cmd_sendmail(struct cli_ctx *ctx, int argc, char **argv);
int cmd_mailq(struct cli_ctx *ctx, int argc, char **argv);
int cmd_queue(struct cli_ctx *ctx, int argc, char **argv);
int cmd_public(struct cli_ctx *ctx, int argc, char **argv);
int cmd_acl(struct cli_ctx *ctx, int argc, char **argv);
int cmd_auth(struct cli_ctx *ctx, int argc, char **argv);
int cmd_token(struct cli_ctx *ctx, int argc, char **argv);
int cmd_import(struct cli_ctx *ctx, int argc, char **argv);
int cmd_export(struct cli_ctx *ctx, int argc, char **argv);
int cmd_backup(struct cli_ctx *ctx, int argc, char **argv);
int cmd_restore(struct cli_ctx *ctx, int argc, char **argv);
int cmd_dkim(struct cli_ctx *ctx, int argc, char **argv);
int cmd_org(struct cli_ctx *ctx, int argc, char **argv);
int cmd_routes(struct cli_ctx *ctx, int argc, char **argv);
int cmd_api(struct cli_ctx *ctx, int argc, char **argv);
/* The subcommand called name, NULL when none (the admin API runs them: cmd_api.c). */
cli_cmd_fn cli_command(const char *name);

/* Prepares DATA, then becomes the wharf user with umask 077 (files the server's own);
 * 0, or a sysexits code after printing why. */
int cli_as_wharf_user(struct cli_ctx *ctx);

struct directory;
/* The directory with its credentials attached, opened as root before
 * privileges drop (cmd_accounts.c); NULL after printing why. */
struct directory *cli_directory_open(struct cli_ctx *ctx);
struct buf;
/* Prints err for a directory_status that is not OK (frees err); its sysexits code. */
int cli_directory_report(int status, struct buf *err);

struct store;
/* The store, opened as the wharf user (cmd_mailbox.c); NULL after printing why. */
struct store *cli_store_open(const struct wharf_config *cfg);
/* The directory's name of an account (#public as is), or NULL with *code_r set (printed). */
char *cli_account_name(const struct wharf_config *cfg, const char *given, int *code_r);

/*
 * Sends {"cmd": cmd} to wharfd over the control socket and waits for the
 * reply. Returns 0 with *reply_r (caller decrefs), 1 when wharfd is not
 * running, or -1 after printing an error.
 */
int cli_request(const struct cli_ctx *ctx, const char *cmd, json_t **reply_r);
/* Prints a JSON value on stdout, indented. */
void cli_print_json(json_t *v);

/* For subcommands whose component is not built yet. */
int cli_not_built(const char *what);

#endif
