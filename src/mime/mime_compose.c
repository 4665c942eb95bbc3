/*
 * mime_compose.c - writing MIME: header text as RFC 2047 encoded-words and
 * bodies in a transfer encoding that survives any hop (7bit or base64), for
 * the messages Wharf composes itself (JMAP Email/set create, the vacation
 * reply; the webmail next).
 *
 * Never writes a line longer than RFC 5322's 998 octets, a bare CR or LF, or
 * an 8-bit byte: what it writes passes every SMTP server unchanged.
 */
#include "mime/mime.h"
#include "base/base64.h"

#include <string.h>
#include <sys/random.h>

/* Bytes of UTF-8 text in one encoded-word: 45 bytes give 60 base64
 * characters, 72 with "=?UTF-8?B?" and "?=", under RFC 2047's 75. */
#define WORD_BYTES 45

static bool plain_ascii(struct slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x80 || c < 0x20 || c == 0x7f)
            return false;
    }
    /* text that looks like an encoded-word must be encoded to stay itself */
    for (size_t i = 0; i + 1 < s.len; i++)
        if (s.ptr[i] == '=' && s.ptr[i + 1] == '?')
            return false;
    return true;
}

void mime_header_encode(struct slice text, struct buf *out)
{
    if (plain_ascii(text)) {
        buf_append_slice(out, text);
        return;
    }
    size_t i = 0;
    while (i < text.len) {
        size_t n = text.len - i < WORD_BYTES ? text.len - i : WORD_BYTES;
        /* never split a UTF-8 sequence between two words */
        while (n > 1 && i + n < text.len && ((unsigned char)text.ptr[i + n] & 0xc0) == 0x80)
            n--;
        if (i > 0)
            buf_append_cstr(out, "\r\n ");
        buf_append_cstr(out, "=?UTF-8?B?");
        base64_encode(text.ptr + i, n, out);
        buf_append_cstr(out, "?=");
        i += n;
    }
}

bool mime_body_needs_encoding(struct slice body)
{
    size_t line = 0;
    for (size_t i = 0; i < body.len; i++) {
        unsigned char c = (unsigned char)body.ptr[i];
        if (c >= 0x80 || c == 0 || (c == '\r' && (i + 1 == body.len || body.ptr[i + 1] != '\n')) ||
            (c == '\n' && (i == 0 || body.ptr[i - 1] != '\r')))
            return true;
        line = c == '\n' ? 0 : line + 1;
        if (line > 998)
            return true;
    }
    return false;
}

const char *mime_body_encode(struct slice body, struct buf *out)
{
    if (!mime_body_needs_encoding(body)) {
        buf_append_slice(out, body);
        if (body.len && body.ptr[body.len - 1] != '\n')
            buf_append_cstr(out, "\r\n");
        return "7bit";
    }
    base64_encode_lines(body.ptr, body.len, 76, "\r\n", out);
    return "base64";
}

static const char *body_write(struct slice body, bool text, struct buf *out)
{
    struct buf lines = BUF_INIT, enc = BUF_INIT;
    if (text) {
        for (size_t i = 0; i < body.len; i++) {
            if (body.ptr[i] == '\n' && (i == 0 || body.ptr[i - 1] != '\r'))
                buf_append_byte(&lines, '\r');
            buf_append_byte(&lines, body.ptr[i]);
        }
    } else
        buf_append_slice(&lines, body);
    const char *cte = mime_body_encode(buf_slice(&lines), &enc);
    buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", cte);
    buf_append_slice(out, buf_slice(&enc));
    buf_free(&enc);
    buf_free(&lines);
    return cte;
}

void mime_body_write(struct slice body, bool text, struct buf *out)
{
    body_write(body, text, out);
}

void mime_part_body_write(struct slice body, bool text, struct buf *out)
{
    /* The CRLF before the next "--boundary" is the delimiter's (RFC 2046 5.1.1): a body
     * that ends with a line break needs one more, or it comes back without it. */
    if (strcmp(body_write(body, text, out), "7bit") == 0 && body.len > 0 &&
        body.ptr[body.len - 1] == '\n')
        buf_append_cstr(out, "\r\n");
}

void mime_boundary_make(char out[40])
{
    unsigned char rnd[12];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0x5a, sizeof(rnd));
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "=_wharf_", 8);
    for (size_t i = 0; i < sizeof(rnd); i++) {
        out[8 + 2 * i] = hex[rnd[i] >> 4];
        out[9 + 2 * i] = hex[rnd[i] & 15];
    }
    out[32] = '\0';
}
