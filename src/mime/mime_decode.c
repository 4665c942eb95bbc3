/*
 * mime_decode.c - Content-Transfer-Encoding decoders (base64,
 * quoted-printable) and charset conversion to UTF-8 through glibc iconv.
 *
 * Used by IMAP BINARY[], SEARCH and RFC 2047 / RFC 2231 decoding. Inputs are
 * hostile: decoders never fail, skip garbage, and write at most as many
 * bytes as they read (base64: 3/4 of them). Charset conversion must never
 * hand back bytes that are not valid UTF-8.
 */
#include "mime/mime.h"
#include "mime/mime_chars.h"

#include "base/base64.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>

/* The quoted-printable decoder's one loop: into out, or (out NULL) only counting. */
static size_t qp_run(struct slice in, struct buf *out)
{
    size_t count = 0;
    const char *s = in.ptr;
    size_t n = in.len, i = 0;
    if (out)
        buf_reserve(out, n);
    while (i < n) {
        /* one line (without its line break) at a time */
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl == NULL ? n : (size_t)(nl - s);
        size_t cend = end;
        if (cend > i && s[cend - 1] == '\r')
            cend--;
        size_t tend = cend; /* transport padding (trailing white space) is dropped */
        while (tend > i && (s[tend - 1] == ' ' || s[tend - 1] == '\t'))
            tend--;
        bool soft = false;
        for (size_t j = i; j < tend; j++) {
            int h, l;
            char c = s[j];
            if (c != '=') {
                /* as is */
            } else if (j + 1 == tend) {
                soft = true;
                continue;
            } else if (j + 2 < tend && (h = mime_hexval(s[j + 1])) >= 0 &&
                       (l = mime_hexval(s[j + 2])) >= 0) {
                c = (char)(h << 4 | l);
                j += 2;
            } /* else malformed: the '=' is kept */
            if (out)
                buf_append_byte(out, c);
            count++;
        }
        if (nl == NULL)
            break;
        if (!soft) { /* keep CRLF or LF as it was */
            if (out)
                buf_append(out, s + cend, end + 1 - cend);
            count += end + 1 - cend;
        }
        i = end + 1;
    }
    return count;
}

void mime_decode_qp(struct slice in, struct buf *out)
{
    qp_run(in, out);
}

/* Whether t names an encoding mime_decode_cte knows besides base64 and QP (copied as is). */
static bool cte_identity(struct slice t)
{
    return t.len == 0 || slice_eq_cstr_nocase(t, "7bit") || slice_eq_cstr_nocase(t, "8bit") ||
           slice_eq_cstr_nocase(t, "binary");
}

bool mime_decode_cte(struct slice cte, struct slice in, struct buf *out)
{
    struct slice t = slice_trim(cte);
    if (slice_eq_cstr_nocase(t, "base64")) {
        base64_decode_lenient(in, out);
        return true;
    }
    if (slice_eq_cstr_nocase(t, "quoted-printable")) {
        mime_decode_qp(in, out);
        return true;
    }
    buf_append_slice(out, in);
    return cte_identity(t);
}

bool mime_decoded_size(struct slice cte, struct slice in, size_t *size_r)
{
    struct slice t = slice_trim(cte);
    if (slice_eq_cstr_nocase(t, "base64")) {
        *size_r = base64_decoded_len_lenient(in);
        return true;
    }
    if (slice_eq_cstr_nocase(t, "quoted-printable")) {
        *size_r = qp_run(in, NULL);
        return true;
    }
    *size_r = in.len;
    return cte_identity(t);
}

/* Length of the valid UTF-8 prefix of s (no overlongs, no surrogates). */
static size_t utf8_valid_prefix(struct slice s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0, n = s.len;
    while (i < n) {
        unsigned char c = p[i];
        size_t k;
        unsigned min;
        unsigned long cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, min = 0x80, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, min = 0x800, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i <= k)
            return i;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += k + 1;
    }
    return i;
}

/* One cached conversion descriptor: mail mostly uses one or two charsets. */
static __thread char cached_name[64];
static __thread iconv_t cached_cd = (iconv_t)-1;

static iconv_t iconv_get(struct slice charset)
{
    char name[64];
    if (charset.len == 0 || charset.len >= sizeof(name))
        return (iconv_t)-1;
    for (size_t i = 0; i < charset.len; i++) {
        char c = charset.ptr[i];
        /* charset names are tokens; refuse anything that could be an
         * iconv suffix such as //TRANSLIT or a path */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return (iconv_t)-1;
        name[i] = c;
    }
    name[charset.len] = '\0';
    if (cached_cd != (iconv_t)-1 && strcasecmp(cached_name, name) == 0) {
        iconv(cached_cd, NULL, NULL, NULL, NULL);
        return cached_cd;
    }
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return cd;
    if (cached_cd != (iconv_t)-1)
        iconv_close(cached_cd);
    cached_cd = cd;
    memcpy(cached_name, name, charset.len + 1);
    return cd;
}

static bool utf8_label(struct slice charset)
{
    return slice_eq_cstr_nocase(charset, "us-ascii") || slice_eq_cstr_nocase(charset, "utf-8") ||
           slice_eq_cstr_nocase(charset, "utf8") || slice_eq_cstr_nocase(charset, "ascii");
}

static void append_replacement(struct buf *out)
{
    buf_append_cstr(out, "\xef\xbf\xbd"); /* U+FFFD REPLACEMENT CHARACTER */
}

/*
 * Appends in converted by cd. A byte that does not convert (EILSEQ, or a
 * sequence cut at the end): lossy, U+FFFD for it and on with the next byte;
 * else stop there. Returns true when every byte converted.
 */
static bool iconv_append(iconv_t cd, struct slice in, bool lossy, struct buf *out)
{
    bool all = true;
    char *ip = (char *)in.ptr;
    size_t ileft = in.len;
    while (ileft > 0) {
        buf_reserve(out, ileft * 4 + 16);
        char *op = out->data + out->len;
        size_t oleft = out->cap - out->len - 1;
        size_t r = iconv(cd, &ip, &ileft, &op, &oleft);
        out->len = (size_t)(op - out->data);
        if (r == (size_t)-1 && errno != E2BIG) {
            all = false;
            if (!lossy)
                break;
            append_replacement(out);
            ip++;
            ileft--;
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    buf_reserve(out, 16);
    char *op = out->data + out->len;
    size_t oleft = out->cap - out->len - 1;
    iconv(cd, NULL, NULL, &op, &oleft); /* flush shift state */
    out->len = (size_t)(op - out->data);
    out->data[out->len] = '\0';
    return all;
}

bool mime_charset_to_utf8(struct slice charset, struct slice in, struct buf *out)
{
    if (utf8_label(charset)) {
        if (utf8_valid_prefix(in) != in.len)
            return false;
        buf_append_slice(out, in);
        return true;
    }
    iconv_t cd = iconv_get(charset);
    if (cd == (iconv_t)-1)
        return false;
    size_t start = out->len;
    if (!iconv_append(cd, in, false, out)) {
        out->len = start;
        out->data[start] = '\0';
        return false;
    }
    return true;
}

/* in as UTF-8, each byte of an invalid sequence as U+FFFD. */
static void utf8_repair(struct slice in, struct buf *out)
{
    while (in.len > 0) {
        size_t n = utf8_valid_prefix(in);
        buf_append(out, in.ptr, n);
        if (n == in.len)
            break;
        append_replacement(out);
        in = slice_make(in.ptr + n + 1, in.len - n - 1);
    }
}

bool mime_charset_to_utf8_lossy(struct slice charset, struct slice in, struct buf *out)
{
    if (mime_charset_to_utf8(charset, in, out))
        return true;
    iconv_t cd = utf8_label(charset) ? (iconv_t)-1 : iconv_get(charset);
    if (cd == (iconv_t)-1) {
        utf8_repair(in, out); /* an unknown label: mislabelled UTF-8 is the common case */
        return false;
    }
    iconv_append(cd, in, true, out);
    return false;
}

bool mime_part_text(const struct mime_message *msg, const struct mime_part *p, struct buf *out)
{
    struct buf decoded = BUF_INIT;
    const struct mime_field *cte = mime_part_field(msg, p, "Content-Transfer-Encoding");
    mime_decode_cte(mime_field_value(msg, cte), mime_part_body(msg, p), &decoded);
    struct mime_params params = {.n = 0};
    struct slice v, charset = SLICE_LIT("us-ascii");
    const struct mime_field *ct = mime_part_field(msg, p, "Content-Type");
    if (ct != NULL) {
        mime_params_parse(mime_field_value(msg, ct), MIME_PARAMS_DECODE, &v, &params);
        struct slice c = mime_params_get(&params, "charset");
        if (c.ptr != NULL && c.len > 0)
            charset = c;
    }
    bool ok = mime_charset_to_utf8_lossy(charset, buf_slice(&decoded), out);
    if (ct != NULL)
        mime_params_free(&params);
    buf_free(&decoded);
    return ok;
}
