/*
 * fuzz_directory_proto.c - libFuzzer target for the decoders of the
 * directory lookup frames (directory_proto.h).
 *
 * The first byte picks the decoder (even: a lookup, as the directory process
 * reads it; odd: an answer, as a worker reads it); the rest is the payload.
 * Whatever decodes must hold to the limits and, encoded again, give the
 * same bytes back.
 */
#include "directory/directory_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct buf again = BUF_INIT;
    if ((data[0] & 1) == 0) {
        uint64_t id;
        enum directory_query q;
        struct slice key;
        const char *why;
        if (directory_proto_get_lookup(p, n, &id, &q, &key, &why) == 0) {
            if (key.len > DIRECTORY_PROTO_MAX_KEY || (key.len && memchr(key.ptr, 0, key.len)))
                __builtin_trap();
            char *k = slice_strdup(key);
            directory_proto_put_lookup(&again, id, q, k);
            free(k);
            if (again.len != n || memcmp(again.data, p, n) != 0)
                __builtin_trap();
        }
    } else {
        uint64_t id;
        struct directory_answer a;
        if (directory_proto_get_answer(p, n, &id, &a) == 0) {
            directory_proto_put_answer(&again, id, &a);
            if (again.len != n || memcmp(again.data, p, n) != 0)
                __builtin_trap();
        }
        directory_answer_free(&a);
    }
    buf_free(&again);
    return 0;
}
