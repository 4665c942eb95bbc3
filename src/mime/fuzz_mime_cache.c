/*
 * fuzz_mime_cache.c - libFuzzer target: arbitrary bytes as a message whose
 * cache (the serialized structure and the search record) is built, the
 * structure decoded again and rendered as IMAP ENVELOPE, BODY and
 * BODYSTRUCTURE (which must equal what the parsed message gives), and the
 * record read back entry by entry; the bytes are also read as a (damaged)
 * structure blob and record, as one could come back from a damaged store.
 * Must never write to the input.
 */
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(struct slice rec)
{
    size_t n = 0;
    struct slice rest = rec.len > 0 ? slice_make(rec.ptr + 1, rec.len - 1) : rec, name, value;
    while (mime_cache_record_next(&rest, &name, &value)) {
        if (name.ptr < rec.ptr || value.ptr + value.len > rec.ptr + rec.len)
            abort(); /* outside the record */
        n++;
    }
    return n;
}

static void render(struct buf *out, const struct mime_struct *st)
{
    mime_imap_struct_envelope(out, st, 0);
    mime_imap_struct_bodystructure(out, st, 0, true);
    mime_imap_struct_bodystructure(out, st, 0, false);
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].env != NULL)
            mime_imap_struct_envelope(out, st, i);
}

/* The bytes as a stored blob: refused, or rendered without harm. Blobs
 * start with a tag, so a second pass reads the input behind one. */
static void as_blob(struct slice in)
{
    static const char tag[4] = {'\0', 'W', 'S', 1};
    struct buf b = BUF_INIT, out = BUF_INIT;
    buf_init(&b);
    buf_init(&out);
    for (int pass = 0; pass < 2; pass++) {
        buf_reset(&b);
        if (pass == 1)
            buf_append(&b, tag, sizeof(tag));
        buf_append_slice(&b, in);
        struct mime_struct st;
        if (mime_struct_decode(buf_slice(&b), &st)) {
            render(&out, &st);
            mime_struct_free(&st);
        }
    }
    buf_free(&b);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice in = slice_make(data, size);
    struct mime_cache c;
    mime_cache_build(in, NULL, &c);
    struct slice rec = buf_slice(&c.record);
    if (!mime_cache_record_valid(rec))
        abort();
    size_t n = walk(rec);
    struct slice rest = slice_make(rec.ptr + 1, rec.len - 1), name, value;
    for (size_t i = 0; i < n; i++)
        mime_cache_record_next(&rest, &name, &value);
    if (rest.len != 0) /* a record built here is read to its end */
        abort();

    /* what was built is read back whole, and a byte less is refused */
    struct slice blob = buf_slice(&c.structure);
    struct mime_struct st;
    if (!mime_struct_decode(blob, &st))
        abort();
    struct buf a = BUF_INIT, b = BUF_INIT;
    buf_init(&a);
    buf_init(&b);
    render(&a, &st);
    mime_struct_free(&st);
    if (mime_struct_decode(slice_make(blob.ptr, blob.len - 1), &st))
        abort();
    struct mime_message msg;
    mime_parse(&msg, in, NULL);
    mime_imap_envelope(&b, &msg, msg.root);
    mime_imap_bodystructure(&b, &msg, msg.root, true);
    mime_imap_bodystructure(&b, &msg, msg.root, false);
    mime_message_free(&msg);
    if (b.len > a.len || memcmp(a.data, b.data, b.len) != 0)
        abort(); /* the cached form renders as the parsed message does */
    buf_free(&a);
    buf_free(&b);
    mime_cache_free(&c);
    walk(in);
    as_blob(in);
    return 0;
}
