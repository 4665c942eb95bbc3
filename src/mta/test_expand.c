/*
 * test_expand.c - unit tests of the categorizer (mta_expand.h) against a real
 * directory in a temporary folder: local and remote targets, ORCPT and
 * NOTIFY, duplicates, loops, the depth limit, the entry limit, and that an expanded entry
 * survives a spool round trip and is never expanded twice.
 */
#include "base/testdir.h"
#include "base/alloc.h"
#include "directory/directory.h"
#include "mta/mta_expand.h"
#include "spool/spool.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[] = "/tmp/wharf-expand-test-XXXXXX";
static struct wharf_config cfg;
static struct directory *d;

static void alias(const char *a, const char *t1, const char *t2, const char *t3)
{
    struct buf err = BUF_INIT;
    char *t[] = {(char *)t1, (char *)t2, (char *)t3};
    size_t n = t3 ? 3 : t2 ? 2 : 1;
    assert_int_equal(directory_alias_add(d, a, t, n, &err), DIRECTORY_OK);
    buf_free(&err);
}

/* An entry with the given recipients; the first has NOTIFY and ORCPT when orcpt is set. */
static void entry(struct spool_message *m, const char *const *rcpts, size_t n, const char *orcpt)
{
    memset(m, 0, sizeof(*m));
    spool_new_id(m->env.id);
    m->env.sender = xstrdup("sender@example.org");
    m->env.rcpts = xcalloc(n, sizeof(*m->env.rcpts));
    m->env.n_rcpts = n;
    for (size_t i = 0; i < n; i++)
        m->env.rcpts[i].address = xstrdup(rcpts[i]);
    if (orcpt) {
        m->env.rcpts[0].orcpt = xstrdup(orcpt);
        m->env.rcpts[0].notify = SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE;
    }
    buf_init(&m->data);
    buf_append_cstr(&m->data, "Subject: x\r\n\r\nx\r\n");
}

/* The recipients as "address[=state][+account/folder](orcpt)" joined by spaces. */
static char *render(const struct spool_envelope *e)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < e->n_rcpts; i++) {
        const struct spool_rcpt *r = &e->rcpts[i];
        buf_printf(&b, "%s%s", i ? " " : "", r->address);
        if (r->state != SPOOL_RCPT_PENDING)
            buf_printf(&b, "=%s", spool_rcpt_state_name(r->state));
        if (r->account)
            buf_printf(&b, "+account%s%s", r->folder ? "/" : "", r->folder ? r->folder : "");
        if (r->orcpt)
            buf_printf(&b, "(%s)", r->orcpt);
    }
    return buf_steal(&b, NULL);
}

#define assert_entry(m, expect)                                                                    \
    do {                                                                                           \
        char *got_ = render(&(m)->env);                                                            \
        assert_string_equal(got_, expect);                                                         \
        free(got_);                                                                                \
    } while (0)

static void test_local_and_remote_targets(void **state)
{
    struct spool_message m, r;
    struct buf err = BUF_INIT;
    const char *rc[] = {"team@example.org", "alice@example.org", "x@remote.test"};
    entry(&m, rc, 3, "rfc822;Team@example.org");
    assert_int_equal(mta_expand(d, &m), 1);
    /* x is already a recipient: not added twice. The account alice is added even though
     * alice@ is one (it may be an alias of its own): the store's (queue id, account)
     * dedupe gives her one copy. bob's +detail is kept. */
    assert_entry(&m, "team@example.org=expanded(rfc822;Team@example.org) alice@example.org "
                     "x@remote.test alice@example.org+account(rfc822;Team@example.org) "
                     "bob@example.org+account/work(rfc822;Team@example.org) "
                     "carol@remote.test(rfc822;Team@example.org)");
    assert_int_equal(m.env.rcpts[5].notify, SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE);
    assert_int_equal(m.env.rcpts[1].notify, 0);
    /* the expansion survives the spool and is never made twice */
    assert_int_equal(spool_write(&cfg, &m, &err), 0);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_int_equal(mta_expand(d, &r), 0);
    char *a = render(&m.env), *b = render(&r.env);
    assert_string_equal(a, b);
    free(a);
    free(b);
    assert_string_equal(mta_expand_orig_to(r.env.rcpts[4].orcpt), "Team@example.org");
    spool_message_free(&r);
    spool_message_free(&m);
    /* without ORCPT the alias itself is the original recipient; a local-only alias stays */
    const char *rc2[] = {"local@example.org", "fw@example.org"};
    entry(&m, rc2, 2, NULL);
    assert_int_equal(mta_expand(d, &m), 1);
    assert_entry(&m, "local@example.org fw@example.org=expanded "
                     "alice@example.org+account(rfc822;fw@example.org) "
                     "Someone@elsewhere.net(rfc822;fw@example.org)");
    spool_message_free(&m);
    buf_free(&err);
}

static void test_duplicates_and_loops(void **state)
{
    struct spool_message m;
    /* two aliases with a common remote target (domain in another case): it is sent once;
     * local parts are compared exactly (accounts.md) */
    const char *rc[] = {"fw@example.org", "fw2@example.org"};
    entry(&m, rc, 2, NULL);
    assert_int_equal(mta_expand(d, &m), 2);
    assert_entry(&m, "fw@example.org=expanded fw2@example.org=expanded "
                     "alice@example.org+account(rfc822;fw@example.org) "
                     "Someone@elsewhere.net(rfc822;fw@example.org) "
                     "someone@elsewhere.net(rfc822;fw2@example.org)");
    spool_message_free(&m);
    /* a loop that also forwards: each target once, and no hang */
    const char *rc2[] = {"p@example.org"};
    entry(&m, rc2, 1, NULL);
    assert_int_equal(mta_expand(d, &m), 1);
    assert_entry(&m, "p@example.org=expanded q@remote.test(rfc822;p@example.org) "
                     "r@remote.test(rfc822;p@example.org)");
    spool_message_free(&m);
    /* a pure loop is not expanded: local delivery bounces it (5.4.6) */
    const char *rc3[] = {"a@example.org"};
    entry(&m, rc3, 1, NULL);
    assert_int_equal(mta_expand(d, &m), 0);
    assert_entry(&m, "a@example.org");
    spool_message_free(&m);
}

static void test_depth_limit(void **state)
{
    /* c0 -> c1 -> ... -> c25 -> far@remote.test: deeper than directory_alias_max_depth (20) */
    char name[64], next[64];
    for (int i = 0; i <= 25; i++) {
        snprintf(name, sizeof(name), "c%d@example.org", i);
        snprintf(next, sizeof(next), "c%d@example.org", i + 1);
        alias(name, i == 25 ? "far@remote.test" : next, NULL, NULL);
    }
    struct spool_message m;
    const char *rc[] = {"c0@example.org", "c10@example.org"};
    entry(&m, rc, 2, NULL);
    /* c0's chain is too deep: left as it is (deferred by local delivery); c10's is not */
    assert_int_equal(mta_expand(d, &m), 1);
    assert_entry(&m, "c0@example.org c10@example.org=expanded "
                     "far@remote.test(rfc822;c10@example.org)");
    spool_message_free(&m);
}

/* An entry never grows past MTA_EXPAND_RCPTS_MAX: the alias is left for a later try. */
static void test_entry_limit(void **state)
{
    for (size_t have = MTA_EXPAND_RCPTS_MAX - 2; have >= MTA_EXPAND_RCPTS_MAX - 3; have--) {
        /* "have" recipients elsewhere, then fw@ (alice and Someone@elsewhere.net) */
        size_t n = have + 1;
        char **rc = xcalloc(n, sizeof(*rc));
        for (size_t i = 0; i < have; i++) {
            struct buf b = BUF_INIT;
            buf_printf(&b, "r%zu@remote.test", i);
            rc[i] = buf_steal(&b, NULL);
        }
        rc[have] = xstrdup("fw@example.org");
        struct spool_message m;
        entry(&m, (const char *const *)rc, n, NULL);
        bool fits = n + 2 <= MTA_EXPAND_RCPTS_MAX;
        assert_int_equal(mta_expand(d, &m), fits ? 1 : 0);
        assert_int_equal(m.env.n_rcpts, fits ? MTA_EXPAND_RCPTS_MAX : n);
        spool_message_free(&m);
        for (size_t i = 0; i < n; i++)
            free(rc[i]);
        free(rc);
    }
}

int main(void)
{
    struct buf err = BUF_INIT, text = BUF_INIT;
    if (testdir_open(&cfg, dir) != 0 || spool_init(&cfg, &err) != 0)
        return 1;
    buf_printf(&text, "%s/directory", dir);
    if (mkdir(text.data, 0700) != 0 || (d = directory_open(&cfg, &err)) == NULL)
        return 1;
    struct buf e2 = BUF_INIT;
    directory_domain_add(d, "example.org", &e2);
    for (const char *const *u = (const char *const[]){"alice@example.org", "bob@example.org",
                                                      "local@example.org", NULL};
         *u; u++)
        directory_account_add(d, *u, NULL, 0, 0, &e2);
    alias("team@example.org", "alice@example.org", "bob+work@example.org", "carol@remote.test");
    alias("team@example.org", "x@remote.test", NULL, NULL);
    alias("fw@example.org", "Someone@Elsewhere.NET", "alice@example.org", NULL);
    alias("fw2@example.org", "Someone@ELSEWHERE.net", "someone@elsewhere.net", NULL);
    alias("p@example.org", "q@remote.test", "p2@example.org", NULL);
    alias("p2@example.org", "p@example.org", "r@remote.test", "q@remote.test");
    alias("a@example.org", "b@example.org", NULL, NULL);
    alias("b@example.org", "a@example.org", NULL, NULL);
    buf_free(&e2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_and_remote_targets),
        cmocka_unit_test(test_duplicates_and_loops),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_entry_limit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    directory_close(d);
    if (testdir_close(&cfg, dir) != 0)
        rc = 1;
    buf_free(&err);
    buf_free(&text);
    return rc;
}
