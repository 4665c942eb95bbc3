/*
 * nntp_client.c - the client kit of the nntpfeed process; see nntp_client.h.
 */
#include "nntp/nntp_client.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "net/dns.h"
#include "net/net.h"
#include "net/net_tls_client.h"
#include "nntp/nntp_parse.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int nntp_peer_list_check(const struct strlist *l, const char *option, struct buf *err)
{
    for (size_t i = 0; i < l->n; i++) {
        struct nntp_peer_spec ps;
        const char *why;
        if (!nntp_peer_spec_parse(slice_from_cstr(l->v[i]), &ps, &why)) {
            buf_printf(err, "%s entry \"%s\": %s", option, l->v[i], why);
            return -1;
        }
        char *host = slice_strdup(ps.host);
        struct sockaddr_storage ss;
        bool ok = dns_addr_literal(host, ps.port, &ss) > 0 || dns_host_name_ok(host);
        free(host);
        if (!ok) {
            buf_printf(err, "%s entry \"%s\": the address is neither an IP address nor a host name",
                       option, l->v[i]);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            struct nntp_peer_spec o;
            if (nntp_peer_spec_parse(slice_from_cstr(l->v[k]), &o, &why) &&
                slice_eq_nocase(o.name, ps.name)) {
                buf_printf(err, "%s names the peer %.*s twice", option, (int)ps.name.len,
                           ps.name.ptr);
                return -1;
            }
        }
    }
    return 0;
}

struct nntp_dialer *nntp_dialer_new(struct event_base *base, const struct wharf_config *cfg,
                                    struct ssl_ctx_st *tls)
{
    struct nntp_dialer *d = xcalloc(1, sizeof(*d));
    *d = (struct nntp_dialer){.base = base, .tls = tls, .cfg = cfg};
    return d;
}

void nntp_dialer_free(struct nntp_dialer *d)
{
    if (d == NULL)
        return;
    dns_resolver_free(d->dns);
    SSL_CTX_free(d->tls);
    free(d);
}

void nntp_link_init(struct nntp_link *l, struct nntp_dialer *d, const struct nntp_peer_spec *ps,
                    bufferevent_data_cb readcb, bufferevent_event_cb eventcb, void *arg)
{
    *l = (struct nntp_link){.d = d,
                            .host = slice_strdup(ps->host),
                            .port = ps->port,
                            .tls = ps->tls,
                            .readcb = readcb,
                            .eventcb = eventcb,
                            .arg = arg};
}

/* The connection to sa, TLS checking the certificate for the host when asked. */
static int link_connect(struct nntp_link *l, const struct sockaddr *sa, socklen_t len,
                        struct buf *err)
{
    struct bufferevent *bev;
    /* nntp_feed_source_address: where the peer expects us (INN's incoming.conf) */
    const struct strlist *src = &l->d->cfg->nntp_feed_source_address;
    size_t had = err->len;
    evutil_socket_t fd =
        net_addr_source_socket(sa->sa_family, (const char *const *)src->v, src->n, err);
    if (fd < 0 && err->len > had)
        return -1;
    if (l->tls) {
        struct net_tls_client_peer np = {.name = l->host, .verify = NET_TLS_VERIFY_NAME};
        struct ssl_st *ssl = net_tls_client_ssl_new(l->d->tls, &np, err);
        if (ssl == NULL) {
            if (fd >= 0)
                evutil_closesocket(fd);
            return -1;
        }
        bev = bufferevent_openssl_socket_new(l->d->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(l->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    bufferevent_setcb(bev, l->readcb, NULL, l->eventcb, l->arg);
    struct timeval tv = clock_timeval_ms(l->d->cfg->nntp_feed_timeout);
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, sa, (int)len) != 0) {
        bufferevent_free(bev);
        buf_printf(err, "cannot connect to %s: %s", l->host,
                   evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return -1;
    }
    l->bev = bev;
    return 0;
}

/* The host name's address (or why there is none). */
static void link_resolved(void *arg, const struct sockaddr *sa, socklen_t len, const char *why)
{
    struct nntp_link *l = arg;
    l->lookup = NULL;
    struct buf err = BUF_INIT;
    if (len == 0 || link_connect(l, sa, len, &err) != 0) {
        snprintf(l->why, sizeof(l->why), "%s", len == 0 ? why : buf_cstr(&err));
        l->eventcb(NULL, BEV_EVENT_ERROR, l->arg);
    }
    buf_free(&err);
}

int nntp_link_open(struct nntp_link *l, struct buf *err)
{
    nntp_link_close(l);
    struct sockaddr_storage ss;
    socklen_t len = dns_addr_literal(l->host, l->port, &ss);
    if (len > 0)
        return link_connect(l, (const struct sockaddr *)&ss, len, err);
    if (l->d->dns == NULL)
        l->d->dns = dns_resolver_new(l->d->base, l->d->cfg->dns_resolver, NULL, err);
    if (l->d->dns != NULL)
        l->lookup = dns_addr_lookup(l->d->dns, l->host, l->port, link_resolved, l, err);
    return l->lookup != NULL ? 0 : -1;
}

void nntp_link_close(struct nntp_link *l)
{
    if (l->bev != NULL)
        bufferevent_free(l->bev);
    dns_addr_cancel(l->lookup);
    l->bev = NULL;
    l->lookup = NULL;
    l->why[0] = '\0';
}

void nntp_link_free(struct nntp_link *l)
{
    nntp_link_close(l);
    free(l->host);
    l->host = NULL;
}

const char *nntp_link_error(struct nntp_link *l, short what, struct buf *out)
{
    buf_reset(out);
    if (l->why[0]) {
        buf_append_cstr(out, l->why);
        return buf_cstr(out);
    }
    if (what & BEV_EVENT_TIMEOUT) {
        buf_append_cstr(out, "no answer in nntp_feed_timeout");
        return buf_cstr(out);
    }
    if (l->tls && l->bev) {
        long verify = SSL_get_verify_result(bufferevent_openssl_get_ssl(l->bev));
        unsigned long tls_err = bufferevent_get_openssl_error(l->bev);
        if (verify != X509_V_OK)
            buf_printf(out, "the certificate of %s: %s", l->host,
                       X509_verify_cert_error_string(verify));
        else if (tls_err != 0)
            buf_printf(out, "TLS with %s: %s", l->host, ERR_reason_error_string(tls_err));
        if (out->len)
            return buf_cstr(out);
    }
    buf_append_cstr(out, (what & BEV_EVENT_EOF)
                             ? "connection closed by the peer"
                             : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    return buf_cstr(out);
}

void nntp_peer_send(struct bufferevent *bev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(bev), fmt, ap);
    va_end(ap);
    evbuffer_add(bufferevent_get_output(bev), "\r\n", 2);
}
