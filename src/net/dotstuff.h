/*
 * dotstuff.h - the dot-stuffed writer of the line protocols (RFC 5321
 * 4.5.2, RFC 1939 3, RFC 3977 3.1.1): a line of data that begins with "."
 * gets one more in front, and the data ends with CRLF "." CRLF. Used by the
 * POP3 RETR/TOP replies, the SMTP client's DATA (the mta) and `wharf
 * sendmail`; NNTP's article replies next.
 *
 * The writer streams: data may come in any number of pieces, split
 * anywhere (a "." after a piece that ended in LF is stuffed). It writes to a
 * struct buf or straight into an evbuffer (a bufferevent's output), copying
 * each byte once.
 *
 * Must never: let a data line that is "." alone reach the wire unstuffed
 * (it would end the message early: smuggling), or end the data without the
 * CRLF before the final dot.
 */
#ifndef WHARF_NET_DOTSTUFF_H
#define WHARF_NET_DOTSTUFF_H

#include "base/buf.h"

#include <event2/buffer.h>
#include <stdbool.h>

struct dotstuff {
    bool bol;  /* the next byte begins a line */
    bool crlf; /* what was written so far ends with CRLF (or nothing was written) */
    bool cr;   /* the last byte written was CR */
};

#define DOTSTUFF_INIT                                                                              \
    {                                                                                              \
        .bol = true, .crlf = true, .cr = false                                                     \
    }

/* Appends d, dot-stuffed. */
void dotstuff_buf(struct dotstuff *st, struct slice d, struct buf *out);
void dotstuff_evbuffer(struct dotstuff *st, struct slice d, struct evbuffer *out);
/* Ends the data: CRLF unless it ended with one, then "." CRLF. */
void dotstuff_end_buf(struct dotstuff *st, struct buf *out);
void dotstuff_end_evbuffer(struct dotstuff *st, struct evbuffer *out);
/* The whole of d, stuffed and ended. */
void dotstuff_message_buf(struct slice d, struct buf *out);

#endif
