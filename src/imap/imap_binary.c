/*
 * imap_binary.c - the content of FETCH BINARY[section] and BINARY.SIZE
 * (RFC 3516): a part's body with its Content-Transfer-Encoding undone
 * (base64, quoted-printable by src/mime; 7bit, 8bit, binary as they are).
 * Part numbering is the one of BODY[section] (mime_section.c): the parts of
 * a multipart from 1, a message that is not multipart has only part 1, a
 * message/rfc822 part's sub-parts are those of the message it encapsulates.
 * Must never: guess an encoding it does not know (the client gets
 * UNKNOWN-CTE), or read outside the message.
 */
#include "imap/imap_int.h"
#include "mime/mime.h"

#include <string.h>

/* Largest part number accepted in a section ("1.2.3"): more parts never exist. */
#define IMAP_MAX_PART_NUMBER 100000000UL

bool imap_binary_spec_valid(struct slice spec)
{
    size_t i = 0;
    while (i < spec.len) {
        unsigned long n = 0;
        size_t start = i;
        while (i < spec.len && spec.ptr[i] >= '0' && spec.ptr[i] <= '9') {
            if (n > IMAP_MAX_PART_NUMBER)
                return false;
            n = n * 10 + (unsigned long)(spec.ptr[i++] - '0');
        }
        if (i == start || n == 0)
            return false;
        if (i < spec.len && (spec.ptr[i] != '.' || ++i == spec.len))
            return false;
    }
    return true;
}

/* Part n (1-based) of a message whose top part is m. */
static const struct mime_part *message_part(const struct mime_part *m, unsigned long n)
{
    if (m->kind != MIME_MULTIPART)
        return n == 1 ? m : NULL;
    const struct mime_part *c = m->children;
    while (c != NULL && --n > 0)
        c = c->next;
    return c;
}

/* The part a valid spec names; NULL when there is none. */
static const struct mime_part *part_find(const struct mime_message *msg, struct slice spec)
{
    const struct mime_part *cur = msg->root;
    bool numbered = false;
    size_t i = 0;
    while (i < spec.len && cur != NULL) {
        unsigned long n = 0;
        while (i < spec.len && spec.ptr[i] != '.')
            n = n * 10 + (unsigned long)(spec.ptr[i++] - '0');
        i++; /* the dot */
        if (!numbered || cur->kind == MIME_MULTIPART)
            cur = message_part(cur, n);
        else if (cur->kind == MIME_MESSAGE)
            cur = cur->children == NULL ? NULL : message_part(cur->children, n);
        else /* a leaf inside a multipart is its own part 1 */
            cur = n == 1 && cur->parent != NULL && cur->parent->kind == MIME_MULTIPART ? cur : NULL;
        numbered = true;
    }
    return cur;
}

/* The part's encoded body and its transfer encoding; NULL when there is no such part. */
static const struct mime_part *source(const struct mime_message *msg, struct slice spec,
                                      struct slice *body_r, struct slice *cte_r)
{
    const struct mime_part *p = part_find(msg, spec);
    if (p == NULL)
        return NULL;
    *body_r = mime_part_body(msg, p);
    const struct mime_field *f = mime_part_field(msg, p, "Content-Transfer-Encoding");
    *cte_r = f != NULL ? mime_field_value(msg, f) : SLICE_LIT("");
    if (p->kind != MIME_LEAF) /* a multipart or message/rfc822 is only 7bit, 8bit or binary */
        *cte_r = SLICE_LIT("");
    return p;
}

enum imap_binary_result imap_binary_section(const struct mime_message *msg, struct slice spec,
                                            struct buf *out)
{
    buf_reset(out);
    if (spec.len == 0) { /* BINARY[]: the whole message as stored */
        buf_append_slice(out, msg->data);
        return IMAP_BINARY_OK;
    }
    struct slice body, cte;
    if (source(msg, spec, &body, &cte) == NULL)
        return IMAP_BINARY_NONE;
    if (!mime_decode_cte(cte, body, out)) {
        buf_reset(out);
        return IMAP_BINARY_UNKNOWN_CTE;
    }
    return IMAP_BINARY_OK;
}

enum imap_binary_result imap_binary_size(const struct mime_message *msg, struct slice spec,
                                         size_t *size_r)
{
    *size_r = 0;
    if (spec.len == 0) {
        *size_r = msg->data.len;
        return IMAP_BINARY_OK;
    }
    struct slice body, cte;
    if (source(msg, spec, &body, &cte) == NULL)
        return IMAP_BINARY_NONE;
    if (!mime_decoded_size(cte, body, size_r)) {
        *size_r = 0;
        return IMAP_BINARY_UNKNOWN_CTE;
    }
    return IMAP_BINARY_OK;
}
