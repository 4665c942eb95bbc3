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
    if (cert != NULL && net_cert_write_pem(cfg->tls_key_file, 0600, key, NULL, false, err) == 0) {
        if (net_cert_write_pem(cfg->tls_cert_file, 0644, NULL, cert, false, err) == 0)
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
