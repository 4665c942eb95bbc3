/*
 * test_dsn.c - delivery status notifications: NOTIFY rules, no report to the
 * null sender, field content, RET=HDRS and the size limit, sanitised peer
 * text; and the whole report parsed back by Python's email package (an
 * independent MIME parser) to check its structure.
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

#include "mta/dsn.h"
#include "spool/spool.h"

static const char original[] = "From: a@example.test\r\nTo: b@remote.test\r\n"
                               "Subject: hi\r\n\r\nbody line\r\n.dot line\r\n";

static struct dsn_rcpt rcpts[2] = {
    {.address = "b@remote.test",
     .orcpt = "rfc822;B@Remote.test",
     .action = DSN_ACTION_FAILED,
     .status = "5.1.1",
     .remote_mta = "mx.remote.test",
     .diagnostic = "550 5.1.1 no such\r\nInjected: yes",
     .last_attempt = 1800000000},
    {.address = "c@remote.test",
     .action = DSN_ACTION_FAILED,
     .status = "5.2.2",
     .diagnostic = "552 5.2.2 mailbox full"},
};

static struct dsn_report report(void)
{
    return (struct dsn_report){.reporting_mta = "mx.example.test",
                               .queue_id = "Q1234",
                               .sender = "a@example.test",
                               .envid = "ENV-1",
                               .arrival = 1800000000 - 60,
                               .now = 1800000000,
                               .return_max = 1 << 20,
                               .original = SLICE_LIT(original),
                               .rcpts = rcpts,
                               .n_rcpts = 2};
}

static void test_wanted(void **state)
{
    (void)state;
    assert_false(dsn_wanted("", 0, DSN_ACTION_FAILED));
    assert_false(dsn_wanted(NULL, SPOOL_NOTIFY_FAILURE, DSN_ACTION_FAILED));
    assert_true(dsn_wanted("a@x", 0, DSN_ACTION_FAILED));
    assert_true(dsn_wanted("a@x", 0, DSN_ACTION_DELAYED));
    assert_false(dsn_wanted("a@x", 0, DSN_ACTION_DELIVERED));
    assert_false(dsn_wanted("a@x", SPOOL_NOTIFY_NEVER, DSN_ACTION_FAILED));
    assert_false(dsn_wanted("a@x", SPOOL_NOTIFY_SUCCESS, DSN_ACTION_FAILED));
    assert_true(dsn_wanted("a@x", SPOOL_NOTIFY_SUCCESS, DSN_ACTION_RELAYED));
    assert_false(dsn_wanted("a@x", SPOOL_NOTIFY_FAILURE, DSN_ACTION_DELAYED));
}

static void test_null_sender_gets_nothing(void **state)
{
    (void)state;
    struct dsn_report r = report();
    r.sender = "";
    struct buf out = BUF_INIT;
    assert_int_equal(dsn_build(&r, &out), -1);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_fields(void **state)
{
    (void)state;
    struct dsn_report r = report();
    struct buf out = BUF_INIT;
    assert_int_equal(dsn_build(&r, &out), 0);
    const char *s = buf_cstr(&out);
    assert_non_null(strstr(s, "Content-Type: multipart/report; report-type=delivery-status;"));
    assert_non_null(strstr(s, "\r\nFinal-Recipient: rfc822; b@remote.test\r\n"));
    assert_non_null(strstr(s, "\r\nOriginal-Recipient: rfc822;B@Remote.test\r\n"));
    assert_non_null(strstr(s, "\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
    assert_non_null(strstr(s, "\r\nRemote-MTA: dns; mx.remote.test\r\n"));
    assert_non_null(strstr(s, "\r\nDiagnostic-Code: smtp; 550 5.1.1 no such  Injected: yes\r\n"));
    assert_null(strstr(s, "\r\nInjected:"));
    assert_non_null(strstr(s, "\r\nLast-Attempt-Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"));
    assert_non_null(strstr(s, "\r\nOriginal-Envelope-Id: ENV-1\r\n"));
    assert_non_null(strstr(s, "Content-Type: message/rfc822\r\n\r\nFrom: a@example.test"));
    assert_non_null(strstr(s, "body line\r\n.dot line\r\n"));
    buf_free(&out);

    r.ret_hdrs = true;
    assert_int_equal(dsn_build(&r, &out), 0);
    s = buf_cstr(&out);
    assert_non_null(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@example.test"));
    assert_null(strstr(s, "body line"));
    buf_free(&out);

    r.ret_hdrs = false;
    r.return_max = 10; /* too big to return whole: headers only */
    assert_int_equal(dsn_build(&r, &out), 0);
    assert_null(strstr(buf_cstr(&out), "body line"));
    buf_free(&out);
}

static void test_delay_has_retry_until(void **state)
{
    (void)state;
    struct dsn_rcpt d = {
        .address = "b@remote.test", .action = DSN_ACTION_DELAYED, .will_retry_until = 1800000000};
    struct dsn_report r = report();
    r.rcpts = &d;
    r.n_rcpts = 1;
    struct buf out = BUF_INIT;
    assert_int_equal(dsn_build(&r, &out), 0);
    assert_non_null(strstr(buf_cstr(&out), "Action: delayed\r\nStatus: 4.0.0\r\n"
                                           "Will-Retry-Until: Fri, 15 Jan 2027 08:00:00 +0000"));
    assert_non_null(strstr(buf_cstr(&out), "Subject: Delayed Mail"));
    buf_free(&out);
}

static void test_utf8_uses_global_types(void **state)
{
    (void)state;
    struct dsn_rcpt d = {.address = "j\xc3\xb8rn@remote.test", .action = DSN_ACTION_FAILED};
    struct dsn_report r = report();
    r.rcpts = &d;
    r.n_rcpts = 1;
    struct buf out = BUF_INIT;
    assert_int_equal(dsn_build(&r, &out), 0);
    assert_non_null(strstr(buf_cstr(&out), "Content-Type: message/global-delivery-status"));
    assert_non_null(strstr(buf_cstr(&out), "Final-Recipient: utf-8; j\xc3\xb8rn@remote.test"));
    assert_non_null(strstr(buf_cstr(&out), "Content-Type: message/global\r\n"));
    buf_free(&out);
}

/* The boundary changes when the original contains it. */
static void test_boundary_not_in_original(void **state)
{
    (void)state;
    static const char evil[] = "Subject: x\r\n\r\n--=_wharf_dsn_Q1234_1800000000_0\r\n";
    struct dsn_report r = report();
    r.original = SLICE_LIT(evil);
    struct buf out = BUF_INIT;
    assert_int_equal(dsn_build(&r, &out), 0);
    assert_non_null(strstr(buf_cstr(&out), "boundary=\"=_wharf_dsn_Q1234_1800000000_1\""));
    buf_free(&out);
}

static const char checker[] =
    "import email, email.policy, sys\n"
    "m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)\n"
    "assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
    "assert m.get_param('report-type') == 'delivery-status'\n"
    "parts = list(m.iter_parts())\n"
    "assert [p.get_content_type() for p in parts] == ['text/plain', 'message/delivery-status', "
    "'message/rfc822'], [p.get_content_type() for p in parts]\n"
    "blocks = parts[1].get_payload()\n"
    "assert blocks[0]['Reporting-MTA'] == 'dns; mx.example.test'\n"
    "assert [b['Final-Recipient'] for b in blocks[1:]] == ['rfc822; b@remote.test', "
    "'rfc822; c@remote.test']\n"
    "assert [b['Status'] for b in blocks[1:]] == ['5.1.1', '5.2.2']\n"
    "orig = parts[2].get_payload()[0]\n"
    "assert orig['Subject'] == 'hi', orig['Subject']\n"
    "assert m['To'] == '<a@example.test>' or m['To'] == 'a@example.test', m['To']\n"
    "assert not m.defects and not parts[1].defects, (m.defects, parts[1].defects)\n";

static void test_python_email_parses_it(void **state)
{
    (void)state;
    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    struct dsn_report r = report();
    struct buf out = BUF_INIT;
    assert_int_equal(dsn_build(&r, &out), 0);
    char path[] = "/tmp/wharf-test-dsn-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, out.data, out.len), (ssize_t)out.len);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *const argv[] = {"python3", "-c", (char *)checker, path, NULL};
        execv("/usr/bin/python3", argv);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(path);
    buf_free(&out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wanted),
        cmocka_unit_test(test_null_sender_gets_nothing),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_delay_has_retry_until),
        cmocka_unit_test(test_boundary_not_in_original),
        cmocka_unit_test(test_utf8_uses_global_types),
        cmocka_unit_test(test_python_email_parses_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
