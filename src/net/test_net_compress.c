/*
 * test_net_compress.c - unit tests of the DEFLATE stage (net_compress.c):
 * round trips against zlib used directly as the peer, input one byte at a
 * time, corrupt streams, bounded inflation of a zip bomb, flush and release,
 * and the memory the stage holds (the figures doc/imap.md quotes).
 */
#include "net/net_compress.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

/* Mail-like text: a header block and lines that repeat with variations. */
static unsigned char *sample(size_t len)
{
    unsigned char *p = malloc(len);
    size_t i = 0;
    for (unsigned n = 0; i < len; n++) {
        char line[128];
        int k =
            snprintf(line, sizeof(line), "* %u FETCH (UID %u FLAGS (\\Seen) RFC822.SIZE %u)\r\n",
                     n + 1, n * 7 + 100, (n * 2654435761u) % 100000);
        for (int j = 0; j < k && i < len; j++)
            p[i++] = (unsigned char)line[j];
    }
    return p;
}

static size_t drain_all(struct evbuffer *b, unsigned char **data_r)
{
    size_t n = evbuffer_get_length(b);
    *data_r = malloc(n + 1);
    evbuffer_remove(b, *data_r, n);
    return n;
}

/* out holds exactly text (and is emptied). */
static void assert_inflated(struct evbuffer *out, const unsigned char *text, size_t len)
{
    unsigned char *got;
    assert_int_equal(drain_all(out, &got), len);
    assert_memory_equal(got, text, len);
    free(got);
}

/* The peer: zlib's raw inflate on everything in wire, which must decode whole. */
static size_t peer_inflate(z_stream *zs, struct evbuffer *wire, unsigned char *out, size_t cap)
{
    unsigned char *in;
    size_t n = drain_all(wire, &in);
    zs->next_in = in;
    zs->avail_in = (uInt)n;
    zs->next_out = out;
    zs->avail_out = (uInt)cap;
    int rc = inflate(zs, Z_SYNC_FLUSH);
    assert_true(rc == Z_OK || rc == Z_BUF_ERROR);
    assert_int_equal(zs->avail_in, 0);
    free(in);
    return cap - zs->avail_out;
}

static void test_write_flush_decodes_at_once(void **state)
{
    (void)state;
    struct net_compress *z = net_compress_new();
    struct evbuffer *wire = evbuffer_new();
    z_stream peer = {0};
    assert_int_equal(inflateInit2(&peer, -15), Z_OK);
    unsigned char out[4096];

    const char *reply = "a1 OK [READ-WRITE] SELECT completed\r\n";
    net_compress_write(z, reply, strlen(reply), wire);
    assert_true(net_compress_pending(z));
    net_compress_flush(z, wire);
    assert_false(net_compress_pending(z));
    /* Everything written is decodable now: the client never waits for zlib. */
    size_t n = peer_inflate(&peer, wire, out, sizeof(out));
    assert_int_equal(n, strlen(reply));
    assert_memory_equal(out, reply, n);

    /* A flush with nothing written adds nothing. */
    net_compress_flush(z, wire);
    assert_int_equal(evbuffer_get_length(wire), 0);

    /* Released while quiet, then used again: the peer's stream goes on. */
    size_t active = net_compress_memory(z);
    net_compress_release(z);
    assert_true(net_compress_memory(z) < active);
    const char *push = "* 3 EXISTS\r\n";
    net_compress_write(z, push, strlen(push), wire);
    net_compress_release(z); /* pending: refused */
    net_compress_flush(z, wire);
    n = peer_inflate(&peer, wire, out, sizeof(out));
    assert_int_equal(n, strlen(push));
    assert_memory_equal(out, push, n);

    inflateEnd(&peer);
    evbuffer_free(wire);
    net_compress_free(z);
}

/* zlib's raw deflate of data (the client's side), sync-flushed. */
static struct evbuffer *peer_deflate(const unsigned char *data, size_t len, int flush)
{
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, len) + 64;
    unsigned char *out = malloc(cap);
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, flush);
    assert_true(rc == Z_OK || rc == Z_STREAM_END);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, out, cap - zs.avail_out);
    deflateEnd(&zs);
    free(out);
    return b;
}

static void test_read_one_byte_at_a_time(void **state)
{
    (void)state;
    size_t len = 20000;
    unsigned char *text = sample(len);
    struct evbuffer *all = peer_deflate(text, len, Z_SYNC_FLUSH);
    struct net_compress *z = net_compress_new();
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    while (evbuffer_get_length(all) > 0) {
        evbuffer_remove_buffer(all, in, 1);
        assert_true(net_compress_read(z, in, out, 1 << 20, &err));
        assert_int_equal(evbuffer_get_length(in), 0); /* taken into zlib's state */
    }
    assert_inflated(out, text, len);
    free(text);
    evbuffer_free(all);
    evbuffer_free(in);
    evbuffer_free(out);
    net_compress_free(z);
}

static void test_round_trip_large(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024 + 7;
    unsigned char *text = sample(len);
    struct net_compress *a = net_compress_new(), *b = net_compress_new();
    struct evbuffer *wire = evbuffer_new(), *out = evbuffer_new();
    /* In uneven writes, as a FETCH of many messages would be. */
    for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 % 65521 + 1)
        net_compress_write(a, text + off, off + step <= len ? step : len - off, wire);
    net_compress_flush(a, wire);
    size_t wire_len = evbuffer_get_length(wire);
    assert_true(wire_len < len / 4);
    const char *err = NULL;
    assert_true(net_compress_read(b, wire, out, SIZE_MAX, &err));
    assert_inflated(out, text, len);
    free(text);
    evbuffer_free(wire);
    evbuffer_free(out);
    net_compress_free(a);
    net_compress_free(b);
}

static void test_zip_bomb_is_inflated_in_bounded_steps(void **state)
{
    (void)state;
    size_t len = 64 * 1024 * 1024, limit = 100000;
    unsigned char *zeros = calloc(1, len);
    struct evbuffer *in = peer_deflate(zeros, len, Z_SYNC_FLUSH);
    assert_true(evbuffer_get_length(in) < 100 * 1024); /* 64 MiB from under 100 KiB */
    struct net_compress *z = net_compress_new();
    struct evbuffer *out = evbuffer_new();
    const char *err = NULL;
    size_t total = 0, rounds = 0;
    for (;;) {
        assert_true(net_compress_read(z, in, out, limit, &err));
        size_t n = evbuffer_get_length(out);
        assert_true(n <= limit);
        if (n == 0)
            break;
        total += n;
        rounds++;
        evbuffer_drain(out, n); /* the protocol consumes; the next call goes on */
    }
    assert_int_equal(total, len);
    assert_true(rounds >= len / limit);
    assert_int_equal(evbuffer_get_length(in), 0);
    free(zeros);
    evbuffer_free(in);
    evbuffer_free(out);
    net_compress_free(z);
}

static void expect_corrupt(const unsigned char *data, size_t len)
{
    struct net_compress *z = net_compress_new();
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    evbuffer_add(in, data, len);
    const char *err = NULL;
    assert_false(net_compress_read(z, in, out, 1 << 20, &err));
    assert_non_null(err);
    assert_true(strlen(err) > 0);
    /* And stays refused, without crashing. */
    evbuffer_add(in, "x", 1);
    assert_false(net_compress_read(z, in, out, 1 << 20, &err));
    evbuffer_free(in);
    evbuffer_free(out);
    net_compress_free(z);
}

static void test_corrupt_input(void **state)
{
    (void)state;
    /* Block type 3 (reserved). */
    expect_corrupt((const unsigned char *)"\x07\x00\x00", 3);
    /* A stored block whose length and its complement disagree. */
    expect_corrupt((const unsigned char *)"\x00\x05\x00\x00\x00hello", 10);
    /* Plain text where deflate was promised. */
    expect_corrupt((const unsigned char *)"a1 NOOP\r\n", 9);
    /* A valid stream with a final block, then more bytes. */
    struct evbuffer *fin = peer_deflate((const unsigned char *)"a LOGOUT\r\n", 10, Z_FINISH);
    evbuffer_add(fin, "b NOOP\r\n", 8);
    unsigned char *bytes;
    size_t n = drain_all(fin, &bytes);
    expect_corrupt(bytes, n);
    free(bytes);
    evbuffer_free(fin);
}

static void test_final_block_alone_is_accepted(void **state)
{
    (void)state;
    struct evbuffer *in = peer_deflate((const unsigned char *)"a LOGOUT\r\n", 10, Z_FINISH);
    struct net_compress *z = net_compress_new();
    struct evbuffer *out = evbuffer_new();
    const char *err = NULL;
    assert_true(net_compress_read(z, in, out, 1 << 20, &err));
    assert_inflated(out, (const unsigned char *)"a LOGOUT\r\n", 10);
    assert_true(net_compress_read(z, in, out, 1 << 20, &err)); /* nothing more: fine */
    evbuffer_free(in);
    evbuffer_free(out);
    net_compress_free(z);
}

/* The figures of doc/imap.md: printed, and held to their bounds. */
/* net_gzip: a gzip member zlib's own gzip reader (windowBits 31) takes back whole. */
static void test_gzip(void **state)
{
    (void)state;
    struct buf src = BUF_INIT, z = BUF_INIT;
    for (int i = 0; i < 5000; i++)
        buf_printf(&src, "line %d of a text body\n", i);
    buf_append_cstr(&z, "kept");
    assert_true(net_gzip(src.data, src.len, &z));
    assert_memory_equal(z.data, "kept", 4);
    assert_true(z.len - 4 < src.len / 4);
    assert_int_equal((unsigned char)z.data[4], 0x1f); /* gzip magic */
    assert_int_equal((unsigned char)z.data[5], 0x8b);
    z_stream s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(inflateInit2(&s, 31), Z_OK);
    char *back = malloc(src.len + 16);
    s.next_in = (Bytef *)z.data + 4;
    s.avail_in = (uInt)(z.len - 4);
    s.next_out = (Bytef *)back;
    s.avail_out = (uInt)(src.len + 16);
    assert_int_equal(inflate(&s, Z_FINISH), Z_STREAM_END);
    assert_int_equal(s.total_out, src.len);
    assert_memory_equal(back, src.data, src.len);
    inflateEnd(&s);
    free(back);
    /* Empty input is a valid (tiny) member too. */
    buf_reset(&z);
    assert_true(net_gzip("", 0, &z));
    assert_true(z.len >= 20);
    buf_free(&src);
    buf_free(&z);
}

static void test_memory(void **state)
{
    (void)state;
    struct net_compress *a = net_compress_new(), *b = net_compress_new();
    size_t fresh = net_compress_memory(b);
    struct evbuffer *wire = evbuffer_new(), *out = evbuffer_new();
    unsigned char *text = sample(100000);
    net_compress_write(a, text, 100000, wire);
    net_compress_flush(a, wire);
    const char *err = NULL;
    assert_true(net_compress_read(b, wire, out, SIZE_MAX, &err));
    size_t inflating = net_compress_memory(b);
    size_t both = net_compress_memory(a);
    net_compress_release(a);
    size_t quiet = net_compress_memory(a);
    print_message("zlib memory: new %zu, decompressor after use %zu, compressor in use "
                  "%zu, released %zu bytes\n",
                  fresh, inflating, both, quiet);
    assert_true(fresh < 10 * 1024);
    assert_true(inflating < 48 * 1024);
    assert_true(both < 180 * 1024);
    assert_int_equal(quiet, fresh); /* only the decompressor's state (a never inflated) */
    free(text);
    evbuffer_free(wire);
    evbuffer_free(out);
    net_compress_free(a);
    net_compress_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_flush_decodes_at_once),
        cmocka_unit_test(test_read_one_byte_at_a_time),
        cmocka_unit_test(test_round_trip_large),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_zip_bomb_is_inflated_in_bounded_steps),
        cmocka_unit_test(test_corrupt_input),
        cmocka_unit_test(test_final_block_alone_is_accepted),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
