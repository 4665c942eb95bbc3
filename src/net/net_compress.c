/*
 * net_compress.c - the DEFLATE stage (see net_compress.h): zlib's deflate
 * and inflate over evbuffers, in steps of NET_COMPRESS_STEP bytes; and
 * HTTP's content codings of whole bodies (gzip, brotli, zstd).
 *
 * Memory per compressed connection is the point of the parameters below
 * (doc/imap.md has the measured figures): the compressor's window and hash
 * tables are the bulk, and net_compress_release gives them back while the
 * connection is quiet; the decompressor's 32 KiB window cannot go (the peer
 * may refer to any of it) and is allocated by zlib on the first inflated byte.
 * Must never: let a corrupt stream reach past zlib (an error, never an abort),
 * or inflate more than the caller's limit in one call.
 */
#include "net/net_compress.h"

#include "base/alloc.h"
#include "base/log.h"

#include <brotli/encode.h>
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/*
 * Level 5: on IMAP responses and mail text within 2% of level 6's ratio at
 * about 1.5 times its speed (RFC 4978 4 suggests 1-5 for a server).
 */
#define NET_COMPRESS_LEVEL 5
/*
 * A 32 KiB window (the most a raw deflate stream may use, and what the
 * decompressor must have whatever the peer chose). memLevel 6 instead of the
 * default 8: 32 KiB of hash tables instead of 128 KiB, for the same ratio on
 * mail within 0.5%. Compressor: 128 + 32 KiB (zlib: (1 << (wbits + 2)) +
 * (1 << (memLevel + 9))) plus its 6 KiB state.
 */
#define NET_COMPRESS_WBITS 15
#define NET_COMPRESS_MEMLEVEL 6
/* Bytes through zlib per step (a stack buffer): bounds each inflate's output. */
#define NET_COMPRESS_STEP 16384
/* Input handed to zlib at once (its counters are unsigned int). */
#define NET_COMPRESS_MAX_IN (1u << 30)

struct net_compress {
    z_stream d, i;
    bool deflating;    /* d is initialised (released when quiet) */
    bool pending;      /* written since the last flush */
    bool inflate_full; /* the last inflate step filled its buffer: zlib may hold more */
    bool ended;        /* the peer's stream ended (a final block) */
    size_t mem;        /* bytes zlib holds through z_alloc */
};

/* zlib's allocations, counted: each carries its size in front. */
union z_header {
    size_t size;
    max_align_t align;
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    struct net_compress *z = opaque;
    size_t n = (size_t)items * size; /* two 32-bit factors: no overflow in 64 bits */
    union z_header *h = xmalloc(sizeof(*h) + n);
    h->size = n;
    z->mem += n;
    return h + 1;
}

static void z_free(voidpf opaque, voidpf p)
{
    struct net_compress *z = opaque;
    union z_header *h = (union z_header *)p - 1;
    z->mem -= h->size;
    free(h);
}

struct net_compress *net_compress_new(void)
{
    struct net_compress *z = xcalloc(1, sizeof(*z));
    z->i.zalloc = z_alloc;
    z->i.zfree = z_free;
    z->i.opaque = z;
    if (inflateInit2(&z->i, -NET_COMPRESS_WBITS) != Z_OK)
        log_panic("inflateInit2: %s", z->i.msg ? z->i.msg : "failed");
    return z;
}

void net_compress_free(struct net_compress *z)
{
    if (z == NULL)
        return;
    if (z->deflating)
        deflateEnd(&z->d);
    inflateEnd(&z->i);
    free(z);
}

bool net_gzip(const void *data, size_t len, struct buf *out)
{
    if (len > UINT32_MAX)
        return false;
    z_stream s;
    memset(&s, 0, sizeof(s));
    /* windowBits 15 + 16: a gzip header and trailer around the deflate stream. */
    if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return false;
    size_t start = out->len;
    size_t bound = deflateBound(&s, (uLong)len);
    buf_reserve(out, bound);
    s.next_in = (Bytef *)(uintptr_t)data;
    s.avail_in = (uInt)len;
    s.next_out = (Bytef *)out->data + start;
    s.avail_out = (uInt)bound;
    int r = deflate(&s, Z_FINISH);
    size_t made = bound - s.avail_out;
    deflateEnd(&s);
    if (r != Z_STREAM_END)
        return false;
    out->len = start + made;
    out->data[out->len] = '\0';
    return true;
}

const char *net_coding_name(enum net_coding c)
{
    switch (c) {
    case NET_CODING_GZIP:
        return "gzip";
    case NET_CODING_BROTLI:
        return "br";
    case NET_CODING_ZSTD:
        return "zstd";
    case NET_CODING_IDENTITY:
        break;
    }
    return "identity";
}

/* Quality 5 and a 4 MB window: about gzip's speed, smaller output (browsers' own choice for
 * dynamic content); level 3 is zstd's default. */
#define NET_BROTLI_QUALITY 5
#define NET_BROTLI_WINDOW 22
#define NET_ZSTD_LEVEL 3

bool net_content_encode(enum net_coding c, const void *data, size_t len, struct buf *out)
{
    size_t start = out->len;
    switch (c) {
    case NET_CODING_GZIP:
        return net_gzip(data, len, out);
    case NET_CODING_BROTLI: {
        size_t n = BrotliEncoderMaxCompressedSize(len);
        if (n == 0)
            return false;
        buf_reserve(out, n);
        if (!BrotliEncoderCompress(NET_BROTLI_QUALITY, NET_BROTLI_WINDOW, BROTLI_MODE_TEXT, len,
                                   data, &n, (uint8_t *)out->data + start))
            return false;
        out->len = start + n;
        break;
    }
    case NET_CODING_ZSTD: {
        size_t bound = ZSTD_compressBound(len);
        buf_reserve(out, bound);
        size_t n = ZSTD_compress(out->data + start, bound, data, len, NET_ZSTD_LEVEL);
        if (ZSTD_isError(n))
            return false;
        out->len = start + n;
        break;
    }
    case NET_CODING_IDENTITY:
        return false;
    }
    out->data[out->len] = '\0';
    return true;
}

size_t net_compress_memory(const struct net_compress *z)
{
    return z->mem;
}

/* Runs deflate over d's input with flush until zlib has nothing more to give now. */
static void deflate_run(struct net_compress *z, int flush, struct evbuffer *out)
{
    unsigned char step[NET_COMPRESS_STEP];
    do {
        z->d.next_out = step;
        z->d.avail_out = sizeof(step);
        int rc = deflate(&z->d, flush);
        if (rc != Z_OK && rc != Z_BUF_ERROR) /* Z_BUF_ERROR: nothing to do, harmless */
            log_panic("deflate: %d %s", rc, z->d.msg ? z->d.msg : "");
        evbuffer_add(out, step, sizeof(step) - z->d.avail_out);
    } while (z->d.avail_out == 0);
}

void net_compress_write(struct net_compress *z, const void *data, size_t len, struct evbuffer *out)
{
    if (len == 0)
        return;
    if (!z->deflating) {
        z->d.zalloc = z_alloc;
        z->d.zfree = z_free;
        z->d.opaque = z;
        if (deflateInit2(&z->d, NET_COMPRESS_LEVEL, Z_DEFLATED, -NET_COMPRESS_WBITS,
                         NET_COMPRESS_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
            log_panic("deflateInit2: %s", z->d.msg ? z->d.msg : "failed");
        z->deflating = true;
    }
    const unsigned char *p = data;
    while (len > 0) {
        size_t n = len < NET_COMPRESS_MAX_IN ? len : NET_COMPRESS_MAX_IN;
        z->d.next_in = (unsigned char *)p;
        z->d.avail_in = (uInt)n;
        deflate_run(z, Z_NO_FLUSH, out); /* ends with all of the input taken */
        p += n;
        len -= n;
    }
    z->d.next_in = NULL;
    z->pending = true;
}

bool net_compress_pending(const struct net_compress *z)
{
    return z->pending;
}

void net_compress_flush(struct net_compress *z, struct evbuffer *out)
{
    if (!z->pending)
        return;
    deflate_run(z, Z_SYNC_FLUSH, out);
    z->pending = false;
}

void net_compress_release(struct net_compress *z)
{
    if (z->pending || !z->deflating)
        return;
    deflateEnd(&z->d);
    memset(&z->d, 0, sizeof(z->d));
    z->deflating = false;
}

bool net_compress_read(struct net_compress *z, struct evbuffer *in, struct evbuffer *out,
                       size_t limit, const char **err_r)
{
    unsigned char step[NET_COMPRESS_STEP];
    while (evbuffer_get_length(out) < limit) {
        struct evbuffer_iovec v = {NULL, 0};
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            v.iov_len = 0;
        if (v.iov_len == 0 && !z->inflate_full)
            return true;
        if (z->ended) {
            *err_r = "data after the end of the compressed stream";
            return false;
        }
        size_t room = limit - evbuffer_get_length(out);
        if (room > sizeof(step))
            room = sizeof(step);
        size_t avail = v.iov_len < NET_COMPRESS_MAX_IN ? v.iov_len : NET_COMPRESS_MAX_IN;
        z->i.next_in = v.iov_base;
        z->i.avail_in = (uInt)avail;
        z->i.next_out = step;
        z->i.avail_out = (uInt)room;
        int rc = inflate(&z->i, Z_NO_FLUSH);
        size_t used = avail - z->i.avail_in, made = room - z->i.avail_out;
        z->i.next_in = NULL;
        evbuffer_drain(in, used);
        evbuffer_add(out, step, made);
        z->inflate_full = made == room;
        if (rc == Z_STREAM_END) {
            z->ended = true; /* what follows, if anything, is an error (above) */
            z->inflate_full = false;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            *err_r = z->i.msg ? z->i.msg : "corrupt deflate stream";
            return false;
        } else if (used == 0 && made == 0) {
            return true; /* zlib needs more input */
        }
    }
    return true;
}
