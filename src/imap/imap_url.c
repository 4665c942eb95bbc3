/*
 * imap_url.c - the IMAP URL parser (RFC 5092 section 11, the imessagepart
 * subset): absolute "imap://" URLs of this server and absolute paths.
 * Percent escapes are decoded; the result names a mailbox as the session
 * would (UTF-8, RFC 5092 section 5), a UID and optionally a section and a
 * byte range. imap_url_fetch reads what a URL names for CATENATE.
 * Must never: accept a URL for another host or user, read past the input,
 * let a decoded NUL or control byte through, or read a mailbox the session
 * has no "r" right on.
 */
#include "imap/imap_url.h"
#include "base/hex.h"

#include "base/alloc.h"
#include "base/log.h"
#include "imap/imap_int.h"
#include "mime/mutf7.h"
#include "mime/mime.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* bchar of RFC 5092: unreserved, sub-delims but ";", pct-encoded, ":", "@", "/", "&", "=". */
static bool is_bchar(char c)
{
    return isalnum((unsigned char)c) || strchr("-._~!$'()*+,:@/&=%", c) != NULL;
}

/* Percent-decodes bchars [p, end) into a string; NULL when invalid or empty. */
static char *decode(const char *p, const char *end)
{
    struct buf b = BUF_INIT;
    for (; p < end; p++) {
        char c = *p;
        if (!is_bchar(c))
            goto bad;
        if (c == '%') {
            int hi, lo;
            if (end - p < 3 || (hi = hex_value(p[1])) < 0 || (lo = hex_value(p[2])) < 0)
                goto bad;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if ((unsigned char)c < 0x20 || c == 0x7f)
            goto bad;
        buf_append_byte(&b, c);
    }
    if (b.len == 0)
        goto bad;
    return buf_steal(&b, NULL);
bad:
    buf_free(&b);
    return NULL;
}

/* A number at *p (digits only) up to end; advances *p. */
static bool number(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *q = *p;
    while (q < end && isdigit((unsigned char)*q)) {
        if (v > (max - (uint64_t)(*q - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q == *p)
        return false;
    *p = q;
    *out = v;
    return true;
}

/* Consumes the case-insensitive literal word at *p. */
static bool word(const char **p, const char *end, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(end - *p) < n || strncasecmp(*p, w, n) != 0)
        return false;
    *p += n;
    return true;
}

/* "imap://" [user [";AUTH=" ...] "@"] host [":" port]: checks it names us; *p at the "/". */
static bool server_ok(const char **p, const char *end, const char *host, const char *account)
{
    const char *slash = memchr(*p, '/', (size_t)(end - *p));
    if (slash == NULL)
        return false;
    const char *at = NULL;
    for (const char *q = *p; q < slash; q++)
        if (*q == '@')
            at = q;
    const char *h = *p;
    if (at != NULL) {
        const char *semi = memchr(*p, ';', (size_t)(at - *p)); /* ";AUTH=*" is allowed, ignored */
        char *user = decode(*p, semi ? semi : at);
        bool same = user != NULL && account != NULL && strcasecmp(user, account) == 0;
        free(user);
        if (!same)
            return false;
        h = at + 1;
    }
    const char *colon = memchr(h, ':', (size_t)(slash - h));
    const char *hend = colon ? colon : slash;
    if (colon != NULL) {
        uint64_t port;
        const char *q = colon + 1;
        if (!number(&q, slash, 65535, &port) || q != slash)
            return false;
    }
    if ((size_t)(hend - h) != strlen(host) || strncasecmp(h, host, (size_t)(hend - h)) != 0)
        return false;
    *p = slash;
    return true;
}

void imap_url_free(struct imap_url *u)
{
    free(u->mailbox);
    free(u->section);
    memset(u, 0, sizeof(*u));
}

/* ";PARTIAL=" starts here (after a "/"). */
static bool at_partial(const char *p, const char *end)
{
    return (size_t)(end - p) >= 9 && strncasecmp(p, ";PARTIAL=", 9) == 0;
}

bool imap_url_parse(struct slice url, const char *host, const char *account, struct imap_url *u)
{
    memset(u, 0, sizeof(*u));
    const char *p = url.ptr, *end = url.ptr + url.len;
    if (word(&p, end, "imap://") && !server_ok(&p, end, host, account))
        return false;
    if (p == end || *p != '/')
        return false;
    p++;
    /* enc-mailbox [";UIDVALIDITY=" n] "/;UID=" n */
    const char *semi = memchr(p, ';', (size_t)(end - p));
    if (semi == NULL)
        return false;
    const char *mend = semi;
    uint64_t n;
    const char *q = semi;
    if (word(&q, end, ";UIDVALIDITY=")) {
        if (!number(&q, end, UINT32_MAX, &n) || n == 0 || !word(&q, end, "/"))
            goto bad;
        u->uidvalidity = (uint32_t)n;
    } else {
        if (mend == p || mend[-1] != '/')
            goto bad;
        mend--;
    }
    u->mailbox = decode(p, mend);
    if (u->mailbox == NULL || !mutf7_utf8_valid(slice_from_cstr(u->mailbox)))
        goto bad;
    if (!word(&q, end, ";UID=") || !number(&q, end, UINT32_MAX, &n) || n == 0)
        goto bad;
    u->uid = (uint32_t)n;
    /* ["/;SECTION=" enc-section] (it may hold "/") */
    p = q;
    if (word(&q, end, "/;SECTION=")) {
        const char *s_end = q;
        while (s_end < end && !(s_end[0] == '/' && at_partial(s_end + 1, end)))
            s_end++;
        u->section = decode(q, s_end);
        if (u->section == NULL)
            goto bad;
        q = s_end;
    }
    /* ["/;PARTIAL=" offset ["." length]] */
    if (word(&q, end, "/;PARTIAL=")) {
        u->partial = true;
        if (!number(&q, end, UINT64_MAX, &u->offset))
            goto bad;
        if (q < end && *q == '.') {
            q++;
            if (!number(&q, end, UINT64_MAX, &u->length) || u->length == 0)
                goto bad;
        }
    }
    if (q < end && *q == '/') /* a trailing "/" */
        q++;
    if (q != end)
        goto bad; /* URLAUTH and anything else */
    return true;
bad:
    imap_url_free(u);
    return false;
}

/* ---- what a URL names (CATENATE) ---- */

int imap_url_fetch(struct imap_session *s, struct slice text, struct buf *out)
{
    struct imap_url u;
    struct imap_mbref ref = {0};
    struct buf data = BUF_INIT, err = BUF_INIT;
    int r = 1;
    if (!imap_url_parse(text, s->srv->greeting_host, s->account, &u))
        goto done;
    if (imap_mbref_resolve(s, u.mailbox, &ref) != 0) {
        r = -1;
        goto done;
    }
    if (ref.name == NULL || !ref.exists || !(ref.rights & IMAP_RIGHT_R))
        goto done;
    if (u.uidvalidity != 0) {
        struct store_mailbox mb;
        int g = store_mailbox_get(s->srv->store, ref.owner, ref.name, &mb, &err);
        if (g < 0)
            r = -1;
        if (g != 0)
            goto done;
        bool same = mb.uidvalidity == u.uidvalidity;
        store_mailbox_free(&mb);
        if (!same)
            goto done;
    }
    int rr = store_message_read(s->srv->store, ref.owner, ref.name, u.uid, &data, &err);
    if (rr != 0) {
        r = rr < 0 ? -1 : 1;
        goto done;
    }
    struct slice part = buf_slice(&data);
    struct mime_message msg;
    struct mime_section sec;
    buf_init(&sec.built);
    bool parsed = u.section != NULL;
    if (parsed) {
        struct mime_limits lim;
        mime_limits_from_config(&lim, s->srv->cfg);
        mime_parse(&msg, buf_slice(&data), &lim);
        switch (mime_section_locate(&msg, slice_from_cstr(u.section), &sec)) {
        case MIME_SECTION_RANGE:
            part = slice_make(data.data + sec.start, sec.len);
            break;
        case MIME_SECTION_BUILT:
            part = buf_slice(&sec.built);
            break;
        default:
            part.ptr = NULL; /* no such part, or not a section */
            break;
        }
    }
    if (part.ptr != NULL) {
        if (u.partial) { /* RFC 5092 ;PARTIAL=offset[.length] */
            uint64_t off = u.offset < part.len ? u.offset : part.len;
            uint64_t len = part.len - off;
            if (u.length != 0 && u.length < len)
                len = u.length;
            part = slice_make(part.ptr + off, (size_t)len);
        }
        buf_append_slice(out, part);
        r = 0;
    }
    buf_free(&sec.built);
    if (parsed)
        mime_message_free(&msg);
done:
    if (r < 0)
        log_error("user=<%s>: CATENATE URL: %s", s->account, buf_cstr(&err));
    imap_url_free(&u);
    imap_mbref_free(&ref);
    buf_free(&data);
    buf_free(&err);
    return r;
}
