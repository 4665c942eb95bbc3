/*
 * fuzz_deliver_request.c - libFuzzer target: a deliver.sock frame as the mta
 * reads it (frame header, request fields, line-end conversion). Must never
 * crash, read out of bounds or accept a truncated request.
 */
#include "ipc/frame.h"
#include "mta/lda.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ipc_frame f;
    size_t used;
    if (ipc_frame_parse(data, size, 1 << 20, &f, &used) != IPC_PARSE_OK)
        return 0;
    struct slice user, folder, msg;
    if (lda_decode_request(f.payload, f.len, &user, &folder, &msg) != 0)
        return 0;
    if (user.ptr + user.len > (const char *)data + size ||
        msg.ptr + msg.len > (const char *)data + size)
        __builtin_trap();
    struct buf out = BUF_INIT;
    lda_crlf(msg, &out);
    if (out.len < msg.len)
        __builtin_trap();
    buf_free(&out);
    return 0;
}
