/*
 * cmd_org.c - `wharf org`: the organization configuration (routing/org.h).
 *
 *   wharf org create NAME --server S --group G --address HOST:PORT [--smtp HOST:PORT]
 *   wharf org join NAME --key HEX --server S --peer HOST:PORT [--peer ...]
 *   wharf org group add G
 *   wharf org server add S --group G --address HOST:PORT [--smtp HOST:PORT]
 *   wharf org connector add C --from G --cost N --source S[,S] (--to G --target S[,S]
 *                                [--ls-transport 691|smtp]
 *                                | --space PATTERN --smarthost HOST:PORT) [--disabled]
 *   wharf org connector enable|disable C
 *   wharf org show [--json]
 *   wharf org key
 *
 * Every change writes a new record (serial + 1, signed with the org key) to
 * DATA/routing/org.json; the running routing process notices it and floods it
 * to the organization (newest serial wins). Runs as the wharf user. Never
 * prints the key except for `create` and `key`, which exist to hand it over.
 */
#include "base/component.h"
#include "base/datadir.h"
#include "base/hex.h"
#include "cli/cli.h"
#include "routing/org.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: wharf org create NAME --server S --group G --address HOST:PORT "
            "[--smtp HOST:PORT]\n"
            "       wharf org join NAME --key HEX --server S --peer HOST:PORT [--peer ...]\n"
            "       wharf org group add G\n"
            "       wharf org server add S --group G --address HOST:PORT [--smtp HOST:PORT]\n"
            "       wharf org connector add C --from G --cost N --source S[,S]\n"
            "             (--to G --target S[,S] [--ls-transport 691|smtp]\n"
            "              | --space PATTERN --smarthost HOST:PORT) [--disabled]\n"
            "       wharf org connector enable|disable C\n"
            "       wharf org show [--json]\n"
            "       wharf org key\n");
    return EX_USAGE;
}

/* --name value pairs after argv[first]; flags without values are listed in flags. */
struct opts {
    const char *v[16][2];
    size_t n;
};

static bool opts_parse(int argc, char **argv, int first, const char *flags, struct opts *o)
{
    o->n = 0;
    for (int i = first; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || o->n == 16)
            return false;
        bool flag = strstr(flags, argv[i] + 2) != NULL;
        if (!flag && i + 1 >= argc)
            return false;
        o->v[o->n][0] = argv[i] + 2;
        o->v[o->n][1] = flag ? "yes" : argv[++i];
        o->n++;
    }
    return true;
}

static const char *opt(const struct opts *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++) {
        if (strcmp(o->v[i][0], name) == 0)
            return o->v[i][1];
    }
    return NULL;
}

static int write_text(const struct wharf_config *cfg, const char *name, const char *text)
{
    char *path = org_path(cfg, name);
    int rc = datadir_write_file(path, text, strlen(text), 0600);
    if (rc != 0)
        perror(path);
    free(path);
    return rc == 0 ? EX_OK : EX_CANTCREAT;
}

static int write_self(const struct wharf_config *cfg, const char *org, const char *server,
                      json_t *peers)
{
    json_t *self = json_pack("{s:s, s:s, s:o}", "org", org, "server", server, "peers", peers);
    char *text = json_dumps(self, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(self);
    int rc = write_text(cfg, "self.json", text);
    free(text);
    return rc;
}

/* Signs cfg with key and writes it as org.json. */
static int save_config(const struct wharf_config *cfg, json_t *conf,
                       const unsigned char key[ORG_KEY_LEN])
{
    struct buf rec = BUF_INIT, err = BUF_INIT;
    struct org_config oc;
    int rc = EX_DATAERR;
    if (!org_record_make(conf, key, &rec, &oc, &err)) {
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
    } else {
        rc = write_text(cfg, "org.json", buf_cstr(&rec));
        if (rc == EX_OK)
            printf("organization %s: configuration serial %llu\n",
                   json_string_value(json_object_get(conf, "org")), (unsigned long long)oc.serial);
        org_config_free(&oc);
    }
    buf_free(&rec);
    buf_free(&err);
    return rc;
}

static json_t *split_list(const char *s)
{
    json_t *a = json_array();
    char *copy = strdup(s ? s : ""), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    free(copy);
    return a;
}

static int cmd_create(struct cli_ctx *ctx, int argc, char **argv)
{
    struct opts o;
    if (argc < 3 || !opts_parse(argc, argv, 3, "", &o) || !opt(&o, "server") || !opt(&o, "group") ||
        !opt(&o, "address"))
        return usage();
    unsigned char key[ORG_KEY_LEN];
    char hex[2 * ORG_KEY_LEN + 2];
    if (RAND_bytes(key, sizeof(key)) != 1) {
        fprintf(stderr, "wharf: no random bytes for the org key\n");
        return EX_SOFTWARE;
    }
    char *kp = org_path(ctx->cfg, "org.key");
    struct stat st;
    bool exists = stat(kp, &st) == 0;
    free(kp);
    if (exists) {
        fprintf(stderr, "wharf: this server is already part of an organization\n");
        return EX_CANTCREAT;
    }
    json_t *conf = json_pack("{s:s, s:I, s:[{s:s}], s:[{s:s, s:s, s:s}], s:[]}", "org", argv[2],
                             "serial", (json_int_t)1, "groups", "name", opt(&o, "group"), "servers",
                             "name", opt(&o, "server"), "group", opt(&o, "group"), "address",
                             opt(&o, "address"), "connectors");
    if (opt(&o, "smtp")) /* where the other servers relay mail to it */
        json_object_set_new(json_array_get(json_object_get(conf, "servers"), 0), "smtp",
                            json_string(opt(&o, "smtp")));
    struct buf err = BUF_INIT;
    int rc = EX_DATAERR;
    if (!org_config_validate(conf, &err)) {
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
    } else {
        hex_encode(key, sizeof(key), hex);
        strcat(hex, "\n");
        rc = write_text(ctx->cfg, "org.key", hex);
        if (rc == EX_OK)
            rc = write_self(ctx->cfg, argv[2], opt(&o, "server"), json_array());
        if (rc == EX_OK)
            rc = save_config(ctx->cfg, conf, key);
        if (rc == EX_OK)
            printf("org key (give it to `wharf org join` on the other servers): %s", hex);
    }
    json_decref(conf);
    buf_free(&err);
    return rc;
}

static int cmd_join(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 3 || !org_name_ok(argv[2]))
        return usage();
    json_t *peers = json_array();
    const char *keyhex = NULL, *server = NULL;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--peer") == 0)
            json_array_append_new(peers, json_string(argv[i + 1]));
        else if (strcmp(argv[i], "--key") == 0)
            keyhex = argv[i + 1];
        else if (strcmp(argv[i], "--server") == 0)
            server = argv[i + 1];
        else
            keyhex = NULL, i = argc;
    }
    unsigned char key[ORG_KEY_LEN];
    if ((argc - 3) % 2 != 0 || keyhex == NULL || server == NULL || !org_name_ok(server) ||
        json_array_size(peers) == 0 || !hex_decode(keyhex, key, sizeof(key))) {
        json_decref(peers);
        return usage();
    }
    char hex[2 * ORG_KEY_LEN + 2];
    hex_encode(key, sizeof(key), hex);
    strcat(hex, "\n");
    int rc = write_text(ctx->cfg, "org.key", hex);
    if (rc == EX_OK)
        rc = write_self(ctx->cfg, argv[2], server, peers);
    else
        json_decref(peers);
    if (rc == EX_OK)
        printf("joined organization %s as %s; the configuration comes from the peers\n", argv[2],
               server);
    return rc;
}

/* Applies one change (argv[1] argv[2] ...) to a copy of the current configuration. */
static int change(json_t *conf, int argc, char **argv, struct buf *err)
{
    const char *kind = argv[1], *verb = argv[2], *name = argv[3];
    struct opts o;
    if (strcmp(kind, "connector") == 0 &&
        (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0)) {
        json_t *c = argc == 4 ? org_find(conf, "connectors", name) : NULL;
        if (c == NULL) {
            buf_printf(err, "no connector %s", name);
            return EX_DATAERR;
        }
        json_object_set_new(c, "enabled", json_boolean(strcmp(verb, "enable") == 0));
        return EX_OK;
    }
    if (strcmp(verb, "add") != 0 || !opts_parse(argc, argv, 4, "disabled", &o))
        return EX_USAGE;
    json_t *item;
    if (strcmp(kind, "group") == 0 && o.n == 0) {
        item = json_pack("{s:s}", "name", name);
        kind = "groups";
    } else if (strcmp(kind, "server") == 0 && opt(&o, "group") && opt(&o, "address")) {
        item = json_pack("{s:s, s:s, s:s}", "name", name, "group", opt(&o, "group"), "address",
                         opt(&o, "address"));
        if (opt(&o, "smtp"))
            json_object_set_new(item, "smtp", json_string(opt(&o, "smtp")));
        kind = "servers";
    } else if (strcmp(kind, "connector") == 0 && opt(&o, "from") && opt(&o, "cost")) {
        char *end;
        long cost = strtol(opt(&o, "cost"), &end, 10);
        if (*end != '\0')
            cost = 0;
        item = json_pack("{s:s, s:s, s:I, s:b, s:o}", "name", name, "from", opt(&o, "from"), "cost",
                         (json_int_t)cost, "enabled", opt(&o, "disabled") == NULL, "source",
                         split_list(opt(&o, "source")));
        if (opt(&o, "to"))
            json_object_set_new(item, "to", json_string(opt(&o, "to")));
        if (opt(&o, "target"))
            json_object_set_new(item, "target", split_list(opt(&o, "target")));
        if (opt(&o, "space"))
            json_object_set_new(item, "space", json_string(opt(&o, "space")));
        if (opt(&o, "smarthost"))
            json_object_set_new(item, "smarthost", json_string(opt(&o, "smarthost")));
        if (opt(&o, "ls-transport"))
            json_object_set_new(item, "ls_transport", json_string(opt(&o, "ls-transport")));
        kind = "connectors";
    } else {
        return EX_USAGE;
    }
    if (org_find(conf, kind, name)) {
        json_decref(item);
        buf_printf(err, "%s is defined already", name);
        return EX_DATAERR;
    }
    json_array_append_new(json_object_get(conf, kind), item);
    return EX_OK;
}

static void show(const json_t *conf)
{
    printf("organization %s, configuration serial %lld\n",
           json_string_value(json_object_get(conf, "org")),
           (long long)json_integer_value(json_object_get(conf, "serial")));
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(conf, "groups"), i, o)
    {
        const char *g = json_string_value(json_object_get(o, "name"));
        printf("group %s:", g);
        const char *s;
        for (size_t r = 0; (s = org_group_server(conf, g, r)) != NULL; r++)
            printf(" %s%s", s, r == 0 ? " (master)" : "");
        printf("\n");
    }
    json_array_foreach(json_object_get(conf, "servers"), i, o)
    {
        printf("server %s %s group %s\n", json_string_value(json_object_get(o, "name")),
               json_string_value(json_object_get(o, "address")),
               json_string_value(json_object_get(o, "group")));
    }
    json_array_foreach(json_object_get(conf, "connectors"), i, o)
    {
        const json_t *to = json_object_get(o, "to");
        const json_t *lt = json_object_get(o, "ls_transport");
        printf("connector %s %s > %s cost %lld%s%s\n",
               json_string_value(json_object_get(o, "name")),
               json_string_value(json_object_get(o, "from")),
               to ? json_string_value(to) : json_string_value(json_object_get(o, "space")),
               (long long)json_integer_value(json_object_get(o, "cost")),
               lt && strcmp(json_string_value(lt), "smtp") == 0 ? " (link state over smtp)" : "",
               json_is_true(json_object_get(o, "enabled")) ? "" : " (disabled)");
    }
}

int cmd_org(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2)
        return usage();
    int rc = cli_as_wharf_user(ctx);
    if (rc != 0)
        return rc;
    if (strcmp(argv[1], "create") == 0)
        return cmd_create(ctx, argc, argv);
    if (strcmp(argv[1], "join") == 0)
        return cmd_join(ctx, argc, argv);
    unsigned char key[ORG_KEY_LEN];
    struct buf err = BUF_INIT;
    struct org_config oc;
    if (!org_key_load(ctx->cfg, key, &err)) {
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_CONFIG;
    }
    if (strcmp(argv[1], "key") == 0 && argc == 2) {
        char hex[2 * ORG_KEY_LEN + 1];
        hex_encode(key, sizeof(key), hex);
        printf("%s\n", hex);
        return EX_OK;
    }
    if (!org_config_load(ctx->cfg, key, &oc, &err)) {
        fprintf(stderr, "wharf: %s\n",
                err.len ? buf_cstr(&err)
                        : "no organization configuration yet (it comes "
                          "from the peers once the routing process runs)");
        buf_free(&err);
        return EX_TEMPFAIL;
    }
    if (strcmp(argv[1], "show") == 0 && argc <= 3) {
        if (argc == 3 && strcmp(argv[2], "--json") == 0) {
            json_t *o = json_pack("{s:O, s:s}", "config", oc.cfg, "mac", oc.mac);
            cli_print_json(o);
            json_decref(o);
        } else {
            show(oc.cfg);
        }
        rc = EX_OK;
    } else if (argc >= 4) {
        json_t *conf = json_deep_copy(oc.cfg);
        rc = change(conf, argc, argv, &err);
        if (rc == EX_OK) {
            json_object_set_new(conf, "serial", json_integer((json_int_t)oc.serial + 1));
            rc = save_config(ctx->cfg, conf, key);
        } else if (rc == EX_USAGE) {
            usage();
        } else {
            fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
        }
        json_decref(conf);
    } else {
        rc = usage();
    }
    org_config_free(&oc);
    buf_free(&err);
    return rc;
}
