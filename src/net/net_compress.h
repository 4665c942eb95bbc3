/*
 * net_compress.h - the DEFLATE stage of a connection (RFC 1951 raw deflate,
 * windowBits -15, no zlib or gzip framing), as IMAP COMPRESS (RFC 4978) and
 * NNTP COMPRESS (RFC 8054) put it between the protocol and TLS. It works on
 * evbuffers only (no sockets, no events): net_conn.c feeds it, and unit tests
 * and the fuzz target drive it directly.
 *
 * Must never: grow an output buffer past the limit its caller gives (a zip
 * bomb is inflated in bounded steps), or abort on a corrupt stream.
 */
#ifndef WHARF_NET_NET_COMPRESS_H
#define WHARF_NET_NET_COMPRESS_H

#include "base/buf.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>

struct net_compress;

struct net_compress *net_compress_new(void);
void net_compress_free(struct net_compress *z);

/* Compresses len bytes onto out. Some may stay inside zlib until a flush. */
void net_compress_write(struct net_compress *z, const void *data, size_t len, struct evbuffer *out);
/* True when bytes were written since the last flush. */
bool net_compress_pending(const struct net_compress *z);
/*
 * Z_SYNC_FLUSH: puts everything written so far on out, ending on a byte
 * boundary, so that the peer can decode all of it now. Nothing when nothing
 * is pending.
 */
void net_compress_flush(struct net_compress *z, struct evbuffer *out);
/*
 * Frees the compressor's state (window and hash tables: most of the stage's
 * memory) after a flush, for a connection gone quiet. The next write starts
 * a new compressor; the peer's decompressor goes on unaware, since a flushed
 * raw deflate stream may be followed by any other non-final blocks.
 * Nothing when bytes are pending.
 */
void net_compress_release(struct net_compress *z);

/*
 * Inflates compressed bytes from in onto out, in steps, until in is used up
 * or out holds limit bytes; what is not inflated yet stays in in (or in
 * zlib) for the next call. false on a corrupt stream, or bytes after its end
 * (a final block): *err_r says why, and the stage is of no further use.
 */
bool net_compress_read(struct net_compress *z, struct evbuffer *in, struct evbuffer *out,
                       size_t limit, const char **err_r);

/* Bytes zlib holds for this stage now (compressor and decompressor). */
size_t net_compress_memory(const struct net_compress *z);

/*
 * One whole buffer in gzip framing (RFC 1952), for HTTP's Content-Encoding:
 * gzip, appended to out. False (out unchanged) when zlib fails.
 */
bool net_gzip(const void *data, size_t len, struct buf *out);

/* HTTP's content codings (RFC 9110 8.4.1) for whole response bodies. */
enum net_coding {
    NET_CODING_IDENTITY,
    NET_CODING_GZIP,   /* zlib (net_gzip) */
    NET_CODING_BROTLI, /* "br", RFC 7932: libbrotlienc, quality 5 */
    NET_CODING_ZSTD,   /* "zstd", RFC 8878: libzstd, level 3 */
};

/* The coding's name in Content-Encoding ("gzip", "br", "zstd"; "identity"). */
const char *net_coding_name(enum net_coding c);
/*
 * One whole buffer in coding c, appended to out. False (out unchanged) when
 * the library fails, or for identity.
 */
bool net_content_encode(enum net_coding c, const void *data, size_t len, struct buf *out);

#endif
