/*
 * pop3_session.c - POP3 sessions: AUTHORIZATION, TRANSACTION and UPDATE.
 *
 * Commands are handled one line at a time in arrival order, so pipelined
 * commands (RFC 2449 PIPELINING) are answered in order; while a credential
 * check is out at the auth process the connection stops reading. Every
 * malformed command gets "-ERR" with a clear text and the session goes on,
 * until pop3_max_errors.
 * Must never: accept USER/PASS or AUTH in plaintext unless configured, show
 * one user's maildrop to another, or delete anything unless QUIT is given in
 * the TRANSACTION state.
 */
#include "pop3/pop3_session.h"
#include "auth/auth_login.h"
#include "base/alloc.h"
#include "base/log.h"
#include "ipc/frame.h"
#include "net/dotstuff.h"
#include "net/lineproto.h"
#include "net/net_proxy.h"
#include "pop3/pop3_maildrop.h"
#include "pop3/pop3_parse.h"

#include <stdlib.h>
#include <string.h>

enum pop3_state {
    POP3_AUTHORIZATION,
    POP3_AUTH_PLAIN_WAIT, /* sent "+ ", waiting for the PLAIN response */
    POP3_AUTH_CHECK,      /* waiting for the auth process */
    POP3_TRANSACTION,
    POP3_CLOSING,
    POP3_PROXY, /* a front-end's session spliced to its home server */
};

struct pop3_session {
    struct pop3_server *srv;
    struct net_conn *conn;
    enum pop3_state state;
    struct buf line;
    char *user; /* from USER, before PASS */
    struct auth_login *login;
    struct line_session ls; /* replies, the error count, STLS (lineproto.h) */
    struct pop3_maildrop md;
    bool have_maildrop;
    /* Front-end and back-end (doc/frontend.md, net/net_proxy.h). */
    char *account;    /* signed in, waiting for the directory's home server */
    void *dir_handle; /* that lookup */
    struct net_proxy *proxy;
    int proxy_stage; /* 0: waiting for the home server's greeting, 1: hand-over sent */
    bool handover;   /* back-end: signed in by a front-end's hand-over */
    /* Counters for the disconnect log line. */
    unsigned retr, retr_bytes_k, top;
};

static void reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply(struct pop3_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line_vreply(&s->ls, fmt, ap);
    va_end(ap);
}

/* "-ERR text", counted towards pop3_max_errors. */
static void error_reply(struct pop3_session *s, const char *text)
{
    line_error(&s->ls, "-ERR %s", text);
}

/* pop3_max_errors reached (line_session's too_many). */
static void too_many_errors(void *arg)
{
    struct pop3_session *s = arg;
    reply(s, "-ERR Too many errors, closing connection");
    s->state = POP3_CLOSING;
}

static void send_capa(struct pop3_session *s)
{
    struct buf b = BUF_INIT;
    buf_append_cstr(&b, "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
                        "PIPELINING\r\nAUTH-RESP-CODE\r\nEXPIRE NEVER\r\n");
    if (s->state == POP3_AUTHORIZATION) {
        if (net_conn_can_starttls(s->conn))
            buf_append_cstr(&b, "STLS\r\n");
        if (auth_login_allowed(s->login)) {
            buf_append_cstr(&b, "USER\r\nSASL");
            auth_login_mechanisms(s->login, " ", &b);
            buf_append_cstr(&b, "\r\n");
        }
    }
    buf_append_cstr(&b, "IMPLEMENTATION Wharf\r\n.\r\n");
    net_conn_write(s->conn, b.data, b.len);
    buf_free(&b);
}

static void login_done(struct pop3_session *s, const char *account)
{
    struct buf err = BUF_INIT;
    enum pop3_open_result r = pop3_maildrop_open(&s->md, s->srv->store, s->srv->cfg, account, &err);
    if (r == POP3_OPEN_IN_USE) {
        log_info("login: user=<%s>, rip=%s: maildrop in use", account, net_conn_addr(s->conn));
        reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
        s->state = POP3_AUTHORIZATION;
    } else if (r == POP3_OPEN_TEMP) {
        log_error("login: user=<%s>, rip=%s: cannot open maildrop: %s", account,
                  net_conn_addr(s->conn), buf_cstr(&err));
        reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox now, try again later");
        s->state = POP3_AUTHORIZATION;
    } else {
        s->have_maildrop = true;
        s->state = POP3_TRANSACTION;
        size_t count;
        uint64_t bytes;
        pop3_maildrop_stat(&s->md, &count, &bytes);
        log_info("login: user=<%s>, rip=%s, %s", account, net_conn_addr(s->conn),
                 net_conn_is_tls(s->conn) ? "TLS" : "plaintext");
        reply(s, "+OK Logged in, %zu messages (%llu octets)", count, (unsigned long long)bytes);
    }
    buf_free(&err);
}

/* ---- front-end and back-end (doc/frontend.md) ---- */

static const char gone_line[] = "-ERR [SYS/TEMP] Your mailbox server went away; "
                                "reconnect in a moment\r\n";

/* The login ends in a temporary error; the session is in AUTHORIZATION again. */
static void home_refuse(struct pop3_session *s, const char *line)
{
    reply(s, "%s", line);
    free(s->account);
    s->account = NULL;
    s->handover = false;
    s->state = POP3_AUTHORIZATION;
    free(s->user);
    s->user = NULL;
    net_conn_resume(s->conn);
}

static void proxy_failed(void *arg, const char *why)
{
    struct pop3_session *s = arg;
    log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", s->account, net_conn_addr(s->conn),
                net_proxy_peer(s->proxy), why);
    net_proxy_free(s->proxy);
    s->proxy = NULL;
    /* IN-USE from the home server is the answer itself */
    home_refuse(s, strstr(why, "[IN-USE]") != NULL && strncmp(why, "-ERR ", 5) == 0
                       ? why
                       : "-ERR [SYS/TEMP] Your mailbox server is not available now, "
                         "try again later");
}

static void proxy_line(void *arg, const char *line)
{
    struct pop3_session *s = arg;
    if (s->proxy_stage == 0) {
        char mac[NET_PROXY_MAC_HEX + 1];
        if (strncmp(line, "+OK", 3) != 0) {
            proxy_failed(s, line);
            return;
        }
        if (!net_proxy_handover_mac(s->proxy, "pop3", s->account, net_conn_addr(s->conn), mac)) {
            proxy_failed(s, "cannot compute the hand-over MAC");
            return;
        }
        struct buf b = BUF_INIT;
        buf_printf(&b, "XWHARFPROXY %s %s %s", s->account, net_conn_addr(s->conn), mac);
        net_proxy_send_line(s->proxy, buf_cstr(&b));
        buf_free(&b);
        s->proxy_stage = 1;
        return;
    }
    if (strncmp(line, "+OK", 3) != 0) {
        proxy_failed(s, line);
        return;
    }
    log_info("proxy: user=<%s>, rip=%s: spliced to %s", s->account, net_conn_addr(s->conn),
             net_proxy_peer(s->proxy));
    reply(s, "%s", line);
    s->state = POP3_PROXY;
    free(s->user);
    s->user = NULL;
    net_proxy_splice(s->proxy, gone_line);
    net_conn_set_timeout(s->conn, 0); /* the home server keeps time */
    net_conn_resume(s->conn);
}

static const struct net_proxy_ops proxy_ops = {.line = proxy_line, .failed = proxy_failed};

static void home_ready(void *arg, const struct directory_answer *a)
{
    struct pop3_session *s = arg;
    s->dir_handle = NULL;
    const struct wharf_config *cfg = s->srv->cfg;
    bool ok = a->status == DIRECTORY_LOOKUP_OK && a->kind == DIRECTORY_LOCAL;
    if (s->handover) {
        if (!ok || !net_proxy_home_is_here(cfg, a->home)) {
            log_warning("login: user=<%s>, rip=%s: hand-over refused: %s", s->account,
                        net_conn_addr(s->conn),
                        ok ? "the account's home server is another one" : "no such account here");
            home_refuse(s, "-ERR [SYS/TEMP] This account's mailbox is not on this server");
            return;
        }
    } else if (ok && net_proxy_wanted(cfg, a->home)) {
        struct buf why = BUF_INIT;
        s->proxy = net_proxy_one_word(s->account)
                       ? net_proxy_connect(s->conn, a->home, (unsigned)cfg->frontend_pop3_port,
                                           &proxy_ops, s, &why)
                       : NULL;
        if (s->proxy == NULL) {
            log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", s->account,
                        net_conn_addr(s->conn), a->home, why.len ? buf_cstr(&why) : "bad name");
            home_refuse(s, "-ERR [SYS/TEMP] Your mailbox server is not available now, "
                           "try again later");
        } else {
            s->proxy_stage = 0; /* still paused, until the splice */
        }
        buf_free(&why);
        return;
    } else if (net_proxy_is_frontend(cfg)) {
        log_warning("login: user=<%s>, rip=%s: %s", s->account, net_conn_addr(s->conn),
                    a->status != DIRECTORY_LOOKUP_OK ? "the directory is not available"
                                                     : "no home server for this account");
        home_refuse(s, "-ERR [SYS/TEMP] Your mailbox server is not available now, "
                       "try again later");
        return;
    }
    s->state = POP3_AUTHORIZATION;
    login_done(s, s->account);
    free(s->account);
    s->account = NULL;
    free(s->user);
    s->user = NULL;
    net_conn_resume(s->conn);
}

/*
 * Signed in as account (the login kit, or a hand-over when via is the
 * front-end): on a server that takes part in front-ends, asks the directory
 * for the home server first (true: home_ready follows); else false, and the
 * maildrop opens at once as it always did.
 */
static bool login_home(struct pop3_session *s, const char *account, const char *via)
{
    const struct wharf_config *cfg = s->srv->cfg;
    if (via == NULL && !net_proxy_is_frontend(cfg) && cfg->frontend_secret[0] == '\0')
        return false;
    if (via != NULL)
        log_info("hand-over: user=<%s>, rip=%s, via front-end %s", account, net_conn_addr(s->conn),
                 via);
    free(s->account);
    s->account = xstrdup(account);
    s->state = POP3_AUTH_CHECK;
    net_conn_pause(s->conn);
    s->dir_handle =
        directory_client_lookup(s->srv->dir, DIRECTORY_Q_ACCOUNT, account, home_ready, s);
    return true;
}

/* XWHARFPROXY account client-address mac: a front-end's hand-over (net_proxy.h). */
static void cmd_handover(struct pop3_session *s, const struct pop3_command *c)
{
    char *acc = slice_strdup(c->args[0]), *addr = slice_strdup(c->args[1]),
         *mac = slice_strdup(c->args[2]);
    struct buf why = BUF_INIT;
    if (c->args[0].len > (size_t)s->srv->cfg->auth_max_credential_length ||
        !net_proxy_handover_check(s->conn, "pop3", acc, addr, mac, &why)) {
        log_warning("pop3: hand-over from %s refused: %s", net_conn_peer_addr(s->conn),
                    why.len ? buf_cstr(&why) : "account name too long");
        error_reply(s, "[AUTH] Hand-over refused");
    } else if (!net_conn_login(s->conn, "pop3", acc,
                               (unsigned)s->srv->cfg->pop3_max_userip_connections)) {
        reply(s,
              "-ERR [IN-USE] Too many connections of this user from this address "
              "(pop3_max_userip_connections=%lld)",
              s->srv->cfg->pop3_max_userip_connections);
    } else {
        s->handover = true;
        login_home(s, acc, net_conn_peer_addr(s->conn));
    }
    buf_free(&why);
    free(acc);
    free(addr);
    free(mac);
}

static void auth_done(void *arg, const struct auth_login_result *r)
{
    struct pop3_session *s = arg;
    s->state = POP3_AUTHORIZATION;
    switch (r->status) {
    case AUTH_LOGIN_OK:
        if (login_home(s, r->account, NULL))
            return; /* the directory answers first */
        login_done(s, r->account);
        break;
    case AUTH_LOGIN_USER_ADDR_FULL:
        /* IN-USE (RFC 2449): the credentials are right, the maildrop is busy. */
        reply(s,
              "-ERR [IN-USE] Too many connections of this user from this address "
              "(pop3_max_userip_connections=%lld)",
              s->srv->cfg->pop3_max_userip_connections);
        break;
    case AUTH_LOGIN_FAILED:
        reply(s, "-ERR [AUTH] Authentication failed");
        s->ls.errors++;
        break;
    case AUTH_LOGIN_RATELIMIT:
        reply(s, "-ERR [AUTH] Too many failed logins, try again later");
        break;
    case AUTH_LOGIN_TEMPFAIL:
        reply(s, "-ERR [SYS/TEMP] Authentication is not available now, try again later");
        break;
    case AUTH_LOGIN_CANCELLED:
        reply(s, "-ERR Authentication cancelled");
        return;
    case AUTH_LOGIN_MALFORMED: {
        struct buf t = BUF_INIT;
        buf_printf(&t, "[AUTH] Invalid PLAIN response: %s", sasl_status_text(r->sasl));
        error_reply(s, buf_cstr(&t));
        buf_free(&t);
        return;
    }
    }
    free(s->user);
    s->user = NULL;
    net_conn_resume(s->conn);
}

/* What the login kit asks next: a response line, or the wait for the auth process. */
static void auth_step(struct pop3_session *s, enum auth_login_step st)
{
    if (st == AUTH_LOGIN_CHALLENGED)
        s->state = POP3_AUTH_PLAIN_WAIT;
    else if (st == AUTH_LOGIN_CHECKING)
        s->state = POP3_AUTH_CHECK;
}

static void cmd_auth(struct pop3_session *s, const struct pop3_command *c)
{
    if (c->n_args == 0) {
        /* Widely used to list mechanisms (before RFC 5034's CAPA SASL). */
        struct buf b = BUF_INIT;
        buf_append_cstr(&b, "+OK");
        if (auth_login_allowed(s->login))
            auth_login_mechanisms(s->login, "\r\n", &b);
        buf_append_cstr(&b, "\r\n.");
        reply(s, "%s", buf_cstr(&b));
        buf_free(&b);
        return;
    }
    if (!auth_login_allowed(s->login)) {
        error_reply(s, "[AUTH] Plaintext authentication disallowed on non-secure connections; "
                       "use STLS first");
        return;
    }
    enum auth_login_step st =
        auth_login_begin(s->login, c->args[0], c->n_args == 2 ? c->args[1] : SLICE_NULL);
    if (st == AUTH_LOGIN_UNSUPPORTED) {
        error_reply(s, "Unsupported authentication mechanism");
        return;
    }
    auth_step(s, st);
}

/* How much of message TOP sends: the header, the blank line, then `lines` body lines. */
static size_t top_length(struct slice m, uint32_t lines)
{
    const char *p = m.ptr, *end = m.ptr + m.len;
    bool in_body = false;
    uint32_t body_lines = 0;
    while (p < end) {
        if (in_body && body_lines >= lines)
            break;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl + 1 : end;
        if (in_body)
            body_lines++;
        else if ((line_end - p == 2 && p[0] == '\r') || (line_end - p == 1 && p[0] == '\n'))
            in_body = true;
        p = line_end;
    }
    return (size_t)(p - m.ptr);
}

static void cmd_retr_or_top(struct pop3_session *s, const struct pop3_command *c, bool top)
{
    uint32_t num, lines = 0;
    if (!pop3_parse_number(c->args[0], UINT32_MAX, &num) ||
        (top && !pop3_parse_number(c->args[1], UINT32_MAX, &lines))) {
        error_reply(s, "Invalid number");
        return;
    }
    struct pop3_msg *m = pop3_maildrop_get(&s->md, num);
    if (m == NULL) {
        error_reply(s, "No such message");
        return;
    }
    struct buf data = BUF_INIT, err = BUF_INIT;
    int r =
        store_message_read_id(s->srv->store, s->md.account, s->md.inbox_id, m->uid, &data, &err);
    if (r != 0) {
        if (r < 0)
            log_error("user=<%s>: cannot read uid %u: %s", s->md.account, m->uid, buf_cstr(&err));
        reply(s, r < 0 ? "-ERR [SYS/TEMP] Cannot read the message now, try again later"
                       : "-ERR Message was expunged by another session");
        buf_free(&data);
        buf_free(&err);
        return;
    }
    struct buf out = BUF_INIT;
    buf_reserve(&out, data.len + data.len / 64 + 64);
    if (top)
        buf_append_cstr(&out, "+OK\r\n");
    else
        buf_printf(&out, "+OK %llu octets\r\n", (unsigned long long)m->size);
    /* TOP stops after the header and `lines` body lines. */
    size_t len = data.len;
    if (top)
        len = top_length(buf_slice(&data), lines);
    struct dotstuff st = DOTSTUFF_INIT;
    dotstuff_buf(&st, slice_make(data.data, len), &out);
    dotstuff_end_buf(&st, &out);
    net_conn_write(s->conn, out.data, out.len);
    if (top)
        s->top++;
    else {
        s->retr++;
        s->retr_bytes_k += (unsigned)(m->size / 1024);
    }
    buf_free(&out);
    buf_free(&data);
    buf_free(&err);
}

static void cmd_list_or_uidl(struct pop3_session *s, const struct pop3_command *c, bool uidl)
{
    struct buf b = BUF_INIT;
    if (c->n_args == 1) {
        uint32_t num;
        struct pop3_msg *m = NULL;
        if (!pop3_parse_number(c->args[0], UINT32_MAX, &num) ||
            (m = pop3_maildrop_get(&s->md, num)) == NULL) {
            error_reply(s, "No such message");
            buf_free(&b);
            return;
        }
        buf_printf(&b, "+OK %u ", num);
        if (uidl)
            pop3_maildrop_uidl(&s->md, m, &b);
        else
            buf_printf(&b, "%llu", (unsigned long long)m->size);
        buf_append(&b, "\r\n", 2);
    } else {
        size_t count;
        uint64_t bytes;
        pop3_maildrop_stat(&s->md, &count, &bytes);
        buf_printf(&b, "+OK %zu messages\r\n", count);
        for (size_t i = 0; i < s->md.n; i++) {
            const struct pop3_msg *m = &s->md.msgs[i];
            if (m->deleted)
                continue;
            buf_printf(&b, "%zu ", i + 1);
            if (uidl)
                pop3_maildrop_uidl(&s->md, m, &b);
            else
                buf_printf(&b, "%llu", (unsigned long long)m->size);
            buf_append(&b, "\r\n", 2);
        }
        buf_append(&b, ".\r\n", 3);
    }
    net_conn_write(s->conn, b.data, b.len);
    buf_free(&b);
}

static void quit(struct pop3_session *s)
{
    if (s->state == POP3_TRANSACTION) {
        /* UPDATE state: the marked deletions, all or none. */
        size_t deleted = 0;
        struct buf err = BUF_INIT;
        if (pop3_maildrop_commit(&s->md, s->srv->store, &deleted, &err) != 0) {
            log_error("user=<%s>: expunge failed: %s", s->md.account, buf_cstr(&err));
            reply(s, "-ERR [SYS/TEMP] Could not delete the messages; nothing was deleted");
        } else {
            if (deleted > 0) {
                struct ipc_event ev = {
                    .type = IPC_EVENT_MAILBOX_CHANGED,
                    .u.mailbox_changed = {.owner = s->md.account, .mailbox = STORE_INBOX}};
                net_worker_publish(s->srv->worker, &ev);
            }
            reply(s, "+OK Logging out, %zu messages deleted", deleted);
        }
        buf_free(&err);
    } else {
        reply(s, "+OK Logging out");
    }
    s->state = POP3_CLOSING;
    line_close(&s->ls);
}

static void cmd_authorization(struct pop3_session *s, const struct pop3_command *c)
{
    switch (c->cmd) {
    case POP3_CMD_USER:
        if (!auth_login_allowed(s->login)) {
            error_reply(s, "[AUTH] Plaintext authentication disallowed on non-secure "
                           "connections; use STLS first");
            return;
        }
        if (c->args[0].len > (size_t)s->srv->cfg->auth_max_credential_length) {
            error_reply(s, "User name too long");
            return;
        }
        free(s->user);
        s->user = slice_strdup(c->args[0]);
        reply(s, "+OK");
        return;
    case POP3_CMD_PASS: {
        if (s->user == NULL) {
            error_reply(s, "USER first");
            return;
        }
        auth_step(s, auth_login_password(s->login, slice_from_cstr(s->user), c->args[0]));
        return;
    }
    case POP3_CMD_AUTH:
        cmd_auth(s, c);
        return;
    case POP3_CMD_APOP:
        error_reply(s, "APOP is not enabled on this server");
        return;
    case POP3_CMD_XWHARFPROXY:
        cmd_handover(s, c);
        return;
    case POP3_CMD_STLS:
        switch (line_starttls(&s->ls, "+OK Begin TLS negotiation now")) {
        case LINE_STARTTLS_ACTIVE:
            error_reply(s, "Already using TLS");
            return;
        case LINE_STARTTLS_UNAVAILABLE:
            error_reply(s, "STLS is not available on this port");
            return;
        case LINE_STARTTLS_FAILED:
            s->state = POP3_CLOSING;
            return;
        case LINE_STARTTLS_STARTED:
            return;
        }
        return;
    default:
        error_reply(s, "Not allowed before login");
        return;
    }
}

static void cmd_transaction(struct pop3_session *s, const struct pop3_command *c)
{
    switch (c->cmd) {
    case POP3_CMD_STAT: {
        size_t count;
        uint64_t bytes;
        pop3_maildrop_stat(&s->md, &count, &bytes);
        reply(s, "+OK %zu %llu", count, (unsigned long long)bytes);
        return;
    }
    case POP3_CMD_LIST:
        cmd_list_or_uidl(s, c, false);
        return;
    case POP3_CMD_UIDL:
        cmd_list_or_uidl(s, c, true);
        return;
    case POP3_CMD_RETR:
        cmd_retr_or_top(s, c, false);
        return;
    case POP3_CMD_TOP:
        cmd_retr_or_top(s, c, true);
        return;
    case POP3_CMD_DELE: {
        uint32_t num;
        struct pop3_msg *m;
        if (!pop3_parse_number(c->args[0], UINT32_MAX, &num) ||
            (m = pop3_maildrop_get(&s->md, num)) == NULL) {
            error_reply(s, "No such message");
            return;
        }
        m->deleted = true;
        reply(s, "+OK Marked to be deleted");
        return;
    }
    case POP3_CMD_RSET:
        for (size_t i = 0; i < s->md.n; i++)
            s->md.msgs[i].deleted = false;
        reply(s, "+OK");
        return;
    default:
        error_reply(s, "Not allowed after login");
        return;
    }
}

static void handle_line(struct pop3_session *s, struct slice line)
{
    if (s->state == POP3_AUTH_PLAIN_WAIT) {
        s->state = POP3_AUTHORIZATION;
        auth_step(s, auth_login_line(s->login, line));
        return;
    }
    struct pop3_command c;
    const char *perr;
    if (!pop3_parse_command(line, &c, &perr)) {
        error_reply(s, perr);
        return;
    }
    switch (c.cmd) {
    case POP3_CMD_QUIT:
        quit(s);
        return;
    case POP3_CMD_NOOP:
        reply(s, "+OK");
        return;
    case POP3_CMD_CAPA:
        send_capa(s);
        return;
    case POP3_CMD_UTF8:
        error_reply(s, "UTF8 is not supported");
        return;
    default:
        break;
    }
    if (s->state == POP3_AUTHORIZATION)
        cmd_authorization(s, &c);
    else
        cmd_transaction(s, &c);
}

static void pop3_readable(void *arg)
{
    struct pop3_session *s = arg;
    if (s->state == POP3_PROXY) { /* spliced: the home server reads it */
        net_proxy_client_readable(s->proxy);
        return;
    }
    while (s->state != POP3_CLOSING && s->state != POP3_AUTH_CHECK) {
        size_t max = s->state == POP3_AUTH_PLAIN_WAIT ? AUTH_LOGIN_MAX_RESPONSE : POP3_MAX_LINE;
        enum net_line_result r = net_conn_read_line(s->conn, max, &s->line);
        if (r == NET_LINE_NEED_MORE)
            return;
        if (r == NET_LINE_TOO_LONG) {
            if (s->state == POP3_AUTH_PLAIN_WAIT) {
                auth_login_abort(s->login);
                s->state = POP3_AUTHORIZATION;
            }
            error_reply(s, "Command line too long");
            continue;
        }
        handle_line(s, buf_slice(&s->line));
        /* Wipe what may have been a password. */
        explicit_bzero(s->line.data, s->line.len);
    }
}

static void *pop3_open(struct net_conn *c, void *proto_arg)
{
    struct pop3_session *s = xcalloc(1, sizeof(*s));
    s->srv = proto_arg;
    s->conn = c;
    s->state = POP3_AUTHORIZATION;
    buf_init(&s->line);
    const struct wharf_config *cfg = s->srv->cfg;
    line_session_init(&s->ls, c, (unsigned)cfg->pop3_max_errors, too_many_errors, s);
    struct auth_login_params lp = {
        .service = "pop3",
        .continuation = "+ ",
        .mechs = AUTH_MECH_PLAIN,
        .plaintext = cfg->pop3_plaintext_auth,
        .max_credential = (size_t)cfg->auth_max_credential_length,
        .max_per_user_addr = (unsigned)cfg->pop3_max_userip_connections,
    };
    s->login = auth_login_new(s->srv->auth, c, &lp, auth_done, s);
    reply(s, "+OK %s POP3 server ready", s->srv->greeting_host);
    return s;
}

static void pop3_tls_ready(void *arg)
{
    struct pop3_session *s = arg;
    /* RFC 2595: after STLS, forget what the plaintext phase said. */
    free(s->user);
    s->user = NULL;
    s->state = POP3_AUTHORIZATION;
}

static void pop3_writable(void *arg)
{
    struct pop3_session *s = arg;
    if (s->state == POP3_PROXY)
        net_proxy_client_writable(s->proxy);
}

static void pop3_timeout(void *arg)
{
    struct pop3_session *s = arg;
    reply(s, "-ERR Disconnected for inactivity");
}

static void pop3_drain(void *arg)
{
    struct pop3_session *s = arg;
    if (s->state == POP3_PROXY) { /* its client reconnects, to the new workers */
        net_conn_close(s->conn, true);
        return;
    }
    /* Only sessions that are not in the middle of something are cut short. */
    if (s->state == POP3_AUTHORIZATION) {
        reply(s, "-ERR [SYS/TEMP] Server shutting down");
        s->state = POP3_CLOSING;
        line_close(&s->ls);
    }
}

static void pop3_closed(void *arg)
{
    struct pop3_session *s = arg;
    auth_login_free(s->login);
    net_proxy_free(s->proxy);
    if (s->dir_handle)
        directory_client_cancel(s->srv->dir, s->dir_handle);
    free(s->account);
    if (s->have_maildrop) {
        log_info("disconnect: user=<%s>, rip=%s, top=%u, retr=%u/%uk", s->md.account,
                 net_conn_addr(s->conn), s->top, s->retr, s->retr_bytes_k);
        pop3_maildrop_close(&s->md); /* no QUIT: nothing is deleted */
    }
    free(s->user);
    explicit_bzero(s->line.data, s->line.len);
    buf_free(&s->line);
    free(s);
}

const struct net_proto pop3_proto = {
    .open = pop3_open,
    .readable = pop3_readable,
    .tls_ready = pop3_tls_ready,
    .timeout = pop3_timeout,
    .drain = pop3_drain,
    .closed = pop3_closed,
    .writable = pop3_writable,
};
