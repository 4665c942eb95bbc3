/*
 * mime_header.c - header field access: lookup, unfolding and RFC 2047
 * encoded-words (parameters are in mime_params.c).
 *
 * Everything here works on raw field values that came from hostile mail:
 * it must never read outside the slice it is given, never fail, and keep
 * its output bounded by a small multiple of its input.
 */
#include "mime/mime.h"
#include "mime/mime_chars.h"

#include "base/alloc.h"
#include "base/base64.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct slice mime_field_name(const struct mime_message *msg, const struct mime_field *f)
{
    return slice_make(msg->data.ptr + f->start, f->name_len);
}

struct slice mime_field_value(const struct mime_message *msg, const struct mime_field *f)
{
    if (f == NULL)
        return slice_make("", 0);
    return slice_make(msg->data.ptr + f->value_start, f->value_len);
}

const struct mime_field *mime_part_field(const struct mime_message *msg, const struct mime_part *p,
                                         const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < p->field_count; i++) {
        const struct mime_field *f = &msg->fields[p->field_first + i];
        if (f->name_len == n && slice_eq_cstr_nocase(mime_field_name(msg, f), name))
            return f;
    }
    return NULL;
}

const struct mime_field *mime_part_field_last(const struct mime_message *msg,
                                              const struct mime_part *p, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = p->field_count; i-- > 0;) {
        const struct mime_field *f = &msg->fields[p->field_first + i];
        if (f->name_len == n && slice_eq_cstr_nocase(mime_field_name(msg, f), name))
            return f;
    }
    return NULL;
}

size_t mime_msgids_parse(struct slice value, char **out, size_t max)
{
    size_t n = 0;
    const char *s = value.ptr, *end = value.ptr + value.len;
    while (n < max && s < end && (s = memchr(s, '<', (size_t)(end - s))) != NULL) {
        const char *e = memchr(s, '>', (size_t)(end - s));
        if (e == NULL)
            break;
        struct buf b = BUF_INIT;
        for (const char *p = s + 1; p < e; p++)
            if (*p != '"' && *p != '\\' && *p != ' ' && *p != '\t')
                buf_append_byte(&b, *p);
        if (b.len > 0 && memchr(b.data, '@', b.len) != NULL)
            out[n++] = buf_steal(&b, NULL);
        buf_free(&b);
        s = e + 1;
    }
    return n;
}

void mime_unfold(struct slice raw, struct buf *out)
{
    size_t i = 0, n = raw.len;
    while (i < n && mime_is_lwsp(raw.ptr[i]))
        i++;
    while (n > i && mime_is_lwsp(raw.ptr[n - 1]))
        n--;
    size_t run = i;
    for (; i < n; i++) {
        char c = raw.ptr[i];
        if (c == '\r' || c == '\n') {
            buf_append(out, raw.ptr + run, i - run);
            run = i + 1;
        }
    }
    buf_append(out, raw.ptr + run, n - run);
}

/* ---- RFC 2047 ---- */

struct eword {
    struct slice charset, text;
    char enc;
    size_t end; /* index after "?=" */
};

/* An encoded-word at s[i] ("=?charset?B?text?="), lenient about its length. */
static bool eword_parse(struct slice s, size_t i, struct eword *w)
{
    size_t n = s.len;
    if (i + 1 >= n || s.ptr[i] != '=' || s.ptr[i + 1] != '?')
        return false;
    size_t c0 = i + 2, c = c0;
    while (c < n && s.ptr[c] != '?' && !mime_is_lwsp(s.ptr[c]) && c - c0 < 64)
        c++;
    if (c == c0 || c + 3 >= n || s.ptr[c] != '?' || s.ptr[c + 2] != '?')
        return false;
    char enc = s.ptr[c + 1];
    if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q')
        return false;
    size_t t0 = c + 3, t = t0;
    while (t + 1 < n && !(s.ptr[t] == '?' && s.ptr[t + 1] == '=') && !mime_is_lwsp(s.ptr[t]))
        t++;
    if (t + 1 >= n || s.ptr[t] != '?' || s.ptr[t + 1] != '=')
        return false;
    struct slice cs = slice_make(s.ptr + c0, c - c0);
    const char *star = memchr(cs.ptr, '*', cs.len); /* RFC 2231 language suffix */
    if (star != NULL)
        cs.len = (size_t)(star - cs.ptr);
    w->charset = cs;
    w->enc = (char)(enc & ~0x20);
    w->text = slice_make(s.ptr + t0, t - t0);
    w->end = t + 2;
    return true;
}

static void eword_decode(const struct eword *w, struct buf *out)
{
    if (w->enc == 'B') {
        base64_decode_lenient(w->text, out);
        return;
    }
    const char *t = w->text.ptr;
    size_t n = w->text.len;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (t[i] == '_') {
            buf_append_byte(out, ' ');
        } else if (t[i] == '=' && i + 2 < n && (h = mime_hexval(t[i + 1])) >= 0 &&
                   (l = mime_hexval(t[i + 2])) >= 0) {
            buf_append_byte(out, (char)(h << 4 | l));
            i += 2;
        } else {
            buf_append_byte(out, t[i]);
        }
    }
}

/* Pending run of adjacent encoded-words in one charset. */
struct ew_run {
    struct slice charset;
    size_t raw_start, raw_end; /* the words as written, for a fallback */
    struct buf bytes;          /* decoded, not yet converted */
    bool active;
};

static void ew_run_flush(struct ew_run *r, struct slice raw, struct buf *out)
{
    if (!r->active)
        return;
    if (!mime_charset_to_utf8(r->charset, buf_slice(&r->bytes), out))
        buf_append(out, raw.ptr + r->raw_start, r->raw_end - r->raw_start);
    buf_reset(&r->bytes);
    r->active = false;
}

static void ws_append(struct slice raw, size_t from, size_t to, struct buf *out)
{
    for (size_t k = from; k < to; k++)
        if (raw.ptr[k] != '\r' && raw.ptr[k] != '\n')
            buf_append_byte(out, raw.ptr[k]);
}

void mime_decode_words(struct slice raw, struct buf *out)
{
    struct ew_run run = {.bytes = BUF_INIT}; /* bytes allocated on first use */
    size_t i = 0, n = raw.len;
    size_t ws_start = 0, ws_end = 0; /* white space seen since the last token */
    bool after_word = false;
    while (i < n) {
        char c = raw.ptr[i];
        if (mime_is_lwsp(c)) {
            ws_start = i;
            while (i < n && mime_is_lwsp(raw.ptr[i]))
                i++;
            ws_end = i;
            continue;
        }
        struct eword w;
        if (c == '=' && eword_parse(raw, i, &w)) {
            /* White space between adjacent encoded-words is dropped. */
            if (!after_word || !slice_eq_nocase(run.charset, w.charset)) {
                ew_run_flush(&run, raw, out);
                if (!after_word)
                    ws_append(raw, ws_start, ws_end, out);
                run.active = true;
                run.charset = w.charset;
                run.raw_start = i;
            }
            eword_decode(&w, &run.bytes);
            run.raw_end = w.end;
            after_word = true;
            i = w.end;
        } else {
            ew_run_flush(&run, raw, out);
            ws_append(raw, ws_start, ws_end, out);
            after_word = false;
            size_t j = i + 1;
            while (j < n && !mime_is_lwsp(raw.ptr[j]) && raw.ptr[j] != '=')
                j++;
            buf_append(out, raw.ptr + i, j - i);
            i = j;
        }
        ws_start = ws_end = 0;
    }
    ew_run_flush(&run, raw, out);
    ws_append(raw, ws_start, ws_end, out);
    buf_free(&run.bytes);
}
