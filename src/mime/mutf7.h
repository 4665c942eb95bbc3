/*
 * mutf7.h - modified UTF-7 mailbox names (RFC 3501 5.1.3) to and from the
 * UTF-8 names the store keeps: what IMAP4rev1 sessions speak (IMAP4rev2
 * sessions, RFC 9051 5.1, speak UTF-8 and never pass through here) and what
 * Dovecot and Courier write as Maildir++ folder names on disk (mailfmt.c).
 * Must never: accept a name two different encodings could produce (encoded
 * printable ASCII, an unterminated or empty shift, non-zero padding bits,
 * broken surrogates), so one mailbox has one name on the wire.
 */
#ifndef WHARF_MIME_MUTF7_H
#define WHARF_MIME_MUTF7_H

#include "base/buf.h"

#include <stdbool.h>

/* Appends the UTF-8 form of the modified UTF-7 name in to out; false (out
 * left as it was) when in is not strict modified UTF-7 or decodes to NUL. */
bool mutf7_decode(struct slice in, struct buf *out);
/* Appends the modified UTF-7 form of the UTF-8 name in to out; false (out
 * left as it was) when in is not valid UTF-8 or holds a NUL. */
bool mutf7_encode(struct slice in, struct buf *out);
/* Valid UTF-8 (RFC 3629: no overlongs, surrogates or code points past 10FFFF). */
bool mutf7_utf8_valid(struct slice in);
/*
 * A mailbox name may be created (RFC 9051 5.1: Net-Unicode, RFC 5198): valid
 * UTF-8 without control characters (C0, DEL, C1), in Normalization Form C.
 */
bool mutf7_net_unicode(struct slice in);

#endif
