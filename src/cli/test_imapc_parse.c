/*
 * test_imapc_parse.c - unit tests of the IMAP client response parser used by
 * `wharf import imap` (shapes Dovecot, Cyrus and Gmail send).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cli/imapc_parse.h"

static struct imapc_resp R(const char *text, const char *lit) {
    struct imapc_resp r = {.text = slice_from_cstr(text)};
    if (lit)
        r.lits[r.n_lits++] = slice_from_cstr(lit);
    return r;
}

static void
test_fetch(void **state)
{
    (void)state;
    struct imapc_fetch f = {.keywords = BUF_INIT};
    struct imapc_resp r = R("* 3 FETCH (UID 17 FLAGS (\\Seen \\Recent $Important \\Flagged Junk) "
                            "INTERNALDATE \"05-Dec-2026 10:24:16 +0100\" MODSEQ (12) BODY[] {5})",
                            "hello");
    assert_true(imapc_parse_fetch(&r, &f));
    assert_int_equal(f.seq, 3);
    assert_int_equal(f.uid, 17);
    assert_int_equal(f.flags, 1u | 4u);
    assert_string_equal(buf_cstr(&f.keywords), "$Important Junk");
    assert_int_equal(f.internaldate, 1796466256 - 3600);
    assert_true(f.has_body);
    assert_int_equal(f.body.len, 5);
    r = R("* 1 FETCH (UID 1 BODY[] \"quoted\")", NULL);
    assert_false(imapc_parse_fetch(&r, &f) && f.has_body);
    r = R("* 1 FETCH (UID 1 BODY[] {5}", "hello");
    assert_false(imapc_parse_fetch(&r, &f)); /* unterminated */
    r = R("* 1 FETCH (UID 1 BODY[] {5})", NULL);
    assert_false(imapc_parse_fetch(&r, &f)); /* a literal the reader did not give */
    r = R("* 2 EXPUNGE", NULL);
    assert_false(imapc_parse_fetch(&r, &f));
    buf_free(&f.keywords);
}

static void test_list_and_codes(void **state)
{
    (void)state;
    struct buf name = BUF_INIT;
    char d;
    bool ns;
    struct imapc_resp r = R("* LIST (\\HasNoChildren) \".\" Work.Sub", NULL);
    assert_true(imapc_parse_list(&r, "LIST", &name, &d, &ns));
    assert_string_equal(buf_cstr(&name), "Work.Sub");
    assert_int_equal(d, '.');
    assert_false(ns);
    r = R("* LIST (\\Noselect) \"/\" {9}", "A \"b\" /c");
    assert_true(imapc_parse_list(&r, "LIST", &name, &d, &ns));
    assert_string_equal(buf_cstr(&name), "A \"b\" /c");
    assert_true(ns);
    r = R("* LIST () NIL \"with \\\" quote\"", NULL);
    assert_true(imapc_parse_list(&r, "LIST", &name, &d, &ns));
    assert_string_equal(buf_cstr(&name), "with \" quote");
    assert_int_equal(d, 0);
    buf_free(&name);
    uint32_t n;
    r = R("* OK [UIDVALIDITY 1733400000] UIDs valid", NULL);
    assert_true(imapc_parse_code_number(&r, "UIDVALIDITY", &n));
    assert_int_equal(n, 1733400000);
    assert_false(imapc_parse_code_number(&r, "UIDNEXT", &n));
    r = R("* 42 EXISTS", NULL);
    assert_true(imapc_parse_exists(&r, &n));
    assert_int_equal(n, 42);
    struct slice t;
    r = R("W3 NO [AUTHENTICATIONFAILED] no", NULL);
    assert_int_equal(imapc_parse_tagged(&r, "W3", &t), 0);
    assert_int_equal(imapc_parse_tagged(&r, "W30", &t), -1);
    r = R("W3 OK done", NULL);
    assert_int_equal(imapc_parse_tagged(&r, "W3", &t), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_list_and_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
