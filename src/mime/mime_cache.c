/*
 * mime_cache.c - what a message's MIME structure yields once, at delivery or
 * APPEND, for the store to keep beside the message: the serialized parse
 * (mime_struct.c, from which each protocol renders its own forms) and the
 * search record (the searchable header fields, unfolded and RFC 2047-decoded,
 * see mime.h).
 *
 * The record is length-prefixed binary: a version byte, then entries of
 * name length (1 byte), lower-case name, value length (4 bytes, little
 * endian), value. Address fields get a second entry holding the parsed
 * addresses written back without comments ("Name <local@domain>, ..."), as
 * Dovecot searches them. Must never: read past a record it is given (records
 * come from the store's disk and are checked as they are read), or cache a
 * field that is not in the fixed list (a field that is absent from a record
 * must mean the message has no such field).
 */
#include "mime/mime.h"

#include <stdint.h>
#include <string.h>

#define MIME_CACHE_VERSION 1

/* The fields the search record holds; RFC 5322 3.6 names. */
static const char *const cached_fields[] = {
    "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to",
};
#define N_ADDRESS_FIELDS 6 /* the first six are address lists */

static int field_index(struct slice name)
{
    for (size_t i = 0; i < sizeof(cached_fields) / sizeof(cached_fields[0]); i++)
        if (slice_eq_cstr_nocase(name, cached_fields[i]))
            return (int)i;
    return -1;
}

bool mime_cache_covers(struct slice name)
{
    return field_index(name) >= 0;
}

static void record_add(struct buf *rec, const char *name, struct slice value)
{
    size_t nl = strlen(name);
    uint32_t vl = value.len > UINT32_MAX ? UINT32_MAX : (uint32_t)value.len;
    unsigned char len[4] = {(unsigned char)vl, (unsigned char)(vl >> 8), (unsigned char)(vl >> 16),
                            (unsigned char)(vl >> 24)};
    buf_append_byte(rec, (char)nl);
    buf_append(rec, name, nl);
    buf_append(rec, len, 4);
    buf_append(rec, value.ptr, vl);
}

/* "Name <local@domain>, group: a@b;" with names decoded and comments gone. */
static void addresses_write(struct buf *out, struct slice raw)
{
    struct mime_address_list l;
    mime_address_parse(raw, &l);
    bool first = true, in_group = false;
    for (size_t i = 0; i < l.n; i++) {
        const struct mime_address *a = &l.v[i];
        if (a->mailbox.ptr == NULL && a->host.ptr == NULL) { /* group end */
            buf_append_byte(out, ';');
            in_group = false;
            first = false;
            continue;
        }
        if (!first && !(in_group && out->len > 0 && out->data[out->len - 1] == ' '))
            buf_append_cstr(out, ", ");
        first = false;
        if (a->host.ptr == NULL) { /* group start */
            mime_decode_words(a->mailbox, out);
            buf_append_cstr(out, ": ");
            in_group = true;
            continue;
        }
        bool named = a->name.ptr != NULL && a->name.len > 0;
        if (named) {
            mime_decode_words(a->name, out);
            buf_append_cstr(out, " <");
        }
        buf_append_slice(out, a->mailbox);
        buf_append_byte(out, '@');
        buf_append_slice(out, a->host);
        if (named)
            buf_append_byte(out, '>');
    }
    mime_address_list_free(&l);
}

void mime_cache_record(struct buf *rec, const struct mime_message *msg, const struct mime_part *p)
{
    buf_append_byte(rec, MIME_CACHE_VERSION);
    struct buf t = BUF_INIT, d = BUF_INIT;
    for (size_t i = 0; i < p->field_count; i++) {
        const struct mime_field *f = &msg->fields[p->field_first + i];
        int k = field_index(mime_field_name(msg, f));
        if (k < 0)
            continue;
        struct slice raw = mime_field_value(msg, f);
        buf_reset(&t);
        buf_reset(&d);
        mime_unfold(raw, &t);
        mime_decode_words(buf_slice(&t), &d);
        record_add(rec, cached_fields[k], buf_slice(&d));
        if (k < N_ADDRESS_FIELDS) {
            buf_reset(&d);
            addresses_write(&d, raw);
            record_add(rec, cached_fields[k], buf_slice(&d));
        }
    }
    buf_free(&t);
    buf_free(&d);
}

bool mime_cache_record_valid(struct slice rec)
{
    return rec.len >= 1 && (unsigned char)rec.ptr[0] == MIME_CACHE_VERSION;
}

bool mime_cache_record_next(struct slice *rest, struct slice *name_r, struct slice *value_r)
{
    const unsigned char *p = (const unsigned char *)rest->ptr;
    size_t n = rest->len;
    if (n < 1 || n - 1 < (size_t)p[0] + 4)
        return false;
    size_t nl = p[0];
    const unsigned char *l = p + 1 + nl;
    size_t vl = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 | (size_t)l[3] << 24;
    size_t head = 1 + nl + 4;
    if (n - head < vl)
        return false;
    *name_r = slice_make((const char *)p + 1, nl);
    *value_r = slice_make((const char *)p + head, vl);
    *rest = slice_make((const char *)p + head + vl, n - head - vl);
    return true;
}

bool mime_cache_record_msgid(struct slice rec, struct slice *id_r)
{
    if (!mime_cache_record_valid(rec))
        return false;
    struct slice rest = slice_make(rec.ptr + 1, rec.len - 1), name, value;
    while (mime_cache_record_next(&rest, &name, &value)) {
        if (slice_eq_cstr_nocase(name, "message-id")) {
            *id_r = slice_trim(value);
            return id_r->len > 0;
        }
    }
    return false;
}

void mime_cache_build(struct slice data, const struct mime_limits *limits, struct mime_cache *c)
{
    struct mime_message msg;
    mime_parse(&msg, data, limits);
    buf_init(&c->structure);
    buf_init(&c->record);
    mime_struct_encode(&c->structure, &msg);
    mime_cache_record(&c->record, &msg, msg.root);
    mime_thread_keys_build(&msg, &c->thread);
    mime_message_free(&msg);
}

void mime_cache_free(struct mime_cache *c)
{
    buf_free(&c->structure);
    buf_free(&c->record);
    mime_thread_keys_free(&c->thread);
}
