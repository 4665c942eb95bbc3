/*
 * test_net_tls_client.c - unit tests of the outbound TLS kit: real
 * handshakes between a client SSL it made and a server SSL with a fresh
 * self-signed certificate for mx.example.test, over an in-memory BIO pair.
 */
#include "net/net_tls_client.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define NAME "mx.example.test"

static EVP_PKEY *key;
static X509 *cert;
static SSL_CTX *server_ctx;
static char ca_file[] = "/tmp/wharf-tlsc-XXXXXX";

static int setup(void **state)
{
    (void)state;
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *n = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)NAME, -1, -1, 0);
    X509_set_issuer_name(cert, n);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:" NAME);
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    if (X509_sign(cert, key, EVP_sha256()) == 0)
        return -1;
    int fd = mkstemp(ca_file);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL || !PEM_write_X509(f, cert) || fclose(f) != 0)
        return -1;
    server_ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate(server_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(server_ctx, key) != 1)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(ca_file);
    SSL_CTX_free(server_ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

/* Runs the handshake of cli against a fresh server SSL; true when both
 * sides finished it. cli is freed. *check_r gets net_tls_client_check. */
static bool handshake(SSL *cli, enum net_tls_verify verify, bool *check_r)
{
    SSL *srv = SSL_new(server_ctx);
    BIO *bc, *bs;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(cli, bc, bc);
    SSL_set_bio(srv, bs, bs);
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    int rc = 0, rs = 0;
    bool failed = false;
    for (int i = 0; i < 50 && !failed && (rc != 1 || rs != 1); i++) {
        if (rc != 1 && (rc = SSL_do_handshake(cli)) <= 0 &&
            SSL_get_error(cli, rc) != SSL_ERROR_WANT_READ)
            failed = true;
        if (rs != 1 && (rs = SSL_do_handshake(srv)) <= 0 &&
            SSL_get_error(srv, rs) != SSL_ERROR_WANT_READ)
            failed = true;
    }
    struct buf why = BUF_INIT;
    *check_r = !failed && net_tls_client_check(cli, verify, &why);
    if (!failed && !*check_r)
        assert_true(why.len > 0);
    buf_free(&why);
    SSL_free(cli);
    SSL_free(srv);
    ERR_clear_error();
    return !failed && rc == 1 && rs == 1;
}

/* A TLSA rdata record "usage selector mtype data", length-prefixed.
 * (DANE-TA needs a CA chain: tests/integration/test_dane.py has one.) */
static size_t tlsa_record(unsigned char *out, int usage, int selector, const unsigned char *der,
                          size_t der_len)
{
    unsigned char md[32];
    EVP_Digest(der, der_len, md, NULL, EVP_sha256(), NULL);
    out[0] = 0;
    out[1] = 3 + 32;
    out[2] = (unsigned char)usage;
    out[3] = (unsigned char)selector;
    out[4] = 1; /* SHA2-256 */
    memcpy(out + 5, md, 32);
    return 2 + 3 + 32;
}

static size_t spki_record(unsigned char *out, int usage)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    size_t len = tlsa_record(out, usage, 1, der, (size_t)n);
    OPENSSL_free(der);
    return len;
}

static SSL *client(SSL_CTX *ctx, const char *name, enum net_tls_verify v, const unsigned char *tlsa,
                   size_t tlsa_len)
{
    const struct net_tls_client_peer p = {
        .name = name, .verify = v, .tlsa = tlsa, .tlsa_len = tlsa_len};
    struct buf err = BUF_INIT;
    SSL *ssl = net_tls_client_ssl_new(ctx, &p, &err);
    assert_true(ssl != NULL || err.len > 0);
    buf_free(&err);
    return ssl;
}

static void test_ctx_needs_a_readable_ca_file(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    assert_null(net_tls_client_ctx_new("/nonexistent/ca.pem", &err));
    assert_non_null(strstr(buf_cstr(&err), "/nonexistent/ca.pem"));
    buf_free(&err);
    ERR_clear_error();
    SSL_CTX *ctx = net_tls_client_ctx_new(ca_file, &err);
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    SSL_CTX_free(ctx);
    buf_free(&err);
}

static void test_verify_name(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    SSL_CTX *trusted = net_tls_client_ctx_new(ca_file, &err);
    SSL_CTX *untrusted = net_tls_client_ctx_new(NULL, &err);
    bool ok;
    assert_true(
        handshake(client(trusted, NAME, NET_TLS_VERIFY_NAME, NULL, 0), NET_TLS_VERIFY_NAME, &ok));
    assert_true(ok);
    /* another name, or a chain to no trusted CA: the handshake fails */
    assert_false(handshake(client(trusted, "other.example.test", NET_TLS_VERIFY_NAME, NULL, 0),
                           NET_TLS_VERIFY_NAME, &ok));
    assert_false(
        handshake(client(untrusted, NAME, NET_TLS_VERIFY_NAME, NULL, 0), NET_TLS_VERIFY_NAME, &ok));
    /* never a check without a name */
    assert_null(client(trusted, NULL, NET_TLS_VERIFY_NAME, NULL, 0));
    assert_null(client(trusted, "", NET_TLS_VERIFY_DANE, NULL, 0));
    SSL_CTX_free(trusted);
    SSL_CTX_free(untrusted);
    buf_free(&err);
}

static void test_encryption_only_takes_any_certificate(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    SSL_CTX *untrusted = net_tls_client_ctx_new(NULL, &err);
    bool ok;
    assert_true(handshake(client(untrusted, "other.example.test", NET_TLS_VERIFY_NONE, NULL, 0),
                          NET_TLS_VERIFY_NONE, &ok));
    assert_true(ok);
    assert_true(
        handshake(client(untrusted, NULL, NET_TLS_VERIFY_NONE, NULL, 0), NET_TLS_VERIFY_NONE, &ok));
    assert_true(ok);
    SSL_CTX_free(untrusted);
    buf_free(&err);
}

static void test_dane(void **state)
{
    (void)state;
    struct buf err = BUF_INIT;
    SSL_CTX *untrusted = net_tls_client_ctx_new(NULL, &err);
    unsigned char tlsa[128];
    bool ok;
    /* DANE-EE 3 1 1: the key itself, no CA, name or expiry checks */
    size_t n = spki_record(tlsa, 3);
    assert_true(handshake(client(untrusted, "any.example.test", NET_TLS_VERIFY_DANE, tlsa, n),
                          NET_TLS_VERIFY_DANE, &ok));
    assert_true(ok);
    /* a record for another key: encrypted, but not authenticated */
    tlsa[10] ^= 0xff;
    assert_true(
        handshake(client(untrusted, NAME, NET_TLS_VERIFY_DANE, tlsa, n), NET_TLS_VERIFY_DANE, &ok));
    assert_false(ok);
    /* PKIX usages (0, 1) mean nothing for SMTP: no usable record, no SSL */
    n = spki_record(tlsa, 1);
    assert_null(client(untrusted, NAME, NET_TLS_VERIFY_DANE, tlsa, n));
    /* a truncated record is skipped, never read past */
    n = spki_record(tlsa, 3);
    assert_null(client(untrusted, NAME, NET_TLS_VERIFY_DANE, tlsa, n - 1));
    SSL_CTX_free(untrusted);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_needs_a_readable_ca_file),
        cmocka_unit_test(test_verify_name),
        cmocka_unit_test(test_encryption_only_takes_any_certificate),
        cmocka_unit_test(test_dane),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
