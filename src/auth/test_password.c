/*
 * test_password.c - unit tests for password hashes: each supported scheme
 * against vectors made with other tools (Python's crypt module over
 * libxcrypt, when the tests were written), and yescrypt round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/password.h"

/* All three are "correct horse". */
static const char *const vec_yescrypt =
    "$y$j9T$2OQsM3oQW2pJMkFqUrMk/0$LUfDxE34Ck.RWZknjQ0ftb7nTL6glR8JWrPFO/oRK..";
static const char *const vec_sha512 =
    "$6$vRMHTgTwQp.KDuvH$ea.Mo60Z1FFlZJewqvss50EXh7cFqRgEJWwv4vgj/Tv6TIzR5fKmXzV0WpMaYP4aOu9wg9v"
    "hwyqYg32.gXKnr.";
static const char *const vec_bcrypt =
    "$2b$05$CE1qWmfaSS7N0x5JcHKpCOn0yKwUX/OHlTOPFAzAmo4JQEm4OJveK";

static void test_vectors(void **state)
{
    const char *v[] = {vec_yescrypt, vec_sha512, vec_bcrypt};
    for (size_t i = 0; i < 3; i++) {
        assert_true(password_verify("correct horse", v[i]));
        assert_false(password_verify("correct horsE", v[i]));
        assert_false(password_verify("", v[i]));
        assert_true(password_hash_supported(v[i]));
    }
}

static void test_roundtrip(void **state)
{
    struct buf h = BUF_INIT, err = BUF_INIT, h2 = BUF_INIT;
    assert_int_equal(password_hash("s3cret pass", &h, &err), 0);
    assert_memory_equal(h.data, "$y$", 3);
    assert_true(password_verify("s3cret pass", h.data));
    assert_false(password_verify("s3cret pas", h.data));
    assert_true(password_hash_supported(h.data));
    /* A fresh salt each time. */
    assert_int_equal(password_hash("s3cret pass", &h2, &err), 0);
    assert_string_not_equal(h.data, h2.data);
    buf_free(&h);
    buf_free(&h2);
    buf_free(&err);
}

static void test_refused(void **state)
{
    /* DES and MD5-crypt are too weak; a bare setting has no hash to compare. */
    assert_false(password_hash_supported("abJnggxhB/yWI"));
    assert_false(password_verify("test", "abJnggxhB/yWI"));
    assert_false(password_hash_supported("$1$abcdefgh$KhzPjY2ftmRFuhRGjZ1C/0"));
    assert_false(password_hash_supported("$y$j9T$2OQsM3oQW2pJMkFqUrMk/0"));
    assert_false(password_hash_supported("$6$"));
    assert_false(password_hash_supported(""));
    assert_false(password_hash_supported("*"));
    assert_false(password_verify("", ""));
    assert_false(password_verify("x", "!"));
    /* A truncated hash never matches. */
    char cut[200];
    size_t n = strlen(vec_sha512) - 1;
    memcpy(cut, vec_sha512, n);
    cut[n] = '\0';
    assert_false(password_verify("correct horse", cut));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
