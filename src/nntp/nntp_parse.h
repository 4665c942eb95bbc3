/*
 * nntp_parse.h - NNTP command lines and their argument forms (RFC 3977,
 * 4642, 4643, 4644): the command and its words, article ranges, message-ids,
 * wildmats and the dates of NEWGROUPS/NEWNEWS.
 *
 * The parser takes one complete command line (the network layer has cut it
 * at CRLF and enforced NNTP_MAX_LINE), never allocates and never fails on
 * any input: an unknown or malformed line comes back as 500 or 501 with a
 * text. Arguments are slices into the line.
 * Must never: read outside the line, or accept a message-id that could not
 * be written back on one line (controls, spaces, a ">" inside).
 */
#ifndef WHARF_NNTP_NNTP_PARSE_H
#define WHARF_NNTP_NNTP_PARSE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

/* RFC 3977 3.1: a command line is at most 512 octets with its CRLF. */
#define NNTP_MAX_LINE 510
#define NNTP_MAX_ARGS 4
/* RFC 3977 3.6: a message-id is 3 to 250 octets. */
#define NNTP_MSGID_MAX 250

enum nntp_cmd {
    NNTP_CMD_ARTICLE,
    NNTP_CMD_AUTHINFO,
    NNTP_CMD_BODY,
    NNTP_CMD_CHECK,
    NNTP_CMD_COMPRESS,
    NNTP_CMD_CAPABILITIES,
    NNTP_CMD_DATE,
    NNTP_CMD_GROUP,
    NNTP_CMD_HDR,
    NNTP_CMD_HEAD,
    NNTP_CMD_HELP,
    NNTP_CMD_IHAVE,
    NNTP_CMD_LAST,
    NNTP_CMD_LIST,
    NNTP_CMD_LISTGROUP,
    NNTP_CMD_MODE,
    NNTP_CMD_NEWGROUPS,
    NNTP_CMD_NEWNEWS,
    NNTP_CMD_NEXT,
    NNTP_CMD_OVER,
    NNTP_CMD_POST,
    NNTP_CMD_QUIT,
    NNTP_CMD_STARTTLS,
    NNTP_CMD_STAT,
    NNTP_CMD_TAKETHIS,
    NNTP_CMD_XHDR,
    NNTP_CMD_XOVER,
    NNTP_CMD__COUNT
};

struct nntp_command {
    enum nntp_cmd cmd;
    struct slice args[NNTP_MAX_ARGS];
    size_t n_args;
};

enum nntp_parse_result {
    NNTP_PARSE_OK,
    NNTP_PARSE_UNKNOWN, /* 500 */
    NNTP_PARSE_SYNTAX,  /* 501: *why_r says what */
};

/* Parses line (without CRLF). */
enum nntp_parse_result nntp_parse_command(struct slice line, struct nntp_command *out,
                                          const char **why_r);
const char *nntp_cmd_name(enum nntp_cmd cmd);

/* An article number: 1*16DIGIT, at most UINT32_MAX (the store's UIDs). */
bool nntp_parse_number(struct slice s, uint32_t *out);
/* A range: "N", "N-" (to the end: *hi_r UINT32_MAX) or "N-M". */
bool nntp_parse_range(struct slice s, uint32_t *lo_r, uint32_t *hi_r);
/* RFC 3977 3.6: "<", printable ASCII without ">", ">"; 3..250 octets. */
bool nntp_msgid_valid(struct slice s);
/* RFC 3977 4: a wildmat ("comp.*,!comp.x.*") matches s; the last pattern matching decides. */
bool nntp_wildmat(struct slice wildmat, struct slice s);
/* A wildmat that is well formed (no empty pattern, printable, no "\\" "[" "]"). */
bool nntp_wildmat_valid(struct slice wildmat);
/* NEWGROUPS/NEWNEWS date and time ("yymmdd" or "yyyymmdd", "hhmmss", optional "GMT"),
 * as unix seconds UTC; now: the current time, which picks the century of "yy". */
bool nntp_parse_datetime(struct slice date, struct slice time, int64_t now, int64_t *t_r);

/* ---- the client side (outbound feeds, nntp_feed.c) ---- */

/* A reply line of a server: three digits, then nothing or a space and text. */
bool nntp_parse_reply(struct slice line, int *code_r, struct slice *text_r);

/* One entry of nntp_feed_to: "NAME=nntp://ADDRESS:PORT/WILDMAT" (nntps: implicit TLS).
 * NAME is the peer's Path identity; ADDRESS an IPv4 address or a bracketed IPv6
 * one; the wildmat's patterns are separated by ";" (a configuration list splits
 * at commas), none: every group. Slices point into the entry. */
struct nntp_peer_spec {
    struct slice name;
    struct slice addr; /* "192.0.2.7:119", "[::1]:119", "news.example.net:119" */
    struct slice host; /* addr's host: an IP address (no brackets) or a host name */
    unsigned port;
    bool tls;
    struct slice groups; /* ";"-separated patterns, or empty */
};
bool nntp_peer_spec_parse(struct slice entry, struct nntp_peer_spec *out, const char **why_r);
/* The groups of a spec as a wildmat ("*" when none), into out. */
void nntp_peer_spec_wildmat(const struct nntp_peer_spec *p, struct buf *out);

#endif
