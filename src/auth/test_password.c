/*
 * test_password.c - unit tests for password hashes: each supported scheme
 * against vectors made with other tools (Python's crypt module over
 * libxcrypt, when the tests were written), and yescrypt round trips; LDAP
 * values ({SCHEME}...) made by OpenLDAP's slappasswd (with pw-sha2 for
 * {SSHA256} and {SSHA512}).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
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

/* All "correct horse", from slappasswd. */
static const char *const ldap_good[] = {
    "{SSHA}p2y1qQBqJLASzxVbjzrqo3qIqbG0te4M",
    "{SSHA256}krl3MX+VtcnJ9ilNJrdc0HTVjO8Awta3PNrzW4sLK9IfSC1QzKHuUQ==",
    "{SSHA512}q1dXlqnUQP0Cn+H0CPZV3Y4P9MWpBwQhys6Rq5h4pytKrvm4CswCop847udLpG/"
    "WRjORTb6IuU+2nMKvKO45l8D9"
    "ixusI7wI",
    "{CRYPT}$6$Cs9nEmY6c/LaXZvb$p04Ztv/bCzD39.FZn05IFCJjZuCN7zZR2Vt/3EVYxUj2tCXkx4PuXSg7WmEf/"
    "vpNFK5uj"
    "Yjih.IUE.1p0B3pX0",
    "{CRYPT}$5$5mLTBaqMvz3Sn54B$8xRgPuX89zqKFxtN5TQa3xQfBreYaWPriWRMRiqhWe5",
    "{crypt}$2b$05$CE1qWmfaSS7N0x5JcHKpCOn0yKwUX/OHlTOPFAzAmo4JQEm4OJveK",
    "{ssha}p2y1qQBqJLASzxVbjzrqo3qIqbG0te4M",
};

static void test_ldap_schemes(void **state)
{
    const char *why = NULL;
    for (size_t i = 0; i < sizeof(ldap_good) / sizeof(ldap_good[0]); i++) {
        assert_int_equal(password_ldap_verify("correct horse", ldap_good[i], &why), 1);
        assert_int_equal(password_ldap_verify("correct horsE", ldap_good[i], &why), 0);
        assert_int_equal(password_ldap_verify("", ldap_good[i], &why), 0);
        assert_int_equal(password_ldap_verify("correct horse ", ldap_good[i], &why), 0);
    }
    char yes[200];
    snprintf(yes, sizeof(yes), "{CRYPT}%s", vec_yescrypt);
    assert_int_equal(password_ldap_verify("correct horse", yes, &why), 1);
    struct password_ldap_hash h;
    assert_int_equal(password_ldap_parse(ldap_good[0], &h, &why), 0);
    assert_int_equal(h.scheme, PASSWORD_LDAP_SSHA);
    assert_int_equal(h.digest_len, 20);
    assert_int_equal(h.salt_len, 4);
    assert_int_equal(password_ldap_parse(ldap_good[2], &h, &why), 0);
    assert_int_equal(h.scheme, PASSWORD_LDAP_SSHA512);
    assert_int_equal(h.salt_len, 8);
    /* $5$ is for LDAP's {CRYPT} alone, not for imports. */
    assert_false(password_hash_supported(ldap_good[4] + 7));
}

static void refused(const char *value, const char *reason_part)
{
    const char *why = NULL;
    assert_int_equal(password_ldap_verify("correct horse", value, &why), -1);
    assert_non_null(why);
    assert_non_null(strstr(why, reason_part));
}

static void test_ldap_refused(void **state)
{
    refused("correct horse", "cleartext");
    refused("", "cleartext");
    refused("{CLEARTEXT}correct horse", "cleartext");
    refused("{correct horse", "cleartext");
    refused("{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", "unsalted");
    refused("{MD5}abc", "unsalted");
    refused("{SMD5}abc", "weak");
    refused("{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$abc$def", "unknown");
    refused("{}x", "unknown");
    refused("{CRYPT}$1$8TpikMIh$PQYapyYNmfVo2om7AbsyY/", "crypt(3)");
    refused("{CRYPT}abJnggxhB/yWI", "crypt(3)");
    refused("{CRYPT}", "crypt(3)");
    /* A salted digest cut short, with no salt, with junk, with a huge salt. */
    refused("{SSHA}p2y1qQBqJLASzxVbjzrqo3qIqbG0", "short");
    refused("{SSHA}L55TUjtiq8FBorTWAZ0jy6g129A=", "short");
    refused("{SSHA}p2y1qQBqJLASzxVbjzrqo3qIqbG0te4M!", "base64");
    refused("{SSHA} p2y1qQBqJLASzxVbjzrqo3qIqbG0te4M", "base64");
    char big[400] = "{SSHA}";
    memset(big + 6, 'A', 200);
    big[206] = '\0';
    refused(big, "base64");
    char huge[PASSWORD_LDAP_MAX + 10];
    memset(huge, 'A', sizeof(huge) - 1);
    memcpy(huge, "{SSHA}", 6);
    huge[sizeof(huge) - 1] = '\0';
    refused(huge, "too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),      cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refused),      cmocka_unit_test(test_ldap_schemes),
        cmocka_unit_test(test_ldap_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
