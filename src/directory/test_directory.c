/*
 * test_directory.c - unit tests for the directory and its SQLite driver:
 * names, domain case, aliases (loops, depth, fan-out, duplicates,
 * catch-all), +detail, quotas, the driver option, the administration's
 * checks and messages, backup. Each test gets a fresh database in a
 * temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "directory/directory.h"

struct fixture {
    char dir[64];
    struct wharf_config cfg;
    struct directory *d;
};

static int setup_with(void **state, const char *extra)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/wharf-dirtest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct buf text = BUF_INIT, err = BUF_INIT, sub = BUF_INIT;
    buf_printf(&text, "data_directory = %s\nmydomains = config.test\n%s", f->dir,
               extra ? extra : "");
    config_init(&f->cfg);
    assert_int_equal(config_load_string(&f->cfg, "test", text.data, &err), 0);
    assert_int_equal(config_finalize(&f->cfg, &err), 0);
    buf_printf(&sub, "%s/directory", f->dir);
    assert_int_equal(mkdir(sub.data, 0700), 0);
    buf_reset(&sub);
    buf_printf(&sub, "%s/auth", f->dir);
    assert_int_equal(mkdir(sub.data, 0700), 0);
    f->d = directory_open(&f->cfg, &err);
    assert_non_null(f->d);
    assert_int_equal(directory_attach_credentials(f->d, &err), 0);
    assert_int_equal(directory_domain_add(f->d, "Example.ORG", &err), DIRECTORY_OK);
    buf_free(&text);
    buf_free(&err);
    buf_free(&sub);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

static int setup_shallow(void **state)
{
    return setup_with(state, "directory_alias_max_depth = 3\ndirectory_alias_max_targets = 4\n");
}

static int setup_srs(void **state)
{
    return setup_with(state, "srs_domain = Example.org\nsrs_exclude_domains = friend.test\n");
}

static int setup_srs_apart(void **state)
{
    return setup_with(state, "srs_domain = bounces.test\n");
}

/* Removes what a directory leaves in a data directory, and the folder. */
static void remove_data(const char *dir)
{
    struct buf b = BUF_INIT;
    const char *files[] = {"directory/directory.db",
                           "directory/directory.db-wal",
                           "directory/directory.db-shm",
                           "directory/srs.key",
                           "auth/credentials.db",
                           "auth/credentials.db-wal",
                           "auth/credentials.db-shm",
                           "directory",
                           "auth",
                           ""};
    for (size_t i = 0; i < 10; i++) {
        buf_reset(&b);
        buf_printf(&b, "%s/%s", dir, files[i]);
        if (remove(b.data) != 0 && i >= 7)
            fail_msg("cannot remove %s", b.data);
    }
    buf_free(&b);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    directory_close(f->d);
    remove_data(f->dir);
    config_free(&f->cfg);
    free(f);
    return 0;
}

static void user(struct fixture *f, const char *a)
{
    struct buf err = BUF_INIT;
    assert_int_equal(directory_account_add(f->d, a, "$y$x", 0, 0, &err), DIRECTORY_OK);
    buf_free(&err);
}

static void alias(struct fixture *f, const char *a, const char *t1, const char *t2)
{
    struct buf err = BUF_INIT;
    char *t[] = {(char *)t1, (char *)t2};
    assert_int_equal(directory_alias_add(f->d, a, t, t2 ? 2 : 1, &err), DIRECTORY_OK);
    buf_free(&err);
}

/* Resolves and renders the result as "kind:acct[/folder][!],..." for compact checks. */
static char *resolve(struct fixture *f, const char *addr)
{
    struct directory_result r;
    struct buf err = BUF_INIT, out = BUF_INIT;
    if (directory_resolve(f->d, addr, &r, &err) != 0) {
        assert_true(err.len > 0);
        buf_free(&err);
        return xstrdup("tempfail");
    }
    static const char *kinds[] = {"local", "not-local", "no-such-user"};
    buf_printf(&out, "%s:", kinds[r.kind]);
    for (size_t i = 0; i < r.n_targets; i++)
        buf_printf(&out, "%s%s%s%s", i ? "," : "", r.targets[i].account,
                   r.targets[i].folder ? "/" : "", r.targets[i].folder ? r.targets[i].folder : "");
    for (size_t i = 0; i < r.n_remote; i++)
        buf_printf(&out, "%s%s!", i || r.n_targets ? "," : "", r.remote[i]);
    directory_result_free(&r);
    buf_free(&err);
    return buf_steal(&out, NULL);
}

#define assert_resolves(f, addr, expect)                                                           \
    do {                                                                                           \
        char *got_ = resolve(f, addr);                                                             \
        assert_string_equal(got_, expect);                                                         \
        free(got_);                                                                                \
    } while (0)

static void test_names(void **state)
{
    char *s = directory_normalize_address("Alice@Example.ORG", false);
    assert_string_equal(s, "Alice@example.org");
    free(s);
    assert_null(directory_normalize_address("@example.org", false));
    s = directory_normalize_address("@Example.org", true);
    assert_string_equal(s, "@example.org");
    free(s);
    assert_null(directory_normalize_address("a b@example.org", false));
    assert_null(directory_normalize_address("alice", false));
    assert_null(directory_normalize_address("alice@-bad.org", false));
    assert_null(directory_normalize_address("alice@bad..org", false));
    assert_null(directory_normalize_address("alice@bad.org.", false));
    assert_null(directory_normalize_address("al<ce@bad.org", false));
    assert_null(directory_normalize_domain(""));
    s = directory_normalize_domain("MAIL.Example.org");
    assert_string_equal(s, "mail.example.org");
    free(s);
}

static void test_domain_case(void **state)
{
    struct fixture *f = *state;
    struct buf err = BUF_INIT;
    assert_true(directory_is_local_domain(f->d, "example.org"));
    assert_true(directory_is_local_domain(f->d, "EXAMPLE.org"));
    assert_true(directory_is_local_domain(f->d, "Config.Test")); /* from mydomains */
    assert_false(directory_is_local_domain(f->d, "example.com"));
    assert_int_equal(directory_domain_add(f->d, "example.ORG", &err), DIRECTORY_ERR_EXISTS);
    user(f, "alice@EXAMPLE.org");
    assert_resolves(f, "alice@Example.Org", "local:alice@example.org");
    /* Local parts are matched as given. */
    assert_resolves(f, "Alice@example.org", "no-such-user:");
    assert_resolves(f, "bob@example.org", "no-such-user:");
    assert_resolves(f, "bob@example.com", "not-local:");
    assert_int_equal(directory_account_add(f->d, "alice@example.org", "h", 0, 0, &err),
                     DIRECTORY_ERR_EXISTS);
    assert_int_equal(directory_account_add(f->d, "carol@example.com", "h", 0, 0, &err),
                     DIRECTORY_ERR_UNKNOWN_DOMAIN);
    /* mydomains are local: accounts there need no domain row. */
    user(f, "dave@config.test");
    assert_resolves(f, "dave@CONFIG.test", "local:dave@config.test");
    /* A domain with accounts cannot be deleted. */
    assert_int_equal(directory_domain_del(f->d, "Example.org", &err), DIRECTORY_ERR_IN_USE);
    assert_int_equal(directory_account_del(f->d, "alice@example.org", &err), DIRECTORY_OK);
    assert_int_equal(directory_domain_del(f->d, "Example.org", &err), DIRECTORY_OK);
    assert_int_equal(directory_domain_del(f->d, "Example.org", &err), DIRECTORY_ERR_NOT_FOUND);
    assert_false(directory_is_local_domain(f->d, "example.org"));
    buf_free(&err);
}

static void test_detail(void **state)
{
    struct fixture *f = *state;
    user(f, "alice@example.org");
    assert_resolves(f, "alice+work@example.org", "local:alice@example.org/work");
    assert_resolves(f, "alice+@example.org", "local:alice@example.org");
    assert_resolves(f, "alice+a+b@example.org", "local:alice@example.org/a+b");
    assert_resolves(f, "+x@example.org", "no-such-user:");
    assert_resolves(f, "nobody+x@example.org", "no-such-user:");
    /* An alias of the base takes the detail's mail too; an exact alias wins. */
    alias(f, "sales@example.org", "alice@example.org", NULL);
    assert_resolves(f, "sales+eu@example.org", "local:alice@example.org");
    user(f, "alice+special@example.org");
    assert_resolves(f, "alice+special@example.org", "local:alice+special@example.org");
}

static void test_detail_disabled(void **state)
{
    struct fixture *f = *state;
    struct buf err = BUF_INIT;
    assert_int_equal(config_set(&f->cfg, "recipient_delimiter", "", "test", &err), 0);
    user(f, "alice@example.org");
    assert_resolves(f, "alice+work@example.org", "no-such-user:");
    assert_int_equal(config_set(&f->cfg, "recipient_delimiter", "-+", "test", &err), 0);
    assert_resolves(f, "alice-work@example.org", "local:alice@example.org/work");
    buf_free(&err);
}

static void test_catchall(void **state)
{
    struct fixture *f = *state;
    user(f, "alice@example.org");
    user(f, "bob@example.org");
    alias(f, "@Example.org", "alice@example.org", NULL);
    assert_resolves(f, "anything@example.org", "local:alice@example.org");
    assert_resolves(f, "bob@example.org", "local:bob@example.org");
    assert_resolves(f, "bob+x@example.org", "local:bob@example.org/x");
    /* A catch-all pointing at a missing address in its own domain loops back: dropped. */
    struct buf err = BUF_INIT;
    assert_int_equal(directory_alias_del(f->d, "@example.org", NULL, 0, &err), DIRECTORY_OK);
    alias(f, "@example.org", "ghost@example.org", NULL);
    assert_resolves(f, "x@example.org", "no-such-user:");
    buf_free(&err);
}

static void test_loops_and_duplicates(void **state)
{
    struct fixture *f = *state;
    user(f, "alice@example.org");
    user(f, "bob@example.org");
    alias(f, "a@example.org", "b@example.org", NULL);
    alias(f, "b@example.org", "a@example.org", NULL);
    assert_resolves(f, "a@example.org", "no-such-user:");
    /* ... flagged as a loop, so the mta bounces it with 5.4.6 rather than 5.1.1 */
    struct directory_result r;
    struct buf err = BUF_INIT;
    assert_int_equal(directory_resolve(f->d, "a@example.org", &r, &err), 0);
    assert_true(r.loop);
    directory_result_free(&r);
    assert_int_equal(directory_resolve(f->d, "bob@example.org", &r, &err), 0);
    assert_false(r.loop);
    directory_result_free(&r);
    buf_free(&err);
    /* "alice -> alice, bob": alice keeps her mail, bob gets a copy. */
    alias(f, "alice@example.org", "alice@example.org", "bob@example.org");
    assert_resolves(f, "alice@example.org", "local:alice@example.org,bob@example.org");
    /* Duplicates through different paths are delivered once. */
    alias(f, "list@example.org", "alice@example.org", "bob@example.org");
    alias(f, "team@example.org", "list@example.org", "bob@example.org");
    assert_resolves(f, "team@example.org", "local:bob@example.org,alice@example.org");
    /* A loop through a list that also names real people. */
    alias(f, "x@example.org", "y@example.org", "bob@example.org");
    alias(f, "y@example.org", "x@example.org", "alice@example.org");
    assert_resolves(f, "x@example.org", "local:bob@example.org,alice@example.org");
}

static void test_remote_targets(void **state)
{
    struct fixture *f = *state;
    user(f, "alice@example.org");
    alias(f, "fw@example.org", "Someone@Elsewhere.NET", "alice@example.org");
    assert_resolves(f, "fw@example.org", "local:alice@example.org,Someone@elsewhere.net!");
}

static void count_row(void *arg, const char *address, const char *folder)
{
    assert_string_equal(address, "dev@example.org");
    assert_string_equal(folder, "News/dev");
    (*(int *)arg)++;
}

/* Mail-enabled public folders: resolved as an alias would be, to the folder of #public. */
static void test_public_folders(void **state)
{
    struct fixture *f = *state;
    struct buf err = BUF_INIT;
    user(f, "alice@example.org");
    alias(f, "@example.org", "alice@example.org", NULL);
    assert_resolves(f, "dev@example.org", "local:alice@example.org"); /* the catch-all, first */
    assert_int_equal(directory_public_address_add(f->d, "dev@Example.ORG", "News/dev", &err),
                     DIRECTORY_OK);
    assert_resolves(f, "dev@example.org", "local:#public/News/dev");
    assert_resolves(f, "dev+topic@example.org", "local:#public/News/dev"); /* as an alias */
    assert_resolves(f, "Dev@example.org", "local:alice@example.org");      /* local parts exact */
    /* an alias may lead there, beside people */
    alias(f, "team@example.org", "dev@example.org", "alice@example.org");
    assert_resolves(f, "team@example.org", "local:alice@example.org,#public/News/dev");
    struct buf folder = BUF_INIT;
    assert_int_equal(directory_public_folder(f->d, "dev@example.org", &folder, &err), 1);
    assert_string_equal(folder.data, "News/dev");
    assert_int_equal(directory_public_folder(f->d, "team@example.org", &folder, &err), 0);
    int rows = 0;
    assert_int_equal(directory_public_address_list(f->d, "example.org", count_row, &rows, &err),
                     DIRECTORY_OK);
    assert_int_equal(rows, 1);
    /* one address, one meaning: neither an alias, an account nor another folder's */
    buf_reset(&err);
    assert_int_equal(directory_public_address_add(f->d, "dev@example.org", "News/other", &err),
                     DIRECTORY_ERR_EXISTS);
    assert_non_null(strstr(err.data, "News/dev"));
    assert_int_equal(directory_public_address_add(f->d, "alice@example.org", "News", &err),
                     DIRECTORY_ERR_EXISTS);
    assert_int_equal(directory_public_address_add(f->d, "team@example.org", "News", &err),
                     DIRECTORY_ERR_EXISTS);
    assert_int_equal(directory_account_add(f->d, "dev@example.org", NULL, 0, 0, &err),
                     DIRECTORY_ERR_EXISTS);
    char *t[] = {"alice@example.org"};
    assert_int_equal(directory_alias_add(f->d, "dev@example.org", t, 1, &err),
                     DIRECTORY_ERR_EXISTS);
    assert_int_equal(directory_public_address_add(f->d, "x@nowhere.test", "News", &err),
                     DIRECTORY_ERR_UNKNOWN_DOMAIN);
    assert_int_equal(directory_public_address_add(f->d, "not an address", "News", &err),
                     DIRECTORY_ERR_INVALID);
    /* removed: the address is nobody's again (here the catch-all's) */
    assert_int_equal(directory_public_address_del(f->d, "dev@example.org", &err), DIRECTORY_OK);
    assert_resolves(f, "dev@example.org", "local:alice@example.org");
    assert_int_equal(directory_public_address_del(f->d, "dev@example.org", &err),
                     DIRECTORY_ERR_NOT_FOUND);
    assert_int_equal(directory_alias_del(f->d, "@example.org", NULL, 0, &err), DIRECTORY_OK);
    assert_resolves(f, "dev@example.org", "no-such-user:");
    buf_free(&folder);
    buf_free(&err);
}

static void test_depth_and_fanout(void **state)
{
    struct fixture *f = *state; /* max depth 3, max targets 4 */
    user(f, "alice@example.org");
    alias(f, "c1@example.org", "c2@example.org", NULL);
    alias(f, "c2@example.org", "c3@example.org", NULL);
    alias(f, "c3@example.org", "alice@example.org", NULL);
    assert_resolves(f, "c1@example.org", "local:alice@example.org");
    alias(f, "c0@example.org", "c1@example.org", NULL);
    assert_resolves(f, "c0@example.org", "tempfail");
    struct buf err = BUF_INIT;
    struct directory_result r;
    assert_int_equal(directory_resolve(f->d, "c0@example.org", &r, &err), -1);
    assert_non_null(strstr(err.data, "directory_alias_max_depth"));
    assert_int_equal(r.n_targets + r.n_remote, 0);
    /* An alias that only forwards elsewhere is still ours: LOCAL with remote targets. */
    alias(f, "fwd@example.org", "out@remote.test", NULL);
    assert_resolves(f, "fwd@example.org", "local:out@remote.test!");
    alias(f, "many@example.org", "r1@remote.test", "r2@remote.test");
    alias(f, "many@example.org", "r3@remote.test", "r4@remote.test");
    assert_resolves(f, "many@example.org",
                    "local:r1@remote.test!,r2@remote.test!,r3@remote.test!,r4@remote.test!");
    alias(f, "many@example.org", "r5@remote.test", NULL);
    assert_resolves(f, "many@example.org", "tempfail");
    buf_free(&err);
}

static void test_quota_and_hash(void **state)
{
    struct fixture *f = *state;
    struct buf err = BUF_INIT, acct = BUF_INIT, hash = BUF_INIT;
    assert_int_equal(directory_account_add(f->d, "alice@Example.org", "$6$abc", 1 << 20, 100, &err),
                     DIRECTORY_OK);
    uint64_t b, m;
    assert_int_equal(directory_quota(f->d, "alice@example.org", &b, &m), 0);
    assert_int_equal(b, 1 << 20);
    assert_int_equal(m, 100);
    assert_int_equal(directory_account_set_quota(f->d, "alice@example.org", 5, 0, &err),
                     DIRECTORY_OK);
    assert_int_equal(directory_quota(f->d, "alice@example.org", &b, &m), 0);
    assert_int_equal(b, 5);
    assert_int_equal(m, 0);
    assert_int_equal(directory_quota(f->d, "nobody@example.org", &b, &m), -1);
    assert_int_equal(directory_account_hash(f->d, "alice@EXAMPLE.ORG", &acct, &hash, &err),
                     DIRECTORY_OK);
    assert_string_equal(acct.data, "alice@example.org");
    assert_string_equal(hash.data, "$6$abc");
    assert_int_equal(directory_account_set_hash(f->d, "alice@example.org", "$y$new", &err),
                     DIRECTORY_OK);
    assert_int_equal(directory_account_hash(f->d, "alice@example.org", &acct, &hash, &err),
                     DIRECTORY_OK);
    assert_string_equal(hash.data, "$y$new");
    assert_int_equal(directory_account_hash(f->d, "bob@example.org", &acct, &hash, &err),
                     DIRECTORY_ERR_NOT_FOUND);
    assert_int_equal(directory_account_set_hash(f->d, "bob@example.org", "$y$", &err),
                     DIRECTORY_ERR_NOT_FOUND);
    /* The hashes are not in directory.db: a handle without the credentials has none... */
    struct directory *plain = directory_open(&f->cfg, &err);
    assert_non_null(plain);
    assert_int_equal(directory_account_hash(plain, "alice@example.org", &acct, &hash, &err),
                     DIRECTORY_ERR_DB);
    assert_int_equal(directory_account_set_hash(plain, "alice@example.org", "$y$x", &err),
                     DIRECTORY_ERR_DB);
    directory_close(plain);
    /* ...and the auth process's handle, on the credentials alone, has them. */
    struct directory *cred = directory_open_credentials(&f->cfg, &err);
    assert_non_null(cred);
    assert_int_equal(directory_account_hash(cred, "alice@example.org", &acct, &hash, &err),
                     DIRECTORY_OK);
    assert_string_equal(hash.data, "$y$new");
    assert_int_equal(directory_account_del(f->d, "alice@example.org", &err), DIRECTORY_OK);
    assert_int_equal(directory_account_hash(cred, "alice@example.org", &acct, &hash, &err),
                     DIRECTORY_ERR_NOT_FOUND);
    directory_close(cred);
    buf_free(&err);
    buf_free(&acct);
    buf_free(&hash);
}

static void test_reopen_keeps_schema(void **state)
{
    struct fixture *f = *state;
    user(f, "alice@example.org");
    directory_close(f->d);
    struct buf err = BUF_INIT;
    f->d = directory_open(&f->cfg, &err);
    assert_non_null(f->d);
    assert_resolves(f, "alice@example.org", "local:alice@example.org");
    buf_free(&err);
}

/* The SRS sender of from, or "" when it is kept. */
static char *srs_forward_of(struct fixture *f, const char *from)
{
    struct buf out = BUF_INIT, err = BUF_INIT;
    int rc = directory_srs_forward(f->d, from, &out, &err);
    assert_int_equal(rc, out.len > 0 ? 1 : 0);
    buf_free(&err);
    return buf_steal(&out, NULL);
}

static void test_srs(void **state)
{
    struct fixture *f = *state;
    user(f, "bob@example.org");
    char *srs = srs_forward_of(f, "alice@sender.test");
    assert_true(strncmp(srs, "SRS0=", 5) == 0);
    assert_non_null(strstr(srs, "=sender.test=alice@Example.org"));
    assert_resolves(f, srs, "local:alice@sender.test!");
    for (char *p = srs; *p; p++) /* the whole address in lower case: still valid */
        *p = (char)tolower((unsigned char)*p);
    assert_resolves(f, srs, "local:alice@sender.test!");
    srs[5] = srs[5] == 'a' ? 'b' : 'a'; /* forged */
    assert_resolves(f, srs, "no-such-user:");
    assert_resolves(f, "SRS0=abcd@example.org", "no-such-user:");
    assert_resolves(f, "bob@example.org", "local:bob@example.org");
    assert_resolves(f, "nobody@example.org", "no-such-user:");
    free(srs);
    /* kept: our domains, srs_domain itself, excluded domains, the null sender */
    const char *kept[] = {"bob@example.org", "x@EXAMPLE.ORG", "x@friend.test", "", "foo"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(*kept); i++) {
        srs = srs_forward_of(f, kept[i]);
        assert_string_equal(srs, "");
        free(srs);
    }
    /* a foreign SRS0 sender becomes SRS1, whose bounce goes to that forwarder */
    srs = srs_forward_of(f, "SRS0=abcd=2W=x.test=y@other.test");
    assert_true(strncmp(srs, "SRS1=", 5) == 0);
    assert_resolves(f, srs, "local:SRS0=abcd=2W=x.test=y@other.test!");
    free(srs);
    /* back through this server: an SRS1 made elsewhere of our SRS0 -> our SRS0 -> the sender */
    char *once = srs_forward_of(f, "carol@far.test");
    struct buf foreign = BUF_INIT;
    buf_printf(&foreign, "SRS1=XXXX=Example.org=%.*s@b.test", (int)(strrchr(once, '@') - once - 4),
               once + 4);
    srs = srs_forward_of(f, foreign.data);
    assert_true(strncmp(srs, "SRS1=", 5) == 0);
    assert_resolves(f, srs, "local:carol@far.test!");
    free(srs);
    free(once);
    buf_free(&foreign);
    struct stat st;
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/directory/srs.key", f->dir);
    assert_int_equal(stat(path.data, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    buf_free(&path);
}

static void test_srs_domain_apart(void **state)
{
    struct fixture *f = *state;
    char *srs = srs_forward_of(f, "alice@sender.test");
    assert_non_null(strstr(srs, "@bounces.test"));
    assert_resolves(f, srs, "local:alice@sender.test!");
    assert_resolves(f, "bob@bounces.test", "not-local:");
    assert_resolves(f, "SRS0=abcd=2W=x.test=y@bounces.test", "no-such-user:");
    free(srs);
    srs = srs_forward_of(f, "a@example.org"); /* ours: kept */
    assert_string_equal(srs, "");
    free(srs);
}

/* The driver table: the option names the driver, an unknown one is refused. */
static void test_driver_option(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(directory_driver_name(f->d), "sqlite");
    struct wharf_config cfg;
    struct buf text = BUF_INIT, err = BUF_INIT;
    buf_printf(&text, "data_directory = %s\ndirectory_driver = nosuch\n", f->dir);
    config_init(&cfg);
    assert_int_equal(config_load_string(&cfg, "test", text.data, &err), 0);
    assert_int_equal(config_finalize(&cfg, &err), 0);
    assert_null(directory_open(&cfg, &err));
    assert_non_null(strstr(buf_cstr(&err), "directory_driver"));
    buf_reset(&err);
    assert_null(directory_open_credentials(&cfg, &err));
    assert_int_equal(directory_backup(&cfg, DIRECTORY_PART_ACCOUNTS, f->dir, &err), -1);
    config_free(&cfg);
    buf_free(&text);
    buf_free(&err);
}

struct listed {
    struct buf text;
};

static void list_account(void *arg, const struct directory_account *a)
{
    struct listed *l = arg;
    buf_printf(&l->text, "%s %llu %llu %d [%s];", a->name, (unsigned long long)a->quota_bytes,
               (unsigned long long)a->quota_messages, a->has_password, a->home);
}

static void list_alias(void *arg, const char *address, const char *target)
{
    struct listed *l = arg;
    buf_printf(&l->text, "%s>%s;", address, target);
}

static void list_domain(void *arg, const char *domain)
{
    struct listed *l = arg;
    buf_printf(&l->text, "%s;", domain);
}

/* What the generic code words and checks before the driver sees a name. */
static void test_admin(void **state)
{
    struct fixture *f = *state;
    struct buf err = BUF_INIT;
    struct listed l = {BUF_INIT};
    assert_int_equal(directory_domain_add(f->d, "EXAMPLE.org", &err), DIRECTORY_ERR_EXISTS);
    assert_non_null(strstr(buf_cstr(&err), "domain example.org already exists"));
    buf_reset(&err);
    assert_int_equal(directory_domain_add(f->d, "bad..domain", &err), DIRECTORY_ERR_INVALID);
    assert_int_equal(directory_domain_add(f->d, "other.test", &err), DIRECTORY_OK);
    assert_int_equal(directory_domain_list(f->d, list_domain, &l, &err), DIRECTORY_OK);
    assert_string_equal(buf_cstr(&l.text), "example.org;other.test;");
    assert_int_equal(directory_account_add(f->d, "bob@nowhere.test", NULL, 0, 0, &err),
                     DIRECTORY_ERR_UNKNOWN_DOMAIN);
    user(f, "bob@example.org");
    assert_int_equal(directory_account_add(f->d, "carol@Example.org", NULL, 7, 3, &err),
                     DIRECTORY_OK);
    buf_reset(&err);
    assert_int_equal(directory_account_add(f->d, "bob@EXAMPLE.org", NULL, 0, 0, &err),
                     DIRECTORY_ERR_EXISTS);
    assert_string_equal(buf_cstr(&err), "account bob@example.org already exists");
    buf_reset(&l.text);
    assert_int_equal(directory_account_list(f->d, "Example.ORG", list_account, &l, &err),
                     DIRECTORY_OK);
    assert_string_equal(buf_cstr(&l.text), "bob@example.org 0 0 1 [];carol@example.org 7 3 0 [];");
    assert_int_equal(directory_account_list(f->d, "-bad", list_account, &l, &err),
                     DIRECTORY_ERR_INVALID);
    alias(f, "all@example.org", "bob@example.org", "carol@example.org");
    buf_reset(&err);
    assert_int_equal(directory_domain_del(f->d, "example.org", &err), DIRECTORY_ERR_IN_USE);
    assert_non_null(strstr(buf_cstr(&err), "2 accounts and 2 alias entries"));
    char *t[] = {"nobody@example.org", "not an address"};
    buf_reset(&err);
    assert_int_equal(directory_alias_del(f->d, "all@example.org", t, 1, &err),
                     DIRECTORY_ERR_NOT_FOUND);
    assert_string_equal(buf_cstr(&err), "no such alias target: all@example.org");
    assert_int_equal(directory_alias_del(f->d, "all@example.org", t + 1, 1, &err),
                     DIRECTORY_ERR_INVALID);
    t[0] = "Carol@EXAMPLE.org"; /* the local part is kept as given: no such target */
    assert_int_equal(directory_alias_del(f->d, "all@example.org", t, 1, &err),
                     DIRECTORY_ERR_NOT_FOUND);
    t[0] = "carol@EXAMPLE.org";
    assert_int_equal(directory_alias_del(f->d, "all@example.org", t, 1, &err), DIRECTORY_OK);
    buf_reset(&l.text);
    assert_int_equal(directory_alias_list(f->d, NULL, list_alias, &l, &err), DIRECTORY_OK);
    assert_string_equal(buf_cstr(&l.text), "all@example.org>bob@example.org;");
    assert_int_equal(directory_alias_del(f->d, "all@example.org", NULL, 0, &err), DIRECTORY_OK);
    assert_int_equal(directory_account_del(f->d, "bob@example.org", &err), DIRECTORY_OK);
    buf_reset(&err);
    assert_int_equal(directory_account_del(f->d, "bob@example.org", &err), DIRECTORY_ERR_NOT_FOUND);
    assert_string_equal(buf_cstr(&err), "no such account: bob@example.org");
    assert_int_equal(directory_account_set_quota(f->d, "bob@example.org", 1, 1, &err),
                     DIRECTORY_ERR_NOT_FOUND);
    assert_int_equal(directory_account_del(f->d, "carol@example.org", &err), DIRECTORY_OK);
    assert_int_equal(directory_domain_del(f->d, "example.org", &err), DIRECTORY_OK);
    buf_reset(&err);
    assert_int_equal(directory_domain_del(f->d, "example.org", &err), DIRECTORY_ERR_NOT_FOUND);
    assert_string_equal(buf_cstr(&err), "no such domain: example.org");
    buf_free(&l.text);
    buf_free(&err);
}

/* directory_backup: a copy with the layout of DATA, which opens as a directory of its own. */
static void test_backup(void **state)
{
    struct fixture *f = *state;
    user(f, "alice@example.org");
    struct buf dir = BUF_INIT, err = BUF_INIT, text = BUF_INIT, acct = BUF_INIT, hash = BUF_INIT;
    buf_printf(&dir, "%s/backup", f->dir);
    assert_int_equal(mkdir(dir.data, 0700), 0);
    assert_int_equal(directory_backup(&f->cfg, DIRECTORY_PART_CREDENTIALS, dir.data, &err), 0);
    assert_int_equal(directory_backup(&f->cfg, DIRECTORY_PART_ACCOUNTS, dir.data, &err), 0);
    struct wharf_config cfg;
    buf_printf(&text, "data_directory = %s\nmydomains = config.test\n", dir.data);
    config_init(&cfg);
    assert_int_equal(config_load_string(&cfg, "test", text.data, &err), 0);
    assert_int_equal(config_finalize(&cfg, &err), 0);
    struct directory *copy = directory_open_credentials(&cfg, &err);
    assert_non_null(copy);
    assert_int_equal(directory_account_hash(copy, "alice@example.org", &acct, &hash, &err),
                     DIRECTORY_OK);
    assert_string_equal(hash.data, "$y$x");
    directory_close(copy);
    copy = directory_open(&cfg, &err);
    assert_non_null(copy);
    uint64_t b, m;
    assert_int_equal(directory_quota(copy, "alice@example.org", &b, &m), 0);
    directory_close(copy);
    remove_data(dir.data);
    config_free(&cfg);
    buf_free(&dir);
    buf_free(&err);
    buf_free(&text);
    buf_free(&acct);
    buf_free(&hash);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_domain_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detail_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catchall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loops_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth_and_fanout, setup_shallow, teardown),
        cmocka_unit_test_setup_teardown(test_quota_and_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_srs, setup_srs, teardown),
        cmocka_unit_test_setup_teardown(test_srs_domain_apart, setup_srs_apart, teardown),
        cmocka_unit_test_setup_teardown(test_driver_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
