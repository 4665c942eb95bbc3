/*
 * test_mime_mailfmt.c - unit tests of the mbox/Maildir/Dovecot format
 * helpers (mailfmt.h): what mutt, Dovecot and Courier write is read right,
 * and what export writes reads back the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mime/mailfmt.h"

static struct slice S(const char *s) {
    return slice_from_cstr(s);
}

static void
test_mbox_from(void **state)
{
    (void)state;
    struct slice sender;
    int64_t date;
    assert_true(mailfmt_mbox_from_parse(S("From alice@example.org Sat Dec  5 10:11:58 2026"),
                                        &sender, &date));
    assert_int_equal(sender.len, strlen("alice@example.org"));
    assert_int_equal(date, 1796465518);
    /* mutt with a zone, and an empty sender */
    assert_true(
        mailfmt_mbox_from_parse(S("From bob Thu Jan  1 00:00:10 +0000 1970"), &sender, &date));
    assert_int_equal(date, 10);
    assert_true(mailfmt_mbox_from_parse(S("From  Mon Feb 29 12:00:00 2016"), &sender, &date));
    assert_int_equal(sender.len, 0);
    assert_int_equal(date, 1456747200);
    assert_true(mailfmt_mbox_from_parse(S("From x garbage"), &sender, &date));
    assert_int_equal(date, 0);
    assert_false(mailfmt_mbox_from_parse(S(">From x"), &sender, &date));
    assert_false(mailfmt_mbox_from_parse(S("From:x"), &sender, &date));
    struct buf b = BUF_INIT;
    mailfmt_mbox_from_format(&b, S("alice@example.org"), 1796465518);
    assert_string_equal(buf_cstr(&b), "From alice@example.org Sat Dec  5 10:11:58 2026\n");
    buf_reset(&b);
    mailfmt_mbox_from_format(&b, S("bad sender"), 0);
    assert_string_equal(buf_cstr(&b), "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
    buf_free(&b);
}

static void test_mbox_quoting(void **state)
{
    (void)state;
    assert_true(mailfmt_mbox_quoted(S("From here")));
    assert_true(mailfmt_mbox_quoted(S(">>From here")));
    assert_false(mailfmt_mbox_quoted(S("> From here")));
    assert_false(mailfmt_mbox_quoted(S("From")));
    struct slice u = mailfmt_mbox_unquote(S(">>From x"));
    assert_int_equal(u.len, 7);
    u = mailfmt_mbox_unquote(S(">Fro"));
    assert_int_equal(u.len, 4);
}

static void test_mbox_status(void **state)
{
    (void)state;
    assert_int_equal(mailfmt_mbox_status_flags(S("RO"), S("AF")),
                     MAILFMT_SEEN | MAILFMT_ANSWERED | MAILFMT_FLAGGED);
    assert_int_equal(mailfmt_mbox_status_flags(S("O"), S("")), 0);
    assert_int_equal(mailfmt_mbox_status_flags(S(""), S("DT")), MAILFMT_DELETED | MAILFMT_DRAFT);
    struct buf b = BUF_INIT;
    mailfmt_mbox_status_format(&b, MAILFMT_SEEN | MAILFMT_FLAGGED);
    assert_string_equal(buf_cstr(&b), "Status: RO\nX-Status: F\n");
    assert_true(mailfmt_mbox_status_header(S("x-status: A")));
    assert_false(mailfmt_mbox_status_header(S("Subject: Status:")));
    uint32_t uv, next, uid;
    assert_true(mailfmt_mbox_imapbase(S("1733400000 0000000012 $Todo Junk"), &uv, &next));
    assert_int_equal(uv, 1733400000);
    assert_int_equal(next, 12);
    assert_false(mailfmt_mbox_imapbase(S("x 12"), &uv, &next));
    assert_true(mailfmt_mbox_uid(S("7"), &uid));
    assert_int_equal(uid, 7);
    assert_false(mailfmt_mbox_uid(S("7 8"), &uid));
    buf_free(&b);
}

static void test_maildir_name(void **state)
{
    (void)state;
    struct mailfmt_maildir_name n;
    assert_true(mailfmt_maildir_name_parse(S("1733400000.M1P2.host,S=1234,W=1260:2,FRSac"), &n));
    assert_int_equal(n.base.len, strlen("1733400000.M1P2.host"));
    assert_int_equal(n.flags, MAILFMT_FLAGGED | MAILFMT_ANSWERED | MAILFMT_SEEN);
    assert_int_equal(n.keywords, 1u | 4u);
    assert_true(n.has_info);
    assert_true(mailfmt_maildir_name_parse(S("123.abc"), &n));
    assert_false(n.has_info);
    assert_int_equal(n.flags, 0);
    assert_true(mailfmt_maildir_name_parse(S("x:2,TDP"), &n));
    assert_int_equal(n.flags, MAILFMT_DELETED | MAILFMT_DRAFT);
    assert_false(mailfmt_maildir_name_parse(S(".hidden"), &n));
    assert_false(mailfmt_maildir_name_parse(S(":2,S"), &n));
    struct buf b = BUF_INIT;
    mailfmt_maildir_info_format(&b, MAILFMT_SEEN | MAILFMT_DRAFT | MAILFMT_DELETED, 1u << 25 | 2u);
    assert_string_equal(buf_cstr(&b), ":2,DSTbz");
    buf_reset(&b);
    assert_true(mailfmt_maildir_folder(S(".Work.2026"), '.', &b));
    assert_string_equal(buf_cstr(&b), "Work/2026");
    assert_false(mailfmt_maildir_folder(S(".."), '.', &b));
    assert_false(mailfmt_maildir_folder(S(".a..b"), '.', &b));
    assert_false(mailfmt_maildir_folder(S("cur"), '.', &b));
    /* Dovecot's and Courier's modified UTF-7 names; '&' alone is kept */
    assert_true(mailfmt_maildir_folder(S(".Entw&APw-rfe.Q&AOQ-"), '.', &b));
    assert_string_equal(buf_cstr(&b), "Entw\xc3\xbc"
                                      "rfe/Q\xc3\xa4");
    assert_true(mailfmt_maildir_folder(S(".A&-B"), '.', &b));
    assert_string_equal(buf_cstr(&b), "A&B");
    assert_true(mailfmt_maildir_folder(S(".Tom&Jerry"), '.', &b));
    assert_string_equal(buf_cstr(&b), "Tom&Jerry"); /* not modified UTF-7: as written */
    buf_free(&b);
}

static void test_dovecot_files(void **state)
{
    (void)state;
    uint32_t uv, next, uid;
    struct slice base;
    assert_true(mailfmt_uidlist_header(S("3 V1733400000 N12 G3085f01b7e3a2a6b4d00000a4b2e3b1c"),
                                       &uv, &next));
    assert_int_equal(uv, 1733400000);
    assert_int_equal(next, 12);
    assert_true(mailfmt_uidlist_header(S("1 99 5"), &uv, &next));
    assert_int_equal(uv, 99);
    assert_false(mailfmt_uidlist_header(S("3 N12"), &uv, &next));
    assert_false(mailfmt_uidlist_header(S("3 V99999999999"), &uv, &next));
    assert_true(mailfmt_uidlist_record(S("7 W1260 S1234 :1733400000.M1P2.host"), &uid, &base));
    assert_int_equal(uid, 7);
    assert_int_equal(base.len, strlen("1733400000.M1P2.host"));
    assert_true(mailfmt_uidlist_record(S("8 :abc"), &uid, &base));
    assert_int_equal(base.len, 3);
    assert_true(mailfmt_uidlist_record(S("9 abc"), &uid, &base));
    assert_false(mailfmt_uidlist_record(S("0 :abc"), &uid, &base));
    assert_false(mailfmt_uidlist_record(S("x :abc"), &uid, &base));
    unsigned idx;
    struct slice name;
    assert_true(mailfmt_keywords_line(S("0 $Junk"), &idx, &name));
    assert_int_equal(idx, 0);
    assert_int_equal(name.len, 5);
    assert_false(mailfmt_keywords_line(S("26 x"), &idx, &name));
    assert_false(mailfmt_keywords_line(S("1 a(b"), &idx, &name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mbox_from),     cmocka_unit_test(test_mbox_quoting),
        cmocka_unit_test(test_mbox_status),   cmocka_unit_test(test_maildir_name),
        cmocka_unit_test(test_dovecot_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
