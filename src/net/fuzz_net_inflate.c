/*
 * fuzz_net_inflate.c - libFuzzer target for the DEFLATE stage: the input,
 * taken as a client's compressed stream, is fed in uneven pieces and inflated
 * under a small limit that the output must never pass (the first byte picks
 * the piece size and the limit; a bomb is followed for FUZZ_MAX_INFLATED
 * bytes); then the input, taken as text, goes through
 * compress, flush and inflate and must come back byte for byte.
 */
#include "net/net_compress.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Inflated bytes followed per input: enough to cross many limits, fast enough to fuzz. */
#define FUZZ_MAX_INFLATED (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inflate_pieces(const uint8_t *data, size_t size, size_t piece, size_t limit)
{
    struct net_compress *z = net_compress_new();
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    size_t total = 0;
    for (size_t off = 0; off < size && total < FUZZ_MAX_INFLATED; off += piece) {
        evbuffer_add(in, data + off, size - off < piece ? size - off : piece);
        bool ok;
        do { /* the protocol drains what it got; inflation goes on from there */
            ok = net_compress_read(z, in, out, limit, &err);
            size_t n = evbuffer_get_length(out);
            if (n > limit || (!ok && (err == NULL || *err == '\0')))
                __builtin_trap();
            evbuffer_drain(out, n);
            total += n;
            if (n == 0 || total >= FUZZ_MAX_INFLATED)
                break;
        } while (ok);
        if (!ok)
            break;
    }
    evbuffer_free(in);
    evbuffer_free(out);
    net_compress_free(z);
}

static void round_trip(const uint8_t *data, size_t size)
{
    struct net_compress *a = net_compress_new(), *b = net_compress_new();
    struct evbuffer *wire = evbuffer_new(), *out = evbuffer_new();
    size_t half = size / 2;
    net_compress_write(a, data, half, wire);
    net_compress_flush(a, wire);
    net_compress_release(a); /* a new compressor continues the same stream */
    net_compress_write(a, data + half, size - half, wire);
    net_compress_flush(a, wire);
    const char *err = NULL;
    if (!net_compress_read(b, wire, out, SIZE_MAX, &err) || evbuffer_get_length(out) != size)
        __builtin_trap();
    unsigned char *back = malloc(size + 1);
    evbuffer_remove(out, back, size);
    if (memcmp(back, data, size) != 0)
        __builtin_trap();
    free(back);
    evbuffer_free(wire);
    evbuffer_free(out);
    net_compress_free(a);
    net_compress_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t piece = (size_t)(data[0] & 0x0f) * 97 + 1;
    size_t limit = (size_t)(data[0] >> 4) * 1000 + 100;
    inflate_pieces(data + 1, size - 1, piece, limit);
    round_trip(data + 1, size - 1);
    return 0;
}
