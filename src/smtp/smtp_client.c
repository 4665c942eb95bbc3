/*
 * smtp_client.c - the SMTP client session engine (see smtp_client.h).
 *
 * Every command sent pushes an expectation on a FIFO; every reply pops one
 * and is handled by its kind. Without PIPELINING the next command is sent
 * only when the FIFO is empty; with it, MAIL, the RCPTs and DATA (or BDAT)
 * go out together (RFC 2920). Never sends credentials without TLS, never
 * keeps input read before the TLS handshake (the STARTTLS wall).
 */
#include "smtp/smtp_client.h"
#include "base/clock.h"

#include "base/alloc.h"
#include "base/base64.h"
#include "base/log.h"
#include "net/dotstuff.h"
#include "net/net.h"
#include "net/net_tls_client.h"
#include "spool/spool.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <string.h>

enum exp_kind {
    EXP_GREETING,
    EXP_EHLO,
    EXP_HELO,
    EXP_STARTTLS,
    EXP_AUTH,
    EXP_MAIL,
    EXP_RCPT,
    EXP_DATA,
    EXP_DATA_END,
    EXP_BDAT,
    EXP_RSET,
    EXP_QUIT,
    EXP_TAKEOVER,
};

struct exp {
    enum exp_kind kind;
    size_t index; /* RCPT: the recipient */
};

/* Most replies awaited at once: MAIL + RCPTs + DATA of one transaction. A
 * transaction with more recipients is not pipelined past this. */
#define SMTP_CLIENT_EXP_MAX 1024

enum stage { ST_IDLE, ST_CONNECTING, ST_SESSION, ST_TLS_HANDSHAKE, ST_QUITTING, ST_DONE };

struct smtp_client {
    struct event_base *base;
    struct smtp_client_params p;
    smtp_client_txn_cb *txn_cb;
    smtp_client_done_cb *done_cb;
    void *arg;
    struct bufferevent *bev;
    enum stage stage;
    struct smtp_reply_parser parser;
    struct smtp_caps caps;
    bool tls_active, ready, quit_wanted, done_called, in_callback;
    int auth_step;
    struct smtp_client_result error;
    struct exp exps[SMTP_CLIENT_EXP_MAX];
    size_t exp_head, exp_n;
    /* transactions: head is the current one */
    struct smtp_client_txn *txn_head, *txn_tail;
    bool txn_started, mail_failed;
    size_t rcpt_next, n_accepted, last_rcpt_sent;
    const char *waiting_for; /* for timeout reasons */
    struct event *defer_ev;  /* runs the done callback outside libevent's callbacks */
    /* smtp_client_linkstate: the line, the callback */
    char *takeover_line;
    smtp_client_takeover_cb *takeover_cb;
};

static void session_fail(struct smtp_client *c, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void advance(struct smtp_client *c);
static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static const char *const tls_policy_names[] = {"none",   "may",  "require",
                                               "verify", "dane", "dane-only"};

const char *smtp_tls_policy_name(enum smtp_tls_policy p)
{
    return (size_t)p < sizeof(tls_policy_names) / sizeof(tls_policy_names[0]) ? tls_policy_names[p]
                                                                              : "?";
}

bool smtp_tls_policy_parse(const char *s, enum smtp_tls_policy *p_r)
{
    for (size_t i = 0; s != NULL && i < sizeof(tls_policy_names) / sizeof(tls_policy_names[0]); i++)
        if (strcasecmp(s, tls_policy_names[i]) == 0) {
            *p_r = (enum smtp_tls_policy)i;
            return true;
        }
    return false;
}

void smtp_client_result_clear(struct smtp_client_result *r)
{
    buf_free(&r->text);
    memset(r, 0, sizeof(*r));
}

void smtp_client_result_set(struct smtp_client_result *r, int code, const char *enh,
                            struct slice text, bool local)
{
    r->code = code;
    snprintf(r->enh, sizeof(r->enh), "%s", enh ? enh : "");
    buf_reset(&r->text);
    buf_append_slice(&r->text, text);
    r->local = local;
    r->cmd = SMTP_CLIENT_CMD_NONE;
}

static void result_from_reply(struct smtp_client_result *r, const struct smtp_reply *rep,
                              enum smtp_client_cmd cmd)
{
    smtp_client_result_set(r, rep->code, rep->enh, buf_slice(&rep->text), false);
    r->cmd = cmd;
}

/* The command an expected reply answers. */
static enum smtp_client_cmd exp_cmd(enum exp_kind k)
{
    static const enum smtp_client_cmd cmds[] = {
        [EXP_GREETING] = SMTP_CLIENT_CMD_GREETING, [EXP_EHLO] = SMTP_CLIENT_CMD_HELLO,
        [EXP_HELO] = SMTP_CLIENT_CMD_HELLO,        [EXP_STARTTLS] = SMTP_CLIENT_CMD_STARTTLS,
        [EXP_AUTH] = SMTP_CLIENT_CMD_AUTH,         [EXP_MAIL] = SMTP_CLIENT_CMD_MAIL,
        [EXP_RCPT] = SMTP_CLIENT_CMD_RCPT,         [EXP_DATA] = SMTP_CLIENT_CMD_DATA,
        [EXP_DATA_END] = SMTP_CLIENT_CMD_DATA,     [EXP_BDAT] = SMTP_CLIENT_CMD_DATA,
        [EXP_RSET] = SMTP_CLIENT_CMD_RSET,         [EXP_QUIT] = SMTP_CLIENT_CMD_QUIT,
        [EXP_TAKEOVER] = SMTP_CLIENT_CMD_NONE,
    };
    return cmds[k];
}

/* ---- timeouts and output ---- */

static void set_read_timeout(struct smtp_client *c, int64_t ms, const char *what)
{
    struct timeval rt = clock_timeval_ms(ms);
    struct timeval wt = clock_timeval_ms(c->p.data_block_timeout);
    bufferevent_set_timeouts(c->bev, &rt, &wt);
    c->waiting_for = what;
}

static void expect(struct smtp_client *c, enum exp_kind kind, size_t index)
{
    if (c->exp_n == SMTP_CLIENT_EXP_MAX)
        log_panic("smtp client: expectation queue overflow");
    c->exps[(c->exp_head + c->exp_n++) % SMTP_CLIENT_EXP_MAX] = (struct exp){kind, index};
}

static void send_cmd(struct smtp_client *c, enum exp_kind kind, size_t index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void send_cmd(struct smtp_client *c, enum exp_kind kind, size_t index, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    buf_append_cstr(&b, "\r\n");
    bufferevent_write(c->bev, b.data, b.len);
    explicit_bzero(b.data, b.len); /* AUTH PLAIN carries the password */
    buf_free(&b);
    expect(c, kind, index);
    int64_t t = kind == EXP_DATA                           ? c->p.data_init_timeout
                : kind == EXP_BDAT || kind == EXP_DATA_END ? c->p.data_done_timeout
                                                           : c->p.command_timeout;
    if (c->exp_n == 1)
        set_read_timeout(c, t, kind == EXP_DATA ? "DATA" : "command");
}

/* ---- finishing ---- */

static void fail_txn_rcpts(struct smtp_client_txn *t, const struct smtp_client_result *r, bool all)
{
    for (size_t i = 0; i < t->n_rcpts; i++) {
        struct smtp_client_result *rr = &t->rcpts[i].result;
        /* a recipient with a permanent or temporary RCPT refusal keeps it */
        if (all || rr->code == 0 || (rr->code >= 200 && rr->code < 300)) {
            smtp_client_result_set(rr, r->code, r->enh, buf_slice(&r->text), r->local);
            rr->cmd = r->cmd;
        }
    }
}

static void txn_finish(struct smtp_client *c)
{
    struct smtp_client_txn *t = c->txn_head;
    c->txn_head = t->next;
    if (c->txn_head == NULL)
        c->txn_tail = NULL;
    t->next = NULL;
    t->tls = c->tls_active;
    c->txn_started = false;
    c->in_callback = true;
    c->txn_cb(c, t, c->arg);
    c->in_callback = false;
}

/* An all-or-none transaction with a refused recipient: the message is not
 * sent; the accepted recipients say so. */
static void txn_abandon(struct smtp_client *c)
{
    struct smtp_client_txn *t = c->txn_head;
    for (size_t i = 0; i < t->n_rcpts; i++) {
        struct smtp_client_result *rr = &t->rcpts[i].result;
        if (rr->code == 0 || (rr->code >= 200 && rr->code < 300))
            smtp_client_result_set(
                rr, 451, "4.5.3",
                SLICE_LIT("not sent: another recipient was refused (all or none)"), true);
    }
    txn_finish(c);
}

static void done_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_client *c = arg;
    if (!c->done_called) {
        c->done_called = true;
        c->done_cb(c, c->arg);
    }
}

/* Fails every queued transaction with the session's error (a local 4.4.2
 * when the session ended without one). */
static void fail_queued(struct smtp_client *c)
{
    if (c->txn_head != NULL && c->error.code == 0) {
        c->error.code = 421;
        snprintf(c->error.enh, sizeof(c->error.enh), "4.4.2");
        buf_append_cstr(&c->error.text, "session ended before the transaction completed");
        c->error.local = true;
    }
    while (c->txn_head != NULL) {
        fail_txn_rcpts(c->txn_head, &c->error, false);
        txn_finish(c);
    }
}

/* The session is over: fail what is left, close, and report (from a fresh
 * event, so the callback may free the client). */
static void session_end(struct smtp_client *c)
{
    if (c->stage == ST_DONE)
        return;
    c->stage = ST_DONE;
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    fail_queued(c);
    event_active(c->defer_ev, 0, 0);
}

static void session_fail(struct smtp_client *c, const char *enh, const char *fmt, ...)
{
    if (c->error.code == 0) {
        va_list ap;
        va_start(ap, fmt);
        c->error.code = enh[0] == '5' ? 554 : 421;
        snprintf(c->error.enh, sizeof(c->error.enh), "%s", enh);
        buf_vprintf(&c->error.text, fmt, ap);
        c->error.local = true;
        va_end(ap);
    }
    session_end(c);
}

/* A server reply ended the session (bad greeting, 421, failed EHLO...). */
static void session_fail_reply(struct smtp_client *c, const struct smtp_reply *r,
                               enum smtp_client_cmd cmd)
{
    if (c->error.code == 0)
        result_from_reply(&c->error, r, cmd);
    session_end(c);
}

/* ---- the transaction ---- */

static bool pipelining(const struct smtp_client *c)
{
    return c->caps.pipelining;
}

static void send_rcpt(struct smtp_client *c, size_t i)
{
    struct smtp_client_txn *t = c->txn_head;
    const struct smtp_client_rcpt *r = &t->rcpts[i];
    struct buf params = BUF_INIT;
    if (c->caps.dsn) {
        if (r->notify & SPOOL_NOTIFY_NEVER)
            buf_append_cstr(&params, " NOTIFY=NEVER");
        else if (r->notify != 0) {
            buf_append_cstr(&params, " NOTIFY=");
            const char *sep = "";
            if (r->notify & SPOOL_NOTIFY_SUCCESS)
                buf_printf(&params, "%sSUCCESS", sep), sep = ",";
            if (r->notify & SPOOL_NOTIFY_FAILURE)
                buf_printf(&params, "%sFAILURE", sep), sep = ",";
            if (r->notify & SPOOL_NOTIFY_DELAY)
                buf_printf(&params, "%sDELAY", sep);
        }
        if (r->orcpt != NULL && strchr(r->orcpt, ';') != NULL) {
            const char *semi = strchr(r->orcpt, ';');
            buf_append_cstr(&params, " ORCPT=");
            buf_append(&params, r->orcpt, (size_t)(semi - r->orcpt) + 1);
            smtp_xtext_encode(slice_from_cstr(semi + 1), &params);
        }
    }
    send_cmd(c, EXP_RCPT, i, "RCPT TO:<%s>%s", r->address, buf_cstr(&params));
    buf_free(&params);
}

static void send_data_or_bdat(struct smtp_client *c)
{
    struct smtp_client_txn *t = c->txn_head;
    if (c->caps.chunking) {
        struct buf cmd = BUF_INIT;
        buf_printf(&cmd, "BDAT %zu LAST\r\n", t->prefix.len + t->data.len);
        bufferevent_write(c->bev, cmd.data, cmd.len);
        buf_free(&cmd);
        if (t->prefix.len > 0)
            bufferevent_write(c->bev, t->prefix.ptr, t->prefix.len);
        bufferevent_write(c->bev, t->data.ptr, t->data.len);
        t->data_sent = true;
        expect(c, EXP_BDAT, 0);
        if (c->exp_n == 1)
            set_read_timeout(c, c->p.data_done_timeout, "end of data");
    } else {
        send_cmd(c, EXP_DATA, 0, "DATA");
    }
}

/* The prefix and the message, dot-stuffed, then the final dot (RFC 5321 4.5.2). */
static void send_body(struct smtp_client *c, struct slice prefix, struct slice d)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct dotstuff st = DOTSTUFF_INIT;
    dotstuff_evbuffer(&st, prefix, out);
    dotstuff_evbuffer(&st, d, out);
    dotstuff_end_evbuffer(&st, out);
}

/* An address that could break the command line (CR, LF, other controls, <>)
 * never reaches the wire: the spool's addresses were checked on the way in,
 * but the client does not rely on that. */
static bool address_ok(const char *a)
{
    size_t n = 0;
    for (; a[n] != '\0'; n++) {
        unsigned char ch = (unsigned char)a[n];
        if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>')
            return false;
    }
    return n <= 512;
}

/* Sends RCPTs (skipping those already failed locally) while the expectation
 * queue has room, then DATA/BDAT once all are out. */
static void pipeline_rcpts(struct smtp_client *c)
{
    struct smtp_client_txn *t = c->txn_head;
    while (c->rcpt_next < t->n_rcpts && c->exp_n < SMTP_CLIENT_EXP_MAX - 2) {
        size_t i = c->rcpt_next++;
        if (t->rcpts[i].result.code == 0) {
            send_rcpt(c, i);
            c->last_rcpt_sent = i;
        }
    }
    if (c->rcpt_next == t->n_rcpts && !t->all_or_none)
        send_data_or_bdat(c);
}

/* Without pipelining: the next RCPT to send; false when none is left. */
static bool send_next_rcpt(struct smtp_client *c)
{
    struct smtp_client_txn *t = c->txn_head;
    while (c->rcpt_next < t->n_rcpts) {
        size_t i = c->rcpt_next++;
        if (t->rcpts[i].result.code == 0) {
            send_rcpt(c, i);
            return true;
        }
    }
    return false;
}

static void txn_start(struct smtp_client *c)
{
    struct smtp_client_txn *t = c->txn_head;
    c->txn_started = true;
    struct timeval now;
    event_base_gettimeofday_cached(c->base, &now);
    t->started_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
    c->mail_failed = false;
    c->rcpt_next = 0;
    c->n_accepted = 0;
    t->peer_dsn = c->caps.dsn;
    t->data_sent = false;
    size_t n_ok = 0;
    for (size_t i = 0; i < t->n_rcpts; i++) {
        smtp_client_result_clear(&t->rcpts[i].result);
        if (!address_ok(t->rcpts[i].address)) {
            smtp_client_result_set(&t->rcpts[i].result, 553, "5.1.3",
                                   SLICE_LIT("bad recipient address syntax"), true);
            t->rcpts[i].result.cmd = SMTP_CLIENT_CMD_RCPT;
        } else
            n_ok++;
    }

    /* what the server cannot take fails here, before MAIL */
    struct smtp_client_result local = {.local = true, .cmd = SMTP_CLIENT_CMD_MAIL};
    buf_init(&local.text);
    if (t->all_or_none && n_ok > 0 && n_ok < t->n_rcpts) {
        buf_free(&local.text);
        txn_abandon(c);
        return;
    }
    if (n_ok == 0) {
        local.code = 554, snprintf(local.enh, sizeof(local.enh), "5.5.1");
        buf_append_cstr(&local.text, "no valid recipients");
    } else if (!address_ok(t->sender)) {
        local.code = 553, snprintf(local.enh, sizeof(local.enh), "5.1.7");
        buf_append_cstr(&local.text, "bad sender address syntax");
    } else if (c->caps.size > 0 && t->prefix.len + t->data.len > c->caps.size) {
        local.code = 552, snprintf(local.enh, sizeof(local.enh), "5.3.4");
        buf_printf(&local.text, "message size %zu exceeds the server's limit %llu",
                   t->prefix.len + t->data.len, (unsigned long long)c->caps.size);
    } else if (t->smtputf8 && !c->caps.smtputf8) {
        local.code = 553, snprintf(local.enh, sizeof(local.enh), "5.6.7");
        buf_append_cstr(&local.text, "the server does not support SMTPUTF8");
    } else if (t->body == SMTP_CLIENT_BINARYMIME && !(c->caps.binarymime && c->caps.chunking)) {
        local.code = 554, snprintf(local.enh, sizeof(local.enh), "5.6.3");
        buf_append_cstr(&local.text, "the server does not support BINARYMIME");
    }
    if (local.code != 0) {
        fail_txn_rcpts(t, &local, false);
        smtp_client_result_clear(&local);
        txn_finish(c);
        return;
    }
    buf_free(&local.text);

    struct buf params = BUF_INIT;
    if (c->caps.size_ext)
        buf_printf(&params, " SIZE=%zu", t->prefix.len + t->data.len);
    if (t->body == SMTP_CLIENT_8BITMIME && c->caps.eightbitmime)
        buf_append_cstr(&params, " BODY=8BITMIME");
    else if (t->body == SMTP_CLIENT_BINARYMIME)
        buf_append_cstr(&params, " BODY=BINARYMIME");
    if (t->smtputf8)
        buf_append_cstr(&params, " SMTPUTF8");
    if (c->caps.dsn) {
        if (t->ret_hdrs || t->ret_full)
            buf_append_cstr(&params, t->ret_hdrs ? " RET=HDRS" : " RET=FULL");
        if (t->envid != NULL) {
            buf_append_cstr(&params, " ENVID=");
            smtp_xtext_encode(slice_from_cstr(t->envid), &params);
        }
    }
    send_cmd(c, EXP_MAIL, 0, "MAIL FROM:<%s>%s", t->sender, buf_cstr(&params));
    buf_free(&params);
    if (pipelining(c))
        pipeline_rcpts(c); /* MAIL + RCPTs + DATA in one group (RFC 2920) */
}

/* After all RCPT replies of a non-pipelined (or over-long) transaction. */
static void after_rcpts(struct smtp_client *c)
{
    struct smtp_client_txn *t = c->txn_head;
    if (pipelining(c)) {
        if (c->rcpt_next < t->n_rcpts) {
            pipeline_rcpts(c); /* the next group; DATA/BDAT follow the last one */
            return;
        }
        if (!t->all_or_none)
            return; /* DATA/BDAT went with the last group */
    } else if (send_next_rcpt(c)) {
        return;
    }
    if (c->n_accepted > 0 && !c->mail_failed && (!t->all_or_none || c->n_accepted == t->n_rcpts)) {
        send_data_or_bdat(c);
    } else {
        send_cmd(c, EXP_RSET, 0, "RSET");
        if (t->all_or_none)
            txn_abandon(c);
        else
            txn_finish(c);
    }
}

/* Applies a DATA / end-of-data / BDAT reply to the accepted recipients. */
static void txn_data_result(struct smtp_client *c, const struct smtp_reply *r)
{
    struct smtp_client_txn *t = c->txn_head;
    for (size_t i = 0; i < t->n_rcpts; i++) {
        struct smtp_client_result *rr = &t->rcpts[i].result;
        if (rr->code >= 200 && rr->code < 300)
            result_from_reply(rr, r, SMTP_CLIENT_CMD_DATA);
    }
}

/* ---- the session ---- */

static void send_ehlo(struct smtp_client *c)
{
    send_cmd(c, EXP_EHLO, 0, "EHLO %s", c->p.helo_name);
}

/* What the policy asks of the server's certificate. */
static enum net_tls_verify tls_verify(const struct smtp_client *c)
{
    return c->p.tls == SMTP_TLS_VERIFY ? NET_TLS_VERIFY_NAME
           : c->p.tls == SMTP_TLS_DANE ? NET_TLS_VERIFY_DANE
                                       : NET_TLS_VERIFY_NONE;
}

/* STARTTLS said 220: the handshake starts; false with the reason in why. */
static bool start_tls(struct smtp_client *c, struct buf *why)
{
    const struct net_tls_client_peer peer = {.name = c->p.tls_servername,
                                             .verify = tls_verify(c),
                                             .tlsa = c->p.tlsa,
                                             .tlsa_len = c->p.tlsa_len};
    SSL *ssl = net_tls_client_ssl_new(c->p.tls_ctx, &peer, why);
    if (ssl == NULL)
        return false;
    /* the STARTTLS wall: nothing read before the handshake counts */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    smtp_reply_parser_reset(&c->parser);
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (tls == NULL) {
        SSL_free(ssl);
        buf_printf(why, "cannot make the TLS connection");
        return false;
    }
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
    c->bev = tls;
    bufferevent_setcb(tls, on_read, NULL, on_event, c);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
    set_read_timeout(c, c->p.command_timeout, "TLS handshake");
    c->stage = ST_TLS_HANDSHAKE;
    return true;
}

static void send_auth(struct smtp_client *c)
{
    struct buf b = BUF_INIT;
    if (c->caps.auth_plain) {
        struct buf raw = BUF_INIT;
        buf_append_byte(&raw, '\0');
        buf_append_cstr(&raw, c->p.auth_user);
        buf_append_byte(&raw, '\0');
        buf_append_cstr(&raw, c->p.auth_pass);
        base64_encode(raw.data, raw.len, &b);
        explicit_bzero(raw.data, raw.len);
        buf_free(&raw);
        c->auth_step = 2;
        send_cmd(c, EXP_AUTH, 0, "AUTH PLAIN %s", b.data);
    } else {
        c->auth_step = 0;
        send_cmd(c, EXP_AUTH, 0, "AUTH LOGIN");
    }
    explicit_bzero(b.data, b.len);
    buf_free(&b);
}

/* EHLO (or HELO) done: STARTTLS, AUTH, or ready for mail. */
static void after_hello(struct smtp_client *c)
{
    if (!c->tls_active && c->p.tls != SMTP_TLS_NONE && c->caps.starttls) {
        send_cmd(c, EXP_STARTTLS, 0, "STARTTLS");
        return;
    }
    if (!c->tls_active && c->p.tls >= SMTP_TLS_REQUIRE) {
        session_fail(c, "4.7.4", "TLS is required, but was not offered by the server");
        return;
    }
    if (c->p.auth_user != NULL) {
        if (!c->tls_active) {
            session_fail(c, "4.7.4", "AUTH is configured, but the session is not encrypted");
            return;
        }
        if (!c->caps.auth_plain && !c->caps.auth_login) {
            session_fail(c, "4.7.4", "the server offers no AUTH mechanism we use (PLAIN, LOGIN)");
            return;
        }
        send_auth(c);
        return;
    }
    c->ready = true;
    advance(c);
}

/* Sends what can be sent now: the next transaction, or QUIT. */
static void advance(struct smtp_client *c)
{
    if (!c->ready || c->stage != ST_SESSION || c->in_callback)
        return;
    while (c->exp_n == 0 && c->txn_head != NULL && !c->txn_started) {
        txn_start(c);
        if (c->stage != ST_SESSION)
            return;
    }
    if (c->exp_n == 0 && c->txn_head == NULL && c->takeover_line != NULL) {
        if (!c->tls_active) {
            session_fail(c, "4.7.4", "X-WHARF-LINKSTATE only over TLS");
            return;
        }
        if (!c->caps.wharf_linkstate) {
            session_fail(c, "5.5.1", "the server does not offer X-WHARF-LINKSTATE");
            return;
        }
        send_cmd(c, EXP_TAKEOVER, 0, "%s", c->takeover_line);
        free(c->takeover_line);
        c->takeover_line = NULL;
        return;
    }
    if (c->exp_n == 0 && c->txn_head == NULL && c->quit_wanted) {
        c->stage = ST_QUITTING;
        send_cmd(c, EXP_QUIT, 0, "QUIT");
    } else if (c->exp_n == 0 && c->txn_head == NULL) {
        bufferevent_set_timeouts(c->bev, NULL, NULL); /* idle: the caller decides */
    }
}

static void handle_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (c->exp_n == 0) {
        session_fail(c, "4.5.0", "unexpected reply from the server: %d", r->code);
        return;
    }
    struct exp e = c->exps[c->exp_head];
    c->exp_head = (c->exp_head + 1) % SMTP_CLIENT_EXP_MAX;
    c->exp_n--;
    bool ok = r->code >= 200 && r->code < 300;
    enum smtp_client_cmd cmd = exp_cmd(e.kind);
    if (r->code == 421 && e.kind != EXP_QUIT) {
        session_fail_reply(c, r, cmd);
        return;
    }
    struct smtp_client_txn *t = c->txn_head;
    switch (e.kind) {
    case EXP_GREETING:
        if (r->code != 220) {
            session_fail_reply(c, r, cmd);
            return;
        }
        send_ehlo(c);
        break;
    case EXP_EHLO:
        if (ok) {
            smtp_caps_parse(r, &c->caps);
            after_hello(c);
        } else if (!c->tls_active && c->p.tls < SMTP_TLS_REQUIRE && r->code >= 500) {
            send_cmd(c, EXP_HELO, 0, "HELO %s", c->p.helo_name);
        } else {
            session_fail_reply(c, r, cmd);
        }
        break;
    case EXP_HELO:
        if (!ok) {
            session_fail_reply(c, r, cmd);
            return;
        }
        memset(&c->caps, 0, sizeof(c->caps));
        after_hello(c);
        break;
    case EXP_STARTTLS:
        if (r->code == 220) {
            struct buf why = BUF_INIT;
            if (!start_tls(c, &why))
                session_fail(c, "4.7.5", "cannot start TLS: %s", buf_cstr(&why));
            buf_free(&why);
        } else if (c->p.tls >= SMTP_TLS_REQUIRE) {
            session_fail_reply(c, r, cmd);
        } else {
            c->caps.starttls = false; /* go on in clear text */
            after_hello(c);
        }
        break;
    case EXP_AUTH:
        if (r->code == 235) {
            c->ready = true;
            advance(c);
        } else if (r->code == 334 && c->auth_step < 2) {
            struct buf b = BUF_INIT;
            const char *v = c->auth_step == 0 ? c->p.auth_user : c->p.auth_pass;
            base64_encode(v, strlen(v), &b);
            buf_append_cstr(&b, "\r\n");
            c->auth_step++;
            bufferevent_write(c->bev, b.data, b.len);
            explicit_bzero(b.data, b.len);
            buf_free(&b);
            expect(c, EXP_AUTH, 0);
            set_read_timeout(c, c->p.command_timeout, "AUTH");
        } else {
            session_fail_reply(c, r, cmd);
        }
        break;
    case EXP_MAIL:
        if (!ok) {
            c->mail_failed = true;
            for (size_t i = 0; i < t->n_rcpts; i++)
                result_from_reply(&t->rcpts[i].result, r, cmd);
        }
        if (!pipelining(c)) {
            if (!ok)
                txn_finish(c);
            else if (!send_next_rcpt(c))
                log_panic("smtp client: a transaction without a valid recipient reached MAIL");
        }
        break;
    case EXP_RCPT:
        if (!c->mail_failed) {
            result_from_reply(&t->rcpts[e.index].result, r, cmd);
            if (ok)
                c->n_accepted++;
        }
        if (c->exp_n == 0 || (pipelining(c) && e.index == c->last_rcpt_sent))
            after_rcpts(c);
        break;
    case EXP_DATA:
        if (r->code == 354) {
            if (c->n_accepted == 0 || c->mail_failed) {
                /* pipelined DATA with no recipient: send nothing but the end */
                bufferevent_write(c->bev, ".\r\n", 3);
                expect(c, EXP_DATA_END, 1);
            } else {
                send_body(c, t->prefix, t->data);
                t->data_sent = true;
                expect(c, EXP_DATA_END, 0);
            }
            set_read_timeout(c, c->p.data_done_timeout, "end of data");
            break;
        }
        if (!c->mail_failed)
            txn_data_result(c, r);
        txn_finish(c);
        break;
    case EXP_DATA_END:
    case EXP_BDAT:
        if (!c->mail_failed && e.index == 0)
            txn_data_result(c, r);
        txn_finish(c);
        break;
    case EXP_RSET:
        break;
    case EXP_QUIT:
        session_end(c);
        return;
    case EXP_TAKEOVER: {
        if (!ok) {
            session_fail_reply(c, r, cmd);
            return;
        }
        /* the connection is the caller's now; nothing of ours stays on it */
        struct bufferevent *bev = c->bev;
        c->bev = NULL;
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        bufferevent_set_timeouts(bev, NULL, NULL);
        c->stage = ST_DONE;
        event_active(c->defer_ev, 0, 0);
        c->takeover_cb(c, bev, c->arg);
        return;
    }
    }
    if (c->stage == ST_DONE)
        return;
    if (c->exp_n > 0) {
        enum exp_kind k = c->exps[c->exp_head].kind;
        set_read_timeout(c,
                         k == EXP_DATA                        ? c->p.data_init_timeout
                         : k == EXP_DATA_END || k == EXP_BDAT ? c->p.data_done_timeout
                                                              : c->p.command_timeout,
                         k == EXP_DATA ? "DATA" : "command");
    }
    advance(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->stage == ST_SESSION || c->stage == ST_QUITTING) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        size_t used = 0;
        enum smtp_reply_status st = smtp_reply_parse(&c->parser, v.iov_base, v.iov_len, &used);
        evbuffer_drain(in, used);
        if (st == SMTP_REPLY_ERROR) {
            session_fail(c, "4.5.0", "malformed or over-long reply while waiting for %s",
                         c->waiting_for ? c->waiting_for : "a reply");
            return;
        }
        /* after a STARTTLS reply the stage is ST_TLS_HANDSHAKE: the loop ends
         * and the TLS bufferevent reads from here on */
        if (st == SMTP_REPLY_DONE)
            handle_reply(c, &c->parser.reply);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->stage == ST_CONNECTING) {
            c->stage = ST_SESSION;
            expect(c, EXP_GREETING, 0);
            set_read_timeout(c, c->p.greeting_timeout, "greeting");
            return;
        }
        if (c->stage == ST_TLS_HANDSHAKE) {
            struct buf why = BUF_INIT;
            if (!net_tls_client_check(bufferevent_openssl_get_ssl(bev), tls_verify(c), &why)) {
                session_fail(c, "4.7.5", "%s", buf_cstr(&why));
                buf_free(&why);
                return;
            }
            buf_free(&why);
            c->tls_active = true;
            c->stage = ST_SESSION;
            send_ehlo(c);
            return;
        }
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->stage == ST_CONNECTING)
            session_fail(c, "4.4.1", "connection timed out");
        else
            session_fail(c, "4.4.2", "timeout while waiting for %s",
                         (what & BEV_EVENT_WRITING) ? "the server to take data"
                                                    : (c->waiting_for ? c->waiting_for : "reply"));
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->stage == ST_QUITTING && c->exp_n <= 1) {
            session_end(c);
            return;
        }
        int err = EVUTIL_SOCKET_ERROR();
        unsigned long ssl_err = bufferevent_get_openssl_error(bev);
        if (c->stage == ST_CONNECTING)
            session_fail(c, "4.4.1", "connect failed: %s", evutil_socket_error_to_string(err));
        else if (c->stage == ST_TLS_HANDSHAKE)
            session_fail(c, "4.7.5", "TLS handshake failed: %s",
                         ssl_err ? ERR_reason_error_string(ssl_err) : "connection closed");
        else
            session_fail(c, "4.4.2", "lost connection while waiting for %s",
                         c->waiting_for ? c->waiting_for : "a reply");
    }
}

struct smtp_client *smtp_client_new(struct event_base *base, const struct smtp_client_params *p,
                                    smtp_client_txn_cb *txn_cb, smtp_client_done_cb *done_cb,
                                    void *arg)
{
    struct smtp_client *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->p = *p;
    if (c->p.connect_timeout <= 0)
        c->p.connect_timeout = 30000;
    if (c->p.greeting_timeout <= 0)
        c->p.greeting_timeout = 300000;
    if (c->p.command_timeout <= 0)
        c->p.command_timeout = 300000;
    if (c->p.data_init_timeout <= 0)
        c->p.data_init_timeout = 120000;
    if (c->p.data_block_timeout <= 0)
        c->p.data_block_timeout = 180000;
    if (c->p.data_done_timeout <= 0)
        c->p.data_done_timeout = 600000;
    if (c->p.helo_name == NULL)
        c->p.helo_name = "localhost";
    if (c->p.tls_ctx == NULL)
        c->p.tls = SMTP_TLS_NONE;
    c->txn_cb = txn_cb;
    c->done_cb = done_cb;
    c->arg = arg;
    smtp_reply_parser_init(&c->parser, p->reply_line_max, p->reply_lines_max);
    buf_init(&c->error.text);
    c->defer_ev = event_new(base, -1, 0, done_deferred, c);
    return c;
}

static void setup_bev(struct smtp_client *c, int fd)
{
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

void smtp_client_connect(struct smtp_client *c, const struct sockaddr *addr, socklen_t len)
{
    /* our own socket, bound to the source address of its family, when there is one */
    struct buf why = BUF_INIT;
    evutil_socket_t fd = net_addr_source_socket(addr->sa_family, c->p.source, c->p.n_source, &why);
    if (fd < 0 && why.len > 0) {
        setup_bev(c, -1);
        c->stage = ST_CONNECTING;
        session_fail(c, "4.4.1", "connect failed: %s", buf_cstr(&why));
        buf_free(&why);
        return;
    }
    buf_free(&why);
    setup_bev(c, fd);
    c->stage = ST_CONNECTING;
    struct timeval t = clock_timeval_ms(c->p.connect_timeout);
    bufferevent_set_timeouts(c->bev, &t, &t);
    if (bufferevent_socket_connect(c->bev, addr, (int)len) < 0)
        session_fail(c, "4.4.1", "connect failed: %s", strerror(errno));
}

void smtp_client_attach_fd(struct smtp_client *c, int fd)
{
    evutil_make_socket_nonblocking(fd);
    setup_bev(c, fd);
    c->stage = ST_CONNECTING;
    on_event(c->bev, BEV_EVENT_CONNECTED, c);
}

void smtp_client_send(struct smtp_client *c, struct smtp_client_txn *t)
{
    t->next = NULL;
    for (size_t i = 0; i < t->n_rcpts; i++)
        if (t->rcpts[i].result.text.data == NULL)
            buf_init(&t->rcpts[i].result.text);
    if (c->txn_tail)
        c->txn_tail->next = t;
    else
        c->txn_head = t;
    c->txn_tail = t;
    if (c->stage == ST_DONE) {
        fail_queued(c);
        return;
    }
    advance(c);
}

void smtp_client_linkstate(struct smtp_client *c, const char *line, smtp_client_takeover_cb *cb)
{
    free(c->takeover_line);
    c->takeover_line = xstrdup(line);
    c->takeover_cb = cb;
    advance(c);
}

void smtp_client_quit(struct smtp_client *c)
{
    c->quit_wanted = true;
    advance(c);
}

void smtp_client_free(struct smtp_client *c)
{
    if (c == NULL)
        return;
    if (c->stage != ST_DONE) {
        session_fail(c, "4.3.0", "delivery cancelled");
    }
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    event_free(c->defer_ev);
    free(c->takeover_line);
    smtp_reply_parser_free(&c->parser);
    buf_free(&c->error.text);
    free(c);
}

const struct smtp_client_result *smtp_client_error(const struct smtp_client *c)
{
    return c->error.code != 0 ? &c->error : NULL;
}

const struct smtp_caps *smtp_client_caps(const struct smtp_client *c)
{
    return &c->caps;
}

bool smtp_client_tls_active(const struct smtp_client *c)
{
    return c->tls_active;
}
