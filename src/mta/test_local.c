/*
 * test_local.c - unit tests of local delivery (resolution -> one store
 * transaction), with a tiny directory stub defined in THIS FILE ONLY: the
 * real directory lives in src/directory and is tested there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "ipc/frame.h"
#include "mta/lda.h"
#include "mta/local.h"
#include <sysexits.h>

/* ---- directory stub (test only) ---- */

static bool directory_down;

static void add_target(struct directory_result *r, const char *account, const char *folder)
{
    r->targets = xreallocarray(r->targets, r->n_targets + 1, sizeof(*r->targets));
    r->targets[r->n_targets].account = xstrdup(account);
    r->targets[r->n_targets].folder = folder ? xstrdup(folder) : NULL;
    r->n_targets++;
}

int directory_resolve(struct directory *d, const char *address, struct directory_result *r,
                      struct buf *err)
{
    memset(r, 0, sizeof(*r));
    if (directory_down) {
        buf_append_cstr(err, "directory unavailable");
        return -1;
    }
    const char *at = strchr(address, '@');
    if (at == NULL || strcmp(at + 1, "example.test") != 0) {
        r->kind = at ? DIRECTORY_NOT_LOCAL : DIRECTORY_NO_SUCH_USER;
        return 0;
    }
    r->kind = DIRECTORY_LOCAL;
    if (strcmp(address, "team@example.test") == 0) {
        add_target(r, "alice@example.test", NULL);
        add_target(r, "bob@example.test", NULL);
    } else if (strcmp(address, "fwd@example.test") == 0) {
        add_target(r, "alice@example.test", NULL);
        r->remote = xcalloc(1, sizeof(char *));
        r->remote[r->n_remote++] = xstrdup("ext@other.test");
    } else if (strcmp(address, "out@example.test") == 0) {
        r->remote = xcalloc(1, sizeof(char *));
        r->remote[r->n_remote++] = xstrdup("ext@other.test");
    } else if (strcmp(address, "loop@example.test") == 0) {
        r->kind = DIRECTORY_NO_SUCH_USER; /* an alias that only leads back to itself */
        r->loop = true;
    } else if (strcmp(address, "alice+Lists@example.test") == 0)
        add_target(r, "alice@example.test", "Lists");
    else if (strcmp(address, "alice@example.test") == 0 ||
             strcmp(address, "bob@example.test") == 0 || strcmp(address, "carol@example.test") == 0)
        add_target(r, address, NULL);
    else
        r->kind = DIRECTORY_NO_SUCH_USER;
    return 0;
}

void directory_result_free(struct directory_result *r)
{
    for (size_t i = 0; i < r->n_targets; i++) {
        free(r->targets[i].account);
        free(r->targets[i].folder);
    }
    free(r->targets);
    for (size_t i = 0; i < r->n_remote; i++)
        free(r->remote[i]);
    free(r->remote);
    r->targets = NULL;
    r->n_targets = 0;
    r->remote = NULL;
    r->n_remote = 0;
}

int directory_quota(struct directory *d, const char *account, uint64_t *bytes_r,
                    uint64_t *messages_r)
{
    *bytes_r = 0;
    *messages_r = strcmp(account, "carol@example.test") == 0 ? 1 : 0;
    return 0;
}

/* ---- tests ---- */

static struct store *tmp_store(void)
{
    struct buf err = BUF_INIT;
    struct store *s = store_open_temporary(&err);
    assert_non_null(s);
    buf_free(&err);
    return s;
}

static uint64_t count(struct store *s, const char *owner, const char *box)
{
    struct store_mailbox mb;
    struct buf err = BUF_INIT;
    assert_int_equal(store_mailbox_get(s, owner, box, &mb, &err), 0);
    uint64_t n = mb.messages;
    store_mailbox_free(&mb);
    buf_free(&err);
    return n;
}

static int n_changed;

static void on_changed(void *arg, const char *account, const char *mailbox)
{
    n_changed++;
}

static void deliver(struct store *s, const char *qid, const char *folder, const char **addrs,
                    size_t n, enum local_status *st)
{
    struct local_rcpt r[8];
    for (size_t i = 0; i < n; i++)
        local_rcpt_init(&r[i], addrs[i]);
    struct local_message m = {.queue_id = qid,
                              .data = SLICE_LIT("Subject: t\r\n\r\nhi\r\n"),
                              .folder = folder,
                              .rcpts = r,
                              .n_rcpts = n};
    local_deliver(s, NULL, &m, 1, on_changed, NULL);
    for (size_t i = 0; i < n; i++) {
        st[i] = r[i].status;
        local_rcpt_free(&r[i]);
    }
}

static void test_kinds_and_single_instance(void **state)
{
    struct store *s = tmp_store();
    const char *a[] = {"team@example.test", "carol@example.test", "x@other.test",
                       "nobody@example.test", "alice+Lists@example.test"};
    enum local_status st[5];
    n_changed = 0;
    deliver(s, NULL, NULL, a, 5, st);
    assert_int_equal(st[0], LOCAL_DELIVERED);
    assert_int_equal(st[1], LOCAL_DELIVERED);
    assert_int_equal(st[2], LOCAL_NOT_LOCAL);
    assert_int_equal(st[3], LOCAL_NO_USER);
    assert_int_equal(st[4], LOCAL_DELIVERED); /* no folder Lists yet: INBOX */
    assert_int_equal(count(s, "alice@example.test", "INBOX"), 2);
    assert_int_equal(count(s, "bob@example.test", "INBOX"), 1);
    assert_int_equal(count(s, "carol@example.test", "INBOX"), 1);
    assert_true(n_changed >= 3);
    struct store_blob_stats bs;
    struct buf err = BUF_INIT;
    assert_int_equal(store_blob_stats(s, &bs, &err), 0);
    assert_int_equal(bs.blobs, 1); /* one body for four mailboxes */

    /* +detail into an existing folder; -m overrides. */
    assert_int_equal(store_mailbox_create(s, "alice@example.test", "Lists", NULL, &err), 0);
    const char *b[] = {"alice+Lists@example.test"};
    deliver(s, NULL, NULL, b, 1, st);
    assert_int_equal(count(s, "alice@example.test", "Lists"), 1);
    const char *c[] = {"alice@example.test"};
    deliver(s, NULL, "Archive", c, 1, st);
    assert_int_equal(count(s, "alice@example.test", "Archive"), 1);

    /* Quota: carol holds one message at most -> temporary failure. */
    const char *q[] = {"carol@example.test"};
    deliver(s, NULL, NULL, q, 1, st);
    assert_int_equal(st[0], LOCAL_TEMPFAIL);
    buf_free(&err);
    store_close(s);
}

static void test_exactly_once(void **state)
{
    struct store *s = tmp_store();
    const char *a[] = {"team@example.test", "alice@example.test"};
    enum local_status st[2];
    deliver(s, "QID1", NULL, a, 2, st);
    assert_int_equal(st[0], LOCAL_DELIVERED);
    assert_int_equal(st[1], LOCAL_DELIVERED); /* alice already has it from team@: once */
    assert_int_equal(count(s, "alice@example.test", "INBOX"), 1);
    /* A crash after the commit but before the spool update: the mta tries again. */
    deliver(s, "QID1", NULL, a, 2, st);
    assert_int_equal(st[0], LOCAL_DELIVERED);
    assert_int_equal(st[1], LOCAL_DELIVERED);
    assert_int_equal(count(s, "alice@example.test", "INBOX"), 1);
    assert_int_equal(count(s, "bob@example.test", "INBOX"), 1);
    store_close(s);
}

static void test_remote_forwards_stay_queued(void **state)
{
    struct store *s = tmp_store();
    const char *a[] = {"fwd@example.test", "out@example.test"};
    enum local_status st[2];
    deliver(s, "QID3", NULL, a, 2, st);
    assert_int_equal(st[0], LOCAL_FORWARDS_PENDING); /* alice has it; ext@other.test waits */
    assert_int_equal(st[1], LOCAL_NOT_LOCAL);        /* only a remote forward: never dropped */
    assert_int_equal(count(s, "alice@example.test", "INBOX"), 1);
    deliver(s, "QID3", NULL, a, 2, st); /* the retry finds the local part delivered */
    assert_int_equal(st[0], LOCAL_FORWARDS_PENDING);
    assert_int_equal(count(s, "alice@example.test", "INBOX"), 1);
    assert_int_equal(lda_status_code(LOCAL_FORWARDS_PENDING), 0);
    assert_int_equal(lda_status_code(LOCAL_NOT_LOCAL), EX_NOUSER);
    store_close(s);
}

/* Accounts reached by alias expansion (mta_expand.h) are delivered as they are. */
static void test_expanded_accounts_and_loops(void **state)
{
    struct store *s = tmp_store();
    struct buf err = BUF_INIT;
    assert_int_equal(store_mailbox_create(s, "alice@example.test", "Lists", NULL, &err), 0);
    struct local_rcpt r[4];
    const char *a[] = {"alice@example.test", "team@example.test", "loop@example.test",
                       "bob@example.test"};
    for (size_t i = 0; i < 4; i++)
        local_rcpt_init(&r[i], a[i]);
    r[0].account = r[1].account = true;
    r[0].folder = "Lists";
    r[0].orig_to = "fwd@example.test";
    struct local_message m = {.queue_id = "QID5",
                              .data = SLICE_LIT("Subject: t\r\n\r\nhi\r\n"),
                              .rcpts = r,
                              .n_rcpts = 4};
    local_deliver(s, NULL, &m, 1, NULL, NULL);
    assert_int_equal(r[0].status, LOCAL_DELIVERED); /* into its folder, no resolution */
    assert_int_equal(count(s, "alice@example.test", "Lists"), 1);
    assert_int_equal(r[1].status, LOCAL_NO_USER); /* an alias is no account: not followed */
    assert_int_equal(r[2].status, LOCAL_LOOP);
    assert_string_equal(r[2].detail.data, "alias loop: its aliases lead back to themselves");
    assert_int_equal(r[3].status, LOCAL_DELIVERED);
    assert_int_equal(count(s, "bob@example.test", "INBOX"), 1); /* team@ was not expanded */
    assert_int_equal(lda_status_code(LOCAL_LOOP), EX_NOUSER);
    for (size_t i = 0; i < 4; i++)
        local_rcpt_free(&r[i]);
    buf_free(&err);
    store_close(s);
}

static void test_directory_down_is_temporary(void **state)
{
    struct store *s = tmp_store();
    const char *a[] = {"alice@example.test"};
    enum local_status st[1];
    directory_down = true;
    deliver(s, "QID2", NULL, a, 1, st);
    directory_down = false;
    assert_int_equal(st[0], LOCAL_TEMPFAIL);
    deliver(s, "QID2", NULL, a, 1, st);
    assert_int_equal(st[0], LOCAL_DELIVERED);
    assert_int_equal(count(s, "alice@example.test", "INBOX"), 1);
    store_close(s);
}

static void test_crlf(void **state)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"a\nb\n", "a\r\nb\r\n"},     {"a\r\nb\r\n", "a\r\nb\r\n"},
        {"\n\n", "\r\n\r\n"},         {"mixed\r\nlf\nlone\rcr", "mixed\r\nlf\r\nlone\rcr"},
        {"no newline", "no newline"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out = BUF_INIT;
        lda_crlf(slice_from_cstr(cases[i].in), &out);
        assert_string_equal(buf_cstr(&out), cases[i].out);
        buf_free(&out);
    }
    /* NUL bytes survive. */
    struct buf out = BUF_INIT;
    lda_crlf((struct slice){"a\0\nb", 4}, &out);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "a\0\r\nb", 5);
    buf_free(&out);
}

static void test_deliver_frames(void **state)
{
    struct buf p = BUF_INIT;
    lda_encode_request(&p, "alice@example.test", "Lists", SLICE_LIT("body\r\n"));
    struct slice u, f, m;
    assert_int_equal(lda_decode_request(p.data, p.len, &u, &f, &m), 0);
    assert_true(slice_eq(u, SLICE_LIT("alice@example.test")));
    assert_true(slice_eq(f, SLICE_LIT("Lists")));
    assert_true(slice_eq(m, SLICE_LIT("body\r\n")));
    /* Every truncation is refused, never guessed at. */
    for (size_t cut = 0; cut < p.len; cut++)
        assert_int_equal(lda_decode_request(p.data, cut, &u, &f, &m), -1);
    buf_reset(&p);
    lda_encode_reply(&p, EX_TEMPFAIL, "over quota");
    int code;
    struct slice text;
    assert_int_equal(lda_decode_reply(p.data, p.len, &code, &text), 0);
    assert_int_equal(code, EX_TEMPFAIL);
    assert_true(slice_eq(text, SLICE_LIT("over quota")));
    for (size_t cut = 0; cut < p.len; cut++)
        assert_int_equal(lda_decode_reply(p.data, cut, &code, &text), -1);
    buf_free(&p);
    assert_int_equal(lda_status_code(LOCAL_DELIVERED), 0);
    assert_int_equal(lda_status_code(LOCAL_NO_USER), EX_NOUSER);
    assert_int_equal(lda_status_code(LOCAL_TEMPFAIL), EX_TEMPFAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_deliver_frames),
        cmocka_unit_test(test_kinds_and_single_instance),
        cmocka_unit_test(test_exactly_once),
        cmocka_unit_test(test_remote_forwards_stay_queued),
        cmocka_unit_test(test_directory_down_is_temporary),
        cmocka_unit_test(test_expanded_accounts_and_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
