/*
 * smtp_parse.h - the SMTP server's parsers: one command line into a struct
 * smtp_cmd, addresses, xtext. The DATA/BDAT reader is the shared
 * dot-terminated reader, src/net/dotread.h.
 *
 * Pure functions of their input: no I/O, no allocation beyond the output
 * buffer, so they are unit tested and fuzzed.
 * Must never: accept an address with control characters or read outside
 * the bytes handed in.
 */
#ifndef WHARF_SMTP_SMTP_PARSE_H
#define WHARF_SMTP_SMTP_PARSE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets. */
#define SMTP_MAX_PATH 256
/* ESMTP parameters on one MAIL or RCPT (RFC 5321 allows any number; a handful exist). */
#define SMTP_MAX_PARAMS 16

enum smtp_verb {
    SMTP_UNKNOWN,
    SMTP_HELO,
    SMTP_EHLO,
    SMTP_MAIL,
    SMTP_RCPT,
    SMTP_DATA,
    SMTP_BDAT,
    SMTP_RSET,
    SMTP_NOOP,
    SMTP_QUIT,
    SMTP_VRFY,
    SMTP_EXPN,
    SMTP_HELP,
    SMTP_STARTTLS,
    SMTP_AUTH,
    SMTP_XWHARFPROXY,     /* a front-end's hand-over (doc/frontend.md) */
    SMTP_XWHARFLINKSTATE, /* "X-WHARF-LINKSTATE 1 SERVER": link state between bridgeheads
                           * (doc/routing.md); the session hands the connection to routing */
};

struct smtp_param {
    struct slice key;   /* "SIZE", "BODY", ... */
    struct slice value; /* empty (ptr NULL) when the keyword has no "=value" */
};

struct smtp_cmd {
    enum smtp_verb verb;
    const char *name; /* "MAIL", for logs and counters */
    struct slice arg; /* everything after the verb and one space */
    /* MAIL FROM / RCPT TO */
    struct slice path; /* the address without <> and source route; empty for <> */
    bool path_utf8;    /* the address has bytes >= 0x80 */
    struct smtp_param params[SMTP_MAX_PARAMS];
    size_t n_params;
    /* X-WHARF-LINKSTATE: the calling server's name, [A-Za-z0-9._-]{1,64} */
    struct slice ls_server;
    /* BDAT */
    uint64_t chunk_size;
    bool last;
};

enum smtp_parse_result {
    SMTP_PARSE_OK,
    SMTP_PARSE_UNKNOWN, /* 502 5.5.2 */
    SMTP_PARSE_SYNTAX,  /* 501 5.5.4 or 5.1.7: *why_r says what */
};

/* Parses one command line (without its CRLF). Slices point into line. */
enum smtp_parse_result smtp_cmd_parse(struct slice line, struct smtp_cmd *cmd, const char **why_r);

/* Checks "local@domain" (or "postmaster"), at most SMTP_MAX_PATH bytes; sets
 * *utf8 when bytes >= 0x80 appear. */
bool smtp_address_valid(struct slice a, bool *utf8);

/* How many fields name the header section of msg (CRLF line ends) has, counting up to max. */
size_t smtp_header_count(struct slice msg, const char *name, size_t max);
/* True when the header section of msg has a field name. */
bool smtp_header_present(struct slice msg, const char *name);

/* Decodes RFC 3461 xtext ("+2B" escapes) into out; false if malformed. */
bool smtp_xtext_decode(struct slice in, struct buf *out);

#endif
