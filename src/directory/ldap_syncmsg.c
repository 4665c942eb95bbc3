/*
 * ldap_syncmsg.c - RFC 4533's control and intermediate values, encoded and
 * decoded (ldap_syncmsg.h). Fuzzed by fuzz_ldap_syncmsg.c.
 */
#include "directory/ldap_syncmsg.h"

#include <string.h>

/* A reader over [p, end). */
struct ber {
    const unsigned char *p, *end;
};

/* The next element: its tag (low-tag-number form only) and its content. 0, or -1. */
static int ber_next(struct ber *b, unsigned *tag, struct ber *content)
{
    if (b->end - b->p < 2)
        return -1;
    unsigned t = b->p[0];
    if ((t & 0x1f) == 0x1f)
        return -1;
    size_t len = b->p[1];
    const unsigned char *q = b->p + 2;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > 4 || (size_t)(b->end - q) < k)
            return -1; /* indefinite, or longer than anything we take */
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = (len << 8) | *q++;
    }
    if ((size_t)(b->end - q) < len)
        return -1;
    *tag = t;
    content->p = q;
    content->end = q + len;
    b->p = q + len;
    return 0;
}

static bool ber_done(const struct ber *b)
{
    return b->p == b->end;
}

static unsigned ber_peek(const struct ber *b)
{
    return b->p < b->end ? b->p[0] : 0;
}

/* A BOOLEAN's content: one byte. */
static int ber_bool(const struct ber *c, bool *v)
{
    if (c->end - c->p != 1)
        return -1;
    *v = c->p[0] != 0;
    return 0;
}

/* An optional OCTET STRING cookie, then an optional BOOLEAN, then nothing
 * (refreshDelete, refreshPresent, syncDoneValue). */
static int cookie_and_flag(struct ber *b, struct lsync_bytes *cookie, bool *flag)
{
    unsigned tag;
    struct ber c;
    cookie->p = NULL;
    cookie->n = 0;
    if (ber_peek(b) == 0x04) {
        if (ber_next(b, &tag, &c) != 0)
            return -1;
        cookie->p = c.p;
        cookie->n = (size_t)(c.end - c.p);
    }
    if (ber_peek(b) == 0x01 && (ber_next(b, &tag, &c) != 0 || ber_bool(&c, flag) != 0))
        return -1;
    return ber_done(b) ? 0 : -1;
}

int lsync_parse_state(const void *p, size_t n, struct lsync_state_value *out)
{
    struct ber b = {p, (const unsigned char *)p + n}, s, c;
    unsigned tag;
    memset(out, 0, sizeof(*out));
    if (ber_next(&b, &tag, &s) != 0 || tag != 0x30 || !ber_done(&b))
        return -1;
    if (ber_next(&s, &tag, &c) != 0 || tag != 0x0a || c.end - c.p != 1 || c.p[0] > LSYNC_DELETE)
        return -1;
    out->state = (enum lsync_state)c.p[0];
    if (ber_next(&s, &tag, &c) != 0 || tag != 0x04 || c.end - c.p != LSYNC_UUID_LEN)
        return -1;
    memcpy(out->uuid, c.p, LSYNC_UUID_LEN);
    if (!ber_done(&s)) {
        if (ber_next(&s, &tag, &c) != 0 || tag != 0x04 || !ber_done(&s))
            return -1;
        out->cookie.p = c.p;
        out->cookie.n = (size_t)(c.end - c.p);
    }
    return 0;
}

int lsync_parse_info(const void *p, size_t n, struct lsync_info *out)
{
    struct ber b = {p, (const unsigned char *)p + n}, s, c;
    unsigned tag;
    memset(out, 0, sizeof(*out));
    if (ber_next(&b, &tag, &s) != 0 || !ber_done(&b))
        return -1;
    switch (tag) {
    case 0x80: /* [0] newcookie */
        out->kind = LSYNC_NEW_COOKIE;
        out->cookie.p = s.p;
        out->cookie.n = (size_t)(s.end - s.p);
        return 0;
    case 0xa1: /* [1] refreshDelete */
    case 0xa2: /* [2] refreshPresent */
        out->kind = tag == 0xa1 ? LSYNC_REFRESH_DELETE : LSYNC_REFRESH_PRESENT;
        out->refresh_done = true; /* DEFAULT TRUE */
        return cookie_and_flag(&s, &out->cookie, &out->refresh_done);
    case 0xa3: /* [3] syncIdSet */
        out->kind = LSYNC_ID_SET;
        if (ber_peek(&s) == 0x04) {
            if (ber_next(&s, &tag, &c) != 0)
                return -1;
            out->cookie.p = c.p;
            out->cookie.n = (size_t)(c.end - c.p);
        }
        if (ber_peek(&s) == 0x01 &&
            (ber_next(&s, &tag, &c) != 0 || ber_bool(&c, &out->refresh_deletes) != 0))
            return -1;
        if (ber_next(&s, &tag, &c) != 0 || tag != 0x31 || !ber_done(&s))
            return -1;
        out->uuids = c.p;
        out->uuids_len = (size_t)(c.end - c.p);
        for (struct ber u; !ber_done(&c); out->n_uuids++) {
            const unsigned char *start = c.p; /* lsync_uuid_at counts on 2-byte headers */
            if (ber_next(&c, &tag, &u) != 0 || tag != 0x04 || u.end - u.p != LSYNC_UUID_LEN ||
                u.p - start != 2)
                return -1;
        }
        return 0;
    default:
        return -1;
    }
}

void lsync_uuid_at(const struct lsync_info *info, size_t i, unsigned char uuid[LSYNC_UUID_LEN])
{
    /* Checked by lsync_parse_info: every element is 04 10 and 16 bytes. */
    memcpy(uuid, info->uuids + i * (2 + LSYNC_UUID_LEN) + 2, LSYNC_UUID_LEN);
}

int lsync_parse_done(const void *p, size_t n, struct lsync_bytes *cookie, bool *refresh_deletes)
{
    struct ber b = {p, (const unsigned char *)p + n}, s;
    unsigned tag;
    *refresh_deletes = false;
    cookie->p = NULL;
    cookie->n = 0;
    if (ber_next(&b, &tag, &s) != 0 || tag != 0x30 || !ber_done(&b))
        return -1;
    return cookie_and_flag(&s, cookie, refresh_deletes);
}

/* Tag, definite length, content. */
static void ber_put(struct buf *out, unsigned char tag, const void *p, size_t n)
{
    buf_append_byte(out, (char)tag);
    if (n < 0x80) {
        buf_append_byte(out, (char)n);
    } else {
        unsigned char len[1 + sizeof(size_t)];
        size_t k = 0;
        for (size_t v = n; v > 0; v >>= 8)
            k++;
        len[0] = (unsigned char)(0x80 | k);
        for (size_t i = 0; i < k; i++)
            len[1 + i] = (unsigned char)(n >> (8 * (k - 1 - i)));
        buf_append(out, len, 1 + k);
    }
    buf_append(out, p, n);
}

void lsync_request(struct buf *out, int mode, const void *cookie, size_t cookie_len)
{
    struct buf seq = BUF_INIT;
    unsigned char m = (unsigned char)mode;
    ber_put(&seq, 0x0a, &m, 1);
    if (cookie != NULL)
        ber_put(&seq, 0x04, cookie, cookie_len);
    ber_put(out, 0x30, seq.data, seq.len);
    buf_free(&seq);
}
