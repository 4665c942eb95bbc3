/*
 * net_tls.c - the server TLS context: tls_cert_file/tls_key_file, tls_min_version,
 * and a self-signed pair in DATA_DIRECTORY/tls/ when none is configured.
 *
 * Runs before privileges are dropped (the key is root's). Must never: accept
 * a protocol older than tls_min_version, or write a key readable by others.
 */
#include "net/net_internal.h"

#include "base/alloc.h"
#include "base/log.h"
#include "net/net_cert.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void ssl_errors(struct buf *err)
{
    unsigned long e;
    char msg[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, msg, sizeof(msg));
        buf_printf(err, " [%s]", msg);
    }
}

/* Writes a fresh EC P-256 key and a 10-year self-signed certificate for myhostname. */
static int tls_generate(const struct wharf_config *cfg, const char *cert, const char *key,
                        struct buf *err)
{
    EVP_PKEY *pk = net_cert_keygen(err);
    X509 *x = pk ? net_cert_selfsigned(pk, cfg->myhostname, 3650, err) : NULL;
    int rc = x != NULL && net_cert_write_pem(key, 0600, pk, NULL, true, err) == 0 &&
                     net_cert_write_pem(cert, 0644, NULL, x, true, err) == 0
                 ? 0
                 : -1;
    if (rc == 0)
        log_info("generated a self-signed certificate for %s in %s", cfg->myhostname, cert);
    else
        buf_printf(err, " (while generating a self-signed certificate)");
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

SSL_CTX *net_tls_ctx_new(const struct wharf_config *cfg, struct buf *err)
{
    char *cert =
        cfg->tls_cert_file[0] ? xstrdup(cfg->tls_cert_file) : config_data_path(cfg, "tls/cert.pem");
    char *key =
        cfg->tls_key_file[0] ? xstrdup(cfg->tls_key_file) : config_data_path(cfg, "tls/key.pem");
    SSL_CTX *ctx = NULL;
    char *def_cert = config_data_path(cfg, "tls/cert.pem");
    bool is_default = strcmp(cert, def_cert) == 0;
    free(def_cert);
    if (is_default && access(cert, R_OK) != 0) {
        /* Several workers may start at once: one generates, the others wait. */
        char *dir = config_data_path(cfg, "tls");
        mkdir(dir, 0700);
        struct buf lockp = BUF_INIT;
        buf_printf(&lockp, "%s/.lock", dir);
        int lfd = open(lockp.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lfd >= 0)
            flock(lfd, LOCK_EX);
        int rc = access(cert, R_OK) == 0 ? 0 : tls_generate(cfg, cert, key, err);
        if (lfd >= 0)
            close(lfd);
        buf_free(&lockp);
        free(dir);
        if (rc != 0)
            goto out;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    int minv = strcmp(cfg->tls_min_version, "TLSv1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (strcmp(cfg->tls_min_version, "TLSv1.3") != 0 &&
        strcmp(cfg->tls_min_version, "TLSv1.2") != 0) {
        buf_printf(err, "tls_min_version must be TLSv1.2 or TLSv1.3, not '%s'",
                   cfg->tls_min_version);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, minv);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        buf_printf(err, "cannot load certificate %s:", cert);
        ssl_errors(err);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        buf_printf(err, "cannot load key %s:", key);
        ssl_errors(err);
        goto fail;
    }
    goto out;
fail:
    SSL_CTX_free(ctx);
    ctx = NULL;
out:
    free(cert);
    free(key);
    return ctx;
}

SSL_CTX *net_tls_server_ctx_new(const struct wharf_config *cfg, struct buf *err)
{
    return net_tls_ctx_new(cfg, err);
}
