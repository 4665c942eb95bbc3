/*
 * testtls.c - see testtls.h.
 */
#include "net/testtls.h"

#include "base/buf.h"
#include "net/net_cert.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cmocka.h>

SSL_CTX *testtls_server_ctx(void)
{
    struct buf err = BUF_INIT;
    EVP_PKEY *key = net_cert_keygen(&err);
    X509 *cert = key ? net_cert_selfsigned(key, "imap.example.test", 1, &err) : NULL;
    buf_free(&err);
    SSL_CTX *ctx = cert ? SSL_CTX_new(TLS_server_method()) : NULL;
    if (ctx != NULL &&
        (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)) {
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

bool testtls_want_retry(SSL *s, int r)
{
    int e = SSL_get_error(s, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

void testtls_connect(SSL *cli, SSL *srv, int *cfd, int *sfd)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    *cfd = sv[0];
    *sfd = sv[1];
    fcntl(*cfd, F_SETFL, O_NONBLOCK);
    fcntl(*sfd, F_SETFL, O_NONBLOCK);
    SSL_set_fd(cli, *cfd);
    SSL_set_fd(srv, *sfd);
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    bool cdone = false, sdone = false;
    for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
        int r;
        if (!cdone && !(cdone = (r = SSL_do_handshake(cli)) == 1))
            assert_true(testtls_want_retry(cli, r));
        if (!sdone && !(sdone = (r = SSL_do_handshake(srv)) == 1))
            assert_true(testtls_want_retry(srv, r));
    }
    assert_true(cdone && sdone);
}
