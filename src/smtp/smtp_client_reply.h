/*
 * smtp_client_reply.h - the SMTP client's reply parser: a resumable state
 * machine that reads one (possibly multi-line) reply from a server
 * (RFC 5321 4.2), and the EHLO keyword parser.
 *
 * Pure functions of their input: no I/O; memory bounded by the line and
 * line-count limits, so a hostile server cannot grow it. Must never accept
 * a reply whose lines disagree on the code, or read outside the bytes
 * handed in.
 */
#ifndef WHARF_SMTP_SMTP_CLIENT_REPLY_H
#define WHARF_SMTP_SMTP_CLIENT_REPLY_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; we default to more. */
#define SMTP_REPLY_LINE_MAX_DEFAULT 2048
#define SMTP_REPLY_LINES_MAX_DEFAULT 100

struct smtp_reply {
    int code;        /* 200..599 */
    char enh[16];    /* enhanced status "5.1.1" (RFC 3463) when the first line has one, else "" */
    struct buf text; /* the lines' texts (without code, separator and enhanced status
                        of the first line), joined with '\n' */
    size_t n_lines;
};

enum smtp_reply_status {
    SMTP_REPLY_MORE,  /* all bytes consumed, reply not complete */
    SMTP_REPLY_DONE,  /* one reply complete in p->reply; *used_r bytes consumed */
    SMTP_REPLY_ERROR, /* malformed or over a limit: end the session */
};

struct smtp_reply_parser {
    size_t line_max, lines_max;
    struct buf line; /* the current line so far (bounded by line_max) */
    struct smtp_reply reply;
    bool in_reply; /* at least one line of the current reply was read */
};

void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t line_max, size_t lines_max);
void smtp_reply_parser_free(struct smtp_reply_parser *p);
/* Forgets any partial reply (after STARTTLS: nothing from before counts). */
void smtp_reply_parser_reset(struct smtp_reply_parser *p);
/* Feeds bytes; stops after one complete reply. After DONE, the caller reads
 * p->reply and calls again with the rest. */
enum smtp_reply_status smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len,
                                        size_t *used_r);

/* What a server offers in its EHLO reply. */
struct smtp_caps {
    bool esmtp, pipelining, eightbitmime, smtputf8, chunking, binarymime, dsn, starttls,
        enhancedstatuscodes, auth_plain, auth_login;
    bool size_ext;        /* SIZE offered: send SIZE= */
    bool wharf_linkstate; /* X-WHARF-LINKSTATE: a Wharf bridgehead of an organization */
    uint64_t size;        /* SIZE n; 0: no limit given */
};

/* Parses the EHLO reply's lines (the first is the greeting name, skipped). */
void smtp_caps_parse(const struct smtp_reply *r, struct smtp_caps *caps_r);

/* RFC 3461 4 xtext encoding (for ORCPT and ENVID). */
void smtp_xtext_encode(struct slice in, struct buf *out);

#endif
