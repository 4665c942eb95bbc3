/*
 * test_vacation.c - unit tests of the vacation reply (vacation.c): what
 * RFC 3834 says never gets one, the reply's fields, once per sender and
 * period through a real (temporary) store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mta/vacation.h"

#define ALICE "alice@example.test"

static struct vacation_input input(const char *sender, const char *msg)
{
    return (struct vacation_input){.sender = sender,
                                   .rcpt = ALICE,
                                   .account = ALICE,
                                   .data = slice_from_cstr(msg),
                                   .now = 1000000};
}

static void test_refusal(void **state)
{
    (void)state;
    const char *plain =
        "From: bob@x.test\r\nTo: Alice <alice@example.test>\r\nSubject: hi\r\n\r\nx\r\n";
    struct vacation_input in = input("bob@x.test", plain);
    assert_null(vacation_refusal(&in));
    in.sender = "";
    assert_non_null(vacation_refusal(&in));
    static const char *const robots[] = {"MAILER-DAEMON@x.test", "owner-list@x.test",
                                         "list-request@x.test", "ALICE@example.test"};
    for (size_t i = 0; i < sizeof(robots) / sizeof(robots[0]); i++) {
        in.sender = robots[i];
        assert_non_null(vacation_refusal(&in));
    }
    static const char *const excluded[] = {
        "Auto-Submitted: auto-generated\r\nTo: alice@example.test\r\n\r\nx\r\n",
        "Precedence: bulk\r\nTo: alice@example.test\r\n\r\nx\r\n",
        "Precedence: List\r\nTo: alice@example.test\r\n\r\nx\r\n",
        "List-Id: <l.x.test>\r\nTo: alice@example.test\r\n\r\nx\r\n",
        "To: carol@example.test\r\nCc: dave@example.test\r\n\r\nx\r\n",
        "Subject: no To at all\r\n\r\nx\r\n",
    };
    for (size_t i = 0; i < sizeof(excluded) / sizeof(excluded[0]); i++) {
        in = input("bob@x.test", excluded[i]);
        assert_non_null(vacation_refusal(&in));
    }
    in = input("bob@x.test", "Auto-Submitted: no\r\nTo: x@y.test\r\nCc: a@b.test,\r\n "
                             "alice@EXAMPLE.test\r\n\r\nx\r\n");
    assert_null(vacation_refusal(&in));
}

static void test_reply(void **state)
{
    (void)state;
    const char *msg =
        "From: bob@x.test\r\nTo: alice@example.test\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n"
        "Message-ID: <m2@x.test>\r\nReferences: <m0@x.test>\r\n <m1@x.test>\r\n\r\nx\r\n";
    struct vacation_input in = input("bob@x.test", msg);
    struct store_vacation v = {.enabled = true, .text_body = (char *)"Away\nback Monday"};
    struct buf out = BUF_INIT;
    vacation_reply_build(&in, &v, "mx.example.test", &out);
    const char *r = buf_cstr(&out);
    assert_non_null(strstr(r, "From: <alice@example.test>\r\nTo: <bob@x.test>\r\n"));
    assert_non_null(strstr(r, "\r\nAuto-Submitted: auto-replied\r\n"));
    assert_non_null(strstr(r, "\r\nIn-Reply-To: <m2@x.test>\r\n"));
    assert_non_null(strstr(r, "\r\nReferences: <m0@x.test>\r\n <m1@x.test>\r\n <m2@x.test>\r\n"));
    assert_non_null(strstr(r, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(r, "\r\n\r\nAway\r\nback Monday\r\n"));
    for (size_t i = 0; i < out.len; i++)
        assert_true((unsigned char)out.data[i] < 0x80);
    buf_reset(&out);
    v.subject = (char *)"Out of office";
    v.html_body = (char *)"<p>Away</p>";
    vacation_reply_build(&in, &v, "mx.example.test", &out);
    r = buf_cstr(&out);
    assert_non_null(strstr(r, "Subject: Out of office\r\n"));
    assert_non_null(strstr(r, "multipart/alternative"));
    assert_non_null(strstr(r, "text/html; charset=utf-8"));
    buf_free(&out);
}

static void test_consider(void **state)
{
    (void)state;
    struct buf err = BUF_INIT, out = BUF_INIT;
    struct store *s = store_open_temporary(&err);
    assert_non_null(s);
    const char *msg = "From: bob@x.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nx\r\n";
    struct vacation_input in = input("Bob@x.test", msg);
    const char *why;
    /* off: nothing, and no reason to log */
    assert_int_equal(vacation_consider(s, &in, 100, "mx", &out, &why, &err), 0);
    assert_null(why);
    struct store_vacation v = {.enabled = true, .has_from = true, .from_date = 2000000};
    assert_int_equal(store_vacation_set(s, ALICE, &v, &err), 0);
    assert_int_equal(vacation_consider(s, &in, 100, "mx", &out, &why, &err), 0);
    v.from_date = 0;
    v.has_to = true;
    v.to_date = 1000000; /* ends at now: over */
    assert_int_equal(store_vacation_set(s, ALICE, &v, &err), 0);
    assert_int_equal(vacation_consider(s, &in, 100, "mx", &out, &why, &err), 0);
    v.to_date = 1000200;
    assert_int_equal(store_vacation_set(s, ALICE, &v, &err), 0);
    assert_int_equal(vacation_consider(s, &in, 100, "mx", &out, &why, &err), 1);
    assert_true(out.len > 0);
    /* once per sender (whatever its case) and period */
    in.sender = "bob@X.TEST";
    buf_reset(&out);
    assert_int_equal(vacation_consider(s, &in, 100, "mx", &out, &why, &err), 0);
    assert_non_null(why);
    assert_int_equal(out.len, 0);
    in.now += 100;
    assert_int_equal(vacation_consider(s, &in, 100, "mx", &out, &why, &err), 1);
    store_close(s);
    buf_free(&out);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_reply),
        cmocka_unit_test(test_consider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
