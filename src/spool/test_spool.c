/*
 * test_spool.c - unit tests of the spool file format: round trip, damage detection.
 */
#include "base/testdir.h"
#include "base/alloc.h"
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
static char dir[] = "/tmp/wharf-spool-test-XXXXXX";

static void fill(struct spool_message *m)
{
    memset(m, 0, sizeof(*m));
    spool_new_id(m->env.id);
    m->env.sender = xstrdup("a@example.org");
    m->env.n_rcpts = 2;
    m->env.rcpts = xcalloc(2, sizeof(struct spool_rcpt));
    m->env.rcpts[0].address = xstrdup("b@example.test");
    m->env.rcpts[0].notify = SPOOL_NOTIFY_FAILURE | SPOOL_NOTIFY_DELAY;
    m->env.rcpts[0].orcpt = xstrdup("rfc822;b@example.test");
    m->env.rcpts[1].address = xstrdup("c\xc3\xa9@example.test");
    m->env.body = SPOOL_BODY_8BITMIME;
    m->env.smtputf8 = true;
    m->env.dsn_envid = xstrdup("ENV1");
    m->env.client = xstrdup("unknown[127.0.0.1]");
    m->env.helo = xstrdup("client.example");
    m->env.arrival = 1700000000;
    buf_init(&m->data);
    buf_append(&m->data, "Subject: x\r\n\r\nbody\0with nul\r\n", 30);
}

static void test_roundtrip(void **state)
{
    struct spool_message m, r;
    struct buf err = BUF_INIT;
    fill(&m);
    assert_int_equal(spool_write(&cfg, &m, &err), 0);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_string_equal(r.env.sender, "a@example.org");
    assert_int_equal(r.env.n_rcpts, 2);
    assert_string_equal(r.env.rcpts[1].address, "c\xc3\xa9@example.test");
    assert_string_equal(r.env.rcpts[0].orcpt, "rfc822;b@example.test");
    assert_int_equal(r.env.rcpts[0].notify, SPOOL_NOTIFY_FAILURE | SPOOL_NOTIFY_DELAY);
    assert_null(r.env.rcpts[1].orcpt);
    assert_int_equal(r.env.body, SPOOL_BODY_8BITMIME);
    assert_true(r.env.smtputf8);
    assert_int_equal(r.env.arrival, 1700000000);
    assert_int_equal(r.data.len, 30);
    assert_memory_equal(r.data.data, m.data.data, 30);
    r.env.rcpts[0].state = SPOOL_RCPT_DELIVERED;
    assert_int_equal(spool_update_rcpts(&cfg, &r, &err), 0);
    spool_message_free(&r);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_int_equal(r.env.rcpts[0].state, SPOOL_RCPT_DELIVERED);
    spool_message_free(&r);
    char **ids;
    size_t n;
    assert_int_equal(spool_list(&cfg, &ids, &n, &err), 0);
    assert_int_equal(n, 1);
    spool_list_free(ids, n);
    assert_int_equal(spool_remove(&cfg, m.env.id, &err), 0);
    /* gone (finished and removed since it was listed): 1, not a failure */
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 1);
    spool_message_free(&r);
    spool_message_free(&m);
    buf_free(&err);
}

static size_t count(int (*list)(const struct wharf_config *, char ***, size_t *, struct buf *))
{
    char **ids;
    size_t n;
    struct buf err = BUF_INIT;
    assert_int_equal(list(&cfg, &ids, &n, &err), 0);
    spool_list_free(ids, n);
    buf_free(&err);
    return n;
}

/* A retired entry leaves the queue at once and stays listed as retired until removed. */
static void test_retire(void **state)
{
    (void)state;
    struct spool_message m, r;
    struct buf err = BUF_INIT;
    fill(&m);
    assert_int_equal(spool_write(&cfg, &m, &err), 0);
    assert_int_equal(count(spool_list), 1);
    assert_int_equal(spool_retire(&cfg, m.env.id, &err), 0);
    assert_int_equal(count(spool_list), 0);
    assert_int_equal(count(spool_list_retired), 1);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 1); /* finished: not in the queue */
    spool_message_free(&r);
    assert_int_equal(spool_retire(&cfg, m.env.id, &err), -1); /* once */
    assert_int_equal(spool_remove_retired(&cfg, m.env.id, &err), 0);
    assert_int_equal(count(spool_list_retired), 0);
    assert_int_equal(spool_retire(&cfg, "../x", &err), -1);
    spool_message_free(&m);
    buf_free(&err);
}

/* The retry state survives a round trip; a version 1 file (no retry records) still reads. */
static void test_retry_state_and_v1(void **state)
{
    struct spool_message m, r;
    struct buf err = BUF_INIT;
    fill(&m);
    m.env.next_attempt = 1700000123456;
    m.env.attempts = 3;
    m.env.last_reason = xstrdup("451 4.3.0 try later");
    m.env.warned = true;
    assert_int_equal(spool_write(&cfg, &m, &err), 0);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_int_equal(r.env.next_attempt, 1700000123456);
    assert_int_equal(r.env.attempts, 3);
    assert_string_equal(r.env.last_reason, "451 4.3.0 try later");
    assert_true(r.env.warned);
    assert_false(r.env.hold);
    spool_message_free(&r);
    /* `wharf queue` actions */
    enum spool_ctl c;
    assert_false(spool_ctl_parse("bogus", &c));
    assert_true(spool_ctl_parse("hold", &c));
    assert_int_equal(spool_control(&cfg, m.env.id, c, &err), 0);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_true(r.env.hold);
    assert_int_equal(r.env.next_attempt, 1700000123456);
    spool_message_free(&r);
    assert_int_equal(spool_control(&cfg, m.env.id, SPOOL_CTL_RELEASE, &err), 0);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_false(r.env.hold);
    assert_int_equal(r.env.next_attempt, 0);
    assert_int_equal(r.env.attempts, 3);
    spool_message_free(&r);
    assert_int_equal(spool_control(&cfg, m.env.id, SPOOL_CTL_REQUEUE, &err), 0);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_int_equal(r.env.attempts, 0);
    assert_null(r.env.last_reason);
    assert_false(r.env.warned);
    spool_message_free(&r);
    assert_int_equal(spool_remove(&cfg, m.env.id, &err), 0);
    spool_message_free(&m);
    /* a hand-made version 1 file: I, S, R, X, W, M, Z */
    static const unsigned char v1[] = {
        'W', 'S', 'P', 'L', 0, 0,   0,   1,   'I', 0, 0, 0, 2,   'A', 'B', 'S', 0, 0, 0, 0,
        'R', 0,   0,   0,   3, 'a', '@', 'b', 'X', 0, 0, 0, 1,   0,   'W', 0,   0, 0, 8, 0,
        0,   0,   0,   0,   0, 0,   42,  'M', 0,   0, 0, 2, 'h', 'i', 'Z', 0,   0, 0, 0};
    assert_int_equal(spool_decode(v1, sizeof(v1), &r, &err), 0);
    assert_string_equal(r.env.id, "AB");
    assert_int_equal(r.env.arrival, 42);
    assert_int_equal(r.env.next_attempt, 0);
    assert_int_equal(r.env.attempts, 0);
    assert_null(r.env.last_reason);
    spool_message_free(&r);
    /* version 1 with a version 2 record is damaged */
    unsigned char bad[sizeof(v1) + 13];
    memcpy(bad, v1, sizeof(v1) - 5);
    static const unsigned char k[] = {'K', 0, 0, 0, 4, 0, 0, 0, 1};
    memcpy(bad + sizeof(v1) - 5, k, sizeof(k));
    memcpy(bad + sizeof(v1) - 5 + sizeof(k), "Z\0\0\0\0", 5);
    assert_int_equal(spool_decode(bad, sizeof(v1) + 9, &r, &err), -1);
    buf_free(&err);
}

/* Version 3: the EXPANDED state and the F record (account reached by an alias) round trip;
 * a version 2 file still reads, and one that uses version 3 records is damaged. */
static void test_expansion_and_v2(void **state)
{
    struct spool_message m, r;
    struct buf err = BUF_INIT;
    fill(&m);
    m.env.rcpts[0].state = SPOOL_RCPT_EXPANDED;
    m.env.rcpts[1].account = true;
    m.env.rcpts[1].folder = xstrdup("work");
    assert_int_equal(spool_write(&cfg, &m, &err), 0);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_int_equal(r.env.rcpts[0].state, SPOOL_RCPT_EXPANDED);
    assert_false(r.env.rcpts[0].account);
    assert_null(r.env.rcpts[0].folder);
    assert_true(r.env.rcpts[1].account);
    assert_string_equal(r.env.rcpts[1].folder, "work");
    assert_string_equal(spool_rcpt_state_name(r.env.rcpts[0].state), "expanded");
    /* a recipient's queue (V, Y) round trips, and moves with the same entry */
    assert_null(r.env.rcpts[1].via);
    r.env.rcpts[1].via = xstrdup("org:rg-b/b1");
    r.env.rcpts[1].waits = xstrdup("connector down: connection refused");
    assert_int_equal(spool_update_rcpts(&cfg, &r, &err), 0);
    spool_message_free(&r);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_string_equal(r.env.rcpts[1].via, "org:rg-b/b1");
    assert_string_equal(r.env.rcpts[1].waits, "connector down: connection refused");
    assert_null(r.env.rcpts[0].via);
    free(r.env.rcpts[1].via);
    r.env.rcpts[1].via = xstrdup("org:rg-c/c1");
    assert_int_equal(spool_update_rcpts(&cfg, &r, &err), 0);
    spool_message_free(&r);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_string_equal(r.env.rcpts[1].via, "org:rg-c/c1");
    r.env.rcpts[0].account = true; /* an account in INBOX: an empty F record */
    assert_int_equal(spool_update_rcpts(&cfg, &r, &err), 0);
    spool_message_free(&r);
    assert_int_equal(spool_read(&cfg, m.env.id, &r, &err), 0);
    assert_true(r.env.rcpts[0].account);
    assert_null(r.env.rcpts[0].folder);
    spool_message_free(&r);
    assert_int_equal(spool_remove(&cfg, m.env.id, &err), 0);
    spool_message_free(&m);
    /* a hand-made version 2 file: I, S, R, X, W, P, K, M, Z */
    unsigned char v2[] = {'W', 'S', 'P', 'L', 0,   0,   0,   2, 'I', 0, 0, 0,   2,   'A',
                          'B', 'S', 0,   0,   0,   0,   'R', 0, 0,   0, 3, 'a', '@', 'b',
                          'X', 0,   0,   0,   1,   1,   'W', 0, 0,   0, 8, 0,   0,   0,
                          0,   0,   0,   0,   42,  'P', 0,   0, 0,   8, 0, 0,   0,   0,
                          0,   0,   0,   7,   'K', 0,   0,   0, 4,   0, 0, 0,   2,   'M',
                          0,   0,   0,   2,   'h', 'i', 'Z', 0, 0,   0, 0};
    assert_int_equal(spool_decode(v2, sizeof(v2), &r, &err), 0);
    assert_int_equal(r.env.rcpts[0].state, SPOOL_RCPT_DELIVERED);
    assert_false(r.env.rcpts[0].account);
    assert_int_equal(r.env.next_attempt, 7);
    assert_int_equal(r.env.attempts, 2);
    spool_message_free(&r);
    v2[33] = SPOOL_RCPT_EXPANDED; /* a version 3 state in a version 2 file */
    assert_int_equal(spool_decode(v2, sizeof(v2), &r, &err), -1);
    v2[33] = 0;
    v2[28] = 'F'; /* the X record turned into F: a version 3 record */
    assert_int_equal(spool_decode(v2, sizeof(v2), &r, &err), -1);
    v2[7] = 3; /* the same bytes as version 3: an account in folder "\0" */
    assert_int_equal(spool_decode(v2, sizeof(v2), &r, &err), 0);
    assert_true(r.env.rcpts[0].account);
    spool_message_free(&r);
    buf_free(&err);
}

static void test_batch_and_damage(void **state)
{
    struct spool_message m[3];
    const struct spool_message *pm[3];
    bool ok[3];
    struct buf err = BUF_INIT;
    for (int i = 0; i < 3; i++) {
        fill(&m[i]);
        pm[i] = &m[i];
    }
    assert_int_equal(spool_write_batch(&cfg, pm, 3, ok, &err), 0);
    assert_true(ok[0] && ok[1] && ok[2]);
    char **ids;
    size_t n;
    assert_int_equal(spool_list(&cfg, &ids, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], m[0].env.id); /* arrival order */
    spool_list_free(ids, n);
    /* Every truncation of an encoded file is refused. */
    char *path = config_data_path(&cfg, "spool/queue");
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/%s", path, m[0].env.id);
    FILE *f = fopen(p.data, "rb");
    char raw[4096];
    size_t len = fread(raw, 1, sizeof(raw), f);
    fclose(f);
    for (size_t cut = 0; cut < len; cut++) {
        struct spool_message r;
        assert_int_equal(spool_decode(raw, cut, &r, &err), -1);
    }
    struct spool_message r;
    assert_int_equal(spool_decode(raw, len, &r, &err), 0);
    spool_message_free(&r);
    for (int i = 0; i < 3; i++) {
        spool_remove(&cfg, m[i].env.id, &err);
        spool_message_free(&m[i]);
    }
    free(path);
    buf_free(&p);
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
        cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_retire),
        cmocka_unit_test(test_batch_and_damage), cmocka_unit_test(test_retry_state_and_v1),
        cmocka_unit_test(test_expansion_and_v2),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (testdir_close(&cfg, dir) != 0)
        rc = 1;
    buf_free(&err);
    return rc;
}
