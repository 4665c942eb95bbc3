/*
 * dotread_evbuffer.c - the dot reader fed from a connection's input
 * evbuffer (SMTP DATA, NNTP POST/IHAVE/TAKETHIS): the bytes it takes are
 * drained, those after the end stay for the command reader.
 * Must never: drain a byte after <CRLF>.<CRLF> (it belongs to the next command).
 */
#include "net/dotread.h"

#include <event2/buffer.h>

enum dotread_result dotread_feed_evbuffer(struct dotread *r, struct evbuffer *in)
{
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[16];
        int n = evbuffer_peek(in, -1, NULL, v, 16);
        size_t used = 0;
        bool done = false;
        for (int i = 0; i < n && i < 16 && !done; i++) {
            size_t took;
            done = dotread_feed(r, v[i].iov_base, v[i].iov_len, &took) == DOTREAD_DONE;
            used += took;
        }
        evbuffer_drain(in, used);
        if (done)
            return DOTREAD_DONE;
    }
    return DOTREAD_NEED_MORE;
}
