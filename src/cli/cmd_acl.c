/*
 * cmd_acl.c - wharf public and wharf acl: the public folders and the access
 * rights (RFC 4314) on any mailbox, in the store.
 *
 *   wharf public add NAME [--newsgroups HIER]     create a public folder (no rights yet);
 *                                                 with HIER its subfolders are the
 *                                                 newsgroups HIER.* over NNTP (doc/nntp.md)
 *   wharf public newsgroups NAME HIER|""          anchor (or no longer) a hierarchy there
 *   wharf public address NAME ADDRESS             mail to ADDRESS goes into NAME (the
 *                                                 directory resolves it, doc/accounts.md)
 *   wharf public address-del ADDRESS              no longer
 *   wharf public list                             the public folders with their ACL and
 *                                                 addresses
 *   wharf public del NAME                         delete one and its messages (its
 *                                                 addresses, and those of the folders
 *                                                 below it, go too)
 *   wharf acl get OWNER MAILBOX                   the ACL of a mailbox
 *   wharf acl set OWNER MAILBOX IDENTIFIER RIGHTS replace an identifier's rights
 *   wharf acl del OWNER MAILBOX IDENTIFIER        remove them
 *
 * OWNER is an account or #public; IDENTIFIER an account, "anyone", or
 * either after "-" (negative rights); RIGHTS letters of "lrswipkxtea".
 * IMAP users reach public folders as "Public Folders/NAME" (doc/imap.md).
 * Must never: touch a mailbox's messages (del of a public folder excepted).
 */
#include "base/alloc.h"
#include "cli/cli.h"
#include "directory/directory.h"
#include "store/store.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

static void usage(void)
{
    fprintf(stderr, "usage: wharf public add NAME [--newsgroups HIERARCHY] | del NAME | list "
                    "[--json]\n"
                    "       wharf public newsgroups NAME HIERARCHY|''\n"
                    "       wharf public address NAME ADDRESS | address-del ADDRESS\n"
                    "       wharf acl get OWNER MAILBOX [--json]\n"
                    "       wharf acl set OWNER MAILBOX IDENTIFIER RIGHTS\n"
                    "       wharf acl del OWNER MAILBOX IDENTIFIER\n");
}

/* Prints "IDENTIFIER RIGHTS" lines of a mailbox's ACL, each after indent; or, with json,
 * adds {"identifier": rights} to it. */
static int acl_print(struct store *s, const char *owner, const char *mailbox, const char *indent,
                     json_t *json)
{
    struct store_acl_entry *acl;
    size_t n;
    struct buf err = BUF_INIT;
    if (store_acl_list(s, owner, mailbox, &acl, &n, &err) != 0) {
        fprintf(stderr, "wharf acl: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_NOINPUT;
    }
    for (size_t i = 0; i < n; i++) {
        if (json)
            json_object_set_new(json, acl[i].identifier, json_string(acl[i].rights));
        else
            printf("%s%s %s\n", indent, acl[i].identifier, acl[i].rights);
    }
    store_acl_list_free(acl, n);
    return 0;
}

/* Runs one store call and reports its error; the exit code. */
static int done(int rc, struct buf *err, const char *what)
{
    if (rc != 0)
        fprintf(stderr, "wharf %s: %s\n", what, buf_cstr(err));
    buf_free(err);
    return rc != 0 ? EX_DATAERR : 0;
}

/* With --json: [{"name", "messages", "newsgroups", "addresses": [...], "acl": {identifier:
 * rights}}]. */
static void public_json(json_t *arr, const struct store_mailbox *m, const char *hierarchy,
                        json_t *addresses, json_t *acl)
{
    json_array_append_new(arr, json_pack("{s:s, s:I, s:s?, s:o, s:o}", "name", m->name, "messages",
                                         (json_int_t)m->messages, "newsgroups", hierarchy,
                                         "addresses", addresses, "acl", acl));
}

/* The addresses of public folders (directory_public_address_list), in the order listed,
 * each with the folder it reaches now (pub_addrs_follow). */
struct pub_addrs {
    char **address, **folder, **now; /* now[i] NULL: no folder has or had that name */
    size_t n;
};

static void pub_addr_add(void *arg, const char *address, const char *folder)
{
    struct pub_addrs *a = arg;
    a->address = xreallocarray(a->address, a->n + 1, sizeof(char *));
    a->folder = xreallocarray(a->folder, a->n + 1, sizeof(char *));
    a->now = xreallocarray(a->now, a->n + 1, sizeof(char *));
    a->address[a->n] = xstrdup(address);
    a->now[a->n] = NULL;
    a->folder[a->n++] = xstrdup(folder);
}

/* The folder each address reaches now: the one it names, or the one renamed away from
 * that name since (store_public_folder_now, as the mta delivers). -1 (said) when the
 * store could not tell for one of them. */
static int pub_addrs_follow(struct pub_addrs *a, struct store *s)
{
    struct buf now = BUF_INIT, err = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < a->n; i++) {
        buf_reset(&err);
        int r = store_public_folder_now(s, a->folder[i], &now, &err);
        if (r == 0)
            a->now[i] = xstrdup(now.data);
        if (r < 0) {
            fprintf(stderr, "wharf public: %s\n", buf_cstr(&err));
            rc = -1;
        }
    }
    buf_free(&now);
    buf_free(&err);
    return rc;
}

static void pub_addrs_free(struct pub_addrs *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->address[i]);
        free(a->folder[i]);
        free(a->now[i]);
    }
    free(a->address);
    free(a->folder);
    free(a->now);
}

/* The directory, opened as the wharf user (the store has dropped privileges: no
 * credentials are needed); NULL after printing why. */
static struct directory *public_directory(struct cli_ctx *ctx)
{
    struct buf err = BUF_INIT;
    struct directory *d = directory_open(ctx->cfg, &err);
    if (d == NULL)
        fprintf(stderr, "wharf public: %s\n", buf_cstr(&err));
    buf_free(&err);
    return d;
}

/* wharf public address NAME ADDRESS | address-del ADDRESS */
static int public_address(struct cli_ctx *ctx, struct store *s, const char *folder,
                          const char *address)
{
    struct buf err = BUF_INIT;
    int64_t id = 0;
    if (folder &&
        (store_mailbox_resolve(s, STORE_PUBLIC_OWNER, folder, &id, &err) < 0 || id <= 0)) {
        fprintf(stderr, "wharf public: no such public folder: %s\n", folder);
        buf_free(&err);
        return EX_NOINPUT;
    }
    struct directory *d = public_directory(ctx);
    if (d == NULL)
        return EX_IOERR;
    enum directory_status st = folder ? directory_public_address_add(d, address, folder, &err)
                                      : directory_public_address_del(d, address, &err);
    directory_close(d);
    return cli_directory_report(st, &err);
}

/* After a public folder is deleted: the addresses that reach no folder any more go (one
 * given to a folder renamed since still reaches it). */
static void public_addresses_prune(struct cli_ctx *ctx, struct store *s)
{
    struct directory *d = public_directory(ctx);
    if (d == NULL)
        return;
    struct pub_addrs a = {0};
    struct buf err = BUF_INIT;
    if (directory_public_address_list(d, NULL, pub_addr_add, &a, &err) != DIRECTORY_OK)
        fprintf(stderr, "wharf public: %s\n", buf_cstr(&err));
    bool known = pub_addrs_follow(&a, s) == 0; /* else none goes */
    for (size_t i = 0; i < a.n && known; i++) {
        if (a.now[i] != NULL)
            continue; /* still reaches a folder */
        buf_reset(&err);
        if (directory_public_address_del(d, a.address[i], &err) == DIRECTORY_OK)
            printf("address %s (of %s) removed\n", a.address[i], a.folder[i]);
        else
            fprintf(stderr, "wharf public: %s\n", buf_cstr(&err));
    }
    pub_addrs_free(&a);
    buf_free(&err);
    directory_close(d);
}

int cmd_public(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
    if (json)
        argc--;
    bool list = argc == 2 && strcmp(argv[1], "list") == 0;
    bool add = (argc == 3 || (argc == 5 && strcmp(argv[3], "--newsgroups") == 0)) &&
               strcmp(argv[1], "add") == 0;
    bool del = argc == 3 && strcmp(argv[1], "del") == 0;
    bool news = argc == 4 && strcmp(argv[1], "newsgroups") == 0;
    bool address = argc == 4 && strcmp(argv[1], "address") == 0;
    bool address_del = argc == 3 && strcmp(argv[1], "address-del") == 0;
    const char *hierarchy = news ? argv[3] : add && argc == 5 ? argv[4] : NULL;
    if (!list && !add && !del && !news && !address && !address_del) {
        usage();
        return EX_USAGE;
    }
    struct store *s = cli_store_open(ctx->cfg);
    if (s == NULL)
        return EX_TEMPFAIL;
    struct buf err = BUF_INIT;
    int code = 0;
    if (address || address_del) {
        code = public_address(ctx, s, address ? argv[2] : NULL, argv[address ? 3 : 2]);
    } else if (add || news) {
        int64_t id = 0;
        if (add && store_mailbox_resolve(s, STORE_PUBLIC_OWNER, argv[2], &id, &err) == 0 &&
            id > 0) {
            /* its own code: the admin API answers 409 for it, not 400 */
            fprintf(stderr, "wharf public: %s exists already\n", argv[2]);
            code = EX_CANTCREAT;
            add = news = false;
            hierarchy = NULL;
        }
        buf_reset(&err);
        if (add)
            code = done(store_mailbox_create(s, STORE_PUBLIC_OWNER, argv[2], NULL, &err), &err,
                        "public");
        if (code == 0 && hierarchy) {
            code = done(store_newsgroup_anchor_set(s, argv[2], hierarchy, &err), &err, "public");
            if (code != 0 && add) /* all or nothing: the folder goes again */
                store_mailbox_delete(s, STORE_PUBLIC_OWNER, argv[2], &err);
            buf_free(&err);
        }
    } else if (del) {
        code = done(store_mailbox_delete(s, STORE_PUBLIC_OWNER, argv[2], &err), &err, "public");
        if (code == 0)
            public_addresses_prune(ctx, s);
    } else {
        struct pub_addrs pa = {0};
        struct directory *d = public_directory(ctx); /* without it, the list shows no addresses */
        if (d != NULL &&
            directory_public_address_list(d, NULL, pub_addr_add, &pa, &err) != DIRECTORY_OK)
            fprintf(stderr, "wharf public: %s\n", buf_cstr(&err));
        directory_close(d);
        (void)pub_addrs_follow(&pa, s); /* one the store cannot follow is listed as gone */
        buf_reset(&err);
        struct store_mailbox *l;
        size_t n;
        if (store_mailbox_list(s, STORE_PUBLIC_OWNER, &l, &n, &err) != 0) {
            code = done(-1, &err, "public");
        } else {
            struct store_newsgroup_anchor *an = NULL;
            size_t nan = 0;
            if (store_newsgroup_anchors(s, &an, &nan, &err) != 0)
                code = done(-1, &err, "public");
            json_t *arr = json ? json_array() : NULL;
            for (size_t i = 0; i < n && code == 0; i++) {
                const char *anchor = NULL;
                for (size_t k = 0; k < nan; k++)
                    if (strcmp(an[k].mailbox, l[i].name) == 0)
                        anchor = an[k].hierarchy;
                json_t *acl = json ? json_object() : NULL, *addrs = json ? json_array() : NULL;
                if (!json) {
                    printf("%s\t%llu messages", l[i].name, (unsigned long long)l[i].messages);
                    if (anchor)
                        printf("\tnewsgroups %s.*", anchor);
                    printf("\n");
                }
                for (size_t k = 0; k < pa.n; k++) {
                    if (pa.now[k] == NULL || strcmp(pa.now[k], l[i].name) != 0)
                        continue;
                    if (json)
                        json_array_append_new(addrs, json_string(pa.address[k]));
                    else if (strcmp(pa.folder[k], pa.now[k]) != 0)
                        printf("\taddress %s (given to %s, renamed since)\n", pa.address[k],
                               pa.folder[k]);
                    else
                        printf("\taddress %s\n", pa.address[k]);
                }
                code = acl_print(s, STORE_PUBLIC_OWNER, l[i].name, "\t", acl);
                if (json)
                    public_json(arr, &l[i], anchor, addrs, acl);
            }
            if (arr && code == 0)
                cli_print_json(arr);
            for (size_t k = 0; k < pa.n && code == 0; k++) { /* left by IMAP DELETE */
                if (pa.now[k] == NULL)
                    fprintf(stderr,
                            "wharf public: address %s names %s, which is not there: mail to it "
                            "bounces (wharf public address-del %s)\n",
                            pa.address[k], pa.folder[k], pa.address[k]);
            }
            json_decref(arr);
            store_mailbox_list_free(l, n);
            store_newsgroup_anchors_free(an, nan);
            buf_free(&err);
        }
        pub_addrs_free(&pa);
    }
    store_close(s);
    return code;
}

int cmd_acl(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    bool json = argc == 5 && strcmp(sub, "get") == 0 && strcmp(argv[4], "--json") == 0;
    if (json)
        argc--;
    int want = strcmp(sub, "get") == 0   ? 4
               : strcmp(sub, "set") == 0 ? 6
               : strcmp(sub, "del") == 0 ? 5
                                         : -1;
    if (argc != want) {
        usage();
        return EX_USAGE;
    }
    int code = 0;
    struct store *s = cli_store_open(ctx->cfg); /* first: it drops privileges */
    if (s == NULL)
        return EX_TEMPFAIL;
    char *owner = cli_account_name(ctx->cfg, argv[2], &code);
    if (owner == NULL) {
        store_close(s);
        return code;
    }
    const char *mailbox = argv[3];
    if (want == 4) {
        json_t *obj = json ? json_object() : NULL;
        code = acl_print(s, owner, mailbox, "", obj);
        if (obj && code == 0)
            cli_print_json(obj);
        json_decref(obj);
    } else {
        /* Identifiers compare as IMAP's SETACL stores them: in lower case. */
        char *id = xstrdup(argv[4]);
        for (char *p = id; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        struct buf err = BUF_INIT;
        if (strcmp(id, owner) == 0) {
            fprintf(stderr, "wharf acl: the owner always has every right\n");
            code = EX_DATAERR;
        } else {
            code = done(store_acl_set(s, owner, mailbox, id, want == 6 ? argv[5] : "", &err), &err,
                        "acl");
        }
        buf_free(&err);
        free(id);
    }
    store_close(s);
    free(owner);
    return code;
}
