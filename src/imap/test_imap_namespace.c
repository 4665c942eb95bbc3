/*
 * test_imap_namespace.c - RFC 4314 rights letters (with the obsolete "c" and
 * "d") and the namespace names ("Other Users/...", "Public Folders/...").
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "imap/imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ME "alice@example.test"

static unsigned rights(const char *text)
{
    unsigned bits = 0xdead;
    assert_true(imap_rights_parse(slice_from_cstr(text), &bits));
    return bits;
}

static void check_write(unsigned bits, bool virtual_rights, const char *want)
{
    struct buf b = BUF_INIT;
    imap_rights_write(&b, bits, virtual_rights);
    assert_string_equal(buf_cstr(&b), want);
    buf_free(&b);
}

static void test_rights(void **state)
{
    (void)state;
    assert_int_equal(rights(""), 0);
    assert_int_equal(rights("lr"), IMAP_RIGHT_L | IMAP_RIGHT_R);
    assert_int_equal(rights("rl"), IMAP_RIGHT_L | IMAP_RIGHT_R); /* any order, */
    assert_int_equal(rights("llll"), IMAP_RIGHT_L);              /* repeats are fine */
    assert_int_equal(rights("lrswipkxtea"), IMAP_RIGHTS_ALL);
    assert_int_equal(rights("c"), IMAP_RIGHT_K);
    assert_int_equal(rights("d"), IMAP_RIGHT_X | IMAP_RIGHT_T | IMAP_RIGHT_E);
    unsigned bits;
    const char *bad[] = {"L", "lrz", " ", "+l", "-l", "l r", "\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(imap_rights_parse(slice_from_cstr(bad[i]), &bits));
    assert_false(imap_rights_parse(slice_make("l\0r", 3), &bits));
    check_write(0, true, "\"\"");
    check_write(IMAP_RIGHT_R | IMAP_RIGHT_L, false, "lr");
    check_write(IMAP_RIGHTS_ALL, true, "lrswipkxteacd");
    check_write(IMAP_RIGHTS_ALL, false, "lrswipkxtea");
    check_write(IMAP_RIGHT_T, true, "td"); /* one member of "delete" brings "d" */
    check_write(IMAP_RIGHT_K | IMAP_RIGHT_L, true, "lkc");
}

static void check_split(const char *imap_name, const char *owner, const char *name)
{
    char *o, *n;
    imap_ns_split(ME, imap_name, &o, &n);
    assert_string_equal(o, owner);
    if (name == NULL) {
        assert_null(n);
    } else {
        assert_non_null(n);
        assert_string_equal(n, name);
        char *back = imap_ns_name(ME, o, n);
        assert_int_equal(strcasecmp(back, imap_name), 0); /* only INBOX's case may differ */
        free(back);
    }
    free(o);
    free(n);
}

static void test_names(void **state)
{
    (void)state;
    check_split("INBOX", ME, "INBOX");
    check_split("Archive/2026", ME, "Archive/2026");
    check_split("Other Users/bob@example.test/INBOX", "bob@example.test", "INBOX");
    check_split("Other Users/bob@example.test/inbox/Sub", "bob@example.test", "INBOX/Sub");
    check_split("Other Users/bob@example.test/Team/a b", "bob@example.test", "Team/a b");
    check_split("Public Folders/News", STORE_PUBLIC_OWNER, "News");
    check_split("Public Folders/News/Old", STORE_PUBLIC_OWNER, "News/Old");
    /* namespace levels are not mailboxes */
    check_split("Other Users", ME, NULL);
    check_split("Public Folders", ME, NULL);
    check_split("Other Users/bob@example.test", "bob@example.test", NULL);
    check_split("Other Users/bob@example.test/", "bob@example.test", NULL);
    check_split("Public Folders/", STORE_PUBLIC_OWNER, NULL);
    /* prefixes are case-sensitive: these are personal names */
    check_split("other users/x/y", ME, "other users/x/y");
    check_split("Public FoldersX", ME, "Public FoldersX");
    /* one's own mailboxes seen through Other Users are one's own */
    char *back = imap_ns_name(ME, ME, "Team");
    assert_string_equal(back, "Team");
    free(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rights),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
