/*
 * tlsgen.c - the self-signed certificate at first start (built by net/net_cert.h).
 *
 * Runs in wharfd before any component starts. Never overwrites an existing
 * key or certificate, and never writes a key readable by anyone but its owner.
 */
#include "supervisor/tlsgen.h"
#include "base/log.h"
#include "net/net_cert.h"

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
    EVP_PKEY *key = net_cert_keygen(err);
    if (key == NULL)
        return -1;
    X509 *cert = net_cert_selfsigned(key, cfg->myhostname, TLSGEN_VALID_DAYS, err);
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
