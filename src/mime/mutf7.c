/*
 * mutf7.c - modified UTF-7 (RFC 3501 5.1.3) for the mailbox names of
 * IMAP4rev1 sessions: printable US-ASCII stands for itself ("&" is "&-"),
 * anything else is UTF-16 in modified BASE64 ("," for "/", no padding)
 * between "&" and "-". The store keeps names in UTF-8; imap_mailbox.c
 * decodes every name a rev1 client sends and encodes every name it is sent.
 * mutf7_net_unicode is RFC 9051 5.1's rule for the UTF-8 itself (NFC
 * from libunistring).
 * Must never: accept a name with two spellings (the decoder is strict, see
 * mutf7.h), or write a byte past the buffer it was given.
 */
#include "mime/mutf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uninorm.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Modified BASE64 (RFC 3501 5.1.3: RFC 2045's with "," for "/"). */
static int b64_value(unsigned char c)
{
    const char *p = c != '\0' ? memchr(b64, c, 64) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Drops what was appended after start (buf keeps data[len] == '\0'). */
static void truncate_to(struct buf *out, size_t start)
{
    out->len = start;
    if (out->cap > 0)
        out->data[start] = '\0';
}

static bool printable(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e;
}

/* One UTF-8 sequence at p (len bytes left): its length, or 0 when invalid. */
static size_t utf8_next(const unsigned char *p, size_t len, uint32_t *cp_r)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
        *cp_r = c;
        return 1;
    }
    if (c >= 0xc2 && c < 0xe0)
        n = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c < 0xf0)
        n = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c < 0xf5)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cp_r = cp;
    return n;
}

static void utf8_append(struct buf *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    buf_append(out, b, n);
}

bool mutf7_utf8_valid(struct slice in)
{
    const unsigned char *p = (const unsigned char *)in.ptr;
    uint32_t cp;
    for (size_t i = 0, k; i < in.len; i += k)
        if ((k = utf8_next(p + i, in.len - i, &cp)) == 0)
            return false;
    return true;
}

bool mutf7_net_unicode(struct slice in)
{
    const unsigned char *p = (const unsigned char *)in.ptr;
    uint32_t cp;
    for (size_t i = 0, k; i < in.len; i += k) {
        if ((k = utf8_next(p + i, in.len - i, &cp)) == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return false;
    }
    if (in.len == 0)
        return true;
    size_t n = 0;
    uint8_t *nfc = u8_normalize(UNINORM_NFC, (const uint8_t *)in.ptr, in.len, NULL, &n);
    bool same = nfc != NULL && n == in.len && memcmp(nfc, in.ptr, n) == 0;
    free(nfc);
    return same;
}

bool mutf7_encode(struct slice in, struct buf *out)
{
    const unsigned char *p = (const unsigned char *)in.ptr;
    size_t start = out->len, i = 0;
    while (i < in.len) {
        if (printable(p[i])) {
            if (p[i] == '&')
                buf_append_cstr(out, "&-");
            else
                buf_append_byte(out, (char)p[i]);
            i++;
            continue;
        }
        /* One shift for the whole run of characters that are not printable ASCII. */
        uint32_t bits = 0;
        unsigned nbits = 0;
        buf_append_byte(out, '&');
        while (i < in.len && !printable(p[i])) {
            uint32_t cp;
            size_t k = utf8_next(p + i, in.len - i, &cp);
            if (k == 0 || cp == 0) {
                truncate_to(out, start);
                return false;
            }
            i += k;
            uint16_t units[2] = {(uint16_t)cp, 0};
            size_t n_units = 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[0] = (uint16_t)(0xd800 | cp >> 10);
                units[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
                n_units = 2;
            }
            for (size_t u = 0; u < n_units; u++) {
                bits = bits << 16 | units[u];
                nbits += 16;
                while (nbits >= 6) {
                    nbits -= 6;
                    buf_append_byte(out, b64[bits >> nbits & 0x3f]);
                }
                bits &= (1u << nbits) - 1;
            }
        }
        if (nbits > 0)
            buf_append_byte(out, b64[bits << (6 - nbits) & 0x3f]);
        buf_append_byte(out, '-');
    }
    return true;
}

/* The base64 run after "&" at *pos, up to and including its "-". */
static bool decode_shift(const unsigned char *p, size_t len, size_t *pos, struct buf *out)
{
    uint32_t bits = 0, high = 0;
    unsigned nbits = 0;
    size_t i = *pos, chars = 0;
    for (; i < len && p[i] != '-'; i++) {
        int v = b64_value(p[i]);
        if (v < 0)
            return false;
        bits = bits << 6 | (uint32_t)v;
        nbits += 6;
        if (nbits < 16)
            continue;
        nbits -= 16;
        uint32_t unit = bits >> nbits & 0xffff, cp;
        bits &= (1u << nbits) - 1;
        if (high != 0) {
            if (unit < 0xdc00 || unit > 0xdfff)
                return false;
            cp = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
            high = 0;
        } else if (unit >= 0xd800 && unit <= 0xdbff) {
            high = unit;
            continue;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            return false;
        } else {
            cp = unit;
        }
        if (cp == 0 || (cp < 0x80 && printable((unsigned char)cp)))
            return false; /* NUL, or printable ASCII that must stand for itself */
        utf8_append(out, cp);
        chars++;
    }
    /* Terminated, not empty, no half pair, and padding of fewer than 6 zero bits. */
    if (i == len || chars == 0 || high != 0 || nbits >= 6 || bits != 0)
        return false;
    *pos = i + 1;
    return true;
}

bool mutf7_decode(struct slice in, struct buf *out)
{
    const unsigned char *p = (const unsigned char *)in.ptr;
    size_t start = out->len, i = 0;
    bool after_shift = false;
    while (i < in.len) {
        if (!printable(p[i]))
            goto fail;
        if (p[i] != '&') {
            buf_append_byte(out, (char)p[i++]);
            after_shift = false;
            continue;
        }
        if (i + 1 < in.len && p[i + 1] == '-') {
            buf_append_byte(out, '&');
            i += 2;
            after_shift = false;
            continue;
        }
        /* "&AOQ-&APY-" is "&AOQA9g-" spelt twice: one shift per run. */
        if (after_shift)
            goto fail;
        i++;
        if (!decode_shift(p, in.len, &i, out))
            goto fail;
        after_shift = true;
    }
    return true;
fail:
    truncate_to(out, start);
    return false;
}
