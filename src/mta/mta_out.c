/*
 * mta_out.c - outbound delivery of one spool entry (see mta_out.h): group the
 * remote recipients by domain, look up each domain's next hop, send one
 * transaction per domain (next address or MX when a session fails before any
 * recipient got an answer of its own), then record, log and report.
 *
 * Must never: mark a recipient DELIVERED without the peer's 2xx, bounce a
 * null-sender message, or update the spool entry before the DSN about it is
 * spooled.
 */
#include "mta/mta_stats.h"
#include "mta/mta_out.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "mta/dsn.h"
#include "mta/mta_dkim.h"
#include "mta/mta_tlsrpt.h"
#include "mta/mta_expand.h"
#include "mta/mta_conn.h"
#include "mta/mta_remove.h"
#include "mta/mta_sts.h"
#include "mta/nexthop.h"
#include "mailauth/dkim.h"
#include "mta/retry.h"
#include "net/net.h"
#include "net/net_tls_client.h"
#include "smtp/smtp_client.h"

#include <event2/event.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

struct out_domain;

struct out_rcpt {
    size_t idx; /* in sm->env.rcpts */
    const struct out_domain *dom;
    struct smtp_client_result res;
    char *relay;       /* "name[addr]:port", or "none" */
    unsigned conn_use; /* > 1: the transaction went over a reused session */
    char *host;        /* remote MTA name for the DSN, or NULL */
    char *tls;         /* the TLS policy that applied (policy_text), or NULL */
    bool peer_dsn;     /* the peer took NOTIFY/ORCPT */
};

struct out_msg;

struct out_domain {
    struct out_msg *m;
    char *domain;
    char *home; /* a front-end's relay to the recipients' home server, or NULL */
    size_t *ri; /* indices into m->r */
    size_t n;
    enum smtp_tls_policy tls;
    bool relay_auth;
    bool sts_enforce; /* the domain's MTA-STS policy is in enforce mode */
    size_t n_hosts, host, addr;
    struct nexthop_host hosts[NEXTHOP_HOSTS_MAX];
    struct mta_conn_req req; /* the attempt at the current address */
    struct smtp_client_txn txn;
    struct smtp_client_rcpt *crcpts;
    struct buf relay;
    struct buf tls_text; /* policy_text of the current attempt */
    struct buf prefix;   /* fields sent before the message: m->dkim, and our Wharf-Route */
    struct buf stripped; /* the message without its Wharf-Route fields, where it leaves the
                            organization; empty: m->sm->data as it is */
    bool plain;          /* this address again without TLS: its handshake failed under `may` */
    bool org;            /* the organization's routes chose the next hop, or found none */
    char *hop;           /* its queue: nexthop_result.hop, or NULL before the lookup */
    bool finished;
    int64_t t_done; /* unix ms */
};

struct out_msg {
    struct mta_out *o;
    struct spool_message *sm;
    char *sender; /* the envelope sender sent: the SRS one, or sm's */
    struct out_rcpt *r;
    size_t n;
    struct out_domain *d;
    size_t nd, domains_left;
    int64_t t_deliver; /* unix ms when the attempt began (delays=a ends) */
    struct buf dkim;   /* DKIM-Signature or ARC fields sent before the message (mta_dkim.h) */
    struct out_msg *prev, *next;
};

struct mta_out {
    struct event_base *base;
    const struct wharf_config *cfg;
    struct nexthop_resolver *resolver;
    struct mta_sts *sts;       /* NULL when mta_sts is off */
    struct mta_tlsrpt *tlsrpt; /* NULL when tlsrpt is off */
    struct mta_conn_pool *pool;
    SSL_CTX *tls_ctx;
    char *auth_user, *auth_pass;
    struct retry_policy policy;
    mta_out_spooled_fn *spooled;
    mta_out_done_fn *done;
    void *arg;
    struct mta_remove *rm; /* removes finished entries off the loop */
    struct out_msg *msgs;
    size_t active;
};

struct mta_out *mta_out_new(struct event_base *base, const struct wharf_config *cfg,
                            mta_out_spooled_fn *spooled, mta_out_done_fn *done, void *arg,
                            struct buf *err)
{
    struct mta_out *o = xcalloc(1, sizeof(*o));
    o->base = base;
    o->cfg = cfg;
    o->spooled = spooled;
    o->done = done;
    o->arg = arg;
    retry_policy_from_config(cfg, &o->policy);
    if (!net_addr_source_list_check(&cfg->mta_source_address, "mta_source_address", err))
        goto fail;
    o->resolver = nexthop_resolver_new(base, cfg, err);
    if (o->resolver == NULL)
        goto fail;
    o->pool = mta_conn_pool_new(base, cfg);
    const char *ca = cfg->mta_smtp_tls_ca_file[0] ? cfg->mta_smtp_tls_ca_file : NULL;
    o->tls_ctx = net_tls_client_ctx_new(ca, err);
    if (o->tls_ctx == NULL)
        goto fail;
    o->tlsrpt = mta_tlsrpt_new(base, cfg, o->resolver, o, o->tls_ctx);
    if (cfg->mta_sts && (o->sts = mta_sts_new(base, cfg, o->resolver, o->tls_ctx, err)) == NULL)
        goto fail;
    if (cfg->relayhost_auth_file[0] &&
        !nexthop_relay_auth_load(cfg->relayhost_auth_file, &o->auth_user, &o->auth_pass, err))
        goto fail;
    return o;
fail:
    mta_out_free(o);
    return NULL;
}

size_t mta_out_active(const struct mta_out *o)
{
    return o->active;
}

size_t mta_out_sessions(const struct mta_out *o)
{
    return mta_conn_open(o->pool);
}

/* ---- one domain ---- */

static void domain_done(struct out_domain *d);
static void domain_try(struct out_domain *d);

/* The TLS policy of the connection to h: what the host's TLSA records ask
 * under dane and dane-only (nexthop left out the hosts dane-only cannot
 * use); else a certificate valid for the MX name under an enforced MTA-STS
 * policy (DANE wins over MTA-STS, RFC 8461 2); else the configured policy,
 * with dane falling back to may. */
static enum smtp_tls_policy host_policy(const struct out_domain *d, const struct nexthop_host *h)
{
    bool dane = d->tls == SMTP_TLS_DANE || d->tls == SMTP_TLS_DANE_ONLY;
    if (dane && h->dane == NEXTHOP_DANE_VERIFY)
        return SMTP_TLS_DANE;
    if (dane && h->dane == NEXTHOP_DANE_ENCRYPT)
        return SMTP_TLS_REQUIRE;
    if (d->sts_enforce)
        return SMTP_TLS_VERIFY;
    return dane ? SMTP_TLS_MAY : d->tls;
}

/* What the queue and the log say of the TLS policy that applied to h. */
static void policy_text(const struct out_domain *d, const struct nexthop_host *h, struct buf *out)
{
    enum smtp_tls_policy p = host_policy(d, h);
    bool dane = d->tls == SMTP_TLS_DANE || d->tls == SMTP_TLS_DANE_ONLY;
    buf_reset(out);
    if (d->plain)
        buf_printf(out, "may, again without TLS after a failed handshake");
    else if (p == SMTP_TLS_DANE)
        buf_printf(out, "%s, TLSA of %s", smtp_tls_policy_name(d->tls), h->name);
    else if (dane && h->dane == NEXTHOP_DANE_ENCRYPT)
        buf_printf(out, "%s, TLSA of %s unusable: encrypt", smtp_tls_policy_name(d->tls), h->name);
    else if (d->sts_enforce)
        buf_printf(out, "mta-sts enforce, certificate for %s", h->name);
    else if (dane)
        buf_printf(out, "%s, no TLSA: may", smtp_tls_policy_name(d->tls));
    else
        buf_printf(out, "%s", smtp_tls_policy_name(p));
}

/* RFC 8460: the session's outcome under the domain's MTA-STS or DANE policy
 * (a failure before TLS, such as a refused connection, is none of TLS's). */
static void tlsrpt_session(struct mta_out *o, const struct out_domain *d,
                           const struct nexthop_host *h, const struct smtp_client_result *e)
{
    if (o->tlsrpt == NULL || d->plain)
        return;
    enum smtp_tls_policy p = host_policy(d, h);
    enum mta_tlsrpt_policy type;
    if (p == SMTP_TLS_DANE)
        type = MTA_TLSRPT_TLSA;
    else if (d->sts_enforce)
        type = MTA_TLSRPT_STS;
    else
        return;
    const char *result = e ? mta_tlsrpt_result_type(e->enh, buf_slice(&e->text)) : NULL;
    if (e != NULL && result == NULL && e->local && e->code / 100 == 4 &&
        strncmp(e->enh, "4.4.", 4) == 0)
        return; /* no connection: nothing to say about TLS */
    mta_tlsrpt_record(o->tlsrpt, d->domain, type, h->name, result);
}

static void on_done(struct mta_conn_req *req)
{
    struct out_domain *d = req->arg;
    struct out_msg *m = d->m;
    const struct smtp_client_result *e = req->err.code ? &req->err : NULL;
    bool again = mta_conn_failed_early(&d->txn, e);
    const struct nexthop_host *h = &d->hosts[d->host];
    tlsrpt_session(m->o, d, h, e);
    for (size_t i = 0; i < d->n; i++) {
        struct out_rcpt *r = &m->r[d->ri[i]];
        const struct smtp_client_result *cr = &d->crcpts[i].result;
        if (cr->code == 0) /* cannot happen: every recipient gets a result */
            smtp_client_result_set(&r->res, 451, "4.3.0", slice_from_cstr("no result"), true);
        else
            smtp_client_result_set(&r->res, cr->code, cr->enh, buf_slice(&cr->text), cr->local);
        free(r->relay);
        r->relay = xstrdup(buf_cstr(&d->relay));
        free(r->host);
        r->host = xstrdup(h->name);
        free(r->tls);
        r->tls = xstrdup(buf_cstr(&d->tls_text));
        r->peer_dsn = d->txn.peer_dsn;
        r->conn_use = req->conn_use;
    }
    /* Postfix: a failed TLS handshake under `may` is retried in clear text */
    bool plain = again && e->local && strcmp(e->enh, "4.7.5") == 0 &&
                 host_policy(d, h) == SMTP_TLS_MAY && !d->plain;
    if (again)
        log_info("%s: %s: %d %s %.*s (trying %s)", m->sm->env.id, buf_cstr(&d->relay), e->code,
                 e->enh, (int)e->text.len, e->text.data ? e->text.data : "",
                 plain ? "again without TLS" : "the next address");
    if (plain) {
        d->plain = true;
        domain_try(d);
    } else if (again) {
        d->plain = false;
        d->addr++;
        domain_try(d);
    } else
        domain_done(d);
}

static void relay_name(struct buf *out, const char *name, const struct sockaddr *sa, socklen_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    buf_reset(out);
    if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        buf_printf(out, "%s[?]", name);
    else
        buf_printf(out, "%s[%s]:%s", name, host, serv);
}

static enum smtp_client_body client_body(enum spool_body b)
{
    return b == SPOOL_BODY_BINARYMIME ? SMTP_CLIENT_BINARYMIME
           : b == SPOOL_BODY_8BITMIME ? SMTP_CLIENT_8BITMIME
                                      : SMTP_CLIENT_7BIT;
}

/* Connects to the next address to try, or ends the domain with what the last
 * attempt left when there is none. */
static void domain_try(struct out_domain *d)
{
    struct out_msg *m = d->m;
    const struct wharf_config *cfg = m->o->cfg;
    while (d->host < d->n_hosts && d->addr >= d->hosts[d->host].n_addrs) {
        d->host++;
        d->addr = 0;
    }
    if (d->host >= d->n_hosts) {
        domain_done(d);
        return;
    }
    const struct nexthop_host *h = &d->hosts[d->host];
    relay_name(&d->relay, h->name, (const struct sockaddr *)&h->addrs[d->addr],
               h->addr_lens[d->addr]);
    policy_text(d, h, &d->tls_text);
    /* A relay to a home server leaves from frontend_source_address when set: the address
     * the back-ends' frontend_networks name, which they trust (doc/frontend.md, Mail in). */
    const char *fe_source[1] = {cfg->frontend_source_address};
    bool from_fe = d->home != NULL && cfg->frontend_source_address[0] != '\0';
    struct smtp_client_params p = {
        .helo_name = cfg->myhostname,
        .tls = d->plain ? SMTP_TLS_NONE : host_policy(d, h),
        .tls_ctx = m->o->tls_ctx,
        .tls_servername = h->name,
        .tlsa = h->tlsa,
        .tlsa_len = h->tlsa_len,
        .auth_user = d->relay_auth ? m->o->auth_user : NULL,
        .auth_pass = d->relay_auth ? m->o->auth_pass : NULL,
        .connect_timeout = cfg->mta_smtp_connect_timeout,
        .greeting_timeout = cfg->mta_smtp_greeting_timeout,
        .command_timeout = cfg->mta_smtp_command_timeout,
        .data_init_timeout = cfg->mta_smtp_data_init_timeout,
        .data_block_timeout = cfg->mta_smtp_data_block_timeout,
        .data_done_timeout = cfg->mta_smtp_data_done_timeout,
        .reply_line_max = (size_t)cfg->mta_smtp_reply_line_max,
        .reply_lines_max = (size_t)cfg->mta_smtp_reply_lines_max,
        .source = from_fe ? fe_source : (const char *const *)cfg->mta_source_address.v,
        .n_source = from_fe ? 1 : cfg->mta_source_address.n,
    };
    const struct spool_envelope *env = &m->sm->env;
    for (size_t i = 0; i < d->n; i++) {
        const struct spool_rcpt *sr = &env->rcpts[m->r[d->ri[i]].idx];
        smtp_client_result_clear(&d->crcpts[i].result);
        d->crcpts[i] = (struct smtp_client_rcpt){.address = sr->address,
                                                 .orcpt = sr->orcpt,
                                                 .notify = sr->notify,
                                                 .result = d->crcpts[i].result};
    }
    d->txn = (struct smtp_client_txn){
        .sender = m->sender ? m->sender : env->sender,
        .data = d->stripped.len ? buf_slice(&d->stripped) : buf_slice(&m->sm->data),
        .prefix = d->prefix.len ? buf_slice(&d->prefix) : buf_slice(&m->dkim),
        .body = client_body(env->body),
        .smtputf8 = env->smtputf8,
        .ret_hdrs = env->dsn_ret_hdrs,
        .envid = env->dsn_envid,
        .rcpts = d->crcpts,
        .n_rcpts = d->n,
    };
    d->req.txn = &d->txn;
    d->req.done = on_done;
    d->req.arg = d;
    mta_conn_submit(m->o->pool, &d->req, &p, (const struct sockaddr *)&h->addrs[d->addr],
                    h->addr_lens[d->addr]);
}

/* Applies the domain's MTA-STS policy (RFC 8461 4.2) to its MX hosts. */
static void on_sts(const char *domain, const struct mta_sts_policy *p, void *arg)
{
    struct out_domain *d = arg;
    struct out_msg *m = d->m;
    if (p != NULL && p->mode != MTA_STS_NONE) {
        size_t k = 0;
        for (size_t i = 0; i < d->n_hosts; i++) {
            struct nexthop_host *h = &d->hosts[i];
            if (mta_sts_mx_match(p, h->name)) {
                d->hosts[k++] = *h;
                continue;
            }
            log_warning("%s: mta-sts %s: MX host %s is not in the policy of %s%s", m->sm->env.id,
                        mta_sts_mode_name(p->mode), h->name, domain,
                        p->mode == MTA_STS_ENFORCE ? ": not used" : "");
            if (p->mode == MTA_STS_ENFORCE)
                nexthop_host_clear(h);
            else
                d->hosts[k++] = *h;
        }
        d->n_hosts = k;
        d->sts_enforce = p->mode == MTA_STS_ENFORCE;
        if (k == 0)
            for (size_t i = 0; i < d->n; i++)
                smtp_client_result_set(
                    &m->r[d->ri[i]].res, 451, "4.7.5",
                    slice_from_cstr("no MX host matches the domain's MTA-STS policy"), true);
    }
    domain_try(d);
}

/* Every recipient of d gets this result, with no relay tried (yet). */
static void domain_unsent(struct out_domain *d, int code, const char *enh, struct slice text)
{
    for (size_t i = 0; i < d->n; i++) {
        struct out_rcpt *r = &d->m->r[d->ri[i]];
        smtp_client_result_set(&r->res, code, enh, text, true);
        free(r->relay);
        r->relay = xstrdup("none");
    }
}

/* True when the message has already been in group of the organization org:
 * a Wharf-Route field of org names it (doc/routing.md, "Loops"). */
static bool route_visited(const struct spool_message *sm, struct slice org, struct slice group)
{
    struct dkim_msg msg;
    dkim_msg_init(&msg, buf_slice(&sm->data));
    bool found = false;
    for (size_t i = 0; i < msg.n_fields && !found; i++) {
        struct slice o, g;
        found = slice_eq_cstr_nocase(msg.fields[i].name, "Wharf-Route") &&
                nexthop_route_trace_parse(msg.fields[i].value, &o, &g) && slice_eq(o, org) &&
                slice_eq(g, group);
    }
    dkim_msg_free(&msg);
    return found;
}

/* The message without its Wharf-Route fields into out (left empty when it has none). */
static void trace_strip(const struct spool_message *sm, struct buf *out)
{
    struct dkim_msg msg;
    dkim_msg_init(&msg, buf_slice(&sm->data));
    const char *from = sm->data.data;
    buf_reset(out);
    for (size_t i = 0; i < msg.n_fields; i++) {
        const struct dkim_field *f = &msg.fields[i];
        if (!slice_eq_cstr_nocase(f->name, "Wharf-Route"))
            continue;
        if (out->len == 0)
            buf_reserve(out, sm->data.len);
        buf_append(out, from, (size_t)(f->name.ptr - from));
        from = f->value.ptr + f->value.len;
        if (from + 2 <= sm->data.data + sm->data.len && from[0] == '\r' && from[1] == '\n')
            from += 2;
    }
    if (from != sm->data.data)
        buf_append(out, from, (size_t)(sm->data.data + sm->data.len - from));
    dkim_msg_free(&msg);
}

/* The route id of the first Wharf-Route field with one (of organization org unless org
 * is empty): true with the slices into data. */
static bool route_id_find(struct slice data, struct slice org, struct slice *org_r,
                          struct slice *id_r)
{
    struct dkim_msg msg;
    dkim_msg_init(&msg, data);
    bool found = false;
    for (size_t i = 0; i < msg.n_fields && !found; i++) {
        if (!slice_eq_cstr_nocase(msg.fields[i].name, "Wharf-Route"))
            continue;
        *org_r = nexthop_route_trace_item(msg.fields[i].value, "org");
        *id_r = nexthop_route_trace_item(msg.fields[i].value, "id");
        found = org_r->len > 0 && id_r->len > 0 && (org.len == 0 || slice_eq(*org_r, org));
    }
    dkim_msg_free(&msg);
    return found;
}

bool mta_out_route_id(struct mta_out *o, struct slice data, struct buf *out)
{
    struct slice org, id;
    buf_reset(out);
    if (!route_id_find(data, SLICE_NULL, &org, &id))
        return false;
    /* "BASE.MAC": only an id a server of the organization made is a key; any other
     * could make the store drop a later message as a copy of this one */
    const char *dot =
        id.len > NEXTHOP_ROUTE_MAC_HEX ? id.ptr + id.len - NEXTHOP_ROUTE_MAC_HEX - 1 : NULL;
    char mac[NEXTHOP_ROUTE_MAC_HEX + 1];
    if (dot == NULL || *dot != '.' ||
        !nexthop_route_id_mac(o->resolver, slice_make(id.ptr, (size_t)(dot - id.ptr)), data, mac) ||
        CRYPTO_memcmp(mac, dot + 1, NEXTHOP_ROUTE_MAC_HEX) != 0)
        return false;
    buf_printf(out, "route:%.*s:%.*s", (int)org.len, org.ptr, (int)id.len, id.ptr);
    return true;
}

/* A new route id for the message data, "QUEUEID.SERVER.MAC" (mta_out_route_id: the MAC
 * binds it to data's content too), appended to out; without its MAC when this server has
 * no route-id key (then no hop takes it as a key). */
static void route_id_new(struct mta_out *o, const char *queue_id, const char *self,
                         struct slice data, struct buf *out)
{
    size_t start = out->len;
    buf_printf(out, "%s.%s", queue_id, self);
    char mac[NEXTHOP_ROUTE_MAC_HEX + 1];
    if (nexthop_route_id_mac(o->resolver, slice_make(out->data + start, out->len - start), data,
                             mac))
        buf_printf(out, ".%s", mac);
}

/*
 * The route trace (doc/routing.md, "Loops" and "Exactly once"). Mail the organization
 * routes to one of its servers never goes to a group it has been in (it waits for the
 * routes to change, 4.4.6); our group goes into a Wharf-Route field on top when it leaves
 * the group, with the message's route id (the first server's queue id and name, kept from
 * hop to hop, so that the home server stores it once however often a lost reply made a hop
 * send it again); inside the group a field with the id only, when it has none yet. Mail
 * leaving the organization goes without the fields. false: refused.
 */
static bool route_trace(struct out_domain *d, const struct nexthop_result *res)
{
    struct out_msg *m = d->m;
    buf_reset(&d->prefix);
    buf_reset(&d->stripped);
    if (res->org.len == 0)
        return true;
    if (res->org_next_group.len == 0) {
        trace_strip(m->sm, &d->stripped);
        return true;
    }
    struct slice org = buf_slice(&res->org), own = buf_slice(&res->org_group),
                 next = buf_slice(&res->org_next_group);
    if (route_visited(m->sm, org, next)) {
        log_warning("%s: loop avoided: the organization routes %s to group %.*s, where the "
                    "message has been; it waits for the routes to change",
                    m->sm->env.id, d->home ? d->home : d->domain, (int)next.len, next.ptr);
        domain_unsent(d, 451, "4.4.6", slice_from_cstr("routing loop avoided in the organization"));
        return false;
    }
    struct slice id_org, idv = SLICE_NULL;
    bool had = route_id_find(buf_slice(&m->sm->data), org, &id_org, &idv);
    if (!slice_eq(next, own))
        buf_printf(&d->prefix, "Wharf-Route: org=%s; group=%s; id=", res->org.data,
                   res->org_group.data);
    else if (!had)
        buf_printf(&d->prefix, "Wharf-Route: org=%s; id=", res->org.data);
    if (d->prefix.len > 0) {
        if (had)
            buf_append_slice(&d->prefix, idv);
        else
            route_id_new(m->o, m->sm->env.id, res->org_self.data, buf_slice(&m->sm->data),
                         &d->prefix);
        buf_append_cstr(&d->prefix, "\r\n");
        buf_append_slice(&d->prefix, buf_slice(&m->dkim));
    }
    return true;
}

static void on_hop(const char *domain, const struct nexthop_result *res, void *arg)
{
    struct out_domain *d = arg;
    struct out_msg *m = d->m;
    d->org = res->org_routed;
    free(d->hop);
    d->hop = res->hop.len ? xstrndup(res->hop.data, res->hop.len) : NULL;
    if (res->status == NEXTHOP_OK && !route_trace(d, res)) {
        domain_done(d);
        return;
    }
    if (res->status != NEXTHOP_OK) {
        /* a home server that does not resolve is the admin's to fix: never a bounce */
        bool perm = res->status == NEXTHOP_PERMFAIL && d->home == NULL;
        domain_unsent(d, perm ? 550 : 451, res->enh, buf_slice(&res->reason));
        domain_done(d);
        return;
    }
    d->tls = res->tls;
    d->relay_auth = res->relay_auth;
    d->n_hosts = res->n_hosts;
    for (size_t i = 0; i < res->n_hosts; i++) {
        nexthop_host_copy(&d->hosts[i], &res->hosts[i]);
        if (d->hosts[i].name == NULL)
            d->hosts[i].name = xstrdup(domain);
    }
    /* a next hop without any address: deferred, never bounced (nexthop.h) */
    domain_unsent(d, 451, "4.4.1", slice_from_cstr("no address to connect to"));
    if (m->o->sts != NULL && res->sts_applies)
        mta_sts_get(m->o->sts, domain, res->sts_id[0] ? res->sts_id : NULL, on_sts, d);
    else
        domain_try(d);
}

/* ---- the whole message ---- */

static void msg_finish(struct out_msg *m);

static void domain_done(struct out_domain *d)
{
    d->finished = true;
    d->t_done = wallclock_ms();
    if (--d->m->domains_left == 0)
        msg_finish(d->m);
}

static const char *domain_of(const char *address)
{
    const char *at = strrchr(address, '@');
    return at ? at + 1 : "";
}

static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    msg_finish(arg);
}

void mta_out_deliver(struct mta_out *o, struct spool_message *sm, const bool *remote,
                     char *const *homes, char *sender)
{
    struct out_msg *m = xcalloc(1, sizeof(*m));
    m->o = o;
    m->sm = sm;
    m->sender = sender;
    m->t_deliver = wallclock_ms();
    const struct spool_envelope *env = &sm->env;
    buf_init(&m->dkim);
    for (size_t i = 0; i < env->n_rcpts; i++)
        if (remote[i] && env->rcpts[i].state == SPOOL_RCPT_PENDING) {
            /* once for every domain of this attempt: our mail is signed, other
             * servers' mail we forward is ARC-sealed */
            if (mta_dkim_sign(o->cfg, sm, &m->dkim) == 0)
                mta_arc_seal(o->cfg, sm, &m->dkim);
            break;
        }
    m->r = xcalloc(env->n_rcpts ? env->n_rcpts : 1, sizeof(*m->r));
    m->d = xcalloc(env->n_rcpts ? env->n_rcpts : 1, sizeof(*m->d));
    for (size_t i = 0; i < env->n_rcpts; i++) {
        if (!remote[i] || env->rcpts[i].state != SPOOL_RCPT_PENDING)
            continue;
        struct out_rcpt *r = &m->r[m->n];
        r->idx = i;
        buf_init(&r->res.text);
        const char *dom = domain_of(env->rcpts[i].address);
        const char *home = homes ? homes[i] : NULL;
        size_t k = 0;
        while (k < m->nd &&
               (strcasecmp(m->d[k].domain, dom) != 0 || (m->d[k].home == NULL) != (home == NULL) ||
                (home != NULL && strcasecmp(m->d[k].home, home) != 0)))
            k++;
        struct out_domain *d = &m->d[k];
        if (k == m->nd) {
            m->nd++;
            d->m = m;
            d->domain = xstrdup(dom);
            d->home = home ? xstrdup(home) : NULL;
            d->ri = xcalloc(env->n_rcpts, sizeof(*d->ri));
            buf_init(&d->relay);
            buf_init(&d->prefix);
            buf_init(&d->stripped);
        }
        r->dom = d;
        d->ri[d->n++] = m->n++;
    }
    m->next = o->msgs;
    if (o->msgs)
        o->msgs->prev = m;
    o->msgs = m;
    o->active++;
    m->domains_left = m->nd;
    for (size_t k = 0; k < m->nd; k++) {
        struct out_domain *d = &m->d[k];
        d->crcpts = xcalloc(d->n, sizeof(*d->crcpts));
        for (size_t i = 0; i < d->n; i++)
            buf_init(&d->crcpts[i].result.text);
        if (d->home != NULL) /* homed on another server: through the organization's routes
                                when it is one of its servers, else straight there */
            nexthop_home(o->resolver, d->home, (uint16_t)o->cfg->frontend_smtp_port, on_hop, d);
        else
            nexthop_lookup(o->resolver, d->domain, on_hop, d);
    }
    if (m->nd == 0) /* nothing to do: finish from the loop, as promised */
        event_base_once(o->base, -1, EV_TIMEOUT, finish_cb, m, NULL);
}

/* ---- reports, bookkeeping ---- */

/* Spools one report about sm's recipients dr[0..n) to sm's sender. */
static void report_spool(struct mta_out *o, const struct spool_message *sm,
                         const struct dsn_rcpt *dr, size_t n, int64_t now, const char *what)
{
    const struct spool_envelope *env = &sm->env;
    const struct dsn_report rep = {
        .reporting_mta = o->cfg->myhostname,
        .queue_id = env->id,
        .sender = env->sender,
        .envid = env->dsn_envid,
        .arrival = env->arrival,
        .now = now / 1000,
        .ret_hdrs = env->dsn_ret_hdrs,
        .return_max = (size_t)o->cfg->mta_dsn_return_max,
        .original = buf_slice(&sm->data),
        .rcpts = dr,
        .n_rcpts = n,
    };
    struct buf data = BUF_INIT;
    if (n > 0 && dsn_build(&rep, &data) == 0) /* the null sender: never reported to */
        mta_out_spool_notice(o, env->id, env->sender, buf_slice(&data),
                             env->body != SPOOL_BODY_7BIT || env->smtputf8, env->smtputf8, what);
    buf_free(&data);
}

void mta_out_spool_notice(struct mta_out *o, const char *about, const char *to, struct slice data,
                          bool eight_bit, bool smtputf8, const char *what)
{
    struct spool_message d;
    memset(&d, 0, sizeof(d));
    buf_init(&d.data);
    buf_append_slice(&d.data, data);
    struct spool_rcpt rcpt = {.address = (char *)to, .notify = SPOOL_NOTIFY_NEVER};
    spool_new_id(d.env.id);
    d.env.sender = (char *)"";
    d.env.rcpts = &rcpt;
    d.env.n_rcpts = 1;
    d.env.body = eight_bit ? SPOOL_BODY_8BITMIME : SPOOL_BODY_7BIT;
    d.env.smtputf8 = smtputf8;
    d.env.client = (char *)"local";
    d.env.arrival = wallclock_ms() / 1000;
    struct buf err = BUF_INIT;
    if (spool_write(o->cfg, &d, &err) == 0) {
        log_info("%s: sender %s notification: %s", about, what, d.env.id);
        o->spooled(o->arg, d.env.id);
    } else
        log_error("%s: cannot spool the %s notification: %s", about, what, buf_cstr(&err));
    buf_free(&err);
    buf_free(&d.data);
}

void mta_out_bounce_local(struct mta_out *o, const struct spool_message *sm, const bool *failed,
                          char *const *diag, const char *const *enh)
{
    const struct spool_envelope *env = &sm->env;
    struct dsn_rcpt *dr = xcalloc(env->n_rcpts ? env->n_rcpts : 1, sizeof(*dr));
    size_t n = 0;
    int64_t now = wallclock_ms();
    for (size_t i = 0; i < env->n_rcpts; i++) {
        if (!failed[i] || !dsn_wanted(env->sender, env->rcpts[i].notify, DSN_ACTION_FAILED))
            continue;
        dr[n++] = (struct dsn_rcpt){.address = env->rcpts[i].address,
                                    .orcpt = env->rcpts[i].orcpt,
                                    .action = DSN_ACTION_FAILED,
                                    .status = enh[i],
                                    .diagnostic = diag[i],
                                    .last_attempt = now / 1000};
    }
    report_spool(o, sm, dr, n, now, "non-delivery");
    free(dr);
}

enum outcome { OUT_SENT, OUT_DEFERRED, OUT_BOUNCED };

static void status_text(const struct smtp_client_result *r, struct buf *out)
{
    buf_reset(out);
    int len = (int)r->text.len;
    const char *t = r->text.data ? r->text.data : "";
    if (r->local)
        buf_printf(out, "%.*s", len, t);
    else
        buf_printf(out, "%d%s%s %.*s", r->code, r->enh[0] ? " " : "", r->enh, len, t);
}

/* Why a deferred recipient waits, for its queue (spool_rcpt.waits, `wharf queue`): "no
 * route", "loop avoided", "connector down" (no session with a next hop the organization
 * chose), "no connection" (with another next hop) or "deferred" (the peer's 4xx), then the
 * status. */
static char *wait_text(const struct out_rcpt *r)
{
    const struct smtp_client_result *res = &r->res;
    const char *why = !res->local                                     ? "deferred"
                      : strcmp(res->enh, "4.4.0") == 0 && r->dom->org ? "no route"
                      : strcmp(res->enh, "4.4.6") == 0                ? "loop avoided"
                      : r->dom->org                                   ? "connector down"
                                                                      : "no connection";
    struct buf t = BUF_INIT;
    status_text(res, &t);
    struct buf out = BUF_INIT;
    buf_printf(&out, "%s: %s", why, buf_cstr(&t));
    buf_free(&t);
    return buf_steal(&out, NULL);
}

static void dsn_code(const struct smtp_client_result *r, char out[16])
{
    if (r->enh[0])
        snprintf(out, 16, "%s", r->enh);
    else
        snprintf(out, 16, "%d.0.0", r->code / 100 >= 2 && r->code / 100 <= 5 ? r->code / 100 : 4);
}

/* One delays= part in Postfix's style: "0", "0.25", "1.5", "262". */
static void delay_part(struct buf *out, int64_t ms)
{
    double v = ms > 0 ? (double)ms / 1000.0 : 0.0;
    if (v < 0.01)
        buf_append_byte(out, '0');
    else
        buf_printf(out, v >= 10 ? "%.0f" : "%.2g", v);
}

/* Postfix's delays=a/b/c/d: a before this attempt (queue, local batch),
 * b waiting for a session (concurrency limits), c next-hop lookup and
 * session setup (connect, greeting, EHLO, TLS, AUTH; 0 on a reused
 * session), d the transaction. */
static void delays_text(const struct out_msg *m, const struct out_domain *d, struct buf *out)
{
    const struct mta_conn_req *q = &d->req;
    int64_t end = q->t_assign ? q->t_end : d->t_done;
    int64_t b = q->t_assign ? q->t_assign - q->t_submit : 0;
    int64_t start = q->t_start ? q->t_start : end;
    const int64_t parts[4] = {m->t_deliver - m->sm->env.arrival * 1000, b, start - m->t_deliver - b,
                              end - start};
    buf_reset(out);
    for (int i = 0; i < 4; i++) {
        if (i > 0)
            buf_append_byte(out, '/');
        delay_part(out, parts[i]);
    }
}

static void msg_free(struct out_msg *m)
{
    for (size_t k = 0; k < m->nd; k++) {
        struct out_domain *d = &m->d[k];
        smtp_client_result_clear(&d->req.err);
        for (size_t i = 0; i < d->n; i++)
            smtp_client_result_clear(&d->crcpts[i].result);
        for (size_t i = 0; i < d->n_hosts; i++)
            nexthop_host_clear(&d->hosts[i]);
        free(d->crcpts);
        free(d->ri);
        free(d->domain);
        free(d->home);
        free(d->hop);
        buf_free(&d->relay);
        buf_free(&d->prefix);
        buf_free(&d->stripped);
        buf_free(&d->tls_text);
    }
    for (size_t i = 0; i < m->n; i++) {
        smtp_client_result_clear(&m->r[i].res);
        free(m->r[i].relay);
        free(m->r[i].host);
        free(m->r[i].tls);
    }
    free(m->d);
    free(m->r);
    buf_free(&m->dkim);
    free(m->sender);
    spool_message_free(m->sm);
    free(m->sm);
    free(m);
}

static void msg_finish(struct out_msg *m)
{
    struct mta_out *o = m->o;
    struct spool_envelope *env = &m->sm->env;
    int64_t now = wallclock_ms();
    long long delay = now / 1000 - env->arrival;
    enum outcome *oc = xcalloc(m->n ? m->n : 1, sizeof(*oc));
    bool any_deferred = false, org_wait = false;
    struct buf reason = BUF_INIT, text = BUF_INIT, delays = BUF_INIT;
    for (size_t i = 0; i < m->n; i++) {
        int cls = m->r[i].res.code / 100;
        oc[i] = cls == 2 ? OUT_SENT : cls == 5 ? OUT_BOUNCED : OUT_DEFERRED;
        org_wait |= oc[i] == OUT_DEFERRED && m->r[i].dom->org;
        if (oc[i] == OUT_DEFERRED && !any_deferred) {
            any_deferred = true;
            status_text(&m->r[i].res, &text);
            buf_printf(&reason, "%s: %s", m->r[i].relay ? m->r[i].relay : "none", buf_cstr(&text));
        }
    }
    int64_t next = 0;
    bool expired = false;
    if (any_deferred) {
        env->attempts++;
        if (retry_next(&o->policy, env->arrival * 1000, now, env->attempts, &next) ==
            RETRY_EXPIRED) {
            expired = true;
            next = 0;
        }
        free(env->last_reason);
        env->last_reason = buf_steal(&reason, NULL);
        struct buf tls = BUF_INIT;
        for (size_t i = 0; i < m->nd; i++) /* no host tried: the domain's policy */
            buf_printf(&tls, "%s%s: %s", tls.len ? "; " : "", m->d[i].domain,
                       m->d[i].tls_text.len ? buf_cstr(&m->d[i].tls_text)
                                            : smtp_tls_policy_name(m->d[i].tls));
        free(env->last_tls);
        env->last_tls = tls.len ? buf_steal(&tls, NULL) : NULL;
        buf_free(&tls);
    }
    struct dsn_rcpt *fail = xcalloc(m->n ? m->n : 1, sizeof(*fail));
    struct dsn_rcpt *delay_r = xcalloc(m->n ? m->n : 1, sizeof(*delay_r));
    struct dsn_rcpt *relayed = xcalloc(m->n ? m->n : 1, sizeof(*relayed));
    char(*codes)[16] = xcalloc(m->n ? m->n : 1, sizeof(*codes));
    struct buf *diags = xcalloc(m->n ? m->n : 1, sizeof(*diags));
    size_t nf = 0, nd = 0, nr = 0;
    bool warn = any_deferred && !expired &&
                retry_warning_due(&o->policy, env->arrival * 1000, now, env->warned);
    for (size_t i = 0; i < m->n; i++) {
        struct out_rcpt *r = &m->r[i];
        struct spool_rcpt *sr = &env->rcpts[r->idx];
        if (oc[i] == OUT_DEFERRED && expired)
            oc[i] = OUT_BOUNCED;
        dsn_code(&r->res, codes[i]);
        if (oc[i] == OUT_BOUNCED && codes[i][0] != '5')
            snprintf(codes[i], 16, "%s", r->res.enh[0] == '4' ? r->res.enh : "4.4.7");
        status_text(&r->res, &text);
        delays_text(m, r->dom, &delays);
        char use[32] = "";
        if (r->conn_use > 1)
            snprintf(use, sizeof(use), ", conn_use=%u", r->conn_use);
        /* Postfix's orig_to=: the address the recipient had before alias expansion */
        const char *orig = mta_expand_orig_to(sr->orcpt);
        bool show_orig = orig != NULL && strcasecmp(orig, sr->address) != 0;
        static const char *const names[] = {"sent", "deferred", "bounced"};
        mta_stats_count(oc[i] == OUT_SENT       ? MTA_SENT
                        : oc[i] == OUT_DEFERRED ? MTA_DEFERRED
                                                : MTA_BOUNCED,
                        delay);
        log_info("%s: to=<%s>%s%s%s, relay=%s%s, delay=%lld, delays=%s, dsn=%s, status=%s (%s%s)",
                 env->id, sr->address, show_orig ? ", orig_to=<" : "", show_orig ? orig : "",
                 show_orig ? ">" : "", r->relay ? r->relay : "none", use, delay, buf_cstr(&delays),
                 codes[i], names[oc[i]], buf_cstr(&text),
                 oc[i] == OUT_BOUNCED && expired && r->res.code / 100 != 5
                     ? "; message expired in the queue"
                     : "");
        buf_init(&diags[i]);
        buf_printf(&diags[i], "%d %s %s", r->res.code, r->res.enh[0] ? r->res.enh : codes[i],
                   buf_cstr(&r->res.text));
        struct dsn_rcpt dr = {.address = sr->address,
                              .orcpt = sr->orcpt,
                              .status = codes[i],
                              .remote_mta = r->res.local ? NULL : r->host,
                              .diagnostic = r->res.local ? NULL : buf_cstr(&diags[i]),
                              .last_attempt = now / 1000};
        switch (oc[i]) {
        case OUT_SENT:
            sr->state = SPOOL_RCPT_DELIVERED;
            if (!r->peer_dsn && dsn_wanted(env->sender, sr->notify, DSN_ACTION_RELAYED)) {
                dr.action = DSN_ACTION_RELAYED;
                relayed[nr++] = dr;
            }
            break;
        case OUT_BOUNCED:
            sr->state = SPOOL_RCPT_FAILED;
            if (r->res.local)
                dr.diagnostic = buf_cstr(&r->res.text);
            if (dsn_wanted(env->sender, sr->notify, DSN_ACTION_FAILED)) {
                dr.action = DSN_ACTION_FAILED;
                fail[nf++] = dr;
            }
            break;
        case OUT_DEFERRED:
            /* its queue: the next hop of this attempt (moved there, the same entry) */
            free(sr->via);
            sr->via = r->dom->hop ? xstrdup(r->dom->hop) : NULL;
            free(sr->waits);
            sr->waits = wait_text(r);
            if (warn && dsn_wanted(env->sender, sr->notify, DSN_ACTION_DELAYED)) {
                dr.action = DSN_ACTION_DELAYED;
                dr.will_retry_until = retry_until(&o->policy, env->arrival * 1000) / 1000;
                if (r->res.local)
                    dr.diagnostic = NULL;
                delay_r[nd++] = dr;
            }
            break;
        }
    }
    /* the reports first: a crash after them repeats a report, never loses one */
    report_spool(o, m->sm, fail, nf, now, "non-delivery");
    report_spool(o, m->sm, delay_r, nd, now, "delay");
    report_spool(o, m->sm, relayed, nr, now, "delivery status");
    if (warn)
        env->warned = true;
    env->next_attempt = next;
    bool pending = false;
    for (size_t i = 0; i < env->n_rcpts; i++)
        pending |= env->rcpts[i].state == SPOOL_RCPT_PENDING;
    struct buf err = BUF_INIT;
    if (!pending) {
        mta_remove_submit(o->rm, env->id); /* in its thread, logs "removed" */
    } else if (spool_update_rcpts(o->cfg, m->sm, &err) != 0)
        log_error("%s: cannot record outbound results in the spool: %s", env->id, buf_cstr(&err));
    buf_free(&err);
    for (size_t i = 0; i < m->n; i++)
        buf_free(&diags[i]);
    free(diags);
    free(codes);
    free(fail);
    free(delay_r);
    free(relayed);
    free(oc);
    buf_free(&reason);
    buf_free(&text);
    buf_free(&delays);
    /* unlink before the callback: it may start a new attempt for this id */
    if (m->prev)
        m->prev->next = m->next;
    else
        o->msgs = m->next;
    if (m->next)
        m->next->prev = m->prev;
    o->active--;
    char id[32];
    memcpy(id, env->id, sizeof(id));
    int64_t org_since = pending && org_wait ? m->t_deliver : 0;
    msg_free(m);
    o->done(o->arg, id, pending ? next : 0, org_since);
}

void mta_out_free(struct mta_out *o)
{
    if (o == NULL)
        return;
    nexthop_resolver_free(o->resolver); /* no callback after this */
    mta_tlsrpt_free(o->tlsrpt);
    mta_conn_pool_free(o->pool); /* nor after this */
    while (o->msgs) {
        struct out_msg *m = o->msgs;
        o->msgs = m->next;
        msg_free(m);
    }
    mta_sts_free(o->sts);
    if (o->tls_ctx)
        SSL_CTX_free(o->tls_ctx);
    if (o->auth_pass) {
        OPENSSL_cleanse(o->auth_pass, strlen(o->auth_pass));
        free(o->auth_pass);
    }
    free(o->auth_user);
    free(o);
}

void mta_out_set_remove(struct mta_out *o, struct mta_remove *rm)
{
    o->rm = rm;
}
