/*
 * base64.c - base64 encode, strict decode and lenient decode (see base64.h).
 *
 * Table driven and allocation-bounded: the output space is reserved once
 * from the input length. Must never log the data it handles.
 */
#include "base/base64.h"
#include "base/log.h"

#include <stdint.h>
#include <string.h>

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* value + 1; 0 = not in the alphabet */
static const unsigned char b64_table[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

/* Writes the base64 of p[0..len) at dst (4 * ceil(len / 3) bytes). */
static void encode_block(const unsigned char *p, size_t len, char *dst)
{
    for (size_t i = 0; i < len; i += 3) {
        uint32_t n = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            n |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            n |= p[i + 2];
        *dst++ = b64_chars[(n >> 18) & 63];
        *dst++ = b64_chars[(n >> 12) & 63];
        *dst++ = i + 1 < len ? b64_chars[(n >> 6) & 63] : '=';
        *dst++ = i + 2 < len ? b64_chars[n & 63] : '=';
    }
}

void base64_encode(const void *p, size_t len, struct buf *out)
{
    size_t n = (len + 2) / 3 * 4;
    buf_reserve(out, n);
    encode_block(p, len, out->data + out->len);
    out->len += n;
    out->data[out->len] = '\0';
}

void base64_encode_lines(const void *p, size_t len, size_t line_len, const char *eol,
                         struct buf *out)
{
    WHARF_ASSERT(line_len >= 4 && line_len % 4 == 0);
    size_t raw = line_len / 4 * 3;
    size_t eol_len = strlen(eol);
    buf_reserve(out, (len + 2) / 3 * 4 + (len / raw + 1) * eol_len);
    for (size_t i = 0; i < len; i += raw) {
        size_t n = len - i < raw ? len - i : raw;
        base64_encode((const unsigned char *)p + i, n, out);
        buf_append(out, eol, eol_len);
    }
}

enum base64_status base64_decode(struct slice in, size_t max_out, struct buf *out)
{
    if (in.len % 4 != 0)
        return BASE64_BAD;
    if (in.len / 4 * 3 > max_out + 2)
        return BASE64_TOO_LONG;
    const unsigned char *p = (const unsigned char *)in.ptr;
    size_t start = out->len;
    buf_reserve(out, in.len / 4 * 3);
    for (size_t i = 0; i < in.len; i += 4) {
        bool last = i + 4 == in.len;
        uint32_t n = 0;
        size_t pad = 0;
        for (size_t k = 0; k < 4; k++) {
            int v;
            if (p[i + k] == '=' && last && k >= 2) {
                v = 0;
                pad++;
            } else if (pad > 0) { /* data after padding */
                return BASE64_BAD;
            } else if ((v = b64_table[p[i + k]] - 1) < 0) {
                return BASE64_BAD;
            }
            n = n << 6 | (uint32_t)v;
        }
        char bytes[3] = {(char)(n >> 16), (char)(n >> 8), (char)n};
        buf_append(out, bytes, 3 - pad);
    }
    if (out->len - start > max_out)
        return BASE64_TOO_LONG;
    return BASE64_OK;
}

/* The lenient decoder's one loop: into out, or (out NULL) only counting. */
static size_t lenient_run(struct slice in, struct buf *out)
{
    unsigned long acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    if (out)
        buf_reserve(out, in.len / 4 * 3 + 3);
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (c == '=') {
            /* padding ends this quantum; a new one may follow (concatenated
             * base64 blocks); leftover bits are dropped */
            acc = 0;
            bits = 0;
            continue;
        }
        int v = b64_table[c] - 1;
        if (v < 0)
            continue;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out)
                buf_append_byte(out, (char)((acc >> bits) & 0xff));
            n++;
            acc &= (1UL << bits) - 1;
        }
    }
    return n;
}

void base64_decode_lenient(struct slice in, struct buf *out)
{
    lenient_run(in, out);
}

size_t base64_decoded_len_lenient(struct slice in)
{
    return lenient_run(in, NULL);
}
