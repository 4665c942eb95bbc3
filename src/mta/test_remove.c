/*
 * test_remove.c - the spool removal thread: an entry leaves the queue at
 * once and stays pending until its file is gone, the loop learns of it,
 * shutdown finishes what was submitted, and a start removes what a crash
 * left retired. Against a real spool in a temporary directory.
 */
#include "base/testdir.h"
#include "base/alloc.h"
#include "mta/mta_remove.h"
#include "spool/spool.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static struct wharf_config cfg;
static char dir[] = "/tmp/wharf-remove-test-XXXXXX";

static void spool_one(char id[32])
{
    struct spool_message m = {0};
    struct buf err = BUF_INIT;
    spool_new_id(m.env.id);
    m.env.sender = xstrdup("a@example.org");
    m.env.n_rcpts = 1;
    m.env.rcpts = xcalloc(1, sizeof(struct spool_rcpt));
    m.env.rcpts[0].address = xstrdup("b@example.test");
    buf_init(&m.data);
    buf_append(&m.data, "Subject: x\r\n\r\nbody\r\n", 20);
    assert_int_equal(spool_write(&cfg, &m, &err), 0);
    memcpy(id, m.env.id, 32);
    spool_message_free(&m);
    buf_free(&err);
}

static bool in_spool(const char *id)
{
    char **ids;
    size_t n;
    struct buf err = BUF_INIT;
    assert_int_equal(spool_list(&cfg, &ids, &n, &err), 0);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(ids[i], id) == 0;
    spool_list_free(ids, n);
    buf_free(&err);
    return found;
}

static void test_pending_until_removed(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct buf err = BUF_INIT;
    struct mta_remove *r = mta_remove_new(base, &cfg, &err);
    assert_non_null(r);
    char a[32], b[32];
    spool_one(a);
    spool_one(b);
    mta_remove_submit(r, a);
    assert_false(in_spool(a)); /* out of the queue at once: a crash now does not repeat it */
    assert_true(mta_remove_pending(r, a)); /* until the loop hears of it */
    assert_false(mta_remove_pending(r, b));
    for (int i = 0; i < 500 && mta_remove_pending(r, a); i++)
        event_base_loop(base, EVLOOP_ONCE); /* the wake-up pipe */
    assert_false(mta_remove_pending(r, a));
    assert_false(in_spool(a));
    assert_true(in_spool(b));
    /* submitted, then shut down at once: removed all the same */
    mta_remove_submit(r, b);
    mta_remove_free(r);
    assert_false(in_spool(b));
    event_base_free(base);
    buf_free(&err);
}

static size_t retired(void)
{
    char **ids;
    size_t n;
    struct buf err = BUF_INIT;
    assert_int_equal(spool_list_retired(&cfg, &ids, &n, &err), 0);
    spool_list_free(ids, n);
    buf_free(&err);
    return n;
}

/* What a crash left retired is removed when the next remover starts. */
static void test_leftovers_removed_at_start(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    char a[32];
    spool_one(a);
    assert_int_equal(spool_retire(&cfg, a, &err), 0);
    assert_int_equal(retired(), 1);
    struct event_base *base = event_base_new();
    struct mta_remove *r = mta_remove_new(base, &cfg, &err);
    assert_non_null(r);
    mta_remove_free(r); /* finishes what it submitted */
    assert_int_equal(retired(), 0);
    assert_false(in_spool(a));
    event_base_free(base);
    buf_free(&err);
}

int main(void)
{
    struct buf err = BUF_INIT;
    if (testdir_open(&cfg, dir) != 0)
        return 1;
    if (spool_init(&cfg, &err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_until_removed),
        cmocka_unit_test(test_leftovers_removed_at_start),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (testdir_close(&cfg, dir) != 0)
        rc = 1;
    buf_free(&err);
    return rc;
}
