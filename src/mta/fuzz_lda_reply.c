/*
 * fuzz_lda_reply.c - libFuzzer target: a deliver.sock reply frame as
 * `wharf deliver` reads it from the mta (frame header, then lda_decode_reply).
 * Must never crash, read out of bounds, accept an exit code over 255 or
 * trailing bytes; what decodes must encode back to the same payload.
 */
#include "ipc/frame.h"
#include "mta/lda.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ipc_frame f;
    size_t used;
    if (ipc_frame_parse(data, size, 4096, &f, &used) != IPC_PARSE_OK)
        return 0;
    int code;
    struct slice text;
    if (lda_decode_reply(f.payload, f.len, &code, &text) != 0)
        return 0;
    if (code < 0 || code > 255 || text.ptr < f.payload || text.ptr + text.len > f.payload + f.len)
        __builtin_trap();
    if (text.len > 0 && memchr(text.ptr, 0, text.len))
        return 0; /* the encoder takes a C string */
    char *t = slice_strdup(text);
    struct buf again = BUF_INIT;
    lda_encode_reply(&again, code, t);
    if (again.len != f.len || memcmp(again.data, f.payload, f.len) != 0)
        __builtin_trap();
    buf_free(&again);
    free(t);
    return 0;
}
