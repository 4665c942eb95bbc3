/*
 * cmd_mailbox.c - wharf mailbox: a user's folders, counts and sizes, one
 * stored message byte for byte, and the store's blob figures.
 *
 *   wharf mailbox list USER [--json]         folders with UIDVALIDITY, UIDNEXT, counts, sizes
 *   wharf mailbox stats USER [--json]        totals and quota usage
 *   wharf mailbox show USER FOLDER UID       the raw message on stdout, exactly as stored
 *   wharf mailbox blobs [--json]             distinct bodies and segment bytes (single instance)
 *   wharf mailbox gc                         reclaim dead blob space now
 *
 * USER is an account of the directory (a missing domain means the first of
 * mydomains; #public names the public folders). Reads the store directly, as
 * the wharf user (never creates root-owned files under DATA/store). Never
 * changes a message.
 */
#include "base/alloc.h"
#include "base/component.h"
#include "base/datadir.h"
#include "cli/cli.h"
#include "directory/directory.h"
#include "mta/lda.h"
#include "net/net_proxy.h"
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: wharf mailbox list|stats USER [--json]\n"
                    "       wharf mailbox show USER FOLDER UID\n"
                    "       wharf mailbox blobs [--json] | gc\n");
}

struct store *cli_store_open(const struct wharf_config *cfg)
{
    struct buf err = BUF_INIT;
    if (datadir_prepare(cfg, &err) != 0) {
        fprintf(stderr, "wharf mailbox: %s\n", buf_cstr(&err));
        buf_free(&err);
        return NULL;
    }
    component_drop_privileges(cfg);
    struct store *s = store_open(cfg, &err);
    if (s == NULL)
        fprintf(stderr, "wharf mailbox: %s\n", buf_cstr(&err));
    buf_free(&err);
    return s;
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text);
    free(text);
    json_decref(j);
}

static int do_list(struct store *s, const char *user, bool json, bool stats)
{
    struct store_mailbox *l;
    size_t n;
    struct buf err = BUF_INIT;
    if (store_mailbox_list(s, user, &l, &n, &err) != 0) {
        fprintf(stderr, "wharf mailbox: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_TEMPFAIL;
    }
    uint64_t qbytes = 0, qmsgs = 0, total_msgs = 0, total_bytes = 0, total_unseen = 0;
    store_quota_usage(s, user, &qbytes, &qmsgs, &err);
    for (size_t i = 0; i < n; i++) {
        total_msgs += l[i].messages;
        total_bytes += l[i].bytes;
        total_unseen += l[i].unseen;
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "user", json_string(user));
        if (!stats) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                json_t *f = json_object();
                json_object_set_new(f, "name", json_string(l[i].name));
                json_object_set_new(f, "special_use",
                                    l[i].special_use ? json_string(l[i].special_use) : json_null());
                json_object_set_new(f, "uidvalidity", json_integer(l[i].uidvalidity));
                json_object_set_new(f, "uidnext", json_integer(l[i].uidnext));
                json_object_set_new(f, "highestmodseq",
                                    json_integer((json_int_t)l[i].highestmodseq));
                json_object_set_new(f, "messages", json_integer((json_int_t)l[i].messages));
                json_object_set_new(f, "unseen", json_integer((json_int_t)l[i].unseen));
                json_object_set_new(f, "bytes", json_integer((json_int_t)l[i].bytes));
                json_object_set_new(f, "subscribed", json_boolean(l[i].subscribed));
                json_array_append_new(arr, f);
            }
            json_object_set_new(o, "folders", arr);
        } else {
            json_object_set_new(o, "folders", json_integer((json_int_t)n));
            json_object_set_new(o, "messages", json_integer((json_int_t)total_msgs));
            json_object_set_new(o, "unseen", json_integer((json_int_t)total_unseen));
            json_object_set_new(o, "bytes", json_integer((json_int_t)total_bytes));
            json_object_set_new(o, "quota_bytes_used", json_integer((json_int_t)qbytes));
            json_object_set_new(o, "quota_messages_used", json_integer((json_int_t)qmsgs));
        }
        print_json(o);
    } else if (!stats) {
        printf("%-30s %-10s %10s %10s %8s %8s %12s\n", "FOLDER", "USE", "UIDVALID", "UIDNEXT",
               "MSGS", "UNSEEN", "BYTES");
        for (size_t i = 0; i < n; i++)
            printf("%-30s %-10s %10" PRIu32 " %10" PRIu32 " %8" PRIu64 " %8" PRIu64 " %12" PRIu64
                   "\n",
                   l[i].name, l[i].special_use ? l[i].special_use : "-", l[i].uidvalidity,
                   l[i].uidnext, l[i].messages, l[i].unseen, l[i].bytes);
    } else {
        printf("user:      %s\nfolders:   %zu\nmessages:  %" PRIu64 " (%" PRIu64
               " unseen)\nbytes:     %" PRIu64 "\nquota use: %" PRIu64 " bytes, %" PRIu64
               " messages\n",
               user, n, total_msgs, total_unseen, total_bytes, qbytes, qmsgs);
    }
    store_mailbox_list_free(l, n);
    buf_free(&err);
    return 0;
}

static int do_show(struct store *s, const char *user, const char *folder, const char *uid_s)
{
    char *end;
    errno = 0;
    unsigned long uid = strtoul(uid_s, &end, 10);
    if (*uid_s == '\0' || *end || errno || uid == 0 || uid > UINT32_MAX) {
        fprintf(stderr, "wharf mailbox: bad UID '%s'\n", uid_s);
        return EX_USAGE;
    }
    struct buf out = BUF_INIT, err = BUF_INIT;
    int rc = store_message_read(s, user, folder, (uint32_t)uid, &out, &err);
    int code = 0;
    if (rc == 1) {
        fprintf(stderr, "wharf mailbox: %s has no UID %lu in %s\n", user, uid, folder);
        code = EX_NOINPUT;
    } else if (rc != 0) {
        fprintf(stderr, "wharf mailbox: %s\n", buf_cstr(&err));
        code = EX_TEMPFAIL;
    } else if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
        code = EX_IOERR;
    buf_free(&out);
    buf_free(&err);
    return code;
}

static int do_blobs(struct store *s, bool json)
{
    struct store_blob_stats st;
    struct buf err = BUF_INIT;
    if (store_blob_stats(s, &st, &err) != 0) {
        fprintf(stderr, "wharf mailbox: %s\n", buf_cstr(&err));
        buf_free(&err);
        return EX_TEMPFAIL;
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "blobs", json_integer((json_int_t)st.blobs));
        json_object_set_new(o, "blob_bytes", json_integer((json_int_t)st.blob_bytes));
        json_object_set_new(o, "segments", json_integer((json_int_t)st.segments));
        json_object_set_new(o, "segment_bytes", json_integer((json_int_t)st.segment_bytes));
        print_json(o);
    } else
        printf("blobs: %" PRIu64 " (%" PRIu64 " bytes) in %" PRIu64 " segments (%" PRIu64
               " bytes)\n",
               st.blobs, st.blob_bytes, st.segments, st.segment_bytes);
    return 0;
}

/* cli_account_name, and the account's home server in *home ("": this one). */
static char *account_lookup(const struct wharf_config *cfg, const char *given, int *code_r,
                            struct buf *home)
{
    if (strcmp(given, STORE_PUBLIC_OWNER) == 0)
        return xstrdup(given);
    char *addr = lda_user_address(cfg, given);
    char *norm = directory_normalize_address(addr, false);
    free(addr);
    struct buf err = BUF_INIT;
    struct directory *d = norm ? directory_open(cfg, &err) : NULL;
    uint64_t qb, qm;
    if (norm == NULL || (d && directory_account_info(d, norm, &qb, &qm, home, &err) != 1)) {
        fprintf(stderr, "wharf: no account %s\n", given);
        *code_r = EX_NOUSER;
        free(norm);
        norm = NULL;
    } else if (d == NULL) {
        fprintf(stderr, "wharf: directory: %s\n", buf_cstr(&err));
        *code_r = EX_TEMPFAIL;
        free(norm);
        norm = NULL;
    }
    directory_close(d);
    buf_free(&err);
    return norm;
}

char *cli_account_name(const struct wharf_config *cfg, const char *given, int *code_r)
{
    struct buf home = BUF_INIT;
    char *name = account_lookup(cfg, given, code_r, &home);
    buf_free(&home);
    return name;
}

int cmd_mailbox(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    char *args[4];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (n < 4)
            args[n++] = argv[i];
        else {
            usage();
            return EX_USAGE;
        }
    }
    if (n == 0) {
        usage();
        return EX_USAGE;
    }
    const char *sub = args[0];
    bool needs_user =
        strcmp(sub, "list") == 0 || strcmp(sub, "stats") == 0 || strcmp(sub, "show") == 0;
    if ((needs_user && n != (strcmp(sub, "show") == 0 ? 4 : 2)) ||
        (!needs_user && (n != 1 || (strcmp(sub, "blobs") != 0 && strcmp(sub, "gc") != 0)))) {
        usage();
        return EX_USAGE;
    }
    struct store *s = cli_store_open(ctx->cfg);
    if (s == NULL)
        return EX_TEMPFAIL;
    int code = 0;
    char *user = NULL;
    struct buf home = BUF_INIT;
    if (needs_user && (user = account_lookup(ctx->cfg, args[1], &code, &home)) == NULL) {
        store_close(s);
        return code;
    }
    /* Homed on another server (a front-end holds none; doc/frontend.md): reading this
     * store would show, and make, an empty mailbox. */
    if (user != NULL && net_proxy_wanted(ctx->cfg, buf_cstr(&home))) {
        fprintf(stderr,
                "wharf: the mailbox of %s is on its home server %s, not on this one: run "
                "wharf mailbox there\n",
                user, buf_cstr(&home));
        buf_free(&home);
        free(user);
        store_close(s);
        return EX_UNAVAILABLE;
    }
    buf_free(&home);
    if (strcmp(sub, "show") == 0)
        code = do_show(s, user, args[2], args[3]);
    else if (needs_user)
        code = do_list(s, user, json, strcmp(sub, "stats") == 0);
    else if (strcmp(sub, "blobs") == 0)
        code = do_blobs(s, json);
    else {
        struct buf err = BUF_INIT;
        code = store_gc(s, &err) == 0 ? 0 : EX_TEMPFAIL;
        if (code)
            fprintf(stderr, "wharf mailbox: %s\n", buf_cstr(&err));
        buf_free(&err);
    }
    free(user);
    store_close(s);
    return code;
}
