/*
 * test_pop3_parse.c - unit tests for POP3 command parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "pop3/pop3_parse.h"

static bool parse(const char *s, struct pop3_command *c, const char **err)
{
    return pop3_parse_command(slice_from_cstr(s), c, err);
}

static void expect_err(const char *line, const char *msg)
{
    struct pop3_command c;
    const char *err = NULL;
    assert_false(parse(line, &c, &err));
    assert_string_equal(err, msg);
}

static void test_commands(void **state)
{
    struct pop3_command c;
    const char *err;
    assert_true(parse("user alice@example.org", &c, &err));
    assert_int_equal(c.cmd, POP3_CMD_USER);
    assert_int_equal(c.n_args, 1);
    assert_true(slice_eq(c.args[0], SLICE_LIT("alice@example.org")));
    assert_true(parse("PASS  secret with spaces ", &c, &err));
    assert_int_equal(c.cmd, POP3_CMD_PASS);
    assert_true(slice_eq(c.args[0], SLICE_LIT("secret with spaces ")));
    assert_true(parse("TOP 3 10", &c, &err));
    assert_int_equal(c.n_args, 2);
    assert_true(parse("LIST", &c, &err));
    assert_int_equal(c.n_args, 0);
    assert_true(parse("uidl 7", &c, &err));
    assert_int_equal(c.cmd, POP3_CMD_UIDL);
    assert_true(parse("AUTH PLAIN AGFsaWNlAHNlY3JldA==", &c, &err));
    assert_int_equal(c.cmd, POP3_CMD_AUTH);
    assert_int_equal(c.n_args, 2);
    assert_true(parse("AUTH", &c, &err));
    assert_true(parse("CAPA", &c, &err));
    assert_true(parse("STLS", &c, &err));
}

static void test_errors(void **state)
{
    expect_err("", "Empty command");
    expect_err(" USER x", "Empty command");
    expect_err("XYZZY", "Unknown command");
    expect_err("USERS x", "Unknown command");
    expect_err("USER", "Missing argument");
    expect_err("TOP 1", "Missing argument");
    expect_err("STAT 1", "Too many arguments");
    expect_err("RETR 1 2", "Too many arguments");
    expect_err("USER a\tb", "Invalid character in argument");
    struct pop3_command c;
    const char *err;
    assert_false(pop3_parse_command(slice_make("USER a\0b", 8), &c, &err));
    assert_string_equal(err, "Invalid character in command");
    char longline[300];
    memset(longline, 'a', sizeof(longline) - 1);
    memcpy(longline, "USER ", 5);
    longline[sizeof(longline) - 1] = '\0';
    expect_err(longline, "Command line too long");
    char longarg[60] = "USER ";
    memset(longarg + 5, 'b', 45);
    longarg[50] = '\0';
    expect_err(longarg, "Argument too long");
}

static void test_numbers(void **state)
{
    uint32_t n;
    assert_true(pop3_parse_number(SLICE_LIT("1"), 10, &n));
    assert_int_equal(n, 1);
    assert_true(pop3_parse_number(SLICE_LIT("0010"), 10, &n));
    assert_int_equal(n, 10);
    assert_false(pop3_parse_number(SLICE_LIT("11"), 10, &n));
    assert_false(pop3_parse_number(SLICE_LIT("-1"), 10, &n));
    assert_false(pop3_parse_number(SLICE_LIT("+1"), 10, &n));
    assert_false(pop3_parse_number(SLICE_LIT(""), 10, &n));
    assert_false(pop3_parse_number(SLICE_LIT("99999999999"), UINT32_MAX, &n));
    assert_true(pop3_parse_number(SLICE_LIT("4294967295"), UINT32_MAX, &n));
    assert_int_equal(n, UINT32_MAX);
    assert_false(pop3_parse_number(SLICE_LIT("4294967296"), UINT32_MAX, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
