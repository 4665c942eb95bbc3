/*
 * test_base64.c - unit tests for the base64 kit: RFC 4648 section 10
 * vectors, strict decode errors and limits, lenient decode of folded and
 * concatenated bodies, line-wrapped encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/base64.h"

static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        struct buf enc = BUF_INIT, dec = BUF_INIT, len = BUF_INIT;
        base64_encode(vectors[i][0], strlen(vectors[i][0]), &enc);
        assert_string_equal(enc.data, vectors[i][1]);
        assert_int_equal(base64_decode(slice_from_cstr(vectors[i][1]), 100, &dec), BASE64_OK);
        assert_int_equal(dec.len, strlen(vectors[i][0]));
        assert_string_equal(dec.data, vectors[i][0]);
        base64_decode_lenient(slice_from_cstr(vectors[i][1]), &len);
        assert_string_equal(len.data, vectors[i][0]);
        buf_free(&enc);
        buf_free(&dec);
        buf_free(&len);
    }
}

static void test_encode_appends(void **state)
{
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "AUTH PLAIN ");
    base64_encode("\0tim\0tanstaaftanstaaf", 21, &b);
    assert_string_equal(b.data, "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    buf_free(&b);
}

static void test_strict_errors(void **state)
{
    static const char *const bad[] = {
        "Zg=",         /* not a multiple of 4 */
        "Zg==Zg==",    /* padding before the end */
        "Z===",        /* three pad characters */
        "Zm9v\r\n",    /* white space */
        "Zm 9",        /* white space inside */
        "Zm9!",        /* outside the alphabet */
        "Zg=a",        /* data after padding */
        "Zm9v\x80YmE", /* 8-bit byte */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf out = BUF_INIT;
        assert_int_equal(base64_decode(slice_from_cstr(bad[i]), 100, &out), BASE64_BAD);
        buf_free(&out);
    }
}

static void test_strict_limit(void **state)
{
    unsigned char data[64];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(data); n++) {
        struct buf enc = BUF_INIT, dec = BUF_INIT;
        base64_encode(data, n, &enc);
        assert_int_equal(enc.len, (n + 2) / 3 * 4);
        assert_int_equal(base64_decode(buf_slice(&enc), n, &dec), BASE64_OK);
        assert_int_equal(dec.len, n);
        if (n) {
            assert_memory_equal(dec.data, data, n);
            buf_reset(&dec);
            assert_int_equal(base64_decode(buf_slice(&enc), n - 1, &dec), BASE64_TOO_LONG);
        }
        buf_free(&enc);
        buf_free(&dec);
    }
    /* the limit is checked before anything is decoded */
    struct buf out = BUF_INIT;
    assert_int_equal(base64_decode(SLICE_LIT("YWFhYWFhYWFh"), 3, &out), BASE64_TOO_LONG);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void check_lenient(const char *in, const char *want, size_t want_len)
{
    struct buf out = BUF_INIT;
    base64_decode_lenient(slice_from_cstr(in), &out);
    /* the counting twin agrees with the decoder, byte for byte */
    assert_int_equal(base64_decoded_len_lenient(slice_from_cstr(in)), out.len);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    buf_free(&out);
}

static void test_lenient(void **state)
{
    check_lenient("SGVsbG8sIHdvcmxkIQ==", "Hello, world!", 13);
    check_lenient("SGVs\r\nbG8s IHdv\tcmxk\r\nIQ==\r\n", "Hello, world!", 13);
    check_lenient("SG!!Vs*bG8\x80\xff", "Hello", 5); /* garbage skipped */
    check_lenient("SGk=SGk=", "HiHi", 4);            /* concatenated blocks */
    check_lenient("SGVsbA", "Hell", 4);              /* missing padding */
    check_lenient("S", "", 0);                       /* leftover bits dropped */
    check_lenient("AAEC/w==", "\x00\x01\x02\xff", 4);
    check_lenient("", "", 0);
}

static void test_lines(void **state)
{
    unsigned char data[120];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)i;
    struct buf b = BUF_INIT, flat = BUF_INIT, back = BUF_INIT;
    base64_encode_lines(data, sizeof(data), 76, "\r\n", &b);
    base64_encode(data, sizeof(data), &flat);
    /* 120 bytes: 57 + 57 + 6 -> lines of 76, 76 and 8 characters */
    assert_int_equal(b.len, 76 + 2 + 76 + 2 + 8 + 2);
    assert_memory_equal(b.data, flat.data, 76);
    assert_memory_equal(b.data + 76, "\r\n", 2);
    assert_memory_equal(b.data + 78, flat.data + 76, 76);
    assert_memory_equal(b.data + 154, "\r\n", 2);
    assert_memory_equal(b.data + 156, flat.data + 152, 8);
    assert_string_equal(b.data + 164, "\r\n");
    base64_decode_lenient(buf_slice(&b), &back);
    assert_int_equal(back.len, sizeof(data));
    assert_memory_equal(back.data, data, sizeof(data));
    buf_reset(&b);
    base64_encode_lines("", 0, 76, "\r\n", &b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    buf_free(&flat);
    buf_free(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_encode_appends),
        cmocka_unit_test(test_strict_errors),   cmocka_unit_test(test_strict_limit),
        cmocka_unit_test(test_lenient),         cmocka_unit_test(test_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
