/*
 * smtp_session.c - one SMTP server session (RFC 5321 with PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, BINARYMIME, DSN,
 * STARTTLS, AUTH PLAIN/LOGIN): commands, policy, DATA/BDAT, and the hand-off
 * to the spool.
 *
 * Must never: answer 250 to DATA/BDAT LAST before the spool file is durable
 * (smtp_commit calls back only then), keep any state across STARTTLS, accept
 * AUTH without TLS unless smtp_auth_plaintext, or relay for an
 * unauthenticated client outside mynetworks.
 */
#include "smtp/smtp_server.h"

#include "base/alloc.h"
#include "base/date.h"
#include "base/log.h"
#include "auth/auth_login.h"
#include "net/net_proxy.h"
#include "ipc/frame.h"
#include "mailauth/mailauth.h"
#include "net/lineproto.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum sess_state {
    ST_GREET,   /* before HELO/EHLO */
    ST_READY,   /* between transactions (or inside one, before DATA/BDAT) */
    ST_DATA,    /* reading DATA */
    ST_BDAT,    /* reading a BDAT chunk */
    ST_AUTH,    /* waiting for a SASL response line */
    ST_WAIT,    /* an asynchronous step runs (auth check, spool commit, delay) */
    ST_TLS,     /* STARTTLS handshake under way */
    ST_CLOSING, /* goodbye said */
    ST_PROXY,   /* a front-end's spliced submission: the home server reads it */
};

enum {
    CNT_HELO,
    CNT_EHLO,
    CNT_STARTTLS,
    CNT_AUTH,
    CNT_MAIL,
    CNT_RCPT,
    CNT_DATA,
    CNT_BDAT,
    CNT_RSET,
    CNT_NOOP,
    CNT_VRFY,
    CNT_QUIT,
    CNT_UNKNOWN,
    CNT__N
};
static const char *const cnt_names[CNT__N] = {"helo", "ehlo", "starttls", "auth", "mail",
                                              "rcpt", "data", "bdat",     "rset", "noop",
                                              "vrfy", "quit", "unknown"};

struct smtp_session {
    struct smtp_server *srv;
    enum smtp_service_kind kind;
    struct net_conn *c;
    enum sess_state state;
    char client[80]; /* "unknown[192.0.2.1]" */
    char *helo;
    bool esmtp;
    char *auth_user;
    const char *auth_mech;
    struct auth_login *login;
    void *lookup; /* a directory lookup in flight (smtp_policy), the session waits */
    /* Front-end and back-end (doc/frontend.md): the account signed in, waiting
     * for its home server; the hand-over to it; a hand-over received. */
    char *home_account;
    const char *home_mech;
    struct net_proxy *proxy;
    int proxy_stage;
    bool handover;
    /* MAIL or RCPT waiting for its directory answer */
    struct spool_rcpt pend_rcpt;
    char *pend_sender, *pend_envid;
    enum spool_body pend_body;
    bool pend_utf8, pend_ret_hdrs;
    /* The transaction. */
    bool have_mail;
    char *sender;
    struct spool_rcpt *rcpts;
    size_t n_rcpts;
    enum spool_body body;
    bool smtputf8, ret_hdrs;
    char *envid;
    char id[32];
    /* Message data. */
    struct buf data;
    struct dotread sc;
    uint64_t bdat_left;
    bool bdat_last, bdat_discard, bdat_used;
    struct smtp_commit_job *job;
    struct smtp_check_job *check;       /* the checks after end of data run (smtp_checks.h) */
    struct smtp_connect_job *listcheck; /* the DNS lists are asked before the greeting */
    bool blocked;                       /* listed: 554 greeting, 503 to all but QUIT */
    char *queued_log;                   /* "from=<..>, size=N, nrcpt=N", logged once durable */
    /* Session. */
    struct buf line;
    struct line_session ls; /* replies, the error count, STARTTLS (lineproto.h) */
    bool drain_pending;
    const char *last_cmd;
    unsigned cnt_ok[CNT__N], cnt_all[CNT__N];
};

static void sess_readable(void *arg);

/* ---- replies and errors ---- */

static void reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line_vreply(&s->ls, fmt, ap);
    va_end(ap);
}

static void sess_close(struct smtp_session *s)
{
    s->state = ST_CLOSING;
    line_close(&s->ls);
}

/* smtp_max_errors reached (line_session's too_many). */
static void too_many_errors(void *arg)
{
    struct smtp_session *s = arg;
    log_info("too many errors after %s from %s", s->last_cmd ? s->last_cmd : "CONNECT", s->client);
    reply(s, "421 4.7.0 %s Error: too many errors", s->srv->cfg->myhostname);
    s->state = ST_CLOSING;
}

/* An error reply that counts towards smtp_max_errors. */
static void reply_error(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_error(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line_vreply(&s->ls, fmt, ap);
    va_end(ap);
    line_count_error(&s->ls);
}

/* ---- transaction state ---- */

static void txn_reset(struct smtp_session *s)
{
    s->have_mail = false;
    free(s->sender);
    s->sender = NULL;
    for (size_t i = 0; i < s->n_rcpts; i++) {
        free(s->rcpts[i].address);
        free(s->rcpts[i].orcpt);
    }
    free(s->rcpts);
    s->rcpts = NULL;
    s->n_rcpts = 0;
    s->body = SPOOL_BODY_7BIT;
    s->smtputf8 = s->ret_hdrs = false;
    free(s->envid);
    s->envid = NULL;
    s->id[0] = '\0';
    buf_free(&s->data);
    s->bdat_used = s->bdat_discard = s->bdat_last = false;
    s->bdat_left = 0;
}

static void sess_set_state(struct smtp_session *s, enum sess_state st)
{
    s->state = st;
    const struct wharf_config *cfg = s->srv->cfg;
    net_conn_set_timeout(s->c, st == ST_DATA || st == ST_BDAT ? cfg->smtp_data_timeout
                                                              : cfg->smtp_command_timeout);
}

static bool may_relay(struct smtp_session *s)
{
    const struct strlist *nets = &s->srv->cfg->mynetworks;
    return s->auth_user != NULL ||
           net_addr_in_networks(net_conn_addr(s->c), (const char *const *)nets->v, nets->n);
}

/* A front-end of ours relaying mail for an account homed here (doc/frontend.md, "Mail
 * in"): a back-end (frontend_secret) and a client in frontend_networks. The front-end
 * authenticated the mail (SPF, DKIM, DMARC) as it came from the sending server, and its
 * Authentication-Results say so; here its own address would fail the sender's SPF. No
 * relaying follows from it. */
static bool from_frontend(struct smtp_session *s)
{
    const struct wharf_config *cfg = s->srv->cfg;
    return cfg->frontend_secret[0] != '\0' && net_addr_frontend(cfg, net_conn_addr(s->c));
}

static bool is_submission(const struct smtp_session *s)
{
    return s->kind != SMTP_SERVICE_MX;
}

/*
 * Back to reading commands. While the worker drains, a session may finish the
 * message it is sending and go on with other commands (wharfd's contract), but
 * it is ended after a message, so it never starts the next one here.
 */
static void after_transaction(struct smtp_session *s, bool message_ended)
{
    sess_set_state(s, ST_READY);
    if (s->drain_pending && message_ended) {
        reply(s, "421 4.3.2 %s Service shutting down", s->srv->cfg->myhostname);
        sess_close(s);
        return;
    }
    net_conn_resume(s->c);
}

/* ---- the message: trace headers and the spool ---- */

static void build_prefix(struct smtp_session *s, struct buf *out, time_t now)
{
    const struct wharf_config *cfg = s->srv->cfg;
    char date[64];
    date_rfc5322_format(now, date, sizeof(date));
    const char *proto = s->esmtp ? "ESMTP" : "SMTP";
    const char *addr = net_conn_addr(s->c);
    buf_printf(out, "Received: from %s (%s [%s%s])\r\n", s->helo ? s->helo : "unknown",
               net_conn_host(s->c), strchr(addr, ':') ? "IPv6:" : "", addr); /* RFC 5321 4.1.3 */
    if (net_conn_is_tls(s->c))
        buf_printf(out, "\t(using %s with cipher %s (%d/%d bits))\r\n", net_conn_tls_version(s->c),
                   net_conn_tls_cipher(s->c), net_conn_tls_bits(s->c), net_conn_tls_bits(s->c));
    buf_printf(out, "\tby %s (Wharf) with %s%s%s id %s", cfg->myhostname, proto,
               net_conn_is_tls(s->c) ? "S" : "", s->auth_user ? "A" : "", s->id);
    if (s->n_rcpts == 1)
        buf_printf(out, "\r\n\tfor <%s>", s->rcpts[0].address);
    buf_printf(out, "; %s\r\n", date);
    if (is_submission(s) || s->auth_user) {
        if (!smtp_header_present(buf_slice(&s->data), "Message-ID"))
            buf_printf(out, "Message-ID: <%s@%s>\r\n", s->id, cfg->myhostname);
        if (!smtp_header_present(buf_slice(&s->data), "Date"))
            buf_printf(out, "Date: %s\r\n", date);
    }
}

static void commit_done(void *arg, bool ok)
{
    struct smtp_session *s = arg;
    s->job = NULL;
    if (ok) {
        s->srv->queued++;
        log_info("%s: %s (queue active)", s->id, s->queued_log);
        struct ipc_event ev = {.type = IPC_EVENT_SPOOL_NEW, .u.spool_new.queue_id = s->id};
        net_worker_publish(s->srv->w, &ev);
        reply(s, "250 2.0.0 Ok: queued as %s", s->id);
    } else {
        reply(s, "451 4.3.0 Error: queue file write error");
    }
    free(s->queued_log);
    s->queued_log = NULL;
    txn_reset(s);
    after_transaction(s, true);
}

/* A message refused after its data (the reply already said why): counted,
 * and the session goes on to the next transaction unless it is closing. */
static void txn_refused(struct smtp_session *s)
{
    s->srv->rejected++;
    txn_reset(s);
    if (s->state != ST_CLOSING)
        after_transaction(s, true);
}

/* Hands the message to the spool; header (the checks' fields) goes on top,
 * junk: local recipients get it in their Junk folder. */
static void message_commit(struct smtp_session *s, struct slice header, bool junk)
{
    struct spool_message *m = xcalloc(1, sizeof(*m));
    time_t now = time(NULL);
    struct spool_envelope *e = &m->env;
    memcpy(e->id, s->id, sizeof(e->id));
    e->sender = s->sender;
    s->sender = NULL;
    e->rcpts = s->rcpts;
    e->n_rcpts = s->n_rcpts;
    e->body = s->body;
    e->smtputf8 = s->smtputf8;
    e->dsn_ret_hdrs = s->ret_hdrs;
    e->dsn_envid = s->envid ? xstrdup(s->envid) : NULL;
    e->auth_user = s->auth_user ? xstrdup(s->auth_user) : NULL;
    e->client = xstrdup(s->client);
    e->helo = s->helo ? xstrdup(s->helo) : NULL;
    e->arrival = (int64_t)now;
    e->junk = junk;
    buf_init(&m->data);
    buf_append_slice(&m->data, header);
    build_prefix(s, &m->data, now);
    /* Authentication-Results under our authserv-id come from us only (RFC 8601 5), or from
     * a front-end of ours, which made them as the mail came in */
    if (from_frontend(s))
        buf_append_slice(&m->data, buf_slice(&s->data));
    else
        mailauth_strip_ours(buf_slice(&s->data), smtp_checks_authserv_id(s->srv->checks), &m->data);
    buf_reset(&s->line);
    buf_printf(&s->line, "from=<%s>, size=%zu, nrcpt=%zu", e->sender, m->data.len, e->n_rcpts);
    s->queued_log = buf_steal(&s->line, NULL);
    buf_init(&s->line);
    s->rcpts = NULL;
    s->n_rcpts = 0;
    buf_free(&s->data);
    sess_set_state(s, ST_WAIT);
    net_conn_pause(s->c);
    s->job = smtp_commit_submit(s->srv->commit, m, commit_done, s);
}

/* Mail from another server (port 25, neither authenticated nor trusted by
 * mynetworks, nor a front-end's) goes through mail authentication before it is
 * answered. */
static bool mailauth_applies(struct smtp_session *s)
{
    return !is_submission(s) && !may_relay(s) && !from_frontend(s);
}

static const char *service_name(const struct smtp_session *s)
{
    return s->kind == SMTP_SERVICE_MX           ? "smtp"
           : s->kind == SMTP_SERVICE_SUBMISSION ? "submission"
                                                : "submissions";
}

static void checks_done(void *arg, struct smtp_check_result *r)
{
    struct smtp_session *s = arg;
    s->check = NULL;
    if (r->replaced) { /* a milter changed a field: its copy is the message now */
        struct buf t = s->data;
        s->data = r->message;
        r->message = t;
        r->replaced = false;
    }
    if (r->verdict == SMTP_VERDICT_REJECT) {
        log_info("%s: reject: %s from %s: %s", s->id, r->log, s->client, r->reply);
        reply_error(s, "%s", r->reply);
        txn_refused(s);
        return;
    }
    bool junk = r->verdict == SMTP_VERDICT_QUARANTINE;
    if (junk)
        log_info("%s: quarantine: %s", s->id, r->log);
    message_commit(s, buf_slice(&r->header), junk);
}

static void message_finish(struct smtp_session *s)
{
    /* Counted before our own Received: is added; one more would pass the limit. */
    size_t max = (size_t)s->srv->cfg->smtp_max_hops;
    size_t hops = smtp_header_count(buf_slice(&s->data), "Received", max);
    if (hops >= max) {
        log_info("%s: reject: %zu or more Received: fields (smtp_max_hops) from %s; from=<%s>",
                 s->id, hops, s->client, s->sender);
        reply_error(s, "554 5.4.6 Error: too many hops (a mail loop?)");
        txn_refused(s);
        return;
    }
    bool mailauth = mailauth_applies(s);
    if (!smtp_checks_wanted(s->srv->checks, service_name(s), mailauth)) {
        message_commit(s, slice_from_cstr(""), false);
        return;
    }
    const char **rcpts = xcalloc(s->n_rcpts + 1, sizeof(*rcpts));
    for (size_t i = 0; i < s->n_rcpts; i++)
        rcpts[i] = s->rcpts[i].address;
    struct smtp_check_msg m = {
        .id = s->id,
        .client_ip = net_conn_addr(s->c),
        .helo = s->helo,
        .sender = s->sender,
        .auth_user = s->auth_user,
        .service = service_name(s),
        .rcpts = rcpts,
        .n_rcpts = s->n_rcpts,
        .mailauth = mailauth,
        .message = buf_slice(&s->data),
    };
    sess_set_state(s, ST_WAIT);
    net_conn_pause(s->c);
    s->check = smtp_checks_run(s->srv->checks, &m, checks_done, s);
    free(rcpts);
}

/* The scanner refused the message: say why, forget the transaction. */
static void message_refused(struct smtp_session *s)
{
    const struct dotread *sc = &s->sc;
    const char *id = s->id[0] ? s->id : "NOQUEUE";
    if (sc->bare_lf || sc->bare_cr) {
        const char *what = sc->bare_lf ? "<LF>" : "<CR>";
        log_info("%s: reject: bare %s received from %s", id, what, s->client);
        reply_error(s, "550 5.5.2 Error: bare %s received (use <CR><LF> line endings)", what);
    } else if (sc->oversize) {
        log_info("%s: reject: message size exceeds %llu from %s", id,
                 (unsigned long long)sc->lim.max_size, s->client);
        reply_error(s, "552 5.3.4 Error: message file too big");
    } else if (sc->header_too_big) {
        reply_error(s, "552 5.3.4 Error: message header too big");
    } else {
        reply_error(s, "552 5.3.4 Error: message line too long");
    }
    txn_refused(s);
}

static void data_end(struct smtp_session *s)
{
    if (dotread_failed(&s->sc))
        message_refused(s);
    else
        message_finish(s);
}

/* Feeds buffered bytes to the scanner; false when more are needed. */
static bool feed_data(struct smtp_session *s)
{
    if (dotread_feed_evbuffer(&s->sc, net_conn_input(s->c)) != DOTREAD_DONE)
        return false;
    data_end(s);
    return true;
}

static void bdat_chunk_end(struct smtp_session *s)
{
    if (s->bdat_discard) {
        reply_error(s, "503 5.5.1 Error: need MAIL and RCPT before BDAT");
        s->bdat_discard = false;
        if (s->state != ST_CLOSING)
            after_transaction(s, false);
        return;
    }
    if (s->bdat_last)
        dotread_finish(&s->sc);
    if (dotread_failed(&s->sc)) {
        message_refused(s);
        return;
    }
    if (s->bdat_last) {
        message_finish(s);
        return;
    }
    reply(s, "250 2.0.0 Ok: %llu octets received", (unsigned long long)s->sc.size);
    sess_set_state(s, ST_READY);
}

static bool feed_bdat(struct smtp_session *s)
{
    struct evbuffer *in = net_conn_input(s->c);
    while (s->bdat_left > 0 && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t take = v.iov_len < s->bdat_left ? v.iov_len : (size_t)s->bdat_left;
        if (!s->bdat_discard) {
            size_t took;
            dotread_feed(&s->sc, v.iov_base, take, &took);
        }
        evbuffer_drain(in, take);
        s->bdat_left -= take;
    }
    if (s->bdat_left > 0)
        return false;
    bdat_chunk_end(s);
    return true;
}

/* ---- AUTH (the login kit, auth_login.h) ---- */

static void auth_accepted(struct smtp_session *s, const char *account, const char *mech)
{
    s->auth_user = xstrdup(account);
    s->auth_mech = mech;
    log_info("%s: sasl_method=%s, sasl_username=%s", s->client, mech, account);
    reply(s, "235 2.7.0 Authentication successful");
}

/* ---- front-end and back-end (doc/frontend.md, net/net_proxy.h) ---- */

static const char gone_line[] =
    "421 4.4.2 Your mailbox server went away; reconnect in a moment\r\n";

/* A submission session that signs in here asks for the account's home server
 * first, on a server that takes part in front-ends. */
static bool home_wanted(const struct smtp_session *s)
{
    const struct wharf_config *cfg = s->srv->cfg;
    return is_submission(s) && (net_proxy_is_frontend(cfg) || cfg->frontend_secret[0] != '\0');
}

/* The sign-in ends in a temporary error; the session is as before AUTH. */
static void home_refuse(struct smtp_session *s, const char *text)
{
    if (s->handover)
        reply_error(s, "535 5.7.8 %s", text);
    else
        reply(s, "454 4.7.0 %s", text);
    free(s->home_account);
    s->home_account = NULL;
    s->handover = false;
    after_transaction(s, false);
}

static void proxy_failed(void *arg, const char *why)
{
    struct smtp_session *s = arg;
    log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", s->home_account,
                net_conn_addr(s->c), net_proxy_peer(s->proxy), why);
    net_proxy_free(s->proxy);
    s->proxy = NULL;
    home_refuse(s, "Your mailbox server is not available now, try again later");
}

/*
 * The back-end's lines before the splice: its greeting, then its answer to
 * the client's own EHLO name, then the hand-over's 235, which becomes the
 * answer to the client's AUTH.
 */
static void proxy_line(void *arg, const char *line)
{
    struct smtp_session *s = arg;
    const char *want = s->proxy_stage == 0 ? "220" : s->proxy_stage == 1 ? "250" : "235";
    if (strncmp(line, want, 3) != 0 || (line[3] != ' ' && line[3] != '-' && line[3] != '\0')) {
        proxy_failed(s, line);
        return;
    }
    if (line[3] == '-')
        return; /* a multi-line reply goes on */
    struct buf b = BUF_INIT;
    if (s->proxy_stage == 0) {
        buf_printf(&b, "EHLO %s", s->helo);
        net_proxy_send_line(s->proxy, buf_cstr(&b));
    } else if (s->proxy_stage == 1) {
        char mac[NET_PROXY_MAC_HEX + 1];
        if (!net_proxy_handover_mac(s->proxy, "smtp", s->home_account, net_conn_addr(s->c), mac)) {
            proxy_failed(s, "cannot compute the hand-over MAC");
            return;
        }
        buf_printf(&b, "XWHARFPROXY %s %s %s", s->home_account, net_conn_addr(s->c), mac);
        net_proxy_send_line(s->proxy, buf_cstr(&b));
    } else {
        log_info("proxy: user=<%s>, rip=%s: spliced to %s", s->home_account, net_conn_addr(s->c),
                 net_proxy_peer(s->proxy));
        reply(s, "%s", line);
        s->auth_user = s->home_account;
        s->home_account = NULL;
        s->state = ST_PROXY;
        /* A spliced session parses nothing again: give back what the login needed. */
        auth_login_free(s->login);
        s->login = NULL;
        buf_free(&s->line);
        net_proxy_splice(s->proxy, gone_line);
        net_conn_set_timeout(s->c, 0); /* the home server keeps time */
        net_conn_resume(s->c);
        if (evbuffer_get_length(net_conn_input(s->c)) > 0)
            net_proxy_client_readable(s->proxy); /* pipelined after AUTH */
    }
    buf_free(&b);
    s->proxy_stage++;
}

static const struct net_proxy_ops proxy_ops = {.line = proxy_line, .failed = proxy_failed};

/* ---- link state between bridgeheads (doc/routing.md, "Link state over SMTP") ---- */

/* X-WHARF-LINKSTATE: on the MX service, over TLS, while this server is in an
 * organization (its routing process listens on run/routing.sock only then). */
static bool linkstate_offered(const struct smtp_session *s)
{
    if (is_submission(s) || !net_conn_is_tls(s->c))
        return false;
    char *path = config_data_path(s->srv->cfg, "run/routing.sock");
    struct stat st;
    bool ok = stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
    free(path);
    return ok;
}

static void linkstate_failed(void *arg, const char *why)
{
    struct smtp_session *s = arg;
    log_warning("%s: link state: routing.sock: %s", s->client, why);
    net_proxy_free(s->proxy);
    s->proxy = NULL;
    sess_set_state(s, ST_READY);
    net_conn_resume(s->c);
    reply(s, "454 4.3.0 Link state is not available now");
}

/* The routing process has the connection: from here on the bytes are its own
 * frames inside a TLS session of its own, spliced untouched. */
static void linkstate_connected(void *arg)
{
    struct smtp_session *s = arg;
    reply(s, "220 2.0.0 Ready for link-state frames");
    s->state = ST_PROXY;
    auth_login_free(s->login);
    s->login = NULL;
    net_proxy_splice(s->proxy, NULL);
    net_conn_set_timeout(s->c, 0); /* routing keeps time (its dead timer) */
    net_conn_resume(s->c);
    if (evbuffer_get_length(net_conn_input(s->c)) > 0)
        net_proxy_client_readable(s->proxy);
}

static const struct net_proxy_ops linkstate_ops = {.failed = linkstate_failed,
                                                   .connected = linkstate_connected};

static void cmd_linkstate(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (is_submission(s)) {
        reply_error(s, "502 5.5.2 Error: command not recognized");
        return;
    }
    if (!net_conn_is_tls(s->c)) {
        reply_error(s, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    if (s->helo == NULL || !s->esmtp) {
        reply_error(s, "503 5.5.1 Error: send EHLO first");
        return;
    }
    if (s->have_mail) {
        reply_error(s, "503 5.5.1 Error: X-WHARF-LINKSTATE is not allowed in a mail transaction");
        return;
    }
    if (!linkstate_offered(s)) {
        reply_error(s, "502 5.5.2 Error: command not recognized");
        return;
    }
    struct buf why = BUF_INIT;
    char *path = config_data_path(s->srv->cfg, "run/routing.sock");
    s->proxy = net_proxy_connect_local(s->c, path, &linkstate_ops, s, &why);
    free(path);
    if (s->proxy == NULL) {
        log_warning("%s: link state: %s", s->client, buf_cstr(&why));
        reply(s, "454 4.3.0 Link state is not available now");
    } else {
        log_info("%s: link state of %.*s handed to the routing process", s->client,
                 (int)cmd->ls_server.len, cmd->ls_server.ptr);
        sess_set_state(s, ST_WAIT);
        net_conn_pause(s->c);
    }
    buf_free(&why);
}

static void home_known(void *arg, int status, const char *home)
{
    struct smtp_session *s = arg;
    s->lookup = NULL;
    const struct wharf_config *cfg = s->srv->cfg;
    if (s->handover) {
        /* A front-end sent this account here: it must live here. */
        if (status != 1 || !net_proxy_home_is_here(cfg, home)) {
            log_warning("%s: hand-over of user=<%s> refused: %s", s->client, s->home_account,
                        status == 1 ? "the account's home server is another one"
                                    : "no such account here");
            home_refuse(s, "Hand-over refused");
            return;
        }
        s->cnt_ok[CNT_AUTH]++;
    } else if (status == 1 && net_proxy_wanted(cfg, home)) {
        struct buf why = BUF_INIT;
        s->proxy = net_proxy_one_word(s->home_account)
                       ? net_proxy_connect(s->c, home, (unsigned)cfg->frontend_submission_port,
                                           &proxy_ops, s, &why)
                       : NULL;
        if (s->proxy == NULL) {
            log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", s->home_account,
                        net_conn_addr(s->c), home, why.len ? buf_cstr(&why) : "bad name");
            home_refuse(s, "Your mailbox server is not available now, try again later");
        } else {
            s->proxy_stage = 0; /* still waiting, until the splice */
        }
        buf_free(&why);
        return;
    } else if (net_proxy_is_frontend(cfg)) {
        log_warning("%s: user=<%s>: %s", s->client, s->home_account,
                    status < 0 ? "the directory is not available"
                               : "no home server for this account");
        home_refuse(s, "Your mailbox server is not available now, try again later");
        return;
    }
    auth_accepted(s, s->home_account, s->home_mech);
    free(s->home_account);
    s->home_account = NULL;
    s->handover = false;
    after_transaction(s, false);
}

static void home_lookup(struct smtp_session *s, const char *account, const char *mech)
{
    free(s->home_account);
    s->home_account = xstrdup(account);
    s->home_mech = mech;
    sess_set_state(s, ST_WAIT);
    net_conn_pause(s->c);
    s->lookup = smtp_policy_home(s->srv->policy, account, home_known, s);
}

/* XWHARFPROXY account client-address mac, on a back-end's submission service. */
static void cmd_handover(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    char acc[320], addr[64], mac[NET_PROXY_MAC_HEX + 2], extra[2];
    char *arg = slice_strdup(cmd->arg);
    int n = sscanf(arg, "%319s %63s %65s %1s", acc, addr, mac, extra);
    free(arg);
    if (n != 3 || strlen(mac) != NET_PROXY_MAC_HEX) {
        reply_error(s, "501 5.5.4 Syntax: XWHARFPROXY account address mac");
        return;
    }
    if (!is_submission(s) || s->helo == NULL || !s->esmtp || s->auth_user || s->have_mail) {
        reply_error(s, "503 5.5.1 Error: bad sequence of commands");
        return;
    }
    struct buf why = BUF_INIT;
    if (!net_proxy_handover_check(s->c, "smtp", acc, addr, mac, &why)) {
        log_warning("smtp: hand-over from %s refused: %s", net_conn_peer_addr(s->c),
                    buf_cstr(&why));
        reply_error(s, "535 5.7.8 Hand-over refused");
        buf_free(&why);
        return;
    }
    buf_free(&why);
    snprintf(s->client, sizeof(s->client), "%s[%s] via front-end %s", net_conn_host(s->c),
             net_conn_addr(s->c), net_conn_peer_addr(s->c));
    s->handover = true;
    home_lookup(s, acc, "XWHARFPROXY");
}

static void auth_done(void *arg, const struct auth_login_result *r)
{
    struct smtp_session *s = arg;
    switch (r->status) {
    case AUTH_LOGIN_OK:
    case AUTH_LOGIN_USER_ADDR_FULL: /* no per-(user, address) limit for smtp */
        if (home_wanted(s)) {
            home_lookup(s, r->account, r->mechanism); /* home_known follows */
            return;
        }
        auth_accepted(s, r->account, r->mechanism);
        break;
    case AUTH_LOGIN_FAILED:
        log_warning("%s: SASL %s authentication failed: authentication failure", s->client,
                    r->mechanism);
        reply_error(s, "535 5.7.8 Error: authentication failed");
        break;
    case AUTH_LOGIN_RATELIMIT:
    case AUTH_LOGIN_TEMPFAIL:
        if (r->status == AUTH_LOGIN_RATELIMIT)
            log_warning("%s: SASL %s authentication refused: too many failures", s->client,
                        r->mechanism);
        s->ls.errors++;
        reply(s, "454 4.7.0 Temporary authentication failure");
        break;
    case AUTH_LOGIN_CANCELLED:
        sess_set_state(s, ST_READY);
        reply_error(s, "501 5.0.0 Error: authentication aborted");
        break;
    case AUTH_LOGIN_MALFORMED:
        sess_set_state(s, ST_READY);
        reply_error(s, "501 5.5.2 Error: %s", sasl_status_text(r->sasl));
        break;
    }
    if (s->state != ST_CLOSING)
        after_transaction(s, false);
}

/* What the kit asks next: a response line, or the wait for the auth process. */
static void auth_step(struct smtp_session *s, enum auth_login_step st)
{
    if (st == AUTH_LOGIN_CHALLENGED)
        sess_set_state(s, ST_AUTH);
    else if (st == AUTH_LOGIN_CHECKING)
        sess_set_state(s, ST_WAIT);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (s->helo == NULL || !s->esmtp) {
        reply_error(s, "503 5.5.1 Error: send EHLO first");
        return;
    }
    if (s->auth_user) {
        reply_error(s, "503 5.5.1 Error: already authenticated");
        return;
    }
    if (s->have_mail) {
        reply_error(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (!auth_login_allowed(s->login)) {
        reply_error(s, "538 5.7.11 Encryption required for requested authentication "
                       "mechanism");
        return;
    }
    struct slice a = cmd->arg;
    size_t sp = 0;
    while (sp < a.len && a.ptr[sp] != ' ')
        sp++;
    struct slice mech = slice_make(a.ptr, sp);
    struct slice ir =
        sp < a.len ? slice_trim(slice_make(a.ptr + sp + 1, a.len - sp - 1)) : SLICE_NULL;
    enum auth_login_step st = auth_login_begin(s->login, mech, ir);
    if (st == AUTH_LOGIN_UNSUPPORTED) {
        reply_error(s, "504 5.5.4 Error: unsupported authentication mechanism");
        return;
    }
    s->cnt_ok[CNT_AUTH]++;
    auth_step(s, st);
}

/* ---- commands ---- */

static void cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    const struct wharf_config *cfg = s->srv->cfg;
    txn_reset(s);
    free(s->helo);
    s->helo = slice_strdup(cmd->arg);
    s->esmtp = cmd->verb == SMTP_EHLO;
    sess_set_state(s, ST_READY);
    if (!s->esmtp) {
        reply(s, "250 %s", cfg->myhostname);
        return;
    }
    struct buf b = BUF_INIT;
    buf_printf(&b, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n", cfg->myhostname,
               (unsigned long long)cfg->smtp_max_message_size);
    if (net_conn_can_starttls(s->c))
        buf_printf(&b, "250-STARTTLS\r\n");
    if (linkstate_offered(s))
        buf_append_cstr(&b, "250-X-WHARF-LINKSTATE 1\r\n");
    if (auth_login_allowed(s->login)) {
        buf_append_cstr(&b, "250-AUTH");
        auth_login_mechanisms(s->login, " ", &b);
        buf_append_cstr(&b, "\r\n");
    }
    buf_printf(&b, "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-BINARYMIME\r\n"
                   "250-CHUNKING\r\n250-DSN\r\n250-SMTPUTF8\r\n250 HELP\r\n");
    net_conn_write(s->c, b.data, b.len);
    buf_free(&b);
}

static const char *param_value(const struct smtp_param *p, struct buf *tmp)
{
    buf_reset(tmp);
    buf_append_slice(tmp, p->value);
    return buf_cstr(tmp);
}

static void mail_accept(struct smtp_session *s, char *sender, char *envid, enum spool_body body,
                        bool utf8, bool ret_hdrs)
{
    s->have_mail = true;
    s->sender = sender;
    s->body = body;
    s->smtputf8 = utf8;
    s->ret_hdrs = ret_hdrs;
    s->envid = envid;
    s->cnt_ok[CNT_MAIL]++;
    reply(s, "250 2.1.0 Ok");
}

/* The directory's answer to the submission sender check of MAIL. */
static void mail_checked(void *arg, int owned)
{
    struct smtp_session *s = arg;
    s->lookup = NULL;
    char *sender = s->pend_sender, *envid = s->pend_envid;
    s->pend_sender = s->pend_envid = NULL;
    if (owned > 0) {
        mail_accept(s, sender, envid, s->pend_body, s->pend_utf8, s->pend_ret_hdrs);
    } else {
        if (owned < 0) {
            reply_error(s, "451 4.3.0 Temporary lookup failure");
        } else {
            log_info("NOQUEUE: reject: MAIL from %s: 553 5.7.1 <%s>: Sender address rejected: "
                     "not owned by user %s; proto=ESMTP helo=<%s>",
                     s->client, sender, s->auth_user, s->helo);
            reply_error(s,
                        "553 5.7.1 Sender address rejected: not owned by the authenticated user");
        }
        free(sender);
        free(envid);
    }
    if (s->state == ST_WAIT)
        after_transaction(s, false);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    const struct wharf_config *cfg = s->srv->cfg;
    if (s->helo == NULL) {
        reply_error(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->have_mail) {
        reply_error(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (is_submission(s) && !net_conn_is_tls(s->c)) {
        reply_error(s, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    if (is_submission(s) && s->auth_user == NULL) {
        reply_error(s, "530 5.7.0 Authentication required");
        return;
    }
    struct buf tmp = BUF_INIT;
    enum spool_body body = SPOOL_BODY_7BIT;
    bool utf8 = false, ret_hdrs = false;
    char *envid = NULL;
    const char *err = NULL;
    for (size_t i = 0; i < cmd->n_params && err == NULL; i++) {
        const struct smtp_param *p = &cmd->params[i];
        const char *v = param_value(p, &tmp);
        if (slice_eq_cstr_nocase(p->key, "SIZE")) {
            char *end;
            unsigned long long n = strtoull(v, &end, 10);
            if (*v == '\0' || *end != '\0')
                err = "501 5.5.4 Bad SIZE parameter";
            else if (n > cfg->smtp_max_message_size)
                err = "552 5.3.4 Message size exceeds fixed limit";
        } else if (slice_eq_cstr_nocase(p->key, "BODY")) {
            if (strcasecmp(v, "7BIT") == 0)
                body = SPOOL_BODY_7BIT;
            else if (strcasecmp(v, "8BITMIME") == 0)
                body = SPOOL_BODY_8BITMIME;
            else if (strcasecmp(v, "BINARYMIME") == 0)
                body = SPOOL_BODY_BINARYMIME;
            else
                err = "501 5.5.4 Bad BODY parameter";
        } else if (slice_eq_cstr_nocase(p->key, "SMTPUTF8") && p->value.ptr == NULL) {
            utf8 = true;
        } else if (slice_eq_cstr_nocase(p->key, "RET")) {
            if (strcasecmp(v, "HDRS") == 0)
                ret_hdrs = true;
            else if (strcasecmp(v, "FULL") != 0)
                err = "501 5.5.4 Bad RET parameter";
        } else if (slice_eq_cstr_nocase(p->key, "ENVID")) {
            struct buf d = BUF_INIT;
            if (envid || p->value.len > 100 || !smtp_xtext_decode(p->value, &d))
                err = "501 5.5.4 Bad ENVID parameter";
            else
                envid = buf_steal(&d, NULL);
            buf_free(&d);
        } else if (slice_eq_cstr_nocase(p->key, "AUTH")) {
            /* RFC 4954 5: accepted, not trusted. */
        } else {
            err = "555 5.5.4 Unsupported option";
        }
    }
    buf_free(&tmp);
    if (err == NULL && cmd->path_utf8 && !utf8)
        err = "553 5.6.7 Must declare SMTPUTF8 to send an internationalized address";
    char *sender = slice_strdup(cmd->path);
    if (err) {
        free(envid);
        free(sender);
        reply_error(s, "%s", err);
        return;
    }
    if (s->auth_user && cfg->smtp_sender_login_match && sender[0] != '\0' &&
        strcasecmp(sender, s->auth_user) != 0) {
        /* Which accounts the sender address leads to: ask the directory, and wait. */
        s->pend_sender = sender;
        s->pend_envid = envid;
        s->pend_body = body;
        s->pend_utf8 = utf8;
        s->pend_ret_hdrs = ret_hdrs;
        sess_set_state(s, ST_WAIT);
        net_conn_pause(s->c);
        s->lookup = smtp_policy_sender_owned(s->srv->policy, sender, s->auth_user, mail_checked, s);
        return;
    }
    mail_accept(s, sender, envid, body, utf8, ret_hdrs);
}

static bool parse_notify(struct slice v, unsigned *out)
{
    *out = 0;
    size_t i = 0;
    while (i <= v.len) {
        size_t j = i;
        while (j < v.len && v.ptr[j] != ',')
            j++;
        struct slice w = slice_make(v.ptr + i, j - i);
        if (slice_eq_cstr_nocase(w, "NEVER"))
            *out |= SPOOL_NOTIFY_NEVER;
        else if (slice_eq_cstr_nocase(w, "SUCCESS"))
            *out |= SPOOL_NOTIFY_SUCCESS;
        else if (slice_eq_cstr_nocase(w, "FAILURE"))
            *out |= SPOOL_NOTIFY_FAILURE;
        else if (slice_eq_cstr_nocase(w, "DELAY"))
            *out |= SPOOL_NOTIFY_DELAY;
        else
            return false;
        i = j + 1;
    }
    return !((*out & SPOOL_NOTIFY_NEVER) && *out != SPOOL_NOTIFY_NEVER);
}

static void log_reject_rcpt(struct smtp_session *s, const char *rcpt, const char *what)
{
    log_info("%s: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=%s helo=<%s>",
             s->id[0] ? s->id : "NOQUEUE", s->client, what, s->sender, rcpt,
             s->esmtp ? "ESMTP" : "SMTP", s->helo);
}

static void rcpt_checked(void *arg, enum smtp_rcpt_verdict verdict);

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    const struct wharf_config *cfg = s->srv->cfg;
    if (!s->have_mail) {
        reply_error(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (s->n_rcpts >= (size_t)cfg->smtp_max_recipients) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    unsigned notify = 0;
    char *orcpt = NULL;
    const char *err = NULL;
    for (size_t i = 0; i < cmd->n_params && err == NULL; i++) {
        const struct smtp_param *p = &cmd->params[i];
        if (slice_eq_cstr_nocase(p->key, "NOTIFY")) {
            if (notify || !parse_notify(p->value, &notify))
                err = "501 5.5.4 Bad NOTIFY parameter";
        } else if (slice_eq_cstr_nocase(p->key, "ORCPT")) {
            struct buf d = BUF_INIT;
            const char *semi = memchr(p->value.ptr, ';', p->value.len);
            if (orcpt || p->value.len > 500 || semi == NULL || !smtp_xtext_decode(p->value, &d))
                err = "501 5.5.4 Bad ORCPT parameter";
            else
                orcpt = buf_steal(&d, NULL);
            buf_free(&d);
        } else {
            err = "555 5.5.4 Unsupported option";
        }
    }
    if (err == NULL && cmd->path_utf8 && !s->smtputf8)
        err = "553 5.6.7 Must declare SMTPUTF8 to send an internationalized address";
    if (err) {
        free(orcpt);
        {
            reply_error(s, "%s", err);
            return;
        }
    }
    struct buf addr = BUF_INIT;
    if (slice_eq_cstr_nocase(cmd->path, "postmaster"))
        buf_printf(&addr, "postmaster@%s",
                   cfg->mydomains.n ? cfg->mydomains.v[0] : cfg->myhostname);
    else
        buf_append_slice(&addr, cmd->path);
    /* Ask the directory, and wait for its answer (rcpt_checked). */
    s->pend_rcpt =
        (struct spool_rcpt){.address = buf_steal(&addr, NULL), .orcpt = orcpt, .notify = notify};
    sess_set_state(s, ST_WAIT);
    net_conn_pause(s->c);
    s->lookup =
        smtp_policy_rcpt(s->srv->policy, s->pend_rcpt.address, may_relay(s), rcpt_checked, s);
}

/* The directory's verdict on the recipient of RCPT. */
static void rcpt_checked(void *arg, enum smtp_rcpt_verdict verdict)
{
    struct smtp_session *s = arg;
    s->lookup = NULL;
    struct spool_rcpt r = s->pend_rcpt;
    memset(&s->pend_rcpt, 0, sizeof(s->pend_rcpt));
    const char *a = r.address;
    struct buf why = BUF_INIT;
    switch (verdict) {
    case SMTP_RCPT_LOCAL:
    case SMTP_RCPT_RELAY:
        break;
    case SMTP_RCPT_NO_SUCH_USER:
        buf_printf(&why,
                   "550 5.1.1 <%s>: Recipient address rejected: User unknown in local "
                   "recipient table",
                   a);
        goto refuse;
    case SMTP_RCPT_LOOP: /* RFC 3463 5.4.6: routing loop detected */
        buf_printf(&why, "550 5.4.6 <%s>: Recipient address rejected: alias loop", a);
        goto refuse;
    case SMTP_RCPT_RELAY_DENIED:
        buf_printf(&why, "554 5.7.1 <%s>: Relay access denied", a);
    refuse:
        log_reject_rcpt(s, a, buf_cstr(&why));
        reply_error(s, "%s", buf_cstr(&why));
        goto out;
    case SMTP_RCPT_TEMPFAIL:
        buf_printf(&why, "451 4.3.0 <%s>: Temporary lookup failure", a);
        log_reject_rcpt(s, a, buf_cstr(&why));
        reply(s, "%s", buf_cstr(&why));
        goto out;
    }
    for (size_t i = 0; i < s->n_rcpts; i++) {
        if (strcasecmp(s->rcpts[i].address, a) == 0) { /* a duplicate: delivered once */
            s->cnt_ok[CNT_RCPT]++;
            reply(s, "250 2.1.5 Ok");
            goto out;
        }
    }
    if (s->id[0] == '\0') {
        spool_new_id(s->id);
        if (s->auth_user)
            log_info("%s: client=%s, sasl_method=%s, sasl_username=%s", s->id, s->client,
                     s->auth_mech, s->auth_user);
        else
            log_info("%s: client=%s", s->id, s->client);
    }
    s->rcpts = xreallocarray(s->rcpts, s->n_rcpts + 1, sizeof(*s->rcpts));
    s->rcpts[s->n_rcpts++] = r;
    r.address = r.orcpt = NULL;
    s->cnt_ok[CNT_RCPT]++;
    reply(s, "250 2.1.5 Ok");
out:
    free(r.address);
    free(r.orcpt);
    buf_free(&why);
    if (s->state == ST_WAIT)
        after_transaction(s, false);
}

static void data_begin(struct smtp_session *s, bool bdat)
{
    buf_free(&s->data);
    buf_init(&s->data);
    dotread_init(&s->sc, &s->srv->limits, bdat, bdat && s->body == SPOOL_BODY_BINARYMIME, &s->data);
}

static void cmd_data(struct smtp_session *s)
{
    if (!s->have_mail) {
        reply_error(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (s->n_rcpts == 0) {
        reply_error(s, "554 5.5.1 Error: no valid recipients");
        return;
    }
    if (s->bdat_used) {
        reply_error(s, "503 5.5.1 Error: DATA after BDAT");
        return;
    }
    if (s->body == SPOOL_BODY_BINARYMIME) {
        reply_error(s, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT");
        return;
    }
    s->cnt_ok[CNT_DATA]++;
    data_begin(s, false);
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
    sess_set_state(s, ST_DATA);
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    s->bdat_left = cmd->chunk_size;
    s->bdat_last = cmd->last;
    if (!s->have_mail || s->n_rcpts == 0) {
        s->bdat_discard = true; /* the chunk is read and thrown away, then 503 */
    } else {
        if (!s->bdat_used)
            data_begin(s, true);
        s->bdat_used = true;
        s->cnt_ok[CNT_BDAT]++;
    }
    sess_set_state(s, ST_BDAT);
    if (s->bdat_left == 0)
        bdat_chunk_end(s);
}

static void cmd_starttls(struct smtp_session *s)
{
    switch (line_starttls(&s->ls, "220 2.0.0 Ready to start TLS")) {
    case LINE_STARTTLS_ACTIVE:
        reply_error(s, "554 5.5.1 Error: TLS already active");
        return;
    case LINE_STARTTLS_UNAVAILABLE:
        reply_error(s, "502 5.5.1 Error: command not implemented");
        return;
    case LINE_STARTTLS_FAILED:
        s->state = ST_CLOSING;
        return;
    case LINE_STARTTLS_STARTED:
        s->cnt_ok[CNT_STARTTLS]++;
        sess_set_state(s, ST_TLS);
        return;
    }
}

static void sess_command(struct smtp_session *s, struct slice line)
{
    struct smtp_cmd cmd;
    const char *why;
    enum smtp_parse_result r = smtp_cmd_parse(line, &cmd, &why);
    int cnt = CNT_UNKNOWN;
    switch (cmd.verb) {
    case SMTP_HELO:
        cnt = CNT_HELO;
        break;
    case SMTP_EHLO:
        cnt = CNT_EHLO;
        break;
    case SMTP_STARTTLS:
        cnt = CNT_STARTTLS;
        break;
    case SMTP_AUTH:
    case SMTP_XWHARFPROXY: /* a front-end's sign-in: counted as the AUTH it stands for */
        cnt = CNT_AUTH;
        break;
    case SMTP_MAIL:
        cnt = CNT_MAIL;
        break;
    case SMTP_RCPT:
        cnt = CNT_RCPT;
        break;
    case SMTP_DATA:
        cnt = CNT_DATA;
        break;
    case SMTP_BDAT:
        cnt = CNT_BDAT;
        break;
    case SMTP_RSET:
        cnt = CNT_RSET;
        break;
    case SMTP_NOOP:
        cnt = CNT_NOOP;
        break;
    case SMTP_VRFY:
        cnt = CNT_VRFY;
        break;
    case SMTP_QUIT:
        cnt = CNT_QUIT;
        break;
    default:
        break;
    }
    s->cnt_all[cnt]++;
    s->last_cmd = cmd.name;
    if (s->blocked && cmd.verb != SMTP_QUIT) { /* RFC 5321 3.1, after a 554 greeting */
        reply_error(s, "503 5.5.1 Error: bad sequence of commands (this client is blocked)");
        return;
    }
    if (r == SMTP_PARSE_UNKNOWN) {
        reply_error(s, "502 5.5.2 Error: command not recognized");
        return;
    }
    if (r == SMTP_PARSE_SYNTAX) {
        if (cmd.verb == SMTP_BDAT) { /* no trustworthy length: the stream is lost */
            reply(s, "501 %s", why);
            {
                sess_close(s);
                return;
            }
        }
        {
            reply_error(s, "%s %s", why[0] == '5' && why[2] == '1' ? "553" : "501", why);
            return;
        }
    }
    if (s->bdat_used && cmd.verb != SMTP_BDAT && cmd.verb != SMTP_QUIT && cmd.verb != SMTP_NOOP &&
        cmd.verb != SMTP_RSET) {
        txn_reset(s);
        {
            reply_error(s, "503 5.5.1 Error: only BDAT may follow BDAT");
            return;
        }
    }
    switch (cmd.verb) {
    case SMTP_HELO:
    case SMTP_EHLO:
        s->cnt_ok[cnt]++;
        {
            cmd_ehlo(s, &cmd);
            return;
        }
    case SMTP_MAIL: {
        cmd_mail(s, &cmd);
        return;
    }
    case SMTP_RCPT: {
        cmd_rcpt(s, &cmd);
        return;
    }
    case SMTP_DATA: {
        cmd_data(s);
        return;
    }
    case SMTP_BDAT: {
        cmd_bdat(s, &cmd);
        return;
    }
    case SMTP_STARTTLS: {
        cmd_starttls(s);
        return;
    }
    case SMTP_AUTH: {
        cmd_auth(s, &cmd);
        return;
    }
    case SMTP_XWHARFPROXY: {
        cmd_handover(s, &cmd);
        return;
    }
    case SMTP_XWHARFLINKSTATE:
        cmd_linkstate(s, &cmd);
        return;
    case SMTP_RSET:
        s->cnt_ok[cnt]++;
        txn_reset(s);
        {
            reply(s, "250 2.0.0 Ok");
            return;
        }
    case SMTP_NOOP:
        s->cnt_ok[cnt]++;
        {
            reply(s, "250 2.0.0 Ok");
            return;
        }
    case SMTP_VRFY:
        s->cnt_ok[cnt]++;
        {
            reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt "
                     "delivery");
            return;
        }
    case SMTP_EXPN: {
        reply_error(s, "502 5.5.1 Error: EXPN not available");
        return;
    }
    case SMTP_HELP: {
        reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
                 "VRFY HELP STARTTLS AUTH");
        return;
    }
    case SMTP_QUIT:
        s->cnt_ok[cnt]++;
        reply(s, "221 2.0.0 Bye");
        {
            sess_close(s);
            return;
        }
    case SMTP_UNKNOWN:
        break;
    }
}

/* ---- net_proto callbacks ---- */

static void sess_readable(void *arg)
{
    struct smtp_session *s = arg;
    const struct wharf_config *cfg = s->srv->cfg;
    if (s->state == ST_PROXY) { /* spliced: the home server reads it */
        net_proxy_client_readable(s->proxy);
        return;
    }
    for (;;) {
        switch (s->state) {
        case ST_DATA:
            if (!feed_data(s))
                return;
            continue;
        case ST_BDAT:
            if (!feed_bdat(s))
                return;
            continue;
        case ST_WAIT:
        case ST_TLS:
        case ST_CLOSING:
            return;
        default:
            break;
        }
        enum net_line_result r = net_conn_read_line(s->c, cfg->smtp_max_line_length, &s->line);
        if (r == NET_LINE_NEED_MORE)
            return;
        if (r == NET_LINE_TOO_LONG) {
            if (s->state == ST_AUTH) {
                auth_login_abort(s->login);
                sess_set_state(s, ST_READY);
            }
            reply_error(s, "500 5.5.2 Error: line too long");
            continue;
        }
        if (s->state == ST_AUTH) {
            auth_step(s, auth_login_line(s->login, buf_slice(&s->line)));
            OPENSSL_cleanse(s->line.data, s->line.len);
        } else {
            sess_command(s, buf_slice(&s->line));
        }
    }
}

/* The DNS lists have answered: the greeting, or a 554 for a listed client. */
static void sess_listed(void *arg, const char *zone)
{
    struct smtp_session *s = arg;
    s->listcheck = NULL;
    sess_set_state(s, ST_GREET);
    if (zone != NULL) {
        s->blocked = true;
        s->srv->rejected++;
        log_info("reject: connect from %s: client blocked using %s", s->client, zone);
        reply(s, "554 5.7.1 Service unavailable; client [%s] blocked using %s", net_conn_addr(s->c),
              zone);
    } else {
        reply(s, "220 %s ESMTP Wharf", s->srv->cfg->myhostname);
    }
    net_conn_resume(s->c);
}

static void *sess_open(struct net_conn *c, void *arg)
{
    struct smtp_service *svc = arg;
    struct smtp_session *s = xcalloc(1, sizeof(*s));
    s->srv = svc->srv;
    s->kind = svc->kind;
    s->c = c;
    buf_init(&s->line);
    line_session_init(&s->ls, c, (unsigned)s->srv->cfg->smtp_max_errors, too_many_errors, s);
    snprintf(s->client, sizeof(s->client), "%s[%s]", net_conn_host(c), net_conn_addr(c));
    const struct wharf_config *cfg = s->srv->cfg;
    struct auth_login_params lp = {
        .service = "smtp",
        .continuation = "334 ",
        .mechs = AUTH_MECH_PLAIN | AUTH_MECH_LOGIN,
        .plaintext = cfg->smtp_auth_plaintext,
        .max_credential = (size_t)cfg->auth_max_credential_length,
        .failure_delay_ms = cfg->smtp_auth_failure_delay,
        .base = net_worker_base(s->srv->w),
    };
    s->login = auth_login_new(s->srv->auth, c, &lp, auth_done, s);
    s->srv->sessions++;
    log_info("connect from %s", s->client);
    if (s->kind == SMTP_SERVICE_MX &&
        smtp_checks_connect_wanted(s->srv->checks, net_conn_addr(c))) {
        sess_set_state(s, ST_WAIT);
        net_conn_pause(c);
        s->listcheck = smtp_checks_connect(s->srv->checks, net_conn_addr(c), sess_listed, s);
        return s;
    }
    sess_set_state(s, ST_GREET);
    reply(s, "220 %s ESMTP Wharf", s->srv->cfg->myhostname);
    return s;
}

static void sess_tls_ready(void *arg)
{
    struct smtp_session *s = arg;
    /* RFC 3207 4.2: forget everything learnt before the handshake. */
    txn_reset(s);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = false;
    free(s->auth_user);
    s->auth_user = NULL;
    log_info("%s: TLS established: %s with cipher %s", s->client, net_conn_tls_version(s->c),
             net_conn_tls_cipher(s->c));
    sess_set_state(s, ST_GREET);
}

static void sess_timeout(void *arg)
{
    struct smtp_session *s = arg;
    log_info("timeout after %s from %s", s->last_cmd ? s->last_cmd : "CONNECT", s->client);
    reply(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->cfg->myhostname);
    s->state = ST_CLOSING;
}

static void sess_writable(void *arg)
{
    struct smtp_session *s = arg;
    if (s->state == ST_PROXY)
        net_proxy_client_writable(s->proxy);
}

static void sess_drain(void *arg)
{
    struct smtp_session *s = arg;
    if (s->state == ST_PROXY) { /* its client reconnects, to the new workers */
        net_conn_close(s->c, true);
        return;
    }
    s->drain_pending = true; /* see after_transaction; the deadline cuts the rest */
}

static void sess_closed(void *arg)
{
    struct smtp_session *s = arg;
    struct buf b = BUF_INIT;
    unsigned total = 0;
    for (int i = 0; i < CNT__N; i++) {
        if (s->cnt_all[i] == 0)
            continue;
        total += s->cnt_all[i];
        if (s->cnt_ok[i] == s->cnt_all[i])
            buf_printf(&b, " %s=%u", cnt_names[i], s->cnt_all[i]);
        else
            buf_printf(&b, " %s=%u/%u", cnt_names[i], s->cnt_ok[i], s->cnt_all[i]);
    }
    if (s->state != ST_CLOSING && s->state != ST_PROXY) /* a splice ends with its back-end */
        log_info("lost connection after %s from %s", s->last_cmd ? s->last_cmd : "CONNECT",
                 s->client);
    log_info("disconnect from %s%s commands=%u", s->client, buf_cstr(&b), total);
    buf_free(&b);
    if (s->job)
        smtp_commit_cancel(s->job);
    smtp_checks_cancel(s->check);
    smtp_checks_connect_cancel(s->listcheck);
    auth_login_free(s->login);
    net_proxy_free(s->proxy);
    free(s->home_account);
    if (s->lookup)
        smtp_policy_cancel(s->srv->policy, s->lookup);
    free(s->pend_rcpt.address);
    free(s->pend_rcpt.orcpt);
    free(s->pend_sender);
    free(s->pend_envid);
    txn_reset(s);
    free(s->helo);
    free(s->auth_user);
    free(s->queued_log);
    buf_free(&s->line);
    free(s);
}

const struct net_proto smtp_session_proto = {
    .open = sess_open,
    .readable = sess_readable,
    .tls_ready = sess_tls_ready,
    .timeout = sess_timeout,
    .drain = sess_drain,
    .closed = sess_closed,
    .writable = sess_writable,
};
