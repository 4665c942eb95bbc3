/*
 * test_dotstuff.c - unit tests for the dot-stuffed writer (dotstuff.h):
 * leading dots anywhere, data split at every byte, the final CRLF added
 * only when missing, and the buf and evbuffer sinks giving the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "net/dotstuff.h"

static void expect_message(const char *in, const char *want)
{
    struct buf out = BUF_INIT;
    dotstuff_message_buf(slice_from_cstr(in), &out);
    assert_string_equal(buf_cstr(&out), want);
    /* the same, one byte at a time, into an evbuffer */
    struct evbuffer *ev = evbuffer_new();
    struct dotstuff st = DOTSTUFF_INIT;
    for (size_t i = 0; in[i] != '\0'; i++)
        dotstuff_evbuffer(&st, slice_make(in + i, 1), ev);
    dotstuff_end_evbuffer(&st, ev);
    size_t n = evbuffer_get_length(ev);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(evbuffer_pullup(ev, -1), want, n);
    evbuffer_free(ev);
    buf_free(&out);
}

static void test_stuffing(void **state)
{
    (void)state;
    expect_message("", ".\r\n");
    expect_message("a\r\n", "a\r\n.\r\n");
    expect_message(".\r\n", "..\r\n.\r\n");
    expect_message("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
    expect_message("..x\r\n", "...x\r\n.\r\n");
    expect_message("a.b\r\n.c", "a.b\r\n..c\r\n.\r\n"); /* no final CRLF: added */
    expect_message("a\n.b\n", "a\n..b\n\r\n.\r\n");     /* bare LF: stuffed, CRLF added */
    expect_message("a\r", "a\r\r\n.\r\n");
}

static void test_pieces(void **state)
{
    (void)state;
    /* a piece ending in LF, the next starting with a dot (the mta's prefix and body) */
    struct buf out = BUF_INIT;
    struct dotstuff st = DOTSTUFF_INIT;
    dotstuff_buf(&st, SLICE_LIT("X-A: 1\r\n"), &out);
    dotstuff_buf(&st, SLICE_LIT(".hidden\r\n\r\n."), &out);
    dotstuff_end_buf(&st, &out);
    assert_string_equal(buf_cstr(&out), "X-A: 1\r\n..hidden\r\n\r\n..\r\n.\r\n");
    /* the writer is ready for the next message */
    dotstuff_buf(&st, SLICE_LIT(".\r\n"), &out);
    dotstuff_end_buf(&st, &out);
    assert_string_equal(buf_cstr(&out) + strlen("X-A: 1\r\n..hidden\r\n\r\n..\r\n.\r\n"),
                        "..\r\n.\r\n");
    /* CR and LF of the last line in two pieces */
    buf_reset(&out);
    dotstuff_buf(&st, SLICE_LIT("a\r"), &out);
    dotstuff_buf(&st, SLICE_LIT("\n"), &out);
    dotstuff_end_buf(&st, &out);
    assert_string_equal(buf_cstr(&out), "a\r\n.\r\n");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stuffing),
        cmocka_unit_test(test_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
