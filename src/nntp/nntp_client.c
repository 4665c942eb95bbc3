/*
 * nntp_client.c - the client kit of the nntpfeed process; see nntp_client.h.
 */
#include "nntp/nntp_client.h"
#include "base/clock.h"
#include "net/net_tls_client.h"
#include "nntp/nntp_parse.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>
#include <stdarg.h>

int nntp_peer_list_check(const struct strlist *l, const char *option, struct buf *err)
{
    for (size_t i = 0; i < l->n; i++) {
        struct nntp_peer_spec ps;
        const char *why;
        if (!nntp_peer_spec_parse(slice_from_cstr(l->v[i]), &ps, &why)) {
            buf_printf(err, "%s entry \"%s\": %s", option, l->v[i], why);
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

struct bufferevent *nntp_peer_connect(struct event_base *base, struct ssl_ctx_st *tls_ctx,
                                      const char *addr, bool tls, int64_t timeout_ms,
                                      bufferevent_data_cb readcb, bufferevent_event_cb eventcb,
                                      void *arg, struct buf *err)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0) {
        buf_append_cstr(err, "bad address");
        return NULL;
    }
    struct bufferevent *bev;
    if (tls) {
        struct net_tls_client_peer np = {.name = NULL, .verify = NET_TLS_VERIFY_NONE};
        struct ssl_st *ssl = net_tls_client_ssl_new(tls_ctx, &np, err);
        if (ssl == NULL)
            return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    bufferevent_setcb(bev, readcb, NULL, eventcb, arg);
    struct timeval tv = clock_timeval_ms(timeout_ms);
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, len) != 0) {
        bufferevent_free(bev);
        buf_append_cstr(err, "connect failed");
        return NULL;
    }
    return bev;
}

void nntp_peer_send(struct bufferevent *bev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(bev), fmt, ap);
    va_end(ap);
    evbuffer_add(bufferevent_get_output(bev), "\r\n", 2);
}
