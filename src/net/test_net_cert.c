/*
 * test_net_cert.c - unit tests for the certificate generator: the key fits
 * the certificate, the signature verifies, and a TLS client's host name
 * check (X509_check_host, which reads subjectAltName) accepts the name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net_cert.h"

static void test_selfsigned(void **state)
{
    struct buf err = BUF_INIT;
    EVP_PKEY *key = net_cert_keygen(&err);
    assert_non_null(key);
    X509 *x = net_cert_selfsigned(key, "mx.example.org", 30, &err);
    assert_non_null(x);
    assert_int_equal(err.len, 0);
    assert_int_equal(X509_get_version(x), 2);
    assert_int_equal(X509_check_private_key(x, key), 1);
    assert_int_equal(X509_verify(x, key), 1);
    /* the name is in subjectAltName: RFC 6125 clients look there */
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    assert_int_equal(sk_GENERAL_NAME_num(san), 1);
    GENERAL_NAMES_free(san);
    assert_int_equal(
        X509_check_host(x, "mx.example.org", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.example.org", 0, 0, NULL), 0);
    /* valid now, not a CA, for servers */
    assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
    assert_true(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);
    assert_int_equal(X509_check_ca(x), 0);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    /* two certificates never share a serial */
    X509 *y = net_cert_selfsigned(key, "mx.example.org", 30, &err);
    assert_non_null(y);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)), 0);
    X509_free(y);
    X509_free(x);
    EVP_PKEY_free(key);
    buf_free(&err);
}

/* Files in dir, for the "no temporary file left" check. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_write_pem(void **state)
{
    (void)state;
    char dir[] = "/tmp/wharf-cert-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    struct buf err = BUF_INIT;
    EVP_PKEY *k = net_cert_keygen(&err);
    assert_non_null(k);
    assert_int_equal(net_cert_write_pem(path, 0600, k, NULL, false, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Never overwritten unless asked; no temporary file left either way. */
    assert_int_equal(net_cert_write_pem(path, 0600, k, NULL, false, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "File exists"));
    assert_int_equal(net_cert_write_pem(path, 0600, k, NULL, true, &err), 0);
    assert_int_equal(count_files(dir), 1);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *back = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(k, back), 1);
    EVP_PKEY_free(back);
    EVP_PKEY_free(k);
    buf_free(&err);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selfsigned),
        cmocka_unit_test(test_write_pem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
