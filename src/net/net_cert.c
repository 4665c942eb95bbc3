/*
 * net_cert.c - self-signed certificate generation with the OpenSSL 3 API
 * and the PEM file writer (see net_cert.h). Must never log, or leave a
 * half-built certificate or file to its caller.
 */
#include "net/net_cert.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void ssl_error(struct buf *err, const char *what)
{
    char e[256];
    ERR_error_string_n(ERR_get_error(), e, sizeof(e));
    buf_printf(err, "%s: %s", what, e);
}

EVP_PKEY *net_cert_keygen(struct buf *err)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL)
        ssl_error(err, "cannot generate an EC P-256 key");
    return key;
}

static bool set_serial(X509 *x)
{
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        return false;
    serial[0] &= 0x7f; /* positive (RFC 5280 4.1.2.2) */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    bool ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

X509 *net_cert_selfsigned(EVP_PKEY *key, const char *hostname, int valid_days, struct buf *err)
{
    X509 *x = X509_new();
    struct buf san = BUF_INIT;
    buf_printf(&san, "DNS:%s", hostname);
    bool ok = x != NULL && X509_set_version(x, 2) && set_serial(x) &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), (long)valid_days * 86400) &&
              X509_set_pubkey(x, key);
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    ok = ok &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)hostname, -1,
                                    -1, 0) &&
         X509_set_issuer_name(x, name);
    if (ok) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        const char *exts[][2] = {{"subjectAltName", san.data},
                                 {"basicConstraints", "critical,CA:FALSE"},
                                 {"keyUsage", "critical,digitalSignature"},
                                 {"extendedKeyUsage", "serverAuth"}};
        for (size_t i = 0; ok && i < sizeof(exts) / sizeof(exts[0]); i++) {
            X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
            ok = e != NULL && X509_add_ext(x, e, -1);
            X509_EXTENSION_free(e);
        }
    }
    buf_free(&san);
    if (!ok || !X509_sign(x, key, EVP_sha256())) {
        ssl_error(err, "cannot build the self-signed certificate");
        X509_free(x);
        return NULL;
    }
    return x;
}

int net_cert_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, bool replace,
                       struct buf *err)
{
    struct buf tmp = BUF_INIT;
    buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(buf_cstr(&tmp)); /* a leftover of a crashed earlier attempt */
    int fd = open(buf_cstr(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        buf_printf(err, "cannot create %s: %s", buf_cstr(&tmp), strerror(errno));
        if (fd >= 0)
            close(fd);
        buf_free(&tmp);
        return -1;
    }
    bool ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1
                  : PEM_write_X509(f, cert) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        buf_printf(err, "cannot write %s", path);
    else if (replace ? rename(buf_cstr(&tmp), path) != 0 : link(buf_cstr(&tmp), path) != 0) {
        buf_printf(err, "cannot create %s: %s", path, strerror(errno));
        ok = false;
    }
    if (!ok || !replace)
        unlink(buf_cstr(&tmp));
    buf_free(&tmp);
    return ok ? 0 : -1;
}
