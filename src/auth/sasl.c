/*
 * sasl.c - the PLAIN and LOGIN SASL mechanisms (base64 from base/base64.h).
 *
 * Every field is bounded before anything is copied; nothing is ever
 * truncated to fit. Must never log what it decodes.
 */
#include "auth/sasl.h"
#include "base/base64.h"

#include <string.h>

/* Strict base64 of a response, at most max_out bytes, appended to out. */
static enum sasl_status sasl_base64(struct slice in, size_t max_out, struct buf *out)
{
    switch (base64_decode(in, max_out, out)) {
    case BASE64_OK:
        return SASL_OK;
    case BASE64_TOO_LONG:
        return SASL_TOO_LONG;
    case BASE64_BAD:
        break;
    }
    return SASL_BAD_BASE64;
}

/* Valid UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF), no NUL. */
static bool utf8_safe(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

void sasl_plain_init(struct sasl_plain *p)
{
    buf_init(&p->authzid);
    buf_init(&p->authcid);
    buf_init(&p->passwd);
}

static void buf_wipe(struct buf *b)
{
    if (b->data != NULL && b->cap > 0)
        explicit_bzero(b->data, b->cap);
    b->len = 0;
}

void sasl_plain_free(struct sasl_plain *p)
{
    buf_free(&p->authzid);
    buf_free(&p->authcid);
    buf_wipe(&p->passwd);
    buf_free(&p->passwd);
}

static bool is_cancel(struct slice line)
{
    return line.len == 1 && line.ptr[0] == '*';
}

enum sasl_status sasl_plain_decode(struct slice line, size_t max_field, struct sasl_plain *out)
{
    buf_reset(&out->authzid);
    buf_reset(&out->authcid);
    buf_wipe(&out->passwd);
    if (is_cancel(line))
        return SASL_CANCEL;
    if (line.len == 1 && line.ptr[0] == '=')
        return SASL_MALFORMED; /* an empty response has no authcid */
    struct buf raw;
    buf_init(&raw); /* never NULL, even when nothing is decoded */
    /* Three fields and two NULs. */
    enum sasl_status s = sasl_base64(line, 3 * max_field + 2, &raw);
    if (s != SASL_OK)
        goto done;
    const char *p = raw.data, *end = raw.data + raw.len;
    const char *nul1 = memchr(p, '\0', raw.len);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1)) : NULL;
    if (nul1 == NULL || nul2 == NULL || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1))) {
        s = SASL_MALFORMED;
        goto done;
    }
    struct slice f[3] = {{p, (size_t)(nul1 - p)},
                         {nul1 + 1, (size_t)(nul2 - nul1 - 1)},
                         {nul2 + 1, (size_t)(end - nul2 - 1)}};
    for (size_t i = 0; i < 3; i++) {
        if (f[i].len > max_field) {
            s = SASL_TOO_LONG;
            goto done;
        }
        if (!utf8_safe((const unsigned char *)f[i].ptr, f[i].len) || (i > 0 && f[i].len == 0)) {
            s = SASL_MALFORMED;
            goto done;
        }
    }
    buf_append_slice(&out->authzid, f[0]);
    buf_append_slice(&out->authcid, f[1]);
    buf_append_slice(&out->passwd, f[2]);
done:
    buf_wipe(&raw);
    buf_free(&raw);
    return s;
}

enum sasl_status sasl_login_decode(struct slice line, size_t max_field, struct buf *out)
{
    buf_wipe(out);
    if (is_cancel(line))
        return SASL_CANCEL;
    enum sasl_status s = sasl_base64(line, max_field, out);
    if (s == SASL_OK && (out->len == 0 || !utf8_safe((unsigned char *)out->data, out->len)))
        s = SASL_MALFORMED;
    if (s != SASL_OK)
        buf_wipe(out);
    return s;
}

const char *sasl_status_text(enum sasl_status s)
{
    switch (s) {
    case SASL_OK:
        return "ok";
    case SASL_CANCEL:
        return "authentication cancelled";
    case SASL_BAD_BASE64:
        return "invalid base64";
    case SASL_MALFORMED:
        return "malformed response";
    case SASL_TOO_LONG:
        return "response too long";
    }
    return "unknown";
}
