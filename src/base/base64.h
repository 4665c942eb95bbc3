/*
 * base64.h - the one base64 kit (RFC 4648 section 4 alphabet): encode,
 * strict decode for protocol fields (SASL responses) and lenient decode for
 * message bodies and encoded words (RFC 2045 6.8), on struct buf and slice.
 *
 * Every function appends to out and never fails (allocation aborts, see
 * alloc.h). Must never log what it encodes or decodes (passwords pass here).
 * IMAP's modified BASE64 for mailbox names is not this alphabet: see
 * src/mime/mutf7.c.
 */
#ifndef WHARF_BASE_BASE64_H
#define WHARF_BASE_BASE64_H

#include "base/buf.h"

#include <stddef.h>

enum base64_status {
    BASE64_OK,
    BASE64_BAD,      /* not strict base64 */
    BASE64_TOO_LONG, /* would decode to more than max_out bytes */
};

/* Appends the base64 of p[0..len) with padding and no line breaks. */
void base64_encode(const void *p, size_t len, struct buf *out);

/*
 * Appends the base64 of p[0..len) in lines of at most line_len characters
 * (a multiple of 4), each followed by eol (RFC 2045 6.8: 76 and "\r\n").
 * Nothing is appended for len 0.
 */
void base64_encode_lines(const void *p, size_t len, size_t line_len, const char *eol,
                         struct buf *out);

/*
 * Strict decode: the length is a multiple of 4, only the alphabet, "=" only
 * as the last one or two characters; no white space. Decodes to at most
 * max_out bytes (checked before anything is appended). On an error, out may
 * hold part of the data: the caller discards (wipes) it.
 */
enum base64_status base64_decode(struct slice in, size_t max_out, struct buf *out);

/*
 * Lenient decode for bodies and encoded words: ignores every byte outside
 * the alphabet (line breaks, folding white space), a "=" ends the current
 * quantum (dropping its leftover bits) and decoding goes on after it, as
 * concatenated base64 blocks are found in the wild. Never fails.
 */
void base64_decode_lenient(struct slice in, struct buf *out);
/* The length base64_decode_lenient would give, without decoding. */
size_t base64_decoded_len_lenient(struct slice in);

#endif
