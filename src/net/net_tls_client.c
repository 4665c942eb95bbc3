/*
 * net_tls_client.c - outbound TLS: client contexts, connect-side SSLs with
 * SNI, the name check and DANE, and the check after the handshake (see
 * net_tls_client.h).
 *
 * Pure OpenSSL, no I/O and no event loop. Must never hand out an SSL that
 * would accept a certificate its caller asked to be checked.
 */
#include "net/net_tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

SSL_CTX *net_tls_client_ctx_new(const char *ca_file, struct buf *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        buf_printf(err, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(ctx);
    if (SSL_CTX_dane_enable(ctx) <= 0) {
        buf_printf(err, "SSL_CTX_dane_enable failed");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca_file != NULL && ca_file[0] != '\0' &&
        SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        buf_printf(err, "cannot load CA file %s", ca_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Arms DANE on ssl with the usable records of tlsa (RFC 7672 3.1: DANE-TA(2)
 * and DANE-EE(3) only; PKIX usages mean nothing for SMTP). The reference
 * identifier for DANE-TA is the TLSA base domain, the MX host name for SMTP
 * (no CNAME is followed for it). False when no record is usable. */
static bool dane_arm(SSL *ssl, const char *name, const unsigned char *tlsa, size_t len)
{
    if (SSL_dane_enable(ssl, name) <= 0)
        return false;
    /* DANE-EE binds the key itself: no name or validity period checks (3.1.1) */
    SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int usable = 0;
    for (size_t i = 0; i + 2 <= len;) {
        size_t rl = ((size_t)tlsa[i] << 8) | tlsa[i + 1];
        const unsigned char *rd = tlsa + i + 2;
        i += 2 + rl;
        if (rl < 4 || i > len || (rd[0] != 2 && rd[0] != 3))
            continue;
        if (SSL_dane_tlsa_add(ssl, rd[0], rd[1], rd[2], rd + 3, rl - 3) > 0)
            usable++;
    }
    return usable > 0;
}

SSL *net_tls_client_ssl_new(SSL_CTX *ctx, const struct net_tls_client_peer *peer, struct buf *err)
{
    bool have_name = peer->name != NULL && peer->name[0] != '\0';
    if (peer->verify != NET_TLS_VERIFY_NONE && !have_name) {
        buf_printf(err, "no server name to verify");
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        buf_printf(err, "SSL_new failed");
        return NULL;
    }
    /* An IP address (a front-end's home server): no SNI (RFC 6066 3), and the
     * check is against the certificate's iPAddress subjectAltName */
    unsigned char ip[16];
    bool is_ip = have_name && (inet_pton(AF_INET, peer->name, ip) == 1 ||
                               inet_pton(AF_INET6, peer->name, ip) == 1);
    if (have_name && !is_ip)
        SSL_set_tlsext_host_name(ssl, peer->name);
    if (peer->verify == NET_TLS_VERIFY_DANE) {
        if (!dane_arm(ssl, peer->name, peer->tlsa, peer->tlsa_len)) {
            buf_printf(err, "no usable TLSA record for %s", peer->name);
            SSL_free(ssl);
            return NULL;
        }
    } else if (peer->verify == NET_TLS_VERIFY_NAME) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), peer->name);
        else
            SSL_set1_host(ssl, peer->name);
    }
    /* DANE decides after the handshake (net_tls_client_check): its records,
     * not the CA store, say whether the chain is good */
    SSL_set_verify(ssl, peer->verify == NET_TLS_VERIFY_NAME ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                   NULL);
    return ssl;
}

bool net_tls_client_check(SSL *ssl, enum net_tls_verify verify, struct buf *why)
{
    if (verify == NET_TLS_VERIFY_NONE)
        return true;
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        buf_printf(why, "server certificate not verified%s: %s",
                   verify == NET_TLS_VERIFY_DANE ? " by its TLSA records" : "",
                   X509_verify_cert_error_string(v));
        return false;
    }
    if (verify == NET_TLS_VERIFY_DANE && SSL_get0_dane_authority(ssl, NULL, NULL) < 0) {
        buf_printf(why, "no TLSA record matches the server's certificate");
        return false;
    }
    return true;
}
