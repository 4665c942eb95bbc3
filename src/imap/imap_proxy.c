/*
 * imap_proxy.c - IMAP on a front-end and on a back-end (doc/frontend.md).
 *
 * Front-end: once the login kit has checked the credentials and the
 * directory has named the account's home server, the session is handed over
 * to that server over TLS (net/net_proxy.h) with
 *     W XWHARFPROXY "account" client-address mac
 * and the back-end's "W OK [CAPABILITY ...]" becomes the OK of the client's
 * own LOGIN or AUTHENTICATE; from then on bytes are spliced untouched.
 * Back-end: XWHARFPROXY signs the session in as the account, for the client
 * address it names, only when the kit accepts the hand-over (TLS, a peer in
 * frontend_networks, the MAC of frontend_secret on this very connection) and
 * only for an account homed here.
 * Must never: let the client name the back-end, open a mailbox on a server
 * with role = frontend, or sign anyone in from an unproven hand-over.
 */
#include "imap/imap_int.h"

#include "base/alloc.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

#define HANDOVER_TAG "W"

static const char gone_line[] = "* BYE [UNAVAILABLE] Your mailbox server went away; "
                                "reconnect in a moment\r\n";

/* The client's LOGIN/AUTHENTICATE answered with a temporary error; the session is as before. */
static void proxy_refuse(struct imap_session *s, const char *text)
{
    imap_printf(s, "%s NO [UNAVAILABLE] %s", s->tag, text);
    free(s->tag);
    s->tag = NULL;
    imap_login_undo(s);
    s->wait = IMAP_WAIT_NONE;
    net_conn_resume(s->conn);
}

static void proxy_failed(void *arg, const char *why)
{
    struct imap_session *s = arg;
    log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", s->account, net_conn_addr(s->conn),
                net_proxy_peer(s->proxy), why);
    net_proxy_free(s->proxy);
    s->proxy = NULL;
    proxy_refuse(s, "Your mailbox server is not available now, try again later");
}

static void proxy_line(void *arg, const char *line)
{
    struct imap_session *s = arg;
    if (s->proxy_stage == 0) {
        if (strncmp(line, "* OK", 4) != 0) {
            proxy_failed(s, line);
            return;
        }
        char mac[NET_PROXY_MAC_HEX + 1];
        if (!net_proxy_handover_mac(s->proxy, "imap", s->account, net_conn_addr(s->conn), mac)) {
            proxy_failed(s, "cannot compute the hand-over MAC");
            return;
        }
        struct buf b = BUF_INIT;
        buf_printf(&b, HANDOVER_TAG " XWHARFPROXY \"%s\" %s %s", s->account, net_conn_addr(s->conn),
                   mac);
        net_proxy_send_line(s->proxy, buf_cstr(&b));
        buf_free(&b);
        s->proxy_stage = 1;
        return;
    }
    if (strncmp(line, "* ", 2) == 0)
        return; /* untagged data before the hand-over's answer */
    if (strncmp(line, HANDOVER_TAG " OK ", 5) != 0) {
        proxy_failed(s, line);
        return;
    }
    log_info("proxy: user=<%s>, rip=%s: spliced to %s", s->account, net_conn_addr(s->conn),
             net_proxy_peer(s->proxy));
    /* The back-end's capabilities after login are the ones the client now talks to. */
    imap_printf(s, "%s OK %s", s->tag, line + 5);
    free(s->tag);
    s->tag = NULL;
    s->wait = IMAP_WAIT_PROXY;
    /* A spliced session parses nothing again: give back what the login needed. */
    auth_login_free(s->login);
    s->login = NULL;
    imap_reader_free(&s->reader);
    buf_free(&s->line);
    net_proxy_splice(s->proxy, gone_line);
    net_conn_set_timeout(s->conn, 0); /* the home server keeps time (IDLE, autologout) */
    net_conn_resume(s->conn);
}

static const struct net_proxy_ops proxy_ops = {.line = proxy_line, .failed = proxy_failed};

/* A name the hand-over line can carry in a quoted string. */
static bool quotable(const char *account)
{
    for (const unsigned char *p = (const unsigned char *)account; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            return false;
    }
    return true;
}

bool imap_proxy_login(struct imap_session *s, const struct directory_answer *a)
{
    const struct wharf_config *cfg = s->srv->cfg;
    bool ok = a->status == DIRECTORY_LOOKUP_OK && a->kind == DIRECTORY_LOCAL;
    if (s->handover) {
        /* A front-end sent this account here: it must live here. */
        if (ok && net_proxy_home_is_here(cfg, a->home))
            return false;
        log_warning("login: user=<%s>, rip=%s: hand-over refused: %s", s->account,
                    net_conn_addr(s->conn),
                    ok ? "the account's home server is another one" : "no such account here");
        proxy_refuse(s, "This account's mailbox is not on this server");
        return true;
    }
    if (ok && net_proxy_wanted(cfg, a->home)) {
        struct buf why = BUF_INIT;
        unsigned port = (unsigned)cfg->frontend_imap_port;
        s->proxy = quotable(s->account)
                       ? net_proxy_connect(s->conn, a->home, port, &proxy_ops, s, &why)
                       : NULL;
        if (s->proxy == NULL) {
            log_warning("proxy: user=<%s>, rip=%s: home server %s: %s", s->account,
                        net_conn_addr(s->conn), a->home, why.len ? buf_cstr(&why) : "bad name");
            buf_free(&why);
            proxy_refuse(s, "Your mailbox server is not available now, try again later");
            return true;
        }
        buf_free(&why);
        s->proxy_stage = 0;
        s->wait = IMAP_WAIT_AUTH; /* still paused, until the splice */
        return true;
    }
    if (net_proxy_is_frontend(cfg)) {
        log_warning("login: user=<%s>, rip=%s: %s", s->account, net_conn_addr(s->conn),
                    a->status != DIRECTORY_LOOKUP_OK ? "the directory is not available"
                                                     : "no home server for this account");
        proxy_refuse(s, "Your mailbox server is not available now, try again later");
        return true;
    }
    return false;
}

void imap_cmd_handover(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n)
{
    (void)uid;
    struct slice account, addr, mac;
    if (n != 3 || !imap_arg_astring(&args[0], &account) || !imap_arg_astring(&args[1], &addr) ||
        !imap_arg_astring(&args[2], &mac) || account.len == 0 ||
        account.len > (size_t)s->srv->cfg->auth_max_credential_length || addr.len > 64 ||
        mac.len != NET_PROXY_MAC_HEX) {
        imap_bad(s, tag, "Usage: XWHARFPROXY account address mac");
        return;
    }
    char *acc = slice_strdup(account), *a = slice_strdup(addr), *m = slice_strdup(mac);
    struct buf why = BUF_INIT;
    bool trusted = memchr(account.ptr, '\0', account.len) == NULL &&
                   net_proxy_handover_check(s->conn, "imap", acc, a, m, &why);
    if (!trusted) {
        log_warning("imap: hand-over from %s refused: %s", net_conn_peer_addr(s->conn),
                    buf_cstr(&why));
        imap_printf(s, "%.*s NO [AUTHENTICATIONFAILED] Hand-over refused", (int)tag.len, tag.ptr);
        s->ls.errors++;
    } else if (!net_conn_login(s->conn, "imap", acc,
                               (unsigned)s->srv->cfg->imap_max_userip_connections)) {
        imap_printf(s,
                    "%.*s NO [LIMIT] Too many connections of this user from this address "
                    "(imap_max_userip_connections=%lld); close one and try again",
                    (int)tag.len, tag.ptr, s->srv->cfg->imap_max_userip_connections);
    } else {
        free(s->tag);
        s->tag = slice_strdup(tag);
        s->handover = true;
        net_conn_pause(s->conn);
        imap_login_accepted(s, acc, net_conn_peer_addr(s->conn));
    }
    buf_free(&why);
    free(acc);
    free(a);
    free(m);
}
