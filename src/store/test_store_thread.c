/*
 * test_store_thread.c - unit tests of the store's JMAP threads
 * (sq_thread.c): a reply joins its parent's thread by In-Reply-To or
 * References when the base subject matches; the same subject without
 * references, or a reply whose subject changed, starts a thread; copies and
 * moves keep the thread; a store migrated from before threads gets them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "store/store.h"
#include "store/test_store_util.h"

#include <sqlite3.h>

#define ALICE "alice@example.test"
#define BOB "bob@example.test"

static const char parent[] = "Message-ID: <p1@example.test>\r\n"
                             "Subject: Lunch plans\r\n\r\nshall we?\r\n";
static const char reply[] = "Message-ID: <r1@example.test>\r\n"
                            "In-Reply-To: <p1@example.test>\r\n"
                            "Subject: Re: Lunch plans\r\n\r\nyes\r\n";
static const char reply2[] = "Message-ID: <r2@example.test>\r\n"
                             "References: <p1@example.test> <r1@example.test>\r\n"
                             "Subject: RE: [team] Lunch plans\r\n\r\nme too\r\n";
static const char same_subject[] = "Message-ID: <x1@example.test>\r\n"
                                   "Subject: Lunch plans\r\n\r\nanother lunch\r\n";
static const char changed_subject[] = "Message-ID: <c1@example.test>\r\n"
                                      "In-Reply-To: <p1@example.test>\r\n"
                                      "Subject: Dinner instead\r\n\r\nno\r\n";

static uint32_t put(struct store *s, const char *owner, const char *mailbox, const char *body)
{
    struct store_target t = {.owner = owner, .mailbox = mailbox};
    struct store_delivery d = {.data = slice_from_cstr(body), .targets = &t, .n_targets = 1};
    struct buf err = BUF_INIT;
    if (store_deliver(s, &d, 1, &err) != 0 || t.status != STORE_OK)
        fail_msg("deliver: %s", buf_cstr(&err));
    buf_free(&err);
    return t.uid;
}

/* The thread of owner's copy of body (the first one found); 0 when none. */
static int64_t thread_of(struct store *s, const char *owner, const char *body)
{
    char hash[65];
    store_body_id(slice_from_cstr(body), hash);
    struct store_account_message *v;
    size_t n;
    struct buf err = BUF_INIT;
    assert_int_equal(store_account_messages(s, owner, hash, 0, false, &v, &n, &err), 0);
    buf_free(&err);
    int64_t t = n ? v[0].thread : 0;
    for (size_t i = 1; i < n; i++)
        assert_int_equal(v[i].thread, t); /* every copy of one body: one thread */
    store_account_messages_free(v, n);
    return t;
}

static void check_threads(struct store *s)
{
    int64_t p = thread_of(s, ALICE, parent);
    assert_true(p > 0);
    assert_int_equal(thread_of(s, ALICE, reply), p);
    assert_int_equal(thread_of(s, ALICE, reply2), p);
    int64_t x = thread_of(s, ALICE, same_subject);
    int64_t c = thread_of(s, ALICE, changed_subject);
    assert_true(x > 0 && x != p);
    assert_true(c > 0 && c != p && c != x);
}

static void test_assign(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    struct store *s = store_open_temporary(&err);
    assert_non_null(s);
    put(s, ALICE, NULL, parent);
    put(s, ALICE, NULL, reply);
    put(s, ALICE, NULL, reply2);
    put(s, ALICE, NULL, same_subject);
    put(s, ALICE, NULL, changed_subject);
    check_threads(s);
    /* a child that came before its parent: the parent joins the child's thread */
    put(s, BOB, NULL, reply);
    put(s, BOB, NULL, parent);
    assert_int_equal(thread_of(s, BOB, parent), thread_of(s, BOB, reply));
    /* another account's threads are its own */
    assert_true(thread_of(s, BOB, parent) != thread_of(s, ALICE, parent));
    /* a copy (and a second delivery of the same body) keeps the thread */
    int64_t p = thread_of(s, ALICE, parent);
    assert_int_equal(store_mailbox_create(s, ALICE, "Keep", NULL, &err), 0);
    uint32_t uid = 1, new_uid = 0;
    assert_int_equal(store_message_copy(s, ALICE, "INBOX", &uid, 1, "Keep", true, &new_uid, &err),
                     0);
    assert_true(new_uid > 0);
    put(s, ALICE, "Keep", parent);
    assert_int_equal(thread_of(s, ALICE, parent), p);
    /* the move left the thread: it is in the threads touched since */
    struct store_account_gone g;
    assert_int_equal(store_account_gone(s, ALICE, 0, &g, &err), 0);
    bool touched = false;
    for (size_t i = 0; i < g.n_threads; i++)
        touched = touched || g.threads[i] == p;
    assert_true(touched);
    store_account_gone_free(&g);
    buf_free(&err);
    store_close(s);
}

/* A store from before threads: opening it gives every stored message its
 * thread, linked as delivery would have linked them. */
static void test_migrate(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/wharf-test-thread-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    struct buf err = BUF_INIT;
    struct store *s = store_open_dir(tmpl, NULL, &err);
    assert_non_null(s);
    put(s, ALICE, NULL, parent);
    put(s, ALICE, NULL, reply);
    put(s, ALICE, NULL, reply2);
    put(s, ALICE, NULL, same_subject);
    put(s, ALICE, NULL, changed_subject);
    store_close(s);
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/store.db", tmpl);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path.data, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int(st, 0) > 14); /* past the threads step */
    sqlite3_finalize(st);
    struct buf sql = BUF_INIT;
    buf_printf(&sql, UNDO_AFTER_13 "ALTER TABLE blobs DROP COLUMN body; PRAGMA user_version = %d;",
               13); /* before the threads step (13 -> 14); the later steps run again */
    assert_int_equal(sqlite3_exec(db, sql.data, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    buf_free(&sql);
    buf_free(&path);
    s = store_open_dir(tmpl, NULL, &err);
    assert_non_null(s);
    check_threads(s);
    /* and a reply delivered after the migration joins an old thread */
    static const char late[] = "Message-ID: <l1@example.test>\r\n"
                               "In-Reply-To: <r2@example.test>\r\n"
                               "Subject: Re: Lunch plans\r\n\r\nlate\r\n";
    put(s, ALICE, NULL, late);
    assert_int_equal(thread_of(s, ALICE, late), thread_of(s, ALICE, parent));
    store_close(s);
    buf_free(&err);
    char *argv[] = {"rm", "-rf", tmpl, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execvp("rm", argv);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign),
        cmocka_unit_test(test_migrate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
