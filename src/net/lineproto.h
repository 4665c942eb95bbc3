/*
 * lineproto.h - the skeleton every line-protocol session shares (smtp, pop3,
 * imap; nntp and ManageSieve next): reply lines, the count of bad commands
 * that ends a session, and the STARTTLS wall. The dot-stuffed writer is
 * dotstuff.h; the login flow is auth/auth_login.h.
 *
 * A session embeds a struct line_session and keeps its own wire syntax: it
 * formats the text of each reply and names, in too_many(), the goodbye it
 * says when a client sends too many bad commands.
 *
 * Must never: keep a session open past max_errors counted errors, or run a
 * byte received before a STARTTLS handshake under TLS (net_conn_starttls
 * discards it, and the protocol resets its state in tls_ready).
 */
#ifndef WHARF_NET_LINEPROTO_H
#define WHARF_NET_LINEPROTO_H

#include "net/net.h"

#include <stdarg.h>
#include <stdbool.h>

struct line_session {
    struct net_conn *c;
    unsigned errors;     /* counted errors (a protocol may reset them, as IMAP does) */
    unsigned max_errors; /* at this count too_many() runs and the connection closes */
    /* Says goodbye in the protocol's words (and logs); the kit closes after it. */
    void (*too_many)(void *arg);
    void *arg;
    bool closing; /* the connection is closing: say nothing more */
};

void line_session_init(struct line_session *ls, struct net_conn *c, unsigned max_errors,
                       void (*too_many)(void *arg), void *arg);

/* One reply line: fmt formatted, then CRLF. */
void line_reply(struct line_session *ls, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void line_vreply(struct line_session *ls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/*
 * An error reply that counts towards max_errors. Returns false when that
 * was one too many: too_many() has run and the connection is closing.
 */
bool line_error(struct line_session *ls, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Counts one error whose reply was already written; the same rule. */
bool line_count_error(struct line_session *ls);
/* Closes after the output already written (QUIT, LOGOUT, a fatal error). */
void line_close(struct line_session *ls);

enum line_starttls {
    LINE_STARTTLS_STARTED,     /* the ready reply is out; tls_ready() or a close follows */
    LINE_STARTTLS_ACTIVE,      /* already under TLS: nothing written, refuse in your words */
    LINE_STARTTLS_UNAVAILABLE, /* not a STARTTLS service: nothing written, refuse */
    LINE_STARTTLS_FAILED,      /* no TLS context after the ready reply: logged, closing */
};

/*
 * The STARTTLS wall: when the service allows it, writes the ready reply
 * (fmt, then CRLF) and starts the handshake, which discards every byte the
 * client sent after the command (pipelined before TLS: never trusted).
 */
enum line_starttls line_starttls(struct line_session *ls, const char *ready_fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
