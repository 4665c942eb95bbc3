/*
 * routing_smtp.c - link state over the bridgeheads' SMTP sessions, for
 * connectors with "ls_transport": "smtp" (only port 25 open between the
 * groups). The peering is the one of 691, byte for byte: only its carrier
 * differs.
 *
 * Dialling side: the connector's source bridgehead opens an SMTP session to
 * the target bridgehead's "smtp" address with the SMTP client kit (EHLO,
 * STARTTLS, EHLO), sends `X-WHARF-LINKSTATE 1 <this server>` only when the
 * server offered the keyword after STARTTLS, and on its 220 runs a TLS
 * session of its own inside the SMTP session's TLS; in it HELLO, AUTH (the
 * org key bound to that inner session's exporter) and the frames of
 * routing_proto.h, handled by routing_main.c as on 691.
 *
 * Answering side: the smtp worker that accepted the verb connects to
 * DATA/run/routing.sock and splices the bytes untouched; the routing process
 * accepts them as a 691 connection (TLS server, same peer code). The smtp
 * worker holds no key and parses no frame.
 *
 * Must never: send the verb to a server that did not offer it (a Postfix,
 * an Exchange), act on anything before the inner AUTH verified, or keep a
 * second copy of the peering's code.
 */
#include "routing/routing_internal.h"

#include "base/alloc.h"
#include "base/log.h"
#include "ipc/service.h"
#include "net/net_tls_client.h"
#include "smtp/smtp_client.h"

#include <arpa/inet.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* An SMTP session on its way to becoming a peering. */
struct smtp_dial {
    struct routing *r;
    struct smtp_dial *next;
    struct smtp_client *client;
    char *want;    /* the server dialled */
    char addr[96]; /* its "smtp" HOST:PORT */
};

static bool ls_smtp(const json_t *c)
{
    const json_t *lt = json_object_get(c, "ls_transport");
    return json_object_get(c, "to") && lt && strcmp(json_string_value(lt), "smtp") == 0;
}

int routing_smtp_pair(const json_t *cfg, const char *me, const char *other)
{
    bool me_src = false, other_src = false;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(cfg, "connectors"), i, c)
    {
        if (!ls_smtp(c))
            continue;
        const json_t *s = json_object_get(c, "source"), *t = json_object_get(c, "target");
        me_src = me_src || (org_list_has(s, me) && org_list_has(t, other));
        other_src = other_src || (org_list_has(s, other) && org_list_has(t, me));
    }
    if (!me_src && !other_src)
        return 0;
    if (me_src && other_src) /* connectors both ways: one session, from the lower name */
        return strcmp(me, other) < 0 ? 1 : -1;
    return me_src ? 1 : -1;
}

static void dial_free(struct smtp_dial *d)
{
    struct routing *r = d->r;
    for (struct smtp_dial **pp = &r->smtp_dials; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    smtp_client_free(d->client);
    free(d->want);
    free(d);
}

/* The session ended: a failure before the verb was accepted, or the hand-over done. */
static void dial_done(struct smtp_client *c, void *arg)
{
    struct smtp_dial *d = arg;
    const struct smtp_client_result *e = smtp_client_error(c);
    if (e != NULL)
        log_warning("routing: link state over SMTP to %s (%s) failed: %d %s %.*s", d->want, d->addr,
                    e->code, e->enh, (int)e->text.len, e->text.data ? e->text.data : "");
    dial_free(d);
}

/* 220 to X-WHARF-LINKSTATE: the inner TLS session, then the peering as on 691. */
static void dial_taken(struct smtp_client *c, struct bufferevent *bev, void *arg)
{
    struct smtp_dial *d = arg;
    struct routing *r = d->r;
    (void)c;
    struct buf err = BUF_INIT;
    struct net_tls_client_peer np = {.name = NULL, .verify = NET_TLS_VERIFY_NONE};
    SSL *ssl = net_tls_client_ssl_new(r->client_ctx, &np, &err);
    struct bufferevent *inner =
        ssl ? bufferevent_openssl_filter_new(r->base, bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE)
            : NULL;
    if (inner == NULL) {
        log_warning("routing: link state over SMTP to %s: no TLS session %s", d->want,
                    buf_cstr(&err));
        if (ssl)
            SSL_free(ssl);
        bufferevent_free(bev);
        buf_free(&err);
        return;
    }
    buf_free(&err);
    log_info("routing: link state over SMTP to %s (%s): X-WHARF-LINKSTATE accepted", d->want,
             d->addr);
    struct peer *p = routing_peer_new(r, inner, true, d->addr);
    p->want = xstrdup(d->want);
    p->via_smtp = true;
}

void routing_smtp_dial(struct routing *r, const char *name)
{
    for (struct smtp_dial *d = r->smtp_dials; d; d = d->next) {
        if (strcmp(d->want, name) == 0)
            return;
    }
    json_t *s = org_find(r->oc.cfg, "servers", name);
    const char *addr = json_string_value(json_object_get(s, "smtp"));
    struct sockaddr_storage ss;
    socklen_t len;
    if (addr == NULL || !routing_parse_hostport(addr, &ss, &len)) {
        if (routing_dial_due(r, name))
            log_warning("routing: link state over SMTP to %s: it has no smtp HOST:PORT "
                        "(wharf org server add --smtp)",
                        name);
        return;
    }
    if (!routing_dial_due(r, addr))
        return;
    struct smtp_dial *d = xcalloc(1, sizeof(*d));
    d->r = r;
    d->want = xstrdup(name);
    snprintf(d->addr, sizeof(d->addr), "%s", addr);
    const struct smtp_client_params params = {
        .helo_name = r->cfg->myhostname,
        .tls = SMTP_TLS_REQUIRE, /* any certificate: trust comes from the org key inside */
        .tls_ctx = r->client_ctx,
        .connect_timeout = r->t.hold,
        .greeting_timeout = r->t.hold,
        .command_timeout = r->t.hold,
        /* an SMTP session like the mta's: from the address mail leaves by */
        .source = (const char *const *)r->cfg->mta_source_address.v,
        .n_source = r->cfg->mta_source_address.n,
    };
    d->client = smtp_client_new(r->base, &params, NULL, dial_done, d);
    d->next = r->smtp_dials;
    r->smtp_dials = d;
    struct buf line = BUF_INIT;
    buf_printf(&line, "X-WHARF-LINKSTATE 1 %s", r->me);
    smtp_client_linkstate(d->client, buf_cstr(&line), dial_taken);
    buf_free(&line);
    smtp_client_connect(d->client, (struct sockaddr *)&ss, len);
}

/* ---- the answering side: run/routing.sock ---- */

static void on_local_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int len, void *arg)
{
    struct routing *r = arg;
    (void)l;
    (void)sa;
    (void)len;
    if (!routing_admit(r, "smtp", true)) {
        evutil_closesocket(fd);
        return;
    }
    SSL *ssl = SSL_new(r->server_ctx);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        r->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    struct peer *p = routing_peer_new(r, bev, false, "smtp");
    p->via_smtp = true;
}

void routing_smtp_listen(struct routing *r)
{
    if (r->local_listener != NULL)
        return;
    char *path = config_data_path(r->cfg, "run/routing.sock");
    struct buf err = BUF_INIT;
    int fd = ipc_service_listen(path, 0600, r->cfg, &err);
    if (fd < 0)
        log_error("routing: %s", buf_cstr(&err));
    else
        r->local_listener =
            evconnlistener_new(r->base, on_local_accept, r, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    buf_free(&err);
    free(path);
}

void routing_smtp_close(struct routing *r)
{
    while (r->smtp_dials)
        dial_free(r->smtp_dials);
    if (r->local_listener) {
        evconnlistener_free(r->local_listener);
        r->local_listener = NULL;
        char *path = config_data_path(r->cfg, "run/routing.sock");
        unlink(path);
        free(path);
    }
}
