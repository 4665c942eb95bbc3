/*
 * test_imap_parse.c - unit tests of the IMAP command reader (fed one byte at
 * a time and all at once), the argument parser and sequence sets.
 */
#include "imap/imap_parse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_EVENTS 16

struct events {
    enum imap_read_result ev[MAX_EVENTS];
    char *cmd[MAX_EVENTS];
    size_t n;
};

/* Feeds input in pieces of step bytes, recording every event and command. */
static void feed(struct imap_reader *r, const char *input, size_t len, size_t step,
                 struct events *e)
{
    memset(e, 0, sizeof(*e));
    size_t off = 0;
    while (off < len) {
        size_t piece = len - off < step ? len - off : step;
        const char *p = input + off;
        while (piece > 0) {
            enum imap_read_result res;
            size_t used = imap_reader_feed(r, p, piece, &res);
            assert_true(used <= piece);
            p += used;
            piece -= used;
            off += used;
            if (res == IMAP_READ_NEED_MORE) {
                assert_int_equal(piece, 0);
                continue;
            }
            assert_true(e->n < MAX_EVENTS);
            e->ev[e->n] = res;
            struct slice c = imap_reader_command(r);
            e->cmd[e->n] = strndup(c.ptr ? c.ptr : "", c.len);
            e->n++;
        }
    }
}

static void events_free(struct events *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->cmd[i]);
}

/* Every test input is checked byte at a time and in one piece: same events. */
static void check(const char *input, size_t max_line, uint64_t max_lit, size_t n_expected,
                  const enum imap_read_result *expected, const char *const *cmds)
{
    size_t steps[] = {1, 2, 3, 7, strlen(input)};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        struct imap_reader r;
        struct events e;
        imap_reader_init(&r, max_line, max_lit);
        feed(&r, input, strlen(input), steps[s] ? steps[s] : 1, &e);
        assert_int_equal(e.n, n_expected);
        for (size_t i = 0; i < n_expected; i++) {
            assert_int_equal(e.ev[i], expected[i]);
            if (cmds && cmds[i])
                assert_string_equal(e.cmd[i], cmds[i]);
        }
        events_free(&e);
        imap_reader_free(&r);
    }
}

static void test_lines(void **state)
{
    (void)state;
    enum imap_read_result ev[] = {IMAP_READ_COMMAND, IMAP_READ_COMMAND};
    const char *cmds[] = {"a1 NOOP", "a2 LOGOUT"};
    check("a1 NOOP\r\na2 LOGOUT\n", 1024, 1024, 2, ev, cmds);
}

static void test_literals(void **state)
{
    (void)state;
    /* synchronizing: CONTINUE after the announcement, the command after the last line */
    enum imap_read_result ev1[] = {IMAP_READ_CONTINUE, IMAP_READ_COMMAND};
    const char *c1[] = {NULL, "a LOGIN {5}\r\nalice \"pw\""};
    check("a LOGIN {5}\r\nalice \"pw\"\r\n", 1024, 1024, 2, ev1, c1);
    /* non-synchronizing: no CONTINUE; literal bytes may hold CRLF */
    enum imap_read_result ev2[] = {IMAP_READ_COMMAND, IMAP_READ_COMMAND};
    const char *c2[] = {"a APPEND INBOX {4+}\r\nx\r\ny", "b NOOP"};
    check("a APPEND INBOX {4+}\r\nx\r\ny\r\nb NOOP\r\n", 1024, 1024, 2, ev2, c2);
    /* zero-length literal */
    enum imap_read_result ev3[] = {IMAP_READ_CONTINUE, IMAP_READ_COMMAND};
    check("a LOGIN {0}\r\n x\r\n", 1024, 1024, 2, ev3, NULL);
}

static void test_literal_limits(void **state)
{
    (void)state;
    /* Refused at once, before any byte of it: the next line is a new command. */
    enum imap_read_result ev1[] = {IMAP_READ_LITERAL_TOO_BIG, IMAP_READ_COMMAND};
    const char *c1[] = {NULL, "b NOOP"};
    check("a APPEND INBOX {4294967296}\r\nb NOOP\r\n", 1024, 1000000, 2, ev1, c1);
    check("a APPEND INBOX {99999999999999999999999999}\r\nb NOOP\r\n", 1024, 1000000, 2, ev1, c1);
    enum imap_read_result ev2[] = {IMAP_READ_LITERAL_FATAL};
    check("a APPEND INBOX {1001+}\r\n", 1024, 1000, 1, ev2, NULL);
    /* exactly the limit is fine */
    enum imap_read_result ev3[] = {IMAP_READ_COMMAND};
    check("a X {3+}\r\nabc\r\n", 1024, 3, 1, ev3, NULL);
}

static void test_line_limit(void **state)
{
    (void)state;
    char input[400];
    memset(input, 'x', sizeof(input));
    memcpy(input, "tag1 NOOP ", 10);
    strcpy(input + 300, "\r\nb NOOP\r\n");
    enum imap_read_result ev[] = {IMAP_READ_LINE_TOO_LONG, IMAP_READ_COMMAND};
    const char *c[] = {NULL, "b NOOP"};
    check(input, 100, 100, 2, ev, c);
    /* the tag of the dropped command is still known */
    struct imap_reader r;
    struct events e;
    imap_reader_init(&r, 100, 100);
    feed(&r, input, strlen(input), 1, &e);
    struct slice tag, name;
    imap_peek_tag(slice_from_cstr(e.cmd[0]), &tag, &name);
    assert_true(slice_eq(tag, SLICE_LIT("tag1")));
    events_free(&e);
    imap_reader_free(&r);
}

static struct imap_command parse_ok(char *text)
{
    struct imap_command c;
    const char *err = NULL;
    bool ok = imap_parse_command(text, strlen(text), &c, &err);
    if (!ok)
        fail_msg("parse failed: %s", err);
    return c;
}

static const char *parse_err(const char *text)
{
    char *copy = strdup(text);
    struct imap_command c;
    const char *err = NULL;
    assert_false(imap_parse_command(copy, strlen(copy), &c, &err));
    assert_non_null(err);
    free(copy);
    return err;
}

static void test_arguments(void **state)
{
    (void)state;
    char t1[] = "A001 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.10>) \"q \\\"x\\\\\" "
                "{3}\r\nabc NIL";
    struct imap_command c = parse_ok(t1);
    assert_true(slice_eq(c.tag, SLICE_LIT("A001")));
    assert_true(slice_eq_cstr_nocase(c.name, "fetch"));
    assert_int_equal(c.n_args, 5);
    assert_int_equal(c.args[0].type, IMAP_ARG_ATOM);
    assert_int_equal(c.args[1].type, IMAP_ARG_LIST);
    assert_int_equal(c.args[1].n_list, 2);
    assert_true(
        slice_eq(c.args[1].list[1].str, SLICE_LIT("BODY.PEEK[HEADER.FIELDS (From To)]<0.10>")));
    assert_int_equal(c.args[2].type, IMAP_ARG_STRING);
    assert_true(slice_eq(c.args[2].str, SLICE_LIT("q \"x\\")));
    assert_true(c.args[3].literal);
    assert_true(slice_eq(c.args[3].str, SLICE_LIT("abc")));
    assert_true(imap_arg_is_atom(&c.args[4], "nil"));
    imap_command_free(&c);

    /* literal8 (RFC 3516): NUL allowed, marked; "~" elsewhere is an atom character */
    char t3[] = "a APPEND x ~{3}\r\na\0b ~y";
    const char *err3 = NULL;
    assert_true(imap_parse_command(t3, sizeof(t3) - 1, &c, &err3));
    assert_int_equal(c.n_args, 3);
    assert_true(c.args[1].literal && c.args[1].literal8);
    assert_int_equal(c.args[1].str.len, 3);
    assert_int_equal(c.args[1].str.ptr[1], '\0');
    assert_true(imap_arg_is_atom(&c.args[2], "~y"));
    imap_command_free(&c);

    /* "[" is an ASTRING-CHAR (RFC 3501 9); only a fetch attribute opens a section */
    char t4[] = "a LIST \"\" a[b c]d [x (BINARY.SIZE[1] body[TEXT]<0.5>)";
    c = parse_ok(t4);
    assert_int_equal(c.n_args, 5);
    assert_true(imap_arg_is_atom(&c.args[1], "a[b"));
    assert_true(imap_arg_is_atom(&c.args[2], "c]d"));
    assert_true(imap_arg_is_atom(&c.args[3], "[x"));
    assert_true(imap_arg_is_atom(&c.args[4].list[0], "BINARY.SIZE[1]"));
    assert_true(imap_arg_is_atom(&c.args[4].list[1], "body[TEXT]<0.5>"));
    imap_command_free(&c);

    char t2[] = "x LIST \"\" ()";
    c = parse_ok(t2);
    assert_int_equal(c.n_args, 2);
    assert_int_equal(c.args[0].str.len, 0);
    assert_int_equal(c.args[1].n_list, 0);
    imap_command_free(&c);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_string_equal(parse_err("a NOOP (x"), "Missing ')'");
    assert_string_equal(parse_err("a NOOP x)"), "Unexpected ')'");
    assert_string_equal(parse_err("a NOOP \"abc"), "Unterminated quoted string");
    assert_string_equal(parse_err("a NOOP \"a\\b\""), "Invalid escape in quoted string");
    assert_string_equal(parse_err("a NOOP  x"), "Extra space");
    assert_string_equal(parse_err("a NOOP x "), "Extra space");
    assert_string_equal(parse_err("+ NOOP"), "Invalid tag");
    assert_string_equal(parse_err("a"), "Invalid tag");
    assert_string_equal(parse_err("a N@OP"), "Invalid command name");
    assert_string_equal(parse_err("a NOOP {5}\r\nab"), "Literal shorter than announced");
    assert_string_equal(parse_err("a FETCH 1 BODY.PEEK[HEADER"), "Missing ']'");
    assert_string_equal(parse_err("a NOOP ((((((((((((((((((x))))))))))))))))))"),
                        "Lists nested too deeply");
    /* the tag is known even when the rest is malformed */
    char t[] = "t9 NOOP (";
    struct imap_command c;
    const char *err;
    assert_false(imap_parse_command(t, strlen(t), &c, &err));
    assert_true(slice_eq(c.tag, SLICE_LIT("t9")));
}

static void test_seqset(void **state)
{
    (void)state;
    struct imap_seqset s;
    assert_true(imap_seqset_parse(SLICE_LIT("1,3:5,7:*"), &s));
    assert_int_equal(s.n, 3);
    assert_true(imap_seqset_contains(&s, 1, 10));
    assert_false(imap_seqset_contains(&s, 2, 10));
    assert_true(imap_seqset_contains(&s, 4, 10));
    assert_true(imap_seqset_contains(&s, 10, 10));
    imap_seqset_free(&s);
    /* n:* with n beyond the last includes the last (RFC 9051 6.4.8) */
    assert_true(imap_seqset_parse(SLICE_LIT("20:*"), &s));
    assert_true(imap_seqset_contains(&s, 10, 10));
    assert_false(imap_seqset_contains(&s, 9, 10));
    imap_seqset_free(&s);
    const char *bad[] = {"", "0", "1,", ",1", "1:", "a", "1::2", "4294967296", "01", "1 2", "$"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(imap_seqset_parse(slice_from_cstr(bad[i]), &s));
    assert_true(imap_seqset_parse(SLICE_LIT("4294967295"), &s));
    imap_seqset_free(&s);

    uint32_t v[] = {1, 2, 3, 5, 7, 8, 4294967295u};
    char *buf_text;
    struct buf b = BUF_INIT;
    imap_seqset_write(&b, v, 7);
    buf_text = strndup(b.data, b.len);
    assert_string_equal(buf_text, "1:3,5,7:8,4294967295");
    free(buf_text);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),          cmocka_unit_test(test_literals),
        cmocka_unit_test(test_literal_limits), cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_arguments),      cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_seqset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
