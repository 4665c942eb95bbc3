/*
 * lineproto.c - the line-protocol session skeleton (lineproto.h).
 *
 * Must never: write after the session decided to close, or miss counting
 * an error reply.
 */
#include "net/lineproto.h"

#include "base/log.h"

void line_session_init(struct line_session *ls, struct net_conn *c, unsigned max_errors,
                       void (*too_many)(void *arg), void *arg)
{
    *ls = (struct line_session){.c = c, .max_errors = max_errors, .too_many = too_many, .arg = arg};
}

void line_vreply(struct line_session *ls, const char *fmt, va_list ap)
{
    net_conn_vreply(ls->c, fmt, ap);
}

void line_reply(struct line_session *ls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    net_conn_vreply(ls->c, fmt, ap);
    va_end(ap);
}

void line_close(struct line_session *ls)
{
    ls->closing = true;
    net_conn_close(ls->c, true);
}

bool line_count_error(struct line_session *ls)
{
    if (++ls->errors < ls->max_errors)
        return true;
    if (ls->too_many)
        ls->too_many(ls->arg);
    line_close(ls);
    return false;
}

bool line_error(struct line_session *ls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    net_conn_vreply(ls->c, fmt, ap);
    va_end(ap);
    return line_count_error(ls);
}

enum line_starttls line_starttls(struct line_session *ls, const char *ready_fmt, ...)
{
    if (net_conn_is_tls(ls->c))
        return LINE_STARTTLS_ACTIVE;
    if (!net_conn_can_starttls(ls->c))
        return LINE_STARTTLS_UNAVAILABLE;
    va_list ap;
    va_start(ap, ready_fmt);
    net_conn_vreply(ls->c, ready_fmt, ap);
    va_end(ap);
    if (!net_conn_starttls(ls->c)) {
        log_error("STARTTLS offered without a TLS context");
        line_close(ls);
        return LINE_STARTTLS_FAILED;
    }
    return LINE_STARTTLS_STARTED;
}
