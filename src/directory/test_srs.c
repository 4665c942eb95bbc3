/*
 * test_srs.c - unit tests for the SRS addresses (srs.c): the vectors of
 * postsrsd's own tests (so our addresses are the ones libsrs2 and postsrsd
 * make), round trips, the case-insensitive hash, SRS1 of SRS0 and of SRS1,
 * expired, forged and malformed addresses, and the secret file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "directory/srs.h"

#define T0 ((time_t)1577836860) /* 2020-01-01 00:01:00 UTC, the time of postsrsd's tests */
#define DAY 86400

static const struct srs postsrsd = {"tops3cr3t", 9, "example.com", 21};

static void assert_forward(const struct srs *s, const char *in, time_t now, const char *want)
{
    struct buf out = BUF_INIT;
    assert_true(srs_forward(s, in, now, &out));
    assert_string_equal(out.data, want);
    buf_free(&out);
}

static void assert_reverse(const struct srs *s, const char *in, time_t now, enum srs_status st,
                           const char *want)
{
    struct buf out = BUF_INIT;
    assert_int_equal(srs_reverse(s, in, now, &out), st);
    if (want)
        assert_string_equal(buf_cstr(&out), want);
    else
        assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_postsrsd_vectors(void **state)
{
    (void)state;
    assert_forward(&postsrsd, "test@otherdomain.com", T0,
                   "SRS0=vmyz=2W=otherdomain.com=test@example.com");
    assert_forward(&postsrsd, "SRS0=opaque+string@otherdomain.com", T0,
                   "SRS1=chaI=otherdomain.com==opaque+string@example.com");
    /* made by postsrsd one day earlier */
    assert_reverse(&postsrsd, "SRS0=XjO9=2V=otherdomain.com=test@example.com", T0, SRS_OK,
                   "test@otherdomain.com");
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *senders[] = {"alice@sender.example", "Alice.Smith@Sender.Example", "a=b+c-d@x.test",
                             "\"odd\"@y.test"};
    for (size_t i = 0; i < sizeof(senders) / sizeof(*senders); i++) {
        struct buf fwd = BUF_INIT;
        assert_true(srs_forward(&postsrsd, senders[i], T0, &fwd));
        assert_true(strncmp(fwd.data, "SRS0=", 5) == 0);
        assert_reverse(&postsrsd, fwd.data, T0 + 3 * DAY, SRS_OK, senders[i]);
        buf_free(&fwd);
    }
}

static void test_hash_and_tags_ignore_case(void **state)
{
    (void)state;
    /* some MTAs lower-case the local part: the spec says to accept it */
    assert_reverse(&postsrsd, "srs0=vmyz=2w=otherdomain.com=test@example.com", T0, SRS_OK,
                   "test@otherdomain.com");
    assert_reverse(&postsrsd, "SRS0=VMYZ=2W=OTHERDOMAIN.COM=TEST@EXAMPLE.COM", T0, SRS_OK,
                   "TEST@OTHERDOMAIN.COM");
    assert_reverse(&postsrsd, "srs1=CHAI=otherdomain.com==opaque+string@example.com", T0, SRS_OK,
                   "SRS0=opaque+string@otherdomain.com");
}

static void test_srs1_of_srs0_and_of_srs1(void **state)
{
    (void)state;
    const struct srs second = {"another secret", 14, "fwd2.test", 21};
    const struct srs third = {"a third one", 11, "fwd3.test", 21};
    const char *srs0 = "SRS0=vmyz=2W=otherdomain.com=test@example.com";
    struct buf b = BUF_INIT, c = BUF_INIT;
    assert_true(srs_forward(&second, srs0, T0, &b));
    assert_true(strncmp(b.data, "SRS1=", 5) == 0);
    assert_non_null(strstr(b.data, "=example.com==vmyz=2W=otherdomain.com=test@fwd2.test"));
    assert_reverse(&second, b.data, T0, SRS_OK, srs0);
    /* the third forwarder keeps the first forwarder's host: bounces skip the second */
    assert_true(srs_forward(&third, b.data, T0, &c));
    assert_non_null(strstr(c.data, "=example.com==vmyz=2W=otherdomain.com=test@fwd3.test"));
    assert_reverse(&third, c.data, T0, SRS_OK, srs0);
    assert_reverse(&second, c.data, T0, SRS_BAD_HASH, NULL); /* not our secret */
    /* and the first one takes it home */
    assert_reverse(&postsrsd, srs0, T0, SRS_OK, "test@otherdomain.com");
    buf_free(&b);
    buf_free(&c);
}

static void test_expired(void **state)
{
    (void)state;
    const char *a = "SRS0=vmyz=2W=otherdomain.com=test@example.com";
    assert_reverse(&postsrsd, a, T0 + 21 * DAY, SRS_OK, "test@otherdomain.com");
    assert_reverse(&postsrsd, a, T0 + 22 * DAY, SRS_EXPIRED, NULL);
    assert_reverse(&postsrsd, a, T0 + 500 * DAY, SRS_EXPIRED, NULL);
    /* a stamp from the future is an old one, 1024 days round */
    assert_reverse(&postsrsd, a, T0 - DAY, SRS_EXPIRED, NULL);
    /* across the wrap of the 1024-day counter */
    struct buf fwd = BUF_INIT;
    time_t late = T0 + (1024 - 854 - 1) * (time_t)DAY; /* day 1023 mod 1024 */
    assert_true(srs_forward(&postsrsd, "x@y.test", late, &fwd));
    assert_non_null(strstr(fwd.data, "=77=y.test="));
    assert_reverse(&postsrsd, fwd.data, late + 2 * DAY, SRS_OK, "x@y.test");
    buf_free(&fwd);
}

static void test_forged(void **state)
{
    (void)state;
    assert_reverse(&postsrsd, "SRS0=vmyA=2W=otherdomain.com=test@example.com", T0, SRS_BAD_HASH,
                   NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2W=otherdomain.com=victim@example.com", T0, SRS_BAD_HASH,
                   NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2W=evil.test=test@example.com", T0, SRS_BAD_HASH, NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2X=otherdomain.com=test@example.com", T0, SRS_BAD_HASH,
                   NULL);
    assert_reverse(&postsrsd, "SRS0=vmyzz=2W=otherdomain.com=test@example.com", T0, SRS_BAD_HASH,
                   NULL);
    assert_reverse(&postsrsd, "SRS1=chaJ=otherdomain.com==opaque+string@example.com", T0,
                   SRS_BAD_HASH, NULL);
    const struct srs other = {"tops3cr3T", 9, "example.com", 21};
    assert_reverse(&other, "SRS0=vmyz=2W=otherdomain.com=test@example.com", T0, SRS_BAD_HASH, NULL);
}

static void test_malformed_and_not_srs(void **state)
{
    (void)state;
    assert_reverse(&postsrsd, "bob@example.com", T0, SRS_NOT_SRS, NULL);
    assert_reverse(&postsrsd, "SRS0@example.com", T0, SRS_NOT_SRS, NULL);
    assert_reverse(&postsrsd, "SRS0x=a=b=c=d@example.com", T0, SRS_NOT_SRS, NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz", T0, SRS_NOT_SRS, NULL);
    assert_reverse(&postsrsd, "SRS0=@example.com", T0, SRS_MALFORMED, NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2W=otherdomain.com@example.com", T0, SRS_MALFORMED, NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2W=otherdomain.com=@example.com", T0, SRS_MALFORMED, NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2W==test@example.com", T0, SRS_MALFORMED, NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2!=otherdomain.com=test@example.com", T0, SRS_MALFORMED,
                   NULL);
    assert_reverse(&postsrsd, "SRS0=vmyz=2WW=otherdomain.com=test@example.com", T0, SRS_MALFORMED,
                   NULL);
    assert_reverse(&postsrsd, "SRS1=chaI=otherdomain.com@example.com", T0, SRS_MALFORMED, NULL);
    assert_reverse(&postsrsd, "SRS1=chaI==opaque@example.com", T0, SRS_MALFORMED, NULL);
    assert_reverse(&postsrsd, "SRS1=chaI=otherdomain.com=@example.com", T0, SRS_MALFORMED, NULL);
    char longer[SRS_ADDRESS_MAX + 64];
    snprintf(longer, sizeof(longer), "SRS0=vmyz=2W=otherdomain.com=%0*d@example.com",
             SRS_ADDRESS_MAX, 0);
    assert_reverse(&postsrsd, longer, T0, SRS_MALFORMED, NULL);
    /* a sender too long to rewrite, or without a domain, is not rewritten */
    struct buf out = BUF_INIT;
    snprintf(longer, sizeof(longer), "%0*d@x.test", SRS_ADDRESS_MAX - 20, 0);
    assert_false(srs_forward(&postsrsd, longer, T0, &out));
    assert_false(srs_forward(&postsrsd, "foo", T0, &out));
    assert_false(srs_forward(&postsrsd, "", T0, &out));
    assert_false(srs_forward(&postsrsd, "@x.test", T0, &out));
    assert_false(srs_forward(&postsrsd, "a@cmd = x.test", T0, &out)); /* found by fuzz_srs */
    assert_false(srs_forward(&postsrsd, "SRS1=abcd@x.test", T0, &out));
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/wharf-srstest-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/srs.key", dir);
    struct buf a = BUF_INIT, b = BUF_INIT, err = BUF_INIT;
    assert_int_equal(srs_key_load(path, getuid(), getgid(), &a, &err), 0);
    assert_int_equal(a.len, 2 * SRS_SECRET_NEW_BYTES);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(srs_key_load(path, getuid(), getgid(), &b, &err), 0);
    assert_true(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    /* postsrsd's file: the secret is the first line */
    FILE *f = fopen(path, "w");
    fputs("tops3cr3t\nan older secret\n", f);
    fclose(f);
    assert_int_equal(srs_key_load(path, getuid(), getgid(), &b, &err), 0);
    assert_string_equal(buf_cstr(&b), "tops3cr3t");
    f = fopen(path, "w");
    fclose(f);
    assert_int_equal(srs_key_load(path, getuid(), getgid(), &b, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "secret"));
    unlink(path);
    rmdir(dir);
    buf_free(&a);
    buf_free(&b);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postsrsd_vectors),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hash_and_tags_ignore_case),
        cmocka_unit_test(test_srs1_of_srs0_and_of_srs1),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_forged),
        cmocka_unit_test(test_malformed_and_not_srs),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
