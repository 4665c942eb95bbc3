/*
 * fuzz_mime_cache.c - libFuzzer target: arbitrary bytes as a message whose
 * cache (ENVELOPE, BODYSTRUCTURE, search record) is built, and the record
 * read back entry by entry; the bytes are also read as a (damaged) record,
 * as one could come back from a damaged store. Must never write to the input.
 */
#include "mime/mime.h"

#include <stdint.h>
#include <stdlib.h>

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
    mime_cache_free(&c);
    walk(in);
    return 0;
}
