/*
 * dotread.h - the dot-terminated reader of the line protocols: SMTP's DATA
 * (and its BDAT chunks, counted: no dots, no end marker), NNTP's POST, IHAVE
 * and TAKETHIS. Resumable: bytes may come in any number of pieces, split
 * anywhere. The data ends only on <CRLF>.<CRLF> (RFC 5321 4.1.1.4, RFC 3977
 * 3.1.1); dot-stuffed lines are unstuffed; bare CR or LF are refused or made
 * CRLF, never an end; size, line and header-section limits are verdicts the
 * protocol words. The writer half is dotstuff.h.
 *
 * Must never: take "\n.\n", "\r\n.\n" or "\n.\r\n" for the end
 * (smuggling), or store bytes beyond max_size.
 */
#ifndef WHARF_NET_DOTREAD_H
#define WHARF_NET_DOTREAD_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dotread_newline {
    DOTREAD_NEWLINE_REJECT,    /* a bare CR or LF makes the message refused */
    DOTREAD_NEWLINE_NORMALIZE, /* bare CR or LF become CRLF; the end is still only CRLF.CRLF */
};

struct dotread_limits {
    uint64_t max_size; /* bytes stored; beyond: oversize, the rest is discarded */
    size_t max_line;   /* bytes per line, without CRLF */
    size_t max_header; /* bytes of the header section */
    enum dotread_newline newline;
};

struct dotread {
    struct dotread_limits lim;
    bool counted; /* length-counted chunks (SMTP BDAT): no dots, no end marker */
    bool binary;  /* BODY=BINARYMIME: bytes are taken as they are */
    int state;
    bool crlf_start; /* the current line began after a real CRLF */
    uint64_t size;   /* bytes stored (or that would have been) */
    size_t line_len;
    size_t header_len;
    bool in_header;
    /* Verdicts, sticky until reset. */
    bool bare_lf, bare_cr, oversize, line_too_long, header_too_big;
    struct buf *out;
};

enum dotread_result {
    DOTREAD_NEED_MORE,
    DOTREAD_DONE, /* <CRLF>.<CRLF> seen (not counted); *consumed_r ends after it */
};

void dotread_init(struct dotread *s, const struct dotread_limits *lim, bool counted, bool binary,
                  struct buf *out);
/* Feeds bytes; *consumed_r is how many were taken (all, unless DONE). */
enum dotread_result dotread_feed(struct dotread *s, const char *p, size_t n, size_t *consumed_r);
/* After the last counted chunk: a pending CR at the very end counts as bare. */
void dotread_finish(struct dotread *s);
/* Feeds what in holds (a connection's input) and drains what was taken: all
 * of it unless DONE, when the bytes after the end stay (dotread_evbuffer.c,
 * in the network library: libevent). */
struct evbuffer;
enum dotread_result dotread_feed_evbuffer(struct dotread *r, struct evbuffer *in);
/* True when the message must be refused (any verdict above). */
bool dotread_failed(const struct dotread *s);

#endif
