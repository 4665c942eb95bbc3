/*
 * cmd_accounts.c - wharf domain | user | alias: the accounts in the directory.
 *
 *   wharf domain add|del DOMAIN          wharf domain list [--json]
 *   wharf user add USER@DOMAIN [--password-stdin] [--quota SIZE] [--quota-messages N]
 *   wharf user list [DOMAIN] [--json]    wharf user del USER@DOMAIN
 *   wharf user passwd USER@DOMAIN        (stdin when it is not a terminal)
 *   wharf user quota USER@DOMAIN SIZE [MESSAGES]
 *   wharf user home USER@DOMAIN SERVER|-   (the mailbox's home server; -: this one)
 *   wharf user import-hash USER@DOMAIN HASH   ($y$, $6$, $2b$ from another system)
 *   wharf alias add ADDRESS TARGET...    (ADDRESS @domain: catch-all)
 *   wharf alias list [DOMAIN] [--json]   wharf alias del ADDRESS [TARGET...]
 *
 * Works on the directory database directly (wharfd need not run). As root it
 * prepares DATA, opens directory.db and the credential database (the auth
 * user's, DATA/auth/credentials.db) and then drops to the wharf user; the
 * files are created with their owners, so no root-owned file appears there. A password never comes
 * from the command line (it would show in ps and shell history) and is never printed.
 */
#include "auth/password.h"
#include "base/alloc.h"
#include "base/component.h"
#include "base/datadir.h"
#include "cli/cli.h"
#include "directory/directory.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

static int exit_code(enum directory_status s)
{
    switch (s) {
    case DIRECTORY_OK:
        return EX_OK;
    case DIRECTORY_ERR_INVALID:
    case DIRECTORY_ERR_IN_USE:
        return EX_DATAERR;
    case DIRECTORY_ERR_EXISTS:
        return EX_CANTCREAT;
    case DIRECTORY_ERR_NOT_FOUND:
        return EX_NOUSER;
    case DIRECTORY_ERR_UNKNOWN_DOMAIN:
        return EX_NOHOST;
    case DIRECTORY_ERR_DB:
        return EX_IOERR;
    }
    return EX_SOFTWARE;
}

static int report(enum directory_status s, struct buf *err)
{
    if (s != DIRECTORY_OK)
        fprintf(stderr, "wharf: %s\n", buf_cstr(err));
    buf_free(err);
    return exit_code(s);
}

int cli_directory_report(int status, struct buf *err)
{
    return report((enum directory_status)status, err);
}

struct directory *cli_directory_open(struct cli_ctx *ctx)
{
    struct buf err = BUF_INIT;
    if (datadir_prepare(ctx->cfg, &err) != 0) {
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
        buf_free(&err);
        return NULL;
    }
    umask(077); /* the credential database holds password hashes */
    /* Both databases are opened before privileges drop: the credentials
     * belong to the auth user, and the wharf user cannot open them. */
    struct directory *d = directory_open(ctx->cfg, &err);
    if (d != NULL && directory_attach_credentials(d, &err) != 0) {
        directory_close(d);
        d = NULL;
    }
    component_drop_privileges(ctx->cfg);
    if (d == NULL)
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
    buf_free(&err);
    return d;
}

static int usage(const char *text)
{
    fprintf(stderr, "usage: %s\n", text);
    return EX_USAGE;
}

/* Looks for a flag among args; removes it. */
static bool take_flag(int *argc, char **argv, const char *flag)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            memmove(argv + i, argv + i + 1, (size_t)(*argc - i - 1) * sizeof(char *));
            (*argc)--;
            return true;
        }
    }
    return false;
}

/* Looks for "flag VALUE" among args; removes both. NULL if absent, "" if no value. */
static const char *take_option(int *argc, char **argv, const char *flag)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            const char *v = i + 1 < *argc ? argv[i + 1] : "";
            int n = i + 1 < *argc ? 2 : 1;
            memmove(argv + i, argv + i + n, (size_t)(*argc - i - n) * sizeof(char *));
            *argc -= n;
            return v;
        }
    }
    return NULL;
}

static void wipe(struct buf *b)
{
    if (b->cap)
        explicit_bzero(b->data, b->cap);
    buf_free(b);
}

/* Reads one line (without its newline) from fd 0; -1 when too long or on EOF. */
static int read_line(struct buf *out)
{
    buf_reset(out);
    char c;
    ssize_t n;
    while ((n = read(0, &c, 1)) == 1 && c != '\n') {
        if (out->len > PASSWORD_MAX_LENGTH)
            return -1;
        buf_append_byte(out, c);
    }
    if (n < 0 || (n == 0 && out->len == 0))
        return -1;
    if (out->len && out->data[out->len - 1] == '\r')
        out->data[--out->len] = '\0';
    return out->len > PASSWORD_MAX_LENGTH ? -1 : 0;
}

static int prompt(const char *text, struct buf *out)
{
    struct termios old, quiet;
    bool tty = tcgetattr(0, &old) == 0;
    if (tty) { /* echo off before the prompt shows: nothing typed after it is echoed */
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &quiet);
    }
    fputs(text, stderr);
    fflush(stderr);
    int r = read_line(out);
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    return r;
}

/* The new password: a line on stdin, or asked twice on the terminal. */
static int read_password(bool from_stdin, struct buf *pw)
{
    if (from_stdin || !isatty(0)) {
        if (read_line(pw) != 0) {
            fprintf(stderr, "wharf: no password on stdin, or longer than %d bytes\n",
                    PASSWORD_MAX_LENGTH);
            return EX_DATAERR;
        }
    } else {
        struct buf again = BUF_INIT;
        int r = prompt("New password: ", pw) == 0 && prompt("Retype new password: ", &again) == 0
                    ? 0
                    : -1;
        bool same = r == 0 && pw->len == again.len && memcmp(pw->data, again.data, pw->len) == 0;
        wipe(&again);
        if (!same) {
            fprintf(stderr, "wharf: the passwords do not match\n");
            return EX_DATAERR;
        }
    }
    if (pw->len == 0) {
        fprintf(stderr, "wharf: empty password refused\n");
        return EX_DATAERR;
    }
    if (memchr(pw->data, '\0', pw->len) != NULL) {
        fprintf(stderr, "wharf: a password must not contain NUL bytes\n");
        return EX_DATAERR;
    }
    return EX_OK;
}

static int hash_password(bool from_stdin, struct buf *hash)
{
    struct buf pw = BUF_INIT, err = BUF_INIT;
    int rc = read_password(from_stdin, &pw);
    if (rc == EX_OK && password_hash(pw.data, hash, &err) != 0) {
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
        rc = EX_SOFTWARE;
    }
    wipe(&pw);
    buf_free(&err);
    return rc;
}

/* "0" and "unlimited" mean no limit. */
static bool parse_quota_size(const char *s, uint64_t *out)
{
    if (strcmp(s, "unlimited") == 0 || strcmp(s, "none") == 0) {
        *out = 0;
        return true;
    }
    return config_parse_size(s, out);
}

static bool parse_count(const char *s, uint64_t *out)
{
    if (strcmp(s, "unlimited") == 0 || strcmp(s, "none") == 0) {
        *out = 0;
        return true;
    }
    long long v;
    if (!config_parse_int(s, &v) || v < 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

static void format_size(uint64_t v, struct buf *out)
{
    static const char units[] = "kMGT";
    if (v == 0) {
        buf_append_cstr(out, "unlimited");
        return;
    }
    int u = -1;
    while (u < 3 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    buf_printf(out, "%llu%s", (unsigned long long)v, u >= 0 ? (char[]){units[u], 0} : "");
}

/* ---- wharf domain ---- */

struct list_out {
    json_t *json; /* array, or NULL for text */
    struct cli_ctx *ctx;
    size_t n;
    const char *source; /* where the entries come from: the driver's name (sqlite, ldap) */
};

static void print_domain(void *arg, const char *domain)
{
    struct list_out *o = arg;
    if (o->json)
        json_array_append_new(o->json,
                              json_pack("{s:s, s:s}", "domain", domain, "source", "directory"));
    else
        printf("%s\n", domain);
    o->n++;
}

static int finish_json(struct list_out *o)
{
    if (o->json) {
        char *s = json_dumps(o->json, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(o->json);
    }
    return EX_OK;
}

int cmd_domain(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *u = "wharf domain add|del DOMAIN | wharf domain list [--json]";
    if (argc < 2)
        return usage(u);
    bool json = take_flag(&argc, argv, "--json");
    const char *sub = argv[1];
    bool list = strcmp(sub, "list") == 0;
    if ((list && argc != 2) || (!list && argc != 3))
        return usage(u);
    if (!list && strcmp(sub, "add") != 0 && strcmp(sub, "del") != 0)
        return usage(u);
    struct directory *d = cli_directory_open(ctx);
    if (d == NULL)
        return EX_IOERR;
    struct buf err = BUF_INIT;
    enum directory_status s;
    if (strcmp(sub, "add") == 0)
        s = directory_domain_add(d, argv[2], &err);
    else if (strcmp(sub, "del") == 0)
        s = directory_domain_del(d, argv[2], &err);
    else {
        struct list_out o = {.json = json ? json_array() : NULL};
        s = directory_domain_list(d, print_domain, &o, &err);
        for (size_t i = 0; s == DIRECTORY_OK && i < ctx->cfg->mydomains.n; i++) {
            const char *m = ctx->cfg->mydomains.v[i];
            if (o.json)
                json_array_append_new(o.json,
                                      json_pack("{s:s, s:s}", "domain", m, "source", "mydomains"));
            else
                printf("%s (mydomains)\n", m);
        }
        if (s == DIRECTORY_OK)
            finish_json(&o);
        else
            json_decref(o.json);
    }
    directory_close(d);
    return report(s, &err);
}

/* ---- wharf user ---- */

static void print_account(void *arg, const struct directory_account *a)
{
    struct list_out *o = arg;
    if (o->json) {
        json_array_append_new(o->json,
                              json_pack("{s:s, s:I, s:I, s:b, s:s, s:s}", "account", a->name,
                                        "quota_bytes", (json_int_t)a->quota_bytes, "quota_messages",
                                        (json_int_t)a->quota_messages, "password", a->has_password,
                                        "source", o->source, "home", a->home ? a->home : ""));
        return;
    }
    struct buf q = BUF_INIT, m = BUF_INIT;
    format_size(a->quota_bytes, &q);
    if (a->quota_messages)
        buf_printf(&m, "%llu", (unsigned long long)a->quota_messages);
    else
        buf_append_cstr(&m, "unlimited");
    if (o->n == 0)
        printf("%-40s %-10s %-10s %-7s %s\n", "ACCOUNT", "QUOTA", "MESSAGES", "SOURCE", "HOME");
    printf("%-40s %-10s %-10s %-7s %s\n", a->name, q.data, m.data, o->source,
           a->home && a->home[0] ? a->home : "-");
    buf_free(&m);
    buf_free(&q);
    o->n++;
}

static int user_add(struct directory *d, int argc, char **argv)
{
    bool from_stdin = take_flag(&argc, argv, "--password-stdin");
    const char *quota = take_option(&argc, argv, "--quota");
    const char *qmsg = take_option(&argc, argv, "--quota-messages");
    uint64_t qb = 0, qm = 0;
    if (argc != 3 || argv[2][0] == '-')
        return usage("wharf user add USER@DOMAIN [--password-stdin] [--quota SIZE] "
                     "[--quota-messages N]");
    if ((quota && !parse_quota_size(quota, &qb)) || (qmsg && !parse_count(qmsg, &qm))) {
        fprintf(stderr, "wharf: bad quota (a size such as 500M or 1G, a count, or unlimited)\n");
        return EX_USAGE;
    }
    /* Check the name before asking for a password. */
    char *norm = directory_normalize_address(argv[2], false);
    if (norm == NULL) {
        fprintf(stderr, "wharf: '%s' is not a valid address (local@domain)\n", argv[2]);
        return EX_DATAERR;
    }
    if (!directory_is_local_domain(d, strrchr(norm, '@') + 1)) {
        const char *domain = strrchr(norm, '@') + 1;
        fprintf(stderr, "wharf: unknown domain %s (add it with: wharf domain add %s)\n", domain,
                domain);
        free(norm);
        return EX_NOHOST;
    }
    struct buf hash = BUF_INIT, err = BUF_INIT;
    int rc = hash_password(from_stdin, &hash);
    if (rc == EX_OK) {
        rc = report(directory_account_add(d, norm, hash.data, qb, qm, &err), &err);
        if (rc == EX_OK)
            printf("added %s\n", norm);
    }
    free(norm);
    wipe(&hash);
    buf_free(&err);
    return rc;
}

static int user_cmd(struct directory *d, struct cli_ctx *ctx, int argc, char **argv)
{
    const char *sub = argv[1];
    struct buf err = BUF_INIT;
    if (strcmp(sub, "add") == 0)
        return user_add(d, argc, argv);
    if (strcmp(sub, "list") == 0) {
        bool json = take_flag(&argc, argv, "--json");
        if (argc > 3)
            return usage("wharf user list [DOMAIN] [--json]");
        struct list_out o = {.json = json ? json_array() : NULL,
                             .source = directory_driver_name(d)};
        enum directory_status s =
            directory_account_list(d, argc == 3 ? argv[2] : NULL, print_account, &o, &err);
        if (s == DIRECTORY_OK)
            finish_json(&o);
        else
            json_decref(o.json);
        return report(s, &err);
    }
    if (strcmp(sub, "del") == 0) {
        if (argc != 3)
            return usage("wharf user del USER@DOMAIN");
        return report(directory_account_del(d, argv[2], &err), &err);
    }
    if (strcmp(sub, "passwd") == 0) {
        bool from_stdin = take_flag(&argc, argv, "--password-stdin");
        if (argc != 3)
            return usage("wharf user passwd USER@DOMAIN [--password-stdin]");
        uint64_t b, m;
        char *norm = directory_normalize_address(argv[2], false);
        bool exists = norm != NULL && directory_quota(d, norm, &b, &m) == 0;
        free(norm);
        if (!exists) {
            fprintf(stderr, "wharf: no such account: %s\n", argv[2]);
            return EX_NOUSER;
        }
        struct buf hash = BUF_INIT;
        int rc = hash_password(from_stdin, &hash);
        if (rc == EX_OK)
            rc = report(directory_account_set_hash(d, argv[2], hash.data, &err), &err);
        wipe(&hash);
        buf_free(&err);
        return rc;
    }
    if (strcmp(sub, "quota") == 0) {
        uint64_t qb, qm = 0;
        if (argc != 4 && argc != 5)
            return usage("wharf user quota USER@DOMAIN SIZE [MESSAGES]");
        if (!parse_quota_size(argv[3], &qb) || (argc == 5 && !parse_count(argv[4], &qm))) {
            fprintf(stderr, "wharf: bad quota (a size such as 500M or 1G, a count, or "
                            "unlimited)\n");
            return EX_USAGE;
        }
        if (argc == 4) { /* keep the message limit */
            uint64_t old_b;
            char *norm = directory_normalize_address(argv[2], false);
            if (norm)
                directory_quota(d, norm, &old_b, &qm);
            free(norm);
        }
        return report(directory_account_set_quota(d, argv[2], qb, qm, &err), &err);
    }
    if (strcmp(sub, "home") == 0) {
        if (argc != 4)
            return usage("wharf user home USER@DOMAIN SERVER|-");
        const char *home = strcmp(argv[3], "-") == 0 ? "" : argv[3];
        return report(directory_account_set_home(d, argv[2], home, &err), &err);
    }
    if (strcmp(sub, "import-hash") == 0) {
        if (argc != 4)
            return usage("wharf user import-hash USER@DOMAIN HASH");
        if (!password_hash_supported(argv[3])) {
            fprintf(stderr, "wharf: unsupported or malformed hash (need a complete $y$, $6$ "
                            "or $2b$ crypt string)\n");
            return EX_DATAERR;
        }
        return report(directory_account_set_hash(d, argv[2], argv[3], &err), &err);
    }
    (void)ctx;
    return usage("wharf user add|list|del|passwd|quota|home|import-hash ...");
}

int cmd_user(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2)
        return usage("wharf user add|list|del|passwd|quota|import-hash ...");
    struct directory *d = cli_directory_open(ctx);
    if (d == NULL)
        return EX_IOERR;
    int rc = user_cmd(d, ctx, argc, argv);
    directory_close(d);
    return rc;
}

/* ---- wharf alias ---- */

struct alias_out {
    json_t *json; /* object address -> [targets] */
    char *last;
};

static void print_alias(void *arg, const char *address, const char *target)
{
    struct alias_out *o = arg;
    if (o->json) {
        json_t *a = json_object_get(o->json, address);
        if (a == NULL) {
            a = json_array();
            json_object_set_new(o->json, address, a);
        }
        json_array_append_new(a, json_string(target));
        return;
    }
    if (o->last && strcmp(o->last, address) == 0) {
        printf(", %s", target);
        return;
    }
    printf("%s%s -> %s", o->last ? "\n" : "", address, target);
    free(o->last);
    o->last = xstrdup(address);
}

int cmd_alias(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *u = "wharf alias add ADDRESS TARGET... | del ADDRESS [TARGET...] | "
                    "list [DOMAIN] [--json]";
    if (argc < 2)
        return usage(u);
    bool json = take_flag(&argc, argv, "--json");
    const char *sub = argv[1];
    bool add = strcmp(sub, "add") == 0, del = strcmp(sub, "del") == 0,
         list = strcmp(sub, "list") == 0;
    if ((add && argc < 4) || (del && argc < 3) || (list && argc > 3) || !(add || del || list))
        return usage(u);
    struct directory *d = cli_directory_open(ctx);
    if (d == NULL)
        return EX_IOERR;
    struct buf err = BUF_INIT;
    enum directory_status s;
    if (add)
        s = directory_alias_add(d, argv[2], argv + 3, (size_t)argc - 3, &err);
    else if (del)
        s = directory_alias_del(d, argv[2], argv + 3, (size_t)argc - 3, &err);
    else {
        struct alias_out o = {.json = json ? json_object() : NULL};
        s = directory_alias_list(d, argc == 3 ? argv[2] : NULL, print_alias, &o, &err);
        if (o.json) {
            if (s == DIRECTORY_OK) {
                char *txt = json_dumps(o.json, JSON_INDENT(2) | JSON_SORT_KEYS);
                printf("%s\n", txt);
                free(txt);
            }
            json_decref(o.json);
        } else if (o.last) {
            printf("\n");
        }
        free(o.last);
    }
    directory_close(d);
    return report(s, &err);
}
