/*
 * dsn.c - builds delivery status notifications (see dsn.h).
 * Writes text only; never sends, spools or decides whether a report is owed
 * beyond NOTIFY (the queue loop does that). Peer-supplied text is sanitised
 * before it reaches a header field.
 */
#include "mta/dsn.h"

#include "base/date.h"

#include "spool/spool.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Longest diagnostic or other free-text field value we copy; RFC 5322 2.1.1
 * limits a line to 998 characters, and a report needs no more. */
#define DSN_FIELD_MAX 900

bool dsn_wanted(const char *sender, unsigned notify, enum dsn_action action)
{
    if (sender == NULL || sender[0] == '\0')
        return false;
    if (notify & SPOOL_NOTIFY_NEVER)
        return false;
    if (notify == 0)
        notify = SPOOL_NOTIFY_FAILURE | SPOOL_NOTIFY_DELAY;
    switch (action) {
    case DSN_ACTION_FAILED:
        return (notify & SPOOL_NOTIFY_FAILURE) != 0;
    case DSN_ACTION_DELAYED:
        return (notify & SPOOL_NOTIFY_DELAY) != 0;
    case DSN_ACTION_DELIVERED:
    case DSN_ACTION_RELAYED:
    case DSN_ACTION_EXPANDED:
        return (notify & SPOOL_NOTIFY_SUCCESS) != 0;
    }
    return false;
}

/* Appends s with controls (and DEL) turned into spaces, cut at DSN_FIELD_MAX. */
static void append_clean(struct buf *out, const char *s)
{
    size_t n = 0;
    for (; s != NULL && *s != '\0' && n < DSN_FIELD_MAX; s++, n++) {
        unsigned char c = (unsigned char)*s;
        buf_append_byte(out, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

static const char *action_name(enum dsn_action a)
{
    switch (a) {
    case DSN_ACTION_FAILED:
        return "failed";
    case DSN_ACTION_DELAYED:
        return "delayed";
    case DSN_ACTION_DELIVERED:
        return "delivered";
    case DSN_ACTION_RELAYED:
        return "relayed";
    case DSN_ACTION_EXPANDED:
        return "expanded";
    }
    return "failed";
}

static const char *default_status(enum dsn_action a)
{
    return a == DSN_ACTION_FAILED ? "5.0.0" : a == DSN_ACTION_DELAYED ? "4.0.0" : "2.0.0";
}

/* The end of the header section: offset just after the empty line, or the
 * whole message when there is none. */
static size_t header_end(struct slice m)
{
    if (m.len >= 2 && m.ptr[0] == '\r' && m.ptr[1] == '\n')
        return 2;
    for (size_t i = 0; i + 3 < m.len; i++)
        if (memcmp(m.ptr + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return m.len;
}

static bool contains(struct slice hay, const char *needle)
{
    size_t n = strlen(needle);
    return n <= hay.len && memmem(hay.ptr, hay.len, needle, n) != NULL;
}

static bool is_ascii(const char *s)
{
    for (; s != NULL && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

int dsn_build(const struct dsn_report *r, struct buf *out)
{
    if (r->sender == NULL || r->sender[0] == '\0' || r->n_rcpts == 0)
        return -1;
    enum dsn_action kind = r->rcpts[0].action;
    bool utf8 = !is_ascii(r->sender) || !is_ascii(r->envid);
    for (size_t i = 0; i < r->n_rcpts; i++)
        utf8 = utf8 || !is_ascii(r->rcpts[i].address) || !is_ascii(r->rcpts[i].orcpt);

    /* A boundary that cannot occur in the returned message. */
    struct buf boundary = BUF_INIT;
    for (unsigned n = 0;; n++) {
        buf_reset(&boundary);
        buf_printf(&boundary, "=_wharf_dsn_%s_%lld_%u", r->queue_id, (long long)r->now, n);
        if (!contains(r->original, buf_cstr(&boundary)))
            break;
    }
    const char *b = buf_cstr(&boundary);

    const char *subject = kind == DSN_ACTION_FAILED    ? "Undelivered Mail Returned to Sender"
                          : kind == DSN_ACTION_DELAYED ? "Delayed Mail (still being retried)"
                                                       : "Successful Mail Delivery Report";
    buf_append_cstr(out, "From: Mail Delivery System <MAILER-DAEMON@");
    append_clean(out, r->reporting_mta);
    buf_append_cstr(out, ">\r\nTo: <");
    append_clean(out, r->sender);
    buf_printf(out, ">\r\nSubject: %s\r\nDate: ", subject);
    date_rfc5322_append(r->now, out);
    buf_printf(out, "\r\nMessage-ID: <%s.%lld.dsn@", r->queue_id, (long long)r->now);
    append_clean(out, r->reporting_mta);
    buf_printf(out,
               ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/report; report-type=delivery-status;\r\n"
               "\tboundary=\"%s\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n",
               b);

    /* 1. the human-readable part */
    buf_printf(out,
               "--%s\r\nContent-Description: Notification\r\n"
               "Content-Type: text/plain; charset=%s\r\n\r\n",
               b, utf8 ? "utf-8" : "us-ascii");
    buf_append_cstr(out, "This is the mail system at host ");
    append_clean(out, r->reporting_mta);
    buf_append_cstr(out, ".\r\n\r\n");
    if (kind == DSN_ACTION_FAILED)
        buf_append_cstr(out, "I'm sorry to have to inform you that your message could not\r\n"
                             "be delivered to one or more recipients. It's attached below.\r\n");
    else if (kind == DSN_ACTION_DELAYED)
        buf_append_cstr(out, "Your message could not be delivered yet. The mail system\r\n"
                             "will go on trying; you do not need to send it again.\r\n");
    else
        buf_append_cstr(out, "Your message was delivered to the recipients below, as you\r\n"
                             "asked with a delivery status notification request.\r\n");
    for (size_t i = 0; i < r->n_rcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        buf_append_cstr(out, "\r\n<");
        append_clean(out, rc->address);
        buf_append_cstr(out, ">: ");
        append_clean(out, rc->diagnostic ? rc->diagnostic : action_name(rc->action));
        buf_append_cstr(out, "\r\n");
    }
    buf_append_cstr(out, "\r\n");

    /* 2. the machine-readable part (RFC 3464 2.2, 2.3) */
    buf_printf(out, "--%s\r\nContent-Description: Delivery report\r\nContent-Type: %s\r\n\r\n", b,
               utf8 ? "message/global-delivery-status" : "message/delivery-status");
    buf_append_cstr(out, "Reporting-MTA: dns; ");
    append_clean(out, r->reporting_mta);
    buf_append_cstr(out, "\r\nX-Wharf-Queue-ID: ");
    append_clean(out, r->queue_id);
    if (r->envid != NULL) {
        buf_append_cstr(out, "\r\nOriginal-Envelope-Id: ");
        append_clean(out, r->envid);
    }
    buf_append_cstr(out, "\r\nArrival-Date: ");
    date_rfc5322_append(r->arrival, out);
    buf_append_cstr(out, "\r\n");
    for (size_t i = 0; i < r->n_rcpts; i++) {
        const struct dsn_rcpt *rc = &r->rcpts[i];
        /* RFC 6533 3.2: a non-ASCII address is of type utf-8 */
        buf_append_cstr(out, is_ascii(rc->address) ? "\r\nFinal-Recipient: rfc822; "
                                                   : "\r\nFinal-Recipient: utf-8; ");
        append_clean(out, rc->address);
        if (rc->orcpt != NULL && strchr(rc->orcpt, ';') != NULL) {
            buf_append_cstr(out, "\r\nOriginal-Recipient: ");
            append_clean(out, rc->orcpt);
        }
        buf_printf(out, "\r\nAction: %s\r\nStatus: ", action_name(rc->action));
        append_clean(out, rc->status ? rc->status : default_status(rc->action));
        if (rc->remote_mta != NULL) {
            buf_append_cstr(out, "\r\nRemote-MTA: dns; ");
            append_clean(out, rc->remote_mta);
        }
        if (rc->diagnostic != NULL) {
            buf_append_cstr(out, "\r\nDiagnostic-Code: smtp; ");
            append_clean(out, rc->diagnostic);
        }
        if (rc->last_attempt != 0) {
            buf_append_cstr(out, "\r\nLast-Attempt-Date: ");
            date_rfc5322_append(rc->last_attempt, out);
        }
        if (rc->action == DSN_ACTION_DELAYED && rc->will_retry_until != 0) {
            buf_append_cstr(out, "\r\nWill-Retry-Until: ");
            date_rfc5322_append(rc->will_retry_until, out);
        }
        buf_append_cstr(out, "\r\n");
    }
    buf_append_cstr(out, "\r\n");

    /* 3. the original: whole (RET=FULL or not given, small enough) or its header */
    bool full = !r->ret_hdrs && r->original.len <= r->return_max;
    size_t len = full ? r->original.len : header_end(r->original);
    buf_printf(out, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n\r\n", b,
               full ? "Undelivered Message" : "Undelivered Message Headers",
               full ? (utf8 ? "message/global" : "message/rfc822")
                    : (utf8 ? "message/global-headers" : "text/rfc822-headers"));
    buf_append(out, r->original.ptr, len);
    if (len < 2 || memcmp(r->original.ptr + len - 2, "\r\n", 2) != 0)
        buf_append_cstr(out, "\r\n");
    buf_printf(out, "\r\n--%s--\r\n", b);
    buf_free(&boundary);
    return 0;
}
