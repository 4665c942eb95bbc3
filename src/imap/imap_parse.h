/*
 * imap_parse.h - IMAP4 command input (RFC 9051 section 9, RFC 3501, RFC 7888).
 *
 * Two stages:
 *   1. struct imap_reader, a resumable state machine fed with whatever bytes
 *      arrived, cuts the stream into complete commands: lines, and the
 *      literals {n} / {n+} announced at the end of a line. It checks every
 *      literal size against the limit BEFORE reading or allocating anything,
 *      and tells the session when to send "+ Ready" (synchronizing literal,
 *      size accepted). A command is kept in wire form (CRLFs inside, the final
 *      one removed).
 *   2. imap_parse_command turns a complete command into tag, name and an
 *      argument tree (atoms, strings, lists). It never fails silently: any
 *      malformed input gives an error text for the tagged BAD.
 * Must never: read past the input, allocate in proportion to an announced
 * literal size before its bytes arrive, or nest lists past IMAP_MAX_DEPTH.
 */
#ifndef WHARF_IMAP_IMAP_PARSE_H
#define WHARF_IMAP_IMAP_PARSE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits (the options imap_max_line_length and imap_max_literal_size in
 * options.def set the reader's; these bound the argument tree). */
#define IMAP_MAX_DEPTH 16    /* nesting of parenthesized lists */
#define IMAP_MAX_ARGS 100000 /* argument nodes in one command, lists included */
#define IMAP_MAX_TAG 64      /* bytes of a tag */
#define IMAP_MAX_LITERALS 64 /* literals in one command */

/* ---- stage 1: the reader ---- */

enum imap_read_result {
    IMAP_READ_NEED_MORE,       /* everything given was consumed; feed more */
    IMAP_READ_COMMAND,         /* a complete command is in imap_reader_command() */
    IMAP_READ_CONTINUE,        /* a synchronizing literal was accepted: send "+ ..." now */
    IMAP_READ_LINE_TOO_LONG,   /* the command is dropped; the rest of its line is skipped */
    IMAP_READ_LITERAL_TOO_BIG, /* {n} over the limit: command dropped, nothing to skip */
    IMAP_READ_LITERAL_FATAL,   /* {n+} over the limit (or too many literals): BAD, then close */
};

struct imap_reader {
    struct buf cmd;        /* the command so far, wire form */
    size_t line_start;     /* offset in cmd of the line being read */
    uint64_t literal_left; /* bytes of the current literal still to come */
    unsigned literals;     /* literals in this command */
    int state;             /* private */
    size_t max_line;
    uint64_t max_literal;
};

void imap_reader_init(struct imap_reader *r, size_t max_line, uint64_t max_literal);
void imap_reader_free(struct imap_reader *r);
/*
 * Consumes bytes from data (len) up to the next event and returns how many
 * were consumed; *res says which event (IMAP_READ_NEED_MORE when all were
 * consumed without one). After IMAP_READ_COMMAND the command stays available
 * until the next call.
 */
size_t imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
                        enum imap_read_result *res);
/* The complete command (after IMAP_READ_COMMAND), or what was read of a dropped one. */
struct slice imap_reader_command(const struct imap_reader *r);
/* Forgets the current command (wipes it: it may hold a password). */
void imap_reader_reset(struct imap_reader *r);
/*
 * The tag and the command name at the start of a (maybe incomplete) command,
 * for the reply to a dropped one. tag_r is "*" when there is no valid tag.
 */
void imap_peek_tag(struct slice cmd, struct slice *tag_r, struct slice *name_r);

/* ---- stage 2: the argument tree ---- */

enum imap_arg_type {
    IMAP_ARG_ATOM,   /* includes NIL, numbers, flags (\Seen), BODY[...]<...> */
    IMAP_ARG_STRING, /* quoted (unescaped) or literal */
    IMAP_ARG_LIST,
};

struct imap_arg {
    enum imap_arg_type type;
    bool literal;          /* a STRING that came as {n} (or ~{n}) */
    bool literal8;         /* it came as ~{n} (RFC 3516) */
    struct slice str;      /* ATOM and STRING: points into the command buffer */
    struct imap_arg *list; /* LIST: children */
    size_t n_list;
};

struct imap_command {
    struct slice tag;
    struct slice name; /* as sent; compare case-insensitively */
    struct imap_arg *args;
    size_t n_args;
    size_t n_nodes; /* private: counts against IMAP_MAX_ARGS */
};

/*
 * Parses a complete command in place (quoted strings are unescaped inside
 * cmd). Returns true, or false with *error_r set to the BAD text; the tag is
 * set whenever one could be read (else "*"). Free with imap_command_free.
 */
bool imap_parse_command(char *cmd, size_t len, struct imap_command *out, const char **error_r);
void imap_command_free(struct imap_command *c);

/* ---- helpers over arguments ---- */

/* astring: an ATOM or a STRING. */
bool imap_arg_astring(const struct imap_arg *a, struct slice *out);
bool imap_arg_is_atom(const struct imap_arg *a, const char *word); /* case-insensitive */
/* number (0 .. max) from an atom. */
bool imap_parse_number(struct slice s, uint64_t max, uint64_t *out);

/* ---- sequence sets (RFC 9051 sequence-set) ---- */

struct imap_seq_range {
    uint32_t lo, hi; /* 0 stands for "*"; lo <= hi once resolved */
};

struct imap_seqset {
    struct imap_seq_range *v;
    size_t n;
};

/* Parses "1,3:5,7:*". false when invalid ("$" too: callers check imap_set_is_saved first). */
bool imap_seqset_parse(struct slice s, struct imap_seqset *out);
void imap_seqset_free(struct imap_seqset *set);
/* True when n is in the set, "*" standing for star (the largest number in use). */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star);
/* Writes ascending numbers as a sequence set with ranges ("1:3,7"). */
void imap_seqset_write(struct buf *out, const uint32_t *v, size_t n);

#endif
