/*
 * pop3_parse.h - POP3 command lines (RFC 1939, RFC 2449, RFC 2595, RFC 5034).
 *
 * The parser takes one complete command line (the network layer has already
 * cut it at CRLF and enforced POP3_MAX_LINE) and says which command it is and
 * where its arguments are. It never allocates and never fails on any input:
 * an unknown or malformed line comes back as an error with the text for the
 * -ERR reply. Arguments are slices into the line.
 */
#ifndef WHARF_POP3_POP3_PARSE_H
#define WHARF_POP3_POP3_PARSE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

/* RFC 2449 section 4: commands, CRLF included, are at most 255 octets. */
#define POP3_MAX_LINE 255
#define POP3_MAX_ARGS 3

enum pop3_cmd {
    POP3_CMD_USER,
    POP3_CMD_PASS,
    POP3_CMD_APOP,
    POP3_CMD_AUTH,
    POP3_CMD_STLS,
    POP3_CMD_CAPA,
    POP3_CMD_STAT,
    POP3_CMD_LIST,
    POP3_CMD_RETR,
    POP3_CMD_DELE,
    POP3_CMD_NOOP,
    POP3_CMD_RSET,
    POP3_CMD_QUIT,
    POP3_CMD_TOP,
    POP3_CMD_UIDL,
    POP3_CMD_UTF8,
    POP3_CMD_XWHARFPROXY, /* a front-end's hand-over: account client-address mac (net_proxy.h) */
    POP3_CMD__COUNT
};

struct pop3_command {
    enum pop3_cmd cmd;
    struct slice args[POP3_MAX_ARGS];
    size_t n_args;
};

/*
 * Parses line (without CRLF). Returns true with *out filled, or false with
 * *error_r set to a reply text (without "-ERR ").
 */
bool pop3_parse_command(struct slice line, struct pop3_command *out, const char **error_r);

/* Parses a message number or line count: 1*DIGIT without sign, <= max. */
bool pop3_parse_number(struct slice s, uint32_t max, uint32_t *out);

const char *pop3_cmd_name(enum pop3_cmd cmd);

#endif
