/*
 * imapc_parse.h - the client side of IMAP for `wharf import imap`: parses the
 * responses a remote server sends (untagged FETCH, LIST/LSUB, EXISTS, the
 * response codes of SELECT, tagged completions) and INTERNALDATE.
 *
 * A response is given as its text with every literal's bytes taken out (the
 * reader, cmd_import_imap.c, keeps "{N}" in the text and the N bytes, in
 * order, in lits[]). Pure functions over slices: never read past them, never
 * allocate except into the caller's buffers, and any bytes give a result or
 * a refusal (fuzzed: fuzz_imapc.c). The remote server is not trusted.
 */
#ifndef WHARF_CLI_IMAPC_PARSE_H
#define WHARF_CLI_IMAPC_PARSE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

/* At most this many literals in one response (a FETCH of BODY[] has one). */
#define IMAPC_LITERALS_MAX 8

struct imapc_resp {
    struct slice text;                     /* the response without its CRLF */
    struct slice lits[IMAPC_LITERALS_MAX]; /* literal contents, in order */
    size_t n_lits;
};

/* "* N FETCH (...)": what import needs of it. */
struct imapc_fetch {
    uint32_t seq, uid;
    bool has_flags;
    unsigned flags;       /* store_flag bits (\Recent and unknown \Flags dropped) */
    struct buf keywords;  /* space-separated keyword atoms (caller frees) */
    int64_t internaldate; /* 0 when absent or unreadable */
    bool has_body;
    struct slice body; /* BODY[] (a literal or quoted string) */
    uint64_t size;     /* RFC822.SIZE */
};

/* True when r is an untagged FETCH; fills f (keywords reset first). */
bool imapc_parse_fetch(const struct imapc_resp *r, struct imapc_fetch *f);

/* "* LIST (flags) DELIM NAME" (or LSUB): name into name_r (reset), delimiter (0 for NIL). */
bool imapc_parse_list(const struct imapc_resp *r, const char *kind, struct buf *name_r,
                      char *delim_r, bool *noselect_r);

/* "* N EXISTS" */
bool imapc_parse_exists(const struct imapc_resp *r, uint32_t *n_r);

/* A response code "[NAME n]" (UIDVALIDITY, UIDNEXT) anywhere in an OK response. */
bool imapc_parse_code_number(const struct imapc_resp *r, const char *name, uint32_t *n_r);

/*
 * A tagged completion of tag: returns 1 for OK, 0 for NO/BAD (the text into
 * text_r when not NULL), -1 when r is not tag's completion.
 */
int imapc_parse_tagged(const struct imapc_resp *r, const char *tag, struct slice *text_r);

#endif
