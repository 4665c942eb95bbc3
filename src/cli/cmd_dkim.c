/*
 * cmd_dkim.c - `wharf dkim`: the DKIM signing keys of the domains this
 * server sends for (src/mailauth/dkim_keys.h).
 *
 *   wharf dkim keygen DOMAIN [--selector PREFIX]   new Ed25519 + RSA-2048 pair
 *   wharf dkim activate DOMAIN PREFIX              sign with that pair (rotation)
 *   wharf dkim records DOMAIN                      the TXT records to publish
 *
 * Runs as the wharf user (after datadir_prepare), so the keys belong to the
 * server and to nobody else. Never prints a private key.
 */
#include "base/component.h"
#include "base/datadir.h"
#include "cli/cli.h"
#include "mailauth/dkim_keys.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: wharf dkim keygen DOMAIN [--selector PREFIX]\n"
                    "       wharf dkim activate DOMAIN PREFIX\n"
                    "       wharf dkim records DOMAIN\n");
    return EX_USAGE;
}

int cli_as_wharf_user(struct cli_ctx *ctx)
{
    struct buf err = BUF_INIT;
    if (datadir_prepare(ctx->cfg, &err) != 0) {
        fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_CANTCREAT;
    }
    component_drop_privileges(ctx->cfg);
    umask(077); /* private keys, files of the server only */
    return 0;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

int cmd_dkim(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *sub = argv[1];
    char *domain = argv[2];
    lower(domain);
    size_t dl = strlen(domain);
    if (dl > 0 && domain[dl - 1] == '.')
        domain[dl - 1] = '\0';
    struct buf out = BUF_INIT, err = BUF_INIT;
    int rc;
    if (strcmp(sub, "keygen") == 0) {
        char prefix[64];
        if (argc == 5 && strcmp(argv[3], "--selector") == 0) {
            snprintf(prefix, sizeof(prefix), "%s", argv[4]);
        } else if (argc == 3) {
            time_t now = time(NULL);
            struct tm tm;
            gmtime_r(&now, &tm);
            strftime(prefix, sizeof(prefix), "wharf%Y%m", &tm);
        } else {
            return usage();
        }
        lower(prefix);
        if ((rc = cli_as_wharf_user(ctx)) != 0)
            return rc;
        bool activated;
        if (dkim_keygen(ctx->cfg, domain, prefix, &out, &activated, &err) != 0) {
            fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
            rc = EX_CANTCREAT;
        } else {
            printf("; DKIM keys for %s: publish these records in the zone of %s\n", domain, domain);
            fputs(buf_cstr(&out), stdout);
            if (activated)
                printf("; %s signs with %s-ed25519 and %s-rsa from now on\n", domain, prefix,
                       prefix);
            else
                printf("; not active yet: publish the records, wait for their TTL, then\n"
                       ";   wharf dkim activate %s %s\n",
                       domain, prefix);
            rc = EX_OK;
        }
    } else if (strcmp(sub, "activate") == 0 && argc == 4) {
        lower(argv[3]);
        if ((rc = cli_as_wharf_user(ctx)) != 0)
            return rc;
        if (dkim_activate(ctx->cfg, domain, argv[3], &err) != 0) {
            fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
            rc = EX_DATAERR;
        } else {
            printf("%s signs with %s-ed25519 and %s-rsa\n", domain, argv[3], argv[3]);
            rc = EX_OK;
        }
    } else if (strcmp(sub, "records") == 0 && argc == 3) {
        if ((rc = cli_as_wharf_user(ctx)) != 0)
            return rc;
        if (dkim_records(ctx->cfg, domain, &out, &err) != 0) {
            fputs(buf_cstr(&out), stdout);
            fprintf(stderr, "wharf: %s\n", buf_cstr(&err));
            rc = EX_DATAERR;
        } else {
            fputs(buf_cstr(&out), stdout);
            rc = EX_OK;
        }
    } else {
        rc = usage();
    }
    buf_free(&out);
    buf_free(&err);
    return rc;
}
