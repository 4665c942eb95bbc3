/*
 * test_directory_client.c - unit tests for the workers' directory client
 * against a scripted directory process on a real unix socket: the cache
 * (positive and negative answers, never temporary failures), the bound on
 * outstanding lookups, timeouts, peek, and answers always from the loop.
 *
 * The peer answers by key: "silent@x" -> nothing; "nobody@x" -> NO_SUCH_USER;
 * "hashed@x" -> LOCAL with a DN and a password value, "down@x" -> LOCAL with
 * a DN and NO_SECRET (ldap_password_check = hash); anything else -> LOCAL
 * with the key as its one target.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "directory/directory_client.h"
#include "ipc/frame.h"
#include "ipc/testpeer.h"

struct fixture {
    struct testpeer peer;
    unsigned requests; /* lookups the peer received */
    struct directory_client *client;
};

struct answer {
    int calls;
    enum directory_lookup_status status;
    enum directory_resolve_kind kind;
    char target[64];
    char secret[64];
    bool no_secret;
};

static void on_answer(void *arg, const struct directory_answer *a)
{
    struct answer *r = arg;
    r->calls++;
    r->status = a->status;
    r->kind = a->kind;
    snprintf(r->target, sizeof(r->target), "%s", a->n_targets ? a->accounts[0] : "");
    snprintf(r->secret, sizeof(r->secret), "%s", a->secret ? a->secret : "");
    r->no_secret = a->no_secret;
}

static void peer_frame(void *arg, struct bufferevent *bev, const struct ipc_frame *fr)
{
    struct fixture *f = arg;
    uint64_t id;
    enum directory_query q;
    struct slice key;
    const char *why;
    assert_int_equal(fr->type, IPC_DIRECTORY_LOOKUP);
    assert_int_equal(directory_proto_get_lookup(fr->payload, fr->len, &id, &q, &key, &why), 0);
    char *k = slice_strdup(key);
    f->requests++;
    if (strcmp(k, "silent@x") != 0) {
        struct directory_answer a = {0};
        char *folder = (char *)"";
        a.kind = strcmp(k, "nobody@x") == 0 ? DIRECTORY_NO_SUCH_USER : DIRECTORY_LOCAL;
        if (a.kind == DIRECTORY_LOCAL) {
            a.n_targets = 1;
            a.accounts = &k;
            a.folders = &folder;
        }
        if (strcmp(k, "hashed@x") == 0 || strcmp(k, "down@x") == 0) {
            a.dn = (char *)"uid=x,dc=x";
            a.secret = (char *)(k[0] == 'h' ? "{SSHA}p2y1qQBqJLASzxVbjzrqo3qIqbG0te4M" : "");
            a.no_secret = k[0] == 'd';
        }
        struct buf p = BUF_INIT;
        directory_proto_put_answer(&p, id, &a);
        testpeer_send(bev, IPC_DIRECTORY_ANSWER, p.data, p.len);
        buf_free(&p);
    }
    free(k);
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    testpeer_setup(&f->peer,
                   "directory_client_timeout = 200ms\n"
                   "directory_client_queue_max = 2\ndirectory_client_negative_ttl = 1h\n");
    testpeer_listen(&f->peer, "directory.sock", peer_frame, f);
    f->client = directory_client_new(f->peer.base, &f->peer.cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    directory_client_free(f->client);
    testpeer_teardown(&f->peer);
    free(f);
    return 0;
}

struct answers {
    struct answer *a;
    size_t n;
};

static bool all_answered(void *ctx)
{
    struct answers *w = ctx;
    for (size_t i = 0; i < w->n; i++) {
        if (w->a[i].calls == 0)
            return false;
    }
    return true;
}

/* Runs the loop until every answer has its call. */
static void run_until(struct fixture *f, struct answer *a, size_t n)
{
    struct answers w = {a, n};
    if (!testpeer_run_until(&f->peer, all_answered, &w))
        fail_msg("answers did not come");
}

static void test_answers_are_cached(void **state)
{
    struct fixture *f = *state;
    struct answer a[4] = {{0}};
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "alice@x", on_answer, &a[0]);
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "nobody@x", on_answer, &a[1]);
    run_until(f, a, 2);
    assert_int_equal(a[0].kind, DIRECTORY_LOCAL);
    assert_string_equal(a[0].target, "alice@x");
    assert_int_equal(a[1].kind, DIRECTORY_NO_SUCH_USER);
    assert_int_equal(f->requests, 2);
    /* From the cache, and still from the loop, never inside the call. */
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "alice@x", on_answer, &a[2]);
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "nobody@x", on_answer, &a[3]);
    assert_int_equal(a[2].calls + a[3].calls, 0);
    run_until(f, a + 2, 2);
    assert_int_equal(f->requests, 2);
    assert_string_equal(a[2].target, "alice@x");
    assert_int_equal(a[3].kind, DIRECTORY_NO_SUCH_USER);
    /* Another query on the same key is another answer. */
    struct answer b = {0};
    directory_client_lookup(f->client, DIRECTORY_Q_ACCOUNT, "alice@x", on_answer, &b);
    run_until(f, &b, 1);
    assert_int_equal(f->requests, 3);
}

static void test_tempfail_is_not_cached_and_the_queue_is_bounded(void **state)
{
    struct fixture *f = *state;
    struct answer a[3] = {{0}};
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "silent@x", on_answer, &a[0]);
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "silent@x", on_answer, &a[1]);
    /* directory_client_queue_max = 2: the third fails at once, unsent. */
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "bob@x", on_answer, &a[2]);
    run_until(f, a + 2, 1);
    assert_int_equal(a[2].status, DIRECTORY_LOOKUP_TEMPFAIL);
    assert_int_equal(a[0].calls + a[1].calls, 0);
    run_until(f, a, 2); /* the timeout */
    assert_int_equal(a[0].status, DIRECTORY_LOOKUP_TEMPFAIL);
    assert_int_equal(a[1].status, DIRECTORY_LOOKUP_TEMPFAIL);
    assert_int_equal(f->requests, 2);
    struct answer c = {0};
    directory_client_lookup(f->client, DIRECTORY_Q_RECIPIENT, "silent@x", on_answer, &c);
    run_until(f, &c, 1);
    assert_int_equal(f->requests, 3); /* asked again: failures are not kept */
}

/* A password value (the auth process's LOGIN, hash mode) or its absence is asked
 * afresh every time: a changed password works at once, no hash is kept. */
static void test_password_values_are_not_cached(void **state)
{
    struct fixture *f = *state;
    struct answer a[4] = {{0}};
    for (int round = 0; round < 2; round++) {
        directory_client_lookup(f->client, DIRECTORY_Q_LOGIN, "hashed@x", on_answer, &a[2 * round]);
        directory_client_lookup(f->client, DIRECTORY_Q_LOGIN, "down@x", on_answer,
                                &a[2 * round + 1]);
        run_until(f, a + 2 * round, 2);
        assert_string_equal(a[2 * round].secret, "{SSHA}p2y1qQBqJLASzxVbjzrqo3qIqbG0te4M");
        assert_false(a[2 * round].no_secret);
        assert_string_equal(a[2 * round + 1].secret, "");
        assert_true(a[2 * round + 1].no_secret);
    }
    assert_int_equal(f->requests, 4);
}

static void test_peek_and_cancel(void **state)
{
    struct fixture *f = *state;
    struct directory_answer got;
    assert_int_equal(directory_client_peek(f->client, DIRECTORY_Q_ACCOUNT, "carol@x", &got), -1);
    directory_answer_free(&got);
    /* The peek asked; a cancelled lookup never calls back. */
    struct answer gone = {0}, a = {0};
    void *h = directory_client_lookup(f->client, DIRECTORY_Q_ACCOUNT, "dave@x", on_answer, &gone);
    directory_client_cancel(f->client, h);
    directory_client_lookup(f->client, DIRECTORY_Q_ACCOUNT, "carol@x", on_answer, &a);
    run_until(f, &a, 1);
    while (f->requests < 2)
        event_base_loop(f->peer.base, EVLOOP_ONCE);
    event_base_loop(f->peer.base, EVLOOP_NONBLOCK);
    assert_int_equal(gone.calls, 0);
    assert_int_equal(directory_client_peek(f->client, DIRECTORY_Q_ACCOUNT, "carol@x", &got), 1);
    assert_int_equal(got.kind, DIRECTORY_LOCAL);
    assert_string_equal(got.accounts[0], "carol@x");
    directory_answer_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers_are_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tempfail_is_not_cached_and_the_queue_is_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peek_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_values_are_not_cached, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
