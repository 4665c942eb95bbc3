/*
 * imap_compress.c - COMPRESS DEFLATE (RFC 4978) in the authenticated and
 * selected states: the tagged OK goes out as it is, everything after it is
 * compressed both ways by the network layer's DEFLATE stage
 * (net_conn_start_compress), which also flushes after each batch of replies.
 * Must never: compress the tagged OK itself, or start a second layer.
 */
#include "imap/imap_int.h"

void imap_cmd_compress(struct imap_session *s, struct slice tag, bool uid,
                       const struct imap_arg *args, size_t n)
{
    (void)uid;
    if (n != 1 || args[0].type != IMAP_ARG_ATOM) {
        imap_bad(s, tag, "Usage: COMPRESS DEFLATE");
        return;
    }
    if (!slice_eq_cstr_nocase(args[0].str, "DEFLATE")) {
        imap_bad(s, tag, "Unknown compression mechanism; DEFLATE is the one supported");
        return;
    }
    if (net_conn_is_compressed(s->conn)) {
        imap_printf(s, "%.*s NO [COMPRESSIONACTIVE] DEFLATE is already active", TAGF(tag));
        return;
    }
    imap_printf(s, "%.*s OK DEFLATE active", TAGF(tag));
    net_conn_start_compress(s->conn); /* cannot fail: not compressing, no STARTTLS after login */
}
