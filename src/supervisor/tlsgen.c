/*
 * tlsgen.c - generating the self-signed certificate with the OpenSSL 3 API.
 *
 * Runs in wharfd before any component starts. Never overwrites an existing
 * key or certificate, and never writes a key readable by anyone but its owner.
 */
#include "supervisor/tlsgen.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A self-signed certificate is a stop-gap; ten years keeps it from expiring under a test box. */
#define TLSGEN_VALID_DAYS 3650

static void ssl_error(struct buf *err, const char *what)
{
    char e[256];
    ERR_error_string_n(ERR_get_error(), e, sizeof(e));
    buf_printf(err, "%s: %s", what, e);
}

static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, struct buf *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        buf_printf(err, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        buf_printf(err, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    if (fclose(f) != 0 || !ok) {
        unlink(path);
        buf_printf(err, "cannot write %s", path);
        return -1;
    }
    return 0;
}

static X509 *make_cert(EVP_PKEY *key, const char *hostname, struct buf *err)
{
    X509 *x = X509_new();
    if (x == NULL)
        return NULL;
    unsigned char serial[16];
    FILE *r = fopen("/dev/urandom", "re");
    if (r == NULL || fread(serial, 1, sizeof(serial), r) != sizeof(serial)) {
        if (r)
            fclose(r);
        buf_printf(err, "cannot read /dev/urandom");
        X509_free(x);
        return NULL;
    }
    fclose(r);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    X509V3_CTX ctx;
    char san[300];
    snprintf(san, sizeof(san), "DNS:%s", hostname);
    bool ok = bn != NULL && X509_set_version(x, 2) &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), (long)TLSGEN_VALID_DAYS * 86400) &&
              X509_set_pubkey(x, key);
    BN_free(bn);
    X509_NAME *name = X509_get_subject_name(x);
    ok = ok &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1,
                                    -1, 0) &&
         X509_set_issuer_name(x, name);
    if (ok) {
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        const char *exts[][2] = {{"subjectAltName", san},
                                 {"basicConstraints", "critical,CA:FALSE"},
                                 {"keyUsage", "critical,digitalSignature"},
                                 {"extendedKeyUsage", "serverAuth"}};
        for (size_t i = 0; ok && i < sizeof(exts) / sizeof(exts[0]); i++) {
            X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
            ok = e != NULL && X509_add_ext(x, e, -1);
            X509_EXTENSION_free(e);
        }
    }
    if (!ok || !X509_sign(x, key, EVP_sha256())) {
        ssl_error(err, "cannot build the self-signed certificate");
        X509_free(x);
        return NULL;
    }
    return x;
}

int tlsgen_ensure(const struct wharf_config *cfg, struct buf *err)
{
    bool have_cert = access(cfg->tls_cert_file, F_OK) == 0;
    bool have_key = access(cfg->tls_key_file, F_OK) == 0;
    if (have_cert && have_key)
        return 0;
    bool defaults =
        cfg->origin[OPTID_tls_cert_file] == NULL && cfg->origin[OPTID_tls_key_file] == NULL;
    if (!defaults || have_cert || have_key) {
        buf_printf(err,
                   "%s: %s does not exist; install it or remove both tls_cert_file and "
                   "tls_key_file settings (and files) to get a self-signed certificate",
                   have_cert ? "tls_key_file" : "tls_cert_file",
                   have_cert ? cfg->tls_key_file : cfg->tls_cert_file);
        return -1;
    }
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL) {
        ssl_error(err, "cannot generate an EC P-256 key");
        return -1;
    }
    X509 *cert = make_cert(key, cfg->myhostname, err);
    int r = -1;
    if (cert != NULL && write_pem(cfg->tls_key_file, 0600, key, NULL, err) == 0) {
        if (write_pem(cfg->tls_cert_file, 0644, NULL, cert, err) == 0)
            r = 0;
        else
            unlink(cfg->tls_key_file);
    }
    if (r == 0)
        log_info("generated a self-signed certificate for %s in %s (replace it with a real one)",
                 cfg->myhostname, cfg->tls_cert_file);
    X509_free(cert);
    EVP_PKEY_free(key);
    return r;
}
